"""IAM per function: every AWS call a function makes is checked against its role, as AWS checks it.

The role is the translated template's (SAM policy templates expanded, ARNs resolved to the local
stack's); moto's policy evaluator decides. `enforce_iam` installs the check on a boto3 session, so
every client made from it afterwards refuses what the role does not allow, with the error AWS gives:
`AccessDeniedException` (`AccessDenied` for SQS) naming the role, the function, the action and the
resource.
"""

import functools
import json
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import boto3
from botocore.exceptions import ClientError
from botocore.model import OperationModel
from moto.iam.access_control import IAMPolicy, PermissionResult

if TYPE_CHECKING:
    # Only the stack builds permissions from the template; a function container, which only enforces
    # them, does not pay for importing the template's reader and the SAM translator.
    from hookrelay_cli.local.resources import LocalResources
    from hookrelay_cli.template import Template

# Local only: whether each function's AWS calls are checked against its role (on unless "off").
IAM_VARIABLE = "HOOKRELAY_LOCAL_IAM"
_SWITCH = {"on": True, "true": True, "1": True, "off": False, "false": False, "0": False}

# The AWS managed policies SAM attaches by itself, as AWS publishes them (no AWS call offline).
_LOGS_WRITE = ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"]
_MANAGED_POLICY_ACTIONS = {
    "service-role/AWSLambdaBasicExecutionRole": _LOGS_WRITE,
    "AWSXrayWriteOnlyAccess": [
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
        "xray:GetSamplingRules",
        "xray:GetSamplingTargets",
        "xray:GetSamplingStatisticSummaries",
    ],
    "service-role/AWSLambdaSQSQueueExecutionRole": [
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:GetQueueAttributes",
        *_LOGS_WRITE,
    ],
}
_MANAGED_POLICY_PREFIX = "arn:aws:iam::aws:policy/"

# IAM has no action of its own for these: each item of the request needs its single-item action.
_TRANSACT_ITEM_ACTIONS = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
}
# SQS batch operations are authorised by their single-message action.
_SQS_BATCH_ACTIONS = {
    "SendMessageBatch": "SendMessage",
    "DeleteMessageBatch": "DeleteMessage",
    "ChangeMessageVisibilityBatch": "ChangeMessageVisibility",
}
# The error code each service answers a refused call with.
_DENIED = {"sqs": ("AccessDenied", 403)}
_DENIED_DEFAULT = ("AccessDeniedException", 400)


def iam_enforced() -> bool:
    value = os.environ.get(IAM_VARIABLE, "on").strip().lower()
    if value not in _SWITCH:
        raise ValueError(f"{IAM_VARIABLE} must be on or off, not {value!r}")
    return _SWITCH[value]


@dataclass(frozen=True)
class Access:
    """One IAM authorisation a call needs: an action on a resource ARN (`*` when it has none)."""

    action: str
    resource: str


@dataclass(frozen=True)
class FunctionPermissions:
    """What one function's role allows, and who AWS would say asked."""

    function_id: str
    function_name: str
    role_name: str
    region: str
    account_id: str
    # JSON policy documents: plain data, so that a function container's process can be handed them.
    policy_documents: tuple[str, ...]

    @functools.cached_property
    def policies(self) -> tuple[IAMPolicy, ...]:
        return tuple(IAMPolicy(document) for document in self.policy_documents)

    @property
    def principal(self) -> str:
        return f"arn:aws:sts::{self.account_id}:assumed-role/{self.role_name}/{self.function_name}"

    def allows(self, access: Access) -> bool:
        results = {policy.is_action_permitted(access.action, access.resource) for policy in self.policies}
        return PermissionResult.PERMITTED in results and PermissionResult.DENIED not in results


