/*
 * scalings.c — one function per RoPE context-extension scaling, each turning
 * the unscaled inverse frequencies inv0[i] = base^(-2i/d) into the scaled
 * ones and giving the scaling's attention factor (the multiplier of cos and
 * sin; logits scale by its square). Formulas and defaults follow the papers
 * and Hugging Face's modeling_rope_utils.py (cited per function; formulas
 * carried over, no code copied). The config has passed
 * rope_config_validate(), so no divisor here is zero and no parameter NaN.
 * docs/scalings.md summarises each scaling.
 */
#include <math.h>

#include "rope.h"
#include "rope/freqs_internal.h"

#define ROPE_TWO_PI 6.283185307179586476925286766559

/* The exponent d/(d-2) of the NTK-aware base change. With d == 2 there is
 * one pair, i = 0, whose inv_freq is base'^0 = 1 for every base, so any
 * finite exponent gives the right answer; 0 avoids an infinite one. */
static double ntk_exponent(int d) { return d == 2 ? 0.0 : (double)d / ((double)d - 2.0); }

/* No scaling: RoFormer (Su et al. 2021, arXiv:2104.09864) eq. 15. */
void rope_scaling_none(const rope_config *cfg, int64_t seq_len, const double *inv0,
                       double *inv, double *attn) {
    (void)seq_len;
    for (int i = 0; i < cfg->rotary_dim / 2; i++) inv[i] = inv0[i];
    *attn = 1.0;
}

/* Linear Position Interpolation (Chen et al. 2023, arXiv:2306.15595; also
 * kaiokendev's SuperHOT): positions p/s, i.e. inv = inv0 / s for every pair.
 * Divided (not multiplied by 1/s) so the result is exactly inv0/s.
 * Attention factor 1. */
void rope_scaling_linear(const rope_config *cfg, int64_t seq_len, const double *inv0,
                         double *inv, double *attn) {
    (void)seq_len;
    double s = cfg->scaling.factor;
    for (int i = 0; i < cfg->rotary_dim / 2; i++) inv[i] = inv0[i] / s;
    *attn = 1.0;
}

/* NTK-aware base scaling (bloc97, r/LocalLLaMA 2023; exllama issue #126; HF
 * _compute_ntk_parameters): b' = b * s^(d/(d-2)), inv = b'^(-2i/d). The
 * exponent is chosen so the lowest frequency, i = d/2-1, becomes inv0/s (as
 * linear PI) while pair 0 keeps inv0 = 1: high frequencies are extrapolated,
 * low ones interpolated. Attention factor 1. */
void rope_scaling_ntk(const rope_config *cfg, int64_t seq_len, const double *inv0,
                      double *inv, double *attn) {
    (void)seq_len;
    (void)inv0;
    int d = cfg->rotary_dim;
    double base = cfg->base * pow(cfg->scaling.factor, ntk_exponent(d));
    rope_inv_freq_base(inv, base, d);
    *attn = 1.0;
}

/*
 * Dynamic NTK (emozilla, r/LocalLLaMA 2023; HF _compute_dynamic_ntk_parameters):
 *   n = max(seq_len, L0);  b' = b * ((s*n/L0) - (s-1))^(d/(d-2));  inv = b'^(-2i/d).
 * With n <= L0 the bracket is 1 and the result is the default inv0; it is
 * returned as such (bit-exact) rather than through pow. Attention factor 1.
 *
 * Stale keys: keys already in a KV cache were rotated with the base of the
 * sequence length at the time they were written. librope recomputes for the
 * seq_len it is given and keeps no state. A caller either rebuilds its table
 * when the sequence grows past the length the table was built for and accepts
 * the stale keys (HF's behaviour; huggingface/transformers #25104), or keeps
 * the keys before rotation and re-rotates all of them with the new table
 * (exact, costs a rotation of the whole cache per rebuild).
 */
void rope_scaling_dynamic(const rope_config *cfg, int64_t seq_len, const double *inv0,
                          double *inv, double *attn) {
    int d = cfg->rotary_dim;
    int64_t l0 = cfg->scaling.original_max_positions;
    *attn = 1.0;
    if (seq_len <= l0) {
        for (int i = 0; i < d / 2; i++) inv[i] = inv0[i];
        return;
    }
    double s = cfg->scaling.factor;
    double grow = s * ((double)seq_len / (double)l0) - (s - 1.0);
    double base = cfg->base * pow(grow, ntk_exponent(d));
    rope_inv_freq_base(inv, base, d);
}

/* YaRN's attention temperature sqrt(1/t) = 0.1 * m * ln(s) + 1 (Peng et al.
 * 2023, arXiv:2309.00071, eq. 22 with m = 1; DeepSeek-V2 generalises m). */
static double yarn_get_mscale(double s, double m) {
    return s <= 1.0 ? 1.0 : 0.1 * m * log(s) + 1.0;
}

/* The (fractional) pair index whose wavelength fits n_rot full rotations in
 * the training length L0: d * ln(L0 / (2 pi n_rot)) / (2 ln b) (YaRN sec. 3.2,
 * "NTK-by-parts" r(d) = L / lambda_d). */
static double yarn_corr_dim(double n_rot, int d, double base, double l0) {
    return (double)d * log(l0 / (n_rot * ROPE_TWO_PI)) / (2.0 * log(base));
}

