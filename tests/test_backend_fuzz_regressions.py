"""Minimal kernels the backend fuzzer (tests/fuzz/differential.py) found failing, shrunk.

Each case runs its target against the kernel in program order on the host, on the inputs of
its seed. FIXED cases are bugs fixed with them; KNOWN cases are open bugs, strict xfails whose
reason names the bug: when one starts passing, move it to FIXED. New cases come from the
fuzzer's output (`regression_snippet`).
"""

from __future__ import annotations

import os

os.environ.setdefault("TRITON_INTERPRET", "1")  # before triton is imported: no GPU here

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from fuzz.differential import Regression, check_regression  # noqa: E402

import loopweave  # noqa: E402
from loopweave.ir.codegen import loop_ast  # noqa: E402
from loopweave.ir.launch_nodes import walk_kernel  # noqa: E402
from loopweave.ir.launches import lower_launches  # noqa: E402
from loopweave.ir.loops import Store, node_loads  # noqa: E402
from loopweave.passes.gpu_default import default_gpu_schedule  # noqa: E402
from loopweave.pipeline import front_end  # noqa: E402
from loopweave.targets import GPU_FACTS  # noqa: E402

_SPLIT_LOCAL_KERNEL = (
    "kernel fz12025(A: f32[M], B: f32[], C: f32[], D: f64[], E: f32[], F: f32[], "
    "G: f32[N, M], a32: f32) -> (O0: f32[N, M]) {\n"
    "    t0[i] max= ((a32 + A[i]) + B)  where j in 0:3\n"
    "    t1[i, j] max= ((sqrt(abs(A[i])) - (C[] + k)) + f32(D[]))  where j in 0:M, "
    "k in 1:N - 1\n"
    "    O0[i, 2*j] += ((E / (1.5 + abs(F[]))) + G[N - 1 - i, M - 1 - l])  where "
    "j in 0:M / 2, l in 0:M - 2\n"
    "}\n")

