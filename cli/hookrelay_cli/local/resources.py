"""Creates the template's tables, queues and their policies, event bus and rules, and log groups in moto, as the
translated template declares them.

Resources are created on first reference, so declaration order does not matter; each is named as
CloudFormation would leave it: its declared name, else `<stack>-<LogicalId>`. Functions and their
roles are not created in moto (local.functions runs the code, local.iam checks the roles), but have
their names and ARNs, so that what refers to them resolves.
"""

import json
from collections.abc import Callable, Mapping
from typing import Any

from hookrelay_cli.template import Intrinsics, Template, TemplateError

_TABLE_ARGUMENTS = (
    "KeySchema",
    "AttributeDefinitions",
    "BillingMode",
    "GlobalSecondaryIndexes",
    "LocalSecondaryIndexes",
    "ProvisionedThroughput",
)
_QUEUE_SKIPPED = frozenset({"QueueName", "Tags", "SqsManagedSseEnabled", "KmsMasterKeyId"})
# Named, not created: the functions run in-process (local.functions), their roles are checked by local.iam.
_NAMED_ONLY = {
    "AWS::Lambda::Function": ("FunctionName", "arn:aws:lambda:{region}:{account}:function:{name}"),
    "AWS::IAM::Role": ("RoleName", "arn:aws:iam::{account}:role/{name}"),
}


def default_name(stack_name: str, logical_id: str) -> str:
    return f"{stack_name}-{logical_id}"


