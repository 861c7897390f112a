"""P3: every AWS call per delivery, API → ingest → delivery, at 1, 3 and 10 subscriptions per event,
and the modeled cost per million deliveries (`benchmarks/cost_model.py`).

    .venv/bin/python benchmarks/aws_calls.py            # 200 events at each fan-out (about 2 minutes)
    .venv/bin/python benchmarks/aws_calls.py --smoke    # 10 events at each

The real handlers run in-process against moto (the local stack's resources) with a receiver on
127.0.0.1 answering 200: POST /v3/events/batch (10 events per request) through the API gateway
emulation and the authorizer, EventBridge → the events queue, the ingest handler over the events
queue, the delivery handler over the delivery queue, each fed by the local stack's SQS pollers
(which make the ReceiveMessage and DeleteMessageBatch calls Lambda's event source mapping makes on
AWS). A botocore hook counts every call by stage, service and operation. The containers are warm
(one process; the subscription cache outlives the run), as on a busy stack. Each fan-out runs on a
fresh stack with a team of its own.

DynamoDB capacity units come from the sizes of the items each write left (read back by key after
the run) and from the indexes whose keys it wrote; CloudWatch Logs from the bytes the handlers
logged. Anchors: EventBridge API destinations ~ $1.20 per million, hosted services $10-$100 per million.
"""

import copy
import functools
import io
import json
import math
import os
import re
import sys
from collections import Counter
from collections.abc import Callable
from contextlib import redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "layers" / "common" / "python"), str(REPO / "cli"), str(REPO / "tests")]

from boto3.dynamodb.types import Binary  # noqa: E402
from cost_model import (  # noqa: E402
    DYNAMODB_READ_REQUEST_UNIT,
    DYNAMODB_WRITE_REQUEST_UNIT,
    GOAL_DELIVERIES_PER_SECOND,
    LAMBDA_SAMPLING,
    PROVISIONED_TARGET_UTILIZATION,
    SQS_REQUEST,
    TEAM_LIMIT_WRITE_UNITS_PER_REQUEST,
    UNIT_PRICES,
    BillingMode,
    Measured,
    Publishing,
    Tracing,
    cost_per_million,
)
from figures import Figure, arguments, report  # noqa: E402
from moto import mock_aws  # noqa: E402
from receivers import receiver  # noqa: E402

from hookrelay import aws, catalog, wiring  # noqa: E402
from hookrelay.api_keys import issue_key  # noqa: E402
from hookrelay.settings import get_settings  # noqa: E402
from hookrelay_cli.local.gateway import HttpRequest  # noqa: E402
from hookrelay_cli.local.stack import LocalStack, use_local_credentials  # noqa: E402

FAN_OUTS = (1, 3, 10)
STAGES = ("api", "ingest", "delivery")
CHUNK = 50
EVENT_NAME = "signature_request.done"
# The run publishes through POST /v3/events/batch, 10 events per request, as the goal rows assume;
# the model also prices POST /v3/events (one event per request) from the same calls.
BATCH_PUBLISHING = Publishing(events_per_request=10)
PUBLISHINGS = (Publishing(events_per_request=1), BATCH_PUBLISHING)
# The goal rows: a steady 10 000 deliveries/s is what provisioned capacity with auto scaling is for,
# and producers at that rate publish through the batch route.
GOAL_MODE = BillingMode.PROVISIONED
COST_GOALS = {3: 2.40, 10: 1.50}
# A subscription with a rate_limit (issues 17, 23) adds, per delivery, its share of one conditional
# UpdateItem of its rate# item per batch (a tenth: RATE_SLOT_WRITES_PER_DELIVERY), and while it waits for
# its slot: within 15 minutes, one SendMessage carrying the slot, received and deleted by tens; further,
# its record's write (status waiting), the sweeper's read of it (BatchGetItem, eventually consistent: half
# a read unit) and a SendMessage by tens, received and deleted by tens. The sweeper's one position write
# a minute and a container's first read of the rate# item are left out (per minute, per container).
# Those waiting on the queue are listed for the delivery log, a batch's in one PutItem (up to ten entries
# of about 160 bytes: 2 write units, and 1 for its by_subscription index entry).
# benchmarks/rate_limits.py, 10 000 events published at once at rate_limit 1: 1 003 rate# writes,
# 9 160 waiting records (the rest waited on the queue or in the container), 87 listings of those on the
# queue, 161 position writes.
# This benchmark's subscriptions have none, so its measured calls include no rate# write.
RATE_SLOT_WRITES_PER_DELIVERY = 0.1
RATE_LIMITED_BURST = {"on the queue": 0.084, "in the wait index": 0.916}
QUEUE_WAITS_PER_LISTING = 10
QUEUE_WAIT_LISTING_WRITE_UNITS = 3
SQS_SENDS_GOAL = 0.1
DYNAMODB_WRITES = ("PutItem", "UpdateItem", "DeleteItem")


