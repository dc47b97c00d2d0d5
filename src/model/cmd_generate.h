/*
 * cmd_generate.h — `ropegpt generate`: streams text from a checkpoint with a
 * KV cache (src/model/generate.h), optionally past the training context with
 * a RoPE scaling. See docs/generate.md.
 */
#ifndef ROPEGPT_CMD_GENERATE_H
#define ROPEGPT_CMD_GENERATE_H

/* argv[0..argc) are the subcommand's arguments (not its name). Returns the
 * exit status: 0 ok, 2 bad input (one line on stderr), 1 a failure mid-run. */
int cmd_generate(int argc, char **argv);

#endif
