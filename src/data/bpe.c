/*
 * bpe.c — llama2.c tokenizer.bin reading/writing and sentencepiece-style BPE
 * encoding/decoding (see bpe.h for the rules and the file layout; the
 * merge rule and the byte-fallback ids 3..258 are those llama2.c's run.c
 * implements for Llama 2's vocabulary).
 * Lookup is a binary search over the ids sorted by piece bytes, so a merge
 * step costs O(n log V) for n tokens and the encoder O(n^2 log V) — fine for
 * prompts. All lengths are size_t; a file is checked entry by entry against
 * its length before anything is kept.
 */
#include "data/bpe.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/errmsg.h"
#include "util/io.h"

const char *bpe_status_str(int s) {
    switch (s) {
    case BPE_OK: return "ok";
    case BPE_EARG: return "bad argument";
    case BPE_EOPEN: return "cannot read the tokenizer file";
    case BPE_ETRUNC: return "tokenizer file truncated inside an entry";
    case BPE_EVOCAB: return "tokenizer vocabulary size does not match the model";
    case BPE_EFORMAT: return "malformed tokenizer file";
    case BPE_EENCODE: return "a byte of the text has no token";
    case BPE_ESPACE: return "token output array too small";
    case BPE_EWRITE: return "cannot write the tokenizer file";
    case BPE_ENOMEM: return "out of memory";
    }
    return "unknown status";
}

/* Sort order for lookup: memcmp on the common prefix, then shorter first. */
static int piece_cmp(const unsigned char *a, size_t na, const unsigned char *b, size_t nb) {
    size_t n = na < nb ? na : nb;
    int c = n ? memcmp(a, b, n) : 0;
    if (c) return c;
    return na < nb ? -1 : na > nb ? 1 : 0;
}

/* Insertion-free sort: merge sort of ids by piece (stable, no qsort context
 * needed, O(V log V)). */
static void sort_ids(const bpe_tokenizer *t, int *ids, int *tmp, int n) {
    if (n < 2) return;
    int h = n / 2;
    sort_ids(t, ids, tmp, h);
    sort_ids(t, ids + h, tmp, n - h);
    int i = 0, j = h, k = 0;
    while (i < h && j < n) {
        int a = ids[i], b = ids[j];
        if (piece_cmp(t->pieces[b], (size_t)t->lens[b], t->pieces[a], (size_t)t->lens[a]) < 0) {
            tmp[k++] = b;
            j++;
        } else {
            tmp[k++] = a;
            i++;
        }
    }
    while (i < h) tmp[k++] = ids[i++];
    while (j < n) tmp[k++] = ids[j++];
    memcpy(ids, tmp, (size_t)n * sizeof(int));
}

int bpe_lookup(const bpe_tokenizer *t, const void *bytes, size_t len) {
    int lo = 0, hi = t->vocab_size - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2, id = t->sorted[mid];
        int c = piece_cmp(t->pieces[id], (size_t)t->lens[id], bytes, len);
        if (c == 0) {
            /* Duplicates: return the lowest id among equal pieces. */
            while (mid > 0) {
                int prev = t->sorted[mid - 1];
                if (piece_cmp(t->pieces[prev], (size_t)t->lens[prev], bytes, len) != 0) break;
                mid--;
                if (prev < id) id = prev;
            }
            return id;
        }
        if (c < 0) lo = mid + 1;
        else hi = mid - 1;
    }
    return -1;
}

