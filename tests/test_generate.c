/*
 * test_generate.c — KV-cache generation (src/model/generate.c), the sampler
 * and `ropegpt generate` end to end. The central check: at every step the
 * cached path's logits (prefill, then one token at a time, keys rotated once
 * at their absolute positions) equal a full recompute of the whole sequence
 * by gpt_forward, for every position encoding, both RoPE layouts, partial
 * rotary, and each RoPE scaling past the training context (dynamic NTK with
 * re-rotated keys included). Models are tiny and random with weights large
 * enough that attention is sharp, so a wrong position shows in the logits.
 * The end-to-end test compares greedy output of a committed tiny model
 * (tests/ref/tiny_rope.bin, rebuilt by tests/ref/make_tiny_model.sh) with a
 * golden file byte for byte; bad input must exit 2 with one line.
 */
#define _POSIX_C_SOURCE 200809L
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "test.h"
#include "model/checkpoint.h"
#include "model/generate.h"
#include "model/gpt.h"
#include "model/sampler.h"
#include "util/io.h"
#include "util/rng.h"

/* ---------------------------------------------------------------- models */

/* The equivalence tests are about arithmetic, which is the same for any
 * thread count (fixed reduction orders); on a loaded 2-core machine OpenMP
 * barriers on these tiny shapes cost more than the work, so they run on one
 * thread and put the setting back. generate_threads_same_bits covers
 * threads. */
static int threads_one(void) {
#ifdef _OPENMP
    int n = omp_get_max_threads();
    omp_set_num_threads(1);
    return n;
#else
    return 1;
#endif
}

static void threads_restore(int n) {
#ifdef _OPENMP
    omp_set_num_threads(n);
#else
    (void)n;
#endif
}

#define GV 48     /* vocabulary of the random models */
#define GMAXT 16  /* their training context: tests run past it */

static gpt_config small_cfg(pe_type pe) {
    gpt_config c = gpt_config_default();
    c.V = GV;
    c.L = 2;
    c.NH = 2;
    c.C = 16;
    c.maxT = GMAXT;
    c.pe = pe;
    return c;
}

/* A model whose weights are large enough (std 0.3, q/k 0.6) that attention
 * is far from uniform, so positions matter to the logits. */
static int make_model(gpt *m, const gpt_config *c, uint64_t seed) {
    if (gpt_init(m, c, seed) != GPT_OK) return -1;
    rng_state r;
    rng_init(&r, seed, 7);
    rng_fill_normal(&r, m->params_memory, m->num_params, 0.0f, 0.3f);
    rng_fill_normal(&r, m->params.qkvw, m->tensor_sizes[4], 0.0f, 0.6f);
    for (size_t i = 0; i < m->tensor_sizes[2]; i++) m->params.ln1w[i] += 1.0f;
    for (size_t i = 0; i < m->tensor_sizes[8]; i++) m->params.ln2w[i] += 1.0f;
    for (size_t i = 0; i < m->tensor_sizes[14]; i++) m->params.lnfw[i] += 1.0f;
    return 0;
}

static void make_tokens(int *tok, int n, uint64_t seed) {
    rng_state r;
    rng_init(&r, seed, 3);
    for (int i = 0; i < n; i++) tok[i] = (int)rng_below(&r, GV);
}

static double max_abs_diff(const float *a, const float *b, int n) {
    double d = 0.0;
    for (int i = 0; i < n; i++) d = fmax(d, fabs((double)a[i] - (double)b[i]));
    if (d != d) return INFINITY;
    return d;
}

static double max_abs(const float *a, int n) {
    double d = 0.0;
    for (int i = 0; i < n; i++) d = fmax(d, fabs((double)a[i]));
    return d;
}

/* The cached and recomputed logits agree to float rounding: the two paths
 * run the same layers in the same order except the matmuls (packed SIMD
 * kernel over T rows vs a matrix-vector product with 8 partial sums), whose
 * sums round differently (~1e-7 relative per dot of 16-64 terms), through two
 * layers of LayerNorm and attention. Observed differences are below 2e-5 on
 * logits of magnitude ~5-20; a token rotated at a wrong position moves them
 * by 0.1 and more. */
#define CACHE_TOL(maxlogit) (2e-5 * (1.0 + (maxlogit)))

