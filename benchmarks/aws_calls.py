"""P3: every AWS call per delivery, API → ingest → delivery, and a modeled cost per million deliveries.

    .venv/bin/python benchmarks/aws_calls.py            # 1 000 events x 3 subscriptions
    .venv/bin/python benchmarks/aws_calls.py --smoke    # 20 events x 3

The real handlers run in-process against moto (the local stack's resources) with a receiver on
127.0.0.1 answering 200: POST /v3/events through the API gateway emulation and the authorizer,
EventBridge → the events queue, the ingest handler over the events queue, the delivery handler over
the delivery queue, each fed by the local stack's SQS pollers (which make the ReceiveMessage and
DeleteMessageBatch calls Lambda's event source mapping makes on AWS). A botocore hook counts every
call by stage, service and operation. The containers are warm (one process; the subscription cache
outlives the run), as on a busy stack.

The cost model multiplies those counts by public list prices (us-east-1, stated in PRICES) and adds
what moto cannot show: DynamoDB capacity units from the items' measured sizes, EventBridge's own
SendMessage to the events queue, Lambda GB-seconds from modeled durations (MODELED_DURATIONS: times
against moto are not AWS latencies), X-Ray at Lambda's default sampling, and CloudWatch Logs
ingestion from the bytes the handlers actually logged.
"""

import io
import json
import math
import os
import sys
from collections import Counter
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "layers" / "common" / "python"), str(REPO / "cli"), str(REPO / "tests")]

from boto3.dynamodb.types import Binary  # noqa: E402
from figures import Figure, arguments, report  # noqa: E402
from moto import mock_aws  # noqa: E402
from receivers import receiver  # noqa: E402

from hookrelay import aws, catalog  # noqa: E402
from hookrelay.api_keys import issue_key  # noqa: E402
from hookrelay.settings import get_settings  # noqa: E402
from hookrelay.store.api_keys import DynamoApiKeyStore  # noqa: E402
from hookrelay_cli.local.gateway import HttpRequest  # noqa: E402
from hookrelay_cli.local.stack import LocalStack, use_local_credentials  # noqa: E402

SUBSCRIPTIONS = 3
STAGES = ("api", "ingest", "delivery")
CHUNK = 50
EVENT_NAME = "signature_request.done"
# US East (N. Virginia) list prices, USD, from the AWS pricing pages (Lambda arm64, SQS standard,
# DynamoDB on-demand standard table class after the November 2024 reduction, EventBridge custom
# events, HTTP API, X-Ray traces recorded, CloudWatch Logs standard ingestion). Free tiers ignored.
PRICES = {
    "lambda_request": 0.20 / 1e6,
    "lambda_gb_second_arm64": 0.0000133334,
    "sqs_request": 0.40 / 1e6,
    "dynamodb_write_unit": 0.625 / 1e6,
    "dynamodb_read_unit": 0.125 / 1e6,
    "eventbridge_event": 1.00 / 1e6,
    "http_api_request": 1.00 / 1e6,
    "xray_trace": 5.00 / 1e6,
    "logs_gb": 0.50,
}
MEMORY_GB = 0.5  # template.yaml Globals MemorySize 512
# Billed duration per invocation on AWS (moto's times say nothing about it): the delivery batch is
# bound by its slowest receiver; 200 ms is a slow-ish receiver, plus the batch's DynamoDB calls.
MODELED_DURATIONS = {
    "api": 0.030,  # validate + PutEvents
    "authorizer": 0.003,  # cached key lookup
    "ingest": 0.150,  # a batch of 10 events: cached subscriptions, conditional writes, one send per 10
    "delivery": 0.230,  # a batch of 10 sent concurrently to 200 ms receivers
}
XRAY_SAMPLED = 0.05  # Lambda active tracing: first request each second, then 5 %
COST_GOAL = 3.00
# A subscription with a rate_limit (issue 17) adds, per delivery, one conditional UpdateItem of its
# rate# item (1 write unit); each time a delivery finds its slot taken ("waits"), one more (failed
# conditions are billed too) and one SendMessage putting it back, received and deleted by tens.
# Waits per delivery depend on the backlog: ~12 for 500 published at once at rate_limit 5 (simulated
# with rate_limit.MAX_WAIT_SECONDS), 0 while deliveries come slower than the limit. This benchmark's
# subscriptions have none, so its measured calls include no rate# write.
RATE_LIMITED_WAITS_PER_DELIVERY = 12
SQS_SENDS_GOAL = 0.1


