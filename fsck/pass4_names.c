/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * pass4_names.c - inodes, directory entries, reachability, link counts.
 *
 * From pass 2's inode summaries (sorted by inode number, as the tree gives
 * them) and directory entries: every entry sits in a directory and names a
 * live inode of the type it says; every directory has exactly one name
 * (the root none) and its parent field names the directory holding it;
 * every directory reaches the root through its parents (no loops); every
 * inode has a name; link counts match (a directory: 2 + subdirectories);
 * file extents belong to live inodes, and the data fork's extents add up
 * to the inode's block count (the CoW fork's do not count).
 * Inodes on the orphan list (no name, nlink 0) are fine: mount frees them.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "dir.h"
#include "fsck.h"

static uint8_t mode_to_dtype(uint32_t mode)
{
	return (uint8_t)((mode & S_IFMT) >> 12); /* DT_* values equal S_IFMT >> 12 */
}

static void check_special(struct fsck_ctx *ctx)
{
	const struct rfs_sb_info *sb = &ctx->fs->sb;
	struct ino_info *root = fsck_find_ino(ctx, sb->root_ino);
	struct ino_info *lf = fsck_find_ino(ctx, sb->lost_found_ino);

	if (!root || !S_ISDIR(root->mode))
		fix_problem(ctx, PR_ROOT_BAD, "inode %" PRIu64, sb->root_ino);
	if (!lf || !S_ISDIR(lf->mode))
		fix_problem(ctx, PR_LOST_FOUND_BAD, "inode %" PRIu64, sb->lost_found_ino);
	if (ctx->ninodes != sb->inode_count)
		fix_problem(ctx, PR_INODE_COUNT_WRONG,
			    "superblock says %" PRIu64 ", the inode tree holds %zu",
			    sb->inode_count, ctx->ninodes);
	if (ctx->ninodes && ctx->inodes[ctx->ninodes - 1].ino >= sb->next_ino)
		fix_problem(ctx, PR_NEXT_INO_TOO_LOW,
			    "next is %" PRIu64 ", inode %" PRIu64 " exists", sb->next_ino,
			    ctx->inodes[ctx->ninodes - 1].ino);
}

/* An entry of the orphan list: an inode with no name left, still open
 * when the filesystem went down (freed at the next mount). */
static void check_orphan(struct fsck_ctx *ctx, const struct dent_info *d)
{
	struct ino_info *target = fsck_find_ino(ctx, d->ino);

	if (!target)
		fix_problem(ctx, PR_ORPHAN_BAD, "inode %" PRIu64 " does not exist", d->ino);
	else if (target->nlink != 0)
		fix_problem(ctx, PR_ORPHAN_BAD, "inode %" PRIu64 " still has %u link(s)", d->ino,
			    target->nlink);
	else
		target->orphan = 1;
}

static void check_dirent(struct fsck_ctx *ctx, const struct dent_info *d)
{
	struct ino_info *dir, *target;

	if (d->dir == RFS_ORPHAN_DIR)
		return check_orphan(ctx, d);
	dir = fsck_find_ino(ctx, d->dir);
	target = fsck_find_ino(ctx, d->ino);

	if (!dir || !S_ISDIR(dir->mode)) {
		fix_problem(ctx, PR_DIRENT_IN_NON_DIR,
			    "inode %" PRIu64 " has an entry for %" PRIu64, d->dir, d->ino);
		return;
	}
	if (!target) {
		fix_problem(ctx, PR_DIRENT_TARGET_MISSING,
			    "directory %" PRIu64 " names inode %" PRIu64, d->dir, d->ino);
		return;
	}
	if (d->ftype != mode_to_dtype(target->mode))
		fix_problem(ctx, PR_DIRENT_FTYPE_WRONG,
			    "directory %" PRIu64 ", inode %" PRIu64 ": entry says %u, inode is %u",
			    d->dir, d->ino, d->ftype, mode_to_dtype(target->mode));
	target->refs++;
	if (S_ISDIR(target->mode)) {
		dir->subdirs++;
		if (target->parent != d->dir)
			fix_problem(ctx, PR_DIR_PARENT_WRONG,
				    "directory %" PRIu64 " is in %" PRIu64
				    " but its parent says %" PRIu64,
				    d->ino, d->dir, target->parent);
	}
}

enum { WALK_NEW, WALK_ACTIVE, WALK_ROOTED, WALK_LOST };

/* Follows parent fields from II up to the root, marking the whole chain
 * rooted or lost. A chain that meets itself is a loop. */
static void walk_to_root(struct fsck_ctx *ctx, struct ino_info *ii)
{
	struct ino_info *cur = ii, *p;
	uint8_t result;

	while (cur && cur->walk == WALK_NEW && cur->ino != ctx->fs->sb.root_ino) {
		cur->walk = WALK_ACTIVE;
		cur = fsck_find_ino(ctx, cur->parent);
		if (cur && !S_ISDIR(cur->mode))
			cur = NULL;
	}
	if (cur && (cur->ino == ctx->fs->sb.root_ino || cur->walk == WALK_ROOTED))
		result = WALK_ROOTED;
	else
		result = WALK_LOST;
	for (p = ii; p && p->walk == WALK_ACTIVE; p = fsck_find_ino(ctx, p->parent))
		p->walk = result;
}

