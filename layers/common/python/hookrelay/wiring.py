"""The one place each function's objects are built from Settings: functions/*/app.py build theirs here at
their start, and tests and benchmarks build the same objects with settings of their own.

Each builder imports what it builds when it is called, so that a function's cold start imports its own
objects only (tests/unit/test_function_starts.py). Each call builds new objects: the local stack loads a
function's module once per container, and each container keeps caches of its own, as on Lambda; the AWS
clients under them are the process's (hookrelay.aws).
"""

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hookrelay.settings import Settings

if TYPE_CHECKING:
    from hookrelay.api_keys import Authenticator
    from hookrelay.aws import Table
    from hookrelay.delivery import Deliverer
    from hookrelay.delivery_log import DeliveryLog
    from hookrelay.ingest import Ingest
    from hookrelay.publishing import EventPublisher
    from hookrelay.queues import Queue
    from hookrelay.rate_limit import RateLimiter
    from hookrelay.retry import RetryPolicy
    from hookrelay.senders import Senders
    from hookrelay.slow_lane import SlowLane
    from hookrelay.store.api_keys import DynamoApiKeyStore
    from hookrelay.store.deliveries import DeliveryStore
    from hookrelay.store.due_retries import DueRetries
    from hookrelay.store.subscriptions import DynamoSubscriptionStore, SubscriptionStore
    from hookrelay.subscriptions import Subscriptions
    from hookrelay.sweeper import Sweeper
    from hookrelay.team_limits import TeamLimiter
    from hookrelay.transport import Transport


# The tables and clients a builder reaches AWS through: hookrelay.aws's by default, a deployed or local
# stack's own for the operator's CLI (hookrelay_cli.target).
type Tables = Callable[[str], "Table"]
type Clients = Callable[[str], Any]


def subscription_store(settings: Settings, *, tables: Tables | None = None) -> "DynamoSubscriptionStore":
    from hookrelay.aws import table
    from hookrelay.store.subscriptions import DynamoSubscriptionStore

    return DynamoSubscriptionStore(
        (tables or table)(settings.subscriptions_table), max_team_bytes=settings.max_subscription_bytes_per_team
    )


def delivery_queue(settings: Settings, *, clients: Clients | None = None) -> "Queue":
    from hookrelay.aws import client
    from hookrelay.queues import Queue

    return Queue((clients or client)("sqs"), settings.delivery_queue_url)


def slow_lane_queue(settings: Settings, *, clients: Clients | None = None) -> "Queue":
    from hookrelay.aws import client
    from hookrelay.queues import Queue

    return Queue((clients or client)("sqs"), settings.slow_lane_url)


def transport(settings: Settings) -> "Transport":
    from hookrelay.transport import Transport

    return Transport(
        allow_private=settings.allow_private_endpoints,
        connect_timeout=settings.send_connect_timeout_seconds,
        total_timeout=settings.send_timeout_seconds,
    )


def retry_policy(settings: Settings) -> "RetryPolicy":
    from hookrelay.retry import RetryPolicy, parse_schedule

    return RetryPolicy(parse_schedule(settings.retry_schedule))


def deliverer(
    settings: Settings,
    *,
    store: "SubscriptionStore | None" = None,
    deliveries: "DeliveryStore | None" = None,
    senders: "Senders | None" = None,
    policy: "RetryPolicy | None" = None,
    queue: "Queue | None" = None,
    slow_lane: "SlowLane | None" = None,
    rate_limiter: "RateLimiter | None" = None,
    sleep: Callable[[float], None] = time.sleep,
) -> "Deliverer":
    """The delivery function's Deliverer, sending with the transport (its deadline the settings' send
    timeout). A test or benchmark may hand it its own subscription store, deliveries store, senders (their
    deadlines are the attempts'), retry policy, delivery queue, slow lane, rate limiter, or a `sleep` that records
    the waits for rate-limit slots instead of sleeping them."""
    from hookrelay.aws import table
    from hookrelay.delivery import Deliverer
    from hookrelay.rate_limit import reserve_spacing_seconds
    from hookrelay.senders import Senders
    from hookrelay.slow_lane import SlowLane
    from hookrelay.store.cached_subscriptions import CachedTeamSubscriptions
    from hookrelay.store.deliveries import DynamoDeliveryStore
    from hookrelay.store.rate_limits import DynamoRateLimiter

    store = store or subscription_store(settings)
    return Deliverer(
        deliveries=deliveries or DynamoDeliveryStore(table(settings.deliveries_table)),
        subscriptions=CachedTeamSubscriptions(store),
        subscription_store=store,
        senders=senders or Senders(web=transport(settings)),
        policy=policy or retry_policy(settings),
        delivery_queue=queue or delivery_queue(settings),
        slow_lane=slow_lane
        or SlowLane(slow_lane_queue(settings), marks=store, aws_call_seconds=settings.aws_calls.worst_call_seconds),
        due_shards=settings.due_shards,
        rate_limiter=rate_limiter
        or DynamoRateLimiter(
            table(settings.deliveries_table), spacing_seconds=reserve_spacing_seconds(settings.delivery_containers)
        ),
        aws_call_seconds=settings.aws_calls.worst_call_seconds,
        sleep=sleep,
    )


