"""The local stack's DynamoDB as strict as AWS: index reads lag writes (HOOKRELAY_LOCAL_INDEX_LAG_MS),
and a query's ExclusiveStartKey must lie inside its key condition."""

import time

import pytest
from boto3.dynamodb.conditions import Key
from botocore.exceptions import ClientError

from hookrelay.api_keys import hash_key, issue_key
from hookrelay.aws import client, table
from hookrelay.settings import get_settings
from hookrelay.store.api_keys import Credential, DynamoApiKeyStore, DynamoCredentials
from hookrelay_cli.local.stack import LocalStack

LAG_MS = 400


@pytest.fixture
def index_lag(restore_environment: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOOKRELAY_LOCAL_INDEX_LAG_MS", str(LAG_MS))


def test_an_index_query_misses_what_was_written_in_the_last_n_ms(index_lag: None, stack: LocalStack) -> None:
    keys = DynamoApiKeyStore(table(get_settings().api_keys_table))
    issued = issue_key(keys, "team-a")
    assert keys.of_team("team-a") == []  # the team index has not caught up yet
    credentials = DynamoCredentials(client("dynamodb"), get_settings().api_keys_table)
    assert credentials.credential_of(hash_key(issued.key)) == Credential("team-a")  # the table itself is consistent
    time.sleep(LAG_MS / 1000 + 0.1)
    assert [key.key_id for key in keys.of_team("team-a")] == [issued.key_id]


def test_without_the_knob_an_index_query_sees_every_write(stack: LocalStack) -> None:
    keys = DynamoApiKeyStore(table(get_settings().api_keys_table))
    issued = issue_key(keys, "team-a")
    assert [key.key_id for key in keys.of_team("team-a")] == [issued.key_id]


@pytest.mark.parametrize(
    ("condition", "start_key"),
    [
        (Key("team_id").eq("team-a"), {"team_id": "team-b", "subscription_id": "s-1"}),
        (
            Key("team_id").eq("team-a") & Key("subscription_id").begins_with("s-"),
            {"team_id": "team-a", "subscription_id": "t-1"},
        ),
    ],
    ids=["other partition", "sort key outside the condition"],
)
def test_a_start_key_outside_the_key_condition_is_refused(
    stack: LocalStack, condition: object, start_key: dict[str, str]
) -> None:
    subscriptions = table(get_settings().subscriptions_table)
    with pytest.raises(ClientError) as refused:
        subscriptions.query(KeyConditionExpression=condition, ExclusiveStartKey=start_key)
    assert refused.value.response["Error"]["Code"] == "ValidationException"
    assert refused.value.response["Error"]["Message"] == (
        "The provided starting key is outside query boundaries based on provided conditions"
    )


def test_a_start_key_inside_the_key_condition_is_taken(stack: LocalStack) -> None:
    subscriptions = table(get_settings().subscriptions_table)
    page = subscriptions.query(
        KeyConditionExpression=Key("team_id").eq("team-a"),
        ExclusiveStartKey={"team_id": "team-a", "subscription_id": "s-1"},
    )
    assert page["Items"] == []
