"""R3: schemathesis fuzzes every operation of /v3/openapi.json against the running local stack.

Each case is sent with a valid key; no answer may be a server error or differ from the document
(status code, content type, body schema). Each operation is fuzzed with valid and invalid inputs,
then with the ids of a subscription and a delivery that exist. The default run makes a few hundred
cases; HOOKRELAY_FUZZ_EXAMPLES raises the examples per operation and mode for the full run, which
must make at least FULL_RUN_CASES (2 505 with 100):

    HOOKRELAY_FUZZ_EXAMPLES=100 .venv/bin/pytest tests/e2e/test_api_fuzzing.py -s
"""

import os
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import hypothesis
import hypothesis.errors
import pytest
import requests
import schemathesis
from schemathesis import APIOperation, BaseSchema, Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.core.failures import FailureGroup
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api_client import ApiClient
from e2e.conftest import RunningStack, http_transport, running_stack, subscribe

pytestmark = [pytest.mark.e2e, pytest.mark.reliability]

EXAMPLES_VARIABLE = "HOOKRELAY_FUZZ_EXAMPLES"
DEFAULT_EXAMPLES = 15
FULL_RUN_CASES = 1_000
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]

Operation = APIOperation[Any, Any, Any, Any]


def examples_per_operation() -> int:
    return int(os.environ.get(EXAMPLES_VARIABLE) or DEFAULT_EXAMPLES)


@pytest.fixture(scope="module")
def fuzzed_stack() -> Iterator[RunningStack]:
    with running_stack(
        {
            "HOOKRELAY_ALLOW_PRIVATE_ENDPOINTS": "false",
            # The API is what is fuzzed: what it enqueues is left on the queue, not sent anywhere.
            "HOOKRELAY_LOCAL_PAUSED_FUNCTIONS": "DeliveryFunction",
        }
    ) as stack:
        yield stack


@pytest.fixture(scope="module")
def fuzzed_key(fuzzed_stack: RunningStack) -> str:
    return fuzzed_stack.create_key(f"fuzz-{uuid.uuid4().hex[:8]}")


@pytest.fixture(scope="module")
def api_schema(fuzzed_stack: RunningStack) -> BaseSchema:
    # Cases are made with hypothesis from each operation's strategy (derandomized, so the same on
    # every run), not with `schemathesis.pytest.from_fixture`, whose runner needs pytest < 9.
    config = SchemathesisConfig.from_dict({"base-url": fuzzed_stack.url})
    return schemathesis.openapi.from_url(f"{fuzzed_stack.url}/v3/openapi.json", config=config, timeout=30)


@pytest.fixture(scope="module")
def existing_ids(fuzzed_stack: RunningStack, fuzzed_key: str) -> dict[str, str]:
    """A subscription of the fuzzed team and one delivery of it, so that cases also reach found ids."""
    api = ApiClient(http_transport(fuzzed_stack, requests.Session()), fuzzed_key)
    subscription = subscribe(api, "https://hooks.example.com/fuzzed")
    test = api.post(f"/v3/webhooks/{subscription['id']}/test")
    assert test.status == 202, test.body
    return {"webhook_id": str(subscription["id"]), "delivery_id": str(test.json()["id"])}


@dataclass
class Fuzzing:
    """Sends generated cases with the team's key and keeps what they found."""

    key: str = field(repr=False)
    http: requests.Session = field(default_factory=requests.Session)
    statuses: Counter[int] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)

    @property
    def cases(self) -> int:
        return self.statuses.total()

    def run(self, operation: Operation, mode: GenerationMode, path_parameters: dict[str, str] | None = None) -> None:
        """`examples_per_operation()` cases of one operation (more when hypothesis shrinks a failure)."""

        @hypothesis.given(case=operation.as_strategy(generation_mode=mode, path_parameters=path_parameters))
        @hypothesis.settings(
            max_examples=examples_per_operation(),
            derandomize=True,
            database=None,
            deadline=None,
            suppress_health_check=list(hypothesis.HealthCheck),
        )
        def send(case: Case[Operation]) -> None:
            response = case.call(session=self.http, headers={"Authorization": f"Bearer {self.key}"})
            self.statuses[response.status_code] += 1
            case.validate_response(response, checks=CHECKS)

        label = f"{operation.label} ({mode.value}{', existing ids' if path_parameters else ''})"
        try:
            send()
        except hypothesis.errors.Unsatisfiable:
            # Nothing about it can be made invalid (a string path parameter, no body): no negative cases.
            assert mode is GenerationMode.NEGATIVE, label
        except (AssertionError, FailureGroup) as error:
            self.failures.append(f"{label}: {error}")


def test_every_answer_is_documented_and_never_a_server_error(
    api_schema: BaseSchema, fuzzed_key: str, existing_ids: dict[str, str]
) -> None:
    fuzzing = Fuzzing(fuzzed_key)
    operations = []
    for result in api_schema.get_all_operations():
        assert isinstance(result, Ok), result  # the document hookrelay serves is read whole
        operations.append(result.ok())
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            fuzzing.run(operation, mode)
    # Then with ids that exist, deleting the subscription last.
    for operation in sorted(operations, key=lambda operation: operation.method == "delete"):
        names = {parameter.name for parameter in operation.path_parameters}
        if names:
            fuzzing.run(operation, GenerationMode.POSITIVE, {name: existing_ids[name] for name in names})

    print(f"\nschemathesis: {fuzzing.cases} cases, {examples_per_operation()} examples per operation and mode;")
    print(f"answers by status: {dict(sorted(fuzzing.statuses.items()))}")
    failures = fuzzing.failures
    assert not failures, "\n\n".join(failures)
    if os.environ.get(EXAMPLES_VARIABLE):
        assert fuzzing.cases >= FULL_RUN_CASES, (
            f"a full run makes {FULL_RUN_CASES} cases or more: raise {EXAMPLES_VARIABLE}"
        )
