/*
 * test.h — the one test harness. A test is `TEST(name) { ... }` in any
 * tests/test_*.c file; the Makefile collects every TEST(...) line into the
 * runner's table, so adding a test needs no registration by hand.
 * Checks record a failure (file:line, values, tolerance) and let the test go
 * on; a test passes when none of its checks failed.
 */
#ifndef ROPEGPT_TEST_H
#define ROPEGPT_TEST_H

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

#define TEST(name) void test_##name(void); void test_##name(void)

/* Failures recorded by the current test (reset by the runner per test). */
extern int test_failures;
void test_fail(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define CHECK(cond) do { if (!(cond)) \
    test_fail(__FILE__, __LINE__, "CHECK(%s) failed", #cond); } while (0)

/* |a - b| <= tol, and NaN never passes. */
#define CHECK_NEAR(a, b, tol) do { double a_ = (double)(a), b_ = (double)(b), t_ = (double)(tol); \
    if (!(fabs(a_ - b_) <= t_)) test_fail(__FILE__, __LINE__, \
        "CHECK_NEAR(%s, %s, %s): %.9g vs %.9g, |diff| %.3g > %.3g", #a, #b, #tol, a_, b_, fabs(a_ - b_), t_); \
    } while (0)

/* |a - b| <= rtol * max(|a|, |b|) + atol. */
#define CHECK_CLOSE(a, b, rtol, atol) do { double a_ = (double)(a), b_ = (double)(b); \
    double t_ = (double)(rtol) * fmax(fabs(a_), fabs(b_)) + (double)(atol); \
    if (!(fabs(a_ - b_) <= t_)) test_fail(__FILE__, __LINE__, \
        "CHECK_CLOSE(%s, %s): %.9g vs %.9g, |diff| %.3g > %.3g", #a, #b, a_, b_, fabs(a_ - b_), t_); \
    } while (0)

#define CHECK_EQ_INT(a, b) do { long long a_ = (long long)(a), b_ = (long long)(b); \
    if (a_ != b_) test_fail(__FILE__, __LINE__, "CHECK_EQ_INT(%s, %s): %lld vs %lld", #a, #b, a_, b_); \
    } while (0)

/* Path of the built ropegpt binary (for CLI tests), and a scratch folder
 * private to this run of the runner (created and removed by the runner). */
const char *test_bin_path(void);
const char *test_tmp_dir(void);

/* CLI tests. test_run_bin runs the built binary with args (NULL-terminated,
 * at most 64), stdout and stderr through files in the scratch folder, and
 * returns its exit status (128 + signal if killed, -1 if it did not run);
 * out / err (NULL to skip) get the output NUL-terminated and truncated to
 * their size, *out_n (may be NULL) stdout's byte count (output may hold NUL
 * bytes). test_spawn_bin starts it without waiting (stdout and stderr to the
 * given files) and test_wait_bin waits for it, with the same status rule.
 * test_slurp reads a file into buf (NUL-terminated), returning the length. */
int test_run_bin(const char *const *args, char *out, size_t outlen, size_t *out_n, char *err, size_t errlen);
pid_t test_spawn_bin(const char *const *args, const char *out_path, const char *err_path);
int test_wait_bin(pid_t pid);
size_t test_slurp(const char *path, char *buf, size_t n);

#endif
