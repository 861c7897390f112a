"""The local stack: moto on 127.0.0.1, the template's resources in it, the real handlers in containers
(a process each, as `local up` runs them) or in-process (the integration tests)."""

import os
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from functools import cache, partial
from pathlib import Path
from typing import Any

from hookrelay import aws
from hookrelay.api_keys import issue_key
from hookrelay.aws import Table, python_values
from hookrelay.models.portal import PORTAL_SESSION_MAX_SECONDS, PortalSession, PortalSessionRequest
from hookrelay.portal import open_session
from hookrelay.settings import get_settings
from hookrelay.store.api_keys import DynamoApiKeyStore
from hookrelay_cli.local.dynamodb import DynamoDBRules, enforce_dynamodb_rules
from hookrelay_cli.local.fair_queues import keep_queues_fair
from hookrelay_cli.local.functions import ContainerFunction, Function, LocalFunction, ScalingFunction
from hookrelay_cli.local.gateway import Gateway, StageThrottle
from hookrelay_cli.local.hosts import HOSTS_FILE_VARIABLE, use_hosts_file
from hookrelay_cli.local.iam import function_permissions, iam_enforced
from hookrelay_cli.local.moto_costs import keep_moto_costs_flat
from hookrelay_cli.local.moto_servers import (
    DYNAMODB_ENDPOINT_VARIABLE,
    DynamoDBForwarding,
    DynamoDBProcess,
    MotoServer,
    moto_app,
)
from hookrelay_cli.local.resources import LocalResources
from hookrelay_cli.local.runtime import container_niceness
from hookrelay_cli.local.sqs_move_tasks import enable_message_move_tasks
from hookrelay_cli.local.tracing import (
    DAEMON_ADDRESS_VARIABLE,
    TRACES_FILE_VARIABLE,
    TraceCollector,
    trace_functions,
)
from hookrelay_cli.local.workers import DUPLICATE_RATE_VARIABLE, QueuePoller, ScheduleTimer, Worker, duplicate_rate
from hookrelay_cli.template import Template, TemplateError

LOCAL_STACK_NAME = "hookrelay-local"
# Local only: how long a failed SQS record stays invisible before it is received again (default: the
# queue's own visibility timeout, as on AWS).
FAILED_VISIBILITY_VARIABLE = "HOOKRELAY_LOCAL_FAILED_VISIBILITY_SECONDS"
# Local only: functions whose queues are not polled (e.g. DeliveryFunction, to inspect what ingest enqueues).
PAUSED_FUNCTIONS_VARIABLE = "HOOKRELAY_LOCAL_PAUSED_FUNCTIONS"
# Local only: run every schedule of the template (the sweeper's every minute) this often instead.
SCHEDULE_SECONDS_VARIABLE = "HOOKRELAY_LOCAL_SCHEDULE_SECONDS"
# Local only: pollers per SQS event source, each invoking a container of its own, so that up to this
# many batches of a queue are handled at once (Lambda runs up to the mapping's MaximumConcurrency).
POLLERS_PER_QUEUE_VARIABLE = "HOOKRELAY_LOCAL_POLLERS_PER_QUEUE"
# Local only: containers per function behind the gateway, for requests that arrive together (Lambda
# starts one per concurrent request, up to the account's concurrency).
GATEWAY_CONTAINERS_VARIABLE = "HOOKRELAY_LOCAL_GATEWAY_CONTAINERS"
DEFAULT_GATEWAY_CONTAINERS = "4"
# Local only: template parameters other than their defaults, as `sam deploy --parameter-overrides` takes
# them ("ApiThrottlingRateLimit=20 ApiReservedConcurrency=2"): e.g. the stage's throttling and the
# functions' reserved concurrency scaled down to what this machine serves.
PARAMETER_OVERRIDES_VARIABLE = "HOOKRELAY_LOCAL_PARAMETER_OVERRIDES"
DEV_TEAM = "dev"
# On stop, what an invocation in flight is given to finish before its container is killed.
STOP_GRACE_SECONDS = 2.0
# What the local stack sets unless the caller's environment already does (SPEC §7).
LOCAL_DEFAULTS = {
    "HOOKRELAY_ALLOW_PRIVATE_ENDPOINTS": "true",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_DEV": "false",
}
# moto accepts any credentials; these keep boto3 from looking for real ones.
LOCAL_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "local",
    "AWS_SECRET_ACCESS_KEY": "local",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def use_local_credentials() -> None:
    os.environ.pop("AWS_PROFILE", None)
    os.environ.update(LOCAL_CREDENTIALS)


