/*
 * cmd_viz.h — `ropegpt viz`: draws the teaching figures about RoPE
 * (rotation of a pair, the relative-distance score and its decay, per-pair
 * wavelengths under each context-extension scaling) as SVG files, computed
 * with librope itself.
 */
#ifndef ROPEGPT_CMD_VIZ_H
#define ROPEGPT_CMD_VIZ_H

/* argv[0..argc) are the subcommand's arguments (not its name). Returns the
 * process exit status: 0 ok, 2 bad flag (one line on stderr), 1 I/O error. */
int cmd_viz(int argc, char **argv);

#endif
