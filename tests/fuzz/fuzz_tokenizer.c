/*
 * fuzz_tokenizer.c — libFuzzer harness for the tokenizer.bin reader
 * (bpe_load) and the encoder/decoder over whatever vocabulary it accepts.
 * The input is the file. tokenizer.bin does not store its token count (the
 * model's vocab_size supplies it), so the harness counts the entries that
 * fit and loads with that count, then with one more (which must fail: the
 * file ends early). An accepted vocabulary encodes a fixed text (ASCII,
 * multi-byte UTF-8, invalid UTF-8, NUL) with and without BOS/EOS and decodes
 * every id, so lookups, merges and byte fallback run over hostile pieces and
 * scores. Promises checked: an error leaves the tokenizer zeroed with one
 * line in err; encoded ids lie in [0, V) and fit len + 3; a decoded piece
 * fits max_token_length; every piece looks up to a piece with its bytes.
 * Returns 1 when a promise is broken.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include "fuzz_util.c"

#include "data/bpe.h"

static int fzt_fail(const char *what, const char *err) {
    fprintf(stderr, "fuzz_tokenizer: broken promise: %s (err: %s)\n", what, err ? err : "");
    return 1;
}

/* Entries (score, length, bytes) that fit after the 4-byte max length. */
static int fzt_count(const uint8_t *d, size_t n) {
    size_t pos = 4;
    int count = 0;
    while (pos + 8 <= n && count < (1 << 20)) {
        int32_t len = (int32_t)((uint32_t)d[pos + 4] | (uint32_t)d[pos + 5] << 8 | (uint32_t)d[pos + 6] << 16 |
                                (uint32_t)d[pos + 7] << 24);
        if (len < 0 || (size_t)len > n - pos - 8) break;
        pos += 8 + (size_t)len;
        count++;
    }
    return count;
}

static int fzt_use(const bpe_tokenizer *t) {
    int bad = 0;
    static const char text[] = "Once upon a time, \xc3\xa9t\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80"
                               " \xff\xfe\x80 end\n\tab  abab";
    size_t len = sizeof text;   /* includes the final NUL byte on purpose */
    int out[sizeof text + 3];
    char err[512];
    for (int mode = 0; mode < 4; mode++) {
        size_t n = 0;
        err[0] = 0;
        int st = bpe_encode(t, text, len, mode & 1, mode >> 1, out, sizeof out / sizeof out[0], &n, err, sizeof err);
        if (st != BPE_OK) {
            if (st != BPE_EENCODE) bad |= fzt_fail("encode failed other than for a byte without a token", err);
            else if (!fuzz_one_line(err)) bad |= fzt_fail("encode error empty or not one line", err);
            continue;
        }
        if (n > len + 3) bad |= fzt_fail("more tokens than len + 3", NULL);
        unsigned char *piece = malloc((size_t)t->max_token_length + 1);
        if (!piece) return bad;
        for (size_t i = 0; i < n; i++) {
            if (out[i] < 0 || out[i] >= t->vocab_size) {
                bad |= fzt_fail("encoded id outside the vocabulary", NULL);
                break;
            }
            size_t k = bpe_decode(t, i ? out[i - 1] : -1, out[i], piece);
            if (k > (size_t)t->max_token_length) bad |= fzt_fail("decoded piece longer than max_token_length", NULL);
        }
        free(piece);
    }
    unsigned char *piece = malloc((size_t)t->max_token_length + 1);
    if (!piece) return bad;
    for (int id = -2; id < t->vocab_size + 2; id++) {
        size_t k = bpe_decode(t, id == 0 ? -1 : (t->bos_id >= 0 ? t->bos_id : id - 1), id, piece);
        if (k > (size_t)t->max_token_length) bad |= fzt_fail("decoded piece longer than max_token_length", NULL);
        if ((id < 0 || id >= t->vocab_size) && k != 0) bad |= fzt_fail("an id outside the vocabulary decoded", NULL);
        if (id >= 0 && id < t->vocab_size) {
            int j = bpe_lookup(t, t->pieces[id], (size_t)t->lens[id]);
            if (j < 0 || j >= t->vocab_size || t->lens[j] != t->lens[id] ||
                memcmp(t->pieces[j], t->pieces[id], (size_t)t->lens[id]) != 0)
                bad |= fzt_fail("a piece does not look up to a piece with its bytes", NULL);
        }
    }
    free(piece);
    return bad;
}

int fuzz_tokenizer_one(const uint8_t *data, size_t size);
int fuzz_tokenizer_one(const uint8_t *data, size_t size) {
    int bad = 0;
    const char *path = fuzz_tmp_write(2, "tokenizer.bin", data, size);
    if (!path) return 0;
    int V = fzt_count(data, size);
    for (int k = 0; k < 2; k++) {
        bpe_tokenizer t;
        char err[512] = "";
        int vs = k == 0 ? (V > 0 ? V : 1) : V + 1;
        int st = bpe_load(&t, path, vs, err, sizeof err);
        if (st < 0 || st >= BPE_STATUS_COUNT) bad |= fzt_fail("status outside the enum", err);
        if (st != BPE_OK) {
            if (!fuzz_one_line(err)) bad |= fzt_fail("load error empty or not one line", err);
            if (t.pieces || t.arena || t.scores || t.lens || t.vocab_size) bad |= fzt_fail("failed load left state", err);
            continue;
        }
        if (k == 1) bad |= fzt_fail("loaded with more entries than the file holds", NULL);
        if (t.vocab_size != vs) bad |= fzt_fail("vocab_size differs from the one asked for", NULL);
        bad |= fzt_use(&t);
        bpe_free(&t);
    }
    return bad;
}

#ifdef ROPEGPT_LIBFUZZER
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (fuzz_tokenizer_one(data, size)) abort();
    return 0;
}
#endif
