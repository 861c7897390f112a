"""The docs site's generated pages are what docs/generate.py writes from the code today, and the README stays a
short entry point whose links work in a clone."""

import importlib.util
import re
from types import ModuleType

import pytest

from paths import REPO

DOCS = REPO / "docs"
README = REPO / "README.md"
REGENERATE = "out of date: run `.venv/bin/python docs/generate.py` and commit what it writes"


def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("docs_generate", DOCS / "generate.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", ["architecture.svg", "configuration.md"])
def test_a_generated_page_is_what_the_generator_writes_today(name: str) -> None:
    written = dict(generator().generated_files(with_openapi=False))
    assert (DOCS / name).read_text(encoding="utf-8") == written[DOCS / name](), f"docs/{name} is {REGENERATE}"


def test_the_configuration_page_lists_every_setting_with_its_deployed_value_and_default() -> None:
    page = (DOCS / "configuration.md").read_text(encoding="utf-8")
    settings = (REPO / "layers" / "common" / "python" / "hookrelay" / "settings.py").read_text(encoding="utf-8")
    for name in set(re.findall(r'"(HOOKRELAY_[A-Z_]+)"', settings)):
        assert f"| `{name}` |" in page, name
    assert "| `HOOKRELAY_RETRY_SCHEDULE` | `2m,6m,30m,1h,5h,18h,1d,2d` | `2m,6m,30m,1h,5h,18h,1d,2d` |" in page
    assert "| `DeliveryReservedConcurrency` | `400` |" in page


def test_every_knob_of_the_local_stack_is_on_its_page() -> None:
    read = {
        name
        for path in (REPO / "cli" / "hookrelay_cli").rglob("*.py")
        for name in re.findall(r"HOOKRELAY_LOCAL_[A-Z_]+", path.read_text(encoding="utf-8"))
    }
    page = (DOCS / "local-stack.md").read_text(encoding="utf-8")
    assert read and {name for name in read if f"`{name}`" not in page} == set()
    assert "State is in memory" in page


def test_the_readme_is_short_and_links_only_inside_the_repository() -> None:
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 150
    targets = re.findall(r"\]\(([^)\s]+)\)", text)
    assert targets
    for target in targets:
        assert "://" not in target and not target.startswith(".."), target
        assert (REPO / target.split("#")[0]).exists(), target
    assert not re.search(r"\bissues?\b|SPEC\.md", text, re.IGNORECASE)
