"""Delivery: batches of the delivery queue and of its slow lane → signed HTTPS requests to the subscriptions'
endpoints."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from hookrelay import wiring
from hookrelay.observability import logger, metrics, tracer
from hookrelay.outcomes import delivery_metrics
from hookrelay.settings import get_settings
from hookrelay.slow_lane import is_slow_lane
from hookrelay.time_budget import TimeBudget

settings = get_settings()
deliverer = wiring.deliverer(settings)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # The records of a batch are sent concurrently (powertools' batch processor runs them one by one);
    # the answer has the same partial-batch shape. The SQS event is read as a plain dict: powertools'
    # data classes package imports every event class it has, at each cold start, for two fields.
    messages = [(record["messageId"], record["body"]) for record in event["Records"]]
    # An event source mapping's batch comes from one queue.
    from_slow_lane = any(
        is_slow_lane(record.get("eventSourceARN", ""), settings.slow_lane_url) for record in event["Records"]
    )
    reports = deliverer.deliver_batch(messages, TimeBudget.of(context), from_slow_lane=from_slow_lane)
    for name, value, unit in delivery_metrics(reports):
        metrics.add_metric(name=name, unit=unit, value=value)
    return {"batchItemFailures": [{"itemIdentifier": report.message_id} for report in reports if report.comes_back]}