def function_permissions(template: "Template", resources: "LocalResources", function_id: str) -> FunctionPermissions:
    """The statements of a function's role in the translated template, with the local stack's ARNs."""
    from hookrelay_cli.template import TemplateError  # noqa: PLC0415 - see the TYPE_CHECKING imports

    role_id = template.function(function_id).role_id
    where = f"Resources.{role_id}.Properties"
    properties = resources.intrinsics.resolve(template.resource(role_id).get("Properties") or {}, where)
    documents = [policy["PolicyDocument"] for policy in properties.get("Policies") or []]
    for arn in properties.get("ManagedPolicyArns") or []:
        actions = _MANAGED_POLICY_ACTIONS.get(str(arn).removeprefix(_MANAGED_POLICY_PREFIX))
        if actions is None:
            raise TemplateError(f"{where}.ManagedPolicyArns: the local stack does not know the policy {arn}")
        documents.append({"Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*"}]})
    return FunctionPermissions(
        function_id=function_id,
        function_name=resources.ref(function_id),
        role_name=resources.ref(role_id),
        region=resources.region,
        account_id=resources.account_id,
        policy_documents=tuple(json.dumps(document) for document in documents),
    )


def enforce_iam(session: boto3.session.Session, permissions: FunctionPermissions) -> None:
    """Check every call of the clients made from `session` from now on against the function's role."""

    def check(params: dict[str, Any], model: OperationModel, **_: Any) -> None:
        service = model.service_model.signing_name
        for access in required_access(service, model.name, params, permissions.region, permissions.account_id):
            if not permissions.allows(access):
                raise access_denied(service, model.name, permissions, access)

    session.events.register("before-parameter-build", check)


def access_denied(service: str, operation: str, permissions: FunctionPermissions, access: Access) -> ClientError:
    code, status = _DENIED.get(service, _DENIED_DEFAULT)
    message = (
        f"User: {permissions.principal} is not authorized to perform: {access.action} on resource: "
        f"{access.resource} because no identity-based policy allows the {access.action} action"
    )
    response: Any = {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}}
    return ClientError(response, operation)


def required_access(service: str, operation: str, params: dict[str, Any], region: str, account_id: str) -> list[Access]:
    """The IAM authorisations an AWS call needs: its action on every resource it names."""
    if service == "dynamodb":
        return _dynamodb_access(operation, params, f"arn:aws:dynamodb:{region}:{account_id}:table/")
    if service == "sqs":
        return _sqs_access(operation, params, region, account_id)
    if service == "events" and operation == "PutEvents":
        buses = {str(entry.get("EventBusName") or "default") for entry in params.get("Entries") or []}
        bus_prefix = f"arn:aws:events:{region}:{account_id}:event-bus/"
        return [
            Access("events:PutEvents", bus if bus.startswith("arn:") else bus_prefix + bus) for bus in sorted(buses)
        ]
    if service == "sts" and operation == "GetCallerIdentity":
        return []  # needs no permission
    return [Access(f"{service}:{operation}", "*")]


def _dynamodb_access(operation: str, params: dict[str, Any], table_prefix: str) -> list[Access]:
    if operation == "TransactWriteItems":
        return [
            Access(f"dynamodb:{_TRANSACT_ITEM_ACTIONS[kind]}", table_prefix + str(request["TableName"]))
            for item in params.get("TransactItems") or []
            for kind, request in item.items()
        ]
    if operation == "TransactGetItems":
        return [
            Access("dynamodb:GetItem", table_prefix + str(item["Get"]["TableName"]))
            for item in params.get("TransactItems") or []
        ]
    if operation in {"BatchGetItem", "BatchWriteItem"}:
        return [Access(f"dynamodb:{operation}", table_prefix + str(name)) for name in params.get("RequestItems") or {}]
    if "TableName" not in params:
        return [Access(f"dynamodb:{operation}", "*")]
    resource = table_prefix + str(params["TableName"])
    if params.get("IndexName"):
        resource += f"/index/{params['IndexName']}"
    return [Access(f"dynamodb:{operation}", resource)]


def _sqs_access(operation: str, params: dict[str, Any], region: str, account_id: str) -> list[Access]:
    action = f"sqs:{_SQS_BATCH_ACTIONS.get(operation, operation)}"
    if "QueueUrl" in params:
        # https://sqs.<region>.amazonaws.com/<account>/<name> (moto: http://<host>/<account>/<name>)
        queue_account, _, name = urlsplit(str(params["QueueUrl"])).path.strip("/").partition("/")
        return [Access(action, f"arn:aws:sqs:{region}:{queue_account}:{name}")]
    if "QueueName" in params:
        owner = str(params.get("QueueOwnerAWSAccountId") or account_id)
        return [Access(action, f"arn:aws:sqs:{region}:{owner}:{params['QueueName']}")]
    return [Access(action, "*")]
