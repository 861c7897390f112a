import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime

import pytest
import standardwebhooks
import standardwebhooks.webhooks
import svix
import svix.webhooks
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from hookrelay.signing import (
    check_secret,
    generate_key_pair,
    generate_secret,
    signature_headers,
    signing_key,
    standard_webhooks_signature,
)


def test_generated_secret_is_standard_webhooks_form() -> None:
    secret = generate_secret()
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret[6:])) == 32
    assert generate_secret() != secret


def test_key_derivation() -> None:
    assert signing_key("whsec_" + base64.b64encode(b"k" * 24).decode()) == b"k" * 24
    assert signing_key("my custom secret") == b"my custom secret"
    with pytest.raises(ValueError, match="base64"):
        signing_key("whsec_***")


def whsec(size: int) -> str:
    return "whsec_" + base64.b64encode(b"k" * size).decode()


@pytest.mark.parametrize(
    "secret", [whsec(24), whsec(32), whsec(64), "x" * 24, "é" * 24, "a plain shared secret of 30+"]
)
def test_usable_secrets(secret: str) -> None:
    check_secret(secret)


@pytest.mark.parametrize(
    ("secret", "reason"),
    [
        (whsec(23), "24 to 64 bytes"),
        (whsec(65), "24 to 64 bytes"),
        ("whsec_", "24 to 64 bytes"),
        ("whsec_not base64!!", "base64"),
        ("x" * 23, "24 characters"),
        ("short", "24 characters"),
    ],
)
def test_secrets_too_weak_or_not_standard_webhooks_are_refused(secret: str, reason: str) -> None:
    # Standard Webhooks secrets are 24 to 64 bytes; a shorter plain secret is too easy to guess.
    with pytest.raises(ValueError, match=reason):
        check_secret(secret)


SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
DELIVERY_ID = "9e81f14a-fa1b-52fb-8707-d0268c85862d"
SUBSCRIPTION_ID = "c2115a3b-48c4-4ed1-96a2-b8fcf02c0f57"
BODY = b'{"event_id":"e1","event_name":"signer.done","data":{"name":"J\\u00e9r\\u00f4me"}}'


def headers(secret_keys: list[str], sent_at: datetime | None = None, body: bytes = BODY) -> dict[str, str]:
    return signature_headers(
        secret_keys=secret_keys,
        delivery_id=DELIVERY_ID,
        subscription_id=SUBSCRIPTION_ID,
        attempts_before=2,
        body=body,
        sent_at=sent_at or datetime.now(UTC),
    )


def test_standard_webhooks_test_vector() -> None:
    # The Standard Webhooks specification's example: same secret, id, timestamp and payload.
    key = signing_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    body = b'{"test": 2432232314}'
    expected = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    assert standard_webhooks_signature(key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body) == expected


def test_standard_webhooks_signature_verifies_with_standardwebhooks_and_svix() -> None:
    sent = headers([SECRET])
    assert standardwebhooks.Webhook(SECRET).verify(BODY, sent) == json.loads(BODY)
    svix.Webhook(SECRET).verify(BODY, sent)
    with pytest.raises(standardwebhooks.webhooks.WebhookVerificationError):
        standardwebhooks.Webhook(SECRET).verify(BODY + b" ", sent)
    with pytest.raises(svix.webhooks.WebhookVerificationError):
        svix.Webhook(generate_secret()).verify(BODY, sent)


def test_during_a_rotation_both_secrets_sign() -> None:
    previous = generate_secret()
    sent = headers([SECRET, previous])
    assert len(sent["webhook-signature"].split(" ")) == 2
    for secret in (SECRET, previous):
        standardwebhooks.Webhook(secret).verify(BODY, sent)
        svix.Webhook(secret).verify(BODY, sent)


