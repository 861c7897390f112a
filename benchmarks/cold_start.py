"""Cold-start benchmark: each handler's import and first invocation in a fresh process, against a bare
boto3 handler making the same first AWS call.

    .venv/bin/python benchmarks/cold_start.py            # 15 runs of each
    .venv/bin/python benchmarks/cold_start.py --smoke    # 2 runs, as the test suite runs it
    .venv/bin/python benchmarks/cold_start.py --profile  # also: where each handler's time goes

P5: a moto server on 127.0.0.1 holds the template's resources (the local stack's code creates them)
with what a first invocation finds on a live stack: an API key, a subscription of its team to a
receiver on 127.0.0.1, and for each delivery run a delivery record made by the ingest handler. Each
child process starts the way Lambda starts a function: the layer's python/ dir and the function's
code dir on PYTHONPATH; the function's environment from the template; AWS_ENDPOINT_URL pointing at
moto; fake credentials, a region, and the variables the Lambda runtime sets. LAMBDA_TASK_ROOT among
them turns tracing on, as deployed (`Tracing: Active`), and the segments go to a UDP sink standing in
for the X-Ray daemon.

A handler child times `import app` plus its handler's first invocation with a representative event
(the API: POST /v3/events; the authorizer: a request with the API key; ingest: an events-queue batch
of one event, which matches the subscription; delivery: a delivery-queue batch of one delivery, sent
to the receiver; the sweeper: its schedule), so that nothing imported lazily escapes the figure.
Its baseline child, in the same environment, times a bare handler: `import boto3`, the clients the
function creates (a plain client per service) and the first AWS call its invocation makes. Every
child runs once first (bytecode compiled, files cached, as in a deployment package), then each run takes
the functions in a shuffled order, a handler and its baseline back to back in either order. The
times are medians; the ratio is the median of the runs' handler-over-baseline ratios (paired, so
that a burst of load on this shared machine hits both sides of a ratio).

The children use this interpreter's site-packages, dev dependencies included: whatever a handler
imports only if it is installed is counted here although the layer does not ship it.

Goals: at most 1.5x for authorizer, ingest, delivery and sweeper; at most 2x for the API.
"""

import functools
import io
import json
import logging
import os
import random
import socket
import statistics
import subprocess
import sys
import uuid
from collections.abc import Callable
from contextlib import redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "layers" / "common" / "python"), str(REPO / "cli"), str(REPO / "tests")]

from figures import Figure, arguments, report  # noqa: E402
from receivers import Receiver, receiver  # noqa: E402

from hookrelay.api_keys import hash_key  # noqa: E402
from hookrelay.records import delivery_id  # noqa: E402
from hookrelay_cli.local.gateway import HttpRequest  # noqa: E402
from hookrelay_cli.local.stack import DEV_TEAM, LOCAL_CREDENTIALS, LocalStack, local_aws  # noqa: E402

LAYER = REPO / "layers" / "common" / "python"
EVENTS = REPO / "events"
GOALS = {"api": 2.0, "authorizer": 1.5, "ingest": 1.5, "delivery": 1.5, "sweeper": 1.5}
EVENT_NAME = "signature_request.done"
# What the children print their figures after (a handler logs to stdout too); the marker on stderr
# ends the interpreter's own start-up in a `-X importtime` report.
RESULT = "--- cold start seconds:"
MARKER = "--- the measured start"
# A handler child: argv = module, handler name, event (JSON). Prints import seconds, total seconds, answer.
HANDLER_CHILD = f"""
import importlib, json, os, sys, time

class Context:
    function_name = os.environ["AWS_LAMBDA_FUNCTION_NAME"]
    function_version = "$LATEST"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:" + function_name
    aws_request_id = "8f2c1e64-7d1a-4c5b-9e3f-2a6b4c8d0e1f"
    log_group_name = "/aws/lambda/" + function_name
    log_stream_name = "2026/03/02/[$LATEST]0123456789abcdef"

    def get_remaining_time_in_millis(self):
        return 300_000

event = json.loads(sys.argv[3])
print({MARKER!r}, file=sys.stderr, flush=True)
start = time.perf_counter()
handler = getattr(importlib.import_module(sys.argv[1]), sys.argv[2])
imported = time.perf_counter()
answer = handler(event, Context())
end = time.perf_counter()
print({RESULT!r}, imported - start, end - start, json.dumps(answer, default=str))
"""
# The bare handler: argv = [services], [service, operation, parameters] (JSON).
BASELINE_CHILD = f"""
import json, sys, time

services, (service, operation, parameters) = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print({MARKER!r}, file=sys.stderr, flush=True)
start = time.perf_counter()
import boto3
clients = {{name: boto3.client(name) for name in services}}
answer = getattr(clients[service], operation)(**parameters)
end = time.perf_counter()
print({RESULT!r}, end - start, end - start, json.dumps(answer["ResponseMetadata"]["HTTPStatusCode"]))
"""


