/*
 * cmd_generate_llama.c — generation from llama2.c files: maps the model
 * (llama2c.h), loads tokenizer.bin (bpe.h) and checks it holds exactly the
 * model's vocabulary, encodes the prompt (BOS + sentencepiece BPE for
 * Llama-style vocabularies, raw bytes for byte vocabularies), runs it in
 * one batched prefill, then decodes one token at a time from the KV cache,
 * streaming each piece as it is chosen (leading space dropped after BOS).
 * A sentencepiece-style model stops early at BOS or EOS, as llama2.c's
 * run.c does. Prefill and decode tokens/s go to stderr at the end.
 * Positions are bounded by the file's seq_len: asking for more is an error,
 * not a silent clamp. --dtype bf16 decodes from bf16 copies of the matrices
 * (llama_use_bf16: half the bytes per token; prefill stays fp32).
 */
#define _POSIX_C_SOURCE 200809L
#include "model/cmd_generate_llama.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "data/bpe.h"
#include "model/checkpoint.h"
#include "model/llama.h"
#include "model/llama2c.h"
#include "model/sampler.h"
#include "util/args.h"

#define PROG "ropegpt generate"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int llama2c_wants_generate(int argc, char **argv) {
    for (int i = 0; i < argc; i++)
        if (strcmp(argv[i], "--tokenizer") == 0 || strncmp(argv[i], "--tokenizer=", 12) == 0) return 1;
    return 0;
}

static const char *const dtype_names[] = { "fp32", "bf16", NULL };

enum { Q_MODEL, Q_TOKENIZER, Q_PROMPT, Q_TOKENS, Q_TEMP, Q_TOPK, Q_TOPP, Q_SEED, Q_THREADS, Q_DTYPE, Q_COUNT };

