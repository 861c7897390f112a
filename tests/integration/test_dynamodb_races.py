"""The API and delivery as DynamoDB runs them (issue 22): transactions cancelled for conflicts, reads that
lag writes unless consistent, and writes landing between a request's read and its write
(integration.injected_dynamodb injects what moto never does)."""

import secrets
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from receivers import Answer, receiver

from api_client import ApiClient, ApiResponse
from api_contract import assert_problem, webhook
from hookrelay import clock, wiring
from hookrelay.api_keys import MISS_CACHE_SECONDS, hash_key, issue_key
from hookrelay.aws import table
from hookrelay.models.subscriptions import SubscriptionPatch
from hookrelay.outcomes import Outcome
from hookrelay.settings import get_settings
from hookrelay.store.subscriptions import DynamoSubscriptionStore
from hookrelay.subscriptions import Subscriptions
from hookrelay.time_budget import UNLIMITED
from integration.injected_dynamodb import InjectedDynamoDB
from integration.test_delivery import World

TEAM = "team-a"


def store() -> DynamoSubscriptionStore:
    return wiring.subscription_store(get_settings())


def another_request() -> Subscriptions:
    """The subscriptions logic as another API container runs it."""
    return Subscriptions(store(), allow_private=False, max_per_team=1000)


def created(api: ApiClient, **fields: object) -> dict[str, Any]:
    response = api.post("/v3/webhooks", webhook(**fields))
    assert response.status == 201, response.body
    body: dict[str, Any] = response.json()
    return body


def test_a_create_and_a_delete_cancelled_for_a_conflict_are_tried_again(
    api: ApiClient, injected_dynamodb: InjectedDynamoDB
) -> None:
    injected_dynamodb.conflicts = 1
    subscription = created(api)
    injected_dynamodb.conflicts = 1
    assert api.delete(f"/v3/webhooks/{subscription['id']}").status == 204
    assert_problem(api.get(f"/v3/webhooks/{subscription['id']}"), 404)
    assert injected_dynamodb.cancelled == 2


def test_writes_cancelled_at_every_try_answer_503_with_retry_after_and_change_nothing(
    api: ApiClient, injected_dynamodb: InjectedDynamoDB
) -> None:
    subscription = created(api, description="as created")
    path = f"/v3/webhooks/{subscription['id']}"
    injected_dynamodb.conflict_rate = 1.0
    answers = [
        api.post("/v3/webhooks", webhook()),
        api.patch(path, {"description": "changed"}),
        api.post(f"{path}/secret/rotate"),
        api.delete(path),
    ]
    for answer in answers:
        assert_problem(answer, 503)
        assert answer.headers["retry-after"] == "1"
    injected_dynamodb.conflict_rate = 0.0
    (listed,) = api.get("/v3/webhooks").json()["data"]
    assert listed["description"] == "as created" and listed["updated_at"] == subscription["updated_at"]


def test_a_subscription_is_there_for_every_route_right_after_its_create(
    api: ApiClient, injected_dynamodb: InjectedDynamoDB
) -> None:
    injected_dynamodb.read_lag_seconds = 10
    subscription = created(api)
    path = f"/v3/webhooks/{subscription['id']}"
    assert api.get(path).status == 200
    assert [each["id"] for each in api.get("/v3/webhooks").json()["data"]] == [subscription["id"]]
    assert api.patch(path, {"description": "right away"}).status == 200
    assert api.get(path).json()["description"] == "right away"
    assert api.post(f"{path}/secret/rotate").status == 200
    assert api.delete(path).status == 204
    assert api.get("/v3/webhooks").json()["data"] == []


def test_a_new_api_key_and_portal_link_work_at_their_first_use(
    transport: Callable[..., ApiResponse], api_key: Callable[[str], str], injected_dynamodb: InjectedDynamoDB
) -> None:
    injected_dynamodb.read_lag_seconds = 10
    fresh = ApiClient(transport, api_key("team-fresh"))
    assert fresh.get("/v3/webhooks").status == 200
    session = fresh.post("/v3/portal-sessions", {})
    assert session.status == 201, session.body
    token = session.json()["url"].split("#token=", 1)[1]
    assert fresh.get("/v3/webhooks", key=token).status == 200


