"""Runners: where a cross-compiled kernel program runs (QEMU here; a board could take its place).

A program built by the Arm backends speaks one file protocol: it reads `lw_in.bin` from its
working directory, runs the kernel and writes `lw_out.bin` (the layout is in
`loopweave.backends.arm_harness`). A `Runner` only moves those bytes:

    runner.run(program, inputs) -> outputs      # bytes in, bytes out

`QemuUserRunner` runs a static Linux binary under `qemu-aarch64`; `QemuSemihostingRunner` boots a
bare-metal ELF in `qemu-system-arm`, whose semihosting maps the program's `fopen` onto the
host's files. A real board fits the same interface: an ssh runner copies the binary and
`lw_in.bin` over and fetches `lw_out.bin`; a debug probe with semihosting (OpenOCD, pyOCD)
serves the files like QEMU. Pass one as `loopweave.compile(..., runner=MyRunner())`.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from loopweave.errors import LoopweaveError, TargetError
from loopweave.targets import check_option_names

INPUT_FILE = "lw_in.bin"
OUTPUT_FILE = "lw_out.bin"


class RunError(LoopweaveError):
    """The kernel program failed on the target (a fault, a bad exit status, a timeout)."""


class Runner:
    """Runs a program that reads `lw_in.bin` and writes `lw_out.bin`; see the module docstring."""

    name = "runner"

    def missing(self) -> str | None:
        """Why this runner cannot run here (a missing tool), or None when it can."""
        return None

    def run(self, program: Path, inputs: bytes, timeout: float = 120.0) -> bytes:
        """Run `program` with `inputs` as its `lw_in.bin`; return its `lw_out.bin`."""
        raise NotImplementedError

    def check(self) -> None:
        """Raise TargetError when the runner cannot run here."""
        reason = self.missing()
        if reason:
            raise TargetError(f"runner {self.name}: {reason}")


class LocalFileRunner(Runner):
    """A runner whose program runs as a local command in a scratch directory (QEMU here)."""

    def command(self, program: Path) -> list[str]:
        raise NotImplementedError

    def run(self, program: Path, inputs: bytes, timeout: float = 120.0) -> bytes:
        self.check()
        with tempfile.TemporaryDirectory(prefix="lw-run-") as tmp:
            (Path(tmp) / INPUT_FILE).write_bytes(inputs)
            cmd = self.command(program)
            try:
                done = subprocess.run(cmd, cwd=tmp, capture_output=True, timeout=timeout,
                                      stdin=subprocess.DEVNULL)
            except subprocess.TimeoutExpired:
                raise RunError(f"{self.name}: {program.name} did not finish within "
                               f"{timeout:g} s") from None
            except OSError as e:
                raise TargetError(f"{self.name}: cannot run {cmd[0]!r}: {e}") from None
            out = Path(tmp) / OUTPUT_FILE
            if done.returncode != 0 or not out.exists():
                tail = (done.stdout + done.stderr).decode(errors="replace").strip()[-2000:]
                raise RunError(f"{self.name}: {program.name} failed with exit status "
                               f"{done.returncode}" + (f":\n{tail}" if tail else ""))
            return out.read_bytes()


def check_options(target: str, options: dict, allowed: tuple[str, ...]) -> None:
    """Raise TargetError for an option `target` does not take, or a `runner=` not a Runner."""
    check_option_names(target, options, allowed)
    runner = options.get("runner")
    if runner is not None and not isinstance(runner, Runner):
        raise TargetError(f"runner= must be a loopweave.backends.runners.Runner, not "
                          f"{type(runner).__name__}")


def _which_missing(tool: str, package: str) -> str | None:
    return None if shutil.which(tool) else f"{tool} is not installed (Debian: {package})"


class QemuUserRunner(LocalFileRunner):
    """A static Linux binary under QEMU user mode (`qemu-aarch64 [-cpu CPU] prog`)."""

    def __init__(self, qemu: str = "qemu-aarch64", cpu: str | None = None):
        self.qemu, self.cpu = qemu, cpu
        self.name = qemu + (f" -cpu {cpu}" if cpu else "")

    def missing(self) -> str | None:
        return _which_missing(self.qemu, "qemu-user")

    def command(self, program: Path) -> list[str]:
        return [self.qemu, *(["-cpu", self.cpu] if self.cpu else []), str(program)]


class QemuSemihostingRunner(LocalFileRunner):
    """A bare-metal ELF on an emulated board with semihosting (`qemu-system-arm -M machine`).

    `extra` adds QEMU arguments, e.g. `("-plugin", "libcount.so")` to count instructions.
    """

    def __init__(self, machine: str, qemu: str = "qemu-system-arm", extra: tuple[str, ...] = ()):
        self.machine, self.qemu, self.extra = machine, qemu, tuple(extra)
        self.name = f"{qemu} -M {machine}"

    def missing(self) -> str | None:
        return _which_missing(self.qemu, "qemu-system-arm")

    def command(self, program: Path) -> list[str]:
        # -nographic puts the UART and the monitor on stdio; semihosting output goes there too.
        return [self.qemu, "-M", self.machine, "-nographic", "-semihosting", "-no-reboot",
                *self.extra, "-kernel", str(program)]
