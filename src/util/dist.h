/*
 * dist.h — the process group of a data-parallel run, over MPI when ropegpt is
 * built with it (mk/mpi.mk finds mpicc) and started by mpirun, otherwise a
 * single-process stand-in (rank 0 of 1) with the same API, so the trainer
 * never needs an #ifdef: every collective below works for size 1 (it copies
 * or does nothing). This file and dist.c are the only places that know about
 * MPI. The group travels as an explicit `dist` value (no global state in our
 * code; MPI itself keeps one per process).
 *
 * Errors: MPI_COMM_WORLD keeps MPI's default handler, MPI_ERRORS_ARE_FATAL,
 * so a failed collective or a rank that died ends the whole job (mpirun
 * kills every rank and exits non-zero). Functions therefore return 0, or -1
 * only for a bad argument (e.g. a count that does not fit an MPI int).
 * Determinism: for a fixed number of ranks and message sizes OpenMPI picks
 * the same reduction algorithm every run, so sums come out with the same
 * bits run after run; they differ from a 1-rank run only by summation order.
 * Thread safety: call from one thread at a time (MPI_THREAD_FUNNELED; the
 * OpenMP regions inside the layers never touch MPI).
 */
#ifndef ROPEGPT_UTIL_DIST_H
#define ROPEGPT_UTIL_DIST_H

#include <stddef.h>
#include <stdint.h>

typedef struct dist {
    int rank;   /* 0..size-1 */
    int size;   /* processes in the job; 1 for the stand-in */
    int mpi;    /* 1: dist_init called MPI_Init (dist_finalize must run) */
} dist;

/* 1 if this build has MPI compiled in (ROPEGPT_HAVE_MPI), else 0. */
int dist_compiled_with_mpi(void);

/* 1 if the environment says this process was started by an MPI launcher
 * (OMPI_COMM_WORLD_SIZE, PMI_SIZE or PMIX_RANK set), else 0. Env
 * ROPEGPT_NO_MPI=1 forces 0. */
int dist_launched_by_mpirun(void);

/* This process's rank as the launcher's environment states it
 * (OMPI_COMM_WORLD_RANK, PMI_RANK or PMIX_RANK), 0 if none: lets a process
 * that cannot join the job (no MPI built in) report once, from rank 0. */
int dist_launcher_rank(void);

/* Joins the job. Not started by a launcher: the stand-in, rank 0 of 1, and
 * MPI is never initialized (a plain `ropegpt train` pays nothing). Started
 * by mpirun with MPI compiled in: MPI_Init_thread and rank/size of
 * MPI_COMM_WORLD. Started by mpirun with more than one process but built
 * without MPI: -1 with a one-line reason in err (each process would
 * otherwise train alone and overwrite the others' files). */
int dist_init(dist *d, char *err, size_t errlen);

/* MPI_Finalize if dist_init started MPI; safe on a stand-in or twice. */
void dist_finalize(dist *d);

/* Ends every rank of the job now with exit status code (MPI_Abort); the
 * stand-in returns (the caller then returns code itself). */
void dist_abort(const dist *d, int code);

int dist_barrier(const dist *d);

/* In-place sums over the ranks: every rank gets the same result. */
int dist_allreduce_sum_f32(const dist *d, float *buf, size_t n);
int dist_allreduce_sum_f64(const dist *d, double *buf, size_t n);
/* In-place maximum over the ranks (agreeing on a flag). */
int dist_allreduce_max_i32(const dist *d, int32_t *buf, size_t n);

/* recv (size * bytes) = every rank's send (bytes), in rank order. */
int dist_allgather_bytes(const dist *d, const void *send, size_t bytes, void *recv);

/* buf (bytes) of rank root is copied to every rank. */
int dist_bcast_bytes(const dist *d, void *buf, size_t bytes, int root);

/* Reduce-scatter by sum: send (sum of counts) floats on every rank; rank r
 * receives in recv (counts[r]) the sum over ranks of send[displ_r ..
 * displ_r + counts[r]), displ_r = counts[0] + ... + counts[r-1]. */
int dist_reduce_scatter_sum_f32(const dist *d, const float *send, float *recv, const size_t *counts);

/* In-place all-gather: rank r's part buf[displs[r] .. + counts[r]) is copied
 * to every rank. */
int dist_allgatherv_f32(const dist *d, float *buf, const size_t *counts, const size_t *displs);

/* Gathers rank r's send (counts[r]) into recv at displs[r] on rank root
 * (recv used only there, may be NULL elsewhere). */
int dist_gatherv_f32(const dist *d, const float *send, float *recv, const size_t *counts,
                     const size_t *displs, int root);

/* Non-blocking collectives, for overlapping gradient communication with
 * the backward pass: start any number, then dist_reqs_wait.
 * dist_reqs_test lets MPI progress them (OpenMPI moves a non-blocking
 * collective forward only inside MPI calls). The buffers must not be
 * touched until the wait returns. */
typedef struct dist_reqs {
    void *reqs;   /* MPI_Request array (owned; NULL for the stand-in) */
    int n, cap;
    void **keep;  /* count arrays MPI may read until the wait (owned) */
    int nkeep, keepcap;
} dist_reqs;

/* In-place sums (MPI_Iallreduce). */
int dist_iallreduce_sum_f32(const dist *d, float *buf, size_t n, dist_reqs *q);
/* dist_reduce_scatter_sum_f32 started (MPI_Ireduce_scatter): send and recv
 * must stay untouched until the wait. The stand-in copies at once. -1 if
 * the sum of counts does not fit an MPI int. */
int dist_ireduce_scatter_sum_f32(const dist *d, const float *send, float *recv, const size_t *counts,
                                 dist_reqs *q);
int dist_reqs_test(dist_reqs *q);   /* 1 if all done, 0 if not, -1 error */
int dist_reqs_wait(dist_reqs *q);   /* waits for all and empties q */
void dist_reqs_free(dist_reqs *q);

/* ---- agreeing at start ----
 * Every rank brings its local setup status (0 = ok), a hash of everything
 * that must be identical across ranks (config, data, step...), and a short
 * message if it failed; every rank gets the same verdict. */
#define DIST_MSG_LEN 400

typedef struct {
    int ok;                    /* 1: every rank ok and every hash equal */
    int bad_rank;              /* first rank that failed (or whose hash differs from rank 0's), else -1 */
    int bad_status;            /* that rank's status (0 if only its hash differs) */
    int hash_mismatch;         /* 1: every rank set up fine but hashes differ */
    uint64_t hash0, hash_bad;  /* rank 0's hash and the bad rank's */
    char msg[DIST_MSG_LEN];    /* the bad rank's message (empty if none) */
} dist_agreement;

int dist_agree(const dist *d, int status, uint64_t hash, const char *msg, dist_agreement *out);

/* FNV-1a 64-bit over n bytes, continuing from h (start with DIST_HASH_INIT). */
#define DIST_HASH_INIT UINT64_C(0xcbf29ce484222325)
uint64_t dist_hash(uint64_t h, const void *data, size_t n);

#endif
