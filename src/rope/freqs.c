/*
 * freqs.c — rope_freqs(): validates the config, forms the unscaled inverse
 * frequencies inv0[i] = base^(-2i/d) in double and hands them to the one
 * function of the chosen scaling (scalings.c). Everything is double so that
 * the table builder can form p * inv_freq exactly enough for positions far
 * past the training length (see ROPE_NOTES section 6, item 1).
 */
#include <math.h>

#include "rope.h"
#include "rope/freqs_internal.h"

void rope_inv_freq_base(double *inv, double base, int rotary_dim) {
    int n_pairs = rotary_dim / 2;
    /* The exponent uses rotary_dim, never head_dim: with partial rotary the
     * frequencies span (1/base, 1] over the rotated pairs only (ROPE_NOTES
     * section 6, item 5). */
    for (int i = 0; i < n_pairs; i++)
        inv[i] = pow(base, -2.0 * (double)i / (double)rotary_dim);
}

typedef void (*scaling_fn)(const rope_config *cfg, int64_t seq_len, const double *inv0,
                           double *inv, double *attn);

/* Indexed by rope_scaling_type; validation guarantees the index is in range. */
static const scaling_fn scaling_table[ROPE_SCALING_COUNT] = {
    [ROPE_SCALING_NONE] = rope_scaling_none,
    [ROPE_SCALING_LINEAR] = rope_scaling_linear,
    [ROPE_SCALING_NTK] = rope_scaling_ntk,
    [ROPE_SCALING_DYNAMIC] = rope_scaling_dynamic,
    [ROPE_SCALING_YARN] = rope_scaling_yarn,
    [ROPE_SCALING_LLAMA3] = rope_scaling_llama3,
    [ROPE_SCALING_LONGROPE] = rope_scaling_longrope,
    [ROPE_SCALING_FREQ_FACTORS] = rope_scaling_freq_factors,
};

rope_status rope_freqs(const rope_config *cfg, int64_t seq_len,
                       double *inv_freq, double *attention_factor) {
    rope_status st = rope_config_validate(cfg);
    if (st != ROPE_OK) return st;
    if (seq_len < 0) return ROPE_EPARAM;

    double attn = 1.0;
    const scaling_fn fn = scaling_table[cfg->scaling.type];
    if (inv_freq) {
        /* Every scaling reads inv0[i] only to write inv[i], so the caller's
         * array holds inv0 and is scaled in place: no allocation, hence no
         * ROPE_ENOMEM. */
        rope_inv_freq_base(inv_freq, cfg->base, cfg->rotary_dim);
        fn(cfg, seq_len, inv_freq, inv_freq, &attn);
    } else if (attention_factor) {
        /* Only the attention factor is wanted. No rule depends on d (see
         * scalings.c), so run the scaling on a one-pair copy: two doubles of
         * stack instead of a heap array of rotary_dim/2. */
        rope_config one = *cfg;
        one.head_dim = one.rotary_dim = 2;
        one.scaling.n_factors = 1;
        double inv1 = 1.0;
        fn(&one, seq_len, &inv1, &inv1, &attn);
    }
    if (!isnan(cfg->scaling.attention_factor)) attn = cfg->scaling.attention_factor;
    /* Parameters that each pass validation can still overflow a scaling's
     * arithmetic: base 1e-320 makes base^(-2i/d) Inf, an NTK factor of 1e-320
     * makes the scaled base 0, a huge YaRN mscale or extrapolation factor
     * makes Inf or NaN (found by tests/fuzz/fuzz_rope_config.c). Refuse such
     * a result rather than hand out Inf/NaN angles; above 1e280 radians per
     * position, p * inv_freq overflows for a position or key shift near
     * 2^63. With inv_freq NULL only the attention factor is computed, so
     * only it is checked. */
    if (!isfinite(attn) || !(attn > 0.0)) return ROPE_EPARAM;
    if (inv_freq)
        for (int i = 0; i < cfg->rotary_dim / 2; i++)
            if (!(inv_freq[i] >= 0.0 && inv_freq[i] <= 1e280)) return ROPE_EPARAM;
    if (attention_factor) *attention_factor = attn;
    return ROPE_OK;
}
