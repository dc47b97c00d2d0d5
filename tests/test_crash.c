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
 * and the previous model.bin must still load, unchanged. The nan-policy
 * tests poison one gradient element in-process (train_hooks.poison_step):
 * stop must fail naming the step with the weights of the step before and the
 * last checkpoint intact; skip must leave the weights of the poisoned step
 * equal to those before it and finish with finite weights.
 */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
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
#include "data/dataset.h"
#include "model/checkpoint.h"
#include "model/train.h"
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

/* ---------------------------------------------------------------- nan policy */

/* A period-8 byte text, a 1-layer model, 8 steps saved every 2. */
static int nan_setup(dataset *ds, gpt_config *cfg, train_config *tc) {
    char buf[2000];
    for (size_t i = 0; i < sizeof buf; i++) buf[i] = "abcdefgh"[i % 8];
    *cfg = gpt_config_default();
    cfg->L = 1;
    cfg->NH = 2;
    cfg->C = 16;
    cfg->maxT = 8;
    cfg->pe = PE_ROPE;
    *tc = train_config_default();
    tc->B = 2;
    tc->steps = 8;
    tc->warmup = 1;
    tc->eval_every = 4;
    tc->eval_batches = 1;
    tc->save_every = 2;
    tc->seed = 3;
    return dataset_init_bytes(ds, (const uint8_t *)buf, sizeof buf, 0) == DATA_OK ? 0 : -1;
}

static int all_finite(const float *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(p[i])) return 0;
    return 1;
}

TEST(crash_nan_policy_stop_names_the_step_and_keeps_the_checkpoint) {
    dataset ds;
    gpt_config cfg;
    train_config tc;
    CHECK(nan_setup(&ds, &cfg, &tc) == 0);
    char dir[512], model[600], err[512] = "";
    snprintf(dir, sizeof dir, "%s/nan_stop", test_tmp_dir());
    snprintf(model, sizeof model, "%s/model.bin", dir);
    /* Reference: the weights after step 4 (stop_after 4, nothing written). */
    trainer ref;
    CHECK_EQ_INT(trainer_init(&ref, &cfg, &tc, &ds, NULL, err, sizeof err), TRAIN_OK);
    train_hooks hr = { .stop_after = 4 };
    CHECK_EQ_INT(trainer_run(&ref, &hr, NULL, NULL, err, sizeof err), TRAIN_STOPPED);
    /* The poisoned run: step 5's gradient gets a NaN; default policy = stop. */
    trainer tr;
    CHECK_EQ_INT(trainer_init(&tr, &cfg, &tc, &ds, NULL, err, sizeof err), TRAIN_OK);
    train_hooks h = { .poison_step = 5 };
    err[0] = 0;
    CHECK_EQ_INT(trainer_run(&tr, &h, dir, NULL, err, sizeof err), TRAIN_EMODEL);
    CHECK(strcmp(err, "step 5: non-finite gradient norm (nan); stopping (the last checkpoint is intact)") == 0);
    if (strcmp(err, "step 5: non-finite gradient norm (nan); stopping (the last checkpoint is intact)"))
        printf("    err: %s\n", err);
    CHECK_EQ_INT(tr.step, 4);
    CHECK_EQ_INT(tr.opt.t, 4);
    size_t n = tr.model.num_params;
    CHECK(n == ref.model.num_params &&
          memcmp(tr.model.params_memory, ref.model.params_memory, n * sizeof(float)) == 0);
    CHECK(memcmp(tr.model.m_memory, ref.model.m_memory, n * sizeof(float)) == 0);
    /* The checkpoint of step 4 (save_every 2) loads, checksum intact. */
    checkpoint ck;
    CHECK(checkpoint_load(model, &ck, 1, err, sizeof err) == 0);
    if (ck.params) {
        CHECK_EQ_INT(ck.step, 4);
        CHECK(ck.n_params == n && memcmp(ck.params, ref.model.params_memory, n * sizeof(float)) == 0);
        checkpoint_free(&ck);
    }
    trainer_free(&tr);
    trainer_free(&ref);
    dataset_free(&ds);
}

