/*
 * fuzz_args.c — libFuzzer harness for the command-line front ends of
 * `ropegpt train`, `sample`, `generate` (GPT and llama2.c paths) and `eval`
 * (args_parse plus each command's cross-flag checks). The first byte picks
 * the command; the rest, split on NUL bytes, is argv. The commands run in-process, so a parser that calls
 * exit() ends the fuzzer ("fuzz target exited") and a leak on an error path
 * is reported by LeakSanitizer.
 * So that a lucky input never starts real work, "--data <missing file>"
 * (train) or "--model <missing file>" (the others) is appended: every flag check
 * runs before the data or model is opened, and nothing is written before
 * that (cmd_train creates --out only after loading --data). Returns 1 when a
 * promise is broken: the status must be 0 (--help) or 2 (bad input).
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include "fuzz_util.c"

#include "model/cmd_eval.h"
#include "model/cmd_generate.h"
#include "model/cmd_train.h"

#define FZA_MAX_ARGS 64
#define FZA_MISSING "/nonexistent-ropegpt-fuzz/missing.bin"

int fuzz_args_one(const uint8_t *data, size_t size);
int fuzz_args_one(const uint8_t *data, size_t size) {
    if (size == 0) return 0;
    static const char *const names[4] = { "train", "sample", "generate", "eval" };
    int cmd = data[0] & 3;
    /* A NUL-terminated copy so every piece is a C string. */
    char *buf = malloc(size + 1);
    if (!buf) return 0;
    memcpy(buf, data + 1, size - 1);
    buf[size - 1] = 0;
    buf[size] = 0;
    char *argv[FZA_MAX_ARGS + 3];
    int argc = 0;
    size_t i = 0;
    while (i < size - 1 && argc < FZA_MAX_ARGS) {
        argv[argc++] = buf + i;
        i += strlen(buf + i) + 1;
    }
    char guard_flag_train[] = "--data", guard_flag_sample[] = "--model", guard_path[] = FZA_MISSING;
    argv[argc++] = cmd == 0 ? guard_flag_train : guard_flag_sample;
    argv[argc++] = guard_path;
    argv[argc] = NULL;
    int rc = cmd == 0 ? cmd_train(argc, argv)
             : cmd == 1 ? cmd_sample(argc, argv)
             : cmd == 2 ? cmd_generate(argc, argv)
                        : cmd_eval(argc, argv);
    free(buf);
    if (rc != 0 && rc != 2) {
        fprintf(stderr, "fuzz_args: %s returned %d (expected 0 for --help or 2 for bad input)\n", names[cmd], rc);
        return 1;
    }
    return 0;
}

#ifdef ROPEGPT_LIBFUZZER
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (fuzz_args_one(data, size)) abort();
    return 0;
}
#endif
