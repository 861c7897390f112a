"""The request an attempt sends: its delivery rendered for its subscription, and signed (SPEC §4)."""

from datetime import datetime

from hookrelay import clock
from hookrelay.observability import logger
from hookrelay.outgoing import render_delivery, unsigned_headers
from hookrelay.records import Delivery, Subscription
from hookrelay.senders import Request
from hookrelay.signing import signature_headers


def signed_request(delivery: Delivery, subscription: Subscription, attempt: int, now: datetime) -> Request:
    """Attempt number `attempt` of `delivery`, signed at `now` with the subscription's current secrets."""
    rendered = render_delivery(delivery, subscription)
    headers = {
        **unsigned_headers(delivery, subscription, rendered),
        **signature_headers(
            secret_keys=subscription.signing_secrets(clock.iso(now)),
            private_keys=subscription.signing_private_keys(clock.iso(now)),
            delivery_id=delivery.id,
            subscription_id=subscription.id,
            attempts_before=attempt - 1,
            body=rendered.body,
            sent_at=now,
        ),
    }
    # The header names only: the values of three of them are signatures.
    logger.debug("sending", extra={"headers": sorted(headers), "body_bytes": len(rendered.body)})
    return Request(subscription.endpoint, rendered.body, headers)
