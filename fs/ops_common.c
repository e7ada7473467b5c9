/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * ops_common.c - helpers shared by the FUSE operations: handles and the
 * metadata lock, replies, credentials, orphans.
 */
#include "ops_common.h"

#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "bmap.h"
#include "dir.h"
#include "file.h"
#include "util.h"
#include "xattr.h"

int op_begin(struct rfs_mount *m, uint32_t credits, struct rfs_handle **h)
{
	int ret;

	if (m->fs->readonly)
		return -EROFS;
	ret = txn_start(m->fs, credits, h);
	if (ret)
		return ret;
	pthread_mutex_lock(&m->lock);
	return 0;
}

/* Corruption or an I/O error met by an operation that has already
 * changed metadata: the change is half done and cannot be undone. */
static int fatal_midway(struct rfs_handle *h, int ret)
{
	return (ret == -EUCLEAN || ret == -EBADMSG || ret == -EIO) && txn_changed(h);
}

int op_stop(struct rfs_handle *h, int ret)
{
	int r;

	if (fatal_midway(h, ret)) {
		rfs_log(RFS_LOG_ERR,
			"metadata update failed half-way (%s): the filesystem is now "
			"read-only; unmount it and run fsck.reflinkfs",
			strerror(-ret));
		txn_abort(h, ret);
	}
	r = txn_stop(h);
	return ret ? ret : r;
}

int op_end(struct rfs_mount *m, struct rfs_handle *h, int ret)
{
	pthread_mutex_unlock(&m->lock);
	return op_stop(h, ret);
}

void rfs_fill_stat(const struct rfs_mount *m, const struct rfs_inode *in, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = in->ino;
	st->st_mode = in->mode;
	st->st_nlink = in->nlink;
	st->st_uid = in->uid;
	st->st_gid = in->gid;
	st->st_rdev = in->rdev;
	st->st_size = (off_t)in->size;
	st->st_blksize = (blksize_t)m->fs->sb.bsize;
	st->st_blocks = (blkcnt_t)(in->nblocks << (m->fs->sb.block_log - 9));
	st->st_atim = in->atime;
	st->st_mtim = in->mtime;
	st->st_ctim = in->ctime;
}

void reply_entry(fuse_req_t req, struct rfs_mount *m, const struct rfs_inode *inode)
{
	struct fuse_entry_param e;

	memset(&e, 0, sizeof(e));
	e.ino = inode->ino;
	e.generation = inode->generation;
	e.attr_timeout = m->timeout;
	e.entry_timeout = m->timeout;
	rfs_fill_stat(m, inode, &e.attr);
	/* The reference is taken before the reply: once the kernel has the
	 * entry, a FORGET for it may arrive on another thread at once. */
	if (!itab_ref(m, inode->ino, 1)) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	if (fuse_reply_entry(req, &e) != 0)
		itab_forget(m, inode->ino, 1);
}

void reply_attr(fuse_req_t req, struct rfs_mount *m, const struct rfs_inode *inode)
{
	struct stat st;

	rfs_fill_stat(m, inode, &st);
	fuse_reply_attr(req, &st, m->timeout);
}

void reply_error(fuse_req_t req, struct rfs_mount *m, int err, const char *op, rfs_ino_t ino)
{
	fuse_reply_err(req, rfs_errno(m, err, op, ino));
}

int check_meta_space(struct rfs_mount *m)
{
	struct rfs_fs *fs = m->fs;
	/* up to four inserts, each splitting a whole path of its tree and
	 * adding a root; the allocator may top its free list up meanwhile */
	uint64_t need = 4 * ((uint64_t)fs->inodes.height + fs->dirs.height + fs->bmap.height + 6) +
			alloc_freelist_low(fs) + 8;

	return fs->sb.free_blocks >= need ? 0 : -ENOSPC;
}

int read_inode_locked(struct rfs_mount *m, rfs_ino_t ino, struct rfs_inode *inode)
{
	int ret = inode_read(m->fs, ino, inode);
	return ret == -ENOENT ? -ESTALE : ret;
}

void req_cred(fuse_req_t req, struct rfs_cred *c)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);

	c->uid = ctx->uid;
	c->gid = ctx->gid;
}

void kill_sgid_mark(fuse_req_t req, struct rfs_inode *inode)
{
	if (S_ISREG(inode->mode) && (inode->mode & (S_ISGID | S_IXGRP)) == S_ISGID &&
	    !in_group_or_root(req, inode->gid))
		inode->mode &= ~(uint32_t)S_ISGID;
}

void kill_privs(fuse_req_t req, struct rfs_inode *inode)
{
	if (!S_ISREG(inode->mode) || fuse_req_ctx(req)->uid == 0)
		return;
	inode->mode &= ~(uint32_t)S_ISUID;
	if (inode->mode & S_IXGRP)
		inode->mode &= ~(uint32_t)S_ISGID;
	kill_sgid_mark(req, inode);
}

