/*
 * matvec.c — run-time ISA choice and threading for matvec_forward and its
 * bf16 and block forms, the input preparation the bf16 kernels need, the
 * attention products' dispatch, and the scalar twins. Rows are handed to
 * threads in blocks of MV_BLOCK (a multiple of the kernels' row unroll, and
 * a few KB of weights, so a block is worth a scheduling step); small
 * products stay on one thread.
 */
#include "nn/matvec.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define MV_X86 1
#endif

#define MV_BLOCK 16
/* below this many weights (~256 KB) a second thread costs more than it saves */
#define MV_OMP_MIN 65536

int matvec_isa_supported(matvec_isa isa) {
    switch (isa) {
    case MATVEC_ISA_AUTO:
    case MATVEC_ISA_SCALAR: return 1;
#ifdef MV_X86
    case MATVEC_ISA_AVX2: return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case MATVEC_ISA_AVX512:
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
               __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case MATVEC_ISA_AVX512BF16:
    case MATVEC_ISA_AVX512BF16_XR:
        return matvec_isa_supported(MATVEC_ISA_AVX512) && __builtin_cpu_supports("avx512bf16");
#else
    case MATVEC_ISA_AVX2:
    case MATVEC_ISA_AVX512:
    case MATVEC_ISA_AVX512BF16:
    case MATVEC_ISA_AVX512BF16_XR: return 0;
#endif
    }
    return 0;
}

matvec_isa matvec_isa_best(void) {
    if (matvec_isa_supported(MATVEC_ISA_AVX512)) return MATVEC_ISA_AVX512;
    if (matvec_isa_supported(MATVEC_ISA_AVX2)) return MATVEC_ISA_AVX2;
    return MATVEC_ISA_SCALAR;
}

/* Where the CPU has AVX512-BF16: bf16 dot products with x rounded to bf16
 * (MATVEC_ISA_AVX512BF16_XR), the usual meaning of bf16 inference (bf16
 * operands, products exact, sums in float). One vdpbf16ps per 32 weights
 * streams the weights faster than the alternatives on the development
 * machine: the exact-x split (x = hi + lo, two dot products per 32 weights,
 * MATVEC_ISA_AVX512BF16) was compute-bound at ~20 G weights/s per core, and
 * the shift+FMA kernel (MATVEC_ISA_AVX512, x exact) pulled ~0.75 of the read
 * bandwidth fp32 reaches. The price is x's rounding, 2^-9 relative per
 * element; both exact-x kernels stay selectable and tested. */
matvec_isa matvec_bf16_isa_best(void) {
    if (matvec_isa_supported(MATVEC_ISA_AVX512BF16_XR)) return MATVEC_ISA_AVX512BF16_XR;
    return matvec_isa_best();
}

const char *matvec_isa_name(matvec_isa isa) {
    switch (isa) {
    case MATVEC_ISA_AUTO: return "auto";
    case MATVEC_ISA_SCALAR: return "scalar";
    case MATVEC_ISA_AVX2: return "avx2";
    case MATVEC_ISA_AVX512: return "avx512";
    case MATVEC_ISA_AVX512BF16: return "avx512bf16";
    case MATVEC_ISA_AVX512BF16_XR: return "avx512bf16-xr";
    }
    return "unknown";
}

typedef void (*mv_rows_fn)(float *, const float *, const float *, int, int, int);

static void rows_scalar(float *out, const float *inp, const float *weight, int C, int r0, int r1) {
    for (int o = r0; o < r1; o++) {
        const float *w = weight + (size_t)o * (size_t)C;
        float acc = 0.0f;
        for (int c = 0; c < C; c++) acc += w[c] * inp[c];
        out[o] = acc;
    }
}

