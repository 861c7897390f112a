"""Bearer credentials: API keys and portal tokens, each of one team and stored only as its SHA-256 hash."""

import hashlib
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hookrelay import clock
from hookrelay.store.api_keys import ApiKeyInfo, ApiKeyStore, Credential, Credentials

KEY_PREFIX = "hr_"
PORTAL_TOKEN_PREFIX = "hrp_"  # noqa: S105 - a prefix, not a secret
# Where the authorizer puts the credential of a request for the API function to read.
TEAM_CONTEXT_KEY = "team_id"
SCOPE_CONTEXT_KEY = "scope"
EXPIRES_CONTEXT_KEY = "expires_at"
# What a credential may do, as one string: API Gateway may hand the context's values over as strings
# (a REST API always does), where a boolean "false" would read as true.
TEAM_SCOPE = "team"
PORTAL_SCOPE = "portal"
PORTAL_READ_ONLY_SCOPE = "portal-read-only"
_SCOPES = {TEAM_SCOPE: (False, False), PORTAL_SCOPE: (True, False), PORTAL_READ_ONLY_SCOPE: (True, True)}
# Said by an authorizer that could not look the credential up for now: it grants nothing (no team, and not a
# scope of _SCOPES), and the API answers 503 with Retry-After where API Gateway would answer a raising
# authorizer with a bare 500. Safe only because the gateway caches no authorizer answer (template.yaml).
UNAVAILABLE_SCOPE = "unavailable"
TEAM_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")
_MAX_CACHED_KEYS = 10_000
# How long a warm container remembers that a key is unknown: a key used before its create was answered
# (a client's retry racing it) works a moment later, and a caller sending random keys still costs at most
# one read per key and second.
MISS_CACHE_SECONDS = 1.0
_BEARER = re.compile(r"^Bearer\s+(\S+)\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class IssuedKey:
    key: str
    key_id: str
    team_id: str


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


class UnknownKey(LookupError):
    """The team has no key with that id."""


def check_team_id(team_id: str) -> str:
    if not TEAM_ID_PATTERN.match(team_id):
        raise ValueError("a team id is 1-128 letters, digits and _ . : - (starting with a letter or digit)")
    return team_id


def issue_key(store: ApiKeyStore, team_id: str, key: str | None = None) -> IssuedKey:
    """Create a key for a team (or register a chosen one, as the local stack's dev key); only its hash is kept."""
    check_team_id(team_id)
    key = key or KEY_PREFIX + secrets.token_urlsafe(32)
    key_id = hash_key(key)[:12]
    store.add(hash_key(key), team_id, key_id, clock.now_iso())
    return IssuedKey(key=key, key_id=key_id, team_id=team_id)


@dataclass(frozen=True)
class IssuedPortalToken:
    token: str
    expires_at: int


def issue_portal_token(
    store: ApiKeyStore,
    team_id: str,
    *,
    read_only: bool,
    lifetime_seconds: int,
    now: float,
    opened_by: str | None = None,
) -> IssuedPortalToken:
    """A bearer token for the team's portal: only its hash is kept, with its expiry (unix seconds) and the
    hash of the API key that asked for it (`opened_by`; None for an operator's CLI), whose revocation ends it."""
    check_team_id(team_id)
    token = PORTAL_TOKEN_PREFIX + secrets.token_urlsafe(32)
    expires_at = int(now) + lifetime_seconds
    store.add_portal_token(hash_key(token), team_id, read_only=read_only, expires_at=expires_at, opened_by=opened_by)
    return IssuedPortalToken(token=token, expires_at=expires_at)


def revoke_portal_sessions(store: ApiKeyStore, team_id: str) -> int:
    """End every portal session of a team; how many there were. Warm authorizers may still accept a
    session for their cache time, as a revoked key."""
    return store.remove_portal_tokens(check_team_id(team_id))


def scope_of(credential: Credential) -> str:
    if not credential.portal:
        return TEAM_SCOPE
    return PORTAL_READ_ONLY_SCOPE if credential.read_only else PORTAL_SCOPE


def authorizer_context(credential: Credential | None) -> dict[str, Any]:
    """What the authorizer tells the API function about a request's credential (an empty team: none)."""
    if credential is None:
        return {TEAM_CONTEXT_KEY: ""}
    return {
        TEAM_CONTEXT_KEY: credential.team_id,
        SCOPE_CONTEXT_KEY: scope_of(credential),
        EXPIRES_CONTEXT_KEY: credential.expires_at or 0,
    }


def unavailable_context() -> dict[str, Any]:
    """What the authorizer says when the credential could not be looked up for now."""
    return {TEAM_CONTEXT_KEY: "", SCOPE_CONTEXT_KEY: UNAVAILABLE_SCOPE}


def lookup_was_unavailable(context: dict[str, Any]) -> bool:
    return context.get(SCOPE_CONTEXT_KEY) == UNAVAILABLE_SCOPE


def credential_from_context(context: dict[str, Any]) -> Credential | None:
    """The credential `authorizer_context` described, its values as they were or as strings; None when the
    request had none, and for any context that does not say exactly that (fail closed)."""
    team_id = context.get(TEAM_CONTEXT_KEY)
    scope = _SCOPES.get(str(context.get(SCOPE_CONTEXT_KEY)))
    expires_at = str(context.get(EXPIRES_CONTEXT_KEY))
    if not isinstance(team_id, str) or not TEAM_ID_PATTERN.match(team_id) or scope is None or not expires_at.isdigit():
        return None
    portal, read_only = scope
    if portal != (int(expires_at) > 0):
        return None
    return Credential(team_id=team_id, portal=portal, read_only=read_only, expires_at=int(expires_at) or None)


def keys_of(store: ApiKeyStore, team_id: str) -> list[ApiKeyInfo]:
    """The team's keys, oldest first: ids and creation times only (the keys themselves are not kept)."""
    return sorted(store.of_team(check_team_id(team_id)), key=lambda info: (info.created_at, info.key_id))


def revoke_key(store: ApiKeyStore, team_id: str, key_id: str) -> None:
    """Delete a team's key. Warm authorizers may still accept it for their cache time (see Authenticator).

    Raises UnknownKey when the team has no key with that id, including another team's key.
    """
    if not store.remove(check_team_id(team_id), key_id):
        raise UnknownKey(f"team {team_id} has no API key {key_id}")


def bearer_token(authorization: str | None) -> str | None:
    match = _BEARER.match(authorization or "")
    return match.group(1) if match else None


class Authenticator:
    """Resolves keys and portal tokens to credentials, remembering answers for a short time per container:
    a credential found for `ttl_seconds`, an unknown key for at most MISS_CACHE_SECONDS.

    A revoked key therefore keeps working for at most `ttl_seconds` in a warm container; a portal token stops
    at its expiry, cached or not, and with the API key that opened it: that key is looked up through the
    same cache, so a session outlives its revoked key no longer than the key itself is accepted.
    """

    def __init__(
        self,
        store: Credentials,
        ttl_seconds: float,
        monotonic: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ):
        self._store = store
        self._ttl = ttl_seconds
        self._monotonic = monotonic
        self._wall_clock = wall_clock
        self._cache: dict[str, tuple[float, Credential | None]] = {}

    def credential_of(self, authorization: str | None) -> Credential | None:
        key = bearer_token(authorization)
        credential = self._lookup(hash_key(key)) if key is not None else None
        if credential is None:
            return None
        if credential.expires_at is not None and credential.expires_at <= self._wall_clock():
            return None
        if credential.opened_by is not None and self._lookup(credential.opened_by) is None:
            return None
        return credential

    def _lookup(self, key_hash: str) -> Credential | None:
        now = self._monotonic()
        cached = self._cache.get(key_hash)
        if cached and cached[0] > now:
            return cached[1]
        credential = self._store.credential_of(key_hash)
        if len(self._cache) >= _MAX_CACHED_KEYS:
            # Random keys sent by a caller must not grow a warm container without bound.
            self._cache.clear()
        ttl = self._ttl if credential else min(self._ttl, MISS_CACHE_SECONDS)
        self._cache[key_hash] = (now + ttl, credential)
        return credential
