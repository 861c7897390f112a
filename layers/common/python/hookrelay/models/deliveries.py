"""The bodies of the delivery log (SPEC §6): a delivery's detail, recovery, and test events."""

from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from hookrelay.models.common import ANSWER, REQUEST_BODY
from hookrelay.models.events import EventName, Moment
from hookrelay.records import KEPT_LATEST_ATTEMPTS, Attempt, DeliverySummary


class SampleEventRequest(BaseModel):
    """The body of POST /v3/webhooks/{id}/test."""

    model_config = REQUEST_BODY

    event_name: EventName | None = Field(
        None, description="The catalog event whose sample is sent; default the first the subscription listens to."
    )


class RecoverRequest(BaseModel):
    """The body of POST /v3/webhooks/{id}/recover."""

    model_config = REQUEST_BODY

    since: Moment = Field(description="Re-send failed deliveries created at or after this time (ISO-8601 or epoch).")
    after: str | None = Field(None, description="The next_cursor of a previous recover call that had more to do.")


class Recovery(BaseModel):
    model_config = ANSWER

    recovered: int = Field(description="Failed deliveries sent again by this call.")
    next_cursor: str | None = Field(description="Call again with it as `after` to go on; null when done.")


class RenderedRequest(BaseModel):
    """The request a delivery sends, as rendered now; signature headers are added at each send."""

    model_config = ANSWER

    method: Literal["POST"] = "POST"
    url: str
    headers: dict[str, str]
    body: str


@dataclass(frozen=True, kw_only=True)
class DeliveryDetail(DeliverySummary):
    """One delivery with its request and its attempts, oldest first."""

    request: RenderedRequest
    attempts: Annotated[
        list[Attempt],
        Field(
            description=f"The first attempt and the latest {KEPT_LATEST_ATTEMPTS};"
            " attempt_count counts every attempt made."
        ),
    ]
