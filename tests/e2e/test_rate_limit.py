"""Issue 17: a burst published at once to a subscription with rate_limit 5, over the local stack with
several delivery pollers: the receiver never gets more than 5 requests in any one-second window, and
every event arrives, each at its first attempt.

    .venv/bin/pytest tests/e2e/test_rate_limit.py                                   # 60 events, about a minute
    HOOKRELAY_RATE_LIMIT_EVENTS=500 .venv/bin/pytest tests/e2e/test_rate_limit.py -s # the issue's size, ~5 min here
"""

import os
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import quote

import pytest
from receivers import Answer, Received, receiver

from e2e.conftest import RunningStack, eventually, publish, running_stack, subscribe

EVENTS = int(os.environ.get("HOOKRELAY_RATE_LIMIT_EVENTS", "60"))
RATE_LIMIT = 5
# The tolerance: 10 % over the limit in a window (at 5/s, no sixth request).
MOST_IN_ANY_SECOND = RATE_LIMIT * 1.1
DELIVERY_POLLERS = 4
PRODUCERS = 8

pytestmark = [pytest.mark.e2e, pytest.mark.reliability, pytest.mark.timeout(120 + EVENTS)]


@pytest.fixture(scope="module")
def stack() -> Iterator[RunningStack]:
    with running_stack(
        {
            "HOOKRELAY_ALLOW_PRIVATE_ENDPOINTS": "true",
            "HOOKRELAY_LOCAL_POLLERS_PER_QUEUE": str(DELIVERY_POLLERS),
            "HOOKRELAY_LOCAL_FAILED_VISIBILITY_SECONDS": "0",
        }
    ) as running:
        yield running


def most_in_one_second(arrivals: list[float]) -> int:
    """The most requests any window [t, t + 1 s) holds, t being any arrival (where a fullest window starts)."""
    ordered = sorted(arrivals)
    most, end = 0, 0
    for start, at in enumerate(ordered):
        while end < len(ordered) and ordered[end] < at + 1.0:
            end += 1
        most = max(most, end - start)
    return most


def test_most_in_one_second_counts_a_sliding_window() -> None:
    assert most_in_one_second([0.0, 0.5, 0.99, 1.0, 1.2]) == 4
    assert most_in_one_second([0.0, 0.2, 0.4, 0.6, 0.8, 1.0, 1.2]) == 5
    assert most_in_one_second([]) == 0


def test_a_burst_reaches_the_receiver_no_faster_than_its_rate_limit(stack: RunningStack) -> None:
    arrivals: list[float] = []
    lock = threading.Lock()

    def timed(_: Received) -> Answer:
        with lock:
            arrivals.append(time.monotonic())
        return Answer()

    api = stack.new_team()
    with receiver(timed) as target:
        subscription = subscribe(api, f"http://127.0.0.1:{target.port}/limited", rate_limit=RATE_LIMIT)
        started = time.monotonic()
        with ThreadPoolExecutor(PRODUCERS) as producers:
            list(producers.map(lambda _: publish(api), range(EVENTS)))
        published = time.monotonic() - started
        # While the backlog drains, the log lists the deliveries waiting on the queue for their slots.
        waiting: list[dict[str, Any]] = []
        log = f"/v3/webhooks/{subscription['id']}/deliveries"

        def listed_waiting() -> bool:
            waiting.extend(api.get(f"{log}?status=waiting&limit=100").json()["data"])
            return bool(waiting)

        eventually(listed_waiting, "deliveries listed as waiting for their slots", within=EVENTS / RATE_LIMIT)
        eventually(lambda: len(target.received) >= EVENTS, f"{EVENTS} deliveries", within=60 + EVENTS / RATE_LIMIT * 3)
        elapsed = time.monotonic() - started
    webhook_ids = [request.headers["webhook-id"] for request in target.received]
    assert len(set(webhook_ids)) == EVENTS == len(webhook_ids)
    assert {request.headers["X-Yousign-Retry"] for request in target.received} == {"0"}  # no attempt failed
    most = most_in_one_second(arrivals)
    print(
        f"\n{EVENTS} events at rate_limit {RATE_LIMIT}: published in {published:.1f} s,"
        f" all arrived in {elapsed:.1f} s, at most {most} in a second"
    )
    assert most <= MOST_IN_ANY_SECOND
    assert {item["status"] for item in waiting} == {"waiting"} and all(item["next_attempt_at"] for item in waiting)
    assert {item["id"] for item in waiting} <= set(webhook_ids)
    listed: list[dict[str, Any]] = []

    def all_delivered_once() -> bool:
        listed.clear()
        cursor = ""
        while True:  # every page: the size (500) is more than one
            answer = api.get(f"{log}?limit=100" + (f"&after={quote(cursor)}" if cursor else ""))
            assert answer.status == 200, answer.body
            listed.extend(answer.json()["data"])
            if not (cursor := answer.json()["meta"]["next_cursor"]):
                break
        return {(item["status"], item["attempt_count"]) for item in listed} == {("delivered", 1)}

    # The log is read from an index, which lags its deliveries' last writes (as on AWS): the last
    # delivery's receipt can come before the index shows it delivered.
    eventually(all_delivered_once, "every delivery listed as delivered at its first attempt")
    assert sorted(item["id"] for item in listed) == sorted(webhook_ids)  # each once, none left waiting
