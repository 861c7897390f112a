"""Rate-limit benchmark (issue 23 item 3): what a rate limit costs in DynamoDB writes, and how hard its key is hit.

    .venv/bin/python benchmarks/rate_limits.py          # full size
    .venv/bin/python benchmarks/rate_limits.py --smoke  # tiny, as the test suite runs it

A simulation over the real code with a fake clock: the delivery logic (hookrelay.delivery.Deliverer), the
slot store (hookrelay.store.rate_limits.DynamoRateLimiter, over an in-memory table that applies its two
conditional updates and counts every write, failed conditions included) and the sweeper
(hookrelay.sweeper.Sweeper, every minute). The delivery queue is simulated: a message is received
`DelaySeconds` after it was sent, in batches of 10, by up to 200 containers (the template's
MaximumConcurrency), each writing one subscription's `rate#` item at most every 2 s. Sends answer 200 at
once; the send time of each is the fake clock plus the wait its container held it for.

P3 goals:
- with `rate_limit: 1` and 10 000 events published at once, the rate limit costs at most 1.1 DynamoDB
  writes per delivery beyond the attempt's own write (rate# writes, waiting records, the listings of
  those waiting on the queue, the sweeper's);
- the `rate#` key never takes more than 100 writes in a second, whatever the backlog and the publish
  rate: also measured with 100 000 events at once at rate_limit 1 (beyond the 24 h backlog limit) and
  2 000 at rate_limit 1 000;
- no one-second window holds more requests than the rate limit; 500 events at rate_limit 5 drain within
  1.2x the ideal 100 s.
"""

import dataclasses
import heapq
import json
import os
import sys
import threading
from collections import Counter, deque
from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from unittest import mock

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "layers" / "common" / "python"), str(REPO / "tests")]
# Each simulated receive logs its waiting attempts: at 100 000 events that was 860 MB in 11 minutes, and
# the run never ended. The figures are counted, not read from the logs.
os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")

from figures import Figure, arguments, report  # noqa: E402
from offline_settings import RESOURCES  # noqa: E402

from hookrelay import clock, wiring  # noqa: E402
from hookrelay.delivery import Deliverer  # noqa: E402
from hookrelay.ingest import new_delivery  # noqa: E402
from hookrelay.outcomes import Outcome as Handled  # noqa: E402
from hookrelay.queues import Message, delivery_message  # noqa: E402
from hookrelay.rate_limit import RATE_KEY_WRITES_PER_SECOND, reserve_spacing_seconds  # noqa: E402
from hookrelay.records import Attempt, Delivery, DeliveryOrigin, Event, Subscription  # noqa: E402
from hookrelay.senders import AttemptResult, Request, Senders  # noqa: E402
from hookrelay.settings import Settings  # noqa: E402
from hookrelay.slow_lane import SlowLane  # noqa: E402
from hookrelay.store.deliveries import AttemptOutcome  # noqa: E402
from hookrelay.store.due_retries import Claim, DueSlice, WaitingAttempt  # noqa: E402
from hookrelay.store.queue_waits import WAITS_PER_ITEM, QueueWait  # noqa: E402
from hookrelay.store.rate_limits import DynamoRateLimiter  # noqa: E402
from hookrelay.time_budget import UNLIMITED  # noqa: E402

START = datetime(2026, 12, 1, 12, 0, 0, tzinfo=UTC)
WRITES_GOAL = 1.1
DRAIN_GOAL = 1.2
BATCH = 10
# A container is busy this long with a batch it only reserves slots for (receive, reads, writes, answer).
BATCH_SECONDS = 0.05
SWEEP_EVERY = timedelta(minutes=1)
SUBSCRIPTION_ID = "00000000-0000-4000-8000-00000000000a"
# The delivery containers simulated (BENCHMARKS.md's figures): each writes a rate# item at most every 2 s.
# The template's default reserves 400 (4 s each); the rate# key's writes a second are the same by design.
CONTAINERS = 200
# A failed send would be retried in a minute (none is expected: the receiver answers 200).
SETTINGS = Settings.from_environment({**RESOURCES, "HOOKRELAY_RETRY_SCHEDULE": "1m"})


