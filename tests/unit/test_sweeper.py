"""The sweeper over a due index that lags behind its table, as DynamoDB's global secondary indexes do."""

import json
from datetime import timedelta

from records import subscription_id

from hookrelay import clock
from hookrelay.retry import SWEEPER_LEASE
from hookrelay.sweeper import PAGE, Sweeper
from unit.fakes import FakeQueue, LaggingDueIndex

NOW = clock.parse_moment("2026-03-02T10:00:00.000Z")


def due_retries(count: int) -> dict[str, str]:
    """`count` deliveries due in the last minutes, in one shard."""
    return {subscription_id(index): clock.iso(NOW - timedelta(seconds=index + 1)) for index in range(count)}


def sweep(index: LaggingDueIndex) -> tuple[int, list[str]]:
    queue = FakeQueue()
    enqueued = Sweeper(due_retries=index, delivery_queue=queue, shards=1).sweep(NOW)  # type: ignore[arg-type]
    return enqueued, [json.loads(message.body)["delivery_id"] for message in queue.messages]


def test_every_page_of_due_retries_is_enqueued_once() -> None:
    due = due_retries(2 * PAGE + PAGE // 2)
    index = LaggingDueIndex(due)
    enqueued, sent = sweep(index)
    assert enqueued == len(due)
    assert sorted(sent) == sorted(due)
    assert index.reads == 3


def test_retries_already_claimed_but_still_shown_by_the_index_end_the_sweep() -> None:
    # An earlier sweep claimed them; the index has not caught up with the leases yet.
    index = LaggingDueIndex(due_retries(PAGE))
    index.due_at = {delivery_id: clock.iso(NOW + SWEEPER_LEASE) for delivery_id in index.due_at}
    assert sweep(index) == (0, [])
    assert index.reads == 1


def test_each_due_retry_is_enqueued_in_its_teams_message_group() -> None:
    queue = FakeQueue()
    Sweeper(due_retries=LaggingDueIndex(due_retries(3)), delivery_queue=queue, shards=1).sweep(NOW)  # type: ignore[arg-type]
    assert [message.team_id for message in queue.messages] == ["acme"] * 3
