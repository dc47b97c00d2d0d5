/*
 * fuzz_checkpoint.c — libFuzzer harness for the model.bin reader
 * (checkpoint_load, checkpoint_load_model). checkpoint_load takes a path,
 * so each input is written to a private scratch file. A mutated file almost
 * always fails the size and CRC-32 checks first, which would hide every field
 * check behind them, so each input is read twice: as is, and with its
 * recorded file size (offset 16) and trailing CRC patched to match — the
 * form a buggy or hostile writer produces. Promises checked besides
 * ASan/UBSan/LeakSanitizer: an error leaves *ck zeroed with one line in err;
 * a success has a valid (gpt or llama) config, exactly the parameter count
 * it implies, all finite, and, when asked, the optimizer moments. Returns 1 when a promise is broken.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include "fuzz_util.c"

#include "model/checkpoint.h"
#include "model/gpt.h"
#include "model/llama.h"
#include "model/train.h"
#include "util/io.h"

static int fzc_fail(const char *what, const char *err) {
    fprintf(stderr, "fuzz_checkpoint: broken promise: %s (err: %s)\n", what, err ? err : "");
    return 1;
}

static int fzc_zeroed(const checkpoint *ck) {
    return !ck->params && !ck->m && !ck->v && !ck->evals && !ck->owned && ck->n_params == 0;
}

/* One checkpoint_load of path; 1 if a promise is broken. */
static int fzc_load(const char *path, int with_optimizer) {
    checkpoint ck;
    char err[512] = "";
    int bad = 0;
    if (checkpoint_load(path, &ck, with_optimizer, err, sizeof err) != 0) {
        if (!fuzz_one_line(err)) bad |= fzc_fail("error message empty or not one line", err);
        if (!fzc_zeroed(&ck)) bad |= fzc_fail("failed load did not zero the checkpoint", err);
        return bad;
    }
    if (arch_config_validate(&ck.cfg, &ck.arch) != NULL) bad |= fzc_fail("accepted an invalid model config", NULL);
    size_t expect;
    if (ck.arch.arch == ARCH_LLAMA) {
        llama_config lc = arch_llama_config(&ck.cfg, &ck.arch);
        expect = llama_weights_floats(&lc);
    } else {
        size_t sizes[GPT_NUM_TENSORS];
        expect = gpt_tensor_sizes(&ck.cfg, sizes);
    }
    if (expect != ck.n_params) bad |= fzc_fail("parameter count != config", NULL);
    if (!ck.params || (with_optimizer && (!ck.m || !ck.v)) || (!with_optimizer && (ck.m || ck.v)))
        bad |= fzc_fail("arrays missing or unexpected", NULL);
    for (size_t i = 0; ck.params && i < ck.n_params; i++)
        if (!isfinite(ck.params[i])) { bad |= fzc_fail("non-finite parameter accepted", NULL); break; }
    if (ck.n_evals && !ck.evals) bad |= fzc_fail("eval points missing", NULL);
    if (memchr(ck.data_path, 0, sizeof ck.data_path) == NULL) bad |= fzc_fail("data path not terminated", NULL);
    checkpoint_free(&ck);
    return bad;
}

static int fzc_load_model(const char *path) {
    gpt m;
    checkpoint meta;
    char err[512] = "";
    if (checkpoint_load_model(path, &m, &meta, err, sizeof err) != 0) {
        if (!fuzz_one_line(err)) return fzc_fail("load_model error empty or not one line", err);
        return 0;
    }
    int bad = 0;
    if (meta.params || meta.m || meta.v) bad |= fzc_fail("load_model meta kept tensors", NULL);
    if (m.num_params != meta.n_params) bad |= fzc_fail("model size != checkpoint size", NULL);
    gpt_free(&m);
    checkpoint_free(&meta);
    return bad;
}

int fuzz_checkpoint_one(const uint8_t *data, size_t size);
int fuzz_checkpoint_one(const uint8_t *data, size_t size) {
    int bad = 0;
    const char *path = fuzz_tmp_write(0, "checkpoint.bin", data, size);
    if (!path) return 0;
    bad |= fzc_load(path, 1);

    /* The same bytes with the size field and CRC made consistent. */
    if (size >= 28) {
        uint8_t *p = malloc(size);
        if (!p) return bad;
        memcpy(p, data, size);
        fuzz_put_u64(p + 16, (uint64_t)size);
        fuzz_put_u32(p + size - 4, io_crc32(0, p, size - 4));
        path = fuzz_tmp_write(0, "checkpoint.bin", p, size);
        free(p);
        if (!path) return bad;
        bad |= fzc_load(path, 1);
        bad |= fzc_load_model(path);   /* the with_optimizer = 0 path, as sampling reads it */
    }
    return bad;
}

#ifdef ROPEGPT_LIBFUZZER
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (fuzz_checkpoint_one(data, size)) abort();
    return 0;
}
#endif
