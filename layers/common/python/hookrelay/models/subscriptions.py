"""The bodies of the subscriptions API (POST, PATCH and the reads of /v3/webhooks, secret rotation)."""

from typing import Annotated, Final, Literal, Self, cast

from pydantic import (
    AfterValidator,
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    computed_field,
    model_validator,
)
from pydantic_core import PydanticCustomError

from hookrelay import catalog, custom_headers, payloads, signing
from hookrelay.addresses import EndpointRefused, has_credentials, masked, parse_endpoint
from hookrelay.models.common import REQUEST_BODY, Name
from hookrelay.records import SignatureScheme, Subscription

FORM_CONTENT_TYPE: Final = "application/x-www-form-urlencoded"
JSON_CONTENT_TYPE: Final = "application/json"


def _wildcard_alone(values: list[str]) -> list[str]:
    if catalog.WILDCARD in values and len(values) > 1:
        raise PydanticCustomError("wildcard_not_alone", "'*' must be the only element of the list")
    return values


def _known_events(names: list[str]) -> list[str]:
    unknown = [name for name in names if name != catalog.WILDCARD and not catalog.is_known_event(name)]
    if unknown:
        raise PydanticCustomError(
            "unknown_event",
            "unknown event name(s) {names}; GET /v3/webhook-event-types lists the catalog",
            {"names": ", ".join(unknown)},
        )
    return names


def _endpoint_shape(url: str) -> str:
    # The scheme policy (https only unless private endpoints are allowed) and the address check
    # depend on configuration and DNS, so the subscriptions logic applies them.
    try:
        parse_endpoint(url, allow_plain_http=True)
        reason = payloads.no_message_for(url)
    except EndpointRefused as refusal:
        reason = str(refusal)
    if reason:
        raise PydanticCustomError("endpoint", "{reason}", {"reason": reason})
    return url


def _usable_secret(secret: str) -> str:
    try:
        signing.check_secret(secret)
    except ValueError as error:
        raise PydanticCustomError("secret_key", "{reason}", {"reason": str(error)}) from None
    return secret


EndpointUrl = Annotated[
    str,
    StringConstraints(min_length=1, max_length=2048),
    AfterValidator(_endpoint_shape),
    Field(
        description="The https URL each delivery is POSTed to. Reads show its secrets as `***` (credentials, a"
        " Slack or Discord webhook's token, query values named as credentials); a PATCH that writes it back as"
        " shown keeps them, and another URL with `***` in their place is refused.",
        examples=["https://example.com/webhooks"],
    ),
]
Description = Annotated[str, StringConstraints(max_length=255)]
SecretKey = Annotated[
    str,
    StringConstraints(max_length=256),
    AfterValidator(_usable_secret),
    Field(
        description="Signing secret: whsec_ + base64 of 24 to 64 bytes (Standard Webhooks form), or any string"
        " of 24+ characters."
    ),
]
EventNames = Annotated[
    list[Name],
    Field(min_length=1, max_length=100, description="Catalog event names, or ['*'] for every event."),
    AfterValidator(_wildcard_alone),
    AfterValidator(_known_events),
]
# Totals no real tenant meets, that bound a subscription's stored size (and so a team's, with its count)
# far below what the entries' own limits allow (100 x 255 characters per list, 20 x 1 KiB of headers).
MAX_SELECTOR_CHARACTERS = 4096
MAX_HEADERS_BYTES = 8192


def _selector_within_total(entries: list[str]) -> list[str]:
    if sum(len(entry) for entry in entries) > MAX_SELECTOR_CHARACTERS:
        raise PydanticCustomError(
            "total_length", "its entries total more than {limit} characters", {"limit": MAX_SELECTOR_CHARACTERS}
        )
    return entries


