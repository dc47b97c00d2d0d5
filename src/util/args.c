/*
 * args.c — the table-driven flag parser (see args.h). Range text in the
 * error messages is written from the same min/max the check uses, so the
 * message always states the real rule.
 */
#define _POSIX_C_SOURCE 200809L
#include "util/args.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "util/errmsg.h"

/* "an integer in [1, 100]" / "a number > 0" style text for a range. */
static void range_text(char *out, size_t n, int integer, double lo, double hi, int lo_open, int hi_open) {
    const char *what = integer ? "an integer" : "a number";
    int has_lo = isfinite(lo), has_hi = isfinite(hi);
    if (has_lo && has_hi)
        snprintf(out, n, "%s in %c%.17g, %.17g%c", what, lo_open ? '(' : '[', lo, hi, hi_open ? ')' : ']');
    else if (has_lo)
        snprintf(out, n, "%s %s %.17g", what, lo_open ? ">" : ">=", lo);
    else if (has_hi)
        snprintf(out, n, "%s %s %.17g", what, hi_open ? "<" : "<=", hi);
    else
        snprintf(out, n, "%s", what);
}

int args_parse_long(const char *flag, const char *s, long lo, long hi, long *out, char *err, size_t errlen) {
    char rt[128];
    range_text(rt, sizeof rt, 1, (double)lo, (double)hi, 0, 0);
    if (!s || !*s) return errmsg(err, errlen, -1, "%s: expected %s, got an empty value", flag, rt);
    errno = 0;
    char *end = NULL;
    long v = strtol(s, &end, 10);
    if (end == s || *end != 0) return errmsg(err, errlen, -1, "%s: expected %s, got '%s'", flag, rt, s);
    if (errno == ERANGE || v < lo || v > hi)
        return errmsg(err, errlen, -1, "%s: expected %s, got '%s' (out of range)", flag, rt, s);
    *out = v;
    return 0;
}

int args_parse_double(const char *flag, const char *s, double lo, double hi, int lo_open, int hi_open,
                      double *out, char *err, size_t errlen) {
    char rt[128];
    range_text(rt, sizeof rt, 0, lo, hi, lo_open, hi_open);
    if (!s || !*s) return errmsg(err, errlen, -1, "%s: expected %s, got an empty value", flag, rt);
    errno = 0;
    char *end = NULL;
    double v = strtod(s, &end);
    if (end == s || *end != 0) return errmsg(err, errlen, -1, "%s: expected %s, got '%s'", flag, rt, s);
    if (!isfinite(v) || errno == ERANGE)
        return errmsg(err, errlen, -1, "%s: expected a finite number, got '%s'", flag, s);
    int bad = (isfinite(lo) && (lo_open ? !(v > lo) : !(v >= lo))) ||
              (isfinite(hi) && (hi_open ? !(v < hi) : !(v <= hi)));
    if (bad) return errmsg(err, errlen, -1, "%s: expected %s, got '%s' (out of range)", flag, rt, s);
    *out = v;
    return 0;
}

args_spec *args_find(args_spec *specs, int nspecs, const char *name) {
    for (int i = 0; i < nspecs; i++)
        if (strcmp(specs[i].name, name) == 0) return &specs[i];
    return NULL;
}

static double lim(double v, double inf_if_zero) { return v == 0 && inf_if_zero != 0 ? inf_if_zero : v; }

