"""The C text of the x86 low-precision GEMM helper (backends/x86_gemm.py `helper` fills it in for
one `GemmKind`): packing A and B, the AMX and vector micro-kernel calls over blocks of C, and the
few-rows form that takes B in chunks of k (a decoding step's GEMM).

Sizes and offsets of A and B are in elements of `elem`: 64 bytes are STEP of them, a group of 4
bytes GROUP. $-names are the kind's pieces (string.Template).
"""

HELPER = r"""
#if ($AMX_GUARD) || ($VEC_GUARD)
#include <immintrin.h>
#include <stdlib.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#define ${NAME} 1
#define ${NAME}_GROUP (4 / (int64_t)sizeof($PELEM))
#define ${NAME}_STEP (64 / (int64_t)sizeof($PELEM))
#define ${NAME}_FEW_ROWS_BYTES $FEW_ROWS_BYTES
#define ${NAME}_MIN_PANELS $MIN_PANELS
#define ${NAME}_FEW_MAX_ROWS $FEW_MAX_ROWS
#ifndef LW_GEMM_COMMON
#define LW_GEMM_COMMON 1
#if defined(__linux__)
long syscall(long number, ...);
#endif
/* Linux hands out the AMX tile state only on request (once per process). */
static int lw_amx_ready(void) {
#if defined(__linux__)
  static volatile int state = 0;  /* 0 not asked, 1 granted, -1 refused */
  if (state == 0) /* SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA */
    state = syscall(158, 0x1023, 18) == 0 ? 1 : -1;
  return state > 0;
#else
  return 0;
#endif
}
typedef struct { uint8_t palette, start_row, reserved[14]; uint16_t colsb[16]; uint8_t rows[16]; }
  lw_tile_config;
/* The packed operands live in a buffer per thread that calling threads keep and grow: a
   fresh allocation of tens of MB is new pages each call, whose faults cost as much as the
   packing itself (16 x 4096 x 4096 bf16: 11 ms of 12). */
static __thread uint8_t *lw_gemm_buffer_raw;
static __thread size_t lw_gemm_buffer_size;
static uint8_t *lw_gemm_buffer(size_t bytes) {
  if (bytes > lw_gemm_buffer_size) {
    free(lw_gemm_buffer_raw);
    lw_gemm_buffer_raw = (uint8_t *)malloc(bytes + 64);
    lw_gemm_buffer_size = lw_gemm_buffer_raw ? bytes : 0;
    if (!lw_gemm_buffer_raw) return NULL;
  }
  return (uint8_t *)(((uintptr_t)lw_gemm_buffer_raw + 63) & ~(uintptr_t)63);
}
static size_t lw_round64(size_t bytes) { return (bytes + 63) & ~(size_t)63; }
/* This thread's number and the team's size (0 of 1 outside OpenMP). */
static void lw_team(int64_t *share, int64_t *shares) {
#ifdef _OPENMP
  *share = omp_get_thread_num(); *shares = omp_get_num_threads();
#else
  *share = 0; *shares = 1;
#endif
}
#endif
/* Packs rows k_from .. k_to - 1 (whole steps) of B's panels p_from .. p_to - 1, panel p at
   dst0 + (p - p_from) * kp * 32 (its group at row k at 32 k), zero past kk and past the n
   columns, adding each column's values into sums (the vector path's correction): a step of
   rows at a time across the panels (one panel down all of K would touch a page a row) */
static void ${FN}_vec_pack($PELEM *dst0, int64_t kp, const $ELEM *B, int64_t sbk,
                           int64_t sbj, int64_t n, int64_t kk, int64_t k_from, int64_t k_to,
                           int64_t p_from, int64_t p_to, int32_t *sums) {
  const int64_t step = ${NAME}_STEP, group = ${NAME}_GROUP;
  for (int64_t k0 = k_from; k0 < k_to; k0 += step) {
    for (int64_t p = p_from; p < p_to; p++) {
      $PELEM *panel = dst0 + (p - p_from) * kp * 32;
      int32_t *sum = sums + 32 * p;
      const int64_t cols = n - 32 * p < 32 ? n - 32 * p : 32;
      int64_t k = k0;
#if $PACK_GUARD
      if (sbj == 1 && cols == 32) {  /* whole groups: 16 columns a step */
        $PACK_BEGIN
        for (; k + group <= (kk < k0 + step ? kk : k0 + step); k += group) {
          const $ELEM *b = B + k * sbk + 32 * p;
          for (int h = 0; h < 2; h++) {
#define LW_ROW(q) ((const void *)(b + (q) * sbk + 16 * h))
#define LW_DST ((void *)(panel + 32 * k + 16 * group * h))
            $PACK_GROUP
#undef LW_DST
#undef LW_ROW
          }
        }
        $PACK_END
      }
#endif
      for (; k < k0 + step; k++) {
        $PELEM *g = panel + (k - k % group) * 32 + k % group;
        const $ELEM *b = B + k * sbk + 32 * p * sbj;
        int64_t c = 0;
        if (k < kk) {
          for (; c < cols; c++) {
            g[group * c] = ($PELEM)b[c * sbj];
            sum[c] += ($ELEM_SIGNED)b[c * sbj];
          }
        }
        for (; c < 32; c++) g[group * c] = 0;
      }
    }
  }
}
/* C's block at rows i0, panel p (rows x cols of it) = fill_value + out where fill, else
   C += out (out's rows 32 apart) */
static void ${FN}_add_out($ACC *C, int64_t sci, int64_t scj, int64_t i0, int64_t p,
                          int64_t rows, int64_t cols, int fill, $ACC fill_value,
                          const $ACC *out) {
  for (int64_t r = 0; r < rows; r++) {
    $ACC *c = C + (i0 + r) * sci + 32 * p * scj;
    const $ACC *o = out + 32 * r;
    if (fill) for (int64_t q = 0; q < cols; q++) c[q * scj] = $ADD(fill_value, o[q]);
    else if (scj == 1) for (int64_t q = 0; q < cols; q++) c[q] = $ADD(c[q], o[q]);
    else for (int64_t q = 0; q < cols; q++) c[q * scj] = $ADD(c[q * scj], o[q]);
  }
}
#if $AMX_GUARD
#define ${NAME}_AMX 1
/* This thread's tiles: eight of 16 rows x 64 bytes. */
static void ${FN}_amx_config(void) {
  lw_tile_config config;
  memset(&config, 0, sizeof config);
  config.palette = 1;
  for (int t = 0; t < 8; t++) { config.rows[t] = 16; config.colsb[t] = 64; }
  _tile_loadconfig(&config);
}
/* out[rows][32] (rows ld elements apart; rows 32 or 16, a constant at each call) = (or +=
   where add) `rows` packed rows of A (kc elements of rows kp long) times kc rows of a packed
   B panel: four tiles of C, or two */
static inline __attribute__((always_inline)) void ${FN}_amx_rows(
    const $PELEM *ap, const $PELEM *bp, int64_t kc, int64_t kp, $ACC *out, int64_t ld,
    int add, const int rows) {
  const int64_t out_bytes = ld * (int64_t)sizeof($ACC);
  if (add) {
    _tile_loadd(0, out, out_bytes); _tile_loadd(1, out + 16, out_bytes);
    if (rows == 32) {
      _tile_loadd(2, out + 16 * ld, out_bytes); _tile_loadd(3, out + 16 * ld + 16, out_bytes);
    }
  } else {
    _tile_zero(0); _tile_zero(1);
    if (rows == 32) { _tile_zero(2); _tile_zero(3); }
  }
  const int64_t row_bytes = kp * (int64_t)sizeof($PELEM);
  /* Each product follows the loads of its operands, so that the next tiles load while the
     products run (all four loads first, then the products: bf16, one thread, Xeon, 1024^3
     and 2048^3 0.93-0.96x the time) */
  for (int64_t k = 0; k < kc; k += ${NAME}_STEP) {
    _tile_loadd(4, ap + k, row_bytes);
    _tile_loadd(6, bp + 32 * k, 128);
    $AMX_DOT(0, 4, 6);
    _tile_loadd(7, bp + 32 * k + 16 * ${NAME}_GROUP, 128);
    $AMX_DOT(1, 4, 7);
    if (rows == 32) {
      _tile_loadd(5, ap + 16 * kp + k, row_bytes);
      $AMX_DOT(2, 5, 6); $AMX_DOT(3, 5, 7);
    }
  }
  _tile_stored(0, out, out_bytes); _tile_stored(1, out + 16, out_bytes);
  if (rows == 32) {
    _tile_stored(2, out + 16 * ld, out_bytes); _tile_stored(3, out + 16 * ld + 16, out_bytes);
  }
}
static void ${FN}_amx_block(const $PELEM *ap, const $PELEM *bp, int64_t kc, int64_t kp,
                            $ACC *out, int64_t ld, int add) {
  ${FN}_amx_rows(ap, bp, kc, kp, out, ld, add, 32);
}
static void ${FN}_amx_block16(const $PELEM *ap, const $PELEM *bp, int64_t kc, int64_t kp,
                              $ACC *out, int64_t ld, int add) {
  ${FN}_amx_rows(ap, bp, kc, kp, out, ld, add, 16);
}
/* Packs rows k_from .. k_to - 1 (whole groups; zero past kk and past the n columns) of B's
   panels p_from .. p_to - 1 in the VNNI layout, panel p's group at row k at
   dst0 + (p - p_from) * stride + (k - k_base) * 32: a group of rows at a time across the
   panels, each row's piece read whole (panel by panel, a row was read 64 bytes a visit, pages
   apart: bf16 64 x 4096 x 4096, 4.6 of 6.7 ms packing) */
static void ${FN}_amx_pack($PELEM *dst0, int64_t stride, const $ELEM *B, int64_t sbk,
                           int64_t sbj, int64_t n, int64_t kk, int64_t k_from, int64_t k_to,
                           int64_t k_base, int64_t p_from, int64_t p_to) {
  const int64_t group = ${NAME}_GROUP;
  int32_t unused[32] = {0}, *sum = unused;  /* (the vector path's column sums) */
  (void)sum;
  for (int64_t k = k_from; k < k_to; k += group) {
    for (int64_t p = p_from; p < p_to; p++) {
      $PELEM *dst = dst0 + (p - p_from) * stride + (k - k_base) * 32;
      const int64_t cols = n - 32 * p < 32 ? n - 32 * p : 32;
#if $PACK_GUARD
      if (sbj == 1 && cols == 32 && k + group <= kk) {
        $PACK_BEGIN
        const $ELEM *b = B + k * sbk + 32 * p;
        for (int h = 0; h < 2; h++) {
#define LW_ROW(q) ((const void *)(b + (q) * sbk + 16 * h))
#define LW_DST ((void *)(dst + 16 * group * h))
          $PACK_GROUP
#undef LW_DST
#undef LW_ROW
        }
        $PACK_END
        continue;
      }
#endif
      for (int64_t c = 0; c < 32; c++)
        for (int64_t q = 0; q < group; q++)
          dst[group * c + q] = c < cols && k + q < kk ?
            ($PELEM)B[(k + q) * sbk + (32 * p + c) * sbj] : ($PELEM)0;
    }
  }
}
/* C's 32 x 32 block at rows i0, panel p += (or, on the first chunk where fill, =
   fill_value +) its rows of A (astride apart, from kc0) times the panel (depth deep): whole
   blocks of a C filled with zero go straight from the tiles into C (`straight`), others
   through out */
static inline void ${FN}_amx_tiles(const $PELEM *arows, int64_t astride, int64_t kc0,
                            const $PELEM *panel, int64_t depth, $ACC *C, int64_t sci,
                            int64_t scj, int64_t m, int64_t n, int64_t i0, int64_t p,
                            int straight, int first, int fill, $ACC fill_value, $ACC *out) {
  const int64_t rows = m - i0 < 32 ? m - i0 : 32, cols = n - 32 * p < 32 ? n - 32 * p : 32;
  if (straight && rows == 32 && cols == 32) {
    if (first)  /* (add a constant in each call: a variable one cost 2-4%) */
      ${FN}_amx_block(arows + i0 * astride, panel, depth, astride, C + i0 * sci + 32 * p,
                       sci, 0);
    else
      ${FN}_amx_block(arows + i0 * astride + kc0, panel, depth, astride,
                       C + i0 * sci + 32 * p, sci, 1);
    return;
  }
  ${FN}_amx_block(arows + i0 * astride + kc0, panel, depth, astride, out, 32, 0);
  ${FN}_add_out(C, sci, scj, i0, p, rows, cols, fill && first, fill_value, out);
}
/* Few rows of C (up to FEW_MAX_ROWS: a decoding step's GEMM), n of its columns (the caller
   cuts C into such blocks): a packed panel would serve few row blocks, so B is packed kch rows
   of k at a time across all n columns, each row's piece read whole (a panel block at a time
   read a row 256 bytes per visit, at half the rate), and each chunk's tile products
   accumulate in acc, which holds all of the block's C (rows ld apart) and is added into C at
   the end. */
static int ${FN}_amx_few_rows(const $PELEM *ap, const $ELEM *B, $ACC *C, int64_t m,
                              int64_t n, int64_t kk, int64_t kp, int64_t kch, int64_t sbk,
                              int64_t sbj, int64_t sci, int64_t scj, $PELEM *cp, $ACC *acc,
                              int fill, $ACC fill_value) {
  /* blocks of 32 rows, the last of 16 where no more remain (each chunk of k loads and
     stores all of acc: 16 rows of padding were half of it at m <= 16) */
  const int64_t mp = (m + 15) / 16 * 16, panels = (n + 31) / 32;
  const int64_t ld = panels * 32;
  /* Each thread packs, multiplies and adds into C the panels of its share of the columns:
     no barrier, and no panel packed by one core and read by another (by groups of rows among
     the threads, then by panels: bf16 16 x 4096 x 4096 on two threads 1.2x one thread's) */
  #pragma omp parallel
  {
    ${FN}_amx_config();
    int64_t share, shares;
    lw_team(&share, &shares);
    const int64_t pa = panels * share / shares, pb = panels * (share + 1) / shares;
    for (int64_t k0 = 0; k0 < kp; k0 += kch) {
      const int64_t k1 = k0 + kch < kp ? k0 + kch : kp;
      ${FN}_amx_pack(cp + pa * kch * 32, kch * 32, B, sbk, sbj, n, kk, k0, k1, k0, pa, pb);
      for (int64_t p = pa; p < pb; p++)
        for (int64_t i0 = 0; i0 < mp; i0 += 32)
          (mp - i0 == 16 ? ${FN}_amx_block16 : ${FN}_amx_block)(
              ap + i0 * kp + k0, cp + p * kch * 32, k1 - k0, kp, acc + i0 * ld + 32 * p, ld,
              k0 > 0);
    }
    _tile_release();
    const int64_t c1 = n < 32 * pb ? n : 32 * pb;
    for (int64_t r = 0; r < m; r++)
      for (int64_t c = 32 * pa; c < c1; c++)
        C[r * sci + c * scj] = $ADD((fill ? fill_value : C[r * sci + c * scj]),
                                    acc[r * ld + c]);
  }
  return 1;
}
#endif
#if $VEC_GUARD
#define ${NAME}_VEC 1
$VEC_ROWS/* C's 32 x 32 block at rows i0, panel p += (or, on the first chunk where fill, =
   fill_value +) its packed rows of A (kp apart, from kc0) times the panel (depth deep), with
   the panel's correction corr, through out */
static inline void ${FN}_vec_tiles(const $PELEM *ap, int64_t kp, int64_t kc0,
                                   const $PELEM *panel, int64_t depth, const $ACC *corr,
                                   $ACC *C, int64_t sci, int64_t scj, int64_t m, int64_t n,
                                   int64_t i0, int64_t p, int first, int fill,
                                   $ACC fill_value, $ACC *out) {
  for (int64_t r = 0; r < 32; r += 8)
    ${FN}_vec_rows(ap + (i0 + r) * kp + kc0, panel, depth, corr + 32 * p, out + 32 * r);
  ${FN}_add_out(C, sci, scj, i0, p, m - i0 < 32 ? m - i0 : 32,
                n - 32 * p < 32 ? n - 32 * p : 32, fill && first, fill_value, out);
}
#endif
/* C[i, j] += sum_k A[i, k] * B[k, j] for i < m, j < n, k < kk (element strides as given),
   or where fill, C[i, j] = fill_value + the sum (C's elements not read: an initialisation
   folded into the call); 0 if no path can run here, C untouched (the caller runs its loops,
   the initialisation included). */
static int $FN(const $ELEM *A, const $ELEM *B, $ACC *C, int64_t m, int64_t n, int64_t kk,
               int64_t sai, int64_t sak, int64_t sbk, int64_t sbj, int64_t sci, int64_t scj,
               int fill, $ACC fill_value) {
  if (m <= 0 || n <= 0) return 1;
  if (kk <= 0) {  /* no products */
    for (int64_t r = 0; fill && r < m; r++)
      for (int64_t c = 0; c < n; c++) C[r * sci + c * scj] = fill_value;
    return 1;
  }
  int amx = 0;
#ifdef ${NAME}_AMX
  amx = lw_amx_ready();
#endif
#ifndef ${NAME}_VEC
  if (!amx) return 0;
#endif
  const int64_t step = ${NAME}_STEP, group = ${NAME}_GROUP;
  const int64_t kp = (kk + step - 1) / step * step, mp = (m + 31) / 32 * 32;
  const int64_t panels = (n + 31) / 32;
  /* few rows (AMX, up to FEW_MAX_ROWS): kch rows of B at a time across blocks of fewp
     panels whose blocks of C fit FEW_ROWS_BYTES (kept between chunks, `_amx_few_rows`) */
  int64_t fewp = ${NAME}_FEW_ROWS_BYTES / (mp * 32 * (int64_t)sizeof($ACC));
  fewp = fewp < 1 ? 1 : fewp < panels ? fewp : panels;
  const int few = amx && (mp <= ${NAME}_FEW_MAX_ROWS);
  /* AMX's tiles read A where it is (no packed copy) when its rows are whole 64-byte lines
     and its blocks whole (bf16, one thread, A 64-byte aligned: 2048^3 1.09x, 1024^3 1.03x);
     rows that straddle lines (numpy's arrays are 16-byte aligned) are packed, as tile loads
     of them ran 0.77x */
  const int a_in_place = amx && !few && sak == 1 && kk == kp && m == mp &&
                         sizeof($ELEM) == sizeof($PELEM) && (uintptr_t)A % 64 == 0 &&
                         (sai * (int64_t)sizeof($ELEM)) % 64 == 0;
  const size_t a_bytes = a_in_place ? 0 : lw_round64((size_t)(mp * kp) * sizeof($PELEM));
  /* AMX: K in chunks of depth kcs where a block of panels as deep as K would be fewer than
     MIN_PANELS panels wide (C's tiles then add each chunk's products): each row of B is read
     MIN_PANELS x 64 bytes at a visit as the block is packed, and a block serves more tiles */
  int64_t kcs = kp;
#ifdef ${NAME}_AMX
  if (amx && !few && $B_BLOCK / (32 * kp * (int64_t)sizeof($PELEM)) < ${NAME}_MIN_PANELS) {
    kcs = $B_BLOCK / (32 * ${NAME}_MIN_PANELS * (int64_t)sizeof($PELEM)) / step * step;
    kcs = kcs < step ? step : kcs;
  }
#endif
  const int64_t block = $B_BLOCK / (32 * kcs * (int64_t)sizeof($PELEM)) > 0 ?
                        $B_BLOCK / (32 * kcs * (int64_t)sizeof($PELEM)) : 1;
  const int64_t held = block < panels ? block : panels;  /* panels packed at a time */
  /* threads: each packs and multiplies blocks of its own, where there are two a thread or
     more: no barrier, and no panel packed by one core and read by another */
#ifdef _OPENMP
  const int64_t threads = omp_get_max_threads();
#else
  const int64_t threads = 1;
#endif
  const int own = !few && threads > 1 && (panels + block - 1) / block >= 2 * threads;
  int64_t kch = few ? $B_BLOCK / (fewp * 32 * (int64_t)sizeof($PELEM)) / step * step : 0;
  kch = kch < step ? step : kch > kp ? kp : kch;
  const size_t b_bytes = lw_round64((size_t)(few ? 32 * kch * fewp
                                              : (own ? threads : 1) * held * (32 * kcs + step))
                                    * sizeof($PELEM));
  const size_t c_bytes = lw_round64((size_t)(few ? mp * fewp * 32 : panels * 32)
                                    * sizeof($ACC));
  uint8_t *buffer = lw_gemm_buffer(a_bytes + b_bytes + c_bytes + (size_t)panels * 32 * 4);
  if (!buffer) return 0;
  $PELEM *ap = ($PELEM *)buffer, *bp = ($PELEM *)(buffer + a_bytes);
  $ACC *corr = ($ACC *)(buffer + a_bytes + b_bytes);
  int32_t *sums = (int32_t *)(buffer + a_bytes + b_bytes + c_bytes);
  /* A: rows of kp elements, zero past the edges (and xor flip on the vector path) */
  const $PELEM flip = ($PELEM)(amx ? 0 : $FLIP);
  const $PELEM *arows = a_in_place ? (const $PELEM *)A : ap;  /* (rows astride apart) */
  const int64_t astride = a_in_place ? sai : kp;
  (void)arows; (void)astride;
  #pragma omp parallel for if (!a_in_place)
  for (int64_t i = 0; i < (a_in_place ? 0 : mp); i++) {
    $PELEM *row = ap + i * kp;
    int64_t k = 0;
    if (i < m) {
      const $ELEM *a = A + i * sai;
      if (sak == 1) for (; k < kk; k++) row[k] = ($PELEM)(a[k] ^ flip);
      else for (; k < kk; k++) row[k] = ($PELEM)(a[k * sak] ^ flip);
    }
    for (; k < kp; k++) row[k] = 0;
  }
#ifdef ${NAME}_AMX
  if (few) {
    for (int64_t c0 = 0; c0 < n; c0 += 32 * fewp)
      ${FN}_amx_few_rows(ap, B + c0 * sbj, C + c0 * scj, m,
                         n - c0 < 32 * fewp ? n - c0 : 32 * fewp, kk, kp, kch, sbk, sbj, sci,
                         scj, bp, corr, fill, fill_value);
    return 1;
  }
#endif
  /* B: panel p, k-group g, column c, element q at bp[((p - p0) depth + group g) 32 + group c
     + q] (depth: the chunk of K, kcs deep); corr: flip x the column sums (the vector path's
     correction for A's flip). Packed one block of panels (and chunk of K) at a time, just
     before the block's products, so that they find it in the L2 cache, rows at a time across
     the block's panels (`_amx_pack`, `_vec_pack`). */
  memset(sums, 0, (size_t)panels * 32 * 4);
  /* (All of K at once: chunks of it that stay in the L1 cache, each adding its partial sums
     into C, measured slower: 512 bytes of k, one thread, 2048^3 int8 1.31x, bf16 1.7x the
     time, the adds into C taking longer than a chunk's tile products.) */
  /* where C is filled with zero, whole blocks go straight from their tiles into C: no pass
     that zeroes C first, no read of it (with the fold, bf16 one thread, Xeon: 512^3 1.42x,
     1024^3 1.14x, 2048^3 1.30x; `benchmarks.revisions`) */
  const $ACC zero = 0;
  const int straight = fill && scj == 1 && !memcmp(&fill_value, &zero, sizeof zero);
  (void)straight; (void)own;
  if (own) {
    #pragma omp parallel
    {
      int64_t share, shares;
      lw_team(&share, &shares);
      $PELEM *mine = bp + share * held * (32 * kcs + step);
      $ACC out[32 * 32];
      for (int64_t p0 = share * block; p0 < panels; p0 += shares * block) {
        const int64_t p1 = p0 + block < panels ? p0 + block : panels;
        for (int64_t kc0 = 0; kc0 < kp; kc0 += kcs) {
          const int64_t depth = kp - kc0 < kcs ? kp - kc0 : kcs;
          const int first = kc0 == 0;
#ifdef ${NAME}_AMX
          if (amx) {
            ${FN}_amx_pack(mine, depth * 32, B, sbk, sbj, n, kk, kc0, kc0 + depth, kc0, p0,
                           p1);
            if (p0 == share * block && first) ${FN}_amx_config();
            for (int64_t i0 = 0; i0 < mp; i0 += 32)
              for (int64_t p = p0; p < p1; p++)
                ${FN}_amx_tiles(arows, astride, kc0, mine + (p - p0) * depth * 32, depth, C,
                                sci, scj, m, n, i0, p, straight, first, fill, fill_value, out);
            continue;
          }
#endif
#ifdef ${NAME}_VEC
          ${FN}_vec_pack(mine, depth, B, sbk, sbj, n, kk, kc0, kc0 + depth, p0, p1, sums);
          for (int64_t c = 32 * p0; c < 32 * p1; c++) corr[c] = ($ACC)($FLIP * sums[c]);
          for (int64_t i0 = 0; i0 < mp; i0 += 32)
            for (int64_t p = p0; p < p1; p++)
              ${FN}_vec_tiles(ap, kp, kc0, mine + (p - p0) * depth * 32, depth, corr, C, sci,
                              scj, m, n, i0, p, first, fill, fill_value, out);
#endif
        }
      }
#ifdef ${NAME}_AMX
      if (amx) _tile_release();
#endif
    }
    return 1;
  }
  for (int64_t p0 = 0; p0 < panels; p0 += block) {
    const int64_t p1 = p0 + block < panels ? p0 + block : panels;
    #pragma omp parallel
    {
      $ACC out[32 * 32];
      for (int64_t kc0 = 0; kc0 < kp; kc0 += kcs) {
        const int64_t depth = kp - kc0 < kcs ? kp - kc0 : kcs;
#ifdef ${NAME}_AMX
        if (amx) {  /* the groups of rows split among the threads: one barrier a chunk (by
                       panels in steps of k, one a step: bf16 256 x 4096 x 4096 on two
                       threads no faster than on one) */
          int64_t share, shares;
          lw_team(&share, &shares);
          const int64_t groups = depth / group;
          ${FN}_amx_pack(bp, depth * 32, B, sbk, sbj, n, kk,
                         kc0 + groups * share / shares * group,
                         kc0 + groups * (share + 1) / shares * group, kc0, p0, p1);
          #pragma omp barrier
        }
#endif
        for (int64_t k0 = kc0; !amx && k0 < kc0 + depth; k0 += step) {
          #pragma omp for
          for (int64_t p = p0; p < p1; p++)
            ${FN}_vec_pack(bp + (p - p0) * depth * 32, depth, B, sbk, sbj, n, kk, k0,
                           k0 + step, p, p + 1, sums);
        }
        /* (the vector path's correction: it runs K in one chunk) */
        #pragma omp for
        for (int64_t c = 32 * p0; c < 32 * p1; c++) corr[c] = ($ACC)($FLIP * sums[c]);
        const int first = kc0 == 0;
#ifdef ${NAME}_AMX
        if (amx && first) ${FN}_amx_config();  /* (after the packing: its vector code runs
                                                  without the tiles' state) */
#endif
        #pragma omp for collapse(2)
        for (int64_t i0 = 0; i0 < mp; i0 += 32) {
          for (int64_t p = p0; p < p1; p++) {
            const $PELEM *panel = bp + (p - p0) * depth * 32;
#ifdef ${NAME}_AMX
            if (amx) {
              ${FN}_amx_tiles(arows, astride, kc0, panel, depth, C, sci, scj, m, n, i0, p,
                              straight, first, fill, fill_value, out);
              continue;
            }
#endif
#ifdef ${NAME}_VEC
            ${FN}_vec_tiles(ap, kp, kc0, panel, depth, corr, C, sci, scj, m, n, i0, p, first,
                            fill, fill_value, out);
#endif
          }
        }
      }
#ifdef ${NAME}_AMX
      if (amx) _tile_release();
#endif
    }
  }
  return 1;
}
#endif
"""
