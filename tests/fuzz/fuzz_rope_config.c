/*
 * fuzz_rope_config.c — libFuzzer harness for librope's argument checking.
 * The input bytes become a rope_config (every field, scaling parameters and
 * per-pair factor arrays of any length included, with NaN/Inf/extremes
 * likely), which goes through rope_config_validate and rope_freqs; a valid,
 * small config then builds a table and rotates a tiny strided view at fuzzed
 * positions (negative, past the table, near INT32_MAX), shifts keys and
 * permutes projection rows. Besides ASan/UBSan, the harness checks what the
 * header promises: validate and freqs agree, an error writes nothing, a valid
 * config gives finite frequencies, every kernel matches the scalar one,
 * backward(forward(x)) = attention_factor^2 * x, channels past rotary_dim
 * and the gaps between strided heads are left alone.
 * fuzz_rope_config_one returns 0, or 1 when a promise is broken (the
 * libFuzzer entry then aborts, so the input is saved as a crash).
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include "fuzz_util.c"

#include <float.h>

#include "rope.h"

/* Limits that keep one input fast: the table is at most this many floats. */
#define FZR_MAX_HEAD_DIM 512
#define FZR_MAX_TABLE ((int64_t)1 << 12)
#define FZR_MAX_FACTORS 4096

static int fzr_fail(const char *what) {
    fprintf(stderr, "fuzz_rope_config: broken promise: %s\n", what);
    return 1;
}