static int hexval(unsigned char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* The byte a "<0xHH>" piece stands for, or -1. */
static int fallback_byte(const unsigned char *p, int len) {
    if (len != 6 || p[0] != '<' || p[1] != '0' || p[2] != 'x' || p[5] != '>') return -1;
    int h = hexval(p[3]), l = hexval(p[4]);
    return h < 0 || l < 0 ? -1 : h * 16 + l;
}

/* Sorted index, byte table and flavour, once the pieces are in place. */
static int finish(bpe_tokenizer *t) {
    int V = t->vocab_size;
    t->sorted = malloc((size_t)V * sizeof(int));
    int *tmp = malloc((size_t)V * sizeof(int));
    if (!t->sorted || !tmp) {
        free(tmp);
        return BPE_ENOMEM;
    }
    for (int i = 0; i < V; i++) t->sorted[i] = i;
    sort_ids(t, t->sorted, tmp, V);
    free(tmp);
    t->sp_style = V >= 259;
    for (int b = 0; b < 256 && t->sp_style; b++)
        if (fallback_byte(t->pieces[3 + b], t->lens[3 + b]) != b) t->sp_style = 0;
    for (int b = 0; b < 256; b++) {
        if (t->sp_style) t->byte_id[b] = 3 + b;
        else {
            unsigned char c = (unsigned char)b;
            t->byte_id[b] = bpe_lookup(t, &c, 1);
        }
    }
    t->bos_id = t->sp_style ? 1 : -1;
    t->eos_id = t->sp_style ? 2 : -1;
    return BPE_OK;
}

/* Allocates arrays for V pieces totalling total_bytes. */
static int alloc_vocab(bpe_tokenizer *t, int V, size_t total_bytes) {
    memset(t, 0, sizeof *t);
    t->vocab_size = V;
    t->scores = malloc((size_t)V * sizeof(float));
    t->lens = malloc((size_t)V * sizeof(int));
    t->pieces = malloc((size_t)V * sizeof(unsigned char *));
    t->arena = malloc(total_bytes + (size_t)V);
    if (!t->scores || !t->lens || !t->pieces || !t->arena) return BPE_ENOMEM;
    return BPE_OK;
}

void bpe_free(bpe_tokenizer *t) {
    if (!t) return;
    free(t->scores);
    free(t->lens);
    free(t->pieces);
    free(t->arena);
    free(t->sorted);
    memset(t, 0, sizeof *t);
}

int bpe_init(bpe_tokenizer *t, int V, const char *const *pieces, const int *lens,
             const float *scores, char *err, size_t errlen) {
    if (!t) return errmsg(err, errlen, BPE_EARG, "tokenizer is NULL");
    memset(t, 0, sizeof *t);
    if (V <= 0 || !pieces || !lens) return errmsg(err, errlen, BPE_EARG, "bad vocabulary (size %d)", V);
    size_t total = 0;
    int maxlen = 1;
    for (int i = 0; i < V; i++) {
        if (lens[i] < 0 || lens[i] > BPE_MAX_TOKEN_LENGTH || (lens[i] > 0 && !pieces[i]))
            return errmsg(err, errlen, BPE_EARG, "piece %d has a bad length %d", i, lens[i]);
        total += (size_t)lens[i];
        if (lens[i] > maxlen) maxlen = lens[i];
    }
    int rc = alloc_vocab(t, V, total);
    if (rc) {
        bpe_free(t);
        return errmsg(err, errlen, rc, "out of memory");
    }
    t->max_token_length = maxlen;
    unsigned char *a = t->arena;
    for (int i = 0; i < V; i++) {
        t->pieces[i] = a;
        t->lens[i] = lens[i];
        t->scores[i] = scores ? scores[i] : 0.0f;
        if (lens[i]) memcpy(a, pieces[i], (size_t)lens[i]);
        a[lens[i]] = 0;
        a += lens[i] + 1;
    }
    rc = finish(t);
    if (rc) {
        bpe_free(t);
        return errmsg(err, errlen, rc, "out of memory");
    }
    return BPE_OK;
}

int bpe_init_bytes(bpe_tokenizer *t, char *err, size_t errlen) {
    char bytes[256];
    const char *pieces[256];
    int lens[256];
    for (int i = 0; i < 256; i++) {
        bytes[i] = (char)i;
        pieces[i] = &bytes[i];
        lens[i] = 1;
    }
    return bpe_init(t, 256, pieces, lens, NULL, err, errlen);
}

static uint32_t le32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

int bpe_load(bpe_tokenizer *t, const char *path, int V, char *err, size_t errlen) {
    if (!t) return errmsg(err, errlen, BPE_EARG, "tokenizer is NULL");
    memset(t, 0, sizeof *t);
    if (!path || V <= 0) return errmsg(err, errlen, BPE_EARG, "bad path or vocab_size %d", V);
    unsigned char *data = NULL;
    size_t n = 0;
    char ioerr[256];
    if (io_read_file(path, &data, &n, ioerr, sizeof ioerr) != 0) {
        if (err && errlen) snprintf(err, errlen, "%s", ioerr);
        return BPE_EOPEN;
    }
    int rc = BPE_OK;
    if (n < 4) {
        rc = errmsg(err, errlen, BPE_ETRUNC, "file of %zu bytes is shorter than its 4-byte header", n);
        goto done;
    }
    int32_t maxlen = (int32_t)le32(data);
    if (maxlen <= 0 || maxlen > BPE_MAX_TOKEN_LENGTH) {
        rc = errmsg(err, errlen, BPE_EFORMAT, "max_token_length %d is not in [1, %d]", (int)maxlen, BPE_MAX_TOKEN_LENGTH);
        goto done;
    }
    /* Pass 1: walk the entries, checking every size against the file. */
    size_t pos = 4, total = 0;
    for (int i = 0; i < V; i++) {
        if (pos == n) {
            rc = errmsg(err, errlen, BPE_EVOCAB, "file holds %d tokens, the model has %d", i, V);
            goto done;
        }
        if (n - pos < 8) {
            rc = errmsg(err, errlen, BPE_ETRUNC, "file ends inside the header of token %d", i);
            goto done;
        }
        uint32_t sbits = le32(data + pos);
        float score;
        memcpy(&score, &sbits, 4);
        int32_t len = (int32_t)le32(data + pos + 4);
        if (!isfinite(score)) {
            rc = errmsg(err, errlen, BPE_EFORMAT, "token %d has a non-finite score", i);
            goto done;
        }
        if (len < 0 || len > maxlen) {
            rc = errmsg(err, errlen, BPE_EFORMAT, "token %d has length %d outside [0, max_token_length]", i, (int)len);
            goto done;
        }
        pos += 8;
        if (n - pos < (size_t)len) {
            rc = errmsg(err, errlen, BPE_ETRUNC, "file ends inside the bytes of token %d", i);
            goto done;
        }
        pos += (size_t)len;
        total += (size_t)len;
    }
    if (pos != n) {
        rc = errmsg(err, errlen, BPE_EVOCAB, "file holds more than the model's %d tokens (%zu bytes left)", V, n - pos);
        goto done;
    }
    rc = alloc_vocab(t, V, total);
    if (rc) {
        errmsg(err, errlen, rc, "out of memory");
        goto done;
    }
    t->max_token_length = maxlen;
    /* Pass 2: copy. */
    pos = 4;
    unsigned char *a = t->arena;
    for (int i = 0; i < V; i++) {
        uint32_t sbits = le32(data + pos);
        memcpy(&t->scores[i], &sbits, 4);
        t->lens[i] = (int)(int32_t)le32(data + pos + 4);
        pos += 8;
        t->pieces[i] = a;
        memcpy(a, data + pos, (size_t)t->lens[i]);
        a[t->lens[i]] = 0;
        a += t->lens[i] + 1;
        pos += (size_t)t->lens[i];
    }
    rc = finish(t);
    if (rc) errmsg(err, errlen, rc, "out of memory");
done:
    free(data);
    if (rc) bpe_free(t);
    return rc;
}

int bpe_save(const bpe_tokenizer *t, const char *path, char *err, size_t errlen) {
    if (!t || !path || t->vocab_size <= 0) return errmsg(err, errlen, BPE_EARG, "bad tokenizer or path");
    io_buf b = { 0 };
    io_buf_i32(&b, t->max_token_length);
    for (int i = 0; i < t->vocab_size; i++) {
        io_buf_f32s(&b, &t->scores[i], 1);
        io_buf_i32(&b, t->lens[i]);
        io_buf_bytes(&b, t->pieces[i], (size_t)t->lens[i]);
    }
    if (b.oom) {
        io_buf_free(&b);
        return errmsg(err, errlen, BPE_ENOMEM, "out of memory");
    }
    int rc = io_write_atomic(path, b.data, b.len, err, errlen) == 0 ? BPE_OK : BPE_EWRITE;
    io_buf_free(&b);
    return rc;
}

/* Pushes the token(s) for bytes p[0..n): the piece if it exists, else one
 * byte-fallback token per byte. */
static int push_piece(const bpe_tokenizer *t, const unsigned char *p, size_t n, int *out, size_t *k) {
    int id = bpe_lookup(t, p, n);
    if (id >= 0) {
        out[(*k)++] = id;
        return BPE_OK;
    }
    for (size_t i = 0; i < n; i++) {
        if (t->byte_id[p[i]] < 0) return BPE_EENCODE;
        out[(*k)++] = t->byte_id[p[i]];
    }
    return BPE_OK;
}

int bpe_encode(const bpe_tokenizer *t, const char *text, size_t len, int add_bos, int add_eos,
               int *out, size_t max_out, size_t *n_out, char *err, size_t errlen) {
    if (!t || (!text && len) || !out || !n_out) return errmsg(err, errlen, BPE_EARG, "NULL argument");
    *n_out = 0;
    if (max_out < len + 3) return errmsg(err, errlen, BPE_ESPACE, "output holds %zu tokens, need %zu", max_out, len + 3);
    const unsigned char *s = (const unsigned char *)text;
    size_t k = 0;
    if (t->sp_style && add_bos) out[k++] = t->bos_id;
    /* sentencepiece's add_dummy_prefix: the text is encoded as " " + text. */
    if (t->sp_style && len > 0) {
        unsigned char sp = ' ';
        if (push_piece(t, &sp, 1, out, &k)) return errmsg(err, errlen, BPE_EENCODE, "no token for the space byte");
    }
    for (size_t i = 0; i < len;) {
        size_t n = 1;   /* one UTF-8 code point: lead byte + continuation bytes, at most 4 */
        while (i + n < len && n < 4 && (s[i + n] & 0xC0) == 0x80) n++;
        if (push_piece(t, s + i, n, out, &k))
            return errmsg(err, errlen, BPE_EENCODE, "no token for byte 0x%02x at offset %zu", (unsigned)s[i], i);
        i += n;
    }
    size_t first = t->sp_style && add_bos ? 1 : 0;   /* BOS never merges */
    unsigned char *buf = malloc((size_t)t->max_token_length * 2 + 1);
    if (!buf) return errmsg(err, errlen, BPE_ENOMEM, "out of memory");
    for (;;) {
        float best = -INFINITY;
        int best_id = -1;
        size_t best_i = 0;
        for (size_t i = first; i + 1 < k; i++) {
            int a = out[i], b = out[i + 1];
            size_t na = (size_t)t->lens[a], nb = (size_t)t->lens[b];
            if (na + nb > (size_t)t->max_token_length) continue;   /* no piece is that long */
            memcpy(buf, t->pieces[a], na);
            memcpy(buf + na, t->pieces[b], nb);
            int id = bpe_lookup(t, buf, na + nb);
            if (id >= 0 && t->scores[id] > best) {   /* strict: the leftmost pair wins ties */
                best = t->scores[id];
                best_id = id;
                best_i = i;
            }
        }
        if (best_id < 0) break;
        out[best_i] = best_id;
        memmove(out + best_i + 1, out + best_i + 2, (k - best_i - 2) * sizeof(int));
        k--;
    }
    free(buf);
    if (t->sp_style && add_eos) out[k++] = t->eos_id;
    *n_out = k;
    return BPE_OK;
}

size_t bpe_decode(const bpe_tokenizer *t, int prev, int token, unsigned char *out) {
    out[0] = 0;
    if (!t || token < 0 || token >= t->vocab_size) return 0;
    const unsigned char *p = t->pieces[token];
    size_t n = (size_t)t->lens[token];
    if (t->sp_style) {
        int b = fallback_byte(p, (int)n);
        if (b >= 0) {
            out[0] = (unsigned char)b;
            out[1] = 0;
            return 1;
        }
        /* sentencepiece strips the dummy-prefix space of the first piece. */
        if (prev == t->bos_id && n > 0 && p[0] == ' ') {
            p++;
            n--;
        }
    }
    memcpy(out, p, n);
    out[n] = 0;
    return n;
}
