/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * mkfs.reflinkfs - make a reflinkfs filesystem on an image file or device.
 *
 * A thin front end: options, the safety checks a user expects (no silent
 * overwrite of an existing reflinkfs, no format of an image in use), then
 * fs_create() in lib/ does all the writing.
 *
 * Exit status: 0 made; 1 could not make it (bad size, existing filesystem,
 * I/O error); 16 usage error (unknown option, missing argument).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uuid/uuid.h>

#include "cli.h"
#include "dev.h"
#include "fs_create.h"
#include "util.h"

#define EXIT_MKFS_FAIL 1
#define EXIT_USAGE     16

static const char *prog = "mkfs.reflinkfs";

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: %s [options] TARGET\n"
		"Make a reflinkfs filesystem on TARGET, an image file or a block device.\n"
		"\n"
		"  -s, --size SIZE          filesystem size; creates TARGET (sparse) if it does "
		"not\n"
		"                           exist and resizes an image file to SIZE\n"
		"  -b, --block-size SIZE    block size, 1024 to 65536, a power of two (default "
		"4096)\n"
		"  -J, --journal-size SIZE  log size (default: 1/64 of the filesystem, 4 MiB..1 "
		"GiB)\n"
		"  -L, --label LABEL        volume label, at most 64 bytes\n"
		"  -U, --uuid UUID          use this UUID instead of a random one\n"
		"  -f, --force              overwrite an existing reflinkfs filesystem\n"
		"      --no-inline-fork     keep every data fork in the extent tree (an image\n"
		"                           older readers can mount)\n"
		"  -q, --quiet              print nothing on success\n"
		"  -h, --help               show this help and exit\n"
		"  -V, --version            show the version and exit\n"
		"\n"
		"SIZE takes K, M, G, T, P suffixes (powers of 1024), e.g. -s 1T.\n"
		"Exit status: 0 success, 1 failure, 16 usage error.\n",
		prog);
}

struct mkfs_args {
	struct rfs_mkfs_opts opts;
	uint64_t size; /* 0: use the target's size */
	int force, quiet;
	int created; /* TARGET did not exist: remove it if mkfs fails */
	const char *target;
};

static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int fail(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return EXIT_MKFS_FAIL;
}

static int parse_block_size(const char *arg, uint32_t *log)
{
	uint64_t v;
	uint32_t l;

	if (cli_parse_size(arg, &v))
		return -EINVAL;
	for (l = RFS_MIN_BLOCK_LOG; l <= RFS_MAX_BLOCK_LOG; l++) {
		if (v == (1ull << l)) {
			*log = l;
			return 0;
		}
	}
	return -EINVAL;
}

