/*
 * checkpoint.c — writes and reads model.bin (format in checkpoint.h). The
 * writer builds the whole file in memory with io_buf (fields one by one,
 * little-endian), appends the CRC and hands it to io_write_atomic. The reader
 * trusts nothing: it checks the version before anything else (so an old or
 * new file is named as such, not as "corrupted"), the recorded file size
 * against the real one (truncation), the CRC (corruption), then each field's
 * range and the tensor sizes against the config.
 */
#define _POSIX_C_SOURCE 200809L
#include "model/checkpoint.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "model/llama2c.h"
#include "util/errmsg.h"
#include "util/io.h"

/* Bytes before the header fields: magic, version, header size, file size. */
#define PREFIX_BYTES 24u

#define LLAMA_NUM_TENSORS 12
#define MAX_TENSORS (GPT_NUM_TENSORS > LLAMA_NUM_TENSORS ? GPT_NUM_TENSORS : LLAMA_NUM_TENSORS)

static const char *const llama_tensor_names[LLAMA_NUM_TENSORS] = {
    "token_embedding", "rms_att", "wq", "wk", "wv", "wo", "rms_ffn", "w1", "w2", "w3", "rms_final", "wcls"
};

/* The tensor table of (cfg, arch): count in *nt, total returned. The Llama
 * sizes follow llama_weights_floats (llama2.c order). */
static size_t tensor_sizes(const gpt_config *cfg, const arch_config *ac, size_t *sizes, int *nt) {
    if (ac->arch != ARCH_LLAMA) {
        *nt = GPT_NUM_TENSORS;
        return gpt_tensor_sizes(cfg, sizes);
    }
    const size_t C = (size_t)cfg->C, L = (size_t)cfg->L, V = (size_t)cfg->V, H = (size_t)ac->hidden_dim;
    const size_t kvd = (size_t)ac->n_kv_heads * (C / (size_t)cfg->NH);
    const size_t s[LLAMA_NUM_TENSORS] = { V * C, L * C, L * C * C, L * kvd * C, L * kvd * C, L * C * C,
                                          L * C, L * H * C, L * C * H, L * H * C, C,
                                          ac->shared_classifier ? 0 : V * C };
    size_t n = 0;
    for (int i = 0; i < LLAMA_NUM_TENSORS; i++) n += (sizes[i] = s[i]);
    *nt = LLAMA_NUM_TENSORS;
    return n;
}

static const char *tensor_name(const arch_config *ac, int i) {
    return ac->arch == ARCH_LLAMA ? llama_tensor_names[i] : gpt_tensor_name(i);
}

