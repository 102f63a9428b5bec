"""The `loopweave` command: --version, run/check against program order, one-line errors with
exit status 2 for bad arguments, `db` commands that never create the file they read, and a
document for every subcommand."""

from __future__ import annotations

import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

import loopweave
from loopweave.autotune import Database
from loopweave.autotune.database import Record
from loopweave.cli import build_parser, main

MATMUL = """
kernel matmul(A: f32[M, K], B: f32[K, N]) -> C: f32[M, N] {
    C[i, j] += A[i, k] * B[k, j]
}"""
DOCS = Path(__file__).resolve().parent.parent / "docs"


@pytest.fixture
def kernel_file(tmp_path):
    path = tmp_path / "matmul.lw"
    path.write_text(MATMUL)
    return str(path)


def _status(argv, capsys) -> tuple[int, str, str]:
    """Exit status, stdout and stderr of the command, as a shell would see them."""
    try:
        status = main(argv)
    except SystemExit as e:  # argparse: --version, --help, parse errors
        status = e.code
    out, err = capsys.readouterr()
    return status, out, err


def test_version_is_the_package_version(capsys):
    status, out, _ = _status(["--version"], capsys)
    assert status == 0 and out.strip() == f"loopweave {loopweave.__version__}"
    pyproject = (DOCS.parent / "pyproject.toml").read_text()
    assert re.search(rf'^version = "{re.escape(loopweave.__version__)}"', pyproject, re.M)


def test_version_of_a_source_tree_that_is_not_installed_comes_from_pyproject(monkeypatch):
    def not_installed(name):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "version", not_installed)
    pyproject = (DOCS.parent / "pyproject.toml").read_text()
    assert f'version = "{loopweave._version()}"' in pyproject


def test_python_dash_m_runs_the_command():
    run = subprocess.run([sys.executable, "-m", "loopweave", "--version"], capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0 and run.stdout.startswith("loopweave ")


def test_run_checks_a_kernel_against_program_order(kernel_file, capsys):
    status, out, err = _status(["run", kernel_file, "--size", "M=5", "--size", "K=3",
                                "--size", "N=4", "--db", "none.sqlite"], capsys)
    assert status == 0, err
    assert "matmul on cpu at M=5, K=3, N=4" in out
    error = float(re.search(r"C: max error (\S+) .*: ok", out).group(1))
    assert error < 1e-5


@pytest.mark.parametrize("argv, message", [
    (["tune", "{file}"], "needs every size: --size M=... --size K=... --size N=..."),
    (["tune", "{file}", "--size", "M=3", "--size", "Q=3"], "has no size 'Q'"),
    (["tune", "{file}", "--size", "M=x"], "--size takes NAME=INTEGER"),
    (["tune", "{file}", "--trials", "0"], "positive integer"),
    (["tune", "missing.lw", "--size", "M=3"], "no such kernel file: missing.lw"),
    (["run", "{file}", "--size", "M=3"], "needs every size"),
    (["run", "{file}", "--size", "M=3", "--size", "K=3", "--size", "N=3", "--target", "gpu"],
     "unknown target 'gpu'"),
    (["check", "missing.lw"], "no such kernel file"),
    (["show", "missing.lw"], "no such kernel file"),
    (["emit", "missing.lw"], "No such file"),
    (["emit", "{file}", "--size", "M=3"], "sizes lacks K, N"),
    (["db", "import", "missing.jsonl", "--db", "{tmp}/x.sqlite"], "no such file to import"),
    (["frobnicate"], "invalid choice: 'frobnicate'"),
    (["tune", "{file}", "--frob"], "unrecognized arguments: --frob"),
])
def test_a_bad_argument_is_one_line_with_status_2(kernel_file, tmp_path, capsys, argv,
                                                   message):
    argv = [a.format(file=kernel_file, tmp=tmp_path) for a in argv]
    status, out, err = _status(argv, capsys)
    assert status == 2
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert message in err and err.startswith("loopweave")
    assert not (tmp_path / "x.sqlite").exists()


@pytest.mark.parametrize("action", [["best"], ["export", "out.jsonl"]])
def test_db_reading_a_missing_database_creates_nothing(tmp_path, monkeypatch, capsys, action):
    monkeypatch.chdir(tmp_path)
    status, _, err = _status(["db", *action, "--db", "missing.sqlite"], capsys)
    assert status == 2 and "no tuning database at missing.sqlite" in err
    monkeypatch.setenv("LOOPWEAVE_TUNE_DB", str(tmp_path / "default.sqlite"))
    status, _, err = _status(["db", *action], capsys)
    assert status == 2 and "default.sqlite" in err
    assert list(tmp_path.iterdir()) == []  # no database, lock file or export


def test_db_best_reads_an_existing_database(tmp_path, capsys):
    path = tmp_path / "t.sqlite"
    with Database(path) as db:
        db.add(Record("k1", "h", "matmul", '{"M": 4}', "A:f32", "cpu", "cc", "m", '["s"]', "{}",
                      "ok", median_s=2e-3))
    status, out, _ = _status(["db", "best", "--db", str(path)], capsys)
    assert status == 0 and 'matmul {"M": 4} cpu (1 records): 2 ms ["s"]' in out
    with pytest.raises(loopweave.LoopweaveError, match="no tuning database"):
        Database(tmp_path / "other.sqlite", create=False)
    assert not (tmp_path / "other.sqlite").exists()


def test_every_subcommand_is_documented():
    subcommands = next(a for a in build_parser()._actions if a.dest == "command").choices
    doc = (DOCS / "cli.md").read_text()
    assert {"show", "run", "check", "emit", "tune", "db"} <= set(subcommands)
    for name in subcommands:
        assert f"## `loopweave {name}`" in doc or f"(also `loopweave {name}`)" in doc, name
    assert "--version" in doc
