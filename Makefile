# Participants Portal — the set-up contract.
#
#   make run     create a venv, install, migrate, create a demo account on first start,
#                serve on http://127.0.0.1:5000 with gunicorn (gunicorn.conf.py) and run the
#                background worker beside it (scripts/serve.sh; Ctrl-C or TERM stops both)
#   make test    install the test extras, Debian's chromium, systemd and redis, run the whole
#                pytest suite (pass extra arguments with PYTEST_ARGS='-k login -v'; TEST_WORKERS=2
#                runs it on two pytest-xdist workers)
#   make dev     the same with Flask's development server and its reloader, no worker
#   make bench   run every tests/bench/bench_*.py script on SQLite and PostgreSQL and print one
#                table of their figures beside their budgets (and bench.json); under 10 minutes
#   make python  say which Python make takes (and its venv)
#   make lock    refresh requirements.lock and requirements-test.lock after editing
#                pyproject.toml (UPGRADE=1 moves every package to its newest allowed release)
#
# Python: the newest of python3.13, python3.12, python3.11 (then python3) that runs, or
# PYTHON=/path/to/python3.x. Each Python gets its own venv (.venv-3.13, ...); .venv links to the
# one used last. Installs are stamp-based: pip only runs again when a lock file or
# pyproject.toml is newer than the stamp, and installs exactly the locked, hash-checked files.

SHELL := /bin/bash

SUPPORTED_PYTHONS := 3.13 3.12 3.11
# A pyenv shim of a version that is not active fails to run, so it is passed over.
PYTHON ?= $(shell for candidate in $(addprefix python,$(SUPPORTED_PYTHONS)) python3; do \
    if "$$candidate" -c 'import sys; sys.exit(not (3, 11) <= sys.version_info[:2] <= (3, 13))' \
        >/dev/null 2>&1; then echo "$$candidate"; break; fi; done)
