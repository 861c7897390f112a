"""Ingest: events-queue batches → matching subscriptions → delivery records and delivery-queue messages."""

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from hookrelay import wiring
from hookrelay.events_queue import InvalidEventMessage
from hookrelay.observability import log_failure, logger, metrics, tracer
from hookrelay.settings import get_settings
from hookrelay.time_budget import TimeBudget

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse

# A record, and each further chunk of its fan-out, starts only with more than this left: enough for
# one chunk, the continuation it may enqueue, the batch's last send of held messages and the answer.
RESERVED_SECONDS = 10

ingest = wiring.ingest(get_settings())
# A batch whose every record failed is answered like any other: its records come back through the
# answer, and the function's error metric counts real failures only.
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


class NotStarted(Exception):
    """A record left for a later invocation: too little time remained to fan it out."""


def fan_out(record: SQSRecord, lambda_context: LambdaContext) -> None:
    budget = TimeBudget.of(lambda_context)

    def has_time() -> bool:
        return budget.allows(RESERVED_SECONDS)

    if not has_time():
        # Failed before it starts, the record comes back whole; started, the timeout could cut it off.
        logger.info("not started: too little time left", extra={"message_id": record.message_id})
        raise NotStarted(record.message_id)
    try:
        ingest.process_message(record.message_id, record.body, has_time=has_time)
    except InvalidEventMessage as error:
        # Failing the record leaves it on the queue; after maxReceiveCount receives SQS moves it to the DLQ.
        logger.error("not a hookrelay event", extra={"reason": str(error), "message_id": record.message_id})
        raise
    except Exception as error:
        log_failure("fan-out failed; the record comes back", error, message_id=record.message_id)
        raise
    finally:
        logger.remove_keys(["event_id", "team_id"])


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> "PartialItemFailureResponse":
    records = event.get("Records", [])
    metrics.add_metric(name="EventMessagesReceived", unit=MetricUnit.Count, value=len(records))
    order = ingest.prepare_batch([record["body"] for record in records])
    in_order = {**event, "Records": [records[index] for index in order]}
    answer = process_partial_response(event=in_order, record_handler=fan_out, processor=processor, context=context)
    # The messages fan-outs held go out now; a record with one SQS did not accept must come back.
    failed = {failure["itemIdentifier"] for failure in answer["batchItemFailures"]}
    unsent = ingest.finish_batch() - failed
    answer["batchItemFailures"] += [
        {"itemIdentifier": record["messageId"]} for record in records if record["messageId"] in unsent
    ]
    return answer
