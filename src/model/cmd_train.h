/*
 * cmd_train.h — `ropegpt train` and `ropegpt sample`: the command-line front
 * ends of the training loop (train.h) and of generation from a checkpoint.
 */
#ifndef ROPEGPT_CMD_TRAIN_H
#define ROPEGPT_CMD_TRAIN_H

/* argv[0..argc) are the subcommand's arguments (not its name). Return the
 * process exit status: 0 done; 2 bad input (one line on stderr); 1 a failure
 * during the run (e.g. the loss diverged); train: 130 when interrupted by
 * SIGINT (after saving the checkpoint), 0 when stopped by --stop-after. "--help" prints every flag with its
 * default on stdout and returns 0. */
int cmd_train(int argc, char **argv);
int cmd_sample(int argc, char **argv);

#endif
