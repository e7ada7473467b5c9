/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fsck.reflinkfs - check a reflinkfs filesystem.
 *
 * The driver: options, opening the image under the same lock the daemon
 * holds (so a mounted image is refused), the passes in order, a summary,
 * and fsck(8) exit codes. All knowledge of the format comes from lib/.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "fsck.h"
#include "util.h"

static const char *prog = "fsck.reflinkfs";

static const char *const owner_names[CLAIM_OWNER_MAX] = {
	[CLAIM_SUPER] = "a superblock",
	[CLAIM_FREELIST_BLOCK] = "the free list block",
	[CLAIM_JOURNAL] = "the journal",
	[CLAIM_FREELIST_ENTRY] = "the free list",
	[CLAIM_TREE_BNO] = "the free-space (bno) tree",
	[CLAIM_TREE_CNT] = "the free-space (cnt) tree",
	[CLAIM_TREE_INODE] = "the inode tree",
	[CLAIM_TREE_DIR] = "the directory tree",
	[CLAIM_TREE_BMAP] = "the extent tree",
	[CLAIM_TREE_XATTR] = "the extended attribute tree",
	[CLAIM_TREE_REFC] = "the refcount tree",
	[CLAIM_FILE_DATA] = "file data",
	[CLAIM_COW_STAGING] = "CoW staging",
	[CLAIM_FREE] = "free space",
};

const char *claim_owner_name(uint16_t owner)
{
	return owner < CLAIM_OWNER_MAX ? owner_names[owner] : "?";
}

int claims_add(struct claims *c, fsblock_t start, extlen_t len, uint16_t owner)
{
	if (c->n == c->cap) {
		c->cap = c->cap ? c->cap * 2 : 4096;
		c->v = realloc(c->v, c->cap * sizeof(*c->v));
		if (!c->v) {
			fprintf(stderr, "%s: out of memory\n", prog);
			exit(FSCK_EXIT_OPERROR);
		}
	}
	c->v[c->n++] = (struct claim){start, len, owner};
	return 0;
}

void ivals_add(struct ivals *l, fsblock_t start, extlen_t len, uint64_t val)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 1024;
		l->v = realloc(l->v, l->cap * sizeof(*l->v));
		if (!l->v) {
			fprintf(stderr, "%s: out of memory\n", prog);
			exit(FSCK_EXIT_OPERROR);
		}
	}
	l->v[l->n++] = (struct ival){start, len, val};
}

size_t ivals_first_ending_after(const struct ivals *l, fsblock_t b)
{
	size_t lo = 0, hi = l->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (l->v[mid].start + l->v[mid].len <= b)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

int ivals_overlap(const struct ivals *l, fsblock_t start, extlen_t len)
{
	size_t k = ivals_first_ending_after(l, start);

	return k < l->n && l->v[k].start < start + len;
}

/* Pass 2 gathers inodes in tree order, so they are sorted by number. */
struct ino_info *fsck_find_ino(struct fsck_ctx *ctx, rfs_ino_t ino)
{
	size_t lo = 0, hi = ctx->ninodes;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (ctx->inodes[mid].ino < ino)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < ctx->ninodes && ctx->inodes[lo].ino == ino ? &ctx->inodes[lo] : NULL;
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: %s [-n|-p|-a|-y] [-f] [-v] [-C FD] IMAGE\n"
		"Check a reflinkfs filesystem (image file or block device); repair with -p or -y.\n"
		"\n"
		"  -n           check only: open read-only, change nothing (the default)\n"
		"  -p, -a       repair what is safe to repair without asking\n"
		"  -y           repair everything that can be repaired\n"
		"  -f           check even if the filesystem seems clean\n"
		"  -v           say what each pass finds\n"
		"  -C FD        progress: 0 draws a bar if stdout is a terminal, N > 0 writes\n"
		"               \"PASS DONE TOTAL IMAGE\" lines to file descriptor N (as e2fsck)\n"
		"  -h, --help   show this help;  -V, --version  show the version\n"
		"\n"
		"A mounted image is refused (exit 8): unmount it first.\n"
		"Exit status (fsck(8)): 0 clean, 1 errors fixed, 4 errors left uncorrected,\n"
		"8 operational error, 16 usage error, 32 cancelled.\n",
		prog);
}

