"""BatchGetItem's unprocessed keys: asked for again a bounded number of times, then refused for now."""

from typing import Any

import pytest
from botocore.exceptions import ClientError

from hookrelay.store.batch import UNPROCESSED_RETRIES, get_items
from hookrelay.store.retries import refused_for_now


class HotKeyTable:
    """A table whose key "hot" DynamoDB keeps handing back unprocessed (its partition over its throughput)."""

    name = "subscriptions"

    def __init__(self) -> None:
        self.client = self
        self.calls = 0

    def batch_get_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:
        self.calls += 1
        request = RequestItems[self.name]
        hot = [key for key in request["Keys"] if key["id"] == "hot"]
        found = [{"id": key["id"]} for key in request["Keys"] if key["id"] != "hot"]
        return {
            "Responses": {self.name: found},
            "UnprocessedKeys": {self.name: {**request, "Keys": hot}} if hot else {},
        }


def test_keys_kept_unprocessed_fail_the_read_as_a_throttled_call_after_bounded_pauses(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pauses: list[float] = []
    monkeypatch.setattr("hookrelay.store.batch.time.sleep", pauses.append)
    table = HotKeyTable()
    with pytest.raises(ClientError) as raised:
        get_items(table, [{"id": "cool"}, {"id": "hot"}])
    assert refused_for_now(raised.value)  # callers fail its messages for now, as a throttled call's
    assert table.calls == 1 + UNPROCESSED_RETRIES
    assert pauses == [0.05, 0.1, 0.2, 0.4, 0.8]


def test_a_read_with_no_key_left_unprocessed_is_one_call() -> None:
    table = HotKeyTable()
    assert get_items(table, [{"id": "cool"}]) == [{"id": "cool"}]
    assert table.calls == 1
