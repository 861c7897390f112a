"""Creates the template's tables, queues, event bus and rules in moto, as template.yaml declares them.

Resources are created on first reference, so declaration order does not matter; each is named as
CloudFormation would leave it: its declared name, else `<stack>-<LogicalId>`.
"""

import json
from collections.abc import Callable
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


def default_name(stack_name: str, logical_id: str) -> str:
    return f"{stack_name}-{logical_id}"


class LocalResources:
    """The physical resources of one stack in the AWS endpoint the given session points at."""

    def __init__(self, template: Template, stack_name: str, client: Callable[[str], Any]):
        self._template = template
        self._stack_name = stack_name
        self._client = client
        self._physical: dict[str, str] = {}
        self._attributes: dict[tuple[str, str], str] = {}
        region = client("sqs").meta.region_name
        self.intrinsics = Intrinsics(
            ref=self.ref,
            get_att=self.get_att,
            pseudo={
                "AWS::StackName": stack_name,
                "AWS::Region": region,
                "AWS::AccountId": client("sts").get_caller_identity()["Account"],
                "AWS::Partition": "aws",
                "AWS::URLSuffix": "amazonaws.com",
            },
            parameters=template.parameter_defaults(),
        )
        self._creators: dict[str, Callable[[str, dict[str, Any]], None]] = {
            "AWS::DynamoDB::Table": self._create_table,
            "AWS::SQS::Queue": self._create_queue,
            "AWS::Events::EventBus": self._create_event_bus,
            "AWS::Events::Rule": self._create_rule,
        }

    def provision(self) -> None:
        """Create every resource of a type the local stack reproduces."""
        for logical_id, resource in self._template.resources.items():
            if resource.get("Type") in self._creators:
                self.ref(logical_id)

    def ref(self, logical_id: str) -> str:
        if logical_id not in self._physical:
            resource = self._template.resource(logical_id)
            creator = self._creators.get(resource.get("Type", ""))
            if creator is None:
                raise TemplateError(f"{logical_id} ({resource.get('Type')}) does not exist in the local stack")
            creator(logical_id, self.intrinsics.resolve(resource.get("Properties") or {}))
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

    def function_environment(self, function_ids: list[str]) -> dict[str, str]:
        """The environment of the given functions, resolved; they share one process locally."""
        environment: dict[str, str] = {}
        for function_id in function_ids:
            for name, value in self._template.function(function_id).environment.items():
                resolved = str(self.intrinsics.resolve(value))
                if environment.get(name, resolved) != resolved:
                    raise TemplateError(f"{name} differs between functions; the local stack runs them in one process")
                environment[name] = resolved
        return environment