@dataclass(frozen=True)
class Write:
    """One item written by one call: where, and the key to read its size back by."""

    stage: str
    operation: str
    table: str
    key: tuple[tuple[str, str], ...]
    update_expression: str


class CallCounter:
    """AWS calls by stage and `service.Operation`, with the DynamoDB table or SQS queue they went to,
    and every DynamoDB item written."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.stage = "setup"
        self.calls: Counter[tuple[str, str]] = Counter()
        self.targets: Counter[tuple[str, str, str]] = Counter()
        self.writes: list[Write] = []
        self.consistent_reads: Counter[tuple[str, bool]] = Counter()

    def __call__(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        service = model.service_model.service_name
        operation = f"{service}.{model.name}"
        self.calls[self.stage, operation] += 1
        target = str(params.get("TableName") or params.get("QueueUrl", "")).rsplit("/", 1)[-1]
        self.targets[self.stage, operation, target] += 1
        if service == "dynamodb" and self.stage != "setup":
            self._count_writes(model.name, target, params)
            self._count_reads(model.name, params)

    def _count_writes(self, operation: str, target: str, params: dict[str, Any]) -> None:
        if operation in DYNAMODB_WRITES:
            self._wrote(operation, target, params.get("Key") or params.get("Item") or {}, params)
        elif operation == "BatchWriteItem":
            for table, requests in params["RequestItems"].items():
                for request in requests:
                    put = request.get("PutRequest", {}).get("Item")
                    self._wrote("PutItem" if put else "DeleteItem", table, put or request["DeleteRequest"]["Key"], {})
        elif operation == "TransactWriteItems":
            for item in params["TransactItems"]:
                (kind, action), *_ = item.items()
                # A transaction bills each of its writes twice.
                for _twice in range(2):
                    self._wrote(kind + "Item", action["TableName"], action.get("Key") or action.get("Item"), action)

    def _count_reads(self, operation: str, params: dict[str, Any]) -> None:
        if operation in ("GetItem", "Query"):
            self.consistent_reads[self.stage, bool(params.get("ConsistentRead"))] += 1
        elif operation == "BatchGetItem":
            for request in params["RequestItems"].values():
                self.consistent_reads[self.stage, bool(request.get("ConsistentRead"))] += len(request["Keys"])

    def _wrote(self, operation: str, table: str, item: dict[str, Any], params: dict[str, Any]) -> None:
        key = tuple(sorted((name, _plain(value)) for name, value in item.items()))
        self.writes.append(Write(self.stage, operation, table, key, str(params.get("UpdateExpression", ""))))

    def of(self, stage: str) -> Counter[str]:
        return Counter({operation: count for (where, operation), count in self.calls.items() if where == stage})


def _plain(value: Any) -> str:
    """An attribute value as text, whether the call carried it typed ({"S": ...}) or as Python."""
    if isinstance(value, dict) and len(value) == 1 and next(iter(value)) in ("S", "N", "B"):
        return str(next(iter(value.values())))
    return str(value)


class ByteCounter(io.TextIOBase):
    """Where the handlers' log lines (and EMF metrics) go: counted, not kept."""

    def __init__(self) -> None:
        self.bytes = 0

    def write(self, text: str) -> int:
        self.bytes += len(text.encode("utf-8"))
        return len(text)


