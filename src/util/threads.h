/*
 * threads.h — OpenMP's thread count and index that also compile without
 * OpenMP (the NO_OMP build: one thread, index 0).
 */
#ifndef ROPEGPT_UTIL_THREADS_H
#define ROPEGPT_UTIL_THREADS_H

#ifdef _OPENMP
#include <omp.h>
#endif

/* Threads the next parallel region would get. */
static inline int threads_max(void) {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

/* This thread's index in the current parallel region (0 outside one). */
static inline int thread_index(void) {
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

#endif
