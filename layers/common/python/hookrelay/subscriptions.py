"""The subscriptions API's logic: create, read, list, update and delete, always within one team."""

import dataclasses
import functools
import socket
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import TypedDict

from pydantic import ValidationError

from hookrelay import clock, custom_headers, pagination, signing
from hookrelay.addresses import (
    EndpointRefused,
    Resolver,
    ResolvesToNonPublic,
    holds_a_mask,
    masked,
    parse_endpoint,
    resolve,
    same_origin,
    vet_addresses,
)
from hookrelay.errors import FieldError, Invalid, NotFound, Unavailable, invalid_fields
from hookrelay.lookups import BoundedLookups, LookupTimedOut
from hookrelay.models.common import Page, PageMeta
from hookrelay.models.subscriptions import SecretRotation, SubscriptionPatch, SubscriptionSettings, SubscriptionView
from hookrelay.records import SignatureScheme, Subscription, is_uuid
from hookrelay.store.retries import Retries
from hookrelay.store.subscriptions import SubscriptionStore

_CURSOR_KEYS = frozenset({"id"})
# A PATCH or rotation whose write finds the subscription written since its read reads it again and
# re-applies itself: each such miss means another write succeeded. One subscription PATCHed without
# pause by two clients loses about every other round (a write reads the team's and the subscription's
# items before its transaction), so 5 tries answered 3 % of such PATCHes 503 (P8 flood smoke); 10, with
# pauses that put the writers out of step, make it ~0.1 % at most, within ~1.5 s.
REWRITE_RETRIES = Retries(attempts=10, first_pause=0.02, max_pause=0.25)
# How long the endpoint check at create and update waits for a name's addresses (well within the API
# function's Timeout).
ENDPOINT_LOOKUP_SECONDS = 2.0


def vet_endpoint(
    url: str, *, allow_private: bool, resolver: Resolver = resolve, lookup_seconds: float = ENDPOINT_LOOKUP_SECONDS
) -> None:
    """Refuse, Invalid on `endpoint`, an endpoint hookrelay must not call (SPEC §5).

    A name that does not resolve yet is accepted: it is checked again at every send. A name whose lookup
    takes longer than `lookup_seconds` is refused (a name server that never answers would otherwise hold
    the request until the function's Timeout). Neither answer names the address a name resolved to.
    """
    try:
        endpoint = parse_endpoint(url, allow_plain_http=allow_private)
        if not allow_private:
            until = time.monotonic() + lookup_seconds
            vet_addresses(endpoint, bounded(resolver).resolver_within(lambda: max(0.0, until - time.monotonic())))
    except ResolvesToNonPublic as refusal:
        raise Invalid(FieldError("endpoint", refusal.public_reason)) from None
    except EndpointRefused as refusal:
        raise Invalid(FieldError("endpoint", str(refusal))) from None
    except LookupTimedOut:
        reason = f"its host name did not resolve within {lookup_seconds:g} s; check the name, or send the request again"
        raise Invalid(FieldError("endpoint", reason)) from None
    except (socket.gaierror, UnicodeError):
        pass


def check_written_in_full(url: str) -> None:
    """Refuse, Invalid on `endpoint`, an endpoint with `***` where a secret goes: a URL read from a response
    and edited, which would send the mask in place of the secret the client never saw."""
    if holds_a_mask(url):
        reason = "holds *** where a secret goes, as reads show it: write the full URL, with the secret"
        raise Invalid(FieldError("endpoint", reason))


@functools.cache
def bounded(resolver: Resolver) -> BoundedLookups:
    """One set of bounded lookups per resolver and container, so that lookups that hang hold at most
    MAX_LOOKUPS_IN_FLIGHT threads; each check asks afresh (a subscription is not created often)."""
    return BoundedLookups(resolver, reuse_seconds=0)


class _KeyPair(TypedDict, total=False):
    private_key: str | None
    previous_private_key: str | None
    public_key: str | None


def _key_pair(scheme: SignatureScheme, current: Subscription | None = None) -> _KeyPair:
    """The key pair fields of a subscription signing with `scheme`: the current pair kept, a new one
    generated, or every private key dropped (hmac)."""
    if scheme == "hmac":
        return {"private_key": None, "previous_private_key": None, "public_key": None}
    if current is not None and current.private_key:
        return {}
    private_key, public_key = signing.generate_key_pair()
    return {"private_key": private_key, "public_key": public_key}


def _ends_failing_run(current: Subscription, settings: SubscriptionSettings) -> bool:
    """Whether a change ends the endpoint's run of failures, so that the next failure starts another (and
    the five days before auto-disable count from it): re-enabled (no attempt was made while it was
    disabled, and the tenant says it is fixed), or another URL (another receiver, or the failing path
    corrected)."""
    return (settings.enabled and not current.enabled) or settings.endpoint != current.endpoint


