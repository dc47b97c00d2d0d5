/*
 * io.c — checked file I/O (see io.h): whole-file reads, atomic writes via a
 * temp file + fsync + rename in the same folder (rename is atomic only
 * within one file system), mkdir -p, CRC-32 and a little-endian field
 * writer/reader. Byte order is fixed by shifting, never by memcpy of a
 * multi-byte integer, so files are the same on any host.
 */
#define _POSIX_C_SOURCE 200809L
#include "util/io.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "util/errmsg.h"

/* ---------------------------------------------------------------- crc32 */

/* Table-driven CRC-32, reflected polynomial 0xEDB88320 (ISO-HDLC / IEEE
 * 802.3, as in RFC 1952 §8). The 256-entry table is rebuilt on the stack per
 * call (about 2k shifts) rather than cached in a static: no global state, and
 * the cost is negligible next to the megabytes a checkpoint checksums. */
uint32_t io_crc32(uint32_t crc, const void *data, size_t n) {
    uint32_t table[256];
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = (c & 1u) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        table[i] = c;
    }
    const unsigned char *p = (const unsigned char *)data;
    crc = ~crc;
    for (size_t i = 0; i < n; i++) crc = table[(crc ^ p[i]) & 0xFFu] ^ (crc >> 8);
    return ~crc;
}

/* ---------------------------------------------------------------- files */

int io_read_file(const char *path, unsigned char **data, size_t *len, char *err, size_t errlen) {
    *data = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY);
    if (fd < 0) return errmsg(err, errlen, -1, "cannot open '%s': %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return errmsg(err, errlen, -1, "'%s' is not a regular file", path);
    }
    size_t n = (size_t)st.st_size;
    unsigned char *buf = malloc(n + 1);
    if (!buf) {
        close(fd);
        return errmsg(err, errlen, -1, "out of memory reading '%s' (%zu bytes)", path, n);
    }
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            int e = errno;
            free(buf);
            close(fd);
            return errmsg(err, errlen, -1, "read error on '%s': %s", path, strerror(e));
        }
        if (r == 0) break;   /* the file shrank while we read: keep what is there */
        got += (size_t)r;
    }
    close(fd);
    buf[got] = 0;
    *data = buf;
    *len = got;
    return 0;
}

/* The folder part of path ("." if none), for fsync after rename. */
static void dir_of(const char *path, char *out, size_t outlen) {
    const char *slash = strrchr(path, '/');
    if (!slash) { snprintf(out, outlen, "."); return; }
    size_t n = (size_t)(slash - path);
    if (n == 0) n = 1;   /* "/file" lives in "/" */
    if (n >= outlen) n = outlen - 1;
    memcpy(out, path, n);
    out[n] = 0;
}

/* Removes "<base>.tmp.<pid>" files in dir left by writers that no longer
 * run (killed mid-write: SIGKILL, OOM killer, power loss). Without this,
 * every kill during a save leaves a checkpoint-sized file behind, and a run
 * that is killed often fills the disk (found by tests/test_crash.c). A temp
 * file whose process still runs, or whose pid was reused, is left alone. */
static void remove_stale_temps(const char *dir, const char *base) {
    DIR *d = opendir(dir);
    if (!d) return;
    size_t blen = strlen(base);
    for (struct dirent *e; (e = readdir(d));) {
        const char *n = e->d_name;
        if (strncmp(n, base, blen) != 0 || strncmp(n + blen, ".tmp.", 5) != 0) continue;
        char *end = NULL;
        errno = 0;
        long pid = strtol(n + blen + 5, &end, 10);
        if (errno || end == n + blen + 5 || *end != 0 || pid <= 0 || pid == (long)getpid()) continue;
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue;
        char full[4096];
        int k = snprintf(full, sizeof full, "%s/%s", dir, n);
        if (k > 0 && (size_t)k < sizeof full) (void)unlink(full);
    }
    closedir(d);
}

