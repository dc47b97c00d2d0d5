/*
 * dist.c — MPI behind the small API of dist.h, and the single-process
 * stand-in when ROPEGPT_HAVE_MPI is not defined (mk/mpi.mk defines it and
 * adds mpicc's flags for this file only). Each function is written once with
 * a size-1 path that needs no MPI, so the stand-in and an MPI run of one
 * rank behave alike. MPI counts are int: larger buffers go in pieces of at
 * most DIST_CHUNK elements, in a fixed order, so the result is the same
 * whatever the size.
 */
#define _POSIX_C_SOURCE 200809L
#include "util/dist.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef ROPEGPT_HAVE_MPI
#include <mpi.h>
#endif

/* Largest element count handed to one MPI call (fits an int with room). */
#define DIST_CHUNK ((size_t)1 << 30)

int dist_compiled_with_mpi(void) {
#ifdef ROPEGPT_HAVE_MPI
    return 1;
#else
    return 0;
#endif
}

int dist_launched_by_mpirun(void) {
    const char *no = getenv("ROPEGPT_NO_MPI");
    if (no && strcmp(no, "1") == 0) return 0;
    return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMI_SIZE") || getenv("PMIX_RANK");
}

/* Integer value of an environment variable, -1 if unset or not a number. */
static long env_long(const char *name) {
    const char *s = getenv(name);
    if (!s || !*s) return -1;
    char *end = NULL;
    long v = strtol(s, &end, 10);
    return (end && *end == 0) ? v : -1;
}

int dist_launcher_rank(void) {
    const char *vars[] = { "OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK" };
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        long r = env_long(vars[i]);
        if (r >= 0) return (int)r;
    }
    return 0;
}

int dist_init(dist *d, char *err, size_t errlen) {
    d->rank = 0;
    d->size = 1;
    d->mpi = 0;
    if (!dist_launched_by_mpirun()) return 0;
#ifdef ROPEGPT_HAVE_MPI
    int inited = 0;
    MPI_Initialized(&inited);
    if (!inited) {
        int provided = 0;
        /* FUNNELED: only the main thread calls MPI; OpenMP threads compute. */
        if (MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) {
            if (err && errlen) snprintf(err, errlen, "MPI_Init_thread failed");
            return -1;
        }
        d->mpi = 1;
    }
    MPI_Comm_rank(MPI_COMM_WORLD, &d->rank);
    MPI_Comm_size(MPI_COMM_WORLD, &d->size);
    return 0;
#else
    long n = env_long("OMPI_COMM_WORLD_SIZE");
    if (n < 0) n = env_long("PMI_SIZE");
    if (n > 1) {
        if (err && errlen)
            snprintf(err, errlen, "started by mpirun with %ld processes, but this ropegpt was built without MPI "
                                  "(NO_MPI=1 or no mpicc found); rebuild with OpenMPI installed", n);
        return -1;
    }
    return 0;
#endif
}

void dist_finalize(dist *d) {
#ifdef ROPEGPT_HAVE_MPI
    if (d && d->mpi) {
        int fin = 0;
        MPI_Finalized(&fin);
        if (!fin) MPI_Finalize();
        d->mpi = 0;
    }
#else
    (void)d;
#endif
}

void dist_abort(const dist *d, int code) {
#ifdef ROPEGPT_HAVE_MPI
    if (d && d->size > 1) {
        fflush(stdout);
        fflush(stderr);
        MPI_Abort(MPI_COMM_WORLD, code);
    }
#else
    (void)d;
    (void)code;
#endif
}

int dist_barrier(const dist *d) {
#ifdef ROPEGPT_HAVE_MPI
    if (d->size > 1) MPI_Barrier(MPI_COMM_WORLD);
#else
    (void)d;
#endif
    return 0;
}

#ifdef ROPEGPT_HAVE_MPI
static int allreduce(void *buf, size_t n, size_t elem, MPI_Datatype type, MPI_Op op) {
    char *p = buf;
    for (size_t off = 0; off < n; off += DIST_CHUNK) {
        size_t k = n - off < DIST_CHUNK ? n - off : DIST_CHUNK;
        MPI_Allreduce(MPI_IN_PLACE, p + off * elem, (int)k, type, op, MPI_COMM_WORLD);
    }
    return 0;
}
#endif

int dist_allreduce_sum_f32(const dist *d, float *buf, size_t n) {
    if (d->size == 1) return 0;
#ifdef ROPEGPT_HAVE_MPI
    return allreduce(buf, n, sizeof(float), MPI_FLOAT, MPI_SUM);
#else
    (void)buf;
    (void)n;
    return -1;
#endif
}

int dist_allreduce_sum_f64(const dist *d, double *buf, size_t n) {
    if (d->size == 1) return 0;
#ifdef ROPEGPT_HAVE_MPI
    return allreduce(buf, n, sizeof(double), MPI_DOUBLE, MPI_SUM);
#else
    (void)buf;
    (void)n;
    return -1;
#endif
}

