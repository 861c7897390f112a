"""POST /v3/events with HOOKRELAY_VALIDATE_EVENT_DATA: `data` is checked against its event's schema."""

import copy

import pytest

from api_client import ApiClient
from api_contract import assert_problem
from hookrelay import catalog
from hookrelay.settings import get_settings


@pytest.fixture
def validating(monkeypatch: pytest.MonkeyPatch) -> None:
    """The knob on, before the API handler's first request reads the settings."""
    monkeypatch.setenv("HOOKRELAY_VALIDATE_EVENT_DATA", "true")
    get_settings.cache_clear()


def signer_done() -> dict[str, object]:
    event_type = catalog.event_type("signer.done")
    assert event_type is not None
    return copy.deepcopy(event_type.sample)


@pytest.mark.usefixtures("validating")
def test_data_against_its_schema_is_422_naming_each_path(api: ApiClient) -> None:
    data = signer_done()
    data["signer"]["info"]["email"] = 42  # type: ignore[index]
    del data["signature_request"]["status"]  # type: ignore[attr-defined]
    problem = assert_problem(
        api.post("/v3/events", {"event_name": "signer.done", "data": data}),
        422,
        "data.signer.info.email",
        "data.signature_request.status",
    )
    assert len(problem["invalid_params"]) == 2  # type: ignore[arg-type]
    assert "signer.done" in str(problem["detail"])


@pytest.mark.usefixtures("validating")
def test_data_following_its_schema_is_accepted_with_properties_of_its_own(api: ApiClient) -> None:
    data = {**signer_done(), "crm_reference": "CRM-42"}
    assert api.post("/v3/events", {"event_name": "signer.done", "data": data}).status == 202
