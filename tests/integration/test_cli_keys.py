"""`hookrelay keys create` against a deployed stack, found by name through CloudFormation."""

import hashlib
import json

import boto3
import pytest
from moto import mock_aws

from hookrelay_cli.main import main

KEYS_TABLE_ONLY = {
    "Resources": {
        "ApiKeysTable": {
            "Type": "AWS::DynamoDB::Table",
            "Properties": {
                "BillingMode": "PAY_PER_REQUEST",
                "AttributeDefinitions": [{"AttributeName": "key_hash", "AttributeType": "S"}],
                "KeySchema": [{"AttributeName": "key_hash", "KeyType": "HASH"}],
            },
        }
    }
}


@mock_aws
def test_keys_create_finds_the_table_of_a_deployed_stack(capsys: pytest.CaptureFixture[str]) -> None:
    boto3.client("cloudformation").create_stack(StackName="hookrelay-prod", TemplateBody=json.dumps(KEYS_TABLE_ONLY))

    assert main(["keys", "create", "--team", "acme", "--stack", "hookrelay-prod"]) == 0

    issued = json.loads(capsys.readouterr().out)
    assert issued["team_id"] == "acme"
    table_name = boto3.client("cloudformation").describe_stack_resource(
        StackName="hookrelay-prod", LogicalResourceId="ApiKeysTable"
    )["StackResourceDetail"]["PhysicalResourceId"]
    items = boto3.resource("dynamodb").Table(table_name).scan()["Items"]
    assert items == [
        {
            "key_hash": hashlib.sha256(issued["api_key"].encode()).hexdigest(),
            "team_id": "acme",
            "key_id": issued["key_id"],
            "created_at": items[0]["created_at"],
        }
    ]