class Subscriptions:
    def __init__(
        self,
        store: SubscriptionStore,
        *,
        allow_private: bool,
        max_per_team: int,
        rotation_overlap: timedelta = timedelta(hours=24),
        resolver: Resolver = resolve,
        rewrites: Retries = REWRITE_RETRIES,
    ):
        self._store = store
        self._allow_private = allow_private
        self._max_per_team = max_per_team
        self._rotation_overlap = rotation_overlap
        self._resolver = resolver
        self._rewrites = rewrites

    def create(self, team_id: str, settings: SubscriptionSettings) -> Subscription:
        check_written_in_full(settings.endpoint)
        vet_endpoint(settings.endpoint, allow_private=self._allow_private, resolver=self._resolver)
        now = clock.now_iso()
        subscription = Subscription(
            **{
                **settings.model_dump(),
                "secret_key": settings.secret_key or signing.generate_secret(),
                **_key_pair(settings.signature_scheme),
                "id": str(uuid.uuid4()),
                "team_id": team_id,
                "created_at": now,
                "updated_at": now,
            }
        )
        return self._store.create(subscription, self._max_per_team)

    def get(self, team_id: str, subscription_id: str) -> Subscription:
        subscription = self._store.get(team_id, subscription_id) if is_uuid(subscription_id) else None
        if subscription is None:
            raise NotFound("Webhook subscription")
        return subscription

    def page(self, team_id: str, limit: int, after: str | None) -> Page[SubscriptionView]:
        after_id = pagination.decode_cursor(after, _CURSOR_KEYS)["id"] if after else None
        if after_id is not None and not is_uuid(after_id):
            raise pagination.not_a_cursor("query.after")
        found = self._store.page(team_id, limit, after_id)
        next_cursor = pagination.encode_cursor({"id": found.items[-1].id}) if found.has_more else None
        return Page[SubscriptionView](
            data=[SubscriptionView.of(subscription) for subscription in found.items],
            meta=PageMeta(next_cursor=next_cursor),
        )

    def update(self, team_id: str, subscription_id: str, patch: SubscriptionPatch) -> Subscription:
        changes = patch.model_dump(exclude_unset=True)
        # Each endpoint once, however often the patch is re-applied.
        vet = functools.cache(
            functools.partial(vet_endpoint, allow_private=self._allow_private, resolver=self._resolver)
        )

        def patched(current: Subscription) -> Subscription:
            applied = dict(changes)
            if applied.get("endpoint") == masked(current.endpoint):
                # Written back as it was shown (read, edit, write): keep the secrets the client never saw.
                applied["endpoint"] = current.endpoint
            elif applied.get("endpoint") is not None:  # a null is refused with the settings it makes
                check_written_in_full(applied["endpoint"])
            if applied.get("headers") is not None:  # a null is refused with the settings it makes
                applied["headers"] = custom_headers.kept(applied["headers"], current.headers, current.sensitive_headers)
            try:
                settings = SubscriptionSettings.model_validate(
                    {**SubscriptionSettings.of(current).model_dump(), **applied}
                )
            except ValidationError as error:
                raise invalid_fields(error.errors(include_url=False, include_input=False)) from None
            custom_headers.check_unseen_values_stay_hidden(
                changes.get("headers"),
                current.headers,
                marked_before=current.sensitive_headers,
                marked_after=settings.sensitive_headers,
                endpoint_moved=not same_origin(settings.endpoint, current.endpoint),
            )
            if "endpoint" in applied:
                vet(settings.endpoint)
            return dataclasses.replace(
                current,
                **{
                    **settings.model_dump(),
                    "secret_key": settings.secret_key or current.secret_key,
                    **_key_pair(settings.signature_scheme, current),
                    "disabled_reason": None if settings.enabled else current.disabled_reason,
                    "failing_since": None if _ends_failing_run(current, settings) else current.failing_since,
                    "updated_at": clock.now_iso(),
                },
            )

        return self._rewrite(team_id, subscription_id, patched)

    def rotate_secret(self, team_id: str, subscription_id: str, rotation: SecretRotation) -> Subscription:
        """Sign with a new secret (and a new key pair, for ed25519) from now on; the replaced ones also
        sign until the overlap ends."""
        secret_key = rotation.secret_key or signing.generate_secret()

        def rotated(current: Subscription) -> Subscription:
            now = clock.utc_now()
            key_pair: _KeyPair = {**_key_pair(current.signature_scheme), "previous_private_key": current.private_key}
            return dataclasses.replace(
                current,
                **key_pair,
                secret_key=secret_key,
                previous_secret_key=current.secret_key,
                previous_secret_expires_at=clock.iso(now + self._rotation_overlap),
                updated_at=clock.iso(now),
            )

        return self._rewrite(team_id, subscription_id, rotated)

    def _rewrite(
        self, team_id: str, subscription_id: str, change: Callable[[Subscription], Subscription]
    ) -> Subscription:
        """Write `change` of the stored subscription, conditioned on the revision it was made from.

        When another write landed between the read and the write (another PATCH, delivery disabling
        the endpoint or starting its run of failures), the change is made again from a fresh read, so
        that it keeps what that write did: fields the change does not set stay as they are stored.
        """
        for _ in self._rewrites:
            stored = self._store.replace(change(self.get(team_id, subscription_id)))
            if stored is not None:
                return stored
        raise Unavailable("the subscription kept being changed by other writes meanwhile; nothing was written")

    def delete(self, team_id: str, subscription_id: str) -> None:
        if not (is_uuid(subscription_id) and self._store.delete(team_id, subscription_id)):
            raise NotFound("Webhook subscription")