def dynamodb_item_bytes(item: dict[str, Any]) -> int:
    """An item's size as DynamoDB bills it (names plus values, close enough for strings and numbers)."""

    def size(value: Any) -> int:
        if isinstance(value, dict):
            return 3 + sum(len(name) + size(inner) for name, inner in value.items())
        if isinstance(value, list):
            return 3 + sum(1 + size(inner) for inner in value)
        if isinstance(value, bool) or value is None:
            return 1
        if isinstance(value, Binary):
            return len(value.value)  # type: ignore[attr-defined]  # boto3-stubs leave Binary.value out
        return len(str(value).encode("utf-8"))

    return sum(len(name) + size(value) for name, value in item.items())


@dataclass(frozen=True)
class Run:
    fan_out: int
    events: int
    counter: CallCounter
    log_bytes: Counter[str]
    write_units: int
    read_units: float
    delivery_record_bytes: int

    @property
    def deliveries(self) -> int:
        return self.events * self.fan_out

    def measured(self) -> Measured:
        sqs = sum(
            count
            for stage in ("ingest", "delivery")
            for operation, count in self.counter.of(stage).items()
            if operation.startswith("sqs.")
        )
        return Measured(
            fan_out=self.fan_out,
            sqs_requests=sqs / self.deliveries,
            write_units=self.write_units / self.deliveries,
            read_units=self.read_units / self.deliveries,
            log_bytes=sum(self.log_bytes.values()) / self.deliveries,
        )


