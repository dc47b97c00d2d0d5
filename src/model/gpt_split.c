/*
 * gpt_split.c — the batch cut between threads (see gpt_split.h).
 */
#include "model/gpt_split.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

int gpt_split_ways(const gpt *main, int threads, int B) {
    if (!main || threads < 2 || B % threads != 0 || main->num_params > GPT_SPLIT_MAX_PARAMS) return 1;
    return threads;
}

gpt_status gpt_split_init(gpt_split *s, const gpt *main, int k) {
    if (s == NULL) return GPT_ENULL;
    memset(s, 0, sizeof *s);
    s->k = 1;
    if (k <= 1 || main == NULL) return GPT_OK;
    s->twins = calloc((size_t)k - 1, sizeof *s->twins);
    if (!s->twins) return GPT_ENOMEM;
    for (int t = 0; t < k - 1; t++) {
        gpt_status st = gpt_init(&s->twins[t], &main->cfg, 0);   /* weights copied in before each forward */
        if (st != GPT_OK) {
            for (int u = 0; u < t; u++) gpt_free(&s->twins[u]);
            free(s->twins);
            memset(s, 0, sizeof *s);
            s->k = 1;
            return st;
        }
    }
    for (int t = 0; t < k - 1; t++) {
        gpt *g = &s->twins[t];
        /* a twin never steps: no AdamW moments, no decay mask, and no
         * weights of its own: it reads the main model's (gpt_split_forward
         * points it there before each forward), which nothing writes while
         * the parts run */
        free(g->m_memory);
        free(g->v_memory);
        free(g->decay_mask);
        free(g->params_memory);
        g->m_memory = g->v_memory = g->params_memory = NULL;
        g->decay_mask = NULL;
        g->params = main->params;
        g->mm.backend = main->mm.backend;   /* its scratch is still empty */
        g->mm.isa = main->mm.isa;
        g->mm.kernel = main->mm.kernel;   /* its own timings (matmul_tune.h) */
    }
    s->k = k;
    return GPT_OK;
}

void gpt_split_free(gpt_split *s) {
    if (!s) return;
    for (int t = 0; t < s->k - 1; t++) gpt_free(&s->twins[t]);
    free(s->twins);
    memset(s, 0, sizeof *s);
    s->k = 1;
}

double gpt_split_bytes(const gpt_split *s) {
    double b = 0.0;
    for (int t = 0; s && t < s->k - 1; t++) {
        /* what a twin holds: its gradients, activations and matmul scratch
         * (its weights, AdamW m, v and mask were freed at init) */
        const gpt *g = &s->twins[t];
        b += (double)g->num_params * sizeof(float) +
             4.0 * ((double)g->acts_capacity + (double)g->gacts_capacity + (double)g->mm.scratch_floats);
    }
    return b;
}

static gpt *part_model(gpt_split *s, gpt *main, int t) { return t == 0 ? main : &s->twins[t - 1]; }

/* Every part on one thread, its layers single-threaded inside. */
static void one_thread_inside(void) {
#ifdef _OPENMP
    omp_set_num_threads(1);   /* this task's ICV: the layers' regions get one thread */
#endif
}

float gpt_split_forward(gpt_split *s, gpt *main, const int *inp, const int *targets, int B, int T) {
    if (s == NULL || main == NULL) return main ? gpt_forward(main, inp, targets, B, T) : NAN;
    s->active = 0;
    const int k = s->k;
    if (k <= 1 || B % k != 0 || targets == NULL || main->on_layer_grads != NULL)
        return gpt_forward(main, inp, targets, B, T);
    enum { KMAX = 64 };
    if (k > KMAX) return gpt_forward(main, inp, targets, B, T);
    const int Bk = B / k;
    const size_t part = (size_t)Bk * (size_t)T;
    for (int t = 0; t < k - 1; t++) s->twins[t].params = main->params;   /* views of main's weights */
    float loss[KMAX];
    gpt_status st[KMAX];
#ifdef _OPENMP
#pragma omp parallel for schedule(static, 1) num_threads(k)
#endif
    for (int t = 0; t < k; t++) {
        one_thread_inside();
        gpt *g = part_model(s, main, t);
        loss[t] = gpt_forward(g, inp + (size_t)t * part, targets + (size_t)t * part, Bk, T);
        st[t] = g->status;
    }
    float sum = 0.0f;
    for (int t = 0; t < k; t++) {
        if (st[t] != GPT_OK) {
            main->status = st[t];
            return NAN;
        }
        sum += loss[t];
    }
    s->active = 1;
    main->mean_loss = sum / (float)k;
    return main->mean_loss;
}

gpt_status gpt_split_backward(gpt_split *s, gpt *main, float scale, int overwrite) {
    if (main == NULL) return GPT_ENULL;
    if (s == NULL || !s->active) return gpt_backward_ex(main, scale, overwrite);
    s->active = 0;
    const int k = s->k;   /* <= 64: a larger k never activates the split */
    gpt_status st[64];
    const float sk = scale / (float)k;
#ifdef _OPENMP
#pragma omp parallel for schedule(static, 1) num_threads(k)
#endif
    for (int t = 0; t < k; t++) {
        one_thread_inside();
        /* the main's part follows the caller's overwrite; the twins' grads
         * hold only this batch, so they are always overwritten */
        st[t] = gpt_backward_ex(part_model(s, main, t), sk, t == 0 ? overwrite : 1);
    }
    for (int t = 0; t < k; t++)
        if (st[t] != GPT_OK) return main->status = st[t];
    float *g = main->grads_memory;
    const long long n = (long long)main->num_params;
#ifdef _OPENMP
#pragma omp parallel for schedule(static)
#endif
    for (long long i = 0; i < n; i++) {
        float v = g[i];
        for (int t = 0; t < k - 1; t++) v += s->twins[t].grads_memory[i];
        g[i] = v;
    }
    return main->status = GPT_OK;
}
