# Two commands for a newcomer: `make run` and `make test`. Everything else is a helper.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Test processes (pytest-xdist); each starts its own embedded PostgreSQL and broker. 0: serial.
TEST_WORKERS ?= 2

.PHONY: run test chaos fuzz lint typecheck unit asyncapi bench infra-up infra-down clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)  ## embedded PostgreSQL and Kafka (Tansu), migrations, all four services
	$(BIN)/dripline run

test: $(STAMP) lint typecheck  ## the whole suite: lint, types, import boundaries, tests
	scripts/fetch-prometheus.sh  # the Prometheus server tests/e2e/test_observability.py runs
	$(BIN)/pytest -n $(TEST_WORKERS)

chaos: $(STAMP)  ## faults: kill -9 and SIGSTOP of every service, PostgreSQL and the broker
	$(BIN)/pytest -m chaos -s tests/chaos

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy shared services dripline tests bench

BENCH_REPORT := .bench/figures.jsonl

bench: $(STAMP)  ## benchmarks (embedded servers of their own); prints figures, then a table
	mkdir -p .bench && rm -f $(BENCH_REPORT)
	export DRIPLINE_BENCH_REPORT=$(BENCH_REPORT); \
	$(BIN)/python -m bench.dispatch && \
	$(BIN)/python -m bench.firing && \
	$(BIN)/python -m bench.precision && \
	$(BIN)/python -m bench.engine && \
	$(BIN)/python -m bench.engine --senders 2 && \
	$(BIN)/python -m bench.engine --with-stats && \
	$(BIN)/python -m bench.bulk && \
	$(BIN)/python -m bench.imports && \
	$(BIN)/python -m bench.contacts && \
	$(BIN)/python -m bench.logs && \
	$(BIN)/python -m bench.stats && \
	$(BIN)/python -m bench.api_load && \
	$(BIN)/python -m bench.accounts
	$(BIN)/python -m bench.report $(BENCH_REPORT)  # the table, and .bench/figures.json

fuzz: $(STAMP)  ## schemathesis against the running API, all checks (DRIPLINE_FUZZ_SECONDS, 180)
	DRIPLINE_FUZZ=1 $(BIN)/pytest tests/api/test_fuzz.py -m fuzz -s -q

asyncapi: $(STAMP)  ## regenerate docs/asyncapi.json from the contracts
	$(BIN)/dripline asyncapi --output docs/asyncapi.json

infra-up: $(STAMP)
	$(BIN)/dripline infra up

infra-down: $(STAMP)
	$(BIN)/dripline infra down

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache *.egg-info
