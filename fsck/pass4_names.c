/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * pass4_names.c - inodes, directory entries, reachability, link counts.
 *
 * From pass 2's inode summaries (sorted by inode number, as the tree gives
 * them) and directory entries: every entry sits in a directory and names a
 * live inode of the type it says, under its name's hash; every directory
 * has exactly one name (the root none) and its parent field names the
 * directory holding it; every directory reaches the root through its
 * parents (no loops); every inode has a name; link counts match (a
 * directory: 2 + subdirectories); file extents belong to live inodes, and
 * the data fork's extents add up to the inode's block count (the CoW
 * fork's do not count). Inodes on the orphan list (no name, nlink 0) are
 * fine: mount frees them.
 *
 * Repairs, in this order so that each step sees the previous ones:
 *   1. the superblock's next inode number; the root and lost+found are
 *      made again if missing (they keep their numbers);
 *   2. inline data of an unknown type (INODE_BAD, found by pass 2) is
 *      dropped, or kept as a symlink's target if it fits; symlinks with a
 *      malformed target are then cleared, as e2fsck does, with their names;
 *   3. entries: in no directory, naming no inode, under the wrong hash
 *      (refiled), of the wrong type (retyped); orphan list entries;
 *   4. directories with several names keep one (the one in their parent
 *      if any), the others are removed; '..' (the parent field) follows the
 *      name kept;
 *   5. directories that do not reach the root (no name, or a loop) and
 *      inodes with no name are named '#INO' in /lost+found, as e2fsck
 *      does. Unlike e2fsck, empty unnamed files are kept too: an inode
 *      costs no block, and its owner, mode and attributes may still tell
 *      someone what it was;
 *   6. link counts are rewritten from what is counted then; last, the
 *      superblock's inode count.
 * Each write goes through repair_names.c (lib/'s trees and allocator).
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "dir.h"
#include "fsck.h"
#include "inode.h"
#include "util.h"

#define NAME_ADDED ((size_t)-1) /* ino_info.name: a name pass 4 added */

struct names {
	struct fsck_ctx *ctx;
	int can_reconnect; /* the root and lost+found are sound directories */
	int relink;	   /* a reconnection happened: lost walks are stale */
};

static uint8_t mode_to_dtype(uint32_t mode)
{
	return (uint8_t)((mode & S_IFMT) >> 12); /* DT_* values equal S_IFMT >> 12 */
}

/* Live inodes only: cleared ones are gone as far as names are concerned. */
static struct ino_info *find_live(struct fsck_ctx *ctx, rfs_ino_t ino)
{
	struct ino_info *ii = fsck_find_ino(ctx, ino);

	return ii && !ii->cleared ? ii : NULL;
}

/* "/a/b" for a directory whose names were settled (step 4), "?" if its
 * way up is not known. Built from the end of BUF backwards. */
static const char *dir_path(struct fsck_ctx *ctx, rfs_ino_t ino, char *buf, size_t len)
{
	size_t pos = len - 1;
	unsigned depth;

	buf[pos] = 0;
	for (depth = 0; depth < 32 && ino != ctx->fs->sb.root_ino; depth++) {
		const struct ino_info *ii = find_live(ctx, ino);
		uint8_t rec[sizeof(struct rfs_dirent) + RFS_NAME_MAX];
		struct rfs_dirent_key key;
		const struct dent_info *d;
		struct rfs_dirent e;
		size_t rlen;

		if (ii && ii->name == NAME_ADDED) { /* named by reconnect() */
			int lf = ino == ctx->fs->sb.lost_found_ino;
			char added[32];
			size_t alen;

			if (lf)
				snprintf(added, sizeof(added), "/lost+found");
			else
				snprintf(added, sizeof(added), "/#%" PRIu64, ino);
			alen = strlen(added);
			if (alen > pos)
				break;
			pos -= alen;
			memcpy(buf + pos, added, alen);
			ino = lf ? ctx->fs->sb.root_ino : ctx->fs->sb.lost_found_ino;
			continue;
		}
		if (!ii || !ii->name)
			break;
		d = &ctx->dents[ii->name - 1];
		key.dir = le64_make(d->dir);
		key.cookie = le64_make(d->cookie);
		if (btree_lookup(&ctx->fs->dirs, &key, RFS_LOOKUP_EQ, rec, sizeof(rec), &rlen))
			break;
		memcpy(&e, rec, sizeof(e));
		if ((size_t)e.namelen + 1 > pos)
			break;
		pos -= e.namelen;
		memcpy(buf + pos, rec + sizeof(e), e.namelen);
		buf[--pos] = '/';
		ino = d->dir;
	}
	if (ino != ctx->fs->sb.root_ino)
		return "?";
	return buf[pos] ? buf + pos : "/";
}

/* Adds an inode summary for a directory pass 4 made, in number order. */
static struct ino_info *add_ino(struct fsck_ctx *ctx, rfs_ino_t ino, rfs_ino_t parent)
{
	size_t at = 0;
	struct ino_info *ii;

	if (ctx->ninodes == ctx->cap_inodes) {
		ctx->cap_inodes = ctx->cap_inodes ? ctx->cap_inodes * 2 : 64;
		ctx->inodes = realloc(ctx->inodes, ctx->cap_inodes * sizeof(*ctx->inodes));
		if (!ctx->inodes) {
			fprintf(stderr, "fsck.reflinkfs: out of memory\n");
			exit(FSCK_EXIT_OPERROR);
		}
	}
	while (at < ctx->ninodes && ctx->inodes[at].ino < ino)
		at++;
	memmove(&ctx->inodes[at + 1], &ctx->inodes[at], (ctx->ninodes - at) * sizeof(*ii));
	ctx->ninodes++;
	ii = &ctx->inodes[at];
	memset(ii, 0, sizeof(*ii));
	ii->ino = ino;
	ii->parent = parent;
	ii->mode = S_IFDIR;
	ii->nlink = 2;
	return ii;
}

/* Step 1. Inode numbers are never reused, so next_ino only moves up. */
static void check_next_ino(struct fsck_ctx *ctx)
{
	struct rfs_sb_info *sb = &ctx->fs->sb;
	rfs_ino_t last = ctx->ninodes ? ctx->inodes[ctx->ninodes - 1].ino : 0;

	if (last < sb->next_ino)
		return;
	if (fix_problem(ctx, PR_NEXT_INO_TOO_LOW, "next is %" PRIu64 ", inode %" PRIu64 " exists",
			sb->next_ino, last) &&
	    !ctx->fs->readonly) {
		sb->next_ino = last + 1;
		fs_sb_dirty(ctx->fs);
		ctx->fixed++;
	}
}

/* Does DIR name INO as NAME already (an entry left by the one lost)? Then
 * step 3 finds it sound again and step 4 counts it. */
static int named_in(struct fsck_ctx *ctx, rfs_ino_t dir, const char *name, rfs_ino_t ino)
{
	rfs_ino_t found;
	uint8_t ftype;

	return dir_lookup(ctx->fs, dir, name, strlen(name), &found, &ftype, NULL) == 0 &&
	       found == ino;
}

/* The root, or lost+found (in the root), made again if missing. Returns 1
 * if INO is a directory afterwards. */
static const char *const ext_kind_name[] = {
	[EXT_DATA] = "data fork extents",
	[EXT_COW] = "CoW fork extents",
	[EXT_XATTR] = "extended attributes",
	[EXT_DROPPED] = "what was freed",
};

/*
 * INO has no inode but may still own extents or attributes (its record
 * was lost): they go before the number is given to a new directory, which
 * would otherwise inherit a file's blocks. 1 if nothing is left.
 */
static int drop_leftovers(struct fsck_ctx *ctx, rfs_ino_t ino)
{
	size_t k;

	for (k = 0; k < ctx->nexts && ctx->exts[k].ino != ino; k++)
		;
	if (k == ctx->nexts)
		return 1;
	if (!ctx->trees_ok[RFS_TREE_BMAP] || !ctx->trees_ok[RFS_TREE_XATTR] ||
	    !fix_problem(ctx, PR_EXTENT_NO_INODE, "inode %" PRIu64 " (%s), before it is made again",
			 ino, ext_kind_name[ctx->exts[k].kind]) ||
	    repair_drop_owner(ctx, ino))
		return 0;
	ctx->fixed++;
	return 1;
}

static int check_special_dir(struct fsck_ctx *ctx, enum problem_code code, rfs_ino_t ino,
			     rfs_ino_t parent, uint32_t perm)
{
	struct ino_info *ii = find_live(ctx, ino);

	if (ii && S_ISDIR(ii->mode))
		return 1;
	if (!fix_problem(ctx, code, "inode %" PRIu64 "%s", ino,
			 ii ? " is not a directory" : " does not exist"))
		return 0;
	if (ii) { /* its number is the superblock's: moving it is not done */
		printf("%s: cannot repair: inode %" PRIu64 " is in use by something else\n",
		       ctx->image, ino);
		return 0;
	}
	if (!drop_leftovers(ctx, ino) || repair_make_dir(ctx, ino, parent, perm))
		return 0;
	ii = add_ino(ctx, ino, parent);
	ctx->fixed++;
	if (ino != ctx->fs->sb.root_ino && !named_in(ctx, parent, "lost+found", ino)) {
		if (repair_add_name(ctx, parent, "lost+found", ino, DT_DIR))
			return 0;
		ii->name = NAME_ADDED;
		ii->refs = 1;
		find_live(ctx, parent)->subdirs++;
	}
	return 1;
}

static void check_special(struct names *n)
{
	struct fsck_ctx *ctx = n->ctx;
	const struct rfs_sb_info *sb = &ctx->fs->sb;
	int root_ok, lf_ok;

	check_next_ino(ctx);
	root_ok = check_special_dir(ctx, PR_ROOT_BAD, sb->root_ino, sb->root_ino, 0755);
	lf_ok = root_ok &&
		check_special_dir(ctx, PR_LOST_FOUND_BAD, sb->lost_found_ino, sb->root_ino, 0700);
	n->can_reconnect = root_ok && lf_ok && !ctx->fs->readonly;
}

/* Step 2. A symlink is cleared with every name it has. */
static void clear_symlink(struct fsck_ctx *ctx, struct ino_info *ii)
{
	size_t i;

	for (i = 0; i < ctx->ndents; i++) {
		struct dent_info *d = &ctx->dents[i];
		if (d->ino == ii->ino && !d->gone && d->dir != RFS_ORPHAN_DIR) {
			if (repair_remove_entry(ctx, d))
				return;
			d->gone = 1;
		}
	}
	if (repair_clear_inode(ctx, ii->ino))
		return;
	for (i = 0; i < ctx->ndents; i++) /* the orphan list entry, if any */
		if (ctx->dents[i].ino == ii->ino && ctx->dents[i].dir == RFS_ORPHAN_DIR &&
		    !repair_remove_entry(ctx, &ctx->dents[i]))
			ctx->dents[i].gone = 1;
	ii->cleared = 1;
	ctx->fixed++;
}

/* INODE_BAD, reported by pass 2: a symlink may get its target back (the
 * inline bytes match its size), anything else loses the inline data. */
static void repair_inline_data(struct fsck_ctx *ctx)
{
	struct rfs_inode inode;
	size_t i;

	for (i = 0; i < ctx->ninodes; i++) {
		struct ino_info *ii = &ctx->inodes[i];
		if (!ii->inline_bad || repair_inline(ctx, ii->ino))
			continue;
		ctx->fixed++;
		if (S_ISLNK(ii->mode) && !inode_read(ctx->fs, ii->ino, &inode))
			ii->symlink_inline_ok = inode.inline_type == RFS_INLINE_SYMLINK;
	}
}

static void check_symlinks(struct fsck_ctx *ctx)
{
	size_t i;

	for (i = 0; i < ctx->ninodes; i++) {
		struct ino_info *ii = &ctx->inodes[i];
		if (S_ISLNK(ii->mode) && !ii->symlink_inline_ok &&
		    fix_problem(ctx, PR_SYMLINK_BAD, "inode %" PRIu64 ": cleared with its names",
				ii->ino))
			clear_symlink(ctx, ii);
	}
}

/* Removes entry D if -y says so; either way it no longer counts. */
static void drop_entry(struct fsck_ctx *ctx, struct dent_info *d, int fix)
{
	d->gone = 1;
	if (fix && !repair_remove_entry(ctx, d))
		ctx->fixed++;
}

/* Step 3, orphan list entries: an inode with no name left, still open
 * when the filesystem went down (freed at the next mount). */
static void check_orphan(struct fsck_ctx *ctx, struct dent_info *d)
{
	struct ino_info *target = find_live(ctx, d->ino);

	if (d->bad_key) {
		if (!fix_problem(ctx, PR_ORPHAN_BAD, "entry %" PRIu64 " names inode %" PRIu64,
				 d->cookie, d->ino))
			return;
		drop_entry(ctx, d, 1);
		if (target && target->nlink == 0 && !repair_orphan_entry(ctx, d->ino))
			target->orphan = 1; /* the entry it should have had */
		return;
	}
	if (!target)
		drop_entry(ctx, d,
			   fix_problem(ctx, PR_ORPHAN_BAD, "inode %" PRIu64 " does not exist",
				       d->ino));
	else if (target->nlink != 0)
		drop_entry(ctx, d,
			   fix_problem(ctx, PR_ORPHAN_BAD, "inode %" PRIu64 " still has %u link(s)",
				       d->ino, target->nlink));
	else
		target->orphan = 1;
}

static void check_entry_key(struct fsck_ctx *ctx, struct dent_info *d)
{
	if (!fix_problem(ctx, PR_DIRENT_HASH_WRONG, "directory %" PRIu64 ", inode %" PRIu64, d->dir,
			 d->ino))
		return;
	switch (repair_entry_rehash(ctx, d)) {
	case 0:
		ctx->fixed++;
		break;
	case -EEXIST:
		d->gone = 1;
		ctx->fixed++;
		break;
	default:
		d->gone = 1; /* removed, or unreadable: not counted */
	}
}

static void check_dirent(struct fsck_ctx *ctx, struct dent_info *d)
{
	struct ino_info *dir, *target;

	if (d->gone)
		return;
	if (d->dir == RFS_ORPHAN_DIR)
		return check_orphan(ctx, d);
	dir = find_live(ctx, d->dir);
	target = find_live(ctx, d->ino);
	if (!dir || !S_ISDIR(dir->mode))
		return drop_entry(ctx, d,
				  fix_problem(ctx, PR_DIRENT_IN_NON_DIR,
					      "inode %" PRIu64 " has an entry for %" PRIu64, d->dir,
					      d->ino));
	if (!target)
		return drop_entry(ctx, d,
				  fix_problem(ctx, PR_DIRENT_TARGET_MISSING,
					      "directory %" PRIu64 " names inode %" PRIu64, d->dir,
					      d->ino));
	if (d->bad_key)
		check_entry_key(ctx, d);
	if (d->gone)
		return;
	if (d->ftype != mode_to_dtype(target->mode) &&
	    fix_problem(ctx, PR_DIRENT_FTYPE_WRONG,
			"directory %" PRIu64 ", inode %" PRIu64 ": entry says %u, inode is %u",
			d->dir, d->ino, d->ftype, mode_to_dtype(target->mode)) &&
	    !repair_entry_ftype(ctx, d, mode_to_dtype(target->mode)))
		ctx->fixed++;
	if (!S_ISDIR(target->mode))
		target->refs++;
	else if (d->dir == target->parent)
		target->parent_names = 1;
}

/* Step 4: the name a directory keeps is the first in its parent, or the
 * first at all if its parent holds none; the root keeps none. */
static void settle_dir_name(struct fsck_ctx *ctx, size_t idx)
{
	struct dent_info *d = &ctx->dents[idx];
	struct ino_info *t = find_live(ctx, d->ino), *dir = find_live(ctx, d->dir);

	if (d->gone || d->dir == RFS_ORPHAN_DIR || !t || !S_ISDIR(t->mode))
		return;
	if (t->name || t->ino == ctx->fs->sb.root_ino || (t->parent_names && d->dir != t->parent)) {
		if (fix_problem(ctx, PR_DIR_MULTIPLY_LINKED,
				"directory %" PRIu64 " is also named in %" PRIu64, t->ino, d->dir))
			drop_entry(ctx, d, 1);
		else
			t->refs++;
		return;
	}
	t->name = idx + 1;
	t->refs++;
	dir->subdirs++;
	if (d->dir != t->parent &&
	    fix_problem(ctx, PR_DIR_PARENT_WRONG,
			"directory %" PRIu64 " is in %" PRIu64 " but its parent says %" PRIu64,
			d->ino, d->dir, t->parent) &&
	    !repair_parent(ctx, t->ino, d->dir)) {
		t->parent = d->dir;
		ctx->fixed++;
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
		cur = find_live(ctx, cur->parent);
		if (cur && !S_ISDIR(cur->mode))
			cur = NULL;
	}
	if (cur && (cur->ino == ctx->fs->sb.root_ino || cur->walk == WALK_ROOTED))
		result = WALK_ROOTED;
	else
		result = WALK_LOST;
	for (p = ii; p && p->walk == WALK_ACTIVE; p = find_live(ctx, p->parent))
		p->walk = result;
}

/* After a reconnection, chains found lost may lead to it now. */
static void forget_lost_walks(struct names *n)
{
	size_t i;

	if (!n->relink)
		return;
	for (i = 0; i < n->ctx->ninodes; i++)
		if (n->ctx->inodes[i].walk == WALK_LOST)
			n->ctx->inodes[i].walk = WALK_NEW;
	n->relink = 0;
}

/* Step 5. Names II '#INO' in lost+found (lost+found itself: 'lost+found'
 * in the root); a directory first loses the name it had in a loop. */
static int reconnect(struct names *n, struct ino_info *ii)
{
	struct fsck_ctx *ctx = n->ctx;
	rfs_ino_t lf = ctx->fs->sb.lost_found_ino;
	rfs_ino_t to = ii->ino == lf ? ctx->fs->sb.root_ino : lf;
	int is_dir = S_ISDIR(ii->mode);
	char name[32];

	if (!n->can_reconnect) {
		printf("%s: cannot reconnect inode %" PRIu64 ": no usable lost+found\n", ctx->image,
		       ii->ino);
		return -1;
	}
	if (is_dir && ii->name && ii->name != NAME_ADDED) {
		struct dent_info *old = &ctx->dents[ii->name - 1];
		if (repair_remove_entry(ctx, old))
			return -1;
		old->gone = 1;
		find_live(ctx, old->dir)->subdirs--;
		ii->refs--;
	}
	snprintf(name, sizeof(name), ii->ino == lf ? "lost+found" : "#%" PRIu64, ii->ino);
	if (repair_add_name(ctx, to, name, ii->ino, mode_to_dtype(ii->mode)))
		return -1;
	ii->refs++;
	if (is_dir) {
		if (ii->parent != to && repair_parent(ctx, ii->ino, to))
			return -1;
		ii->parent = to;
		ii->name = NAME_ADDED;
		ii->walk = WALK_ROOTED;
		find_live(ctx, to)->subdirs++;
		n->relink = 1;
	}
	ctx->fixed++;
	return 0;
}

/*
 * The directory to reconnect when II does not reach the root, as e2fsck's
 * pass 3 finds it: up II's parents, the first with no name (nothing above
 * it leads anywhere), or in a loop the one whose parent the climb has seen
 * already. Reconnecting it makes the whole chain reachable again.
 */
static struct ino_info *lost_top(struct fsck_ctx *ctx, struct ino_info *ii)
{
	struct ino_info *cur = ii, *p;

	for (;;) {
		if (!cur->refs)
			break;
		cur->climb = 1;
		p = find_live(ctx, cur->parent);
		if (!p || !S_ISDIR(p->mode) || p->ino == ctx->fs->sb.root_ino || p->climb)
			break;
		cur = p;
	}
	for (p = ii; p && p->climb; p = find_live(ctx, p->parent))
		p->climb = 0;
	return cur;
}

static void check_dir_reachable(struct names *n, struct ino_info *ii)
{
	struct fsck_ctx *ctx = n->ctx;
	struct ino_info *top, *p;
	char above[48] = "";

	if (ii->ino == ctx->fs->sb.root_ino || ii->orphan || ii->cleared || !S_ISDIR(ii->mode))
		return;
	forget_lost_walks(n);
	walk_to_root(ctx, ii);
	if (ii->refs && ii->walk == WALK_ROOTED)
		return;
	if (ii->lost_reported) /* -n: reported once for its whole chain */
		return;
	top = lost_top(ctx, ii);
	for (p = ii; p != top; p = find_live(ctx, p->parent))
		p->lost_reported = 1;
	top->lost_reported = 1;
	if (top != ii)
		snprintf(above, sizeof(above), ", above directory %" PRIu64, ii->ino);
	if (fix_problem(ctx, PR_DIR_UNREACHABLE, "directory %" PRIu64 " (%s, parent %" PRIu64 ")%s",
			top->ino, top->refs ? "in a loop" : "no name", top->parent, above))
		reconnect(n, top);
}

static void check_reachable(struct names *n)
{
	struct fsck_ctx *ctx = n->ctx;
	struct ino_info *lf = find_live(ctx, ctx->fs->sb.lost_found_ino);
	size_t i;

	if (lf) /* first: the others may have to go there */
		check_dir_reachable(n, lf);
	for (i = 0; i < ctx->ninodes; i++)
		check_dir_reachable(n, &ctx->inodes[i]);
	for (i = 0; i < ctx->ninodes; i++) {
		struct ino_info *ii = &ctx->inodes[i];
		if (!S_ISDIR(ii->mode) && !ii->orphan && !ii->cleared && ii->refs == 0 &&
		    fix_problem(ctx, PR_INODE_UNREACHABLE,
				"inode %" PRIu64 " (mode 0%o, %u link(s))", ii->ino, ii->mode,
				ii->nlink))
			reconnect(n, ii);
	}
}

/* Step 6. */
static void check_nlink(struct fsck_ctx *ctx, struct ino_info *ii)
{
	uint32_t want = S_ISDIR(ii->mode) ? 2 + ii->subdirs : ii->refs;
	char path[256];

	if (ii->cleared || ii->nlink == want)
		return;
	if (ii->orphan) {
		if (!ii->refs)
			return; /* freed at the next mount */
		if (!fix_problem(ctx, PR_ORPHAN_BAD,
				 "inode %" PRIu64 " is on the orphan list but has %u name(s)",
				 ii->ino, ii->refs))
			return;
		if (ctx->fs->readonly || orphan_remove(ctx->fs, ii->ino))
			return;
		ii->orphan = 0;
		ctx->fixed++;
	}
	if (!S_ISDIR(ii->mode) && want == 0)
		return; /* unreachable: reported, and named if repaired */
	if (fix_problem(ctx, PR_NLINK_WRONG, "%s %" PRIu64 " (%s): %u, counted %u",
			S_ISDIR(ii->mode) ? "directory" : "inode", ii->ino,
			S_ISDIR(ii->mode) ? dir_path(ctx, ii->ino, path, sizeof(path)) : "file",
			ii->nlink, want) &&
	    !repair_nlink(ctx, ii->ino, want)) {
		ii->nlink = want;
		ctx->fixed++;
	}
}

static void check_inode_count(struct fsck_ctx *ctx)
{
	struct rfs_sb_info *sb = &ctx->fs->sb;
	uint64_t live = 0;
	size_t i;

	for (i = 0; i < ctx->ninodes; i++)
		live += !ctx->inodes[i].cleared;
	if (live == sb->inode_count)
		return;
	if (fix_problem(ctx, PR_INODE_COUNT_WRONG,
			"superblock says %" PRIu64 ", the inode tree holds %" PRIu64,
			sb->inode_count, live) &&
	    !ctx->fs->readonly) {
		sb->inode_count = live;
		fs_sb_dirty(ctx->fs);
		ctx->fixed++;
	}
}

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
		if (ii->mapped != ii->nblocks && !ii->cleared &&
		    fix_problem(ctx, PR_NBLOCKS_WRONG,
				"inode %" PRIu64 ": %" PRIu64 ", data fork maps %" PRIu64, ii->ino,
				ii->nblocks, ii->mapped))
			repair_nblocks(ctx, ii);
	}
}

