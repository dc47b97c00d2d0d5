/*
 * gen_bench.c — generation speed of the Llama model (src/model/llama.c) on
 * the llama2.c stories15M and stories110M shapes with random weights, fp32,
 * at 1 thread and at all threads. One line per case:
 *   gen_bench shape=S dtype=fp32 threads=N prefill_tok_s=P decode_tok_s=D
 *     roofline_tok_s=R roofline_fraction=D/R ref_decode_tok_s=X
 * Decoding one token reads every weight once, so its ceiling is memory
 * bandwidth: roofline = streaming-read bandwidth (measured here, same thread
 * count, a 1 GiB buffer, several times the largest L3; probed before and
 * after the decode loops, the higher kept) / weight bytes per token
 * (all weights; of the token embedding only the classifier use counts; KV
 * cache reads left out — at these positions they add < 2.5% to the fp32
 * bytes and < 5% to the bf16 ones).
 * ref = a plain decode loop written below the straightforward way (matvecs
 * as simple OpenMP loops, RoPE angles recomputed per token with powf/cosf/
 * sinf), started from a copy of the model's KV cache, so both decode the same
 * positions. Before timing, the model's decode logits are checked against
 * the reference's (relative error < 1e-3: float RoPE angles in the reference
 * vs double-exact tables). Figures are medians of per-token (decode) or
 * per-pass (prefill) times after a warm-up; each loop is capped at
 * CASE_BUDGET_S (the sample counts are printed).
 * Prefill: the fp32 model's layer weights are packed once at setup
 * (llama_prepack), as a program running many prompts would keep them; the
 * figure without that (each matmul packing its weight per call, which a
 * single prompt pays once either way) and the one-time pack are printed
 * below each line.
 * dtype=bf16 lines: decode from bf16 copies of the matrices (llama_use_bf16),
 * roofline over the bf16 bytes; their prefill is the fp32 path (the same
 * figure) and ref is the same fp32 reference loop; both decode the same
 * positions, one after the other.
 * Where the fp32 and bf16 weights together overflow twice the last-level
 * cache (stories110M), a paired line follows: PAIRS rounds of one bandwidth
 * probe, one fp32 token and one bf16 token, and the medians of the per-round
 * roofline fraction and bf16/fp32 ratio (figures a fraction of a second
 * apart, so the host's drift between the separate loops cancels out).
 * Usage: gen_bench [quick] [cpu]   (quick: stories15m only; cpu: time by
 * process CPU time / threads, for a loaded host — the default is wall time)
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "bench_util.h"
#include "model/llama.h"
#include "nn/matvec.h"

/* Each timed loop stops after this many seconds (at least 2 samples; 1 for
 * prefill), so a loaded machine cannot push the run past a minute. */
#define CASE_BUDGET_S 1.5
/* most prefill passes timed (a stories15M pass takes ~10 ms, so the
 * budget, not this, bounds the larger shape) */
#define PREFILL_PASSES 16
/* alternating rounds of the paired comparison (big shapes only) */
#define PAIRS 12

/* cpu mode (a loaded, shared host): process CPU time divided by the thread
 * count, which leaves out the time this process was not running. */
static int use_cpu_clock;
static int cur_threads = 1;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(use_cpu_clock ? CLOCK_PROCESS_CPUTIME_ID : CLOCK_MONOTONIC, &ts);
    double t = (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
    return use_cpu_clock ? t / cur_threads : t;
}

/* A timed loop goes on while its measured time is under the budget and its
 * wall time under twice that (the cpu clock can run much slower than the
 * wall on a loaded host). */
static int in_budget(double spent, double wall0) {
    return spent < CASE_BUDGET_S && bench_wall_s() - wall0 < 2 * CASE_BUDGET_S;
}

static void set_threads(int n) {
    cur_threads = n;
#ifdef _OPENMP
    omp_set_num_threads(n);
#else
    (void)n;
#endif
}

/* ------------------------------------------------ reference decode loop */

typedef struct {
    const llama_config *c;
    const llama_weights *w;
    float *kc, *vc;                 /* (L, seq_len, kv_dim) */
    float *x, *xb, *xb2, *q, *hb, *hb2, *att, *logits;
} ref_state;

