/*
 * ropegpt.c — the ropegpt command: dispatches `ropegpt <subcommand> [flags]`
 * to the subcommand implementations in src/model/cmd_*.c. Adding a
 * subcommand is one line in the table below. Exit status: 0 ok, 2 bad input
 * (one line on stderr), 1 a failure during the run, 130 train interrupted.
 */
#include <stdio.h>
#include <string.h>

#include "model/cmd_compare.h"
#include "model/cmd_eval.h"
#include "model/cmd_export.h"
#include "model/cmd_generate.h"
#include "model/cmd_train.h"
#include "model/cmd_viz.h"
#include "rope.h"

typedef struct {
    const char *name;
    int (*run)(int argc, char **argv);   /* argv = the subcommand's flags */
    const char *summary;
} subcommand;

static const subcommand commands[] = {
    { "train", cmd_train, "train a GPT with a chosen position encoding; log.csv + model.bin" },
    { "sample", cmd_sample, "generate text from a checkpoint" },
    { "generate", cmd_generate, "stream text from a checkpoint with a KV cache (prefill + decode tok/s; RoPE scaling)" },
    { "compare", cmd_compare, "train every position encoding on the same weights and batches; tables + SVG" },
    { "eval", cmd_eval, "validation loss/perplexity of a checkpoint at a context length (+ RoPE scaling)" },
    { "export", cmd_export, "write a Llama model as a llama2.c file (+ tokenizer.bin)" },
    { "viz", cmd_viz, "draw the RoPE teaching figures (SVG)" },
};
#define N_COMMANDS (sizeof commands / sizeof commands[0])

static void usage(FILE *f) {
    fprintf(f, "usage: ropegpt <command> [flags]   (librope %s)\ncommands:\n", rope_version());
    for (size_t i = 0; i < N_COMMANDS; i++) fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "`ropegpt <command> --help` lists that command's flags with their defaults.\n");
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
        /* Every command's flags and defaults, each printed by the command itself. */
        usage(stdout);
        char help_flag[] = "--help";
        char *help_argv[] = { help_flag, NULL };
        for (size_t i = 0; i < N_COMMANDS; i++) {
            printf("\n== ropegpt %s ==\n", commands[i].name);
            fflush(stdout);
            commands[i].run(1, help_argv);
            fflush(stdout);
        }
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("ropegpt (librope %s)\n", rope_version());
        return 0;
    }
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (strcmp(argv[1], commands[i].name) == 0) return commands[i].run(argc - 2, argv + 2);
    fprintf(stderr, "ropegpt: unknown command '%s' (see ropegpt --help)\n", argv[1]);
    return 2;
}
