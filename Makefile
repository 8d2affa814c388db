# Everyday verbs. Each one sets itself up on a fresh machine: it creates .venv
# if missing and installs the project (pinned by requirements.lock) first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
ARGS ?=

.PHONY: install system-deps test test-fast sweep train ui dashboard tracking-server bench gpu-check wheelhouse lint clean-cache

## the project and its pinned dependencies, installed by uv (pinned in requirements.lock too): the same
## packages at the same versions as pip installs them (pip freeze compared), in half pip's time
## (docs/benchmarks.md). Byte-compiled at install, as pip does: where PYTHONDONTWRITEBYTECODE is set (the
## machines this project is tested on set it), nothing compiles a module later, and every process would
## compile its 3,000 modules again at its start.
## pip stays in the venv, upgraded as before.
$(STAMP): pyproject.toml requirements.lock
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -c requirements.lock uv
	$(VENV)/bin/uv pip install -q --compile-bytecode --python $(PY) -c requirements.lock -e '.[dev,jax,ray]' \
	  pip --upgrade-package pip
	@touch $(STAMP)

install: $(STAMP)

## the Debian packages the tests need (the one place that says which): Chromium for the browser test of
## the MLflow UI, PostgreSQL's server binaries for the scale-out tests (openssl for its TLS certificate),
## iproute2 and util-linux for the loopback-only network namespace the Ray tests run in. As root, installs
## what is missing; as another user, stops with the command to run.
SYSTEM_PACKAGES ?= chromium postgresql openssl iproute2 util-linux
system-deps:
	@missing=""; \
	for pkg in $(SYSTEM_PACKAGES); do \
	  case $$pkg in \
	    chromium) command -v chromium >/dev/null 2>&1 || missing="$$missing $$pkg" ;; \
	    postgresql) ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing $$pkg" ;; \
	    iproute2) command -v ip >/dev/null 2>&1 || missing="$$missing $$pkg" ;; \
	    util-linux) command -v unshare >/dev/null 2>&1 || missing="$$missing $$pkg" ;; \
	    *) dpkg -s $$pkg >/dev/null 2>&1 || missing="$$missing $$pkg" ;; \
	  esac; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" != 0 ]; then \
	    echo "error: the tests need Debian packages that are missing:$$missing; install them with: sudo apt-get install -y$$missing" >&2; \
	    exit 1; \
	  fi; \
	  echo "installing the Debian packages the tests need:$$missing (apt-get, once)"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get update -qq && apt-get install -y -qq$$missing >/dev/null || exit 1; \
	fi

## the whole test suite, slow end-to-end tests included, then the layer and model tests on the JAX backend,
## then the Ray tests in a loopback-only network namespace: every pass runs; one summary line each (ARGS go
## to pytest)
test: $(STAMP) system-deps
	$(PY) -m tests.support.passes $(ARGS)

## the inner loop: everything but the slow tests (TensorFlow backend)
test-fast: $(STAMP)
	$(PY) -m pytest -m "not slow" $(ARGS)

## the default sweep on the shipped MovieLens data (overrides: make sweep ARGS="...")
sweep: $(STAMP)
	$(PY) -m src.sweep $(ARGS)

train: $(STAMP)
	$(PY) -m src.train $(ARGS)

## the MLflow UI on the project's store, http://127.0.0.1:5000
ui: $(STAMP)
	$(PY) -m src.tools.ui $(ARGS)

## the shared MLflow tracking server with basic authentication (admin password from MLFLOW_AUTH_ADMIN_PASSWORD),
## on 127.0.0.1 unless ARGS name a --host (docs/scale-out.md, docs/security.md)
tracking-server: $(STAMP)
	$(PY) -m src.tools.server $(ARGS)

## Optuna's dashboard on the local study journal, read-only, http://127.0.0.1:8080
## (another study storage: make dashboard ARGS="postgresql://lab@DBHOST/optuna")
dashboard: $(STAMP)
	$(PY) -m src.tools.dashboard $(ARGS)

## training throughput beside the plain Keras baseline
bench: $(STAMP)
	$(PY) -m src.bench $(ARGS)

## the device check: devices per backend, throughput per backend and precision, a sweep with 2 trials per GPU
gpu-check: $(STAMP)
	$(PY) -m src.tools.gpu_check $(ARGS)

## wheels of the pinned dependencies for a machine without a package index (Linux x86-64, this Python),
## less what such a machine brings (EXCLUDE); there: pip install --no-index --find-links wheelhouse
##   -r wheelhouse/requirements.txt && pip install --no-deps -e .
EXCLUDE ?= tensorflow tensorboard tensorboard-data-server jax jaxlib
wheelhouse: $(STAMP)
	mkdir -p wheelhouse
	grep -v -i -E "^($(shell echo $(EXCLUDE) | tr ' ' '|'))==" requirements.lock > wheelhouse/requirements.txt
	$(PY) -m pip download -q --no-deps --only-binary=:all: -d wheelhouse -r wheelhouse/requirements.txt
	du -sh wheelhouse

lint: $(STAMP)
	$(PY) -m ruff check src tests

clean-cache:
	rm -rf data/cache
