"""`python -m benchmarks`: fix the thread and BLAS environment, then run benchmarks.cli.

This must happen before numpy (OpenBLAS) or torch is imported: they read the environment once,
when they load. Only benchmark runs change it; tests and CI never do (see the platform notes).
"""

import argparse
import os
import sys

# Some workplaces set OPENBLAS_CORETYPE (and OPENBLAS_L2_SIZE) for older OpenBLAS builds; they
# slow a current numpy. Unset both together; results.md records that and which kernel numpy ran.
_UNSET = [v for v in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if v in os.environ]
for _var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
    os.environ.pop(_var, None)

_threads = argparse.ArgumentParser(add_help=False)
_threads.add_argument("--threads", type=int, default=1)
_THREADS = str(_threads.parse_known_args()[0].threads)
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = _THREADS

from benchmarks.cli import main  # noqa: E402 - after the environment is set

_NOTES = (f"environment: OMP_NUM_THREADS=OPENBLAS_NUM_THREADS=MKL_NUM_THREADS={_THREADS}; "
          + (f"unset {' and '.join(_UNSET)} for this run" if _UNSET
             else "OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE were not set"),)

sys.exit(main(env_notes=_NOTES))
