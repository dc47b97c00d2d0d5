/*
 * matmul_avx512.c — the AVX-512 micro-kernels of the own matmul backend: an
 * 8 x 32 output tile in 16 zmm accumulators (per k step two vectors of the
 * packed B panel and 8 broadcast A values: 16 FMAs per 10 loads, enough
 * independent chains to cover FMA latency on two FMA ports), its variant
 * reading A in place, and a 12 x 32 tile in 24 accumulators with the A
 * values folded into the FMAs as embedded broadcasts (and its twin with
 * register broadcasts: which is faster depends on the core). All of them
 * give the same bits. Also the packers. Blocking and the packers' dispatch live in
 * gemm.c, the choice between the kernels in matmul.c. Compiled with AVX-512 flags by the Makefile;
 * chosen at run time by matmul_isa_supported.
 */
#include "nn/matmul.h"

#if defined(__x86_64__)
#include <immintrin.h>

/* The k loops unrolled 4 times: the pointer increments and the loop test
 * then cost a quarter of a uop per k step instead of three, which matters
 * when a busy SMT sibling leaves the core few issue slots. Measured in one
 * process, alternating on both vCPUs: 0.93-0.99x the time for the 8 x 32
 * kernel, 0.95x for its in-place variant, 0.98x for the 12 x 32 one. */
#define K_LOOP_UNROLL _Pragma("GCC unroll 4")

#define ROW_DECL(i) __m512 c##i##0 = _mm512_setzero_ps(), c##i##1 = _mm512_setzero_ps()
#define ROW_FMA(i)                                                  \
    do {                                                            \
        __m512 a_ = _mm512_set1_ps(a[i]);                           \
        c##i##0 = _mm512_fmadd_ps(a_, b0, c##i##0);                 \
        c##i##1 = _mm512_fmadd_ps(a_, b1, c##i##1);                 \
    } while (0)
