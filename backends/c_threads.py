"""Where a compiled kernel's OpenMP threads run: one per core while the kernel runs.

Measured on the 2-core KVM guests this project runs on (docs/targets.md, "Threads placed on
the cores"): after an idle spell the guest's scheduler wakes a kernel's two threads on the same
vCPU and takes about 10 ms to spread them again. In that time every parallel region waits for
a thread that spins beside its partner: 240 us a region instead of 17, and a 1024^3 f32 matmul
on two threads right after 0.3 s of sleep ran 14 ms instead of 6. Threads bound to distinct
cores do not wait (OMP_PROC_BIND=true did the same), but libgomp's binding also pins the
calling thread for good, and with it every thread the program starts later: torch's pool,
the user's own.

So the entries loopweave's Python runtime calls place the threads themselves, for the call
only: the calling thread is pinned to one core for the length of the call and gets its own
mask back after it; the pool's workers (libgomp keeps them between calls) are pinned once, one
per remaining core. Only where the team fills the cores the process may use (threads == CPUs
in its mask: the default, and any container whose CPU limit is the thread count): with fewer
threads than cores, pinning would put every process's workers on the same first cores; with
more, they share cores anyway. Nothing is placed where the user chose a binding
(OMP_PROC_BIND, OMP_PLACES or GOMP_CPU_AFFINITY: `omp_get_proc_bind()` is not false), inside
a parallel region, off Linux, where the threads sleep at every barrier (OMP_WAIT_POLICY=passive
or GOMP_SPINCOUNT=0: pinned, each region then waits for a wake-up on another vCPU, and a
time-loop stencil ran 5x slower), or with LOOPWEAVE_PIN_THREADS=0. Cost: about 1 us a call (two
`sched_setaffinity`s), against a parallel region's 3-5.
"""

from __future__ import annotations

#: Defined before any header, so that <sched.h> declares the affinity calls.
FEATURE_MACRO = "#define _GNU_SOURCE\n"

#: The placement itself: `lw_threads_enter` before the kernel, `lw_threads_exit` after.
PLACEMENT = r"""
#if defined(__linux__) && defined(_OPENMP)
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <omp.h>

/* What the workers of this calling thread's pool were pinned for: the mask they share,
   the team size and the calling thread's core. A thread-local: each calling thread has
   its own libgomp pool. */
static __thread cpu_set_t lw_placed_mask;
static __thread int lw_placed_threads = 0, lw_placed_home = -1;

/* Off with LOOPWEAVE_PIN_THREADS=0, and where the user's threads sleep at every barrier
   (OMP_WAIT_POLICY=passive, GOMP_SPINCOUNT=0): waking a thread on another vCPU costs more
   than running both on one (a time-loop stencil 5x slower pinned). */
static int lw_placement_enabled(void) {
  static int enabled = -1;  /* read once: a benign race, every reader computes the same */
  if (enabled < 0) {
    const char *off = getenv("LOOPWEAVE_PIN_THREADS");
    const char *policy = getenv("OMP_WAIT_POLICY");
    const char *spins = getenv("GOMP_SPINCOUNT");
    char *end = NULL;
    long spin_count = spins ? strtol(spins, &end, 10) : -1;
    enabled = !(off && strcmp(off, "0") == 0)
              && !(policy && strncasecmp(policy, "passive", 7) == 0)
              && !(spins && end != spins && spin_count == 0);
  }
  return enabled;
}

/* The `rank`-th CPU (from 0) of `mask` other than `home`, or -1. */
static int lw_other_cpu(const cpu_set_t *mask, int home, int rank) {
  for (int cpu = 0; cpu < CPU_SETSIZE; cpu++) {
    if (cpu != home && CPU_ISSET(cpu, mask) && rank-- == 0) return cpu;
  }
  return -1;
}

/* Pins the calling thread to its core, saving its mask in `saved`; returns 1 where it did
   (then lw_threads_exit must restore it), 0 where the threads are left to the scheduler. */
static int lw_threads_enter(cpu_set_t *saved) {
  int threads = omp_get_max_threads();
  if (threads < 2 || omp_in_parallel() || omp_get_proc_bind() != omp_proc_bind_false
      || !lw_placement_enabled() || sched_getaffinity(0, sizeof *saved, saved) != 0
      || CPU_COUNT(saved) != threads)
    return 0;
  int same = lw_placed_threads == threads && CPU_EQUAL(&lw_placed_mask, saved);
  /* The calling thread keeps the core it had when the workers were pinned (moving there
     if the scheduler woke it elsewhere): the workers hold the others. */
  int home = same ? lw_placed_home : sched_getcpu();
  if (home < 0 || !CPU_ISSET(home, saved)) return 0;
  cpu_set_t one;
  CPU_ZERO(&one);
  CPU_SET(home, &one);
  if (sched_setaffinity(0, sizeof one, &one) != 0) return 0;
  if (!same) {
    #pragma omp parallel num_threads(threads)
    {
      int rank = omp_get_thread_num();
      int cpu = rank > 0 ? lw_other_cpu(saved, home, rank - 1) : -1;
      if (cpu >= 0) {
        cpu_set_t own;
        CPU_ZERO(&own);
        CPU_SET(cpu, &own);
        sched_setaffinity(0, sizeof own, &own);
      }
    }
    lw_placed_mask = *saved;
    lw_placed_threads = threads;
    lw_placed_home = home;
  }
  return 1;
}

static void lw_threads_exit(const cpu_set_t *saved, int placed) {
  if (placed) sched_setaffinity(0, sizeof *saved, saved);
}
#define LW_PLACED_CALL(call) \
  do { cpu_set_t lw_saved; int lw_placed = lw_threads_enter(&lw_saved); call; \
       lw_threads_exit(&lw_saved, lw_placed); } while (0)
#else
#define LW_PLACED_CALL(call) do { call; } while (0)
#endif
"""


def placed_source(source: str) -> str:
    """`source` with the placement's definitions, where it runs OpenMP threads (unchanged
    otherwise); its entries then wrap the kernel's call in `placed_call`."""
    if "#pragma omp parallel" not in source:
        return source
    return FEATURE_MACRO + source + PLACEMENT


def places_threads(source: str) -> bool:
    """Whether `source` (from `placed_source`) defines the placement."""
    return PLACEMENT in source


def placed_call(source: str, call: str) -> str:
    """The C statement that runs `call` (a call expression of the kernel's function) with
    the threads placed, where `source` (from `placed_source`) defines the placement."""
    return f"LW_PLACED_CALL({call});" if places_threads(source) else f"{call};"
