/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * pass1_super.c - superblock, backups and journal superblock.
 *
 * Checks the primary superblock (checksum, geometry, features); if it is
 * unusable, finds a valid backup and either restores the primary from it
 * (-y) or carries on read-only from it (-n). Then compares each backup with
 * the primary (rewriting damaged ones) and checks the journal superblock
 * (rewriting it empty when the log cannot be replayed). Hands on: an open
 * filesystem in ctx->fs, and the static blocks (superblocks, free list
 * block, journal) as claims. pass1_finish() runs after every other pass:
 * errors the filesystem recorded are cleared only once a full check has
 * fixed everything it found.
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

/* A repair on a filesystem that had to be opened read-only (from a
 * backup whose restoring failed) is refused with a message. */
static int writable(struct fsck_ctx *ctx, const char *what)
{
	if (!ctx->fs->readonly)
		return 1;
	printf("%s: cannot %s: the filesystem is open read-only\n", ctx->image, what);
	return 0;
}

/* Both backups are rewritten from the primary: one write repairs every
 * bad copy (NBAD of them). */
static void rewrite_backups(struct fsck_ctx *ctx, unsigned nbad)
{
	const struct rfs_sb_info *sb = &ctx->fs->sb;
	int ret;

	if (!writable(ctx, "rewrite the backups"))
		return;
	ret = sb_write_backups(ctx->fs->dev, sb, sb->last_tid);
	if (!ret)
		ret = dev_flush(ctx->fs->dev);
	if (ret)
		printf("%s: cannot rewrite the backups: %s\n", ctx->image, strerror(-ret));
	else
		ctx->fixed += nbad;
}

static void check_backups(struct fsck_ctx *ctx)
{
	const struct rfs_sb_info *sb = &ctx->fs->sb;
	struct rfs_sb_info copy;
	char why[160];
	unsigned i, nbad = 0;
	int fix = 0;

	for (i = 0; i < RFS_NR_BACKUPS; i++) {
		fsblock_t b = sb->backup[i];
		int ret = sb_read_at(ctx->fs->dev, b << sb->block_log, &copy, why, sizeof(why));
		if (ret)
			fix = fix_problem(ctx, PR_SB_BACKUP_BAD, "block %" PRIu64 ": %s", b, why);
		else if (!same_geometry(sb, &copy))
			fix = fix_problem(ctx, PR_SB_BACKUP_DIFFERS, "block %" PRIu64, b);
		else
			continue;
		nbad++;
	}
	if (fix)
		rewrite_backups(ctx, nbad);
}

/*
 * The log cannot be replayed: what it held is lost, and an empty log is
 * the only way to mount again. Its sequence must be past every tid the
 * old log may hold, or a stale block could pass for a new transaction: a
 * log of J blocks holds fewer than J transactions past the superblock's
 * last_tid, so last_tid moves on by J.
 */
static void rewrite_journal_sb(struct fsck_ctx *ctx)
{
	struct rfs_sb_info *sb = &ctx->fs->sb;
	int ret;

	if (!writable(ctx, "rewrite the journal superblock"))
		return;
	sb->last_tid += sb->journal_blocks;
	ctx->fs->cache->cur_tid = sb->last_tid;
	fs_sb_dirty(ctx->fs);
	ret = journal_format(ctx->fs);
	if (ret)
		printf("%s: cannot rewrite the journal superblock: %s\n", ctx->image,
		       strerror(-ret));
	else
		ctx->fixed++;
}

