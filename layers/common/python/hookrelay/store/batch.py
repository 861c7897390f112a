"""BatchGetItem within DynamoDB's limits: 100 keys a call, keys left unprocessed asked for again."""

import time
from collections.abc import Sequence
from typing import Any

BATCH_GET_LIMIT = 100
UNPROCESSED_FIRST_PAUSE_SECONDS = 0.05
UNPROCESSED_MAX_PAUSE_SECONDS = 1.0


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
        pause = UNPROCESSED_FIRST_PAUSE_SECONDS
        while True:
            # The table's client speaks Python values, as the table does.
            response = client.batch_get_item(RequestItems=request)
            found.extend(response["Responses"].get(name, []))
            request = response.get("UnprocessedKeys") or {}
            if not request:
                break
            # Keys come back unprocessed when the table is throttled: ask again after a growing pause.
            time.sleep(pause)
            pause = min(pause * 2, UNPROCESSED_MAX_PAUSE_SECONDS)
    return found
