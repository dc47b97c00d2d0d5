/*
 * cmd_export.c — `ropegpt export --format llama2c --out model.bin
 * [--tokenizer-out tokenizer.bin]` from one of:
 *   --model FILE     a llama2.c legacy file (re-written through our writer:
 *                    checks it, optionally --unshared, normalises the RoPE
 *                    tables);
 *   --random SHAPE   a Llama model with random weights N(0, --std) in a
 *                    named shape (tiny, stories15m, stories110m), e.g. for
 *                    benchmarks and interop tests.
 *   --model RUN.bin  a ropegpt checkpoint of an `--arch llama` run (its
 *                    parameters are already in llama2.c's order); GPT
 *                    checkpoints are refused (llama2.c holds only Llama).
 * --tokenizer-out writes a vocabulary matching the model: the 256-byte
 * vocabulary for V = 256 (ropegpt's byte models), or for V >= 259 a
 * sentencepiece-style one (<unk>, BOS, EOS, byte fallbacks <0x00>..<0xFF>,
 * then placeholder pieces that no text produces), so generate runs it.
 */
#define _POSIX_C_SOURCE 200809L
#include "model/cmd_export.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/bpe.h"
#include "model/checkpoint.h"
#include "model/llama.h"
#include "model/llama2c.h"
#include "util/args.h"
#include "util/io.h"

#define PROG "ropegpt export"

/* 1 if path starts with the ropegpt checkpoint magic. */
static int is_checkpoint(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    char magic[8];
    int yes = fread(magic, 1, 8, f) == 8 && memcmp(magic, CHECKPOINT_MAGIC, 8) == 0;
    fclose(f);
    return yes;
}

static const char *const format_names[] = { "llama2c", NULL };
static const char *const shape_names[] = { "none", "tiny", "stories15m", "stories110m", NULL };

/* The named shapes: (dim, hidden, layers, heads, kv heads, vocab, seq_len). */
static llama_config shape_config(int shape) {
    llama_config c = llama_config_default();   /* stories15m */
    if (shape == 1) {
        c.dim = 64, c.hidden_dim = 172, c.n_layers = 2, c.n_heads = 4, c.n_kv_heads = 2;
        c.vocab_size = 256, c.seq_len = 128;
    } else if (shape == 3) {
        c.dim = 768, c.hidden_dim = 2048, c.n_layers = 12, c.n_heads = 12, c.n_kv_heads = 12;
        c.vocab_size = 32000, c.seq_len = 1024;
    }
    return c;
}

/* A vocabulary of V tokens matching a model (see the file comment). */
static int make_vocab(bpe_tokenizer *t, int V, char *err, size_t errlen) {
    if (V == 256) return bpe_init_bytes(t, err, errlen);
    if (V < 259) {
        snprintf(err, errlen, "vocab_size %d: only 256 (bytes) or >= 259 (sentencepiece-style) can be written", V);
        return BPE_EARG;
    }
    const char **pieces = malloc((size_t)V * sizeof(char *));
    int *lens = malloc((size_t)V * sizeof(int));
    char *names = malloc((size_t)V * 32);
    float *scores = malloc((size_t)V * sizeof(float));
    int rc = BPE_ENOMEM;
    if (pieces && lens && names && scores) {
        for (int i = 0; i < V; i++) {
            char *p = names + (size_t)i * 32;
            if (i == 0) snprintf(p, 32, "<unk>");
            else if (i == 1) snprintf(p, 32, "\n<s>\n");     /* llama2.c's tokenizer.py spelling */
            else if (i == 2) snprintf(p, 32, "\n</s>\n");
            else if (i < 259) snprintf(p, 32, "<0x%02X>", i - 3);
            else snprintf(p, 32, "<extra_%d>", i - 259);
            pieces[i] = p;
            lens[i] = (int)strlen(p);
            scores[i] = i < 259 ? 0.0f : -1e6f;
        }
        rc = bpe_init(t, V, pieces, lens, scores, err, errlen);
    } else {
        snprintf(err, errlen, "out of memory");
    }
    free(pieces), free(lens), free(names), free(scores);
    return rc;
}

enum { E_MODEL, E_RANDOM, E_FORMAT, E_OUT, E_TOKOUT, E_SEED, E_STD, E_UNSHARED, E_COUNT };

