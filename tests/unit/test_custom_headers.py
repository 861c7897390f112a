"""A subscription's custom headers: what a tenant may set, and how they are sent beside hookrelay's own."""

import pytest
from pydantic import ValidationError
from records import subscription

from hookrelay import catalog, clock, custom_headers
from hookrelay.http_api import from_validation_error
from hookrelay.models.subscriptions import SubscriptionPatch, SubscriptionSettings
from hookrelay.outgoing import render_delivery, unsigned_headers
from hookrelay.records import Delivery, Event


def settings(headers: object, endpoint: str = "https://hooks.example.com/x") -> SubscriptionSettings:
    return SubscriptionSettings.model_validate(
        {"endpoint": endpoint, "subscribed_events": ["signer.done"], "headers": headers}
    )


def refused(headers: object, endpoint: str = "https://hooks.example.com/x") -> dict[str, str]:
    """invalid_params of the refusal, name → reason."""
    with pytest.raises(ValidationError) as raised:
        settings(headers, endpoint)
    params = from_validation_error(raised.value).problem.invalid_params or []
    return {param.name: param.reason for param in params}


def test_a_subscription_has_no_custom_headers_by_default() -> None:
    assert (
        SubscriptionSettings.model_validate(
            {"endpoint": "https://hooks.example.com/x", "subscribed_events": ["*"]}
        ).headers
        == {}
    )


def test_tokens_and_visible_ascii_values_are_accepted() -> None:
    headers = {
        "Authorization": "Bearer abc.DEF-123_~+/=",
        "X-Tenant": "acme corp",
        "x-custom!#$%&'*+.^_`|~": "a",
        "Accept": "*/*",
        "X-Empty": "",
        "X-Max": "v" * 1024,
        **{f"X-H{n}": str(n) for n in range(14)},
    }
    assert len(headers) == 20
    assert settings(headers).headers == headers


@pytest.mark.parametrize(
    "name",
    [
        "webhook-id",
        "Webhook-Signature",
        "webhook-anything",
        "X-Yousign-Signature-256",
        "x-yousign-retry",
        "X-Webhook-Signature",
        "X-Hookrelay-Test",
        "x-hookrelay-pinned-host",
        "Host",
        "Content-Length",
        "content-type",
        "Content-Encoding",
        "Transfer-Encoding",
        "Connection",
        "USER-AGENT",
        "Accept-Encoding",
        "Expect",
        "TE",
        "Upgrade",
        "Keep-Alive",
        "Proxy-Authorization",
    ],
)
def test_names_hookrelay_or_the_transport_set_are_refused_whatever_their_case(name: str) -> None:
    reasons = refused({"X-Fine": "1", name: "forged"})
    assert list(reasons) == [f"headers.{name}"]
    assert "hookrelay" in reasons[f"headers.{name}"]


@pytest.mark.parametrize(
    "name", ["Webhook_Signature", "X_Yousign_Signature_256", "x-hookrelay_test", "Content_Type", "Transfer_Encoding"]
)
def test_underscore_spellings_of_those_names_are_refused_as_receivers_read_them_as_the_names(name: str) -> None:
    # CGI, WSGI, PHP and Rack receivers read Webhook_Signature as HTTP_WEBHOOK_SIGNATURE, the signature's own
    # variable; before, such a name was accepted and could forge it.
    reasons = refused({name: "v1,forged"})
    assert list(reasons) == [f"headers.{name}"]
    assert "hookrelay" in reasons[f"headers.{name}"]


@pytest.mark.parametrize("name", ["", "X Space", "X:Colon", "X-Ünicode", "X(paren)", "X\r\nInjected", "x" * 257])
def test_names_that_are_not_http_tokens_are_refused(name: str) -> None:
    assert list(refused({name: "1"})) == [f"headers.{name}"]


@pytest.mark.parametrize(
    "value",
    [
        "line\r\nX-Injected: 1",
        "line\nbreak",
        "carriage\rreturn",
        "nul\x00byte",
        "tab\there",
        " leading space",
        "trailing space ",
        "café",
        "emoji 🎉",
        "v" * 1025,
    ],
)
def test_values_http_would_refuse_or_mangle_are_refused_without_being_quoted(value: str) -> None:
    reasons = refused({"X-Tenant": value})
    assert list(reasons) == ["headers.X-Tenant"]
    assert value not in reasons["headers.X-Tenant"]


def test_a_value_must_be_a_string() -> None:
    assert list(refused({"X-Count": 3})) == ["headers.X-Count"]


def test_more_than_20_headers_are_refused() -> None:
    assert "headers" in refused({f"X-H{n}": "1" for n in range(21)})


