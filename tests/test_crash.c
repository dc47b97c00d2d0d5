/*
 * test_crash.c — what survives a crash. `ropegpt train --save-every 1` runs
 * as a child process and is killed with SIGKILL at seeded random moments
 * (mostly while it computes, writes or renames a checkpoint: the test waits
 * for a fresh model.bin, then kills 0-3 ms later); after every kill the
 * run folder's model.bin must load with its CRC-32 intact, must never go
 * back in steps, and must resume (a short --resume run exits 0 one step
 * further). The full-disk test gives a resumed run a file-size limit
 * (RLIMIT_FSIZE, SIGXFSZ ignored, so write() fails with EFBIG as on a full
 * disk): the save must fail with one line on stderr and a non-zero status,
 * and the previous model.bin must still load, unchanged.
 */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "test.h"
#include "model/checkpoint.h"
#include "util/io.h"

/* A small text file (bytes are tokens), enough for ctx 16 in both splits. */
static int crash_write_data(const char *path) {
    static const char line[] = "First Citizen:\nBefore we proceed any further, hear me speak.\nAll: Speak, speak.\n";
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    for (int i = 0; i < 200; i++) fputs(line, f);
    return fclose(f);
}

/* Starts test_bin_path() with args (NULL-terminated, after "train"), stdout and
 * stderr to log (appended). fsize > 0: RLIMIT_FSIZE in the child with SIGXFSZ
 * ignored, so an over-limit write fails with EFBIG instead of killing. */
static pid_t crash_spawn(const char *const *args, const char *log, rlim_t fsize) {
    const char *argv[40];
    int n = 0;
    argv[n++] = test_bin_path();
    argv[n++] = "train";
    for (int i = 0; args[i] && n < 39; i++) argv[n++] = args[i];
    argv[n] = NULL;
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid != 0) return pid;
    int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
        dup2(fd, 1);
        dup2(fd, 2);
        close(fd);
    }
    if (fsize > 0) {
        signal(SIGXFSZ, SIG_IGN);
        struct rlimit rl = { fsize, fsize };
        setrlimit(RLIMIT_FSIZE, &rl);
    }
    execv(argv[0], (char *const *)argv);
    _exit(127);
}

/* Waits for pid; the exit status, 128 + signal, or -1. */
static int crash_wait(pid_t pid) {
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR) return -1;
    if (WIFEXITED(st)) return WEXITSTATUS(st);
    if (WIFSIGNALED(st)) return 128 + WTERMSIG(st);
    return -1;
}

static int crash_run(const char *const *args, const char *log, rlim_t fsize) {
    pid_t pid = crash_spawn(args, log, fsize);
    return pid < 0 ? -1 : crash_wait(pid);
}

/* splitmix64 (Steele, Lea, Flood 2014): the test's own seeded kill times. */
static uint64_t crash_rand(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static void crash_sleep_us(long us) {
    struct timespec ts = { us / 1000000, (us % 1000000) * 1000 };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
}

/* Loads dir/model.bin fully (CRC, every field, optimizer state); its step, or
 * -1 with the reason printed as a test failure. */
static int64_t crash_checkpoint_step(const char *dir, int line) {
    char path[1024], err[512] = "";
    snprintf(path, sizeof path, "%s/model.bin", dir);
    checkpoint ck;
    if (checkpoint_load(path, &ck, 1, err, sizeof err) != 0) {
        test_fail(__FILE__, line, "checkpoint after kill does not load: %s", err);
        return -1;
    }
    int64_t step = ck.step;
    checkpoint_free(&ck);
    return step;
}

/* Files named like io_write_atomic's temp files ("<name>.tmp.<pid>") in dir. */
static int crash_count_temps(const char *dir) {
    DIR *d = opendir(dir);
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));)
        if (strstr(e->d_name, ".tmp.")) n++;
    if (d) closedir(d);
    return n;
}

#define CRASH_KILLS 24

/* The inode of path (a rename gives the new file a new one), or 0. */
static ino_t crash_inode(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 ? st.st_ino : 0;
}