def run(fan_out: int, events: int, counter: CallCounter, logs: ByteCounter) -> Run:
    """One fan-out on a fresh stack, its calls counted by `counter` and its logs by `logs` (each hooked
    up once, before the process's clients and loggers exist: they keep the hooks and stream they found)."""
    counter.reset()
    with receiver() as target, mock_aws():
        stack = LocalStack.create(REPO / "template.yaml", aws_endpoint="moto")
        pollers = {
            poller.function_id: poller
            for queue_id in ("EventsQueue", "DeliveryQueue")
            for poller in stack.queue_pollers_of(queue_id)
        }
        gateway = stack.gateway()
        # A team per fan-out: the warm containers' subscription caches outlive each stack.
        key = issue_key(wiring.api_key_store(get_settings()), f"bench-{fan_out}").key
        headers = [("Authorization", f"Bearer {key}"), ("Content-Type", "application/json")]

        def call(method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
            response = gateway.handle(HttpRequest(method, path, headers, json.dumps(body).encode(), "127.0.0.1"))
            assert response.status < 300, response.body
            answer: dict[str, Any] = json.loads(response.body)
            return answer

        for index in range(fan_out):
            endpoint = f"http://127.0.0.1:{target.port}/hook/{index}"
            call("POST", "/v3/webhooks", {"endpoint": endpoint, "subscribed_events": ["*"]})
        sample = catalog.event_type(EVENT_NAME)
        assert sample is not None
        # One event first, so every container is warm when counting starts (as on a busy stack);
        # then rounds of CHUNK events, so moto's queues stay short (its sends slow down as they fill).
        log_bytes = Counter[str]()
        rounds = [("setup", 1)] + [("measured", min(CHUNK, events - done)) for done in range(0, events, CHUNK)]
        for label, count in rounds:
            stages: tuple[tuple[str, Callable[[], object]], ...] = (
                ("api", functools.partial(_publish, call, count, sample.sample)),
                ("ingest", lambda: _drain(pollers["IngestFunction"])),
                ("delivery", lambda: _drain(pollers["DeliveryFunction"])),
            )
            for stage, work in stages:
                counter.stage = stage if label == "measured" else "setup"
                before = logs.bytes
                work()
                if label == "measured":
                    log_bytes[stage] += logs.bytes - before
        counter.stage = "setup"
        delivered = Counter(request.headers["webhook-id"] for request in target.received)
        expected = fan_out * (events + 1)
        if len(delivered) != expected or set(delivered.values()) != {1}:
            raise AssertionError(
                f"{len(delivered)} of {expected} deliveries arrived, counts {Counter(delivered.values())}"
            )
        tables = _tables()
        # The API's writes are the team limits' counters, which the model prices per request.
        write_units = sum(_write_units(write, tables) for write in counter.writes if write.stage != "api")
        read_units = sum(
            count if consistent else count / 2
            for (stage, consistent), count in counter.consistent_reads.items()
            if stage != "setup"
        )
        record_bytes = _delivery_record_bytes(tables[get_settings().deliveries_table])
    return Run(fan_out, events, copy.deepcopy(counter), log_bytes, write_units, read_units, record_bytes)


def _publish(call: Any, count: int, data: dict[str, Any]) -> None:
    per_request = BATCH_PUBLISHING.events_per_request
    for start in range(0, count, per_request):
        size = min(per_request, count - start)
        call("POST", "/v3/events/batch", {"events": [{"event_name": EVENT_NAME, "data": data}] * size})


def _drain(poller: Any) -> None:
    while poller.poll_once():
        pass


@dataclass(frozen=True)
class Table:
    key_names: tuple[str, ...]
    index_keys: tuple[tuple[str, ...], ...]  # each index's key attributes (every index here is keys only)
    item_bytes: dict[tuple[tuple[str, str], ...], int]  # by key, as the run left them


def _tables() -> dict[str, Table]:
    dynamodb = aws.client("dynamodb")
    tables = {}
    for name in dynamodb.list_tables()["TableNames"]:
        description = dynamodb.describe_table(TableName=name)["Table"]
        key_names = tuple(part["AttributeName"] for part in description["KeySchema"])
        index_keys = tuple(
            tuple(part["AttributeName"] for part in index["KeySchema"])
            for index in description.get("GlobalSecondaryIndexes", [])
        )
        sizes = {}
        scan: dict[str, Any] = {}
        while True:
            page = aws.table(name).scan(**scan)
            for item in page["Items"]:
                sizes[tuple(sorted((key, str(item[key])) for key in key_names))] = dynamodb_item_bytes(item)
            if "LastEvaluatedKey" not in page:
                break
            scan = {"ExclusiveStartKey": page["LastEvaluatedKey"]}
        tables[name] = Table(key_names, index_keys, sizes)
    return tables


def _write_units(write: Write, tables: dict[str, Table]) -> int:
    """Write units of one item write: its size in KB (the item as the run left it; 1 for one since
    deleted), plus one per keys-only index entry it wrote (an item put with the index's key, or an
    update setting it; a REMOVE of an index key the item had, a retry's that succeeds, is not counted)."""
    table = tables[write.table]
    key = tuple((name, value) for name, value in write.key if name in table.key_names)
    size = table.item_bytes.get(key, 0)
    units = max(1, math.ceil(size / 1024)) if write.operation != "DeleteItem" else 1
    written = dict(write.key) if write.operation == "PutItem" else {}
    set_clause = _set_clause(write.update_expression)
    for index_key in table.index_keys:
        if all(name in written for name in index_key) or any(name in set_clause for name in index_key):
            units += 1
    return units


def _set_clause(update_expression: str) -> str:
    match = re.search(r"\bSET\b(.*?)(?:\b(?:REMOVE|ADD|DELETE)\b|$)", update_expression)
    return match.group(1) if match else ""


def _delivery_record_bytes(deliveries: Table) -> int:
    """The mean size of a delivery record (an item keyed by a delivery id: a UUID)."""
    sizes = [size for key, size in deliveries.item_bytes.items() if len(dict(key)["delivery_id"]) == 36]
    return int(sum(sizes) / len(sizes)) if sizes else 0


def rate_limit_cost_per_million(on_the_queue: float, in_the_wait_index: float) -> tuple[float, float, float]:
    """(DynamoDB writes, AWS calls, USD on-demand) a rate limit adds per million deliveries of the
    subscription, those shares of them waiting on the queue and in the wait index."""
    listings = on_the_queue / QUEUE_WAITS_PER_LISTING
    writes = RATE_SLOT_WRITES_PER_DELIVERY + in_the_wait_index + listings
    reads = in_the_wait_index / 10  # BatchGetItem calls: half a read unit per record
    sqs_requests = on_the_queue * (1 + 2 / 10) + in_the_wait_index * (1 + 2) / 10
    usd = (
        (writes + listings * (QUEUE_WAIT_LISTING_WRITE_UNITS - 1)) * DYNAMODB_WRITE_REQUEST_UNIT.usd
        + in_the_wait_index * 0.5 * DYNAMODB_READ_REQUEST_UNIT.usd
        + sqs_requests * SQS_REQUEST.usd
    ) * 1e6
    return writes, (writes + reads + sqs_requests) * 1e6, usd


def print_prices(tracing: Tracing) -> None:
    print("unit prices (USD, us-east-1 list prices; free tiers ignored):")
    for price in UNIT_PRICES:
        print(f"  {price.name:>36}: {price.usd:.10g} per {price.per}")
    print(
        f"  DynamoDB provisioned capacity is priced at {PROVISIONED_TARGET_UTILIZATION:.0%} auto-scaling target "
        f"utilization; X-Ray at Lambda's fixed sampling ({tracing.reservoir_per_second:g}/s, then "
        f"{tracing.fixed_rate:.0%} of the rest) at {GOAL_DELIVERIES_PER_SECOND} deliveries/s"
    )


def print_calls(result: Run) -> None:
    print(
        f"{result.events} events x {result.fan_out} subscriptions = {result.deliveries} deliveries; "
        "calls per delivery by stage:"
    )
    for stage in STAGES:
        calls = result.counter.of(stage)
        listed = ", ".join(f"{operation} {count / result.deliveries:.3f}" for operation, count in sorted(calls.items()))
        print(f"  {stage:>8}: {listed}; logs {result.log_bytes[stage] / result.deliveries:.0f} B")
    measured = result.measured()
    print(
        f"  DynamoDB: {measured.write_units:.2f} write units, {measured.read_units:.2f} read units per delivery; "
        f"delivery record {result.delivery_record_bytes} B"
    )


def print_costs(runs: list[Run], tracing: Tracing) -> dict[tuple[int, BillingMode, int], float]:
    """The cost table (goal mode, batch publishing) by line item, then the totals of every variant."""
    totals = {}
    lines: dict[int, dict[str, float]] = {}
    for result in runs:
        for mode in BillingMode:
            for publishing in PUBLISHINGS:
                costs = cost_per_million(result.measured(), publishing, mode, tracing)
                totals[result.fan_out, mode, publishing.events_per_request] = sum(costs.values())
                if mode is GOAL_MODE and publishing == BATCH_PUBLISHING:
                    lines[result.fan_out] = costs
    header = "".join(f"{f'{fan_out}/event':>10}" for fan_out in FAN_OUTS)
    print(
        f"modeled USD per million deliveries (DynamoDB {GOAL_MODE}, "
        f"{BATCH_PUBLISHING.events_per_request} events per request):"
    )
    print(f"  {'subscriptions per event':>28}{header}")
    for line in lines[FAN_OUTS[0]]:
        print(f"  {line:>28}" + "".join(f"{lines[fan_out][line]:>10.3f}" for fan_out in FAN_OUTS))
    print("totals by billing mode and events per request:")
    for mode in BillingMode:
        for publishing in PUBLISHINGS:
            label = f"{mode}, {publishing.events_per_request} per request"
            print(
                f"  {label:>28}"
                + "".join(f"{totals[fan_out, mode, publishing.events_per_request]:>10.2f}" for fan_out in FAN_OUTS)
            )
    return totals


def main() -> None:
    options = arguments(__doc__).parse_args()
    events = 10 if options.smoke else 200
    tracing = LAMBDA_SAMPLING
    print_prices(tracing)
    use_local_credentials()
    os.environ["HOOKRELAY_ALLOW_PRIVATE_ENDPOINTS"] = "true"
    counter = CallCounter()
    aws.session().events.register("before-parameter-build", counter)
    logs = ByteCounter()
    with redirect_stdout(logs):
        runs = [run(fan_out, events, counter, logs) for fan_out in FAN_OUTS]
    for result in runs:
        print_calls(result)
    totals = print_costs(runs, tracing)
    figures = [figure for result in runs if result.fan_out == 3 for figure in call_figures(result)]
    for fan_out in FAN_OUTS:
        batch = totals[fan_out, GOAL_MODE, BATCH_PUBLISHING.events_per_request]
        variants = ", ".join(
            f"{mode} {per} per request ${totals[fan_out, mode, per]:.2f}"
            for mode in BillingMode
            for per in (publishing.events_per_request for publishing in PUBLISHINGS)
        )
        goal = COST_GOALS.get(fan_out)
        figures.append(
            Figure(
                "P3",
                f"modeled cost per million deliveries, {fan_out} subscriptions per event "
                f"(DynamoDB {GOAL_MODE} at {PROVISIONED_TARGET_UTILIZATION:.0%}, "
                f"{BATCH_PUBLISHING.events_per_request} events per request)",
                variants,
                "",
                f"${batch:.2f}",
                f"<= ${goal:.2f}" if goal else "(reported)",
                goal is None or batch <= goal,
            )
        )
    report(figures, options.figures)


def call_figures(result: Run) -> list[Figure]:
    """The per-delivery call figures, at 3 subscriptions per event."""
    counter, deliveries = result.counter, result.deliveries
    delivery = counter.of("delivery")
    all_calls = sum(sum(counter.of(stage).values()) for stage in STAGES)
    delivery_queue = get_settings().delivery_queue_url.rsplit("/", 1)[-1]
    fan_out_sends = sum(
        count
        for (stage, operation, queue), count in counter.targets.items()
        if stage == "ingest" and operation == "sqs.SendMessageBatch" and queue == delivery_queue
    )
    attempt_writes = sum(delivery[f"dynamodb.{op}"] for op in ("PutItem", "UpdateItem", "BatchWriteItem", "DeleteItem"))
    subscription_reads = Counter(
        {
            operation: count
            for (stage, operation, table), count in counter.targets.items()
            if stage == "delivery" and operation.startswith("dynamodb.") and "Subscriptions" in table
        }
    )
    # A warm container reads the versions of its batch's teams (one BatchGetItem) and queries nothing.
    version_reads = subscription_reads.pop("dynamodb.BatchGetItem", 0)
    subscription_queries = sum(subscription_reads.values())
    rate_limited_writes, rate_limited_calls, rate_limited_usd = rate_limit_cost_per_million(
        RATE_LIMITED_BURST["on the queue"], RATE_LIMITED_BURST["in the wait index"]
    )
    api_requests = math.ceil(result.events / BATCH_PUBLISHING.events_per_request)
    team_limit_writes = sum(write.stage == "api" for write in counter.writes)
    return [
        Figure(
            "P3",
            "team-limit counter writes per API request (hookrelay.team_limits; priced per request by the model)",
            f"{team_limit_writes} UpdateItem for {api_requests} requests",
            "",
            f"{team_limit_writes / api_requests:.2f}",
            f"{TEAM_LIMIT_WRITE_UNITS_PER_REQUEST} (the model's)",
            team_limit_writes == api_requests * TEAM_LIMIT_WRITE_UNITS_PER_REQUEST,
        ),
        Figure(
            "P3",
            f"delivery-queue sends per delivery, {result.fan_out} subscriptions per event",
            f"{fan_out_sends} SendMessageBatch",
            "",
            f"{fan_out_sends / deliveries:.3f}",
            f"<= {SQS_SENDS_GOAL}",
            fan_out_sends / deliveries <= SQS_SENDS_GOAL,
        ),
        Figure(
            "P3",
            "DynamoDB writes per delivery attempt",
            f"{attempt_writes} writes for {deliveries} attempts",
            "",
            f"{attempt_writes / deliveries:.2f}",
            "<= 1",
            attempt_writes <= deliveries,
        ),
        Figure(
            "P3",
            "subscription queries per delivery, warm container",
            f"{subscription_queries} reads",
            "",
            f"{subscription_queries / deliveries:.3f}",
            "0",
            subscription_queries == 0,
        ),
        Figure(
            "P3",
            "team version reads per delivery (one per batch)",
            f"{version_reads} BatchGetItem",
            "",
            f"{version_reads / deliveries:.3f}",
            "(reported)",
            True,
        ),
        Figure(
            "P3",
            "all AWS calls per delivery",
            f"{all_calls} calls",
            "",
            f"{all_calls / deliveries:.2f}",
            "(reported)",
            True,
        ),
        Figure(
            "P3",
            "a rate-limited subscription's extra calls per delivery (10 000 published at once at rate_limit 1)",
            f"{rate_limited_writes:.2f} writes, "
            + ", ".join(f"{share:.0%} waiting {where}" for where, share in RATE_LIMITED_BURST.items()),
            "",
            f"{rate_limited_calls / 1e6:.1f} calls, +${rate_limited_usd:.2f}/M on-demand",
            "(reported)",
            True,
        ),
    ]


if __name__ == "__main__":
    main()
