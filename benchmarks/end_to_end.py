"""End-to-end benchmark (P6): the local stack as users run it, events in, signed requests out.

    .venv/bin/python benchmarks/end_to_end.py           # 1 000 events x 3 subscriptions, 3 runs
    .venv/bin/python benchmarks/end_to_end.py --smoke   # 20 events x 3, as the test suite runs it

Starts `hookrelay local up` in its own process (moto server, the template's resources, the real
handlers), subscribes three receivers on 127.0.0.1 to every event, publishes the events through
POST /v3/events from a few producer threads, and waits until the receivers have every delivery.

P6: events/s accepted by the API (first publish to last 202), deliveries/s end to end (first
publish to last request received), and every delivery id (UUIDv5 of event id and subscription id)
received, each once, in every run; a second request with the same `webhook-id` is allowed by the
at-least-once contract and counted; a missing or unknown one fails the run (exit status 1). A sample
of requests is verified with the `standardwebhooks` library and the subscription's secret. The rates
are the median of three runs, each on a fresh stack; each run also reports what the machine's CPUs
did meanwhile (busy, idle, stolen by the hypervisor), to tell a slow machine from a slow stack when
figures differ between machines of the same kind.

The local stack runs one poller per queue against moto (and up to 4 containers per function behind
its gateway), so these are the local stack's rates, not AWS's: Lambda would run up to 100 ingest and
400 delivery invocations at once. The deliveries/s goal (>= 50) is judged at the full size only.
"""

import os
import random
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests
import standardwebhooks

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "layers" / "common" / "python"), str(REPO / "benchmarks"), str(REPO / "tests")]

import local_up  # noqa: E402
from figures import Figure, arguments, report  # noqa: E402
from receivers import Answer, Received, Receiver, receiver  # noqa: E402

from hookrelay.records import delivery_id  # noqa: E402

DEV_KEY = "hr_dev_end_to_end_benchmark_key"
SUBSCRIPTIONS = 3
PRODUCERS = 4
SIGNATURES_CHECKED = 50
# Issue 16's P6 goal on a 2-core machine, judged at full size (smaller runs are start-up bound).
GOAL_DELIVERIES_PER_SECOND = 50
FULL_SIZE_EVENTS = 1_000
# Runs at full size, each on a fresh stack: the figure is their median (one run moved by a quarter between
# machines of the same kind).
RUNS = 3
# Give up when no delivery has arrived for this long (something is stuck, not slow).
STALL_SECONDS = 60
# A 429 without Retry-After (the stage's, as on AWS) is tried again after this.
STAGE_RETRY_SECONDS = 0.05


@contextmanager
def local_stack() -> Iterator[local_up.LocalUp]:
    """`hookrelay local up` on free ports, as a user starts it; stopped with Ctrl-C (SIGINT)."""
    try:
        with local_up.running({"HOOKRELAY_DEV_API_KEY": DEV_KEY, "HOOKRELAY_ALLOW_PRIVATE_ENDPOINTS": "true"}) as stack:
            yield stack
    except local_up.LocalUpFailed as failure:
        raise SystemExit(str(failure)) from None


@dataclass(frozen=True)
class Subscribed:
    id: str
    secret_key: str
    path: str


def subscribe(stack: local_up.LocalUp, port: int, index: int) -> Subscribed:
    path = f"/hooks/{index}"
    response = requests.post(
        f"{stack.url}/v3/webhooks",
        headers={"Authorization": f"Bearer {DEV_KEY}"},
        json={"endpoint": f"http://127.0.0.1:{port}{path}", "subscribed_events": ["*"], "description": f"P6 {index}"},
        timeout=30,
    )
    assert response.status_code == 201, response.text
    body = response.json()
    return Subscribed(body["id"], body["secret_key"], path)


def post_event(
    session: requests.Session, url: str, key: str, body: Mapping[str, object], path: str = "/v3/events"
) -> requests.Response:
    """POST an event (or a batch of them, to /v3/events/batch) as a platform does: after a 429, again once
    its Retry-After has passed (the team's own limit, 100 requests a second, is within reach of the local
    stack's producers)."""
    while True:
        response = session.post(f"{url}{path}", headers={"Authorization": f"Bearer {key}"}, json=body, timeout=30)
        if response.status_code != 429:
            return response
        time.sleep(float(response.headers.get("retry-after", STAGE_RETRY_SECONDS)))


