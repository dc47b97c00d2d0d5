/*
 * test_rope_ref.c — compares rope_freqs() with the PyTorch float64 reference
 * in tests/ref/rope_freqs_ref.txt (written by tests/ref/gen_rope_ref.py, which
 * implements the published formulas independently). The fixture is read by a
 * small token parser that never trusts a count: a missing, truncated or
 * garbled fixture is a test failure, not a crash.
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rope.h"
#include "test.h"

#define REF_PATH "tests/ref/rope_freqs_ref.txt"
#define REF_MAX_PAIRS 256

typedef struct {
    char name[64];
    rope_config cfg;
    double short_f[REF_MAX_PAIRS], long_f[REF_MAX_PAIRS];
    int64_t seq_len;
    double attn;
    double inv[REF_MAX_PAIRS];
    int n_inv;
} ref_case;

/* Next whitespace-separated token into buf; '#' starts a comment to the end
 * of the line. Returns 0 at EOF or if the token does not fit. */
static int next_token(FILE *f, char *buf, size_t cap) {
    int ch;
    for (;;) {
        ch = fgetc(f);
        if (ch == EOF) return 0;
        if (ch == '#') {
            while (ch != EOF && ch != '\n') ch = fgetc(f);
            continue;
        }
        if (ch != ' ' && ch != '\t' && ch != '\n' && ch != '\r') break;
    }
    size_t n = 0;
    while (ch != EOF && ch != ' ' && ch != '\t' && ch != '\n' && ch != '\r') {
        if (n + 1 >= cap) return 0;
        buf[n++] = (char)ch;
        ch = fgetc(f);
    }
    buf[n] = '\0';
    return 1;
}

static int expect_key(FILE *f, const char *key) {
    char tok[64];
    return next_token(f, tok, sizeof tok) && strcmp(tok, key) == 0;
}

static int read_double(FILE *f, double *out) {
    char tok[64], *end;
    if (!next_token(f, tok, sizeof tok)) return 0;
    errno = 0;
    *out = strtod(tok, &end);
    return end != tok && *end == '\0' && errno != ERANGE;
}

static int read_i64(FILE *f, int64_t *out) {
    char tok[64], *end;
    if (!next_token(f, tok, sizeof tok)) return 0;
    errno = 0;
    long long v = strtoll(tok, &end, 10);
    *out = v;
    return end != tok && *end == '\0' && errno != ERANGE;
}

static int key_double(FILE *f, const char *key, double *out) {
    return expect_key(f, key) && read_double(f, out);
}

static int key_int(FILE *f, const char *key, int *out) {
    int64_t v;
    if (!expect_key(f, key) || !read_i64(f, &v) || v < INT32_MIN || v > INT32_MAX) return 0;
    *out = (int)v;
    return 1;
}

/* "key n v1 ... vn" with 0 <= n <= REF_MAX_PAIRS. */
static int key_array(FILE *f, const char *key, double *buf, int *n_out) {
    int64_t n;
    if (!expect_key(f, key) || !read_i64(f, &n) || n < 0 || n > REF_MAX_PAIRS) return 0;
    for (int64_t i = 0; i < n; i++)
        if (!read_double(f, &buf[i])) return 0;
    *n_out = (int)n;
    return 1;
}

static int scaling_of(const char *s, rope_scaling_type *t) {
    static const char *names[ROPE_SCALING_COUNT] = {
        [ROPE_SCALING_NONE] = "none", [ROPE_SCALING_LINEAR] = "linear",
        [ROPE_SCALING_NTK] = "ntk", [ROPE_SCALING_DYNAMIC] = "dynamic",
        [ROPE_SCALING_YARN] = "yarn", [ROPE_SCALING_LLAMA3] = "llama3",
        [ROPE_SCALING_LONGROPE] = "longrope", [ROPE_SCALING_FREQ_FACTORS] = "freq_factors"};
    for (int i = 0; i < ROPE_SCALING_COUNT; i++)
        if (strcmp(s, names[i]) == 0) {
            *t = (rope_scaling_type)i;
            return 1;
        }
    return 0;
}

