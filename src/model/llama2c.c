/*
 * llama2c.c — llama2.c legacy model files: header checks, read-only mmap,
 * and an atomic writer (see llama2c.h for the layout). The weight order was
 * checked against run.c's memory_map_weights in karpathy/llama2.c (facts
 * only; no code taken). Sizes are computed in uint64_t after the header has
 * been bounded by the LLAMA_MAX_* limits, so no product can overflow.
 * The host must be little-endian (the format is, and the floats are used in
 * place from the mapping); a big-endian host gets L2C_EFORMAT.
 */
#define _POSIX_C_SOURCE 200809L
#include "model/llama2c.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/errmsg.h"

const char *l2c_status_str(int s) {
    switch (s) {
    case L2C_OK: return "ok";
    case L2C_EARG: return "bad argument";
    case L2C_EOPEN: return "cannot open the model file";
    case L2C_ETRUNC: return "model file truncated";
    case L2C_ESIZE: return "model file longer than its header implies";
    case L2C_EDIM: return "bad dimension in the model header";
    case L2C_EHEADS: return "head counts do not divide in the model header";
    case L2C_EFORMAT: return "not a llama2.c legacy model file";
    case L2C_EVOCAB: return "tokenizer does not match the model's vocabulary";
    case L2C_EMMAP: return "cannot memory-map the model file";
    case L2C_EWRITE: return "cannot write the model file";
    case L2C_ENOMEM: return "out of memory";
    }
    return "unknown status";
}

static int host_little_endian(void) {
    uint32_t one = 1;
    unsigned char b;
    memcpy(&b, &one, 1);
    return b == 1;
}

static int32_t rd_i32(const unsigned char *p) {
    uint32_t u = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
    int32_t v;
    memcpy(&v, &u, 4);
    return v;
}

/* llama2.c's newer export.py versions start with this magic ("ak42"). */
#define L2C_V1_MAGIC 0x616b3432

static uint64_t rope_table_floats(const llama_config *c) {
    /* freq_cis_real + freq_cis_imag: seq_len * HS/2 each. */
    return (uint64_t)c->seq_len * (uint64_t)(c->dim / c->n_heads);
}

uint64_t llama2c_file_bytes(const llama_config *c) {
    return L2C_HEADER_BYTES + 4 * ((uint64_t)llama_weights_floats(c) + rope_table_floats(c));
}

int llama2c_parse_header(llama_config *cfg, const unsigned char *hdr, uint64_t file_len,
                         char *err, size_t errlen) {
    if (!cfg || !hdr) return errmsg(err, errlen, L2C_EARG, "NULL argument");
    if (!host_little_endian()) return errmsg(err, errlen, L2C_EFORMAT, "big-endian hosts cannot map llama2.c files");
    int32_t v[7];
    for (int i = 0; i < 7; i++) v[i] = rd_i32(hdr + 4 * i);
    if (v[0] == L2C_V1_MAGIC)
        return errmsg(err, errlen, L2C_EFORMAT, "llama2.c version-1/2 export (magic \"ak42\"); only the legacy format is read");
    static const char *names[7] = { "dim", "hidden_dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size", "seq_len" };
    static const int64_t limits[7] = { LLAMA_MAX_DIM, LLAMA_MAX_HIDDEN, LLAMA_MAX_LAYERS, LLAMA_MAX_DIM,
                                       LLAMA_MAX_DIM, LLAMA_MAX_VOCAB, LLAMA_MAX_SEQ };
    for (int i = 0; i < 7; i++) {
        int64_t x = i == 5 ? (v[i] < 0 ? -(int64_t)v[i] : v[i]) : v[i];
        if (x <= 0 || x > limits[i])
            return errmsg(err, errlen, L2C_EDIM, "header field %s = %d is not in [1, %lld]%s", names[i], (int)v[i],
                          (long long)limits[i], i == 5 ? " (negative = unshared classifier)" : "");
    }
    llama_config c = llama_config_default();
    c.dim = v[0];
    c.hidden_dim = v[1];
    c.n_layers = v[2];
    c.n_heads = v[3];
    c.n_kv_heads = v[4];
    c.shared_classifier = v[5] > 0;
    c.vocab_size = v[5] < 0 ? -v[5] : v[5];
    c.seq_len = v[6];
    char why[160];
    int rc = llama_config_validate(&c, why, sizeof why);
    if (rc == LLAMA_EHEADS) return errmsg(err, errlen, L2C_EHEADS, "header: %s", why);
    if (rc) return errmsg(err, errlen, L2C_EDIM, "header: %s", why);
    uint64_t want = llama2c_file_bytes(&c);
    if (file_len < want)
        return errmsg(err, errlen, L2C_ETRUNC, "file has %llu bytes, the header implies %llu (truncated)",
                      (unsigned long long)file_len, (unsigned long long)want);
    if (file_len > want)
        return errmsg(err, errlen, L2C_ESIZE, "file has %llu bytes, the header implies %llu (%llu extra)",
                      (unsigned long long)file_len, (unsigned long long)want, (unsigned long long)(file_len - want));
    *cfg = c;
    return L2C_OK;
}