class LocalResources:
    """The physical resources of one stack in the AWS endpoint the given session points at."""

    def __init__(
        self,
        template: Template,
        stack_name: str,
        client: Callable[[str], Any],
        parameter_overrides: Mapping[str, str] | None = None,
    ):
        self._template = template
        self._stack_name = stack_name
        self._client = client
        self._physical: dict[str, str] = {}
        self._attributes: dict[tuple[str, str], str] = {}
        self.region: str = client("sqs").meta.region_name
        self.account_id: str = client("sts").get_caller_identity()["Account"]
        self.intrinsics = Intrinsics(
            ref=self.ref,
            get_att=self.get_att,
            pseudo={
                "AWS::StackName": stack_name,
                "AWS::Region": self.region,
                "AWS::AccountId": self.account_id,
                "AWS::Partition": "aws",
                "AWS::URLSuffix": "amazonaws.com",
            },
            parameters={**template.parameter_defaults(), **(parameter_overrides or {})},
            conditions=template.conditions,
        )
        self._creators: dict[str, Callable[[str, dict[str, Any]], None]] = {
            "AWS::DynamoDB::Table": self._create_table,
            "AWS::SQS::Queue": self._create_queue,
            "AWS::SQS::QueuePolicy": self._create_queue_policy,
            "AWS::Events::EventBus": self._create_event_bus,
            "AWS::Events::Rule": self._create_rule,
            "AWS::Logs::LogGroup": self._create_log_group,
        }

    def provision(self) -> None:
        """Create every resource of a type the local stack reproduces, but for the schedules (see workers)."""
        for logical_id, resource in self._template.resources.items():
            if resource.get("Type") in self._creators and not _is_schedule(resource) and self._exists(logical_id):
                self.ref(logical_id)

    def _exists(self, logical_id: str) -> bool:
        condition = self._template.resource(logical_id).get("Condition")
        return condition is None or self.intrinsics.condition(str(condition), f"Resources.{logical_id}.Condition")

    def ref(self, logical_id: str) -> str:
        if logical_id not in self._physical:
            resource = self._template.resource(logical_id)
            if resource.get("Type") in _NAMED_ONLY:
                self._name_only(logical_id, resource)
                return self._physical[logical_id]
            creator = self._creators.get(resource.get("Type", ""))
            if creator is None or _is_schedule(resource):
                raise TemplateError(f"{logical_id} ({resource.get('Type')}) does not exist in the local stack")
            if not self._exists(logical_id):
                raise TemplateError(f"{logical_id} is referred to but its condition leaves it out of the stack")
            where = f"Resources.{logical_id}.Properties"
            creator(logical_id, self.intrinsics.resolve(resource.get("Properties") or {}, where))
        return self._physical[logical_id]

    def get_att(self, logical_id: str, attribute: str) -> str:
        self.ref(logical_id)
        try:
            return self._attributes[(logical_id, attribute)]
        except KeyError:
            raise TemplateError(f"!GetAtt {logical_id}.{attribute} is not available locally") from None

    def _name(self, logical_id: str, properties: dict[str, Any], key: str) -> str:
        return str(properties.get(key) or default_name(self._stack_name, logical_id))

    def _create_table(self, logical_id: str, properties: dict[str, Any]) -> None:
        dynamodb = self._client("dynamodb")
        name = self._name(logical_id, properties, "TableName")
        arguments = {key: properties[key] for key in _TABLE_ARGUMENTS if key in properties}
        description = dynamodb.create_table(TableName=name, **arguments)["TableDescription"]
        ttl = properties.get("TimeToLiveSpecification")
        if ttl:
            dynamodb.update_time_to_live(TableName=name, TimeToLiveSpecification=ttl)
        self._physical[logical_id] = name
        self._attributes[(logical_id, "Arn")] = description["TableArn"]

    def _create_queue(self, logical_id: str, properties: dict[str, Any]) -> None:
        sqs = self._client("sqs")
        name = self._name(logical_id, properties, "QueueName")
        attributes = {
            key: json.dumps(value) if isinstance(value, dict) else str(value)
            for key, value in properties.items()
            if key not in _QUEUE_SKIPPED
        }
        url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        self._physical[logical_id] = url
        self._attributes.update(
            {(logical_id, "Arn"): arn, (logical_id, "QueueName"): name, (logical_id, "QueueUrl"): url}
        )

    def _create_queue_policy(self, logical_id: str, properties: dict[str, Any]) -> None:
        # One policy document for each of the queues (by URL), as CloudFormation sets it.
        policy = json.dumps(properties["PolicyDocument"])
        for queue_url in properties["Queues"]:
            self._client("sqs").set_queue_attributes(QueueUrl=queue_url, Attributes={"Policy": policy})
        self._physical[logical_id] = default_name(self._stack_name, logical_id)

    def _create_event_bus(self, logical_id: str, properties: dict[str, Any]) -> None:
        name = self._name(logical_id, properties, "Name")
        arn = self._client("events").create_event_bus(Name=name)["EventBusArn"]
        self._physical[logical_id] = name
        self._attributes.update({(logical_id, "Arn"): arn, (logical_id, "Name"): name})

    def _create_rule(self, logical_id: str, properties: dict[str, Any]) -> None:
        events = self._client("events")
        name = self._name(logical_id, properties, "Name")
        bus = properties.get("EventBusName", "default")
        rule: dict[str, Any] = {"Name": name, "EventBusName": bus, "State": properties.get("State", "ENABLED")}
        if "EventPattern" in properties:
            rule["EventPattern"] = json.dumps(properties["EventPattern"])
        if "ScheduleExpression" in properties:
            rule["ScheduleExpression"] = properties["ScheduleExpression"]
        arn = events.put_rule(**rule)["RuleArn"]
        targets = properties.get("Targets") or []
        if targets:
            events.put_targets(Rule=name, EventBusName=bus, Targets=targets)
        self._physical[logical_id] = name
        self._attributes[(logical_id, "Arn")] = arn

    def _create_log_group(self, logical_id: str, properties: dict[str, Any]) -> None:
        logs = self._client("logs")
        name = self._name(logical_id, properties, "LogGroupName")
        logs.create_log_group(logGroupName=name)
        if "RetentionInDays" in properties:
            logs.put_retention_policy(logGroupName=name, retentionInDays=int(properties["RetentionInDays"]))
        self._physical[logical_id] = name
        self._attributes[(logical_id, "Arn")] = f"arn:aws:logs:{self.region}:{self.account_id}:log-group:{name}:*"

    def _name_only(self, logical_id: str, resource: dict[str, Any]) -> None:
        name_property, arn_format = _NAMED_ONLY[resource["Type"]]
        declared = (resource.get("Properties") or {}).get(name_property)
        where = f"Resources.{logical_id}.Properties.{name_property}"
        name = str(self.intrinsics.resolve(declared, where) if declared else default_name(self._stack_name, logical_id))
        self._physical[logical_id] = name
        self._attributes[(logical_id, "Arn")] = arn_format.format(
            region=self.region, account=self.account_id, name=name
        )

    def function_environment(self, function_ids: list[str]) -> dict[str, str]:
        """The environment of the given functions, resolved; they share one process locally."""
        environment: dict[str, str] = {}
        for function_id in function_ids:
            for name, value in self._template.function(function_id).environment.items():
                resolved = str(self.intrinsics.resolve(value, f"{function_id}.Environment.{name}"))
                if environment.get(name, resolved) != resolved:
                    raise TemplateError(f"{name} differs between functions; the local stack runs them in one process")
                environment[name] = resolved
        return environment


def _is_schedule(resource: dict[str, Any]) -> bool:
    """A schedule rule: its target is a function, which a local timer runs (moto runs no schedules)."""
    return resource.get("Type") == "AWS::Events::Rule" and "ScheduleExpression" in (resource.get("Properties") or {})