def publish_all(stack: local_up.LocalUp, count: int) -> list[str]:
    """POST count events from PRODUCERS threads, each with its own keep-alive session."""
    event_ids = [str(uuid.uuid4()) for _ in range(count)]
    local = threading.local()

    def publish(event_id: str) -> None:
        session = local.__dict__.setdefault("session", requests.Session())
        data = {"signer": {"id": event_id[:8], "info": {"first_name": "Jérôme", "email": "j@example.com"}}}
        body = {"event_id": event_id, "event_name": "signer.done", "scope": "public_api", "data": data}
        response = post_event(session, stack.url, DEV_KEY, body)
        assert response.status_code == 202, response.text
        assert response.json()["event_id"] == event_id

    with ThreadPoolExecutor(PRODUCERS) as producers:
        list(producers.map(publish, event_ids))
    return event_ids


def wait_for(hooks: Receiver, expected: int) -> None:
    """Until `expected` requests arrived, printing progress; gives up after STALL_SECONDS without one."""
    last_count, last_change, last_print = 0, time.monotonic(), time.monotonic()
    while (count := len(hooks.received)) < expected:
        now = time.monotonic()
        if count != last_count:
            last_count, last_change = count, now
        if now - last_change > STALL_SECONDS:
            print(f"no delivery for {STALL_SECONDS} s, stopping the wait at {count}/{expected}", flush=True)
            return
        if now - last_print >= 10:
            print(f"  received {count}/{expected}", flush=True)
            last_print = now
        time.sleep(0.05)
    # A moment more, so a late duplicate is counted too.
    time.sleep(1)


def header(request: Received, name: str) -> str:
    return next(value for key, value in request.headers.items() if key.lower() == name)


def check(
    requests_received: list[Received], subscriptions: list[Subscribed], event_ids: list[str]
) -> tuple[int, int, list[str]]:
    """(delivered, duplicates, problems): each expected delivery id's requests, at the right path, signed."""
    expected = {
        delivery_id(event_id, subscription.id): subscription for event_id in event_ids for subscription in subscriptions
    }
    counts = Counter(header(request, "webhook-id") for request in requests_received)
    problems = []
    if missing := expected.keys() - counts.keys():
        problems.append(f"{len(missing)} deliveries never received, e.g. {sorted(missing)[:3]}")
    if unknown := counts.keys() - expected.keys():
        problems.append(f"{len(unknown)} unexpected webhook-ids, e.g. {sorted(unknown)[:3]}")
    known = [request for request in requests_received if header(request, "webhook-id") in expected]
    if misrouted := [r for r in known if r.path != expected[header(r, "webhook-id")].path]:
        problems.append(f"{len(misrouted)} requests at another subscription's endpoint")
    for request in random.sample(known, min(SIGNATURES_CHECKED, len(known))):
        subscription = expected[header(request, "webhook-id")]
        headers = {key.lower(): value for key, value in request.headers.items()}
        try:
            standardwebhooks.Webhook(subscription.secret_key).verify(request.body, headers, json_parse=False)
        except standardwebhooks.WebhookVerificationError as error:
            problems.append(f"signature of {headers['webhook-id']} does not verify: {error}")
    delivered = len(expected.keys() & counts.keys())
    duplicates = sum(count - 1 for count in counts.values())
    return delivered, duplicates, problems


@dataclass(frozen=True)
class MachineTime:
    """The machine's CPU time by kind (/proc/stat's first line, in clock ticks): where a run's time went."""

    busy: int
    idle: int
    steal: int

    @classmethod
    def now(cls) -> "MachineTime":
        stat = Path("/proc/stat")
        if not stat.exists():
            return cls(0, 0, 0)
        # cpu user nice system idle iowait irq softirq steal ...
        ticks = [int(value) for value in stat.read_text().splitlines()[0].split()[1:]]
        return cls(busy=sum(ticks[:3]) + sum(ticks[5:7]), idle=ticks[3] + ticks[4], steal=ticks[7])

    def share_since(self, earlier: "MachineTime") -> str:
        """What the CPUs did since `earlier`: busy, idle and stolen by the hypervisor, in percent."""
        busy, idle, steal = self.busy - earlier.busy, self.idle - earlier.idle, self.steal - earlier.steal
        total = max(busy + idle + steal, 1)
        return (
            f"CPUs {100 * busy / total:.0f} % busy, {100 * idle / total:.0f} % idle, {100 * steal / total:.0f} % stolen"
        )


