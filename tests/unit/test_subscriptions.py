import dataclasses
import threading
import time

import pytest
from pydantic import ValidationError
from records import TEAM_LIMIT

from hookrelay import clock
from hookrelay.addresses import masked
from hookrelay.errors import DomainError, Unavailable
from hookrelay.http_api import from_validation_error, problem_of
from hookrelay.models.subscriptions import (
    SecretRotation,
    SubscriptionPatch,
    SubscriptionSettings,
    SubscriptionView,
    SubscriptionWithSecret,
)
from hookrelay.records import Subscription
from hookrelay.store.retries import Retries
from hookrelay.store.subscriptions import next_revision
from hookrelay.subscriptions import Subscriptions, vet_endpoint
from unit.fakes import FakeSubscriptionStore

RESOLVED = {
    "hooks.example.com": ["93.184.215.14"],
    "elsewhere.example.com": ["93.184.215.15"],
    "rebound.example.com": ["10.0.0.7"],
    "xn--bcher-kva.example": ["93.184.215.16"],
    "discord.com": ["162.159.135.232"],
}


def resolver(host: str, port: int) -> list[str]:
    return RESOLVED[host]


@pytest.fixture
def subscriptions() -> Subscriptions:
    return Subscriptions(FakeSubscriptionStore(), allow_private=False, max_per_team=TEAM_LIMIT, resolver=resolver)


def settings(**fields: object) -> SubscriptionSettings:
    return SubscriptionSettings.model_validate(
        {"endpoint": "https://hooks.example.com/x", "subscribed_events": ["signer.done"], **fields}
    )


def test_create_fills_defaults_and_generates_a_secret(subscriptions: Subscriptions) -> None:
    created = subscriptions.create("acme", settings())
    assert created.secret_key.startswith("whsec_")
    assert created.scopes == ["*"] and created.workspaces == ["*"]
    assert created.created_at == created.updated_at
    assert subscriptions.get("acme", created.id) == created


def test_teams_do_not_see_each_other(subscriptions: Subscriptions) -> None:
    created = subscriptions.create("acme", settings())
    with pytest.raises(DomainError) as raised:
        subscriptions.get("globex", created.id)
    assert problem_of(raised.value).problem.status == 404
    assert subscriptions.page("globex", 10, None).data == []


def test_endpoint_resolving_to_private_address_is_refused(subscriptions: Subscriptions) -> None:
    with pytest.raises(DomainError) as raised:
        subscriptions.create("acme", settings(endpoint="https://rebound.example.com/x"))
    problem = problem_of(raised.value).problem
    assert problem.status == 422
    assert problem.invalid_params and problem.invalid_params[0].name == "endpoint"
    # Nothing of where the name resolved: creating subscriptions is no way to look up internal names.
    assert problem.invalid_params[0].reason == "host rebound.example.com does not resolve to a public address"
    assert "10.0.0.7" not in problem.model_dump_json()


def test_an_internationalised_endpoint_is_vetted_in_ascii_and_shown_as_written(subscriptions: Subscriptions) -> None:
    created = subscriptions.create("acme", settings(endpoint="https://bücher.example/hook"))
    assert created.endpoint == "https://bücher.example/hook"


def test_an_endpoint_host_idna_cannot_write_in_ascii_is_refused() -> None:
    with pytest.raises(ValidationError) as raised:
        settings(endpoint="https://☃.example/hook")
    (param,) = from_validation_error(raised.value).problem.invalid_params or []
    assert param.name == "endpoint"
    assert param.reason.startswith("has a host name that is not a valid internationalised domain name")


@pytest.mark.parametrize(
    "endpoint",
    ["https://discord.com/api/webhooks/1/token/github", "https://discord.com/api/v10/webhooks/1/token/github/"],
)
def test_discords_github_compatible_webhook_is_refused(endpoint: str) -> None:
    # Before: accepted, and sent Discord's message, which that endpoint does not take.
    with pytest.raises(ValidationError) as raised:
        settings(endpoint=endpoint)
    (param,) = from_validation_error(raised.value).problem.invalid_params or []
    assert param.name == "endpoint"
    assert "GitHub's events only" in param.reason and "without /github" in param.reason


