void lw_matmul(const float *restrict A, const float *restrict B, float *restrict C, int64_t M, int64_t K, int64_t N) {
  if (!(K >= 1 && K <= 256)) {
    #pragma omp parallel for
    for (int64_t c0 = 0; c0 < M; c0 += 1) {
      #pragma omp simd
      for (int64_t c1 = 0; c1 < N; c1 += 1) {
        C[c0 * N + c1] = 0.0f;
      }
    }
  }
  for (int64_t c0 = 0; c0 <= lw_div_i64(N - 1, 256); c0 += 1) {
    for (int64_t c1 = 0; c1 <= lw_div_i64(K - 1, 256); c1 += 1) {
      {
        float B_pack[65536] __attribute__((aligned(64)));
        #ifdef _OPENMP
        if (omp_get_max_threads() > 1) {
          #pragma omp parallel for
          for (int64_t c2_0 = lw_max_i64(0, -256 * c1); c2_0 < lw_min_i64(256, K + -256 * c1); c2_0 += 1) {
            for (int64_t c2_run = 0; c2_run < 16; c2_run += 1) {
              for (int64_t c2_1 = lw_max_i64(0, -256 * c0 + -16 * c2_run); c2_1 < lw_min_i64(16, lw_min_i64(256, N + -256 * c0) + -16 * c2_run); c2_1 += 1) {
                B_pack[(c2_run * 256 + c2_0) * 16 + c2_1] = B[(256 * c1 + c2_0) * N + (256 * c0 + c2_1 + 16 * c2_run)];
              }
            }
          }
        } else
        #endif
        {
          for (int64_t c2_0 = lw_max_i64(0, -256 * c1); c2_0 < lw_min_i64(256, K + -256 * c1); c2_0 += 1) {
            for (int64_t c2_run = 0; c2_run < 16; c2_run += 1) {
              for (int64_t c2_1 = lw_max_i64(0, -256 * c0 + -16 * c2_run); c2_1 < lw_min_i64(16, lw_min_i64(256, N + -256 * c0) + -16 * c2_run); c2_1 += 1) {
                B_pack[(c2_run * 256 + c2_0) * 16 + c2_1] = B[(256 * c1 + c2_0) * N + (256 * c0 + c2_1 + 16 * c2_run)];
              }
            }
          }
        }
        #pragma omp parallel for
        for (int64_t c2 = 0; c2 <= lw_div_i64(M - 1, 6); c2 += 1) {
          for (int64_t c3 = 16 * c0; c3 <= lw_min_i64(16 * c0 + 15, (N - 1) / 16); c3 += 1) {
            if (6 * c2 + 5 <= lw_min_i64(M - 1, 6 * c2 + 5) && 16 * c3 + 15 <= lw_min_i64(N - 1, 16 * c3 + 15)) {
              {
                lw_vec_f32_16 lw_r0_0, lw_r1_0, lw_r2_0, lw_r3_0, lw_r4_0, lw_r5_0;
                if (K >= 1 && K <= 256) {
                  lw_r0_0 = ((lw_vec_f32_16){0} + 0.0f);
                  lw_r1_0 = ((lw_vec_f32_16){0} + 0.0f);
                  lw_r2_0 = ((lw_vec_f32_16){0} + 0.0f);
                  lw_r3_0 = ((lw_vec_f32_16){0} + 0.0f);
                  lw_r4_0 = ((lw_vec_f32_16){0} + 0.0f);
                  lw_r5_0 = ((lw_vec_f32_16){0} + 0.0f);
                } else {
                  __builtin_memcpy(&lw_r0_0, &C[(6 * c2 + 0) * N + 16 * c3], sizeof lw_r0_0);
                  __builtin_memcpy(&lw_r1_0, &C[(6 * c2 + 1) * N + 16 * c3], sizeof lw_r1_0);
                  __builtin_memcpy(&lw_r2_0, &C[(6 * c2 + 2) * N + 16 * c3], sizeof lw_r2_0);
                  __builtin_memcpy(&lw_r3_0, &C[(6 * c2 + 3) * N + 16 * c3], sizeof lw_r3_0);
                  __builtin_memcpy(&lw_r4_0, &C[(6 * c2 + 4) * N + 16 * c3], sizeof lw_r4_0);
                  __builtin_memcpy(&lw_r5_0, &C[(6 * c2 + 5) * N + 16 * c3], sizeof lw_r5_0);
                }
                for (int64_t c4 = 256 * c1; c4 <= lw_min_i64(K - 1, 256 * c1 + 255); c4 += 1) {
                  lw_r0_0 += (A[(6 * c2 + 0) * K + c4] * lw_vload_f32_16(&B_pack[((-16 * c0 + c3) * 256 + (-256 * c1 + c4)) * 16 + (0 + 0)]));
                  lw_r1_0 += (A[(6 * c2 + 1) * K + c4] * lw_vload_f32_16(&B_pack[((-16 * c0 + c3) * 256 + (-256 * c1 + c4)) * 16 + (0 + 0)]));
                  lw_r2_0 += (A[(6 * c2 + 2) * K + c4] * lw_vload_f32_16(&B_pack[((-16 * c0 + c3) * 256 + (-256 * c1 + c4)) * 16 + (0 + 0)]));
                  lw_r3_0 += (A[(6 * c2 + 3) * K + c4] * lw_vload_f32_16(&B_pack[((-16 * c0 + c3) * 256 + (-256 * c1 + c4)) * 16 + (0 + 0)]));
                  lw_r4_0 += (A[(6 * c2 + 4) * K + c4] * lw_vload_f32_16(&B_pack[((-16 * c0 + c3) * 256 + (-256 * c1 + c4)) * 16 + (0 + 0)]));
                  lw_r5_0 += (A[(6 * c2 + 5) * K + c4] * lw_vload_f32_16(&B_pack[((-16 * c0 + c3) * 256 + (-256 * c1 + c4)) * 16 + (0 + 0)]));
                }
                __builtin_memcpy(&C[(6 * c2 + 0) * N + 16 * c3], &lw_r0_0, sizeof lw_r0_0);
                __builtin_memcpy(&C[(6 * c2 + 1) * N + 16 * c3], &lw_r1_0, sizeof lw_r1_0);
                __builtin_memcpy(&C[(6 * c2 + 2) * N + 16 * c3], &lw_r2_0, sizeof lw_r2_0);
                __builtin_memcpy(&C[(6 * c2 + 3) * N + 16 * c3], &lw_r3_0, sizeof lw_r3_0);
                __builtin_memcpy(&C[(6 * c2 + 4) * N + 16 * c3], &lw_r4_0, sizeof lw_r4_0);
                __builtin_memcpy(&C[(6 * c2 + 5) * N + 16 * c3], &lw_r5_0, sizeof lw_r5_0);
              }
            } else {
              {
                float C_acc[96] __attribute__((aligned(64)));
                if (K >= 1 && K <= 256) {
                  for (int64_t c4_0 = lw_max_i64(0, -6 * c2); c4_0 < lw_min_i64(6, M + -6 * c2); c4_0 += 1) {
                    for (int64_t c4_1 = lw_max_i64(0, -16 * c3); c4_1 < lw_min_i64(16, N + -16 * c3); c4_1 += 1) {
                      C_acc[c4_0 * 16 + c4_1] = 0.0f;
                    }
                  }
                } else {
                  for (int64_t c4_0 = lw_max_i64(0, -6 * c2); c4_0 < lw_min_i64(6, M + -6 * c2); c4_0 += 1) {
                    for (int64_t c4_1 = lw_max_i64(0, -16 * c3); c4_1 < lw_min_i64(16, N + -16 * c3); c4_1 += 1) {
                      C_acc[c4_0 * 16 + c4_1] = C[(6 * c2 + c4_0) * N + (16 * c3 + c4_1)];
                    }
                  }
                }
                if (lw_min_i64(M, 6 * c2 + 6) + -6 * c2 == 6) {
                  if (lw_mod_i64(lw_min_i64(N, 16 * c3 + 16) + -16 * c3, 32) >= 16) {
                    {
                      lw_vec_f32_16 lw_r0_0, lw_r1_0, lw_r2_0, lw_r3_0, lw_r4_0, lw_r5_0;
                      __builtin_memcpy(&lw_r0_0, &C_acc[-1 * lw_mod_i64(lw_min_i64(N, 16 * c3 + 16) + -16 * c3, 32) + lw_min_i64(N, 16 * c3 + 16) + -16 * c3], sizeof lw_r0_0);
                      __builtin_memcpy(&lw_r1_0, &C_acc[-1 * lw_mod_i64(lw_min_i64(N, 16 * c3 + 16) + -16 * c3, 32) + lw_min_i64(N, 16 * c3 + 16) + -16 * c3 + 16], sizeof lw_r1_0);
                      __builtin_memcpy(&lw_r2_0, &C_acc[-1 * lw_mod_i64(lw_min_i64(N, 16 * c3 + 16) + -16 * c3, 32) + lw_min_i64(N, 16 * c3 + 16) + -16 * c3 + 32], sizeof lw_r2_0);
                      __builtin_memcpy(&lw_r3_0, &C_acc[-1 * lw_mod_i64(lw_min_i64(N, 16 * c3 + 16) + -16 * c3, 32) + lw_min_i64(N, 16 * c3 + 16) + -16 * c3 + 48], sizeof lw_r3_0);
                      __builtin_memcpy(&lw_r4_0, &C_acc[-1 * lw_mod_i64(lw_min_i64(N, 16 * c3 + 16) + -16 * c3, 32) + lw_min_i64(N, 16 * c3 + 16) + -16 * c3 + 64], sizeof lw_r4_0);
                      __builtin_memcpy(&lw_r5_0, &C_acc[-1 * lw_mod_i64(lw_min_i64(N, 16 * c3 + 16) + -16 * c3, 32) + lw_min_i64(N, 16 * c3 + 16) + -16 * c3 + 80], sizeof lw_r5_0);
                      for (int64_t c4 = 256 * c1; c4 <= lw_min_i64(K - 1, 256 * c1 + 255); c4 += 1) {
                        lw_r0_0 += (A[(6 * c2 + 0) * K + c4] * lw_vload_f32_16(&B_pack[((-16 * c0 + c3) * 256 + (-256 * c1 + c4)) * 16 + (-1 * lw_mod_i64(lw_min_i64(N, 16 * c3 + 16) + -16 * c3, 32) + lw_min_i64(N, 16 * c3 + 16) + -16 * c3 + (0 + 0))]));
                        lw_r1_0 += (A[(6 * c2 + 1) * K + c4] * lw_vload_f32_16(&B_pack[((-16 * c0 + c3) * 256 + (-256 * c1 + c4)) * 16 + (-1 * lw_mod_i64(lw_min_i64(N, 16 * c3 + 16) + -16 * c3, 32) + lw_min_i64(N, 16 * c3 + 16) + -16 * c3 + (0 + 0))]));
                        lw_r2_0 += (A[(6 * c2 + 2) * K + c4] * lw_vload_f32_16(&B_pack[((-16 * c0 + c3) * 256 + (-256 * c1 + c4)) * 16 + (-1 * lw_mod_i64(lw_min_i64(N, 16 * c3 + 16) + -16 * c3, 32) + lw_min_i64(N, 16 * c3 + 16) + -16 * c3 + (0 + 0))]));
                        lw_r3_0 += (A[(6 * c2 + 3) * K + c4] * lw_vload_f32_16(&B_pack[((-16 * c0 + c3) * 256 + (-256 * c1 + c4)) * 16 + (-1 * lw_mod_i64(lw_min_i64(N, 16 * c3 + 16) + -16 * c3, 32) + lw_min_i64(N, 16 * c3 + 16) + -16 * c3 + (0 + 0))]));
                        lw_r4_0 += (A[(6 * c2 + 4) * K + c4] * lw_vload_f32_16(&B_pack[((-16 * c0 + c3) * 256 + (-256 * c1 + c4)) * 16 + (-1 * lw_mod_i64(lw_min_i64(N, 16 * c3 + 16) + -16 * c3, 32) + lw_min_i64(N, 16 * c3 + 16) + -16 * c3 + (0 + 0))]));
                        lw_r5_0 += (A[(6 * c2 + 5) * K + c4] * lw_vload_f32_16(&B_pack[((-16 * c0 + c3) * 256 + (-256 * c1 + c4)) * 16 + (-1 * lw_mod_i64(lw_min_i64(N, 16 * c3 + 16) + -16 * c3, 32) + lw_min_i64(N, 16 * c3 + 16) + -16 * c3 + (0 + 0))]));
                      }
                      __builtin_memcpy(&C_acc[-1 * lw_mod_i64(lw_min_i64(N, 16 * c3 + 16) + -16 * c3, 32) + lw_min_i64(N, 16 * c3 + 16) + -16 * c3], &lw_r0_0, sizeof lw_r0_0);
                      __builtin_memcpy(&C_acc[-1 * lw_mod_i64(lw_min_i64(N, 16 * c3 + 16) + -16 * c3, 32) + lw_min_i64(N, 16 * c3 + 16) + -16 * c3 + 16], &lw_r1_0, sizeof lw_r1_0);
                      __builtin_memcpy(&C_acc[-1 * lw_mod_i64(lw_min_i64(N, 16 * c3 + 16) + -16 * c3, 32) + lw_min_i64(N, 16 * c3 + 16) + -16 * c3 + 32], &lw_r2_0, sizeof lw_r2_0);
                      __builtin_memcpy(&C_acc[-1 * lw_mod_i64(lw_min_i64(N, 16 * c3 + 16) + -16 * c3, 32) + lw_min_i64(N, 16 * c3 + 16) + -16 * c3 + 48], &lw_r3_0, sizeof lw_r3_0);
                      __builtin_memcpy(&C_acc[-1 * lw_mod_i64(lw_min_i64(N, 16 * c3 + 16) + -16 * c3, 32) + lw_min_i64(N, 16 * c3 + 16) + -16 * c3 + 64], &lw_r4_0, sizeof lw_r4_0);
                      __builtin_memcpy(&C_acc[-1 * lw_mod_i64(lw_min_i64(N, 16 * c3 + 16) + -16 * c3, 32) + lw_min_i64(N, 16 * c3 + 16) + -16 * c3 + 80], &lw_r5_0, sizeof lw_r5_0);
                    }
                  }
                  if (lw_mod_i64(lw_min_i64(N, 16 * c3 + 16) + -16 * c3, 16) >= 8) {
                    {
                      lw_vec_f32_8 lw_r0_0, lw_r1_0, lw_r2_0, lw_r3_0, lw_r4_0, lw_r5_0;
                      __builtin_memcpy(&lw_r0_0, &C_acc[-1 * lw_mod_i64(lw_min_i64(N, 16 * c3 + 16) + -16 * c3, 16) + lw_min_i64(N, 16 * c3 + 16) + -16 * c3], sizeof lw_r0_0);
                      __builtin_memcpy(&lw_r1_0, &C_acc[-1 * lw_mod_i64(lw_min_i64(N, 16 * c3 + 16) + -16 * c3, 16) + lw_min_i64(N, 16 * c3 + 16) + -16 * c3 + 16], sizeof lw_r1_0);
                      __builtin_memcpy(&lw_r2_0, &C_acc[-1 * lw_mod_i64(lw_min_i64(N, 16 * c3 + 16) + -16 * c3, 16) + lw_min_i64(N, 16 * c3 + 16) + -16 * c3 + 32], sizeof lw_r2_0);
                      __builtin_memcpy(&lw_r3_0, &C_acc[-1 * lw_mod_i64(lw_min_i64(N, 16 * c3 + 16) + -16 * c3, 16) + lw_min_i64(N, 16 * c3 + 16) + -16 * c3 + 48], sizeof lw_r3_0);
                      __builtin_memcpy(&lw_r4_0, &C_acc[-1 * lw_mod_i64(lw_min_i64(N, 16 * c3 + 16) + -16 * c3, 16) + lw_min_i64(N, 16 * c3 + 16) + -16 * c3 + 64], sizeof lw_r4_0);
                      __builtin_memcpy(&lw_r5_0, &C_acc[-1 * lw_mod_i64(lw_min_i64(N, 16 * c3 + 16) + -16 * c3, 16) + lw_min_i64(N, 16 * c3 + 16) + -16 * c3 + 80], sizeof lw_r5_0);
                      for (int64_t c4 = 256 * c1; c4 <= lw_min_i64(K - 1, 256 * c1 + 255); c4 += 1) {
                        lw_r0_0 += (A[(6 * c2 + 0) * K + c4] * lw_vload_f32_8(&B_pack[((-16 * c0 + c3) * 256 + (-256 * c1 + c4)) * 16 + (-1 * lw_mod_i64(lw_min_i64(N, 16 * c3 + 16) + -16 * c3, 16) + lw_min_i64(N, 16 * c3 + 16) + -16 * c3 + (0 + 0))]));
                        lw_r1_0 += (A[(6 * c2 + 1) * K + c4] * lw_vload_f32_8(&B_pack[((-16 * c0 + c3) * 256 + (-256 * c1 + c4)) * 16 + (-1 * lw_mod_i64(lw_min_i64(N, 16 * c3 + 16) + -16 * c3, 16) + lw_min_i64(N, 16 * c3 + 16) + -16 * c3 + (0 + 0))]));
                        lw_r2_0 += (A[(6 * c2 + 2) * K + c4] * lw_vload_f32_8(&B_pack[((-16 * c0 + c3) * 256 + (-256 * c1 + c4)) * 16 + (-1 * lw_mod_i64(lw_min_i64(N, 16 * c3 + 16) + -16 * c3, 16) + lw_min_i64(N, 16 * c3 + 16) + -16 * c3 + (0 + 0))]));
                        lw_r3_0 += (A[(6 * c2 + 3) * K + c4] * lw_vload_f32_8(&B_pack[((-16 * c0 + c3) * 256 + (-256 * c1 + c4)) * 16 + (-1 * lw_mod_i64(lw_min_i64(N, 16 * c3 + 16) + -16 * c3, 16) + lw_min_i64(N, 16 * c3 + 16) + -16 * c3 + (0 + 0))]));
                        lw_r4_0 += (A[(6 * c2 + 4) * K + c4] * lw_vload_f32_8(&B_pack[((-16 * c0 + c3) * 256 + (-256 * c1 + c4)) * 16 + (-1 * lw_mod_i64(lw_min_i64(N, 16 * c3 + 16) + -16 * c3, 16) + lw_min_i64(N, 16 * c3 + 16) + -16 * c3 + (0 + 0))]));
                        lw_r5_0 += (A[(6 * c2 + 5) * K + c4] * lw_vload_f32_8(&B_pack[((-16 * c0 + c3) * 256 + (-256 * c1 + c4)) * 16 + (-1 * lw_mod_i64(lw_min_i64(N, 16 * c3 + 16) + -16 * c3, 16) + lw_min_i64(N, 16 * c3 + 16) + -16 * c3 + (0 + 0))]));
                      }
                      __builtin_memcpy(&C_acc[-1 * lw_mod_i64(lw_min_i64(N, 16 * c3 + 16) + -16 * c3, 16) + lw_min_i64(N, 16 * c3 + 16) + -16 * c3], &lw_r0_0, sizeof lw_r0_0);
                      __builtin_memcpy(&C_acc[-1 * lw_mod_i64(lw_min_i64(N, 16 * c3 + 16) + -16 * c3, 16) + lw_min_i64(N, 16 * c3 + 16) + -16 * c3 + 16], &lw_r1_0, sizeof lw_r1_0);
                      __builtin_memcpy(&C_acc[-1 * lw_mod_i64(lw_min_i64(N, 16 * c3 + 16) + -16 * c3, 16) + lw_min_i64(N, 16 * c3 + 16) + -16 * c3 + 32], &lw_r2_0, sizeof lw_r2_0);
                      __builtin_memcpy(&C_acc[-1 * lw_mod_i64(lw_min_i64(N, 16 * c3 + 16) + -16 * c3, 16) + lw_min_i64(N, 16 * c3 + 16) + -16 * c3 + 48], &lw_r3_0, sizeof lw_r3_0);
                      __builtin_memcpy(&C_acc[-1 * lw_mod_i64(lw_min_i64(N, 16 * c3 + 16) + -16 * c3, 16) + lw_min_i64(N, 16 * c3 + 16) + -16 * c3 + 64], &lw_r4_0, sizeof lw_r4_0);
                      __builtin_memcpy(&C_acc[-1 * lw_mod_i64(lw_min_i64(N, 16 * c3 + 16) + -16 * c3, 16) + lw_min_i64(N, 16 * c3 + 16) + -16 * c3 + 80], &lw_r5_0, sizeof lw_r5_0);
                    }
                  }
                  if (lw_mod_i64(lw_min_i64(N, 16 * c3 + 16) + -16 * c3, 8) >= 4) {
                    {
                      lw_vec_f32_4 lw_r0_0, lw_r1_0, lw_r2_0, lw_r3_0, lw_r4_0, lw_r5_0;
                      __builtin_memcpy(&lw_r0_0, &C_acc[-1 * lw_mod_i64(lw_min_i64(N, 16 * c3 + 16) + -16 * c3, 8) + lw_min_i64(N, 16 * c3 + 16) + -16 * c3], sizeof lw_r0_0);
                      __builtin_memcpy(&lw_r1_0, &C_acc[-1 * lw_mod_i64(lw_min_i64(N, 16 * c3 + 16) + -16 * c3, 8) + lw_min_i64(N, 16 * c3 + 16) + -16 * c3 + 16], sizeof lw_r1_0);
                      __builtin_memcpy(&lw_r2_0, &C_acc[-1 * lw_mod_i64(lw_min_i64(N, 16 * c3 + 16) + -16 * c3, 8) + lw_min_i64(N, 16 * c3 + 16) + -16 * c3 + 32], sizeof lw_r2_0);
                      __builtin_memcpy(&lw_r3_0, &C_acc[-1 * lw_mod_i64(lw_min_i64(N, 16 * c3 + 16) + -16 * c3, 8) + lw_min_i64(N, 16 * c3 + 16) + -16 * c3 + 48], sizeof lw_r3_0);
                      __builtin_memcpy(&lw_r4_0, &C_acc[-1 * lw_mod_i64(lw_min_i64(N, 16 * c3 + 16) + -16 * c3, 8) + lw_min_i64(N, 16 * c3 + 16) + -16 * c3 + 64], sizeof lw_r4_0);
                      __builtin_memcpy(&lw_r5_0, &C_acc[-1 * lw_mod_i64(lw_min_i64(N, 16 * c3 + 16) + -16 * c3, 8) + lw_min_i64(N, 16 * c3 + 16) + -16 * c3 + 80], sizeof lw_r5_0);
                      for (int64_t c4 = 256 * c1; c4 <= lw_min_i64(K - 1, 256 * c1 + 255); c4 += 1) {
                        lw_r0_0 += (A[(6 * c2 + 0) * K + c4] * lw_vload_f32_4(&B_pack[((-16 * c0 + c3) * 256 + (-256 * c1 + c4)) * 16 + (-1 * lw_mod_i64(lw_min_i64(N, 16 * c3 + 16) + -16 * c3, 8) + lw_min_i64(N, 16 * c3 + 16) + -16 * c3 + (0 + 0))]));
                        lw_r1_0 += (A[(6 * c2 + 1) * K + c4] * lw_vload_f32_4(&B_pack[((-16 * c0 + c3) * 256 + (-256 * c1 + c4)) * 16 + (-1 * lw_mod_i64(lw_min_i64(N, 16 * c3 + 16) + -16 * c3, 8) + lw_min_i64(N, 16 * c3 + 16) + -16 * c3 + (0 + 0))]));
                        lw_r2_0 += (A[(6 * c2 + 2) * K + c4] * lw_vload_f32_4(&B_pack[((-16 * c0 + c3) * 256 + (-256 * c1 + c4)) * 16 + (-1 * lw_mod_i64(lw_min_i64(N, 16 * c3 + 16) + -16 * c3, 8) + lw_min_i64(N, 16 * c3 + 16) + -16 * c3 + (0 + 0))]));
                        lw_r3_0 += (A[(6 * c2 + 3) * K + c4] * lw_vload_f32_4(&B_pack[((-16 * c0 + c3) * 256 + (-256 * c1 + c4)) * 16 + (-1 * lw_mod_i64(lw_min_i64(N, 16 * c3 + 16) + -16 * c3, 8) + lw_min_i64(N, 16 * c3 + 16) + -16 * c3 + (0 + 0))]));
                        lw_r4_0 += (A[(6 * c2 + 4) * K + c4] * lw_vload_f32_4(&B_pack[((-16 * c0 + c3) * 256 + (-256 * c1 + c4)) * 16 + (-1 * lw_mod_i64(lw_min_i64(N, 16 * c3 + 16) + -16 * c3, 8) + lw_min_i64(N, 16 * c3 + 16) + -16 * c3 + (0 + 0))]));
                        lw_r5_0 += (A[(6 * c2 + 5) * K + c4] * lw_vload_f32_4(&B_pack[((-16 * c0 + c3) * 256 + (-256 * c1 + c4)) * 16 + (-1 * lw_mod_i64(lw_min_i64(N, 16 * c3 + 16) + -16 * c3, 8) + lw_min_i64(N, 16 * c3 + 16) + -16 * c3 + (0 + 0))]));
                      }
                      __builtin_memcpy(&C_acc[-1 * lw_mod_i64(lw_min_i64(N, 16 * c3 + 16) + -16 * c3, 8) + lw_min_i64(N, 16 * c3 + 16) + -16 * c3], &lw_r0_0, sizeof lw_r0_0);
                      __builtin_memcpy(&C_acc[-1 * lw_mod_i64(lw_min_i64(N, 16 * c3 + 16) + -16 * c3, 8) + lw_min_i64(N, 16 * c3 + 16) + -16 * c3 + 16], &lw_r1_0, sizeof lw_r1_0);
                      __builtin_memcpy(&C_acc[-1 * lw_mod_i64(lw_min_i64(N, 16 * c3 + 16) + -16 * c3, 8) + lw_min_i64(N, 16 * c3 + 16) + -16 * c3 + 32], &lw_r2_0, sizeof lw_r2_0);
                      __builtin_memcpy(&C_acc[-1 * lw_mod_i64(lw_min_i64(N, 16 * c3 + 16) + -16 * c3, 8) + lw_min_i64(N, 16 * c3 + 16) + -16 * c3 + 48], &lw_r3_0, sizeof lw_r3_0);
                      __builtin_memcpy(&C_acc[-1 * lw_mod_i64(lw_min_i64(N, 16 * c3 + 16) + -16 * c3, 8) + lw_min_i64(N, 16 * c3 + 16) + -16 * c3 + 64], &lw_r4_0, sizeof lw_r4_0);
                      __builtin_memcpy(&C_acc[-1 * lw_mod_i64(lw_min_i64(N, 16 * c3 + 16) + -16 * c3, 8) + lw_min_i64(N, 16 * c3 + 16) + -16 * c3 + 80], &lw_r5_0, sizeof lw_r5_0);
                    }
                  }
                  if (lw_mod_i64(lw_min_i64(N, 16 * c3 + 16) + -16 * c3, 4) > 0) {
                    for (int64_t c4 = 256 * c1; c4 <= lw_min_i64(K - 1, 256 * c1 + 255); c4 += 1) {
                      for (int64_t c5 = 0; c5 < 6; c5 += 1) {
                        for (int64_t c6 = -1 * lw_mod_i64(lw_min_i64(N, 16 * c3 + 16) + -16 * c3, 4) + lw_min_i64(N, 16 * c3 + 16); c6 <= lw_min_i64(N - 1, 16 * c3 + 15); c6 += 1) {
                          C_acc[c5 * 16 + (-16 * c3 + c6)] = C_acc[c5 * 16 + (-16 * c3 + c6)] + A[(6 * c2 + c5) * K + c4] * B_pack[((-16 * c0 + c3) * 256 + (-256 * c1 + c4)) * 16 + (-16 * c3 + c6)];
                        }
                      }
                    }
                  }
                } else {
                  for (int64_t c5_edge = 6 * c2; c5_edge < lw_min_i64(M, 6 * c2 + 6); c5_edge += 1) {
                    if (lw_mod_i64(lw_min_i64(N, 16 * c3 + 16) + -16 * c3, 32) >= 16) {
                      {
                        lw_vec_f32_16 lw_r0_0;
                        __builtin_memcpy(&lw_r0_0, &C_acc[-1 * lw_mod_i64(lw_min_i64(N, 16 * c3 + 16) + -16 * c3, 32) + lw_min_i64(N, 16 * c3 + 16) + -96 * c2 + -16 * c3 + 16 * c5_edge], sizeof lw_r0_0);
                        for (int64_t c4 = 256 * c1; c4 <= lw_min_i64(K - 1, 256 * c1 + 255); c4 += 1) {
                          lw_r0_0 += (A[(0 + c5_edge) * K + c4] * lw_vload_f32_16(&B_pack[((-16 * c0 + c3) * 256 + (-256 * c1 + c4)) * 16 + (-1 * lw_mod_i64(lw_min_i64(N, 16 * c3 + 16) + -16 * c3, 32) + lw_min_i64(N, 16 * c3 + 16) + -16 * c3 + (0 + 0))]));
                        }
                        __builtin_memcpy(&C_acc[-1 * lw_mod_i64(lw_min_i64(N, 16 * c3 + 16) + -16 * c3, 32) + lw_min_i64(N, 16 * c3 + 16) + -96 * c2 + -16 * c3 + 16 * c5_edge], &lw_r0_0, sizeof lw_r0_0);
                      }
                    }
                    if (lw_mod_i64(lw_min_i64(N, 16 * c3 + 16) + -16 * c3, 16) >= 8) {
                      {
                        lw_vec_f32_8 lw_r0_0;
                        __builtin_memcpy(&lw_r0_0, &C_acc[-1 * lw_mod_i64(lw_min_i64(N, 16 * c3 + 16) + -16 * c3, 16) + lw_min_i64(N, 16 * c3 + 16) + -96 * c2 + -16 * c3 + 16 * c5_edge], sizeof lw_r0_0);
                        for (int64_t c4 = 256 * c1; c4 <= lw_min_i64(K - 1, 256 * c1 + 255); c4 += 1) {
                          lw_r0_0 += (A[(0 + c5_edge) * K + c4] * lw_vload_f32_8(&B_pack[((-16 * c0 + c3) * 256 + (-256 * c1 + c4)) * 16 + (-1 * lw_mod_i64(lw_min_i64(N, 16 * c3 + 16) + -16 * c3, 16) + lw_min_i64(N, 16 * c3 + 16) + -16 * c3 + (0 + 0))]));
                        }
                        __builtin_memcpy(&C_acc[-1 * lw_mod_i64(lw_min_i64(N, 16 * c3 + 16) + -16 * c3, 16) + lw_min_i64(N, 16 * c3 + 16) + -96 * c2 + -16 * c3 + 16 * c5_edge], &lw_r0_0, sizeof lw_r0_0);
                      }
                    }
                    if (lw_mod_i64(lw_min_i64(N, 16 * c3 + 16) + -16 * c3, 8) >= 4) {
                      {
                        lw_vec_f32_4 lw_r0_0;
                        __builtin_memcpy(&lw_r0_0, &C_acc[-1 * lw_mod_i64(lw_min_i64(N, 16 * c3 + 16) + -16 * c3, 8) + lw_min_i64(N, 16 * c3 + 16) + -96 * c2 + -16 * c3 + 16 * c5_edge], sizeof lw_r0_0);
                        for (int64_t c4 = 256 * c1; c4 <= lw_min_i64(K - 1, 256 * c1 + 255); c4 += 1) {
                          lw_r0_0 += (A[(0 + c5_edge) * K + c4] * lw_vload_f32_4(&B_pack[((-16 * c0 + c3) * 256 + (-256 * c1 + c4)) * 16 + (-1 * lw_mod_i64(lw_min_i64(N, 16 * c3 + 16) + -16 * c3, 8) + lw_min_i64(N, 16 * c3 + 16) + -16 * c3 + (0 + 0))]));
                        }
                        __builtin_memcpy(&C_acc[-1 * lw_mod_i64(lw_min_i64(N, 16 * c3 + 16) + -16 * c3, 8) + lw_min_i64(N, 16 * c3 + 16) + -96 * c2 + -16 * c3 + 16 * c5_edge], &lw_r0_0, sizeof lw_r0_0);
                      }
                    }
                    if (lw_mod_i64(lw_min_i64(N, 16 * c3 + 16) + -16 * c3, 4) > 0) {
                      for (int64_t c4 = 256 * c1; c4 <= lw_min_i64(K - 1, 256 * c1 + 255); c4 += 1) {
                        for (int64_t c5 = 0; c5 < 1; c5 += 1) {
                          for (int64_t c6 = -1 * lw_mod_i64(lw_min_i64(N, 16 * c3 + 16) + -16 * c3, 4) + lw_min_i64(N, 16 * c3 + 16); c6 <= lw_min_i64(N - 1, 16 * c3 + 15); c6 += 1) {
                            C_acc[(-6 * c2 + c5 + c5_edge) * 16 + (-16 * c3 + c6)] = C_acc[(-6 * c2 + c5 + c5_edge) * 16 + (-16 * c3 + c6)] + A[(c5 + c5_edge) * K + c4] * B_pack[((-16 * c0 + c3) * 256 + (-256 * c1 + c4)) * 16 + (-16 * c3 + c6)];
                          }
                        }
                      }
                    }
                  }
                }
                for (int64_t c4_0 = lw_max_i64(0, -6 * c2); c4_0 < lw_min_i64(6, M + -6 * c2); c4_0 += 1) {
                  for (int64_t c4_1 = lw_max_i64(0, -16 * c3); c4_1 < lw_min_i64(16, N + -16 * c3); c4_1 += 1) {
                    C[(6 * c2 + c4_0) * N + (16 * c3 + c4_1)] = C_acc[c4_0 * 16 + c4_1];
                  }
                }
              }
            }
          }
        }
      }
    }
  }
}