FIXED = {
    # A vector loop that failed to lower after its sigmoid had put the vector helper
    # (lw_expf_v16, lw_expf_v4) into the file: the helper's types had no #include (seed 19376).
    "vector_helper_of_a_loop_left_scalar": Regression(
        "cpu",
        "kernel fz19376(B: f32[N, N], C: f32[3, N]) {\n"
        "    t1[i] += (sigmoid(B[i, N - 1 - i]) + C[k, N - 1 - i])\n"
        "}\n",
        sizes={"M": 1, "N": 1}, scalars={}, seed=19376),
    "vector_helper_of_a_loop_left_scalar_neon": Regression(
        "aarch64",
        "kernel fz19376(B: f32[N, N], C: f32[3, N]) {\n"
        "    t1[i] += (sigmoid(B[i, N - 1 - i]) + C[k, N - 1 - i])\n"
        "}\n",
        sizes={"M": 1, "N": 1}, scalars={}, seed=19376),
    # Triton's interpreter truncated f32 to bf16 when storing (round to nearest even is the
    # rule): seven in-place updates drifted to 266 where the reference has 173 (seed 19738).
    "triton_bf16_store_rounding": Regression(
        "triton",
        "kernel fz19738(A: f32[N]) -> (O0: bf16[N]) {\n"
        "    O0[i] += ((O0[j] + i) + A[N - 1 - i])\n"
        "}\n",
        sizes={"N": 7}, scalars={}, seed=19738),
    # C wrote `-(-x)` as `--x`, a decrement of an rvalue: the build failed (backends/c_family.py).
    "double_negation": Regression(
        "reference",
        "kernel k(X: i32[N], F: f32[N]) -> (Y: i32[N], Z: f32[N]) {\n"
        "    Y[i] = -(-(X[i] & 5))\n"
        "    Z[i] = -(-F[i])\n"
        "}\n",
        sizes={"N": 5}),
    # Found failing by the fuzzer, fixed in the GPU backends by their own work since:
    # Triton wrote outside the domain, ignoring a `0 <= i - j < 3` condition.
    "triton_where_difference": Regression(
        "triton",
        "kernel fz107(A: f32[M, N]) -> O1: f32[M, M, N] {\n"
        "    O1[i, j, k] = A[j, k]  where 0 <= i - j < 3\n"
        "}\n",
        sizes={"M": 2, "N": 1}, seed=107),
    "triton_where_difference_in_place": Regression(
        "triton",
        "kernel fz4(A: inout f32[N, N]) {\n"
        "    A[i, k] = A[k, k]  where 0 <= i - k < 3\n"
        "}\n",
        sizes={"N": 2}, seed=4),
    # The CUDA planner crashed (isl_set_dim_max: unbounded optimum, backends/cuda_isl.py) on
    # two statements whose i ranges differ (N and M).
    "cuda_rows_of_different_sizes": Regression(
        "cuda",
        "kernel fz102(A: f32[M], B: f32[N], D: f32[M, M]) -> (O: f32[N, M], P: f32[M]) {\n"
        "    O[i, j] = A[j] + B[i]\n"
        "    P[i] += D[i, j]\n"
        "}\n",
        sizes={"M": 7, "N": 13}, seed=102),
    # The CUDA planner summed `B += C[i] - B` across a block with the initial B (program
    # order gives C[N-1]): a reduction that reads its target keeps its order
    # (backends/cuda_lower.is_row_reduction).
    "cuda_reduction_reading_its_target": Regression(
        "cuda",
        "kernel fz5003(B: inout f32[], C: f32[N]) {\n"
        "    B += C[i] - B\n"
        "}\n",
        sizes={"N": 5}, seed=5003),
    # Triton refused `u8 % 3`: a Python int literal is int32 to it, of other signedness
    # (backends/triton_expr.py writes unsigned literals in their type).
    "triton_u8_modulo": Regression(
        "triton",
        "kernel fz9(D: inout u8[L]) {\n"
        "    D[i] = D[i] % 3\n"
        "}\n",
        sizes={"L": 3}, seed=9),
    # Triton's pow helper on f64 failed in the interpreter (TypeError: ufunc 'bitwise_and' on
    # f64): it compares a 0-d exponent, and the interpreter types a comparison of 0-d values as
    # its operands (f64), so `&` after broadcasting got floats; the helper broadcasts its
    # operands first and selects with tl.where (backends/triton_expr.py).
    "triton_pow_f64": Regression(
        "triton",
        "kernel fz5009(C: f64[N, K, M]) -> (O0: f64[N, K, M]) {\n"
        "    O0[i, j, k] = pow(abs(C[i + 1, K - 1 - j, k]) + 0.5, 1.5)  where i in 1:N - 2\n"
        "}\n",
        sizes={"K": 1, "M": 1, "N": 4}, seed=5009),
    # Triton wrote sigmoid(a + b) as 1 / (1 + exp(-a + b)) (backends/triton_expr.py).
    "triton_reduced_index_as_value": Regression(
        "triton",
        "kernel fz8(C: f32[M, N]) -> O0: f32[M] {\n"
        "    O0[i] += sigmoid(C[M - 1 - i, j] + j)\n"
        "}\n",
        sizes={"M": 1, "N": 2}, seed=8),
    # Triton's interpreter refused a load's mask ("mask has unsupported dtype"): a serial
    # loop's bound (`c4 < N`, the same for every lane) `&` the lanes' mask was an i64 tensor
    # there; a lane-invariant condition now selects the mask with tl.where
    # (backends/triton_scheduled.narrowed). Shrunk from seeds 5013, 5030 and 5047.
    "triton_lane_invariant_condition_in_a_mask": Regression(
        "triton",
        "kernel k(A: f64[], B: f64[M, N]) -> O: f64[N, M] {\n"
        "    O[i, j] -= A[] + B[j, i]  where k in 0:N, i < k\n"
        "}\n",
        sizes={"M": 2, "N": 7}, seed=5013),
    # The CUDA planner crashed (isl_set_dim_max: unbounded optimum) on a group of statements
    # whose `j` ranges differ (0:M and 0:N): the convex hull of their ranges has no upper
    # bound; the grid's range is now from the lowest to the highest value, exactly
    # (backends/cuda_lower.hull). Shrunk from seeds 5029 and 5071.
    "cuda_grid_over_ranges_of_different_sizes": Regression(
        "cuda",
        "kernel fz5029(A: inout f32[M], B: f32[], C: f32[N, M]) {\n"
        "    A[k] += (tanh(A[i]) + B)  where j in 0:M - 1, l in 0:3, m in 0:3, 0 <= j - k < 3\n"
        "    t0[i, j] = ((1.0 * 0.5 + 0.25) + A[M - 1 - j])  where i in 0:M, j in 0:M\n"
        "    t1[j] += log(1.0 + abs((-C[j, M - 1 - i])))  where i in 0:M\n"
        "}\n",
        sizes={"M": 3, "N": 5}, seed=5029),
    # Triton wrote `A[i] *= B + i` as a * b + i (backends/triton_emit.combine).
    "triton_in_place_product_of_a_sum": Regression(
        "triton",
        "kernel fz5067(A: inout f64[N], B: f64[]) {\n"
        "    A[i] *= (B[] + i)\n"
        "}\n",
        sizes={"N": 2}, seed=5067),
    # Triton's launcher flattened a grid of four counts as `N - 3 * M` for (N - 3) * M: no
    # launch at all (backends/triton_module.py).
    "triton_flattened_grid_count": Regression(
        "triton",
        "kernel fz5054(B: f32[M, N]) -> (O0: f32[N, M, M, M], O3: f32[N]) {\n"
        "    O0[i, j, k, l] += B[M - 1 - m, N - 1 - i]  where i in 2:N - 1, k in 1:M - 1, "
        "m in 0:M\n"
        "    O3[i] = (O3[N - 1 - i] + i)  where i in 0:N\n"
        "}\n",
        sizes={"M": 3, "N": 7}, seed=5054),
    # Triton's planner folded the identity initialisation into an update that reads its own
    # target: the reads saw the old values, not the identity (backends/triton_plan.units).
    "triton_update_reading_its_target_after_init": Regression(
        "triton",
        "kernel fz6180(A: i32[M], T: i32) -> (O0: f64[M]) {\n"
        "    for t in 0:T {\n"
        "        O0[i] += (O0[M - 1 - i] + f64(A[M - 1 - i]))\n"
        "    }\n"
        "}\n",
        sizes={"M": 5}, scalars={"T": 3}, seed=6180),
    "triton_min_of_itself_after_init": Regression(
        "triton",
        "kernel fz8087() -> (O0: i32[]) {\n"
        "    O0 min= O0[]\n"
        "}\n",
        sizes={}, seed=8087),
    # Triton's planner masked a tile `j` only by its range over all programs (1 <= j < N), not
    # by j > i with i a program id: it wrote outside the triangle (backends/triton_emit.py,
    # grid_ranges).
    "triton_triangle_under_a_program_id": Regression(
        "triton",
        "kernel fz6250(C: u8[M, N], D: f32[L]) -> (O0: u8[N, N, M], O1: f32[L]) {\n"
        "    O0[i, j, k] += C[M - 1 - k, N - 1 - i]  where i < j\n"
        "    O1[i] = select(D[i] > O1[2*i + 1], D[i], O1[2*i + 1])  where i in 0:L / 2\n"
        "}\n",
        sizes={"L": 5, "M": 3, "N": 6}, seed=6250),
    # Triton refused `u8 % 3` inside the floor-modulo helper (the literal was i32 there).
    "triton_u8_modulo_of_an_accumulator": Regression(
        "triton",
        "kernel fz8129(B: u8[K]) -> (O0: u8[]) {\n"
        "    O0 += ((O0[] % 3) + B[K - 1 - i])  where i in 0:K\n"
        "}\n",
        sizes={"K": 3}, seed=8129),
    # Triton's planner lost a condition between two program ids (0 <= i - j < 3, both pids:
    # the tile masks gist it away) and launched a flattened grid of two negative counts
    # (L - 2) * (L - 2) = 1 (backends/triton_emit.grid_guard, triton_module.py).
    "triton_condition_between_program_ids": Regression(
        "triton",
        "kernel fz6408(B: inout f32[L, L, K, N]) -> (O0: f32[]) {\n"
        "    O0[] = 1.0\n"
        "    B[i, j, k, l] += 1.0  where i in 0:L - 2, 0 <= i - j < 3\n"
        "}\n",
        sizes={"K": 2, "L": 6, "N": 3}, seed=6408),
    "triton_empty_flattened_grid": Regression(
        "triton",
        "kernel fz6408(B: inout f32[L, L, K, N]) -> (O0: f32[]) {\n"
        "    O0[] = 1.0\n"
        "    B[i, j, k, l] += 1.0  where i in 0:L - 2, 0 <= i - j < 3\n"
        "}\n",
        sizes={"K": 1, "L": 1, "N": 1}, seed=6408),
    # Triton's planner folded the float literal of sqrt(abs(2.0)) into the integer 2
    # (backends/triton_expr._linear): "Expected dtype fp32/fp64 but got int32".
    "triton_float_literal_with_an_integer_value": Regression(
        "triton",
        "kernel fz6432(D: inout f16[L], F: f16[M]) {\n"
        "    assume M >= 1\n"
        "    D[i] += (sqrt(abs(2.0)) + D[L - 1 - i])  where k in 0:L\n"
        "    D[i] = F[0]\n"
        "}\n",
        sizes={"L": 2, "M": 7}, seed=6432),
    # Triton's planner folded the identity into an update whose grid starts at i = 1 (j >= 1,
    # j <= i): O0[0] never got +inf (backends/triton_units.fold_inits, Planner.same_box).
    "triton_init_wider_than_the_update": Regression(
        "triton",
        "kernel fz8521(A: f32[N], B: f32[L, K]) -> (O0: f32[N], O1: f32[]) {\n"
        "    O0[i] min= A[N - 1 - j]  where j in 1:N - 1, j <= i\n"
        "    O1 += B[2*j + 1, K - 1 - i]  where i in 2:K - 1, j in 0:L / 2\n"
        "}\n",
        sizes={"K": 5, "L": 4, "N": 6}, seed=8521),
    # Triton's floor-modulo helper returned i32 for i8 operands: F % 3 - O0[k] + G did not
    # wrap at 8 bits (backends/triton_expr.py casts the helper's result to the type).
    "triton_i8_modulo_wraps": Regression(
        "triton",
        "kernel fz6673(F: i8[], G: i8[K, M]) -> (O0: i8[K]) {\n"
        "    O0[i] max= (((F % 3) - O0[k]) + G[K - 1 - i, M - 1 - l])  where l in 0:M\n"
        "}\n",
        sizes={"K": 3, "M": 1}, seed=6673),
    # The same for *=: the last row's empty product (i < j) was 0, not 1.
    "triton_empty_product_is_one": Regression(
        "triton",
        "kernel fz6570(F: f64[N], a64: f64) -> (O1: f64[N]) {\n"
        "    t1 = a64\n"
        "    O1[i] *= F[j]  where i < j\n"
        "}\n",
        sizes={"N": 5}, scalars={"a64": 0.5}, seed=6570),
    # cache_write's offsets named a tile loop that isl's AST drops (its value fixed by the
    # loops outside: j tiled by 8 twice): `c3` undeclared in the C (passes/cache.py projects
    # such loops out of the footprint).
    "cache_offset_of_a_loop_with_one_iteration": Regression(
        "cpu-random",
        "kernel fz10300(A: i32[K, N]) -> (O0: i16[N, K]) {\n"
        "    O0[i, j] += i16(A[K - 1 - j, 3*k])  where k in 0:N / 3\n"
        "}\n",
        sizes={"K": 11, "N": 7}, seed=10300,
        schedule='[{"op": "tile", "target": "S1", "args": [["i", 2], ["j", 8]]}, '
                 '{"op": "tile", "target": "S1", "args": [["i", 8], ["j", 8]]}, '
                 '{"op": "cache_write", "target": "S1", "args": ["j"]}]'),
    # Triton's flattened reduction loop ran (M - 4) * (L - 4) * N times: two empty ranges
    # multiplied into a positive count, and it read outside D (backends/triton_expr.py
    # count_product clamps each count at 0).
    "triton_flattened_reduction_of_two_empty_ranges": Regression(
        "triton",
        "kernel fz10477(D: f32[M, L, N]) -> (O1: f32[]) {\n"
        "    t1[] += D[j + 2, k, N - 1 - i]  where i in 0:N, j in 2:M - 2, k in 2:L - 2\n"
        "    O1[] = t1[]\n"
        "}\n",
        sizes={"L": 1, "M": 1, "N": 3}, seed=10477),
    "triton_flattened_reduction": Regression(
        "triton",
        "kernel fz10477(D: f32[M, L, N]) -> (O1: f32[]) {\n"
        "    t1[] += D[j + 2, k, N - 1 - i]  where i in 0:N, j in 2:M - 2, k in 2:L - 2\n"
        "    O1[] = t1[]\n"
        "}\n",
        sizes={"L": 7, "M": 6, "N": 3}, seed=10477),
    # cache_read's copies went into a piece of the loop that isl split off for t0's
    # statements (j = 0 < T): no loop c0 there, so the offset named an undeclared `c0`; a piece
    # that does not access the tensor gets no buffer (ir/localize.py).
    "cache_in_a_piece_without_the_tensor": Regression(
        "cpu-random",
        "kernel fz10940(C: f64[N], T: i32) -> (O0: f64[N, N]) {\n"
        "    for t in reversed(0:T) {\n"
        "        t0[l] += 0.25  where l in 0:N\n"
        "    }\n"
        "    O0[j, k] = C[N - 1 - j]  where j in 1:N - 1\n"
        "}\n",
        sizes={"N": 5}, scalars={"T": 7}, seed=10940,
        schedule='[{"op": "compute_at", "target": "t0,O0", "args": ["k"]}, '
                 '{"op": "cache_read", "target": "S2", "args": ["C", "k"]}]'),
    # The GPU default fused t0's statements with O0's over i (t0 became a local scalar) and
    # bound i to blockIdx.x; isl split that loop in two (0:M and M:N) and the mark, on a block
    # of loops, bound neither: the planner ran the kernel, without declaring the local
    # ('t0' undeclared in the CUDA). Every piece of a split loop takes its kind (ir/codegen.py).
    "cuda_bound_loop_split_by_isl": Regression(
        "cuda",
        "kernel fz11689(B: i32[M], C: i64[N]) -> (O0: i64[N]) {\n"
        "    t0[i] += B[i]  where j in 2:N - 2, k in 1:M - 2\n"
        "    O0[i] = C[N - 1 - i]\n"
        "}\n",
        sizes={"M": 6, "N": 9}, seed=11689),
    # A weak expression stored to f64 was computed in f32 and converted (f64(tanh(1.0)) with
    # tanh in f32: libm's tanhf and Triton's formula differ by an f32 ulp, far past f64's
    # tolerance); it is typed by its target, as docs/dsl.md says (frontend/values.coerce).
    "literal_math_in_the_target_type": Regression(
        "triton",
        "kernel fz11648(A: inout f64[]) {\n"
        "    A[] = tanh(1.0)\n"
        "}\n",
        sizes={}, seed=11648),
    # The GPU default fused t0's statements with B's over i (t0[k] a row local to each
    # block) and isl split the bound loop (0:M and M:N): two launches, each with per-block
    # copies of t0 in device memory, and the second's extent (N - M = 0) sized the array both
    # used: a heap overflow (ir/launches.py sizes it for every launch).
    "gpu_local_row_in_two_pieces_of_a_bound_loop": Regression(
        "cuda",
        "kernel fz11906(A: f32[M], B: inout f64[N], C: f64[N], a64: f64) {\n"
        "    t0[i, k] += min(select(A[i] > (A[M - 1 - j] * 0.5 + 0.25), A[i], "
        "(A[M - 1 - j] * 0.5 + 0.25)), max(A[i], A[i]))  where j in 0:M, k in 0:N\n"
        "    B[i] += (C[j] - a64)\n"
        "}\n",
        sizes={"M": 3, "N": 3}, scalars={"a64": 1.25}, seed=11906),
    # The GPU default fused the statements over i; isl split the bound loop into 0:N and N:M
    # and, where M == 1, a piece without the loop, at host level. There t1 was a device
    # buffer [M] while the bound pieces spilled t1 per block as [blocks, M] (one name, two
    # ranks: a ValueError in row_major_offset), and t0 a device scalar while the bound pieces
    # kept t0 in shared memory (a parameter shadowed: the build failed). One array per name
    # now: t0 spilled in every launch, each use indexed at 0 in the dimensions it lacks
    # (ir/launches.py).
    "gpu_local_in_a_bound_piece_and_a_host_piece": Regression(
        "cuda", _SPLIT_LOCAL_KERNEL, sizes={"M": 3, "N": 5}, scalars={"a32": -0.75},
        seed=12025),
    "gpu_local_in_a_bound_piece_and_a_host_piece_triton": Regression(
        "triton", _SPLIT_LOCAL_KERNEL, sizes={"M": 3, "N": 5}, scalars={"a32": -0.75},
        seed=12025),
    # Triton's planner reduced over the time loop t and j together inside the loop over i
    # (t indexes no element of A): the sums read A[j + 1] before the earlier steps' updates
    # of it. A variable before a left-side one that carries a dependence between different
    # elements stays sequential now (ir/dependences.carried_between_elements).
    "triton_time_loop_around_an_in_place_update": Regression(
        "triton", "kernel fz14041(A: inout f32[N], T: i32) {\n"
                  "    for t in reversed(0:T) {\n"
                  "        A[i] += A[j + 1]  where j in 1:N - 1, i < j\n"
                  "    }\n}\n",
        sizes={"N": 5}, scalars={"T": 2, "a32": 2.0}, seed=14041),
    # isl dropped the fused loop's first iteration (t1's first tile runs where O0 does not,
    # a piece with c0 = 0 folded into its statements) and the cache_write buffer's copies
    # still named c0: C that does not compile. A cache below a dropped loop now goes without
    # its buffer there (ir/codegen._Marks).
    "cache_write_under_a_dropped_loop": Regression(
        "cpu-random", "kernel fz16153(B: f32[K, M], C: f32[N]) -> (O0: f32[K]) {\n"
                      "    t0 += B[k, M - 1 - i]  where i in 0:M\n"
                      "    t1[i] = C[i]\n"
                      "    O0[i] = 1.0  where i in 1:K\n}\n",
        sizes={"K": 1, "M": 1, "N": 1}, scalars={}, seed=16153,
        schedule='[{"op": "fuse", "target": "t1,O0", "args": [1]}, {"op": "tile", "target": '
                 '"S2", "args": [["i", 4]]}, {"op": "cache_write", "target": "S2", "args": '
                 '["i"]}]'),
    # A product reduced inside an expression (the scalar `t0 *= 1.0` over i, read by t1's
    # max): Triton's writer reduced with the `_lw_mul` combiner without defining it.
    "triton_inline_product_reduction": Regression(
        "triton", "kernel fz22133(C: f32[N, M]) {\n"
                  "    t0 *= 1.0  where i in 0:M\n"
                  "    t1[] max= (t0 + C[N - 1 - i, j])  where i in 0:N\n}\n",
        sizes={"M": 1, "N": 1}, scalars={}, seed=22133),
}

