"""R6: the paths that handle secrets, on a stack logging at DEBUG, print no secret key, API key or
signature, nor send one in a trace segment. (Every other e2e stack is checked the same way at the
end of the session, by conftest.)"""

import secrets
import uuid
from collections import Counter

import pytest
import requests
from receivers import Answer, Received, receiver

from api_client import ApiClient
from e2e.conftest import (
    API_KEY,
    SIGNATURE,
    SUBSCRIPTION_SECRET,
    RunningStack,
    SecretsSeen,
    eventually,
    http_transport,
    publish,
    running_stack,
    statuses,
    subscribe,
)

pytestmark = pytest.mark.e2e
CUSTOM_SECRET = "a-custom-secret-" + secrets.token_hex(12)


def drive_every_secret_path(stack: RunningStack, seen: SecretsSeen) -> None:
    """Create with a custom secret, deliver (a 500, then a 200), rotate, send a test event, refuse a
    bad key, create a key with the CLI: remembering every secret, key and signature in `seen`."""
    key = stack.create_key(f"team-{uuid.uuid4().hex[:8]}")
    seen.add(API_KEY, key)
    api = ApiClient(http_transport(stack, requests.Session()), key)
    answered: Counter[str] = Counter()

    def fail_first(request: Received) -> Answer:
        answered[request.headers["webhook-id"]] += 1
        return Answer(500, b"try again") if answered[request.headers["webhook-id"]] == 1 else Answer(200)

    with receiver(fail_first) as target:
        subscription = subscribe(api, f"http://127.0.0.1:{target.port}/hook", secret_key=CUSTOM_SECRET)
        assert subscription["secret_key"] == CUSTOM_SECRET
        seen.add(SUBSCRIPTION_SECRET, CUSTOM_SECRET)
        publish(api)
        eventually(lambda: set(statuses(api, subscription["id"]).values()) == {"delivered"}, "delivered after a 500")

        rotated = api.post(f"/v3/webhooks/{subscription['id']}/secret/rotate")
        assert rotated.status == 200, rotated.body
        seen.add(SUBSCRIPTION_SECRET, rotated.json()["secret_key"])
        sent = api.post(f"/v3/webhooks/{subscription['id']}/test", {"event_name": "signer.done"})
        assert sent.status == 202, sent.body
        eventually(
            lambda: statuses(api, subscription["id"]).get(sent.json()["id"]) == "delivered", "the test delivered"
        )
        assert api.get(f"/v3/webhooks/{subscription['id']}/deliveries/{sent.json()['id']}").status == 200

    for request in target.received:
        seen.add_from_delivery(request)
    # Both secrets sign while the rotated-out one overlaps: two Standard Webhooks signatures.
    assert len(target.received) == 4 and len(target.received[-1].headers["webhook-signature"].split()) == 2

    bad_key = "hr_" + secrets.token_urlsafe(24)
    seen.add(API_KEY, bad_key)
    assert api.get("/v3/webhooks", key=bad_key).status == 401

    cli_key = stack.create_key_with_cli(f"cli-{uuid.uuid4().hex[:8]}")
    seen.add(API_KEY, cli_key)
    assert api.get("/v3/webhooks", key=cli_key).status == 200


def test_debug_logs_and_traces_hold_no_secret_key_api_key_or_signature() -> None:
    seen = SecretsSeen()
    with running_stack(
        {
            "POWERTOOLS_LOG_LEVEL": "DEBUG",
            "HOOKRELAY_ALLOW_PRIVATE_ENDPOINTS": "true",
            "HOOKRELAY_RETRY_SCHEDULE": "1s",
            "HOOKRELAY_LOCAL_FAILED_VISIBILITY_SECONDS": "0",
        }
    ) as stack:
        drive_every_secret_path(stack, seen)

    kinds = seen.kinds()
    assert kinds[API_KEY] == 3 and kinds[SUBSCRIPTION_SECRET] == 2 and kinds[SIGNATURE] >= 8, kinds
    debug_lines = [line for line in stack.text().splitlines() if '"level":"DEBUG"' in line]
    assert debug_lines, "POWERTOOLS_LOG_LEVEL=DEBUG did not reach the functions"
    # Traced as on AWS: a segment per invocation, with the handler's and the AWS calls' subsegments.
    traced = {document["name"] for document in stack.traces()}
    functions = {"ApiFunction", "AuthorizerFunction", "IngestFunction", "DeliveryFunction"}
    assert functions | {"## lambda_handler", "dynamodb", "sqs", "events"} <= traced, traced
    leaks = seen.leaks([stack])
    assert not leaks, "\n".join(sorted({str(leak) for leak in leaks}))