#define ROW_STORE(i)                                                                 \
    do {                                                                             \
        float *c_ = c + (size_t)(i) * ldc;                                           \
        if (mode == MATMUL_UKR_ADD) {                                                \
            c##i##0 = _mm512_add_ps(_mm512_loadu_ps(c_), c##i##0);                   \
            c##i##1 = _mm512_add_ps(_mm512_loadu_ps(c_ + 16), c##i##1);              \
        } else if (mode == MATMUL_UKR_SET_BIAS) {                                    \
            c##i##0 = _mm512_add_ps(c##i##0, bias0);                                 \
            c##i##1 = _mm512_add_ps(c##i##1, bias1);                                 \
        }                                                                            \
        _mm512_storeu_ps(c_, c##i##0);                                               \
        _mm512_storeu_ps(c_ + 16, c##i##1);                                          \
    } while (0)

/* The bias row of a SET_BIAS tile (zero otherwise), for ROW_STORE. */
#define BIAS_DECL                                                      \
    __m512 bias0 = _mm512_setzero_ps(), bias1 = _mm512_setzero_ps();   \
    if (mode == MATMUL_UKR_SET_BIAS) {                                 \
        bias0 = _mm512_loadu_ps(bias);                                 \
        bias1 = _mm512_loadu_ps(bias + 16);                            \
    }

/* The C tile is touched only after the k loop; in ADD mode start fetching
 * its cache lines (two per row) now, so that (often DRAM-resident) read
 * hides behind the FMAs. */
static inline void prefetch_c_tile(const float *c, size_t ldc, int rows, int mode) {
    if (mode != MATMUL_UKR_ADD) return;
    for (int i = 0; i < rows; i++) {
        _mm_prefetch((const char *)(c + (size_t)i * ldc), _MM_HINT_T0);
        _mm_prefetch((const char *)(c + (size_t)i * ldc + 16), _MM_HINT_T0);
    }
}

void matmul_ukr_avx512(size_t kc, const float *a, size_t a_ks, const float *b, size_t b_ks,
                       float *c, size_t ldc, int mode, const float *bias) {
    prefetch_c_tile(c, ldc, 8, mode);
    ROW_DECL(0); ROW_DECL(1); ROW_DECL(2); ROW_DECL(3);
    ROW_DECL(4); ROW_DECL(5); ROW_DECL(6); ROW_DECL(7);
    K_LOOP_UNROLL
    for (size_t k = 0; k < kc; k++) {
        __m512 b0 = _mm512_loadu_ps(b), b1 = _mm512_loadu_ps(b + 16);
        ROW_FMA(0); ROW_FMA(1); ROW_FMA(2); ROW_FMA(3);
        ROW_FMA(4); ROW_FMA(5); ROW_FMA(6); ROW_FMA(7);
        a += a_ks;
        b += b_ks;
    }
    BIAS_DECL;
    ROW_STORE(0); ROW_STORE(1); ROW_STORE(2); ROW_STORE(3);
    ROW_STORE(4); ROW_STORE(5); ROW_STORE(6); ROW_STORE(7);
}

/* The same 8 x 32 tile with A read in place from 8 rows that are contiguous
 * in k (a(i,k) = a[i*lda + k]: the forward's inp, dinp's dout), so A needs no
 * transposing pack; each row is a sequential stream, and the 8 rows (8 x kc
 * floats) stay in L1 while the B panels go by. */
void matmul_ukr_avx512_rowa(size_t kc, const float *a, size_t lda, const float *b, size_t b_ks,
                            float *c, size_t ldc, int mode, const float *bias) {
    prefetch_c_tile(c, ldc, 8, mode);
    const float *a0 = a, *a1 = a + lda, *a2 = a + 2 * lda, *a3 = a + 3 * lda;
    const float *a4 = a + 4 * lda, *a5 = a + 5 * lda, *a6 = a + 6 * lda, *a7 = a + 7 * lda;
    ROW_DECL(0); ROW_DECL(1); ROW_DECL(2); ROW_DECL(3);
    ROW_DECL(4); ROW_DECL(5); ROW_DECL(6); ROW_DECL(7);
#define ROW_FMA_R(i)                                                \
    do {                                                            \
        __m512 a_ = _mm512_set1_ps(a##i[k]);                        \
        c##i##0 = _mm512_fmadd_ps(a_, b0, c##i##0);                 \
        c##i##1 = _mm512_fmadd_ps(a_, b1, c##i##1);                 \
    } while (0)
    K_LOOP_UNROLL
    for (size_t k = 0; k < kc; k++) {
        __m512 b0 = _mm512_loadu_ps(b), b1 = _mm512_loadu_ps(b + 16);
        ROW_FMA_R(0); ROW_FMA_R(1); ROW_FMA_R(2); ROW_FMA_R(3);
        ROW_FMA_R(4); ROW_FMA_R(5); ROW_FMA_R(6); ROW_FMA_R(7);
        b += b_ks;
    }
#undef ROW_FMA_R
    BIAS_DECL;
    ROW_STORE(0); ROW_STORE(1); ROW_STORE(2); ROW_STORE(3);
    ROW_STORE(4); ROW_STORE(5); ROW_STORE(6); ROW_STORE(7);
}

/* The 12 x 32 tile (24 zmm accumulators) from a packed A panel (a[k*a_ks + i]).
 * Each A value feeds its two FMAs as an embedded broadcast, {1to16}, so a
 * k step issues 2 B loads and 24 FMAs with their loads folded in: 26 fused
 * uops per 24 FMAs, against 26 per 16 for the 8 x 32 tile. Why it matters
 * here: on this shared host a busy SMT sibling sometimes halves the uops a
 * core can issue, and the FMA-only peak probe does not see it; the leaner
 * loop kept 0.87 of that peak (median; lower quartile 0.79) where the
 * 8 x 32 loop kept 0.81 (0.69), alternated on both vCPUs. a2 is a copy of
 * a the compiler cannot see through, so it does not merge the two loads of
 * a[i] into one register broadcast (gcc and clang both then fold each load
 * into its FMA). */
#define ROW12_FMA(i)                                                         \
    do {                                                                     \
        c##i##0 = _mm512_fmadd_ps(_mm512_set1_ps(a[i]), b0, c##i##0);       \
        c##i##1 = _mm512_fmadd_ps(_mm512_set1_ps(a2[i]), b1, c##i##1);      \
    } while (0)

/* The 12 x 32 tile's body; `embedded` is a constant at each call below. */
static inline __attribute__((always_inline)) void ukr12(size_t kc, const float *a, size_t a_ks, const float *b,
                                                        size_t b_ks, float *c, size_t ldc, int mode,
                                                        const float *bias, const int embedded) {
    prefetch_c_tile(c, ldc, 12, mode);
    ROW_DECL(0); ROW_DECL(1); ROW_DECL(2); ROW_DECL(3); ROW_DECL(4); ROW_DECL(5);
    ROW_DECL(6); ROW_DECL(7); ROW_DECL(8); ROW_DECL(9); ROW_DECL(10); ROW_DECL(11);
    K_LOOP_UNROLL
    for (size_t k = 0; k < kc; k++) {
        __m512 b0 = _mm512_loadu_ps(b), b1 = _mm512_loadu_ps(b + 16);
        if (embedded) {
            const float *a2 = a;
            __asm__("" : "+r"(a2));
            ROW12_FMA(0); ROW12_FMA(1); ROW12_FMA(2); ROW12_FMA(3); ROW12_FMA(4); ROW12_FMA(5);
            ROW12_FMA(6); ROW12_FMA(7); ROW12_FMA(8); ROW12_FMA(9); ROW12_FMA(10); ROW12_FMA(11);
        } else {
            ROW_FMA(0); ROW_FMA(1); ROW_FMA(2); ROW_FMA(3); ROW_FMA(4); ROW_FMA(5);
            ROW_FMA(6); ROW_FMA(7); ROW_FMA(8); ROW_FMA(9); ROW_FMA(10); ROW_FMA(11);
        }
        a += a_ks;
        b += b_ks;
    }
    BIAS_DECL;
    ROW_STORE(0); ROW_STORE(1); ROW_STORE(2); ROW_STORE(3); ROW_STORE(4); ROW_STORE(5);
    ROW_STORE(6); ROW_STORE(7); ROW_STORE(8); ROW_STORE(9); ROW_STORE(10); ROW_STORE(11);
}

void matmul_ukr_avx512_12(size_t kc, const float *a, size_t a_ks, const float *b, size_t b_ks,
                          float *c, size_t ldc, int mode, const float *bias) {
    ukr12(kc, a, a_ks, b, b_ks, c, ldc, mode, bias, 1);
}

/* The same 12 x 32 tile with each A value broadcast into a register once and
 * used by both FMAs: 14 loads and 24 FMAs per k step, 38 uops where the
 * embedded form issues 26. The embedded form was written for an Intel host
 * whose cores were often short of issue slots (this twin was never timed
 * there); on an AMD Zen 5 (family 0x1a) the embedded form ran at 0.81 of
 * the FMA probe on L1-resident panels and this one at 0.98 (15 alternated
 * rounds). Which is faster depends on the core, so matmul.c's tuner
 * chooses. */
void matmul_ukr_avx512_12r(size_t kc, const float *a, size_t a_ks, const float *b, size_t b_ks,
                           float *c, size_t ldc, int mode, const float *bias) {
    ukr12(kc, a, a_ks, b, b_ks, c, ldc, mode, bias, 0);
}

/* A 4 x 32 tile from a packed A (a[k*a_ks + i], i < 4): the last rows of a
 * panel that M does not fill (M = 256 leaves 4 rows of a 12-row panel),
 * written straight to C instead of computing the padded rows into a
 * scratch tile and copying (the 12-row kernel would spend 3% of a
 * 256-row product's FMAs on zero rows). Same per-element arithmetic. */
void matmul_ukr_avx512_4(size_t kc, const float *a, size_t a_ks, const float *b, size_t b_ks,
                         float *c, size_t ldc, int mode, const float *bias) {
    prefetch_c_tile(c, ldc, 4, mode);
    ROW_DECL(0); ROW_DECL(1); ROW_DECL(2); ROW_DECL(3);
    K_LOOP_UNROLL
    for (size_t k = 0; k < kc; k++) {
        __m512 b0 = _mm512_loadu_ps(b), b1 = _mm512_loadu_ps(b + 16);
        ROW_FMA(0); ROW_FMA(1); ROW_FMA(2); ROW_FMA(3);
        a += a_ks;
        b += b_ks;
    }
    BIAS_DECL;
    ROW_STORE(0); ROW_STORE(1); ROW_STORE(2); ROW_STORE(3);
}

/* In-register 16 x 16 transpose: r[i] lane j  ->  r[j] lane i. Three unpack
 * stages and two 128-bit-lane shuffle stages (the standard AVX-512 pattern). */
static inline __attribute__((always_inline)) void transpose16(__m512 r[16]) {
    __m512 t[16];
#pragma GCC unroll 16
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
#pragma GCC unroll 16
    for (int i = 0; i < 16; i += 4) {
        r[i] = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t[i]), _mm512_castps_pd(t[i + 2])));
        r[i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t[i]), _mm512_castps_pd(t[i + 2])));
        r[i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t[i + 1]), _mm512_castps_pd(t[i + 3])));
        r[i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t[i + 1]), _mm512_castps_pd(t[i + 3])));
    }
    /* r[4q + m] now holds, in each 128-bit lane L, elements of rows 4q..4q+3 at
     * column 4L + m. Combine 128-bit lanes across groups q. */