class FakeClock:
    def __init__(self) -> None:
        self.now = START

    def utc_now(self) -> datetime:
        """The time as the calling thread sees it: the fake clock, plus what it has waited in its batch."""
        return self.now + timedelta(seconds=Holding.offset())

    def monotonic(self) -> float:
        return (self.now - START).total_seconds()


class ConditionFailed(Exception):
    def __init__(self, item: dict[str, Any] | None) -> None:
        super().__init__("condition failed")
        held = (item or {}).get("next_send_at")
        self.response = {"Item": {"next_send_at": {"N": str(held)}} if held is not None else {}}


class RateTable:
    """The `rate#` items as DynamoDB keeps them, for DynamoRateLimiter's two updates; counts every write
    by the fake second it was made in (a failed condition is billed as a write too)."""

    def __init__(self, fake_clock: FakeClock) -> None:
        self.items: dict[str, dict[str, Any]] = {}
        self.writes_at: list[float] = []
        self.reads = 0
        self._clock = fake_clock
        self.client = type("Client", (), {"exceptions": type("Exceptions", (), {})()})()
        self.client.exceptions.ConditionalCheckFailedException = ConditionFailed
        self._lock = threading.Lock()

    def get_item(self, Key: dict[str, str], ConsistentRead: bool) -> dict[str, Any]:
        with self._lock:
            self.reads += 1
            item = self.items.get(Key["delivery_id"])
            return {"Item": dict(item)} if item else {}

    def update_item(self, **call: Any) -> dict[str, Any]:
        with self._lock:
            self.writes_at.append(self._clock.monotonic() + Holding.offset())
            key, values = call["Key"]["delivery_id"], call["ExpressionAttributeValues"]
            item = self.items.get(key)
            held = None if item is None else item["next_send_at"]
            if call["UpdateExpression"].startswith("SET"):
                if held is not None and held > values[":now"]:
                    raise ConditionFailed(item)
                self.items[key] = {"next_send_at": values[":next"]}
                return {}
            if held is None or not values[":now"] < held <= values[":latest"]:
                raise ConditionFailed(item)
            self.items[key] = {"next_send_at": held + values[":span"]}
            return {"Attributes": dict(self.items[key])}


class Holding:
    """What a thread of a container has waited in its batch so far (Deliverer's sleep before a send, the
    slot store's wait for its turn), on top of the fake clock; the longest any thread held."""

    _local = threading.local()
    longest = 0.0

    @classmethod
    def offset(cls) -> float:
        return float(getattr(cls._local, "seconds", 0.0))

    @classmethod
    def hold(cls, seconds: float) -> None:
        cls._local.seconds = cls.offset() + seconds
        cls.longest = max(cls.longest, cls._local.seconds)

    @classmethod
    def reset(cls) -> None:
        cls._local.seconds = 0.0