/* Runs seq[0..N) through the cache: a prefill of P tokens, then chunks of
 * `chunk` tokens (1 = decode), and after each call compares the logits of
 * the last token with gpt_forward over seq[0..n). When sc is not NULL the
 * full recompute uses the same scaling: static scalings for the whole
 * capacity, dynamic NTK for the current length (the rule gen_forward
 * follows with REROTATE). Returns the largest difference seen relative to
 * CACHE_TOL (<= 1 passes), and checks each step. */
static double check_cache(gpt *m, const gen_config *gc, const int *seq, int N, int P, int chunk) {
    int saved_threads = threads_one();
    gen_state g;
    gen_status st = gen_init(&g, m, gc);
    CHECK_EQ_INT(st, GEN_OK);
    if (st != GEN_OK) {
        threads_restore(saved_threads);
        return INFINITY;
    }
    const rope_scaling *sc = gc->scaling.type != ROPE_SCALING_NONE ? &gc->scaling : NULL;
    if (sc && sc->type != ROPE_SCALING_DYNAMIC) CHECK_EQ_INT(gpt_set_rope_scaling(m, sc, gc->capacity), GPT_OK);
    double worst = 0.0;
    int n = 0;
    while (n < N) {
        int T = n == 0 ? P : (N - n < chunk ? N - n : chunk);
        const float *lg = gen_forward(&g, seq + n, T, &st);
        CHECK(lg != NULL);
        CHECK_EQ_INT(st, GEN_OK);
        if (lg == NULL) break;
        n += T;
        CHECK_EQ_INT(g.n, n);
        if (sc && sc->type == ROPE_SCALING_DYNAMIC) {
            int64_t len = n > sc->original_max_positions ? n : sc->original_max_positions;
            CHECK_EQ_INT(gpt_set_rope_scaling(m, sc, len), GPT_OK);
        }
        float loss = gpt_forward(m, seq, NULL, 1, n);
        CHECK(!isnan(loss));
        const float *ref = m->acts.logits + (size_t)(n - 1) * GV;
        double tol = CACHE_TOL(max_abs(ref, GV));
        double d = max_abs_diff(lg, ref, GV);
        CHECK_NEAR(d, 0.0, tol);
        worst = fmax(worst, d / tol);
    }
    if (sc) gpt_set_rope_scaling(m, NULL, 0);
    gen_free(&g);
    threads_restore(saved_threads);
    return worst;
}

static gen_config cache_cfg(int capacity, int max_chunk) {
    gen_config gc = gen_config_default();
    gc.capacity = capacity;
    gc.max_chunk = max_chunk;
    return gc;
}

/* One encoding: prefill 5, decode to N; and prefill 3 then chunks of 4. */
static void check_pe(gpt_config cfg, int N) {
    gpt m;
    CHECK_EQ_INT(make_model(&m, &cfg, 11), 0);
    int seq[64];
    make_tokens(seq, N, 5);
    gen_config gc = cache_cfg(N, 5);
    check_cache(&m, &gc, seq, N, 5, 1);
    check_cache(&m, &gc, seq, N, 3, 4);
    gpt_free(&m);
}

/* ---------------------------------------------------------------- cache = recompute */

TEST(generate_cache_matches_recompute_rope_interleaved) {
    gpt_config c = small_cfg(PE_ROPE);
    c.rope_layout = ROPE_LAYOUT_INTERLEAVED;
    check_pe(c, 40);   /* 2.5x the training context */
}

TEST(generate_cache_matches_recompute_rope_half_partial) {
    gpt_config c = small_cfg(PE_ROPE);
    c.rope_layout = ROPE_LAYOUT_HALF;
    check_pe(c, 40);
    c.rope_fraction = 0.5;   /* rotary_dim 4 of head size 8: the rest copied */
    check_pe(c, 40);
}

TEST(generate_cache_matches_recompute_learned) {
    check_pe(small_cfg(PE_LEARNED), GMAXT);   /* learned stops at its table */
}

TEST(generate_cache_matches_recompute_alibi) {
    check_pe(small_cfg(PE_ALIBI), 40);
}

TEST(generate_cache_matches_recompute_none) {
    check_pe(small_cfg(PE_NONE), 40);
}