@contextmanager
def local_aws(host: str = "127.0.0.1", port: int = 0, dynamodb_defaults: DynamoDBRules | None = None) -> Iterator[str]:
    """Run moto (DynamoDB in a child process, see local.moto_servers) and point every boto3 client of
    this process, and of the processes it starts, at it (never at real AWS); yield the one endpoint
    that serves every service.

    DynamoDB follows the rules of the HOOKRELAY_LOCAL_* variables, `dynamodb_defaults` (else none)
    where they are unset; the effective values are set in the environment, for LocalStack.create and
    the containers to see the same.
    """
    rules = DynamoDBRules.from_environment(dynamodb_defaults)
    os.environ.update(rules.environment())
    dynamodb = DynamoDBProcess(rules)
    try:
        server = MotoServer(host, port, DynamoDBForwarding(moto_app(), dynamodb.endpoint))
        server.start()
        try:
            use_local_credentials()
            os.environ["AWS_ENDPOINT_URL"] = server.endpoint
            os.environ[DYNAMODB_ENDPOINT_VARIABLE] = dynamodb.endpoint
            yield server.endpoint
        finally:
            server.stop()
    finally:
        dynamodb.stop()


def parameter_overrides(text: str) -> dict[str, str]:
    overrides = {}
    for pair in text.split():
        name, equals, value = pair.partition("=")
        if not (name and equals):
            raise ValueError(f"{PARAMETER_OVERRIDES_VARIABLE} takes Name=value pairs separated by spaces, not {pair!r}")
        overrides[name] = value
    return overrides


def pollers_per_queue() -> int:
    return at_least_one(POLLERS_PER_QUEUE_VARIABLE, os.environ.get(POLLERS_PER_QUEUE_VARIABLE, "1"))


def polled_concurrency(template: Template, pollers: int) -> dict[str, str]:
    """The reserved-concurrency parameters of the queues' functions, valued at the containers the stack runs.

    Locally such a function runs one container per poller of each of its event sources (the delivery
    function's two lanes: its queue's and the slow lane's), not the hundreds its parameter reserves on
    AWS; settings that the template derives from that parameter get the local figure (the delivery
    function spaces its rate-limit writes by HOOKRELAY_DELIVERY_CONTAINERS: spaced for 400 containers,
    a lone local one would take a subscription's slots slower than its rate)."""
    defaults = template.parameter_defaults()

    def resolved(value: Any) -> int:
        return int(defaults[value["Ref"]]) if isinstance(value, dict) else int(value)

    containers: dict[str, int] = {}
    for source in template.queue_sources():
        reserved = template.reserved_concurrency(source.function_id)
        if isinstance(reserved, dict) and (name := reserved.get("Ref")) in defaults:
            maximum = source.maximum_concurrency
            polled = pollers if maximum is None else min(pollers, resolved(maximum))
            containers[name] = containers.get(name, 0) + polled
    return {name: str(min(count, int(defaults[name]))) for name, count in containers.items()}


def own_clients() -> Callable[[str], Any]:
    """Clients, one per service, for the stack's own calls to moto (creating the resources, polling the
    queues, the development key): with botocore's own timeouts, not the functions' (hookrelay.aws), which
    a moto server busy on a small machine can outlast, and a read timeout (60 s) longer than any long
    poll (SQS waits 20 s at most). From hookrelay.aws's session, so that the hooks installed on it
    (local.faults) see these calls too."""
    return cache(lambda service: aws.session().client(service))


