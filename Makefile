# The two commands of the README's quickstart: `make demo` and `make test`.
# Both set up a local virtualenv (.venv) first; nothing outside the repo is touched
# except the Postgres server that `make test` installs and starts on 127.0.0.1.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO := integration_tests
DBT := cd $(DEMO) && ../$(BIN)/dbt

.PHONY: demo test lint setup postgres clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[test]"
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	cd $(DEMO) && ../$(BIN)/python scripts/load_data.py
	$(DBT) deps --profiles-dir . --quiet
	$(DBT) build --profiles-dir .

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Outside CI a machine without Postgres still runs the suite; the Postgres tests then skip.
postgres:
	./scripts/start_postgres.sh || [ -z "$$CI" ]

test: $(STAMP) lint postgres
	$(BIN)/pytest -ra

clean:
	rm -rf $(VENV) $(DEMO)/target $(DEMO)/dbt_packages $(DEMO)/*.duckdb