def test_a_name_server_that_never_answers_is_a_prompt_422() -> None:
    unanswered = threading.Event()

    def hanging(host: str, port: int) -> list[str]:
        unanswered.wait()
        return ["93.184.215.14"]

    started = time.monotonic()
    try:
        with pytest.raises(DomainError) as raised:
            vet_endpoint("https://hangs.example.com/x", allow_private=False, resolver=hanging, lookup_seconds=0.2)
    finally:
        unanswered.set()
    assert time.monotonic() - started < 1.5
    problem = problem_of(raised.value).problem
    assert problem.status == 422 and problem.invalid_params
    assert problem.invalid_params[0].name == "endpoint"
    assert "did not resolve within 0.2 s" in problem.invalid_params[0].reason


def test_update_merges_and_revalidates(subscriptions: Subscriptions) -> None:
    created = subscriptions.create("acme", settings(payload_format="subnoto"))
    patch = SubscriptionPatch.model_validate({"content_type": "application/x-www-form-urlencoded"})
    updated = subscriptions.update("acme", created.id, patch)
    assert updated.content_type == "application/x-www-form-urlencoded"
    assert updated.secret_key == created.secret_key
    with pytest.raises(DomainError) as raised:
        subscriptions.update("acme", created.id, SubscriptionPatch.model_validate({"payload_format": "yousign"}))
    assert problem_of(raised.value).problem.status == 422


def test_reenabling_clears_the_disabled_reason(subscriptions: Subscriptions) -> None:
    created = subscriptions.create("acme", settings())
    store = subscriptions._store
    store.replace(dataclasses.replace(created, enabled=False, disabled_reason="endpoint answered 410 Gone"))
    assert subscriptions.get("acme", created.id).disabled_reason
    updated = subscriptions.update("acme", created.id, SubscriptionPatch.model_validate({"enabled": True}))
    assert updated.disabled_reason is None


@pytest.mark.parametrize(
    ("was_enabled", "patch", "run_starts_anew"),
    [
        (False, {"enabled": True}, True),  # no attempt was made while disabled: the old run says nothing
        (True, {"endpoint": "https://elsewhere.example.com/x"}, True),  # another receiver
        (True, {"endpoint": "https://hooks.example.com/fixed-path"}, True),
        (True, {"enabled": True}, False),
        (True, {"description": "renamed"}, False),
        (True, {"endpoint": "https://hooks.example.com/x"}, False),  # written back as it was
        (False, {"description": "renamed"}, False),
    ],
)
def test_re_enabling_or_moving_an_endpoint_starts_its_run_of_failures_anew(
    subscriptions: Subscriptions, was_enabled: bool, patch: dict[str, object], run_starts_anew: bool
) -> None:
    created = subscriptions.create("acme", settings())
    failing_since = "2026-11-01T00:00:00.000Z"
    subscriptions._store.replace(dataclasses.replace(created, enabled=was_enabled, failing_since=failing_since))
    updated = subscriptions.update("acme", created.id, SubscriptionPatch.model_validate(patch))
    assert updated.failing_since == (None if run_starts_anew else failing_since)


# Stored under an earlier release's rules, refused by today's: Discord's GitHub-compatible webhook, a
# host IDNA cannot write in ASCII, a reserved header name spelled with _.
STORED_BEFORE_A_RULE = [
    (
        {"endpoint": "https://discord.com/api/webhooks/1/DISCORD-TOKEN/github"},
        "endpoint",
        {"endpoint": "https://discord.com/api/webhooks/1/DISCORD-TOKEN"},
    ),
    ({"endpoint": "https://☃.example/hook"}, "endpoint", {"endpoint": "https://hooks.example.com/x"}),
    ({"headers": {"Content_Type": "text/plain"}}, "headers.Content_Type", {"headers": {}}),
]


@pytest.mark.parametrize(("stored", "refused", "fix"), STORED_BEFORE_A_RULE)
def test_a_subscription_a_later_rule_refuses_is_read_as_stored_and_written_only_fixed(
    subscriptions: Subscriptions, stored: dict[str, object], refused: str, fix: dict[str, object]
) -> None:
    created = subscriptions.create("acme", settings())
    subscriptions._store.replace(dataclasses.replace(created, **stored))  # type: ignore[arg-type]
    shown = SubscriptionView.of(subscriptions.get("acme", created.id)).model_dump()
    assert {name: shown[name] for name in stored} == {
        name: masked(str(value)) if name == "endpoint" else value for name, value in stored.items()
    }
    assert [each.id for each in subscriptions.page("acme", 100, None).data] == [created.id]
    # A write leaves a subscription that today's rules accept: one that keeps the refused value is a 422
    # naming it, one that fixes it goes through.
    with pytest.raises(DomainError) as raised:
        subscriptions.update("acme", created.id, SubscriptionPatch.model_validate({"enabled": False}))
    problem = problem_of(raised.value).problem
    assert problem.status == 422 and [param.name for param in problem.invalid_params or []] == [refused]
    assert subscriptions.update("acme", created.id, SubscriptionPatch.model_validate(fix)).enabled


