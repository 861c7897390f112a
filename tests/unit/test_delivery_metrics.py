from aws_lambda_powertools.metrics import MetricUnit

from hookrelay.outcomes import Outcome, Report, delivery_metrics
from hookrelay.senders import AttemptResult


def test_a_batch_counts_each_outcome_and_the_latency_of_each_attempt() -> None:
    reports = [
        Report("m1", Outcome.DELIVERED, AttemptResult(200, 120)),
        Report("m2", Outcome.RETRY_QUEUED, AttemptResult(500, 80)),
        Report("m3", Outcome.RETRY_SCHEDULED, AttemptResult(None, 5000, error="timeout: no answer", timed_out=True)),
        Report("m4", Outcome.GONE, AttemptResult(410, 30)),
        Report("m5", Outcome.DROPPED_DELETED),
        Report("m6", Outcome.ALREADY_DONE),
        Report("m7", Outcome.ERROR),
        Report("m8", Outcome.WAITING),
        Report("m9", Outcome.NOT_STARTED),
    ]
    metrics = delivery_metrics(reports)
    counts = {name: value for name, value, unit in metrics if unit == MetricUnit.Count}
    assert counts == {
        "DeliveryMessagesReceived": 9,
        "DeliveryAttempts": 4,
        "DeliveryAttemptsFailed": 3,
        "DeliveriesDelivered": 1,
        "DeliveryRetriesScheduled": 2,
        "DeliveriesFailed": 1,
        "DeliveriesNotSent": 1,
        "DeliveryErrors": 1,
        "DeliveriesRateLimited": 1,
        "DeliveriesNotStarted": 1,
    }
    latencies = [value for name, value, unit in metrics if name == "DeliveryLatency"]
    assert latencies == [120, 80, 5000, 30]
    assert {unit for name, _, unit in metrics if name == "DeliveryLatency"} == {MetricUnit.Milliseconds}


def test_a_batch_emits_no_zero_valued_count() -> None:
    # Every EMF line is billed as log bytes: a count that stayed 0 is left out (the alarm FILLs a
    # missing DeliveryAttemptsFailed with 0).
    metrics = delivery_metrics(
        [
            Report("m1", Outcome.DELIVERED, AttemptResult(200, 120)),
            Report("m2", Outcome.DELIVERED, AttemptResult(204, 90)),
        ]
    )
    counts = {name: value for name, value, unit in metrics if unit == MetricUnit.Count}
    assert counts == {"DeliveryMessagesReceived": 2, "DeliveryAttempts": 2, "DeliveriesDelivered": 2}
