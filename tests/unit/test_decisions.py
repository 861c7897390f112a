import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from hookrelay import clock
from hookrelay.decisions import ClearFailing, Decision, Disable, MarkFailing, Retry, decide, health_change
from hookrelay.ingest import new_delivery
from hookrelay.outcomes import Outcome
from hookrelay.records import Delivery, Event, Subscription
from hookrelay.retry import DEFAULT_SCHEDULE, SWEEPER_LEASE, RetryPolicy, parse_schedule
from hookrelay.senders import AttemptResult

NOW = datetime(2026, 3, 2, 10, 0, 0, tzinfo=UTC)
AT = clock.iso(NOW)
POLICY = RetryPolicy(parse_schedule(DEFAULT_SCHEDULE), random=lambda: 0.5)  # no jitter
SUBSCRIPTION = Subscription(
    id="sub-1",
    team_id="team-a",
    endpoint="https://hooks.example.com/",
    subscribed_events=["*"],
    secret_key="whsec_x",
    created_at=AT,
    updated_at=AT,
)
EVENT = Event(event_id="evt-1", event_name="signature_request.done", event_time=AT, team_id="team-a", data={})
OK, SERVER_ERROR, GONE = AttemptResult(200, 12), AttemptResult(500, 12), AttemptResult(410, 12)
TIMEOUT = AttemptResult(None, 15000, error="timeout: no answer", timed_out=True)
THROTTLED = AttemptResult(429, 12, retry_after="300")
UNAVAILABLE_SOON = AttemptResult(503, 12, retry_after="120")
THROTTLED_UNSAID = AttemptResult(429, 12)


def delivery(attempts_made: int = 0, test: bool = False) -> Delivery:
    return dataclasses.replace(new_delivery(EVENT, SUBSCRIPTION), attempt_count=attempts_made, test=test)


def subscription(**fields: object) -> Subscription:
    return dataclasses.replace(SUBSCRIPTION, **fields)  # type: ignore[arg-type]


def retry_in(delay: timedelta) -> Retry:
    return Retry(NOW + delay, delay)


FAILING_FOR = {days: clock.iso(NOW - timedelta(days=days)) for days in (1, 5)}
IN_2_MINUTES = retry_in(timedelta(minutes=2))  # the schedule's first step
GONE_REASON = f"the endpoint answered 410 Gone to delivery {delivery().id} on {AT}"


@pytest.mark.parametrize(
    ("result", "attempts_made", "fields", "expected"),
    [
        # 2xx: delivered; a run of failures ends.
        (OK, 0, {}, Decision(Outcome.DELIVERED)),
        (OK, 3, {"failing_since": FAILING_FOR[1]}, Decision(Outcome.DELIVERED, health=ClearFailing())),
        # 410 Gone: failed for good, the subscription disabled, whatever the schedule has left.
        (GONE, 0, {}, Decision(Outcome.GONE, health=Disable(GONE_REASON, AT))),
        # Other failures: the schedule's step, queued up to 15 minutes, else scheduled for the sweeper.
        (SERVER_ERROR, 0, {}, Decision(Outcome.RETRY_QUEUED, IN_2_MINUTES, MarkFailing(AT))),
        (TIMEOUT, 1, {"failing_since": FAILING_FOR[1]}, Decision(Outcome.RETRY_QUEUED, retry_in(timedelta(minutes=6)))),
        (SERVER_ERROR, 2, {}, Decision(Outcome.RETRY_SCHEDULED, retry_in(timedelta(minutes=30)), MarkFailing(AT))),
        # 429/503 with Retry-After: waits as asked (clamped); without, the schedule's step.
        (THROTTLED, 0, {}, Decision(Outcome.RETRY_QUEUED, retry_in(timedelta(seconds=300)), MarkFailing(AT))),
        (UNAVAILABLE_SOON, 3, {}, Decision(Outcome.RETRY_QUEUED, retry_in(timedelta(seconds=120)), MarkFailing(AT))),
        (THROTTLED_UNSAID, 0, {}, Decision(Outcome.RETRY_QUEUED, IN_2_MINUTES, MarkFailing(AT))),
        # The last attempt of the schedule: failed for good.
        (SERVER_ERROR, 8, {}, Decision(Outcome.FAILED, health=MarkFailing(AT))),
        # auto_retry off: only a first attempt that timed out is tried once more.
        (SERVER_ERROR, 0, {"auto_retry": False}, Decision(Outcome.FAILED, health=MarkFailing(AT))),
        (
            TIMEOUT,
            0,
            {"auto_retry": False},
            Decision(Outcome.RETRY_QUEUED, IN_2_MINUTES, MarkFailing(AT)),
        ),
        (TIMEOUT, 1, {"auto_retry": False}, Decision(Outcome.FAILED, health=MarkFailing(AT))),
        # Failing for 5 days: the subscription is disabled, with the run's start kept.
        (
            SERVER_ERROR,
            0,
            {"failing_since": FAILING_FOR[5]},
            Decision(
                Outcome.RETRY_QUEUED,
                IN_2_MINUTES,
                Disable(f"every delivery attempt has failed since {FAILING_FOR[5]}", AT, FAILING_FOR[5]),
            ),
        ),
    ],
    ids=[
        "2xx",
        "2xx-ends-failing-run",
        "410",
        "5xx-first",
        "timeout-in-failing-run",
        "5xx-past-queue-delay",
        "429-retry-after",
        "503-retry-after",
        "429-without-retry-after",
        "last-attempt",
        "no-auto-retry",
        "no-auto-retry-first-timeout",
        "no-auto-retry-second-timeout",
        "failing-5-days",
    ],
)
def test_what_follows_an_attempt(
    result: AttemptResult, attempts_made: int, fields: dict[str, object], expected: Decision
) -> None:
    decision = decide(result, delivery(attempts_made), subscription(**fields), POLICY, sent_at=NOW, answered_at=NOW)
    assert decision == expected