def test_an_unknown_key_is_remembered_as_unknown_for_a_second_at_most(
    transport: Callable[..., ApiResponse], stack: object
) -> None:
    early = ApiClient(transport, "hr_" + secrets.token_urlsafe(32))
    assert_problem(early.get("/v3/webhooks"), 401)
    issue_key(wiring.api_key_store(get_settings()), "team-late", early.key)
    time.sleep(MISS_CACHE_SECONDS)
    assert early.get("/v3/webhooks").status == 200


def test_a_key_whose_lookup_is_throttled_gets_503_with_retry_after_and_works_once_it_is_not(
    transport: Callable[..., ApiResponse], api_key: Callable[[str], str], injected_dynamodb: InjectedDynamoDB
) -> None:
    # Before, the authorizer raised and API Gateway answered a bare 500 {"message":"Internal Server Error"}:
    # a publisher that retries only what it is told to retry lost the event.
    key = api_key("team-throttled")
    injected_dynamodb.throttled_partitions = {hash_key(key)}
    client = ApiClient(transport, key)
    refused = client.post("/v3/events", {"event_name": "signer.done", "data": {}})
    assert_problem(refused, 503)
    assert refused.headers["retry-after"] == "1"
    assert_problem(client.get("/v3/webhooks"), 503)
    injected_dynamodb.throttled_partitions = set()
    assert client.get("/v3/webhooks").status == 200


def test_two_patches_of_different_fields_both_persist(api: ApiClient, injected_dynamodb: InjectedDynamoDB) -> None:
    subscription = created(api)
    path = f"/v3/webhooks/{subscription['id']}"
    meanwhile = SubscriptionPatch.model_validate({"auto_retry": False})
    injected_dynamodb.interleave(lambda: another_request().update(TEAM, subscription["id"], meanwhile))
    patched = api.patch(path, {"description": "mine"})
    assert patched.status == 200, patched.body
    for shown in (patched.json(), api.get(path).json()):
        assert shown["description"] == "mine" and shown["auto_retry"] is False


def test_a_rotation_keeps_a_patch_made_meanwhile(api: ApiClient, injected_dynamodb: InjectedDynamoDB) -> None:
    subscription = created(api)
    path = f"/v3/webhooks/{subscription['id']}"
    meanwhile = SubscriptionPatch.model_validate({"description": "patched meanwhile"})
    injected_dynamodb.interleave(lambda: another_request().update(TEAM, subscription["id"], meanwhile))
    rotated = api.post(f"{path}/secret/rotate")
    assert rotated.status == 200, rotated.body
    assert rotated.json()["secret_key"] != subscription["secret_key"]
    assert api.get(path).json()["description"] == "patched meanwhile"
    stored = store().get(TEAM, subscription["id"])
    assert stored and stored.secret_key == rotated.json()["secret_key"]
    assert stored.previous_secret_key == subscription["secret_key"]


def patched_while_delivery_disables_it(
    api: ApiClient, injected_dynamodb: InjectedDynamoDB, patch: object
) -> list[dict[str, Any]]:
    """A new subscription PATCHed with `patch` while delivery disables it between the PATCH's read and its
    write: as the PATCH answered it, then as a GET shows it."""
    subscription = created(api)
    injected_dynamodb.interleave(
        lambda: store().disable(TEAM, subscription["id"], "the endpoint answered 410 Gone", clock.now_iso())
    )
    path = f"/v3/webhooks/{subscription['id']}"
    patched = api.patch(path, patch)
    assert patched.status == 200, patched.body
    return [patched.json(), api.get(path).json()]


def test_a_patch_never_re_enables_an_endpoint_delivery_disabled_meanwhile(
    api: ApiClient, injected_dynamodb: InjectedDynamoDB
) -> None:
    for shown in patched_while_delivery_disables_it(api, injected_dynamodb, {"description": "unrelated"}):
        assert shown["enabled"] is False
        assert shown["disabled_reason"] == "the endpoint answered 410 Gone"
        assert shown["description"] == "unrelated"


def test_a_patch_saying_enabled_true_re_enables_an_endpoint_disabled_meanwhile(
    api: ApiClient, injected_dynamodb: InjectedDynamoDB
) -> None:
    for shown in patched_while_delivery_disables_it(api, injected_dynamodb, {"enabled": True}):
        assert shown["enabled"] is True and shown.get("disabled_reason") is None


