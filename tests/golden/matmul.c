void lw_matmul(const float *restrict A, const float *restrict B, float *restrict C, int64_t M, int64_t K, int64_t N) {
  for (int64_t c0 = 0; c0 < M; c0 += 1) {
    for (int64_t c1 = 0; c1 < N; c1 += 1) {
      C[c0 * N + c1] = 0.0f;
    }
  }
  for (int64_t c0 = 0; c0 < M; c0 += 1) {
    for (int64_t c1 = 0; c1 < N; c1 += 1) {
      for (int64_t c2 = 0; c2 < K; c2 += 1) {
        C[c0 * N + c1] = C[c0 * N + c1] + A[c0 * K + c2] * B[c2 * N + c1];
      }
    }
  }
}
