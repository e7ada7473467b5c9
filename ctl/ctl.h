/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * ctl.h - what the parts of reflinkctl share: exit codes, messages, the
 * extent walk over RFS_IOC_GET_EXTENTS, and the commands themselves.
 */
#ifndef RFS_CTL_H
#define RFS_CTL_H

#include <stdint.h>
#include <sys/stat.h>

#include "rfs_ioctl.h"

#define EXIT_FAIL    1	/* the command failed; the message says why */
#define EXIT_DIFFERS 2	/* dedupe: the contents differ (not an error) */
#define EXIT_USAGE   16 /* bad option or arguments, as mkfs and fsck */

extern const char *prog;

/* The --help text, on stdout. */
void print_help(void);
/* "reflinkctl: MESSAGE" on stderr; returns EXIT_FAIL. */
int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The message, a pointer to --help, and EXIT_USAGE. */
int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* After getopt's own message: the pointer to --help, and EXIT_USAGE. */
int usage_hint(void);
/* Parses a byte count or offset ("4096", "1M"); 0, or EXIT_USAGE after a message. */
int parse_bytes(const char *what, const char *arg, uint64_t *out);

/* Opens PATH (a regular file) with FLAGS and fstat's it: the fd, or -1
 * after a message. */
int open_regular(const char *path, int flags, struct stat *st);
/* fdatasync: the kernel may hold dirty pages the daemon has not seen, and
 * the extent list and dedupe see only what the daemon has. -1 after a message. */
int flush_to_daemon(int fd, const char *path);

/* Walks a file's extents from an offset on, one GET_EXTENTS call per
 * RFS_IOC_EXTENTS_MAX extents. */
struct ext_walk {
	int fd;
	uint32_t i;   /* next in x.ext */
	uint64_t pos; /* everything before is reported */
	struct rfs_ioc_extents x;
};

/* First call: 0, or -errno (-ENOTTY: not a reflinkfs mount). */
int ext_walk_start(struct ext_walk *w, int fd, uint64_t from);
/* 1 and the next extent (never starting before the last one ended), 0 at
 * the end, or -errno. */
int ext_walk_next(struct ext_walk *w, struct rfs_ioc_extent *e);
/* The filesystem's block size, by one GET_EXTENTS on FD: 0, or -errno. */
int fd_block_size(int fd, uint32_t *bs);
/* Is ERR what a file outside reflinkfs answers to our ioctls? */
int not_reflinkfs(int err);
/* Bytes of [FROM, TO) of FD mapped to blocks no one else shares. */
int unshared_bytes(int fd, uint64_t from, uint64_t to, uint64_t *bytes);

int cmd_clone(int argc, char **argv);
int cmd_dedupe(int argc, char **argv);
int cmd_extents(int argc, char **argv);
int cmd_usage(int argc, char **argv);

#endif
