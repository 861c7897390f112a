# hookrelay developer commands. `make run` and `make test` set up everything they need.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV := .venv
SAM_VENV := .venv-sam
# Lambda runs python3.13, so development does too. On these machines it may exist only under
# pyenv's versions/ folder, not on PATH; HOOKRELAY_PYTHON names another interpreter.
PYTHON313 := $(shell for candidate in "$$HOOKRELAY_PYTHON" "$$(command -v python3.13)" \
	"$$(pyenv root 2>/dev/null)"/versions/3.13.*/bin/python3.13 "$$HOME"/.pyenv/versions/3.13.*/bin/python3.13; do \
	[ -n "$$candidate" ] && [ -x "$$candidate" ] && "$$candidate" -c 'import sys; assert sys.version_info[:2] == (3, 13)' 2>/dev/null \
	&& { echo "$$candidate"; break; }; done)
PIP_QUIET := --quiet --disable-pip-version-check
# sam build runs the layer's Makefile with python3 and needs a real python3.13 on PATH.
SAM := PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(SAM_VENV)/bin/sam

.PHONY: help run test screenshots lint validate docs bench build clean python313 chromium receiver-toolchains

help: ## list the commands
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' \
		'{ name[NR] = $$1; text[NR] = $$2; if (length($$1) > width) width = length($$1) } \
		END { for (i = 1; i <= NR; i++) printf "  make %-" width "s  %s\n", name[i], text[i] }'

python313:
	@test -n "$(PYTHON313)" || { echo "error: Python 3.13 not found (looked on PATH and in pyenv's versions/3.13.*); install it or set HOOKRELAY_PYTHON" >&2; exit 1; }

$(VENV)/.installed: pyproject.toml layers/common/requirements.txt | python313
	test -x $(VENV)/bin/python || $(PYTHON313) -m venv $(VENV)
	$(VENV)/bin/pip install $(PIP_QUIET) -e '.[dev]'
	touch $@

# sam-cli pins boto3 and pydantic, so it gets a venv of its own.
$(SAM_VENV)/.installed: | python313
	test -x $(SAM_VENV)/bin/python || $(PYTHON313) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install $(PIP_QUIET) 'aws-sam-cli>=1.140'
	touch $@

run: $(VENV)/.installed ## start the local stack on http://127.0.0.1:3000
	$(VENV)/bin/hookrelay local up

# The portal's browser tests drive Debian's chromium (Playwright cannot download its own browser here).
CHROMIUM := /usr/bin/chromium
chromium:
	@test -x $(CHROMIUM) || { [ "$$(id -u)" = 0 ] && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
		|| { echo "error: the portal's browser tests need $(CHROMIUM): run 'sudo apt-get install chromium'" >&2; exit 1; }

# The docs' receiver snippets in Node and Go run against the suite's test vectors: Debian's nodejs and
# golang-go, installed when the tests run as root; elsewhere, without them, those tests are skipped.
receiver-toolchains:
	@command -v node >/dev/null && command -v go >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -qq \
		&& DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs golang-go >/dev/null; } \
		|| echo "note: without node and go, the Node and Go receiver snippets' tests are skipped" >&2

# Three workers on two cores, one test module per worker: the e2e modules each start their own local
# stack and spend much of their time waiting on it (Retry-After, rate limits, retry schedules).
test: $(VENV)/.installed $(SAM_VENV)/.installed chromium receiver-toolchains ## run every test (unit, integration, e2e)
	$(VENV)/bin/pytest -n 3 --dist loadfile

screenshots: $(VENV)/.installed chromium ## the portal's screenshots in docs/portal/, taken by its browser tests
	HOOKRELAY_PORTAL_SCREENSHOTS=$(CURDIR)/docs/portal $(VENV)/bin/pytest tests/e2e/test_portal.py

lint: $(VENV)/.installed ## ruff (with its complexity gate), mypy and the layer's module sizes
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/pytest tests/unit/test_layout.py -q -p no:randomly

validate: $(VENV)/.installed $(SAM_VENV)/.installed ## sam validate --lint and cfn-lint
	$(SAM) validate --lint
	$(SAM_VENV)/bin/cfn-lint template.yaml

docs: $(VENV)/.installed ## build the docs site into site/ (mkdocs --strict: a broken link fails)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

bench: $(VENV)/.installed ## every benchmark (about 13 minutes, and a few more for P8 noisy neighbour); writes BENCHMARKS.md
	$(VENV)/bin/python benchmarks/run.py

build: $(VENV)/.installed $(SAM_VENV)/.installed ## sam build (arm64 layer)
	$(SAM) build

clean: ## delete the virtual environments, the SAM build, the docs site and the tools' caches
	rm -rf $(VENV) $(SAM_VENV) .aws-sam .pytest_cache .mypy_cache .ruff_cache site
