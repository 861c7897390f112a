"""The docs' signature-checking snippets (docs/receiving/snippets), run against requests signed by hookrelay's
own signing code: each accepts what hookrelay sends and refuses a tampered body, another key or a stale
timestamp. The Python snippets are imported; the Node ones run under node; the Go ones are built into one
program with `go build` where a Go toolchain is installed (make test does not install one)."""

import base64
import dataclasses
import importlib.util
import json
import shutil
import subprocess
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType

import pytest

from hookrelay import signing
from paths import REPO

SNIPPETS = REPO / "docs" / "receiving" / "snippets"
SCHEMES = ("hmac", "ed25519", "yousign", "subnoto")
BODY = b'{"event_id":"7c1c5a5e-8f4e-4a5e-9d2b-3f1f0b9c2d11","event_name":"signer.done","data":{"signer":{"id":"s-1"}}}'
GO_FUNCTIONS = {
    "hmac": "VerifyHMAC",
    "ed25519": "VerifyEd25519",
    "yousign": "VerifyYousign",
    "subnoto": "VerifySubnoto",
}
GO_RUNNER = """package main

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"os"
)

type testCase struct {
	Key     string            `json:"key"`
	Headers map[string]string `json:"headers"`
	Body    string            `json:"body"`
}

func main() {
	verify := map[string]func(string, http.Header, []byte) error{VERIFIERS}[os.Args[1]]
	var cases []testCase
	if err := json.NewDecoder(os.Stdin).Decode(&cases); err != nil {
		panic(err)
	}
	verdicts := []bool{}
	for _, each := range cases {
		headers := http.Header{}
		for name, value := range each.Headers {
			headers.Set(name, value)
		}
		body, _ := base64.StdEncoding.DecodeString(each.Body)
		verdicts = append(verdicts, verify(each.Key, headers, body) == nil)
	}
	_ = json.NewEncoder(os.Stdout).Encode(verdicts)
}
""".replace("VERIFIERS", ", ".join(f'"{scheme}": {function}' for scheme, function in GO_FUNCTIONS.items()))
NODE_RUNNER = """
const snippet = require(process.argv[1]);
const cases = JSON.parse(require("node:fs").readFileSync(0, "utf8"));
const verdicts = cases.map(({ key, headers, body }) => {
  try { snippet.verify(key, headers, Buffer.from(body, "base64")); return true; } catch { return false; }
});
process.stdout.write(JSON.stringify(verdicts));
"""


@dataclasses.dataclass(frozen=True)
class Case:
    name: str
    key: str  # what the receiver verifies with: the secret, or the public key for ed25519
    headers: dict[str, str]  # as a receiver's framework gives them: lower-case names
    body: bytes
    accepted: bool


def signed(*, secrets: list[str], private_keys: Sequence[str] = (), sent_at: datetime | None = None) -> dict[str, str]:
    headers = signing.signature_headers(
        secret_keys=secrets,
        private_keys=private_keys,
        delivery_id="0b8f7c1e-2a7d-5c3e-9f41-6d2e8a1b4c55",
        subscription_id="5f0c2d9e-1b3a-4c8d-a6e7-2f9b0c1d3e4a",
        attempts_before=0,
        body=BODY,
        sent_at=sent_at or datetime.now(UTC),
    )
    return {name.lower(): value for name, value in headers.items()}


