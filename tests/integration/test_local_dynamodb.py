"""The local stack's DynamoDB as strict as AWS (local.dynamodb), each rule on its own, under `mock_aws`:
index reads lag writes (HOOKRELAY_LOCAL_INDEX_LAG_MS), eventually consistent reads answer with the
table as it was (HOOKRELAY_LOCAL_READ_LAG_MS), transactions conflict (HOOKRELAY_LOCAL_TRANSACTION_MS,
HOOKRELAY_LOCAL_TRANSACTION_CONFLICT_RATE), a hot partition key is throttled
(HOOKRELAY_LOCAL_PARTITION_LIMIT_SCALE), and a query's ExclusiveStartKey must lie inside its key
condition. Each rule's test has a twin with the rule off, which sees what moto alone answers."""

import random
import threading
import time
from collections.abc import Iterator
from typing import Any, cast

import boto3
import pytest
from boto3.dynamodb.conditions import Key
from botocore.config import Config
from botocore.exceptions import ClientError

from hookrelay import wiring
from hookrelay.api_keys import hash_key, issue_key
from hookrelay.aws import client, table
from hookrelay.settings import get_settings
from hookrelay.store.api_keys import Credential, DynamoCredentials
from hookrelay_cli.local.dynamodb import DynamoDBRules, TakingTurns, caller_of, dynamodb_rules
from hookrelay_cli.local.stack import LocalStack

LAG_MS = 400
# Long enough for a loaded machine to make the four kinds of read within it.
READ_LAG_MS = 1000
# Long enough that a loaded machine still sends the second transaction while the first is in progress.
TRANSACTION_MS = 1500
# 1 000 write units a second per partition key become 5, 3 000 read units 15.
SCALE = 0.005
WRITES_PER_SECOND = 5
READS_PER_SECOND = 15


