"""Changes apply to the very next attempt (SPEC §4), over the local stack with its deployed settings:
warm ingest and delivery containers must not act on a subscription as it was before a change."""

import base64
import hashlib
import hmac
import time
from collections.abc import Iterator

import pytest
from receivers import receiver

from api_client import ApiClient
from e2e.conftest import RunningStack, eventually, publish, running_stack, statuses, subscribe

pytestmark = pytest.mark.e2e
# Long enough for a delivery of a subscription the stack still had in a cache to have arrived.
QUIET_SECONDS = 3


@pytest.fixture(scope="module")
def changes_stack() -> Iterator[RunningStack]:
    # No cache setting of its own: the containers keep what they read, as deployed ones do.
    with running_stack(
        {"HOOKRELAY_ALLOW_PRIVATE_ENDPOINTS": "true", "HOOKRELAY_LOCAL_FAILED_VISIBILITY_SECONDS": "0"}
    ) as stack:
        yield stack


@pytest.fixture
def api(changes_stack: RunningStack) -> ApiClient:
    return changes_stack.new_team()


def test_a_rotated_secret_signs_the_very_next_test_event(api: ApiClient) -> None:
    with receiver() as target:
        subscription = subscribe(api, f"http://127.0.0.1:{target.port}/hook")
        # Warms the delivery container with the subscription as it is before the rotation.
        assert api.post(f"/v3/webhooks/{subscription['id']}/test").status == 202
        eventually(lambda: len(target.received) == 1, "the first test event arrived")
        rotated = api.post(f"/v3/webhooks/{subscription['id']}/secret/rotate")
        assert rotated.status == 200
        assert api.post(f"/v3/webhooks/{subscription['id']}/test").status == 202
        eventually(lambda: len(target.received) == 2, "the test event after the rotation arrived")
    after = target.received[1]
    # A Yousign receiver switched to the new secret the moment rotate answered.
    key = base64.b64decode(rotated.json()["secret_key"].removeprefix("whsec_"))
    expected = "sha256=" + hmac.new(key, after.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(after.headers["X-Yousign-Signature-256"], expected)


def test_a_deleted_subscription_gets_nothing_published_after_the_delete(api: ApiClient) -> None:
    with receiver() as deleted, receiver() as kept:
        doomed = subscribe(api, f"http://127.0.0.1:{deleted.port}/hook")
        witness = subscribe(api, f"http://127.0.0.1:{kept.port}/hook")
        publish(api)
        eventually(lambda: len(deleted.received) == 1 and len(kept.received) == 1, "the first event arrived")
        assert api.delete(f"/v3/webhooks/{doomed['id']}").status == 204
        publish(api)
        eventually(lambda: len(kept.received) == 2, "the second event reached the subscription kept")
        time.sleep(QUIET_SECONDS)
    assert len(deleted.received) == 1
    assert list(statuses(api, witness["id"]).values()) == ["delivered", "delivered"]


def test_a_subscription_created_just_before_an_event_receives_it(api: ApiClient) -> None:
    with receiver() as early, receiver() as late:
        subscribe(api, f"http://127.0.0.1:{early.port}/hook")
        publish(api)
        # Warms the ingest container with the team's subscriptions as they were before the second.
        eventually(lambda: len(early.received) == 1, "the first event arrived")
        newcomer = subscribe(api, f"http://127.0.0.1:{late.port}/hook")
        event_id = publish(api)
        eventually(lambda: len(early.received) == 2, "the second event reached the first subscription")
        eventually(lambda: len(late.received) == 1, "the second event reached the subscription created before it")
    assert [request.headers["webhook-id"] for request in late.received] == list(statuses(api, newcomer["id"]))
    assert event_id.encode() in late.received[0].body