def test_names_differing_only_in_case_are_one_header_and_refused() -> None:
    reasons = refused({"X-Tenant": "a", "x-tenant": "b"})
    assert list(reasons) == ["headers.x-tenant"]
    assert "X-Tenant" in reasons["headers.x-tenant"]


def test_every_refused_header_is_named() -> None:
    assert set(refused({"Host": "h", "X-Ok": "1", "X-Bad": "a\nb", "Bad Name": "1"})) == {
        "headers.Host",
        "headers.X-Bad",
        "headers.Bad Name",
    }


def test_an_authorization_header_and_credentials_in_the_endpoint_are_one_too_many() -> None:
    endpoint = "https://user:pass@hooks.example.com/x"
    assert list(refused({"authorization": "Bearer t"}, endpoint)) == ["headers.authorization"]
    assert settings({"Authorization": "Bearer t"}).headers == {"Authorization": "Bearer t"}
    assert settings({"X-Api-Key": "k"}, endpoint).headers == {"X-Api-Key": "k"}


def test_a_patch_replaces_the_headers_and_is_checked_the_same_way() -> None:
    assert SubscriptionPatch.model_validate({"headers": {}}).headers == {}
    with pytest.raises(ValidationError):
        SubscriptionPatch.model_validate({"headers": {"Host": "evil.example.com"}})


def test_custom_headers_are_sent_beside_every_header_of_hookrelay() -> None:
    custom = {"Authorization": "Bearer receiver-token", "X-Tenant": "acme"}
    subscribed = subscription(headers=custom)
    event = Event(
        event_id="8a0c6a3e-2a7c-4d86-9a54-0d7d3b9e1f20",
        event_name="signer.done",
        event_time=clock.now_iso(),
        team_id="acme",
        data=catalog.event_types()[0].sample,
    )
    delivery = Delivery(
        id="d6a4a1c0-6f0e-5b1e-9d6e-1c2b3a4d5e6f",
        subscription_id=subscribed.id,
        event_id=event.event_id,
        event_name=event.event_name,
        team_id="acme",
        event=event,
        created_at=event.event_time,
        updated_at=event.event_time,
        expires_at=0,
    )
    headers = unsigned_headers(delivery, subscribed, render_delivery(delivery, subscribed))
    assert headers.items() >= custom.items()
    assert headers["Content-Type"] == "application/json"
    assert headers["webhook-id"] == delivery.id
    assert headers["User-Agent"].startswith("hookrelay/")


@pytest.mark.parametrize(
    ("name", "sensitive"),
    [
        ("Authorization", True),
        ("proxy-authorization", True),
        ("COOKIE", True),
        ("X-Access-Token", True),
        ("x-webhook-secret", True),
        ("Api-Key", True),
        ("X-Signature-Extra", True),
        ("X-DB-Password", True),
        ("X-Client-Id", False),
        ("X-Tenant", False),
    ],
)
def test_credentials_are_sensitive_by_their_name(name: str, sensitive: bool) -> None:
    assert custom_headers.is_sensitive(name, []) is sensitive
    assert custom_headers.is_sensitive(name, [name.upper()])


def test_a_masked_value_shows_its_last_four_characters_only_when_long() -> None:
    assert custom_headers.masked_value("Bearer rcv_live_abcd1234") == "***1234"
    assert custom_headers.masked_value("0123456789a") == "***"
    assert custom_headers.masked_value("") == "***"


def test_a_sensitive_value_written_back_as_shown_keeps_the_stored_one() -> None:
    stored = {"Authorization": "Bearer rcv_live_abcd1234", "X-Client-Id": "client-0123456789", "X-Tenant": "acme"}
    shown = custom_headers.shown(stored, ["x-client-id"])
    assert shown == {"Authorization": "***1234", "X-Client-Id": "***6789", "X-Tenant": "acme"}
    written = {"authorization": "***1234", "X-Client-Id": "new-client-id", "X-Tenant": "***"}
    assert custom_headers.kept(written, stored, ["x-client-id"]) == {
        "authorization": "Bearer rcv_live_abcd1234",
        "X-Client-Id": "new-client-id",
        "X-Tenant": "***",  # not sensitive: a value like any other
    }


def test_a_refusal_s_text_never_repeats_what_was_sent() -> None:
    # Its text reaches the log when a request fails: with the input in it, an endpoint's password and
    # a header's value sent beside the refused field were logged.
    with pytest.raises(ValidationError) as raised:
        SubscriptionSettings.model_validate(
            {
                # Refused for its port, the password in it.
                "endpoint": "https://u:TOPSECRET@h.example:1/",
                "subscribed_events": ["signer.done"],
                "headers": {"X-Api-Client": "customer-secret-value-123"},
                "secret_key": 7,
            }
        )
    text = str(raised.value)
    assert "endpoint" in text and "secret_key" in text
    assert "TOPSECRET" not in text and "customer-secret-value-123" not in text
