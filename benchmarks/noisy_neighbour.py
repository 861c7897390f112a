"""Noisy-neighbour benchmark (P8 noisy neighbour): one team's backlog against another team's latency.

    .venv/bin/python benchmarks/noisy_neighbour.py                     # full size: A = 3 000 events (10 000 batched)
    .venv/bin/python benchmarks/noisy_neighbour.py --a-events 600 --a-batch-events 1500   # reduced
    .venv/bin/python benchmarks/noisy_neighbour.py --smoke             # tiny sizes, to check it still works

Over `hookrelay local up` as strict as the e2e stacks (local_up.AS_STRICT_AS_AWS), with 4 pollers
per queue (the delivery queue's and its slow lane's: 8 delivery containers), the containers at
niceness 10 so that the processes standing in for DynamoDB and SQS get the CPU first, as AWS's
services never wait for a function's CPU (HOOKRELAY_LOCAL_CONTAINER_NICENESS). Team B subscribes a
receiver that answers at once, team A one that answers after 2 s. Each scenario runs on a fresh stack:

1. B alone: B publishes 100 events, 10 a second; each event's time from its publish (the POST sent)
   to its delivery's first request at B's receiver.
2. With A: A publishes its events from 4 threads; once they are all accepted (A's backlog is then at
   its largest), B publishes 100 more, 10 a second, timed the same way.
3. Beside A's stack: two more fresh stacks, one for each team. B warms its own up and is timed alone
   again; then A publishes on the other, and B publishes 100 more on its own, timed the same way. The
   stacks share nothing but the machine: this is what A's load costs B through the CPUs alone, with
   hookrelay's queues, functions and table out of it.

The goal: B's p95 with A's backlog (2) is at most 2x B's p95 alone (1), and A's backlog still there
when B's last delivery arrives (else A was not a neighbour for all of B's events). Reported beside
it: (2) against (3), what sharing hookrelay with A costs B beyond sharing the machine. A's throughput, in
requests its receiver got per second, is reported while alone and while B publishes. Scenarios:
`slow` (A's endpoint answers 200 after 2 s), `failing` (it answers 500 after 2 s, every time, with a
fast retry schedule so that retries and their backoff are in play), `batch` (as `slow`, A publishing
through POST /v3/events/batch, 10 events a request).

After the scenarios, on one more fresh stack, the host's floor is reported: B alone, then B again
while busy loops (2 per CPU, at the containers' niceness) spin instead of team A. A neighbour that
only takes CPU, no queue, table or function of the stack, makes that ratio: the part of a scenario's
ratio that this machine's CPU sharing makes on its own.

These are the local stack's figures: 4 pollers of 10 messages on each delivery lane over one moto
server on a shared machine, where Lambda would run up to 400 delivery invocations, 50 of them on the
slow lane. docs/capacity.md says what they mean on AWS.
"""

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "layers" / "common" / "python"), str(REPO / "benchmarks"), str(REPO / "tests")]

import local_up  # noqa: E402
from end_to_end import MachineTime, header, post_event  # noqa: E402
from figures import Figure, arguments, report  # noqa: E402
from receivers import Answer, Received, receiver  # noqa: E402

from hookrelay import clock  # noqa: E402
from hookrelay.records import delivery_id  # noqa: E402

GOAL = "P8 noisy neighbour"
GOAL_RATIO = 2.0
DEV_KEY = "hr_dev_noisy_neighbour_benchmark_key"
TEAM_B = "team-b"
A_ANSWER_SECONDS = 2.0
FULL_SIZE_A_EVENTS = 3_000
FULL_SIZE_A_BATCH_EVENTS = 10_000
B_EVENTS = 100
B_PER_SECOND = 10.0
# B's first few events start the functions' containers; they are not timed.
B_WARM_UP_EVENTS = 20
A_PRODUCERS = 4
BATCH_SIZE = 10
DELIVERY_POLLERS = "4"
CONTAINER_NICENESS = "10"
# For the failing scenario: retries within the run, so that they compete with B's deliveries.
FAST_RETRY_SCHEDULE = "1s,2s,4s,8s,15s,30s,60s"
# Give up when none of B's deliveries has arrived for this long: something is stuck, not slow.
STALL_SECONDS = 120
# The host's floor: busy loops at the containers' niceness, this many per CPU, instead of team A.
BUSY_LOOPS_PER_CPU = 2


