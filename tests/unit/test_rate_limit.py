from datetime import UTC, datetime, timedelta

import pytest

from hookrelay.delivery_jobs import Job, read_job
from hookrelay.rate_limit import (
    HOLD,
    LATE,
    LONGEST_DELAY,
    Wait,
    next_free,
    slot_moment,
    slot_spacing_us,
    slot_text,
    slots_from,
    to_slot_us,
    wait_for,
    waits_on_queue,
)

NOW = datetime(2026, 12, 3, 12, 0, 0, tzinfo=UTC)
SECOND_US = 1_000_000


def test_slots_are_spaced_a_rate_th_of_a_second_and_the_lateness_allowed_rounded_up() -> None:
    assert [slot_spacing_us(rate) for rate in (1, 3, 7, 1000)] == [1_050_000, 350_000, 150_000, 1_050]
    assert slots_from(0, 5, 3) == [0, 210_000, 420_000]


@pytest.mark.parametrize("rate", [1, 3, 7, 999, 1000])
def test_no_second_holds_more_requests_than_the_rate_each_sent_up_to_late_after_its_slot(rate: int) -> None:
    slots = slots_from(to_slot_us(NOW), rate, 3 * rate)
    late_us = LATE // timedelta(microseconds=1)
    # The earliest a request can go against the latest the rate-th after it can.
    assert all(later - (earlier + late_us) >= SECOND_US for earlier, later in zip(slots, slots[rate:], strict=False))


def test_the_next_slot_is_the_later_of_now_and_the_next_free_one() -> None:
    now = to_slot_us(NOW)
    half = slot_spacing_us(2)
    assert next_free(None, now, 2, 4) == (now, now + 4 * half)
    assert next_free(now - 5 * SECOND_US, now, 2, 1) == (now, now + half)  # idle: from now
    assert next_free(now + 5 * SECOND_US, now, 2, 1) == (now + 5 * SECOND_US, now + 5 * SECOND_US + half)


def test_a_container_whose_clock_is_off_never_takes_a_slot_closer_than_the_spacing() -> None:
    now = to_slot_us(NOW)
    _, taken_to = next_free(None, now, 1, 3)  # a correct clock takes now, +1 s, +2 s
    behind, _ = next_free(taken_to, now - 10 * SECOND_US, 1, 1)  # a clock 10 s behind follows them
    ahead, _ = next_free(taken_to, now + 10 * SECOND_US, 1, 1)  # one 10 s ahead starts from its now
    assert behind == now + 3 * slot_spacing_us(1)
    assert ahead == now + 10 * SECOND_US


def test_a_rate_change_spaces_the_slots_after_those_already_taken() -> None:
    now = to_slot_us(NOW)
    _, taken_to = next_free(None, now, 1, 3)
    first, _ = next_free(taken_to, now, 4, 2)
    after = now + 3 * slot_spacing_us(1)
    assert slots_from(first, 4, 2) == [after, after + slot_spacing_us(4)]


def test_a_slot_is_kept_to_the_millisecond_rounded_up() -> None:
    assert slot_moment(to_slot_us(NOW + timedelta(microseconds=1))) == NOW + timedelta(microseconds=1)
    assert slot_text(NOW + timedelta(microseconds=1)) == "2026-12-03T12:00:00.001Z"
    assert slot_text(NOW + timedelta(microseconds=2000)) == "2026-12-03T12:00:00.002Z"
    assert slot_text(NOW) == "2026-12-03T12:00:00.000Z"


def test_a_near_slot_is_waited_for_in_the_container_a_far_one_on_the_queue_a_second_before_it() -> None:
    assert wait_for(NOW - timedelta(seconds=3), NOW) == Wait()
    assert wait_for(NOW + timedelta(seconds=1.5), NOW) == Wait(hold_seconds=1.5)
    assert wait_for(NOW + HOLD, NOW) == Wait(hold_seconds=HOLD.total_seconds())
    assert wait_for(NOW + timedelta(seconds=10.4), NOW) == Wait(delay_seconds=9)
    assert wait_for(NOW + LONGEST_DELAY, NOW) == Wait(delay_seconds=int(LONGEST_DELAY.total_seconds()) - 1)
    # Further than a queue delay: in the wait index, for the sweeper.
    assert wait_for(NOW + LONGEST_DELAY + timedelta(seconds=1), NOW) == Wait(in_wait_index=True)


def test_the_delivery_log_lists_as_waiting_on_the_queue_every_slot_wait_for_puts_there() -> None:
    # Listed from the batch's moment; the attempt decides up to a second later, never listing less.
    for ahead in (1.5, 2.0, 2.001, 10.4, 899.9, 900.0, 900.5, 901.0, 901.5, 902.0):
        slot = NOW + timedelta(seconds=ahead)
        on_the_queue = any(wait_for(slot, NOW + timedelta(seconds=later)).delay_seconds for later in (0, 0.5, 1.0))
        assert waits_on_queue(slot, NOW) == on_the_queue, ahead


def test_a_message_of_an_earlier_release_that_counted_its_waits_is_read() -> None:
    assert read_job('{"delivery_id": "d-1", "attempt": 3, "waits": 2}') == Job("d-1", 3)
