import pytest
from records import TEAM_LIMIT

from hookrelay.models import SubscriptionPatch, SubscriptionSettings
from hookrelay.problems import ProblemError
from hookrelay.subscriptions import Subscriptions
from unit.fakes import FakeSubscriptionStore

RESOLVED = {"hooks.example.com": ["93.184.215.14"], "rebound.example.com": ["10.0.0.7"]}


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
    with pytest.raises(ProblemError) as raised:
        subscriptions.get("globex", created.id)
    assert raised.value.problem.status == 404
    assert subscriptions.page("globex", 10, None).data == []


def test_endpoint_resolving_to_private_address_is_refused(subscriptions: Subscriptions) -> None:
    with pytest.raises(ProblemError) as raised:
        subscriptions.create("acme", settings(endpoint="https://rebound.example.com/x"))
    problem = raised.value.problem
    assert problem.status == 422
    assert problem.invalid_params and problem.invalid_params[0].name == "endpoint"
    assert "10.0.0.7" in problem.invalid_params[0].reason


def test_update_merges_and_revalidates(subscriptions: Subscriptions) -> None:
    created = subscriptions.create("acme", settings(payload_format="subnoto"))
    patch = SubscriptionPatch.model_validate({"content_type": "application/x-www-form-urlencoded"})
    updated = subscriptions.update("acme", created.id, patch)
    assert updated.content_type == "application/x-www-form-urlencoded"
    assert updated.secret_key == created.secret_key
    with pytest.raises(ProblemError) as raised:
        subscriptions.update("acme", created.id, SubscriptionPatch.model_validate({"payload_format": "yousign"}))
    assert raised.value.problem.status == 422


def test_reenabling_clears_the_disabled_reason(subscriptions: Subscriptions) -> None:
    created = subscriptions.create("acme", settings())
    store = subscriptions._store
    store.replace(created.model_copy(update={"enabled": False, "disabled_reason": "endpoint answered 410 Gone"}))
    assert subscriptions.get("acme", created.id).disabled_reason
    updated = subscriptions.update("acme", created.id, SubscriptionPatch.model_validate({"enabled": True}))
    assert updated.disabled_reason is None


def test_scope_and_workspace_aliases() -> None:
    parsed = settings(scope=["app"], workspace=["w1"])
    assert parsed.scopes == ["app"] and parsed.workspaces == ["w1"]
