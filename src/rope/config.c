/*
 * config.c — librope's version string, status strings, the default config
 * and its validation. Validation is the single place that decides which
 * configs the rest of the library may assume sane: rope_freqs() and
 * rope_table_init() call it first, so the scaling maths (scalings.c) never
 * sees a zero divisor, a NaN parameter or a short factor array.
 */
#include <math.h>

#include "rope.h"
#include "rope/freqs_internal.h"

const char *rope_version(void) { return ROPE_VERSION_STRING; }

const char *rope_status_str(rope_status s) {
    switch (s) {
    case ROPE_OK: return "ok";
    case ROPE_ENULL: return "a required pointer argument is NULL";
    case ROPE_EDIM: return "bad dimensions: head_dim <= 0, or rotary_dim odd, <= 0 or > head_dim";
    case ROPE_EBASE: return "bad base: <= 0, NaN or Inf (or 1 with YaRN)";
    case ROPE_EFACTOR: return "bad scaling factor: <= 0, NaN or Inf";
    case ROPE_EPARAM: return "a scaling parameter or argument is NaN, Inf or out of range";
    case ROPE_EFACTORS: return "per-pair factor array missing, of wrong length, or a factor <= 0/NaN/Inf";
    case ROPE_ELAYOUT: return "unknown layout";
    case ROPE_ESCALING: return "unknown scaling type";
    case ROPE_ESHAPE: return "bad tensor shape or stride";
    case ROPE_EPOS: return "a position is negative";
    case ROPE_ERANGE: return "a position is >= max_positions while strict_range is set";
    case ROPE_EKERNEL: return "the requested kernel is not supported by this CPU/build";
    case ROPE_ENOMEM: return "out of memory";
    case ROPE_STATUS_COUNT: break;
    }
    return "unknown status";
}

rope_config rope_config_default(void) {
    rope_config c;
    c.head_dim = 64;
    c.rotary_dim = 64;
    c.base = 10000.0;
    c.layout = ROPE_LAYOUT_INTERLEAVED;
    c.scaling.type = ROPE_SCALING_NONE;
    c.scaling.factor = 1.0;
    c.scaling.original_max_positions = 2048;
    c.scaling.attention_factor = NAN;    /* computed by the scaling's rule */
    /* YaRN defaults: Peng et al. 2023 (arXiv:2309.00071) sec. 4.2 / HF
     * _compute_yarn_parameters: beta_fast 32, beta_slow 1, truncate on. */
    c.scaling.beta_fast = 32.0;
    c.scaling.beta_slow = 1.0;
    c.scaling.mscale = 0.0;
    c.scaling.mscale_all_dim = 0.0;
    c.scaling.extrapolation_factor = 1.0;
    c.scaling.truncate = 1;
    /* Llama 3.1 defaults (Meta's reference apply_scaling / HF llama3). */
    c.scaling.low_freq_factor = 1.0;
    c.scaling.high_freq_factor = 4.0;
    c.scaling.short_factor = NULL;
    c.scaling.long_factor = NULL;
    c.scaling.n_factors = 0;
    c.max_positions = 2048;
    c.strict_range = 0;
    return c;
}

static int finite_pos(double x) { return isfinite(x) && x > 0.0; }

/* 1 if every one of the n factors is finite and > 0. */
static int factors_ok(const double *f, int n) {
    for (int i = 0; i < n; i++)
        if (!finite_pos(f[i])) return 0;
    return 1;
}

/*
 * Checks, in this exact order (the order of the fields in rope.h), and
 * returns the first failure:
 *   1. cfg NULL                                            -> ROPE_ENULL
 *   2. head_dim <= 0                                       -> ROPE_EDIM
 *   3. rotary_dim <= 0, odd, or > head_dim                 -> ROPE_EDIM
 *   4. base <= 0, NaN, Inf; base == 1 with YARN (ln b is a
 *      divisor of YaRN's correction dims)                  -> ROPE_EBASE
 *   5. layout not INTERLEAVED/HALF                         -> ROPE_ELAYOUT
 *   6. scaling.type outside the enum                       -> ROPE_ESCALING
 *   7. factor <= 0, NaN or Inf, for LINEAR, NTK, DYNAMIC,
 *      YARN, LLAMA3, LONGROPE (ignored by NONE/FREQ_FACTORS) -> ROPE_EFACTOR
 *      factor < 1 is accepted: it compresses instead of stretches. HF
 *      accepts it too (its validators only log a warning for factor < 1).
 *   8. original_max_positions <= 0 for DYNAMIC, YARN,
 *      LLAMA3; < 2 for LONGROPE (ln L0 is a divisor)       -> ROPE_EPARAM
 *   9. attention_factor not NaN and (<= 0 or +-Inf); any type: an explicit
 *      value replaces the scaling's own rule for every type -> ROPE_EPARAM
 *  10. YARN only: beta_fast / beta_slow NaN, Inf or <= 0, or
 *      beta_fast <= beta_slow; mscale / mscale_all_dim NaN, Inf or < 0;
 *      extrapolation_factor NaN, Inf or < 0; truncate not 0/1 -> ROPE_EPARAM
 *      (unlike HF, 0 does not mean "default": a 0 beta is an error.)
 *  11. LLAMA3 only: low_freq_factor / high_freq_factor NaN, Inf or <= 0, or
 *      low_freq_factor >= high_freq_factor                   -> ROPE_EPARAM
 *  12. LONGROPE: short_factor or long_factor NULL, then n_factors !=
 *      rotary_dim/2, then any short or long factor <= 0, NaN or Inf;
 *      FREQ_FACTORS: the same with short_factor only      -> ROPE_EFACTORS
 *  13. max_positions < 0 (0 is allowed: an empty table)    -> ROPE_EPARAM
 *  14. strict_range not 0/1                                -> ROPE_EPARAM
 * Fields a type does not use are not looked at, so a config may keep, say,
 * stale YaRN betas while its type is LINEAR.
 */
