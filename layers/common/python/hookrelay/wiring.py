"""The delivery log's logic put together from the settings, as the API function and the CLI both use it."""

from collections.abc import Callable
from typing import Any

from hookrelay.aws import Table
from hookrelay.delivery_log import DeliveryLog
from hookrelay.queues import Queue
from hookrelay.settings import Settings
from hookrelay.store.deliveries import DynamoDeliveryStore
from hookrelay.store.events import DynamoEventStore
from hookrelay.store.subscriptions import DynamoSubscriptionStore
from hookrelay.subscriptions import Subscriptions


def subscriptions(settings: Settings, table: Callable[[str], Table]) -> Subscriptions:
    return Subscriptions(
        DynamoSubscriptionStore(
            table(settings.subscriptions_table), max_team_bytes=settings.max_subscription_bytes_per_team
        ),
        allow_private=settings.allow_private_endpoints,
        max_per_team=settings.max_subscriptions_per_team,
        rotation_overlap=settings.secret_rotation_overlap,
    )


def delivery_log(
    settings: Settings, of_subscriptions: Subscriptions, table: Callable[[str], Table], client: Callable[[str], Any]
) -> DeliveryLog:
    return DeliveryLog(
        subscriptions=of_subscriptions,
        deliveries=DynamoDeliveryStore(table(settings.deliveries_table)),
        events=DynamoEventStore(table(settings.deliveries_table)),
        delivery_queue=Queue(client("sqs"), settings.delivery_queue_url),
        due_shards=settings.due_shards,
    )