void matvec_forward_naive(float *out, const float *inp, const float *weight, int C, int OC) {
    size_t total = (size_t)OC * (size_t)C;
    (void)total;   /* read only by the OpenMP if-clause */
#pragma omp parallel for schedule(static) if (total >= MV_OMP_MIN)
    for (int o = 0; o < OC; o++) rows_scalar(out, inp, weight, C, o, o + 1);
}

void matvec_forward_isa(matvec_isa isa, float *out, const float *inp, const float *weight,
                        int C, int OC) {
    if (isa == MATVEC_ISA_AUTO || isa == MATVEC_ISA_AVX512BF16 || isa == MATVEC_ISA_AVX512BF16_XR)
        isa = matvec_isa_best();
    if (!matvec_isa_supported(isa)) isa = MATVEC_ISA_SCALAR;
    mv_rows_fn rows = rows_scalar;
#ifdef MV_X86
    if (isa == MATVEC_ISA_AVX512) rows = matvec_rows_avx512;
    else if (isa == MATVEC_ISA_AVX2) rows = matvec_rows_avx2;
#endif
    int nblocks = (OC + MV_BLOCK - 1) / MV_BLOCK;
    size_t total = (size_t)OC * (size_t)C;
    (void)total;   /* read only by the OpenMP if-clause */
#pragma omp parallel for schedule(static) if (total >= MV_OMP_MIN)
    for (int b = 0; b < nblocks; b++) {
        int r0 = b * MV_BLOCK;
        int r1 = r0 + MV_BLOCK < OC ? r0 + MV_BLOCK : OC;
        rows(out, inp, weight, C, r0, r1);
    }
}

static mv_rows_fn fp32_rows(matvec_isa isa) {
#ifdef MV_X86
    if (isa == MATVEC_ISA_AUTO) isa = matvec_isa_best();
    if (isa == MATVEC_ISA_AVX512) return matvec_rows_avx512;
    if (isa == MATVEC_ISA_AVX2) return matvec_rows_avx2;
#else
    (void)isa;
#endif
    return rows_scalar;
}

/* One block index space over the n products, in order: first[i] is the
 * first block of product i; returns the block count. */
static int block_plan(int n, const int *OC, int *first) {
    first[0] = 0;
    for (int i = 0; i < n; i++) first[i + 1] = first[i] + (OC[i] + MV_BLOCK - 1) / MV_BLOCK;
    return first[n];
}

/* Product i and its rows [r0, r1) of block b. */
static int block_rows(int b, const int *first, const int *OC, int *r0, int *r1) {
    int i = 0;
    while (b >= first[i + 1]) i++;
    *r0 = (b - first[i]) * MV_BLOCK;
    *r1 = *r0 + MV_BLOCK < OC[i] ? *r0 + MV_BLOCK : OC[i];
    return i;
}

int matvec_multi_blocks(int n, const int *OC) {
    if (n < 1 || n > 4) return 0;
    int first[5];
    return block_plan(n, OC, first);
}

void matvec_block_rows(int OC, int b, int *r0, int *r1) {
    int nb = (OC + MV_BLOCK - 1) / MV_BLOCK;
    if (OC < 1 || b < 0 || b >= nb) {
        *r0 = *r1 = 0;
        return;
    }
    *r0 = b * MV_BLOCK;
    *r1 = *r0 + MV_BLOCK < OC ? *r0 + MV_BLOCK : OC;
}

int matvec_block_chunk(int C, size_t elem_bytes, int nblocks, int nthreads) {
    size_t block = (size_t)MV_BLOCK * (size_t)(C > 0 ? C : 1) * (elem_bytes ? elem_bytes : 1);
    size_t k = ((size_t)64 << 10) / block;   /* ~64 KB of weights per scheduling step */
    /* and at least four steps per thread, so the last ones even out */
    size_t even = nthreads > 0 && nblocks > 0 ? ((size_t)nblocks + 4 * (size_t)nthreads - 1) / (4 * (size_t)nthreads) : 1;
    if (even < k) k = even;
    return k < 1 ? 1 : k > 64 ? 64 : (int)k;
}

