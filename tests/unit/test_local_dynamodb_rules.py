"""The local stack's DynamoDB rules (local.dynamodb) as the HOOKRELAY_LOCAL_* variables give them."""

import pytest

from hookrelay_cli.local.dynamodb import AS_ON_AWS, DynamoDBRules


def test_unset_variables_leave_the_defaults() -> None:
    assert DynamoDBRules.from_environment(environ={}) == DynamoDBRules()
    assert DynamoDBRules.from_environment(AS_ON_AWS, environ={}) == AS_ON_AWS


def test_set_variables_win_over_the_defaults() -> None:
    environment = {
        "HOOKRELAY_LOCAL_READ_LAG_MS": "0",
        "HOOKRELAY_LOCAL_INDEX_LAG_MS": "500",
        "HOOKRELAY_LOCAL_TRANSACTION_MS": "0",
        "HOOKRELAY_LOCAL_TRANSACTION_CONFLICT_RATE": "0.2",
        "HOOKRELAY_LOCAL_PARTITION_LIMIT_SCALE": "off",
    }
    assert DynamoDBRules.from_environment(AS_ON_AWS, environ=environment) == DynamoDBRules(
        index_lag_ms=500, transaction_conflict_rate=0.2
    )


@pytest.mark.parametrize("rules", [DynamoDBRules(), AS_ON_AWS, DynamoDBRules(3, 4, 5, 0.5, 0.01)])
def test_the_rules_survive_their_way_to_the_dynamodb_server(rules: DynamoDBRules) -> None:
    assert DynamoDBRules.from_environment(environ=rules.environment()) == rules
    assert DynamoDBRules.from_json(rules.to_json()) == rules


@pytest.mark.parametrize(
    ("variable", "value", "complaint"),
    [
        ("HOOKRELAY_LOCAL_READ_LAG_MS", "0.5", "must be a whole number of milliseconds, not '0.5'"),
        ("HOOKRELAY_LOCAL_INDEX_LAG_MS", "-1", "must be a whole number of milliseconds, not '-1'"),
        ("HOOKRELAY_LOCAL_TRANSACTION_MS", "soon", "must be a whole number of milliseconds, not 'soon'"),
        ("HOOKRELAY_LOCAL_TRANSACTION_CONFLICT_RATE", "1.5", "must be a number from 0 to 1, not '1.5'"),
        ("HOOKRELAY_LOCAL_TRANSACTION_CONFLICT_RATE", "nan", "must be a number from 0 to 1, not 'nan'"),
        ("HOOKRELAY_LOCAL_PARTITION_LIMIT_SCALE", "0", "must be a number above 0, or 'off', not '0'"),
        ("HOOKRELAY_LOCAL_PARTITION_LIMIT_SCALE", "inf", "must be a number above 0, or 'off', not 'inf'"),
    ],
)
def test_a_value_that_is_not_one_names_its_variable(variable: str, value: str, complaint: str) -> None:
    with pytest.raises(ValueError, match="^" + variable + " " + complaint.replace("(", r"\(")):
        DynamoDBRules.from_environment(environ={variable: value})