class CallCounter:
    """AWS calls by stage and `service.Operation`, with the DynamoDB table or SQS queue they went to."""

    def __init__(self) -> None:
        self.stage = "setup"
        self.calls: Counter[tuple[str, str]] = Counter()
        self.targets: Counter[tuple[str, str, str]] = Counter()

    def __call__(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        operation = f"{model.service_model.service_name}.{model.name}"
        self.calls[self.stage, operation] += 1
        target = str(params.get("TableName") or params.get("QueueUrl", "")).rsplit("/", 1)[-1]
        self.targets[self.stage, operation, target] += 1

    def of(self, stage: str) -> Counter[str]:
        return Counter({operation: count for (where, operation), count in self.calls.items() if where == stage})


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
            return len(value.value)
        return len(str(value).encode("utf-8"))

    return sum(len(name) + size(value) for name, value in item.items())


def run(events: int) -> tuple[CallCounter, dict[str, int], int]:
    counter = CallCounter()
    logs = ByteCounter()
    use_local_credentials()
    os.environ["HOOKRELAY_ALLOW_PRIVATE_ENDPOINTS"] = "true"
    aws.session().events.register("before-parameter-build", counter)
    with receiver() as target, mock_aws(), redirect_stdout(logs):
        stack = LocalStack.create(REPO / "template.yaml", aws_endpoint="moto")
        settings = get_settings()
        pollers = {poller.function_id: poller for poller in stack.queue_pollers()}
        gateway = stack.gateway()
        key = issue_key(DynamoApiKeyStore(aws.table(settings.api_keys_table)), "bench").key
        headers = [("Authorization", f"Bearer {key}"), ("Content-Type", "application/json")]

        def call(method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
            response = gateway.handle(HttpRequest(method, path, headers, json.dumps(body).encode(), "127.0.0.1"))
            assert response.status < 300, response.body
            answer: dict[str, Any] = json.loads(response.body)
            return answer

        for index in range(SUBSCRIPTIONS):
            endpoint = f"http://127.0.0.1:{target.port}/hook/{index}"
            call("POST", "/v3/webhooks", {"endpoint": endpoint, "subscribed_events": ["*"]})
        sample = catalog.event_type(EVENT_NAME)
        assert sample is not None
        # One event first, so every container is warm when counting starts (as on a busy stack);
        # then rounds of CHUNK events, so moto's queues stay short (its sends slow down as they fill).
        log_bytes = Counter[str]()
        rounds = [("setup", 1)] + [("measured", min(CHUNK, events - done)) for done in range(0, events, CHUNK)]
        for label, count in rounds:
            for stage, work in (
                ("api", lambda n=count: _publish(call, n, sample.sample)),
                ("ingest", lambda: _drain(pollers["IngestFunction"])),
                ("delivery", lambda: _drain(pollers["DeliveryFunction"])),
            ):
                counter.stage = stage if label == "measured" else "setup"
                before = logs.bytes
                work()
                if label == "measured":
                    log_bytes[stage] += logs.bytes - before
        counter.stage = "setup"
        delivered = Counter(request.headers["webhook-id"] for request in target.received)
        expected = SUBSCRIPTIONS * (events + 1)
        if len(delivered) != expected or set(delivered.values()) != {1}:
            raise AssertionError(
                f"{len(delivered)} of {expected} deliveries arrived, counts {Counter(delivered.values())}"
            )
        item_bytes = _delivery_item_bytes(settings.deliveries_table)
    return counter, log_bytes, item_bytes


def _publish(call: Any, count: int, data: dict[str, Any]) -> None:
    for _ in range(count):
        call("POST", "/v3/events", {"event_name": EVENT_NAME, "data": data})


def _drain(poller: Any) -> None:
    while poller.poll_once():
        pass


def _delivery_item_bytes(table_name: str) -> int:
    items = [
        item for item in aws.table(table_name).scan()["Items"] if not str(item["delivery_id"]).startswith("event#")
    ]
    return int(sum(dynamodb_item_bytes(item) for item in items) / len(items))


def cost_per_million(
    counter: CallCounter, log_bytes: dict[str, int], item_bytes: int, deliveries: int, events: int
) -> dict[str, float]:
    """USD per million deliveries, by line item."""
    calls = counter.of("api") + counter.of("ingest") + counter.of("delivery")
    per = 1e6 / deliveries
    invocations = {
        "api": events,
        "authorizer": events,
        "ingest": math.ceil(events / 10),
        "delivery": math.ceil(deliveries / 10),
    }
    sqs_requests = sum(count for operation, count in calls.items() if operation.startswith("sqs.")) + events
    item_units = math.ceil(item_bytes / 1024)

    def write_units(stage: str, operation: str, table: str) -> int:
        """Write units of one call. A delivery record is billed on its size, and its creation once
        more in the keys-only by_subscription index; anything else here is under 1 KB."""
        if "Deliveries" in table and operation == "dynamodb.PutItem":
            return item_units + 1
        if "Deliveries" in table and operation == "dynamodb.UpdateItem" and stage == "delivery":
            return item_units
        return 1

    writes = ("dynamodb.PutItem", "dynamodb.UpdateItem", "dynamodb.DeleteItem")
    units = sum(
        count * write_units(stage, operation, table)
        for (stage, operation, table), count in counter.targets.items()
        if stage != "setup" and operation in writes
    )
    read_units = sum(count for operation, count in calls.items() if operation in ("dynamodb.GetItem", "dynamodb.Query"))
    gb_seconds = sum(invocations[name] * MODELED_DURATIONS[name] for name in invocations) * MEMORY_GB
    return {
        "API Gateway HTTP API": events * PRICES["http_api_request"] * per,
        "EventBridge": events * PRICES["eventbridge_event"] * per,
        "Lambda requests": sum(invocations.values()) * PRICES["lambda_request"] * per,
        "Lambda duration": gb_seconds * PRICES["lambda_gb_second_arm64"] * per,
        "SQS": sqs_requests * PRICES["sqs_request"] * per,
        "DynamoDB writes": units * PRICES["dynamodb_write_unit"] * per,
        "DynamoDB reads": read_units * PRICES["dynamodb_read_unit"] * per,
        "X-Ray": sum(invocations.values()) * XRAY_SAMPLED * PRICES["xray_trace"] * per,
        "CloudWatch Logs": sum(log_bytes.values()) / 1e9 * PRICES["logs_gb"] * per,
    }


def rate_limit_cost_per_million(waits_per_delivery: float) -> tuple[float, float]:
    """(AWS calls, USD) a rate limit adds per million deliveries of the subscription."""
    writes = 1 + waits_per_delivery
    sqs_requests = waits_per_delivery * (1 + 2 / 10)
    usd = writes * PRICES["dynamodb_write_unit"] * 1e6 + sqs_requests * PRICES["sqs_request"] * 1e6
    return (writes + sqs_requests) * 1e6, usd


def main() -> None:
    options = arguments(__doc__).parse_args()
    events = 20 if options.smoke else 1_000
    deliveries = events * SUBSCRIPTIONS
    counter, log_bytes, item_bytes = run(events)
    print(f"{events} events x {SUBSCRIPTIONS} subscriptions = {deliveries} deliveries; calls per delivery by stage:")
    for stage in STAGES:
        calls = counter.of(stage)
        listed = ", ".join(f"{operation} {count / deliveries:.3f}" for operation, count in sorted(calls.items()))
        print(f"  {stage:>8}: {listed}; logs {log_bytes[stage] / deliveries:.0f} B")
    print(f"  delivery record: {item_bytes} B")
    costs = cost_per_million(counter, log_bytes, item_bytes, deliveries, events)
    print("modeled cost per million deliveries (USD, us-east-1 list prices):")
    for line, usd in costs.items():
        print(f"  {line:>22}: {usd:.3f}")
    total = sum(costs.values())
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
    rate_limited_calls, rate_limited_usd = rate_limit_cost_per_million(RATE_LIMITED_WAITS_PER_DELIVERY)
    figures = [
        Figure(
            "P3",
            f"delivery-queue sends per delivery, {SUBSCRIPTIONS} subscriptions per event",
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
            f"a rate-limited subscription's extra calls per delivery ({RATE_LIMITED_WAITS_PER_DELIVERY} waits)",
            f"1 + {RATE_LIMITED_WAITS_PER_DELIVERY} UpdateItem, {RATE_LIMITED_WAITS_PER_DELIVERY} SendMessage",
            "",
            f"{rate_limited_calls / 1e6:.1f} calls, +${rate_limited_usd:.2f}/M",
            "(reported)",
            True,
        ),
        Figure(
            "P3",
            "modeled cost per million deliveries",
            ", ".join(f"{line} {usd:.2f}" for line, usd in costs.items()),
            "",
            f"${total:.2f}",
            f"<= ${COST_GOAL:.2f}",
            total <= COST_GOAL,
        ),
    ]
    report(figures, options.figures)


if __name__ == "__main__":
    main()
