"""Each catalog event's `data` schema: consistent with its sample, and the checks POST /v3/events makes."""

import copy
from typing import TYPE_CHECKING, Any, cast

import jsonschema
import pytest

from hookrelay import catalog
from hookrelay.errors import DomainError
from hookrelay.event_schemas import violations
from hookrelay.http_api import problem_of
from hookrelay.models.events import EventIn
from hookrelay.publishing import EventPublisher, new_event

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient
from unit.test_publishing import FakeEvents

EVENT_TYPES = catalog.event_types()


@pytest.mark.parametrize("event_type", EVENT_TYPES, ids=[each.name for each in EVENT_TYPES])
def test_every_sample_follows_its_schema_a_valid_draft_2020_12_schema(event_type: catalog.CatalogEntry) -> None:
    schema = event_type.data_schema
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(event_type.sample, schema, cls=jsonschema.Draft202012Validator)
    assert schema["required"], "every event names the entity it is about"
    assert violations(event_type.name, event_type.sample) == {}


@pytest.mark.parametrize("event_type", EVENT_TYPES, ids=[each.name for each in EVENT_TYPES])
def test_every_schema_allows_properties_a_producer_adds(event_type: catalog.CatalogEntry) -> None:
    richer = {**event_type.sample, "added_by_producer": {"anything": [1, 2]}}
    for value in richer.values():
        if isinstance(value, dict):
            value["added_too"] = True
    assert violations(event_type.name, richer) == {}


def sample(name: str) -> dict[str, Any]:
    event_type = catalog.event_type(name)
    assert event_type is not None
    return copy.deepcopy(event_type.sample)


def test_each_violation_is_named_by_its_path_from_data() -> None:
    data = sample("signer.done")
    del data["signer"]["id"]
    data["signer"]["status"] = 3
    data["signer"]["info"]["email"] = ["j@example.com"]
    data["signature_request"]["id"] = ""
    assert violations("signer.done", data) == {
        "data.signature_request.id": "must not be empty",
        "data.signer.id": "is required",
        "data.signer.info.email": "must be string or null",
        "data.signer.status": "must be string",
    }


def test_missing_entities_and_wrong_items_are_named() -> None:
    assert violations("signer.done", {}) == {"data.signature_request": "is required", "data.signer": "is required"}
    data = sample("signature_request.done")
    data["signature_request"]["signers"][1] = {"status": "signed"}
    assert violations("signature_request.done", data) == {"data.signature_request.signers[1].id": "is required"}
    assert violations("ENVELOPE_COMPLETED", {**sample("ENVELOPE_COMPLETED"), "finalRevisionVersion": "1"}) == {
        "data.finalRevisionVersion": "must be integer"
    }


def test_a_reason_never_repeats_a_large_input() -> None:
    data = sample("ENVELOPE_COMPLETED") | {"finalRevisionVersion": -1}
    assert violations("ENVELOPE_COMPLETED", data) == {"data.finalRevisionVersion": "-1 is less than the minimum of 0"}
    data = sample("signer.done")
    data["signer"] = ["x" * 10_000]
    (reason,) = violations("signer.done", data).values()
    assert len(reason) <= 200


def test_the_publisher_refuses_data_against_the_schema_only_when_validating() -> None:
    event = new_event("acme", EventIn.model_validate({"event_name": "signer.done", "data": {"signer": {"id": "s"}}}))
    events = FakeEvents()
    EventPublisher(cast("EventBridgeClient", events), "bus").publish(event)
    assert len(events.entries) == 1
    with pytest.raises(DomainError) as raised:
        EventPublisher(cast("EventBridgeClient", events), "bus", validate_data=True).publish(event)
    problem = problem_of(raised.value).problem
    assert problem.status == 422
    assert {param.name for param in problem.invalid_params or []} == {"data.signature_request", "data.signer.status"}
    assert len(events.entries) == 1
    valid = new_event("acme", EventIn.model_validate({"event_name": "signer.done", "data": sample("signer.done")}))
    EventPublisher(cast("EventBridgeClient", events), "bus", validate_data=True).publish(valid)
    assert len(events.entries) == 2
