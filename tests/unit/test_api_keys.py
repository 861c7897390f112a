import pytest

from hookrelay.api_keys import (
    KEY_PREFIX,
    MISS_CACHE_SECONDS,
    PORTAL_TOKEN_PREFIX,
    Authenticator,
    UnknownKey,
    authorizer_context,
    bearer_token,
    credential_from_context,
    hash_key,
    issue_key,
    issue_portal_token,
    keys_of,
    lookup_was_unavailable,
    revoke_key,
    revoke_portal_sessions,
    unavailable_context,
)
from hookrelay.store.api_keys import ApiKeyInfo, Credential


class FakeKeyStore:
    def __init__(self) -> None:
        self.items: dict[str, str] = {}
        self.portal_tokens: dict[str, Credential] = {}
        self.infos: dict[str, ApiKeyInfo] = {}
        self.lookups = 0

    def add(self, key_hash: str, team_id: str, key_id: str, created_at: str) -> None:
        self.items[key_hash] = team_id
        self.infos[key_hash] = ApiKeyInfo(key_id=key_id, team_id=team_id, created_at=created_at)

    def add_portal_token(
        self, token_hash: str, team_id: str, *, read_only: bool, expires_at: int, opened_by: str | None
    ) -> None:
        self.portal_tokens[token_hash] = Credential(
            team_id, portal=True, read_only=read_only, expires_at=expires_at, opened_by=opened_by
        )

    def remove_portal_token(self, token_hash: str) -> bool:
        return self.portal_tokens.pop(token_hash, None) is not None

    def remove_portal_tokens(self, team_id: str) -> int:
        ended = [token for token, credential in self.portal_tokens.items() if credential.team_id == team_id]
        for token in ended:
            del self.portal_tokens[token]
        return len(ended)

    def credential_of(self, key_hash: str) -> Credential | None:
        self.lookups += 1
        if key_hash in self.portal_tokens:
            return self.portal_tokens[key_hash]
        return Credential(self.items[key_hash]) if key_hash in self.items else None

    def of_team(self, team_id: str) -> list[ApiKeyInfo]:
        return sorted((info for info in self.infos.values() if info.team_id == team_id), key=lambda i: i.key_id)

    def remove(self, team_id: str, key_id: str) -> bool:
        found = [h for h, info in self.infos.items() if info.team_id == team_id and info.key_id == key_id]
        for key_hash in found:
            del self.items[key_hash], self.infos[key_hash]
        return bool(found)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_only_the_hash_is_stored() -> None:
    store = FakeKeyStore()
    issued = issue_key(store, "acme")
    assert issued.key.startswith("hr_")
    assert issued.key not in store.items
    assert store.items == {hash_key(issued.key): "acme"}


def test_team_ids_are_checked() -> None:
    with pytest.raises(ValueError, match="team id"):
        issue_key(FakeKeyStore(), "no spaces allowed")


def test_bearer_parsing() -> None:
    assert bearer_token("Bearer abc") == "abc"
    assert bearer_token("bearer   abc ") == "abc"
    assert bearer_token("Basic abc") is None
    assert bearer_token("Bearer") is None
    assert bearer_token(None) is None


def test_answers_are_cached_for_the_ttl() -> None:
    store, clock = FakeKeyStore(), Clock()
    key = issue_key(store, "acme").key
    authenticator = Authenticator(store, ttl_seconds=60, monotonic=clock)
    assert authenticator.credential_of(f"Bearer {key}") == Credential("acme")
    assert authenticator.credential_of(f"Bearer {key}") == Credential("acme")
    assert authenticator.credential_of("Bearer nope") is None
    assert authenticator.credential_of("Bearer nope") is None
    assert store.lookups == 2
    store.items.clear()  # revoked
    clock.now = 61
    assert authenticator.credential_of(f"Bearer {key}") is None
    assert store.lookups == 3


def test_an_unknown_key_is_remembered_for_a_second_at_most() -> None:
    store, clock = FakeKeyStore(), Clock()
    authenticator = Authenticator(store, ttl_seconds=60, monotonic=clock)
    key = KEY_PREFIX + "made-right-after-its-first-use"
    assert authenticator.credential_of(f"Bearer {key}") is None
    issue_key(store, "acme", key)
    clock.now = MISS_CACHE_SECONDS
    assert authenticator.credential_of(f"Bearer {key}") == Credential("acme")
    assert store.lookups == 2


def test_a_portal_token_is_stored_hashed_with_its_scope_and_expiry() -> None:
    store = FakeKeyStore()
    issued = issue_portal_token(store, "acme", read_only=True, lifetime_seconds=600, now=1_000.5)
    assert issued.token.startswith(PORTAL_TOKEN_PREFIX)
    assert issued.expires_at == 1_600
    assert store.portal_tokens == {
        hash_key(issued.token): Credential("acme", portal=True, read_only=True, expires_at=1_600)
    }
    assert issued.token not in store.items and not store.infos  # never listed or revocable as an API key


def test_a_portal_token_stops_at_its_expiry_even_while_cached() -> None:
    store, monotonic, wall = FakeKeyStore(), Clock(), Clock()
    wall.now = 1_000
    token = issue_portal_token(store, "acme", read_only=False, lifetime_seconds=60, now=wall.now).token
    authenticator = Authenticator(store, ttl_seconds=3600, monotonic=monotonic, wall_clock=wall)
    assert authenticator.credential_of(f"Bearer {token}") == Credential("acme", portal=True, expires_at=1_060)
    wall.now = 1_060
    assert authenticator.credential_of(f"Bearer {token}") is None
    assert store.lookups == 1


