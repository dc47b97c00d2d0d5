/*
 * gemm.c — the own backend's engine (see gemm.h): the blocking driver, the
 * packers' dispatch, the thread plans, and the packed-weight forward. The
 * micro-kernels and SIMD packers it feeds live in matmul_avx512.c and
 * matmul_avx2.c; a portable 4 x 16 kernel is here.
 */
#include "nn/gemm.h"

#include <stdint.h>
#include <string.h>

#include "util/threads.h"

#ifdef MATMUL_X86
#include <xmmintrin.h>   /* SSE, part of x86-64's baseline: a_rowsums */
#endif

/* Portable micro-kernel (4 x 16) for CPUs without AVX2; the same blocking,
 * so it also tests the driver on any machine. */
#define MR_SCALAR 4
#define NR_SCALAR 16
static void ukr_scalar(size_t kc, const float *a, size_t a_ks, const float *b, size_t b_ks,
                       float *c, size_t ldc, int mode, const float *bias) {
    float acc[MR_SCALAR][NR_SCALAR] = {{0}};
    for (size_t k = 0; k < kc; k++) {
        for (int i = 0; i < MR_SCALAR; i++)
            for (int j = 0; j < NR_SCALAR; j++) acc[i][j] += a[i] * b[j];
        a += a_ks;
        b += b_ks;
    }
    for (int i = 0; i < MR_SCALAR; i++) {
        float *ci = c + (size_t)i * ldc;
        for (int j = 0; j < NR_SCALAR; j++) {
            if (mode == MATMUL_UKR_ADD) ci[j] += acc[i][j];
            else if (mode == MATMUL_UKR_SET_BIAS) ci[j] = acc[i][j] + bias[j];
            else ci[j] = acc[i][j];
        }
    }
}

ukr_desc gemm_kernel_8(matmul_isa isa) {
    if (isa == MATMUL_ISA_AUTO || !matmul_isa_supported(isa)) isa = matmul_isa_best();
    ukr_desc d = {MR_SCALAR, NR_SCALAR, ukr_scalar, 0, 0, NULL, 0};
#ifdef MATMUL_X86
    if (isa == MATMUL_ISA_AVX512)
        d = (ukr_desc){MATMUL_MR_AVX512, MATMUL_NR_AVX512, matmul_ukr_avx512, 1, 1, matmul_ukr_avx512_4, 0};
    else if (isa == MATMUL_ISA_AVX2) d = (ukr_desc){MATMUL_MR_AVX2, MATMUL_NR_AVX2, matmul_ukr_avx2, 0, 0, NULL, 0};
#endif
    return d;
}

/* The 12 x 32 AVX-512 kernel (packed A only), or gemm_kernel_8's kernel where
 * the ISA has no such variant. Any of the kernels gives the same bits (each
 * element is the same chain of FMAs over k, in the same KC blocks), so the
 * choice between them is speed only. dweight, whose A (dout^T) is always
 * packed, always takes a 12-row one: alternated with the 8 x 32 kernel at
 * the GPT-2 shapes it took 0.86-0.98x the time when the (Intel) host was
 * slow, 0.96-1.02x when it was fast. Which 12-row flavour (this one or
 * gemm_kernel_12r), and for the forward and dinp whether a 12-row or the
 * 8-row kernel, depends on the core, the shape and the minute (see
 * matmul_tune.h). */
ukr_desc gemm_kernel_12(matmul_isa isa) {
    ukr_desc d = gemm_kernel_8(isa);
#ifdef MATMUL_X86
    if (d.fn == matmul_ukr_avx512)
        d = (ukr_desc){MATMUL_MR_AVX512_12, MATMUL_NR_AVX512, matmul_ukr_avx512_12, 1, 0, matmul_ukr_avx512_4, 0};
#endif
    return d;
}

/* The 12 x 32 kernel with register broadcasts (matmul_ukr_avx512_12r), or
 * gemm_kernel_12's where the ISA has no such variant. */
ukr_desc gemm_kernel_12r(matmul_isa isa) {
    ukr_desc d = gemm_kernel_12(isa);
#ifdef MATMUL_X86
    if (d.fn == matmul_ukr_avx512_12) d.fn = matmul_ukr_avx512_12r;
#endif
    return d;
}

/* Blocking (Goto & van de Geijn 2008, "Anatomy of high-performance matrix
 * multiplication"; loop nest as in BLIS): per (jc, pc) a KC x NC block of B is
 * packed, per ic an MC x KC block of A, and the micro-kernel multiplies one
 * MR-row A micro-panel by one NR-column B micro-panel. Innermost either the A
 * micro-panel (MR x KC = 8 KB) stays in L1 while the B panels (KC x NR =
 * 32 KB each) of the 1 MB B block stream from L2, or (ukr_desc.b_in_l1, the
 * BLIS order) a B panel stays while the A panels stream: the first was 2-7%
 * faster on the Intel dev host, the second up to 10% on the AMD Zen 5 one,
 * so matmul.c's tuner chooses. With AVX-512 an A whose rows
 * are contiguous in k (the forward's inp, dinp's dout) is not packed at all:
 * matmul_ukr_avx512_rowa broadcasts straight from its 8 rows
 * (MATMUL_ROWA=1; +5-20% on those products). KC=256 and NC=1024 came out a
 * few percent ahead of 8 variants (KC 128-384, NC 640-4096, MC 128/384) on
 * the 2-vCPU Intel dev host, which is too noisy to resolve finer; on the
 * Zen 5 host (1 MB of L2) NC 128-768 were within 2% of 1024. KC is a fixed
 * constant, so every output element is summed in the same k order whatever
 * the thread count. */