def _headers_within_total(headers: dict[str, str]) -> dict[str, str]:
    if sum(len(name.encode()) + len(value.encode()) for name, value in headers.items()) > MAX_HEADERS_BYTES:
        raise PydanticCustomError(
            "total_length", "names and values total more than {limit} bytes", {"limit": MAX_HEADERS_BYTES}
        )
    return headers


Selector = Annotated[
    list[Name],
    Field(min_length=1, max_length=100),
    AfterValidator(_wildcard_alone),
    AfterValidator(_selector_within_total),
]
ContentType = Literal["application/json", "application/x-www-form-urlencoded"]
CustomHeaders = Annotated[
    dict[str, str],
    Field(
        max_length=custom_headers.MAX_HEADERS,
        description="Request headers sent with every delivery of the subscription, besides hookrelay's own:"
        f" at most {custom_headers.MAX_HEADERS}; names are HTTP tokens, values visible ASCII (spaces inside)"
        f" of at most {custom_headers.MAX_VALUE_BYTES} bytes, {MAX_HEADERS_BYTES} bytes in all;"
        f" {custom_headers.RESERVED_DESCRIPTION} are refused, spelled with _ for - too."
        f" Write-only when sensitive ({custom_headers.SENSITIVE_DESCRIPTION}): every read shows `***` and the"
        " value's last 4 characters (`***` alone under 12 characters), and a PATCH that writes that back keeps"
        " the stored value, but not to show it or send it elsewhere: a PATCH that takes the name out of"
        " sensitive_headers, or moves the endpoint to another scheme, host or port, must write the value"
        " again or remove the header (422 on headers.<name> otherwise).",
        examples=[{"Authorization": "Bearer receiver-token", "X-Tenant": "acme"}],
    ),
    AfterValidator(custom_headers.checked),
    AfterValidator(_headers_within_total),
]
SensitiveHeaders = Annotated[
    list[str],
    Field(
        max_length=custom_headers.MAX_HEADERS,
        description="Names of custom headers whose values are write-only as credentials' are (case-insensitive),"
        " e.g. ['X-Api-Client']; credentials by their name (Authorization, ...) need not be listed. A PATCH that"
        " takes a name out must write that header's value again, or remove the header: the stored one is never shown.",
        examples=[["X-Api-Client"]],
    ),
    AfterValidator(custom_headers.checked_names),
]
RateLimit = Annotated[
    int,
    Field(
        ge=1,
        le=1000,
        description="At most this many requests per second to the endpoint (spaced 1/rate_limit s apart);"
        " deliveries over it wait on the queue, never dropped, never counted as failed attempts. Null: no limit.",
    ),
]
SIGNATURE_SCHEME_DESCRIPTION = (
    "hmac: webhook-signature carries v1, HMAC-SHA256 entries. ed25519: it also carries a v1a, ed25519 entry,"
    " which receivers verify with public_key (the HMAC secret keeps signing v1, and the Yousign and Subnoto headers)."
)

_SCOPES = AliasChoices("scopes", "scope")
_WORKSPACES = AliasChoices("workspaces", "workspace")


class _SubscriptionFields(BaseModel):
    model_config = REQUEST_BODY

    endpoint: EndpointUrl
    description: Description | None = None
    sandbox: bool = Field(False, description="Receive sandbox events instead of production ones.")
    enabled: bool = True
    auto_retry: bool = Field(True, description="Retry failed deliveries on the backoff schedule.")
    subscribed_events: EventNames
    scopes: Selector = Field(default_factory=lambda: [catalog.WILDCARD], validation_alias=_SCOPES)
    workspaces: Selector = Field(default_factory=lambda: [catalog.WILDCARD], validation_alias=_WORKSPACES)
    payload_format: payloads.PayloadFormat = "yousign"
    content_type: ContentType = JSON_CONTENT_TYPE
    headers: CustomHeaders = Field(default_factory=dict)
    sensitive_headers: SensitiveHeaders = Field(default_factory=list)
    signature_scheme: SignatureScheme = Field("hmac", description=SIGNATURE_SCHEME_DESCRIPTION)
    rate_limit: RateLimit | None = None

    @model_validator(mode="after")
    def _form_is_subnoto_only(self) -> Self:
        if self.content_type == FORM_CONTENT_TYPE and self.payload_format != "subnoto":
            raise PydanticCustomError(
                "content_type", f"{FORM_CONTENT_TYPE} is available with payload_format 'subnoto' only"
            )
        return self

    @model_validator(mode="after")
    def _one_authorization(self) -> Self:
        custom_headers.check_authorization(self.headers, endpoint_has_credentials=has_credentials(self.endpoint))
        return self


