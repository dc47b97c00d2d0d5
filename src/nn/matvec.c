/*
 * matvec.c — run-time ISA choice and threading for matvec_forward, plus the
 * scalar twin. Rows are handed to threads in blocks of MV_BLOCK (a multiple
 * of the kernels' row unroll, and a few KB of weights, so a block is
 * worth a scheduling step); small products stay on one thread.
 */
#include "nn/matvec.h"

#include <stddef.h>

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
#else
    case MATVEC_ISA_AVX2:
    case MATVEC_ISA_AVX512: return 0;
#endif
    }
    return 0;
}

matvec_isa matvec_isa_best(void) {
    if (matvec_isa_supported(MATVEC_ISA_AVX512)) return MATVEC_ISA_AVX512;
    if (matvec_isa_supported(MATVEC_ISA_AVX2)) return MATVEC_ISA_AVX2;
    return MATVEC_ISA_SCALAR;
}

const char *matvec_isa_name(matvec_isa isa) {
    switch (isa) {
    case MATVEC_ISA_AUTO: return "auto";
    case MATVEC_ISA_SCALAR: return "scalar";
    case MATVEC_ISA_AVX2: return "avx2";
    case MATVEC_ISA_AVX512: return "avx512";
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
#pragma omp parallel for schedule(static) if (total >= MV_OMP_MIN)
    for (int o = 0; o < OC; o++) rows_scalar(out, inp, weight, C, o, o + 1);
}

void matvec_forward_isa(matvec_isa isa, float *out, const float *inp, const float *weight,
                        int C, int OC) {
    if (isa == MATVEC_ISA_AUTO) isa = matvec_isa_best();
    if (!matvec_isa_supported(isa)) isa = MATVEC_ISA_SCALAR;
    void (*rows)(float *, const float *, const float *, int, int, int) = rows_scalar;
#ifdef MV_X86
    if (isa == MATVEC_ISA_AVX512) rows = matvec_rows_avx512;
    else if (isa == MATVEC_ISA_AVX2) rows = matvec_rows_avx2;
#endif
    int nblocks = (OC + MV_BLOCK - 1) / MV_BLOCK;
    size_t total = (size_t)OC * (size_t)C;
#pragma omp parallel for schedule(static) if (total >= MV_OMP_MIN)
    for (int b = 0; b < nblocks; b++) {
        int r0 = b * MV_BLOCK;
        int r1 = r0 + MV_BLOCK < OC ? r0 + MV_BLOCK : OC;
        rows(out, inp, weight, C, r0, r1);
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