#ifndef KC
#define KC 256
#endif
#ifndef NC
#define NC 1024
#endif
#ifndef MC_MAX
#define MC_MAX 384
#endif
#ifndef MATMUL_ROWA
#define MATMUL_ROWA 1
#endif

static size_t round_up(size_t x, size_t m) { return (x + m - 1) / m * m; }

/* Per-thread scratch: one packed B block (KC x NC) and one packed A block
 * (MC_MAX x KC, plus room for one spare panel of up to 16 rows: the AVX-512
 * A packer writes 8-row panels in pairs), each 64-byte aligned. The A size
 * does not depend on the kernel (MC_MAX is a multiple of 4, 6, 8 and 12),
 * so one scratch serves a backward whose two products use different ones. */
static size_t bpack_floats(const ukr_desc *u) { return (size_t)KC * round_up(NC, (size_t)u->nr) + 16; }
static size_t apack_floats(void) { return (size_t)KC * (MC_MAX + 16) + 16; }
/* A B operand packed once for all threads (see gemm_plan_make) when its
 * packed size is at most this many floats (8 MB). The scratch holds two such
 * areas: a backward runs its two products' plans together. */
#define SHARED_B_MAX ((size_t)2 << 20)
size_t gemm_scratch_floats(const ukr_desc *u) {
    return (size_t)threads_max() * (bpack_floats(u) + apack_floats()) + 2 * (SHARED_B_MAX + 16);
}

/* The shared areas follow the per-thread buffers in the scratch. */
static float *shared_areas(const ukr_desc *u, float *scratch, int nthreads) {
    return scratch + (size_t)nthreads * (bpack_floats(u) + apack_floats());
}

float *gemm_align64(float *p) {
    return (float *)(((uintptr_t)p + 63) & ~(uintptr_t)63);
}

/* dst[k*mr + i] = A(i0+i, p0+k), rows past M zero. A(i,k) = A[i*rsa + k*csa]. */
static void pack_a(float *dst, const float *A, size_t rsa, size_t csa, int i0, int mr, int M,
                   int p0, int kc) {
    int rows = M - i0 < mr ? M - i0 : mr;
    if (rsa == 1) { /* columns of A are contiguous: copy mr at a time */
        for (int k = 0; k < kc; k++) {
            const float *src = A + (size_t)i0 + (size_t)(p0 + k) * csa;
            float *d = dst + (size_t)k * mr;
            for (int i = 0; i < rows; i++) d[i] = src[i];
            for (int i = rows; i < mr; i++) d[i] = 0.0f;
        }
    } else {
        for (int i = 0; i < rows; i++) {
            const float *src = A + (size_t)(i0 + i) * rsa + (size_t)p0 * csa;
            for (int k = 0; k < kc; k++) dst[(size_t)k * mr + i] = src[(size_t)k * csa];
        }
        for (int i = rows; i < mr; i++)
            for (int k = 0; k < kc; k++) dst[(size_t)k * mr + i] = 0.0f;
    }
}

/* dst[k*nr + j] = B(p0+k, j0+j), columns past Ncols zero. B(k,j) = B[k*rsb + j*csb]. */
static void pack_b(float *dst, const float *B, size_t rsb, size_t csb, int j0, int nr, int Ncols,
                   int p0, int kc) {
    int cols = Ncols - j0 < nr ? Ncols - j0 : nr;
    if (csb == 1) { /* rows of B are contiguous: copy nr at a time */
        for (int k = 0; k < kc; k++) {
            const float *src = B + (size_t)(p0 + k) * rsb + (size_t)j0;
            float *d = dst + (size_t)k * nr;
            for (int j = 0; j < cols; j++) d[j] = src[j];
            for (int j = cols; j < nr; j++) d[j] = 0.0f;
        }
    } else {
        for (int j = 0; j < cols; j++) {
            const float *src = B + (size_t)(j0 + j) * csb + (size_t)p0 * rsb;
            for (int k = 0; k < kc; k++) dst[(size_t)k * nr + j] = src[(size_t)k * rsb];
        }
        for (int j = cols; j < nr; j++)
            for (int k = 0; k < kc; k++) dst[(size_t)k * nr + j] = 0.0f;
    }
}

/* Packs rows [i0, i1) of A, depth [p0, p0+kc), as MR-row micro-panels. */
static void pack_a_block(const ukr_desc *u, float *dst, const float *A, size_t rsa, size_t csa,
                         int i0, int i1, int p0, int kc) {
    const int mr = u->mr;
#ifdef MATMUL_X86
    if (u->simd_pack && mr == 12) {
        for (int i = i0; i < i1; i += mr) {
            float *d = dst + (size_t)(i - i0) * kc;
            const int rows = i1 - i < mr ? i1 - i : mr;
            if (csa == 1) matmul_pack_t12_avx512(d, A + (size_t)i * rsa + (size_t)p0, rsa, rows, kc);
            else if (rsa == 1) matmul_pack_n_avx512(d, A + (size_t)i + (size_t)p0 * csa, csa, 12, rows, kc);
            else pack_a(d, A, rsa, csa, i, mr, i1, p0, kc);
        }
        return;
    }
    if (u->simd_pack && csa == 1) { /* A rows contiguous in k: transpose 16 rows at a time */
        for (int i = i0; i < i1; i += 2 * mr)
            matmul_pack_t8x2_avx512(dst + (size_t)(i - i0) * kc, A + (size_t)i * rsa + (size_t)p0, rsa,
                                    i1 - i < 2 * mr ? i1 - i : 2 * mr, kc);
        return;
    }
    if (u->simd_pack && rsa == 1) { /* A columns contiguous: copy, two panels per pass */
        for (int i = i0; i < i1; i += 2 * mr)
            matmul_pack_n_avx512(dst + (size_t)(i - i0) * kc, A + (size_t)i + (size_t)p0 * csa, csa, 8,
                                 i1 - i < 2 * mr ? i1 - i : 2 * mr, kc);
        return;
    }
#endif
    for (int i = i0; i < i1; i += mr) pack_a(dst + (size_t)(i - i0) * kc, A, rsa, csa, i, mr, i1, p0, kc);
}

