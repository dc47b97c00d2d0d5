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
#include <stdint.h>

typedef enum {
    MATVEC_ISA_AUTO = 0,
    MATVEC_ISA_SCALAR = 1,
    MATVEC_ISA_AVX2 = 2,
    MATVEC_ISA_AVX512 = 3,
    MATVEC_ISA_AVX512BF16 = 4  /* bf16 products only: AVX512-BF16 dot products; fp32 = AVX512 */
} matvec_isa;

/* 1 if this CPU and build can run isa (AUTO and SCALAR always). */
int matvec_isa_supported(matvec_isa isa);
/* The ISA AUTO resolves to for fp32 products (never AVX512BF16). */
matvec_isa matvec_isa_best(void);
/* The ISA AUTO resolves to for bf16 products. */
matvec_isa matvec_bf16_isa_best(void);
const char *matvec_isa_name(matvec_isa isa);

/* out[o] = sum_c weight[o*C + c] * inp[c], best ISA, OpenMP over rows.
 * out (OC), inp (C), weight (OC,C). out must not alias inp. */
void matvec_forward(float *out, const float *inp, const float *weight, int C, int OC);

/* Same with an explicit ISA (an unsupported one falls back to scalar). */
void matvec_forward_isa(matvec_isa isa, float *out, const float *inp, const float *weight,
                        int C, int OC);

/* Several products sharing one input, in one parallel region (fewer thread
 * barriers per token): out[i] = weight[i] @ inp for i < n (n <= 4), each
 * (OC[i], C). Same bits as n separate matvec_forward calls. */
void matvec_forward_multi(int n, float *const *out, const float *const *weight, const int *OC,
                          const float *inp, int C);

/* ---- bf16 weights (decode at half the bytes per token) ----
 * bf16 = the upper 16 bits of an IEEE float (1 sign, 8 exponent, 7 mantissa
 * bits). Weights are widened to float exactly (a 16-bit shift) and
 * multiplied with the float input in float, so the only error is the
 * rounding of the weights to bf16 (relative 2^-9). Where the CPU has
 * AVX512-BF16, the products use its bf16 dot-product instruction instead,
 * with the input split as x = hi + lo into two bf16 parts (two dot products
 * per weight pair), so x keeps ~16 mantissa bits (error <= 2^-17 |x|). */

/* Round to nearest even; NaN stays NaN (quiet). */
uint16_t bf16_from_float(float f);
float bf16_to_float(uint16_t h);
void bf16_convert(uint16_t *dst, const float *src, size_t n);

/* out (OC) = weight (OC,C) bf16 @ inp (C), best ISA, OpenMP over rows; same
 * row order rules (and thread-count independence) as matvec_forward. */
void matvec_bf16_forward(float *out, const float *inp, const uint16_t *weight, int C, int OC);
void matvec_bf16_forward_isa(matvec_isa isa, float *out, const float *inp, const uint16_t *weight, int C, int OC);
void matvec_bf16_forward_multi(int n, float *const *out, const uint16_t *const *weight, const int *OC,
                               const float *inp, int C);

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
void matvec_bf16_rows_avx2(float *out, const float *inp, const uint16_t *weight, int C, int r0, int r1);
void matvec_bf16_rows_avx512(float *out, const float *inp, const float *xp, const uint16_t *weight, int C,
                             int r0, int r1);
void matvec_bf16_permute_x_avx512(float *xp, const float *x, int C);
/* xhl: (2, C) bf16, x ~ hi + lo (x split into two bf16 parts: the products
 * keep ~16 bits of x). */
void matvec_bf16dp_rows_avx512(float *out, const uint16_t *xhl, const uint16_t *weight, int C, int r0, int r1);
float matvec_read_avx512(const float *p, size_t n);

#endif