void matvec_forward_multi(int n, float *const *out, const float *const *weight, const int *OC,
                          const float *inp, int C) {
    if (n < 1 || n > 4) return;
    mv_rows_fn rows = fp32_rows(MATVEC_ISA_AUTO);
    int first[5];
    int nblocks = block_plan(n, OC, first);
    size_t total = 0;
    for (int i = 0; i < n; i++) total += (size_t)OC[i] * (size_t)C;
    (void)total;   /* read only by the OpenMP if-clause */
#pragma omp parallel for schedule(static) if (total >= MV_OMP_MIN)
    for (int b = 0; b < nblocks; b++) {
        int r0, r1, i = block_rows(b, first, OC, &r0, &r1);
        rows(out[i], inp, weight[i], C, r0, r1);
    }
}

void matvec_forward_multi_block(matvec_isa isa, int n, float *const *out, const float *const *weight,
                                const int *OC, const float *inp, int C, int b) {
    if (n < 1 || n > 4) return;
    int first[5];
    if (b < 0 || b >= block_plan(n, OC, first)) return;
    int r0, r1, i = block_rows(b, first, OC, &r0, &r1);
    fp32_rows(isa)(out[i], inp, weight[i], C, r0, r1);
}

void matvec_forward(float *out, const float *inp, const float *weight, int C, int OC) {
    matvec_forward_isa(MATVEC_ISA_AUTO, out, inp, weight, C, OC);
}

/* ---------------------------------------------------------------- attention */

/* Portable twins: 16 running lanes (lane k takes the products c with c %
 * 16 == k), added pairwise in a fixed tree; lane-wise loops the compiler
 * can turn into SIMD without reassociating anything (one running sum would
 * be one long chain of dependent adds). */
static float dot_lanes(const float *w, const float *x, int C) {
    float acc[16] = { 0 };
    int c = 0;
    for (; c + 16 <= C; c += 16)
        for (int k = 0; k < 16; k++) acc[k] += w[c + k] * x[c + k];
    for (int k = 0; c < C; c++, k++) acc[k] += w[c] * x[c];
    for (int h = 8; h >= 1; h /= 2)
        for (int k = 0; k < h; k++) acc[k] += acc[k + h];
    return acc[0];
}

void matvec_strided_isa(matvec_isa isa, float *out, const float *x, const float *w, int C, int OC, size_t ld) {
    if (isa == MATVEC_ISA_AUTO) isa = matvec_isa_best();
#ifdef MV_X86
    if (isa == MATVEC_ISA_AVX512 && matvec_isa_supported(isa)) {
        matvec_strided_avx512(out, x, w, C, OC, ld);
        return;
    }
#endif
    for (int o = 0; o < OC; o++) out[o] = dot_lanes(w + (size_t)o * ld, x, C);
}

void matvec_strided(float *out, const float *x, const float *w, int C, int OC, size_t ld) {
    matvec_strided_isa(MATVEC_ISA_AUTO, out, x, w, C, OC, ld);
}

void matvec_t_accumulate_isa(matvec_isa isa, float *out, const float *a, const float *w, int C, int OC,
                             size_t ld) {
    if (isa == MATVEC_ISA_AUTO) isa = matvec_isa_best();
#ifdef MV_X86
    if (isa == MATVEC_ISA_AVX512 && matvec_isa_supported(isa)) {
        matvec_t_accum_avx512(out, a, w, C, OC, ld);
        return;
    }
#endif
    for (int j = 0; j < OC; j++) {
        const float *v = w + (size_t)j * ld;
        for (int c = 0; c < C; c++) out[c] += a[j] * v[c];
    }
}

void matvec_t_accumulate(float *out, const float *a, const float *w, int C, int OC, size_t ld) {
    matvec_t_accumulate_isa(MATVEC_ISA_AUTO, out, a, w, C, OC, ld);
}