/* Packs columns [j0, j1) of B, depth [p0, p0+kc), as NR-column micro-panels. */
static void pack_b_block(const ukr_desc *u, float *dst, const float *B, size_t rsb, size_t csb,
                         int j0, int j1, int p0, int kc) {
    const int nr = u->nr;
    for (int j = j0; j < j1; j += nr) {
        float *d = dst + (size_t)(j - j0) * kc;
        const int cols = j1 - j < nr ? j1 - j : nr;
#ifdef MATMUL_X86
        if (u->simd_pack && csb == 1) { /* B rows contiguous: copy */
            matmul_pack_n_avx512(d, B + (size_t)p0 * rsb + (size_t)j, rsb, 32, cols, kc);
            continue;
        }
        if (u->simd_pack && rsb == 1) { /* B^T rows contiguous in k: transpose */
            const float *src = B + (size_t)j * csb + (size_t)p0;
            matmul_pack_t16_avx512(d, 32, src, csb, cols < 16 ? cols : 16, kc);
            matmul_pack_t16_avx512(d + 16, 32, src + 16 * csb, csb, cols <= 16 ? 0 : cols - 16, kc);
            continue;
        }
#endif
        pack_b(d, B, rsb, csb, j, nr, j1, p0, kc);
    }
}

/* Combines the first rows x cols of a tile computed with MATMUL_UKR_SET
 * (row stride nr) with C by the rule of mode: the kernels' own arithmetic. */
static void tile_combine(const float *tile, int nr, float *c, size_t ldc, int mode, const float *bb, int rows,
                         int cols) {
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < cols; j++) {
            float *cij = c + (size_t)i * ldc + j;
            float t = tile[i * nr + j];
            if (mode == MATMUL_UKR_ADD) *cij += t;
            else if (mode == MATMUL_UKR_SET_BIAS) *cij = t + bb[j];
            else *cij = t;
        }
}

/* One MR x NR tile of C. An edge tile (rows < mr or cols < nr) is computed
 * whole into `tile` and its valid part combined with C, except that a
 * kernel with a 4-row twin writes the full-width rows of a short panel
 * straight to C, four at a time (only a last 1-3 go through `tile`). */
static inline void run_tile(const ukr_desc *u, size_t kc, const float *ap, size_t a_ks, const float *bp,
                            size_t b_ks, float *c, size_t ldc, int mode, const float *bb, int rows,
                            int cols, float *tile) {
    if (rows == u->mr && cols == u->nr) {
        u->fn(kc, ap, a_ks, bp, b_ks, c, ldc, mode, bb);
        return;
    }
    if (u->rows4 && cols == u->nr) {
        int i = 0;
        for (; rows - i >= 4; i += 4) u->rows4(kc, ap + i, a_ks, bp, b_ks, c + (size_t)i * ldc, ldc, mode, bb);
        if (i < rows) {
            u->rows4(kc, ap + i, a_ks, bp, b_ks, tile, (size_t)u->nr, MATMUL_UKR_SET, NULL);
            tile_combine(tile, u->nr, c + (size_t)i * ldc, ldc, mode, bb, rows - i, cols);
        }
        return;
    }
    u->fn(kc, ap, a_ks, bp, b_ks, tile, (size_t)u->nr, MATMUL_UKR_SET, NULL);
    tile_combine(tile, u->nr, c, ldc, mode, bb, rows, cols);
}

typedef struct {
    const ukr_desc *u;
    const float *A, *B, *bias;
    size_t rsa, csa, rsb, csb, ldc;
    float *Cm;
    int K, accumulate;
    float *rowsum;   /* or NULL: rowsum[i] = sum over k of A(i,k), k in order (see a_rowsums) */
    const float *mul;   /* or NULL: C's final values times mul (same layout as C) */
} gemm_args;

/* c[i*ldc + j] *= mul[i*ldc + j] over rows x cols: a tile's final values
 * (its last k block), still in L1, times an elementwise factor. */
static void tile_mul(float *c, const float *mul, size_t ldc, int rows, int cols) {
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < cols; j++) c[(size_t)i * ldc + j] *= mul[(size_t)i * ldc + j];
}

#ifdef MATMUL_X86
#define TILE_A tile_a
#else
#define TILE_A NULL
#endif

/* The MR x NR tile of C at (i, j) over depth [pc, pc+kc): rows below ifull
 * are full panels, rows up to in and columns up to jn exist. With rowa (A
 * rows contiguous, AVX-512) a full tile reads A in place and a partial-B
 * tile packs its A panel into tile_a; otherwise ap is the packed A panel.
 * bp is the packed B panel. Shared by gemm_block and gemm_packed_cols, so
 * both run the same kernels on the same tiles. */