int llama2c_open(llama2c_file *f, const char *path, char *err, size_t errlen) {
    if (!f) return errmsg(err, errlen, L2C_EARG, "NULL argument");
    memset(f, 0, sizeof *f);
    if (!path) return errmsg(err, errlen, L2C_EARG, "NULL path");
    int fd = open(path, O_RDONLY);
    if (fd < 0) return errmsg(err, errlen, L2C_EOPEN, "%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return errmsg(err, errlen, L2C_EOPEN, "%s: not a regular file", path);
    }
    uint64_t len = (uint64_t)st.st_size;
    unsigned char hdr[L2C_HEADER_BYTES];
    if (len < L2C_HEADER_BYTES) {
        close(fd);
        return errmsg(err, errlen, L2C_ETRUNC, "%s: %llu bytes, shorter than the 28-byte header", path,
                      (unsigned long long)len);
    }
    size_t got = 0;
    while (got < sizeof hdr) {
        ssize_t r = pread(fd, hdr + got, sizeof hdr - got, (off_t)got);
        if (r <= 0) {
            close(fd);
            return errmsg(err, errlen, L2C_EOPEN, "%s: cannot read the header", path);
        }
        got += (size_t)r;
    }
    llama_config c;
    char why[200];
    int rc = llama2c_parse_header(&c, hdr, len, why, sizeof why);
    if (rc) {
        close(fd);
        return errmsg(err, errlen, rc, "%s: %s", path, why);
    }
    if (len > (uint64_t)SIZE_MAX) {
        close(fd);
        return errmsg(err, errlen, L2C_EMMAP, "%s: too large to map", path);
    }
    void *map = mmap(NULL, (size_t)len, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);   /* the mapping keeps the file open */
    if (map == MAP_FAILED) return errmsg(err, errlen, L2C_EMMAP, "%s: mmap: %s", path, strerror(errno));
    f->cfg = c;
    f->map = map;
    f->map_len = (size_t)len;
    /* 28-byte header: the floats start 4-byte aligned in a page-aligned map. */
    const float *p = (const float *)((const unsigned char *)map + L2C_HEADER_BYTES);
    llama_weights_point(&f->w, &c, p, (size_t)rope_table_floats(&c));
    return L2C_OK;
}

void llama2c_close(llama2c_file *f) {
    if (!f) return;
    if (f->map) munmap((void *)f->map, f->map_len);
    memset(f, 0, sizeof *f);
}

static int put(FILE *fp, const void *p, size_t n) { return fwrite(p, 1, n, fp) == n ? 0 : -1; }

static int put_floats(FILE *fp, const float *p, size_t n) { return put(fp, p, n * sizeof(float)); }

/* The legacy freq_cis tables: cos and sin of p * base^(-2i/HS), from librope
 * (angles in double, rounded once). */
static int put_rope_tables(FILE *fp, const llama_config *c) {
    rope_config rc = rope_config_default();
    rc.head_dim = c->dim / c->n_heads;
    rc.rotary_dim = rc.head_dim;
    rc.base = c->rope_base;
    rc.max_positions = c->seq_len;
    rope_table t;
    if (rope_table_init(&t, &rc, c->seq_len) != ROPE_OK) return -1;
    size_t n = (size_t)c->seq_len * (size_t)t.n_pairs;
    int rc_io = put_floats(fp, t.cos, n) || put_floats(fp, t.sin, n) ? -1 : 0;
    rope_table_free(&t);
    return rc_io;
}

int llama2c_write(const char *path, const llama_config *cfg, const llama_weights *w,
                  char *err, size_t errlen) {
    if (!path || !cfg || !w) return errmsg(err, errlen, L2C_EARG, "NULL argument");
    if (!host_little_endian()) return errmsg(err, errlen, L2C_EFORMAT, "big-endian hosts cannot write llama2.c files");
    char why[160];
    if (llama_config_validate(cfg, why, sizeof why)) return errmsg(err, errlen, L2C_EARG, "config: %s", why);
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 32);
    if (!tmp) return errmsg(err, errlen, L2C_ENOMEM, "out of memory");
    snprintf(tmp, plen + 32, "%s.tmp.%ld", path, (long)getpid());
    FILE *fp = fopen(tmp, "wb");
    if (!fp) {
        int rc = errmsg(err, errlen, L2C_EWRITE, "%s: %s", tmp, strerror(errno));
        free(tmp);
        return rc;
    }
    const llama_config *c = cfg;
    size_t C = (size_t)c->dim, H = (size_t)c->hidden_dim, L = (size_t)c->n_layers, V = (size_t)c->vocab_size;
    size_t kvd = (size_t)c->n_kv_heads * (C / (size_t)c->n_heads);
    int32_t hdr[7] = { c->dim, c->hidden_dim, c->n_layers, c->n_heads, c->n_kv_heads,
                       c->shared_classifier ? c->vocab_size : -c->vocab_size, c->seq_len };
    int bad = put(fp, hdr, sizeof hdr);
    bad = bad || put_floats(fp, w->token_embedding, V * C);
    bad = bad || put_floats(fp, w->rms_att, L * C);
    bad = bad || put_floats(fp, w->wq, L * C * C);
    bad = bad || put_floats(fp, w->wk, L * kvd * C);
    bad = bad || put_floats(fp, w->wv, L * kvd * C);
    bad = bad || put_floats(fp, w->wo, L * C * C);
    bad = bad || put_floats(fp, w->rms_ffn, L * C);
    bad = bad || put_floats(fp, w->w1, L * H * C);
    bad = bad || put_floats(fp, w->w2, L * C * H);
    bad = bad || put_floats(fp, w->w3, L * H * C);
    bad = bad || put_floats(fp, w->rms_final, C);
    bad = bad || put_rope_tables(fp, c);
    if (!c->shared_classifier) bad = bad || put_floats(fp, w->wcls, V * C);
    bad = bad || fflush(fp) != 0 || fsync(fileno(fp)) != 0;
    bad = fclose(fp) != 0 || bad;
    if (!bad && rename(tmp, path) != 0) bad = 1;
    int rc = L2C_OK;
    if (bad) {
        rc = errmsg(err, errlen, L2C_EWRITE, "%s: write failed: %s", path, strerror(errno));
        remove(tmp);
    }
    free(tmp);
    return rc;
}
