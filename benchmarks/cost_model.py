"""The cost model of `benchmarks/aws_calls.py`: every unit price, stated once, and the arithmetic that
turns the calls, capacity units and log bytes measured per delivery into USD per million deliveries.

Anchors: EventBridge API destinations cost about $1.20 per million ($1.00 per million events + $0.20
per million invocations) and neither sign, retry on a schedule, nor keep a delivery log; hosted
webhook services charge $10 to $100 per million.

What is modeled rather than measured: Lambda billed durations (times against moto are not AWS
latencies), the provisioned capacity's utilization, the X-Ray traces at the goal load (sampling
depends on the request rate), and the publishing route's batching until the measured run uses it.
"""

from dataclasses import dataclass
from enum import StrEnum


@dataclass(frozen=True)
class UnitPrice:
    name: str
    usd: float
    per: str


# US East (N. Virginia) list prices in USD, from each service's AWS pricing page; free tiers and
# volume discounts left out. DynamoDB: standard table class, after the November 2024 on-demand cut.
LAMBDA_REQUEST = UnitPrice("Lambda request", 0.20 / 1e6, "invocation")
LAMBDA_GB_SECOND = UnitPrice("Lambda duration, arm64", 0.0000133334, "GB-second")
HTTP_API_REQUEST = UnitPrice("API Gateway HTTP API", 1.00 / 1e6, "request (first 300 M a month)")
EVENTBRIDGE_EVENT = UnitPrice("EventBridge custom event", 1.00 / 1e6, "entry (64 KB chunk)")
SQS_REQUEST = UnitPrice("SQS standard", 0.40 / 1e6, "request (64 KB chunk)")
DYNAMODB_WRITE_REQUEST_UNIT = UnitPrice("DynamoDB on-demand write", 0.625 / 1e6, "write request unit (1 KB)")
DYNAMODB_READ_REQUEST_UNIT = UnitPrice("DynamoDB on-demand read", 0.125 / 1e6, "read request unit (4 KB consistent)")
DYNAMODB_WCU_HOUR = UnitPrice("DynamoDB provisioned write", 0.00065, "WCU-hour")
DYNAMODB_RCU_HOUR = UnitPrice("DynamoDB provisioned read", 0.00013, "RCU-hour")
XRAY_TRACE_RECORDED = UnitPrice("X-Ray traces recorded", 5.00 / 1e6, "trace")
XRAY_TRACE_SCANNED = UnitPrice("X-Ray traces retrieved or scanned", 0.50 / 1e6, "trace")
LOGS_INGESTED = UnitPrice("CloudWatch Logs ingestion", 0.50, "GB (standard class)")
UNIT_PRICES = (
    LAMBDA_REQUEST,
    LAMBDA_GB_SECOND,
    HTTP_API_REQUEST,
    EVENTBRIDGE_EVENT,
    SQS_REQUEST,
    DYNAMODB_WRITE_REQUEST_UNIT,
    DYNAMODB_READ_REQUEST_UNIT,
    DYNAMODB_WCU_HOUR,
    DYNAMODB_RCU_HOUR,
    XRAY_TRACE_RECORDED,
    XRAY_TRACE_SCANNED,
    LOGS_INGESTED,
)

GOAL_DELIVERIES_PER_SECOND = 10_000  # SPEC §8: the load the model is priced at (X-Ray sampling depends on it)
# Provisioned capacity is paid per hour whether used or not; auto scaling keeps consumption near its
# target, so each consumed unit costs the hourly price over 3 600 s at that utilization.
PROVISIONED_TARGET_UTILIZATION = 0.70
MEMORY_GB = 0.5  # template.yaml Globals MemorySize 512
# Full batches of the template's BatchSize: at the goal load a receive returns ten without a batching
# window (the template sets none; docs/concepts/ingest.md prices smaller batches at lower rates).
EVENTS_PER_INGEST_BATCH = 10  # template.yaml IngestFunction BatchSize
DELIVERIES_PER_DELIVERY_BATCH = 10  # template.yaml DeliveryFunction BatchSize
# Each recorded trace retrieved or scanned once (the console's trace list and service map read them).
SCANS_PER_TRACE = 1


class BillingMode(StrEnum):
    ON_DEMAND = "on-demand"
    PROVISIONED = "provisioned"


def dynamodb_unit_prices(mode: BillingMode) -> tuple[float, float]:
    """USD per consumed (write unit, read unit) in a billing mode."""
    if mode is BillingMode.ON_DEMAND:
        return DYNAMODB_WRITE_REQUEST_UNIT.usd, DYNAMODB_READ_REQUEST_UNIT.usd
    unit_seconds = 3600 * PROVISIONED_TARGET_UTILIZATION
    return DYNAMODB_WCU_HOUR.usd / unit_seconds, DYNAMODB_RCU_HOUR.usd / unit_seconds


