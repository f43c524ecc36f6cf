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

.PHONY: run test protos bench lint typecheck clean distclean venv screenshots web-vendor apicheck

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

# The console's browser tests drive Debian's Chromium through its chromedriver (selenium, in
# the dev group): installed from the distribution's archive when missing.
CHROMEDRIVER := /usr/bin/chromedriver
$(CHROMEDRIVER):
	SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); export DEBIAN_FRONTEND=noninteractive; \
	$$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq --no-install-recommends chromium chromium-driver

protos: $(GEN_STAMP)

$(GEN_STAMP): $(VENV)/.synced $(PROTO_SRC) devstack/protogen.py $(wildcard gateway/*.py) gateway/health.lua gateway/sse_token.lua gateway/request_checks.lua gateway/responses.lua $(wildcard web/*.*)
	$(PY) -m devstack.protogen
	touch $@

run: protos
	$(PY) -m devstack

# buf lint and buf breaking (buf.yaml) first: an API change that breaks clients fails fast.
test: protos $(CHECKOV) $(CHROMEDRIVER)
	$(PY) -m devstack.apicheck
	$(PY) -m pytest $(PYTEST_ARGS)

# The console's screenshots in docs/screenshots/ (a stack of its own, Chromium at desktop and
# phone widths).
screenshots: protos $(CHROMEDRIVER)
	$(PY) -m devstack.screenshots

# Re-vendor the console's chart library from the npm registry, at the version web/package.json pins.
web-vendor:
	cd web && npm ci --ignore-scripts --no-audit --no-fund && \
	cp node_modules/lightweight-charts/dist/lightweight-charts.standalone.production.mjs vendor/ && \
	cp node_modules/lightweight-charts/LICENSE vendor/lightweight-charts.LICENSE

bench: protos
	$(PY) -m bench

apicheck: protos
	$(PY) -m devstack.apicheck

lint: venv
	$(VENV)/bin/ruff check services devstack gateway tests bench k8s
	$(VENV)/bin/ruff format --check services devstack gateway tests bench k8s

typecheck: protos
	$(VENV)/bin/mypy services devstack gateway

clean:
	rm -rf gen gateway/generated .pytest_cache

distclean: clean
	rm -rf $(VENV) $(TOOLS) .data
