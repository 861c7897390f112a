"""Delivery benchmark: batch concurrency, and the delivery path's cost over a bare HTTP client.

    .venv/bin/python benchmarks/delivery.py          # full size
    .venv/bin/python benchmarks/delivery.py --smoke  # tiny, as the test suite runs it

Both parts send real HTTP requests to receivers on 127.0.0.1. The data access is stubbed at the
store interfaces (in memory), so the figures are render + sign + send + bookkeeping, without AWS
latency; benchmarks/ingest.py counts the AWS calls.

P1: one SQS batch of 10 deliveries to a receiver that answers after 200 ms, against one delivery.
    Goal: at most 1.1x (the sends run concurrently).
P2: N deliveries one after another through the real delivery logic, against a keep-alive
    requests.Session.post loop of the same requests (body and headers, as the receiver got them) to
    the same receiver: the difference is render, sign, the attempt's deadline and address check, and
    bookkeeping. Goal: at most 1.2x. Also reported against a urllib3 PoolManager loop: the transport
    sends with urllib3 alone, which is cheaper than requests, so that ratio is the path's cost over its
    own client. The three take turns of P2_TURN sends; the figure is the median of
    the turns' ratios (on a shared machine, times taken apart pair a quiet moment with a busy one).
"""

import dataclasses
import itertools
import statistics
import sys
import time
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from pathlib import Path

import requests
import urllib3

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "layers" / "common" / "python"), str(REPO / "tests")]

from figures import Figure, arguments, report  # noqa: E402
from offline_settings import RESOURCES  # noqa: E402
from receivers import Answer, receiver  # noqa: E402

from hookrelay import clock, wiring  # noqa: E402
from hookrelay.delivery import Deliverer  # noqa: E402
from hookrelay.delivery_jobs import Job  # noqa: E402
from hookrelay.ingest import new_delivery  # noqa: E402
from hookrelay.queues import Message  # noqa: E402
from hookrelay.records import Attempt, Delivery, DeliveryOrigin, Event, Subscription  # noqa: E402
from hookrelay.settings import Settings  # noqa: E402
from hookrelay.slow_lane import SlowLane  # noqa: E402
from hookrelay.store.deliveries import AttemptOutcome  # noqa: E402
from hookrelay.time_budget import UNLIMITED  # noqa: E402

P1_GOAL = 1.1
P2_GOAL = 1.2
# The path and the raw loop take turns of this many sends, so that a burst of load on the shared
# machine falls on both alike.
P2_TURN = 20
SECRET = "whsec_" + "c2VjcmV0LXNlY3JldC1zZWNyZXQ="
# The receivers are on 127.0.0.1; a failed send would be retried in 2 minutes (none is expected).
SETTINGS = Settings.from_environment(
    {**RESOURCES, "HOOKRELAY_ALLOW_PRIVATE_ENDPOINTS": "true", "HOOKRELAY_RETRY_SCHEDULE": "2m"}
)


class MemoryDeliveries:
    def __init__(self) -> None:
        self.items: dict[str, Delivery] = {}

    def create_pending(self, deliveries: Sequence[Delivery]) -> list[Delivery]:
        self.items.update((delivery.id, delivery) for delivery in deliveries)
        return list(deliveries)

    def get_many(self, delivery_ids: Sequence[str], origins: Mapping[str, DeliveryOrigin]) -> dict[str, Delivery]:
        return {key: self.items[key] for key in delivery_ids if key in self.items}

    def record_attempt(self, delivery: Delivery, number: int, attempt: Attempt, outcome: AttemptOutcome) -> bool:
        self.items[delivery.id] = dataclasses.replace(delivery, attempt_count=number, status=outcome.status)
        return True

    def release_test_slot(self, subscription_id: str, delivery_id: str) -> None:
        raise AssertionError("no test event in the benchmark")


class MemorySubscriptions:
    def __init__(self, subscriptions: list[Subscription]) -> None:
        self.subscriptions = subscriptions

    def all_of_team(self, team_id: str) -> list[Subscription]:
        return self.subscriptions

    def versions(self, team_ids: Collection[str]) -> dict[str, int]:
        return {}

    def changed_between(self, team_id: str, after: int, upto: int) -> set[str] | None:
        raise AssertionError("the benchmark's team never changes")

    def some_of_team(self, team_id: str, subscription_ids: Collection[str]) -> list[Subscription]:
        raise AssertionError("the benchmark's team never changes")

    def disable(
        self, team_id: str, subscription_id: str, reason: str, at: str, *, failing_since: str | None = None
    ) -> Subscription | None:
        raise AssertionError("not expected in the benchmark")

    def set_failing_since(self, team_id: str, subscription_id: str, since: str | None) -> Subscription | None:
        raise AssertionError("not expected in the benchmark")


class NoQueue:
    def send(self, messages: Sequence[Message]) -> None:
        raise AssertionError(f"no retry expected, got {len(messages)}")


class Unlimited:
    """The benchmark's subscriptions have no rate limit: the limiter is never asked."""

    def reserve(self, subscription_id: str, rate_limit: int, count: int, now: datetime) -> list[datetime]:
        raise AssertionError("no rate limit expected")