TEST(generate_cache_matches_recompute_sinusoidal) {
    check_pe(small_cfg(PE_SINUSOIDAL), 40);
}

/* Each scaling with a non-default factor past L0 = maxT: the cached keys and
 * queries carry the scaled rotation (YaRN's attention factor included, via
 * the table), exactly as gpt_forward with the same scaling. */
TEST(generate_cache_matches_recompute_rope_scalings) {
    gpt_config c = small_cfg(PE_ROPE);
    gpt m;
    CHECK_EQ_INT(make_model(&m, &c, 12), 0);
    int seq[48];
    const int N = 48;
    make_tokens(seq, N, 6);
    const rope_scaling_type types[] = { ROPE_SCALING_LINEAR, ROPE_SCALING_NTK, ROPE_SCALING_YARN,
                                        ROPE_SCALING_LLAMA3 };
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        gen_config gc = cache_cfg(N, 20);
        gc.scaling.type = types[i];
        gc.scaling.factor = 3.0;
        gc.scaling.original_max_positions = GMAXT;
        double w1 = check_cache(&m, &gc, seq, N, 6, 1);
        double w2 = check_cache(&m, &gc, seq, N, 20, 5);   /* prefill past L0 */
        if (w1 > 1.0 || w2 > 1.0) fprintf(stderr, "    scaling type %d: worst %.3g, %.3g x tolerance\n", (int)types[i], w1, w2);
    }
    gpt_free(&m);
}

/* YaRN's attention factor (0.1 ln s + 1 on cos and sin) must reach the
 * logits: the same model with the factor forced to 1 gives other logits. */
TEST(generate_yarn_attention_factor_changes_logits) {
    int saved_threads = threads_one();
    gpt_config c = small_cfg(PE_ROPE);
    gpt m;
    CHECK_EQ_INT(make_model(&m, &c, 13), 0);
    int seq[8];
    make_tokens(seq, 8, 7);
    float a[GV], b[GV];
    for (int k = 0; k < 2; k++) {
        gen_config gc = cache_cfg(8, 8);
        gc.scaling.type = ROPE_SCALING_YARN;
        gc.scaling.factor = 4.0;
        gc.scaling.original_max_positions = GMAXT;
        if (k == 1) gc.scaling.attention_factor = 1.0;
        gen_state g;
        CHECK_EQ_INT(gen_init(&g, &m, &gc), GEN_OK);
        if (k == 0) CHECK_NEAR(g.rope.attention_factor, 0.1 * log(4.0) + 1.0, 1e-12);   /* exact formula */
        const float *lg = gen_forward(&g, seq, 8, NULL);
        CHECK(lg != NULL);
        if (lg) memcpy(k ? b : a, lg, sizeof a);
        gen_free(&g);
    }
    CHECK(max_abs_diff(a, b, GV) > 1e-3);   /* a 14% larger rotation: clearly visible */
    gpt_free(&m);
    threads_restore(saved_threads);
}

/* Dynamic NTK changes the base as the sequence grows. With the cached keys
 * re-rotated to the new base, a ONE-layer model equals the full recompute at
 * every length (its keys come from the embeddings alone), for a prefill
 * below and above L0. With more layers no cache can equal the recompute:
 * the new base changes every earlier token's deeper activations, hence their
 * deeper keys and values (docs/generate.md). Stale keys (HF) equal the
 * recompute only until the base first moves. */
