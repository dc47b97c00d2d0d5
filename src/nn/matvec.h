/*
 * matvec.h — matrix-vector product out = W x for one token, the inner loop
 * of decoding: every weight is read once per token, so the speed limit is
 * memory bandwidth, not FLOPs (a matmul kernel that packs W first would read
 * it twice). SIMD versions (AVX-512, AVX2+FMA) picked at run time, a plain
 * scalar twin kept as the reference; OpenMP splits the rows, each row is
 * reduced by one thread in a fixed order, so the bits do not depend on the
 * thread count.
 */
#ifndef ROPEGPT_NN_MATVEC_H
#define ROPEGPT_NN_MATVEC_H

#include <stddef.h>

typedef enum {
    MATVEC_ISA_AUTO = 0,
    MATVEC_ISA_SCALAR = 1,
    MATVEC_ISA_AVX2 = 2,
    MATVEC_ISA_AVX512 = 3
} matvec_isa;

/* 1 if this CPU and build can run isa (AUTO and SCALAR always). */
int matvec_isa_supported(matvec_isa isa);
/* The ISA AUTO resolves to. */
matvec_isa matvec_isa_best(void);
const char *matvec_isa_name(matvec_isa isa);

/* out[o] = sum_c weight[o*C + c] * inp[c], best ISA, OpenMP over rows.
 * out (OC), inp (C), weight (OC,C). out must not alias inp. */
void matvec_forward(float *out, const float *inp, const float *weight, int C, int OC);

/* Same with an explicit ISA (an unsupported one falls back to scalar). */
void matvec_forward_isa(matvec_isa isa, float *out, const float *inp, const float *weight,
                        int C, int OC);

/* Scalar reference twin: plain c order, float accumulation. */
void matvec_forward_naive(float *out, const float *inp, const float *weight, int C, int OC);

/* Bandwidth probe for benchmarks: streams p[0..n) once (OpenMP over
 * chunks, best ISA) and returns a sum of it, so the reads cannot be
 * optimised away. Deterministic for a fixed thread count only. */
float matvec_read_sum(const float *p, size_t n);

/* ---- internal: per-ISA row kernels, rows [r0, r1), no threading inside ---- */
void matvec_rows_avx2(float *out, const float *inp, const float *weight, int C, int r0, int r1);
void matvec_rows_avx512(float *out, const float *inp, const float *weight, int C, int r0, int r1);
float matvec_read_avx2(const float *p, size_t n);
float matvec_read_avx512(const float *p, size_t n);

#endif