int io_write_atomic(const char *path, const void *data, size_t len, char *err, size_t errlen) {
    char tmp[4096];
    int k = snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    if (k < 0 || (size_t)k >= sizeof tmp) return errmsg(err, errlen, -1, "path too long: '%s'", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0666);
    if (fd < 0) return errmsg(err, errlen, -1, "cannot create '%s': %s", tmp, strerror(errno));
    const unsigned char *p = (const unsigned char *)data;
    size_t done = 0;
    while (done < len) {
        ssize_t w = write(fd, p + done, len - done);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            int e = errno;
            close(fd);
            unlink(tmp);
            return errmsg(err, errlen, -1, "write error on '%s': %s", tmp, strerror(e));
        }
        done += (size_t)w;
    }
    /* fsync before rename: otherwise a crash can leave the new name pointing
     * at an empty or partial file on some file systems (ext4 data=writeback). */
    if (fsync(fd) != 0) {
        int e = errno;
        close(fd);
        unlink(tmp);
        return errmsg(err, errlen, -1, "fsync failed on '%s': %s", tmp, strerror(e));
    }
    if (close(fd) != 0) {
        int e = errno;
        unlink(tmp);
        return errmsg(err, errlen, -1, "close failed on '%s': %s", tmp, strerror(e));
    }
    if (rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return errmsg(err, errlen, -1, "cannot rename '%s' to '%s': %s", tmp, path, strerror(e));
    }
    /* fsync the folder so the rename itself survives a crash. Failure here is
     * not an error for the caller: the file is complete under its name. */
    char dir[4096];
    dir_of(path, dir, sizeof dir);
    int dfd = open(dir, O_RDONLY);
    if (dfd >= 0) {
        (void)fsync(dfd);
        close(dfd);
    }
    const char *slash = strrchr(path, '/');
    remove_stale_temps(dir, slash ? slash + 1 : path);
    return 0;
}

int io_mkdir_p(const char *path, char *err, size_t errlen) {
    char buf[4096];
    size_t n = strlen(path);
    if (n == 0) return errmsg(err, errlen, -1, "empty folder name");
    if (n >= sizeof buf) return errmsg(err, errlen, -1, "path too long: '%s'", path);
    memcpy(buf, path, n + 1);
    /* Create each prefix ending before a '/', then the whole path. */
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] != '/' && buf[i] != 0) continue;
        char c = buf[i];
        buf[i] = 0;
        if (mkdir(buf, 0777) != 0 && errno != EEXIST) {
            return errmsg(err, errlen, -1, "cannot create folder '%s': %s", buf, strerror(errno));
        }
        struct stat st;
        if (stat(buf, &st) != 0)
            return errmsg(err, errlen, -1, "cannot create folder '%s': %s", buf, strerror(errno));
        if (!S_ISDIR(st.st_mode))
            return errmsg(err, errlen, -1, "cannot create folder '%s': '%s' is not a folder", path, buf);
        buf[i] = c;
    }
    return 0;
}

int io_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

int io_check_parent_writable(const char *path, char *err, size_t errlen) {
    char dir[4096];
    const char *slash = strrchr(path, '/');
    if (!slash) snprintf(dir, sizeof dir, ".");
    else if (slash == path) snprintf(dir, sizeof dir, "/");
    else if ((size_t)(slash - path) >= sizeof dir) return errmsg(err, errlen, -1, "path too long");
    else snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    struct stat st;
    if (stat(dir, &st) != 0) return errmsg(err, errlen, -1, "folder '%s': %s", dir, strerror(errno));
    if (!S_ISDIR(st.st_mode)) return errmsg(err, errlen, -1, "'%s' is not a folder", dir);
    if (access(dir, W_OK) != 0) return errmsg(err, errlen, -1, "folder '%s' is not writable: %s", dir, strerror(errno));
    return 0;
}

int io_path_join(char *out, size_t outlen, const char *dir, const char *name) {
    size_t dl = strlen(dir);
    int k;
    if (dl > 0 && dir[dl - 1] == '/') k = snprintf(out, outlen, "%s%s", dir, name);
    else k = snprintf(out, outlen, "%s/%s", dir, name);
    return (k < 0 || (size_t)k >= outlen) ? -1 : 0;
}

/* ---------------------------------------------------------------- writer */

void io_buf_free(io_buf *b) {
    free(b->data);
    memset(b, 0, sizeof *b);
}

void io_buf_bytes(io_buf *b, const void *p, size_t n) {
    if (b->oom) return;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n) cap *= 2;
        unsigned char *d = realloc(b->data, cap);
        if (!d) { b->oom = 1; return; }
        b->data = d;
        b->cap = cap;
    }
    if (n) memcpy(b->data + b->len, p, n);
    b->len += n;
}