int llama2c_generate_cmd(int argc, char **argv) {
    const char *model = NULL, *tokpath = NULL, *prompt = NULL;
    int tokens = 256, top_k = 0, threads = 0, dtype = 0;
    double temperature = 0.8, top_p = 0.9;
    uint64_t seed = 42;
    args_spec s[Q_COUNT] = {
        [Q_MODEL] = { .name = "--model", .kind = ARG_STR, .dst = &model, .help = "llama2.c legacy model file" },
        [Q_TOKENIZER] = { .name = "--tokenizer", .kind = ARG_STR, .dst = &tokpath,
                          .help = "llama2.c tokenizer.bin with the model's vocabulary" },
        [Q_PROMPT] = { .name = "--prompt", .kind = ARG_STR, .dst = &prompt, .help = "text to continue" },
        [Q_TOKENS] = { .name = "--tokens", .kind = ARG_INT, .dst = &tokens, .help = "tokens to generate",
                       .min = 1, .max = LLAMA_MAX_SEQ },
        [Q_TEMP] = { .name = "--temperature", .kind = ARG_DOUBLE, .dst = &temperature,
                     .help = "softmax temperature, 0 = greedy", .min = 0, .max = 100 },
        [Q_TOPK] = { .name = "--top-k", .kind = ARG_INT, .dst = &top_k,
                     .help = "sample among the k most likely tokens, 0 = all", .min = 0, .max = LLAMA_MAX_VOCAB },
        [Q_TOPP] = { .name = "--top-p", .kind = ARG_DOUBLE, .dst = &top_p,
                     .help = "nucleus probability mass, 1 = all", .min = 0, .max = 1, .min_open = 1 },
        [Q_SEED] = { .name = "--seed", .kind = ARG_U64, .dst = &seed, .help = "sampling seed" },
        [Q_THREADS] = { .name = "--threads", .kind = ARG_INT, .dst = &threads,
                        .help = "OpenMP threads, 0 = OpenMP default", .min = 0, .max = 4096 },
        [Q_DTYPE] = { .name = "--dtype", .kind = ARG_CHOICE, .dst = &dtype, .choices = dtype_names,
                      .help = "decode weights: fp32 (the mapped file) or bf16 (converted at load; with AVX512-BF16 the matvec inputs are rounded to bf16 too)" },
    };
    char err[1024];
    int pr = args_parse(s, Q_COUNT, argc, argv, err, sizeof err);
    if (pr == 1) {
        printf("usage: ropegpt generate --model model.bin --tokenizer tokenizer.bin [--prompt TEXT] [flags]\n"
               "Runs a llama2.c legacy model file (memory-mapped); prompt in one batched pass, then one\n"
               "token at a time from the KV cache; prefill and decode tokens/s on stderr. Flags:\n");
        args_print_help(stdout, s, Q_COUNT);
        return 0;
    }
    if (pr) return args_report(PROG, "%s", err);
    if (!model) return args_report(PROG, "--model: expected a llama2.c model file");
    if (!tokpath) return args_report(PROG, "--tokenizer: expected a llama2.c tokenizer.bin");
#ifdef _OPENMP
    if (threads > 0) omp_set_num_threads(threads);
#endif

    llama2c_file f;
    if (llama2c_open(&f, model, err, sizeof err)) {
        if (checkpoint_is_ropegpt(model))
            return args_report(PROG, "--model %s: a ropegpt checkpoint or run folder; --tokenizer is only for "
                               "llama2.c model files (drop it)", model);
        return args_report(PROG, "--model %s", err);
    }
    bpe_tokenizer tok;
    int brc = bpe_load(&tok, tokpath, f.cfg.vocab_size, err, sizeof err);
    if (brc) {
        llama2c_close(&f);
        return args_report(PROG, "--tokenizer %s: %s", tokpath, err);
    }
    const char *text = prompt ? prompt : (tok.sp_style ? "" : "\n");
    size_t tlen = strlen(text);
    size_t cap = tlen + 3, n = 0;
    int *ids = malloc(cap * sizeof(int));
    int rc = 0;
    if (!ids) rc = args_report(PROG, "out of memory");
    else if (bpe_encode(&tok, text, tlen, 1, 0, ids, cap, &n, err, sizeof err))
        rc = args_report(PROG, "--prompt: %s", err);
    else if (n == 0)
        rc = args_report(PROG, "--prompt: empty prompt and the vocabulary has no BOS token");
    else if ((int64_t)n + tokens - 1 > f.cfg.seq_len)
        rc = args_report(PROG, "--tokens: prompt (%zu tokens) + %d tokens needs %lld positions, the model has %d",
                         n, tokens, (long long)n + tokens - 1, f.cfg.seq_len);
    llama_model m;
    sampler smp;
    memset(&m, 0, sizeof m);
    memset(&smp, 0, sizeof smp);
    if (rc == 0) {
        int lrc = llama_init_borrowed(&m, &f.cfg, &f.w, (int)n);
        if (lrc == LLAMA_OK && dtype == 1) lrc = llama_use_bf16(&m);
        int src = lrc ? 0 : sampler_init(&smp, f.cfg.vocab_size, temperature, top_k, top_p, seed);
        if (lrc) rc = args_report(PROG, "cannot set up the model: %s", llama_status_str(lrc));
        else if (src) rc = args_report(PROG, "cannot set up the sampler: %s", src == -1 ? "bad settings" : "out of memory");
    }
    if (rc) {
        sampler_free(&smp);
        llama_free(&m);
        free(ids);
        bpe_free(&tok);
        llama2c_close(&f);
        return rc;
    }
    if (prompt) {
        fwrite(prompt, 1, tlen, stdout);
        fflush(stdout);
    }
#ifdef _OPENMP
#pragma omp parallel
    { (void)0; }   /* start the thread pool outside the timed region */
#endif
    double t0 = now_s();
    int lrc = llama_forward(&m, ids, (int)n, 0, 0);
    double t_prefill = now_s() - t0, t_decode = 0.0;
    int decoded = 0, prev = ids[n - 1], pos = (int)n;
    unsigned char piece[BPE_MAX_TOKEN_LENGTH + 1];
    for (int k = 0; lrc == LLAMA_OK && k < tokens; k++) {
        double t1 = now_s();
        int next = sampler_sample(&smp, m.logits);
        if (tok.sp_style && (next == tok.bos_id || next == tok.eos_id)) break;
        size_t len = bpe_decode(&tok, prev, next, piece);
        fwrite(piece, 1, len, stdout);
        fflush(stdout);   /* stream each piece as soon as it is chosen */
        prev = next;
        if (k + 1 < tokens) {
            lrc = llama_forward(&m, &next, 1, pos++, 0);
            decoded++;
        }
        t_decode += now_s() - t1;
    }
    putchar('\n');
    fflush(stdout);
    if (lrc != LLAMA_OK) {
        fprintf(stderr, "%s: forward failed at position %d: %s\n", PROG, pos, llama_status_str(lrc));
        rc = 1;
    } else {
        fprintf(stderr, "%s: llama2.c model dim %d, %d layers, %d/%d heads, vocab %d, %s decode; prefill %zu tokens "
                "in %.3f ms (%.0f tok/s); decode %d tokens in %.3f ms (%.0f tok/s)\n",
                PROG, f.cfg.dim, f.cfg.n_layers, f.cfg.n_heads, f.cfg.n_kv_heads, f.cfg.vocab_size, dtype_names[dtype], n,
                1e3 * t_prefill, t_prefill > 0 ? (double)n / t_prefill : 0.0, decoded, 1e3 * t_decode,
                t_decode > 0 ? (double)decoded / t_decode : 0.0);
    }
    sampler_free(&smp);
    llama_free(&m);
    free(ids);
    bpe_free(&tok);
    llama2c_close(&f);
    return rc;
}