static inline void tile_at(const gemm_args *g, int rowa, int ifull, int i, int in, int j, int jn, int pc, int kc,
                           int mode, const float *ap, const float *bp, float *tile, float *tile_a) {
    const ukr_desc *u = g->u;
    const int mr = u->mr, nr = u->nr, cols = jn - j < nr ? jn - j : nr, rows = in - i < mr ? in - i : mr;
    float *c = g->Cm + (size_t)i * g->ldc + j;
    const float *bj = g->bias ? g->bias + j : NULL;
#ifdef MATMUL_X86
    if (rowa && i < ifull && cols == nr) {
        matmul_ukr_avx512_rowa((size_t)kc, g->A + (size_t)i * g->rsa + (size_t)pc, g->rsa, bp, (size_t)nr, c, g->ldc,
                               mode, bj);
    } else if (rowa && i < ifull) { /* partial B panel: pack this A panel to use run_tile */
        pack_a_block(u, tile_a, g->A, g->rsa, g->csa, i, i + mr, pc, kc);
        run_tile(u, (size_t)kc, tile_a, (size_t)mr, bp, (size_t)nr, c, g->ldc, mode, bj, mr, cols, tile);
    } else
#else
    (void)rowa, (void)ifull, (void)tile_a;
#endif
    run_tile(u, (size_t)kc, ap, (size_t)mr, bp, (size_t)nr, c, g->ldc, mode, bj, rows, cols, tile);
    if (g->mul && pc + kc == g->K) tile_mul(c, g->mul + (size_t)i * g->ldc + j, g->ldc, rows, cols);
}

/* Where the shared-A split keeps the packed panel of rows [i, i+mr) for the
 * k block starting at pc (depth kc): k blocks one after another, each
 * holding all Mp (M rounded up to mr) rows as mr-row panels. */
static float *ashared_panel(float *ashared, size_t Mp, int pc, int i, int kc) {
    return ashared + (size_t)pc * Mp + (size_t)i * (size_t)kc;
}

/* np panels of mr rows at once (consecutive in apack, kc deep each): each
 * row's sum is one chain of adds in k order, so the chains of several
 * panels side by side are what hides the adds' latency. */
static inline __attribute__((always_inline)) void panel_sums(float *acc, const float *apack, int np, int mr,
                                                             int kc) {
    for (int k = 0; k < kc; k++)
        for (int p = 0; p < np; p++)
            for (int r = 0; r < mr; r++) acc[p * mr + r] += apack[(size_t)p * mr * kc + (size_t)k * mr + r];
}

#ifdef MATMUL_X86
/* The same for 4 panels of 12 rows (dweight's AVX-512 A panels) with the
 * 48 sums in 12 SSE registers: gcc kept panel_sums' sums in memory, a
 * load-add-store per 4 rows per k. Same adds in the same order. */
static void panel_sums_4x12(float *acc, const float *apack, int kc) {
    __m128 s[12];
    for (int q = 0; q < 12; q++) s[q] = _mm_loadu_ps(acc + 4 * q);
    for (int k = 0; k < kc; k++)
        for (int p = 0; p < 4; p++) {
            const float *a = apack + (size_t)p * 12 * kc + (size_t)k * 12;
            s[3 * p] = _mm_add_ps(s[3 * p], _mm_loadu_ps(a));
            s[3 * p + 1] = _mm_add_ps(s[3 * p + 1], _mm_loadu_ps(a + 4));
            s[3 * p + 2] = _mm_add_ps(s[3 * p + 2], _mm_loadu_ps(a + 8));
        }
    for (int q = 0; q < 12; q++) _mm_storeu_ps(acc + 4 * q, s[q]);
}
#endif

/* Adds the packed A block of rows [i0, i1) (panels of mr, depth kc) into
 * rowsum, k in order, onto the sums of the earlier k blocks (0 for the
 * first, pc = 0): one running float sum per row over the whole depth, the
 * order bias_backward adds in, so dweight's product can hand back the
 * bias gradient (dbias[o] = sum_n dout[n,o], A = dout^T) from the panels
 * it packs anyway, with the same bits and without its own pass over dout. */
static void a_rowsums(float *rowsum, const float *apack, int mr, int i0, int i1, int pc, int kc) {
    enum { GROUP = 4 };
    for (int i = i0; i < i1; i += GROUP * mr) {
        const float *panels = apack + (size_t)(i - i0) * kc;
        const int rows = i1 - i < GROUP * mr ? i1 - i : GROUP * mr, np = (rows + mr - 1) / mr;
        float acc[GROUP * 16] = {0};   /* rows past `rows` are the panels' zero padding */
        for (int r = 0; r < rows; r++) acc[r] = pc == 0 ? 0.0f : rowsum[i + r];
#ifdef MATMUL_X86
        if (np == GROUP && mr == 12) panel_sums_4x12(acc, panels, kc);
        else
#endif
        panel_sums(acc, panels, np, mr, kc);
        for (int r = 0; r < rows; r++) rowsum[i + r] = acc[r];
    }
}

/* One thread computes the block rows [i0,i1) x columns [j0,j1) of C over the
 * whole depth K (single-threaded Goto/BLIS loop nest on its own buffers).
 * Both operands are always packed, even where the source already has a
 * panel's shape (B rows in both backward products, A columns in dweight):
 * letting the micro-kernel read those in place measured 10-50% slower on
 * the backward products (strided rows spread over many pages and cache sets).
 * bshared / ashared (or NULL): B or A already packed for all threads, read
 * from there (ashared only with i0 = 0: all rows, in (pc, panel) order). */
