"""Which stack a command acts on, and its resources by their template.yaml logical ids.

A deployed stack (`--stack NAME [--region R]`) is read through CloudFormation; the local stack
(`--local [--aws-endpoint URL]`) names its resources as `hookrelay local up` created them: the
template's TableName/QueueName with the local stack's name, else `<stack>-<LogicalId>`.
"""

import argparse
import functools
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, overload

import boto3

from hookrelay.aws import Table, python_values

if TYPE_CHECKING:
    from mypy_boto3_cloudformation import CloudFormationClient
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_sqs import SQSClient

    from hookrelay_cli.template import Intrinsics, Template

DEFAULT_STACK = "hookrelay"
DEFAULT_LOCAL_AWS_ENDPOINT = "http://127.0.0.1:3001"
DEFAULT_LOCAL_API_URL = "http://127.0.0.1:3000"
_NAME_PROPERTIES = {
    "AWS::DynamoDB::Table": "TableName",
    "AWS::SQS::Queue": "QueueName",
    "AWS::Events::EventBus": "Name",
}


class TargetError(Exception):
    """The stack or one of its resources cannot be found."""


def default_template() -> Path:
    here = Path.cwd() / "template.yaml"
    return here if here.exists() else Path(__file__).resolve().parents[2] / "template.yaml"


def aws_session(region: str | None) -> boto3.session.Session:
    """The operator's own AWS configuration (profile, credentials), for a deployed stack."""
    return boto3.session.Session(region_name=region)


@dataclass(frozen=True)
class Target:
    session: boto3.session.Session
    stack_name: str
    is_local: bool = False
    endpoint_url: str | None = None

    @property
    def description(self) -> str:
        return f"the local stack at {self.endpoint_url}" if self.is_local else f"stack {self.stack_name}"

    @overload
    def client(self, service: Literal["cloudformation"]) -> "CloudFormationClient": ...
    @overload
    def client(self, service: Literal["dynamodb"]) -> "DynamoDBClient": ...
    @overload
    def client(self, service: Literal["sqs"]) -> "SQSClient": ...
    @overload
    def client(self, service: str) -> Any: ...
    def client(self, service: str) -> Any:
        return self.session.client(service, endpoint_url=self.endpoint_url)  # type: ignore[call-overload]

    def physical_id(self, logical_id: str) -> str:
        """As CloudFormation reports it: a table's name, a queue's URL."""
        return self._local_physical_id(logical_id) if self.is_local else self._deployed_physical_id(logical_id)

    def table(self, logical_id: str) -> Table:
        return self.table_named(self.physical_id(logical_id))

    def table_named(self, name: str) -> Table:
        return Table(name, python_values(self.client("dynamodb")))

    def function_environment(self, logical_id: str) -> dict[str, str]:
        """A function's environment variables: as Lambda has them, or as `hookrelay local up` sets them from
        the template (without the overrides of the environment it was started in)."""
        if not self.is_local:
            configuration = self.client("lambda").get_function_configuration(FunctionName=self.physical_id(logical_id))
            return dict(configuration.get("Environment", {}).get("Variables", {}))
        from hookrelay_cli.template import TemplateError  # noqa: PLC0415

        template, intrinsics = self._local_intrinsics(f"the environment of {logical_id}")
        try:
            return {
                name: str(intrinsics.resolve(value, f"{logical_id}.Environment.{name}"))
                for name, value in template.function(logical_id).environment.items()
            }
        except TemplateError as error:
            raise TargetError(str(error)) from None

    def queue_url(self, logical_id: str) -> str:
        return self.physical_id(logical_id)

    def queue_arn(self, logical_id: str) -> str:
        attributes = self.client("sqs").get_queue_attributes(
            QueueUrl=self.queue_url(logical_id), AttributeNames=["QueueArn"]
        )
        return str(attributes["Attributes"]["QueueArn"])

    def api_url(self) -> str:
        """The HTTP API's base URL: the stack's ApiUrl output (the local stack's default address)."""
        if self.is_local:
            return DEFAULT_LOCAL_API_URL
        stacks = self.client("cloudformation").describe_stacks(StackName=self.stack_name)["Stacks"]
        outputs = {output["OutputKey"]: output["OutputValue"] for output in stacks[0].get("Outputs", [])}
        if "ApiUrl" not in outputs:
            raise TargetError(f"stack {self.stack_name} has no ApiUrl output")
        return str(outputs["ApiUrl"])

    def _deployed_physical_id(self, logical_id: str) -> str:
        detail = self.client("cloudformation").describe_stack_resource(
            StackName=self.stack_name, LogicalResourceId=logical_id
        )["StackResourceDetail"]
        return str(detail["PhysicalResourceId"])

    def _local_physical_id(self, logical_id: str) -> str:
        from hookrelay_cli.local.resources import default_name  # noqa: PLC0415
        from hookrelay_cli.template import TemplateError  # noqa: PLC0415

        template, intrinsics = self._local_intrinsics(f"the name of {logical_id}", refer=False)
        try:
            resource = template.resource(logical_id)
        except TemplateError as error:
            raise TargetError(str(error)) from None
        name_property = _NAME_PROPERTIES.get(str(resource.get("Type")))
        if name_property is None:
            raise TargetError(f"{logical_id} ({resource.get('Type')}) is not a table, queue or event bus")
        declared = (resource.get("Properties") or {}).get(name_property)
        try:
            name = str(intrinsics.resolve(declared) if declared else default_name(self.stack_name, logical_id))
        except TemplateError as error:
            raise TargetError(str(error)) from None
        if name_property == "QueueName":
            return str(self.client("sqs").get_queue_url(QueueName=name)["QueueUrl"])
        return name

    def _local_intrinsics(self, what: str, *, refer: bool = True) -> tuple["Template", "Intrinsics"]:
        """The template, and its intrinsics resolved as the local stack resolves them: with `refer`, a Ref
        is the local physical id of a table, queue or event bus; any other reference is refused."""
        from hookrelay_cli.template import Intrinsics, TemplateError  # noqa: PLC0415

        def unavailable(name: str, *_: str) -> str:
            raise TemplateError(f"{what} depends on {name}, which the CLI cannot resolve")

        template = _local_template()
        pseudo = {"AWS::StackName": self.stack_name, "AWS::Region": self.session.region_name, "AWS::Partition": "aws"}
        intrinsics = Intrinsics(
            ref=self.physical_id if refer else unavailable,
            get_att=unavailable,
            pseudo=pseudo,
            parameters=template.parameter_defaults(),
        )
        return template, intrinsics


