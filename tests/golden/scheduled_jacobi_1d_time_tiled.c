void lw_jacobi_1d(float *restrict A, float *restrict B, int32_t T, int64_t N) {
  for (int64_t c0 = 0; c0 <= lw_div_i64(T - 1, 4); c0 += 1) {
    for (int64_t c1 = c0; c1 <= lw_min_i64(c0 + (N + 5) / 8, lw_div_i64(N + 2 * T - 3, 8)); c1 += 1) {
      for (int64_t c2 = lw_max_i64(4 * c0, -N + 4 * c1 + N / 2 + 1); c2 <= lw_min_i64(T - 1, 4 * c0 + 3); c2 += 1) {
        for (int64_t c3 = lw_max_i64(8 * c1, 2 * c2 + 1); c3 <= lw_min_i64(8 * c1 + 7, N + 2 * c2 - 2); c3 += 1) {
          B[-2 * c2 + c3] = (A[-2 * c2 + c3 - 1] + A[-2 * c2 + c3] + A[-2 * c2 + c3 + 1]) / 3.0f;
        }
        for (int64_t c3 = lw_max_i64(8 * c1, 2 * c2 + 2); c3 <= lw_min_i64(8 * c1 + 7, N + 2 * c2 - 1); c3 += 1) {
          A[-2 * c2 + c3 - 1] = (B[-2 * c2 + c3 - 1 - 1] + B[-2 * c2 + c3 - 1] + B[-2 * c2 + c3 - 1 + 1]) / 3.0f;
        }
      }
    }
  }
}