static void ref_matvec(float *out, const float *x, const float *w, int n, int d) {
#pragma omp parallel for
    for (int i = 0; i < d; i++) {
        float v = 0.0f;
        for (int j = 0; j < n; j++) v += w[(size_t)i * n + j] * x[j];
        out[i] = v;
    }
}

static void ref_rmsnorm(float *o, const float *x, const float *w, int n) {
    float ss = 0.0f;
    for (int j = 0; j < n; j++) ss += x[j] * x[j];
    ss = 1.0f / sqrtf(ss / n + 1e-5f);
    for (int j = 0; j < n; j++) o[j] = w[j] * (ss * x[j]);
}

static void ref_step(ref_state *s, int token, int pos) {
    const llama_config *c = s->c;
    const llama_weights *w = s->w;
    int C = c->dim, H = c->hidden_dim, NH = c->n_heads, HS = C / NH, kvd = c->n_kv_heads * HS;
    int group = NH / c->n_kv_heads;
    memcpy(s->x, w->token_embedding + (size_t)token * C, (size_t)C * sizeof(float));
    for (int l = 0; l < c->n_layers; l++) {
        size_t off = (size_t)l * c->seq_len * kvd;
        float *k = s->kc + off + (size_t)pos * kvd, *v = s->vc + off + (size_t)pos * kvd;
        ref_rmsnorm(s->xb, s->x, w->rms_att + (size_t)l * C, C);
        ref_matvec(s->q, s->xb, w->wq + (size_t)l * C * C, C, C);
        ref_matvec(k, s->xb, w->wk + (size_t)l * kvd * C, C, kvd);
        ref_matvec(v, s->xb, w->wv + (size_t)l * kvd * C, C, kvd);
        for (int i = 0; i < C; i += 2) {   /* angles recomputed in float every token */
            int hd = i % HS;
            float freq = 1.0f / powf((float)c->rope_base, hd / (float)HS);
            float val = pos * freq, fcr = cosf(val), fci = sinf(val);
            for (int r = 0; r < (i < kvd ? 2 : 1); r++) {
                float *vec = r == 0 ? s->q : k;
                float v0 = vec[i], v1 = vec[i + 1];
                vec[i] = v0 * fcr - v1 * fci;
                vec[i + 1] = v0 * fci + v1 * fcr;
            }
        }
#pragma omp parallel for
        for (int h = 0; h < NH; h++) {
            const float *q = s->q + (size_t)h * HS;
            float *att = s->att + (size_t)h * c->seq_len;
            size_t ko = (size_t)(h / group) * HS;
            float mx = -INFINITY, sum = 0.0f;
            for (int t = 0; t <= pos; t++) {
                const float *kt = s->kc + off + (size_t)t * kvd + ko;
                float sc = 0.0f;
                for (int i = 0; i < HS; i++) sc += q[i] * kt[i];
                att[t] = sc / sqrtf((float)HS);
                if (att[t] > mx) mx = att[t];
            }
            for (int t = 0; t <= pos; t++) {
                att[t] = expf(att[t] - mx);
                sum += att[t];
            }
            float *o = s->xb + (size_t)h * HS;
            memset(o, 0, (size_t)HS * sizeof(float));
            for (int t = 0; t <= pos; t++) {
                const float *vt = s->vc + off + (size_t)t * kvd + ko;
                float a = att[t] / sum;
                for (int i = 0; i < HS; i++) o[i] += a * vt[i];
            }
        }
        ref_matvec(s->xb2, s->xb, w->wo + (size_t)l * C * C, C, C);
        for (int i = 0; i < C; i++) s->x[i] += s->xb2[i];
        ref_rmsnorm(s->xb, s->x, w->rms_ffn + (size_t)l * C, C);
        ref_matvec(s->hb, s->xb, w->w1 + (size_t)l * H * C, C, H);
        ref_matvec(s->hb2, s->xb, w->w3 + (size_t)l * H * C, C, H);
        for (int i = 0; i < H; i++) s->hb[i] = s->hb[i] / (1.0f + expf(-s->hb[i])) * s->hb2[i];
        ref_matvec(s->xb2, s->hb, w->w2 + (size_t)l * C * H, H, C);
        for (int i = 0; i < C; i++) s->x[i] += s->xb2[i];
    }
    ref_rmsnorm(s->xb, s->x, w->rms_final, C);
    ref_matvec(s->logits, s->xb, w->wcls, C, c->vocab_size);
}

