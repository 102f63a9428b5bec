void lw_softmax(const float *restrict X, float *restrict Y, float *restrict m, float *restrict e, float *restrict s, int64_t N, int64_t D) {
  for (int64_t c0 = 0; c0 < N; c0 += 1) {
    m[c0] = (-INFINITY);
  }
  for (int64_t c0 = 0; c0 < N; c0 += 1) {
    for (int64_t c1 = 0; c1 < D; c1 += 1) {
      m[c0] = lw_max_f32(m[c0], X[c0 * D + c1]);
    }
  }
  for (int64_t c0 = 0; c0 < N; c0 += 1) {
    for (int64_t c1 = 0; c1 < D; c1 += 1) {
      e[c0 * D + c1] = lw_expf(X[c0 * D + c1] - m[c0]);
    }
  }
  for (int64_t c0 = 0; c0 < N; c0 += 1) {
    s[c0] = 0.0f;
  }
  for (int64_t c0 = 0; c0 < N; c0 += 1) {
    for (int64_t c1 = 0; c1 < D; c1 += 1) {
      s[c0] = s[c0] + e[c0 * D + c1];
    }
  }
  for (int64_t c0 = 0; c0 < N; c0 += 1) {
    for (int64_t c1 = 0; c1 < D; c1 += 1) {
      Y[c0 * D + c1] = e[c0 * D + c1] / s[c0];
    }
  }
}