def test_custom_secret_verifies_as_whsec_of_its_bytes() -> None:
    custom = "a plain shared secret of 30+"
    sent = headers([custom])
    as_standard = "whsec_" + base64.b64encode(custom.encode()).decode()
    standardwebhooks.Webhook(as_standard).verify(BODY, sent)
    svix.Webhook(as_standard).verify(BODY, sent)


def test_yousign_headers_verify_independently() -> None:
    sent_at = datetime(2026, 3, 2, 10, 15, 30, 250000, tzinfo=UTC)
    sent = headers([SECRET], sent_at)
    key = base64.b64decode(SECRET.removeprefix("whsec_"))
    assert sent["X-Yousign-Signature-256"] == "sha256=" + hmac.new(key, BODY, hashlib.sha256).hexdigest()
    assert sent["X-Yousign-Retry"] == "2"
    assert sent["X-Yousign-Issued-At"] == "1772446530" == sent["webhook-timestamp"]
    assert sent["webhook-id"] == DELIVERY_ID


def test_subnoto_headers_verify_independently() -> None:
    sent_at = datetime(2026, 3, 2, 10, 15, 30, 250000, tzinfo=UTC)
    form_body = b"payload=%7B%22eventType%22%3A%22ENVELOPE_SIGNED%22%7D"
    sent = headers([SECRET], sent_at, body=form_body)
    assert sent["X-Webhook-Id"] == SUBSCRIPTION_ID
    parts = dict(part.split("=", 1) for part in sent["X-Webhook-Signature"].split(","))
    assert parts["t"] == "1772446530250"
    key = base64.b64decode(SECRET.removeprefix("whsec_"))
    expected = hmac.new(key, b"t:" + parts["t"].encode() + b":" + form_body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(parts["v1"], expected)


def ed25519_verifies(public_key: str, entry: str, body: bytes, sent: dict[str, str]) -> bool:
    """An independent check of a `v1a,` entry: the `cryptography` package's ed25519 over id.timestamp.body."""
    verifier = Ed25519PublicKey.from_public_bytes(base64.b64decode(public_key.removeprefix("whpk_")))
    signed = f"{sent['webhook-id']}.{sent['webhook-timestamp']}.".encode() + body
    try:
        verifier.verify(base64.b64decode(entry.removeprefix("v1a,")), signed)
    except InvalidSignature:
        return False
    return True


def test_generated_key_pair_is_standard_webhooks_form() -> None:
    private_key, public_key = generate_key_pair()
    assert private_key.startswith("whsk_") and public_key.startswith("whpk_")
    assert len(base64.b64decode(public_key.removeprefix("whpk_"))) == 32
    seed = base64.b64decode(private_key.removeprefix("whsk_"))
    assert Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes_raw() == base64.b64decode(
        public_key.removeprefix("whpk_")
    )
    assert generate_key_pair() != (private_key, public_key)


def test_ed25519_entries_verify_with_the_public_keys_and_hmac_still_does() -> None:
    current, previous = generate_key_pair(), generate_key_pair()
    sent = signature_headers(
        secret_keys=[SECRET],
        private_keys=[current[0], previous[0]],
        delivery_id=DELIVERY_ID,
        subscription_id=SUBSCRIPTION_ID,
        attempts_before=0,
        body=BODY,
        sent_at=datetime.now(UTC),
    )
    entries = sent["webhook-signature"].split(" ")
    asymmetric = [entry for entry in entries if entry.startswith("v1a,")]
    assert len(asymmetric) == 2 and len(entries) == 3
    for _, public_key in (current, previous):
        assert any(ed25519_verifies(public_key, entry, BODY, sent) for entry in asymmetric)
        assert not any(ed25519_verifies(public_key, entry, BODY + b" ", sent) for entry in asymmetric)
    assert not any(ed25519_verifies(generate_key_pair()[1], entry, BODY, sent) for entry in asymmetric)
    # The installed standardwebhooks and svix libraries verify v1 only: they skip the v1a entries.
    standardwebhooks.Webhook(SECRET).verify(BODY, sent)
    svix.Webhook(SECRET).verify(BODY, sent)
