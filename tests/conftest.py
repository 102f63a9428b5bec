"""Shared pytest configuration: the golden-file update flag and a private kernel cache."""

from __future__ import annotations

import os

import pytest


def pytest_addoption(parser):
    parser.addoption("--update-golden", action="store_true",
                     help="rewrite tests/golden/* from the current code generator")


@pytest.fixture
def update_golden(request) -> bool:
    return request.config.getoption("--update-golden")


def pytest_configure(config):
    # Tests build into their own cache, never into the user's.
    if "LOOPWEAVE_CACHE_DIR" not in os.environ:
        import tempfile

        os.environ["LOOPWEAVE_CACHE_DIR"] = tempfile.mkdtemp(prefix="loopweave-test-cache-")
