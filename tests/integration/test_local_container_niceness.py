"""How the local stack starts its function containers. HOOKRELAY_LOCAL_CONTAINER_NICENESS: they yield the
CPU to the processes that stand in for AWS's services (whose answers on AWS never wait for a function's
CPU), when asked; and each names itself in its AWS calls."""

import os
from pathlib import Path

import pytest

from hookrelay_cli.local.functions import ContainerFunction
from hookrelay_cli.local.runtime import CONTAINER_NICENESS_VARIABLE
from hookrelay_cli.local.stack import LocalStack
from hookrelay_cli.template import FunctionSpec

REPO = Path(__file__).resolve().parents[2]


def container_niceness(tmp_path: Path, environment: dict[str, str]) -> int:
    """The niceness a container of a function runs at, as its handler reads it."""
    (tmp_path / "app.py").write_text("import os\n\n\ndef handler(event, context):\n    return os.nice(0)\n")
    spec = FunctionSpec("Niceness", tmp_path, "app", "handler", {}, 30, "NicenessRole")
    container = ContainerFunction(spec, traced=False, environment={**os.environ, **environment})
    try:
        niceness: int = container.invoke({})
    finally:
        container.stop()
    return niceness


def test_a_container_runs_that_much_nicer_than_the_stack(tmp_path: Path) -> None:
    assert container_niceness(tmp_path, {CONTAINER_NICENESS_VARIABLE: "7"}) == os.nice(0) + 7


def test_by_default_a_container_runs_as_the_stack_does(tmp_path: Path) -> None:
    assert container_niceness(tmp_path, {}) == os.nice(0)


@pytest.mark.parametrize("value", ["-1", "20", "high"])
def test_a_value_that_is_not_one_stops_the_stack_at_its_start(
    restore_environment: None, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv(CONTAINER_NICENESS_VARIABLE, value)
    with pytest.raises(ValueError, match=f"{CONTAINER_NICENESS_VARIABLE} must be a whole number from 0 to 19"):
        LocalStack.create(REPO / "template.yaml", aws_endpoint="http://127.0.0.1:1", containers=True)


def test_each_container_names_itself_in_the_user_agent_of_its_aws_calls(tmp_path: Path) -> None:
    # The local DynamoDB serves its callers in turns, each known by this app id (hookrelay_cli.local.dynamodb).
    (tmp_path / "app.py").write_text(
        "import os\n\n\ndef handler(event, context):\n    return os.environ['AWS_SDK_UA_APP_ID']\n"
    )
    spec = FunctionSpec("Named", tmp_path, "app", "handler", {}, 30, "NamedRole")
    containers = [ContainerFunction(spec, number, traced=False, environment=dict(os.environ)) for number in (0, 3)]
    try:
        assert [container.invoke({}) for container in containers] == ["Named-0", "Named-3"]
    finally:
        for container in containers:
            container.stop()
