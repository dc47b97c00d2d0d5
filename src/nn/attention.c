/*
 * attention.c — causal multi-head attention forward and backward.
 * Forward: each (b,t,h) row is independent, so OpenMP splits those rows and
 * every output element is written by one thread. Backward: dk and dv of a
 * key j collect contributions from every query t >= j, so the split is by
 * (b,h) — each task owns its head's slice of dq, dk, dv for one batch row and
 * sums in t, j order — which keeps the bits independent of the thread count.
 * Softmax subtracts the row max before exp so no score overflows.
 * The functions here are the scalar twins; attention_forward/_backward pick
 * the AVX-512 kernels of attention_avx512.c when the CPU has them and the
 * shape fits their stack buffers (they split both directions by (b,h), so
 * they too give the same bits for any thread count).
 */
#include "nn/attention.h"

#include <math.h>
#include <stddef.h>

#include "nn/attention_simd.h"

int attention_uses_avx512(void) {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
           __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
           __builtin_cpu_supports("fma");
#else
    return 0;
#endif
}

void attention_forward(float *out, float *att, const float *qkv, const float *alibi_slopes,
                       int B, int T, int C, int NH) {
#if defined(__x86_64__)
    if (attention_uses_avx512() && attention_avx512_fits(C / NH)) {
        attention_forward_avx512(out, att, qkv, alibi_slopes, B, T, C, NH);
        return;
    }
#endif
    attention_forward_scalar(out, att, qkv, alibi_slopes, B, T, C, NH);
}

void attention_backward(float *dqkv, const float *dout, const float *qkv, const float *att,
                        const float *out, const float *alibi_slopes, int B, int T, int C, int NH) {
#if defined(__x86_64__)
    if (attention_uses_avx512() && attention_avx512_fits(C / NH)) {
        attention_backward_avx512(dqkv, dout, qkv, att, out, B, T, C, NH);
        return;
    }
#endif
    attention_backward_scalar(dqkv, dout, qkv, att, out, alibi_slopes, B, T, C, NH);
}

/* Scratch for one query row's dL/d(prob) on the stack: rows up to this many
 * keys keep it; longer rows recompute the tail (one extra dot per key past
 * the chunk) rather than allocate. 4 KiB of stack per thread. */
#define ATT_DATT_CHUNK 1024

void attention_forward_scalar(float *out, float *att, const float *qkv, const float *alibi_slopes,
                              int B, int T, int C, int NH) {
    const int HS = C / NH;
    const size_t C3 = 3 * (size_t)C;
    const float scale = 1.0f / sqrtf((float)HS);
    const long long n_rows = (long long)B * T * NH;
#ifdef _OPENMP
#pragma omp parallel for schedule(dynamic, 8) if (n_rows * T >= 4096)
#endif
    for (long long r = 0; r < n_rows; r++) {
        /* r enumerates (b, t, h) with h fastest */
        int h = (int)(r % NH);
        int t = (int)((r / NH) % T);
        int b = (int)(r / ((long long)NH * T));
        const float *q = qkv + ((size_t)b * T + t) * C3 + (size_t)h * HS;            /* (HS) */
        float *att_row = att + (((size_t)b * NH + h) * T + t) * (size_t)T;          /* (T) */
        float slope = alibi_slopes ? alibi_slopes[h] : 0.0f;

        float maxv = -INFINITY;
        for (int j = 0; j <= t; j++) {
            const float *k = qkv + ((size_t)b * T + j) * C3 + C + (size_t)h * HS;    /* (HS) */
            float s = 0.0f;
            for (int i = 0; i < HS; i++) s += q[i] * k[i];
            s *= scale;
            if (alibi_slopes) s -= slope * (float)(t - j);
            att_row[j] = s;
            if (s > maxv) maxv = s;
        }
        float sum = 0.0f;
        for (int j = 0; j <= t; j++) {
            float e = expf(att_row[j] - maxv);
            att_row[j] = e;
            sum += e;
        }
        float inv = 1.0f / sum;   /* sum >= 1: the max term contributes exp(0) */
        for (int j = 0; j <= t; j++) att_row[j] *= inv;

        float *o = out + ((size_t)b * T + t) * (size_t)C + (size_t)h * HS;          /* (HS) */
        for (int i = 0; i < HS; i++) o[i] = 0.0f;
        for (int j = 0; j <= t; j++) {
            const float *v = qkv + ((size_t)b * T + j) * C3 + 2 * (size_t)C + (size_t)h * HS; /* (HS) */
            float a = att_row[j];
            for (int i = 0; i < HS; i++) o[i] += a * v[i];
        }
    }
}

void attention_backward_scalar(float *dqkv, const float *dout, const float *qkv, const float *att,
                               const float *out, const float *alibi_slopes, int B, int T, int C, int NH) {
    (void)alibi_slopes;   /* constant bias: its effect is already in att */
    (void)out;            /* the row term is computed from its definition below */
    const int HS = C / NH;
    const size_t C3 = 3 * (size_t)C;
    const float scale = 1.0f / sqrtf((float)HS);
    const int n_tasks = B * NH;
#ifdef _OPENMP
#pragma omp parallel for schedule(dynamic, 1) if ((long long)n_tasks * T * T >= 4096)
#endif
    for (int task = 0; task < n_tasks; task++) {
        int b = task / NH, h = task % NH;
        float datt[ATT_DATT_CHUNK];
        for (int t = 0; t < T; t++) {
            const float *att_row = att + (((size_t)b * NH + h) * T + t) * (size_t)T; /* (T) */
            const float *q = qkv + ((size_t)b * T + t) * C3 + (size_t)h * HS;          /* (HS) */
            float *dq = dqkv + ((size_t)b * T + t) * C3 + (size_t)h * HS;              /* (HS) */
            const float *dy = dout + ((size_t)b * T + t) * (size_t)C + (size_t)h * HS; /* (HS) */

            /* pass 1: dv_j += p_j dy; datt_j = dy . v_j; dot = sum_j p_j datt_j */
            float dot = 0.0f;
            for (int j = 0; j <= t; j++) {
                size_t off = ((size_t)b * T + j) * C3 + 2 * (size_t)C + (size_t)h * HS;
                const float *v = qkv + off;   /* (HS) */
                float *dv = dqkv + off;       /* (HS) */
                float p = att_row[j], d = 0.0f;
                for (int i = 0; i < HS; i++) {
                    dv[i] += p * dy[i];
                    d += dy[i] * v[i];
                }
                if (j < ATT_DATT_CHUNK) datt[j] = d;
                dot += p * d;
            }
            /* pass 2: softmax backward ds_j = p_j (datt_j - dot), then through
             * s_j = scale q.k_j (the ALiBi term does not depend on q or k) */
            for (int j = 0; j <= t; j++) {
                size_t off = ((size_t)b * T + j) * C3 + (size_t)C + (size_t)h * HS;
                const float *k = qkv + off;   /* (HS) */
                float *dk = dqkv + off;       /* (HS) */
                float d;
                if (j < ATT_DATT_CHUNK) {
                    d = datt[j];
                } else {
                    const float *v = k + C;
                    d = 0.0f;
                    for (int i = 0; i < HS; i++) d += dy[i] * v[i];
                }
                float ds = att_row[j] * (d - dot) * scale;
                for (int i = 0; i < HS; i++) {
                    dq[i] += ds * k[i];
                    dk[i] += ds * q[i];
                }
            }
        }
    }
}
