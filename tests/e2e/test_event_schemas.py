"""Event schemas over the local stack: each catalog event's schema is served, and with
HOOKRELAY_VALIDATE_EVENT_DATA on, POST /v3/events refuses data against it, naming each path."""

from collections.abc import Iterator

import jsonschema
import pytest
import requests

from api_client import ApiClient
from api_contract import assert_problem
from e2e.conftest import DEV_KEY, RunningStack, http_transport, running_stack

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def validating_stack() -> Iterator[RunningStack]:
    with running_stack({"HOOKRELAY_DEV_API_KEY": DEV_KEY, "HOOKRELAY_VALIDATE_EVENT_DATA": "true"}) as stack:
        yield stack


@pytest.fixture
def api(validating_stack: RunningStack) -> ApiClient:
    return ApiClient(http_transport(validating_stack, requests.Session()), DEV_KEY)


def test_every_served_sample_is_accepted_and_breaking_its_schema_is_422_with_paths(api: ApiClient) -> None:
    event_types = api.get("/v3/webhook-event-types").json()["data"]
    for event_type in event_types:
        jsonschema.validate(event_type["sample"], event_type["schema"], cls=jsonschema.Draft202012Validator)
        published = api.post("/v3/events", {"event_name": event_type["name"], "data": event_type["sample"]})
        assert published.status == 202, (event_type["name"], published.body)

    signer_done = next(each for each in event_types if each["name"] == "signer.done")["sample"]
    broken = {
        **signer_done,
        "signer": {**signer_done["signer"], "status": None, "info": {"email": 42}},
        "signature_request": {"name": "no id"},
    }
    problem = assert_problem(
        api.post("/v3/events", {"event_name": "signer.done", "data": broken}),
        422,
        "data.signer.status",
        "data.signer.info.email",
        "data.signature_request.id",
        "data.signature_request.status",
    )
    assert len(problem["invalid_params"]) == 4  # type: ignore[arg-type]