int drop_inode_if_unused(struct rfs_mount *m, struct rfs_inode *inode, int *free_now)
{
	*free_now = 0;
	inode_touch(inode, 0); /* the link count changed */
	if (inode->nlink == 0 && !itab_mark_unlinked(m, inode->ino))
		*free_now = 1; /* the caller frees it after this transaction */
	return inode_write(m->fs, inode);
}

int retry_after_commit(struct rfs_mount *m, int ret)
{
	int busy;

	if (ret != -ENOSPC)
		return 0;
	pthread_mutex_lock(&m->lock);
	busy = m->fs->busy.n > 0;
	pthread_mutex_unlock(&m->lock);
	return busy && journal_commit(m->fs) == 0;
}

uint32_t free_step_credits(struct rfs_mount *m, rfs_ino_t ino, fileoff_t from)
{
	struct rfs_inode inode;
	uint32_t credits = 0;
	int ret;

	pthread_mutex_lock(&m->lock);
	ret = inode_read(m->fs, ino, &inode);
	if (!ret)
		ret = file_free_credits(m->fs, &inode, from, &credits);
	pthread_mutex_unlock(&m->lock);
	/* the step will meet the error: let it, with room for the worst */
	return ret ? file_step_credits(m->fs) : credits;
}

/* One bounded step of freeing orphan INO; *DONE when it is gone. */
static int free_orphan_step(struct rfs_mount *m, rfs_ino_t ino, int *done)
{
	struct rfs_inode inode;
	struct rfs_handle *h;
	fileoff_t next;
	/* the inode and list records; the extents; and the attribute records
	 * xattr_remove_all deletes (xattr_credits(fs, 0) covers four) */
	int ret = op_begin(m,
			   RFS_META_CREDITS + free_step_credits(m, ino, 0) +
				   (RFS_TRUNC_STEP + 3) / 4 * xattr_credits(m->fs, 0),
			   &h);

	if (ret)
		return ret;
	ret = inode_read(m->fs, ino, &inode);
	if (ret == -ENOENT) { /* already gone: only the list entry is left */
		*done = 1;
		ret = orphan_remove(m->fs, ino);
		return op_end(m, h, ret == -ENOENT ? 0 : ret);
	}
	if (!ret && inode.nlink > 0) { /* linked again: not an orphan */
		*done = 1;
		return op_end(m, h, orphan_remove(m->fs, ino));
	}
	if (!ret) {
		uint64_t nblocks = inode.nblocks;
		ret = file_free_range(m->fs, &inode, 0, RFS_MAX_FILE_BLOCKS, &next);
		if (ret)
			ret = inode_write_after(m, &inode, nblocks, ret);
	}
	if (!ret && next >= RFS_MAX_FILE_BLOCKS)
		ret = xattr_remove_all(m->fs, ino, RFS_TRUNC_STEP, done);
	if (!ret && *done) {
		ret = inode_delete(m->fs, ino);
		if (!ret)
			ret = orphan_remove(m->fs, ino);
	} else if (!ret) {
		ret = inode_write(m->fs, &inode);
	}
	return op_end(m, h, ret);
}

int free_orphan(struct rfs_mount *m, rfs_ino_t ino)
{
	int done = 0, ret = 0;

	while (!done && !ret)
		ret = free_orphan_step(m, ino, &done);
	return ret;
}

struct orphan_list {
	rfs_ino_t *v;
	size_t n, cap;
};

static int collect_orphan(void *arg, uint64_t cookie, rfs_ino_t ino, uint8_t ftype,
			  const char *name, size_t len)
{
	struct orphan_list *l = arg;

	(void)cookie, (void)ftype, (void)name, (void)len;
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64;
		rfs_ino_t *v = realloc(l->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = ino;
	return 0;
}

int rfs_reclaim_orphans(struct rfs_mount *m, int all)
{
	struct orphan_list l = {0};
	size_t i, freed = 0;
	int ret;

	pthread_mutex_lock(&m->lock);
	ret = dir_iterate(m->fs, RFS_ORPHAN_DIR, 0, collect_orphan, &l);
	pthread_mutex_unlock(&m->lock);
	for (i = 0; !ret && i < l.n; i++) {
		if (!all && itab_get(m, l.v[i]))
			continue;
		ret = free_orphan(m, l.v[i]);
		freed++;
	}
	if (freed)
		rfs_log(RFS_LOG_INFO, "freed %zu orphaned inode(s)", freed);
	free(l.v);
	return ret;
}

int inode_write_after(struct rfs_mount *m, const struct rfs_inode *inode, uint64_t nblocks, int ret)
{
	int w;

	if (ret && inode->nblocks == nblocks)
		return ret;
	w = inode_write(m->fs, inode);
	return ret ? ret : w;
}
