"""The layer's shape: a module that outgrows its size is a design question, asked before it grows further."""

from paths import REPO

LAYER = REPO / "layers" / "common" / "python" / "hookrelay"
MAX_MODULE_LINES = 300


def test_no_module_of_the_layer_is_longer_than_300_lines() -> None:
    lengths = {str(path.relative_to(LAYER)): len(path.read_text().splitlines()) for path in LAYER.rglob("*.py")}
    too_long = {name: lines for name, lines in lengths.items() if lines > MAX_MODULE_LINES}
    assert not too_long, f"split these by what they do (at most {MAX_MODULE_LINES} lines): {too_long}"