TEST(generate_dynamic_ntk_rerotate_exact_one_layer_stale_differs) {
    int saved_threads = threads_one();
    gpt_config c = small_cfg(PE_ROPE);
    c.L = 1;
    gpt m;
    CHECK_EQ_INT(make_model(&m, &c, 14), 0);
    const int N = 48;
    int seq[48];
    make_tokens(seq, N, 8);
    gen_config gc = cache_cfg(N, 20);
    gc.scaling.type = ROPE_SCALING_DYNAMIC;
    gc.scaling.factor = 3.0;
    gc.scaling.original_max_positions = GMAXT;
    check_cache(&m, &gc, seq, N, 6, 1);
    check_cache(&m, &gc, seq, N, 20, 5);   /* prefill past L0: starts scaled */

    gc.dynamic_keys = GEN_DYNAMIC_STALE;
    gen_state g;
    CHECK_EQ_INT(gen_init(&g, &m, &gc), GEN_OK);
    double worst_in = 0.0, worst_past = 0.0;
    for (int n = 0; n < N;) {
        int T = n == 0 ? 4 : 1;
        const float *lg = gen_forward(&g, seq + n, T, NULL);
        CHECK(lg != NULL);
        if (!lg) break;
        n += T;
        CHECK_EQ_INT(gpt_set_rope_scaling(&m, &gc.scaling, n > GMAXT ? n : GMAXT), GPT_OK);
        gpt_forward(&m, seq, NULL, 1, n);
        const float *ref = m.acts.logits + (size_t)(n - 1) * GV;
        double d = max_abs_diff(lg, ref, GV) / CACHE_TOL(max_abs(ref, GV));
        if (n <= GMAXT) worst_in = fmax(worst_in, d);
        else worst_past = fmax(worst_past, d);
    }
    CHECK(worst_in <= 1.0);
    CHECK(worst_past > 10.0);   /* stale rotations: far outside the rounding tolerance */
    gen_free(&g);
    gpt_free(&m);
    threads_restore(saved_threads);
}

/* Two layers: re-rotated dynamic NTK equals the recompute up to L0, and
 * past it runs with a table rebuilt for each new length. */
TEST(generate_dynamic_ntk_two_layers_until_l0) {
    int saved_threads = threads_one();
    gpt_config c = small_cfg(PE_ROPE);
    gpt m;
    CHECK_EQ_INT(make_model(&m, &c, 16), 0);
    const int N = 40;
    int seq[40];
    make_tokens(seq, N, 10);
    gen_config gc = cache_cfg(N, 4);
    gc.scaling.type = ROPE_SCALING_DYNAMIC;
    gc.scaling.factor = 3.0;
    gc.scaling.original_max_positions = GMAXT;
    check_cache(&m, &gc, seq, GMAXT, 4, 1);
    gen_state g;
    CHECK_EQ_INT(gen_init(&g, &m, &gc), GEN_OK);
    const float *lg = gen_forward(&g, seq, 4, NULL);
    for (int n = 4; lg != NULL && n < N; n++) lg = gen_forward(&g, seq + n, 1, NULL);
    CHECK(lg != NULL);
    if (lg) CHECK(isfinite(max_abs(lg, GV)));
    CHECK_EQ_INT(g.rope_len, N);   /* the table follows the length */
    gen_free(&g);
    gpt_free(&m);
    threads_restore(saved_threads);
}

/* Attention over the cache splits (token, head) rows across threads, each
 * with its own score buffer: 1 and 2 threads give the same bits, for a
 * prefill long enough to run in parallel (60 tokens x 2 heads) and decode. */
TEST(generate_threads_same_bits) {
    gpt_config c = small_cfg(PE_ALIBI);
    gpt m;
    CHECK_EQ_INT(make_model(&m, &c, 17), 0);
    int seq[64];
    make_tokens(seq, 64, 11);
    float out[2][4][GV];
    for (int k = 0; k < 2; k++) {
        gen_config gc = cache_cfg(64, 60);
        gc.n_threads = k + 1;
        gen_state g;
        CHECK_EQ_INT(gen_init(&g, &m, &gc), GEN_OK);
        const float *lg = gen_forward(&g, seq, 60, NULL);
        for (int i = 0; i < 4 && lg; i++) {
            memcpy(out[k][i], lg, sizeof out[k][i]);
            if (i < 3) lg = gen_forward(&g, seq + 60 + i, 1, NULL);
        }
        CHECK(lg != NULL);
        gen_free(&g);
    }
    CHECK(memcmp(out[0], out[1], sizeof out[0]) == 0);
    gpt_free(&m);
}

/* ---------------------------------------------------------------- state, errors */