/*
 * YaRN (Peng et al. 2023, arXiv:2309.00071, sec. 3.2-3.4; HF
 * _compute_yarn_parameters; vLLM's extrapolation_factor):
 *   low  = corr_dim(beta_fast), high = corr_dim(beta_slow)   (defaults 32, 1)
 *   truncate: low = floor(low), high = ceil(high)             (default on)
 *   low = max(low, 0), high = min(high, d-1); low == high -> high += 0.001
 *   ramp[i] = clamp((i - low)/(high - low), 0, 1)
 *   e[i] = (1 - ramp[i]) * extrapolation_factor               (default 1)
 *   inv[i] = inv0[i]/s * (1 - e[i]) + inv0[i] * e[i]
 * s is cfg->scaling.factor as given (HF's DeepSeek rule s = max_pos/L0 is the
 * caller's choice: pass that ratio as factor).
 * Attention factor: if mscale and mscale_all_dim are both nonzero (HF's
 * truthiness test), get_mscale(s, mscale)/get_mscale(s, mscale_all_dim);
 * otherwise get_mscale(s, 1) = 0.1 ln s + 1 (1 for s <= 1).
 */
void rope_scaling_yarn(const rope_config *cfg, int64_t seq_len, const double *inv0,
                       double *inv, double *attn) {
    (void)seq_len;
    const rope_scaling *sc = &cfg->scaling;
    int d = cfg->rotary_dim;
    double s = sc->factor;
    double l0 = (double)sc->original_max_positions;
    double low = yarn_corr_dim(sc->beta_fast, d, cfg->base, l0);
    double high = yarn_corr_dim(sc->beta_slow, d, cfg->base, l0);
    if (sc->truncate) {
        low = floor(low);
        high = ceil(high);
    }
    low = fmax(low, 0.0);
    high = fmin(high, (double)(d - 1));
    if (low == high) high += 0.001;   /* avoid 0/0 in the ramp (as HF) */
    for (int i = 0; i < d / 2; i++) {
        double ramp = ((double)i - low) / (high - low);
        ramp = ramp < 0.0 ? 0.0 : (ramp > 1.0 ? 1.0 : ramp);
        double e = (1.0 - ramp) * sc->extrapolation_factor;
        inv[i] = inv0[i] / s * (1.0 - e) + inv0[i] * e;
    }
    if (sc->mscale != 0.0 && sc->mscale_all_dim != 0.0)
        *attn = yarn_get_mscale(s, sc->mscale) / yarn_get_mscale(s, sc->mscale_all_dim);
    else
        *attn = yarn_get_mscale(s, 1.0);
}

/*
 * Llama 3.1 (Meta's reference apply_scaling in llama-models; HF
 * _compute_llama3_parameters). Defaults s = 8, low_freq_factor 1,
 * high_freq_factor 4, L0 = 8192 (Llama 3.1's config; librope's default L0 is
 * 2048, so set it). With wavelen = 2 pi / inv0[i]:
 *   wavelen < L0/hf  -> inv0                 (high frequency: unchanged)
 *   wavelen > L0/lf  -> inv0 / s             (low frequency: interpolated)
 *   otherwise        -> (1 - t) inv0/s + t inv0, t = (L0/wavelen - lf)/(hf - lf)
 * Attention factor 1.
 */
void rope_scaling_llama3(const rope_config *cfg, int64_t seq_len, const double *inv0,
                         double *inv, double *attn) {
    (void)seq_len;
    const rope_scaling *sc = &cfg->scaling;
    double s = sc->factor, lf = sc->low_freq_factor, hf = sc->high_freq_factor;
    double l0 = (double)sc->original_max_positions;
    double low_wl = l0 / lf, high_wl = l0 / hf;
    for (int i = 0; i < cfg->rotary_dim / 2; i++) {
        double wl = ROPE_TWO_PI / inv0[i];
        if (wl < high_wl) {
            inv[i] = inv0[i];
        } else if (wl > low_wl) {
            inv[i] = inv0[i] / s;
        } else {
            double t = (l0 / wl - lf) / (hf - lf);
            inv[i] = (1.0 - t) * inv0[i] / s + t * inv0[i];
        }
    }
    *attn = 1.0;
}

/*
 * LongRoPE (Ding et al. 2024, arXiv:2402.13753) as shipped in Phi-3 (HF
 * _compute_longrope_parameters): per-pair rescale factors found by search,
 *   ext = long_factor if seq_len > L0 else short_factor;  inv[i] = inv0[i] / ext[i]
 * Attention factor sqrt(1 + ln s / ln L0), 1 when s <= 1 (s = factor, which
 * HF derives for Phi-3 as max_position_embeddings / L0: pass that ratio).
 * Switching from short to long mid-sequence leaves stale keys in a KV cache,
 * as with dynamic NTK (vLLM chooses once at init: pass that length).
 */
void rope_scaling_longrope(const rope_config *cfg, int64_t seq_len, const double *inv0,
                           double *inv, double *attn) {
    const rope_scaling *sc = &cfg->scaling;
    const double *ext = seq_len > sc->original_max_positions ? sc->long_factor : sc->short_factor;
    for (int i = 0; i < cfg->rotary_dim / 2; i++) inv[i] = inv0[i] / ext[i];
    double s = sc->factor;
    *attn = s <= 1.0 ? 1.0 : sqrt(1.0 + log(s) / log((double)sc->original_max_positions));
}

/* Arbitrary per-pair divisors, inv = inv0 / f[i] (ggml's freq_factors,
 * llama.cpp's rope_freqs tensor; short_factor holds f). Attention factor 1. */
void rope_scaling_freq_factors(const rope_config *cfg, int64_t seq_len, const double *inv0,
                               double *inv, double *attn) {
    (void)seq_len;
    const double *f = cfg->scaling.short_factor;
    for (int i = 0; i < cfg->rotary_dim / 2; i++) inv[i] = inv0[i] / f[i];
    *attn = 1.0;
}