static float read_scalar(const float *p, size_t n) {
    float s[8] = { 0 };   /* eight chains, so the adds do not serialise the loads */
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) s[j] += p[i + j];
    for (; i < n; i++) s[0] += p[i];
    return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
}

float matvec_read_sum(const float *p, size_t n) {
    float (*rd)(const float *, size_t) = read_scalar;
#ifdef MV_X86
    matvec_isa isa = matvec_isa_best();
    if (isa == MATVEC_ISA_AVX512) rd = matvec_read_avx512;
    else if (isa == MATVEC_ISA_AVX2) rd = matvec_read_avx2;
#endif
    const size_t chunk = (size_t)1 << 16;   /* 256 KB per step */
    long long nchunks = (long long)((n + chunk - 1) / chunk);
    float total = 0.0f;
#pragma omp parallel for schedule(static) reduction(+ : total)
    for (long long k = 0; k < nchunks; k++) {
        size_t i0 = (size_t)k * chunk, m = n - i0 < chunk ? n - i0 : chunk;
        total += rd(p + i0, m);
    }
    return total;
}

/* ---------------------------------------------------------------- bf16 */

uint16_t bf16_from_float(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40u);   /* NaN: keep it quiet */
    u += 0x7fffu + ((u >> 16) & 1u);   /* round to nearest, ties to even */
    return (uint16_t)(u >> 16);
}