KNOWN: dict[str, tuple[Regression, str]] = {}


def test_a_weak_expression_takes_its_targets_type():
    """Literals, indices and sizes in a weak float expression are computed in the type of the
    value they are stored to or combined with, not in f32 and converted (seed 11648)."""
    source = ("kernel k(X: f64[N]) -> Y: f64[N] {\n"
              "    Y[i] = X[i] * (0.1 * 3.0) + select(X[i] > 0.0, i * 0.1, tanh(1.0))\n}\n")
    x = np.array([-1.0, 0.5, 2.0, -0.25, 1.0])
    want = x * (0.1 * 3.0) + np.where(x > 0.0, np.arange(5) * 0.1, np.tanh(1.0))
    got = loopweave.compile(source, "cpu", tuning_db=False)(x)
    np.testing.assert_allclose(got, want, rtol=1e-14, atol=0)


def test_cuda_planner_refuses_fused_locals():
    """Seed 11689's kernel fused by a schedule that binds no loop: CUDA's planner cannot keep
    the fused temporary local (it wrote an undeclared t0); a ScheduleError says so, and the
    same fusion bound to blockIdx.x runs."""
    source = FIXED["cuda_bound_loop_split_by_isl"].source
    with pytest.raises(loopweave.ScheduleError, match=r"temporaries \(t0\) are local to a "
                       r"loop, but binds no loop to a GPU axis"):
        loopweave.compile(source, "cuda", schedule=loopweave.Schedule().fuse("S0", "S1", "S2"),
                          emulate=True, tuning_db=False)
    bound = loopweave.Schedule().fuse("S0", "S1", "S2").bind("S0", "i", "blockIdx.x")
    kernel = loopweave.compile(source, "cuda", schedule=bound, emulate=True, tuning_db=False)
    c = np.arange(9, dtype=np.int64)
    np.testing.assert_array_equal(kernel(np.arange(6, dtype=np.int32), c), c[::-1])