TEST(generate_reset_repeats_and_errors_leave_cache) {
    int saved_threads = threads_one();
    gpt_config c = small_cfg(PE_LEARNED);
    gpt m;
    CHECK_EQ_INT(make_model(&m, &c, 15), 0);
    int seq[GMAXT + 1];
    make_tokens(seq, GMAXT + 1, 9);
    gen_config gc = cache_cfg(GMAXT + 1, 4);
    gen_state g;
    CHECK_EQ_INT(gen_init(&g, &m, &gc), GEN_OK);
    float first[GV];
    const float *lg = gen_forward(&g, seq, 4, NULL);
    CHECK(lg != NULL);
    if (lg) memcpy(first, lg, sizeof first);
    gen_status st = GEN_OK;
    CHECK(gen_forward(&g, seq, 5, &st) == NULL);   /* longer than max_chunk */
    CHECK_EQ_INT(st, GEN_ESHAPE);
    int bad = GV;
    CHECK(gen_forward(&g, &bad, 1, &st) == NULL);
    CHECK_EQ_INT(st, GEN_ETOKEN);
    CHECK_EQ_INT(g.n, 4);
    for (int n = 4; n < GMAXT; n++) CHECK(gen_forward(&g, seq + n, 1, NULL) != NULL);
    CHECK(gen_forward(&g, seq + GMAXT, 1, &st) == NULL);   /* position maxT: no wpe row */
    CHECK_EQ_INT(st, GEN_ERANGE);
    CHECK_EQ_INT(g.n, GMAXT);
    CHECK_EQ_INT(gen_reset(&g), GEN_OK);
    lg = gen_forward(&g, seq, 4, NULL);
    CHECK(lg != NULL);
    if (lg) CHECK(memcmp(first, lg, sizeof first) == 0);   /* same bits after a reset */
    gen_free(&g);

    gc.scaling.type = ROPE_SCALING_LINEAR;   /* scaling a learned model: refused */
    gc.scaling.factor = 2.0;
    CHECK_EQ_INT(gen_init(&g, &m, &gc), GEN_ECONFIG);
    gen_free(&g);
    gc = cache_cfg(4, 5);   /* chunk larger than the capacity */
    CHECK_EQ_INT(gen_init(&g, &m, &gc), GEN_ECONFIG);
    gen_free(&g);
    gpt_free(&m);
    threads_restore(saved_threads);
}

/* ---------------------------------------------------------------- sampler */

TEST(generate_sampler_greedy_topk_topp) {
    sampler s;
    const float lg[6] = { 0.5f, 2.0f, 2.0f, -1.0f, 1.9f, NAN };
    CHECK_EQ_INT(sampler_init(&s, 6, 0.0, 0, 1.0, 1), 0);
    CHECK_EQ_INT(sampler_sample(&s, lg), 1);   /* argmax, lowest id on ties, NaN ignored */
    sampler_free(&s);
    /* top-k 1 and a tiny top-p both leave only the best-ranked token. */
    CHECK_EQ_INT(sampler_init(&s, 6, 1.0, 1, 1.0, 2), 0);
    for (int i = 0; i < 50; i++) CHECK_EQ_INT(sampler_sample(&s, lg), 1);
    sampler_free(&s);
    CHECK_EQ_INT(sampler_init(&s, 6, 1.0, 0, 1e-6, 3), 0);
    for (int i = 0; i < 50; i++) CHECK_EQ_INT(sampler_sample(&s, lg), 1);
    sampler_free(&s);
    /* top-k 3 keeps ids 1, 2, 4 only. */
    CHECK_EQ_INT(sampler_init(&s, 6, 5.0, 3, 1.0, 4), 0);
    int seen[6] = { 0 };
    for (int i = 0; i < 600; i++) seen[sampler_sample(&s, lg)]++;
    CHECK(seen[0] == 0 && seen[3] == 0 && seen[5] == 0);
    CHECK(seen[1] > 0 && seen[2] > 0 && seen[4] > 0);
    sampler_free(&s);
    /* bad settings */
    CHECK_EQ_INT(sampler_init(&s, 6, -1.0, 0, 1.0, 1), -1);
    CHECK_EQ_INT(sampler_init(&s, 6, 1.0, 0, 0.0, 1), -1);
    CHECK_EQ_INT(sampler_init(&s, 6, 1.0, 0, 1.5, 1), -1);
    CHECK_EQ_INT(sampler_init(&s, 6, 1.0, -1, 1.0, 1), -1);
}

/* Frequencies follow softmax(logits / T): logits (0, ln 3) at T = 1 give
 * p(1) = 0.75; at T = 2, p(1) = sqrt3/(1+sqrt3) = 0.634. Top-p 0.7 at T = 1
 * keeps token 1 alone (0.75 >= 0.7). 8000 draws: sd 0.005, tolerance 0.02
 * (4 sd). Same seed, same draws. */
