/*
 * io.h — checked file I/O for the tools and checkpoints: read a whole file,
 * write a file atomically (temp file in the same folder, fsync, rename, so a
 * crash or a full disk never leaves a half-written file under the real name),
 * create a folder with its parents, CRC-32, and a little-endian byte buffer
 * writer/reader so file formats are written field by field, never as raw
 * structs. Every function returns 0 on success, or -1 with a one-line reason
 * in the caller's err buffer (err may be NULL); nothing prints or exits.
 */
#ifndef ROPEGPT_UTIL_IO_H
#define ROPEGPT_UTIL_IO_H

#include <stddef.h>
#include <stdint.h>

/* CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320, init and final xor
 * 0xFFFFFFFF: the zlib/PNG/gzip checksum). Start with crc = 0 and feed the
 * previous result back to checksum data in pieces. crc32 of "123456789" is
 * 0xCBF43926. */
uint32_t io_crc32(uint32_t crc, const void *data, size_t n);

/* Reads all of path into a fresh malloc'd buffer (*data, *len; one extra
 * NUL byte is appended but not counted, so text can be used as a string).
 * Caller frees *data. Errors: cannot open, not a regular file, read error,
 * out of memory. */
int io_read_file(const char *path, unsigned char **data, size_t *len, char *err, size_t errlen);

/* Writes len bytes to path atomically: writes "<path>.tmp.<pid>" in the same
 * folder, fsyncs it, renames it over path and fsyncs the folder. On any
 * error the temp file is removed and path is left as it was. */
int io_write_atomic(const char *path, const void *data, size_t len, char *err, size_t errlen);

/* mkdir -p: creates path and its missing parents (mode 0777 & ~umask).
 * An existing folder is fine; an existing non-folder is an error. */
int io_mkdir_p(const char *path, char *err, size_t errlen);

/* 1 if path exists (any kind), else 0. */
int io_exists(const char *path);

/* 0 if a file named path could be created: its folder exists, is a folder
 * and is writable; else -1 with the reason in err. For checking an output
 * path up front, so that a bad one is reported as bad input before any work. */
int io_check_parent_writable(const char *path, char *err, size_t errlen);

/* Joins dir and name with one '/' into out (size outlen). -1 if it does not fit. */
int io_path_join(char *out, size_t outlen, const char *dir, const char *name);

/* ---- little-endian byte buffer (writer) ----
 * Appends never fail visibly: on out-of-memory the buffer sets oom and
 * ignores later appends; check oom once at the end. */
typedef struct {
    unsigned char *data;
    size_t len, cap;
    int oom;
} io_buf;

void io_buf_free(io_buf *b);
void io_buf_bytes(io_buf *b, const void *p, size_t n);
void io_buf_u32(io_buf *b, uint32_t v);
void io_buf_u64(io_buf *b, uint64_t v);
void io_buf_i32(io_buf *b, int32_t v);
void io_buf_i64(io_buf *b, int64_t v);
void io_buf_f64(io_buf *b, double v);             /* IEEE-754 bits, little-endian */
void io_buf_f32s(io_buf *b, const float *p, size_t n); /* n floats, each little-endian */
void io_buf_str(io_buf *b, const char *s);        /* u32 length, then the bytes (no NUL) */
/* Overwrites 4 bytes at offset off (for sizes known only at the end). */
void io_buf_put_u32_at(io_buf *b, size_t off, uint32_t v);
void io_buf_put_u64_at(io_buf *b, size_t off, uint64_t v);

/* ---- little-endian reader over a borrowed buffer ----
 * A read past the end sets err (sticky) and returns 0 / leaves outputs
 * zeroed, so a parser reads every field and checks err once per section. */
typedef struct {
    const unsigned char *data;
    size_t len, pos;
    int err;
} io_reader;

io_reader io_reader_make(const void *data, size_t len);
size_t io_reader_left(const io_reader *r);
int io_read_bytes(io_reader *r, void *out, size_t n);
uint32_t io_read_u32(io_reader *r);
uint64_t io_read_u64(io_reader *r);
int32_t io_read_i32(io_reader *r);
int64_t io_read_i64(io_reader *r);
double io_read_f64(io_reader *r);
int io_read_f32s(io_reader *r, float *out, size_t n);
/* Reads a string written by io_buf_str into out (size outlen, NUL-terminated);
 * a string that does not fit sets err. */
int io_read_str(io_reader *r, char *out, size_t outlen);

#endif