/* Rotation checks on a valid table; 0 ok, 1 broken promise. */
static int fzr_apply(fuzz_cursor *c, rope_table *t) {
    const int64_t hd = t->cfg.head_dim, rd = t->cfg.rotary_dim;
    int64_t nt = fuzz_u8(c) % 5, nh = 1 + fuzz_u8(c) % 3;
    int64_t hs = hd, ts = nh * hd;
    uint8_t mode = fuzz_u8(c);
    if (mode & 1) {   /* fuzzed strides around the tight ones, sometimes too small */
        hs = hd + (int64_t)(fuzz_u8(c) % 5) - 1;
        ts = nh * hs + (int64_t)(fuzz_u8(c) % 7) - 2;
    }
    if (mode & 2) nh = (mode & 4) ? 0 : -1;   /* an invalid head count */
    /* Elements the view can reach (strides of a 1-long dimension unused). */
    int64_t span = hd + (nt > 1 ? (nt - 1) * (ts > 0 ? ts : 0) : 0) + (nh > 1 ? (nh - 1) * (hs > 0 ? hs : 0) : 0);
    size_t n = (size_t)span;
    int32_t pos[4] = { 0, 0, 0, 0 };
    for (int i = 0; i < 4; i++) {
        uint8_t sel = fuzz_u8(c);
        if (sel < 128) pos[i] = (int32_t)fuzz_u8(c);
        else if (sel < 160) pos[i] = INT32_MAX - (int32_t)fuzz_u8(c);
        else if (sel < 176) pos[i] = -1 - (int32_t)fuzz_u8(c);
        else pos[i] = (int32_t)(t->cfg.max_positions + (int64_t)(sel % 8) - 4 > INT32_MAX
                                    ? INT32_MAX : t->cfg.max_positions + (sel % 8) - 4);
        if (pos[i] < 0 && sel >= 176) pos[i] = 0;
    }
    float *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y), *z = malloc(n * sizeof *z);
    if (!x || !y || !z) {
        free(x); free(y); free(z);
        return 0;
    }
    const float SENT = -12345.0f;
    for (size_t i = 0; i < n; i++) {
        x[i] = (float)(int8_t)fuzz_u8(c) / 16.0f;
        y[i] = SENT;
    }
    rope_view vin = { x, nt, nh, ts, hs }, vout = { y, nt, nh, ts, hs };
    int bad = 0;
    rope_status st = rope_table_set_kernel(t, ROPE_KERNEL_SCALAR);
    if (st != ROPE_OK) bad |= fzr_fail("scalar kernel refused");
    st = rope_apply(t, ROPE_FORWARD, &vout, &vin, pos, 1);
    /* Which elements belong to the view, and which are rotated. */
    unsigned char *role = calloc(n, 1);   /* 0 gap, 1 copied channel, 2 rotated */
    if (!role) { free(x); free(y); free(z); return 0; }
    if (st == ROPE_OK) {
        for (int64_t ti = 0; ti < nt; ti++)
            for (int64_t h = 0; h < nh; h++)
                for (int64_t j = 0; j < hd; j++) role[ti * ts + h * hs + j] = j < rd ? 2 : 1;
    }
    if (st != ROPE_OK) {
        for (size_t i = 0; i < n; i++)
            if (y[i] != SENT) { bad |= fzr_fail("rope_apply wrote output on error"); break; }
    } else {
        double maxabs = 0;
        for (size_t i = 0; i < n; i++) maxabs = fmax(maxabs, fabs((double)x[i]));
        double af = t->attention_factor;
        for (size_t i = 0; i < n; i++) {
            if (role[i] == 0 && y[i] != SENT) { bad |= fzr_fail("rope_apply wrote into a stride gap"); break; }
            if (role[i] == 1 && y[i] != x[i]) { bad |= fzr_fail("channel past rotary_dim changed"); break; }
        }
        /* Every kernel this CPU runs against the scalar result, in place on z.
         * Tolerance: the SIMD kernels may fuse x*c - y*s into one FMA, a
         * rounding difference of about one float ulp of |x|*af; 8 ulps. */
        double tol = 8.0 * FLT_EPSILON * maxabs * fmax(fabs(af), 1e-30) + 1e-30;
        const rope_kernel ks[] = { ROPE_KERNEL_AUTO, ROPE_KERNEL_AVX2, ROPE_KERNEL_AVX512 };
        for (int k = 0; k < 3 && !bad; k++) {
            if (!rope_kernel_supported(ks[k])) continue;
            if (rope_table_set_kernel(t, ks[k]) != ROPE_OK) { bad |= fzr_fail("supported kernel refused"); break; }
            memcpy(z, x, n * sizeof *z);
            rope_view vz = { z, nt, nh, ts, hs };
            if (rope_apply(t, ROPE_FORWARD, &vz, &vz, pos, 1) != ROPE_OK) {
                bad |= fzr_fail("a SIMD kernel refused what the scalar one took");
                break;
            }
            for (size_t i = 0; i < n; i++) {
                if (role[i] != 2) {
                    if (memcmp(&z[i], &x[i], sizeof(float)) != 0) { bad |= fzr_fail("in-place kernel touched a non-rotated element"); break; }
                } else if (isfinite(y[i]) && !(fabs((double)z[i] - (double)y[i]) <= tol)) {
                    fprintf(stderr, "kernel %s: element %zu: %.9g vs scalar %.9g\n", rope_kernel_name(ks[k]), i,
                            (double)z[i], (double)y[i]);
                    bad |= fzr_fail("a SIMD kernel disagrees with the scalar kernel");
                    break;
                }
            }
        }
        rope_table_set_kernel(t, ROPE_KERNEL_SCALAR);
        /* R(p)^T R(p) x = af^2 x: backward of forward, checked where af is
         * moderate (a huge af overflows the float table by design of the
         * caller). Tolerance: two rotations, each about 2 float ulps per
         * product, of values up to maxabs*af^2; 16 ulps. */
        if (!bad && af >= 1e-3 && af <= 1e3) {
            memcpy(z, y, n * sizeof *z);
            rope_view vz = { z, nt, nh, ts, hs };
            if (rope_apply(t, ROPE_BACKWARD, &vz, &vz, pos, 1) != ROPE_OK)
                bad |= fzr_fail("backward refused what forward took");
            double tol2 = 16.0 * FLT_EPSILON * maxabs * af * af + 1e-30;
            for (size_t i = 0; i < n && !bad; i++) {
                if (role[i] != 2) continue;
                /* The table holds af*cos, af*sin rounded to float, so the pair's
                 * gain is af^2 (1 + O(eps)). */
                double want = af * af * (double)x[i];
                if (!(fabs((double)z[i] - want) <= tol2)) {
                    fprintf(stderr, "element %zu: backward(forward(x)) %.9g, want %.9g (af %.9g)\n", i,
                            (double)z[i], want, af);
                    bad |= fzr_fail("backward(forward(x)) != af^2 x");
                }
            }
        }
        /* Key shift by a fuzzed delta: must not fault; finite in, finite out. */
        if (!bad) {
            int64_t delta = fuzz_i64(c);
            memcpy(z, x, n * sizeof *z);
            rope_view vz = { z, nt, nh, ts, hs };
            st = rope_shift(t, &vz, delta, 1);
            /* A rotation keeps each pair's norm, so no element can exceed
             * sqrt(2) * maxabs (plus float rounding: 1e-5 relative). */
            double lim = 1.4142136 * maxabs * (1.0 + 1e-5) + 1e-30;
            if (st == ROPE_OK) {
                for (size_t i = 0; i < n; i++)
                    if (!(fabs((double)z[i]) <= lim)) {
                        fprintf(stderr, "shift %lld: element %zu = %.9g, bound %.9g\n", (long long)delta, i,
                                (double)z[i], lim);
                        bad |= fzr_fail("rope_shift did not keep the norm");
                        break;
                    }
            }
        }
    }
    free(role);
    free(x);
    free(y);
    free(z);
    return bad;
}

