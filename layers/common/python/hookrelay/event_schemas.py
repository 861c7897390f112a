"""The JSON Schema (draft 2020-12) of each catalog event's `data`.

Precise on what hookrelay and receivers rely on (the entity an event is about, its id and status,
as strings); permissive on the rest: other properties are allowed, so that producers may send more
than the catalog's sample and receivers ignore what they do not know. Built from the shapes the
events share, so that one entity is described once.
"""

import functools
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from hookrelay.errors import field_path

if TYPE_CHECKING:
    from jsonschema import ValidationError
    from jsonschema.protocols import Validator

DIALECT: Final = "https://json-schema.org/draft/2020-12/schema"

Schema = dict[str, Any]
# A reason quotes at most this much of jsonschema's message, which may repeat a large part of the input.
MAX_REASON_LENGTH: Final = 200

IDENTIFIER: Final[Schema] = {"type": "string", "minLength": 1}
STATUS: Final[Schema] = {"type": "string", "minLength": 1}
TEXT: Final[Schema] = {"type": ["string", "null"]}
MOMENT: Final[Schema] = {"type": ["string", "null"], "description": "ISO-8601 date and time."}


def _object(required: Mapping[str, Schema], optional: Mapping[str, Schema] | None = None) -> Schema:
    return {"type": "object", "required": list(required), "properties": {**required, **(optional or {})}}


def _list_of(item: Schema) -> Schema:
    return {"type": "array", "items": item}


_PERSON_INFO = _object({}, {"first_name": TEXT, "last_name": TEXT, "email": TEXT, "phone_number": TEXT, "locale": TEXT})
_PARTICIPANT = _object({"id": IDENTIFIER, "status": STATUS})
_SIGNATURE_REQUEST_SUMMARY = {
    "name": TEXT,
    "external_id": TEXT,
    "workspace_id": TEXT,
    "source": TEXT,
}
_SIGNATURE_REQUEST = _object(
    {"id": IDENTIFIER, "status": STATUS},
    {
        **_SIGNATURE_REQUEST_SUMMARY,
        "delivery_mode": TEXT,
        "created_at": MOMENT,
        "ordered_signers": {"type": ["boolean", "null"]},
        "timezone": TEXT,
        "email_custom_note": TEXT,
        "expiration_date": MOMENT,
        "signature_level": TEXT,
        "signers": _list_of(_PARTICIPANT),
        "approvers": _list_of(_PARTICIPANT),
        "documents": _list_of(_object({"id": IDENTIFIER}, {"nature": TEXT})),
        "sender": _object({}, {"id": IDENTIFIER, "email": TEXT}),
        "deleted_at": MOMENT,
    },
)
_SIGNATURE_REQUEST_OF_PARTICIPANT = _object({"id": IDENTIFIER, "status": STATUS}, _SIGNATURE_REQUEST_SUMMARY)
_SIGNER = _object(
    {"id": IDENTIFIER, "status": STATUS},
    {"info": _PERSON_INFO, "signature_level": TEXT, "signature_authentication_mode": TEXT},
)
_APPROVER = _object({"id": IDENTIFIER, "status": STATUS}, {"info": _PERSON_INFO})
_ELECTRONIC_SEAL = _object(
    {"id": IDENTIFIER, "status": STATUS},
    {"document_id": TEXT, "external_id": TEXT, "signature_level": TEXT, "created_at": MOMENT, "workspace_id": TEXT},
)
_ENVELOPE = {"workspaceUuid": IDENTIFIER, "envelopeUuid": IDENTIFIER}
_RECIPIENT = _object({}, {"email": TEXT, "name": TEXT})


def _signature_request_event(**more: Schema) -> tuple[dict[str, Schema], dict[str, Schema]]:
    return {"signature_request": _SIGNATURE_REQUEST}, more


def _participant_event(role: str, participant: Schema, **more: Schema) -> tuple[dict[str, Schema], dict[str, Schema]]:
    return {"signature_request": _SIGNATURE_REQUEST_OF_PARTICIPANT, role: participant}, more


def _signer_event(**more: Schema) -> tuple[dict[str, Schema], dict[str, Schema]]:
    return _participant_event("signer", _SIGNER, **more)


def _approver_event(**more: Schema) -> tuple[dict[str, Schema], dict[str, Schema]]:
    return _participant_event("approver", _APPROVER, **more)


def _envelope_event(**more: Schema) -> tuple[dict[str, Schema], dict[str, Schema]]:
    return _ENVELOPE, more