class Deliveries:
    """Delivery records in memory, counting the waiting records' writes; also the retry index's wait
    partitions as the sweeper reads them (at once, no lag)."""

    def __init__(self, event: Event) -> None:
        self.event = event
        self.items: dict[str, Delivery] = {}
        self.waiting_writes = 0
        self.listing_writes = 0
        self.attempt_writes = 0
        self.position_writes = 0
        self.wait_index: dict[str, tuple[str, str]] = {}  # delivery id: (shard, slot)
        self.positions: dict[str, dict[str, Any]] = {}

    def get_many(self, delivery_ids: Sequence[str], origins: Mapping[str, DeliveryOrigin]) -> dict[str, Delivery]:
        found = {}
        for key in delivery_ids:
            if key in self.items:
                found[key] = self.items[key]
            elif origin := origins.get(key):
                found[key] = Delivery(**vars(origin), id=key, updated_at=origin.created_at, event=self.event)
        return found

    def record_attempt(self, delivery: Delivery, number: int, attempt: Attempt, outcome: AttemptOutcome) -> bool:
        self.attempt_writes += 1
        self.items[delivery.id] = dataclasses.replace(delivery, attempt_count=number, status=outcome.status)
        self.wait_index.pop(delivery.id, None)
        return True

    def hold_slot(
        self,
        delivery: Delivery,
        number: int,
        slot_at: str,
        *,
        due_at: str | None,
        due_shard: str | None,
        replacing: str | None = None,
    ) -> str | None:
        self.waiting_writes += 1
        held = self.items.get(delivery.id)
        if held and held.status == "waiting" and held.next_attempt_at and held.next_attempt_at != replacing:
            return held.next_attempt_at
        self.items[delivery.id] = dataclasses.replace(delivery, status="waiting", next_attempt_at=slot_at)
        if due_shard and due_at:
            self.wait_index[delivery.id] = (due_shard, due_at)
        return slot_at

    def release_test_slot(self, subscription_id: str, delivery_id: str) -> None:
        raise AssertionError("no test event here")

    def list_queue_waits(self, waits: Sequence[QueueWait], listed_at: datetime) -> None:
        self.listing_writes += -(-len(waits) // WAITS_PER_ITEM)

    # The sweeper's view (DueRetries).
    def due(self, shard: str, now: str, limit: int, after: dict[str, Any] | None = None) -> DueSlice:
        return DueSlice([], None)

    def claim(self, delivery_id: str, due_at: str, lease_until: str) -> Claim | None:
        raise AssertionError("no retry here")

    def waiting(self, shard: str, until: str, after: dict[str, Any] | None, limit: int) -> DueSlice:
        start = (after["due_at"], after["delivery_id"]) if after else ("", "")
        rows = sorted((slot, key) for key, (in_shard, slot) in self.wait_index.items() if in_shard == shard)
        page = [(key, slot) for slot, key in rows if start < (slot, key) and slot <= until][:limit]
        if not page:
            return DueSlice([], None)
        return DueSlice(page, {"due_shard": shard, "due_at": page[-1][1], "delivery_id": page[-1][0]})

    def waiting_attempts(self, delivery_ids: Sequence[str]) -> dict[str, WaitingAttempt]:
        return {
            key: WaitingAttempt(
                self.items[key].attempt_count + 1, self.items[key].next_attempt_at or "", self.items[key].team_id
            )
            for key in delivery_ids
            if key in self.items and self.items[key].status == "waiting"
        }

    def sweep_positions(self) -> dict[str, dict[str, Any]]:
        return dict(self.positions)

    def keep_sweep_positions(self, positions: dict[str, dict[str, Any]]) -> None:
        self.position_writes += 1
        self.positions = dict(positions)


class Subscriptions:
    def __init__(self, subscription: Subscription) -> None:
        self.subscription = subscription

    def all_of_team(self, team_id: str) -> list[Subscription]:
        return [self.subscription]

    def versions(self, team_ids: Collection[str]) -> dict[str, int]:
        return {}


class Receiver:
    """The endpoint: answers 200 at once; keeps when each request came (fake seconds)."""

    deadline_seconds = 15.0

    def __init__(self, fake_clock: FakeClock) -> None:
        self._clock = fake_clock
        self.arrivals: list[float] = []
        self._lock = threading.Lock()

    def send(self, request: Request, deadline_seconds: float) -> AttemptResult:
        with self._lock:
            self.arrivals.append(self._clock.monotonic() + Holding.offset())
        Holding.reset()
        return AttemptResult(200, 1)


class Queue:
    """The delivery queue: a message is received `DelaySeconds` after it was sent."""

    def __init__(self, fake_clock: FakeClock) -> None:
        self._clock = fake_clock
        self.visible: list[tuple[float, int, str]] = []
        self._sent = 0
        self._lock = threading.Lock()

    def send(self, messages: Sequence[Message]) -> None:
        with self._lock:
            for message in messages:
                self._sent += 1
                at = self._clock.monotonic() + message.delay_seconds
                heapq.heappush(self.visible, (at, self._sent, message.body))

    def receive(self, now: float) -> list[tuple[str, str]]:
        batch: list[tuple[str, str]] = []
        while self.visible and self.visible[0][0] <= now and len(batch) < BATCH:
            _, number, body = heapq.heappop(self.visible)
            batch.append((f"m{number}", body))
        return batch


@dataclasses.dataclass
class Outcome:
    deliveries: int
    delivered: int
    dropped: int
    rate_writes: int
    waiting_writes: int
    listing_writes: int
    sweeper_writes: int
    most_rate_writes_in_a_second: int
    most_requests_in_a_second: int
    drained_seconds: float


def most_in_one_second(times: list[float]) -> int:
    """The most of `times` any window [t, t + 1 s) holds (to the µs, as slots are taken)."""
    most = 0
    window: deque[int] = deque()
    for at in sorted(round(each * 1_000_000) for each in times):
        window.append(at)
        while window[0] <= at - 1_000_000:
            window.popleft()
        most = max(most, len(window))
    return most


def simulate(rate_limit: int, events: int, *, until_seconds: float | None = None) -> Outcome:
    """`events` published at once to one subscription with `rate_limit`; simulated until drained (or
    `until_seconds`)."""
    fake_clock = FakeClock()
    subscription = Subscription(
        id=SUBSCRIPTION_ID,
        team_id="acme",
        endpoint="https://example.com/hook",
        secret_key="whsec_" + "c2VjcmV0LXNlY3JldC1zZWNyZXQ=",
        subscribed_events=["*"],
        rate_limit=rate_limit,
        created_at=clock.iso(START),
        updated_at=clock.iso(START),
    )
    event = Event(
        event_id="0f29a0a2-3a6f-44a4-b2a2-5d7b3f1b1f9b",
        event_name="signer.done",
        event_time=clock.iso(START),
        team_id="acme",
        data={},
    )
    deliveries, rate_table, receiver, queue = (
        Deliveries(event),
        RateTable(fake_clock),
        Receiver(fake_clock),
        Queue(fake_clock),
    )
    store = Subscriptions(subscription)

    def container() -> Deliverer:
        return wiring.deliverer(
            SETTINGS,
            store=store,  # type: ignore[arg-type]
            deliveries=deliveries,
            senders=Senders(web=receiver),
            queue=queue,  # type: ignore[arg-type]
            slow_lane=SlowLane(queue),  # type: ignore[arg-type]
            rate_limiter=DynamoRateLimiter(
                rate_table,
                spacing_seconds=reserve_spacing_seconds(CONTAINERS),
                monotonic=lambda: fake_clock.monotonic() + Holding.offset(),
                sleep=Holding.hold,
            ),
            sleep=Holding.hold,
        )

    containers = [container() for _ in range(CONTAINERS)]
    # Lambda starts five containers on a queue with messages, and up to 300 more a minute.
    free_at = [float(index // 5) for index in range(len(containers))]
    sweeper = wiring.sweeper(SETTINGS, due_retries=deliveries, queue=queue, slow_lane=queue)  # type: ignore[arg-type]
    origins = []
    for number in range(events):
        published = dataclasses.replace(event, event_id=f"0f29a0a2-3a6f-44a4-b2a2-{number:012d}")
        origins.append(new_delivery(published, subscription))
    queue.send([delivery_message(each.id, 1, team_id=each.team_id, origin=each.origin()) for each in origins])
    outcomes: Counter[Handled] = Counter()
    next_sweep = SWEEP_EVERY.total_seconds()
    with mock.patch.object(clock, "utc_now", fake_clock.utc_now):
        while queue.visible or deliveries.wait_index:
            now = fake_clock.monotonic()
            if until_seconds is not None and now > until_seconds:
                break
            for index in range(len(containers)):
                if free_at[index] > now:
                    continue
                batch = queue.receive(now)
                if not batch:
                    break
                Holding.reset()
                Holding.longest = 0.0
                reports = containers[index].deliver_batch(batch, UNLIMITED)
                outcomes.update(report.outcome for report in reports)
                free_at[index] = now + BATCH_SECONDS + Holding.longest
            upcoming = [next_sweep]
            if queue.visible:
                ready_at = queue.visible[0][0]
                busy = [at for at in free_at if at > now]
                upcoming.append(ready_at if ready_at > now else min(busy, default=now + BATCH_SECONDS))
            step = max(min(upcoming), now + 0.001)
            if step >= next_sweep:
                fake_clock.now = START + timedelta(seconds=next_sweep)
                sweeper.sweep(fake_clock.now, UNLIMITED)
                next_sweep += SWEEP_EVERY.total_seconds()
                continue
            fake_clock.now = START + timedelta(seconds=step)
    return Outcome(
        deliveries=events,
        delivered=outcomes[Handled.DELIVERED],
        dropped=outcomes[Handled.DROPPED_BACKLOG_FULL],
        rate_writes=len(rate_table.writes_at),
        waiting_writes=deliveries.waiting_writes,
        listing_writes=deliveries.listing_writes,
        sweeper_writes=deliveries.position_writes,
        most_rate_writes_in_a_second=most_in_one_second(rate_table.writes_at),
        most_requests_in_a_second=most_in_one_second(receiver.arrivals),
        drained_seconds=max(receiver.arrivals, default=0.0),
    )


def figures(smoke: bool) -> list[Figure]:
    results: list[Figure] = []
    events = 300 if smoke else 10_000
    burst = simulate(1, events)
    extra = burst.rate_writes + burst.waiting_writes + burst.listing_writes + burst.sweeper_writes
    print(json.dumps(dataclasses.asdict(burst)), flush=True)
    results.append(
        Figure(
            "P3",
            f"rate_limit 1, {events} events at once: DynamoDB writes per delivery for its rate limit",
            f"{burst.rate_writes} rate# + {burst.waiting_writes} waiting records + {burst.listing_writes} listings of"
            f" those waiting on the queue + {burst.sweeper_writes} sweeper for {burst.delivered} delivered",
            "",
            f"{extra / events:.3f} ({extra / events / WRITES_GOAL:.2f} of the goal)",
            f"<= {WRITES_GOAL}",
            extra / events <= WRITES_GOAL and burst.delivered == events,
        )
    )
    heavy = [burst]
    heavy.append(simulate(1, 3_000 if smoke else 100_000, until_seconds=150))
    # Past a few thousand events at this rate the fake clock's millisecond steps make the run last hours.
    heavy.append(simulate(1000, 300 if smoke else 2_000))
    for run, rate in zip(heavy, (1, 1, 1000), strict=True):
        print(json.dumps(dataclasses.asdict(run)), flush=True)
        results.append(
            Figure(
                "P3",
                f"most writes the rate# key takes in a second, rate_limit {rate}, {run.deliveries} events at once",
                f"{run.most_rate_writes_in_a_second} writes",
                "",
                f"{run.most_rate_writes_in_a_second / RATE_KEY_WRITES_PER_SECOND:.2f} of the goal",
                f"<= {RATE_KEY_WRITES_PER_SECOND}",
                run.most_rate_writes_in_a_second <= RATE_KEY_WRITES_PER_SECOND,
            )
        )
    drain = simulate(5, 500)
    ideal = 500 / 5
    print(json.dumps(dataclasses.asdict(drain)), flush=True)
    results.append(
        Figure(
            "P3",
            "500 events at once at rate_limit 5 (simulated): time to drain, most requests in a second",
            f"{drain.drained_seconds:.1f} s, at most {drain.most_requests_in_a_second} in a second",
            f"ideal {ideal:.0f} s",
            f"{drain.drained_seconds / ideal:.2f}x",
            f"<= {DRAIN_GOAL}x, <= 5 a second",
            drain.drained_seconds <= ideal * DRAIN_GOAL and drain.most_requests_in_a_second <= 5,
        )
    )
    return results


def main() -> None:
    options = arguments(__doc__).parse_args()
    report(figures(options.smoke), options.figures)


if __name__ == "__main__":
    main()