/* One "case ... end" block, fields in the generator's fixed order. */
static int read_case(FILE *f, ref_case *rc) {
    rope_config c = rope_config_default();
    rope_scaling *sc = &c.scaling;
    char tok[64];
    int n_short = 0, n_long = 0;
    if (!expect_key(f, "case") || !next_token(f, rc->name, sizeof rc->name)) return 0;
    if (!key_int(f, "head_dim", &c.head_dim) || !key_int(f, "rotary_dim", &c.rotary_dim) ||
        !key_double(f, "base", &c.base))
        return 0;
    if (!expect_key(f, "scaling") || !next_token(f, tok, sizeof tok) || !scaling_of(tok, &sc->type))
        return 0;
    if (!key_double(f, "factor", &sc->factor) || !expect_key(f, "original_max_positions") ||
        !read_i64(f, &sc->original_max_positions) ||
        !key_double(f, "attention_factor", &sc->attention_factor) ||
        !key_double(f, "beta_fast", &sc->beta_fast) || !key_double(f, "beta_slow", &sc->beta_slow) ||
        !key_double(f, "mscale", &sc->mscale) ||
        !key_double(f, "mscale_all_dim", &sc->mscale_all_dim) ||
        !key_double(f, "extrapolation_factor", &sc->extrapolation_factor) ||
        !key_int(f, "truncate", &sc->truncate) ||
        !key_double(f, "low_freq_factor", &sc->low_freq_factor) ||
        !key_double(f, "high_freq_factor", &sc->high_freq_factor) ||
        !key_array(f, "short_factor", rc->short_f, &n_short) ||
        !key_array(f, "long_factor", rc->long_f, &n_long) ||
        !expect_key(f, "seq_len") || !read_i64(f, &rc->seq_len) ||
        !key_double(f, "expect_attention", &rc->attn) ||
        !key_array(f, "expect_inv", rc->inv, &rc->n_inv) || !expect_key(f, "end"))
        return 0;
    sc->short_factor = n_short ? rc->short_f : NULL;
    sc->long_factor = n_long ? rc->long_f : NULL;
    sc->n_factors = n_short;
    if (n_long && n_long != n_short) return 0;
    c.max_positions = 4096;
    rc->cfg = c;
    return 1;
}

/* Reads the header and case k (0-based) of the fixture at path into *rc.
 * Returns the number of cases announced (>= 1) on success, 0 on any error,
 * including fewer cases than announced. */
static int load_case(const char *path, int k, ref_case *rc) {
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    int64_t version = 0, n = 0;
    int ok = expect_key(f, "rope_freqs_ref") && read_i64(f, &version) && version == 1 &&
             expect_key(f, "ncases") && read_i64(f, &n) && n >= 1 && n <= 10000 && k < n;
    for (int i = 0; ok && i <= k; i++) ok = read_case(f, rc);
    /* The whole file must parse: the remaining cases, then EOF. */
    ref_case *tmp = ok ? malloc(sizeof *tmp) : NULL;
    if (ok && !tmp) ok = 0;
    for (int64_t i = k + 1; ok && i < n; i++) ok = read_case(f, tmp);
    char tok[8];
    if (ok && next_token(f, tok, sizeof tok)) ok = 0;
    free(tmp);
    fclose(f);
    return ok ? (int)n : 0;
}

/*
 * Tolerance 1e-12 relative, for inv_freq and the attention factor: both sides
 * are IEEE double and evaluate the same formulas, differing only in how
 * base^(-2i/d) is formed (C: pow(b, -2i/d); PyTorch: 1 / b ** (2i/d)) and in
 * libm rounding of pow/log, a few ulp (~1e-15) in all. No formula has a
 * cancellation that could amplify that. Any change of formula (a factor, an
 * off-by-one in the YaRN correction dims, the wrong band) moves values by far
 * more than 1e-12.
 */
#define REF_RTOL 1e-12

