"""The authorizer's cold start loads only what hashing a key and reading one item needs (P5)."""

import json
import os
import subprocess
import sys

from paths import REPO

# Imports the authorizer, then reports what its start loaded and built.
PROBE = """
import json, sys
import app
from hookrelay import aws
print(json.dumps({
    "modules": sorted(sys.modules),
    "dynamodb_resources": aws._dynamodb.cache_info().currsize,
}))
"""


def test_the_authorizer_starts_without_pydantic_the_event_handler_or_a_dynamodb_resource() -> None:
    environment = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": os.pathsep.join(
            [str(REPO / "layers" / "common" / "python"), str(REPO / "functions" / "authorizer")]
        ),
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        **{
            name: "hookrelay-placeholder"
            for name in (
                "HOOKRELAY_SUBSCRIPTIONS_TABLE",
                "HOOKRELAY_API_KEYS_TABLE",
                "HOOKRELAY_DELIVERIES_TABLE",
                "HOOKRELAY_IDEMPOTENCY_TABLE",
                "HOOKRELAY_EVENT_BUS",
                "HOOKRELAY_EVENTS_QUEUE_URL",
                "HOOKRELAY_DELIVERY_QUEUE_URL",
            )
        },
    }
    probe = subprocess.run(
        [sys.executable, "-c", PROBE], env=environment, capture_output=True, text=True, timeout=120, check=True
    )
    started = json.loads(probe.stdout.splitlines()[-1])
    modules = set(started["modules"])
    assert "pydantic" not in modules
    assert not any(module.startswith("aws_lambda_powertools.event_handler") for module in modules)
    assert started["dynamodb_resources"] == 0
