"""Sweeper (every minute): due retries from the deliveries table back onto the delivery queue."""

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from hookrelay import clock
from hookrelay.aws import client, table
from hookrelay.observability import log_failure, logger, metrics, tracer
from hookrelay.queues import Queue
from hookrelay.settings import get_settings
from hookrelay.store.due_retries import DynamoDueRetries
from hookrelay.sweeper import Sweeper
from hookrelay.time_budget import TimeBudget

settings = get_settings()
sweeper = Sweeper(
    due_retries=DynamoDueRetries(table(settings.deliveries_table)),
    delivery_queue=Queue(client("sqs"), settings.delivery_queue_url),
    shards=settings.due_shards,
    aws_call_seconds=settings.aws_calls.worst_call_seconds,
)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        enqueued = sweeper.sweep(clock.utc_now(), TimeBudget.of(context))
    except Exception as error:
        log_failure("sweep failed; the next run sweeps again", error)
        raise
    metrics.add_metric(name="RetriesEnqueued", unit=MetricUnit.Count, value=enqueued)
    logger.info("swept", extra={"enqueued": enqueued})
    return {"enqueued": enqueued}
