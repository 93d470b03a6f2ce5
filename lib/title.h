/*
 * A process's title, as ps(1) shows it (COMMAND, /proc/PID/cmdline), set
 * by writing over the memory of its own arguments: no system call, so a
 * sandboxed connection process can say which client it holds.  The room is
 * what exec gave the arguments: role_exec() pads them (ROLE_TITLE_PAD).
 */
#ifndef TITLE_H
#define TITLE_H

/*
 * title_init(argc, argv):
 * Remember where argv's strings lie, one after the other, as exec laid
 * them out.  Call once, first thing in main().
 */
void	title_init(int argc, char *argv[]);

/*
 * title_set(fmt, ...):
 * Make the title the formatted string, cut to the room there is; the rest
 * of the room is cleared.  A no-op before title_init().
 */
void	title_set(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
