# Common loops.  `make demo` and `make test` are the README's two commands: each creates or
# refreshes the local virtualenv (.venv) first, so a fresh machine needs only Python 3.11+.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO := build/demo-catalog
EC := $(BIN)/evidence-catalog

.PHONY: venv case-venv demo test test-fast lint bench schemas clean

# pip byte-compiles what it installs: keep it so.  Where PYTHONDONTWRITEBYTECODE is set (as on
# CI machines) nothing else writes .pyc files, and every process a test starts would compile
# the dependencies again (with --no-compile the SQLite pass took 8 min instead of 5.5).
$(STAMP): pyproject.toml .ci/constraints.txt hatch_build.py evidence_catalog/_commitments.c
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c .ci/constraints.txt -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

# case-utils (CASE/UCO's case_validate) checks the CASE exports in the tests.  It has a virtualenv
# of its own: it pins rdflib, pyshacl, pandas and numpy, which the library does not need.  0.18.0
# bundles CASE/UCO 1.5.0, the version the export targets (tests/test_export_case.py).
CASE_VENV := build/case-venv
CASE_STAMP := $(CASE_VENV)/.installed
CASE_UTILS := case-utils==0.18.0

$(CASE_STAMP): .ci/case-constraints.txt
	$(PYTHON) -m venv $(CASE_VENV)
	$(CASE_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(CASE_VENV)/bin/python -m pip install --quiet -c .ci/case-constraints.txt '$(CASE_UTILS)'
	touch $(CASE_STAMP)

case-venv: $(CASE_STAMP)

# The demo keeps its verifications' memory (remembered checkpoints) in build/, made anew each
# run: a demo catalog made again at the same path is a new catalog, not a replaced one, and the
# demo's catalogs do not fill the user's own memory.
demo: export XDG_STATE_HOME := $(CURDIR)/build/demo-state
demo: $(STAMP)
	rm -rf $(DEMO) $(DEMO)-bag $(DEMO)-case.jsonld $(DEMO)-partner build/demo-state
	$(EC) init $(DEMO) --operator "Demo Analyst <analyst@example.org>" --digest md5
	$(EC) add --catalog $(DEMO) --tag demo --source-url "https://example.org/synthetic" \
	    examples/*.jpg examples/*.png examples/*.pdf examples/*.txt examples/*.wav
	$(BIN)/python examples/capture_demo.py $(DEMO)
	$(EC) ingest --catalog $(DEMO) --tag demo examples/feeds/demo-digest.txt
	$(EC) search --catalog $(DEMO) school
	$(EC) link --catalog $(DEMO) --suggest
	$(EC) link --catalog $(DEMO) --note "its link card names this video" $$($(EC) link --catalog $(DEMO) --suggest \
	    --json | $(BIN)/python -c "import json,sys; s=json.load(sys.stdin)[0]; print(s['report_id'], s['record_id'])")
	$(EC) list --catalog $(DEMO)
	$(EC) show --catalog $(DEMO) $$($(EC) list --catalog $(DEMO) --json | $(BIN)/python -c \
	    "import json,sys; print(next(r['id'] for r in json.load(sys.stdin) if r['title'].endswith('.jpg')))")
	$(EC) show --catalog $(DEMO) $$($(EC) list --catalog $(DEMO) --json | $(BIN)/python -c \
	    "import json,sys; print(next(r['id'] for r in json.load(sys.stdin) if 'demo page' in r['title']))")
	$(EC) similar --catalog $(DEMO) $$($(EC) list --catalog $(DEMO) --json | $(BIN)/python -c \
	    "import json,sys; print(next(r['id'] for r in json.load(sys.stdin) if r['title'].endswith('.jpg')))")
	$(EC) verify --catalog $(DEMO)
	$(EC) log --catalog $(DEMO)
	$(EC) export --catalog $(DEMO) --format bagit --output $(DEMO)-bag
	$(EC) export --catalog $(DEMO) --format case --output $(DEMO)-case.jsonld
	$(BIN)/bagit.py --validate --quiet $(DEMO)-bag && echo "bagit-python: $(DEMO)-bag is a valid bag"
	$(PYTHON) -I -S docs/verify_bag.py $(DEMO)-bag
	$(EC) checkpoint --catalog $(DEMO)
	$(EC) init $(DEMO)-partner --operator "Partner Analyst <partner@example.org>"
	$(EC) import --catalog $(DEMO)-partner $(DEMO)-bag
	$(EC) verify --catalog $(DEMO)-partner

# The suite runs twice: every catalog in SQLite, then every catalog in a real PostgreSQL server
# the tests start themselves (needs PostgreSQL's server binaries: apt-get install postgresql;
# without them the second run is left out, and says so -- under CI it fails instead).
# Left out of the PostgreSQL run: tests that make no catalog, and those that choose their
# databases themselves and already run on both (migrations, concurrency, crashes, blob stores,
# PostgreSQL's own cases), the add's worker against changing files and its look-ahead (what it
# stores, not where the records go: test_add_offload runs in both), and single tests marked
# `no_postgresql_pass` (tests/conftest.py).  Also left out: which extractor a capture picks and
# which requests it makes (capture_matching, capture_requests), which no database has a part in;
# the records a capture writes are tested on both (test_capture, test_capture_cli, test_ingest_url).
# Property tests draw a quarter of their examples there (tests/conftest.py).
PG_IGNORE := $(foreach f,merkle model serialize hashing digest custody blobstore objectstore migrations postgresql \
	concurrency crash crash_migration perceptual credentials similarity analysis_model stored_hash \
	add_offload_races add_offload_lookahead capture_matching capture_requests,--ignore=tests/test_$(f).py)

# With eatmydata installed (Debian's package of that name) the tests run under it: fsync and
# sync return at once.  What the tests check is unchanged: a killed process leaves its written
# pages in the page cache whether or not they were flushed, and no test cuts the power; the
# test PostgreSQL server runs with fsync off for the same reason.  About a sixth of the
# suite's time on a virtual disk went to waiting for flushes.
EATMYDATA := $(shell command -v eatmydata 2>/dev/null)

# The tests write bytecode, also where PYTHONDONTWRITEBYTECODE is set (as on CI machines): else
# pytest rewrites the asserts of every test module again in each of its four processes (7 s
# of the 11 s each takes to collect the suite on a 2-core machine) and every interpreter a
# test starts compiles the library and the test modules it imports again.  What is written is
# __pycache__ in this checkout, which git ignores.
TESTING := PYTHONDONTWRITEBYTECODE= $(EATMYDATA)

test: $(STAMP) $(CASE_STAMP)
	$(TESTING) $(BIN)/python -m pytest -q -n 2 --dist worksteal
	@if $(BIN)/python -c "import sys; from tests.pg_server import find_bindir; sys.exit(find_bindir() is None)"; then \
	    $(TESTING) $(BIN)/python -m pytest -q -n 2 --dist worksteal --backend postgresql $(PG_IGNORE); \
	elif [ -n "$$CI" ]; then echo "PostgreSQL is not installed: the PostgreSQL run cannot run" >&2; exit 1; \
	else echo "PostgreSQL is not installed (apt-get install postgresql): the PostgreSQL run is left out" >&2; fi

# The quick loop while working: the SQLite pass without the tests marked `slow` (kill loops,
# concurrency, big property runs, scale), which take most of its time.  `make test` runs them.
test-fast: $(STAMP) $(CASE_STAMP)
	$(TESTING) $(BIN)/python -m pytest -q -n 2 --dist worksteal -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff check evidence_catalog tests benchmarks schemas docs examples hatch_build.py
	$(BIN)/ruff format --check evidence_catalog tests benchmarks schemas docs examples hatch_build.py
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

schemas: $(STAMP)
	$(BIN)/python schemas/generate.py

clean:
	rm -rf build $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
