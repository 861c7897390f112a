"""What a function's cold start loads: not what its invocations never use (P5)."""

import json
import os
import subprocess
import sys
from dataclasses import dataclass

import pytest
from offline_settings import RESOURCES

from paths import REPO

# Imports a function's module, then reports what its start loaded and built.
PROBE = """
import json, sys
import boto3.session
resources = []
make_resource = boto3.session.Session.resource
def counted_resource(self, *args, **kwargs):
    resources.append(args)
    return make_resource(self, *args, **kwargs)
boto3.session.Session.resource = counted_resource
import app
print(json.dumps({"modules": sorted(sys.modules), "resources": len(resources)}))
"""


@dataclass(frozen=True)
class Start:
    modules: set[str]
    resources: int  # boto3 resources created: each loads its resource model and makes a client of its own


def started(function: str) -> Start:
    """What a function's start imported and how many boto3 resources it created."""
    environment = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": os.pathsep.join([str(REPO / "layers" / "common" / "python"), str(REPO / "functions" / function)]),
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        **RESOURCES,
    }
    probe = subprocess.run(
        [sys.executable, "-c", PROBE], env=environment, capture_output=True, text=True, timeout=120, check=True
    )
    report = json.loads(probe.stdout.splitlines()[-1])
    return Start(set(report["modules"]), int(report["resources"]))


def test_the_authorizer_starts_without_pydantic_or_the_event_handler() -> None:
    # Hashing a key and reading one item needs neither.
    start = started("authorizer")
    assert "pydantic" not in start.modules
    assert not any(module.startswith("aws_lambda_powertools.event_handler") for module in start.modules)


@pytest.mark.parametrize("function", ["api", "authorizer", "ingest", "delivery", "sweeper"])
def test_a_function_starts_without_a_boto3_resource(function: str) -> None:
    # A resource loads its model and makes a client of its own at its first call (~15 ms of a cold
    # start): the tables speak Python values through a client with boto3's transformations instead.
    assert started(function).resources == 0


def test_the_sweeper_starts_without_pydantic_or_the_records() -> None:
    # It reads delivery ids and times from the retry index: no delivery record, no model.
    modules = started("sweeper").modules
    assert "pydantic" not in modules and "hookrelay.records" not in modules


def test_ingest_and_delivery_start_without_pydantic() -> None:
    # Their records are plain dataclasses: importing pydantic and building its validators would double
    # their cold starts. Only the API checks request bodies.
    for function in ("ingest", "delivery"):
        modules = started(function).modules
        assert "pydantic" not in modules and "hookrelay.models" not in modules, function


def test_ingest_and_delivery_start_without_the_ed25519_implementation() -> None:
    # Ingest signs nothing, and delivery signs with ed25519 only for the subscriptions that chose it.
    for function in ("ingest", "delivery"):
        assert "cryptography" not in started(function).modules, function


def test_delivery_starts_without_requests() -> None:
    # The transport sends with urllib3, which boto3 imports anyway; requests would add its own
    # imports (charset detection, cookies, adapters) to every cold start.
    assert "requests" not in started("delivery").modules


def test_the_wiring_imports_what_a_builder_builds_only_when_it_is_called() -> None:
    # Every function imports hookrelay.wiring; the authorizer must not pay for the delivery's imports.
    probe = subprocess.run(
        [sys.executable, "-c", "import json, sys, hookrelay.wiring; print(json.dumps(sorted(sys.modules)))"],
        env={"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(REPO / "layers" / "common" / "python")},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    imported = {module for module in json.loads(probe.stdout) if module.startswith("hookrelay.")}
    assert imported == {"hookrelay.wiring", "hookrelay.settings", "hookrelay.clock", "hookrelay.retry"}
