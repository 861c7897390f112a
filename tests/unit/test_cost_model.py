"""The cost model's arithmetic (benchmarks/cost_model.py): billing modes, X-Ray sampling, per-delivery lines."""

import sys

import pytest

from paths import REPO

sys.path.insert(0, str(REPO / "benchmarks"))

from cost_model import (
    DYNAMODB_RCU_HOUR,
    DYNAMODB_WCU_HOUR,
    DYNAMODB_WRITE_REQUEST_UNIT,
    EVENTBRIDGE_EVENT,
    HTTP_API_REQUEST,
    PROVISIONED_TARGET_UTILIZATION,
    UNIT_PRICES,
    BillingMode,
    Measured,
    Publishing,
    Tracing,
    cost_per_million,
    dynamodb_unit_prices,
    sampled_per_second,
)

MEASURED = Measured(fan_out=3, sqs_requests=0.5, write_units=3.0, read_units=1.0, log_bytes=200.0)
TRACING = Tracing(reservoir_per_second=1, fixed_rate=0.01)


def test_every_unit_price_is_named_once() -> None:
    assert len({price.name for price in UNIT_PRICES}) == len(UNIT_PRICES)


def test_on_demand_units_are_billed_at_the_request_unit_price() -> None:
    assert dynamodb_unit_prices(BillingMode.ON_DEMAND)[0] == DYNAMODB_WRITE_REQUEST_UNIT.usd


def test_a_provisioned_unit_costs_the_hourly_price_over_the_seconds_it_is_used() -> None:
    write, read = dynamodb_unit_prices(BillingMode.PROVISIONED)
    assert write == pytest.approx(DYNAMODB_WCU_HOUR.usd / (3600 * PROVISIONED_TARGET_UTILIZATION))
    assert read == pytest.approx(DYNAMODB_RCU_HOUR.usd / (3600 * PROVISIONED_TARGET_UTILIZATION))
    # About 0.26 $ per million writes at 70 %: well under on-demand's 0.625 $ for a steady load.
    assert write * 1e6 == pytest.approx(0.258, abs=0.001)


def test_sampling_takes_the_reservoir_then_the_fixed_rate_of_the_rest() -> None:
    assert sampled_per_second(0.5, 1, 0.01) == 0.5
    assert sampled_per_second(1001, 1, 0.01) == pytest.approx(11)


def test_batch_publishing_divides_the_per_request_costs_but_not_eventbridge_entries() -> None:
    single = cost_per_million(MEASURED, Publishing(1), BillingMode.ON_DEMAND, TRACING)
    batch = cost_per_million(MEASURED, Publishing(10), BillingMode.ON_DEMAND, TRACING)
    assert single["API Gateway"] == pytest.approx(HTTP_API_REQUEST.usd * 1e6 / 3)
    assert batch["API Gateway"] == pytest.approx(single["API Gateway"] / 10)
    assert batch["EventBridge"] == single["EventBridge"] == pytest.approx(EVENTBRIDGE_EVENT.usd * 1e6 / 3)
    assert batch["Lambda requests"] < single["Lambda requests"]
    # Issue 24: a team's requests are counted, one write each, so the batch route divides that too.
    assert single["DynamoDB team limits"] == pytest.approx(DYNAMODB_WRITE_REQUEST_UNIT.usd * 1e6 / 3)
    assert batch["DynamoDB team limits"] == pytest.approx(single["DynamoDB team limits"] / 10)


def test_lines_follow_the_measured_units_and_bytes() -> None:
    costs = cost_per_million(MEASURED, Publishing(10), BillingMode.ON_DEMAND, TRACING)
    assert costs["DynamoDB writes"] == pytest.approx(3.0 * DYNAMODB_WRITE_REQUEST_UNIT.usd * 1e6)
    assert costs["CloudWatch Logs"] == pytest.approx(200 / 1e9 * 0.50 * 1e6)
    # The events queue's SendMessage by EventBridge (1 per event) is added to the measured requests.
    assert costs["SQS"] == pytest.approx((0.5 + 1 / 3) * 0.40)