static void gemm_block(const gemm_args *g, int i0, int i1, int j0, int j1, float *bpack, float *apack,
                       const float *bshared, const float *ashared) {
    const ukr_desc *u = g->u;
    const int mr = u->mr, nr = u->nr;
    const size_t Mp = round_up((size_t)i1, (size_t)mr);   /* ashared (i0 = 0): floats per k in one k block */
    size_t boff = 0;   /* bshared: offset of block (jc, pc), blocks packed in loop order */
    float tile[32 * 32] __attribute__((aligned(64))); /* edge tiles: mr, nr <= 32 */
#ifdef MATMUL_X86
    float tile_a[16 * KC] __attribute__((aligned(64))); /* one A panel pair (t8x2 writes two) */
#endif
    /* AVX-512 with A rows contiguous in k: read full panels in place, pack
     * only a partial last panel. */
    const int rowa = MATMUL_ROWA && u->rowa && g->csa == 1;
    for (int jc = j0; jc < j1; jc += NC) {
        const int jn = j1 - jc < NC ? j1 : jc + NC;
        for (int pc = 0; pc < g->K; pc += KC) {
            const int kc = g->K - pc < KC ? g->K - pc : KC;
            const int mode = pc > 0 || g->accumulate ? MATMUL_UKR_ADD
                             : g->bias               ? MATMUL_UKR_SET_BIAS
                                                     : MATMUL_UKR_SET;
            if (bshared) {
                bpack = (float *)bshared + boff;   /* read only below */
                boff += (size_t)kc * round_up((size_t)(jn - jc), (size_t)nr);
            } else {
                pack_b_block(u, bpack, g->B, g->rsb, g->csb, jc, jn, pc, kc);
            }
            for (int ic = i0; ic < i1; ic += MC_MAX) {
                const int in = i1 - ic < MC_MAX ? i1 : ic + MC_MAX;
                const int ifull = ic + (in - ic) / mr * mr;
                if (ashared) apack = ashared_panel((float *)ashared, Mp, pc, ic, kc);   /* read only */
                else if (!rowa) {
                    pack_a_block(u, apack, g->A, g->rsa, g->csa, ic, in, pc, kc);
                    /* each row summed once: by the chunk holding column 0, in its first block */
                    if (g->rowsum && jc == 0) a_rowsums(g->rowsum, apack, mr, ic, in, pc, kc);
                }
                else if (ifull < in)
                    pack_a_block(u, apack + (size_t)(ifull - ic) * kc, g->A, g->rsa, g->csa, ifull, in, pc, kc);
                if (!u->b_in_l1) {   /* A micro-panel held in L1, B panels streamed from L2 */
                    for (int i = ic; i < in; i += mr)
                        for (int j = jc; j < jn; j += nr)
                            tile_at(g, rowa, ifull, i, in, j, jn, pc, kc, mode, apack + (size_t)(i - ic) * kc,
                                    bpack + (size_t)(j - jc) * kc, tile, TILE_A);
                } else {             /* B micro-panel held in L1, A micro-panels streamed (BLIS) */
                    for (int j = jc; j < jn; j += nr)
                        for (int i = ic; i < in; i += mr)
                            tile_at(g, rowa, ifull, i, in, j, jn, pc, kc, mode, apack + (size_t)(i - ic) * kc,
                                    bpack + (size_t)(j - jc) * kc, tile, TILE_A);
                }
            }
        }
    }
}

/* How one product is cut between threads (gemm_plan_make), so that several
 * products can share one parallel region (gemm_plans_run).
 *
 * Row split with B packed ONCE for all threads ("shared"): every (jc, pc)
 * block of B is packed into a shared area in gemm_block's loop order
 * (threads split the panels; a barrier), then row chunks go to the threads
 * dynamically, each packing only its own A. Without this each row chunk
 * repacked all of B, which made small chunks expensive; with it the chunks
 * can be small, so a thread on a slower or busier vCPU simply takes fewer of
 * them.
 *
 * Otherwise C is cut along its longer side into chunks and each chunk is
 * one task computed whole (all of K) by one thread with its own packing
 * buffers; the operand along the uncut side is then packed once per chunk,
 * so chunks are kept large (>= 2*NC columns or 2*MC_MAX rows each before
 * going past one per thread) unless that operand is an A read in place.
 *
 * Either way every element is summed by one thread in the fixed KC-blocked
 * k order with the same tiles and kernels, so the bits do not depend on
 * the thread count or on which thread takes which chunk. */
enum { PLAN_MAXB = 64 };
typedef struct {
    gemm_args g;
    int M, Ncols;
    int shared, by_cols, width, nchunks;
    int npack;   /* B panels to pack before the chunks (shared only, else 0) */
    /* shared only: the (jc, pc) blocks in gemm_block's order and their offsets */
    int nb, bj[PLAN_MAXB], bp[PLAN_MAXB];
    size_t boff[PLAN_MAXB + 1];
    float *bshared;
    float *ashared;   /* shared-A column split only: A packed, (pc, row panel) order */
    int a_panels;     /* its row panels per k block */
} gemm_plan;

