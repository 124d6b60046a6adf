# Two commands: `make run` (everything up on embedded PostgreSQL + Redis, with demo data) and `make test`.
# DATABASE_URL / REDIS_URL point them at real servers instead.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# two workers, whole files each, the longest files first (tests/conftest.py, tests/durations.json)
PYTEST_ARGS ?= -n 2 --dist loadfile --no-loadscope-reorder

.PHONY: run test api-fuzz lint fmt venv messages makemessages stack-up stack-down bench-api clean

# translation catalogs: the reviewed .po files are committed, their .mo files are built here (README "Languages")
PO_FILES := $(wildcard locale/*/LC_MESSAGES/*.po)
MO_FILES := $(PO_FILES:.po=.mo)

venv: $(STAMP)

$(STAMP): requirements/base.txt requirements/dev.txt requirements/constraints.txt
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is required"' || exit 1
	@$(PYTHON) -m venv --help >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then apt-get update -qq && apt-get install -y -qq python3-venv; \
	  else echo "Install the venv module: sudo apt-get install python3-venv"; exit 1; fi; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || { \
	  echo "Could not create a virtualenv: sudo apt-get install python3-venv"; rm -rf $(VENV); exit 1; }
	$(BIN)/python -m pip install --quiet --upgrade pip wheel
	$(BIN)/python -m pip install --quiet -r requirements/dev.txt
	@touch $(STAMP)

messages: $(MO_FILES)

locale/%.mo: locale/%.po | $(STAMP)
	$(BIN)/python scripts/compile_messages.py $<

# after changing strings: add the new msgids to every catalog, translate them, commit the .po files
makemessages: venv
	DJANGO_SETTINGS_MODULE=evplatform.settings.test $(BIN)/python manage.py makemessages $(MAKEMESSAGES_ARGS)

# PEER=1: a second platform instance beside the demo, roaming with it over OCPI (scripts/stack.py peer_procfile)
run: venv messages
	EVP_PEER=$(PEER) $(BIN)/python scripts/stack.py run

test: venv messages
	$(BIN)/python scripts/stack.py test -- $(PYTEST_ARGS)

# schemathesis over every API operation against a real daphne on a seeded throwaway database (scripts/api_fuzz.py)
api-fuzz: venv messages
	$(BIN)/python scripts/api_fuzz.py -- $(API_FUZZ_ARGS)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	DJANGO_SETTINGS_MODULE=evplatform.settings.test $(BIN)/mypy
	DJANGO_SETTINGS_MODULE=evplatform.settings.test $(BIN)/python -W "ignore:Got an error checking a consistent:RuntimeWarning" manage.py makemigrations --check --dry-run
	$(BIN)/lint-imports

fmt: venv
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

stack-up: venv
	@$(BIN)/python scripts/stack.py up

stack-down: venv
	@$(BIN)/python scripts/stack.py down

clean:
	$(BIN)/python scripts/stack.py down || true
	rm -rf .data
