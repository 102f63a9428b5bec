"""The one build cache, and building generated C into a shared library through it.

Every backend keeps what it builds here (`cache_dir()`): host libraries, CUDA libraries and
ptxas reports, the CUDA emulation header, Triton modules, Arm programs. The pieces:

    content_key(*parts) -> str           a hash of everything the product depends on
    write_atomically(path, data)         temporary name + rename: no reader sees half a file
    write_once(path, make) -> Path       the file, written from make() when absent
    build_once(target, build) -> Path    target, built by build(tmp) in a fresh temporary
                                         directory next to it and renamed into place
    private_cache(directory)             a context in which cache_dir() is `directory`: the
                                         builds of `compile(..., cache=False)`

Concurrent processes need no lock: each builds in its own temporary directory and renames its
result into place, so a reader sees either no entry or a whole one (the last rename wins; the
entries are the same content). A process that loaded the old file keeps its copy. A host
library carries a checksum, so a damaged entry is built again rather than loaded.

Hits and misses are logged at debug level on the `loopweave.cache` logger.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import hashlib
import importlib.util
import logging
import os
import re
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import platformdirs

from loopweave.errors import CompileError, TargetError

_LIB_SUFFIX = ".so"

log = logging.getLogger("loopweave.cache")

# Set inside `private_cache`: the folder that stands in for the cache. A context variable, so
# that a `cache=False` compile in one thread leaves the builds of other threads alone.
_private_directory: contextvars.ContextVar[Path | None] = contextvars.ContextVar(
    "loopweave_private_cache", default=None)


def cache_dir(*sub: str) -> Path:
    """`$LOOPWEAVE_CACHE_DIR`, or the platform's user cache directory (created), or the folder
    `sub` inside it (e.g. `cache_dir("cuda")`). Inside `private_cache(directory)`: `directory`."""
    path = _private_directory.get() or Path(os.environ.get("LOOPWEAVE_CACHE_DIR")
                                            or platformdirs.user_cache_dir("loopweave"))
    path = path.joinpath(*sub)
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextlib.contextmanager
def private_cache(directory: Path) -> Iterator[Path]:
    """Within this context (in this thread), every build reads and writes `directory` instead of
    the build cache: what `compile(..., cache=False)` builds neither comes from the cache nor
    stays in it. `directory` should be fresh and must outlive what was loaded from it (a program
    run under QEMU is read at each call)."""
    token = _private_directory.set(Path(directory))
    try:
        yield Path(directory)
    finally:
        _private_directory.reset(token)


def content_key(*parts: str | bytes, length: int = 32) -> str:
    """A hex digest of `parts` (each one delimited, so ("ab", "c") and ("a", "bc") differ)."""
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode() if isinstance(part, str) else part)
        h.update(b"\0")
    return h.hexdigest()[:length]


#: The packages whose code decides what a compile builds (see `code_fingerprint`).
CODE_PACKAGES = ("loopweave", "loopweave.frontend", "loopweave.ir", "loopweave.passes",
                 "loopweave.backends", "loopweave.autotune")


@functools.cache
def code_fingerprint() -> str:
    """A digest of loopweave's own code (every .py and .lark file of `CODE_PACKAGES`, by
    content): part of the key of what is cached from decisions of that code (the cost model's
    choices), so an upgraded or edited compiler decides again. Computed once per process."""
    h = hashlib.sha256()
    for package in CODE_PACKAGES:
        spec = importlib.util.find_spec(package)  # imports only the parent package
        for root in (spec.submodule_search_locations or []) if spec else []:
            for path in sorted(Path(root).glob("*.py")) + sorted(Path(root).glob("*.lark")):
                h.update(f"{package}/{path.name}\0".encode())
                h.update(path.read_bytes())
    return h.hexdigest()[:16]


def write_atomically(path: Path, data: str | bytes, *, durable: bool = False) -> None:
    """Write `data` to `path` under a unique temporary name in the same folder, then rename:
    readers never see half a file, and a failed write leaves nothing behind. `durable`: fsync
    before the rename (for files a user keeps, not for cache entries that can be rebuilt)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_once(path: Path, make: Callable[[], str | bytes]) -> Path:
    """`path`, written atomically from `make()` unless it exists (a cache entry whose name is
    the key of its content, so an existing file is the right one)."""
    if path.exists():
        log.debug("build cache hit: %s", path)
    else:
        log.debug("build cache miss: writing %s", path)
        write_atomically(path, make())
    return path


def build_once(target: Path, build: Callable[[Path], Path], *,
               intact: Callable[[Path], bool] = Path.exists,
               keep: Mapping[str, Path] | None = None) -> Path:
    """`target` when it is `intact`; otherwise `build(tmp)` makes it in a fresh temporary
    directory next to it and returns the built file, which is renamed to `target`. `keep`: files
    of the temporary directory (by name) to keep too, renamed to the given paths first (the
    generated source next to a library, for inspection). Safe for concurrent processes."""
    if intact(target):
        log.debug("build cache hit: %s", target)
        return target
    log.debug("build cache miss: building %s", target)
    start = time.perf_counter()
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix="build-") as tmp:
        built = build(Path(tmp))
        for name, dest in (keep or {}).items():
            os.replace(Path(tmp) / name, dest)
        os.replace(built, target)  # atomic: a process that loaded the old file keeps its copy
    log.debug("built %s in %.2f s", target.name, time.perf_counter() - start)
    return target


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
    """The key of a build of `source` by compiler `cc` (its identity included) with `flags`."""
    return content_key(source, cc, compiler_identity(cc), "\0".join(flags))


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
    intact; a damaged entry is replaced). The source is kept next to it as `<key>.c`."""
    key = cache_key(source, cc, flags)
    directory = cache_dir()

    def build(tmp: Path) -> Path:
        src = tmp / f"{key}.c"
        src.write_text(source)
        out = tmp / f"{key}{_LIB_SUFFIX}"
        cmd = [cc, *flags, "-shared", "-fPIC", "-o", str(out), str(src), "-lm"]
        run_compiler(cmd, source, src.name, " ".join([cc, *flags]))
        _seal(out)
        return out

    return build_once(directory / f"{key}{_LIB_SUFFIX}", build, intact=is_intact,
                      keep={f"{key}.c": directory / f"{key}.c"})


def run_compiler(cmd: list[str], source: str, src_name: str, what: str,
                 cwd: Path | None = None) -> None:
    """Run the compiler command `cmd` on the generated `source` (its file is `src_name`).
    Raises TargetError when the compiler cannot run, and CompileError "<what> failed:" with the
    compiler's message and the generated line it points at when it rejects the source."""
    try:
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=cwd)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise TargetError(f"running {cmd[0]!r} failed: {e}") from None
    if result.returncode != 0:
        raise CompileError(f"{what} failed:\n"
                           + _error_with_source(result.stderr, source, src_name))