class SubscriptionSettings(_SubscriptionFields):
    """What a client writes: the body of POST /v3/webhooks."""

    secret_key: SecretKey | None = Field(None, description="Generated (whsec_...) when absent.")

    @classmethod
    def of(cls, subscription: Subscription) -> Self:
        """The stored settings as they are: not validated again, as the rules of a later release may refuse
        what an earlier one stored (a PATCH validates what it makes of them)."""
        # cast: the pydantic plugin types model_construct as the class it is declared on, not Self.
        return cast(Self, cls.model_construct(**{name: getattr(subscription, name) for name in cls.model_fields}))


class SubscriptionPatch(BaseModel):
    """The body of PATCH /v3/webhooks/{id}: any subset of the writable fields."""

    model_config = REQUEST_BODY

    endpoint: EndpointUrl | None = None
    description: Description | None = None
    secret_key: SecretKey | None = None
    sandbox: bool | None = None
    enabled: bool | None = None
    auto_retry: bool | None = None
    subscribed_events: EventNames | None = None
    scopes: Selector | None = Field(None, validation_alias=_SCOPES)
    workspaces: Selector | None = Field(None, validation_alias=_WORKSPACES)
    payload_format: payloads.PayloadFormat | None = None
    content_type: ContentType | None = None
    headers: CustomHeaders | None = Field(None, description="Replaces every custom header; {} removes them all.")
    sensitive_headers: SensitiveHeaders | None = None
    signature_scheme: SignatureScheme | None = Field(None, description=SIGNATURE_SCHEME_DESCRIPTION)
    rate_limit: RateLimit | None = None


class SubscriptionView(_SubscriptionFields):
    """A subscription as every read returns it: never with its secret."""

    model_config = ConfigDict(extra="ignore")

    id: str
    disabled_reason: str | None = None
    failing_since: str | None = Field(None, description="When the endpoint's current run of failures began.")
    public_key: str | None = Field(
        None, description="With signature_scheme ed25519: whpk_ + base64 of the public key v1a, entries verify with."
    )
    created_at: str
    updated_at: str

    @computed_field(
        description="How deliveries are rendered: the payload format, or slack/discord by host (slack for"
        " Discord's Slack-compatible .../slack)."
    )
    def delivery_format(self) -> payloads.DeliveryFormat:
        return payloads.delivery_format(self.endpoint, self.payload_format)

    @classmethod
    def of(cls, subscription: Subscription) -> Self:
        """The subscription as a client may see it: these fields, the endpoint without its credentials and
        sensitive header values masked."""
        shown = {name: getattr(subscription, name) for name in cls.model_fields}
        headers = custom_headers.shown(subscription.headers, subscription.sensitive_headers)
        # Not validated again: a read shows what is stored, even what a later release's rules refuse.
        return cast(
            Self, cls.model_construct(**{**shown, "endpoint": masked(subscription.endpoint), "headers": headers})
        )


class SubscriptionWithSecret(SubscriptionView):
    """A subscription with its secret: only the answers of create and secret rotation."""

    secret_key: str


class SecretRotation(BaseModel):
    """The body of POST /v3/webhooks/{id}/secret/rotate."""

    model_config = REQUEST_BODY

    secret_key: SecretKey | None = Field(None, description="The new secret; generated (whsec_...) when absent.")
