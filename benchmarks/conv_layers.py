"""ResNet-style 3x3 convolution layers against torch, one thread, side by side.

    .venv/bin/python -m benchmarks.conv_layers [--quick]

- Unit stride (examples/kernels/conv2d.lw; the input carries its 1-pixel padding): loopweave's
  default, whose size rule (passes/conv_columns.py) gives layers with at least 64 input
  channels the channels-last form and keeps the column tile below; the column tile alone (the
  default schedule without the size rule) for comparison; torch.nn.functional.conv2d.
- Stride 2 with zero padding 1 (examples/kernels/conv2d_s2.lw): loopweave's default (the
  channels-last form always; 14 x 32 or 7 x 32 tiles by the output's columns) and torch.

In the channels-last form the weights are packed per block of 32 output channels, k last
(passes/strided_conv.py `channel_steps`), which the deep layers (256 and 512 channels: several
MB of weights) feel most.

Every result is checked against torch before timing; interleaved samples, medians (the machine
is shared: read the spread column). OMP_NUM_THREADS=1 unless set.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

import loopweave
from benchmarks.harness import Comparison, Work, format_table, measure
from loopweave.backends.c import vector_bytes
from loopweave.examples import load_references
from loopweave.passes.default import default_schedule
from loopweave.pipeline import front_end, get_target

#: (input channels, output channels, output columns): ResNet's 3x3 layers of each stage, two
#: with few input channels (where the column tile stays), and the stride-2 downsamplings.
UNIT = [(64, 64, 56), (128, 128, 28), (256, 256, 14), (512, 512, 7), (32, 32, 112),
        (16, 64, 112)]
STRIDED = [(64, 128, 56), (128, 256, 28), (256, 512, 14)]
QUICK_UNIT, QUICK_STRIDED = [(64, 64, 14), (16, 32, 28)], [(64, 64, 14)]


def column_tile(source: str) -> loopweave.Kernel:
    """The unit-stride convolution with the default schedule of the kernel as written: the
    column tile, whatever the sizes (no size rule with an explicit schedule)."""
    kernel = front_end(source)
    width = vector_bytes(get_target("cpu"))
    return loopweave.compile(source, schedule=default_schedule(kernel, lambda: width),
                             tuning_db=False)


def layer(torch, name: str, shape: tuple[int, int, int], repeats: int) -> Comparison:
    """One layer (`name`: conv2d or conv2d_s2) of `shape` = (C, K, input columns)."""
    c, k, w = shape
    source = load_references().KERNELS[name].source()
    strided = name == "conv2d_s2"
    rng = np.random.default_rng(c + k + w)
    side = w if strided else w + 2  # conv2d's input carries the padding
    x = rng.uniform(-1, 1, (1, c, side, side)).astype(np.float32)
    f = rng.uniform(-1, 1, (k, c, 3, 3)).astype(np.float32)
    tx, tf = torch.from_numpy(x), torch.from_numpy(f)
    options = {"stride": 2, "padding": 1} if strided else {}
    want = torch.nn.functional.conv2d(tx, tf, **options).numpy()
    kernels = {"loopweave": loopweave.compile(source, tuning_db=False)}
    if not strided:
        kernels["loopweave column tile"] = column_tile(source)
    calls = {}
    for label, kernel in kernels.items():
        got = kernel(x, f)
        if not np.allclose(got, want, rtol=1e-3, atol=1e-3 * np.abs(want).max()):
            raise SystemExit(f"{name} {shape}: {label} differs from torch")
        calls[label] = (lambda kernel=kernel, out=got: kernel(x, f, out=out))
    calls["torch"] = lambda: torch.nn.functional.conv2d(tx, tf, **options)
    timings = measure(calls, repeats=repeats)
    rows, cols = want.shape[2:]
    work = Work(flops=2.0 * k * c * 9 * rows * cols, bytes=4.0 * (x.size + f.size + want.size))
    label = f"C={c}, K={k}, {side}x{side} -> {rows}x{cols}"
    return Comparison(name, label, work, timings)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small layers, 3 samples")
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # before the kernels load libgomp
    try:
        import torch  # the peer
    except ImportError:
        print("torch is not installed: nothing to compare with", file=sys.stderr)
        return 0
    torch.set_num_threads(1)
    repeats = 3 if args.quick else 9
    unit, strided = (QUICK_UNIT, QUICK_STRIDED) if args.quick else (UNIT, STRIDED)
    results = [layer(torch, "conv2d", s, repeats) for s in unit]
    results += [layer(torch, "conv2d_s2", s, repeats) for s in strided]
    for result in results:
        print(format_table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
