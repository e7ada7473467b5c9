/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * cli.h - helpers shared by the command-line front ends.
 */
#ifndef RFS_CLI_H
#define RFS_CLI_H

#include <stddef.h>
#include <stdint.h>

struct rfs_dev;

/* Parses "4096", "4k", "512M", "1G", "1T", "2TiB", "10MB" (binary units).
 * -EINVAL for anything else or an overflow. */
int cli_parse_size(const char *s, uint64_t *out);
/* "1.0 TiB"-style rendering of BYTES into BUF. */
const char *cli_human_size(uint64_t bytes, char *buf, size_t len);
/* "PROG (reflinkfs) VERSION" on stdout: every program's --version. The
 * version is the project's, from CMakeLists.txt. */
void cli_print_version(const char *prog);

/* Is IMAGE mounted: a fuse.reflinkfs mount (in /proc/self/mountinfo)
 * whose source is IMAGE's real path? 1 yes, 0 no. */
int cli_image_mounted(const char *image);

/* How long mkfs, fsck and the daemon wait for a daemon that is still
 * writing after umount. */
#define CLI_WAIT_SECONDS 30

/* dev_open_file(IMAGE, FLAGS, SIZE) for mkfs, fsck and the daemon. An
 * image in use is refused (-EBUSY) at once, unless it is no longer mounted
 * and a reflinkfs daemon holds it: that one is finishing its writes after
 * umount, so wait up to WAIT_SECONDS for it to let go (saying so on
 * stderr, as PROG, after a second). Then `umount MNT && fsck IMAGE` works. */
int cli_open_image(const char *prog, const char *image, unsigned flags, uint64_t size,
		   unsigned wait_seconds, struct rfs_dev **dev);

#endif
