# enrolldb developer entry points. `make test` and `make demo` work on a fresh clone:
# they create .venv (editable install with the dev extras) on first use and whenever
# pyproject.toml changes, then find PostgreSQL on their own (see README / docs/reference.md,
# Deployment).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed.stamp

.PHONY: all test lint pytest demo bench bench-import stress schema-snapshot venv clean

all: test

venv: $(STAMP)

$(STAMP): pyproject.toml
	@echo "==> setting up $(VENV)"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

lint: $(STAMP)
	@echo "==> sqlfluff lint migrations sql"
	@$(BIN)/sqlfluff lint migrations sql --disable-progress-bar
	@echo "==> ruff check"
	@$(BIN)/ruff check -q python tests bench migrations/post-apply.py
	@echo "==> ruff format --check"
	@$(BIN)/ruff format -q --check python tests bench migrations/post-apply.py
	@echo "==> mypy"
	@$(BIN)/mypy

pytest: $(STAMP)
	@echo "==> pytest"
	@$(BIN)/python -m pytest -q $(PYTEST_ARGS)

# Lint and tests both run (so CI logs always show the pytest summary); fails if either does.
test: $(STAMP)
	@status=0; \
	$(MAKE) --no-print-directory lint || status=1; \
	$(MAKE) --no-print-directory pytest || status=1; \
	exit $$status

demo: $(STAMP)
	@$(BIN)/enrolldb demo

# Linking measured side by side in one run (bench/run.py): enrolldb, the upstream row-by-row
# sequence and the set-based floor at N = 1k, 10k, 100k (`make bench N=1000` for one size;
# CI runs that as a smoke test that the three paths end with identical rows), load-then-link
# without ANALYZE, matriculate_learner latency, the CLI's peak RSS. Prints each target with
# PASS/FAIL; writes bench/results/latest.{json,md} and learners_per_second.png. Then the
# import's rows/s at IMPORT_N learners (33,000 learners: about 110,000 program course
# enrollments; `make bench-import` alone takes BENCH_ARGS such as --learners 300000).
N ?= 1000,10000,100000
BENCH_STAMP := $(VENV)/.bench.stamp

$(BENCH_STAMP): $(STAMP)
	@$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[dev,bench]' \
		|| echo "==> could not install the bench extra (matplotlib): no chart this time"
	@touch $(BENCH_STAMP)

IMPORT_N ?= 1000,10000,33000

bench: $(BENCH_STAMP)
	@$(BIN)/python bench/run.py --sizes $(N) $(BENCH_ARGS)
	@echo "==> enrolldb import: rows/s against the export's size (bench/import_scale.py)"
	@$(BIN)/python bench/import_scale.py --learners $(IMPORT_N)

# enrolldb import throughput (rows/s) at 1k/10k/33k learners of the demo export.
bench-import: $(STAMP)
	@$(BIN)/python bench/import_scale.py $(BENCH_ARGS)

# About a minute of random concurrent API calls on a scratch database; prints its seed.
# Replay with `make stress SEED=<seed>` (tests/stress_world.py --help for more options).
stress: $(STAMP)
	@$(BIN)/python tests/stress_world.py $(if $(SEED),--seed $(SEED)) $(STRESS_ARGS)

# Regenerate the committed catalog snapshot from a freshly migrated scratch database.
schema-snapshot: $(STAMP)
	@$(BIN)/python -m enrolldb.schema_snapshot --scratch -o sql/schema.snapshot
	@echo "wrote sql/schema.snapshot"

clean:
	rm -rf $(VENV) build dist python/*.egg-info .mypy_cache .ruff_cache .pytest_cache
	find python tests migrations -name __pycache__ -type d -prune -exec rm -rf {} +