int dist_allreduce_max_i32(const dist *d, int32_t *buf, size_t n) {
    if (d->size == 1) return 0;
#ifdef ROPEGPT_HAVE_MPI
    return allreduce(buf, n, sizeof(int32_t), MPI_INT32_T, MPI_MAX);
#else
    (void)buf;
    (void)n;
    return -1;
#endif
}

int dist_allgather_bytes(const dist *d, const void *send, size_t bytes, void *recv) {
    if (bytes > (size_t)INT_MAX) return -1;
    if (d->size == 1) {
        if (recv != send) memmove(recv, send, bytes);
        return 0;
    }
#ifdef ROPEGPT_HAVE_MPI
    MPI_Allgather(send, (int)bytes, MPI_BYTE, recv, (int)bytes, MPI_BYTE, MPI_COMM_WORLD);
    return 0;
#else
    return -1;
#endif
}

int dist_bcast_bytes(const dist *d, void *buf, size_t bytes, int root) {
    if (root < 0 || root >= d->size) return -1;
    if (d->size == 1) return 0;
#ifdef ROPEGPT_HAVE_MPI
    char *p = buf;
    for (size_t off = 0; off < bytes; off += DIST_CHUNK) {
        size_t k = bytes - off < DIST_CHUNK ? bytes - off : DIST_CHUNK;
        MPI_Bcast(p + off, (int)k, MPI_BYTE, root, MPI_COMM_WORLD);
    }
    return 0;
#else
    (void)buf;
    (void)bytes;
    return -1;
#endif
}

#ifdef ROPEGPT_HAVE_MPI
/* counts/displs as MPI ints; -1 if one does not fit. Caller frees. */
static int to_int_arrays(int size, const size_t *counts, const size_t *displs, int **ic, int **id) {
    *ic = malloc((size_t)size * sizeof **ic);
    *id = malloc((size_t)size * sizeof **id);
    if (!*ic || !*id) {
        free(*ic);
        free(*id);
        return -1;
    }
    size_t acc = 0;
    for (int r = 0; r < size; r++) {
        size_t dsp = displs ? displs[r] : acc;
        if (counts[r] > (size_t)INT_MAX || dsp > (size_t)INT_MAX) {
            free(*ic);
            free(*id);
            return -1;
        }
        (*ic)[r] = (int)counts[r];
        (*id)[r] = (int)dsp;
        acc += counts[r];
    }
    return 0;
}
#endif

#ifdef ROPEGPT_HAVE_MPI
/* counts as MPI ints whose sum (the elements sent) fits an int too; NULL if
 * not, or out of memory. Caller frees. */
static int *send_counts(int size, const size_t *counts) {
    size_t total = 0;
    for (int r = 0; r < size; r++) total += counts[r];
    if (total > (size_t)INT_MAX) return NULL;
    int *ic, *id;
    if (to_int_arrays(size, counts, NULL, &ic, &id)) return NULL;
    free(id);
    return ic;
}
#endif

int dist_reduce_scatter_sum_f32(const dist *d, const float *send, float *recv, const size_t *counts) {
    if (d->size == 1) {
        if (recv != send) memmove(recv, send, counts[0] * sizeof(float));
        return 0;
    }
#ifdef ROPEGPT_HAVE_MPI
    int *ic = send_counts(d->size, counts);
    if (!ic) return -1;
    MPI_Reduce_scatter(send, recv, ic, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    free(ic);
    return 0;
#else
    return -1;
#endif
}

int dist_allgatherv_f32(const dist *d, float *buf, const size_t *counts, const size_t *displs) {
    if (d->size == 1) return 0;
#ifdef ROPEGPT_HAVE_MPI
    int *ic, *id;
    if (to_int_arrays(d->size, counts, displs, &ic, &id)) return -1;
    MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, buf, ic, id, MPI_FLOAT, MPI_COMM_WORLD);
    free(ic);
    free(id);
    return 0;
#else
    (void)buf;
    (void)counts;
    (void)displs;
    return -1;
#endif
}

int dist_gatherv_f32(const dist *d, const float *send, float *recv, const size_t *counts,
                     const size_t *displs, int root) {
    if (root < 0 || root >= d->size) return -1;
    if (d->size == 1) {
        if (recv + displs[0] != send) memmove(recv + displs[0], send, counts[0] * sizeof(float));
        return 0;
    }
#ifdef ROPEGPT_HAVE_MPI
    int *ic, *id;
    if (to_int_arrays(d->size, counts, displs, &ic, &id)) return -1;
    MPI_Gatherv(send, ic[d->rank], MPI_FLOAT, recv, ic, id, MPI_FLOAT, root, MPI_COMM_WORLD);
    free(ic);
    free(id);
    return 0;
#else
    (void)send;
    return -1;
#endif
}

/* ---------------------------------------------------------------- non-blocking */

#ifdef ROPEGPT_HAVE_MPI
/* The slot for one more request in q (q->n is bumped by the caller once
 * MPI has filled it); NULL if out of memory. */