def test_scope_and_workspace_aliases() -> None:
    parsed = settings(scope=["app"], workspace=["w1"])
    assert parsed.scopes == ["app"] and parsed.workspaces == ["w1"]


def test_ed25519_subscription_shows_its_public_key_never_its_private_key(subscriptions: Subscriptions) -> None:
    created = subscriptions.create("acme", settings(signature_scheme="ed25519"))
    assert created.private_key and created.private_key.startswith("whsk_")
    assert created.public_key and created.public_key.startswith("whpk_")
    assert created.secret_key.startswith("whsec_")  # the v1, Yousign and Subnoto signatures still need it
    for shown in (SubscriptionView.of(created), SubscriptionWithSecret.of(created)):
        document = shown.model_dump_json()
        assert shown.model_dump()["public_key"] == created.public_key
        assert created.private_key not in document and created.private_key.removeprefix("whsk_") not in document
    assert SubscriptionView.of(subscriptions.create("acme", settings())).model_dump()["public_key"] is None


def test_ed25519_rotation_signs_with_both_pairs_during_the_overlap(subscriptions: Subscriptions) -> None:
    created = subscriptions.create("acme", settings(signature_scheme="ed25519"))
    rotated = subscriptions.rotate_secret("acme", created.id, SecretRotation())
    assert rotated.public_key != created.public_key and rotated.private_key != created.private_key
    now = clock.now_iso()
    assert rotated.signing_private_keys(now) == [rotated.private_key, created.private_key]
    assert rotated.signing_secrets(now) == [rotated.secret_key, created.secret_key]
    after_overlap = "9999-01-01T00:00:00Z"
    assert rotated.signing_private_keys(after_overlap) == [rotated.private_key]


def test_switching_signature_scheme_generates_or_drops_the_key_pair(subscriptions: Subscriptions) -> None:
    created = subscriptions.create("acme", settings())
    assert created.public_key is None and created.signing_private_keys(clock.now_iso()) == []
    to_ed25519 = SubscriptionPatch.model_validate({"signature_scheme": "ed25519"})
    switched = subscriptions.update("acme", created.id, to_ed25519)
    assert switched.public_key and switched.signing_private_keys(clock.now_iso()) == [switched.private_key]
    unchanged = subscriptions.update("acme", created.id, SubscriptionPatch.model_validate({"description": "x"}))
    assert unchanged.public_key == switched.public_key
    back = subscriptions.update("acme", created.id, SubscriptionPatch.model_validate({"signature_scheme": "hmac"}))
    assert back.public_key is None and back.signing_private_keys(clock.now_iso()) == []


TOKEN = "Bearer rcv_live_0123456789abcdef"
CLIENT_ID = "client-0123456789abcdef"
WRITE_ONLY = settings(
    headers={"Authorization": TOKEN, "X-Client-Id": CLIENT_ID, "X-Tenant": "acme"}, sensitive_headers=["X-Client-Id"]
)
ELSEWHERE = "https://elsewhere.example.com/x"


