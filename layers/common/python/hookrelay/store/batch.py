"""BatchGetItem within DynamoDB's limits: 100 keys a call, keys left unprocessed asked for again."""

import time
from collections.abc import Sequence
from typing import Any

from botocore.exceptions import ClientError

BATCH_GET_LIMIT = 100
UNPROCESSED_FIRST_PAUSE_SECONDS = 0.05
# Keys still unprocessed after this many more calls (1.55 s of pauses) fail the read as a throttled call
# does: a key kept hot would otherwise hold its caller, and every other key of its batch, until its Timeout.
UNPROCESSED_RETRIES = 5


def get_items(
    table: Any, keys: Sequence[dict[str, str]], *, fields: Sequence[str] = (), consistent: bool = False
) -> list[dict[str, Any]]:
    """The `fields` (all if none named) of the items with these keys that exist, in no particular order."""
    client, name = table.client, table.name
    found: list[dict[str, Any]] = []
    for start in range(0, len(keys), BATCH_GET_LIMIT):
        asked: dict[str, Any] = {"Keys": list(keys[start : start + BATCH_GET_LIMIT]), "ConsistentRead": consistent}
        if fields:
            asked["ProjectionExpression"] = ", ".join(f"#{field}" for field in fields)
            asked["ExpressionAttributeNames"] = {f"#{field}": field for field in fields}
        request: dict[str, Any] = {name: asked}
        for retry in range(UNPROCESSED_RETRIES + 1):
            if retry:
                # Keys come back unprocessed when their partition is throttled: ask again after a growing pause.
                time.sleep(UNPROCESSED_FIRST_PAUSE_SECONDS * 2 ** (retry - 1))
            # The table's client speaks Python values, as the table does.
            response = client.batch_get_item(RequestItems=request)
            found.extend(response["Responses"].get(name, []))
            request = response.get("UnprocessedKeys") or {}
            if not request:
                break
        else:
            raise _still_unprocessed(name, len(request[name]["Keys"]))
    return found


def _still_unprocessed(table_name: str, count: int) -> ClientError:
    message = f"{count} key(s) of {table_name} still unprocessed after {UNPROCESSED_RETRIES} retries (throttled)"
    # The code DynamoDB answers a BatchGetItem none of whose keys it could read with.
    return ClientError(
        {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": message}}, "BatchGetItem"
    )
