/*
 * fuzz_llama2c.c — libFuzzer harness for the llama2.c model-file reader
 * (llama2c_parse_header, llama2c_open), the parser a downloaded model file
 * reaches first. The input is the file. A file the reader accepts is then
 * used the way `ropegpt generate` uses it: a model over the mapped weights
 * (llama_init_borrowed) runs one prefill of two tokens and one decode step,
 * so every pointer the reader hands out is read end to end under ASan.
 * Promises checked: an error leaves the llama2c_file zeroed with one line in
 * err and a status inside the enum; an accepted file has a valid config,
 * exactly llama2c_file_bytes(cfg) bytes, and weights inside the mapping.
 * Returns 1 when a promise is broken.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include "fuzz_util.c"

#include "model/llama.h"
#include "model/llama2c.h"

static int fzl_fail(const char *what, const char *err) {
    fprintf(stderr, "fuzz_llama2c: broken promise: %s (err: %s)\n", what, err ? err : "");
    return 1;
}

/* 1 if [p, p + n floats) lies inside the mapping. */
static int fzl_inside(const llama2c_file *f, const float *p, size_t n) {
    const unsigned char *b = f->map, *q = (const unsigned char *)p;
    return q >= b && (size_t)(q - b) <= f->map_len && n <= (f->map_len - (size_t)(q - b)) / sizeof(float);
}

int fuzz_llama2c_one(const uint8_t *data, size_t size);
int fuzz_llama2c_one(const uint8_t *data, size_t size) {
    int bad = 0;
    char err[512] = "";
    /* The header parser alone, on the first 28 bytes (zero-padded). */
    unsigned char hdr[L2C_HEADER_BYTES] = { 0 };
    memcpy(hdr, data, size < sizeof hdr ? size : sizeof hdr);
    llama_config hc;
    int hs = llama2c_parse_header(&hc, hdr, (uint64_t)size, err, sizeof err);
    if (hs < 0 || hs >= L2C_STATUS_COUNT) bad |= fzl_fail("header status outside the enum", err);
    if (hs != L2C_OK && !fuzz_one_line(err)) bad |= fzl_fail("header error empty or not one line", err);

    const char *path = fuzz_tmp_write(1, "llama2c.bin", data, size);
    if (!path) return bad;
    llama2c_file f;
    err[0] = 0;
    int st = llama2c_open(&f, path, err, sizeof err);
    if (st < 0 || st >= L2C_STATUS_COUNT) bad |= fzl_fail("open status outside the enum", err);
    if (st != L2C_OK) {
        if (!fuzz_one_line(err)) bad |= fzl_fail("open error empty or not one line", err);
        if (f.map || f.map_len || f.w.token_embedding) bad |= fzl_fail("failed open left the file set", err);
        /* The reader and the header parser agree on what they refuse. */
        if (hs == L2C_OK && size >= L2C_HEADER_BYTES && st != L2C_EMMAP && st != L2C_ENOMEM)
            bad |= fzl_fail("open refused a header the parser accepted", err);
        return bad;
    }
    if (hs != L2C_OK) bad |= fzl_fail("open accepted a header the parser refused", err);
    const llama_config *c = &f.cfg;
    if (llama_config_validate(c, NULL, 0) != LLAMA_OK) bad |= fzl_fail("accepted an invalid config", NULL);
    if (llama2c_file_bytes(c) != (uint64_t)size) bad |= fzl_fail("accepted a file of the wrong length", NULL);
    size_t C = (size_t)c->dim, H = (size_t)c->hidden_dim, L = (size_t)c->n_layers, V = (size_t)c->vocab_size;
    size_t kv = (size_t)c->n_kv_heads * (C / (size_t)c->n_heads);
    const struct { const float *p; size_t n; } views[] = {
        { f.w.token_embedding, V * C }, { f.w.rms_att, L * C }, { f.w.wq, L * C * C }, { f.w.wk, L * kv * C },
        { f.w.wv, L * kv * C }, { f.w.wo, L * C * C }, { f.w.rms_ffn, L * C }, { f.w.w1, L * H * C },
        { f.w.w2, L * C * H }, { f.w.w3, L * H * C }, { f.w.rms_final, C }, { f.w.wcls, V * C },
    };
    for (size_t i = 0; i < sizeof views / sizeof views[0]; i++)
        if (!fzl_inside(&f, views[i].p, views[i].n)) {
            fprintf(stderr, "weight view %zu outside the mapping\n", i);
            bad |= fzl_fail("a weight view lies outside the file", NULL);
        }
    if (!bad) {
        llama_model m;
        if (llama_init_borrowed(&m, c, &f.w, 2) == LLAMA_OK) {
            int toks[2] = { 0, (int)(V - 1) };
            int T = c->seq_len >= 3 ? 2 : 1;
            int r = llama_forward(&m, toks, T, 0, 1);
            if (r == LLAMA_OK && c->seq_len >= T + 1) r = llama_forward(&m, toks + 1, 1, T, 0);
            if (r != LLAMA_OK && r != LLAMA_ENOMEM) bad |= fzl_fail("forward refused a model the reader accepted", NULL);
            llama_free(&m);
        }
    }
    llama2c_close(&f);
    return bad;
}

#ifdef ROPEGPT_LIBFUZZER
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (fuzz_llama2c_one(data, size)) abort();
    return 0;
}
#endif