/* ------------------------------------------------ cases */

typedef struct {
    const char *name;
    int dim, hidden, layers, heads, kv_heads, vocab, seq_len;
    int prefill, decode, ref_decode;   /* tokens */
} shape;

static uint64_t xs(uint64_t *s) {   /* xorshift64 (Marsaglia 2003): cheap fill */
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Last-level cache size from sysconf (glibc; a guess of 256 MB where it
 * says nothing), for deciding whether two weight sets can stay cached. */
static double llc_bytes(void) {
    long v = -1;
#ifdef _SC_LEVEL3_CACHE_SIZE
    v = sysconf(_SC_LEVEL3_CACHE_SIZE);
#endif
    return v > 0 ? (double)v : 256.0 * 1024 * 1024;
}

static double stream_gbs(const float *buf, size_t n, int reps) {
    double t[8];
    volatile float sink = matvec_read_sum(buf, n);   /* warm-up (pages, threads) */
    for (int r = 0; r < reps; r++) {
        double t0 = now_s();
        sink += matvec_read_sum(buf, n);
        t[r] = now_s() - t0;
    }
    (void)sink;
    return (double)n * sizeof(float) / bench_median(t, reps) / 1e9;
}

/* Prefill tok/s: up to PREFILL_PASSES passes of P tokens within the
 * budget; the first is a warm-up, dropped when there are more. t: scratch
 * for PREFILL_PASSES times; *n:
 * the samples kept. -1 on a forward error. */
static double time_prefill(llama_model *m, const int *tok, int P, double *t, int *n) {
    int np = 0;
    for (double spent = 0.0, w0 = bench_wall_s(); np < PREFILL_PASSES && (np == 0 || in_budget(spent, w0)); np++) {
        double t0 = now_s();
        if (llama_forward(m, tok, P, 0, 0)) return -1;
        t[np] = now_s() - t0;
        spent += t[np];
    }
    *n = np > 1 ? np - 1 : 1;
    return np > 1 ? P / bench_median(t + 1, np - 1) : P / t[0];
}

/* Decode tok/s: one token at a time from position P + 1 on, at least 2
 * and at most max tokens within the budget; median of the per-token times.
 * t: scratch for max times; *n: the tokens timed. -1 on a forward error. */
static double time_decode(llama_model *m, const int *tok, int P, int max, double *t, int *n) {
    int k = 0;
    for (double spent = 0.0, w0 = bench_wall_s(); k < max && (k < 2 || in_budget(spent, w0)); k++) {
        double t0 = now_s();
        if (llama_forward(m, &tok[P + 1 + k], 1, P + 1 + k, 0)) return -1;
        t[k] = now_s() - t0;
        spent += t[k];
    }
    *n = k;
    return 1.0 / bench_median(t, k);
}

static int run_shape(const shape *sh, int all_threads, const float *bwbuf, size_t bwn) {
    llama_config c = llama_config_default();
    c.dim = sh->dim, c.hidden_dim = sh->hidden, c.n_layers = sh->layers, c.n_heads = sh->heads;
    c.n_kv_heads = sh->kv_heads, c.vocab_size = sh->vocab, c.seq_len = sh->seq_len, c.shared_classifier = 1;
    size_t n = llama_weights_floats(&c);
    float *params = malloc(n * sizeof(float));
    if (!params) return 1;
    uint64_t seed = 0x9E3779B97F4A7C15ULL;
    const float a = 0.02f * sqrtf(3.0f);   /* uniform with std 0.02 */
    for (size_t i = 0; i < n; i++) params[i] = a * (2.0f * (float)(xs(&seed) >> 40) / 16777216.0f - 1.0f);
    llama_weights w;
    llama_weights_point(&w, &c, params, 0);
    size_t LC = (size_t)c.n_layers * c.dim;
    for (size_t i = 0; i < LC; i++) ((float *)w.rms_att)[i] = ((float *)w.rms_ffn)[i] = 1.0f;
    for (int i = 0; i < c.dim; i++) ((float *)w.rms_final)[i] = 1.0f;
    double wbytes = 4.0 * (double)(n - (c.shared_classifier ? 0 : (size_t)c.vocab_size * c.dim));

    llama_model m, mb;   /* fp32 decode; bf16 decode (same weights, own cache) */
    if (llama_init_borrowed(&m, &c, &w, sh->prefill)) return 1;
    double tp0 = bench_wall_s();
    if (llama_prepack(&m)) return 1;
    double t_pack = bench_wall_s() - tp0;
    if (llama_init_borrowed(&mb, &c, &w, sh->prefill) || llama_use_bf16(&mb)) return 1;
    /* bf16 bytes per token: the matrices at 2 bytes, RMSNorm weights at 4; an
     * unshared embedding is only looked up (not counted) */
    size_t n_rms = (size_t)(2 * c.n_layers + 1) * c.dim;
    double wbytes16 = 2.0 * (double)(n - n_rms - (c.shared_classifier ? 0 : (size_t)c.vocab_size * c.dim)) +
                      4.0 * (double)n_rms;
    int kvd = c.n_kv_heads * (c.dim / c.n_heads);
    size_t kvn = (size_t)c.n_layers * c.seq_len * kvd;
    ref_state rs = { &c, &w, malloc(kvn * 4), malloc(kvn * 4), malloc((size_t)c.dim * 4), malloc((size_t)c.dim * 4),
                     malloc((size_t)c.dim * 4), malloc((size_t)c.dim * 4), malloc((size_t)c.hidden_dim * 4),
                     malloc((size_t)c.hidden_dim * 4), malloc((size_t)c.n_heads * c.seq_len * 4),
                     malloc((size_t)c.vocab_size * 4) };
    int ntok = sh->prefill + sh->decode + 2 + PAIRS;
    int *tok = malloc((size_t)ntok * sizeof(int));
    float *dec_logits = malloc((size_t)c.vocab_size * 4);
    double *t = malloc(sizeof(double) * (size_t)(sh->decode + sh->ref_decode + PREFILL_PASSES));
    double *t16 = malloc(sizeof(double) * (size_t)(sh->decode + 8));
    if (!rs.kc || !rs.vc || !rs.logits || !tok || !dec_logits || !t || !t16) return 1;
    for (int i = 0; i < ntok; i++) tok[i] = (int)(xs(&seed) % (uint64_t)c.vocab_size);

    int counts[2] = { 1, all_threads };
    for (int ci = 0; ci < (all_threads > 1 ? 2 : 1); ci++) {
        int nt = counts[ci];
        set_threads(nt);
        double gbs = stream_gbs(bwbuf, bwn, 3);
        /* prefill on m (prepacked weights) and on mb (not: each matmul
         * packs its weight per call, as a single prompt would) */
        int np = 0, nu = 0;
        double prefill = time_prefill(&m, tok, sh->prefill, t, &np);
        double prefill_unpacked = time_prefill(&mb, tok, sh->prefill, t, &nu);
        if (prefill < 0 || prefill_unpacked < 0) return 1;
        /* same state for the reference: copy the cache after the prefill */
        memcpy(rs.kc, m.key_cache, kvn * 4);
        memcpy(rs.vc, m.value_cache, kvn * 4);
        int P = sh->prefill;
        if (llama_forward(&m, &tok[P], 1, P, 0)) return 1;
        memcpy(dec_logits, m.logits, (size_t)c.vocab_size * 4);
        ref_step(&rs, tok[P], P);
        double maxd = 0.0, maxv = 0.0;
        for (int i = 0; i < c.vocab_size; i++) {
            maxd = fmax(maxd, fabs((double)dec_logits[i] - rs.logits[i]));
            maxv = fmax(maxv, fabs((double)rs.logits[i]));
        }
        if (!(maxd <= 1e-3 * maxv + 1e-6)) {
            fprintf(stderr, "gen_bench: %s decode logits differ from the reference: max |diff| %.3g (max |logit| %.3g)\n",
                    sh->name, maxd, maxv);
            return 1;
        }
        /* bf16 from the same prefilled state (the prefill itself is the fp32
         * path, so its figure is the one above). */
        if (llama_forward(&mb, tok, P, 0, 0) || llama_forward(&mb, &tok[P], 1, P, 0)) return 1;
        double maxd16 = 0.0;
        for (int i = 0; i < c.vocab_size; i++) maxd16 = fmax(maxd16, fabs((double)mb.logits[i] - dec_logits[i]));
        if (!(maxd16 <= 3e-2 * maxv + 1e-6)) {   /* the bound of test llama_bf16_decode_logit_error_bounded */
            fprintf(stderr, "gen_bench: %s bf16 logits differ from fp32: max |diff| %.3g (max |logit| %.3g)\n",
                    sh->name, maxd16, maxv);
            return 1;
        }
        /* Each model decodes alone (as a generation would): alternating
         * them measured slower for fp32, as the two weight sets (90 MB for
         * stories15m) then no longer fit the last-level cache together. */
        int nd = 0, nb = 0;
        double decode = time_decode(&m, tok, P, sh->decode, t, &nd);
        double decode16 = time_decode(&mb, tok, P, sh->decode, t16, &nb);
        if (decode < 0 || decode16 < 0) return 1;
        int nr = 0;
        for (double spent = 0.0, w0 = bench_wall_s(); nr < sh->ref_decode && (nr < 2 || in_budget(spent, w0)); nr++) {
            double t0 = now_s();
            ref_step(&rs, tok[P + 1 + nr], P + 1 + nr);
            t[nr] = now_s() - t0;
            spent += t[nr];
        }
        double ref = 1.0 / bench_median(t, nr);
        /* The bandwidth again after the decode loops, the higher of the two
         * kept: on this shared host a probe that falls in a slow moment
         * would otherwise lower the roofline and flatter the fraction. */
        const double gbs2 = stream_gbs(bwbuf, bwn, 3);
        if (gbs2 > gbs) gbs = gbs2;
        double roof = gbs * 1e9 / wbytes, roof16 = gbs * 1e9 / wbytes16;
        printf("gen_bench shape=%s dtype=fp32 threads=%d prefill_tok_s=%.1f decode_tok_s=%.1f roofline_tok_s=%.1f "
               "roofline_fraction=%.3f ref_decode_tok_s=%.1f\n",
               sh->name, nt, prefill, decode, roof, decode / roof, ref);
        printf("  (%s: read bandwidth %.2f GB/s, %.1f MB of weights per token, logits vs reference max |diff| %.2g; "
               "samples prefill %d x %d tokens, decode %d, ref %d; prefill/decode %.1fx)\n",
               sh->name, gbs, wbytes / 1e6, maxd, np, sh->prefill, nd, nr, prefill / decode);
        printf("  (%s: prefill with prepacked layer weights (llama_prepack, packed once in %.1f ms at setup); "
               "without: %.1f tok/s, %.1fx decode)\n",
               sh->name, t_pack * 1e3, prefill_unpacked, prefill_unpacked / decode);
        printf("gen_bench shape=%s dtype=bf16 threads=%d prefill_tok_s=%.1f decode_tok_s=%.1f roofline_tok_s=%.1f "
               "roofline_fraction=%.3f ref_decode_tok_s=%.1f\n",
               sh->name, nt, prefill, decode16, roof16, decode16 / roof16, ref);
        printf("  (%s bf16: %.1f MB per token, decode %.2fx fp32, logits vs fp32 max |diff| %.2g, decode samples %d)\n",
               sh->name, wbytes16 / 1e6, decode16 / decode, maxd16, nb);
        /* Paired: when the two weight sets together overflow the last-level
         * cache, neither stays cached between its tokens anyway, so the
         * probe, an fp32 token and a bf16 token can alternate: each ratio
         * then compares figures taken within ~0.1 s of each other, which
         * this host's drift over the seconds of the loops above does not
         * reach. */
        if (wbytes + wbytes16 > 2.0 * llc_bytes()) {
            double rb[PAIRS], rf[PAIRS];
            for (int k = 0; k < PAIRS; k++) {
                double t0 = now_s();
                volatile float sink = matvec_read_sum(bwbuf, bwn);
                (void)sink;
                double g = (double)bwn * sizeof(float) / (now_s() - t0);
                t0 = now_s();
                if (llama_forward(&m, &tok[P + 1 + nd + k], 1, P + 1 + nd + k, 0)) return 1;
                double d32 = now_s() - t0;
                t0 = now_s();
                if (llama_forward(&mb, &tok[P + 1 + nb + k], 1, P + 1 + nb + k, 0)) return 1;
                double d16 = now_s() - t0;
                rb[k] = d32 / d16;
                rf[k] = wbytes / d32 / g;
            }
            qsort(rb, PAIRS, sizeof *rb, bench_cmp_double);
            qsort(rf, PAIRS, sizeof *rf, bench_cmp_double);
            printf("  (%s paired, %d rounds of probe + fp32 token + bf16 token: fp32 roofline_fraction median %.3f "
                   "[q1 %.3f, q3 %.3f], bf16/fp32 decode median %.2fx [q1 %.2f, q3 %.2f])\n",
                   sh->name, PAIRS, rf[PAIRS / 2], rf[PAIRS / 4], rf[3 * PAIRS / 4], rb[PAIRS / 2], rb[PAIRS / 4],
                   rb[3 * PAIRS / 4]);
        }
        fflush(stdout);
    }
    set_threads(all_threads);
    llama_free(&mb);
    llama_free(&m);
    free(rs.kc), free(rs.vc), free(rs.x), free(rs.xb), free(rs.xb2), free(rs.q), free(rs.hb), free(rs.hb2);
    free(rs.att), free(rs.logits), free(tok), free(dec_logits), free(t), free(t16), free(params);
    return 0;
}

int main(int argc, char **argv) {
    if (bench_wants_help(argc, argv, "gen_bench [quick] [cpu]   (quick: stories15m only; cpu: process CPU time)")) return 0;
    int quick = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "quick") == 0) quick = 1;
        else if (strcmp(argv[i], "cpu") == 0) use_cpu_clock = 1;
        else {
            fprintf(stderr, "gen_bench: unknown argument '%s' (expected quick and/or cpu)\n", argv[i]);
            return 2;
        }
    }
    int all = 1;