TEST(crash_sigkill_during_training_never_loses_the_checkpoint) {
    char data[512], dir[512], log[512];
    snprintf(data, sizeof data, "%s/crash_data.txt", test_tmp_dir());
    snprintf(dir, sizeof dir, "%s/crash_run", test_tmp_dir());
    snprintf(log, sizeof log, "%s/crash.log", test_tmp_dir());
    CHECK(crash_write_data(data) == 0);
    /* A first checkpoint (step 1), so that every killed run is a resume. */
    const char *first[] = { "--pe", "rope", "--layers", "1", "--heads", "2", "--dim", "16", "--ctx", "16",
                            "--batch", "2", "--steps", "1000000", "--eval-every", "1000000", "--eval-batches", "1",
                            "--save-every", "1", "--stop-after", "1", "--threads", "1", "--quiet", "--data", data,
                            "--out", dir, NULL };
    CHECK_EQ_INT(crash_run(first, log, 0), 0);
    const char *resume[] = { "--resume", dir, "--threads", "1", "--quiet", NULL };
    uint64_t seed = 20261128;
    int64_t last_step = crash_checkpoint_step(dir, __LINE__);
    CHECK_EQ_INT(last_step, 1);
    if (last_step != 1) return;
    int resumed_ok = 0, in_save_loop = 0;
    char model[600];
    snprintf(model, sizeof model, "%s/model.bin", dir);
    for (int k = 0; k < CRASH_KILLS; k++) {
        ino_t before = crash_inode(model);
        pid_t pid = crash_spawn(resume, log, 0);
        CHECK(pid > 0);
        if (pid <= 0) return;
        if (k % 4 == 3) {
            /* Every 4th: 0..20 ms after the start (loading the checkpoint
             * and the data, building the model, the first step). */
            crash_sleep_us((long)(crash_rand(&seed) % 20000));
        } else {
            /* Otherwise wait until the run has renamed a new model.bin into
             * place (it saves every step), then 0..3 ms more: a point of the
             * step / write / fsync / rename cycle, whatever the machine's
             * speed. */
            for (int w = 0; w < 50000 && crash_inode(model) == before; w++) crash_sleep_us(100);
            in_save_loop += crash_inode(model) != before;
            crash_sleep_us((long)(crash_rand(&seed) % 3000));
        }
        kill(pid, SIGKILL);
        int st = crash_wait(pid);
        CHECK_EQ_INT(st, 128 + SIGKILL);   /* still running when killed */
        /* model.bin loads (magic, size, CRC-32, every field, optimizer). */
        int64_t step = crash_checkpoint_step(dir, __LINE__);
        if (step < 0) return;
        /* Saved progress is never lost: a later kill never finds an older step. */
        CHECK(step >= last_step);
        last_step = step;
        /* The run resumes from it: one more step, then stop and save (exit 0). */
        if (k % 3 == 0) {
            char stop[32];
            snprintf(stop, sizeof stop, "%lld", (long long)step + 1);
            const char *verify[] = { "--resume", dir, "--stop-after", stop, "--threads", "1", "--quiet", NULL };
            CHECK_EQ_INT(crash_run(verify, log, 0), 0);
            int64_t after = crash_checkpoint_step(dir, __LINE__);
            CHECK_EQ_INT(after, step + 1);
            last_step = after;
            resumed_ok++;
        }
    }
    /* The waits above saw a save each time (18 of the 24 kills). */
    CHECK_EQ_INT(in_save_loop, CRASH_KILLS - CRASH_KILLS / 4);
    CHECK_EQ_INT(resumed_ok, (CRASH_KILLS + 2) / 3);
    /* A kill during a save leaves "model.bin.tmp.<pid>" (or log.csv's)
     * behind; the next successful save removes those of dead writers, so
     * repeated kills never pile up checkpoint-sized files. */
    char stop[32];
    snprintf(stop, sizeof stop, "%lld", (long long)last_step + 1);
    const char *last[] = { "--resume", dir, "--stop-after", stop, "--threads", "1", "--quiet", NULL };
    CHECK_EQ_INT(crash_run(last, log, 0), 0);
    CHECK_EQ_INT(crash_count_temps(dir), 0);
}

