/*
 * matvec.c — run-time ISA choice and threading for matvec_forward, plus the
 * scalar twin. Rows are handed to threads in blocks of MV_BLOCK (a multiple
 * of the kernels' row unroll, and a few KB of weights, so a block is
 * worth a scheduling step); small products stay on one thread.
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
        return matvec_isa_supported(MATVEC_ISA_AVX512) && __builtin_cpu_supports("avx512bf16");
#else
    case MATVEC_ISA_AVX2:
    case MATVEC_ISA_AVX512:
    case MATVEC_ISA_AVX512BF16: return 0;
#endif
    }
    return 0;
}

matvec_isa matvec_isa_best(void) {
    if (matvec_isa_supported(MATVEC_ISA_AVX512)) return MATVEC_ISA_AVX512;
    if (matvec_isa_supported(MATVEC_ISA_AVX2)) return MATVEC_ISA_AVX2;
    return MATVEC_ISA_SCALAR;
}

matvec_isa matvec_bf16_isa_best(void) {
    if (matvec_isa_supported(MATVEC_ISA_AVX512BF16)) return MATVEC_ISA_AVX512BF16;
    return matvec_isa_best();
}

const char *matvec_isa_name(matvec_isa isa) {
    switch (isa) {
    case MATVEC_ISA_AUTO: return "auto";
    case MATVEC_ISA_SCALAR: return "scalar";
    case MATVEC_ISA_AVX2: return "avx2";
    case MATVEC_ISA_AVX512: return "avx512";
    case MATVEC_ISA_AVX512BF16: return "avx512bf16";
    }
    return "unknown";
}

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
    if (isa == MATVEC_ISA_AUTO || isa == MATVEC_ISA_AVX512BF16) isa = matvec_isa_best();
    if (!matvec_isa_supported(isa)) isa = MATVEC_ISA_SCALAR;
    void (*rows)(float *, const float *, const float *, int, int, int) = rows_scalar;
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

void matvec_forward_multi(int n, float *const *out, const float *const *weight, const int *OC,
                          const float *inp, int C) {
    if (n < 1 || n > 4) return;
    void (*rows)(float *, const float *, const float *, int, int, int) = rows_scalar;
#ifdef MV_X86
    matvec_isa isa = matvec_isa_best();
    if (isa == MATVEC_ISA_AVX512) rows = matvec_rows_avx512;
    else if (isa == MATVEC_ISA_AVX2) rows = matvec_rows_avx2;
#endif
    /* One block index space over the n products, in order. */
    int first[5] = { 0 };
    size_t total = 0;
    for (int i = 0; i < n; i++) {
        first[i + 1] = first[i] + (OC[i] + MV_BLOCK - 1) / MV_BLOCK;
        total += (size_t)OC[i] * (size_t)C;
    }
    int nblocks = first[n];
    (void)total;   /* read only by the OpenMP if-clause */
#pragma omp parallel for schedule(static) if (total >= MV_OMP_MIN)
    for (int b = 0; b < nblocks; b++) {
        int i = 0;
        while (b >= first[i + 1]) i++;
        int r0 = (b - first[i]) * MV_BLOCK;
        int r1 = r0 + MV_BLOCK < OC[i] ? r0 + MV_BLOCK : OC[i];
        rows(out[i], inp, weight[i], C, r0, r1);
    }
}

void matvec_forward(float *out, const float *inp, const float *weight, int C, int OC) {
    matvec_forward_isa(MATVEC_ISA_AUTO, out, inp, weight, C, OC);
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

/* One product set: n products sharing inp, rows split in MV_BLOCK blocks
 * over one parallel region. The AVX-512 kernel reads x permuted even/odd
 * (see matvec_avx512.c), prepared once here; if that scratch cannot be
 * allocated the AVX2 or scalar kernel runs instead. */
static void bf16_multi(matvec_isa isa, int n, float *const *out, const uint16_t *const *weight, const int *OC,
                       const float *inp, int C) {
    if (isa == MATVEC_ISA_AUTO) isa = matvec_bf16_isa_best();
    if (!matvec_isa_supported(isa)) isa = MATVEC_ISA_SCALAR;
    float *xp = NULL;
    uint16_t *xhl = NULL;
#ifdef MV_X86
    if (isa == MATVEC_ISA_AVX512BF16) {
        xhl = malloc((size_t)2 * (size_t)C * sizeof(uint16_t));
        if (xhl) {
            for (int c = 0; c < C; c++) {
                xhl[c] = bf16_from_float(inp[c]);
                xhl[(size_t)C + c] = bf16_from_float(inp[c] - bf16_to_float(xhl[c]));
            }
        } else {
            isa = MATVEC_ISA_AVX512;
        }
    }
    if (isa == MATVEC_ISA_AVX512) {
        xp = malloc((size_t)C * sizeof(float));
        if (xp) matvec_bf16_permute_x_avx512(xp, inp, C);
        else isa = matvec_isa_supported(MATVEC_ISA_AVX2) ? MATVEC_ISA_AVX2 : MATVEC_ISA_SCALAR;
    }
#endif
    int first[5] = { 0 };
    size_t total = 0;
    for (int i = 0; i < n; i++) {
        first[i + 1] = first[i] + (OC[i] + MV_BLOCK - 1) / MV_BLOCK;
        total += (size_t)OC[i] * (size_t)C;
    }
    int nblocks = first[n];
    (void)total;   /* read only by the OpenMP if-clause */
#pragma omp parallel for schedule(static) if (total >= 2 * MV_OMP_MIN)
    for (int b = 0; b < nblocks; b++) {
        int i = 0;
        while (b >= first[i + 1]) i++;
        int r0 = (b - first[i]) * MV_BLOCK;
        int r1 = r0 + MV_BLOCK < OC[i] ? r0 + MV_BLOCK : OC[i];
#ifdef MV_X86
        if (isa == MATVEC_ISA_AVX512BF16) matvec_bf16dp_rows_avx512(out[i], xhl, weight[i], C, r0, r1);
        else if (isa == MATVEC_ISA_AVX512) matvec_bf16_rows_avx512(out[i], inp, xp, weight[i], C, r0, r1);
        else if (isa == MATVEC_ISA_AVX2) matvec_bf16_rows_avx2(out[i], inp, weight[i], C, r0, r1);
        else bf16_rows_scalar(out[i], inp, weight[i], C, r0, r1);
#else
        bf16_rows_scalar(out[i], inp, weight[i], C, r0, r1);
#endif
    }
    free(xp);
    free(xhl);
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
