import pytest

from hookrelay.delivery import InvalidDeliveryMessage, Job, read_job
from hookrelay.queues import delivery_message
from hookrelay.rate_limit import MAX_WAIT_SECONDS, wait_seconds


def test_a_waiting_delivery_comes_back_after_a_second_then_spread_ever_wider() -> None:
    assert wait_seconds(0, lambda: 0.99) == 1
    assert [wait_seconds(waits, lambda: 0.0) for waits in range(10)] == [1] * 10
    assert [wait_seconds(waits, lambda: 0.999) for waits in range(8)] == [1, 2, 4, 8, 10, 10, 10, 10]
    assert wait_seconds(10**6, lambda: 0.999) == MAX_WAIT_SECONDS


def test_a_message_carries_how_often_it_waited() -> None:
    assert read_job(delivery_message("d-1", 3, team_id="acme", waits=2).body) == Job("d-1", 3, waits=2)
    assert read_job(delivery_message("d-1", 3, team_id="acme").body) == Job("d-1", 3, waits=0)
    assert "waits" not in delivery_message("d-1", 3, team_id="acme").body


@pytest.mark.parametrize(
    "body", ['{"delivery_id": "d", "attempt": 1, "waits": -1}', '{"delivery_id": "d", "attempt": 1, "waits": "x"}']
)
def test_a_crafted_waits_is_not_a_delivery_message(body: str) -> None:
    with pytest.raises(InvalidDeliveryMessage):
        read_job(body)
