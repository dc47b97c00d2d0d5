/*
 * cmd_generate_llama.h — `ropegpt generate --model model.bin --tokenizer
 * tokenizer.bin ...`: text generation from a llama2.c legacy model file
 * (memory-mapped read-only, never copied) with its tokenizer.bin.
 * cmd_generate() hands its arguments here when --tokenizer is among them.
 */
#ifndef ROPEGPT_CMD_GENERATE_LLAMA_H
#define ROPEGPT_CMD_GENERATE_LLAMA_H

/* 1 if argv[0..argc) holds --tokenizer (as "--tokenizer X" or "--tokenizer=X"). */
int llama2c_wants_generate(int argc, char **argv);

/* argv[0..argc) are the subcommand's arguments (not its name). Returns the
 * exit status: 0 ok, 2 bad input (one line on stderr), 1 a failure mid-run. */
int llama2c_generate_cmd(int argc, char **argv);

#endif
