/*
 * cmd_export.h — `ropegpt export`: writes a Llama-architecture model as a
 * llama2.c legacy model file (+ tokenizer.bin). See docs/llama2c.md.
 */
#ifndef ROPEGPT_CMD_EXPORT_H
#define ROPEGPT_CMD_EXPORT_H

/* argv[0..argc) are the subcommand's arguments. Exit status: 0 ok, 2 bad
 * input (one line on stderr), 1 a failure while writing. */
int cmd_export(int argc, char **argv);

#endif
