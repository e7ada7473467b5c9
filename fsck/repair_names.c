/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * repair_names.c - the writes behind pass 4's repairs.
 *
 * Each function changes one record through lib/ (the directory and inode
 * trees), the way the daemon would: tree blocks come from and go back to
 * the allocator, so free space and the superblock's counts stay right.
 * fsck opens the filesystem without a journal (RFS_FS_NOJOURNAL): the
 * changes reach the image when fs_close() syncs. Each returns 0 or a
 * negative errno, and says what failed; the caller counts the fix.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bmap.h" /* RFS_MAX_FILE_BLOCKS */
#include "dir.h"
#include "file.h"
#include "fsck.h"
#include "inode.h"
#include "util.h"
#include "xattr.h"

static int failed(struct fsck_ctx *ctx, const char *what, rfs_ino_t ino, int ret)
{
	if (ret)
		printf("%s: cannot %s (inode %" PRIu64 "): %s\n", ctx->image, what, ino,
		       strerror(-ret));
	return ret;
}

/* Any change to a tree may take or give back a block: with a free-space
 * tree damaged (and not rebuilt: pass 3 sets trees_ok again when it
 * rebuilds one), the allocator could hand out a block in use. */
int repair_check_writable(struct fsck_ctx *ctx, const char *what, rfs_ino_t ino)
{
	if (ctx->fs->readonly)
		return failed(ctx, what, ino, -EROFS);
	if (!ctx->trees_ok[RFS_TREE_BNO] || !ctx->trees_ok[RFS_TREE_CNT]) {
		printf("%s: cannot %s (inode %" PRIu64 "): the free-space trees are damaged\n",
		       ctx->image, what, ino);
		return -EUCLEAN;
	}
	return 0;
}

/* Reads the record of entry D into REC (room for a full entry). */
static int read_entry(struct fsck_ctx *ctx, const struct dent_info *d, uint8_t *rec, size_t cap,
		      size_t *len)
{
	struct rfs_dirent_key key = {le64_make(d->dir), le64_make(d->cookie)};

	return btree_lookup(&ctx->fs->dirs, &key, RFS_LOOKUP_EQ, rec, cap, len);
}

int repair_remove_entry(struct fsck_ctx *ctx, const struct dent_info *d)
{
	struct rfs_dirent_key key = {le64_make(d->dir), le64_make(d->cookie)};
	int ret = repair_check_writable(ctx, "remove the entry", d->ino);

	if (!ret)
		ret = btree_delete(&ctx->fs->dirs, &key);
	return failed(ctx, "remove the entry", d->ino, ret);
}

int repair_entry_ftype(struct fsck_ctx *ctx, struct dent_info *d, uint8_t ftype)
{
	uint8_t rec[sizeof(struct rfs_dirent) + RFS_NAME_MAX];
	size_t len;
	int ret = repair_check_writable(ctx, "fix the entry's type", d->ino);

	if (!ret)
		ret = read_entry(ctx, d, rec, sizeof(rec), &len);
	if (!ret) {
		((struct rfs_dirent *)rec)->ftype = ftype;
		ret = btree_update(&ctx->fs->dirs, rec, len);
	}
	if (!ret)
		d->ftype = ftype;
	return failed(ctx, "fix the entry's type", d->ino, ret);
}

/* Files the entry again under its name's hash. -EEXIST: the directory
 * already holds the name properly filed; the misfiled copy is gone. */
int repair_entry_rehash(struct fsck_ctx *ctx, struct dent_info *d)
{
	uint8_t rec[sizeof(struct rfs_dirent) + RFS_NAME_MAX];
	struct rfs_dirent e;
	size_t len;
	int ret = repair_check_writable(ctx, "refile the entry", d->ino);

	if (!ret)
		ret = read_entry(ctx, d, rec, sizeof(rec), &len);
	if (!ret)
		ret = repair_remove_entry(ctx, d);
	if (ret)
		return failed(ctx, "refile the entry", d->ino, ret);
	memcpy(&e, rec, sizeof(e));
	ret = dir_add(ctx->fs, d->dir, rec + sizeof(e), e.namelen, d->ino, e.ftype, &d->cookie);
	if (ret == -EEXIST)
		printf("%s: directory %" PRIu64
		       " already has '%.*s': the misfiled copy is removed\n",
		       ctx->image, d->dir, (int)e.namelen, (const char *)rec + sizeof(e));
	else
		failed(ctx, "refile the entry", d->ino, ret);
	return ret;
}

/* Reads inode INO, lets EDIT change it, writes it back (inline area
 * included: fsck edits the record as read, and repairs inline forks). */
static int edit_inode(struct fsck_ctx *ctx, rfs_ino_t ino, const char *what,
		      void (*edit)(struct rfs_inode *inode, uint64_t val), uint64_t val)
{
	struct rfs_inode inode;
	int ret = repair_check_writable(ctx, what, ino);

	if (!ret)
		ret = inode_read(ctx->fs, ino, &inode);
	if (!ret) {
		edit(&inode, val);
		ret = inode_write_all(ctx->fs, &inode);
	}
	return failed(ctx, what, ino, ret);
}

static void set_parent(struct rfs_inode *inode, uint64_t parent)
{
	inode->parent = parent;
}

static void set_nlink(struct rfs_inode *inode, uint64_t nlink)
{
	inode->nlink = (uint32_t)nlink;
}

