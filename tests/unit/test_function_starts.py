"""What a function's cold start loads: not what its invocations never use (P5)."""

import json
import os
import subprocess
import sys
from dataclasses import dataclass

from paths import REPO
from unit.test_settings import RESOURCES

# Imports a function's module, then reports what its start loaded and built.
PROBE = """
import json, sys
import app
from hookrelay import aws
models = sys.modules.get("hookrelay.models")
print(json.dumps({
    "modules": sorted(sys.modules),
    "dynamodb_resources": aws._dynamodb.cache_info().currsize,
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
    dynamodb_resources: int
    built_models: set[str]  # the hookrelay.models classes whose validators were built


def started(function: str) -> Start:
    """What a function's start imported, how many DynamoDB resources it created and which models it built."""
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
    return Start(set(report["modules"]), int(report["dynamodb_resources"]), set(report["built_models"]))


def test_the_authorizer_starts_without_pydantic_the_event_handler_or_a_dynamodb_resource() -> None:
    # Hashing a key and reading one item needs none of them.
    start = started("authorizer")
    assert "pydantic" not in start.modules
    assert not any(module.startswith("aws_lambda_powertools.event_handler") for module in start.modules)
    assert start.dynamodb_resources == 0


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


def test_delivery_starts_without_requests() -> None:
    # The transport sends with urllib3, which boto3 imports anyway; requests would add its own
    # imports (charset detection, cookies, adapters) to every cold start.
    assert "requests" not in started("delivery").modules