@pytest.fixture
def index_lag(restore_environment: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOOKRELAY_LOCAL_INDEX_LAG_MS", str(LAG_MS))


def test_an_index_query_misses_what_was_written_in_the_last_n_ms(index_lag: None, stack: LocalStack) -> None:
    keys = wiring.api_key_store(get_settings())
    issued = issue_key(keys, "team-a")
    assert keys.of_team("team-a") == []  # the team index has not caught up yet
    credentials = DynamoCredentials(client("dynamodb"), get_settings().api_keys_table)
    assert credentials.credential_of(hash_key(issued.key)) == Credential("team-a")  # the table itself is consistent
    time.sleep(LAG_MS / 1000 + 0.1)
    assert [key.key_id for key in keys.of_team("team-a")] == [issued.key_id]


def test_without_the_knob_an_index_query_sees_every_write(stack: LocalStack) -> None:
    keys = wiring.api_key_store(get_settings())
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


@pytest.fixture
def dynamodb(stack: LocalStack) -> Any:
    """A DynamoDB client that tries once: what DynamoDB answers, before botocore retries it."""
    return boto3.client("dynamodb", config=Config(retries={"total_max_attempts": 1}))


@pytest.fixture
def subscriptions(stack: LocalStack) -> str:
    return get_settings().subscriptions_table


def item(name: str, **attributes: str) -> dict[str, Any]:
    return {
        "team_id": {"S": "team-a"},
        "subscription_id": {"S": name},
        **{attribute: {"S": value} for attribute, value in attributes.items()},
    }


def key(name: str) -> dict[str, Any]:
    return item(name)


def error_of(refused: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    return refused.value.response["Error"]["Code"], refused.value.response["Error"]["Message"]


def eventual_reads(dynamodb: Any, subscriptions: str, name: str) -> list[list[dict[str, Any]]]:
    """What GetItem, BatchGetItem, Query and Scan without ConsistentRead answer of item `name`."""
    got = dynamodb.get_item(TableName=subscriptions, Key=key(name)).get("Item")
    batch = dynamodb.batch_get_item(RequestItems={subscriptions: {"Keys": [key(name)]}})["Responses"][subscriptions]
    queried = dynamodb.query(
        TableName=subscriptions,
        KeyConditionExpression="team_id = :team AND subscription_id = :id",
        ExpressionAttributeValues={":team": {"S": "team-a"}, ":id": {"S": name}},
    )["Items"]
    scanned = dynamodb.scan(TableName=subscriptions)["Items"]
    return [[got] if got else [], batch, queried, [each for each in scanned if each["subscription_id"]["S"] == name]]


def consistent_read(dynamodb: Any, subscriptions: str, name: str) -> dict[str, Any] | None:
    got: dict[str, Any] | None = dynamodb.get_item(TableName=subscriptions, Key=key(name), ConsistentRead=True).get(
        "Item"
    )
    return got


def test_an_eventually_consistent_read_answers_with_the_table_as_it_was(dynamodb: Any, subscriptions: str) -> None:
    with dynamodb_rules(DynamoDBRules(read_lag_ms=READ_LAG_MS)):
        dynamodb.put_item(TableName=subscriptions, Item=item("s-1", url="https://old.example"))
        assert eventual_reads(dynamodb, subscriptions, "s-1") == [[], [], [], []]  # created within the lag
        assert consistent_read(dynamodb, subscriptions, "s-1") == item("s-1", url="https://old.example")
        time.sleep(READ_LAG_MS / 1000 + 0.1)
        dynamodb.update_item(
            TableName=subscriptions,
            Key=key("s-1"),
            UpdateExpression="SET #url = :url",
            ExpressionAttributeNames={"#url": "url"},
            ExpressionAttributeValues={":url": {"S": "https://new.example"}},
        )
        assert eventual_reads(dynamodb, subscriptions, "s-1") == [[item("s-1", url="https://old.example")]] * 4
        assert consistent_read(dynamodb, subscriptions, "s-1") == item("s-1", url="https://new.example")
        dynamodb.delete_item(TableName=subscriptions, Key=key("s-1"))
        assert eventual_reads(dynamodb, subscriptions, "s-1") == [[item("s-1", url="https://old.example")]] * 4
        assert consistent_read(dynamodb, subscriptions, "s-1") is None
        time.sleep(READ_LAG_MS / 1000 + 0.1)
        assert eventual_reads(dynamodb, subscriptions, "s-1") == [[], [], [], []]


def test_without_read_lag_an_eventually_consistent_read_sees_every_write(dynamodb: Any, subscriptions: str) -> None:
    dynamodb.put_item(TableName=subscriptions, Item=item("s-1", url="https://old.example"))
    assert eventual_reads(dynamodb, subscriptions, "s-1") == [[item("s-1", url="https://old.example")]] * 4


def held_by_a_transaction(dynamodb: Any, subscriptions: str) -> None:
    dynamodb.transact_write_items(TransactItems=[{"Put": {"TableName": subscriptions, "Item": item("#team")}}])


def second_transaction(subscriptions: str) -> list[dict[str, Any]]:
    return [
        {"Put": {"TableName": subscriptions, "Item": item("s-2")}},
        {
            "Update": {
                "TableName": subscriptions,
                "Key": key("#team"),
                "UpdateExpression": "SET version = :version",
                "ExpressionAttributeValues": {":version": {"S": "2"}},
            }
        },
    ]


def test_a_transaction_on_an_item_another_one_holds_is_cancelled_for_a_conflict(
    dynamodb: Any, subscriptions: str
) -> None:
    with dynamodb_rules(DynamoDBRules(transaction_ms=TRANSACTION_MS)):
        first = threading.Thread(target=held_by_a_transaction, args=(dynamodb, subscriptions))
        first.start()
        # Its write is made at its start; its answer comes TRANSACTION_MS later.
        while consistent_read(dynamodb, subscriptions, "#team") is None:
            time.sleep(0.01)
        with pytest.raises(ClientError) as cancelled:
            dynamodb.transact_write_items(TransactItems=second_transaction(subscriptions))
        with pytest.raises(ClientError) as refused:
            dynamodb.put_item(TableName=subscriptions, Item=item("#team"))
        dynamodb.put_item(TableName=subscriptions, Item=item("s-3"))  # other items are free
        first.join()
        # The first transaction's caller, answered, goes on without a conflict of its own.
        dynamodb.transact_write_items(TransactItems=second_transaction(subscriptions))
    assert error_of(cancelled) == (
        "TransactionCanceledException",
        "Transaction cancelled, please refer cancellation reasons for specific reasons [None, TransactionConflict]",
    )
    assert cancelled.value.response["CancellationReasons"] == [
        {"Code": "None"},
        {"Code": "TransactionConflict", "Message": "Transaction is ongoing for the item"},
    ]
    assert error_of(refused) == ("TransactionConflictException", "Transaction is ongoing for the item")


def test_without_transactions_in_progress_a_second_transaction_goes_through(dynamodb: Any, subscriptions: str) -> None:
    held_by_a_transaction(dynamodb, subscriptions)
    dynamodb.transact_write_items(TransactItems=second_transaction(subscriptions))
    assert consistent_read(dynamodb, subscriptions, "#team") == item("#team", version="2")


@pytest.mark.parametrize("rate", [1.0, 0.0], ids=["conflicts", "no conflicts"])
def test_transactions_conflict_at_random_at_the_rate(dynamodb: Any, subscriptions: str, rate: float) -> None:
    with dynamodb_rules(DynamoDBRules(transaction_conflict_rate=rate)):
        if rate == 0.0:
            dynamodb.transact_write_items(TransactItems=second_transaction(subscriptions))
            return
        with pytest.raises(ClientError) as cancelled:
            dynamodb.transact_write_items(TransactItems=second_transaction(subscriptions))
    reasons = cancelled.value.response["CancellationReasons"]
    assert sorted(reason["Code"] for reason in reasons) == ["None", "TransactionConflict"]
    assert {"Code": "TransactionConflict", "Message": "Transaction is ongoing for the item"} in reasons
    assert consistent_read(dynamodb, subscriptions, "s-2") is None


@pytest.fixture
def hot_keys_throttled() -> Iterator[None]:
    with dynamodb_rules(DynamoDBRules(partition_limit_scale=SCALE)):
        yield


ON_DEMAND_THROTTLED = {
    "Table": "Throughput exceeds the current capacity of your table or index. DynamoDB is automatically scaling"
    " your table or index so please try again shortly. If exceptions persist, check if you have a hot key:"
    " https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/bp-partition-key-design.html",
    "Index": "Throughput exceeds the current capacity for one or more global secondary indexes. DynamoDB is"
    " automatically scaling your index so please try again shortly.",
}


def assert_throttled(refused: pytest.ExceptionInfo[ClientError], reason: str, resource: str) -> None:
    """What DynamoDB answers on an on-demand table (the template's PAY_PER_REQUEST)."""
    throttled = "Index" if reason.startswith("Index") else "Table"
    assert error_of(refused) == ("ThrottlingException", ON_DEMAND_THROTTLED[throttled])
    # A field of DynamoDB's answer newer than botocore-stubs' ClientError response.
    assert cast(dict[str, Any], refused.value.response)["throttlingReasons"] == [
        {"reason": reason, "resource": resource}
    ]


def table_arn(dynamodb: Any, name: str) -> str:
    return str(dynamodb.describe_table(TableName=name)["Table"]["TableArn"])


def test_a_hot_partition_key_is_throttled_as_dynamodb_throttles_it(
    dynamodb: Any, subscriptions: str, hot_keys_throttled: None
) -> None:
    for number in range(WRITES_PER_SECOND):
        dynamodb.put_item(TableName=subscriptions, Item=item(f"s-{number}"))
    with pytest.raises(ClientError) as refused:
        dynamodb.put_item(TableName=subscriptions, Item=item("s-hot"))
    assert_throttled(refused, "TableWriteKeyRangeThroughputExceeded", table_arn(dynamodb, subscriptions))
    # Another partition key of the same table is served.
    dynamodb.put_item(TableName=subscriptions, Item={**item("s-cool"), "team_id": {"S": "team-b"}})
    # Reads have limits of their own, a unit per 4 KB read: 4 reads of this 13 KB item take 16.
    big = key("s-big") | {"team_id": {"S": "team-b"}}
    dynamodb.put_item(TableName=subscriptions, Item=big | {"body": {"S": "x" * 12 * 1024}})
    for _ in range(4):
        dynamodb.get_item(TableName=subscriptions, Key=big, ConsistentRead=True)
    with pytest.raises(ClientError) as refused:
        dynamodb.get_item(TableName=subscriptions, Key=big)
    assert_throttled(refused, "TableReadKeyRangeThroughputExceeded", table_arn(dynamodb, subscriptions))


def test_without_partition_limits_a_hot_key_is_served(dynamodb: Any, subscriptions: str) -> None:
    for number in range(WRITES_PER_SECOND * 2):
        dynamodb.put_item(TableName=subscriptions, Item=item(f"s-{number}"))
    for _ in range(READS_PER_SECOND * 4):
        dynamodb.get_item(TableName=subscriptions, Key=key("s-0"))


def test_a_transaction_writes_twice_the_units_and_a_failed_condition_still_pays(
    dynamodb: Any, subscriptions: str, hot_keys_throttled: None
) -> None:
    for _ in range(2):  # 2 units each
        held_by_a_transaction(dynamodb, subscriptions)
    with pytest.raises(ClientError) as refused:  # 1 unit, its condition failed
        dynamodb.put_item(TableName=subscriptions, Item=item("s-1"), ConditionExpression="attribute_exists(team_id)")
    assert error_of(refused)[0] == "ConditionalCheckFailedException"
    with pytest.raises(ClientError) as cancelled:
        held_by_a_transaction(dynamodb, subscriptions)
    assert cancelled.value.response["CancellationReasons"] == [
        {"Code": "ThrottlingError", "Message": ON_DEMAND_THROTTLED["Table"]}
    ]


def test_a_hot_index_key_throttles_the_writes_that_reach_it(
    dynamodb: Any, stack: LocalStack, hot_keys_throttled: None
) -> None:
    deliveries = get_settings().deliveries_table
    # Each delivery a partition of its own in the table, all of one subscription in its index.
    for number in range(WRITES_PER_SECOND):
        dynamodb.put_item(TableName=deliveries, Item=delivery(f"d-{number}"))
    with pytest.raises(ClientError) as refused:
        dynamodb.put_item(TableName=deliveries, Item=delivery("d-hot"))
    assert_throttled(
        refused, "IndexWriteKeyRangeThroughputExceeded", f"{table_arn(dynamodb, deliveries)}/index/by_subscription"
    )


def delivery(delivery_id: str) -> dict[str, Any]:
    return {
        "delivery_id": {"S": delivery_id},
        "subscription_id": {"S": "s-busy"},
        "created_at": {"S": f"2026-01-01T00:00:00Z#{delivery_id}"},
    }


def test_a_query_of_an_unknown_index_is_refused_not_failed(dynamodb: Any, subscriptions: str) -> None:
    """With each rule that reads the index's schema on: moto's refusal, not an error of the rules."""
    for rules, start in [
        (DynamoDBRules(), {}),
        (DynamoDBRules(read_lag_ms=READ_LAG_MS), {"ExclusiveStartKey": key("s")}),
    ]:
        with dynamodb_rules(rules), pytest.raises(ClientError) as refused:
            dynamodb.query(
                TableName=subscriptions,
                IndexName="no_such_index",
                KeyConditionExpression="team_id = :team",
                ExpressionAttributeValues={":team": {"S": "team-a"}},
                **start,
            )
        assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
        assert "no_such_index" in refused.value.response["Error"]["Message"]


SUBSCRIPTION_IDS = ["s-1", "s-2", "s-3"]
SHARDS = ["due#0", "due#1"]


def random_delivery_write(chance: random.Random, number: int) -> dict[str, Any]:
    """One write of the deliveries table (PutItem, UpdateItem, DeleteItem or TransactWriteItems, which may
    fail its condition) that moves a delivery between the partitions of both its indexes or out of them."""
    delivery_id = f"d-{chance.randrange(12)}"
    kind = chance.choice(["put", "update", "remove", "delete", "transaction"])
    if kind == "put":
        attributes = {"subscription_id": {"S": chance.choice(SUBSCRIPTION_IDS)}, "created_at": {"S": f"{number:04}"}}
        if chance.random() < 0.5:
            attributes |= {"due_shard": {"S": chance.choice(SHARDS)}, "due_at": {"S": f"{number:04}"}}
        return {"PutItem": {"Item": {"delivery_id": {"S": delivery_id}, **attributes}}}
    if kind == "update":
        return {
            "UpdateItem": {
                "Key": {"delivery_id": {"S": delivery_id}},
                "UpdateExpression": "SET subscription_id = :s, due_shard = :shard, due_at = :at",
                "ExpressionAttributeValues": {
                    ":s": {"S": chance.choice(SUBSCRIPTION_IDS)},
                    ":shard": {"S": chance.choice(SHARDS)},
                    ":at": {"S": f"{number:04}"},
                },
            }
        }
    if kind == "remove":
        return {"UpdateItem": {"Key": {"delivery_id": {"S": delivery_id}}, "UpdateExpression": "REMOVE due_shard"}}
    if kind == "delete":
        return {"DeleteItem": {"Key": {"delivery_id": {"S": delivery_id}}}}
    # Moves one delivery, and fails (undoing the move) when the other one exists.
    other = f"d-{chance.randrange(12, 14)}"
    return {
        "TransactWriteItems": [
            {
                "Update": {
                    "Key": {"delivery_id": {"S": delivery_id}},
                    "UpdateExpression": "SET subscription_id = :s",
                    "ExpressionAttributeValues": {":s": {"S": chance.choice(SUBSCRIPTION_IDS)}},
                }
            },
            {
                "Put": {
                    "Item": {"delivery_id": {"S": other}, "subscription_id": {"S": "s-1"}},
                    "ConditionExpression": "attribute_not_exists(delivery_id)",
                }
            },
        ]
    }


def write(dynamodb: Any, table_name: str, request: dict[str, Any]) -> None:
    ((operation, parameters),) = request.items()
    try:
        if operation == "TransactWriteItems":
            dynamodb.transact_write_items(
                TransactItems=[
                    {kind: {**one, "TableName": table_name} for kind, one in each.items()} for each in parameters
                ]
            )
        else:
            getattr(
                dynamodb, {"PutItem": "put_item", "UpdateItem": "update_item", "DeleteItem": "delete_item"}[operation]
            )(TableName=table_name, **parameters)
    except dynamodb.exceptions.TransactionCanceledException:
        pass


def index_partition(scanned: list[dict[str, Any]], hash_name: str, range_name: str, value: str) -> list[str]:
    """The ids of the deliveries the index holds under `value` (those with both of its key attributes)."""
    held = [item for item in scanned if item.get(hash_name) == {"S": value} and range_name in item]
    return sorted(item["delivery_id"]["S"] for item in held)


def test_a_query_reads_the_partition_it_names_as_a_scan_finds_it(dynamodb: Any, stack: LocalStack) -> None:
    """The local stack answers a query from the items of its partition (moto reads the whole table): after any
    mix of writes, including transactions it rolls back, each index query finds what a scan finds."""
    deliveries = get_settings().deliveries_table
    chance = random.Random(23)  # a reproducible mix of writes
    for number in range(300):
        write(dynamodb, deliveries, random_delivery_write(chance, number))
        if number % 10:
            continue
        scanned = dynamodb.scan(TableName=deliveries, ConsistentRead=True)["Items"]
        for index, hash_name, range_name, values in [
            ("by_subscription", "subscription_id", "created_at", SUBSCRIPTION_IDS),
            ("due_retries", "due_shard", "due_at", SHARDS),
        ]:
            for value in values:
                queried = dynamodb.query(
                    TableName=deliveries,
                    IndexName=index,
                    KeyConditionExpression=f"{hash_name} = :value",
                    ExpressionAttributeValues={":value": {"S": value}},
                )["Items"]
                assert sorted(item["delivery_id"]["S"] for item in queried) == index_partition(
                    scanned, hash_name, range_name, value
                ), (number, index, value)
                ranges = [item[range_name]["S"] for item in queried]
                assert ranges == sorted(ranges)


def test_an_eventually_consistent_query_reads_its_partition_as_it_was(dynamodb: Any, subscriptions: str) -> None:
    """With read lag, a query answers with its partition as it was, as a scan answers with the table: an item
    written since is missing, one changed since has its old values, one deleted since is still there."""
    with dynamodb_rules(DynamoDBRules(read_lag_ms=READ_LAG_MS)):
        for name in ("s-1", "s-2", "s-3"):
            dynamodb.put_item(TableName=subscriptions, Item=item(name, url="https://old.example"))
        time.sleep(READ_LAG_MS / 1000 + 0.1)
        dynamodb.put_item(TableName=subscriptions, Item=item("s-1", url="https://new.example"))
        dynamodb.delete_item(TableName=subscriptions, Key=key("s-2"))
        dynamodb.put_item(TableName=subscriptions, Item=item("s-4", url="https://new.example"))
        queried = dynamodb.query(
            TableName=subscriptions,
            KeyConditionExpression="team_id = :team",
            ExpressionAttributeValues={":team": {"S": "team-a"}},
        )["Items"]
        scanned = dynamodb.scan(TableName=subscriptions)["Items"]
    assert [(each["subscription_id"]["S"], each["url"]["S"]) for each in queried] == [
        ("s-1", "https://old.example"),
        ("s-2", "https://old.example"),
        ("s-3", "https://old.example"),
    ]
    assert queried == [each for each in scanned if each["team_id"] == {"S": "team-a"}]


def test_callers_take_turns_one_call_at_a_time() -> None:
    # A container's burst (a delivery batch's attempts recorded at once) queues ahead of another's call.
    turns = TakingTurns()
    order: list[str] = []
    inside = threading.Semaphore(1)
    holding, release = threading.Event(), threading.Event()

    def call(caller: str, name: str) -> None:
        with turns.turn(caller):
            assert inside.acquire(blocking=False), "two calls at once"
            order.append(name)
            if name == "holder":
                holding.set()
                release.wait(timeout=10)
            inside.release()

    def started(caller: str, name: str) -> threading.Thread:
        thread = threading.Thread(target=call, args=(caller, name))
        thread.start()
        time.sleep(0.01)  # queued in this order
        return thread

    threads = [started("app/DeliveryFunction-0", "holder")]
    assert holding.wait(timeout=10)
    threads += [started("app/DeliveryFunction-0", f"burst-{n}") for n in range(20)]
    threads += [started("app/IngestFunction-0", "quiet"), started("app/DeliveryFunction-1", "other")]
    release.set()
    for thread in threads:
        thread.join(timeout=10)
    assert order[:4] == ["holder", "burst-0", "quiet", "other"]
    assert order[4:] == [f"burst-{n}" for n in range(1, 20)]


def test_a_caller_is_known_by_its_app_id() -> None:
    user_agent = "Boto3/1.44.8 md/Botocore#1.44.8 ua/2.1 cfg/retry-mode#standard app/IngestFunction-2 Botocore/1.44.8"
    assert caller_of(user_agent) == "app/IngestFunction-2"
    assert caller_of("aws-cli/2.17.0 Python/3.13.0") == "aws-cli/2.17.0 Python/3.13.0"
