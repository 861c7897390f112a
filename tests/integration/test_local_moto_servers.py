"""The local stack's DynamoDB in a moto server of its own, a child process (local.moto_servers): as strict
as before, under the rules `local up` applies, reached through the one endpoint the stack prints, and
never outliving the stack."""

import signal
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import boto3
import local_up
import moto.backends
import pytest
from boto3.dynamodb.conditions import Key
from botocore.exceptions import ClientError

from hookrelay import wiring
from hookrelay.api_keys import issue_key
from hookrelay.aws import client
from hookrelay.settings import get_settings
from hookrelay_cli.local.dynamodb import AS_ON_AWS, READ_LAG_VARIABLE, DynamoDBRules
from hookrelay_cli.local.resources import default_name
from hookrelay_cli.local.stack import LOCAL_STACK_NAME, LocalStack
from integration.test_crash_safety import container_stack
from paths import TEMPLATE

# Long enough that a loaded machine (three test workers on two cores) does not stall a query past it.
LAG_MS = 2000
DYNAMODB_SERVER_MODULE = "hookrelay_cli.local.moto_servers"
# What the child is given to notice that its parent is gone and exit, on a loaded machine.
CHILD_EXIT_SECONDS = 10.0


@pytest.fixture
def stack(restore_environment: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalStack]:
    monkeypatch.setenv("HOOKRELAY_LOCAL_INDEX_LAG_MS", str(LAG_MS))
    with container_stack(TEMPLATE) as stack:
        yield stack


def stack_tables(stack: LocalStack) -> set[str]:
    return {
        stack.resources.ref(logical_id)
        for logical_id, resource in stack.template.resources.items()
        if resource.get("Type") == "AWS::DynamoDB::Table"
    }


def test_dynamodb_is_served_by_a_process_of_its_own(stack: LocalStack) -> None:
    in_this_process = moto.backends.get_backend("dynamodb")[stack.resources.account_id][stack.resources.region]
    assert set(client("dynamodb").list_tables()["TableNames"]) == stack_tables(stack)
    assert in_this_process.tables == {}


def test_an_index_query_still_lags_its_writes(stack: LocalStack) -> None:
    keys = wiring.api_key_store(get_settings())
    issued = issue_key(keys, "team-a")
    assert keys.of_team("team-a") == []
    time.sleep(LAG_MS / 1000 + 0.1)
    assert [key.key_id for key in keys.of_team("team-a")] == [issued.key_id]


def test_the_printed_endpoint_serves_dynamodb_as_strictly(stack: LocalStack) -> None:
    """Outside tools (the CLI's --local, the tests) name the one endpoint for every service."""
    # An endpoint given to the client wins over the stack's AWS_ENDPOINT_URL_DYNAMODB.
    dynamodb = boto3.resource("dynamodb", endpoint_url=stack.aws_endpoint)
    assert {each.name for each in dynamodb.tables.all()} == stack_tables(stack)
    subscriptions = dynamodb.Table(get_settings().subscriptions_table)
    with pytest.raises(ClientError) as refused:
        subscriptions.query(
            KeyConditionExpression=Key("team_id").eq("team-a"),
            ExclusiveStartKey={"team_id": "team-b", "subscription_id": "s-1"},
        )
    assert refused.value.response["Error"]["Code"] == "ValidationException"
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def dynamodb_server_of(pid: int) -> int:
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    servers = [
        int(child)
        for child in children
        if DYNAMODB_SERVER_MODULE in Path(f"/proc/{child}/cmdline").read_text().replace("\0", " ")
    ]
    assert len(servers) == 1, f"local up's children: {children}"
    return servers[0]


def rules_of(server: int) -> DynamoDBRules:
    """The rules the DynamoDB server was started with (its last argument)."""
    return DynamoDBRules.from_json(Path(f"/proc/{server}/cmdline").read_text().split("\0")[-2])


def test_local_up_gives_its_dynamodb_server_the_rules_of_aws_and_of_the_environment() -> None:
    with local_up.running({READ_LAG_VARIABLE: str(LAG_MS)}) as started:
        assert rules_of(dynamodb_server_of(started.process.pid)) == replace(AS_ON_AWS, read_lag_ms=LAG_MS)
        dynamodb = started.client("dynamodb")
        subscriptions = default_name(LOCAL_STACK_NAME, "SubscriptionsTable")
        key = {"team_id": {"S": "team-a"}, "subscription_id": {"S": "s-1"}}
        dynamodb.put_item(TableName=subscriptions, Item=key)
        assert "Item" not in dynamodb.get_item(TableName=subscriptions, Key=key)
        assert dynamodb.get_item(TableName=subscriptions, Key=key, ConsistentRead=True)["Item"] == key


def ends_soon(pid: int) -> bool:
    deadline = time.monotonic() + CHILD_EXIT_SECONDS
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return True
        if state == "Z":  # ended, not yet reaped by its (gone) parent's successor
            return True
        time.sleep(0.1)
    return False


def test_the_dynamodb_server_ends_with_local_up_on_ctrl_c() -> None:
    with local_up.running({}) as stack:
        server = dynamodb_server_of(stack.process.pid)
    assert ends_soon(server)


def test_the_dynamodb_server_ends_when_local_up_is_killed() -> None:
    started = local_up.start({})
    try:
        server = dynamodb_server_of(started.process.pid)
    finally:
        started.process.send_signal(signal.SIGKILL)
        started.process.wait()
    assert ends_soon(server)
