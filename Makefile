# The two commands: `make run` and `make test`. Everything else is for developers and CI.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Reinstall whenever pyproject.toml changes.
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
PG_TEST_URL ?= postgresql://postgres@127.0.0.1:5432/test

.PHONY: install run test integration e2e-deps lint bench bench-payments bench-notify bench-risk bench-replay bench-reports bench-suspension clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	rm -f $(VENV)/.installed-*
	touch $@

install: $(STAMP)

## Start the platform on SQLite with demo data and the issuer simulator.
run: install
	$(BIN)/haetae serve --demo

## Unit and browser tests on the embedded defaults (SQLite, in-process bus).
test: install
	$(BIN)/pytest tests/unit tests/e2e

## The same suite and the integration tests against the real PostgreSQL.
integration: install
	HAETAE_TEST_DATABASE_URL=$(PG_TEST_URL) $(BIN)/pytest tests/unit tests/integration

## Debian's Chromium and a Korean font for the browser tests (Playwright cannot download
## browsers here; without the font, Korean text renders as empty boxes in screenshots),
## and Pango, which WeasyPrint needs to lay out the safety report as PDF.
e2e-deps:
	@if ! command -v chromium >/dev/null || ! fc-list 2>/dev/null | grep -qi nanum \
		|| ! ldconfig -p | grep -q libpangoft2; then \
		apt-get update -qq && apt-get install -y -qq chromium fonts-nanum libpango-1.0-0 libpangoft2-1.0-0; fi

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

## Benchmarks (bench/README.md): each writes its own section of bench/RESULTS.md.
bench: bench-payments bench-notify bench-risk bench-replay bench-reports bench-suspension

bench-payments: install
	$(BIN)/python bench/payments.py

bench-notify: install
	$(BIN)/python bench/notify.py

bench-risk: install
	$(BIN)/python bench/risk.py

bench-replay: install
	$(BIN)/python bench/replay.py

bench-reports: install
	$(BIN)/python bench/reports.py

bench-suspension: install
	$(BIN)/python bench/suspension.py

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