static void check_journal_sb(struct fsck_ctx *ctx)
{
	char why[160];
	int empty = 1;
	int ret = journal_sb_read(ctx->fs, &empty, why, sizeof(why));

	if (ret && !ctx->journal_sb_reported)
		ctx->journal_sb_fix = fix_problem(ctx, PR_JOURNAL_SB_BAD, "block %" PRIu64 ": %s",
						  ctx->fs->sb.journal_start, why);
	else if (!ret && !empty)
		fix_problem(ctx, PR_JOURNAL_NEEDS_RECOVERY,
			    "the log is still not empty after replay");
	if (ret && ctx->journal_sb_fix)
		rewrite_journal_sb(ctx);
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
	if (ret == -EUCLEAN) { /* rewritten, if so decided, once the fs is open */
		ctx->journal_sb_reported = 1;
		ctx->journal_sb_fix =
			fix_problem(ctx, PR_JOURNAL_SB_BAD,
				    "block %" PRIu64 ": cannot replay the log", sb->journal_start);
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

/*
 * The primary is unusable and a backup at AT is valid: -y writes the
 * backup over the primary (then the journal is replayed and the fs opened
 * as usual: the backup may be older than the primary was, which the later
 * passes see as counts to fix). Returns 1 if restored.
 */
static int restore_primary(struct fsck_ctx *ctx, struct rfs_dev *dev, const struct rfs_sb_info *sb,
			   fsblock_t at, const char *why)
{
	int ret;

	if (!fix_problem(ctx, PR_SB_PRIMARY_BAD, "block 0: %s; backup at block %" PRIu64, why, at))
		return 0;
	ret = sb_write_primary(dev, sb, sb->last_tid);
	if (ret) {
		printf("%s: cannot restore the primary superblock: %s\n", ctx->image,
		       strerror(-ret));
		return 0;
	}
	printf("%s: primary superblock restored from the backup at block %" PRIu64 "\n", ctx->image,
	       at);
	ctx->fixed++;
	return 1;
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
		if (!found) {
			fix_problem(ctx, PR_SB_PRIMARY_BAD, "block 0: %s", why);
			fprintf(stderr, "%s: no valid backup superblock either\n", ctx->image);
			dev_close(dev);
			return FSCK_EXIT_UNCORRECTED;
		}
		if (!restore_primary(ctx, dev, &sb, at, why)) {
			printf("%s: using the backup superblock at block %" PRIu64 "\n", ctx->image,
			       at);
			flags |= RFS_FS_RDONLY;
			goto open;
		}
	}
	ret = replay_journal(ctx, &dev, &sb);
	if (ret) {
		dev_close(dev);
		return ret;
	}
open:
	ret = fs_open_with_sb(dev, flags, FSCK_CACHE, &sb, &ctx->fs, why, sizeof(why));
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

/* A read-only open accepts unknown ro_compat features, which -y would
 * refuse: -n says so too, so that both agree on what is wrong. */
static void check_write_features(struct fsck_ctx *ctx)
{
	const char *feat = sb_unsupported_feature(&ctx->fs->sb, 1);

	if (ctx->mode == FSCK_NO && feat)
		fix_problem(ctx, PR_SB_FEATURE_UNKNOWN, "unsupported %s (read-only use only)",
			    feat);
}

int pass1_super(struct fsck_ctx *ctx, struct rfs_dev *dev)
{
	int ret = open_fs(ctx, dev);

	if (ret)
		return ret;
	if (ctx->verbose)
		printf("Pass 1: superblocks and journal\n");
	check_write_features(ctx);
	check_backups(ctx);
	check_journal_sb(ctx);
	fsck_progress(ctx, 1, 1, 1);
	return add_static_claims(ctx) ? FSCK_EXIT_OPERROR : 0;
}

/* The record of errors is what asks for a full check: cleared only when
 * this check found nothing else, or fixed everything else it found. */
void pass1_finish(struct fsck_ctx *ctx)
{
	struct rfs_sb_info *sb = &ctx->fs->sb;
	uint64_t unfixed = ctx->problems - ctx->fixed;

	if (!sb->err_count && !(sb->state & RFS_STATE_ERROR))
		return;
	if (!fix_problem(ctx, PR_SB_ERRORS_RECORDED, "%u error(s), last errno %u", sb->err_count,
			 sb->err_last_code))
		return;
	if (unfixed) {
		printf("%s: error record kept: %" PRIu64 " problem(s) left uncorrected\n",
		       ctx->image, unfixed);
		return;
	}
	if (!writable(ctx, "clear the error record"))
		return;
	sb->err_count = sb->err_first_code = sb->err_last_code = 0;
	sb->err_first_time = sb->err_last_time = 0;
	sb->state &= ~(uint32_t)RFS_STATE_ERROR;
	fs_sb_dirty(ctx->fs);
	ctx->fixed++;
}