@pytest.mark.parametrize("stored_before_revisions", [False, True])
def test_a_patch_keeps_the_failing_since_delivery_wrote_meanwhile(
    api: ApiClient, injected_dynamodb: InjectedDynamoDB, stored_before_revisions: bool
) -> None:
    subscription = created(api)
    path = f"/v3/webhooks/{subscription['id']}"
    if stored_before_revisions:
        table(get_settings().subscriptions_table).update_item(
            Key={"team_id": TEAM, "subscription_id": subscription["id"]}, UpdateExpression="REMOVE revision"
        )
    since = clock.now_iso()
    injected_dynamodb.interleave(lambda: store().set_failing_since(TEAM, subscription["id"], since))
    assert api.patch(path, {"description": "unrelated"}).status == 200
    shown = api.get(path).json()
    assert shown["failing_since"] == since and shown["description"] == "unrelated"


def test_a_subscription_stored_before_revisions_is_patched_and_rotated(api: ApiClient) -> None:
    subscription = created(api)
    path = f"/v3/webhooks/{subscription['id']}"
    table(get_settings().subscriptions_table).update_item(
        Key={"team_id": TEAM, "subscription_id": subscription["id"]}, UpdateExpression="REMOVE revision"
    )
    assert api.patch(path, {"description": "first"}).status == 200
    assert api.post(f"{path}/secret/rotate").status == 200
    assert api.patch(path, {"description": "second"}).status == 200
    assert api.get(path).json()["description"] == "second"


def test_concurrent_creates_and_patches_of_one_team_under_conflicts_all_succeed(
    api: ApiClient, injected_dynamodb: InjectedDynamoDB
) -> None:
    existing = [created(api, description=f"existing {n}")["id"] for n in range(5)]
    injected_dynamodb.conflict_rate = 0.3
    creates = [webhook(description=f"new {n}") for n in range(10)]
    # Two PATCHes of each existing subscription, of different fields, sent together.
    patches: list[tuple[str, dict[str, object]]] = [(id_, {"description": f"patched {id_}"}) for id_ in existing]
    patches += [(id_, {"scopes": ["app"]}) for id_ in existing]
    with ThreadPoolExecutor(20) as clients:
        answers = [clients.submit(api.post, "/v3/webhooks", body) for body in creates]
        answers += [clients.submit(api.patch, f"/v3/webhooks/{id_}", body) for id_, body in patches]
        statuses = Counter(answer.result().status for answer in answers)
    assert statuses == {201: 10, 200: 10}
    assert injected_dynamodb.cancelled > 0
    listed = {each["id"]: each for each in api.get("/v3/webhooks?limit=100").json()["data"]}
    assert len(listed) == 15
    for id_ in existing:
        assert listed[id_]["description"] == f"patched {id_}" and listed[id_]["scopes"] == ["app"]
    assert sorted(each["description"] for id_, each in listed.items() if id_ not in existing) == sorted(
        f"new {n}" for n in range(10)
    )


@pytest.mark.parametrize(
    ("answer", "expected"),
    [(Answer(500), "failing since its attempt"), (Answer(410), "disabled")],
)
def test_a_health_write_cancelled_at_every_try_is_made_when_the_message_comes_back(
    stack: object, injected_dynamodb: InjectedDynamoDB, answer: Answer, expected: str
) -> None:
    world = World()
    with receiver(lambda _: answer) as endpoint:
        subscription = world.subscribe(endpoint.port)
        delivery = world.pending(subscription)
        message = ("message-1", world.message(delivery, 1))
        injected_dynamodb.conflict_rate = 1.0
        (first,) = world.deliverer.deliver_batch([message], UNLIMITED)
        assert first.outcome == Outcome.ERROR  # SQS receives the message again
        unchanged = world.subscriptions.get(subscription.team_id, subscription.id)
        assert unchanged and unchanged.enabled and unchanged.failing_since is None
        injected_dynamodb.conflict_rate = 0.0
        (again,) = world.deliverer.deliver_batch([message], UNLIMITED)
        assert again.outcome == "already done"
    assert len(endpoint.received) == 1  # sent once: the attempt was recorded before the health write
    stored = world.subscriptions.get(subscription.team_id, subscription.id)
    recorded = world.delivery_log.get(delivery)
    assert stored and recorded
    if expected == "disabled":
        assert not stored.enabled and stored.disabled_reason and "410 Gone" in stored.disabled_reason
    else:
        assert stored.enabled and stored.failing_since == recorded.attempts[0].at