def test_one_array_per_device_buffer_name():
    """Seed 12025's pieces (two launches over parts of the bound loop, one piece at host
    level): every access to a device buffer has the buffer's rank, and no launch keeps a
    buffer of that name in shared memory beside it (which shadowed the launch's parameter)."""
    kernel = front_end(_SPLIT_LOCAL_KERNEL)
    schedule = default_gpu_schedule(kernel, GPU_FACTS["cuda"])
    program = lower_launches(loop_ast(schedule.apply(kernel)), kernel.name,
                             GPU_FACTS["cuda"].shared_bytes)
    ranks = {b.name: len(b.shape) for b in program.device_buffers}
    assert ranks == {"t0": 1, "t1": 2}
    for launch in program.launches:
        assert not {b.name for b in launch.shared} & ranks.keys(), launch.name
        for node in walk_kernel(launch.body):
            for a in ([node] if isinstance(node, Store) else []) + node_loads(node):
                if a.tensor in ranks:
                    assert len(a.indices) == ranks[a.tensor], (launch.name, a)


def test_a_vector_loop_around_a_parallel_loop_is_refused():
    """Fuzz seed 10826 (cpu-random): vectorize(i) around parallel(j) built C with an `omp
    parallel for` inside an `omp simd`, which gcc rejects; the schedule is refused now, in
    either order of the steps (passes/legality.py), so the fuzzer's schedules drop it."""
    source = "kernel fz10826(A: f32[N]) -> (O0: f32[N, N]) {\n" \
             "    O0[i, j] = A[j + 1]  where j in 1:N - 2\n}\n"
    for steps in (("parallel", "j"), ("vectorize", "i")), (("vectorize", "i"), ("parallel", "j")):
        sched = loopweave.Schedule()
        for step, loop in steps:
            getattr(sched, step)("S0", loop)
        with pytest.raises(loopweave.ScheduleError, match="loop i of S0 cannot be vectorized: "
                           "it encloses loop j of S0, which is parallel"):
            loopweave.compile(source, "cpu", schedule=sched, tuning_db=False)
    check_regression(Regression(  # the legal way round: the parallel loop outside
        "cpu-random", source, sizes={"N": 7}, seed=10826,
        schedule='[{"op": "parallel", "target": "S0", "args": ["i"]}, '
                 '{"op": "vector", "target": "S0", "args": ["j"]}]'))


@pytest.mark.parametrize("name", sorted(FIXED))
def test_fixed(name):
    check_regression(FIXED[name])


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.xfail(strict=True, reason=r))
                                  for n, (_, r) in sorted(KNOWN.items())])
def test_known_bug(name):
    check_regression(KNOWN[name][0])