static void le32(unsigned char *o, uint32_t v) {
    for (int i = 0; i < 4; i++) o[i] = (unsigned char)(v >> (8 * i));
}
static void le64(unsigned char *o, uint64_t v) {
    for (int i = 0; i < 8; i++) o[i] = (unsigned char)(v >> (8 * i));
}

void io_buf_u32(io_buf *b, uint32_t v) { unsigned char o[4]; le32(o, v); io_buf_bytes(b, o, 4); }
void io_buf_u64(io_buf *b, uint64_t v) { unsigned char o[8]; le64(o, v); io_buf_bytes(b, o, 8); }
void io_buf_i32(io_buf *b, int32_t v) { io_buf_u32(b, (uint32_t)v); }
void io_buf_i64(io_buf *b, int64_t v) { io_buf_u64(b, (uint64_t)v); }
void io_buf_f64(io_buf *b, double v) {
    uint64_t u;
    memcpy(&u, &v, 8);
    io_buf_u64(b, u);
}

void io_buf_f32s(io_buf *b, const float *p, size_t n) {
    /* Grow once, then encode in chunks so large arrays cost one realloc. */
    if (b->oom) return;
    size_t need = b->len + n * 4;
    if (need > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < need) cap *= 2;
        unsigned char *d = realloc(b->data, cap);
        if (!d) { b->oom = 1; return; }
        b->data = d;
        b->cap = cap;
    }
    unsigned char *o = b->data + b->len;
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &p[i], 4);
        le32(o + 4 * i, u);
    }
    b->len = need;
}

void io_buf_str(io_buf *b, const char *s) {
    size_t n = strlen(s);
    io_buf_u32(b, (uint32_t)n);
    io_buf_bytes(b, s, n);
}

void io_buf_put_u32_at(io_buf *b, size_t off, uint32_t v) {
    if (b->oom || off + 4 > b->len) return;
    le32(b->data + off, v);
}

void io_buf_put_u64_at(io_buf *b, size_t off, uint64_t v) {
    if (b->oom || off + 8 > b->len) return;
    le64(b->data + off, v);
}

/* ---------------------------------------------------------------- reader */

io_reader io_reader_make(const void *data, size_t len) {
    io_reader r = { (const unsigned char *)data, len, 0, 0 };
    return r;
}

size_t io_reader_left(const io_reader *r) { return r->err ? 0 : r->len - r->pos; }

int io_read_bytes(io_reader *r, void *out, size_t n) {
    if (r->err || n > r->len - r->pos) {
        r->err = 1;
        if (out && n) memset(out, 0, n);
        return -1;
    }
    if (n) memcpy(out, r->data + r->pos, n);
    r->pos += n;
    return 0;
}

uint32_t io_read_u32(io_reader *r) {
    unsigned char o[4];
    if (io_read_bytes(r, o, 4)) return 0;
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) v |= (uint32_t)o[i] << (8 * i);
    return v;
}

uint64_t io_read_u64(io_reader *r) {
    unsigned char o[8];
    if (io_read_bytes(r, o, 8)) return 0;
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v |= (uint64_t)o[i] << (8 * i);
    return v;
}

int32_t io_read_i32(io_reader *r) { return (int32_t)io_read_u32(r); }
int64_t io_read_i64(io_reader *r) { return (int64_t)io_read_u64(r); }

double io_read_f64(io_reader *r) {
    uint64_t u = io_read_u64(r);
    double v;
    memcpy(&v, &u, 8);
    return v;
}

int io_read_f32s(io_reader *r, float *out, size_t n) {
    if (r->err || n > (r->len - r->pos) / 4) {
        r->err = 1;
        return -1;
    }
    const unsigned char *o = r->data + r->pos;
    for (size_t i = 0; i < n; i++) {
        const unsigned char *q = o + 4 * i;
        uint32_t u = (uint32_t)q[0] | (uint32_t)q[1] << 8 | (uint32_t)q[2] << 16 | (uint32_t)q[3] << 24;
        memcpy(&out[i], &u, 4);
    }
    r->pos += n * 4;
    return 0;
}

int io_read_str(io_reader *r, char *out, size_t outlen) {
    uint32_t n = io_read_u32(r);
    if (r->err || (size_t)n >= outlen || n > r->len - r->pos) {
        r->err = 1;
        if (outlen) out[0] = 0;
        return -1;
    }
    memcpy(out, r->data + r->pos, n);
    out[n] = 0;
    r->pos += n;
    return 0;
}