static int parse_value(args_spec *sp, const char *val, char *err, size_t errlen) {
    switch (sp->kind) {
    case ARG_INT: {
        long lo = isfinite(sp->min) ? (long)sp->min : INT_MIN, hi = isfinite(sp->max) ? (long)sp->max : INT_MAX;
        if (lo < INT_MIN) lo = INT_MIN;
        if (hi > INT_MAX) hi = INT_MAX;
        long v;
        if (args_parse_long(sp->name, val, lo, hi, &v, err, errlen)) return -1;
        *(int *)sp->dst = (int)v;
        return 0;
    }
    case ARG_I64: {
        /* long is 64-bit on the LP64 hosts we build for; strtoll keeps ILP32 honest. */
        double lo = isfinite(sp->min) ? sp->min : -9.2e18, hi = isfinite(sp->max) ? sp->max : 9.2e18;
        char rt[128];
        range_text(rt, sizeof rt, 1, lo, hi, 0, 0);
        if (!val || !*val) return errmsg(err, errlen, -1, "%s: expected %s, got an empty value", sp->name, rt);
        errno = 0;
        char *end = NULL;
        long long v = strtoll(val, &end, 10);
        if (end == val || *end != 0) return errmsg(err, errlen, -1, "%s: expected %s, got '%s'", sp->name, rt, val);
        if (errno == ERANGE || (double)v < lo || (double)v > hi)
            return errmsg(err, errlen, -1, "%s: expected %s, got '%s' (out of range)", sp->name, rt, val);
        *(int64_t *)sp->dst = (int64_t)v;
        return 0;
    }
    case ARG_U64: {
        double hi = lim(sp->max, INFINITY);
        char rt[128];
        range_text(rt, sizeof rt, 1, sp->min, hi, 0, 0);
        if (!val || !*val || val[0] == '-' || val[0] == '+')
            return errmsg(err, errlen, -1, "%s: expected %s, got '%s'", sp->name, rt, val ? val : "");
        errno = 0;
        char *end = NULL;
        unsigned long long v = strtoull(val, &end, 10);
        if (end == val || *end != 0) return errmsg(err, errlen, -1, "%s: expected %s, got '%s'", sp->name, rt, val);
        if (errno == ERANGE || (double)v < sp->min || (double)v > hi)
            return errmsg(err, errlen, -1, "%s: expected %s, got '%s' (out of range)", sp->name, rt, val);
        *(uint64_t *)sp->dst = (uint64_t)v;
        return 0;
    }
    case ARG_DOUBLE:
        return args_parse_double(sp->name, val, sp->min, sp->max, sp->min_open, sp->max_open,
                                 (double *)sp->dst, err, errlen);
    case ARG_STR:
        if (!val || !*val) return errmsg(err, errlen, -1, "%s: expected a non-empty value", sp->name);
        *(const char **)sp->dst = val;
        return 0;
    case ARG_CHOICE: {
        for (int i = 0; sp->choices && sp->choices[i]; i++) {
            if (strcmp(sp->choices[i], val) == 0) {
                *(int *)sp->dst = i;
                return 0;
            }
        }
        char list[256] = "";
        size_t used = 0;
        for (int i = 0; sp->choices && sp->choices[i]; i++) {
            int k = snprintf(list + used, sizeof list - used, "%s%s", i ? ", " : "", sp->choices[i]);
            if (k < 0 || (size_t)k >= sizeof list - used) break;
            used += (size_t)k;
        }
        return errmsg(err, errlen, -1, "%s: expected one of %s, got '%s'", sp->name, list, val);
    }
    case ARG_FLAG:
        *(int *)sp->dst = 1;
        return 0;
    }
    return errmsg(err, errlen, -1, "%s: internal error (unknown flag kind)", sp->name);
}

int args_parse(args_spec *specs, int nspecs, int argc, char **argv, char *err, size_t errlen) {
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) return 1;
        if (strncmp(a, "--", 2) != 0)
            return errmsg(err, errlen, -1, "unexpected argument '%s' (flags start with --; see --help)", a);
        /* --name=value or --name value */
        char name[128];
        const char *eq = strchr(a, '=');
        size_t nl = eq ? (size_t)(eq - a) : strlen(a);
        if (nl >= sizeof name) return errmsg(err, errlen, -1, "unknown flag '%.60s...' (see --help)", a);
        memcpy(name, a, nl);
        name[nl] = 0;
        args_spec *sp = args_find(specs, nspecs, name);
        if (!sp) return errmsg(err, errlen, -1, "unknown flag '%s' (see --help)", name);
        const char *val = NULL;
        if (sp->kind == ARG_FLAG) {
            if (eq) return errmsg(err, errlen, -1, "%s takes no value", name);
        } else if (eq) {
            val = eq + 1;
        } else {
            if (i + 1 >= argc) return errmsg(err, errlen, -1, "%s: missing value", name);
            val = argv[++i];
        }
        if (parse_value(sp, val, err, errlen)) return -1;
        sp->seen = 1;
    }
    return 0;
}

void args_print_help(FILE *f, const args_spec *specs, int nspecs) {
    for (int i = 0; i < nspecs; i++) {
        const args_spec *sp = &specs[i];
        char def[160] = "";
        const char *meta = "";
        switch (sp->kind) {
        case ARG_INT: meta = "N"; snprintf(def, sizeof def, "%d", *(const int *)sp->dst); break;
        case ARG_I64: meta = "N"; snprintf(def, sizeof def, "%" PRId64, *(const int64_t *)sp->dst); break;
        case ARG_U64: meta = "N"; snprintf(def, sizeof def, "%" PRIu64, *(const uint64_t *)sp->dst); break;
        case ARG_DOUBLE: meta = "X"; snprintf(def, sizeof def, "%g", *(const double *)sp->dst); break;
        case ARG_STR: {
            meta = "S";
            const char *s = *(const char *const *)sp->dst;
            snprintf(def, sizeof def, "%s", s ? s : "none");
            break;
        }
        case ARG_CHOICE: {
            meta = "NAME";
            int k = *(const int *)sp->dst;
            snprintf(def, sizeof def, "%s", (k >= 0 && sp->choices) ? sp->choices[k] : "none");
            break;
        }
        case ARG_FLAG: meta = ""; snprintf(def, sizeof def, "off"); break;
        }
        char left[64];
        snprintf(left, sizeof left, "%s%s%s", sp->name, *meta ? " " : "", meta);
        fprintf(f, "  %-22s %s", left, sp->help);
        if (sp->kind == ARG_CHOICE && sp->choices) {
            fputs(": ", f);
            for (int c = 0; sp->choices[c]; c++) fprintf(f, "%s%s", c ? "|" : "", sp->choices[c]);
        }
        fprintf(f, " (default: %s)\n", def);
    }
}

int args_report(const char *prog, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* One line: a message containing a newline (e.g. a path) is cut there. */
    char *nl = strchr(msg, '\n');
    if (nl) *nl = 0;
    fprintf(stderr, "%s: %s\n", prog, msg);
    return 2;
}
