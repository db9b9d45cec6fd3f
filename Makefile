# Two commands do everything on a fresh Debian/Ubuntu machine: `make demo` and `make test`.
# `make setup` installs the project into .venv (editable), so nothing needs PYTHONPATH.
SHELL := /bin/bash
PY := .venv/bin/python
export EDGE_DATA_DIR ?= $(abspath ../shared/data)

# The pure tests: no broker, database, RTSP server, browser or video pipeline (< 2 min on two cores;
# the event-payload property test, ~25 s, runs in `make test`).
FAST_TESTS := tests/unit tests/fuzz/test_config_fuzz.py

.PHONY: setup demo test test-fast test-unit typecheck lint wheel analyze-bench clean

setup:
	@bash scripts/setup.sh

demo: setup
	@$(PY) scripts/demo.py

test: setup
	@.venv/bin/ruff check .
	@.venv/bin/mypy
	@$(PY) -m pytest tests

test-fast: setup
	@$(PY) -m pytest -q $(FAST_TESTS)

test-unit: setup
	@$(PY) -m pytest tests/unit

# mypy on the core packages ([tool.mypy] files in pyproject.toml); `make test` runs it too.
typecheck: setup
	@.venv/bin/mypy

lint: setup
	@.venv/bin/ruff check .

# A wheel of the project in var/dist (python -m pip install var/dist/ioc_edge-*.whl elsewhere).
wheel: setup
	@$(PY) -m pip wheel -q --no-deps -w var/dist .
	@ls var/dist/*.whl

# Analysed frames per second of `edge analyze` on the sample intersection video (docs/benchmarks.md).
analyze-bench: setup
	@$(PY) -m edge analyze hanoi_lythuongkiet_hangbai_intersection_trafficlight.mp4 \
	  --config configs/cameras/hanoi_lythuongkiet_hangbai_intersection_trafficlight.yaml --out var/analyze/hanoi \
	  --start-time 2026-01-01T08:00:00+07:00

clean:
	rm -rf var .pytest_cache .ruff_cache .mypy_cache
