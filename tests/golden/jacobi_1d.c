void lw_jacobi_1d(float *restrict A, float *restrict B, int32_t T, int64_t N) {
  for (int64_t c0 = 0; c0 < T; c0 += 1) {
    for (int64_t c1 = 1; c1 < N - 1; c1 += 1) {
      B[c1] = (A[c1 - 1] + A[c1] + A[c1 + 1]) / 3.0f;
    }
    for (int64_t c1 = 1; c1 < N - 1; c1 += 1) {
      A[c1] = (B[c1 - 1] + B[c1] + B[c1 + 1]) / 3.0f;
    }
  }
}