#ifdef _OPENMP
    all = omp_get_max_threads();
#endif
    char cpu[256];
    bench_cpu_name(cpu, sizeof cpu);
    printf("gen_bench: cpu \"%s\", all threads = %d, matvec isa %s, clock %s\n", cpu, all,
           matvec_isa_name(matvec_isa_best()), use_cpu_clock ? "process cpu time / threads" : "wall");
    size_t bwn = (size_t)256 << 20;   /* 1 GiB of floats: 4x a 260 MB L3 */
    float *bw = malloc(bwn * sizeof(float));
    if (!bw) return 1;
#pragma omp parallel for schedule(static)
    for (long long i = 0; i < (long long)bwn; i++) bw[i] = (float)(i & 1023);   /* touch every page */
    static const shape shapes[] = {
        { "stories15m", 288, 768, 6, 6, 6, 32000, 256, 64, 64, 32 },
        { "stories110m", 768, 2048, 12, 12, 12, 32000, 1024, 64, 24, 12 },
    };
    double t0 = bench_wall_s();
    for (int s = 0; s < (quick ? 1 : 2); s++)
        if (run_shape(&shapes[s], all, bw, bwn)) {
            fprintf(stderr, "gen_bench: %s failed\n", shapes[s].name);
            free(bw);
            return 1;
        }
    printf("gen_bench: total %.1f s\n", bench_wall_s() - t0);
    free(bw);
    return 0;
}
