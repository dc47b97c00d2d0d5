/*
 * cmd_train_dist.c — joining, agreeing and ending an MPI `ropegpt train` job
 * (see cmd_train_dist.h). Why capture stderr on ranks other than 0 instead of
 * silencing it: a setup error that only one rank hits (its data file is
 * missing on that host) must still reach the user, through rank 0's single
 * message.
 */
#define _POSIX_C_SOURCE 200809L
#include "model/cmd_train_dist.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int train_launch_is_root(const train_launch *L) { return L->d.rank == 0; }

int train_launch_begin(train_launch *L, const char *prog) {
    memset(L, 0, sizeof *L);
    L->saved_err = -1;
    char err[512] = "";
    if (dist_init(&L->d, err, sizeof err)) {
        /* Every process of the job fails alike here; one says why. */
        if (dist_launcher_rank() == 0) fprintf(stderr, "%s: %s\n", prog, err);
        return 2;
    }
    if (L->d.rank != 0) {
        fflush(stdout);
        fflush(stderr);
        int devnull = open("/dev/null", O_WRONLY);
        if (devnull >= 0) {
            dup2(devnull, STDOUT_FILENO);
            close(devnull);
        }
        L->capture = tmpfile();
        if (L->capture) {
            L->saved_err = dup(STDERR_FILENO);
            if (L->saved_err < 0 || dup2(fileno(L->capture), STDERR_FILENO) < 0) {
                fclose(L->capture);
                L->capture = NULL;
            }
        }
    }
    return 0;
}

/* Reads what this rank wrote to stderr so far (up to n-1 bytes) and empties
 * the capture; capturing goes on. */
static void take_capture(train_launch *L, char *msg, size_t n) {
    if (n) msg[0] = 0;
    if (!L->capture) return;
    fflush(stderr);
    rewind(L->capture);
    size_t got = fread(msg, 1, n - 1, L->capture);
    msg[got] = 0;
    if (ftruncate(fileno(L->capture), 0) == 0) rewind(L->capture);
    lseek(STDERR_FILENO, 0, SEEK_SET);
}

/* Stops capturing; show = 1 copies what was captured to the real stderr. */
static void end_capture(train_launch *L, int show) {
    if (!L->capture) return;
    char buf[4096];
    take_capture(L, buf, sizeof buf);
    dup2(L->saved_err, STDERR_FILENO);
    close(L->saved_err);
    L->saved_err = -1;
    fclose(L->capture);
    L->capture = NULL;
    if (show && buf[0]) fputs(buf, stderr);
}

/* The start agreement; rank 0 prints why it failed. Returns 0 or a status. */
static int agree(train_launch *L, int status, uint64_t hash, const char *prog) {
    char msg[DIST_MSG_LEN];
    take_capture(L, msg, sizeof msg);
    char *nl = strchr(msg, '\n');   /* the first line is the message */
    if (nl) *nl = 0;
    dist_agreement a;
    if (dist_agree(&L->d, status, hash, msg, &a)) {
        if (L->d.rank == 0) fprintf(stderr, "%s: out of memory at the start agreement\n", prog);
        return 1;
    }
    L->agreed = 1;
    L->started = a.ok;
    if (a.ok) return 0;
    if (L->d.rank == 0) {
        if (a.hash_mismatch)
            fprintf(stderr, "%s: rank %d was started with a different run configuration than rank 0 (flags, "
                            "data, checkpoint or --zero differ; config hash %016llx vs %016llx); start every "
                            "rank with the same arguments\n", prog, a.bad_rank,
                    (unsigned long long)a.hash_bad, (unsigned long long)a.hash0);
        else if (a.bad_rank > 0 && status == 0) {
            /* The rank's own line already starts with "prog: "; say it once. */
            size_t pl = strlen(prog);
            const char *m = a.msg;
            if (strncmp(m, prog, pl) == 0 && m[pl] == ':') m += pl + (m[pl + 1] == ' ' ? 2 : 1);
            fprintf(stderr, "%s: rank %d failed to start: %s\n", prog, a.bad_rank, m[0] ? m : "(no message)");
        }
        /* bad_rank 0: rank 0 printed its own message already. */
    }
    if (status) return status;
    return a.hash_mismatch ? 2 : (a.bad_status ? a.bad_status : 2);
}

int train_launch_attach(train_launch *L, trainer *tr, int zero, int quiet, const char *prog) {
    char err[512] = "";
    int use = L->d.size > 1 || zero;
    if (use) {
        if (train_dist_init(&L->td, &L->d, tr, zero, err, sizeof err)) {
            fprintf(stderr, "%s: %s\n", prog, err);
            return agree(L, 2, 0, prog);
        }
        L->attached = 1;
    }
    int rc = agree(L, 0, train_dist_hash(tr, zero), prog);
    if (rc) return rc;
    if (use) tr->dist = &L->td;
    if (use && L->d.rank == 0 && !quiet) {
        fprintf(stderr, "data-parallel: %d rank%s x batch %d = global batch %d | %s\n", L->d.size,
                L->d.size == 1 ? "" : "s", tr->tc.B, tr->tc.B * L->d.size,
                zero ? "ZeRO-1: gradients reduce-scattered, AdamW sharded, parameters all-gathered"
                     : "gradients averaged by all-reduce");
        if (zero) {
            size_t full = 0, mine = train_dist_opt_bytes(&L->td, &full);
            fprintf(stderr, "zero 1: AdamW state %.2f MB per rank (%.2f MB unsharded, /%d ranks)\n",
                    (double)mine / 1e6, (double)full / 1e6, L->d.size);
        }
    }
    return 0;
}

int train_launch_end(train_launch *L, int rc, const char *prog) {
    if (!L->agreed) {
        /* This rank stopped before attaching: the others may be waiting in
         * the agreement, so take part in it (with the failure). */
        int r = agree(L, rc, 0, prog);
        if (rc == 0) rc = r;
    } else if (L->started && rc != 0 && rc != 130 && L->d.size > 1) {
        /* A failure after the start (this rank's message is already out):
         * the other ranks may be inside a collective; end them all. */
        end_capture(L, 1);
        fprintf(stderr, "%s: rank %d failed (status %d); ending all %d ranks\n", prog, L->d.rank, rc, L->d.size);
        dist_abort(&L->d, rc);
    }
    /* Ranks other than 0 stay quiet after the start unless they failed:
     * rank 0 prints the run's messages (stop notices included) once. */
    end_capture(L, rc != 0 && rc != 130);
    if (L->attached) train_dist_free(&L->td);
    dist_finalize(&L->d);
    return rc;
}
