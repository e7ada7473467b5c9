/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * reflinkctl - clone, deduplicate, and show sharing on a reflinkfs mount.
 *
 * Linux handles FICLONE, FICLONERANGE, FIDEDUPERANGE and FIEMAP in the
 * VFS and never passes them to a FUSE server, so the usual tools (cp
 * --reflink=always, xfs_io, filefrag, duperemove, btrfs fi du) cannot
 * work on our mount. This tool speaks what does reach the daemon:
 * copy_file_range (which the daemon answers by sharing blocks) and the
 * mount's own ioctls (lib/rfs_ioctl.h).
 *
 * This file: the command line, help, and small helpers the commands share.
 * Exit status: 0 success, 1 failure, 2 dedupe found different contents,
 * 16 usage error.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "ctl.h"

const char *prog = "reflinkctl";

void print_help(void)
{
	printf("Usage: %s COMMAND [options] ARGS...\n"
	       "Clone files, deduplicate them, and show what they share on a reflinkfs mount.\n"
	       "\n"
	       "Commands:\n"
	       "  clone [-v] SRC DST\n"
	       "      Make DST a clone of SRC: DST is created, or truncated if it exists (as cp\n"
	       "      does; a directory DST means DST/SRC's name), then shares all of SRC's\n"
	       "      blocks. Nothing else is copied (owner, times, xattrs: use cp -a for that).\n"
	       "  clone [-v] SRC DST SRC_OFF DST_OFF LEN\n"
	       "      Share SRC's bytes [SRC_OFF, SRC_OFF+LEN) at DST_OFF of the existing DST.\n"
	       "      LEN 0 means up to SRC's end. Offsets must be multiples of the block size;\n"
	       "      LEN too, unless the range ends at SRC's end and reaches DST's end. Both\n"
	       "      ranges of one file must not overlap. Otherwise nothing is done.\n"
	       "  dedupe SRC DST [SRC_OFF DST_OFF LEN]\n"
	       "      Share the blocks of two files (or of the ranges) where their bytes are\n"
	       "      equal; compared by the filesystem, chunk by chunk (16 MiB), so equal\n"
	       "      chunks are shared even when others differ. Same alignment rules as\n"
	       "      clone, except that a LEN which is not a multiple must end at both ends.\n"
	       "  extents [-b] FILE...\n"
	       "      One line per extent: file offset, image offset, length, and flags\n"
	       "      (shared or exclusive, unwritten); then a total line.\n"
	       "  usage [--raw] [--no-sync] PATH...\n"
	       "      For each PATH (directories recursively, not crossing mounts, hard links\n"
	       "      once): Total bytes of data, Exclusive bytes (shared with nothing), and\n"
	       "      Set shared: blocks shared with anything, counted once within the PATH.\n"
	       "      Exclusive + Set shared is the space the PATH occupies. With several\n"
	       "      PATHs, a last line counts everything once across all of them.\n"
	       "\n"
	       "Options:\n"
	       "  -v, --verbose   clone: print what was shared\n"
	       "  -b, --blocks    extents: offsets and lengths in blocks, not bytes\n"
	       "      --raw       usage: bytes, not KiB, MiB, ...\n"
	       "      --no-sync   usage: do not flush each file first (faster on big trees;\n"
	       "                  data written in the last seconds may not be counted yet)\n"
	       "  -h, --help      show this help and exit\n"
	       "  -V, --version   show the version and exit\n"
	       "\n"
	       "Offsets and lengths take K, M, G, T suffixes (powers of 1024), e.g. 1M.\n"
	       "cp (coreutils >= 9) and cp --reflink=auto clone on reflinkfs by themselves;\n"
	       "cp --reflink=always fails (Linux does not pass FICLONE to FUSE filesystems).\n"
	       "Data written but not yet fsync'ed is flushed before extents, usage and dedupe.\n"
	       "\n"
	       "Exit status: 0 success; 1 failure (not reflinkfs, not one mount, bad range,\n"
	       "a clone that is not shared, I/O error); 2 dedupe: some contents differ (the\n"
	       "equal parts are shared); 16 usage error.\n",
	       prog);
}

int fail(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return EXIT_FAIL;
}

int usage_error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry '%s --help' for more information.\n", prog);
	return EXIT_USAGE;
}

int usage_hint(void)
{
	fprintf(stderr, "Try '%s --help' for more information.\n", prog);
	return EXIT_USAGE;
}

int parse_bytes(const char *what, const char *arg, uint64_t *out)
{
	if (cli_parse_size(arg, out))
		return usage_error("invalid %s '%s': a byte count, e.g. 4096 or 1M", what, arg);
	return 0;
}

int open_regular(const char *path, int flags, struct stat *st)
{
	int fd = open(path, flags | O_CLOEXEC);

	if (fd < 0) {
		fail("%s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, st)) {
		fail("%s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	if (!S_ISREG(st->st_mode)) {
		fail("%s: not a regular file", path);
		close(fd);
		return -1;
	}
	return fd;
}

int flush_to_daemon(int fd, const char *path)
{
	if (fdatasync(fd) == 0)
		return 0;
	fail("%s: cannot flush it: %s", path, strerror(errno));
	return -1;
}

static const struct {
	const char *name;
	int (*run)(int argc, char **argv);
} commands[] = {
	{"clone", cmd_clone},
	{"dedupe", cmd_dedupe},
	{"extents", cmd_extents},
	{"usage", cmd_usage},
};

/* Options before the command: only --help and --version. Returns -1 to
 * go on with the command at argv[optind], or an exit status. */
static int parse_global(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	int c;

	while ((c = getopt_long(argc, argv, "+hV", longopts, NULL)) != -1) {
		switch (c) {
		case 'h':
			print_help();
			return 0;
		case 'V':
			cli_print_version(prog);
			return 0;
		default:
			return usage_hint();
		}
	}
	if (optind >= argc)
		return usage_error("no command given (clone, dedupe, extents, usage)");
	return -1;
}

int main(int argc, char **argv)
{
	int ret = parse_global(argc, argv);
	size_t i;

	if (ret >= 0)
		return ret;
	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcmp(argv[optind], commands[i].name) == 0) {
			static char name[64];
			char **args = argv + optind;
			int n = argc - optind;

			/* getopt names argv[0] in its messages */
			snprintf(name, sizeof(name), "%s %s", prog, commands[i].name);
			args[0] = name;
			optind = 0; /* glibc: start afresh on the command's arguments */
			return commands[i].run(n, args);
		}
	}
	return usage_error("unknown command '%s' (clone, dedupe, extents, usage)", argv[optind]);
}
