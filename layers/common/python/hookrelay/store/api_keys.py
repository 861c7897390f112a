"""API keys, stored only as SHA-256 hashes: partition key key_hash."""

from typing import Any, Protocol

from boto3.dynamodb.conditions import Attr


class ApiKeyStore(Protocol):
    def add(self, key_hash: str, team_id: str, key_id: str, created_at: str) -> None: ...

    def team_of(self, key_hash: str) -> str | None: ...


class DynamoApiKeyStore:
    def __init__(self, table: Any):
        self._table = table

    def add(self, key_hash: str, team_id: str, key_id: str, created_at: str) -> None:
        item = {"key_hash": key_hash, "team_id": team_id, "key_id": key_id, "created_at": created_at}
        self._table.put_item(Item=item, ConditionExpression=Attr("key_hash").not_exists())

    def team_of(self, key_hash: str) -> str | None:
        item = self._table.get_item(Key={"key_hash": key_hash}, ProjectionExpression="team_id").get("Item")
        return str(item["team_id"]) if item else None
