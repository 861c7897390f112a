"""The deployment artifact: what `sam build` produces imports with only the built layer on the path.

Built for this machine's architecture (the deployed arm64 build runs in `make build`), then each
handler is imported in a fresh interpreter that sees no site-packages: only the function's build
directory and the layer's python/ directory, as Lambda lays them out under /var/task and /opt/python.
"""

import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from hookrelay_cli.template import Intrinsics, Template
from paths import REPO, TEMPLATE

SAM = REPO / ".venv-sam" / "bin" / "sam"
PLATFORMS = {"x86_64": "manylinux2014_x86_64", "aarch64": "manylinux2014_aarch64", "arm64": "manylinux2014_aarch64"}


@pytest.fixture(scope="module")
def build_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    assert SAM.exists(), "sam-cli is not installed: run `make test`, which installs it in .venv-sam"
    build_dir = tmp_path_factory.mktemp("sam") / "build"
    environment = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "LAYER_PLATFORM": PLATFORMS[platform.machine()],
        "SAM_CLI_TELEMETRY": "0",
    }
    result = subprocess.run(
        [str(SAM), "build", "--build-dir", str(build_dir), "--template-file", str(TEMPLATE)],
        cwd=REPO,
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return build_dir


@pytest.mark.parametrize("function_id", Template.read(TEMPLATE).function_ids())
def test_handler_imports_from_the_build_with_only_the_layer(build_dir: Path, function_id: str) -> None:
    template = Template.read(TEMPLATE)
    function = template.function(function_id)
    # The function's environment as deployed, with resource names standing in for the real ones.
    intrinsics = Intrinsics(
        ref=lambda logical_id: f"hookrelay-{logical_id}",
        get_att=lambda logical_id, attribute: f"hookrelay-{logical_id}-{attribute}",
        pseudo={"AWS::StackName": "hookrelay", "AWS::Region": "eu-west-3"},
        parameters=template.parameter_defaults(),
    )
    environment = {name: str(intrinsics.resolve(value)) for name, value in function.environment.items()}
    environment.update({"AWS_DEFAULT_REGION": "eu-west-3", "PATH": os.environ["PATH"]})
    probe = (
        "import sys, importlib;"
        f"sys.path[:0] = [{str(build_dir / function_id)!r}, {str(build_dir / 'CommonLayer' / 'python')!r}];"
        f"module = importlib.import_module({function.module!r});"
        f"assert callable(getattr(module, {function.handler!r}));"
        "assert all('site-packages' not in path for path in sys.path), sys.path"
    )
    # -S: no site-packages at all, -E: no PYTHON* variables; the standard library stays, as on Lambda.
    result = subprocess.run(
        [sys.executable, "-S", "-E", "-c", probe],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_the_portal_page_ships_in_the_layer(build_dir: Path) -> None:
    # The api function serves /portal from these files (hookrelay.portal): no CDN, no build step.
    page_dir = build_dir / "CommonLayer" / "python" / "hookrelay" / "portal_page"
    assert sorted(path.name for path in page_dir.iterdir()) == ["favicon.svg", "index.html", "portal.css", "portal.js"]