def ingest(settings: Settings) -> "Ingest":
    from hookrelay.aws import client, table
    from hookrelay.ingest import Ingest
    from hookrelay.queues import Queue
    from hookrelay.store.cached_subscriptions import CachedTeamSubscriptions
    from hookrelay.store.events import DynamoEventStore

    return Ingest(
        subscriptions=CachedTeamSubscriptions(subscription_store(settings), with_slow_marks=True),
        events=DynamoEventStore(table(settings.deliveries_table)),
        delivery_queue=delivery_queue(settings),
        slow_lane=slow_lane_queue(settings),
        events_queue=Queue(client("sqs"), settings.events_queue_url),
        chunk_size=settings.fanout_chunk_size,
    )


def sweeper(
    settings: Settings,
    *,
    due_retries: "DueRetries | None" = None,
    queue: "Queue | None" = None,
    slow_lane: "Queue | None" = None,
) -> "Sweeper":
    """The sweeper function's Sweeper; a test or benchmark may hand it its own view of the retry index and
    queues."""
    from hookrelay.aws import table
    from hookrelay.store.due_retries import DynamoDueRetries
    from hookrelay.sweeper import Sweeper

    return Sweeper(
        due_retries=due_retries or DynamoDueRetries(table(settings.deliveries_table)),
        delivery_queue=queue or delivery_queue(settings),
        slow_lane=slow_lane or slow_lane_queue(settings),
        shards=settings.due_shards,
        aws_call_seconds=settings.aws_calls.worst_call_seconds,
    )


def authenticator(settings: Settings) -> "Authenticator":
    from hookrelay.api_keys import Authenticator
    from hookrelay.aws import client
    from hookrelay.store.api_keys import DynamoCredentials

    return Authenticator(DynamoCredentials(client("dynamodb"), settings.api_keys_table), settings.api_key_cache_seconds)


def api_key_store(settings: Settings) -> "DynamoApiKeyStore":
    """The API keys and portal tokens, as the API and the operator's CLI write them."""
    from hookrelay.aws import table
    from hookrelay.store.api_keys import DynamoApiKeyStore

    return DynamoApiKeyStore(table(settings.api_keys_table))


def subscriptions(settings: Settings, *, tables: Tables | None = None) -> "Subscriptions":
    from hookrelay.subscriptions import Subscriptions

    return Subscriptions(
        subscription_store(settings, tables=tables),
        allow_private=settings.allow_private_endpoints,
        max_per_team=settings.max_subscriptions_per_team,
        rotation_overlap=settings.secret_rotation_overlap,
    )


@dataclass(frozen=True)
class Api:
    """What the API function's routes call."""

    publisher: "EventPublisher"
    subscriptions: "Subscriptions"
    delivery_log: "DeliveryLog"
    portal_tokens: "DynamoApiKeyStore"
    team_limiter: "TeamLimiter"


def delivery_log(
    settings: Settings,
    of_subscriptions: "Subscriptions",
    *,
    tables: Tables | None = None,
    clients: Clients | None = None,
) -> "DeliveryLog":
    from hookrelay.aws import table
    from hookrelay.delivery_log import DeliveryLog
    from hookrelay.store.delivery_log import DynamoDeliveryLogStore
    from hookrelay.store.events import DynamoEventStore

    deliveries_table = (tables or table)(settings.deliveries_table)
    return DeliveryLog(
        subscriptions=of_subscriptions,
        deliveries=DynamoDeliveryLogStore(deliveries_table),
        events=DynamoEventStore(deliveries_table),
        delivery_queue=delivery_queue(settings, clients=clients),
        slow_lane=slow_lane_queue(settings, clients=clients),
        due_shards=settings.due_shards,
    )


def api(settings: Settings) -> Api:
    from hookrelay.aws import client, table
    from hookrelay.publishing import EventPublisher
    from hookrelay.store.request_counts import DynamoRequestCounts
    from hookrelay.team_limits import TeamLimiter, limits

    logic = subscriptions(settings)
    return Api(
        publisher=EventPublisher(client("events"), settings.event_bus, validate_data=settings.validate_event_data),
        subscriptions=logic,
        delivery_log=delivery_log(settings, logic),
        portal_tokens=api_key_store(settings),
        team_limiter=TeamLimiter(
            DynamoRequestCounts(table(settings.deliveries_table)),
            limits(settings.team_requests_per_second, settings.team_request_burst),
        ),
    )