#pragma GCC unroll 4
    for (int m = 0; m < 4; m++) {
        __m512 a = r[m], b = r[4 + m], c = r[8 + m], d = r[12 + m];
        __m512 ab_lo = _mm512_shuffle_f32x4(a, b, 0x44), ab_hi = _mm512_shuffle_f32x4(a, b, 0xEE);
        __m512 cd_lo = _mm512_shuffle_f32x4(c, d, 0x44), cd_hi = _mm512_shuffle_f32x4(c, d, 0xEE);
        t[m] = _mm512_shuffle_f32x4(ab_lo, cd_lo, 0x88);      /* column m      */
        t[4 + m] = _mm512_shuffle_f32x4(ab_lo, cd_lo, 0xDD);  /* column 4 + m  */
        t[8 + m] = _mm512_shuffle_f32x4(ab_hi, cd_hi, 0x88);  /* column 8 + m  */
        t[12 + m] = _mm512_shuffle_f32x4(ab_hi, cd_hi, 0xDD); /* column 12 + m */
    }
#pragma GCC unroll 16
    for (int i = 0; i < 16; i++) r[i] = t[i];
}

/* Columns k0..k0+15 (kn valid) of 16 source rows (rows past `rows` zero),
 * transposed: r[k] holds column k0 + k. The loops are unrolled so that r
 * stays in registers (gcc -O2 had kept it on the stack, 1.3-1.9x slower). */
