"""The one build cache (`loopweave.toolchain`): keys, atomic writes, build-once entries.

Every backend keeps its products through these functions, so they are tested here once; the
concurrency of whole compiles is in test_cache_concurrency.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from loopweave import toolchain
from loopweave.errors import CompileError


def test_content_key_delimits_its_parts():
    assert toolchain.content_key("ab", "c") != toolchain.content_key("a", "bc")
    assert toolchain.content_key("x", b"y") == toolchain.content_key(b"x", "y")
    assert len(toolchain.content_key("x")) == 32
    assert len(toolchain.content_key("x", length=16)) == 16


def test_cache_dir_and_its_folders(tmp_path, monkeypatch):
    monkeypatch.setenv("LOOPWEAVE_CACHE_DIR", str(tmp_path / "c"))
    assert toolchain.cache_dir() == tmp_path / "c"
    cuda = toolchain.cache_dir("cuda")
    assert cuda.is_dir() and cuda.parent == tmp_path / "c"


def test_write_atomically_leaves_no_temporary_file(tmp_path):
    path = tmp_path / "sub" / "entry.json"
    toolchain.write_atomically(path, "{}")
    toolchain.write_atomically(path, b"[1]", durable=True)
    assert path.read_text() == "[1]"
    assert [p.name for p in path.parent.iterdir()] == ["entry.json"]


def test_a_failed_write_leaves_the_old_file_and_nothing_else(tmp_path):
    path = tmp_path / "entry.txt"
    path.write_text("old")
    with pytest.raises(TypeError):
        toolchain.write_atomically(path, 42)  # not text or bytes: fails after the temp file
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["entry.txt"]


def test_write_once_makes_an_entry_once(tmp_path):
    made = []

    def make() -> str:
        made.append(1)
        return "content"

    path = tmp_path / "k.py"
    assert toolchain.write_once(path, make) == path
    assert toolchain.write_once(path, make) == path
    assert path.read_text() == "content" and made == [1]


def test_build_once_builds_in_a_temporary_folder_and_keeps_what_it_is_asked_to(tmp_path):
    calls = []

    def build(tmp: Path) -> Path:
        calls.append(tmp)
        (tmp / "k.c").write_text("source")
        (tmp / "scratch.o").write_text("object")
        (tmp / "k.so").write_text("library")
        return tmp / "k.so"

    target = tmp_path / "k.so"
    keep = {"k.c": tmp_path / "k.c"}
    assert toolchain.build_once(target, build, keep=keep) == target
    assert toolchain.build_once(target, build, keep=keep) == target
    assert len(calls) == 1 and not calls[0].exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k.c", "k.so"]
    # An entry that is not intact is built again.
    assert toolchain.build_once(target, build, intact=lambda p: False, keep=keep) == target
    assert len(calls) == 2


def test_a_failed_build_leaves_nothing(tmp_path):
    def build(tmp: Path) -> Path:
        (tmp / "half.so").write_text("half")
        raise CompileError("the compiler said no")

    with pytest.raises(CompileError):
        toolchain.build_once(tmp_path / "k.so", build)
    assert list(tmp_path.iterdir()) == []


def test_run_compiler_shows_the_generated_line(tmp_path):
    source = "int f(void) {\n  return undeclared;\n}\n"
    (tmp_path / "k.c").write_text(source)
    with pytest.raises(CompileError, match=r"(?s)cc -c failed:.*generated line 2: return "
                                           r"undeclared;"):
        toolchain.run_compiler(["cc", "-c", "k.c"], source, "k.c", "cc -c", cwd=tmp_path)
