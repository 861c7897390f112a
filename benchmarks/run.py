"""Every benchmark, one after another, and BENCHMARKS.md from their figures.

    .venv/bin/python benchmarks/run.py                 # full sizes (over 10 minutes on 2 cores); writes BENCHMARKS.md
    .venv/bin/python benchmarks/run.py --smoke --output /tmp/b.md   # tiny sizes, as the test suite runs it

Each script runs in its own process (a fresh interpreter, as each measures cold or warm state of
its own) and hands its figures back through `--figures`. A script that fails is reported as such
and makes this command exit non-zero; the others still run.
"""

import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from figures import Figure, arguments, report

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Script:
    path: str
    measures: str
    options: tuple[str, ...] = ()


SCRIPTS = (
    Script("benchmarks/delivery.py", "P1 concurrency, P2 delivery-path overhead"),
    Script("benchmarks/aws_calls.py", "P3 AWS calls per delivery and modeled cost"),
    Script("benchmarks/rate_limits.py", "P3 rate limits: writes per delivery, writes a second on the rate# key"),
    # The 10 000-subscription fan-out takes many minutes in moto (its costs, not hookrelay's): the
    # fan-out part runs at 100 and 1 000 here; `benchmarks/ingest.py` alone runs all three.
    Script("benchmarks/ingest.py", "P4 matching scale, fan-out calls", ("--fan-out-sizes", "100", "1000")),
    Script("benchmarks/cold_start.py", "P5 cold start"),
    Script("benchmarks/end_to_end.py", "P6 end to end over the local stack"),
    Script("benchmarks/flood.py", "P8 (flood) delivery while the API is flooded"),
    Script("benchmarks/noisy_neighbour.py", "P8 noisy neighbour: one team's backlog against another team's latency"),
)