static MPI_Request *next_req(dist_reqs *q) {
    if (q->n == q->cap) {
        int cap = q->cap ? 2 * q->cap : 64;
        MPI_Request *r = realloc(q->reqs, (size_t)cap * sizeof *r);
        if (!r) return NULL;
        q->reqs = r;
        q->cap = cap;
    }
    return (MPI_Request *)q->reqs + q->n;
}

/* Holds p (malloc'd) until dist_reqs_wait: the standard lets a non-blocking
 * collective read its count arrays until it completes. */
static int keep_until_wait(dist_reqs *q, void *p) {
    if (q->nkeep == q->keepcap) {
        int cap = q->keepcap ? 2 * q->keepcap : 64;
        void **k = realloc(q->keep, (size_t)cap * sizeof *k);
        if (!k) return -1;
        q->keep = k;
        q->keepcap = cap;
    }
    q->keep[q->nkeep++] = p;
    return 0;
}
#endif

static void free_kept(dist_reqs *q) {
    for (int i = 0; i < q->nkeep; i++) free(q->keep[i]);
    q->nkeep = 0;
}

int dist_iallreduce_sum_f32(const dist *d, float *buf, size_t n, dist_reqs *q) {
    if (d->size == 1) return 0;
#ifdef ROPEGPT_HAVE_MPI
    for (size_t off = 0; off < n; off += DIST_CHUNK) {
        size_t k = n - off < DIST_CHUNK ? n - off : DIST_CHUNK;
        MPI_Request *r = next_req(q);
        if (!r) return -1;
        MPI_Iallreduce(MPI_IN_PLACE, buf + off, (int)k, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD, r);
        q->n++;
    }
    return 0;
#else
    (void)buf;
    (void)n;
    (void)q;
    return -1;
#endif
}

int dist_ireduce_scatter_sum_f32(const dist *d, const float *send, float *recv, const size_t *counts,
                                 dist_reqs *q) {
    if (d->size == 1) return dist_reduce_scatter_sum_f32(d, send, recv, counts);
#ifdef ROPEGPT_HAVE_MPI
    int *ic = send_counts(d->size, counts);
    MPI_Request *r = ic ? next_req(q) : NULL;
    if (!r || keep_until_wait(q, ic)) {
        free(ic);
        return -1;
    }
    MPI_Ireduce_scatter(send, recv, ic, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD, r);
    q->n++;
    return 0;
#else
    (void)send;
    (void)recv;
    (void)q;
    return -1;
#endif
}

int dist_reqs_test(dist_reqs *q) {
    if (q->n == 0) return 1;
#ifdef ROPEGPT_HAVE_MPI
    int flag = 0;
    MPI_Testall(q->n, (MPI_Request *)q->reqs, &flag, MPI_STATUSES_IGNORE);
    return flag ? 1 : 0;
#else
    return -1;
#endif
}

int dist_reqs_wait(dist_reqs *q) {
    if (q->n == 0) return 0;
#ifdef ROPEGPT_HAVE_MPI
    MPI_Waitall(q->n, (MPI_Request *)q->reqs, MPI_STATUSES_IGNORE);
    q->n = 0;
    free_kept(q);
    return 0;
#else
    return -1;
#endif
}

void dist_reqs_free(dist_reqs *q) {
    if (!q) return;
    free_kept(q);
    free(q->keep);
    free(q->reqs);
    memset(q, 0, sizeof *q);
}

/* ---------------------------------------------------------------- agreement */

uint64_t dist_hash(uint64_t h, const void *data, size_t n) {
    /* FNV-1a (Fowler, Noll, Vo): prime 0x100000001b3. */
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= UINT64_C(0x100000001b3);
    }
    return h;
}

/* One rank's record, fixed size so it can be all-gathered as bytes. */
typedef struct {
    int32_t status;
    uint64_t hash;
    char msg[DIST_MSG_LEN];
} agree_rec;

int dist_agree(const dist *d, int status, uint64_t hash, const char *msg, dist_agreement *out) {
    memset(out, 0, sizeof *out);
    out->bad_rank = -1;
    agree_rec mine;
    memset(&mine, 0, sizeof mine);
    mine.status = status;
    mine.hash = hash;
    if (msg) snprintf(mine.msg, sizeof mine.msg, "%s", msg);
    agree_rec *all = malloc((size_t)d->size * sizeof *all);
    if (!all) return -1;
    if (dist_allgather_bytes(d, &mine, sizeof mine, all)) {
        free(all);
        return -1;
    }
    out->hash0 = all[0].hash;
    for (int r = 0; r < d->size && out->bad_rank < 0; r++) {
        if (all[r].status != 0) {
            out->bad_rank = r;
            out->bad_status = all[r].status;
            out->hash_bad = all[r].hash;
            snprintf(out->msg, sizeof out->msg, "%s", all[r].msg);
        }
    }
    if (out->bad_rank < 0) {
        for (int r = 1; r < d->size && out->bad_rank < 0; r++) {
            if (all[r].hash != all[0].hash) {
                out->bad_rank = r;
                out->hash_mismatch = 1;
                out->hash_bad = all[r].hash;
            }
        }
    }
    out->ok = out->bad_rank < 0;
    free(all);
    return 0;
}
