/*
 * fuzz_util.c — helpers shared by the fuzz harnesses in tests/fuzz/: a
 * cursor that turns fuzzer bytes into typed values (biased toward the edge
 * cases parsers get wrong: 0, -1, extremes, NaN, Inf), a private scratch
 * file for readers that only take a path, and a little-endian patcher.
 * Not compiled alone: each fuzz_<name>.c includes it, so the same code runs
 * inside the libFuzzer binaries (mk/fuzz.mk) and inside the test runner's
 * replay test (tests/test_fuzz_replay.c), which includes the harnesses too.
 */
#ifndef ROPEGPT_FUZZ_UTIL_C
#define ROPEGPT_FUZZ_UTIL_C

#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Each harness uses only some of these helpers. */
#define FUZZ_HELPER static __attribute__((unused))

/* ---------------------------------------------------------------- cursor */

typedef struct {
    const uint8_t *p;
    size_t n, pos;
} fuzz_cursor;

FUZZ_HELPER uint8_t fuzz_u8(fuzz_cursor *c) { return c->pos < c->n ? c->p[c->pos++] : 0; }

FUZZ_HELPER uint64_t fuzz_raw(fuzz_cursor *c, int bytes) {
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++) v |= (uint64_t)fuzz_u8(c) << (8 * i);
    return v;
}

/* An int: mostly small (0..255), sometimes an edge value, sometimes raw. */
FUZZ_HELPER int fuzz_int(fuzz_cursor *c) {
    static const int edge[] = { 0, -1, 1, 2, 3, 4, 64, 128, INT_MAX, INT_MIN, INT_MAX / 2 + 1, -2 };
    uint8_t sel = fuzz_u8(c);
    if (sel < 192) return (int)fuzz_u8(c);
    if (sel < 240) return edge[sel % (sizeof edge / sizeof edge[0])];
    return (int)(uint32_t)fuzz_raw(c, 4);
}

FUZZ_HELPER int64_t fuzz_i64(fuzz_cursor *c) {
    static const int64_t edge[] = { 0, -1, 1, 2, 2048, 4096, INT64_MAX, INT64_MIN, (int64_t)1 << 31, 1 << 20 };
    uint8_t sel = fuzz_u8(c);
    if (sel < 160) return (int64_t)fuzz_raw(c, 2);
    if (sel < 224) return edge[sel % (sizeof edge / sizeof edge[0])];
    return (int64_t)fuzz_raw(c, 8);
}

/* A double: an edge value from the table, or 8 raw bytes (any bit pattern). */
FUZZ_HELPER double fuzz_double(fuzz_cursor *c) {
    static const double edge[] = { 0.0, -0.0, 1.0, -1.0, 2.0, 0.5, 4.0, 8.0, 16.0, 32.0, 1e4, 5e5,
                                   1e-300, 1e300, 4.9e-324, 1.7976931348623157e308, 1e-5, 64.0,
                                   0.1, 1.5, 3.0, 1e6, 1e-2 };
    uint8_t sel = fuzz_u8(c);
    if (sel < 200) {
        double v = edge[sel % (sizeof edge / sizeof edge[0])];
        return (sel / 100) ? -v : v;
    }
    if (sel < 210) return NAN;
    if (sel < 220) return INFINITY;
    if (sel < 230) return -INFINITY;
    uint64_t bits = fuzz_raw(c, 8);
    double v;
    memcpy(&v, &bits, sizeof v);
    return v;
}

/* --------------------------------------------------------- scratch file */

/* Writes the bytes to this process's scratch file "<dir>/ropegpt-fuzz-
 * <pid>-<tag>" (dir: $TMPDIR, else /dev/shm, else /tmp; removed at exit)
 * and returns its path, or NULL if it cannot be written (the harness then
 * skips the input rather than report a crash). */
static char fuzz_tmp_paths[4][512];
static int fuzz_tmp_count;

FUZZ_HELPER void fuzz_tmp_cleanup(void) {
    for (int i = 0; i < fuzz_tmp_count; i++) unlink(fuzz_tmp_paths[i]);
}

FUZZ_HELPER const char *fuzz_tmp_write(int slot, const char *tag, const uint8_t *data, size_t size) {
    if (slot < 0 || slot >= 4) return NULL;
    if (!fuzz_tmp_paths[slot][0]) {
        /* A memory file system when there is one: a disk-backed /tmp makes
         * each input cost a journaled truncate (measured: 5x slower). */
        struct stat st;
        const char *dir = getenv("TMPDIR");
        if (!dir || !*dir) dir = (stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode)) ? "/dev/shm" : "/tmp";
        snprintf(fuzz_tmp_paths[slot], sizeof fuzz_tmp_paths[slot], "%s/ropegpt-fuzz-%ld-%s", dir,
                 (long)getpid(), tag);
        if (fuzz_tmp_count == 0) atexit(fuzz_tmp_cleanup);
        if (slot >= fuzz_tmp_count) fuzz_tmp_count = slot + 1;
    }
    int fd = open(fuzz_tmp_paths[slot], O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) return NULL;
    size_t done = 0;
    while (done < size) {
        ssize_t k = write(fd, data + done, size - done);
        if (k <= 0) {
            close(fd);
            return NULL;
        }
        done += (size_t)k;
    }
    close(fd);
    return fuzz_tmp_paths[slot];
}

/* ------------------------------------------------------- little endian */

FUZZ_HELPER void fuzz_put_u32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
FUZZ_HELPER void fuzz_put_u64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

/* 1 if s is one line (no newline) and not empty: the readers promise one
 * line in err. */
FUZZ_HELPER int fuzz_one_line(const char *s) { return s[0] != 0 && strchr(s, '\n') == NULL; }

#endif
