/*
 * matmul.h — the linear layer of the GPT trainer (out = inp @ weight^T + bias)
 * and its backward pass. This is where the trainer spends most of its time, so
 * there are several backends behind one contract: a plain scalar reference
 * (the *_naive twins), our own packed, cache-blocked SIMD kernels (AVX-512 /
 * AVX2 / portable C, picked at run time from the CPU), and OpenBLAS when the
 * build found it (ROPEGPT_HAVE_BLAS). All backends agree within float rounding.
 *
 * Determinism: with the naive and own-kernel backends every output element is
 * reduced by exactly one thread in a fixed k order, so results are the same
 * bits for any thread count. The BLAS backend is deterministic for a fixed
 * thread count as far as OpenBLAS is; it is never the default.
 *
 * Backend choice is explicit: matmul_forward/matmul_backward use the default
 * (own kernels); callers that want another backend, or want the packing
 * buffers kept between calls, pass a matmul_ctx to the *_ctx variants.
 *
 * Scratch: the own kernels pack operands into per-thread buffers (KC x NC +
 * MC x KC floats, about 1.4 MB per OpenMP thread with AVX-512). A matmul_ctx
 * allocates them at its first call, grows them if the thread count grows, and
 * keeps them; the plain functions malloc and free them per call, which
 * measured no slower (18 us per 2-MFLOP call either way: glibc hands the same
 * block back). No other allocation happens in a call.
 */
#ifndef ROPEGPT_NN_MATMUL_H
#define ROPEGPT_NN_MATMUL_H

#include <stddef.h>
#include <stdint.h>

#include "nn/matmul_tune.h"

typedef enum {
    MATMUL_OWN = 0,    /* own packed SIMD kernels, best ISA this CPU has (default) */
    MATMUL_NAIVE = 1,  /* the scalar reference twins */
    MATMUL_BLAS = 2    /* cblas_sgemm; falls back to MATMUL_OWN without ROPEGPT_HAVE_BLAS */
} matmul_backend;

/* Which micro-kernel MATMUL_OWN runs. AUTO = best the CPU supports. */
typedef enum {
    MATMUL_ISA_AUTO = 0,
    MATMUL_ISA_SCALAR = 1,  /* portable C micro-kernel (same blocking) */
    MATMUL_ISA_AVX2 = 2,
    MATMUL_ISA_AVX512 = 3
} matmul_isa;

/* Which AVX-512 kernel variant MATMUL_OWN runs (the same bits either way):
 * 8: the 8 x 32 kernel, reading A in place where its rows are contiguous
 * (dweight still uses the 12 x 32 one); 12: the 12 x 32 kernel with
 * embedded broadcasts for every product, A always packed (shared between
 * threads where it fits); 12R: the same with register broadcasts; AUTO:
 * timed per shape as the calls run (matmul_tune.h), among these three and,
 * for a backward, the 8-row kernel with 12R's dweight, each in both loop
 * orders unless matmul_order forces one; a value outside the enum counts
 * as AUTO (harmless: the bits are the same). Other ISAs have one. */
typedef enum {
    MATMUL_KERNEL_AUTO = 0,
    MATMUL_KERNEL_8 = 1,
    MATMUL_KERNEL_12 = 2,
    MATMUL_KERNEL_12R = 3
} matmul_kernel;

/* The own backend's loop order around the AVX-512 kernels (the same bits
 * either way): AB holds an A micro-panel in L1 and streams B's panels past
 * it, BA holds a B panel and streams A's (the BLIS order). AUTO: with
 * MATMUL_KERNEL_AUTO timed together with the kernel; with a kernel forced, AB. */
typedef enum {
    MATMUL_ORDER_AUTO = 0,
    MATMUL_ORDER_AB = 1,
    MATMUL_ORDER_BA = 2
} matmul_order;

/* Backend choice plus packing scratch and kernel timings kept between
 * calls. Fill with matmul_ctx_init, release with matmul_ctx_free. One
 * context must not be used by two calls at the same time (the calls
 * themselves run OpenMP inside). */
typedef struct {
    matmul_backend backend;
    matmul_isa isa;
    matmul_kernel kernel;  /* AUTO after init */
    matmul_order order;    /* AUTO after init */
    float *scratch;        /* owned; grown on demand, 64-byte aligned */
    size_t scratch_floats; /* capacity of scratch */
    matmul_tuner tune;     /* the timings of AUTO's variants */
} matmul_ctx;

void matmul_ctx_init(matmul_ctx *ctx, matmul_backend backend);
void matmul_ctx_free(matmul_ctx *ctx);

const char *matmul_backend_name(matmul_backend b);
const char *matmul_isa_name(matmul_isa isa);
const char *matmul_kernel_name(matmul_kernel k);   /* "auto", "8", "12", "12r" */
const char *matmul_order_name(matmul_order o);     /* "auto", "ab", "ba" */
int matmul_isa_supported(matmul_isa isa);  /* 1 if this CPU and build can run it */
matmul_isa matmul_isa_best(void);
int matmul_have_blas(void);                /* 1 if built with ROPEGPT_HAVE_BLAS */