int repair_parent(struct fsck_ctx *ctx, rfs_ino_t ino, rfs_ino_t parent)
{
	return edit_inode(ctx, ino, "set the parent", set_parent, parent);
}

int repair_nlink(struct fsck_ctx *ctx, rfs_ino_t ino, uint32_t nlink)
{
	return edit_inode(ctx, ino, "set the link count", set_nlink, nlink);
}

/* A new empty directory with the fixed number INO (the root or
 * lost+found: the superblock names them, so they keep their numbers). */
int repair_make_dir(struct fsck_ctx *ctx, rfs_ino_t ino, rfs_ino_t parent, uint32_t perm)
{
	struct rfs_inode inode;
	struct timespec now;
	int ret = repair_check_writable(ctx, "make the directory", ino);

	if (ret)
		return ret;
	clock_gettime(CLOCK_REALTIME, &now);
	memset(&inode, 0, sizeof(inode));
	inode.ino = ino;
	inode.mode = S_IFDIR | perm;
	inode.uid = (uint32_t)getuid();
	inode.gid = (uint32_t)getgid();
	inode.nlink = 2;
	inode.parent = parent;
	inode.generation = ctx->fs->sb.next_generation++;
	inode.tid = ctx->fs->cache->cur_tid;
	inode.atime = inode.mtime = inode.ctime = inode.btime = now;
	fs_sb_dirty(ctx->fs);
	return failed(ctx, "make the directory", ino, inode_insert(ctx->fs, &inode));
}

/* Names INO in DIR as NAME, or as NAME.1, NAME.2... if NAME is taken. */
int repair_add_name(struct fsck_ctx *ctx, rfs_ino_t dir, const char *name, rfs_ino_t ino,
		    uint8_t ftype)
{
	char buf[RFS_NAME_MAX + 1];
	unsigned n;
	int ret = repair_check_writable(ctx, "add a name", ino);

	snprintf(buf, sizeof(buf), "%s", name);
	for (n = 1; !ret; n++) {
		ret = dir_add(ctx->fs, dir, buf, strlen(buf), ino, ftype, NULL);
		if (ret != -EEXIST || n > 100)
			break;
		snprintf(buf, sizeof(buf), "%s.%u", name, n);
		ret = 0;
	}
	if (!ret)
		printf("%s: inode %" PRIu64 " is now '%s' in directory %" PRIu64 "\n", ctx->image,
		       ino, buf, dir);
	return failed(ctx, "add a name", ino, ret);
}

int repair_free_contents(struct fsck_ctx *ctx, struct rfs_inode *inode)
{
	size_t stalls = 0;
	fileoff_t next = 0;
	int done = 0, ret = 0;

	while (!ret && next < RFS_MAX_FILE_BLOCKS) {
		fileoff_t from = next;
		ret = file_free_range(ctx->fs, inode, from, RFS_MAX_FILE_BLOCKS - from, &next);
		/* a step that only cancelled CoW staging starts again where it
		 * was: at most once per staging extent, or the fork is corrupt */
		if (!ret && next <= from && stalls++ > ctx->cow_exts.n)
			ret = -EUCLEAN;
	}
	while (!ret && !done)
		ret = xattr_remove_all(ctx->fs, inode->ino, RFS_TRUNC_STEP, &done);
	return ret;
}

/* Frees inode INO: its blocks (shared ones lose a reference), attributes
 * and record, as the daemon frees an orphan. */
int repair_clear_inode(struct fsck_ctx *ctx, rfs_ino_t ino)
{
	struct rfs_inode inode;
	int ret = repair_check_writable(ctx, "clear the inode", ino);

	if (!ret && (!ctx->trees_ok[RFS_TREE_BMAP] || !ctx->trees_ok[RFS_TREE_REFC] ||
		     !ctx->trees_ok[RFS_TREE_XATTR]))
		ret = -EUCLEAN; /* its extents and attributes are not all known */
	if (!ret)
		ret = inode_read(ctx->fs, ino, &inode);
	if (!ret)
		ret = repair_free_contents(ctx, &inode);
	if (!ret)
		ret = inode_delete(ctx->fs, ino);
	return failed(ctx, "clear the inode", ino, ret);
}

int repair_orphan_entry(struct fsck_ctx *ctx, rfs_ino_t ino)
{
	int ret = repair_check_writable(ctx, "add to the orphan list", ino);

	if (!ret)
		ret = orphan_add(ctx->fs, ino);
	return failed(ctx, "add to the orphan list", ino, ret);
}

/* Inline data of an unknown type, a symlink target in something that is
 * not a symlink, an inline data fork in something that is not a regular
 * file, or a regular file's inline fork that cannot stay: it is dropped
 * (a regular file's data fork is then the extent tree's); a symlink whose
 * inline bytes are as long as its size keeps them as its target. */
static void fix_inline(struct rfs_inode *inode, uint64_t unused)
{
	(void)unused;
	if (S_ISLNK(inode->mode) && inode->inline_len && inode->inline_len == inode->size) {
		inode->inline_type = RFS_INLINE_SYMLINK;
		return;
	}
	inode->inline_type = RFS_INLINE_NONE;
	inode->inline_len = 0;
}

int repair_inline(struct fsck_ctx *ctx, rfs_ino_t ino)
{
	return edit_inode(ctx, ino, "fix the inline data", fix_inline, 0);
}
