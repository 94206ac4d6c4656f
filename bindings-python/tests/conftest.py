"""Shared fixtures: where the corpus is, and whether it is required."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CORPUS = Path(os.environ.get("IMGEST_CORPUS", REPO.parent / "shared" / "corpus"))
SAMPLE = REPO / "examples" / "cli" / "sample" / "sunrise.jpg"


@pytest.fixture(scope="session")
def corpus() -> Path:
    if not (CORPUS / "EXPECTED.json").exists():
        if os.environ.get("IMGEST_REQUIRE_CORPUS") == "1":
            pytest.fail(f"IMGEST_REQUIRE_CORPUS=1 but no corpus at {CORPUS}")
        pytest.skip(f"no corpus at {CORPUS} (set IMGEST_CORPUS)")
    return CORPUS


@pytest.fixture(scope="session")
def sample() -> bytes:
    return SAMPLE.read_bytes()
