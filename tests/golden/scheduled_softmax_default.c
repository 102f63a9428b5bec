void lw_softmax(const float *restrict X, float *restrict Y, int64_t N, int64_t D) {
  #pragma omp parallel for
  for (int64_t c0 = 0; c0 < N; c0 += 1) {
    {
      float m[1];
      const int64_t lw_e_on_stack = lw_max_i64(D, 1) <= 262144;
      float lw_e_stack[lw_e_on_stack ? lw_max_i64(D, 1) : 1] __attribute__((aligned(64)));
      float *restrict e = (float *)__builtin_assume_aligned(lw_e_on_stack ? (void *)lw_e_stack : lw_heap_local(lw_max_i64(D, 1) * 4), 64);
      float s[1];
      m[0] = (-INFINITY);
      for (int64_t c1 = 0; c1 < D; c1 += 1) {
        m[0] = lw_max_f32(m[0], X[c0 * D + c1]);
      }
      #pragma omp simd
      for (int64_t c1 = 0; c1 < D; c1 += 1) {
        e[c1] = lw_expf(X[c0 * D + c1] - m[0]);
      }
      s[0] = 0.0f;
      for (int64_t c1 = 0; c1 < D; c1 += 1) {
        s[0] = s[0] + e[c1];
      }
      #pragma omp simd
      for (int64_t c1 = 0; c1 < D; c1 += 1) {
        Y[c0 * D + c1] = e[c1] * (1.0f / s[0]);
      }
      if (!lw_e_on_stack) lw_heap_free(e);
    }
  }
}