int checkpoint_save(const char *path, const checkpoint *ck, char *err, size_t errlen) {
    size_t sizes[MAX_TENSORS];
    int nt = 0;
    if (arch_config_validate(&ck->cfg, &ck->arch))
        return errmsg(err, errlen, -1, "%s: internal error: invalid model config", path);
    size_t n = tensor_sizes(&ck->cfg, &ck->arch, sizes, &nt);
    if (n != ck->n_params || !ck->params || !ck->m || !ck->v)
        return errmsg(err, errlen, -1, "%s: internal error: parameter count %zu does not match the config (%zu)",
                      path, ck->n_params, n);
    /* The reader refuses non-finite parameters, so writing one would replace
     * a good checkpoint by one that can never be resumed: refuse here and
     * leave the previous file in place (issue 7: no NaN weights over a good
     * checkpoint, whatever the training loop let through). */
    for (size_t i = 0, t = 0, end = sizes[0]; i < n; i++) {
        while (i >= end && t + 1 < (size_t)nt) end += sizes[++t];
        if (!isfinite(ck->params[i]))
            return errmsg(err, errlen, -1, "%s: not saved: parameter %zu (in %s) is not finite; the previous checkpoint is kept",
                          path, i, tensor_name(&ck->arch, (int)t));
    }
    io_buf b = { 0 };
    io_buf_bytes(&b, CHECKPOINT_MAGIC, 8);
    io_buf_u32(&b, CHECKPOINT_VERSION);
    io_buf_u32(&b, 0);   /* header size, patched below */
    io_buf_u64(&b, 0);   /* file size, patched below */

    const gpt_config *c = &ck->cfg;
    io_buf_i32(&b, c->V);
    io_buf_i32(&b, c->L);
    io_buf_i32(&b, c->NH);
    io_buf_i32(&b, c->C);
    io_buf_i32(&b, c->maxT);
    io_buf_u32(&b, (uint32_t)c->pe);
    io_buf_u32(&b, (uint32_t)c->rope_layout);
    io_buf_f64(&b, c->rope_base);
    io_buf_f64(&b, c->rope_fraction);
    io_buf_u32(&b, (uint32_t)ck->arch.arch);
    io_buf_i32(&b, ck->arch.n_kv_heads);
    io_buf_i32(&b, ck->arch.hidden_dim);
    io_buf_i32(&b, ck->arch.shared_classifier);

    io_buf_u32(&b, ck->tokenizer);
    io_buf_u32(&b, ck->vocab);

    const train_config *t = &ck->tc;
    io_buf_i32(&b, t->B);
    io_buf_i64(&b, t->steps);
    io_buf_f64(&b, t->lr);
    io_buf_f64(&b, t->min_lr);
    io_buf_i64(&b, t->warmup);
    io_buf_f64(&b, t->beta1);
    io_buf_f64(&b, t->beta2);
    io_buf_f64(&b, t->eps);
    io_buf_f64(&b, t->weight_decay);
    io_buf_f64(&b, t->grad_clip);
    io_buf_i32(&b, t->accum);
    io_buf_i64(&b, t->eval_every);
    io_buf_i32(&b, t->eval_batches);
    io_buf_u64(&b, t->seed);
    io_buf_i32(&b, t->threads);
    io_buf_i64(&b, t->save_every);

    io_buf_i64(&b, ck->step);
    for (int i = 0; i < 4; i++) io_buf_u64(&b, ck->data_rng.s[i]);
    io_buf_i64(&b, ck->adamw_t);
    io_buf_f64(&b, ck->elapsed_s);

    io_buf_str(&b, ck->data_path);
    io_buf_u64(&b, ck->data_len);
    io_buf_u32(&b, ck->data_crc);

    io_buf_u32(&b, ck->n_evals);
    for (uint32_t i = 0; i < ck->n_evals; i++) {
        io_buf_i64(&b, ck->evals[i].step);
        io_buf_f64(&b, (double)ck->evals[i].val_loss);
    }

    io_buf_u64(&b, (uint64_t)n);
    io_buf_u32(&b, (uint32_t)nt);
    for (int i = 0; i < nt; i++) io_buf_u64(&b, (uint64_t)sizes[i]);

    size_t header_size = b.len;
    io_buf_f32s(&b, ck->params, n);
    io_buf_f32s(&b, ck->m, n);
    io_buf_f32s(&b, ck->v, n);
    size_t file_size = b.len + 4;
    io_buf_put_u32_at(&b, 12, (uint32_t)header_size);
    io_buf_put_u64_at(&b, 16, (uint64_t)file_size);
    if (!b.oom) io_buf_u32(&b, io_crc32(0, b.data, b.len));
    if (b.oom) {
        io_buf_free(&b);
        return errmsg(err, errlen, -1, "%s: out of memory building the checkpoint", path);
    }
    int rc = io_write_atomic(path, b.data, b.len, err, errlen);
    io_buf_free(&b);
    return rc;
}

void checkpoint_free(checkpoint *ck) {
    if (!ck) return;
    if (ck->owned) {
        free(ck->evals);
        free(ck->params);
        free(ck->m);
        free(ck->v);
    }
    memset(ck, 0, sizeof *ck);
}

/* Field checks after the CRC passed: a valid CRC with nonsense values means a
 * buggy writer, still reported as one line rather than trusted. */
