# Two commands do everything on a fresh Debian/Ubuntu machine: `make demo` and `make test`.
SHELL := /bin/bash
PY := .venv/bin/python
export EDGE_DATA_DIR ?= $(abspath ../shared/data)
export PYTHONPATH := $(CURDIR)

.PHONY: setup demo test test-unit lint analyze-bench clean

setup:
	@bash scripts/setup.sh

demo: setup
	@$(PY) scripts/demo.py

test: setup
	@.venv/bin/ruff check .
	@$(PY) -m pytest tests

test-unit: setup
	@$(PY) -m pytest tests/unit

lint: setup
	@.venv/bin/ruff check .

# Analysed frames per second of `edge analyze` on the sample intersection video (docs/benchmarks.md).
analyze-bench: setup
	@$(PY) -m edge analyze hanoi_lythuongkiet_hangbai_intersection_trafficlight.mp4 \
	  --config configs/cameras/hanoi_lythuongkiet_hangbai_intersection_trafficlight.yaml --out var/analyze/hanoi

clean:
	rm -rf var .pytest_cache .ruff_cache
