"""Delivery: delivery-queue batches → signed HTTPS requests to the subscriptions' endpoints."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from hookrelay.aws import client, table
from hookrelay.delivery import Deliverer
from hookrelay.observability import logger, metrics, tracer
from hookrelay.outcomes import delivery_metrics
from hookrelay.queues import Queue
from hookrelay.rate_limit import reserve_spacing_seconds
from hookrelay.retry import RetryPolicy, parse_schedule
from hookrelay.settings import get_settings
from hookrelay.store.deliveries import DynamoDeliveryStore
from hookrelay.store.rate_limits import DynamoRateLimiter
from hookrelay.store.subscriptions import CachedTeamSubscriptions, DynamoSubscriptionStore
from hookrelay.time_budget import TimeBudget
from hookrelay.transport import Transport

settings = get_settings()
subscription_store = DynamoSubscriptionStore(table(settings.subscriptions_table))
deliveries_table = table(settings.deliveries_table)
deliverer = Deliverer(
    deliveries=DynamoDeliveryStore(deliveries_table),
    subscriptions=CachedTeamSubscriptions(subscription_store),
    subscription_store=subscription_store,
    transport=Transport(
        allow_private=settings.allow_private_endpoints,
        connect_timeout=settings.send_connect_timeout_seconds,
        total_timeout=settings.send_timeout_seconds,
    ),
    policy=RetryPolicy(parse_schedule(settings.retry_schedule)),
    delivery_queue=Queue(client("sqs"), settings.delivery_queue_url),
    due_shards=settings.due_shards,
    rate_limiter=DynamoRateLimiter(
        deliveries_table, spacing_seconds=reserve_spacing_seconds(settings.delivery_containers)
    ),
    aws_call_seconds=settings.aws_calls.worst_call_seconds,
)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # The records of a batch are sent concurrently (powertools' batch processor runs them one by one);
    # the answer has the same partial-batch shape. The SQS event is read as a plain dict: powertools'
    # data classes package imports every event class it has, at each cold start, for two fields.
    messages = [(record["messageId"], record["body"]) for record in event["Records"]]
    reports = deliverer.deliver_batch(messages, TimeBudget.of(context))
    for name, value, unit in delivery_metrics(reports):
        metrics.add_metric(name=name, unit=unit, value=value)
    return {"batchItemFailures": [{"itemIdentifier": report.message_id} for report in reports if report.comes_back]}
