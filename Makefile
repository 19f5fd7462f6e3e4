# The two set-up commands of the README: `make demo` and `make test`. Each does all
# set-up on a fresh machine: the venv, the Python packages, the cluster binaries.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
COMPILED := dataplane/weft_proxy/compiled.sha256
COMPILED_SOURCES := $(addprefix dataplane/,$(shell grep -v '^\#' dataplane/compiled.txt))

.PHONY: demo test lint typecheck unit binaries test-tools venv compile host-tools bench clean

venv: host-tools $(STAMP) $(COMPILED)

# Debian packages the tests drive for real (we are root): iptables for proxy-init in the
# network namespaces tests create; Prometheus to run Flagger's queries over proxy metrics
# (and as `weft viz install`'s Prometheus on the local cluster); Chromium and its driver
# for the dashboard's browser tests. A C compiler and Python's headers: mypyc's output
# (`compile`).
APT_INSTALL := apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq
host-tools:
	command -v iptables-restore >/dev/null || ($(APT_INSTALL) iptables)
	command -v ip >/dev/null || ($(APT_INSTALL) iproute2)
	command -v setpriv >/dev/null || ($(APT_INSTALL) util-linux)
	command -v prometheus >/dev/null || ($(APT_INSTALL) prometheus)
	command -v chromedriver >/dev/null || ($(APT_INSTALL) chromium chromium-driver)
	command -v cc >/dev/null || ($(APT_INSTALL) gcc)
	$(PYTHON) -c 'import sysconfig, pathlib, sys; sys.exit(not pathlib.Path(sysconfig.get_paths()["include"], "Python.h").exists())' \
		|| ($(APT_INSTALL) python3-dev)

$(STAMP): pyproject.toml setup.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip setuptools wheel
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The proxy's request path, compiled with mypyc beside its sources (setup.py; the list is
# dataplane/compiled.txt): the install above compiles it, and it is compiled again here
# when one of its sources changes, so that the tests and the local cluster run what ships.
compile: $(COMPILED)
$(COMPILED): dataplane/compiled.txt dataplane/mypyc.ini $(COMPILED_SOURCES) | $(STAMP)
	$(BIN)/python setup.py --quiet build_ext --inplace
	test -f $(COMPILED) || (echo "the proxy was not compiled: see the warning above" >&2; exit 1)

# Builds etcd and Kubernetes from Go modules the first time (cached outside the clone).
binaries: venv
	$(BIN)/weft cluster build

# And what the e2e suite runs for real (Prometheus, Flagger, Argo Rollouts): minutes cold,
# so `make demo` does not wait for them.
test-tools: venv
	$(BIN)/weft cluster build --test-tools

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: venv
	$(BIN)/mypy

test: test-tools lint typecheck
	$(BIN)/pytest

# ARGS=--once: non-interactive (plain tables; the exit code says how the canaries ended).
demo: binaries
	$(BIN)/weft demo $(ARGS)

# Benchmarks print figures (docs/benchmarks.md); they are not part of `make test`.
bench: binaries
	command -v haproxy >/dev/null && command -v nginx >/dev/null && command -v wrk >/dev/null \
		|| ($(APT_INSTALL) haproxy nginx wrk)
	$(BIN)/python benchmarks/proxy_http.py
	$(BIN)/python benchmarks/operator_scale.py --services 500

clean:
	-$(BIN)/weft cluster down
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache build
	find dataplane -name "*.so" -delete; rm -f $(COMPILED)