@dataclass(frozen=True)
class Run:
    events: int
    published_seconds: float
    end_to_end_seconds: float
    received: int
    delivered: int
    duplicates: int
    problems: list[str]
    machine: str

    @property
    def deliveries_per_second(self) -> float:
        return self.received / self.end_to_end_seconds

    @property
    def all_delivered(self) -> bool:
        return self.delivered == self.events * SUBSCRIPTIONS and not self.problems


def run_once(events: int) -> Run:
    """One run on a stack of its own: start, subscribe, publish, wait for every delivery, stop."""
    expected = events * SUBSCRIPTIONS
    arrivals: list[float] = []

    def answer(_: Received) -> Answer:
        arrivals.append(time.perf_counter())
        return Answer()

    started = time.perf_counter()
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    with receiver(answer) as hooks, local_stack() as stack:
        print(
            f"local stack up in {time.perf_counter() - started:.1f} s (load average {load}); {events} events x "
            f"{SUBSCRIPTIONS} subscriptions, {PRODUCERS} producer threads (the local stack's rates: one poller per "
            "queue, over moto)"
        )
        subscriptions = [subscribe(stack, hooks.port, index) for index in range(SUBSCRIPTIONS)]
        cpu_before = MachineTime.now()
        first_publish = time.perf_counter()
        event_ids = publish_all(stack, events)
        published = time.perf_counter() - first_publish
        print(f"published {events} events in {published:.1f} s", flush=True)
        wait_for(hooks, expected)
        received = list(hooks.received)
        end_to_end = (max(arrivals) if arrivals else time.perf_counter()) - first_publish
        machine = f"load average {load} at start; {MachineTime.now().share_since(cpu_before)}"
    delivered, duplicates, problems = check(received, subscriptions, event_ids)
    run = Run(events, published, end_to_end, len(received), delivered, duplicates, problems, machine)
    print(f"run: {run.deliveries_per_second:.1f} deliveries/s ({machine})", flush=True)
    return run


def main() -> None:
    parser = arguments(__doc__)
    parser.add_argument("--events", type=int, help="events to publish (default 1 000, 20 with --smoke)")
    parser.add_argument(
        "--runs", type=int, help="runs, each on a fresh stack; figures of the median (default 3, 1 with --smoke)"
    )
    options = parser.parse_args()
    events = options.events or (20 if options.smoke else FULL_SIZE_EVENTS)
    started = time.perf_counter()
    runs = sorted(
        (run_once(events) for _ in range(options.runs or (1 if options.smoke else RUNS))),
        key=lambda run: run.deliveries_per_second,
    )
    median = runs[len(runs) // 2]
    all_delivered = all(run.all_delivered for run in runs)
    expected = events * SUBSCRIPTIONS
    every_rate = ", ".join(f"{run.deliveries_per_second:.1f}" for run in runs)
    figures = [
        Figure(
            "P6",
            f"end to end, {events} events x {SUBSCRIPTIONS} subscriptions: events accepted by the API",
            f"{events / median.published_seconds:.0f} events/s",
            "",
            f"{events} in {median.published_seconds:.1f} s",
            "all delivered exactly once per delivery id",
            all_delivered,
        ),
        Figure(
            "P6",
            f"end to end: deliveries from the first publish to the last request received (median of {len(runs)} "
            f"runs: {every_rate})",
            f"{median.deliveries_per_second:.1f} deliveries/s",
            "",
            f"{median.received} in {median.end_to_end_seconds:.1f} s",
            f">= {GOAL_DELIVERIES_PER_SECOND} deliveries/s at {FULL_SIZE_EVENTS} events",
            all_delivered and (median.deliveries_per_second >= GOAL_DELIVERIES_PER_SECOND or events < FULL_SIZE_EVENTS),
        ),
        Figure(
            "P6",
            "end to end: every delivery id received, in every run",
            ", ".join(f"delivered {run.delivered}/{expected}, duplicates {run.duplicates}" for run in runs),
            "",
            f"{sum(run.delivered for run in runs)}/{expected * len(runs)}",
            "all delivered exactly once per delivery id",
            all_delivered,
        ),
        *(
            Figure(
                "P6",
                f"the machine during the run at {run.deliveries_per_second:.1f} deliveries/s",
                run.machine,
                "",
                "-",
                "(reported)",
                True,
            )
            for run in runs
        ),
    ]
    report(figures, options.figures)
    for run in runs:
        for problem in run.problems:
            print(f"P6 problem: {problem}", flush=True)
    print(f"wall time {time.perf_counter() - started:.1f} s")
    if not all_delivered:
        sys.exit(1)


if __name__ == "__main__":
    main()