def sampled_per_second(requests_per_second: float, reservoir_per_second: float, fixed_rate: float) -> float:
    """Traces an X-Ray sampling rule records each second: its reservoir, then its fixed rate of the rest."""
    reserved = min(requests_per_second, reservoir_per_second)
    return reserved + fixed_rate * (requests_per_second - reserved)


@dataclass(frozen=True)
class Publishing:
    """How producers publish: `events_per_request` events per POST (1: /v3/events, 10: /v3/events/batch)."""

    events_per_request: int

    def api_seconds(self) -> float:
        """Billed duration of one API invocation: validation and one PutEvents, longer with more entries."""
        return 0.025 + 0.005 * self.events_per_request


@dataclass(frozen=True)
class Measured:
    """What the run measured per delivery at one fan-out (subscriptions per event)."""

    fan_out: int
    sqs_requests: float  # by ingest and delivery and their event source mappings (not EventBridge's)
    write_units: float
    read_units: float
    log_bytes: float


AUTHORIZER_SECONDS = 0.003  # a warm container's cached key lookup
# hookrelay.team_limits: each API request of a team is counted with one conditional UpdateItem of a
# counter item well under 1 KB (1 write unit; a request refused from a container's memory costs none).
TEAM_LIMIT_WRITE_UNITS_PER_REQUEST = 1
DELIVERY_BATCH_SECONDS = 0.230  # a batch of 10 sent concurrently, bound by its slowest (200 ms) receiver


def ingest_batch_seconds(deliveries: float) -> float:
    """A batch of events: cached matching, then the deliveries' writes and sends, 16 at a time."""
    return 0.060 + 0.003 * deliveries


@dataclass(frozen=True)
class Tracing:
    reservoir_per_second: float
    fixed_rate: float


# Lambda samples the traces of a function with active tracing itself, at a fixed rate that cannot be
# configured (AWS Lambda developer guide, "Visualize Lambda function invocations using AWS X-Ray"):
# the first request each second and 5 % of the rest.
LAMBDA_SAMPLING = Tracing(reservoir_per_second=1, fixed_rate=0.05)


def invocations_per_delivery(measured: Measured, publishing: Publishing) -> dict[str, float]:
    per_request = 1 / (measured.fan_out * publishing.events_per_request)
    return {
        "api": per_request,
        "authorizer": per_request,
        "ingest": 1 / (measured.fan_out * EVENTS_PER_INGEST_BATCH),
        "delivery": 1 / DELIVERIES_PER_DELIVERY_BATCH,
    }


def cost_per_million(
    measured: Measured, publishing: Publishing, mode: BillingMode, tracing: Tracing
) -> dict[str, float]:
    """USD per million deliveries, by line item."""
    invocations = invocations_per_delivery(measured, publishing)
    events = 1 / measured.fan_out
    seconds = {
        "api": publishing.api_seconds(),
        "authorizer": AUTHORIZER_SECONDS,
        "ingest": ingest_batch_seconds(measured.fan_out * EVENTS_PER_INGEST_BATCH),
        "delivery": DELIVERY_BATCH_SECONDS,
    }
    gb_seconds = sum(invocations[name] * seconds[name] for name in invocations) * MEMORY_GB
    # EventBridge's SendMessage of each event to the events queue is billed to the queue's owner.
    sqs_requests = measured.sqs_requests + events
    write_price, read_price = dynamodb_unit_prices(mode)
    invocations_per_second = sum(invocations.values()) * GOAL_DELIVERIES_PER_SECOND
    traces = (
        sampled_per_second(invocations_per_second, tracing.reservoir_per_second, tracing.fixed_rate)
        / GOAL_DELIVERIES_PER_SECOND
    )
    per_delivery = {
        "API Gateway": invocations["api"] * HTTP_API_REQUEST.usd,
        "EventBridge": events * EVENTBRIDGE_EVENT.usd,
        "Lambda requests": sum(invocations.values()) * LAMBDA_REQUEST.usd,
        "Lambda duration": gb_seconds * LAMBDA_GB_SECOND.usd,
        "SQS": sqs_requests * SQS_REQUEST.usd,
        "DynamoDB writes": measured.write_units * write_price,
        "DynamoDB team limits": invocations["api"] * TEAM_LIMIT_WRITE_UNITS_PER_REQUEST * write_price,
        "DynamoDB reads": measured.read_units * read_price,
        "X-Ray": traces * (XRAY_TRACE_RECORDED.usd + SCANS_PER_TRACE * XRAY_TRACE_SCANNED.usd),
        "CloudWatch Logs": measured.log_bytes / 1e9 * LOGS_INGESTED.usd,
    }
    return {line: usd * 1e6 for line, usd in per_delivery.items()}
