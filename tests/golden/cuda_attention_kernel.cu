extern "C" __global__ void __launch_bounds__(512)
lw_attention_k0(const float *__restrict__ Q, const float *__restrict__ K, const float *__restrict__ V, float scale, float *__restrict__ O, int64_t LQ, int64_t D, int64_t LK, int64_t DV) {
  __shared__ float s[512];
  __shared__ float m[16];
  __shared__ float e[512];
  __shared__ float z[16];
  __shared__ float m_old[16];
  __shared__ float m_alpha[16];
  __shared__ float K_pack[1024];
  __shared__ float Q_pack[512];
  __shared__ float V_pack[1024];
  for (int64_t c0 = 0 + (int64_t)blockIdx.x * 1; c0 <= lw_div_i64(LQ - 1, 16); c0 += (int64_t)gridDim.x * 1) {
    {
      const int64_t c1 = 16 * c0 + (int64_t)threadIdx.y * 1;
      if (c1 <= lw_min_i64(LQ - 1, 16 * c0 + 15)) {
        if (threadIdx.x == 0) {
          m[-16 * c0 + c1] = (-INFINITY);
        }
      }
    }
    __syncthreads();
    {
      const int64_t c1 = 16 * c0 + (int64_t)threadIdx.y * 1;
      if (c1 <= lw_min_i64(LQ - 1, 16 * c0 + 15)) {
        if (threadIdx.x == 0) {
          z[-16 * c0 + c1] = 0.0f;
        }
      }
    }
    __syncthreads();
    for (int64_t c1 = 0; c1 <= lw_div_i64(DV - 1, 32); c1 += 1) {
      {
        const int64_t c2 = 16 * c0 + (int64_t)threadIdx.y * 1;
        if (c2 <= lw_min_i64(LQ - 1, 16 * c0 + 15)) {
          {
            const int64_t c3 = 32 * c1 + (int64_t)threadIdx.x * 1;
            if (c3 <= lw_min_i64(DV - 1, 32 * c1 + 31)) {
              O[c2 * DV + c3] = 0.0f;
            }
          }
        }
      }
      __syncthreads();
    }
    __syncthreads();
    for (int64_t c1 = 0; c1 <= lw_div_i64(LK - 1, 32); c1 += 1) {
      {
        const int64_t c2 = 16 * c0 + (int64_t)threadIdx.y * 1;
        if (c2 <= lw_min_i64(LQ - 1, 16 * c0 + 15)) {
          {
            const int64_t c3 = 0 + (int64_t)threadIdx.x * 1;
            if (c3 <= lw_min_i64(31, LK - 32 * c1 - 1)) {
              s[(-16 * c0 + c2) * 32 + c3] = 0.0f;
            }
          }
        }
      }
      __syncthreads();
      for (int64_t c2 = 0; c2 <= lw_div_i64(D - 1, 32); c2 += 1) {
        {
          const int64_t lw_e0 = lw_min_i64(32, LK + -32 * c1) - lw_max_i64(0, -32 * c1);
          const int64_t lw_e1 = lw_min_i64(32, D + -32 * c2) - lw_max_i64(0, -32 * c2);
          if (lw_e0 > 0 && lw_e1 > 0)
          for (int64_t lw_f = threadIdx.x + (int64_t)blockDim.x * (threadIdx.y + (int64_t)blockDim.y * threadIdx.z); lw_f < lw_e0 * lw_e1; lw_f += (int64_t)blockDim.x * blockDim.y * blockDim.z) {
            const int64_t c3_1 = lw_max_i64(0, -32 * c2) + lw_f % lw_e1;
            const int64_t c3_0 = lw_max_i64(0, -32 * c1) + lw_f / lw_e1;
            K_pack[c3_1 * 32 + c3_0] = K[(32 * c1 + c3_0) * D + (32 * c2 + c3_1)];
          }
        }
        __syncthreads();
        {
          const int64_t lw_e0 = lw_min_i64(16, LQ + -16 * c0) - lw_max_i64(0, -16 * c0);
          const int64_t lw_e1 = lw_min_i64(32, D + -32 * c2) - lw_max_i64(0, -32 * c2);
          if (lw_e0 > 0 && lw_e1 > 0)
          for (int64_t lw_f = threadIdx.x + (int64_t)blockDim.x * (threadIdx.y + (int64_t)blockDim.y * threadIdx.z); lw_f < lw_e0 * lw_e1; lw_f += (int64_t)blockDim.x * blockDim.y * blockDim.z) {
            const int64_t c3_1 = lw_max_i64(0, -32 * c2) + lw_f % lw_e1;
            const int64_t c3_0 = lw_max_i64(0, -16 * c0) + lw_f / lw_e1;
            Q_pack[c3_0 * 32 + c3_1] = Q[(16 * c0 + c3_0) * D + (32 * c2 + c3_1)];
          }
        }
        __syncthreads();
        {
          const int64_t c3 = 16 * c0 + (int64_t)threadIdx.y * 1;
          if (c3 <= lw_min_i64(LQ - 1, 16 * c0 + 15)) {
            {
              const int64_t c4 = 0 + (int64_t)threadIdx.x * 1;
              if (c4 <= lw_min_i64(31, LK - 32 * c1 - 1)) {
                if (32 * c2 <= lw_min_i64(D - 1, 32 * c2 + 31)) {
                  float lw_r0 = s[(-16 * c0 + c3) * 32 + c4];
                  for (int64_t c5 = 32 * c2; c5 <= lw_min_i64(D - 1, 32 * c2 + 31); c5 += 1) {
                    lw_r0 = lw_r0 + Q_pack[(-16 * c0 + c3) * 32 + (-32 * c2 + c5)] * K_pack[(-32 * c2 + c5) * 32 + c4];
                  }
                  s[(-16 * c0 + c3) * 32 + c4] = lw_r0;
                }
              }
            }
          }
        }
        __syncthreads();
      }
      __syncthreads();
      {
        const int64_t c2 = 16 * c0 + (int64_t)threadIdx.y * 1;
        if (c2 <= lw_min_i64(LQ - 1, 16 * c0 + 15)) {
          if (threadIdx.x == 0) {
            m_old[-16 * c0 + c2] = m[-16 * c0 + c2];
          }
        }
      }
      __syncthreads();
      {
        const int64_t c2 = 16 * c0 + (int64_t)threadIdx.y * 1;
        if (c2 <= lw_min_i64(LQ - 1, 16 * c0 + 15)) {
          if (threadIdx.x == 0) {
            if (0 <= lw_min_i64(31, LK - 32 * c1 - 1)) {
              float lw_r1 = m[-16 * c0 + c2];
              for (int64_t c3 = 0; c3 <= lw_min_i64(31, LK - 32 * c1 - 1); c3 += 1) {
                lw_r1 = lw_max_f32(lw_r1, s[(-16 * c0 + c2) * 32 + c3]);
              }
              m[-16 * c0 + c2] = lw_r1;
            }
          }
        }
      }
      __syncthreads();
      {
        const int64_t c2 = 16 * c0 + (int64_t)threadIdx.y * 1;
        if (c2 <= lw_min_i64(LQ - 1, 16 * c0 + 15)) {
          if (threadIdx.x == 0) {
            m_alpha[-16 * c0 + c2] = (m_old[-16 * c0 + c2] == m[-16 * c0 + c2] ? 1.0f : expf(scale * (m_old[-16 * c0 + c2] - m[-16 * c0 + c2])));
          }
        }
      }
      __syncthreads();
      {
        const int64_t c2 = 16 * c0 + (int64_t)threadIdx.y * 1;
        if (c2 <= lw_min_i64(LQ - 1, 16 * c0 + 15)) {
          {
            const int64_t c3 = 0 + (int64_t)threadIdx.x * 1;
            if (c3 <= lw_min_i64(31, LK - 32 * c1 - 1)) {
              e[(-16 * c0 + c2) * 32 + c3] = expf(scale * (s[(-16 * c0 + c2) * 32 + c3] - m[-16 * c0 + c2]));
            }
          }
        }
      }
      __syncthreads();
      {
        const int64_t c2 = 16 * c0 + (int64_t)threadIdx.y * 1;
        if (c2 <= lw_min_i64(LQ - 1, 16 * c0 + 15)) {
          if (threadIdx.x == 0) {
            z[-16 * c0 + c2] = z[-16 * c0 + c2] * m_alpha[-16 * c0 + c2];
          }
        }
      }
      __syncthreads();
      {
        const int64_t c2 = 16 * c0 + (int64_t)threadIdx.y * 1;
        if (c2 <= lw_min_i64(LQ - 1, 16 * c0 + 15)) {
          if (threadIdx.x == 0) {
            if (0 <= lw_min_i64(31, LK - 32 * c1 - 1)) {
              float lw_r2 = z[-16 * c0 + c2];
              for (int64_t c3 = 0; c3 <= lw_min_i64(31, LK - 32 * c1 - 1); c3 += 1) {
                lw_r2 = lw_r2 + e[(-16 * c0 + c2) * 32 + c3];
              }
              z[-16 * c0 + c2] = lw_r2;
            }
          }
        }
      }
      __syncthreads();
      for (int64_t c2 = 0; c2 <= lw_div_i64(DV - 1, 32); c2 += 1) {
        {
          const int64_t lw_e0 = lw_min_i64(32, LK + -32 * c1) - lw_max_i64(0, -32 * c1);
          const int64_t lw_e1 = lw_min_i64(32, DV + -32 * c2) - lw_max_i64(0, -32 * c2);
          if (lw_e0 > 0 && lw_e1 > 0)
          for (int64_t lw_f = threadIdx.x + (int64_t)blockDim.x * (threadIdx.y + (int64_t)blockDim.y * threadIdx.z); lw_f < lw_e0 * lw_e1; lw_f += (int64_t)blockDim.x * blockDim.y * blockDim.z) {
            const int64_t c3_1 = lw_max_i64(0, -32 * c2) + lw_f % lw_e1;
            const int64_t c3_0 = lw_max_i64(0, -32 * c1) + lw_f / lw_e1;
            V_pack[c3_0 * 32 + c3_1] = V[(32 * c1 + c3_0) * DV + (32 * c2 + c3_1)];
          }
        }
        __syncthreads();
        {
          const int64_t c3 = 16 * c0 + (int64_t)threadIdx.y * 1;
          if (c3 <= lw_min_i64(LQ - 1, 16 * c0 + 15)) {
            {
              const int64_t c4 = 32 * c2 + (int64_t)threadIdx.x * 1;
              if (c4 <= lw_min_i64(DV - 1, 32 * c2 + 31)) {
                O[c3 * DV + c4] = O[c3 * DV + c4] * m_alpha[-16 * c0 + c3];
                if (0 <= lw_min_i64(31, LK - 32 * c1 - 1)) {
                  float lw_r3 = O[c3 * DV + c4];
                  for (int64_t c5 = 0; c5 <= lw_min_i64(31, LK - 32 * c1 - 1); c5 += 1) {
                    lw_r3 = lw_r3 + e[(-16 * c0 + c3) * 32 + c5] * V_pack[c5 * 32 + (-32 * c2 + c4)];
                  }
                  O[c3 * DV + c4] = lw_r3;
                }
              }
            }
          }
        }
        __syncthreads();
      }
      __syncthreads();
    }
    __syncthreads();
    if (LK >= 1) {
      for (int64_t c1 = 0; c1 <= lw_div_i64(DV - 1, 32); c1 += 1) {
        {
          const int64_t c2 = 16 * c0 + (int64_t)threadIdx.y * 1;
          if (c2 <= lw_min_i64(LQ - 1, 16 * c0 + 15)) {
            {
              const int64_t c3 = 32 * c1 + (int64_t)threadIdx.x * 1;
              if (c3 <= lw_min_i64(DV - 1, 32 * c1 + 31)) {
                O[c2 * DV + c3] = O[c2 * DV + c3] / z[-16 * c0 + c2];
              }
            }
          }
        }
        __syncthreads();
      }
    }
    __syncthreads();
  }
}

