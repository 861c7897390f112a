"""The delivery log over the local stack: see failures, retry and recover them, send a test, rotate the secret."""

import time
from collections import Counter
from collections.abc import Iterator

import pytest
import standardwebhooks
from receivers import Answer, Received, receiver

from api_client import ApiClient
from e2e.conftest import (
    RunningStack,
    eventually,
    publish,
    running_stack,
    statuses,
    subscribe,
    verify_all_signatures,
)
from hookrelay import clock

pytestmark = pytest.mark.e2e
ROTATION_OVERLAP_SECONDS = 6


@pytest.fixture(scope="module")
def operations_stack() -> Iterator[RunningStack]:
    # One retry after 1 s, so a failing receiver fails a delivery for good in about a second; a
    # rotated-out secret signs for 6 s instead of 24 h.
    with running_stack(
        {
            "HOOKRELAY_ALLOW_PRIVATE_ENDPOINTS": "true",
            "HOOKRELAY_RETRY_SCHEDULE": "1s",
            "HOOKRELAY_LOCAL_FAILED_VISIBILITY_SECONDS": "0",
            "HOOKRELAY_SECRET_ROTATION_OVERLAP": f"{ROTATION_OVERLAP_SECONDS}s",
        }
    ) as stack:
        yield stack


@pytest.fixture
def api(operations_stack: RunningStack) -> ApiClient:
    return operations_stack.new_team()


def test_failed_deliveries_are_retried_and_recovered_exactly_once_more(api: ApiClient) -> None:
    healthy = False

    def until_fixed(_: Received) -> Answer:
        return Answer(200, b"fixed") if healthy else Answer(500, b"database down")

    since = clock.now_iso()
    with receiver(until_fixed) as flaky:
        subscription = subscribe(api, f"http://127.0.0.1:{flaky.port}/hook")
        for _ in range(3):
            publish(api)
        eventually(
            lambda: list(statuses(api, subscription["id"]).values()) == ["failed"] * 3, "three deliveries failed"
        )
        first, *others = statuses(api, subscription["id"])
        shown = api.get(f"/v3/webhooks/{subscription['id']}/deliveries/{first}").json()
        assert [attempt["status_code"] for attempt in shown["attempts"]] == [500, 500]
        assert [attempt["response_excerpt"] for attempt in shown["attempts"]] == ["database down"] * 2
        assert Counter(request.headers["webhook-id"] for request in flaky.received) == {
            delivery: 2 for delivery in (first, *others)
        }

        healthy = True
        retried = api.post(f"/v3/webhooks/{subscription['id']}/deliveries/{first}/retry")
        assert retried.status == 202 and retried.json()["id"] == first
        eventually(
            lambda: statuses(api, subscription["id"]).get(first) == "delivered", "the retried delivery delivered"
        )

        recovered = api.post(f"/v3/webhooks/{subscription['id']}/recover", {"since": since})
        assert recovered.status == 202 and recovered.json() == {"recovered": 2, "next_cursor": None}
        again = api.post(f"/v3/webhooks/{subscription['id']}/recover", {"since": since})
        assert again.json() == {"recovered": 0, "next_cursor": None}
        eventually(lambda: set(statuses(api, subscription["id"]).values()) == {"delivered"}, "every delivery recovered")
        time.sleep(2)  # room for any duplicate to show up

    per_delivery = Counter(request.headers["webhook-id"] for request in flaky.received)
    assert per_delivery == {delivery: 3 for delivery in (first, *others)}
    for request in flaky.received[-3:]:
        verify_all_signatures(request, str(subscription["secret_key"]), str(subscription["id"]))
    log = api.get(f"/v3/webhooks/{subscription['id']}/deliveries/{others[0]}").json()
    assert [attempt["status_code"] for attempt in log["attempts"]] == [500, 500, 200]


def test_a_test_event_arrives_signed_and_marked(api: ApiClient) -> None:
    with receiver() as target:
        subscription = subscribe(api, f"http://127.0.0.1:{target.port}/hook", payload_format="subnoto")
        sent = api.post(f"/v3/webhooks/{subscription['id']}/test", {"event_name": "ENVELOPE_SIGNED"})
        assert sent.status == 202
        eventually(lambda: len(target.received) == 1, "the test event arrived")
    (request,) = target.received
    assert request.headers["webhook-id"] == sent.json()["id"] and request.headers["X-Hookrelay-Test"] == "true"
    verify_all_signatures(request, str(subscription["secret_key"]), str(subscription["id"]))
    assert b'"eventType":"ENVELOPE_SIGNED"' in request.body
    assert statuses(api, subscription["id"]) == {sent.json()["id"]: "delivered"}


def signatures(request: Received) -> list[str]:
    return request.headers["webhook-signature"].split(" ")


def verifies(request: Received, secret: str) -> bool:
    headers = {name.lower(): value for name, value in request.headers.items()}
    try:
        standardwebhooks.Webhook(secret).verify(request.body, headers, json_parse=False)
    except standardwebhooks.WebhookVerificationError:
        return False
    return True


def test_after_rotation_both_secrets_sign_until_the_overlap_ends(api: ApiClient) -> None:
    with receiver() as target:
        subscription = subscribe(api, f"http://127.0.0.1:{target.port}/hook")
        old_secret = str(subscription["secret_key"])
        rotated = api.post(f"/v3/webhooks/{subscription['id']}/secret/rotate")
        assert rotated.status == 200
        new_secret = rotated.json()["secret_key"]
        rotated_at = time.monotonic()
        publish(api)
        eventually(lambda: len(target.received) == 1, "a delivery during the overlap")
        time.sleep(max(0.0, ROTATION_OVERLAP_SECONDS + 1 - (time.monotonic() - rotated_at)))
        publish(api)
        eventually(lambda: len(target.received) == 2, "a delivery after the overlap")

    during, after = target.received
    assert len(signatures(during)) == 2
    assert verifies(during, new_secret) and verifies(during, old_secret)
    verify_all_signatures(during, new_secret, str(subscription["id"]))
    assert len(signatures(after)) == 1
    assert verifies(after, new_secret) and not verifies(after, old_secret)
