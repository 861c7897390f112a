"""Sweeper (every minute): due retries from the deliveries table back onto the delivery queue (or the slow lane)."""

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from hookrelay import clock, wiring
from hookrelay.observability import log_failure, logger, metrics, tracer
from hookrelay.settings import get_settings
from hookrelay.time_budget import TimeBudget

sweeper = wiring.sweeper(get_settings())


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
