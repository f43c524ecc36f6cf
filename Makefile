# TradeSense: the one entry point. `make run` starts everything, `make test` tests it.
# All set-up (uv, the locked virtualenv, generated protobuf code) happens here.
SHELL := /bin/bash
PY_BOOT ?= python3.11
UV_VERSION := 0.13.8
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
PY := $(VENV)/bin/python
PROTO_SRC := $(shell find protos -name '*.proto')
GEN_STAMP := gen/.stamp

.PHONY: run test protos bench lint typecheck clean distclean venv

venv: $(VENV)/.synced

$(UV):
	$(PY_BOOT) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(VENV)/.synced: $(UV) pyproject.toml uv.lock
	$(UV) sync --frozen --python $(PY_BOOT)
	touch $@

# checkov (the Kubernetes security scan) pins packages that clash with ours: its own
# environment, from its own lock file.
CHECKOV := $(TOOLS)/checkov/bin/checkov
$(CHECKOV): tools/checkov.lock $(UV)
	$(UV) venv --quiet --python $(PY_BOOT) $(TOOLS)/checkov
	VIRTUAL_ENV=$(TOOLS)/checkov $(UV) pip sync --quiet tools/checkov.lock

protos: $(GEN_STAMP)

$(GEN_STAMP): $(VENV)/.synced $(PROTO_SRC) devstack/protogen.py gateway/render.py gateway/openapi.py gateway/health.lua gateway/sse_token.lua gateway/header_names.lua
	$(PY) -m devstack.protogen
	touch $@

run: protos
	$(PY) -m devstack

test: protos $(CHECKOV)
	$(PY) -m pytest $(PYTEST_ARGS)

bench: protos
	$(PY) -m bench

lint: venv
	$(VENV)/bin/ruff check services devstack gateway tests bench k8s
	$(VENV)/bin/ruff format --check services devstack gateway tests bench k8s

typecheck: protos
	$(VENV)/bin/mypy services devstack gateway

clean:
	rm -rf gen gateway/generated .pytest_cache

distclean: clean
	rm -rf $(VENV) $(TOOLS) .data
