"""Shared pytest configuration: the golden-file update flag and a private kernel cache."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

GOLDEN = Path(__file__).resolve().parent / "golden"


def pytest_addoption(parser):
    parser.addoption("--update-golden", action="store_true",
                     help="rewrite tests/golden/* from the current code generator")


@pytest.fixture
def update_golden(request) -> bool:
    return request.config.getoption("--update-golden")


@pytest.fixture
def check_golden():
    """check(file name, text, update): compare generated text with tests/golden/<file name>."""
    def check(name: str, text: str, update: bool) -> None:
        golden = GOLDEN / name
        if update or not golden.exists():
            golden.write_text(text)
            if not update:
                pytest.fail(f"created {golden}; review it and rerun")
        assert text == golden.read_text(), f"generated code {name} changed; review the diff " \
                                            "and rerun with --update-golden if it is intended"
    return check


def pytest_configure(config):
    # Tests build into their own cache, never into the user's.
    if "LOOPWEAVE_CACHE_DIR" not in os.environ:
        import tempfile

        os.environ["LOOPWEAVE_CACHE_DIR"] = tempfile.mkdtemp(prefix="loopweave-test-cache-")