static inline __attribute__((always_inline)) void load_transposed(__m512 r[16], const float *src, size_t ld,
                                                                  int rows, int k0, int kn, int prefetch) {
    const __mmask16 m = (__mmask16)((1u << kn) - 1u);
#pragma GCC unroll 16
    for (int i = 0; i < 16; i++) {
        /* B's 16 row streams, often from L3 or DRAM: fetch 4 lines ahead */
        if (prefetch && i < rows) _mm_prefetch((const char *)(src + (size_t)i * ld + k0 + 64), _MM_HINT_T0);
        r[i] = i < rows ? _mm512_maskz_loadu_ps(m, src + (size_t)i * ld + k0) : _mm512_setzero_ps();
    }
    transpose16(r);
}

/* Transposing pack: dst[k*dst_stride + r] = src[r*ld + k] for r < 16, k < kc;
 * rows r >= rows are written as zero. */
void matmul_pack_t16_avx512(float *dst, size_t dst_stride, const float *src, size_t ld, int rows,
                            int kc) {
    for (int k0 = 0; k0 < kc; k0 += 16) {
        const int kn = kc - k0 < 16 ? kc - k0 : 16;
        __m512 r[16];
        load_transposed(r, src, ld, rows, k0, kn, 1);
#pragma GCC unroll 16
        for (int k = 0; k < 16; k++)
            if (k < kn) _mm512_storeu_ps(dst + (size_t)(k0 + k) * dst_stride, r[k]);
    }
}

/* The same for two 8-row A micro-panels at once: rows 0..7 go to
 * dst[k*8 + r], rows 8..15 to dst[kc*8 + k*8 + r - 8] (the next panel). */
void matmul_pack_t8x2_avx512(float *dst, const float *src, size_t ld, int rows, int kc) {
    float *dst1 = dst + (size_t)kc * 8;
    for (int k0 = 0; k0 < kc; k0 += 16) {
        const int kn = kc - k0 < 16 ? kc - k0 : 16;
        __m512 r[16];
        load_transposed(r, src, ld, rows, k0, kn, 0);
#pragma GCC unroll 16
        for (int k = 0; k < 16; k++) {
            if (k >= kn) break;
            _mm256_storeu_ps(dst + (size_t)(k0 + k) * 8, _mm512_castps512_ps256(r[k]));
            _mm256_storeu_ps(dst1 + (size_t)(k0 + k) * 8, _mm512_extractf32x8_ps(r[k], 1));
        }
    }
}

/* One 12-row A panel from rows contiguous in k: dst[k*12 + r] = src[r*ld + k]
 * for r < rows (<= 12), zero for the rest. */
void matmul_pack_t12_avx512(float *dst, const float *src, size_t ld, int rows, int kc) {
    for (int k0 = 0; k0 < kc; k0 += 16) {
        const int kn = kc - k0 < 16 ? kc - k0 : 16;
        __m512 r[16];
        load_transposed(r, src, ld, rows, k0, kn, 0);
#pragma GCC unroll 16
        for (int k = 0; k < 16; k++)
            if (k < kn) _mm512_mask_storeu_ps(dst + (size_t)(k0 + k) * 12, 0x0FFF, r[k]);
    }
}

