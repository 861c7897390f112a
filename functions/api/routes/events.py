"""The routes of events: the catalog, and publishing one event or a batch to the caller's team."""

from http import HTTPStatus
from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Body
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter
from aws_lambda_powertools.metrics import MetricUnit, single_metric

from hookrelay import catalog, http_api, problems
from hookrelay.models.common import Page, PageMeta
from hookrelay.models.events import EventBatchIn, EventIn, EventType, NotPublished, PublishedEvent, PublishedEvents
from hookrelay.publishing import EventPublisher, new_event
from routes.openapi import ERRORS, problem, responses


def _publishing_responses(model: Any, too_large: str) -> dict[int, Any]:
    not_published = {
        "description": "Not all accepted: publish those in `not_published` again, with the same event_id.",
        "content": {problems.PROBLEM_CONTENT_TYPE: {"model": NotPublished}},
    }
    errors = {
        **ERRORS,
        HTTPStatus.REQUEST_ENTITY_TOO_LARGE: problem(too_large),
        HTTPStatus.SERVICE_UNAVAILABLE: not_published,
    }
    return responses(model, errors, HTTPStatus.ACCEPTED)


def _count_published(count: int) -> None:
    # Most API requests publish no metric, so this one is flushed on its own.
    with single_metric(name="EventsPublished", unit=MetricUnit.Count, value=count):
        pass


def router(publisher: EventPublisher) -> APIGatewayHttpRouter:
    routes = APIGatewayHttpRouter()

    @routes.get(
        "/v3/webhook-event-types",
        summary="List the event catalog",
        tags=["Events"],
        responses=responses(Page[EventType], ERRORS),
    )
    def list_event_types() -> Page[EventType]:
        http_api.caller_team(routes.current_event)
        return Page[EventType](
            data=[EventType.of(entry) for entry in catalog.event_types()], meta=PageMeta(next_cursor=None)
        )

    @routes.post(
        "/v3/events",
        status_code=202,
        summary="Publish an event",
        description=(
            "Accepted events are delivered to every matching subscription of the caller's team. When the"
            " deployment sets HOOKRELAY_VALIDATE_EVENT_DATA, `data` must follow its event's schema (the `schema`"
            " of GET /v3/webhook-event-types, also components/schemas/EventData.<event name> here): a 422"
            " names the path of each violation, e.g. `data.signer.id`."
        ),
        tags=["Events"],
        responses=_publishing_responses(PublishedEvent, "Body or event too large."),
    )
    def publish_event(body: Annotated[EventIn, Body()]) -> PublishedEvent:
        event = new_event(http_api.caller_team(routes.current_event), body)
        publisher.publish(event)
        _count_published(1)
        return PublishedEvent(event_id=event.event_id)

    @routes.post(
        http_api.BATCH_PATH,
        status_code=202,
        summary="Publish up to 10 events at once",
        description=(
            "Each event is what POST /v3/events takes, checked the same way; all are checked before any is"
            " published, and a refused event (422, 413) is named by its index, e.g. `events[3].event_name`, with"
            " nothing published. The accepted events go on the bus in one PutEvents call; the answer lists"
            " their event_ids in the order of the request. Entries the bus fails are tried again; a 503 lists"
            " in `published` and `not_published` the event_ids it did and did not accept: publish those not"
            " accepted again (or the whole batch: an event_id is its idempotency key)."
        ),
        tags=["Events"],
        responses=_publishing_responses(PublishedEvents, "Body, an event, or the events together too large."),
    )
    def publish_events(body: Annotated[EventBatchIn, Body()]) -> PublishedEvents:
        team_id = http_api.caller_team(routes.current_event)
        events = [new_event(team_id, each) for each in body.events]
        publisher.publish_batch(events)
        _count_published(len(events))
        return PublishedEvents(data=[PublishedEvent(event_id=event.event_id) for event in events])

    return routes
