"""`hookrelay keys create|list|revoke` against a deployed stack (found by name through CloudFormation)
and against the local stack."""

import hashlib
import json
from collections.abc import Iterator

import pytest

from hookrelay.api_keys import Authenticator
from hookrelay.store.api_keys import DynamoCredentials
from hookrelay_cli.main import main
from integration.cli_stacks import StackResources, deployed_stack, local_stack


@pytest.fixture
def stack() -> Iterator[StackResources]:
    with deployed_stack() as resources:
        yield resources


def create(stack: StackResources, team: str, capsys: pytest.CaptureFixture[str]) -> dict[str, str]:
    assert main(["keys", "create", "--team", team, *stack.target_arguments()]) == 0
    issued: dict[str, str] = json.loads(capsys.readouterr().out)
    return issued


def listed(stack: StackResources, team: str, capsys: pytest.CaptureFixture[str]) -> list[dict[str, str]]:
    assert main(["keys", "list", "--team", team, "--json", *stack.target_arguments()]) == 0
    keys: list[dict[str, str]] = json.loads(capsys.readouterr().out)["keys"]
    return keys


def authenticates_as(stack: StackResources, key: str) -> str | None:
    authenticator = Authenticator(
        DynamoCredentials(stack.client("dynamodb"), stack.table("ApiKeysTable").name), ttl_seconds=0
    )
    credential = authenticator.credential_of(f"Bearer {key}")
    return credential.team_id if credential else None


def test_keys_create_finds_the_table_of_a_deployed_stack(
    stack: StackResources, capsys: pytest.CaptureFixture[str]
) -> None:
    issued = create(stack, "acme", capsys)

    assert issued["team_id"] == "acme"
    items = stack.table("ApiKeysTable").scan()["Items"]
    assert items == [
        {
            "key_hash": hashlib.sha256(issued["api_key"].encode()).hexdigest(),
            "team_id": "acme",
            "key_id": issued["key_id"],
            "created_at": items[0]["created_at"],
        }
    ]


def test_create_list_revoke_round_trip(stack: StackResources, capsys: pytest.CaptureFixture[str]) -> None:
    kept, revoked = create(stack, "acme", capsys), create(stack, "acme", capsys)
    assert authenticates_as(stack, revoked["api_key"]) == "acme"

    keys = listed(stack, "acme", capsys)
    assert {key["key_id"] for key in keys} == {kept["key_id"], revoked["key_id"]}
    assert all(set(key) == {"key_id", "created_at"} for key in keys)

    assert main(["keys", "revoke", "--team", "acme", revoked["key_id"], "--stack", "hookrelay-prod"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out) == {"revoked": revoked["key_id"], "team_id": "acme"}
    assert "HOOKRELAY_API_KEY_CACHE_SECONDS" in err

    assert [key["key_id"] for key in listed(stack, "acme", capsys)] == [kept["key_id"]]
    assert authenticates_as(stack, revoked["api_key"]) is None
    assert authenticates_as(stack, kept["api_key"]) == "acme"


def test_the_list_is_a_table_by_default_and_never_shows_a_key(
    stack: StackResources, capsys: pytest.CaptureFixture[str]
) -> None:
    issued = create(stack, "acme", capsys)
    assert main(["keys", "list", "--team", "acme", "--stack", "hookrelay-prod"]) == 0
    out = capsys.readouterr().out
    header, row = out.splitlines()
    assert header.split() == ["KEY_ID", "CREATED_AT"] and row.split()[0] == issued["key_id"]
    assert issued["api_key"] not in out and hashlib.sha256(issued["api_key"].encode()).hexdigest() not in out


def test_a_team_neither_sees_nor_revokes_another_teams_keys(
    stack: StackResources, capsys: pytest.CaptureFixture[str]
) -> None:
    acme, globex = create(stack, "acme", capsys), create(stack, "globex", capsys)

    assert [key["key_id"] for key in listed(stack, "globex", capsys)] == [globex["key_id"]]
    assert listed(stack, "initech", capsys) == []

    assert main(["keys", "revoke", "--team", "globex", acme["key_id"], "--stack", "hookrelay-prod"]) == 1
    out, err = capsys.readouterr()
    assert out == "" and err == f"error: team globex has no API key {acme['key_id']} in stack hookrelay-prod\n"
    assert authenticates_as(stack, acme["api_key"]) == "acme"


def test_an_unknown_key_id_is_a_one_line_error(stack: StackResources, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["keys", "revoke", "--team", "acme", "0123456789ab", "--stack", "hookrelay-prod"]) == 1
    assert capsys.readouterr().err == "error: team acme has no API key 0123456789ab in stack hookrelay-prod\n"


def test_a_malformed_team_id_is_refused_as_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["keys", "list", "--team", "no spaces"])
    assert exit_.value.code == 2
    assert "a team id is" in capsys.readouterr().err