static int check_fields(const char *path, const checkpoint *ck, char *err, size_t errlen) {
    const char *msg = arch_config_validate(&ck->cfg, &ck->arch);
    if (msg) return errmsg(err, errlen, -1, "%s: bad model config in checkpoint: %s", path, msg);
    msg = train_config_validate(&ck->tc);
    if (msg) return errmsg(err, errlen, -1, "%s: bad training config in checkpoint: %s", path, msg);
    if (ck->tokenizer != CHECKPOINT_TOKENIZER_BYTES)
        return errmsg(err, errlen, -1, "%s: unknown tokenizer kind %u (this build knows 0 = bytes)", path,
                      ck->tokenizer);
    if (ck->vocab != (uint32_t)ck->cfg.V)
        return errmsg(err, errlen, -1, "%s: tokenizer vocab %u differs from model vocab %d", path, ck->vocab,
                      ck->cfg.V);
    if (ck->step < 0 || ck->step > ck->tc.steps)
        return errmsg(err, errlen, -1, "%s: step %lld outside [0, %lld]", path, (long long)ck->step,
                      (long long)ck->tc.steps);
    if (ck->adamw_t < 0) return errmsg(err, errlen, -1, "%s: negative AdamW step", path);
    if (!isfinite(ck->elapsed_s) || ck->elapsed_s < 0)
        return errmsg(err, errlen, -1, "%s: bad elapsed time", path);
    return 0;
}