@pytest.mark.parametrize(
    ("retry", "status", "due_at"),
    [
        (retry_in(timedelta(minutes=15)), "pending", NOW + timedelta(minutes=15) + SWEEPER_LEASE),
        (retry_in(timedelta(minutes=16)), "scheduled", NOW + timedelta(minutes=16)),
    ],
)
def test_a_retry_within_a_queue_delay_is_queued_and_rescued_by_the_sweeper_after_a_lease(
    retry: Retry, status: str, due_at: datetime
) -> None:
    outcome = Outcome.RETRY_QUEUED if status == "pending" else Outcome.RETRY_SCHEDULED
    assert (Decision(outcome, retry).status, retry.due_at) == (status, due_at)


@pytest.mark.parametrize(
    ("outcome", "status"), [(Outcome.DELIVERED, "delivered"), (Outcome.FAILED, "failed"), (Outcome.GONE, "failed")]
)
def test_an_attempt_without_a_retry_ends_its_delivery(outcome: Outcome, status: str) -> None:
    assert Decision(outcome).status == status


def test_a_test_event_frees_its_slot_once_its_attempt_is_recorded() -> None:
    assert decide(OK, delivery(test=True), SUBSCRIPTION, POLICY, sent_at=NOW, answered_at=NOW).frees_test_slot
    assert decide(SERVER_ERROR, delivery(test=True), SUBSCRIPTION, POLICY, sent_at=NOW, answered_at=NOW).frees_test_slot
    assert not decide(OK, delivery(), SUBSCRIPTION, POLICY, sent_at=NOW, answered_at=NOW).frees_test_slot


def test_a_steadily_failing_or_succeeding_endpoint_costs_no_health_write() -> None:
    failing = subscription(failing_since=FAILING_FOR[1])
    assert health_change(failing, "d-1", 500, False, AT) is None
    assert health_change(SUBSCRIPTION, "d-1", 200, True, AT) is None


def test_the_failing_run_disables_at_exactly_five_days() -> None:
    almost = clock.iso(NOW - timedelta(days=5) + timedelta(milliseconds=1))
    assert health_change(subscription(failing_since=almost), "d-1", None, False, AT) is None
    assert isinstance(health_change(subscription(failing_since=FAILING_FOR[5]), "d-1", None, False, AT), Disable)


def test_a_retry_counts_from_the_answer_not_from_the_send() -> None:
    # A send answered 12 s after it started (a slow endpoint, a busy container), 429 with Retry-After 61:
    # timed from the send, the retry would come 49 s after the answer (make test's e2e saw 48.6 s).
    answered = NOW + timedelta(seconds=12)
    result = AttemptResult(429, 12_000, retry_after="61")
    decision = decide(result, delivery(1), SUBSCRIPTION, POLICY, sent_at=NOW, answered_at=answered)
    assert decision.retry is not None and decision.retry.at == answered + timedelta(seconds=61)
    assert decide(SERVER_ERROR, delivery(1), SUBSCRIPTION, POLICY, sent_at=NOW, answered_at=answered).retry == Retry(
        answered + timedelta(minutes=6), timedelta(minutes=6)
    )
    # The endpoint's failing run starts when the request was sent, as its attempt says.
    failed = decide(SERVER_ERROR, delivery(1), SUBSCRIPTION, POLICY, sent_at=NOW, answered_at=answered)
    assert failed.health == MarkFailing(clock.iso(NOW))
