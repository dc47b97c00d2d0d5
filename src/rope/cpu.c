/*
 * cpu.c — picks a rotation kernel at run time, so one librope.so runs on any
 * x86-64 (and on other CPUs through the scalar kernel).
 *
 * __builtin_cpu_supports (gcc's libgcc and clang's compiler-rt) reports AVX2
 * and AVX-512 features only when the OS also saves the wider registers (they
 * read XCR0 with xgetbv), so no separate OS check is needed here. Each SIMD
 * file is compiled with a set of -m flags (see the Makefile); the compiler may
 * use any instruction those flags allow, so a kernel counts as supported only
 * when the CPU has all of them, not just the ones its intrinsics name.
 */
#include "rope/kernels.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define ROPE_X86 1
#endif

const char *rope_kernel_name(rope_kernel k) {
    switch (k) {
    case ROPE_KERNEL_AUTO: return "auto";
    case ROPE_KERNEL_SCALAR: return "scalar";
    case ROPE_KERNEL_AVX2: return "avx2";
    case ROPE_KERNEL_AVX512: return "avx512";
    }
    return "unknown";
}

int rope_kernel_supported(rope_kernel k) {
    switch (k) {
    case ROPE_KERNEL_AUTO:
    case ROPE_KERNEL_SCALAR: return 1;
#ifdef ROPE_X86
    case ROPE_KERNEL_AVX2:
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case ROPE_KERNEL_AVX512:
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
               __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    case ROPE_KERNEL_AVX2:
    case ROPE_KERNEL_AVX512: return 0;
#endif
    }
    return 0;
}

rope_kernel rope_kernel_best(void) {
    if (rope_kernel_supported(ROPE_KERNEL_AVX512)) return ROPE_KERNEL_AVX512;
    if (rope_kernel_supported(ROPE_KERNEL_AVX2)) return ROPE_KERNEL_AVX2;
    return ROPE_KERNEL_SCALAR;
}

rope_token_fn rope_kernel_get(rope_kernel k, rope_layout layout) {
    if (k == ROPE_KERNEL_AUTO || !rope_kernel_supported(k)) return 0;
    int half = layout == ROPE_LAYOUT_HALF;
    switch (k) {
    case ROPE_KERNEL_SCALAR: return half ? rope_token_half_scalar : rope_token_interleaved_scalar;
#ifdef ROPE_X86
    case ROPE_KERNEL_AVX2: return half ? rope_token_half_avx2 : rope_token_interleaved_avx2;
    case ROPE_KERNEL_AVX512: return half ? rope_token_half_avx512 : rope_token_interleaved_avx512;
#endif
    default: return 0;
    }
}