/* out = inp @ weight^T + bias (out is overwritten). bias may be NULL.
 * Default backend (MATMUL_OWN); scratch allocated per call (falls back to the
 * naive path if that allocation fails). */
void matmul_forward(float *out /*(N,OC)*/, const float *inp /*(N,C)*/, const float *weight /*(OC,C)*/,
                    const float *bias /*(OC) or NULL*/, int N, int C, int OC);
/* ACCUMULATES: dinp += dout @ weight; dweight += dout^T @ inp; dbias += sum_n dout.
 * Any of dinp, dweight, dbias may be NULL (that gradient is skipped). */
void matmul_backward(float *dinp /*(N,C) or NULL*/, float *dweight /*(OC,C) or NULL*/,
                     float *dbias /*(OC) or NULL*/, const float *dout /*(N,OC)*/,
                     const float *inp /*(N,C)*/, const float *weight /*(OC,C)*/, int N, int C, int OC);

/* Same contracts, backend and scratch from ctx (ctx NULL = default backend). */
void matmul_forward_ctx(matmul_ctx *ctx, float *out /*(N,OC)*/, const float *inp /*(N,C)*/,
                        const float *weight /*(OC,C)*/, const float *bias /*(OC) or NULL*/,
                        int N, int C, int OC);
void matmul_backward_ctx(matmul_ctx *ctx, float *dinp /*(N,C) or NULL*/, float *dweight /*(OC,C) or NULL*/,
                         float *dbias /*(OC) or NULL*/, const float *dout /*(N,OC)*/,
                         const float *inp /*(N,C)*/, const float *weight /*(OC,C)*/, int N, int C, int OC);

/* matmul_backward_ctx with chosen outputs OVERWRITTEN instead of accumulated:
 * MATMUL_SET_DINP: dinp = dout @ weight; MATMUL_SET_DPARAMS: dweight =
 * dout^T @ inp and dbias = sum_n dout. Saves zeroing those buffers first (and
 * reading them back); bit-identical to zeroing then accumulating, but for the
 * sign of exact zeros. flags 0 = matmul_backward_ctx. */
enum { MATMUL_SET_DINP = 1, MATMUL_SET_DPARAMS = 2 };
void matmul_backward_flags_ctx(matmul_ctx *ctx, int flags, float *dinp /*(N,C) or NULL*/,
                               float *dweight /*(OC,C) or NULL*/, float *dbias /*(OC) or NULL*/,
                               const float *dout /*(N,OC)*/, const float *inp /*(N,C)*/,
                               const float *weight /*(OC,C)*/, int N, int C, int OC);

/* matmul_backward_flags_ctx with MATMUL_SET_DINP implied and dinp then
 * multiplied elementwise by dinp_mul (N,C): dinp = (dout @ weight) * dinp_mul,
 * a layer's derivative applied while the product's tiles are in cache (the
 * GPT's GELU backward: dinp_mul = gelu'(x), saved by the forward). The same
 * bits as the product followed by a separate multiply. */
void matmul_backward_mul_ctx(matmul_ctx *ctx, int flags, float *dinp /*(N,C)*/, const float *dinp_mul /*(N,C)*/,
                             float *dweight /*(OC,C) or NULL*/, float *dbias /*(OC) or NULL*/,
                             const float *dout /*(N,OC)*/, const float *inp /*(N,C)*/,
                             const float *weight /*(OC,C)*/, int N, int C, int OC);

/* Weights packed once for repeated forwards with the same matrix (batched
 * generation: every prefill multiplies by the same layer weights): the B
 * operand of out = inp @ weight^T stored in the panel layout the micro-kernel
 * reads, so a forward packs nothing but the few input rows it does not read
 * in place. The layout belongs to one ISA (the one the ctx resolves to at
 * pack time), which the forward then uses. The packed copy does not follow
 * later changes to weight. */
typedef struct {
    float *data;          /* owned, 64-byte aligned inside mem */
    void *mem;
    const float *weight;  /* borrowed (OC,C): for the naive / BLAS backends */
    int C, OC;
    matmul_isa isa;       /* resolved ISA of the layout */
} matmul_packed;

/* Packs weight (OC,C) with ctx's ISA (OpenMP inside). 0 ok, -1 bad sizes or
 * out of memory (p left empty). matmul_packed_free releases it (an empty or
 * zeroed p is fine). */
int matmul_pack_weight(matmul_ctx *ctx, matmul_packed *p, const float *weight, int C, int OC);
void matmul_packed_free(matmul_packed *p);
/* out (N,OC) = inp (N,C) @ weight^T + bias, from p: the same bits as
 * matmul_forward_ctx with the own backend and p's ISA (same tiles, same k
 * order). Rows go to the threads in small chunks handed out dynamically. */
void matmul_forward_packed(matmul_ctx *ctx, float *out /*(N,OC)*/, const float *inp /*(N,C)*/,
                           const matmul_packed *p, const float *bias /*(OC) or NULL*/, int N);

/* Scalar reference twins (OpenMP over output rows, float accumulation in
 * plain k order). Same contracts as above. */