/* rope_permute_rows with fuzzed shapes; from->to->from is the identity. */
static int fzr_permute(fuzz_cursor *c) {
    int nh = fuzz_int(c), hd = fuzz_int(c), rd = fuzz_int(c);
    int64_t nc = (int64_t)(fuzz_u8(c) % 4) - 1;
    int from = (int)(fuzz_u8(c) % 3), to = (int)(fuzz_u8(c) % 3);
    int small = nh > 0 && nh <= 8 && hd > 0 && hd <= 64 && nc > 0;
    /* A valid but big shape is skipped (it would need a big buffer); a
     * non-positive size gets a 1-float buffer and must be refused. */
    if (!small && nh > 0 && hd > 0 && nc > 0) return 0;
    size_t n = small ? (size_t)nh * (size_t)hd * (size_t)nc : 1;
    float *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b), *r = malloc(n * sizeof *r);
    int bad = 0;
    if (a && b && r) {
        for (size_t i = 0; i < n; i++) a[i] = (float)i;
        rope_status st = rope_permute_rows(b, a, nh, hd, rd, nc, (rope_layout)from, (rope_layout)to);
        if (st == ROPE_OK && !small) bad |= fzr_fail("rope_permute_rows accepted a non-positive size");
        if (st == ROPE_OK && small) {
            st = rope_permute_rows(r, b, nh, hd, rd, nc, (rope_layout)to, (rope_layout)from);
            if (st != ROPE_OK || memcmp(r, a, n * sizeof *a) != 0)
                bad |= fzr_fail("permute from->to->from is not the identity");
        }
    }
    free(a);
    free(b);
    free(r);
    return bad;
}