TEST(generate_sampler_frequencies_and_seed) {
    const float lg[2] = { 0.0f, (float)log(3.0) };
    const double temps[2] = { 1.0, 2.0 };
    const double want[2] = { 0.75, sqrt(3.0) / (1.0 + sqrt(3.0)) };
    for (int k = 0; k < 2; k++) {
        sampler s;
        CHECK_EQ_INT(sampler_init(&s, 2, temps[k], 0, 1.0, 100 + k), 0);
        int ones = 0;
        for (int i = 0; i < 8000; i++) ones += sampler_sample(&s, lg);
        CHECK_NEAR(ones / 8000.0, want[k], 0.02);
        sampler_free(&s);
    }
    sampler s, s2;
    CHECK_EQ_INT(sampler_init(&s, 2, 1.0, 0, 0.7, 5), 0);
    for (int i = 0; i < 200; i++) CHECK_EQ_INT(sampler_sample(&s, lg), 1);
    sampler_free(&s);
    CHECK_EQ_INT(sampler_init(&s, 2, 1.0, 0, 0.9, 9), 0);
    CHECK_EQ_INT(sampler_init(&s2, 2, 1.0, 0, 0.9, 9), 0);
    int same = 1;
    for (int i = 0; i < 500; i++) same &= sampler_sample(&s, lg) == sampler_sample(&s2, lg);
    CHECK(same);
    sampler_free(&s);
    sampler_free(&s2);
}

/* Top-p over 256 random logits: every draw lies in the nucleus computed here
 * by brute force (sort all, shortest prefix reaching p), and the draws reach
 * the nucleus's least likely member's neighbourhood (more than one token). */