def at_least_one(variable: str, text: str) -> int:
    if not text.strip().isdigit() or int(text) < 1:
        raise ValueError(f"{variable} must be a whole number of at least 1, not {text!r}")
    return int(text)


@dataclass
class LocalStack:
    template: Template
    resources: LocalResources
    aws_endpoint: str
    # The stack's own clients (own_clients), not its functions'.
    clients: Callable[[str], Any]
    # Whether the functions' invocations are traced (always in containers; in-process with
    # HOOKRELAY_LOCAL_TRACES_FILE).
    traced: bool = False
    # Each function container in a process of its own, ended at its Timeout (else all in this process).
    containers: bool = False
    trace_collector: TraceCollector | None = None
    functions: dict[str, Function] = field(default_factory=dict)
    workers: list[Worker] = field(default_factory=list)
    _started_containers: list[ContainerFunction] = field(default_factory=list)

    @classmethod
    def create(cls, template_path: Path, aws_endpoint: str, *, containers: bool = False) -> "LocalStack":
        """Create the resources, then set the functions' environment, as a deployment would.

        With `containers`, `aws_endpoint` must be a server the containers' processes can reach.
        """
        template = Template.read(template_path)
        if containers:
            container_niceness()  # a value that is not one stops the stack here, not each container
        overrides = parameter_overrides(os.environ.get(PARAMETER_OVERRIDES_VARIABLE, ""))
        if unknown := overrides.keys() - template.parameter_defaults().keys():
            names = ", ".join(sorted(unknown))
            raise TemplateError(f"{PARAMETER_OVERRIDES_VARIABLE}: template.yaml has no parameter {names}")
        clients = own_clients()
        resources = LocalResources(template, LOCAL_STACK_NAME, clients, overrides)
        resources.provision()
        function_ids = template.function_ids()
        for name, value in LOCAL_DEFAULTS.items():
            os.environ.setdefault(name, value)
        if hosts_file := os.environ.get(HOSTS_FILE_VARIABLE):
            use_hosts_file(Path(hosts_file))
        # Settings the template gives as plain values or as a parameter (POWERTOOLS_LOG_LEVEL: the
        # LogLevel parameter) may be overridden from the caller's environment (HOOKRELAY_RETRY_SCHEDULE,
        # ...); names of the stack's resources always come from the stack.
        parameters = template.parameter_defaults()
        knobs = {
            name
            for function_id in function_ids
            for name, value in template.function(function_id).environment.items()
            if not isinstance(value, dict) or value.get("Ref") in parameters
        }
        polled = {
            name: concurrency
            for name, concurrency in polled_concurrency(template, pollers_per_queue()).items()
            if name not in overrides
        }
        environment = resources.function_environment(function_ids) | {
            name: polled[value["Ref"]]
            for function_id in function_ids
            for name, value in template.function(function_id).environment.items()
            if isinstance(value, dict) and value.get("Ref") in polled
        }
        os.environ.update(
            {name: os.environ.get(name, value) if name in knobs else value for name, value in environment.items()}
        )
        enforce_dynamodb_rules(DynamoDBRules.from_environment())
        keep_moto_costs_flat()
        enable_message_move_tasks()
        keep_queues_fair()
        traces_file = os.environ.get(TRACES_FILE_VARIABLE)
        collector = TraceCollector(Path(traces_file) if traces_file else None) if containers or traces_file else None
        if collector and not containers:
            # Before any function loads: powertools' Tracer decides at import whether it traces.
            trace_functions(collector.address, template_path.parent)
        stack = cls(
            template=template,
            resources=resources,
            aws_endpoint=aws_endpoint,
            clients=clients,
            traced=collector is not None,
            containers=containers,
            trace_collector=collector,
        )
        stack.functions = {function_id: stack.function(function_id) for function_id in function_ids}
        if collector:
            # First, so that it stops last: it keeps the segments of every invocation before it.
            stack.workers.append(collector)
        stack.workers.extend(stack.queue_pollers())
        stack.workers.extend(stack.schedule_timers())
        return stack

    def function(self, function_id: str, container: int = 0) -> Function:
        """A new container of the function (its process, if any, starts at its first invocation)."""
        spec = self.template.function(function_id)
        if not self.containers:
            return LocalFunction(spec, container, traced=self.traced)
        environment = dict(os.environ)
        if self.trace_collector:
            environment[DAEMON_ADDRESS_VARIABLE] = self.trace_collector.address
        permissions = (
            asdict(function_permissions(self.template, self.resources, function_id)) if iam_enforced() else None
        )
        function = ContainerFunction(
            spec, container, traced=self.traced, environment=environment, permissions=permissions
        )
        self._started_containers.append(function)
        return function

    def stop(self) -> None:
        """Stop the workers and containers within a few seconds, as Ctrl-C on `local up` expects.

        The pollers and timers stop together, given STOP_GRACE_SECONDS to finish an invocation in
        flight; then every container ends (one still invoked is killed, its batch returned to its
        queue after the visibility timeout, as after a crash); the trace collector stops last, to
        keep the segments of all of it.
        """
        invokers = [worker for worker in self.workers if worker is not self.trace_collector]
        for worker in invokers:
            worker.stop()
        self._join(invokers)
        self.stop_containers()
        # What still runs is in a call to moto (no invocation can start now): its daemon thread ends
        # with the process.
        self._join(invokers)
        if self.trace_collector:
            self.trace_collector.stop()
            self.trace_collector.join()

    @staticmethod
    def _join(workers: list[Worker]) -> None:
        """Wait for `workers` to end, at most STOP_GRACE_SECONDS for all of them."""
        grace_ends = time.monotonic() + STOP_GRACE_SECONDS
        for worker in workers:
            worker.join(max(0.0, grace_ends - time.monotonic()))

    def stop_containers(self) -> None:
        """End every function container's process, all at once."""
        containers = self._started_containers
        if containers:
            with ThreadPoolExecutor(max_workers=len(containers), thread_name_prefix="stop") as pool:
                list(pool.map(ContainerFunction.stop, containers))

    def schedule_timers(self) -> list[ScheduleTimer]:
        """One timer per schedule of the template; HOOKRELAY_LOCAL_SCHEDULE_SECONDS runs them faster."""
        faster = os.environ.get(SCHEDULE_SECONDS_VARIABLE)
        region = self.resources.region
        return [
            ScheduleTimer(self.functions[source.function_id], float(faster or source.interval_seconds), region)
            for source in self.template.schedules()
        ]

    def queue_pollers(self) -> list[QueuePoller]:
        """Pollers for every SQS event source of the template, but for the functions paused locally.

        HOOKRELAY_LOCAL_POLLERS_PER_QUEUE (default 1) of each, at most the function's reserved concurrency
        and its event source's MaximumConcurrency: the first of a function invokes the stack's own
        instance of it, every other one a container of its own. The pollers of a function's event sources
        together run at most its reserved concurrency at once, as on AWS. With
        HOOKRELAY_LOCAL_SQS_DUPLICATE_RATE, each hands that share of messages to a second invocation.
        """
        failed_visibility = os.environ.get(FAILED_VISIBILITY_VARIABLE)
        duplicates = duplicate_rate(os.environ.get(DUPLICATE_RATE_VARIABLE, "0"))
        paused = set(filter(None, os.environ.get(PAUSED_FUNCTIONS_VARIABLE, "").split(",")))
        pollers = pollers_per_queue()
        containers: dict[str, int] = {}
        reserved: dict[str, threading.BoundedSemaphore] = {}
        queue_pollers = []
        for source in self.template.queue_sources():
            function_id = source.function_id
            if function_id in paused:
                continue
            function_caps = self._concurrency_caps(function_id)
            if function_caps and function_id not in reserved:
                reserved[function_id] = threading.BoundedSemaphore(min(function_caps))
            source_caps = self._resolved_caps(source.maximum_concurrency)
            for _ in range(min([pollers, *function_caps, *source_caps])):
                container = containers[function_id] = containers.get(function_id, -1) + 1
                queue_pollers.append(
                    QueuePoller(
                        self.clients("sqs"),
                        queue_url=self.resources.ref(source.queue_id),
                        queue_arn=self.resources.get_att(source.queue_id, "Arn"),
                        function=self.functions[function_id]
                        if container == 0
                        else self.function(function_id, container),
                        batch_size=source.batch_size,
                        report_batch_item_failures=source.report_batch_item_failures,
                        failed_visibility_seconds=int(failed_visibility) if failed_visibility else None,
                        duplicate_rate=duplicates,
                        reserved=reserved.get(function_id),
                        batching_window_seconds=source.batching_window_seconds,
                    )
                )
        return queue_pollers

    def queue_pollers_of(self, queue_id: str) -> list[QueuePoller]:
        """New pollers (see queue_pollers) of one queue of the template, by its logical id."""
        url = self.resources.ref(queue_id)
        return [poller for poller in self.queue_pollers() if poller.queue_url == url]

    def _concurrency_caps(self, function_id: str) -> list[int]:
        """What bounds the function's invocations at once: its reserved concurrency, as the stack's
        parameters resolve it (none when the template sets none)."""
        return self._resolved_caps(self.template.reserved_concurrency(function_id))

    def _resolved_caps(self, *caps: Any) -> list[int]:
        """Concurrency caps (numbers or parameters' Refs) as the stack's parameters resolve them, unset ones
        left out."""
        return [int(self.resources.intrinsics.resolve(cap)) for cap in caps if cap is not None]

    def gateway(self) -> Gateway:
        """The HTTP API, throttled as its stage is: each function behind it scales to
        HOOKRELAY_LOCAL_GATEWAY_CONTAINERS (default 4) containers for requests that arrive together, the
        first being the stack's own instance; one whose reserved concurrency is lower is throttled at it."""
        limit = at_least_one(
            GATEWAY_CONTAINERS_VARIABLE, os.environ.get(GATEWAY_CONTAINERS_VARIABLE, DEFAULT_GATEWAY_CONTAINERS)
        )
        http_routes = self.template.http_routes()
        function_ids = {function_id for _, function_id in http_routes} | {
            route.authorizer_function for route, _ in http_routes if route.authorizer_function
        }
        scaling: dict[str, Function] = {}
        for function_id in function_ids:
            reserved = self._concurrency_caps(function_id)
            scaling[function_id] = ScalingFunction(
                self.functions[function_id],
                partial(self.function, function_id),
                limit,
                reserved=min(reserved) if reserved else None,
            )
        routes = [(route, scaling[function_id]) for route, function_id in http_routes]
        authorizers = {name: scaling[name] for route, _ in http_routes if (name := route.authorizer_function)}
        throttling = self.template.stage_throttling()
        throttle = None
        if throttling:
            rate, burst = (self.resources.intrinsics.resolve(value) for value in throttling)
            throttle = StageThrottle(float(rate), int(burst))
        return Gateway(routes, authorizers, throttle)

    def register_api_key(self, key: str | None) -> str:
        return issue_key(self._api_keys(), DEV_TEAM, key or f"hr_dev_{secrets.token_urlsafe(24)}").key

    def open_portal_session(self, api_base_url: str) -> PortalSession:
        """A portal link for the development team, for the longest a session may last."""
        store = self._api_keys()
        request = PortalSessionRequest(expires_in=PORTAL_SESSION_MAX_SECONDS)
        return open_session(store, DEV_TEAM, request, api_base_url)

    def invoke(self, function_id: str, event: Any) -> Any:
        return self.functions[function_id].invoke(event)

    def _api_keys(self) -> DynamoApiKeyStore:
        # A client of its own: python_values would change the plain one the resources were made with.
        dynamodb = python_values(aws.session().client("dynamodb"))
        return DynamoApiKeyStore(Table(get_settings().api_keys_table, dynamodb))