void matmul_forward_naive(float *out /*(N,OC)*/, const float *inp /*(N,C)*/, const float *weight /*(OC,C)*/,
                          const float *bias /*(OC) or NULL*/, int N, int C, int OC);
void matmul_backward_naive(float *dinp /*(N,C) or NULL*/, float *dweight /*(OC,C) or NULL*/,
                           float *dbias /*(OC) or NULL*/, const float *dout /*(N,OC)*/,
                           const float *inp /*(N,C)*/, const float *weight /*(OC,C)*/, int N, int C, int OC);

/* ---- internal: shared between matmul.c, gemm.c and the per-ISA kernel files ----
 * A micro-kernel computes one MR x NR tile: acc = sum_{k<kc} a[k*a_ks+i] * b[k*b_ks+j]
 * in plain k order from zero, then writes it to c (row stride ldc) per mode:
 * SET c = acc, ADD c += acc, SET_BIAS c = acc + bias[j]. a and b are packed
 * panels (a_ks = MR, b_ks = NR, zero-padded, 64-byte aligned) or, where the
 * source already has that shape, the source itself (any stride). Callers
 * pass full tiles only. */
enum { MATMUL_UKR_SET = 0, MATMUL_UKR_ADD = 1, MATMUL_UKR_SET_BIAS = 2 };
typedef void (*matmul_ukr_fn)(size_t kc, const float *a, size_t a_ks, const float *b, size_t b_ks,
                              float *c, size_t ldc, int mode, const float *bias);
#define MATMUL_MR_AVX512 8
#define MATMUL_NR_AVX512 32
#define MATMUL_MR_AVX2 6
#define MATMUL_NR_AVX2 16
void matmul_ukr_avx512(size_t kc, const float *a, size_t a_ks, const float *b, size_t b_ks,
                       float *c, size_t ldc, int mode, const float *bias);
/* AVX-512 12 x 32 kernel, packed A only (each A value an embedded
 * broadcast). Same per-element arithmetic as the 8 x 32 kernels. */
#define MATMUL_MR_AVX512_12 12
void matmul_ukr_avx512_12(size_t kc, const float *a, size_t a_ks, const float *b, size_t b_ks,
                          float *c, size_t ldc, int mode, const float *bias);
/* The same tile with each A value broadcast into a register (faster on AMD
 * Zen 5, slower where a core is short of issue slots). Same bits. */
void matmul_ukr_avx512_12r(size_t kc, const float *a, size_t a_ks, const float *b, size_t b_ks,
                           float *c, size_t ldc, int mode, const float *bias);
/* AVX-512 4 x 32 kernel (packed A, any a_ks): a panel's last rows. */
void matmul_ukr_avx512_4(size_t kc, const float *a, size_t a_ks, const float *b, size_t b_ks,
                         float *c, size_t ldc, int mode, const float *bias);
/* AVX-512 8 x 32 kernel reading A in place from 8 rows: a(i,k) = a[i*lda + k]. */
void matmul_ukr_avx512_rowa(size_t kc, const float *a, size_t lda, const float *b, size_t b_ks,
                            float *c, size_t ldc, int mode, const float *bias);
void matmul_ukr_avx2(size_t kc, const float *a, size_t a_ks, const float *b, size_t b_ks,
                     float *c, size_t ldc, int mode, const float *bias);
/* Transposing packers (AVX-512): dst[k*dst_stride + r] = src[r*ld + k], r < 16
 * (rows past `rows` zero); t8x2 writes two MR=8 A panels (rows 8..15 to
 * dst + kc*8). */
void matmul_pack_t16_avx512(float *dst, size_t dst_stride, const float *src, size_t ld, int rows,
                            int kc);
void matmul_pack_t8x2_avx512(float *dst, const float *src, size_t ld, int rows, int kc);
/* One 12-row A panel: dst[k*12 + r] = src[r*ld + k], r < rows <= 12 (rest zero). */
void matmul_pack_t12_avx512(float *dst, const float *src, size_t ld, int rows, int kc);
/* Copying packer (AVX-512): dst[k*width + j] = src[k*ld + j] for j < valid,
 * zero up to width; width 32 (a B panel, dst 64-byte aligned), 12 (one A
 * panel, valid <= 12) or 8 (A panels: valid may be up to 16, rows 8..15 going
 * to the next panel at dst + kc*8, which is written only when valid > 8). */
void matmul_pack_n_avx512(float *dst, const float *src, size_t ld, int width, int valid, int kc);

/* Peak FMA probe (benchmarks): returns a value only to keep the work alive;
 * does iters * MATMUL_PEAK_CHAINS * (16 or 8 lanes) * 2 flops. */
#define MATMUL_PEAK_CHAINS 16
float matmul_fma_loop_avx512(int64_t iters);
float matmul_fma_loop_avx2(int64_t iters);
/* This machine's all-thread FP32 FMA peak in GFLOP/s, measured now with the
 * loops above (0 where they cannot run); for benchmarks' peak fractions. */
double matmul_peak_gflops(void);

#endif
