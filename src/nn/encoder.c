/*
 * encoder.c — token (and learned position) embedding, forward and backward.
 * The backward is a scatter-add into dwte rows chosen by the tokens; two
 * tokens may share a row, so it runs serially in (b,t) order: it is O(B*T*C),
 * negligible next to the matmuls, and a fixed order keeps results bit-exact
 * for any thread count.
 */
#include "nn/encoder.h"

#include <stddef.h>

void encoder_forward(float *out, const int *inp, const float *wte, const float *wpe,
                     float wte_scale, int B, int T, int C) {
    for (int b = 0; b < B; b++) {
        for (int t = 0; t < T; t++) {
            size_t bt = (size_t)b * (size_t)T + (size_t)t;
            float *out_bt = out + bt * (size_t)C;                 /* (C) */
            const float *wte_ix = wte + (size_t)inp[bt] * (size_t)C; /* (C) */
            if (wpe) {
                const float *wpe_t = wpe + (size_t)t * (size_t)C;   /* (C) */
                for (int i = 0; i < C; i++) out_bt[i] = wte_ix[i] * wte_scale + wpe_t[i];
            } else {
                for (int i = 0; i < C; i++) out_bt[i] = wte_ix[i] * wte_scale;
            }
        }
    }
}

void encoder_backward(float *dwte, float *dwpe, const float *dout, const int *inp,
                      float wte_scale, int B, int T, int C) {
    for (int b = 0; b < B; b++) {
        for (int t = 0; t < T; t++) {
            size_t bt = (size_t)b * (size_t)T + (size_t)t;
            const float *dout_bt = dout + bt * (size_t)C;          /* (C) */
            float *dwte_ix = dwte + (size_t)inp[bt] * (size_t)C;   /* (C) */
            for (int i = 0; i < C; i++) dwte_ix[i] += wte_scale * dout_bt[i];
            if (dwpe) {
                float *dwpe_t = dwpe + (size_t)t * (size_t)C;      /* (C) */
                for (int i = 0; i < C; i++) dwpe_t[i] += dout_bt[i];
            }
        }
    }
}
