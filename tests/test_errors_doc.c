/*
 * test_errors_doc.c — keeps docs/ERRORS.md true. Every ```console block of
 * that file lists commands ("$ ropegpt ... # exit N") each followed by the
 * one stderr line it must print; this test builds the fixtures the commands
 * name under $TMP (data files, a trained run, damaged checkpoints, llama2.c
 * model files and tokenizers with one field broken), runs every command
 * and compares status and message exactly ('*' in the expected line matches
 * any text). A message changed in the code without the doc, or a doc line
 * nobody runs, fails here.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test.h"
#include "util/io.h"

#define DOC_PATH "docs/ERRORS.md"

/* Runs argv (argv[0] = "ropegpt" is replaced by the built binary); the exit
 * status (or -1), stderr into err. */
static int doc_run(char **argv, char *err, size_t errlen, const char *errfile) {
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(errfile, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int nul = open("/dev/null", O_WRONLY);
        if (fd >= 0) dup2(fd, 2);
        if (nul >= 0) dup2(nul, 1);
        argv[0] = (char *)test_bin_path();
        execv(argv[0], argv);
        _exit(127);
    }
    int st = -1;
    while (pid > 0 && waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
    err[0] = 0;
    FILE *f = fopen(errfile, "rb");
    if (f) {
        size_t n = fread(err, 1, errlen - 1, f);
        err[n] = 0;
        fclose(f);
    }
    return pid > 0 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Glob with '*' only (the messages hold '[' and '?'). */
static int doc_match(const char *pat, const char *s) {
    if (*pat == 0) return *s == 0;
    if (*pat == '*') {
        for (const char *t = s;; t++) {
            if (doc_match(pat + 1, t)) return 1;
            if (*t == 0) return 0;
        }
    }
    return *pat == *s && doc_match(pat + 1, s + 1);
}

/* Replaces every occurrence of from in s (in place, size cap) by to. */
static void doc_replace(char *s, size_t cap, const char *from, const char *to) {
    char out[8192];
    size_t o = 0, fl = strlen(from), tl = strlen(to);
    for (const char *p = s; *p && o + 1 < sizeof out;) {
        if (fl && strncmp(p, from, fl) == 0 && o + tl + 1 < sizeof out) {
            memcpy(out + o, to, tl);
            o += tl;
            p += fl;
        } else {
            out[o++] = *p++;
        }
    }
    out[o] = 0;
    snprintf(s, cap, "%s", out);
}

static int doc_write(const char *dir, const char *name, const void *p, size_t n) {
    char path[2200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return io_write_atomic(path, p, n, NULL, 0);
}

static void doc_put32(unsigned char *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}

/* Builds every fixture the doc's commands name; 0 ok. */
static int doc_fixtures(const char *tmp) {
    char path[1200], err[4096], errfile[1024];
    snprintf(errfile, sizeof errfile, "%s/stderr.txt", tmp);
    unsigned char *text = NULL;
    size_t tlen = 0;
    if (io_read_file("data/tinyshakespeare.txt", &text, &tlen, NULL, 0) || tlen < 20001) {
        free(text);
        return -1;
    }
    int bad = doc_write(tmp, "data.txt", text, 20000) | doc_write(tmp, "data2.txt", text, 20001) |
              doc_write(tmp, "tiny.txt", text, 200) | doc_write(tmp, "empty.txt", "", 0) |
              doc_write(tmp, "afile", "x", 1);
    free(text);
    if (bad) return -1;

    char data[1024], run[1024], lbin[1024], tok[1024];
    snprintf(data, sizeof data, "%s/data.txt", tmp);
    snprintf(run, sizeof run, "%s/run", tmp);
    snprintf(lbin, sizeof lbin, "%s/l.bin", tmp);
    snprintf(tok, sizeof tok, "%s/tok.bin", tmp);
    char *train[] = { "ropegpt", "train", "--layers", "1", "--dim", "16", "--heads", "2", "--ctx", "16", "--batch",
                      "2", "--eval-batches", "1", "--threads", "1", "--quiet", "--steps", "4", "--stop-after", "2",
                      "--data", data, "--out", run, NULL };
    if (doc_run(train, err, sizeof err, errfile) != 0) return -1;
    char *exp[] = { "ropegpt", "export", "--random", "tiny", "--out", lbin, "--tokenizer-out", tok, NULL };
    if (doc_run(exp, err, sizeof err, errfile) != 0) return -1;

    /* Damaged checkpoints, each as <tmp>/ck/<kind>/model.bin. */
    unsigned char *ck = NULL, *c = NULL;
    size_t n = 0;
    snprintf(path, sizeof path, "%s/model.bin", run);
    if (io_read_file(path, &ck, &n, NULL, 0) || n < 200) { free(ck); return -1; }
    c = malloc(n + 1);
    const char *kinds[] = { "version", "trunc", "oversized", "short", "crc", "magic" };
    for (int k = 0; k < 6 && c; k++) {
        memcpy(c, ck, n);
        size_t len = n;
        if (k == 0) c[8] = 9;
        if (k == 1) len = 100;
        if (k == 2) { c[n] = 0; len = n + 1; }
        if (k == 3) len = 10;
        if (k == 4) c[n - 50] ^= 1;
        if (k == 5) memcpy(c, "NOTACKPT", 8);
        char dir[1024];
        snprintf(dir, sizeof dir, "%s/ck/%s", tmp, kinds[k]);
        bad |= io_mkdir_p(dir, NULL, 0) | doc_write(dir, "model.bin", c, len);
    }
    free(c);
    free(ck);

    /* llama2.c model and tokenizer.bin with one thing wrong each. */
    unsigned char *l = NULL, *t = NULL;
    size_t ln = 0, tn = 0;
    if (io_read_file(lbin, &l, &ln, NULL, 0) || io_read_file(tok, &t, &tn, NULL, 0)) {
        free(l);
        free(t);
        return -1;
    }
    unsigned char *b = malloc((ln > tn ? ln : tn) + 16);
    if (!b) bad = -1;
    if (b) {
        bad |= doc_write(tmp, "l_short.bin", l, 20) | doc_write(tmp, "l_trunc.bin", l, ln - 4);
        memcpy(b, l, ln);
        memset(b + ln, 0, 4);
        bad |= doc_write(tmp, "l_extra.bin", b, ln + 4);
        memcpy(b, l, ln);
        doc_put32(b, (uint32_t)-32);
        bad |= doc_write(tmp, "l_dim.bin", b, ln);
        memcpy(b, l, ln);
        doc_put32(b + 12, 5);
        bad |= doc_write(tmp, "l_heads.bin", b, ln);
        memcpy(b, l, ln);
        doc_put32(b, 0x616b3432u);   /* "ak42" */
        bad |= doc_write(tmp, "l_ak42.bin", b, ln);
        bad |= doc_write(tmp, "tok_trunc.bin", t, tn - 3);
        memcpy(b, t, tn);
        memset(b + tn, 0, 12);
        bad |= doc_write(tmp, "tok_extra.bin", b, tn + 12);
        memcpy(b, t, tn);
        doc_put32(b, 0);
        bad |= doc_write(tmp, "tok_maxlen.bin", b, tn);
        memcpy(b, t, tn);
        doc_put32(b + 8, (uint32_t)-5);
        bad |= doc_write(tmp, "tok_neglen.bin", b, tn);
        memcpy(b, t, tn);
        doc_put32(b + 4, 0x7fc00000u);   /* a NaN score */
        bad |= doc_write(tmp, "tok_nan.bin", b, tn);
    }
    free(b);
    free(l);
    free(t);
    return bad ? -1 : 0;
}

TEST(errors_doc_commands_give_exactly_these_messages) {
    char tmp[512], errfile[600];
    snprintf(tmp, sizeof tmp, "%s/errdoc", test_tmp_dir());
    snprintf(errfile, sizeof errfile, "%s/stderr.txt", tmp);
    CHECK(io_mkdir_p(tmp, NULL, 0) == 0);
    int fx = doc_fixtures(tmp);
    CHECK_EQ_INT(fx, 0);
    if (fx) return;
    unsigned char *doc = NULL;
    size_t dlen = 0;
    CHECK(io_read_file(DOC_PATH, &doc, &dlen, NULL, 0) == 0);
    if (!doc) return;
    int in_block = 0, commands = 0;
    char *save = NULL;
    char *line = strtok_r((char *)doc, "\n", &save);
    while (line) {
        if (strncmp(line, "```console", 10) == 0) in_block = 1;
        else if (strncmp(line, "```", 3) == 0) in_block = 0;
        else if (in_block && strncmp(line, "$ ropegpt", 9) == 0) {
            char cmd[2048];
            snprintf(cmd, sizeof cmd, "%s", line + 2);
            char *hash = strstr(cmd, " # exit ");
            CHECK(hash != NULL);
            if (!hash) break;
            int want_status = atoi(hash + 8);
            *hash = 0;
            char *expect = strtok_r(NULL, "\n", &save);
            CHECK(expect != NULL);
            if (!expect) break;
            char shown[2048];
            snprintf(shown, sizeof shown, "%s", cmd);
            doc_replace(cmd, sizeof cmd, "$TMP", tmp);
            char *argv[64];
            int argc = 0;
            char *sv = NULL;
            for (char *a = strtok_r(cmd, " ", &sv); a && argc < 63; a = strtok_r(NULL, " ", &sv)) argv[argc++] = a;
            argv[argc] = NULL;
            char err[8192];
            int st = doc_run(argv, err, sizeof err, errfile);
            size_t el = strlen(err);
            int one_line = el > 0 && err[el - 1] == '\n' && strchr(err, '\n') == err + el - 1;
            if (el && err[el - 1] == '\n') err[el - 1] = 0;
            doc_replace(err, sizeof err, tmp, "$TMP");
            if (st != want_status || !one_line || !doc_match(expect, err))
                test_fail(__FILE__, __LINE__, "%s\n      status %d (doc: %d)\n      got:  %s\n      doc:  %s", shown, st,
                          want_status, err, expect);
            commands++;
        }
        line = strtok_r(NULL, "\n", &save);
    }
    free(doc);
    CHECK(commands >= 50);   /* the doc's blocks were found and run */
}
