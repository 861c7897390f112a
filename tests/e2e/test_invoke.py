"""`hookrelay local invoke`: every sample in events/ runs through its function without Docker."""

import json
import subprocess
import sys

import pytest

from paths import EVENTS, REPO

pytestmark = pytest.mark.e2e

EXPECTED_STATUS = {
    "api-create-webhook": 201,
    "api-list-webhooks": 200,
    "api-get-webhook": 404,
    "api-update-webhook": 404,
    "api-delete-webhook": 404,
    "api-list-event-types": 200,
    "api-openapi-document": 200,
    "api-publish-event": 202,
    "api-publish-events-batch": 202,
}


def invoke(function_id: str, event_name: str) -> dict[str, object]:
    output: dict[str, object] = json.loads(invoked(function_id, event_name).stdout)
    return output


def invoked(function_id: str, event_name: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "hookrelay_cli.main", "local", "invoke", function_id, "-e", f"events/{event_name}.json"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result


def test_every_sample_event_is_covered() -> None:
    assert {path.stem for path in EVENTS.glob("*.json")} == {
        *EXPECTED_STATUS,
        "authorizer-request",
        "ingest-sqs-batch",
        "delivery-sqs-batch",
        "sweeper-scheduled",
    }


@pytest.mark.parametrize(("event_name", "status"), sorted(EXPECTED_STATUS.items()))
def test_api_samples(event_name: str, status: int) -> None:
    assert invoke("ApiFunction", event_name)["statusCode"] == status


def test_invoke_logs_only_what_the_function_logs() -> None:
    # Before, a dozen lines of moto's access log (werkzeug): `127.0.0.1 - - [...] "POST / HTTP/1.1" 200 -`.
    logged = invoked("ApiFunction", "api-list-webhooks").stderr
    assert "HTTP/1.1" not in logged and "werkzeug" not in logged
    assert "Traceback" not in logged and "unpublished metrics" not in logged and "No segment found" not in logged


def test_authorizer_sample() -> None:
    # The sample's key is not registered in a fresh stack: the request goes on without a team.
    assert invoke("AuthorizerFunction", "authorizer-request") == {"isAuthorized": True, "context": {"team_id": ""}}


def test_ingest_sample() -> None:
    assert invoke("IngestFunction", "ingest-sqs-batch") == {"batchItemFailures": []}


def test_delivery_sample() -> None:
    # The sample's first attempt names its event (the ingest sample's), which a fresh stack does not hold:
    # nothing to send, nothing failed. tests/integration/test_sample_events.py sends it where it is held.
    assert invoke("DeliveryFunction", "delivery-sqs-batch") == {"batchItemFailures": []}


def test_sweeper_sample() -> None:
    assert invoke("SweeperFunction", "sweeper-scheduled") == {"enqueued": 0}