TEST(rope_freqs_ref_matches_pytorch) {
    ref_case *rc = malloc(sizeof *rc);
    CHECK(rc != NULL);
    if (!rc) return;
    int n = load_case(REF_PATH, 0, rc);
    CHECK(n >= 20);   /* the generator writes 25; an empty or cut fixture fails */
    double max_rel = 0.0;
    for (int k = 0; k < n; k++) {
        if (!load_case(REF_PATH, k, rc)) {
            CHECK(!"fixture case failed to parse");
            break;
        }
        int n_pairs = rc->cfg.rotary_dim / 2;
        CHECK_EQ_INT(rc->n_inv, n_pairs);
        if (rc->n_inv != n_pairs) continue;
        double inv[REF_MAX_PAIRS], attn = 0.0;
        rope_status st = rope_freqs(&rc->cfg, rc->seq_len, inv, &attn);
        if (st != ROPE_OK) printf("    case %s: %s\n", rc->name, rope_status_str(st));
        CHECK_EQ_INT(st, ROPE_OK);
        if (st != ROPE_OK) continue;
        int before = test_failures;
        CHECK_CLOSE(attn, rc->attn, REF_RTOL, 0.0);
        for (int i = 0; i < n_pairs; i++) {
            CHECK_CLOSE(inv[i], rc->inv[i], REF_RTOL, 0.0);
            max_rel = fmax(max_rel, fabs(inv[i] - rc->inv[i]) / fabs(rc->inv[i]));
        }
        if (test_failures != before) printf("    ^ in case %s\n", rc->name);
    }
    printf("    %d reference cases, max relative inv_freq difference %.3g\n", n, max_rel);
    free(rc);
}

/* Writes text to a scratch file and returns its path (static buffer). */
static const char *scratch(const char *name, const char *text, size_t len) {
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", test_tmp_dir(), name);
    FILE *f = fopen(path, "wb");
    if (f) {
        fwrite(text, 1, len, f);
        fclose(f);
    }
    return path;
}

TEST(rope_freqs_ref_parser_rejects_bad_fixtures) {
    ref_case *rc = malloc(sizeof *rc);
    CHECK(rc != NULL);
    if (!rc) return;
    CHECK_EQ_INT(load_case("tests/ref/no_such_fixture.txt", 0, rc), 0);
    CHECK_EQ_INT(load_case(scratch("empty.txt", "", 0), 0, rc), 0);

    /* The real fixture, cut at several points, each at least a token short. */
    FILE *f = fopen(REF_PATH, "rb");
    CHECK(f != NULL);
    if (!f) {
        free(rc);
        return;
    }
    static char buf[1 << 17];
    size_t len = fread(buf, 1, sizeof buf, f);
    fclose(f);
    CHECK(len > 1000 && len + 8 < sizeof buf);
    if (len + 8 >= sizeof buf) {
        free(rc);
        return;
    }
    CHECK(load_case(scratch("whole.txt", buf, len), 0, rc) > 0);   /* the copy parses */
    const double cuts[] = {0.05, 0.3, 0.6, 0.95};
    for (size_t k = 0; k < 4; k++) {
        size_t at = (size_t)(cuts[k] * (double)len);
        while (at > 0 && buf[at] != ' ') at--;   /* drop a whole token (and what follows) */
        CHECK_EQ_INT(load_case(scratch("cut.txt", buf, at), 0, rc), 0);
    }
    /* Garbled tokens: a bad number, an absurd array length, a wrong key. */
    static const char *bad[] = {
        "rope_freqs_ref 1 ncases 1 case x head_dim 6x4",
        "rope_freqs_ref 1 ncases 1 case x head_dim 64 rotary_dim 64 base 10000 scaling none "
        "factor 1 original_max_positions 2048 attention_factor nan beta_fast 32 beta_slow 1 "
        "mscale 0 mscale_all_dim 0 extrapolation_factor 1 truncate 1 low_freq_factor 1 "
        "high_freq_factor 4 short_factor 99999999 1",
        "rope_freqs_ref 1 ncases 1 case x head_dim 64 rotary_dim 64 base 10000 scaling warp",
        "rope_freqs_ref 2 ncases 1",
        "rope_freqs_ref 1 ncases -3",
        "rope_freqs_ref 1 ncases 1 case x hed_dim 64",
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++)
        CHECK_EQ_INT(load_case(scratch("bad.txt", bad[k], strlen(bad[k])), 0, rc), 0);
    /* Trailing garbage after the announced cases. */
    memcpy(buf + len, " extra", 6);
    CHECK_EQ_INT(load_case(scratch("trail.txt", buf, len + 6), 0, rc), 0);
    free(rc);
}