@pytest.mark.parametrize(
    ("patch", "refused"),
    [
        ({"sensitive_headers": []}, ["headers.X-Client-Id"]),
        ({"sensitive_headers": [], "headers": {"x-client-id": "***cdef"}}, ["headers.x-client-id"]),
        ({"endpoint": ELSEWHERE}, ["headers.Authorization", "headers.X-Client-Id"]),
        ({"endpoint": "https://hooks.example.com:8443/x"}, ["headers.Authorization", "headers.X-Client-Id"]),
        ({"endpoint": ELSEWHERE, "headers": {"Authorization": "***cdef"}}, ["headers.Authorization"]),
        ({"endpoint": ELSEWHERE, "sensitive_headers": []}, ["headers.Authorization", "headers.X-Client-Id"]),
    ],
)
def test_a_write_only_value_the_patch_does_not_write_is_kept_only_hidden_and_for_its_origin(
    subscriptions: Subscriptions, patch: dict[str, object], refused: list[str]
) -> None:
    created = subscriptions.create("acme", WRITE_ONLY)
    with pytest.raises(DomainError) as raised:
        subscriptions.update("acme", created.id, SubscriptionPatch.model_validate(patch))
    problem = problem_of(raised.value).problem
    assert problem.status == 422 and problem.invalid_params
    assert [param.name for param in problem.invalid_params] == refused
    assert TOKEN not in problem.model_dump_json() and CLIENT_ID not in problem.model_dump_json()
    assert subscriptions.get("acme", created.id) == created


@pytest.mark.parametrize(
    ("patch", "stored"),
    [
        ({"sensitive_headers": [], "headers": {"X-Client-Id": "public-id"}}, {"X-Client-Id": "public-id"}),
        ({"sensitive_headers": ["X-Tenant"], "headers": {"Authorization": "***cdef"}}, {"Authorization": TOKEN}),
        ({"sensitive_headers": [], "headers": {"X-Client-Id": CLIENT_ID}}, {"X-Client-Id": CLIENT_ID}),
        ({"endpoint": "https://HOOKS.example.com:443/elsewhere"}, WRITE_ONLY.headers),
        (
            {"endpoint": ELSEWHERE, "headers": {"Authorization": "Bearer new-0001", "X-Tenant": "acme"}},
            {"Authorization": "Bearer new-0001", "X-Tenant": "acme"},
        ),
        ({"endpoint": ELSEWHERE, "headers": {"X-Tenant": "acme"}}, {"X-Tenant": "acme"}),
    ],
)
def test_a_write_only_value_the_patch_writes_again_or_removes_may_be_unmarked_or_moved(
    subscriptions: Subscriptions, patch: dict[str, object], stored: dict[str, str]
) -> None:
    created = subscriptions.create("acme", WRITE_ONLY)
    updated = subscriptions.update("acme", created.id, SubscriptionPatch.model_validate(patch))
    assert updated.headers == stored


@pytest.mark.parametrize("scheme", ["rsa", "", "ED25519", None])
def test_unknown_signature_scheme_is_refused(scheme: object) -> None:
    with pytest.raises(ValidationError):
        settings(signature_scheme=scheme)


class WrittenAfterEveryRead(FakeSubscriptionStore):
    """Another writer changes the subscription between every read of it and the write that follows."""

    def get(self, team_id: str, subscription_id: str) -> Subscription | None:
        read = super().get(team_id, subscription_id)
        if read is not None:
            self.items[(team_id, subscription_id)] = next_revision(read)
        return read


class DeletedBeforeTheWrite(FakeSubscriptionStore):
    def replace(self, subscription: Subscription) -> Subscription | None:
        self.delete(subscription.team_id, subscription.id)
        return super().replace(subscription)


def test_a_patch_that_finds_its_subscription_written_at_every_try_is_unavailable_and_writes_nothing() -> None:
    store = WrittenAfterEveryRead()
    no_pause = Retries(attempts=3, first_pause=0, max_pause=0, sleep=lambda _: None)
    subscriptions = Subscriptions(
        store, allow_private=False, max_per_team=TEAM_LIMIT, resolver=resolver, rewrites=no_pause
    )
    created = subscriptions.create("acme", settings())
    with pytest.raises(Unavailable):
        subscriptions.update("acme", created.id, SubscriptionPatch.model_validate({"description": "lost race"}))
    with pytest.raises(Unavailable):
        subscriptions.rotate_secret("acme", created.id, SecretRotation())
    stored = store.items[("acme", created.id)]
    assert stored.description is None and stored.secret_key == created.secret_key


def test_a_patch_of_a_subscription_deleted_between_its_read_and_its_write_is_404() -> None:
    subscriptions = Subscriptions(
        DeletedBeforeTheWrite(), allow_private=False, max_per_team=TEAM_LIMIT, resolver=resolver
    )
    created = subscriptions.create("acme", settings())
    with pytest.raises(DomainError) as raised:
        subscriptions.update("acme", created.id, SubscriptionPatch.model_validate({"description": "too late"}))
    assert problem_of(raised.value).problem.status == 404