/* Tries the shared-B row split; 0 if B does not fit the area. */
static int plan_shared(gemm_plan *p, int nthreads, float *area) {
    const ukr_desc *u = p->g.u;
    const int mr = u->mr, nr = u->nr, K = p->g.K, M = p->M, Ncols = p->Ncols;
    p->nb = 0;
    p->boff[0] = 0;
    for (int jc = 0; jc < Ncols; jc += NC)
        for (int pc = 0; pc < K; pc += KC) {
            if (p->nb == PLAN_MAXB) return 0;
            const int jn = Ncols - jc < NC ? Ncols : jc + NC, kc = K - pc < KC ? K - pc : KC;
            p->bj[p->nb] = jc;
            p->bp[p->nb] = pc;
            p->boff[p->nb + 1] = p->boff[p->nb] + (size_t)kc * round_up((size_t)(jn - jc), (size_t)nr);
            p->nb++;
        }
    if (p->boff[p->nb] > SHARED_B_MAX) return 0;
    /* row chunks: a multiple of mr, about 4 per thread, at least 2 panels */
    int width = (int)round_up((size_t)((M + 4 * nthreads - 1) / (4 * nthreads)), (size_t)mr);
    if (width < 2 * mr) width = 2 * mr;
    p->shared = 1;
    p->npack = p->nb * ((NC + nr - 1) / nr);
    p->by_cols = 0;
    p->width = width;
    p->nchunks = (M + width - 1) / width;
    p->bshared = gemm_align64(area);
    return 1;
}

/* Tries the shared-A column split, for kernels without an in-place A (the
 * 12-row one): A is packed once for all threads (a barrier), then column
 * chunks each pack their own B, so neither operand is packed twice. 0 if
 * A does not fit the area or needs more than one MC block. */
static int plan_shared_a(gemm_plan *p, int nthreads, float *area) {
    const ukr_desc *u = p->g.u;
    const int mr = u->mr, nr = u->nr, K = p->g.K, M = p->M, Ncols = p->Ncols;
    const size_t Mp = round_up((size_t)M, (size_t)mr);
    if (M > MC_MAX || Mp * (size_t)K > SHARED_B_MAX) return 0;
    p->a_panels = (int)(Mp / (size_t)mr);
    p->npack = p->a_panels * ((K + KC - 1) / KC);
    p->by_cols = 1;
    /* about 16 chunks per thread: a chunk repacks nothing (A is shared, its
     * B columns are its own), so small chunks only even out the threads'
     * finishing times on a host whose vCPUs run at different speeds (4 per
     * thread measured 2-3% slower on the forward's qkv and LM head, same bits) */
    int width = (int)round_up((size_t)((Ncols + 16 * nthreads - 1) / (16 * nthreads)), (size_t)nr);
    if (width < 2 * nr) width = 2 * nr;
    p->width = width;
    p->nchunks = (Ncols + width - 1) / width;
    p->ashared = gemm_align64(area);
    return 1;
}

/* Cm(M,Ncols) (=|+=) A(M,K) @ B(K,Ncols) [+ bias(Ncols)], row stride ldc.
 * accumulate=0: Cm = A@B + bias (bias may be NULL); accumulate=1: Cm += A@B.
 * area: SHARED_B_MAX floats (+16) this plan may use for a shared B.
 * M, Ncols, K > 0. */
static void gemm_plan_make(gemm_plan *p, const ukr_desc *u, int M, int Ncols, int K, const float *A, size_t rsa,
                           size_t csa, const float *B, size_t rsb, size_t csb, float *Cm, size_t ldc, int accumulate,
                           const float *bias, int nthreads, float *area) {
    memset(p, 0, sizeof *p);
    p->g = (gemm_args){u, A, B, bias, rsa, csa, rsb, csb, ldc, Cm, K, accumulate, NULL, NULL};
    p->M = M;
    p->Ncols = Ncols;
    /* rowa: A is read in place (never packed), so column chunks cost no
     * repacking of A and can be small, as long as A is small enough to be
     * re-read by every chunk (not the LM head's dinp, whose A is the whole
     * dlogits). Otherwise a row split with B packed once is the way to small
     * chunks, whatever the shape, when B fits; for a kernel that packs an A
     * whose rows are contiguous (the 12-row one) and a wide C, a column
     * split with A packed once comes first. */
    const int rowa = MATMUL_ROWA && u->rowa && csa == 1;
    if (nthreads > 1 && csa == 1 && !rowa && Ncols >= M && plan_shared_a(p, nthreads, area)) return;
    if (nthreads > 1 && (Ncols < M || !rowa) && plan_shared(p, nthreads, area)) return;
    const int by_cols = Ncols >= M;
    const int D = by_cols ? Ncols : M, unit = by_cols ? u->nr : u->mr;
    const int big = by_cols ? 2 * NC : 2 * MC_MAX;
    int nchunks = nthreads;
    const int small_a = rowa && (size_t)M * (size_t)K <= SHARED_B_MAX;
    if (nthreads > 1 && (D / nthreads >= big || (by_cols && small_a))) nchunks = 4 * nthreads; /* room to rebalance */
    p->by_cols = by_cols;
    p->width = (int)round_up((size_t)((D + nchunks - 1) / nchunks), (size_t)unit);
    p->nchunks = (D + p->width - 1) / p->width;
}

/* Runs the plans in one parallel region: first the shared B (or A) blocks
 * of all of them are packed (one barrier), then all their chunks go to the threads
 * dynamically, so one product's last chunks overlap the next one's first.
 * The plans' kernels share the B panel width nr (they may differ in mr). */
