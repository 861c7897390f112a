"""Issue 24 over real HTTP: the local gateway throttles as the HTTP API's stage does, and a team over its
limit gets 429s with Retry-After; nobody gets a 5xx."""

import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from api_client import ApiClient, ApiResponse
from api_contract import assert_problem, webhook
from e2e.conftest import RunningStack, http_transport, running_stack

DEV_KEY = "hr_dev_e2e_api_limits_key_0123"
EVENT = {"event_name": "signer.done", "data": {"signer": {"id": "s-1", "status": "done"}}}
STAGE_RATE, STAGE_BURST = 10, 10
TEAM_RATE, TEAM_BURST = 1, 4

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]


@pytest.fixture(scope="module")
def stack() -> Iterator[RunningStack]:
    with running_stack(
        {
            "HOOKRELAY_DEV_API_KEY": DEV_KEY,
            "HOOKRELAY_ALLOW_PRIVATE_ENDPOINTS": "true",
            "HOOKRELAY_LOCAL_PARAMETER_OVERRIDES": (
                f"ApiThrottlingRateLimit={STAGE_RATE} ApiThrottlingBurstLimit={STAGE_BURST}"
            ),
            "HOOKRELAY_TEAM_REQUESTS_PER_SECOND": str(TEAM_RATE),
            "HOOKRELAY_TEAM_REQUEST_BURST": str(TEAM_BURST),
        }
    ) as running:
        yield running


@pytest.fixture
def api(stack: RunningStack) -> ApiClient:
    return ApiClient(http_transport(stack, requests.Session()), DEV_KEY)


def rested() -> None:
    """Until the stage's bucket is full again and a team's window has turned."""
    time.sleep(max(STAGE_BURST / STAGE_RATE, TEAM_BURST / TEAM_RATE) + 0.1)


def test_a_team_over_its_limit_gets_429_with_retry_after(api: ApiClient) -> None:
    writes = 2 * TEAM_BURST + 1
    with ThreadPoolExecutor(writes) as clients:
        # Reads have their own limit: these only start the API's containers, so that the writes run at once.
        list(clients.map(lambda _: api.get("/v3/webhooks"), range(4)))
        rested()
        window = TEAM_BURST / TEAM_RATE
        time.sleep(window - time.time() % window + 0.05)
        # Publishing: writes that take no transaction on the team's item (creates made at once may conflict).
        answers = list(clients.map(lambda _: api.post("/v3/events", EVENT), range(writes)))
    statuses = Counter(response.status for response in answers)
    # Within a window at most its burst; the writes may straddle two windows on a slow machine, never more.
    assert statuses.keys() == {202, 429} and statuses[202] <= 2 * TEAM_BURST, statuses
    refused = next(response for response in answers if response.status == 429)
    assert_problem(refused, 429)
    retry_after = int(refused.headers["retry-after"])
    assert 1 <= retry_after <= window
    assert api.get("/v3/webhooks").status == 200
    time.sleep(retry_after)
    assert api.post("/v3/webhooks", webhook()).status == 201


def test_the_stage_throttles_every_caller_with_api_gateways_answer(api: ApiClient) -> None:
    rested()

    def read(key: str) -> ApiResponse:
        return api.get("/v3/webhook-event-types", key=key)

    started = time.monotonic()
    with ThreadPoolExecutor(8) as clients:
        answers = list(clients.map(read, [DEV_KEY, "hr_bogus_key"] * 30))
    elapsed = time.monotonic() - started
    statuses = Counter(response.status for response in answers)
    assert statuses.keys() <= {200, 401, 429}, statuses
    # What got through is the burst and what the rate refilled meanwhile; the rest were refused at the
    # stage, as API Gateway refuses them: no function invoked, no Retry-After.
    assert statuses[200] + statuses[401] <= STAGE_BURST + STAGE_RATE * elapsed + 1, (statuses, elapsed)
    throttled = [response for response in answers if response.status == 429]
    assert throttled
    assert all(response.json() == {"message": "Too Many Requests"} for response in throttled)
    assert all("retry-after" not in response.headers for response in throttled)
    # A bogus key the stage let through is the API's own 401 (SPEC §2), not the gateway's.
    for refused in (response for response in answers if response.status == 401):
        assert_problem(refused, 401)