float bf16_to_float(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

void bf16_convert(uint16_t *dst, const float *src, size_t n) {
    long long nn = (long long)n;
#pragma omp parallel for schedule(static) if (n >= 1u << 20)
    for (long long i = 0; i < nn; i++) dst[i] = bf16_from_float(src[i]);
}

static void bf16_rows_scalar(float *out, const float *inp, const uint16_t *weight, int C, int r0, int r1) {
    for (int o = r0; o < r1; o++) {
        const uint16_t *w = weight + (size_t)o * (size_t)C;
        float acc = 0.0f;
        for (int c = 0; c < C; c++) acc += bf16_to_float(w[c]) * inp[c];
        out[o] = acc;
    }
}

static matvec_isa bf16_resolve(matvec_isa isa) {
    if (isa == MATVEC_ISA_AUTO) isa = matvec_bf16_isa_best();
    return matvec_isa_supported(isa) ? isa : MATVEC_ISA_SCALAR;
}

size_t matvec_bf16_prep_floats(int C) {
    return C > 0 ? (size_t)C : 1;
}

/* The kernels' form of x: the AVX-512 kernel reads x permuted even/odd
 * within each 32-block, the AVX512-BF16 one reads x split into bf16 hi and
 * lo (2C bf16 = C floats); the others read x as it is. */
static void bf16_prep(matvec_isa isa, float *prep, const float *x, int C) {
#ifdef MV_X86
    if (isa == MATVEC_ISA_AVX512BF16) matvec_bf16dp_split_x_avx512((uint16_t *)(void *)prep, x, C);
    else if (isa == MATVEC_ISA_AVX512BF16_XR) matvec_bf16dp_round_x_avx512((uint16_t *)(void *)prep, x, C);
    else if (isa == MATVEC_ISA_AVX512) matvec_bf16_permute_x_avx512(prep, x, C);
#else
    (void)isa, (void)prep, (void)x, (void)C;
#endif
}

void matvec_bf16_prep(matvec_isa isa, float *prep, const float *x, int C) {
    bf16_prep(isa == MATVEC_ISA_AUTO ? bf16_resolve(isa) : isa, prep, x, C);
}

static void bf16_rows(matvec_isa isa, float *out, const float *inp, const float *prep, const uint16_t *weight,
                      int C, int r0, int r1) {
#ifdef MV_X86
    if (isa == MATVEC_ISA_AVX512BF16) matvec_bf16dp_rows_avx512(out, (const uint16_t *)(const void *)prep, weight, C, r0, r1);
    else if (isa == MATVEC_ISA_AVX512BF16_XR)
        matvec_bf16dp1_rows_avx512(out, (const uint16_t *)(const void *)prep, weight, C, r0, r1);
    else if (isa == MATVEC_ISA_AVX512) matvec_bf16_rows_avx512(out, inp, prep, weight, C, r0, r1);
    else if (isa == MATVEC_ISA_AVX2) matvec_bf16_rows_avx2(out, inp, weight, C, r0, r1);
    else bf16_rows_scalar(out, inp, weight, C, r0, r1);
#else
    (void)isa, (void)prep;
    bf16_rows_scalar(out, inp, weight, C, r0, r1);
#endif
}

/* x's prepared form lives on the stack up to this width (16 KB), past it
 * on the heap. */
#define MV_PREP_STACK 4096

/* One product set: n products sharing inp, rows split in MV_BLOCK blocks
 * over one parallel region, x prepared once before it. If the heap scratch
 * of a very wide x cannot be allocated, the AVX2 or scalar kernel (which
 * read x as it is) runs instead. */
static void bf16_multi(matvec_isa isa, int n, float *const *out, const uint16_t *const *weight, const int *OC,
                       const float *inp, int C) {
    isa = bf16_resolve(isa);
    float stack_prep[MV_PREP_STACK], *heap = NULL, *prep = stack_prep;
    if ((isa == MATVEC_ISA_AVX512BF16 || isa == MATVEC_ISA_AVX512BF16_XR || isa == MATVEC_ISA_AVX512) &&
        C > MV_PREP_STACK) {
        prep = heap = malloc(matvec_bf16_prep_floats(C) * sizeof(float));
        if (!heap) isa = matvec_isa_supported(MATVEC_ISA_AVX2) ? MATVEC_ISA_AVX2 : MATVEC_ISA_SCALAR;
    }
    bf16_prep(isa, prep, inp, C);
    int first[5];
    int nblocks = block_plan(n, OC, first);
    size_t total = 0;
    for (int i = 0; i < n; i++) total += (size_t)OC[i] * (size_t)C;
    (void)total;   /* read only by the OpenMP if-clause */
#pragma omp parallel for schedule(static) if (total >= 2 * MV_OMP_MIN)
    for (int b = 0; b < nblocks; b++) {
        int r0, r1, i = block_rows(b, first, OC, &r0, &r1);
        bf16_rows(isa, out[i], inp, prep, weight[i], C, r0, r1);
    }
    free(heap);
}

void matvec_bf16_forward_isa(matvec_isa isa, float *out, const float *inp, const uint16_t *weight, int C, int OC) {
    float *outs[1] = { out };
    const uint16_t *ws[1] = { weight };
    bf16_multi(isa, 1, outs, ws, &OC, inp, C);
}

void matvec_bf16_forward(float *out, const float *inp, const uint16_t *weight, int C, int OC) {
    matvec_bf16_forward_isa(MATVEC_ISA_AUTO, out, inp, weight, C, OC);
}

void matvec_bf16_forward_multi(int n, float *const *out, const uint16_t *const *weight, const int *OC,
                               const float *inp, int C) {
    if (n < 1 || n > 4) return;
    bf16_multi(MATVEC_ISA_AUTO, n, out, weight, OC, inp, C);
}

void matvec_bf16_forward_multi_block(matvec_isa isa, int n, float *const *out, const uint16_t *const *weight,
                                     const int *OC, const float *inp, const float *prep, int C, int b) {
    if (n < 1 || n > 4) return;
    int first[5];
    if (b < 0 || b >= block_plan(n, OC, first)) return;
    int r0, r1, i = block_rows(b, first, OC, &r0, &r1);
    bf16_rows(isa == MATVEC_ISA_AUTO ? bf16_resolve(isa) : isa, out[i], inp, prep, weight[i], C, r0, r1);
}
