/*
 * gemm.h — internal: the own backend's engine behind matmul.c. Packed,
 * cache-blocked, register-tiled products (Goto & van de Geijn 2008) of the
 * linear layer's three shapes, cut between OpenMP threads so that every
 * output element is summed by one thread in a fixed k order: the bits do
 * not depend on the thread count. matmul.c chooses the backend and the
 * kernel, owns the scratch and the bias and flag rules; this file only
 * multiplies. Include only from src/nn/gemm.c and src/nn/matmul*.c.
 */
#ifndef ROPEGPT_NN_GEMM_H
#define ROPEGPT_NN_GEMM_H

#include <stddef.h>

#include "nn/matmul.h"

/* x86-64 with GCC or clang: the SIMD kernels exist and the CPU is asked
 * which of them it can run (matmul.c); elsewhere only the portable one. */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define MATMUL_X86 1
#endif

/* A micro-kernel and the panels it takes. */
typedef struct {
    int mr, nr;
    matmul_ukr_fn fn;
    int simd_pack;         /* 1: AVX-512 packers (nr 32; mr 8, or 12 for A columns) */
    int rowa;              /* 1: has the in-place A variant (matmul_ukr_avx512_rowa) */
    matmul_ukr_fn rows4;   /* a 4-row kernel on the same packed panels, or NULL */
    int b_in_l1;           /* loop order: 0 holds an A micro-panel in L1 and streams the
                            * B block's panels past it; 1 holds a B micro-panel and
                            * streams the A panels (the BLIS order). Same bits. */
} ukr_desc;

/* The 8-row kernel of isa (AUTO or unsupported: the best this CPU has):
 * 8 x 32 AVX-512, 6 x 16 AVX2 or the portable 4 x 16. */
ukr_desc gemm_kernel_8(matmul_isa isa);
/* The 12 x 32 AVX-512 kernel (packed A only), or gemm_kernel_8's where the
 * ISA has no such variant (then .fn is the same). */
ukr_desc gemm_kernel_12(matmul_isa isa);
/* The same tile with register broadcasts (matmul_ukr_avx512_12r), or
 * gemm_kernel_12's where the ISA has none. */
ukr_desc gemm_kernel_12r(matmul_isa isa);

/* Floats of scratch every call below needs with kernel u's panel width at
 * the current OpenMP thread count (per-thread packing buffers and two
 * shared areas). Any kernel of one ISA needs the same. */
size_t gemm_scratch_floats(const ukr_desc *u);

/* out (N,OC) = inp (N,C) @ weight (OC,C)^T + bias (or none); C may be 0
 * (out = bias, or zero). N, OC > 0. */
void gemm_forward(const ukr_desc *u, float *out, const float *inp, const float *weight, const float *bias, int N,
                  int C, int OC, float *scratch);

/* Both products of the backward, in one parallel region (the threads' idle
 * tails at the end of one are filled with the other's chunks):
 *   dinp (N,C) (= if set_dinp, else +=) dout (N,OC) @ weight (OC,C), on kernel
 *     ud, then times dinp_mul elementwise (if non-NULL, set_dinp only) tile
 *     by tile while still in cache;
 *   dweight (OC,C) (= if set_dparams, else +=) dout^T @ inp (N,C), on the
 *     12-row kernel uw; with dbias non-NULL (set_dparams and OC > 1 only)
 *     dbias[o] = sum_n dout[n,o] is summed from the A panels it packs, in
 *     n order: the bits of a separate pass.
 * dinp or dweight may be NULL. N, C, OC > 0. */
void gemm_backward(const ukr_desc *ud, const ukr_desc *uw, float *dinp, const float *dinp_mul, int set_dinp,
                   float *dweight, float *dbias, int set_dparams, const float *dout, const float *inp,
                   const float *weight, int N, int C, int OC, float *scratch);

/* A weight (OC,C) packed once as the forward's B operand, for repeated
 * forwards (generation): its size in floats, the packing into dst
 * (64-byte aligned), and the forward from it, with the same bits as
 * gemm_forward on the same kernel. */
size_t gemm_packed_floats(const ukr_desc *u, int C, int OC);
void gemm_pack_weight(const ukr_desc *u, float *dst, const float *weight, int C, int OC);
void gemm_forward_packed(const ukr_desc *u, float *out, const float *inp, const float *packed, const float *bias,
                         int N, int C, int OC, float *scratch);

/* p rounded up to the next 64-byte boundary. */
float *gemm_align64(float *p);

#endif