static void gemm_plans_run(gemm_plan *plans, int np, float *scratch) {
    const ukr_desc *u = plans[0].g.u;
    const int nr = u->nr, panels_per_block = (NC + nr - 1) / nr;
    int npack = 0, nchunks = 0;
    for (int i = 0; i < np; i++) {
        npack += plans[i].npack;
        nchunks += plans[i].nchunks;
    }
    const size_t per_thread = bpack_floats(u) + apack_floats();
#pragma omp parallel if (nchunks > 1)
    {
#pragma omp for schedule(static)
        for (int q = 0; q < npack; q++) {
            int i = 0, r = q;
            while (r >= plans[i].npack) r -= plans[i++].npack;
            const gemm_plan *p = &plans[i];
            const gemm_args *g = &p->g;
            if (p->ashared) { /* one A panel of one k block */
                const int mr = g->u->mr, pc = r / p->a_panels * KC, ii = r % p->a_panels * mr;
                const int kc = g->K - pc < KC ? g->K - pc : KC;
                pack_a_block(g->u, ashared_panel(p->ashared, (size_t)p->a_panels * (size_t)mr, pc, ii, kc), g->A,
                             g->rsa, g->csa, ii, ii + mr < p->M ? ii + mr : p->M, pc, kc);
                continue;
            }
            const int b = r / panels_per_block, j = p->bj[b] + (r % panels_per_block) * nr;
            const int jn = p->Ncols - p->bj[b] < NC ? p->Ncols : p->bj[b] + NC;
            const int kc = g->K - p->bp[b] < KC ? g->K - p->bp[b] : KC;
            if (j >= jn) continue;
            pack_b_block(g->u, p->bshared + p->boff[b] + (size_t)(j - p->bj[b]) * kc, g->B, g->rsb, g->csb, j,
                         j + nr < jn ? j + nr : jn, p->bp[b], kc);
        }
        /* implicit barrier: the shared Bs are complete before any chunk reads them */
        float *mine = scratch + (size_t)thread_index() * per_thread;
        float *bpack = gemm_align64(mine), *apack = gemm_align64(mine + bpack_floats(u));
#pragma omp for schedule(dynamic, 1)
        for (int c = 0; c < nchunks; c++) {
            int i = 0, ch = c;
            while (ch >= plans[i].nchunks) ch -= plans[i++].nchunks;
            const gemm_plan *p = &plans[i];
            const int D = p->by_cols ? p->Ncols : p->M;
            const int lo = ch * p->width, hi = D - lo < p->width ? D : lo + p->width;
            if (p->by_cols) gemm_block(&p->g, 0, p->M, lo, hi, bpack, apack, NULL, p->ashared);
            else gemm_block(&p->g, lo, hi, 0, p->Ncols, bpack, apack, p->shared ? p->bshared : NULL, NULL);
        }
    }
}

/* The degenerate shapes: nothing to do, or K = 0 (C = bias or untouched). */
static int gemm_trivial(int M, int Ncols, int K, float *Cm, size_t ldc, int accumulate, const float *bias) {
    if (M <= 0 || Ncols <= 0) return 1;
    if (K > 0) return 0;
    if (!accumulate)
        for (int i = 0; i < M; i++)
            for (int j = 0; j < Ncols; j++) Cm[(size_t)i * ldc + j] = bias ? bias[j] : 0.0f;
    return 1;
}

void gemm_forward(const ukr_desc *u, float *out, const float *inp, const float *weight, const float *bias, int N,
                  int C, int OC, float *scratch) {
    if (gemm_trivial(N, OC, C, out, (size_t)OC, 0, bias)) return;
    const int nthreads = threads_max();
    gemm_plan p;
    /* out(N,OC) = inp(N,C) @ weight^T: B(k=c, j=o) = weight[o*C + c]. */
    gemm_plan_make(&p, u, N, OC, C, inp, (size_t)C, 1, weight, 1, (size_t)C, out, (size_t)OC, 0, bias, nthreads,
                   shared_areas(u, scratch, nthreads));
    gemm_plans_run(&p, 1, scratch);
}

void gemm_backward(const ukr_desc *ud, const ukr_desc *uw, float *dinp, const float *dinp_mul, int set_dinp,
                   float *dweight, float *dbias, int set_dparams, const float *dout, const float *inp,
                   const float *weight, int N, int C, int OC, float *scratch) {
    const int nthreads = threads_max();
    float *areas = shared_areas(ud, scratch, nthreads);   /* one scratch serves both kernels (apack_floats) */
    gemm_plan plans[2];
    int np = 0;
    /* dinp(N,C) (+)= dout(N,OC) @ weight(OC,C) */
    if (dinp) {
        gemm_plan_make(&plans[np++], ud, N, C, OC, dout, (size_t)OC, 1, weight, (size_t)C, 1, dinp, (size_t)C,
                       !set_dinp, NULL, nthreads, areas);
        plans[np - 1].g.mul = dinp_mul;
    }
    /* dweight(OC,C) (+)= dout^T(OC,N) @ inp(N,C): A(i=o, k=n) = dout[n*OC + o]. */
    if (dweight) {
        gemm_plan_make(&plans[np++], uw, OC, C, N, dout, 1, (size_t)OC, inp, (size_t)C, 1, dweight, (size_t)C,
                       !set_dparams, NULL, nthreads, areas + SHARED_B_MAX + 16);
        plans[np - 1].g.rowsum = dbias;
    }
    if (np) gemm_plans_run(plans, np, scratch);
}

/* ------------------------------------------------------ packed weights -- */

