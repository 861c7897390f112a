"""Quotas (SPEC §2, §6): one tenant cannot amplify its own load, grow a record without bound, or
queue sends faster than they are made."""

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from receivers import Answer, receiver
from records import receiver_endpoint

from api_client import ApiClient
from api_contract import assert_problem, webhook
from hookrelay import clock
from hookrelay.aws import table
from hookrelay.settings import get_settings
from hookrelay_cli.local.stack import LocalStack
from hookrelay_cli.local.workers import QueuePoller
from integration.test_delivery_log import add_delivery, queued_jobs

pytestmark = pytest.mark.usefixtures("stack")


@pytest.fixture
def settings_from(stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """Set some of the functions' settings before their first request loads them."""

    def use(**variables: str) -> None:
        for name, value in variables.items():
            monkeypatch.setenv(name, value)
        get_settings.cache_clear()

    return use


@pytest.fixture
def delivery(stack: LocalStack) -> QueuePoller:
    (poller,) = stack.queue_pollers_of("DeliveryQueue")
    return poller


def test_past_the_team_limit_create_is_409(
    settings_from: Callable[..., None], api: ApiClient, other_api: ApiClient
) -> None:
    settings_from(HOOKRELAY_MAX_SUBSCRIPTIONS_PER_TEAM="3")
    created = [api.post("/v3/webhooks", webhook()) for _ in range(3)]
    assert [response.status for response in created] == [201] * 3
    refused = assert_problem(api.post("/v3/webhooks", webhook()), 409)
    assert "at most 3 webhook subscriptions" in str(refused["detail"])
    assert len(api.get("/v3/webhooks").json()["data"]) == 3
    assert other_api.post("/v3/webhooks", webhook()).status == 201  # another team has its own quota

    assert api.delete(f"/v3/webhooks/{created[0].json()['id']}").status == 204
    assert api.post("/v3/webhooks", webhook()).status == 201
    assert_problem(api.post("/v3/webhooks", webhook()), 409)


def test_the_limit_counts_subscriptions_stored_before_it_existed(
    settings_from: Callable[..., None], api: ApiClient
) -> None:
    settings_from(HOOKRELAY_MAX_SUBSCRIPTIONS_PER_TEAM="2")
    first = api.post("/v3/webhooks", webhook()).json()
    second = api.post("/v3/webhooks", webhook()).json()
    # As data written before the team's version item existed: the subscriptions alone.
    subscriptions = table(get_settings().subscriptions_table)
    for item in subscriptions.scan()["Items"]:
        if item["subscription_id"] not in (first["id"], second["id"]):
            subscriptions.delete_item(Key={"team_id": item["team_id"], "subscription_id": item["subscription_id"]})
    assert_problem(api.post("/v3/webhooks", webhook()), 409)
    assert api.patch(f"/v3/webhooks/{first['id']}", {"description": "still works"}).status == 200


def test_a_retry_while_one_is_queued_is_409(api: ApiClient) -> None:
    subscription = api.post("/v3/webhooks", webhook()).json()
    failed = add_delivery(subscription, "team-a", 5, "failed")
    path = f"/v3/webhooks/{subscription['id']}/deliveries/{failed.id}/retry"
    assert api.post(path).status == 202
    refused = assert_problem(api.post(path), 409)
    assert "already queued" in str(refused["detail"])
    assert queued_jobs() == [{"delivery_id": failed.id, "attempt": 2}]


def test_a_test_event_while_one_is_queued_is_409_until_it_is_sent(
    settings_from: Callable[..., None], api: ApiClient, delivery: QueuePoller, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings_from(HOOKRELAY_ALLOW_PRIVATE_ENDPOINTS="true")
    with receiver() as target:
        subscription = api.post("/v3/webhooks", webhook(endpoint=receiver_endpoint(target.port))).json()
        path = f"/v3/webhooks/{subscription['id']}/test"
        assert api.post(path).status == 202
        refused = assert_problem(api.post(path), 409)
        assert "already queued" in str(refused["detail"])
        assert delivery.poll_once() == 1
        assert len(target.received) == 1
        assert api.post(path).status == 202  # sent: the next test may go
    # A test whose message was lost blocks the next one for a while only.
    assert_problem(api.post(path), 409)
    later = clock.utc_now() + timedelta(minutes=16)
    monkeypatch.setattr(clock, "utc_now", lambda: later)
    assert api.post(path).status == 202


def sent_and_retried_by_hand(api: ApiClient, delivery: QueuePoller, endpoint: str, retries: int) -> dict[str, Any]:
    """A test event sent to `endpoint` (no automatic retries), then retried by hand: the delivery as shown."""
    subscription = api.post("/v3/webhooks", webhook(endpoint=endpoint, auto_retry=False)).json()
    assert api.post(f"/v3/webhooks/{subscription['id']}/test").status == 202
    assert delivery.poll_once() == 1
    (sent,) = api.get(f"/v3/webhooks/{subscription['id']}/deliveries").json()["data"]
    path = f"/v3/webhooks/{subscription['id']}/deliveries/{sent['id']}"
    for _ in range(retries):
        assert api.post(f"{path}/retry").status == 202
        assert delivery.poll_once() == 1
    shown: dict[str, Any] = api.get(path).json()
    return shown


def test_two_hundred_manual_retries_keep_the_first_and_the_last_49_attempts(
    settings_from: Callable[..., None], api: ApiClient, delivery: QueuePoller
) -> None:
    settings_from(HOOKRELAY_ALLOW_PRIVATE_ENDPOINTS="true")
    answers = iter(range(1, 1000))
    with receiver(lambda _: Answer(500, f"answer {next(answers)}".encode())) as failing:
        shown = sent_and_retried_by_hand(api, delivery, receiver_endpoint(failing.port), retries=200)
    assert shown["attempt_count"] == 201 and shown["status"] == "failed"
    excerpts = [attempt["response_excerpt"] for attempt in shown["attempts"]]
    assert excerpts == ["answer 1"] + [f"answer {number}" for number in range(153, 202)]


def test_manual_retries_to_the_longest_endpoint_answering_binary_keep_every_attempt_recorded(
    settings_from: Callable[..., None], api: ApiClient, delivery: QueuePoller
) -> None:
    # Each attempt held the endpoint whole (2 048 characters, 4 bytes each in UTF-8 past the host): DynamoDB
    # refused the record's writes past its 400 KB (moto from about 200 KB: it counts the list replaced
    # and the new one), after the webhook was sent, and the message came back to send it again.
    settings_from(HOOKRELAY_ALLOW_PRIVATE_ENDPOINTS="true")
    with receiver(lambda _: Answer(500, b"\xff" * 2048)) as failing:
        base_url = receiver_endpoint(failing.port) + "/"
        endpoint = base_url + "𝄞" * (2048 - len(base_url))
        shown = sent_and_retried_by_hand(api, delivery, endpoint, retries=59)
    assert len(failing.received) == 60
    assert shown["attempt_count"] == 60 and shown["status"] == "failed"
    assert len(shown["attempts"]) == 50, "every write of the record failed from attempt 23 on"
    url = shown["attempts"][-1]["url"]
    assert url.endswith("…") and endpoint.startswith(url.removesuffix("…")), "the URL is cut, and shows it"


def test_lists_and_headers_past_their_total_size_are_422_naming_the_limit(api: ApiClient) -> None:
    long_entries = [f"{index:03d}" + "s" * 252 for index in range(100)]  # within the entries' own limits
    for field in ("scopes", "workspaces"):
        refused = assert_problem(api.post("/v3/webhooks", webhook(**{field: long_entries})), 422, field)
        assert "4096 characters" in str(refused["invalid_params"])
    headers = {f"X-Custom-{index:02d}": "v" * 1000 for index in range(20)}
    refused = assert_problem(api.post("/v3/webhooks", webhook(headers=headers)), 422, "headers")
    assert "8192 bytes" in str(refused["invalid_params"])
    created = api.post("/v3/webhooks", webhook(scopes=long_entries[:16], headers=dict(list(headers.items())[:8])))
    assert created.status == 201
    refused = assert_problem(api.patch(f"/v3/webhooks/{created.json()['id']}", {"scopes": long_entries}), 422, "scopes")


def test_past_the_team_s_stored_size_create_and_a_growing_patch_are_409_naming_the_limit(
    settings_from: Callable[..., None], api: ApiClient, other_api: ApiClient
) -> None:
    settings_from(HOOKRELAY_MAX_SUBSCRIPTION_BYTES_PER_TEAM="6000")
    large = {"description": "d" * 255, "headers": {"X-Tenant": "t" * 1000}}
    created = [api.post("/v3/webhooks", webhook(**large)) for _ in range(3)]
    assert [response.status for response in created] == [201, 201, 201]
    refused = assert_problem(api.post("/v3/webhooks", webhook(**large)), 409)
    assert "at most 6000 bytes stored" in str(refused["detail"])
    assert other_api.post("/v3/webhooks", webhook(**large)).status == 201  # another team has its own
    first = created[0].json()["id"]
    grown = {"X-Tenant": "t" * 1000, "X-Other": "o" * 1000}
    assert_problem(api.patch(f"/v3/webhooks/{first}", {"headers": grown}), 409)
    assert api.patch(f"/v3/webhooks/{first}", {"headers": {}}).status == 200  # shrinking is always allowed
    assert api.delete(f"/v3/webhooks/{created[1].json()['id']}").status == 204
    assert api.post("/v3/webhooks", webhook(**large)).status == 201  # a delete frees its bytes


def test_the_stored_size_counts_subscriptions_stored_before_it_was_kept(
    settings_from: Callable[..., None], api: ApiClient
) -> None:
    settings_from(HOOKRELAY_MAX_SUBSCRIPTION_BYTES_PER_TEAM="4000")
    large = {"description": "d" * 255, "headers": {"X-Tenant": "t" * 1000}}
    assert [api.post("/v3/webhooks", webhook(**large)).status for _ in range(2)] == [201, 201]
    subscriptions = table(get_settings().subscriptions_table)
    for item in subscriptions.scan()["Items"]:  # as a team's item written before it kept the size
        if item["subscription_id"] == "#team":
            del item["subscription_bytes"]
            subscriptions.put_item(Item=item)
    assert_problem(api.post("/v3/webhooks", webhook(**large)), 409)