# Each event's required and optional top-level properties of `data`.
_PROPERTIES: Final[dict[str, tuple[dict[str, Schema], dict[str, Schema]]]] = {
    "signature_request.activated": _signature_request_event(),
    "signature_request.done": _signature_request_event(),
    "signature_request.expired": _signature_request_event(),
    "signature_request.reactivated": _signature_request_event(),
    "signature_request.approved": _signature_request_event(),
    "signature_request.reminder_executed": _signature_request_event(
        reminder=_object({}, {"executed_at": MOMENT, "signer_ids": _list_of(IDENTIFIER)})
    ),
    "signature_request.declined": _signature_request_event(
        decline_information=_object({}, {"signer_id": IDENTIFIER, "reason": TEXT, "declined_at": MOMENT})
    ),
    "signature_request.canceled": _signature_request_event(
        cancellation=_object({}, {"reason": TEXT, "custom_note": TEXT, "canceled_at": MOMENT})
    ),
    "signature_request.deleted": _signature_request_event(),
    "signature_request.permanently_deleted": (
        {
            "signature_request": _object(
                {"id": IDENTIFIER}, {"workspace_id": TEXT, "permanently_deleted_at": MOMENT, "status": STATUS}
            )
        },
        {},
    ),
    "signer.notified": _signer_event(),
    "signer.done": _signer_event(),
    "signer.link_opened": _signer_event(link_opened_at=MOMENT),
    "signer.sender_contacted": _signer_event(message=TEXT),
    "signer.identification_blocked": _signer_event(reason=TEXT),
    "signer.identification_failed": _signer_event(reason=TEXT),
    "signer.identification_succeeded": _signer_event(
        identification=_object({}, {"method": TEXT, "verified_at": MOMENT})
    ),
    "signer.identity_saved": _signer_event(identity_saved_at=MOMENT),
    "signer.error": _signer_event(reason=TEXT),
    "signer.declined": _signer_event(reason=TEXT),
    "contact.created": (
        {
            "contact": _object(
                {"id": IDENTIFIER},
                {**_PERSON_INFO["properties"], "company_name": TEXT, "created_at": MOMENT},
            )
        },
        {},
    ),
    "user.completed": (
        {
            "user": _object(
                {"id": IDENTIFIER},
                {
                    **_PERSON_INFO["properties"],
                    "status": STATUS,
                    "role": TEXT,
                    "created_at": MOMENT,
                    "workspaces": _list_of(_object({"id": IDENTIFIER}, {"name": TEXT})),
                },
            )
        },
        {},
    ),
    "approver.notified": _approver_event(),
    "approver.approved": _approver_event(),
    "approver.rejected": _approver_event(reason=TEXT),
    "electronic_seal.done": ({"electronic_seal": _ELECTRONIC_SEAL}, {}),
    "electronic_seal.error": (
        {"electronic_seal": _ELECTRONIC_SEAL},
        {"error": _object({}, {"code": TEXT, "message": TEXT})},
    ),
    "ENVELOPE_CREATED": _envelope_event(),
    "ENVELOPE_SENT": _envelope_event(recipients=_list_of(_RECIPIENT)),
    "ENVELOPE_OPENED": _envelope_event(recipient=_RECIPIENT),
    "ENVELOPE_SIGNED": _envelope_event(recipientEmail=TEXT, recipientName=TEXT),
    "ENVELOPE_COMPLETED": _envelope_event(
        documentUuid=IDENTIFIER, finalRevisionVersion={"type": "integer", "minimum": 0}
    ),
    "ENVELOPE_DECLINED": _envelope_event(decliner=_RECIPIENT, reason=TEXT),
    "ENVELOPE_CANCELED": _envelope_event(reason=TEXT),
}


def data_schema(event_name: str) -> Schema:
    """The schema of `data` for a catalog event (KeyError for a name outside the catalog)."""
    required, optional = _PROPERTIES[event_name]
    return {"$schema": DIALECT, "title": f"{event_name} data", **_object(required, optional)}


def violations(event_name: str, data: Mapping[str, Any]) -> dict[str, str]:
    """Where `data` breaks its event's schema: the path of each violation (`data.signer.id`), and why."""
    found: dict[str, str] = {}
    for error in _validator(event_name).iter_errors(data):
        path = field_path(["data", *error.absolute_path])
        if error.validator == "required":
            # One error per missing name, which jsonschema puts in its message only: found again here.
            required: list[str] = error.schema["required"] if isinstance(error.schema, dict) else []
            present = error.instance if isinstance(error.instance, dict) else {}
            for name in required:
                if name not in present:
                    found.setdefault(f"{path}.{name}", "is required")
        else:
            found.setdefault(path, _reason(error))
    return dict(sorted(found.items()))


def _reason(error: "ValidationError") -> str:
    if error.validator == "type":
        expected = error.validator_value if isinstance(error.validator_value, list) else [error.validator_value]
        return "must be " + " or ".join(str(kind) for kind in expected)
    if error.validator == "minLength":
        return "must not be empty"
    return error.message[:MAX_REASON_LENGTH]


@functools.cache
def _validator(event_name: str) -> "Validator":
    # Imported and compiled at the first event of each name checked: an API container that never
    # validates (HOOKRELAY_VALIDATE_EVENT_DATA false) does not pay jsonschema's import at cold start.
    from jsonschema import Draft202012Validator  # noqa: PLC0415 - see the comment above

    return Draft202012Validator(data_schema(event_name))
