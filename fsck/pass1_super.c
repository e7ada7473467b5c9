/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * pass1_super.c - superblock, backups and journal superblock.
 *
 * Checks the primary superblock (checksum, geometry, features); if it is
 * unusable, finds a valid backup and carries on read-only from it. Then
 * compares each backup with the primary and checks the journal superblock.
 * Hands on: an open filesystem in ctx->fs, and the static blocks (super-
 * blocks, free list block, journal) as claims.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "fsck.h"
#include "journal.h"
#include "super.h"
#include "util.h"

static int same_geometry(const struct rfs_sb_info *a, const struct rfs_sb_info *b)
{
	return a->block_log == b->block_log && a->block_count == b->block_count &&
	       memcmp(a->uuid, b->uuid, sizeof(a->uuid)) == 0 &&
	       a->journal_start == b->journal_start && a->journal_blocks == b->journal_blocks &&
	       a->freelist_blkno == b->freelist_blkno;
}

static void check_backups(struct fsck_ctx *ctx)
{
	const struct rfs_sb_info *sb = &ctx->fs->sb;
	struct rfs_sb_info copy;
	char why[160];
	unsigned i;

	for (i = 0; i < RFS_NR_BACKUPS; i++) {
		fsblock_t b = sb->backup[i];
		int ret = sb_read_at(ctx->fs->dev, b << sb->block_log, &copy, why, sizeof(why));
		if (ret)
			fix_problem(ctx, PR_SB_BACKUP_BAD, "block %" PRIu64 ": %s", b, why);
		else if (!same_geometry(sb, &copy))
			fix_problem(ctx, PR_SB_BACKUP_DIFFERS, "block %" PRIu64, b);
	}
}

static void check_journal_sb(struct fsck_ctx *ctx)
{
	char why[160];
	int empty = 1;
	int ret = journal_sb_read(ctx->fs, &empty, why, sizeof(why));

	if (ret)
		fix_problem(ctx, PR_JOURNAL_SB_BAD, "block %" PRIu64 ": %s",
			    ctx->fs->sb.journal_start, why);
	else if (!empty)
		fix_problem(ctx, PR_JOURNAL_NEEDS_RECOVERY,
			    "the log is still not empty after replay");
}

static int add_static_claims(struct fsck_ctx *ctx)
{
	const struct rfs_sb_info *sb = &ctx->fs->sb;
	unsigned i;
	int ret = claims_add(&ctx->claims, 0, 1, CLAIM_SUPER);

	for (i = 0; !ret && i < RFS_NR_BACKUPS; i++)
		ret = claims_add(&ctx->claims, sb->backup[i], 1, CLAIM_SUPER);
	if (!ret)
		ret = claims_add(&ctx->claims, sb->freelist_blkno, 1, CLAIM_FREELIST_BLOCK);
	if (!ret)
		ret = claims_add(&ctx->claims, sb->journal_start, sb->journal_blocks,
				 CLAIM_JOURNAL);
	return ret;
}

/*
 * Replays the journal: for real with -p/-y, into an in-memory overlay with
 * -n so that the replayed view is checked without writing the image.
 * Returns 0 to go on (with *SB re-read if replay rewrote it).
 */
static int replay_journal(struct fsck_ctx *ctx, struct rfs_dev **dev, struct rfs_sb_info *sb)
{
	struct rfs_recovery_info info;
	char why[200];
	int ret;

	if (ctx->mode == FSCK_NO) {
		struct rfs_dev *ov;
		ret = dev_open_overlay(*dev, sb->bsize, &ov);
		if (ret)
			return FSCK_EXIT_OPERROR;
		*dev = ov;
	}
	ret = journal_recover(*dev, sb, &info);
	if (ret == -EUCLEAN) {
		fix_problem(ctx, PR_JOURNAL_SB_BAD, "block %" PRIu64 ": cannot replay the log",
			    sb->journal_start);
		return 0;
	}
	if (ret) {
		fprintf(stderr, "%s: journal recovery failed: %s\n", ctx->image, strerror(-ret));
		return FSCK_EXIT_OPERROR;
	}
	ctx->replayed = info.needed;
	if (info.needed && fix_problem(ctx, PR_JOURNAL_NEEDS_RECOVERY,
				       "%" PRIu64 " transaction(s), %" PRIu64
				       " block(s) written, %" PRIu64 " revoked%s",
				       info.transactions, info.blocks_written, info.blocks_revoked,
				       ctx->mode == FSCK_NO ? "; checking the replayed view" : ""))
		ctx->fixed++;
	if (info.needed && ctx->verbose)
		printf("%s: %s\n", ctx->image, info.stop);
	/* a journal that failed on purpose left its error in the superblock */
	if ((info.needed || info.recorded_errno) && sb_read_primary(*dev, sb, why, sizeof(why))) {
		fprintf(stderr, "%s: superblock unreadable after replay: %s\n", ctx->image, why);
		return FSCK_EXIT_UNCORRECTED;
	}
	return 0;
}

/* Opens the filesystem from the primary (after replaying the journal), or
 * from a backup. Returns an fsck exit code if it cannot go on, else 0. */
static int open_fs(struct fsck_ctx *ctx, struct rfs_dev *dev)
{
	unsigned flags = ctx->mode == FSCK_NO ? RFS_FS_RDONLY : RFS_FS_NOJOURNAL;
	struct rfs_sb_info sb;
	fsblock_t at;
	char why[200];
	int ret = sb_read_primary(dev, &sb, why, sizeof(why));

	if (ret) {
		int found = sb_find_backup(dev, &sb, &at) == 0;
		if (ret == -ENOENT && !found) {
			fprintf(stderr, "%s: not a reflinkfs filesystem (%s)\n", ctx->image, why);
			dev_close(dev);
			return FSCK_EXIT_OPERROR;
		}
		fix_problem(ctx, PR_SB_PRIMARY_BAD, "block 0: %s", why);
		if (!found) {
			fprintf(stderr, "%s: no valid backup superblock either\n", ctx->image);
			dev_close(dev);
			return FSCK_EXIT_UNCORRECTED;
		}
		printf("%s: using the backup superblock at block %" PRIu64 "\n", ctx->image, at);
		flags |= RFS_FS_RDONLY;
	} else {
		ret = replay_journal(ctx, &dev, &sb);
		if (ret) {
			dev_close(dev);
			return ret;
		}
	}
	ret = fs_open_with_sb(dev, flags, RFS_DEFAULT_CACHE, &sb, &ctx->fs, why, sizeof(why));
	if (ret == -EOPNOTSUPP) {
		fix_problem(ctx, PR_SB_FEATURE_UNKNOWN, "%s", why);
		return FSCK_EXIT_UNCORRECTED;
	}
	if (ret) {
		fprintf(stderr, "%s: %s\n", ctx->image, why);
		return FSCK_EXIT_OPERROR;
	}
	return 0;
}

int pass1_super(struct fsck_ctx *ctx, struct rfs_dev *dev)
{
	int ret = open_fs(ctx, dev);

	if (ret)
		return ret;
	if (ctx->verbose)
		printf("Pass 1: superblocks and journal\n");
	if (ctx->fs->sb.err_count)
		fix_problem(ctx, PR_SB_ERRORS_RECORDED, "%u error(s), last errno %u",
			    ctx->fs->sb.err_count, ctx->fs->sb.err_last_code);
	check_backups(ctx);
	check_journal_sb(ctx);
	fsck_progress(ctx, 1, 1, 1);
	return add_static_claims(ctx) ? FSCK_EXIT_OPERROR : 0;
}
