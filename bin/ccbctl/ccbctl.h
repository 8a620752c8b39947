#ifndef CCBCTL_H
#define CCBCTL_H

/* Exit codes shared by every sub-command. */
#define CCBCTL_EXIT_OK 0
#define CCBCTL_EXIT_FAIL 1    /* the operation failed (peer refused, bad input data) */
#define CCBCTL_EXIT_USAGE 2   /* bad command line */

int ccbctl_broker(int argc, char **argv);
int ccbctl_decode(int argc, char **argv);
int ccbctl_ping(int argc, char **argv);
int ccbctl_status(int argc, char **argv);
int ccbctl_token(int argc, char **argv);

#endif