static void check_inode_links(struct fsck_ctx *ctx, struct ino_info *ii)
{
	int is_root = ii->ino == ctx->fs->sb.root_ino;

	if (S_ISLNK(ii->mode) && !ii->symlink_inline_ok)
		fix_problem(ctx, PR_SYMLINK_BAD, "inode %" PRIu64, ii->ino);
	if (ii->orphan) {
		if (ii->refs)
			fix_problem(ctx, PR_ORPHAN_BAD,
				    "inode %" PRIu64 " is on the orphan list but "
				    "has %u name(s)",
				    ii->ino, ii->refs);
		return; /* freed at the next mount */
	}
	if (S_ISDIR(ii->mode)) {
		if (ii->refs > 1)
			fix_problem(ctx, PR_DIR_MULTIPLY_LINKED,
				    "directory %" PRIu64 " has %u names", ii->ino, ii->refs);
		if (!is_root) {
			walk_to_root(ctx, ii);
			if (ii->refs == 0 || ii->walk != WALK_ROOTED)
				fix_problem(ctx, PR_DIR_UNREACHABLE, "directory %" PRIu64, ii->ino);
		}
		if (ii->nlink != 2 + ii->subdirs)
			fix_problem(ctx, PR_NLINK_WRONG, "directory %" PRIu64 ": %u, counted %u",
				    ii->ino, ii->nlink, 2 + ii->subdirs);
		return;
	}
	if (ii->refs == 0)
		fix_problem(ctx, PR_INODE_UNREACHABLE, "inode %" PRIu64, ii->ino);
	else if (ii->nlink != ii->refs)
		fix_problem(ctx, PR_NLINK_WRONG, "inode %" PRIu64 ": %u, counted %u", ii->ino,
			    ii->nlink, ii->refs);
}

static const char *const ext_kind_name[] = {
	[EXT_DATA] = "data fork extents",
	[EXT_COW] = "CoW fork extents",
	[EXT_XATTR] = "extended attributes",
};

/* Only the data fork counts in nblocks: CoW fork blocks are staging, not
 * yet part of the file, and go away at the next mount after a crash. */
static void check_extents(struct fsck_ctx *ctx)
{
	struct ino_info *ii = NULL;
	rfs_ino_t last_missing = 0;
	size_t i, orphans = 0;

	/* Extents come in (inode, fork, offset) order, then attribute owners
	 * in inode order: the lookup is cached on the last inode. */
	for (i = 0; i < ctx->nexts; i++) {
		const struct ext_info *e = &ctx->exts[i];
		if (!ii || ii->ino != e->ino)
			ii = fsck_find_ino(ctx, e->ino);
		if (ii) {
			if (e->kind == EXT_DATA)
				ii->mapped += e->len;
		} else if (e->ino != last_missing && orphans++ < 10) {
			last_missing = e->ino;
			if (fix_problem(ctx, PR_EXTENT_NO_INODE, "inode %" PRIu64 " (%s)", e->ino,
					ext_kind_name[e->kind]))
				repair_orphan_extents(ctx);
		}
	}
	for (i = 0; i < ctx->ninodes; i++) {
		ii = &ctx->inodes[i];
		if (ii->mapped != ii->nblocks &&
		    fix_problem(ctx, PR_NBLOCKS_WRONG,
				"inode %" PRIu64 ": %" PRIu64 ", data fork maps %" PRIu64, ii->ino,
				ii->nblocks, ii->mapped))
			repair_nblocks(ctx, ii);
	}
}

int pass4_names(struct fsck_ctx *ctx)
{
	size_t i;

	if (!ctx->trees_ok[RFS_TREE_INODE] || !ctx->trees_ok[RFS_TREE_DIR]) {
		printf("%s: inode or directory tree damaged: names and link counts not checked\n",
		       ctx->image);
		return 0;
	}
	if (ctx->verbose)
		printf("Pass 4: inodes, directories and link counts\n");
	check_special(ctx);
	for (i = 0; i < ctx->ndents; i++) {
		fsck_progress(ctx, 4, i, ctx->ndents + ctx->ninodes);
		check_dirent(ctx, &ctx->dents[i]);
	}
	for (i = 0; i < ctx->ninodes; i++) {
		fsck_progress(ctx, 4, ctx->ndents + i, ctx->ndents + ctx->ninodes);
		check_inode_links(ctx, &ctx->inodes[i]);
	}
	fsck_progress(ctx, 4, ctx->ndents + ctx->ninodes, ctx->ndents + ctx->ninodes);
	if (ctx->trees_ok[RFS_TREE_BMAP] && ctx->trees_ok[RFS_TREE_XATTR])
		check_extents(ctx);
	return 0;
}
