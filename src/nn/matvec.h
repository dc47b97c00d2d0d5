/*
 * matvec.h — matrix-vector product out = W x for one token, the inner loop
 * of decoding: every weight is read once per token, so the speed limit is
 * memory bandwidth, not FLOPs (a matmul kernel that packs W first would read
 * it twice). SIMD versions (AVX-512, AVX2+FMA) picked at run time, a plain
 * scalar twin kept as the reference; OpenMP splits the rows, each row is
 * reduced by one thread in a fixed order, so the bits do not depend on the
 * thread count. Also here: a block form for callers that keep their own
 * parallel region (the Llama decode step), bf16 weights, and the two
 * products of attention over a KV cache (scores against strided key rows,
 * the weighted sum of value rows).
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
    MATVEC_ISA_AVX512BF16 = 4,  /* bf16 products only: AVX512-BF16 dot products, x = bf16 hi + lo; fp32 = AVX512 */
    MATVEC_ISA_AVX512BF16_XR = 5 /* the same with x rounded to bf16: one dot product per 32 weights */
} matvec_isa;

/* 1 if this CPU and build can run isa (AUTO and SCALAR always). */
int matvec_isa_supported(matvec_isa isa);
/* The ISA AUTO resolves to for fp32 products (never AVX512BF16). */
matvec_isa matvec_isa_best(void);
/* The ISA AUTO resolves to for bf16 products (AVX512, not AVX512BF16: see
 * matvec.c for the measurement). */
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

/* For a caller already inside a parallel region (a decode step run as one
 * region, with barriers instead of a fork and join per product): the rows
 * of a product set are cut into fixed blocks of 16 rows (the last
 * block of each product may be short), numbered over the n products in
 * order; matvec_forward_multi_block computes block b alone, with no
 * threading inside. The blocks may run on any threads in any order: every
 * block of a set gives matvec_forward_multi's bits (a row's arithmetic does
 * not depend on who computes it), so a dynamic schedule keeps the results
 * independent of the thread count (given the same isa). isa: AUTO (resolved
 * per call, a few CPUID-table reads) or, resolved once by the caller,
 * matvec_isa_best()'s answer or another ISA matvec_isa_supported() accepts
 * (not checked here). */
int matvec_multi_blocks(int n, const int *OC);   /* block count (0 if n is not in 1..4) */
void matvec_forward_multi_block(matvec_isa isa, int n, float *const *out, const float *const *weight,
                                const int *OC, const float *inp, int C, int b);
/* The rows [r0, r1) of block b of a single product of OC rows (r0 == r1
 * past the end). */
void matvec_block_rows(int OC, int b, int *r0, int *r1);
/* Blocks per scheduling step for a dynamic schedule of nblocks blocks of
 * width C (elem_bytes per weight) over nthreads threads: ~64 KB of weights
 * a step (enough work to hide the step's cost) but at least four steps per
 * thread (so the threads finish together). */
int matvec_block_chunk(int C, size_t elem_bytes, int nblocks, int nthreads);

/* ---- bf16 weights (decode at half the bytes per token) ----
 * bf16 = the upper 16 bits of an IEEE float (1 sign, 8 exponent, 7 mantissa
 * bits). Weights are widened to float exactly (a 16-bit shift) and
 * multiplied with the float input in float, so the only error is the
 * rounding of the weights to bf16 (relative 2^-9). Where the CPU has
 * AVX512-BF16 (ISA MATVEC_ISA_AVX512BF16), the products can use its bf16
 * dot-product instruction instead, with the input split as x = hi + lo into
 * two bf16 parts (two dot products per weight pair), so x keeps ~16 mantissa
 * bits (error <= 2^-17 |x|). AUTO picks the one matvec_bf16_isa_best names. */

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

/* The block form (see matvec_forward_multi_block; isa as there, from
 * matvec_bf16_isa_best()). prep holds x in the form that ISA's kernel reads,
 * written by matvec_bf16_prep(isa, prep, inp, C) after inp last changed;
 * prep has matvec_bf16_prep_floats(C) floats (each thread may keep its own
 * copy, so no barrier is needed after it). */
size_t matvec_bf16_prep_floats(int C);
void matvec_bf16_prep(matvec_isa isa, float *prep, const float *inp, int C);
void matvec_bf16_forward_multi_block(matvec_isa isa, int n, float *const *out, const uint16_t *const *weight,
                                     const int *OC, const float *inp, const float *prep, int C, int b);

/* ---- attention over a KV cache (one thread, no OpenMP inside) ----
 * Keys and values are rows of C = head-size floats, ld floats apart (the
 * cache's kv_dim), so a head's scores are a matvec over strided rows and
 * its output a transposed one. AVX-512 where the CPU has it, else a
 * portable loop; each ISA sums in its own fixed order (same bits for the
 * same ISA and inputs, whatever the row count). */

/* out[j] = sum_c w[j ld + c] x[c], j < OC. */
void matvec_strided(float *out, const float *x, const float *w, int C, int OC, size_t ld);
/* out[c] += sum_j a[j] w[j ld + c], c < C (accumulates into out). */
void matvec_t_accumulate(float *out, const float *a, const float *w, int C, int OC, size_t ld);
/* The same with an explicit ISA: AVX512, or the portable loop for any other
 * (SCALAR, AVX2, AVX512BF16, or AVX512 where the CPU lacks it). */
void matvec_strided_isa(matvec_isa isa, float *out, const float *x, const float *w, int C, int OC, size_t ld);
void matvec_t_accumulate_isa(matvec_isa isa, float *out, const float *a, const float *w, int C, int OC,
                             size_t ld);

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
void matvec_bf16dp_split_x_avx512(uint16_t *xhl, const float *x, int C);
void matvec_bf16dp_rows_avx512(float *out, const uint16_t *xhl, const uint16_t *weight, int C, int r0, int r1);
/* xh (C bf16) = x rounded to nearest even; rows from one dot product each. */
void matvec_bf16dp_round_x_avx512(uint16_t *xh, const float *x, int C);
void matvec_bf16dp1_rows_avx512(float *out, const uint16_t *xh, const uint16_t *weight, int C, int r0, int r1);
float matvec_read_avx512(const float *p, size_t n);
void matvec_strided_avx512(float *out, const float *x, const float *w, int C, int OC, size_t ld);
void matvec_t_accum_avx512(float *out, const float *a, const float *w, int C, int OC, size_t ld);

#endif
