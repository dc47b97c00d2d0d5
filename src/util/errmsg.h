/*
 * errmsg.h — the one-line error reports of the loaders and parsers: a
 * function that fails writes its reason into the caller's buffer (which
 * may be NULL or zero-sized: then nothing is written) and returns a code.
 */
#ifndef ROPEGPT_UTIL_ERRMSG_H
#define ROPEGPT_UTIL_ERRMSG_H

#include <stddef.h>

/* Formats the reason into err[errlen] (truncated to fit) and returns code,
 * so a failing path reads `return errmsg(err, errlen, -1, "...", ...);`. */
int errmsg(char *err, size_t errlen, int code, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

#endif