int checkpoint_load(const char *path, checkpoint *ck, int with_optimizer, char *err, size_t errlen) {
    memset(ck, 0, sizeof *ck);
    unsigned char *data = NULL;
    size_t len = 0;
    if (io_read_file(path, &data, &len, err, errlen)) return -1;
    int rc = -1;
    if (len < PREFIX_BYTES || memcmp(data, CHECKPOINT_MAGIC, 8) != 0) {
        if (len >= 8 && memcmp(data, CHECKPOINT_MAGIC, 8) == 0)
            errmsg(err, errlen, -1, "%s: truncated checkpoint (%zu bytes)", path, len);
        else
            errmsg(err, errlen, -1, "%s: not a ropegpt checkpoint (bad magic)", path);
        goto out;
    }
    io_reader r = io_reader_make(data, len);
    unsigned char magic[8];
    io_read_bytes(&r, magic, 8);
    uint32_t version = io_read_u32(&r);
    if (version < CHECKPOINT_MIN_VERSION || version > CHECKPOINT_VERSION) {
        errmsg(err, errlen, -1, "%s: checkpoint format version %u, this build reads versions %u to %u", path, version,
               CHECKPOINT_MIN_VERSION, CHECKPOINT_VERSION);
        goto out;
    }
    uint32_t header_size = io_read_u32(&r);
    uint64_t file_size = io_read_u64(&r);
    if (file_size != (uint64_t)len) {
        errmsg(err, errlen, -1, "%s: %s checkpoint: %zu bytes, header says %llu", path,
               (uint64_t)len < file_size ? "truncated" : "oversized", len, (unsigned long long)file_size);
        goto out;
    }
    if (header_size < PREFIX_BYTES || (uint64_t)header_size + 4 > file_size) {
        errmsg(err, errlen, -1, "%s: corrupted checkpoint (header size %u)", path, header_size);
        goto out;
    }
    uint32_t stored = (uint32_t)data[len - 4] | (uint32_t)data[len - 3] << 8 |
                      (uint32_t)data[len - 2] << 16 | (uint32_t)data[len - 1] << 24;
    uint32_t crc = io_crc32(0, data, len - 4);
    if (crc != stored) {
        errmsg(err, errlen, -1, "%s: corrupted checkpoint (CRC-32 %08x, stored %08x)", path, crc, stored);
        goto out;
    }
    /* Header fields are read from a reader bounded to the header. */
    io_reader h = io_reader_make(data, header_size);
    h.pos = PREFIX_BYTES;
    gpt_config *c = &ck->cfg;
    c->V = io_read_i32(&h);
    c->L = io_read_i32(&h);
    c->NH = io_read_i32(&h);
    c->C = io_read_i32(&h);
    c->maxT = io_read_i32(&h);
    uint32_t pe = io_read_u32(&h), layout = io_read_u32(&h);
    if (pe >= (uint32_t)PE_COUNT || layout > (uint32_t)ROPE_LAYOUT_HALF) {
        errmsg(err, errlen, -1, "%s: unknown position encoding %u or RoPE layout %u", path, pe, layout);
        goto out;
    }
    c->pe = (pe_type)pe;
    c->rope_layout = (rope_layout)layout;
    c->rope_base = io_read_f64(&h);
    c->rope_fraction = io_read_f64(&h);
    ck->arch = arch_config_gpt();
    if (version >= 2) {
        uint32_t arch = io_read_u32(&h);
        if (arch >= (uint32_t)ARCH_COUNT) {
            errmsg(err, errlen, -1, "%s: unknown architecture %u", path, arch);
            goto out;
        }
        ck->arch.arch = (model_arch)arch;
        ck->arch.n_kv_heads = io_read_i32(&h);
        ck->arch.hidden_dim = io_read_i32(&h);
        ck->arch.shared_classifier = io_read_i32(&h);
    }
    ck->tokenizer = io_read_u32(&h);
    ck->vocab = io_read_u32(&h);

    train_config *t = &ck->tc;
    t->B = io_read_i32(&h);
    t->steps = io_read_i64(&h);
    t->lr = io_read_f64(&h);
    t->min_lr = io_read_f64(&h);
    t->warmup = io_read_i64(&h);
    t->beta1 = io_read_f64(&h);
    t->beta2 = io_read_f64(&h);
    t->eps = io_read_f64(&h);
    t->weight_decay = io_read_f64(&h);
    t->grad_clip = io_read_f64(&h);
    t->accum = io_read_i32(&h);
    t->eval_every = io_read_i64(&h);
    t->eval_batches = io_read_i32(&h);
    t->seed = io_read_u64(&h);
    t->threads = io_read_i32(&h);
    t->save_every = io_read_i64(&h);

    ck->step = io_read_i64(&h);
    for (int i = 0; i < 4; i++) ck->data_rng.s[i] = io_read_u64(&h);
    ck->adamw_t = io_read_i64(&h);
    ck->elapsed_s = io_read_f64(&h);
    io_read_str(&h, ck->data_path, sizeof ck->data_path);
    ck->data_len = io_read_u64(&h);
    ck->data_crc = io_read_u32(&h);
    ck->n_evals = io_read_u32(&h);
    if (h.err) {
        errmsg(err, errlen, -1, "%s: corrupted checkpoint (header fields overrun the header)", path);
        goto out;
    }
    if (check_fields(path, ck, err, errlen)) goto out;
    /* Each eval point takes 16 bytes: bound n by what is left before allocating. */
    if ((size_t)ck->n_evals > io_reader_left(&h) / 16) {
        errmsg(err, errlen, -1, "%s: corrupted checkpoint (%u eval points do not fit)", path, ck->n_evals);
        goto out;
    }
    ck->owned = 1;
    ck->evals = calloc(ck->n_evals ? ck->n_evals : 1, sizeof *ck->evals);
    if (!ck->evals) {
        errmsg(err, errlen, -1, "%s: out of memory", path);
        goto out;
    }
    for (uint32_t i = 0; i < ck->n_evals; i++) {
        ck->evals[i].step = io_read_i64(&h);
        ck->evals[i].val_loss = (float)io_read_f64(&h);
    }
    uint64_t n_params = io_read_u64(&h);
    uint32_t n_tensors = io_read_u32(&h);
    size_t sizes[MAX_TENSORS];
    int nt = 0;
    size_t expect = tensor_sizes(c, &ck->arch, sizes, &nt);
    if (h.err || n_tensors != (uint32_t)nt || n_params != (uint64_t)expect) {
        errmsg(err, errlen, -1, "%s: tensor table does not match the model config (%llu params, %zu expected)",
               path, (unsigned long long)n_params, expect);
        goto out;
    }
    for (int i = 0; i < nt; i++) {
        uint64_t s = io_read_u64(&h);
        if (h.err || s != (uint64_t)sizes[i]) {
            errmsg(err, errlen, -1, "%s: tensor %s has %llu elements, the config gives %zu", path,
                   tensor_name(&ck->arch, i), (unsigned long long)s, sizes[i]);
            goto out;
        }
    }
    if (h.pos != header_size) {
        errmsg(err, errlen, -1, "%s: corrupted checkpoint (header size %u, fields end at %zu)", path, header_size,
               h.pos);
        goto out;
    }
    /* The three tensors must fill exactly the bytes between header and CRC. */
    if ((file_size - 4 - header_size) / 12 != n_params || (file_size - 4 - header_size) % 12 != 0) {
        errmsg(err, errlen, -1, "%s: corrupted checkpoint (tensor bytes do not match %llu params)", path,
               (unsigned long long)n_params);
        goto out;
    }
    ck->n_params = (size_t)n_params;
    r = io_reader_make(data, len - 4);
    r.pos = header_size;
    ck->params = malloc(ck->n_params * sizeof(float));
    if (with_optimizer) {
        ck->m = malloc(ck->n_params * sizeof(float));
        ck->v = malloc(ck->n_params * sizeof(float));
    }
    if (!ck->params || (with_optimizer && (!ck->m || !ck->v))) {
        errmsg(err, errlen, -1, "%s: out of memory for %zu parameters", path, ck->n_params);
        goto out;
    }
    io_read_f32s(&r, ck->params, ck->n_params);
    if (with_optimizer) {
        io_read_f32s(&r, ck->m, ck->n_params);
        io_read_f32s(&r, ck->v, ck->n_params);
    }
    if (r.err) {
        errmsg(err, errlen, -1, "%s: corrupted checkpoint (tensor data)", path);
        goto out;
    }
    for (size_t i = 0; i < ck->n_params; i++) {
        if (!isfinite(ck->params[i])) {
            errmsg(err, errlen, -1, "%s: parameter %zu is not finite", path, i);
            goto out;
        }
    }
    rc = 0;
out:
    free(data);
    if (rc) checkpoint_free(ck);
    return rc;
}

