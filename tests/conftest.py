"""Shared pytest configuration: the golden-file update flag and a private kernel cache."""

from __future__ import annotations

import os
import shutil
import tempfile
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


_created_cache: str | None = None  # the private cache this process made, removed at the end


def pytest_configure(config):
    # Tests build into their own cache, never into the user's (xdist's workers inherit the
    # variable, so only the process that made the folder removes it, at the end: each run
    # leaves about 200 MB of builds).
    global _created_cache
    if "LOOPWEAVE_CACHE_DIR" not in os.environ:
        _created_cache = tempfile.mkdtemp(prefix="loopweave-test-cache-")
        os.environ["LOOPWEAVE_CACHE_DIR"] = _created_cache


def pytest_unconfigure(config):
    global _created_cache
    if _created_cache is not None:
        shutil.rmtree(_created_cache, ignore_errors=True)
        del os.environ["LOOPWEAVE_CACHE_DIR"]
        _created_cache = None



@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    # Where Triton's interpreter cannot run at all (backends/triton.interpreter_problem: an old
    # Triton with a new numpy, as on the image of the first GPU check), a test that needs it
    # fails with that TargetError: it is reported as skipped, with the reason.
    outcome = yield
    report = outcome.get_result()
    if call.excinfo is None or report.when not in ("setup", "call"):
        return
    from loopweave.backends.triton import interpreter_problem

    problem = interpreter_problem()
    if problem is not None and problem in str(call.excinfo.value):
        report.outcome = "skipped"
        report.longrepr = (str(item.path), item.location[1] or 0, f"Skipped: {problem}")