METHODS = {
    "P1": "`benchmarks/delivery.py`: the delivery logic (stores stubbed in memory at their interfaces) sends one "
    "SQS batch of 10 to a receiver on 127.0.0.1 that answers after 200 ms, against one delivery; median of 5.",
    "P2": "`benchmarks/delivery.py`: 300 deliveries one after another through render, sign, send and the attempt "
    "bookkeeping (stores in memory: AWS calls are counted by P3, not timed), against a keep-alive "
    "`requests.Session.post` loop of the same requests (body and headers) to the same receiver, the goal's "
    "baseline; also reported against a `urllib3.PoolManager` loop, the client the transport is built on (so "
    "that ratio is the path's own cost: render, sign, address check, deadline, bookkeeping). They take turns of "
    "20 sends, 5 runs, and each figure is the median of the turns' ratios.",
    "P3": "`benchmarks/aws_calls.py`: the real handlers against moto, 1 000 events x 3 subscriptions through the "
    "API, ingest and delivery, every AWS call counted with a botocore hook; the cost model (us-east-1 list "
    "prices, stated in the script, with modeled Lambda durations) is explained in "
    "[docs/capacity.md](docs/capacity.md). `benchmarks/ingest.py` measures the sends of one event fanned out "
    "to 100 and 1 000 subscriptions. Ingest holds the last chunk of each event's first-attempt messages and "
    "sends a batch's messages ten per SendMessageBatch whichever event they come from (a record is acknowledged "
    "only once SQS has accepted all of its own). The cost goals are met with DynamoDB provisioned (the rows "
    "say so) and missed on-demand: see the cost section of docs/capacity.md for where the money goes. "
    "`benchmarks/rate_limits.py` (issue 23): a simulation over the real delivery code, slot store and sweeper "
    "with a fake clock, an in-memory table that applies the slot store's conditional updates and counts every "
    "write (failed conditions included), and a simulated delivery queue received by up to 200 containers "
    "(Lambda's ramp: 5, then 5 more a second): the DynamoDB writes a rate limit adds per delivery (rate# "
    "writes, waiting records, the sweeper's positions), the most writes the rate# key takes in any second, and "
    "the most requests the endpoint gets in any second.",
    "P4": "`benchmarks/ingest.py`: matching one event against a team's cached subscriptions through the team's "
    "index (the part of ingest that grew with the team), against the linear scan of the same subscriptions; "
    "a platform team of 12 team-wide subscriptions and 3 per customer workspace over the catalog's names, the "
    "event one customer's `signer.done`; median of 21.",
    "P5": "`benchmarks/cold_start.py`: in a fresh process, `import app` of each handler and its first invocation "
    "with a representative event (a publish, an authorized request, an events batch matching a subscription, a "
    "delivery sent to a receiver on 127.0.0.1, a sweep), against moto on 127.0.0.1 with the template's resources, "
    "the template's environment and tracing on as deployed; against a bare handler in the same environment that "
    "imports boto3, creates a client per service the function uses and makes its first AWS call, run back to back "
    "with the handler; the ratio is the median of 15 such pairs' ratios. `--profile` shows where each handler's "
    "time goes (`-X importtime`). Cut: settings are parsed without pydantic; what ingest and delivery store and "
    "pass are plain dataclasses (hookrelay.records), so neither imports pydantic (only the API checks bodies "
    "with it); the tables speak Python values through one DynamoDB client with boto3's own transformations (no "
    "boto3 resource, which loads its model and makes a second client); delivery sends with urllib3 alone (no "
    "requests); the sweeper starts without the records.",
    "P6": "`benchmarks/end_to_end.py`: `hookrelay local up` in its own process (moto, one poller per queue), "
    "1 000 events x 3 subscriptions published by 4 threads to receivers on 127.0.0.1; every delivery id must "
    "arrive, and duplicates are counted; the figure is the median of three runs, each on a fresh stack, with "
    "the machine's CPU time (busy, idle, stolen) during each. The rates are the local stack's (moto-bound), not "
    "AWS's.",
    "P7": "[docs/capacity.md](docs/capacity.md): what 10 000 deliveries/s needs on AWS, from these figures.",
    "P8 (flood)": "`benchmarks/flood.py`: three runs of `hookrelay local up`, each on a fresh stack, one while 50 "
    "threads flood the API for 60 s (`--flood-seconds`): half with a new bogus key at every request (each invokes "
    "the authorizer and the API function, which answers 401 problem+json as SPEC §2 says), half PATCHing one "
    "team's subscription, each sending its next request as soon as it has an answer; another team publishes 100 "
    "events, 2 a second in every run (those that fit 80 % of a shorter flood), retrying after a 429, to a "
    "receiver on 127.0.0.1. The figure is that team's p95 from an event's 202 to its delivery's arrival, against "
    "the run without the flood; beside it, against the third run, where the same flood hits a second stack on the "
    "same machine (sharing only its CPUs), the design's share; and every answer of the flood by status. The stack "
    "runs scaled down (2 containers "
    "for the API and the authorizer, as their reserved concurrency caps them, ingest and delivery polled by "
    "containers of their own; a team 10 writes/s, burst 20; the stage at its default 1 000/s): the local "
    "gateway, moto and the functions share the machine's cores with the flood's own clients, which AWS would not.",
    "P8 noisy neighbour": "`benchmarks/noisy_neighbour.py`: `hookrelay local up` as strict as the e2e stacks, "
    "4 pollers per "
    "queue (the delivery function's queue and its slow lane each), the function containers at niceness 10 "
    "(`HOOKRELAY_LOCAL_CONTAINER_NICENESS`: on AWS no function's CPU slows DynamoDB's or SQS's answers, "
    "here 16 containers share 2 cores with the two processes that stand in for them), a fresh stack per "
    "scenario. Team B publishes 100 events, 10 a second, to a receiver that answers at once, first alone, "
    "then once team A's events (3 000 to a receiver answering after 2 s) are all accepted; each of B's "
    "events is timed from its POST to its delivery's first request, and the goal is B's p95 with A's "
    "backlog at most 2x B's p95 alone, with A's backlog still there when B's last delivery arrives. Beside it, "
    "the design's share, also at most 2x: after each scenario, two more fresh stacks, one for each team; B is "
    "timed alone on its own, then while A's events flood the other. The stacks share nothing but the machine, "
    "so B's p95 there is what A's load costs B through the CPUs alone, and B's p95 with A on its own stack "
    "against it is what sharing hookrelay's queues, functions and table with A costs B. A's "
    "requests per second are reported alone and while B publishes; so is where B's p95 went (publish to "
    "fan-out and fan-out to first send, from the delivery log), where A's backlog was when B started "
    "(each queue's messages), and how many deliveries the stack moved to the slow lane (from its logs). "
    "Two more scenarios: A's receiver answers 500 after 2 s (a fast retry "
    "schedule, 1 s to 60 s, so that retries compete), and A publishes 10 000 events through POST "
    "/v3/events/batch. After the scenarios, on one more fresh stack, the host's floor: B alone, then B "
    "while busy loops (2 per CPU, at the containers' niceness) spin instead of team A, a neighbour that "
    "takes only CPU; its ratio is the part of a scenario's that this machine's CPU sharing makes on its "
    "own (reported, not a goal). See [docs/capacity.md](docs/capacity.md) for what the figures mean on "
    "AWS.",
}