def test_a_portal_session_ends_with_the_key_that_opened_it_within_the_keys_cache_time() -> None:
    store, monotonic, wall = FakeKeyStore(), Clock(), Clock()
    key = issue_key(store, "acme").key
    token = issue_portal_token(
        store, "acme", read_only=False, lifetime_seconds=3600, now=wall.now, opened_by=hash_key(key)
    ).token
    authenticator = Authenticator(store, ttl_seconds=60, monotonic=monotonic, wall_clock=wall)
    assert authenticator.credential_of(f"Bearer {token}") is not None
    store.items.clear()  # the key revoked
    assert authenticator.credential_of(f"Bearer {token}") is not None  # both cached: as the key itself
    monotonic.now = 61
    assert authenticator.credential_of(f"Bearer {key}") is None
    assert authenticator.credential_of(f"Bearer {token}") is None


def test_a_session_opened_by_an_operator_ends_at_its_expiry_or_when_revoked() -> None:
    store, wall = FakeKeyStore(), Clock()
    token = issue_portal_token(store, "acme", read_only=False, lifetime_seconds=3600, now=wall.now).token
    issue_portal_token(store, "globex", read_only=False, lifetime_seconds=3600, now=wall.now)
    assert Authenticator(store, ttl_seconds=0, wall_clock=wall).credential_of(f"Bearer {token}") is not None
    assert revoke_portal_sessions(store, "acme") == 1
    assert Authenticator(store, ttl_seconds=0, wall_clock=wall).credential_of(f"Bearer {token}") is None
    assert [credential.team_id for credential in store.portal_tokens.values()] == ["globex"]


@pytest.mark.parametrize(
    "credential",
    [
        Credential("acme"),
        Credential("acme", portal=True, read_only=True, expires_at=1_600),
        Credential("acme", portal=True, read_only=False, expires_at=1_600),
    ],
)
# A REST API (and an HTTP API, for some authorizers) passes every context value as a string.
@pytest.mark.parametrize("as_strings", [False, True])
def test_the_authorizer_context_carries_the_credential(credential: Credential, as_strings: bool) -> None:
    context = authorizer_context(credential)
    if as_strings:
        context = {name: str(value) for name, value in context.items()}
    assert credential_from_context(context) == credential


def test_no_credential_is_an_empty_team() -> None:
    assert credential_from_context(authorizer_context(None)) is None


@pytest.mark.parametrize(
    "context",
    [
        # What the authorizer said before scopes: a portal token's context, its values as strings.
        {"team_id": "acme", "portal": "true", "read_only": "true", "expires_at": "1600"},
        {"team_id": "acme", "portal": True, "read_only": True, "expires_at": 1600},
        {"team_id": "acme"},
        {"team_id": "acme", "scope": "admin", "expires_at": 0},
        {"team_id": "acme", "scope": "Portal", "expires_at": "1600"},
        {"team_id": "acme", "scope": True, "expires_at": 0},
        {"team_id": "acme", "scope": "team", "expires_at": "soon"},
        {"team_id": "acme", "scope": "team", "expires_at": 1600},
        {"team_id": "acme", "scope": "portal", "expires_at": 0},
        {"team_id": "acme", "scope": "portal-read-only", "expires_at": "0"},
        {"team_id": ["acme"], "scope": "team", "expires_at": 0},
        {"team_id": "", "scope": "team", "expires_at": 0},
        {"scope": "team", "expires_at": 0},
    ],
)
def test_a_context_that_does_not_parse_is_no_credential(context: dict[str, object]) -> None:
    assert credential_from_context(context) is None


def test_a_team_lists_its_own_keys_oldest_first() -> None:
    store = FakeKeyStore()
    first, second = issue_key(store, "acme"), issue_key(store, "acme")
    issue_key(store, "globex")
    listed = keys_of(store, "acme")
    assert {info.key_id for info in listed} == {first.key_id, second.key_id}
    assert listed == sorted(listed, key=lambda info: (info.created_at, info.key_id))
    assert all(info.team_id == "acme" for info in listed)
    assert all(first.key not in repr(info) and hash_key(first.key) not in repr(info) for info in listed)


def test_revoking_removes_only_that_key_of_that_team() -> None:
    store = FakeKeyStore()
    kept, revoked = issue_key(store, "acme"), issue_key(store, "acme")
    other = issue_key(store, "globex")
    with pytest.raises(UnknownKey, match="acme has no API key"):
        revoke_key(store, "acme", other.key_id)
    revoke_key(store, "acme", revoked.key_id)
    assert [info.key_id for info in keys_of(store, "acme")] == [kept.key_id]
    assert store.credential_of(hash_key(revoked.key)) is None
    assert store.credential_of(hash_key(other.key)) == Credential("globex")
    with pytest.raises(UnknownKey):
        revoke_key(store, "acme", revoked.key_id)


def test_list_and_revoke_check_the_team_id() -> None:
    with pytest.raises(ValueError, match="team id"):
        keys_of(FakeKeyStore(), "no spaces")
    with pytest.raises(ValueError, match="team id"):
        revoke_key(FakeKeyStore(), "no spaces", "abc")


def test_an_authorizer_that_could_not_look_up_the_credential_grants_nothing() -> None:
    context = unavailable_context()
    assert lookup_was_unavailable(context)
    assert credential_from_context(context) is None
    assert not lookup_was_unavailable(authorizer_context(None))
