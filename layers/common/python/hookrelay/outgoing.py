"""The request a delivery sends, but for its signatures: one rendering for the sender and the delivery log."""

from hookrelay import __version__, catalog, clock
from hookrelay.payloads import EventFacts, RenderedPayload, delivery_format, render
from hookrelay.records import Delivery, Subscription

TEST_HEADER = "X-Hookrelay-Test"


def render_delivery(delivery: Delivery, subscription: Subscription) -> RenderedPayload:
    event = delivery.event
    facts = EventFacts(
        event_id=event.event_id,
        event_name=event.event_name,
        event_time=clock.parse_moment(event.event_time),
        team_id=event.team_id,
        sandbox=event.sandbox,
        data=event.data,
        subscription_id=subscription.id,
        subscription_description=subscription.description,
        description=catalog.description(event.event_name),
    )
    return render(facts, delivery_format(subscription.endpoint, subscription.payload_format), subscription.content_type)


def unsigned_headers(delivery: Delivery, subscription: Subscription, rendered: RenderedPayload) -> dict[str, str]:
    """Every header but the signatures and the send-time ones (timestamps, retry count).

    The subscription's custom headers come first: their names never are hookrelay's (models refuse them).
    """
    headers = {
        **subscription.headers,
        "Content-Type": rendered.content_type,
        "User-Agent": f"hookrelay/{__version__}",
        "webhook-id": delivery.id,
        "X-Webhook-Id": subscription.id,
    }
    if delivery.test:
        headers[TEST_HEADER] = "true"
    return headers
