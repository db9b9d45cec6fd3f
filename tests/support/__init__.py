"""Test harnesses and helpers that are not part of the runtime packages."""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
"""The checkout the tests run from (configs/, scripts/, benchmarks/)."""
