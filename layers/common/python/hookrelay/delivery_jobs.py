"""A delivery-queue message as the attempt it asks for (queues.delivery_message writes them)."""

import json
from collections.abc import Sequence
from dataclasses import dataclass

from hookrelay import clock
from hookrelay.records import DeliveryOrigin, delivery_id


class InvalidDeliveryMessage(ValueError):
    """A delivery-queue message that does not name a delivery and attempt."""


@dataclass(frozen=True)
class Job:
    delivery_id: str
    attempt: int
    # The rate-limit slot an earlier handling of this message took (it waited on the queue for it).
    slot_at: str | None = None
    # What the first attempt records the delivery with (its messages carry it: fan-out writes no record).
    origin: DeliveryOrigin | None = None


def first_attempt_origins(jobs: Sequence[Job]) -> dict[str, DeliveryOrigin]:
    """The origins of first attempts: only a first attempt may find its delivery not recorded yet."""
    return {job.delivery_id: job.origin for job in jobs if job.origin and job.attempt == 1}


def read_job(body: str) -> Job:
    try:
        message = json.loads(body)
        origin = message.get("origin")
        slot_at = message.get("slot_at")
        job = Job(
            delivery_id=str(message["delivery_id"]),
            attempt=int(message["attempt"]),
            slot_at=clock.iso(clock.parse_moment(str(slot_at))) if slot_at is not None else None,
            origin=DeliveryOrigin.parse(origin) if origin is not None else None,
        )
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise InvalidDeliveryMessage(f"not a delivery message ({type(error).__name__}: {error})") from None
    if job.origin and delivery_id(job.origin.event_id, job.origin.subscription_id) != job.delivery_id:
        raise InvalidDeliveryMessage("its origin names another delivery")
    if job.attempt < 1:
        raise InvalidDeliveryMessage(f"attempt {job.attempt} is not a positive number")
    return job
