"""Fixtures shared by every test layer."""

import os
from collections.abc import Iterator

import pytest

from hookrelay_cli.template import Template
from paths import TEMPLATE

# Modules create their powertools Logger and Metrics at import, reading POWERTOOLS_* then, and test
# modules import them at collection: give the process the template's plain settings first, as
# Lambda would.
for _name, _value in Template.read(TEMPLATE).function("ApiFunction").environment.items():
    if _name.startswith("POWERTOOLS_") and isinstance(_value, str):
        os.environ.setdefault(_name, _value)


@pytest.fixture(autouse=True)
def _no_real_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test may reach a real AWS account, whatever the developer's shell has configured."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")


@pytest.fixture
def restore_environment() -> Iterator[None]:
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)