def cases(scheme: str) -> list[Case]:
    secret, other_secret = signing.generate_secret(), signing.generate_secret()
    custom_secret = "a-custom-secret-of-32-characters"
    private_key, public_key = signing.generate_key_pair()
    _, other_public_key = signing.generate_key_pair()
    key = public_key if scheme == "ed25519" else secret
    other_key = other_public_key if scheme == "ed25519" else other_secret
    good = signed(secrets=[secret], private_keys=[private_key])
    listed = [
        Case("as sent", key, good, BODY, True),
        Case("tampered body", key, good, BODY.replace(b"s-1", b"s-2"), False),
        Case("another key", other_key, good, BODY, False),
        Case("no signature headers", key, {}, BODY, False),
    ]
    if scheme != "yousign":  # X-Yousign-Signature-256 signs the body alone
        stale = signed(secrets=[secret], private_keys=[private_key], sent_at=datetime.now(UTC) - timedelta(minutes=10))
        listed.append(Case("sent 10 minutes ago", key, stale, BODY, False))
    if scheme != "ed25519":
        listed.append(Case("a custom secret", custom_secret, signed(secrets=[custom_secret]), BODY, True))
    if scheme == "hmac":
        # During a rotation's overlap both secrets sign webhook-signature: a receiver still on the old one verifies.
        listed.append(
            Case("the previous secret in its overlap", other_secret, signed(secrets=[secret, other_secret]), BODY, True)
        )
    return listed


def python_snippet(scheme: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"verify_{scheme}", SNIPPETS / f"verify_{scheme}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def python_verdict(module: ModuleType, case: Case) -> bool:
    try:
        module.verify(case.key, dict(case.headers), case.body)
    except Exception:
        return False
    return True


@pytest.mark.parametrize("scheme", SCHEMES)
def test_the_python_snippet_accepts_what_hookrelay_signs_and_nothing_else(scheme: str) -> None:
    module, listed = python_snippet(scheme), cases(scheme)
    verdicts = {case.name: python_verdict(module, case) for case in listed}
    assert verdicts == {case.name: case.accepted for case in listed}


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
@pytest.mark.parametrize("scheme", SCHEMES)
def test_the_node_snippet_accepts_what_hookrelay_signs_and_nothing_else(scheme: str) -> None:
    listed = cases(scheme)
    run = subprocess.run(
        ["node", "-e", NODE_RUNNER, str(SNIPPETS / f"verify_{scheme}.js")],
        input=as_json(listed),
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    verdicts = dict(zip([case.name for case in listed], json.loads(run.stdout), strict=True))
    assert verdicts == {case.name: case.accepted for case in listed}


@pytest.fixture(scope="module")
def go_program(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Go snippets and a main that runs one of them on each case, built; skipped without a Go toolchain."""
    if shutil.which("go") is None:
        pytest.skip("no Go toolchain")
    folder = tmp_path_factory.mktemp("go-snippets")
    for source in SNIPPETS.glob("verify_*.go"):
        (folder / source.name).write_text(source.read_text().replace("package webhooks", "package main", 1))
    (folder / "main.go").write_text(GO_RUNNER)
    (folder / "go.mod").write_text("module snippets\n\ngo 1.19\n")
    subprocess.run(["go", "build", "-o", "verify", "."], cwd=folder, check=True, timeout=240, capture_output=True)
    return folder / "verify"


@pytest.mark.parametrize("scheme", SCHEMES)
def test_the_go_snippet_accepts_what_hookrelay_signs_and_nothing_else(scheme: str, go_program: Path) -> None:
    listed = cases(scheme)
    run = subprocess.run(
        [str(go_program), scheme], input=as_json(listed), capture_output=True, text=True, timeout=30, check=True
    )
    verdicts = dict(zip([case.name for case in listed], json.loads(run.stdout), strict=True))
    assert verdicts == {case.name: case.accepted for case in listed}


def as_json(listed: list[Case]) -> str:
    return json.dumps(
        [{"key": case.key, "headers": case.headers, "body": base64.b64encode(case.body).decode()} for case in listed]
    )


def test_every_scheme_has_a_snippet_in_each_language_and_its_page_includes_them() -> None:
    page = (REPO / "docs" / "receiving" / "index.md").read_text()
    for scheme in SCHEMES:
        for language in ("py", "js", "go"):
            assert (SNIPPETS / f"verify_{scheme}.{language}").is_file()
            assert f'--8<-- "receiving/snippets/verify_{scheme}.{language}"' in page
