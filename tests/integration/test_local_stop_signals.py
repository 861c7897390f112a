"""`hookrelay local up` stops on Ctrl-C or SIGTERM however the signals come (hookrelay_cli.local.stop_signals).

A terminal's Ctrl-C goes to its whole foreground process group, so the stack run by `make run` may get it
from the terminal and again from make, and a user may press it twice. Python runs a signal's handler on
the main thread between two bytecodes, also in the middle of an earlier run of that handler: these tests
send a second signal at every call the first run makes into C (a lock's acquire, a list's append), where
such a nested run would find whatever the first one holds.
"""

import subprocess
import sys
import textwrap

from paths import REPO

# A handler that deadlocks does so at once; a stop that works takes a few milliseconds.
STOP_SECONDS = 20

SIGNALLED_AGAIN_INSIDE_THE_HANDLER = textwrap.dedent(
    """
    import os, signal, sys
    from hookrelay_cli.local.stop_signals import StopSignals

    stop_signals = StopSignals()
    stop_signals.install()
    handler_code = StopSignals._record.__code__
    depth = 0

    def signal_again(frame, event, arg):
        global depth
        if event == "call" and frame.f_code is handler_code:
            depth += 1
        elif event == "return" and frame.f_code is handler_code:
            depth -= 1
        elif event == "c_return" and depth == 1:  # inside the first run only: each nested run returns
            os.kill(os.getpid(), signal.SIGNUM)

    sys.setprofile(signal_again)
    os.kill(os.getpid(), signal.SIGNUM)
    stop_signals.wait(0.05)
    sys.setprofile(None)
    print("stopped after", len(stop_signals.received), "signals", flush=True)
    """
)


def run_signalled(signum: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", SIGNALLED_AGAIN_INSIDE_THE_HANDLER.replace("SIGNUM", signum)],
        cwd=REPO / "cli",
        capture_output=True,
        text=True,
        timeout=STOP_SECONDS,
        check=False,
    )


def test_a_ctrl_c_that_comes_while_the_first_one_is_handled_still_stops_the_wait() -> None:
    result = run_signalled("SIGINT")
    assert result.returncode == 0, result.stderr
    assert "stopped after" in result.stdout
    assert int(result.stdout.split()[2]) >= 2, result.stdout  # the second signal was handled inside the first


def test_a_sigterm_that_comes_while_the_first_one_is_handled_still_stops_the_wait() -> None:
    result = run_signalled("SIGTERM")
    assert result.returncode == 0, result.stderr
    assert int(result.stdout.split()[2]) >= 2, result.stdout
