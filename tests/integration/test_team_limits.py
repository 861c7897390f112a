"""Per-team API limits and the gateway's refusals, through the local gateway and the real handlers (issue 24)."""

import time
from typing import Any

import pytest

from api_client import ApiClient, ApiResponse
from api_contract import assert_problem, webhook
from hookrelay.aws import client
from hookrelay.settings import get_settings
from integration.test_event_batches import put_events_calls  # noqa: F401 - a fixture
from integration.test_portal import open_session

PER_SECOND, BURST = 2, 4
EVENT = {"event_name": "signer.done", "data": {"signer": {"id": "s-1", "status": "done"}}}


@pytest.fixture(autouse=True)
def low_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    """A team may write 4 times every 2 s (read when the API function loads)."""
    monkeypatch.setenv("HOOKRELAY_TEAM_REQUESTS_PER_SECOND", str(PER_SECOND))
    monkeypatch.setenv("HOOKRELAY_TEAM_REQUEST_BURST", str(BURST))


def assert_too_many_requests(response: ApiResponse) -> int:
    problem = assert_problem(response, 429)
    retry_after = int(response.headers["retry-after"])
    assert 1 <= retry_after <= BURST / PER_SECOND
    assert "limit" in str(problem["detail"])
    return retry_after


def next_window() -> None:
    """Until the next 2 s window (the windows of every team start together)."""
    window = BURST / PER_SECOND
    time.sleep(window - time.time() % window + 0.05)


def test_writes_over_the_team_limit_are_429_with_retry_after(api: ApiClient, other_api: ApiClient) -> None:
    next_window()
    created = [api.post("/v3/webhooks", webhook()) for _ in range(BURST)]
    assert [response.status for response in created] == [201] * BURST
    subscription = created[0].json()["id"]
    retry_after = assert_too_many_requests(api.patch(f"/v3/webhooks/{subscription}", {"enabled": False}))
    assert_too_many_requests(api.delete(f"/v3/webhooks/{subscription}"))
    # Reads have a limit of their own, five times higher; other teams have theirs.
    assert api.get(f"/v3/webhooks/{subscription}").json()["enabled"] is True
    assert other_api.post("/v3/webhooks", webhook()).status == 201

    time.sleep(retry_after)
    assert api.patch(f"/v3/webhooks/{subscription}", {"enabled": False}).json()["enabled"] is False


def test_publishing_over_the_team_limit_is_429_and_puts_nothing_on_the_bus(
    api: ApiClient,
    put_events_calls: list[list[dict[str, Any]]],  # noqa: F811 - the fixture
) -> None:
    next_window()
    assert [api.post("/v3/events", EVENT).status for _ in range(BURST - 1)] == [202] * (BURST - 1)
    assert api.post("/v3/events/batch", {"events": [EVENT] * 10}).status == 202
    assert len(put_events_calls) == BURST
    assert_too_many_requests(api.post("/v3/events", EVENT))
    assert_too_many_requests(api.post("/v3/events/batch", {"events": [EVENT]}))
    assert len(put_events_calls) == BURST


def test_a_missing_or_bogus_key_is_a_401_problem_and_takes_no_teams_requests(api: ApiClient) -> None:
    # Such a request reaches the API function (SPEC §2: 401 problem+json, which API Gateway's own refusals
    # are not) but belongs to no team: it spends nobody's limit.
    next_window()
    for _ in range(BURST + 1):
        assert_problem(api.post("/v3/webhooks", webhook(), key="hr_bogus"), 401)
        assert_problem(api.post("/v3/events", EVENT, key=""), 401)
    assert [api.post("/v3/webhooks", webhook()).status for _ in range(BURST)] == [201] * BURST


def test_a_repeated_bogus_key_costs_one_dynamodb_read_a_second(api: ApiClient) -> None:
    # With the authorizer's miss cache (at most 1 s, issue 22): the flood's cost is the stage's and the
    # authorizer's invocations, not a read each.
    reads: list[dict[str, Any]] = []

    def count(params: dict[str, Any], **_: Any) -> None:
        if params["TableName"] == get_settings().api_keys_table:
            reads.append(params)

    dynamodb = client("dynamodb")
    dynamodb.meta.events.register("before-parameter-build.dynamodb.GetItem", count)
    try:
        started = time.monotonic()
        for _ in range(20):
            assert_problem(api.get("/v3/webhooks", key="hr_bogus_again"), 401)
        elapsed = time.monotonic() - started
    finally:
        dynamodb.meta.events.unregister("before-parameter-build.dynamodb.GetItem", count)
    assert 1 <= len(reads) <= 1 + int(elapsed)


def test_a_team_s_portal_links_count_apart_from_its_api_keys(api: ApiClient) -> None:
    # A link in a customer's hands took the team's own budget: four of its PATCHes (404s count too) and
    # the platform's next POST /v3/events was 429.
    next_window()
    token, _ = open_session(api)
    unknown = "/v3/webhooks/00000000-0000-4000-8000-000000000000"
    assert [api.patch(unknown, {}, key=token).status for _ in range(BURST - 1)] == [404] * (BURST - 1)
    # The session's opening was the team's one write of this window: its API key still has BURST - 1.
    assert [api.post("/v3/events", EVENT).status for _ in range(BURST - 1)] == [202] * (BURST - 1)
    assert api.patch(unknown, {}, key=token).status == 404  # the links' fourth
    problem = assert_problem(api.patch(unknown, {}, key=token), 429)
    assert "portal links" in str(problem["detail"])
    assert_too_many_requests(api.post("/v3/events", EVENT))  # and the keys' own limit holds
