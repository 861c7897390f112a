"""What handling one delivery-queue message did (SPEC §4): its outcome, and the batch's metrics from them."""

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from aws_lambda_powertools.metrics import MetricUnit

from hookrelay.delivery_jobs import Job
from hookrelay.observability import logger
from hookrelay.senders import AttemptResult


class Outcome(StrEnum):
    """How handling a message ended. The values are what logs show in their `outcome` field."""

    DELIVERED = "delivered"
    # A retry whose message is back on the delivery queue, with a delay.
    RETRY_QUEUED = "pending"
    # A retry further than a queue delay, left in the due index for the sweeper.
    RETRY_SCHEDULED = "scheduled"
    FAILED = "failed"
    # Failed for good, and its subscription disabled: the endpoint answered 410 Gone.
    GONE = "failed: subscription disabled (410 Gone)"
    # Recorded failed without a send.
    DROPPED_DELETED = "dropped: subscription deleted"
    DROPPED_DISABLED = "dropped: subscription disabled"
    DROPPED_BACKLOG_FULL = "dropped: rate limit backlog full"
    # The attempt was recorded already (an SQS duplicate, a repeated fan-out, a message late for it).
    ALREADY_DONE = "already done"
    UNKNOWN_DELIVERY = "unknown delivery"
    # Not sent from the delivery queue: its endpoint answered slowly, so it waits on the slow lane
    # (hookrelay.slow_lane), where it is sent.
    MOVED_TO_SLOW_LANE = "moved to the slow lane"
    # Waiting on the queue, or in the wait index, for its subscription's rate-limit slot.
    WAITING = "waiting"
    # Left untouched (nothing sent, nothing recorded): too little of the invocation's time was left.
    NOT_STARTED = "not started: too little time left"
    # Its handling raised: it fails alone and SQS receives it again.
    ERROR = "error"

    @property
    def comes_back(self) -> bool:
        """Whether SQS must receive the message again (the batch's answer names it)."""
        return self in _COMES_BACK


_COMES_BACK = frozenset({Outcome.ERROR, Outcome.NOT_STARTED})
_RETRIES = frozenset({Outcome.RETRY_QUEUED, Outcome.RETRY_SCHEDULED})
_FAILED = frozenset({Outcome.FAILED, Outcome.GONE})
_DROPPED = frozenset({Outcome.DROPPED_DELETED, Outcome.DROPPED_DISABLED, Outcome.DROPPED_BACKLOG_FULL})


@dataclass(frozen=True)
class Report:
    """What handling one delivery-queue message did: an outcome, and the attempt's result if one was made."""

    message_id: str
    outcome: Outcome
    result: AttemptResult | None = None
    subscription_id: str | None = None
    event_id: str | None = None

    @property
    def comes_back(self) -> bool:
        return self.outcome.comes_back


def delivery_metrics(reports: Sequence[Report]) -> list[tuple[str, float, MetricUnit]]:
    """The EMF metrics of a batch (names the template's alarms and dashboard read)."""
    attempts = [report.result for report in reports if report.result is not None]
    outcomes = [report.outcome for report in reports]
    counts = {
        "DeliveryMessagesReceived": len(reports),
        "DeliveryAttempts": len(attempts),
        "DeliveryAttemptsFailed": sum(not result.delivered for result in attempts),
        "DeliveriesDelivered": outcomes.count(Outcome.DELIVERED),
        "DeliveryRetriesScheduled": sum(outcome in _RETRIES for outcome in outcomes),
        "DeliveriesFailed": sum(outcome in _FAILED for outcome in outcomes),
        "DeliveriesNotSent": sum(outcome in _DROPPED for outcome in outcomes),
        "DeliveriesRateLimited": outcomes.count(Outcome.WAITING),
        "DeliveriesMovedToSlowLane": outcomes.count(Outcome.MOVED_TO_SLOW_LANE),
        "DeliveriesNotStarted": outcomes.count(Outcome.NOT_STARTED),
        "DeliveryErrors": outcomes.count(Outcome.ERROR),
    }
    latencies = [("DeliveryLatency", float(result.latency_ms), MetricUnit.Milliseconds) for result in attempts]
    # A count left at 0 is left out: each is billed as log bytes, and the alarm fills a missing one with 0.
    return [(name, float(count), MetricUnit.Count) for name, count in counts.items() if count] + latencies


def logged(job: Job, report: Report) -> Report:
    """Log an attempt that did not deliver; delivered ones are counted by metrics and kept on the record."""
    if report.outcome is Outcome.DELIVERED:
        return report
    result = report.result
    logger.info(
        "delivery attempt",
        extra={
            "message_id": report.message_id,
            "delivery_id": job.delivery_id,
            "attempt": job.attempt,
            "subscription_id": report.subscription_id,
            "event_id": report.event_id,
            "outcome": report.outcome,
            "status_code": result.status_code if result else None,
            "latency_ms": result.latency_ms if result else None,
            "error": result.error if result else None,
        },
    )
    return report