/* Returns -1 to go on, or an exit status. */
static int parse_args(int argc, char **argv, struct mkfs_args *a)
{
	static const struct option longopts[] = {
		{"size", required_argument, NULL, 's'},
		{"block-size", required_argument, NULL, 'b'},
		{"journal-size", required_argument, NULL, 'J'},
		{"label", required_argument, NULL, 'L'},
		{"uuid", required_argument, NULL, 'U'},
		{"force", no_argument, NULL, 'f'},
		{"no-inline-fork", no_argument, NULL, 'I'},
		{"quiet", no_argument, NULL, 'q'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	int c;

	memset(a, 0, sizeof(*a));
	while ((c = getopt_long(argc, argv, "s:b:J:L:U:fqhV", longopts, NULL)) != -1) {
		switch (c) {
		case 's':
			if (cli_parse_size(optarg, &a->size) || a->size == 0)
				return fail("invalid size '%s' (try -s 1G)", optarg);
			break;
		case 'b':
			if (parse_block_size(optarg, &a->opts.block_log))
				return fail("invalid block size '%s': use 1024, 2048, ... 65536",
					    optarg);
			break;
		case 'J':
			if (cli_parse_size(optarg, &a->opts.journal_bytes) ||
			    !a->opts.journal_bytes)
				return fail("invalid journal size '%s'", optarg);
			break;
		case 'L':
			if (strlen(optarg) > RFS_LABEL_MAX)
				return fail("label '%s' is longer than %d bytes", optarg,
					    RFS_LABEL_MAX);
			snprintf(a->opts.label, sizeof(a->opts.label), "%s", optarg);
			break;
		case 'U':
			if (uuid_parse(optarg, a->opts.uuid))
				return fail("invalid UUID '%s'", optarg);
			a->opts.have_uuid = 1;
			break;
		case 'f':
			a->force = 1;
			break;
		case 'I':
			a->opts.no_inline_fork = 1;
			break;
		case 'q':
			a->quiet = 1;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			cli_print_version(prog);
			return 0;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind != argc - 1) {
		fprintf(stderr, "%s: %s\n", prog,
			optind >= argc ? "no TARGET given" : "too many arguments");
		usage(stderr);
		return EXIT_USAGE;
	}
	a->target = argv[optind];
	return -1;
}

static int open_target(struct mkfs_args *a, struct rfs_dev **dev)
{
	struct stat st;
	int exists = stat(a->target, &st) == 0;
	int ret;

	if (!exists && !a->size)
		return fail("%s does not exist; give -s SIZE to create an image file", a->target);
	ret = cli_open_image(prog, a->target, exists ? 0 : RFS_DEV_CREATE, exists ? 0 : a->size,
			     CLI_WAIT_SECONDS, dev);
	a->created = !exists && !ret;
	if (ret == -EBUSY)
		return fail("%s is in use (mounted, or being checked): not formatting it",
			    a->target);
	if (ret)
		return fail("cannot open %s: %s", a->target, strerror(-ret));
	if (exists && fs_probe(*dev) && !a->force) {
		dev_close(*dev);
		return fail("%s already holds a reflinkfs filesystem; use -f to overwrite it",
			    a->target);
	}
	if (exists && a->size && S_ISREG(st.st_mode) && a->size != (*dev)->size) {
		ret = dev_resize(*dev, a->size);
		if (ret) {
			dev_close(*dev);
			return fail("cannot resize %s to %" PRIu64 " bytes: %s", a->target, a->size,
				    strerror(-ret));
		}
	}
	return 0;
}

static void print_result(const struct mkfs_args *a, const struct rfs_sb_info *sb)
{
	char size[32], jsize[32], uuid[37];

	uuid_unparse(sb->uuid, uuid);
	printf("%s: %" PRIu64 " blocks of %u bytes (%s), journal %" PRIu64 " blocks (%s)\n",
	       a->target, sb->block_count, sb->bsize,
	       cli_human_size(sb->block_count << sb->block_log, size, sizeof(size)),
	       sb->journal_blocks,
	       cli_human_size(sb->journal_blocks << sb->block_log, jsize, sizeof(jsize)));
	printf("UUID: %s%s%s\n", uuid, sb->label[0] ? "  label: " : "", sb->label);
}

int main(int argc, char **argv)
{
	struct mkfs_args a;
	struct rfs_sb_info sb;
	struct rfs_dev *dev;
	char why[256];
	int ret;

	ret = parse_args(argc, argv, &a);
	if (ret >= 0)
		return ret;
	if (open_target(&a, &dev))
		return EXIT_MKFS_FAIL;
	if (a.size && a.size < dev->size)
		a.opts.block_count =
			a.size >> (a.opts.block_log ? a.opts.block_log : RFS_DEFAULT_BLOCK_LOG);
	ret = fs_create(dev, &a.opts, &sb, why, sizeof(why));
	dev_close(dev);
	if (ret) {
		if (a.created)
			unlink(a.target);
		return fail("%s: %s", a.target, why);
	}
	if (!a.quiet)
		print_result(&a, &sb);
	return 0;
}
