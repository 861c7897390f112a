"""HOOKRELAY_LOCAL_CONTAINER_NICENESS: the local stack's function containers yield the CPU to the processes
that stand in for AWS's services (whose answers on AWS never wait for a function's CPU), when asked."""

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