/* For the summary: inodes whose data fork is not one physical run (data
 * extents come in inode, then offset order), and shared blocks. */
static void count_layout(struct fsck_ctx *ctx)
{
	const struct ivals *d = &ctx->data_exts;
	rfs_ino_t counted = 0; /* no inode is 0 */
	size_t k;

	ctx->fragmented = 0;
	for (k = 1; k < d->n; k++) {
		const struct ival *p = &d->v[k - 1], *e = &d->v[k];
		if (e->val == p->val && e->val != counted && e->start != p->start + p->len) {
			ctx->fragmented++;
			counted = e->val;
		}
	}
	ctx->shared_blocks = 0;
	for (k = 0; k < ctx->shared.n; k++)
		ctx->shared_blocks += ctx->shared.v[k].len;
}

/* The summary counts live inodes. */
static void drop_cleared(struct fsck_ctx *ctx)
{
	size_t i, out = 0;

	for (i = 0; i < ctx->ninodes; i++)
		if (!ctx->inodes[i].cleared)
			ctx->inodes[out++] = ctx->inodes[i];
	ctx->ninodes = out;
}

int pass4_names(struct fsck_ctx *ctx)
{
	struct names n = {.ctx = ctx};
	size_t i;

	count_layout(ctx);
	repair_inline_data(ctx);
	if (!ctx->trees_ok[RFS_TREE_INODE] || !ctx->trees_ok[RFS_TREE_DIR]) {
		printf("%s: inode or directory tree damaged: names and link counts not checked\n",
		       ctx->image);
		for (i = 0; ctx->trees_ok[RFS_TREE_DIR] && i < ctx->ndents; i++)
			if (ctx->dents[i].bad_key && ctx->dents[i].dir != RFS_ORPHAN_DIR)
				check_entry_key(ctx, &ctx->dents[i]); /* needs the names only */
		return 0;
	}
	if (ctx->verbose)
		printf("Pass 4: inodes, directories and link counts\n");
	check_special(&n);
	check_symlinks(ctx);
	for (i = 0; i < ctx->ndents; i++) {
		fsck_progress(ctx, 4, i, 2 * ctx->ndents + ctx->ninodes);
		check_dirent(ctx, &ctx->dents[i]);
	}
	for (i = 0; i < ctx->ndents; i++) {
		fsck_progress(ctx, 4, ctx->ndents + i, 2 * ctx->ndents + ctx->ninodes);
		settle_dir_name(ctx, i);
	}
	check_reachable(&n);
	for (i = 0; i < ctx->ninodes; i++) {
		fsck_progress(ctx, 4, 2 * ctx->ndents + i, 2 * ctx->ndents + ctx->ninodes);
		check_nlink(ctx, &ctx->inodes[i]);
	}
	fsck_progress(ctx, 4, 2 * ctx->ndents + ctx->ninodes, 2 * ctx->ndents + ctx->ninodes);
	check_inode_count(ctx);
	if (ctx->trees_ok[RFS_TREE_BMAP] && ctx->trees_ok[RFS_TREE_XATTR])
		check_extents(ctx);
	drop_cleared(ctx);
	return 0;
}
