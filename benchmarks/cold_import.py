"""Cold-import benchmark: the time to import each handler module in a fresh process, against `import boto3`.

    .venv/bin/python benchmarks/cold_import.py            # 15 runs of each
    .venv/bin/python benchmarks/cold_import.py --smoke    # 3 runs, as the test suite runs it
    .venv/bin/python benchmarks/cold_import.py --profile  # also: where each handler's import time goes

P5: each child process starts the way Lambda starts a function: the layer's python/ dir and the
function's code dir on PYTHONPATH; the template's environment (Globals and the function's own) with
placeholder resource names; fake credentials, a region, and the variables the Lambda runtime sets.
LAMBDA_TASK_ROOT among them turns tracing on, as deployed (`Tracing: Active`): powertools' Tracer
imports the X-Ray SDK and patches botocore (and requests, in the delivery function) at import.
The child times `importlib.import_module("app")` only, which includes parsing the settings and
creating the boto3 clients, and prints it; the baseline child times `import boto3` alone, in the
same environment. Every child runs once first (bytecode compiled, files cached, as in a deployment
package), then the runs of all of them are interleaved in a shuffled order so that machine noise
hits each alike. The figures are medians; the ratio is a handler's median over boto3's.

The children use this interpreter's site-packages, dev dependencies included: whatever a handler
imports only if it is installed (as the X-Ray SDK's patch_all does) is counted here although the
layer does not ship it.

Goals: at most 1.5x for authorizer, ingest, delivery and sweeper; at most 2.5x for api (the
powertools event handler alone costs about as much as boto3).
"""

import os
import random
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "cli")]

from figures import Figure, arguments, report  # noqa: E402

from hookrelay_cli.template import Intrinsics, Template  # noqa: E402

LAYER = REPO / "layers" / "common" / "python"
BASELINE = "boto3"
GOALS = {"api": 2.5, "authorizer": 1.5, "ingest": 1.5, "delivery": 1.5, "sweeper": 1.5}
REGION = "eu-west-3"
ACCOUNT = "123456789012"
# Times the import of the module named by argv[1]; nothing else of the child is in the figure. The
# marker on stderr ends the interpreter's own start-up in a `-X importtime` report.
MARKER = "--- the measured import"
CHILD = f"""
import importlib, sys, time
print({MARKER!r}, file=sys.stderr, flush=True)
start = time.perf_counter()
importlib.import_module(sys.argv[1])
print(time.perf_counter() - start)
"""


def placeholders(template: Template) -> Intrinsics:
    """Resolves the template's references to made-up names, shaped like the real ones."""

    def ref(logical_id: str) -> str:
        if template.resource(logical_id).get("Type") == "AWS::SQS::Queue":
            return f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/hookrelay-{logical_id}"
        return f"hookrelay-{logical_id}"

    return Intrinsics(
        ref=ref,
        get_att=lambda logical_id, attribute: f"arn:aws:placeholder:{REGION}:{ACCOUNT}:hookrelay-{logical_id}",
        pseudo={
            "AWS::Region": REGION,
            "AWS::AccountId": ACCOUNT,
            "AWS::StackName": "hookrelay",
            "AWS::Partition": "aws",
        },
        parameters=template.parameter_defaults(),
    )


def lambda_environment(template: Template, function_id: str) -> tuple[str, str, dict[str, str]]:
    """(short name, module, environment) of one function, as the Lambda runtime would start it."""
    spec = template.function(function_id)
    intrinsics = placeholders(template)
    code_dir = spec.code_dir.resolve()
    environment = {
        # Nothing from the caller's shell (AWS_PROFILE, ~/.aws) reaches the children but PATH.
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": os.pathsep.join([str(LAYER), str(code_dir)]),
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
        "AWS_LAMBDA_FUNCTION_NAME": f"hookrelay-{function_id}",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
        "AWS_XRAY_DAEMON_ADDRESS": "169.254.79.129:2000",
        "LAMBDA_TASK_ROOT": str(code_dir),
        "_HANDLER": f"{spec.module}.{spec.handler}",
        **{name: str(intrinsics.resolve(value)) for name, value in spec.environment.items()},
    }
    return code_dir.name, spec.module, environment


def run_child(module: str, environment: dict[str, str], *flags: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - this interpreter, running CHILD
        [sys.executable, *flags, "-c", CHILD, module],
        env=environment,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )


def import_seconds(module: str, environment: dict[str, str]) -> float:
    return float(run_child(module, environment).stdout)


def slowest_imports(module: str, environment: dict[str, str], count: int = 12) -> list[tuple[int, str]]:
    """What a cold import of the module spends, by cumulative microseconds (`python -X importtime`).

    The module's own code (settings parsed, clients created) and each of its direct imports, with
    everything they imported in turn.
    """
    child = run_child(module, environment, "-X", "importtime")
    # import_module itself is not in the report: the module's imports are at its top level.
    timings: list[tuple[int, str]] = []
    for line in child.stderr.partition(MARKER)[2].splitlines():
        if line.startswith("import time:"):
            _, cumulative, name = line.removeprefix("import time:").split("|")
            if not name.startswith("  "):
                timings.append((int(cumulative), name.strip()))
    own = int(float(child.stdout) * 1e6) - sum(micros for micros, _ in timings)
    return sorted([*timings, (own, f"{module}'s own code: settings, clients, ...")], reverse=True)[:count]


def measure(runs: int, profile: bool) -> list[Figure]:
    template = Template.read(REPO / "template.yaml")
    functions = [lambda_environment(template, function_id) for function_id in template.function_ids()]
    # The baseline runs in an environment like the handlers': any of them, they differ only in names.
    children: list[tuple[str, str, dict[str, str]]] = [(BASELINE, BASELINE, functions[0][2]), *functions]
    for _, module, environment in children:  # bytecode compiled, files in the page cache
        import_seconds(module, environment)
    samples: dict[str, list[float]] = {name: [] for name, _, _ in children}
    order = list(children)
    for _ in range(runs):
        random.shuffle(order)
        for name, module, environment in order:
            samples[name].append(import_seconds(module, environment))
    baseline = statistics.median(samples[BASELINE])
    figures = []
    for name, module, environment in functions:
        median = statistics.median(samples[name])
        ratio, goal = median / baseline, GOALS.get(name, 1.5)  # a new function: the stricter goal
        figures.append(
            Figure(
                goal="P5",
                what=f"cold import of the {name} handler",
                measured=f"{median * 1e3:.0f} ms",
                baseline=f"import boto3 {baseline * 1e3:.0f} ms",
                result=f"{ratio:.2f}x",
                target=f"<= {goal}x",
                met=ratio <= goal,
            )
        )
        if profile:
            print(f"{name}: where the import time goes (ms; an import with all it imported first)")
            for micros, imported in slowest_imports(module, environment):
                print(f"  {micros / 1e3:8.1f}  {imported}")
    return figures


def main() -> None:
    parser = arguments(__doc__)
    parser.add_argument("--profile", action="store_true", help="print each handler's slowest imports too")
    options = parser.parse_args()
    report(measure(runs=3 if options.smoke else 15, profile=options.profile), options.figures)


if __name__ == "__main__":
    main()