/* Non-transposing pack: dst[k*width + j] = src[k*ld + j] for j < valid, zero
 * for valid <= j < width; width is 8 or 12 (an A panel) or 32 (a B panel).
 * Masked loads keep the edge panels in the same loop. */
void matmul_pack_n_avx512(float *dst, const float *src, size_t ld, int width, int valid, int kc) {
    if (width == 8) {
        /* Two A panels per pass (valid up to 16 rows): one 64-byte load per k
         * feeds both, instead of reading each cache line twice. Rows 8..15
         * go to the next panel at dst + kc*8. */
        const __mmask16 m = (__mmask16)(valid >= 16 ? 0xFFFFu : (1u << valid) - 1u);
        float *dst1 = dst + (size_t)kc * 8;
        for (int k = 0; k < kc; k++) {
            __m512 v = _mm512_maskz_loadu_ps(m, src + (size_t)k * ld);
            _mm256_storeu_ps(dst + (size_t)k * 8, _mm512_castps512_ps256(v));
            if (valid > 8) _mm256_storeu_ps(dst1 + (size_t)k * 8, _mm512_extractf32x8_ps(v, 1));
        }
        return;
    }
    if (width == 12) { /* one A panel of 12 */
        const __mmask16 m = (__mmask16)(valid >= 12 ? 0x0FFFu : (1u << valid) - 1u);
        for (int k = 0; k < kc; k++)
            _mm512_mask_storeu_ps(dst + (size_t)k * 12, 0x0FFF, _mm512_maskz_loadu_ps(m, src + (size_t)k * ld));
        return;
    }
    const __mmask16 m0 = (__mmask16)(valid >= 16 ? 0xFFFFu : (1u << valid) - 1u);
    const __mmask16 m1 = (__mmask16)(valid >= 32 ? 0xFFFFu : valid <= 16 ? 0u : (1u << (valid - 16)) - 1u);
    for (int k = 0; k < kc; k++) {
        const float *s = src + (size_t)k * ld;
        _mm512_store_ps(dst + (size_t)k * 32, _mm512_maskz_loadu_ps(m0, s));
        _mm512_store_ps(dst + (size_t)k * 32 + 16, _mm512_maskz_loadu_ps(m1, s + 16));
    }
}

/* Peak-rate probe for benchmarks: `iters` steps of MATMUL_PEAK_CHAINS (16)
 * independent FMA chains, so FMA latency is hidden and the loop runs at the
 * core's FMA throughput (2 flops per lane per FMA). */
float matmul_fma_loop_avx512(int64_t iters) {
    __m512 a0 = _mm512_set1_ps(0e-3f), a1 = _mm512_set1_ps(1e-3f), a2 = _mm512_set1_ps(2e-3f), a3 = _mm512_set1_ps(3e-3f), a4 = _mm512_set1_ps(4e-3f), a5 = _mm512_set1_ps(5e-3f), a6 = _mm512_set1_ps(6e-3f), a7 = _mm512_set1_ps(7e-3f), a8 = _mm512_set1_ps(8e-3f), a9 = _mm512_set1_ps(9e-3f), a10 = _mm512_set1_ps(10e-3f), a11 = _mm512_set1_ps(11e-3f), a12 = _mm512_set1_ps(12e-3f), a13 = _mm512_set1_ps(13e-3f), a14 = _mm512_set1_ps(14e-3f), a15 = _mm512_set1_ps(15e-3f);
    const __m512 x = _mm512_set1_ps(0.999999f), y = _mm512_set1_ps(1e-7f);
#define F(v) v = _mm512_fmadd_ps(v, x, y)
    for (int64_t it = 0; it < iters; it++) {
        F(a0); F(a1); F(a2); F(a3); F(a4); F(a5); F(a6); F(a7); F(a8); F(a9); F(a10); F(a11); F(a12); F(a13); F(a14); F(a15);
    }
#undef F
    __m512 s = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(_mm512_add_ps(_mm512_add_ps(_mm512_add_ps(_mm512_add_ps(_mm512_add_ps(_mm512_add_ps(_mm512_add_ps(_mm512_add_ps(_mm512_add_ps(_mm512_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), a2), a3), a4), a5), a6), a7), a8), a9), a10), a11), a12), a13), a14), a15);
    return _mm512_reduce_add_ps(s);
}

#else
typedef int matmul_avx512_unused; /* ISO C forbids an empty translation unit */
#endif
