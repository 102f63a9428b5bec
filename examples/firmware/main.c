/* A firmware-style program around one int8 network layer emitted by loopweave for Cortex-M4.
 *
 * The layer (examples/kernels/qmm_requant.lw, specialized to M=4 inputs of K=32 features and
 * N=16 outputs): C = clamp(((A @ B + bias) * multiplier + 2^(shift-1)) >> shift + zero_point)
 * in int8, accumulated in int32. Inputs and weights come from a fixed pseudo-random sequence,
 * so tests/test_arm_targets.py can recompute the same layer with numpy and compare the output.
 */
#include <stdint.h>
#include <stdio.h>

#include "qmm_requant.h"

#define M LW_qmm_requant_M
#define K LW_qmm_requant_K
#define N LW_qmm_requant_N

/* Requantization: multiplier / 2^shift is about 1/768 (typical accumulators -> int8). */
#define MULTIPLIER 2796203
#define SHIFT 31
#define ZERO_POINT (-3)

static int8_t activations[M * K];
static int8_t weights[K * N];
static int32_t bias[N];
static int8_t output[M * N];

/* Numerical Recipes' 32-bit LCG; the top byte is the next int8. */
static uint32_t lcg_state = 12345u;
static int8_t next_int8(void) {
  lcg_state = lcg_state * 1664525u + 1013904223u;
  return (int8_t)(lcg_state >> 24);
}

int main(void) {
  for (int i = 0; i < M * K; i++) activations[i] = next_int8();
  for (int i = 0; i < K * N; i++) weights[i] = next_int8();
  for (int j = 0; j < N; j++) bias[j] = 16 * (int32_t)next_int8();

  lw_qmm_requant(activations, weights, bias, MULTIPLIER, SHIFT, ZERO_POINT, output);

  uint32_t checksum = 0;
  printf("int8 layer output (%d x %d):\n", M, N);
  for (int i = 0; i < M; i++) {
    for (int j = 0; j < N; j++) {
      printf(" %4d", output[i * N + j]);
      checksum = checksum * 31u + (uint8_t)output[i * N + j];
    }
    printf("\n");
  }
  printf("checksum %08lx\n", (unsigned long)checksum);
  return 0;
}