TEST(crash_nan_policy_skip_drops_the_update_and_goes_on) {
    dataset ds;
    gpt_config cfg;
    train_config tc;
    CHECK(nan_setup(&ds, &cfg, &tc) == 0);
    char dir[512], logp[600], err[512] = "";
    snprintf(dir, sizeof dir, "%s/nan_skip", test_tmp_dir());
    snprintf(logp, sizeof logp, "%s/log.csv", dir);
    trainer tr;
    CHECK_EQ_INT(trainer_init(&tr, &cfg, &tc, &ds, NULL, err, sizeof err), TRAIN_OK);
    size_t n = tr.model.num_params;
    float *before = malloc(n * sizeof(float));
    CHECK(before != NULL);
    if (!before) return;
    /* Steps 1-2, keep the weights, then step 3 poisoned under skip. */
    train_hooks h1 = { .stop_after = 2 };
    CHECK_EQ_INT(trainer_run(&tr, &h1, dir, NULL, err, sizeof err), TRAIN_STOPPED);
    memcpy(before, tr.model.params_memory, n * sizeof(float));
    int64_t t_before = tr.opt.t;
    train_hooks h2 = { .stop_after = 3, .nan_policy = TRAIN_NAN_SKIP, .poison_step = 3 };
    train_result res;
    CHECK_EQ_INT(trainer_run(&tr, &h2, NULL, &res, err, sizeof err), TRAIN_STOPPED);
    CHECK_EQ_INT(res.skipped_steps, 1);
    CHECK_EQ_INT(tr.step, 3);
    CHECK_EQ_INT(tr.opt.t, t_before);   /* the AdamW step counter did not move */
    CHECK(memcmp(tr.model.params_memory, before, n * sizeof(float)) == 0);
    train_result_free(&res);
    /* The rest of the run (poison step 5 too), logged: finishes, finite weights,
     * the skipped row has train_loss "nan" and the usual six columns. */
    train_hooks h3 = { .nan_policy = TRAIN_NAN_SKIP, .poison_step = 5 };
    CHECK_EQ_INT(trainer_run(&tr, &h3, dir, &res, err, sizeof err), TRAIN_OK);
    CHECK_EQ_INT(res.steps_done, 8);
    CHECK_EQ_INT(res.skipped_steps, 1);
    CHECK(isfinite(res.final_val_loss));
    CHECK(all_finite(tr.model.params_memory, n) && all_finite(tr.model.m_memory, n) &&
          all_finite(tr.model.v_memory, n));
    CHECK(memcmp(tr.model.params_memory, before, n * sizeof(float)) != 0);   /* later steps did update */
    CHECK_EQ_INT(tr.opt.t, 6);   /* 8 steps, 2 skipped */
    train_result_free(&res);
    unsigned char *log = NULL;
    size_t len = 0;
    CHECK(io_read_file(logp, &log, &len, NULL, 0) == 0);
    if (log) {
        char *txt = realloc(log, len + 1);
        if (txt) {
            txt[len] = 0;
            CHECK(strstr(txt, "\n5,nan,") != NULL);
            CHECK(strstr(txt, "\n4,nan,") == NULL && strstr(txt, "\n6,nan,") == NULL);
            free(txt);
        } else {
            free(log);
        }
    }
    free(before);
    trainer_free(&tr);
    dataset_free(&ds);
}

/* ---------------------------------------------------------------- memory */

TEST(crash_memory_estimate_matches_the_allocation) {
    /* gpt_memory_bytes against what a forward + backward really allocated
     * (the model's own capacities), for two shapes and two encodings. */
    const int shapes[2][6] = { { 2, 2, 16, 8, 3, (int)PE_ROPE }, { 3, 4, 32, 24, 5, (int)PE_LEARNED } };
    for (int k = 0; k < 2; k++) {
        gpt_config c = gpt_config_default();
        c.L = shapes[k][0];
        c.NH = shapes[k][1];
        c.C = shapes[k][2];
        c.maxT = shapes[k][3];
        c.pe = (pe_type)shapes[k][5];
        const int B = shapes[k][4], T = c.maxT;
        gpt m;
        CHECK_EQ_INT(gpt_init(&m, &c, 1), GPT_OK);
        int *tok = malloc((size_t)B * (size_t)T * sizeof(int));
        CHECK(tok != NULL);
        if (!tok) { gpt_free(&m); return; }
        for (int i = 0; i < B * T; i++) tok[i] = (i * 7) % c.V;
        CHECK(isfinite(gpt_forward(&m, tok, tok, B, T)));
        CHECK_EQ_INT(gpt_backward(&m), GPT_OK);
        double state = 0, acts = 0;
        const double total = gpt_memory_bytes(&c, B, T, &state, &acts);
        const double real_state = (double)m.num_params * (4.0 * sizeof(float) + 1.0);
        const double real_acts = (double)(m.acts_capacity + m.gacts_capacity) * sizeof(float) +
                                 (double)m.tok_capacity * (2.0 * sizeof(int) + sizeof(int32_t));
        /* The same integer sums (exact in double below 2^53): any slack means a
         * buffer was added to gpt.c without gpt_memory_bytes, so 1e-12. */
        CHECK_CLOSE(state, real_state, 1e-12, 0.0);
        CHECK_CLOSE(acts, real_acts, 1e-12, 0.0);
        CHECK_CLOSE(total, real_state + real_acts, 1e-12, 0.0);
        free(tok);
        gpt_free(&m);
    }
}