TEST(generate_sampler_topp_matches_brute_force_nucleus) {
    enum { NV = 256 };
    float lg[NV];
    rng_state r;
    rng_init(&r, 77, 0);
    for (int i = 0; i < NV; i++) lg[i] = (float)(2.0 * rng_normal(&r));
    const double T = 0.7, P = 0.9;
    double pr[NV], sum = 0.0, maxl = -INFINITY;
    for (int i = 0; i < NV; i++) maxl = fmax(maxl, lg[i]);
    for (int i = 0; i < NV; i++) sum += pr[i] = exp((lg[i] - maxl) / T);
    int order[NV];
    for (int i = 0; i < NV; i++) order[i] = i;
    for (int i = 1; i < NV; i++)   /* insertion sort by prob desc, id asc */
        for (int j = i; j > 0 && (pr[order[j]] > pr[order[j - 1]]); j--) {
            int t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    int in_nucleus[NV] = { 0 }, size = 0;
    double acc = 0.0;
    while (size < NV) {
        acc += pr[order[size]];
        in_nucleus[order[size++]] = 1;
        if (acc >= P * sum) break;
    }
    CHECK(size > 3 && size < NV);   /* a real cut for this draw of logits */
    sampler s;
    CHECK_EQ_INT(sampler_init(&s, NV, T, 0, P, 5), 0);
    int outside = 0, distinct = 0, seen[NV] = { 0 };
    for (int i = 0; i < 4000; i++) {
        int t = sampler_sample(&s, lg);
        outside += !in_nucleus[t];
        distinct += !seen[t];
        seen[t] = 1;
    }
    CHECK_EQ_INT(outside, 0);
    CHECK(distinct > size / 2);
    sampler_free(&s);
}

/* ---------------------------------------------------------------- CLI */

#define MAXA 40

/* Runs the binary (see test_run_bin). */
static int run_bin(const char *const *args, char *out, size_t outlen, size_t *out_n, char *err, size_t errlen) {
    return test_run_bin(args, out, outlen, out_n, err, errlen);
}

static int count_lines(const char *s) {
    int n = 0;
    for (; *s; s++) n += *s == '\n';
    return n;
}

#define TINY_MODEL "tests/ref/tiny_rope.bin"
#define TINY_GOLDEN "tests/ref/tiny_rope_greedy.txt"

/* Greedy decoding of the committed tiny model equals the golden file byte
 * for byte (prompt, 200 bytes, newline): prefill, cache, rotation at each
 * absolute position (past the model's 32-token context) and the LM head
 * all take part. Rebuild both with tests/ref/make_tiny_model.sh. */
TEST(generate_cli_greedy_golden) {
    static char out[8192], err[4096], want[8192];
    size_t n = 0;
    const char *a[] = { "generate", "--model", TINY_MODEL, "--prompt", "ROMEO:", "--tokens", "200",
                        "--temperature", "0", "--threads", "1", NULL };
    int rc = run_bin(a, out, sizeof out, &n, err, sizeof err);
    CHECK_EQ_INT(rc, 0);
    unsigned char *g = NULL;
    size_t glen = 0;
    CHECK_EQ_INT(io_read_file(TINY_GOLDEN, &g, &glen, NULL, 0), 0);
    if (g) {
        memcpy(want, g, glen < sizeof want - 1 ? glen : sizeof want - 1);
        CHECK_EQ_INT(n, glen);
        CHECK(n == glen && memcmp(out, g, glen) == 0);
        if (n != glen || memcmp(out, g, glen) != 0) fprintf(stderr, "got:\n%s\nwant:\n%s\n", out, want);
        free(g);
    }
    CHECK(strstr(err, "prefill 6 tokens") != NULL);   /* the speed line */
    CHECK(strstr(err, "decode 199 tokens") != NULL);
    /* Two threads: the same bytes (fixed reduction order). */
    const char *b[] = { "generate", "--model", TINY_MODEL, "--prompt", "ROMEO:", "--tokens", "200",
                        "--temperature", "0", "--threads", "2", NULL };
    static char out2[8192];
    size_t n2 = 0;
    CHECK_EQ_INT(run_bin(b, out2, sizeof out2, &n2, NULL, 0), 0);
    CHECK(n2 == n && memcmp(out, out2, n) == 0);
}

/* Sampling with a seed is reproducible; scalings and both dynamic-key
 * modes run past the training context. */
TEST(generate_cli_sampling_and_scalings) {
    static char o1[4096], o2[4096], err[4096];
    size_t n1 = 0, n2 = 0;
    const char *a[] = { "generate", "--model", TINY_MODEL, "--prompt", "JULIET:", "--tokens", "60",
                        "--temperature", "0.9", "--top-k", "20", "--top-p", "0.95", "--seed", "3", "--threads", "1", NULL };
    CHECK_EQ_INT(run_bin(a, o1, sizeof o1, &n1, NULL, 0), 0);
    CHECK_EQ_INT(run_bin(a, o2, sizeof o2, &n2, NULL, 0), 0);
    CHECK(n1 == n2 && memcmp(o1, o2, n1) == 0);
    CHECK_EQ_INT(n1, 7 + 60 + 1);
    const char *sc[][2] = { { "linear", "rerotate" }, { "ntk", "rerotate" }, { "yarn", "rerotate" },
                            { "llama3", "rerotate" }, { "dynamic", "rerotate" }, { "dynamic", "stale" } };
    for (size_t i = 0; i < sizeof sc / sizeof sc[0]; i++) {
        int dyn = strcmp(sc[i][0], "dynamic") == 0;
        const char *b[] = { "generate", "--model", TINY_MODEL, "--prompt", "ROMEO:", "--tokens", "100",
                            "--temperature", "0", "--threads", "1", "--ctx", "128", "--rope-scaling", sc[i][0],
                            dyn ? "--dynamic-keys" : NULL, sc[i][1], NULL };
        CHECK_EQ_INT(run_bin(b, o1, sizeof o1, &n1, err, sizeof err), 0);
        CHECK_EQ_INT(n1, 6 + 100 + 1);
        CHECK(strstr(err, "factor 4") != NULL);   /* default factor = ctx 128 / context 32 */
    }
}

/* Writes a learned-position checkpoint (random weights) for the CLI. */
static int save_learned(const char *path) {
    gpt m;
    gpt_config c = gpt_config_default();
    c.L = 1;
    c.C = 16;
    c.NH = 2;
    c.maxT = 16;
    if (gpt_init(&m, &c, 3) != GPT_OK) return -1;
    checkpoint ck;
    memset(&ck, 0, sizeof ck);
    ck.cfg = c;
    ck.tc = train_config_default();
    ck.tokenizer = CHECKPOINT_TOKENIZER_BYTES;
    ck.vocab = (uint32_t)c.V;
    snprintf(ck.data_path, sizeof ck.data_path, "none");
    ck.n_params = m.num_params;
    ck.params = m.params_memory;
    ck.m = m.m_memory;
    ck.v = m.v_memory;
    int rc = checkpoint_save(path, &ck, NULL, 0);
    gpt_free(&m);
    return rc;
}

/* Every bad input: exit 2, one line on stderr, nothing on stdout. */
TEST(generate_cli_bad_input_exit_2) {
    char missing[600], corrupt[600], trunc[600], text[600], learned[600];
    snprintf(missing, sizeof missing, "%s/no_such_model.bin", test_tmp_dir());
    snprintf(corrupt, sizeof corrupt, "%s/gen_corrupt.bin", test_tmp_dir());
    snprintf(trunc, sizeof trunc, "%s/gen_trunc.bin", test_tmp_dir());
    snprintf(text, sizeof text, "%s/gen_text.bin", test_tmp_dir());
    snprintf(learned, sizeof learned, "%s/gen_learned.bin", test_tmp_dir());
    unsigned char *d = NULL;
    size_t len = 0;
    CHECK_EQ_INT(io_read_file(TINY_MODEL, &d, &len, NULL, 0), 0);
    if (d == NULL) return;
    FILE *f = fopen(trunc, "wb");
    CHECK(f != NULL);
    if (f) { fwrite(d, 1, len / 2, f); fclose(f); }
    d[len / 2] ^= 0x40;   /* one flipped bit in the weights: CRC mismatch */
    f = fopen(corrupt, "wb");
    CHECK(f != NULL);
    if (f) { fwrite(d, 1, len, f); fclose(f); }
    free(d);
    f = fopen(text, "wb");
    CHECK(f != NULL);
    if (f) { fputs("To be, or not to be, that is the question\n", f); fclose(f); }
    CHECK_EQ_INT(save_learned(learned), 0);

#define M TINY_MODEL
    const char *cases[][16] = {
        { "generate", "--model", missing, NULL },
        { "generate", "--model", corrupt, NULL },
        { "generate", "--model", trunc, NULL },
        { "generate", "--model", text, NULL },
        { "generate", "--prompt", "x", NULL },   /* no --model */
        { "generate", "--model", M, "--temperature", "-1", NULL },
        { "generate", "--model", M, "--top-p", "0", NULL },
        { "generate", "--model", M, "--top-p", "1.5", NULL },
        { "generate", "--model", M, "--top-k", "-2", NULL },
        { "generate", "--model", M, "--tokens", "0", NULL },
        { "generate", "--model", M, "--tokens", "12x", NULL },
        { "generate", "--model", M, "--bogus", "1", NULL },
        { "generate", "--model", M, "--prompt", "", NULL },
        { "generate", "--model", M, "--rope-scaling", "cubic", NULL },
        { "generate", "--model", M, "--rope-factor", "2", NULL },   /* factor without a scaling */
        { "generate", "--model", M, "--dynamic-keys", "stale", NULL },   /* without dynamic */
        { "generate", "--model", M, "--prompt", "ROMEO:", "--tokens", "100", "--ctx", "50", NULL },
        { "generate", "--model", learned, "--prompt", "ROMEO:", "--tokens", "12", NULL },   /* 17 > 16 */
        { "generate", "--model", learned, "--rope-scaling", "yarn", "--tokens", "4", NULL },
    };
#undef M
    static char out[4096], err[4096];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t n = 0;
        int rc = run_bin(cases[i], out, sizeof out, &n, err, sizeof err);
        if (rc != 2 || count_lines(err) != 1 || n != 0)
            fprintf(stderr, "case %zu (%s %s): rc %d, stdout %zu bytes, stderr: %s\n", i, cases[i][1], cases[i][2],
                    rc, n, err);
        CHECK_EQ_INT(rc, 2);
        CHECK_EQ_INT(count_lines(err), 1);
        CHECK_EQ_INT(n, 0);
    }
    /* The learned model runs up to its table: prompt 6 + 11 tokens - 1 = 16. */
    const char *ok[] = { "generate", "--model", learned, "--prompt", "ROMEO:", "--tokens", "11", NULL };
    CHECK_EQ_INT(run_bin(ok, out, sizeof out, NULL, err, sizeof err), 0);
}