int fuzz_rope_config_one(const uint8_t *data, size_t size);
int fuzz_rope_config_one(const uint8_t *data, size_t size) {
    fuzz_cursor cur = { data, size, 0 }, *c = &cur;
    rope_config cfg = rope_config_default();
    uint8_t presence = fuzz_u8(c);
    cfg.head_dim = fuzz_int(c);
    cfg.rotary_dim = (presence & 1) ? cfg.head_dim : fuzz_int(c);
    cfg.base = (presence & 2) ? 10000.0 : fuzz_double(c);
    cfg.layout = (rope_layout)((presence & 4) ? (int)(fuzz_u8(c) % 2) : fuzz_int(c));
    uint8_t ty = fuzz_u8(c);
    cfg.scaling.type = (rope_scaling_type)(ty < 240 ? (int)(ty % ROPE_SCALING_COUNT) : fuzz_int(c));
    rope_scaling *s = &cfg.scaling;
    uint8_t which = fuzz_u8(c);   /* bit k: fuzz parameter k, else keep its default */
    if (which & 1) s->factor = fuzz_double(c);
    if (which & 2) s->original_max_positions = fuzz_i64(c);
    if (which & 4) s->attention_factor = fuzz_double(c);
    if (which & 8) { s->beta_fast = fuzz_double(c); s->beta_slow = fuzz_double(c); }
    if (which & 16) { s->mscale = fuzz_double(c); s->mscale_all_dim = fuzz_double(c); }
    if (which & 32) { s->extrapolation_factor = fuzz_double(c); s->truncate = fuzz_int(c); }
    if (which & 64) { s->low_freq_factor = fuzz_double(c); s->high_freq_factor = fuzz_double(c); }
    if (which & 128) { cfg.max_positions = fuzz_i64(c); cfg.strict_range = fuzz_int(c); }
    else cfg.max_positions = fuzz_u8(c);

    /* Factor arrays: the length is the allocation's exact length, so a
     * reader that trusts rotary_dim/2 over n_factors overruns on the heap. */
    uint8_t fsel = fuzz_u8(c);
    int nf = (fsel & 1) ? cfg.rotary_dim / 2 + (int)(fuzz_u8(c) % 3) - 1 : (int)(int16_t)fuzz_raw(c, 2);
    if (nf > FZR_MAX_FACTORS) nf = FZR_MAX_FACTORS;
    s->n_factors = nf;
    size_t alloc = nf > 0 ? (size_t)nf : 0;
    double *sf = NULL, *lf = NULL;
    if (!(fsel & 2)) sf = malloc((alloc ? alloc : 1) * sizeof *sf);
    if (!(fsel & 4)) lf = malloc((alloc ? alloc : 1) * sizeof *lf);
    for (size_t i = 0; i < alloc; i++) {
        int fz = (fsel & 8) && i < 8;   /* fuzz the first few, keep the rest sane */
        if (sf) sf[i] = fz ? fuzz_double(c) : 1.0 + (double)(i % 7) * 0.25;
        if (lf) lf[i] = fz ? fuzz_double(c) : 1.0 + (double)(i % 5) * 0.5;
    }
    s->short_factor = sf;
    s->long_factor = lf;
    int64_t seq_len = fuzz_i64(c);

    int bad = 0;
    rope_status v = rope_config_validate(&cfg);
    if ((int)v < 0 || v >= ROPE_STATUS_COUNT) bad |= fzr_fail("status outside the enum");
    if (!rope_status_str(v) || !*rope_status_str(v)) bad |= fzr_fail("empty status string");

    int n_pairs = (v == ROPE_OK) ? cfg.rotary_dim / 2 : 0;
    /* On error a 1-element array with a sentinel: nothing may be written. */
    size_t ninv = n_pairs > 0 && n_pairs <= (1 << 20) ? (size_t)n_pairs : 1;
    double *inv = malloc(ninv * sizeof *inv);
    rope_status fstat = v;
    if (inv) {
        inv[0] = -777.0;
        double af = -777.0;
        /* A valid config with more pairs than that is checked without the array. */
        int have_inv = v != ROPE_OK || n_pairs <= (1 << 20);
        rope_status f = rope_freqs(&cfg, seq_len, have_inv ? inv : NULL, &af);
        if (v != ROPE_OK && f != v) bad |= fzr_fail("rope_freqs and rope_config_validate disagree");
        if (v == ROPE_OK && seq_len < 0 && f != ROPE_EPARAM) bad |= fzr_fail("negative seq_len accepted");
        if (v == ROPE_OK && f != ROPE_OK && f != ROPE_EPARAM) bad |= fzr_fail("unexpected rope_freqs status");
        /* A config or seq_len error is found before anything is computed; a
         * non-finite result (EPARAM after the scaling ran) may leave the
         * array written, but never the attention factor. */
        if ((v != ROPE_OK || seq_len < 0) && inv[0] != -777.0) bad |= fzr_fail("rope_freqs wrote on error");
        if (f != ROPE_OK && af != -777.0) bad |= fzr_fail("rope_freqs wrote the attention factor on error");
        if (f == ROPE_OK) {
            if (!isfinite(af) || !(af > 0)) bad |= fzr_fail("non-finite or non-positive attention factor");
            for (int i = 0; have_inv && i < n_pairs; i++)
                if (!isfinite(inv[i]) || inv[i] < 0) { bad |= fzr_fail("non-finite inverse frequency"); break; }
        }
        /* The attention-factor-only path (inv NULL) agrees with the full one. */
        double af2 = -777.0;
        rope_status f2 = rope_freqs(&cfg, seq_len, NULL, &af2);
        /* Without inv_freq only the attention factor is checked for
         * overflow, so only a full success must be matched. */
        if (f == ROPE_OK && f2 != ROPE_OK) bad |= fzr_fail("rope_freqs(inv NULL) fails where the full call works");
        if (f2 == ROPE_OK && f != ROPE_OK && f != ROPE_EPARAM) bad |= fzr_fail("rope_freqs(inv NULL) status differs");
        if (f == ROPE_OK && !(af2 == af)) {
            fprintf(stderr, "attention factor %.17g (inv NULL) vs %.17g\n", af2, af);
            bad |= fzr_fail("attention factor depends on inv_freq being NULL");
        }
        fstat = f;
        free(inv);
    }

    if (v == ROPE_OK && seq_len >= 0 && cfg.head_dim <= FZR_MAX_HEAD_DIM &&
        cfg.max_positions <= FZR_MAX_TABLE / (n_pairs > 0 ? n_pairs : 1)) {
        rope_table t;
        rope_status st = rope_table_init(&t, &cfg, seq_len);
        if (st == ROPE_OK) {
            bad |= fzr_apply(c, &t);
        } else if (st != ROPE_ENOMEM && !(st == ROPE_EPARAM && fstat == ROPE_EPARAM)) {
            bad |= fzr_fail("rope_table_init refused a config that validate and freqs accept");
        }
        rope_table_free(&t);
    } else {
        /* Invalid (or too big to try): init must fail cleanly and leave t zeroed. */
        if (v != ROPE_OK) {
            rope_table t;
            if (rope_table_init(&t, &cfg, seq_len) == ROPE_OK) bad |= fzr_fail("rope_table_init took an invalid config");
            else if (t.cos || t.sin || t.inv_freq) bad |= fzr_fail("failed rope_table_init left memory behind");
            rope_table_free(&t);
        }
    }
    bad |= fzr_permute(c);
    free(sf);
    free(lf);
    return bad;
}

#ifdef ROPEGPT_LIBFUZZER
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (fuzz_rope_config_one(data, size)) abort();
    return 0;
}
#endif
