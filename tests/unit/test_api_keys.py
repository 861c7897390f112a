import pytest

from hookrelay.api_keys import Authenticator, bearer_token, hash_key, issue_key


class FakeKeyStore:
    def __init__(self) -> None:
        self.items: dict[str, str] = {}
        self.lookups = 0

    def add(self, key_hash: str, team_id: str, key_id: str, created_at: str) -> None:
        self.items[key_hash] = team_id

    def team_of(self, key_hash: str) -> str | None:
        self.lookups += 1
        return self.items.get(key_hash)


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
    assert authenticator.team_of(f"Bearer {key}") == "acme"
    assert authenticator.team_of(f"Bearer {key}") == "acme"
    assert authenticator.team_of("Bearer nope") is None
    assert authenticator.team_of("Bearer nope") is None
    assert store.lookups == 2
    store.items.clear()  # revoked
    clock.now = 61
    assert authenticator.team_of(f"Bearer {key}") is None
    assert store.lookups == 3