def world(port: int, count: int) -> tuple[Deliverer, list[str]]:
    now = clock.now_iso()
    subscriptions = [
        Subscription(
            id=f"00000000-0000-4000-8000-{index:012d}",
            team_id="acme",
            endpoint=f"http://127.0.0.1:{port}/hook",
            secret_key=SECRET,
            subscribed_events=["*"],
            created_at=now,
            updated_at=now,
        )
        for index in range(count)
    ]
    deliveries = MemoryDeliveries()
    event = Event(
        event_id="0f29a0a2-3a6f-44a4-b2a2-5d7b3f1b1f9b",
        event_name="signature_request.done",
        event_time=now,
        team_id="acme",
        data={"signature_request": {"id": "a7f3c1e2", "status": "done", "name": "Employment contract"}},
    )
    created = deliveries.create_pending([new_delivery(event, subscription) for subscription in subscriptions])
    deliverer = wiring.deliverer(
        SETTINGS,
        store=MemorySubscriptions(subscriptions),  # type: ignore[arg-type]
        deliveries=deliveries,  # type: ignore[arg-type]  # no subscription has a rate limit: no slot is held
        queue=NoQueue(),  # type: ignore[arg-type]
        slow_lane=SlowLane(NoQueue()),  # type: ignore[arg-type]
        rate_limiter=Unlimited(),
    )
    return deliverer, [delivery.id for delivery in created]


def p1_concurrency(repeat: int) -> Figure:
    with receiver(lambda _: Answer(delay_seconds=0.2)) as slow:
        one, batch = [], []
        for _ in range(repeat):
            deliverer, ids = world(slow.port, 1)
            start = time.perf_counter()
            (report,) = deliverer.deliver_batch([("m0", f'{{"delivery_id": "{ids[0]}", "attempt": 1}}')], UNLIMITED)
            assert report.outcome == "delivered"
            one.append(time.perf_counter() - start)
            deliverer, ids = world(slow.port, 10)
            messages = [(f"m{i}", f'{{"delivery_id": "{d}", "attempt": 1}}') for i, d in enumerate(ids)]
            start = time.perf_counter()
            assert {report.outcome for report in deliverer.deliver_batch(messages, UNLIMITED)} == {"delivered"}
            batch.append(time.perf_counter() - start)
    ratio = statistics.median(batch) / statistics.median(one)
    return Figure(
        "P1",
        "one SQS batch of 10 deliveries to a receiver answering in 200 ms",
        f"{statistics.median(batch) * 1e3:.0f} ms",
        f"one delivery {statistics.median(one) * 1e3:.0f} ms",
        f"{ratio:.2f}x",
        f"<= {P1_GOAL}x",
        ratio <= P1_GOAL,
    )


def p2_overhead(count: int, repeat: int) -> list[Figure]:
    """The delivery path against the requests loop the goal was set with, and against a loop of urllib3,
    which the transport is built on (reported: the path's own cost over the client it sends with)."""
    with receiver(lambda _: Answer(200, b"ok")) as fast:
        url = f"http://127.0.0.1:{fast.port}/hook"
        path_times: list[float] = []
        raw_times: dict[str, list[float]] = {"requests": [], "urllib3": []}
        ratios: dict[str, list[float]] = {"requests": [], "urllib3": []}
        for _ in range(repeat):
            deliverer, ids = world(fast.port, count)
            session, pool = requests.Session(), urllib3.PoolManager()
            for turn in itertools.batched(ids, P2_TURN, strict=False):
                start = time.perf_counter()
                for delivery_id in turn:
                    assert deliverer.deliver(Job(delivery_id, 1)).outcome == "delivered"
                path_times.append((time.perf_counter() - start) / len(turn))
                sent = fast.received[-1]
                # Both clients add these two themselves.
                headers = {key: value for key, value in sent.headers.items() if key not in ("Host", "Content-Length")}
                start = time.perf_counter()
                for _ in turn:
                    session.post(url, data=sent.body, headers=headers, timeout=15).content  # noqa: B018
                raw_times["requests"].append((time.perf_counter() - start) / len(turn))
                start = time.perf_counter()
                for _ in turn:
                    pool.request("POST", url, body=sent.body, headers=headers, timeout=15).data  # noqa: B018
                raw_times["urllib3"].append((time.perf_counter() - start) / len(turn))
                for client, times in raw_times.items():
                    ratios[client].append(path_times[-1] / times[-1])
    what = f"delivery path per delivery ({count} in a row: render, sign, send, log; stores in memory)"
    measured = f"{statistics.median(path_times) * 1e3:.2f} ms"
    requests_ratio, urllib3_ratio = statistics.median(ratios["requests"]), statistics.median(ratios["urllib3"])
    return [
        Figure(
            "P2",
            what,
            measured,
            f"raw requests.Session.post {statistics.median(raw_times['requests']) * 1e3:.2f} ms",
            f"{requests_ratio:.2f}x",
            f"<= {P2_GOAL}x",
            requests_ratio <= P2_GOAL,
        ),
        Figure(
            "P2",
            what,
            measured,
            f"raw urllib3 PoolManager.request {statistics.median(raw_times['urllib3']) * 1e3:.2f} ms",
            f"{urllib3_ratio:.2f}x",
            "(reported)",
            True,
        ),
    ]


def main() -> None:
    options = arguments(__doc__).parse_args()
    repeat = 1 if options.smoke else 5
    report([p1_concurrency(repeat), *p2_overhead(count=20 if options.smoke else 300, repeat=repeat)], options.figures)


if __name__ == "__main__":
    main()