TEST(crash_full_disk_save_fails_cleanly_and_keeps_the_old_checkpoint) {
    char data[512], dir[512], log[512], model[600];
    snprintf(data, sizeof data, "%s/disk_data.txt", test_tmp_dir());
    snprintf(dir, sizeof dir, "%s/disk_run", test_tmp_dir());
    snprintf(log, sizeof log, "%s/disk.log", test_tmp_dir());
    snprintf(model, sizeof model, "%s/model.bin", dir);
    CHECK(crash_write_data(data) == 0);
    const char *first[] = { "--pe", "rope", "--layers", "1", "--heads", "2", "--dim", "16", "--ctx", "16",
                            "--batch", "2", "--steps", "50", "--eval-every", "1000", "--eval-batches", "1",
                            "--save-every", "1", "--stop-after", "2", "--threads", "1", "--quiet", "--data", data,
                            "--out", dir, NULL };
    CHECK_EQ_INT(crash_run(first, log, 0), 0);
    unsigned char *before = NULL;
    size_t before_len = 0;
    CHECK(io_read_file(model, &before, &before_len, NULL, 0) == 0);
    if (!before) return;
    CHECK_EQ_INT(crash_checkpoint_step(dir, __LINE__), 2);

    /* Resume with room for the log but not for a checkpoint. */
    char errlog[512];
    snprintf(errlog, sizeof errlog, "%s/disk_err.log", test_tmp_dir());
    const char *resume[] = { "--resume", dir, "--threads", "1", "--quiet", NULL };
    int st = crash_run(resume, errlog, (rlim_t)(before_len / 2));
    CHECK(st != 0 && st < 128);   /* an error status, not a signal */
    CHECK_EQ_INT(st, 2);          /* TRAIN_EIO: the tools' status for an I/O error */

    /* One line naming the checkpoint and the cause. */
    unsigned char *msg = NULL;
    size_t msg_len = 0;
    CHECK(io_read_file(errlog, &msg, &msg_len, NULL, 0) == 0);
    if (msg) {
        int lines = 0;
        for (size_t i = 0; i < msg_len; i++) lines += msg[i] == '\n';
        CHECK_EQ_INT(lines, 1);
        CHECK(strstr((char *)msg, "model.bin") != NULL);
        CHECK(strstr((char *)msg, "File too large") != NULL);
        if (lines != 1) printf("    stderr was: %s\n", (char *)msg);
    }
    free(msg);

    /* The previous checkpoint: byte for byte the same, still loads. */
    unsigned char *after = NULL;
    size_t after_len = 0;
    CHECK(io_read_file(model, &after, &after_len, NULL, 0) == 0);
    CHECK_EQ_INT(after_len, before_len);
    CHECK(after && memcmp(after, before, before_len) == 0);
    CHECK_EQ_INT(crash_checkpoint_step(dir, __LINE__), 2);
    free(after);
    free(before);

    /* No half-written temp file is left next to it. */
    CHECK_EQ_INT(crash_count_temps(dir), 0);

    /* With the limit gone the same run continues. */
    const char *again[] = { "--resume", dir, "--stop-after", "3", "--threads", "1", "--quiet", NULL };
    CHECK_EQ_INT(crash_run(again, log, 0), 0);
    CHECK_EQ_INT(crash_checkpoint_step(dir, __LINE__), 3);
}

TEST(crash_nan_weights_never_overwrite_a_checkpoint) {
    /* A good checkpoint, then the same state with one NaN weight saved over
     * it: the save is refused with one line and the good file stays. */
    char dir[512], data[512], log[512], model[600];
    snprintf(dir, sizeof dir, "%s/nan_run", test_tmp_dir());
    snprintf(data, sizeof data, "%s/nan_data.txt", test_tmp_dir());
    snprintf(log, sizeof log, "%s/nan.log", test_tmp_dir());
    snprintf(model, sizeof model, "%s/model.bin", dir);
    CHECK(crash_write_data(data) == 0);
    const char *first[] = { "--pe", "rope", "--layers", "1", "--heads", "2", "--dim", "16", "--ctx", "16",
                            "--batch", "2", "--steps", "5", "--eval-batches", "1", "--stop-after", "1", "--threads",
                            "1", "--quiet", "--data", data, "--out", dir, NULL };
    CHECK_EQ_INT(crash_run(first, log, 0), 0);
    checkpoint ck;
    char err[512] = "";
    CHECK(checkpoint_load(model, &ck, 1, err, sizeof err) == 0);
    if (!ck.params) return;
    unsigned char *before = NULL;
    size_t before_len = 0;
    CHECK(io_read_file(model, &before, &before_len, NULL, 0) == 0);
    ck.params[ck.n_params / 2] = NAN;
    err[0] = 0;
    CHECK_EQ_INT(checkpoint_save(model, &ck, err, sizeof err), -1);
    CHECK(strstr(err, "not finite") != NULL && strchr(err, '\n') == NULL);
    ck.params[ck.n_params / 2] = 0.0f;
    ck.params[0] = INFINITY;   /* the first element of the first tensor */
    CHECK_EQ_INT(checkpoint_save(model, &ck, err, sizeof err), -1);
    CHECK(strstr(err, "parameter 0 (in ") != NULL);
    checkpoint_free(&ck);
    unsigned char *after = NULL;
    size_t after_len = 0;
    CHECK(io_read_file(model, &after, &after_len, NULL, 0) == 0);
    CHECK(after && before && after_len == before_len && memcmp(after, before, before_len) == 0);
    CHECK_EQ_INT(crash_count_temps(dir), 0);
    free(after);
    free(before);
}
