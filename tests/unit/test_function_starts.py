"""What a function's cold start loads: not what its invocations never use (P5)."""

import json
import os
import subprocess
import sys
from dataclasses import dataclass

import pytest

from paths import REPO
from unit.test_settings import RESOURCES

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
models = sys.modules.get("hookrelay.models")
print(json.dumps({
    "modules": sorted(sys.modules),
    "resources": len(resources),
    "built_models": sorted(
        name for name, value in vars(models).items()
        if isinstance(value, type) and value.__module__ == models.__name__
        and getattr(value, "__pydantic_complete__", False)
    ) if models else [],
}))
"""


@dataclass(frozen=True)
class Start:
    modules: set[str]
    resources: int  # boto3 resources created: each loads its resource model and makes a client of its own
    built_models: set[str]  # the hookrelay.models classes whose validators were built


def started(function: str) -> Start:
    """What a function's start imported, how many boto3 resources it created and which models it built."""
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
    return Start(set(report["modules"]), int(report["resources"]), set(report["built_models"]))


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


def test_the_sweeper_starts_without_pydantic() -> None:
    # It reads delivery ids and times from the retry index: no delivery record, no model.
    assert "pydantic" not in started("sweeper").modules


# The models only the API reads or answers with: built at a start of ingest or delivery, they would
# cost every cold start of these functions for nothing.
API_ONLY_MODELS = {
    "SubscriptionSettings",
    "SubscriptionPatch",
    "SubscriptionView",
    "SubscriptionWithSecret",
    "SecretRotation",
    "PageMeta",
    "Page",
    "EventIn",
    "EventBatchIn",
    "SampleEventRequest",
    "RecoverRequest",
    "PortalSessionRequest",
    "PortalSession",
    "PortalSessionInfo",
    "Recovery",
    "PublishedEvent",
    "PublishedEvents",
    "DeliverySummary",
    "RenderedRequest",
    "DeliveryDetail",
}


def test_ingest_starts_without_the_api_models() -> None:
    assert not started("ingest").built_models & API_ONLY_MODELS


def test_delivery_starts_without_the_api_models() -> None:
    assert not started("delivery").built_models & API_ONLY_MODELS


def test_ingest_and_delivery_start_without_the_ed25519_implementation() -> None:
    # Ingest signs nothing, and delivery signs with ed25519 only for the subscriptions that chose it.
    for function in ("ingest", "delivery"):
        assert "cryptography" not in started(function).modules, function
