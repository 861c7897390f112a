"""API keys and portal tokens, stored only as SHA-256 hashes: partition key key_hash; index by_team (team_id, key_id).

A portal token's item has `kind` "portal", which `hookrelay keys list|revoke` pass over; a key_id of its
own (PORTAL_SESSION_ID_PREFIX and the start of its hash), for `hookrelay portal revoke` to find the team's
sessions in the by_team index; `expires_at` (unix seconds), the table's TTL attribute; and `opened_by`, the
hash of the API key that opened it (none when an operator did, with the CLI).
"""

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from boto3.dynamodb.conditions import Attr, Key
from boto3.dynamodb.types import TypeDeserializer

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

TEAM_INDEX = "by_team"
PORTAL_KIND = "portal"
PORTAL_SESSION_ID_PREFIX = "portal-"


@dataclass(frozen=True)
class ApiKeyInfo:
    """What may be shown of a key: its public id, never the key or its hash."""

    key_id: str
    team_id: str
    created_at: str


@dataclass(frozen=True)
class Credential:
    """What a bearer token grants: an API key, its team; a portal token, its team's webhooks until it expires."""

    team_id: str
    portal: bool = False
    read_only: bool = False
    expires_at: int | None = None
    # A portal token's: the hash of the API key that opened it, which it does not outlive.
    opened_by: str | None = None


class ApiKeyStore(Protocol):
    def add(self, key_hash: str, team_id: str, key_id: str, created_at: str) -> None: ...

    def add_portal_token(
        self, token_hash: str, team_id: str, *, read_only: bool, expires_at: int, opened_by: str | None
    ) -> None: ...

    def remove_portal_token(self, token_hash: str) -> bool:
        """Delete the portal token with that hash; False when there is none (an API key is no portal token)."""
        ...

    def remove_portal_tokens(self, team_id: str) -> int:
        """Delete every portal token of the team; how many there were."""
        ...

    def of_team(self, team_id: str) -> list[ApiKeyInfo]:
        """The team's keys, by key id."""
        ...

    def remove(self, team_id: str, key_id: str) -> bool:
        """Delete the team's key with that id; False when the team has none."""
        ...


class Credentials(Protocol):
    def credential_of(self, key_hash: str) -> Credential | None:
        """The credential a key or token hashes to, expired or not (DynamoDB's TTL removes items late), as of
        the latest write: a key or portal link works from its first use."""
        ...


class DynamoCredentials:
    """Reads credentials with a low-level DynamoDB client: one GetItem is all the authorizer does, and a
    DynamoDB resource (what DynamoApiKeyStore writes and queries with) would cost its every cold start
    the resource's model and classes."""

    def __init__(self, client: "DynamoDBClient", table_name: str):
        self._client = client
        self._table_name = table_name
        self._deserializer = TypeDeserializer()

    def credential_of(self, key_hash: str) -> Credential | None:
        item = self._client.get_item(
            TableName=self._table_name,
            Key={"key_hash": {"S": key_hash}},
            ProjectionExpression="team_id, kind, read_only, expires_at, opened_by",
            # A key or portal link is used right after it is made: an eventually consistent read may miss it.
            ConsistentRead=True,
        ).get("Item")
        if not item:
            return None
        values = {name: self._deserializer.deserialize(value) for name, value in item.items()}
        if values.get("kind") != PORTAL_KIND:
            return Credential(team_id=str(values["team_id"]))
        return Credential(
            team_id=str(values["team_id"]),
            portal=True,
            read_only=bool(values["read_only"]),
            expires_at=int(values["expires_at"]),
            opened_by=values.get("opened_by"),
        )


class DynamoApiKeyStore:
    def __init__(self, table: Any):
        self._table = table

    def add(self, key_hash: str, team_id: str, key_id: str, created_at: str) -> None:
        item = {"key_hash": key_hash, "team_id": team_id, "key_id": key_id, "created_at": created_at}
        self._table.put_item(Item=item, ConditionExpression=Attr("key_hash").not_exists())

    def add_portal_token(
        self, token_hash: str, team_id: str, *, read_only: bool, expires_at: int, opened_by: str | None
    ) -> None:
        item = {
            "key_hash": token_hash,
            "team_id": team_id,
            "key_id": PORTAL_SESSION_ID_PREFIX + token_hash[:12],
            "kind": PORTAL_KIND,
            "read_only": read_only,
            "expires_at": expires_at,
        }
        if opened_by is not None:
            item["opened_by"] = opened_by
        self._table.put_item(Item=item, ConditionExpression=Attr("key_hash").not_exists())

    def remove_portal_token(self, token_hash: str) -> bool:
        try:
            self._table.delete_item(Key={"key_hash": token_hash}, ConditionExpression=Attr("kind").eq(PORTAL_KIND))
        except self._table.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def remove_portal_tokens(self, team_id: str) -> int:
        sessions = Key("team_id").eq(team_id) & Key("key_id").begins_with(PORTAL_SESSION_ID_PREFIX)
        return sum(self._remove(team_id, item, PORTAL_KIND) for item in self._team_items(sessions))

    def of_team(self, team_id: str) -> list[ApiKeyInfo]:
        return [
            ApiKeyInfo(key_id=str(item["key_id"]), team_id=team_id, created_at=str(item["created_at"]))
            for item in self._team_items(Key("team_id").eq(team_id))
            if item.get("kind") != PORTAL_KIND
        ]

    def remove(self, team_id: str, key_id: str) -> bool:
        items = self._team_items(Key("team_id").eq(team_id) & Key("key_id").eq(key_id))
        return sum(self._remove(team_id, item, None) for item in items if item.get("kind") != PORTAL_KIND) > 0

    def _remove(self, team_id: str, item: dict[str, Any], kind: str | None) -> bool:
        """Delete an item the by_team index showed; False when it is gone meanwhile (the index lags the table)."""
        same_kind = Attr("kind").eq(kind) if kind else Attr("kind").not_exists()
        try:
            self._table.delete_item(
                Key={"key_hash": item["key_hash"]}, ConditionExpression=Attr("team_id").eq(team_id) & same_kind
            )
        except self._table.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def _team_items(self, condition: Any) -> list[dict[str, Any]]:
        query: dict[str, Any] = {"IndexName": TEAM_INDEX, "KeyConditionExpression": condition}
        items: list[dict[str, Any]] = []
        while True:
            response = self._table.query(**query)
            items.extend(response.get("Items", []))
            if "LastEvaluatedKey" not in response:
                return items
            query["ExclusiveStartKey"] = response["LastEvaluatedKey"]