def test_an_unknown_stack_is_a_one_line_error(stack: StackResources, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["keys", "list", "--team", "acme", "--stack", "no-such-stack"]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err == "error: DescribeStackResource: Stack with id no-such-stack does not exist\n"


def test_missing_credentials_are_a_one_line_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: object, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/config")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")

    assert main(["keys", "list", "--team", "acme", "--stack", "hookrelay", "--region", "eu-west-3"]) == 1
    assert capsys.readouterr().err == "error: Unable to locate credentials\n"


def test_the_same_commands_work_on_the_local_stack(capsys: pytest.CaptureFixture[str]) -> None:
    with local_stack() as local:
        kept, revoked = create(local, "acme", capsys), create(local, "acme", capsys)
        assert main(["keys", "revoke", "--team", "acme", revoked["key_id"], *local.target_arguments()]) == 0
        capsys.readouterr()
        assert [key["key_id"] for key in listed(local, "acme", capsys)] == [kept["key_id"]]
        assert authenticates_as(local, revoked["api_key"]) is None
        assert authenticates_as(local, kept["api_key"]) == "acme"


@pytest.mark.parametrize("where", ["deployed", "local"])
def test_portal_prints_a_link_for_the_team(where: str, capsys: pytest.CaptureFixture[str]) -> None:
    with deployed_stack() if where == "deployed" else local_stack() as stack:
        api_url = ["--api-url", "https://api.example.com"] if where == "deployed" else []
        arguments = ["portal", "--team", "acme", "--read-only", "--expires-in", "600", *api_url]
        assert main([*arguments, *stack.target_arguments()]) == 0
        url = capsys.readouterr().out.strip()
        base = "https://api.example.com" if where == "deployed" else "http://127.0.0.1:3000"
        assert url.startswith(f"{base}/portal#token=hrp_")
        token = url.split("#token=", 1)[1]
        authenticator = Authenticator(
            DynamoCredentials(stack.client("dynamodb"), stack.table("ApiKeysTable").name), ttl_seconds=0
        )
        credential = authenticator.credential_of(f"Bearer {token}")
        assert credential is not None
        assert (credential.team_id, credential.portal, credential.read_only) == ("acme", True, True)


@pytest.mark.parametrize("lifetime", ["59", "86401", "soon"])
def test_portal_refuses_a_lifetime_out_of_bounds(lifetime: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["portal", "--team", "acme", "--expires-in", lifetime, "--local"])
    assert "60 to 86400" in capsys.readouterr().err


@pytest.mark.parametrize("where", ["deployed", "local"])
def test_portal_revoke_ends_every_session_of_the_team_and_no_key(
    where: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with deployed_stack() if where == "deployed" else local_stack() as stack:
        key = create(stack, "acme", capsys)
        opened = []
        for team in ("acme", "acme", "globex"):
            assert (
                main(["portal", "--team", team, "--api-url", "https://api.example.com", *stack.target_arguments()]) == 0
            )
            opened.append(capsys.readouterr().out.strip().split("#token=", 1)[1])
        # A session's item is in the team index for `portal revoke`, never listed or revoked as a key.
        assert [listed_key["key_id"] for listed_key in listed(stack, "acme", capsys)] == [key["key_id"]]

        assert main(["portal", "revoke", "--team", "acme", *stack.target_arguments()]) == 0
        out, err = capsys.readouterr()
        assert json.loads(out) == {"revoked_sessions": 2, "team_id": "acme"}
        assert "HOOKRELAY_API_KEY_CACHE_SECONDS" in err

        assert [authenticates_as(stack, token) for token in opened] == [None, None, "globex"]
        assert authenticates_as(stack, key["api_key"]) == "acme"