int cmd_export(int argc, char **argv) {
    const char *model = NULL, *out = NULL, *tokout = NULL;
    int format = 0, shape = 0, unshared = 0;
    uint64_t seed = 1;
    double std = 0.02;
    args_spec s[E_COUNT] = {
        [E_MODEL] = { .name = "--model", .kind = ARG_STR, .dst = &model, .help = "llama2.c legacy model file, or a ropegpt --arch llama checkpoint" },
        [E_RANDOM] = { .name = "--random", .kind = ARG_CHOICE, .dst = &shape, .choices = shape_names,
                       .help = "instead of --model: random weights in this shape" },
        [E_FORMAT] = { .name = "--format", .kind = ARG_CHOICE, .dst = &format, .choices = format_names,
                       .help = "output format" },
        [E_OUT] = { .name = "--out", .kind = ARG_STR, .dst = &out, .help = "model file to write" },
        [E_TOKOUT] = { .name = "--tokenizer-out", .kind = ARG_STR, .dst = &tokout,
                       .help = "also write a tokenizer.bin for the model's vocabulary" },
        [E_SEED] = { .name = "--seed", .kind = ARG_U64, .dst = &seed, .help = "seed for --random" },
        [E_STD] = { .name = "--std", .kind = ARG_DOUBLE, .dst = &std, .help = "weight std for --random",
                    .min = 0, .max = 10, .min_open = 1 },
        [E_UNSHARED] = { .name = "--unshared", .kind = ARG_FLAG, .dst = &unshared,
                         .help = "write a separate classifier (copy of the embedding when shared)" },
    };
    char err[1024];
    int pr = args_parse(s, E_COUNT, argc, argv, err, sizeof err);
    if (pr == 1) {
        printf("usage: ropegpt export (--model model.bin | --random SHAPE) --out model.bin [--tokenizer-out tok.bin]\n"
               "Writes a llama2.c legacy model file from a llama2.c file, a `ropegpt train --arch llama`\n"
               "checkpoint, or random weights. GPT checkpoints cannot be exported (llama2.c holds the Llama\n"
               "architecture). Flags:\n");
        args_print_help(stdout, s, E_COUNT);
        return 0;
    }
    if (pr) return args_report(PROG, "%s", err);
    if (!out) return args_report(PROG, "--out: expected the model file to write");
    if ((model != NULL) == (shape != 0)) return args_report(PROG, "--model/--random: give exactly one of them");
    if (io_check_parent_writable(out, err, sizeof err)) return args_report(PROG, "--out %s: %s", out, err);
    if (tokout && io_check_parent_writable(tokout, err, sizeof err))
        return args_report(PROG, "--tokenizer-out %s: %s", tokout, err);

    llama2c_file f;
    llama_model m;
    memset(&f, 0, sizeof f);
    memset(&m, 0, sizeof m);
    llama_config cfg;
    llama_weights w;
    checkpoint ck;
    memset(&ck, 0, sizeof ck);
    if (model && is_checkpoint(model)) {
        if (checkpoint_load(model, &ck, 0, err, sizeof err)) return args_report(PROG, "--model %s", err);
        if (ck.arch.arch != ARCH_LLAMA) {
            checkpoint_free(&ck);
            return args_report(PROG, "--model %s: a GPT checkpoint; llama2.c files hold the Llama architecture "
                               "(train with --arch llama)", model);
        }
        cfg = arch_llama_config(&ck.cfg, &ck.arch);
        llama_weights_point(&w, &cfg, ck.params, 0);
    } else if (model) {
        if (llama2c_open(&f, model, err, sizeof err))
            return args_report(PROG, "--model %s (only llama2.c legacy files can be exported; ropegpt GPT "
                               "checkpoints are not the Llama architecture)", err);
        cfg = f.cfg;
        w = f.w;
    } else {
        cfg = shape_config(shape);
        int lrc = llama_init_random(&m, &cfg, seed, (float)std, 1);
        if (lrc) return args_report(PROG, "--random: %s", llama_status_str(lrc));
        w = m.w;
    }
    if (unshared) cfg.shared_classifier = 0;   /* wcls already points at the embedding when shared */
    int rc = 0;
    if (llama2c_write(out, &cfg, &w, err, sizeof err)) {
        fprintf(stderr, "%s: --out %s\n", PROG, err);
        rc = 1;
    }
    if (rc == 0 && tokout) {
        bpe_tokenizer t;
        if (make_vocab(&t, cfg.vocab_size, err, sizeof err)) {
            rc = args_report(PROG, "--tokenizer-out: %s", err);
        } else {
            if (bpe_save(&t, tokout, err, sizeof err)) {
                fprintf(stderr, "%s: --tokenizer-out %s\n", PROG, err);
                rc = 1;
            }
            bpe_free(&t);
        }
    }
    if (rc == 0)
        fprintf(stderr, "%s: wrote %s (dim %d, hidden %d, %d layers, %d/%d heads, vocab %d%s, seq_len %d)%s%s\n",
                PROG, out, cfg.dim, cfg.hidden_dim, cfg.n_layers, cfg.n_heads, cfg.n_kv_heads, cfg.vocab_size,
                cfg.shared_classifier ? "" : " unshared", cfg.seq_len, tokout ? " and " : "", tokout ? tokout : "");
    llama_free(&m);
    llama2c_close(&f);
    checkpoint_free(&ck);
    return rc;
}