PYTHON := $(PYTHON)
PYTHON_VERSION := $(if $(PYTHON),$(shell $(PYTHON) -c \
    'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null))
VENV   := .venv-$(PYTHON_VERSION)
PY     := $(VENV)/bin/python
FLASK  := $(VENV)/bin/flask --app wsgi
HOST   := 127.0.0.1
PORT   ?= 5000
PYTEST_ARGS ?=
LOCK      := requirements.lock
TEST_LOCK := requirements-test.lock
UV_VERSION := 0.13.9

# apt-get needs root; use sudo only when we are not root already.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run dev test test-deps deps bench lock python check-python clean-venv

# --- environment -------------------------------------------------------------------------

check-python:
	$(if $(filter $(PYTHON_VERSION),$(SUPPORTED_PYTHONS)),,$(error No Python 3.11-3.13 found$(if \
	    $(PYTHON), ($(PYTHON) is $(or $(PYTHON_VERSION),not runnable))): install python3.13 \
	    (Debian/Ubuntu: apt-get install python3 python3-venv) or run make PYTHON=/path/to/python3.x))

# Which Python make takes, and its venv.
python: check-python
	@echo "$(PYTHON) (Python $(PYTHON_VERSION)) in $(VENV)"

$(PY): | check-python
	$(PYTHON) -m venv $(VENV) || { rm -rf $(VENV); \
	    echo "$(PYTHON) cannot create a venv: install its venv module (Debian/Ubuntu: apt-get install python$(PYTHON_VERSION)-venv)" >&2; exit 1; }

# .venv points at the venv used last, unless it is a directory of its own (an older checkout's).
define link_venv
@if [ -L .venv ] || [ ! -e .venv ]; then ln -sfn $(VENV) .venv; \
else echo "Note: .venv is an older venv that make no longer updates; it installed $(VENV) (rm -rf .venv to get a link to it)." >&2; fi
endef

# The project itself goes in without dependencies: every one must come from the lock.
define check_installed
@$(PY) -m pip check >/dev/null || { $(PY) -m pip check; \
    echo "The installed packages do not satisfy pyproject.toml: run make lock" >&2; exit 1; }
endef

$(VENV)/.installed: $(LOCK) pyproject.toml | $(PY)
	$(PY) -m pip install --quiet --require-hashes -r $(LOCK)
	$(PY) -m pip install --quiet --no-deps -e .
	$(check_installed)
	touch $@

$(VENV)/.installed-test: $(TEST_LOCK) pyproject.toml | $(PY)
	$(PY) -m pip install --quiet --require-hashes -r $(TEST_LOCK)
	$(PY) -m pip install --quiet --no-deps -e .
	$(check_installed)
	touch $@

# Debian packages the tests use: chromium (Playwright drives it; its own browser download is never
# used), systemd (tests/deploy verifies the units), redis-server (the shared rate-limit store).
SYSTEM_TOOLS := /usr/bin/chromium /usr/bin/systemd-analyze /usr/bin/redis-server
$(SYSTEM_TOOLS) &:
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get update
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y \
	    chromium systemd redis-server

deps: $(VENV)/.installed
	$(link_venv)

test-deps: $(VENV)/.installed-test $(SYSTEM_TOOLS)
	$(link_venv)

# One lock for every supported Python (markers where they differ), every file's hash; the
# runtime lock takes the test lock's versions, so both install the same releases.
lock: | $(PY)
	$(PY) -m pip install --quiet "uv==$(UV_VERSION)"
	$(VENV)/bin/uv pip compile pyproject.toml --extra test --universal --python-version 3.11 \
	    --generate-hashes --custom-compile-command 'make lock' $(if $(UPGRADE),--upgrade) \
	    --quiet -o $(TEST_LOCK)
	$(VENV)/bin/uv pip compile pyproject.toml --universal --python-version 3.11 \
	    --generate-hashes --custom-compile-command 'make lock' -c $(TEST_LOCK) \
	    --quiet -o $(LOCK)
	@echo "Wrote $(LOCK) and $(TEST_LOCK)."

# --- targets -----------------------------------------------------------------------------

# Links in e-mails point at this server unless PORTAL_BASE_URL says otherwise.
run dev: export PORTAL_BASE_URL ?= http://$(HOST):$(PORT)
run: deps
	$(FLASK) db upgrade
	$(FLASK) bootstrap
	@exec scripts/serve.sh $(VENV) $(HOST) $(PORT)

dev: deps
	$(FLASK) db upgrade
	$(FLASK) bootstrap
	$(FLASK) run --debug --host $(HOST) --port $(PORT)

# pytest's exit code 5 ("no tests collected") is not a failure. TEST_WORKERS=2 runs the suite on
# two pytest-xdist workers (each its own databases, SMTP server and Chromium; the timing-sensitive
# tests on one worker: tests/conftest.py); 0, the default until whole runs have shown it stable
# on both databases, runs it in this one process.
TEST_WORKERS ?= 0
# Compiled bytecode is kept (__pycache__, ignored by git) even where PYTHONDONTWRITEBYTECODE is
# set: else every pytest process and every gunicorn, worker and CLI process a test starts compiles
# the portal and its libraries again (importing the app: 5.3 s CPU without, 2.1 s with).
test: test-deps
	@PYTHONDONTWRITEBYTECODE= $(PY) -m pytest $(if $(filter-out 0,$(TEST_WORKERS)),-n $(TEST_WORKERS) --dist loadgroup) \
	    $(PYTEST_ARGS); status=$$?; \
	if [ $$status = 5 ]; then echo "pytest collected no tests"; exit 0; fi; exit $$status

# One table (and bench.json) of every tests/bench/bench_*.py figure on SQLite and PostgreSQL
# (tests/bench/aggregate.py). PostgreSQL: PORTAL_BENCH_DATABASE_URL names a server whose role may
# create databases, else a throw-away cluster is started (.ci/pg.sh) and stopped afterwards;
# BENCH_DATABASES=sqlite skips it. BENCH_ARGS='--size tiny --only users_list' narrows it;
# BENCH_ARGS='--jobs 1' runs the SQLite and PostgreSQL runs one after the other, not side by side.
BENCH_ARGS ?=
BENCH_DATABASES ?= sqlite postgresql
bench: test-deps
	@source .ci/pg.sh; url=; \
	if [[ " $(BENCH_DATABASES) " == *" postgresql "* ]]; then \
	    url=$${PORTAL_BENCH_DATABASE_URL:-}; \
	    if [ -z "$$url" ]; then trap pg_stop EXIT; pg_start >&2 || exit 1; url=$$PG_URL; fi; \
	fi; \
	PYTHONPATH=$(CURDIR) $(PY) tests/bench/aggregate.py $${url:+--database-url "$$url"} $(BENCH_ARGS)

clean-venv:
	rm -rf .venv .venv-3.*