rope_status rope_config_validate(const rope_config *cfg) {
    if (!cfg) return ROPE_ENULL;
    if (cfg->head_dim <= 0) return ROPE_EDIM;
    if (cfg->rotary_dim <= 0 || cfg->rotary_dim % 2 != 0 || cfg->rotary_dim > cfg->head_dim)
        return ROPE_EDIM;

    const rope_scaling *sc = &cfg->scaling;
    /* The type is read as an int so that an out-of-range enum value (from a
     * cast or a corrupt file) is compared, not switched on. */
    int type = (int)sc->type;
    int known = type >= 0 && type < (int)ROPE_SCALING_COUNT;

    if (!finite_pos(cfg->base)) return ROPE_EBASE;
    if (type == ROPE_SCALING_YARN && cfg->base == 1.0) return ROPE_EBASE;

    int layout = (int)cfg->layout;
    if (layout != ROPE_LAYOUT_INTERLEAVED && layout != ROPE_LAYOUT_HALF) return ROPE_ELAYOUT;
    if (!known) return ROPE_ESCALING;

    int uses_factor = type != ROPE_SCALING_NONE && type != ROPE_SCALING_FREQ_FACTORS;
    if (uses_factor && !finite_pos(sc->factor)) return ROPE_EFACTOR;

    if (type == ROPE_SCALING_DYNAMIC || type == ROPE_SCALING_YARN || type == ROPE_SCALING_LLAMA3) {
        if (sc->original_max_positions <= 0) return ROPE_EPARAM;
    } else if (type == ROPE_SCALING_LONGROPE) {
        if (sc->original_max_positions < 2) return ROPE_EPARAM;
    }

    if (!isnan(sc->attention_factor) && !finite_pos(sc->attention_factor)) return ROPE_EPARAM;

    if (type == ROPE_SCALING_YARN) {
        if (!finite_pos(sc->beta_fast) || !finite_pos(sc->beta_slow)) return ROPE_EPARAM;
        if (sc->beta_fast <= sc->beta_slow) return ROPE_EPARAM;
        if (!isfinite(sc->mscale) || sc->mscale < 0.0) return ROPE_EPARAM;
        if (!isfinite(sc->mscale_all_dim) || sc->mscale_all_dim < 0.0) return ROPE_EPARAM;
        if (!isfinite(sc->extrapolation_factor) || sc->extrapolation_factor < 0.0) return ROPE_EPARAM;
        if (sc->truncate != 0 && sc->truncate != 1) return ROPE_EPARAM;
    }
    if (type == ROPE_SCALING_LLAMA3) {
        if (!finite_pos(sc->low_freq_factor) || !finite_pos(sc->high_freq_factor)) return ROPE_EPARAM;
        if (sc->low_freq_factor >= sc->high_freq_factor) return ROPE_EPARAM;
    }

    int n_pairs = cfg->rotary_dim / 2;
    if (type == ROPE_SCALING_LONGROPE) {
        if (!sc->short_factor || !sc->long_factor) return ROPE_EFACTORS;
        if (sc->n_factors != n_pairs) return ROPE_EFACTORS;
        if (!factors_ok(sc->short_factor, n_pairs) || !factors_ok(sc->long_factor, n_pairs))
            return ROPE_EFACTORS;
    } else if (type == ROPE_SCALING_FREQ_FACTORS) {
        if (!sc->short_factor) return ROPE_EFACTORS;
        if (sc->n_factors != n_pairs) return ROPE_EFACTORS;
        if (!factors_ok(sc->short_factor, n_pairs)) return ROPE_EFACTORS;
    }

    if (cfg->max_positions < 0) return ROPE_EPARAM;
    if (cfg->strict_range != 0 && cfg->strict_range != 1) return ROPE_EPARAM;
    return ROPE_OK;
}
