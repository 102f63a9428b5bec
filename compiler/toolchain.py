"""Building generated C into a shared library, with an on-disk cache of built kernels.

The cache key is a hash of the generated source, the compiler's identity and the flags, so a
second `compile()` of the same kernel (in any process) loads the library without running the C
compiler. Libraries are written to a temporary name and renamed into place, so concurrent
builds of one kernel never see a half-written file; each carries a checksum, so a damaged entry
is built again rather than loaded.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import subprocess
import tempfile
from pathlib import Path

import platformdirs

from loopweave.errors import CompileError, TargetError

_LIB_SUFFIX = ".so"


def cache_dir() -> Path:
    """`$LOOPWEAVE_CACHE_DIR`, or the platform's user cache directory."""
    path = Path(os.environ.get("LOOPWEAVE_CACHE_DIR") or platformdirs.user_cache_dir("loopweave"))
    path.mkdir(parents=True, exist_ok=True)
    return path


@functools.cache
def compiler_identity(cc: str) -> str:
    """What the compiler says it is (part of the cache key); raises TargetError if absent."""
    try:
        out = subprocess.run([cc, "--version"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise TargetError(f"C compiler {cc!r} cannot be run: {e}") from None
    if out.returncode != 0:
        raise TargetError(f"C compiler {cc!r} failed on --version: {out.stderr.strip()}")
    return out.stdout.splitlines()[0] if out.stdout else cc


def cache_key(source: str, cc: str, flags: tuple[str, ...]) -> str:
    h = hashlib.sha256()
    for part in (source, cc, compiler_identity(cc), "\0".join(flags)):
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()[:32]


def _error_with_source(stderr: str, source: str, src_name: str) -> str:
    """The compiler's message, with the generated line it points at shown under it."""
    lines = source.splitlines()
    report = [stderr.strip()]
    for m in re.finditer(re.escape(src_name) + r":(\d+):(\d+): (?:fatal )?error", stderr):
        n = int(m.group(1))
        if 1 <= n <= len(lines):
            report.append(f"generated line {n}: {lines[n - 1].strip()}")
            break
    return "\n".join(report)


# A built library ends with this marker and the SHA-256 of the bytes before it (the dynamic
# loader ignores trailing bytes). A truncated or damaged cache entry fails the check and is built
# again: dlopen of a truncated library can kill the process with SIGBUS.
_SEAL = b"loopweave-sha256:"
_SEAL_SIZE = len(_SEAL) + 32


def _seal(path: Path) -> None:
    digest = hashlib.sha256(path.read_bytes()).digest()
    with path.open("ab") as f:
        f.write(_SEAL + digest)


def is_intact(path: Path) -> bool:
    """Whether the cached library `path` is whole: its seal matches its content."""
    try:
        data = path.read_bytes()
    except OSError:
        return False
    body, seal = data[:-_SEAL_SIZE], data[-_SEAL_SIZE:]
    return len(data) > _SEAL_SIZE and seal == _SEAL + hashlib.sha256(body).digest()


def build_shared_library(source: str, cc: str, flags: tuple[str, ...]) -> Path:
    """The path of a shared library built from `source` (from the cache when present and
    intact; a damaged entry is replaced)."""
    key = cache_key(source, cc, flags)
    directory = cache_dir()
    lib = directory / f"{key}{_LIB_SUFFIX}"
    if is_intact(lib):
        return lib
    with tempfile.TemporaryDirectory(dir=directory, prefix="build-") as tmp:
        src = Path(tmp) / f"{key}.c"
        src.write_text(source)
        out = Path(tmp) / f"{key}{_LIB_SUFFIX}"
        cmd = [cc, *flags, "-shared", "-fPIC", "-o", str(out), str(src), "-lm"]
        try:
            result = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise TargetError(f"running {cc!r} failed: {e}") from None
        if result.returncode != 0:
            raise CompileError(f"{' '.join(cmd[:1] + list(flags))} failed:\n"
                               + _error_with_source(result.stderr, source, src.name))
        _seal(out)
        os.replace(src, directory / f"{key}.c")  # kept next to the library, for inspection
        os.replace(out, lib)  # atomic: a process that loaded the old file keeps its copy
    return lib
