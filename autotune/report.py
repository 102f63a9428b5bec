"""What a search shows: a progress bar while it runs, a report when it is done.

    with ProgressBar.on_terminal("matmul", total=64, done=0) as bar:   # None off a terminal
        bar.update(done, best_s, gflops)
    write_report(out_dir, records, flops, title)      # tuning.csv and tuning.png

The progress bar (rich, on stderr) shows trials done, the best time and GFLOP/s so far and the
elapsed time; it is drawn only on a terminal, so logs and pipes get no control characters. The
report is drawn from the records of the search itself (no second search to compare with):
`tuning.csv` has one row per trial, `tuning.png` the best-so-far GFLOP/s against trials with
each trial's own figure, coloured by how the search chose it.
"""

from __future__ import annotations

import csv
import importlib.util
import sys
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from loopweave.autotune.database import Record
from loopweave.errors import LoopweaveError


class ProgressBar:
    """A progress bar of one search: trials done of `total`, best time and GFLOP/s so far."""

    def __init__(self, kernel: str, total: int, done: int, console: Console):
        self._progress = Progress(
            TextColumn(f"tune {kernel}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[best]}"), TimeElapsedColumn(), console=console)
        self._task = self._progress.add_task("tune", total=total, completed=min(done, total),
                                             best=best_text(None, None))

    @classmethod
    def on_terminal(cls, kernel: str, total: int, done: int) -> ProgressBar | None:
        """A bar on stderr when stderr is a terminal, else None."""
        console = Console(file=sys.stderr)
        return cls(kernel, total, done, console) if console.is_terminal else None

    def __enter__(self) -> ProgressBar:
        self._progress.start()
        return self

    def __exit__(self, *exc) -> None:
        self._progress.stop()

    def update(self, done: int, best_s: float | None, gflops: float | None) -> None:
        """`done` trials so far; the best correct time and its GFLOP/s (None: none yet)."""
        self._progress.update(self._task, completed=done, best=best_text(best_s, gflops))


def best_text(best_s: float | None, gflops: float | None) -> str:
    """The best time so far and its GFLOP/s, as the progress bar and the log show them."""
    if best_s is None:
        return "no correct schedule yet"
    return f"best {best_s * 1e3:.4g} ms" + (f", {gflops:.3g} GFLOP/s" if gflops else "")


# -- the report -----------------------------------------------------------------------------------

def require_plotting() -> None:
    """Raise before a search whose report could not be drawn."""
    if importlib.util.find_spec("matplotlib") is None:
        raise LoopweaveError("a tuning report needs the Python package 'matplotlib' "
                             "(pip install 'loopweave[tune]')")


def report_rows(records: list[Record], flops: float) -> list[dict]:
    """One row per trial, in the order measured: how it was chosen, its status, time and
    GFLOP/s, and the best time so far."""
    rows, best = [], None
    for trial, r in enumerate(records, 1):
        timed = r.status == "ok" and r.median_s
        if timed and (best is None or r.median_s < best):
            best = r.median_s
        rows.append({"trial": trial, "strategy": r.strategy, "status": r.status,
                     "time_s": r.median_s if timed else None,
                     "gflops": flops / r.median_s / 1e9 if timed else None,
                     "best_s": best, "schedule": r.schedule})
    return rows


def write_report(out_dir: str | Path, records: list[Record], flops: float,
                 title: str) -> list[Path]:
    """`out_dir/tuning.csv` and `out_dir/tuning.png` of a search's records; their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows = report_rows(records, flops)
    table = out / "tuning.csv"
    with open(table, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else ["trial"])
        writer.writeheader()
        writer.writerows(rows)
    return [table, plot_search(rows, out / "tuning.png", title, flops)]


def plot_search(rows: list[dict], path: Path, title: str, flops: float) -> Path:
    """A PNG of one search: best-so-far GFLOP/s against trials, and each timed trial's
    GFLOP/s coloured by how the search chose it."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.2))
    best = [(r["trial"], flops / r["best_s"] / 1e9) for r in rows if r["best_s"]]
    if best:
        ax.step(*zip(*best, strict=True), where="post", color="black", label="best so far")
    for strategy in sorted({r["strategy"] for r in rows}):
        points = [(r["trial"], r["gflops"]) for r in rows
                  if r["strategy"] == strategy and r["gflops"] is not None]
        if points:
            ax.scatter(*zip(*points, strict=True), s=14, alpha=0.7, label=strategy or "trial")
    _finish(plt, fig, ax, title, path)
    return path


def plot_best_so_far(curves: dict[str, list[float | None]], path: Path, title: str,
                     flops: float) -> Path:
    """A PNG of best-so-far GFLOP/s against trials, one line per search (times in trial
    order, None where a trial has no time)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for label, times in curves.items():
        best, xs, ys = float("inf"), [], []
        for n, t in enumerate(times, 1):
            best = min(best, t or float("inf"))
            if best < float("inf"):
                xs.append(n)
                ys.append(flops / best / 1e9)
        ax.step(xs, ys, where="post", label=label)
    _finish(plt, fig, ax, title, path)
    return path


def _pyplot():
    """matplotlib's pyplot with a file-only backend (imported here: plotting is optional)."""
    require_plotting()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _finish(plt, fig, ax, title: str, path: Path) -> None:
    ax.set_xlabel("trials")
    ax.set_ylabel("GFLOP/s")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
