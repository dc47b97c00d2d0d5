/*
 * args.h — table-driven command-line flags for the ropegpt subcommands.
 * A subcommand lists its flags in an args_spec array whose destinations
 * already hold the defaults; args_parse() fills them from argv and
 * args_print_help() prints every flag with its current (= default) value, so
 * the help text can never disagree with the real defaults. Numbers are parsed
 * with strtol/strtod, the end pointer checked, NaN/Inf refused and ranges
 * enforced; a bad value is never clamped. Errors come back as one line naming
 * the flag and what was expected; nothing here prints unless asked, or exits.
 */
#ifndef ROPEGPT_UTIL_ARGS_H
#define ROPEGPT_UTIL_ARGS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef enum {
    ARG_INT,     /* dst int*,        range [min, max] */
    ARG_I64,     /* dst int64_t*,    range [min, max] */
    ARG_U64,     /* dst uint64_t*,   range [min, max] (max 0 = no upper bound) */
    ARG_DOUBLE,  /* dst double*,     range min..max, ends open per the flags below */
    ARG_STR,     /* dst const char** (points into argv; must be non-empty) */
    ARG_CHOICE,  /* dst int*: index into choices (NULL-terminated list) */
    ARG_FLAG     /* dst int*: set to 1, takes no value */
} args_kind;

typedef struct {
    const char *name;            /* "--lr" */
    args_kind kind;
    void *dst;
    const char *help;            /* one short phrase */
    double min, max;             /* numeric range; see min_open/max_open */
    int min_open, max_open;      /* 1: that end is exclusive (e.g. lr > 0) */
    const char *const *choices;  /* ARG_CHOICE only */
    int seen;                    /* set to 1 by args_parse when given */
} args_spec;

/* Parses argv[0..argc) (the subcommand's arguments, not including its name).
 * Accepts "--name value" and "--name=value". Returns 0, or -1 with one line in
 * err: unknown flag, missing value, bad number, out of range, unknown choice,
 * empty string, positional argument. "--help"/"-h" return 1 (caller prints
 * help and exits 0). A flag given twice: the last one wins. */
int args_parse(args_spec *specs, int nspecs, int argc, char **argv, char *err, size_t errlen);

/* Prints "  --name VALUE   help (default: X)" for each flag to f. */
void args_print_help(FILE *f, const args_spec *specs, int nspecs);

/* The spec named name, or NULL. */
args_spec *args_find(args_spec *specs, int nspecs, const char *name);

/* Prints "<prog>: <message>" as one line on stderr and returns 2 (the tools'
 * exit status for bad input), so a tool writes `return args_report(...)`. */
int args_report(const char *prog, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Single-value parsers used by args_parse, usable on their own. Each returns
 * 0 or -1 with "FLAG: expected ..., got 'S'" in err. */
int args_parse_long(const char *flag, const char *s, long lo, long hi, long *out, char *err, size_t errlen);
int args_parse_double(const char *flag, const char *s, double lo, double hi, int lo_open, int hi_open,
                      double *out, char *err, size_t errlen);

#endif
