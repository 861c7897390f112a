"""The API contract over real HTTP against `hookrelay local up`."""

import pytest
import requests

from api_client import ApiClient
from api_contract import *  # noqa: F403 - the shared contract tests run here too
from e2e.conftest import DEV_KEY, RunningStack

pytestmark = pytest.mark.e2e


def test_printed_dev_key_works(local_stack: RunningStack) -> None:
    assert any(DEV_KEY in line for line in local_stack.output)
    response = requests.get(
        f"{local_stack.url}/v3/webhooks", headers={"Authorization": f"Bearer {DEV_KEY}"}, timeout=10
    )
    assert response.status_code == 200
    assert response.json()["meta"] == {"next_cursor": None}


def test_cli_help(local_stack: RunningStack) -> None:
    for command in ([], ["keys"], ["keys", "create"], ["local"], ["local", "up"], ["local", "invoke"]):
        result = local_stack.hookrelay(*command, "--help")
        assert result.returncode == 0, result.stderr
        assert "usage: hookrelay" in result.stdout


def test_keys_create_cli_makes_a_working_key(local_stack: RunningStack) -> None:
    key = local_stack.create_key_with_cli("cli-team")
    assert key.startswith("hr_")
    response = requests.get(f"{local_stack.url}/v3/webhooks", headers={"Authorization": f"Bearer {key}"}, timeout=10)
    assert response.status_code == 200


def test_key_for_a_bad_team_id_is_refused(local_stack: RunningStack) -> None:
    result = local_stack.hookrelay(
        "keys", "create", "--team", "a b", "--local", "--aws-endpoint", local_stack.aws_endpoint
    )
    assert result.returncode == 2
    assert "team id" in result.stderr


def test_api_gateway_answers_for_unrouted_paths(api: ApiClient) -> None:
    response = api.get("/")
    assert response.status == 404
    assert response.json() == {"message": "Not Found"}