@dataclass(frozen=True)
class Scenario:
    name: str
    what: str
    a_status: int = 200
    a_batched: bool = False


SCENARIOS = {
    "slow": Scenario("slow", "A's endpoint answers after 2 s"),
    "failing": Scenario("failing", "A's endpoint fails every request (500 after 2 s; retries and backoff)", 500),
    "batch": Scenario("batch", "A publishes through the batch route, its endpoint answering after 2 s", a_batched=True),
}


def p95(values: list[float]) -> float:
    """The nearest-rank 95th percentile."""
    ordered = sorted(values)
    return ordered[max(0, -(-95 * len(ordered) // 100) - 1)]


@dataclass(frozen=True)
class BesideAStack:
    """B on a stack of its own while A's backlog is on another stack of the same machine: the two share
    only the CPUs. Each list: B's seconds from publish to receipt."""

    alone: list[float]
    b: list[float]
    # A's deliveries whose first request had not arrived when B's last delivery did.
    a_backlog_at_b_end: int


@dataclass(frozen=True)
class Outcome:
    scenario: Scenario
    a_events: int
    b_events: int
    # Each of B's events: seconds from its publish to its delivery's first request.
    b_alone: list[float]
    b_with_a: list[float]
    beside_a_stack: BesideAStack
    a_requests_per_second_alone: float
    a_requests_per_second_during_b: float
    # A's deliveries whose first request had not arrived when B's last delivery did.
    a_backlog_at_b_end: int
    machine: str
    # Where B's time went with A's backlog: each event's publish to its fan-out (ingest), and from its
    # fan-out to its first send (the delivery queue and the delivery function).
    b_to_fan_out: list[float]
    b_fan_out_to_send: list[float]
    # Where A's backlog was when B started publishing: messages on each queue (visible or in flight).
    queues_at_b_start: dict[str, int]

    @property
    def ratio(self) -> float:
        return p95(self.b_with_a) / p95(self.b_alone)

    @property
    def sharing_ratio(self) -> float:
        """B's p95 with A's backlog on its stack against A's on a stack of its own: the design's share."""
        return p95(self.b_with_a) / p95(self.beside_a_stack.b)

    @property
    def all_of_b_delivered(self) -> bool:
        beside = self.beside_a_stack
        return len(self.b_alone) == len(self.b_with_a) == len(beside.alone) == len(beside.b) == self.b_events

    @property
    def a_was_a_neighbour(self) -> bool:
        return self.a_backlog_at_b_end > 0 and self.beside_a_stack.a_backlog_at_b_end > 0

    def figures(self) -> list[Figure]:
        size = f"A = {self.a_events} events{' in batches of 10' if self.scenario.a_batched else ''}"
        complete = self.all_of_b_delivered and self.a_was_a_neighbour
        beside = self.beside_a_stack
        return [
            Figure(
                GOAL,
                f"{self.scenario.what}, {size}: B's p95 publish to receipt while A's backlog exists",
                f"{p95(self.b_with_a):.2f} s" if self.b_with_a else "none delivered",
                f"{p95(self.b_alone):.2f} s with A absent" if self.b_alone else "none delivered",
                f"{self.ratio:.2f}x" if self.b_alone and self.b_with_a else "-",
                f"<= {GOAL_RATIO:g}x",
                complete and self.ratio <= GOAL_RATIO,
            ),
            Figure(
                GOAL,
                f"{self.scenario.what}, {size}: B's p95 with A's backlog on B's stack, against A's backlog on a "
                "stack of its own on this machine (what sharing hookrelay's queues, functions and table costs B "
                "beyond sharing the CPUs)",
                f"{p95(self.b_with_a):.2f} s" if self.b_with_a else "none delivered",
                f"{p95(beside.b):.2f} s with A's backlog on a stack of its own "
                f"({p95(beside.b) / p95(beside.alone):.2f}x B alone there, {p95(beside.alone):.2f} s; "
                f"A's backlog then {beside.a_backlog_at_b_end})"
                if beside.b and beside.alone
                else "none delivered",
                f"{self.sharing_ratio:.2f}x" if self.b_with_a and beside.b else "-",
                f"<= {GOAL_RATIO:g}x",
                complete and self.sharing_ratio <= GOAL_RATIO,
            ),
            Figure(
                GOAL,
                f"{self.scenario.what}, {size}: A's throughput (requests at A's endpoint)",
                f"{self.a_requests_per_second_alone:.1f}/s alone, {self.a_requests_per_second_during_b:.1f}/s "
                "while B publishes",
                "",
                f"A's backlog when B's last arrived: {self.a_backlog_at_b_end}; B delivered "
                f"{len(self.b_alone)}/{self.b_events} alone, {len(self.b_with_a)}/{self.b_events} with A, "
                f"{len(beside.b)}/{self.b_events} beside A's stack",
                "A's backlog outlasts B's events; all of B's delivered",
                complete,
            ),
            Figure(
                GOAL,
                f"{self.scenario.what}, {size}: where B's p95 went while A's backlog exists",
                f"publish to fan-out p95 {p95(self.b_to_fan_out):.2f} s" if self.b_to_fan_out else "-",
                f"fan-out to first send p95 {p95(self.b_fan_out_to_send):.2f} s" if self.b_fan_out_to_send else "-",
                "queued when B started: "
                + ", ".join(f"{name} {count}" for name, count in self.queues_at_b_start.items()),
                "(reported)",
                True,
            ),
            Figure(
                GOAL, f"the machine during the {self.scenario.name} scenario", self.machine, "", "-", "(reported)", True
            ),
        ]


@dataclass
class Arrivals:
    """When each delivery id's first request reached a receiver, and when every request did."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    first: dict[str, float] = field(default_factory=dict)
    every: list[float] = field(default_factory=list)

    def answering(self, answer: Answer) -> Callable[[Received], Answer]:
        def record(request: Received) -> Answer:
            now = time.perf_counter()
            with self.lock:
                self.first.setdefault(header(request, "webhook-id"), now)
                self.every.append(now)
            return answer

        return record

    def of(self, delivery_ids: set[str]) -> dict[str, float]:
        """When each of `delivery_ids` that arrived first did."""
        with self.lock:
            return {each: self.first[each] for each in delivery_ids if each in self.first}

    def rate(self, start: float, end: float) -> float:
        with self.lock:
            return sum(start <= moment < end for moment in self.every) / max(end - start, 1e-9)


@contextmanager
def local_stack(scenario: Scenario) -> Iterator[local_up.LocalUp]:
    environment = {
        "HOOKRELAY_DEV_API_KEY": DEV_KEY,
        "HOOKRELAY_ALLOW_PRIVATE_ENDPOINTS": "true",
        "HOOKRELAY_LOCAL_POLLERS_PER_QUEUE": DELIVERY_POLLERS,
        # A batch that fails on the loaded local stack (moto answering a call after the functions' 1 s
        # read timeout, which AWS does not do at this load) comes back at once, not after the queue's
        # 240 s visibility timeout, which would stand for all of B's p95.
        "HOOKRELAY_LOCAL_FAILED_VISIBILITY_SECONDS": "0",
        # On AWS, A's invocations never slow DynamoDB's or SQS's answers to B's; on this machine the 16
        # containers compete for its cores with the two processes that stand in for those services.
        "HOOKRELAY_LOCAL_CONTAINER_NICENESS": CONTAINER_NICENESS,
        **local_up.AS_STRICT_AS_AWS,
    }
    if scenario.a_status != 200:
        environment["HOOKRELAY_RETRY_SCHEDULE"] = FAST_RETRY_SCHEDULE
    try:
        with local_up.running(environment) as stack:
            yield stack
    except local_up.LocalUpFailed as failure:
        raise SystemExit(str(failure)) from None


def team_key(stack: local_up.LocalUp, team: str) -> str:
    """A key for another team, as an operator creates one (`hookrelay keys create --local`)."""
    command = [sys.executable, "-m", "hookrelay_cli.main", "keys", "create", "--team", team, "--local"]
    result = subprocess.run(  # noqa: S603
        [*command, "--aws-endpoint", stack.aws_endpoint],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        check=True,
    )
    key: str = json.loads(result.stdout)["api_key"]
    return key


def subscribe(stack: local_up.LocalUp, key: str, port: int) -> str:
    response = requests.post(
        f"{stack.url}/v3/webhooks",
        headers={"Authorization": f"Bearer {key}"},
        json={"endpoint": f"http://127.0.0.1:{port}/hooks", "subscribed_events": ["*"], "description": "P8"},
        timeout=30,
    )
    assert response.status_code == 201, response.text
    subscription: str = response.json()["id"]
    return subscription


def event(event_id: str) -> dict[str, object]:
    data = {"signer": {"id": event_id[:8], "info": {"first_name": "Jérôme", "email": "j@example.com"}}}
    return {"event_id": event_id, "event_name": "signer.done", "scope": "public_api", "data": data}


class Publisher:
    """POSTs to the stack's API with one team's key, a keep-alive session per thread, as a platform does
    (after a 429, again once its Retry-After has passed)."""

    def __init__(self, stack: local_up.LocalUp, key: str) -> None:
        self.stack, self.key, self.local = stack, key, threading.local()

    def _session(self) -> requests.Session:
        session: requests.Session = self.local.__dict__.setdefault("session", requests.Session())
        return session

    def post(self, path: str, body: dict[str, object]) -> None:
        response = post_event(self._session(), self.stack.url, self.key, body, path)
        assert response.status_code == 202, response.text

    def flood(self, count: int, batched: bool) -> list[str]:
        """`count` events from A_PRODUCERS threads, one a request or BATCH_SIZE a request; their ids."""
        event_ids = [str(uuid.uuid4()) for _ in range(count)]
        work: list[tuple[str, dict[str, object]]]
        if batched:
            batches = [event_ids[start : start + BATCH_SIZE] for start in range(0, count, BATCH_SIZE)]
            work = [("/v3/events/batch", {"events": [event(one) for one in batch]}) for batch in batches]
        else:
            work = [("/v3/events", event(one)) for one in event_ids]
        with ThreadPoolExecutor(A_PRODUCERS) as producers:
            list(producers.map(lambda request: self.post(*request), work))
        return event_ids

    def get(self, path: str) -> dict[str, Any]:
        response = self._session().get(
            f"{self.stack.url}{path}", headers={"Authorization": f"Bearer {self.key}"}, timeout=60
        )
        assert response.status_code == 200, response.text
        return dict(response.json())

    def paced(self, count: int, per_second: float) -> dict[str, float]:
        """`count` events, `per_second` of them a second whatever the API's latency: {event id: when sent}."""
        sent: dict[str, float] = {}
        start = time.perf_counter()

        def publish(event_id: str) -> None:
            sent[event_id] = time.perf_counter()
            self.post("/v3/events", event(event_id))

        with ThreadPoolExecutor(8) as producers:
            for index in range(count):
                time.sleep(max(0.0, start + index / per_second - time.perf_counter()))
                producers.submit(publish, str(uuid.uuid4()))
        return sent


def wait_for(arrivals: Arrivals, delivery_ids: set[str]) -> None:
    """Until every one of `delivery_ids` arrived, or none has for STALL_SECONDS."""
    last_count, last_change = -1, time.monotonic()
    while (count := len(arrivals.of(delivery_ids))) < len(delivery_ids):
        if count != last_count:
            last_count, last_change = count, time.monotonic()
        if time.monotonic() - last_change > STALL_SECONDS:
            print(f"no delivery for {STALL_SECONDS} s, stopping the wait at {count}/{len(delivery_ids)}", flush=True)
            return
        time.sleep(0.05)


def latencies(sent: dict[str, float], subscription: str, arrivals: Arrivals) -> list[float]:
    """Seconds from each event's publish to its delivery's first request (those that arrived)."""
    ids = {delivery_id(event_id, subscription): event_id for event_id in sent}
    return [arrived - sent[ids[each]] for each, arrived in arrivals.of(set(ids)).items()]


@dataclass(frozen=True)
class TeamB:
    """Team B on a stack: its publisher, its subscription to a receiver that answers at once, and when
    each of its deliveries arrived there."""

    publisher: Publisher
    subscription: str
    arrivals: Arrivals

    @property
    def stack(self) -> local_up.LocalUp:
        return self.publisher.stack

    def publish(self, b_events: int) -> dict[str, float]:
        """B's events, paced: {event id: when sent}, once their deliveries arrived (or stalled)."""
        sent = self.publisher.paced(b_events, B_PER_SECOND)
        wait_for(self.arrivals, {delivery_id(event_id, self.subscription) for event_id in sent})
        return sent

    def latencies(self, sent: dict[str, float]) -> list[float]:
        return latencies(sent, self.subscription, self.arrivals)

    def timed(self, b_events: int) -> list[float]:
        """B's latencies for `b_events` events."""
        return self.latencies(self.publish(b_events))

    def alone(self, b_events: int) -> list[float]:
        """B's latencies with no neighbour, after a few events that warm the stack's containers up."""
        self.publish(min(B_WARM_UP_EVENTS, b_events))
        return self.timed(b_events)


@contextmanager
def team_b_on_a_fresh_stack(scenario: Scenario) -> Iterator[TeamB]:
    arrivals = Arrivals()
    with receiver(arrivals.answering(Answer())) as hooks, local_stack(scenario) as stack:
        publisher = Publisher(stack, team_key(stack, TEAM_B))
        yield TeamB(publisher, subscribe(stack, publisher.key, hooks.port), arrivals)


QUEUES = {"events": "events", "delivery": "delivery", "slow lane": "delivery-slow"}


def queued(stack: local_up.LocalUp) -> dict[str, int]:
    """Messages on the stack's queues, visible or in flight, by QUEUES' names."""
    sqs = stack.client("sqs")
    counts = {}
    for name, suffix in QUEUES.items():
        url = sqs.get_queue_url(QueueName=f"hookrelay-local-{suffix}")["QueueUrl"]
        attributes = sqs.get_queue_attributes(
            QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        )["Attributes"]
        counts[name] = sum(int(value) for value in attributes.values())
    return counts


def stages(publisher: Publisher, sent: dict[str, float], subscription: str) -> tuple[list[float], list[float]]:
    """For each event of `sent` delivered: seconds from its publish to its fan-out (its delivery's
    created_at) and from its fan-out to its first send (its first attempt's time), from the delivery log."""
    wall_clock = time.time() - time.perf_counter()
    to_fan_out, to_send = [], []
    for event_id, published in sent.items():
        delivery = publisher.get(f"/v3/webhooks/{subscription}/deliveries/{delivery_id(event_id, subscription)}")
        fanned_out = clock.parse_moment(delivery["created_at"]).timestamp()
        to_fan_out.append(fanned_out - (published + wall_clock))
        to_send.append(clock.parse_moment(delivery["attempts"][0]["at"]).timestamp() - fanned_out)
    return to_fan_out, to_send


def a_receiver(scenario: Scenario, arrivals: Arrivals) -> AbstractContextManager[Any]:
    return receiver(arrivals.answering(Answer(status=scenario.a_status, delay_seconds=A_ANSWER_SECONDS)))


def beside_a_stack(scenario: Scenario, a_events: int, b_events: int) -> BesideAStack:
    """B on a fresh stack of its own, alone, then while A's events flood another fresh stack on the same
    machine; both stacks stop before this returns."""
    a_arrivals = Arrivals()
    with a_receiver(scenario, a_arrivals) as a_hooks, team_b_on_a_fresh_stack(scenario) as team_b:
        alone = team_b.alone(b_events)
        with local_stack(scenario) as a_stack:
            a_subscription = subscribe(a_stack, DEV_KEY, a_hooks.port)
            a_ids = Publisher(a_stack, DEV_KEY).flood(a_events, scenario.a_batched)
            print(f"{scenario.name}: A published on a stack of its own; B publishes on another", flush=True)
            beside = team_b.timed(b_events)
            a_arrived = a_arrivals.of({delivery_id(event_id, a_subscription) for event_id in a_ids})
    return BesideAStack(alone, beside, a_events - len(a_arrived))


def run(scenario: Scenario, a_events: int, b_events: int) -> Outcome:
    a_arrivals = Arrivals()
    with a_receiver(scenario, a_arrivals) as a_hooks, team_b_on_a_fresh_stack(scenario) as team_b:
        stack = team_b.stack
        team_a, a_subscription = Publisher(stack, DEV_KEY), subscribe(stack, DEV_KEY, a_hooks.port)
        cpu_before = MachineTime.now()
        alone = team_b.alone(b_events)
        print(f"{scenario.name}: B alone, p95 {p95(alone):.2f} s; A publishes {a_events} events", flush=True)
        a_started = time.perf_counter()
        a_ids = team_a.flood(a_events, scenario.a_batched)
        b_started = time.perf_counter()
        queues_at_b_start = queued(stack)
        print(f"{scenario.name}: A published in {b_started - a_started:.1f} s; B publishes", flush=True)
        b_sent = team_b.publish(b_events)
        b_ended = time.perf_counter()
        b_with_a = team_b.latencies(b_sent)
        b_to_fan_out, b_fan_out_to_send = stages(team_b.publisher, b_sent, team_b.subscription)
        a_arrived = a_arrivals.of({delivery_id(event_id, a_subscription) for event_id in a_ids})
        # Batches that failed (the local stack's calls to moto that timed out) and came back.
        errors = sum('"level":"ERROR"' in line or "failed on a batch" in line for line in stack.output)
        # Once an endpoint's slow mark is shared, ingest sends its deliveries to the slow lane itself.
        moves = sum('"outcome":"moved to the slow lane"' in line for line in stack.output)
        machine = (
            f"{MachineTime.now().share_since(cpu_before)}; the stack logged {errors} errors;"
            f" {moves} deliveries moved to the slow lane"
        )
    return Outcome(
        scenario=scenario,
        a_events=a_events,
        b_events=b_events,
        b_alone=alone,
        b_with_a=b_with_a,
        beside_a_stack=beside_a_stack(scenario, a_events, b_events),
        a_requests_per_second_alone=a_arrivals.rate(a_started, b_started),
        a_requests_per_second_during_b=a_arrivals.rate(b_started, b_ended),
        a_backlog_at_b_end=a_events - len(a_arrived),
        machine=machine,
        b_to_fan_out=b_to_fan_out,
        b_fan_out_to_send=b_fan_out_to_send,
        queues_at_b_start=queues_at_b_start,
    )


@contextmanager
def busy_loops(count: int) -> Iterator[None]:
    """`count` processes that only spin, at the function containers' niceness, for the `with` block."""
    spin = f"import os\nos.nice({CONTAINER_NICENESS})\nwhile True: pass"
    loops = [subprocess.Popen([sys.executable, "-c", spin]) for _ in range(count)]  # noqa: S603
    try:
        yield
    finally:
        for loop in loops:
            loop.kill()
            loop.wait()


def host_floor(b_events: int) -> Figure:
    """B's p95 with no team A while busy loops share the machine's CPUs with the stack: what this machine's
    CPU sharing alone does to the ratio (on AWS each invocation has CPU of its own, and SQS and DynamoDB
    answer on theirs). Reported beside the scenarios, not a goal."""
    with team_b_on_a_fresh_stack(SCENARIOS["slow"]) as team_b:
        alone = team_b.alone(b_events)
        count = BUSY_LOOPS_PER_CPU * (os.cpu_count() or 1)
        with busy_loops(count):
            spun = team_b.timed(b_events)
    delivered = len(alone) == len(spun) == b_events
    return Figure(
        GOAL,
        f"the host's floor: no team A, {count} busy loops at niceness {CONTAINER_NICENESS} ({BUSY_LOOPS_PER_CPU} "
        "per CPU): B's p95 publish to receipt",
        f"{p95(spun):.2f} s" if spun else "none delivered",
        f"{p95(alone):.2f} s without the loops" if alone else "none delivered",
        f"{p95(spun) / p95(alone):.2f}x" if alone and spun else "-",
        "(reported)",
        delivered,
    )


def main() -> None:
    parser = arguments(__doc__)
    parser.add_argument("--a-events", type=int, help=f"A's events (default {FULL_SIZE_A_EVENTS}, 60 with --smoke)")
    parser.add_argument(
        "--a-batch-events", type=int, help=f"A's events in the batch scenario (default {FULL_SIZE_A_BATCH_EVENTS})"
    )
    parser.add_argument("--b-events", type=int, help=f"B's events in each phase (default {B_EVENTS}, 10 with --smoke)")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS), help="which to run, comma-separated")
    options = parser.parse_args()
    a_events = options.a_events or (60 if options.smoke else FULL_SIZE_A_EVENTS)
    a_batch_events = options.a_batch_events or (100 if options.smoke else FULL_SIZE_A_BATCH_EVENTS)
    b_events = options.b_events or (10 if options.smoke else B_EVENTS)
    started = time.perf_counter()
    outcomes = [
        run(SCENARIOS[name], a_batch_events if SCENARIOS[name].a_batched else a_events, b_events)
        for name in options.scenarios.split(",")
    ]
    floor = host_floor(b_events)
    report([figure for outcome in outcomes for figure in outcome.figures()] + [floor], options.figures)
    print(f"wall time {time.perf_counter() - started:.1f} s")
    if not (floor.met and all(outcome.all_of_b_delivered for outcome in outcomes)):
        sys.exit(1)


if __name__ == "__main__":
    main()
