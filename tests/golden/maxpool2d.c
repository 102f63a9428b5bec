void lw_maxpool2d(const float *restrict X, float *restrict O, int64_t C, int64_t H, int64_t W) {
  for (int64_t c0 = 0; c0 < C; c0 += 1) {
    for (int64_t c1 = 0; c1 < H / 2; c1 += 1) {
      for (int64_t c2 = 0; c2 < W / 2; c2 += 1) {
        O[(c0 * lw_div_i64(H, 2) + c1) * lw_div_i64(W, 2) + c2] = (-INFINITY);
      }
    }
  }
  for (int64_t c0 = 0; c0 < C; c0 += 1) {
    for (int64_t c1 = 0; c1 < H / 2; c1 += 1) {
      for (int64_t c2 = 0; c2 < W / 2; c2 += 1) {
        for (int64_t c3 = 0; c3 <= 1; c3 += 1) {
          for (int64_t c4 = 0; c4 <= 1; c4 += 1) {
            O[(c0 * lw_div_i64(H, 2) + c1) * lw_div_i64(W, 2) + c2] = lw_max_f32(O[(c0 * lw_div_i64(H, 2) + c1) * lw_div_i64(W, 2) + c2], X[(c0 * H + (2 * c1 + c3)) * W + (2 * c2 + c4)]);
          }
        }
      }
    }
  }
}
