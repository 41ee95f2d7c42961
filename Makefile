# Participants Portal — the set-up contract.
#
#   make run     create .venv, install, migrate, create a demo account on first start,
#                serve on http://127.0.0.1:5000 (and deliver mail in the background when
#                PORTAL_MAIL_SERVER is set)
#   make test    install the test extras and Debian's chromium, run the whole pytest suite
#                (pass extra arguments with PYTEST_ARGS='-k login -v')
#   make bench   run every tests/bench/bench_*.py script
#
# Installs are stamp-based: pip only runs again when pyproject.toml is newer than the stamp.

SHELL := /bin/bash

PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
FLASK  := $(VENV)/bin/flask --app wsgi
HOST   := 127.0.0.1
PORT   ?= 5000
PYTEST_ARGS ?=

# apt-get needs root; use sudo only when we are not root already.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test test-deps deps bench clean-venv

# --- environment -------------------------------------------------------------------------

$(PY):
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(PY)
	$(PY) -m pip install -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(PY)
	$(PY) -m pip install -e '.[test]'
	touch $@

# Playwright drives Debian's chromium; its own browser download is never used.
/usr/bin/chromium:
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get update
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y chromium

deps: $(VENV)/.installed

test-deps: $(VENV)/.installed-test /usr/bin/chromium

# --- targets -----------------------------------------------------------------------------

# Links in e-mails point at this server unless PORTAL_BASE_URL says otherwise.
run: export PORTAL_BASE_URL ?= http://$(HOST):$(PORT)
run: deps
	$(FLASK) db upgrade
	$(FLASK) bootstrap
	@if [ -n "$$PORTAL_MAIL_SERVER" ]; then \
	    echo "PORTAL_MAIL_SERVER is set: delivering the outbox in the background."; \
	    $(FLASK) outbox deliver --loop & deliverer=$$!; \
	    trap 'kill $$deliverer 2>/dev/null; wait $$deliverer 2>/dev/null' EXIT; \
	    trap 'exit 130' INT; trap 'exit 143' TERM; \
	fi; \
	$(FLASK) run --host $(HOST) --port $(PORT)

# pytest's exit code 5 ("no tests collected") is not a failure.
test: test-deps
	@$(PY) -m pytest $(PYTEST_ARGS); status=$$?; \
	if [ $$status = 5 ]; then echo "pytest collected no tests"; exit 0; fi; exit $$status

bench: test-deps
	@shopt -s nullglob; scripts=(tests/bench/bench_*.py); \
	if [ $${#scripts[@]} -eq 0 ]; then echo "No tests/bench/bench_*.py scripts."; exit 0; fi; \
	failed=0; \
	for script in "$${scripts[@]}"; do \
	    echo "== $$script"; \
	    PYTHONPATH=$(CURDIR) $(PY) "$$script" || { echo "!! $$script failed"; failed=1; }; \
	done; \
	exit $$failed

clean-venv:
	rm -rf $(VENV)