def run(script: Script, smoke: bool, folder: Path) -> tuple[list[Figure], float, str | None]:
    figures_file = folder / (Path(script.path).stem + ".json")
    options = ("--smoke",) if smoke else script.options
    command = [sys.executable, script.path, "--figures", str(figures_file), *options]
    print(f"== {script.path} ({script.measures})", flush=True)
    started = time.perf_counter()
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=False)  # noqa: S603
    elapsed = time.perf_counter() - started
    shown = [line for line in result.stdout.splitlines() if not line.startswith("{")]
    print("\n".join(shown), flush=True)
    if result.returncode != 0 or not figures_file.exists():
        return [], elapsed, f"exit {result.returncode}: {result.stderr.strip()[-2000:]}"
    loaded = json.loads(figures_file.read_text(encoding="utf-8"))
    return [Figure(**fields) for fields in loaded], elapsed, None


def machine() -> str:
    cpus = os.cpu_count()
    model = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines() if "model name" in line]
        model = names[0] if names else ""
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    return (
        f"{platform.system()} {platform.machine()}, {cpus} CPUs{f' ({model})' if model else ''}, "
        f"Python {platform.python_version()}, load average at start {load}"
    )


def markdown(results: list[tuple[Script, list[Figure], float, str | None]], smoke: bool, started: str) -> str:
    command = "python benchmarks/run.py" + (" --smoke" if smoke else "")
    lines = [
        "# Benchmarks",
        "",
        f"Measured {started} on {machine()}. Reproduce with `make bench` (`.venv/bin/{command}`);",
        "each script also runs alone (`.venv/bin/python benchmarks/<script>.py`, `--smoke` for tiny sizes).",
        "Every ratio is against a baseline measured in the same run, on the same machine: this machine",
        "is shared and noisy, so absolute times move from run to run and ratios much less.",
        "The capacity model built on these figures is [docs/capacity.md](docs/capacity.md).",
        "",
        "| goal | what | measured | baseline | result | target | met |",
        "|---|---|---|---|---|---|---|",
    ]
    for _, figures, _, _ in results:
        for figure in figures:
            cells = (figure.goal, figure.what, figure.measured, figure.baseline or "-", figure.result, figure.target)
            lines.append(
                "| "
                + " | ".join(cell.replace("|", "/") for cell in cells)
                + f" | {'yes' if figure.met else '**no**'} |"
            )
    lines += ["", "## How each is measured", ""]
    lines += [f"- **{goal}** {text}" for goal, text in METHODS.items()]
    lines += ["", "## Runs", "", "| script | measures | wall time | outcome |", "|---|---|---|---|"]
    for script, _, elapsed, failure in results:
        outcome = "ok" if failure is None else f"FAILED ({failure.splitlines()[-1]})"
        lines.append(f"| `{script.path}` | {script.measures} | {elapsed:.0f} s | {outcome} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = arguments(__doc__)
    parser.add_argument("--output", type=Path, default=REPO / "BENCHMARKS.md", help="where to write the report")
    options = parser.parse_args()
    started = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    with tempfile.TemporaryDirectory() as folder:
        results = [(script, *run(script, options.smoke, Path(folder))) for script in SCRIPTS]
    options.output.write_text(markdown(results, options.smoke, started), encoding="utf-8")
    report([figure for _, figures, _, _ in results for figure in figures], options.figures)
    total = sum(elapsed for _, _, elapsed, _ in results)
    print(f"wrote {options.output} ({total:.0f} s in all)")
    failed = [script.path for script, _, _, failure in results if failure]
    if failed:
        sys.exit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