/* Floats of B (K, Ncols) packed in gemm_block's (jc, pc) block order. */
size_t gemm_packed_floats(const ukr_desc *u, int K, int Ncols) {
    size_t n = 0;
    for (int jc = 0; jc < Ncols; jc += NC) {
        const int jn = Ncols - jc < NC ? Ncols : jc + NC;
        n += (size_t)K * round_up((size_t)(jn - jc), (size_t)u->nr);
    }
    return n;
}

void gemm_pack_weight(const ukr_desc *u, float *dst, const float *weight, int C, int OC) {
    /* B(k=c, j=o) = weight[o*C + c], block after block as gemm_block reads
     * them with bshared; the panels of a block are split between threads. */
    size_t off = 0;
    for (int jc = 0; jc < OC; jc += NC) {
        const int jn = OC - jc < NC ? OC : jc + NC;
        for (int pc = 0; pc < C; pc += KC) {
            const int kc = C - pc < KC ? C - pc : KC, np = (jn - jc + u->nr - 1) / u->nr;
            float *blk = dst + off;
#pragma omp parallel for schedule(static) if (np > 1)
            for (int q = 0; q < np; q++) {
                const int j = jc + q * u->nr;
                pack_b_block(u, blk + (size_t)q * u->nr * kc, weight, 1, (size_t)C, j,
                             j + u->nr < jn ? j + u->nr : jn, pc, kc);
            }
            off += (size_t)kc * round_up((size_t)(jn - jc), (size_t)u->nr);
        }
    }
}

/* Columns [j0, j1) of Cm = A @ B (+ bias) over all M rows, B read from the
 * packed blocks (matmul_pack_weight's layout); j0 is a multiple of nr and
 * [j0, j1) lies inside one NC block. Loop nest pc, ic, i, j as in
 * gemm_block: an A micro-panel stays in L1 while the strip's B panels
 * stream from L2, and each task reads only its own columns of the weight,
 * so the weight is read from memory once (splitting rows instead had every
 * task stream the whole weight: 25% slower prefill on stories110M). The
 * tiles, kernels and k blocks are gemm_block's, so are the bits. */
static void gemm_packed_cols(const gemm_args *g, int M, int Ncols, const float *packed, int j0, int j1,
                             float *apack) {
    const ukr_desc *u = g->u;
    const int mr = u->mr, nr = u->nr, K = g->K;
    const int jc = j0 / NC * NC, jn = Ncols - jc < NC ? Ncols : jc + NC;
    const size_t bw = round_up((size_t)(jn - jc), (size_t)nr);   /* padded width of this NC block */
    const int rowa = MATMUL_ROWA && u->rowa && g->csa == 1;
    float tile[32 * 32] __attribute__((aligned(64)));
#ifdef MATMUL_X86
    float tile_a[16 * KC] __attribute__((aligned(64)));
#endif
    for (int pc = 0; pc < K; pc += KC) {
        const int kc = K - pc < KC ? K - pc : KC;
        const int mode = pc > 0 ? MATMUL_UKR_ADD : g->bias ? MATMUL_UKR_SET_BIAS : MATMUL_UKR_SET;
        const float *bblk = packed + (size_t)jc * (size_t)K + (size_t)pc * bw;
        for (int ic = 0; ic < M; ic += MC_MAX) {
            const int in = M - ic < MC_MAX ? M : ic + MC_MAX;
            const int ifull = ic + (in - ic) / mr * mr;
            if (!rowa) pack_a_block(u, apack, g->A, g->rsa, g->csa, ic, in, pc, kc);
            else if (ifull < in)
                pack_a_block(u, apack + (size_t)(ifull - ic) * kc, g->A, g->rsa, g->csa, ifull, in, pc, kc);
            for (int i = ic; i < in; i += mr)
                for (int j = j0; j < j1; j += nr)
                    tile_at(g, rowa, ifull, i, in, j, j1, pc, kc, mode, apack + (size_t)(i - ic) * kc,
                            bblk + (size_t)(j - jc) * kc, tile, TILE_A);
        }
    }
}

void gemm_forward_packed(const ukr_desc *u, float *out, const float *inp, const float *packed, const float *bias,
                         int N, int C, int OC, float *scratch) {
    const gemm_args g = {u, inp, NULL, bias, (size_t)C, 1, 1, (size_t)C, (size_t)OC, out, C, 0, NULL, NULL};
    /* Tasks: groups of B panels (column strips over all rows), never across
     * an NC block, about 4 per thread, handed out dynamically: the weight is
     * packed already, so small tasks cost no repacking, and a thread on a
     * slower vCPU takes fewer. */
    const int nthreads = threads_max(), nr = u->nr;
    const int npanels = (OC + nr - 1) / nr;
    int group = npanels / (4 * nthreads);
    if (group < 1) group = 1;
    const int per_block = NC / nr, groups_per_block = (per_block + group - 1) / group;
    const int nblocks = (OC + NC - 1) / NC, ntasks = nblocks * groups_per_block;
    const size_t per_thread = bpack_floats(u) + apack_floats();
#pragma omp parallel for schedule(dynamic, 1) if (ntasks > 1 && nthreads > 1)
    for (int t = 0; t < ntasks; t++) {
        const int jc = (t / groups_per_block) * NC, jn = OC - jc < NC ? OC : jc + NC;
        const int j0 = jc + (t % groups_per_block) * group * nr;
        if (j0 >= jn) continue;
        const int j1 = j0 + group * nr < jn ? j0 + group * nr : jn;
        float *mine = scratch + (size_t)thread_index() * per_thread;
        gemm_packed_cols(&g, N, OC, packed, j0, j1, gemm_align64(mine + bpack_floats(u)));
    }
}
