void lw_syrk(float alpha, float beta, float *restrict C, const float *restrict A, int64_t N, int64_t M) {
  for (int64_t c0 = 0; c0 < N; c0 += 1) {
    for (int64_t c1 = 0; c1 <= c0; c1 += 1) {
      C[c0 * N + c1] = beta * C[c0 * N + c1];
    }
  }
  for (int64_t c0 = 0; c0 < N; c0 += 1) {
    for (int64_t c1 = 0; c1 <= c0; c1 += 1) {
      for (int64_t c2 = 0; c2 < M; c2 += 1) {
        C[c0 * N + c1] = C[c0 * N + c1] + alpha * A[c0 * M + c2] * A[c1 * M + c2];
      }
    }
  }
}
