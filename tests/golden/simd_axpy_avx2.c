void lw_axpy(float a, const float *restrict X, float *restrict Y, int64_t N) {
#if defined(__AVX2__) && defined(__FMA__)
  {
    int64_t c0 = 0;
    const int64_t lw_end3 = N;
    for (; lw_end3 - c0 >= 32; ) {
      const __m256 lw_v4 = _mm256_set1_ps(a);
      const __m256 lw_v5 = _mm256_loadu_ps(&X[c0]);
      _mm256_storeu_ps(&Y[c0], _mm256_fmadd_ps(lw_v4, lw_v5, _mm256_loadu_ps(&Y[c0])));
      c0 += 8;
      const __m256 lw_v6 = _mm256_set1_ps(a);
      const __m256 lw_v7 = _mm256_loadu_ps(&X[c0]);
      _mm256_storeu_ps(&Y[c0], _mm256_fmadd_ps(lw_v6, lw_v7, _mm256_loadu_ps(&Y[c0])));
      c0 += 8;
      const __m256 lw_v8 = _mm256_set1_ps(a);
      const __m256 lw_v9 = _mm256_loadu_ps(&X[c0]);
      _mm256_storeu_ps(&Y[c0], _mm256_fmadd_ps(lw_v8, lw_v9, _mm256_loadu_ps(&Y[c0])));
      c0 += 8;
      const __m256 lw_v10 = _mm256_set1_ps(a);
      const __m256 lw_v11 = _mm256_loadu_ps(&X[c0]);
      _mm256_storeu_ps(&Y[c0], _mm256_fmadd_ps(lw_v10, lw_v11, _mm256_loadu_ps(&Y[c0])));
      c0 += 8;
    }
    for (; lw_end3 - c0 >= 8; c0 += 8) {
      const __m256 lw_v1 = _mm256_set1_ps(a);
      const __m256 lw_v2 = _mm256_loadu_ps(&X[c0]);
      _mm256_storeu_ps(&Y[c0], _mm256_fmadd_ps(lw_v1, lw_v2, _mm256_loadu_ps(&Y[c0])));
    }
    for (; c0 < lw_end3; c0 += 1) {
      Y[c0] = Y[c0] + a * X[c0];
    }
  }
#else
  #pragma omp simd
  for (int64_t c0 = 0; c0 < N; c0 += 1) {
    Y[c0] = Y[c0] + a * X[c0];
  }
#endif
}