int checkpoint_is_ropegpt(const char *path) {
    struct stat st;
    if (stat(path, &st) != 0) return 0;
    if (S_ISDIR(st.st_mode)) return 1;
    char magic[8];
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    const int yes = fread(magic, 1, 8, f) == 8 && memcmp(magic, CHECKPOINT_MAGIC, 8) == 0;
    fclose(f);
    return yes;
}

int checkpoint_load_model(const char *model, gpt *m, checkpoint *meta_out, char *err, size_t errlen) {
    memset(m, 0, sizeof *m);
    char file[4096];
    struct stat fst;
    const char *path = model;
    if (stat(model, &fst) == 0 && S_ISDIR(fst.st_mode)) { /* a run folder: its checkpoint */
        if (io_path_join(file, sizeof file, model, "model.bin")) return errmsg(err, errlen, -1, "%s: path too long", model);
        path = file;
    }
    checkpoint ck;
    if (checkpoint_load(path, &ck, 0, err, errlen)) {
        llama2c_file lf;   /* a llama2.c model is a common mix-up: say how to run it */
        if (llama2c_open(&lf, path, NULL, 0) == 0) {
            llama2c_close(&lf);
            errmsg(err, errlen, -1, "%s: a llama2.c model file; run it with `ropegpt generate --model %s "
                   "--tokenizer tokenizer.bin`", path, path);
        }
        return -1;
    }
    if (ck.arch.arch != ARCH_GPT) {
        errmsg(err, errlen, -1, "%s: a %s checkpoint; run it after `ropegpt export --model %s --format llama2c --out "
               "M --tokenizer-out TOK` with `ropegpt generate --model M --tokenizer TOK`", path,
               model_arch_name(ck.arch.arch), path);
        checkpoint_free(&ck);
        return -1;
    }
    gpt_status st = gpt_init(m, &ck.cfg, ck.tc.seed);
    if (st == GPT_OK) st = gpt_set_params(m, ck.params, ck.n_params);
    if (st != GPT_OK) {
        gpt_free(m);
        errmsg(err, errlen, -1, "%s: cannot build the model: %s", path, gpt_status_str(st));
        checkpoint_free(&ck);
        return -1;
    }
    free(ck.params);
    ck.params = NULL;
    if (meta_out) *meta_out = ck;
    else checkpoint_free(&ck);
    return 0;
}