@functools.cache
def _local_template() -> "Template":
    # The local extras (moto, PyYAML) load only for --local.
    from hookrelay_cli.template import Template  # noqa: PLC0415

    return Template.read(default_template())


def add_target_arguments(parser: argparse.ArgumentParser) -> None:
    """--stack/--region for a deployed stack, or --local/--aws-endpoint for `hookrelay local up`."""
    group = parser.add_argument_group("target stack")
    choice = group.add_mutually_exclusive_group()
    choice.add_argument(
        "--stack", metavar="NAME", default=DEFAULT_STACK, help="deployed stack name (default %(default)s)"
    )
    choice.add_argument("--local", action="store_true", help="the running local stack (`hookrelay local up`)")
    group.add_argument(
        "--region", metavar="REGION", help="AWS region of the deployed stack (default: your AWS configuration)"
    )
    group.add_argument(
        "--aws-endpoint",
        metavar="URL",
        default=DEFAULT_LOCAL_AWS_ENDPOINT,
        help="with --local: the local stack's AWS endpoint (default %(default)s)",
    )


def target_of(arguments: argparse.Namespace) -> Target:
    if not arguments.local:
        return Target(session=aws_session(arguments.region), stack_name=arguments.stack)
    from hookrelay_cli.local.stack import LOCAL_CREDENTIALS, LOCAL_STACK_NAME  # noqa: PLC0415

    session = boto3.session.Session(
        aws_access_key_id=LOCAL_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=LOCAL_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        region_name=LOCAL_CREDENTIALS["AWS_DEFAULT_REGION"],
    )
    return Target(session=session, stack_name=LOCAL_STACK_NAME, is_local=True, endpoint_url=arguments.aws_endpoint)