static int parse_args(int argc, char **argv, struct fsck_ctx *ctx)
{
	static const struct option longopts[] = {
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	int c, modes = 0;

	ctx->mode = FSCK_NO;
	while ((c = getopt_long(argc, argv, "npayfvC:hV", longopts, NULL)) != -1) {
		switch (c) {
		case 'n':
			ctx->mode = FSCK_NO, modes++;
			break;
		case 'p':
		case 'a':
			ctx->mode = FSCK_PREEN, modes++;
			break;
		case 'y':
			ctx->mode = FSCK_YES, modes++;
			break;
		case 'f':
			ctx->force = 1;
			break;
		case 'v':
			ctx->verbose = 1;
			break;
		case 'C':
			if (fsck_progress_parse(&ctx->progress, optarg)) {
				fprintf(stderr, "%s: invalid -C '%s': a file descriptor\n", prog,
					optarg);
				return FSCK_EXIT_USAGE;
			}
			break;
		case 'h':
			usage(stdout);
			exit(FSCK_EXIT_OK);
		case 'V':
			cli_print_version(prog);
			exit(FSCK_EXIT_OK);
		default:
			usage(stderr);
			return FSCK_EXIT_USAGE;
		}
	}
	if (modes > 1) {
		fprintf(stderr, "%s: -n, -p and -y exclude each other\n", prog);
		return FSCK_EXIT_USAGE;
	}
	if (optind != argc - 1) {
		fprintf(stderr, "%s: %s\n", prog,
			optind >= argc ? "no IMAGE given" : "too many arguments");
		usage(stderr);
		return FSCK_EXIT_USAGE;
	}
	ctx->image = argv[optind];
	return 0;
}

static int open_image(struct fsck_ctx *ctx, struct rfs_dev **dev)
{
	unsigned flags = ctx->mode == FSCK_NO ? RFS_DEV_RDONLY : 0;
	int ret = cli_open_image(prog, ctx->image, flags, 0, CLI_WAIT_SECONDS, dev);

	if (ret == -EBUSY) {
		fprintf(stderr,
			"%s: %s is in use: it is mounted (or being made or checked); "
			"unmount it first\n",
			prog, ctx->image);
		return FSCK_EXIT_OPERROR;
	}
	if (ret) {
		fprintf(stderr, "%s: cannot open %s: %s\n", prog, ctx->image, strerror(-ret));
		return FSCK_EXIT_OPERROR;
	}
	return 0;
}

static void print_summary(const struct fsck_ctx *ctx)
{
	const struct rfs_sb_info *sb = &ctx->fs->sb;
	uint64_t used = sb->block_count - sb->free_blocks;
	char total[32];

	printf("%s: %s, %zu inodes (%.1f%% non-contiguous), %" PRIu64 "/%" PRIu64
	       " blocks used (%.1f%% of %s), %" PRIu64 " shared\n",
	       ctx->image,
	       !ctx->problems		     ? "clean"
	       : ctx->problems == ctx->fixed ? "all problems fixed"
					     : "problems left uncorrected",
	       ctx->ninodes,
	       ctx->ninodes ? 100.0 * (double)ctx->fragmented / (double)ctx->ninodes : 0.0, used,
	       sb->block_count, 100.0 * (double)used / (double)sb->block_count,
	       cli_human_size(sb->block_count << sb->block_log, total, sizeof(total)),
	       ctx->shared_blocks);
}

static int exit_code(const struct fsck_ctx *ctx)
{
	if (ctx->problems > ctx->fixed)
		return FSCK_EXIT_UNCORRECTED;
	return ctx->fixed ? FSCK_EXIT_FIXED : FSCK_EXIT_OK;
}

/* Frees what the passes gathered and forgets it: all but the options, the
 * problem counts and the progress display. */
static void reset_ctx(struct fsck_ctx *ctx)
{
	struct fsck_ctx keep = {.image = ctx->image,
				.mode = ctx->mode,
				.force = ctx->force,
				.verbose = ctx->verbose,
				.problems = ctx->problems,
				.fixed = ctx->fixed,
				.progress = ctx->progress};

	free(ctx->claims.v);
	free(ctx->cnt_extents.v);
	free(ctx->inodes);
	free(ctx->dents);
	free(ctx->exts);
	free(ctx->inline_exts);
	free(ctx->data_exts.v);
	free(ctx->cow_exts.v);
	free(ctx->shared.v);
	free(ctx->staging.v);
	free(ctx->repair.forks);
	free(ctx->trims);
	*ctx = keep;
}

/* One check of the image (DEV consumed): passes 1-4, or up to the pass
 * that asks for a restart (2 after a repair that changed a tree's shape
 * under its walk, 3 after a salvage). Returns an exit code if it cannot
 * go on, else 0. */
static int check_once(struct fsck_ctx *ctx, struct rfs_dev *dev)
{
	int ret = pass1_super(ctx, dev);

	if (!ret)
		ret = pass2_trees(ctx);
	if (!ret && !ctx->restart)
		ret = pass3_space(ctx);
	if (!ret && !ctx->restart)
		ret = pass4_names(ctx);
	if (!ret && !ctx->restart)
		pass1_finish(ctx);
	if (ctx->fs) {
		fsck_progress_clear(ctx);
		if (!ret && !ctx->restart)
			print_summary(ctx);
		/* Repairs reach the image only here: a failure is not clean. */
		if (fs_close(ctx->fs) && !ret) {
			fprintf(stderr, "%s: writing the repairs failed\n", ctx->image);
			ret = FSCK_EXIT_OPERROR;
		}
		ctx->fs = NULL;
	}
	return ret;
}

int fsck_run(struct fsck_ctx *ctx, struct rfs_dev *dev)
{
	int ret, restarts = 0;

	for (;;) {
		ret = check_once(ctx, dev);
		if (ret || !ctx->restart || restarts++ == 2)
			break;
		reset_ctx(ctx);
		printf("%s: restarting the check on the rebuilt trees\n", ctx->image);
		ret = open_image(ctx, &dev);
		if (ret)
			break;
	}
	reset_ctx(ctx);
	return ret ? ret : exit_code(ctx);
}

int fsck_main(int argc, char **argv)
{
	struct fsck_ctx ctx;
	struct rfs_dev *dev;
	int ret;

	memset(&ctx, 0, sizeof(ctx));
	rfs_log_set_level(RFS_LOG_ERR); /* passes report problems themselves */
	ret = parse_args(argc, argv, &ctx);
	if (!ret)
		ret = open_image(&ctx, &dev);
	return ret ? ret : fsck_run(&ctx, dev);
}

#ifndef RFS_FSCK_NO_MAIN /* the fuzz target calls fsck_main itself */
int main(int argc, char **argv)
{
	return fsck_main(argc, argv);
}
#endif
