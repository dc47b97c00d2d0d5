/*
 * cmd_train_dist.h — the command-line side of data-parallel `ropegpt train`
 * (issue 6): joining the MPI job, agreeing at start, and ending the job.
 * cmd_train.c calls three functions and otherwise stays a one-process
 * command:
 *   train_launch_begin   first thing: dist_init; on ranks other than 0,
 *                        stdout goes to /dev/null and stderr is captured
 *                        for the whole run: a setup error is printed once
 *                        (by rank 0, naming the rank), not N times, and a
 *                        rank's own output appears only if that rank fails.
 *   train_launch_attach  once the trainer is ready: sets up train_dist
 *                        (tr->dist) and makes every rank agree: each rank's
 *                        setup status and configuration hash are gathered;
 *                        a failure or a mismatch ends every rank with one
 *                        message from rank 0 and status 2.
 *   train_launch_end     last thing: a rank that failed before attaching
 *                        still takes part in the agreement (so nobody
 *                        waits forever); a failure during training on any
 *                        rank ends the whole job with MPI_Abort; then
 *                        MPI_Finalize.
 * With one process and no --zero nothing changes: tr->dist stays NULL.
 */
#ifndef ROPEGPT_CMD_TRAIN_DIST_H
#define ROPEGPT_CMD_TRAIN_DIST_H

#include <stdio.h>

#include "model/train.h"
#include "model/train_dist.h"
#include "util/dist.h"

typedef struct {
    dist d;
    train_dist td;
    int attached;     /* train_dist set up */
    int agreed;       /* the start agreement took place */
    int started;      /* ... and every rank was ready and alike (training began) */
    int saved_err;    /* rank != 0: dup of fd 2 while stderr is captured, else -1 */
    FILE *capture;    /* rank != 0: where stderr goes (a temp file) */
} train_launch;

/* Returns 0, or 2 after printing one line (MPI requested but not built in). */
int train_launch_begin(train_launch *L, const char *prog);

/* Sets up data-parallel training for tr (zero: 0 or 1) and runs the start
 * agreement. Rank 0 prints the data-parallel summary (and, with --zero 1,
 * the optimizer memory per rank) unless quiet. Returns 0 when every rank is
 * ready and configured alike; otherwise the exit status (rank 0 printed the
 * reason). */
int train_launch_attach(train_launch *L, trainer *tr, int zero, int quiet, const char *prog);

/* 1 on rank 0 (the rank that prints, logs and writes checkpoints). */
int train_launch_is_root(const train_launch *L);

/* Ends the job; rc is the command's status so far; returns the final one. */
int train_launch_end(train_launch *L, int rc, const char *prog);

#endif