def _handler_arguments(module: str, handler: str, event: Callable[[], Any]) -> list[str]:
    return [module, handler, json.dumps(event())]


@dataclass(frozen=True)
class Child:
    """One kind of measured process: a handler, or its baseline."""

    name: str
    script: str
    arguments: Callable[[], list[str]]  # fresh for each run (a new event where a run consumes one)
    environment: dict[str, str]
    check: Callable[[Any], None]  # raises when the first invocation did not do its work


@dataclass(frozen=True)
class Timing:
    imported: float
    total: float
    answer: Any


def run_child(child: Child, *flags: str) -> tuple[Timing, str]:
    result = subprocess.run(  # noqa: S603 - this interpreter, running one of the child scripts
        [sys.executable, *flags, "-c", child.script, *child.arguments()],
        env=child.environment,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    line = next((line for line in result.stdout.splitlines() if line.startswith(RESULT)), None)
    if result.returncode != 0 or line is None:
        raise RuntimeError(
            f"{child.name} failed (exit {result.returncode}): {result.stderr[-3000:]}{result.stdout[-2000:]}"
        )
    imported, total, answer = line.removeprefix(RESULT).split(" ", 3)[1:]
    timing = Timing(float(imported), float(total), json.loads(answer))
    child.check(timing.answer)
    return timing, result.stderr


def event_file(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((EVENTS / name).read_text(encoding="utf-8"))
    return loaded


def sqs_batch(template: str, body: dict[str, Any]) -> dict[str, Any]:
    batch = event_file(template)
    batch["Records"][0]["body"] = json.dumps(body)
    return batch


def events_queue_batch(event_id: str) -> dict[str, Any]:
    """An events-queue batch of one new event of the development team, as EventBridge's rule sends it."""
    template = event_file("ingest-sqs-batch.json")
    envelope = json.loads(template["Records"][0]["body"])
    envelope["detail"]["event"].update(event_id=event_id, team_id=DEV_TEAM, event_name=EVENT_NAME)
    return sqs_batch("ingest-sqs-batch.json", envelope)


def expect(condition: Callable[[Any], bool], what: str) -> Callable[[Any], None]:
    def check(answer: Any) -> None:
        if not condition(answer):
            raise RuntimeError(f"the first invocation did not {what}: {answer!r}")

    return check


def no_failures(answer: Any) -> bool:
    return isinstance(answer, dict) and answer.get("batchItemFailures") == []


class Bench:
    """The stack in moto and what each child needs of it."""

    def __init__(self, stack: LocalStack, target: Receiver, xray_daemon: str):
        self.stack = stack
        self.target = target
        self.xray_daemon = xray_daemon
        self.key = stack.register_api_key(None)
        answer = self.call(
            "POST",
            "/v3/webhooks",
            {"endpoint": f"http://127.0.0.1:{target.port}/hook", "subscribed_events": [EVENT_NAME]},
        )
        self.subscription_id = str(answer["id"])
        self.names = stack.resources.function_environment(stack.template.function_ids())

    def call(self, method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        headers = [("Authorization", f"Bearer {self.key}"), ("Content-Type", "application/json")]
        response = self.stack.gateway().handle(
            HttpRequest(method, path, headers, json.dumps(body).encode(), "127.0.0.1")
        )
        if response.status >= 300:
            raise RuntimeError(f"{method} {path}: {response.status} {response.body!r}")
        answer: dict[str, Any] = json.loads(response.body)
        return answer

    def pending_delivery(self) -> str:
        """A delivery of a new event waiting for its first attempt, made by the ingest handler (in this process)."""
        event_id = str(uuid.uuid4())
        with redirect_stdout(io.StringIO()):  # its log lines are not part of the report
            answer = self.stack.invoke("IngestFunction", events_queue_batch(event_id))
        if not no_failures(answer):
            raise RuntimeError(f"seeding a delivery failed: {answer!r}")
        return delivery_id(event_id, self.subscription_id)

    def environment(self, function_id: str) -> dict[str, str]:
        """A function's environment as the Lambda runtime sets it, its AWS calls going to moto."""
        spec = self.stack.template.function(function_id)
        code_dir = spec.code_dir.resolve()
        return {
            # Nothing from the caller's shell (AWS_PROFILE, ~/.aws) reaches the children but PATH.
            "PATH": os.environ.get("PATH", ""),
            "PYTHONPATH": os.pathsep.join([str(LAYER), str(code_dir)]),
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            **LOCAL_CREDENTIALS,
            "AWS_SESSION_TOKEN": "local",
            "AWS_REGION": LOCAL_CREDENTIALS["AWS_DEFAULT_REGION"],
            "AWS_ENDPOINT_URL": self.stack.aws_endpoint,
            "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
            "AWS_LAMBDA_FUNCTION_NAME": f"hookrelay-{function_id}",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
            "AWS_XRAY_DAEMON_ADDRESS": self.xray_daemon,
            "_X_AMZN_TRACE_ID": "Root=1-67a1b2c3-0123456789abcdef01234567;Parent=0123456789abcdef;Sampled=1",
            "LAMBDA_TASK_ROOT": str(code_dir),
            "_HANDLER": f"{spec.module}.{spec.handler}",
            # The receiver is on 127.0.0.1.
            "HOOKRELAY_ALLOW_PRIVATE_ENDPOINTS": "true",
            **{name: self.names[name] for name in spec.environment},
        }

    def cases(self) -> dict[str, "Case"]:
        """By function id: its first invocation, and what its bare handler does instead."""
        names = self.names
        api_event = event_file("api-publish-event.json")
        api_event["requestContext"]["authorizer"]["lambda"]["team_id"] = DEV_TEAM
        authorizer_event = event_file("authorizer-request.json")
        authorizer_event["headers"]["authorization"] = f"Bearer {self.key}"
        sweeper_event = event_file("sweeper-scheduled.json")
        put_event = {"Source": "hookrelay", "DetailType": EVENT_NAME, "Detail": api_event["body"]}
        # Imported once the stack has set the functions' environment: the module imports hookrelay.observability,
        # whose Metrics take their namespace from it (imported before, the handlers run here cannot flush).
        from hookrelay.store.team_items import TEAM_ITEM  # noqa: PLC0415

        team_version = {"team_id": {"S": DEV_TEAM}, "subscription_id": {"S": TEAM_ITEM}}
        return {
            "ApiFunction": Case(
                lambda: api_event,
                expect(lambda answer: answer.get("statusCode") == 202, "publish the event"),
                ("events", "dynamodb", "sqs"),
                ("events", "put_events", {"Entries": [{**put_event, "EventBusName": names["HOOKRELAY_EVENT_BUS"]}]}),
            ),
            "AuthorizerFunction": Case(
                lambda: authorizer_event,
                expect(lambda answer: answer["context"].get("team_id") == DEV_TEAM, "find the key's team"),
                ("dynamodb",),
                (
                    "dynamodb",
                    "get_item",
                    {"TableName": names["HOOKRELAY_API_KEYS_TABLE"], "Key": {"key_hash": {"S": hash_key(self.key)}}},
                ),
            ),
            "IngestFunction": Case(
                lambda: events_queue_batch(str(uuid.uuid4())),
                expect(no_failures, "fan the event out"),
                ("dynamodb", "sqs"),
                (
                    "dynamodb",
                    "batch_get_item",
                    {"RequestItems": {names["HOOKRELAY_SUBSCRIPTIONS_TABLE"]: {"Keys": [team_version]}}},
                ),
            ),
            "DeliveryFunction": Case(
                lambda: sqs_batch("delivery-sqs-batch.json", {"delivery_id": self.pending_delivery(), "attempt": 1}),
                expect(no_failures, "deliver"),
                ("dynamodb", "sqs"),
                (
                    "dynamodb",
                    "get_item",
                    {
                        "TableName": names["HOOKRELAY_DELIVERIES_TABLE"],
                        "Key": {"delivery_id": {"S": str(uuid.uuid4())}},
                    },
                ),
            ),
            "SweeperFunction": Case(
                lambda: sweeper_event,
                expect(lambda answer: answer == {"enqueued": 0}, "sweep"),
                ("dynamodb", "sqs"),
                (
                    "dynamodb",
                    "query",
                    {
                        "TableName": names["HOOKRELAY_DELIVERIES_TABLE"],
                        "IndexName": "due_retries",
                        "KeyConditionExpression": "due_shard = :shard AND due_at <= :now",
                        "ExpressionAttributeValues": {":shard": {"S": "0"}, ":now": {"S": "2026-03-02T10:16:00.000Z"}},
                    },
                ),
            ),
        }

    def children(self) -> list[tuple[Child, Child]]:
        """Each function's (handler, baseline), named by the function's code dir."""
        pairs = []
        for function_id, case in self.cases().items():
            spec = self.stack.template.function(function_id)
            environment = self.environment(function_id)
            name = spec.code_dir.name
            handler = Child(
                name,
                HANDLER_CHILD,
                functools.partial(_handler_arguments, spec.module, spec.handler, case.event),
                environment,
                case.check,
            )
            bare = [json.dumps(case.services), json.dumps(case.first_call)]
            baseline = Child(
                f"{name} baseline",
                BASELINE_CHILD,
                bare.copy,
                environment,
                expect(lambda s: s == 200, "succeed"),
            )
            pairs.append((handler, baseline))
        return pairs


@dataclass(frozen=True)
class Case:
    event: Callable[[], Any]  # the first invocation's (a new one for each run where a run consumes it)
    check: Callable[[Any], None]  # raises when the first invocation did not do its work
    services: tuple[str, ...]  # the bare handler's clients: one per service the function calls
    first_call: tuple[str, str, dict[str, Any]]  # and the first AWS call of the function's invocation


def slowest_imports(child: Child, count: int = 12) -> list[tuple[int, str]]:
    """Where a cold start of the handler goes, by cumulative microseconds (`python -X importtime`).

    Each of the module's direct imports with everything they imported in turn, the module's own code
    (settings parsed, clients created) and the first invocation (with anything it imported).
    """
    timing, stderr = run_child(child, "-X", "importtime")
    timings: list[tuple[int, str]] = []
    for line in stderr.partition(MARKER)[2].splitlines():
        if line.startswith("import time:"):
            _, cumulative, name = line.removeprefix("import time:").split("|")
            if not name.startswith("  "):
                timings.append((int(cumulative), name.strip()))
    imported = sum(micros for micros, _ in timings)
    own = int(timing.imported * 1e6) - imported
    first_invocation = int((timing.total - timing.imported) * 1e6)
    # Imports made by the first invocation are in `timings` too (importtime does not tell them apart).
    return sorted(
        [*timings, (own, "the module's own code: settings, clients, ..."), (first_invocation, "the first invocation")],
        reverse=True,
    )[:count]


def measure(runs: int, profile: bool) -> list[Figure]:
    with local_aws() as endpoint, receiver() as target, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as daemon:
        daemon.bind(("127.0.0.1", 0))  # the X-Ray daemon: takes the children's segments, never reads them
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's server: no line per request
        with redirect_stdout(io.StringIO()):  # the handlers run here to set the stack up log to stdout
            stack = LocalStack.create(REPO / "template.yaml", aws_endpoint=endpoint)
            bench = Bench(stack, target, "{}:{}".format(*daemon.getsockname()))
        pairs = bench.children()
        children = [child for pair in pairs for child in pair]
        for child in children:  # bytecode compiled, files in the page cache
            run_child(child)
        samples: dict[str, list[float]] = {child.name: [] for child in children}
        ratios: dict[str, list[float]] = {handler.name: [] for handler, _ in pairs}
        order = list(pairs)
        for _ in range(runs):
            random.shuffle(order)
            for handler, baseline in order:
                # A handler and its baseline back to back, in either order: a burst of load from
                # elsewhere hits both of a pair, and their ratio, more than a median of each apart.
                both = random.sample((handler, baseline), 2)
                for child in both:
                    samples[child.name].append(run_child(child)[0].total)
                ratios[handler.name].append(samples[handler.name][-1] / samples[baseline.name][-1])
        figures = []
        for handler, baseline in pairs:
            ratio = statistics.median(ratios[handler.name])
            goal = GOALS.get(handler.name, 1.5)  # a new function: the stricter goal
            figures.append(
                Figure(
                    goal="P5",
                    what=f"cold start of the {handler.name} handler (import + first invocation)",
                    measured=f"{statistics.median(samples[handler.name]) * 1e3:.0f} ms",
                    baseline=f"bare boto3 handler {statistics.median(samples[baseline.name]) * 1e3:.0f} ms",
                    result=f"{ratio:.2f}x",
                    target=f"<= {goal}x",
                    met=ratio <= goal,
                )
            )
            if profile:
                print(f"{handler.name}: where the cold start goes (ms; an import with all it imported first)")
                for micros, what in slowest_imports(handler):
                    print(f"  {micros / 1e3:8.1f}  {what}")
        return figures


def main() -> None:
    parser = arguments(__doc__)
    parser.add_argument("--profile", action="store_true", help="print where each handler's cold start goes too")
    options = parser.parse_args()
    report(measure(runs=2 if options.smoke else 15, profile=options.profile), options.figures)


if __name__ == "__main__":
    main()
