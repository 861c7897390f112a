"""Bearer API keys: each belongs to one team and is stored only as its SHA-256 hash."""

import hashlib
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from hookrelay import clock
from hookrelay.store.api_keys import ApiKeyInfo, ApiKeyStore

KEY_PREFIX = "hr_"
# Where the authorizer puts the team of a request for the API function to read.
TEAM_CONTEXT_KEY = "team_id"
TEAM_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")
_MAX_CACHED_KEYS = 10_000
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
    """Resolves keys to teams, remembering answers (found or not) for a short time per container.

    A revoked key therefore keeps working for at most `ttl_seconds` in a warm container.
    """

    def __init__(self, store: ApiKeyStore, ttl_seconds: float, monotonic: Callable[[], float] = time.monotonic):
        self._store = store
        self._ttl = ttl_seconds
        self._monotonic = monotonic
        self._cache: dict[str, tuple[float, str | None]] = {}

    def team_of(self, authorization: str | None) -> str | None:
        key = bearer_token(authorization)
        if key is None:
            return None
        key_hash = hash_key(key)
        now = self._monotonic()
        cached = self._cache.get(key_hash)
        if cached and cached[0] > now:
            return cached[1]
        team_id = self._store.team_of(key_hash)
        if len(self._cache) >= _MAX_CACHED_KEYS:
            # Random keys sent by a caller must not grow a warm container without bound.
            self._cache.clear()
        self._cache[key_hash] = (now + self._ttl, team_id)
        return team_id
