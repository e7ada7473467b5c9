/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * ops_file.c - attributes, open/create/release, read, write, fsync,
 * fallocate, lseek, statfs, and the session's init/destroy.
 */
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "bmap.h"
#include "file.h"
#include "ops_common.h"
#include "util.h"

#define WRITE_SEGS 16 /* extents planned per write transaction */

static int range_steps(struct rfs_mount *m, fuse_ino_t ino, fileoff_t from, fileoff_t to,
		       int prealloc);

static uint64_t blocks_up(const struct rfs_mount *m, uint64_t bytes)
{
	return (bytes + m->fs->sb.bsize - 1) >> m->fs->sb.block_log;
}

/* --- attributes ------------------------------------------------------------ */

static void rfs_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct rfs_mount *m = req_mount(req);
	struct rfs_inode inode;
	int ret;

	(void)fi;
	pthread_mutex_lock(&m->lock);
	ret = read_inode_locked(m, ino, &inode);
	pthread_mutex_unlock(&m->lock);
	if (ret)
		return reply_error(req, m, ret, "getattr", ino);
	reply_attr(req, m, &inode);
}

/*
 * Zeroes file bytes [A, B) (within one block, inside the file) through the
 * write path if the block is shared, so that the in-place zeroing of a
 * truncate or punch that follows never reaches another file's data: the
 * write moves the block to a private copy first (CoW).
 */
static int unshare_zero(fuse_req_t req, struct rfs_mount *m, const struct rfs_inode *inode,
			uint64_t a, uint64_t b)
{
	fileoff_t blk = a >> m->fs->sb.block_log;
	fuse_ino_t ino = inode->ino;
	struct rfs_extent e;
	int shared = 0, allocated, ret;
	uint64_t written;
	uint8_t *zero;

	if (b <= a || !(inode->flags & RFS_IFLAG_REFLINK))
		return 0; /* files that never shared: nothing to look up */
	pthread_mutex_lock(&m->lock);
	ret = file_extent_shared(m->fs, ino, blk, &e, &shared);
	shared = !ret && e.off <= blk && shared;
	ret = ret == -ENOENT ? 0 : ret;
	pthread_mutex_unlock(&m->lock);
	if (ret || !shared)
		return ret;
	zero = calloc(1, b - a);
	if (!zero)
		return -ENOMEM;
	ret = rfs_write_data(req, m, ino, NULL, zero, b - a, a, 0, &written, &allocated);
	free(zero);
	return ret ? ret : (written < b - a ? -ENOSPC : 0);
}

/* Sets the size; the blocks past a shrunk size were freed before
 * (free_before_shrink). */
static int set_size_locked(struct rfs_mount *m, struct rfs_inode *inode, uint64_t size)
{
	uint32_t bs = m->fs->sb.bsize;
	int ret = 0;

	if (S_ISDIR(inode->mode))
		return -EISDIR;
	if (!S_ISREG(inode->mode))
		return -EINVAL;
	if (size > RFS_MAX_FILE_SIZE)
		return -EFBIG;
	if (size < inode->size && (size & (bs - 1)))
		ret = file_zero_partial(m->fs, inode, size, (size | (bs - 1)) + 1);
	inode->size = size;
	return ret;
}

static void set_times(struct rfs_inode *inode, const struct stat *attr, int to_set)
{
	struct timespec now;

	clock_gettime(CLOCK_REALTIME, &now);
	if (to_set & FUSE_SET_ATTR_ATIME_NOW)
		inode->atime = now;
	else if (to_set & FUSE_SET_ATTR_ATIME)
		inode->atime = attr->st_atim;
	if (to_set & FUSE_SET_ATTR_MTIME_NOW)
		inode->mtime = now;
	else if (to_set & FUSE_SET_ATTR_MTIME)
		inode->mtime = attr->st_mtim;
	inode->ctime = (to_set & FUSE_SET_ATTR_CTIME) ? attr->st_ctim : now;
}

/*
 * Is this SETATTR the kernel taking set-ID bits off before a write under
 * the write-back cache (file_remove_privs; the WRITE that follows comes
 * from the flusher and names nobody)? It is a mode without a ctime,
 * which chmod always sends with it there (trust_local_cmtime), or no
 * attribute at all when only a set-group-ID without group exec was to go
 * (FUSE's own rule in fuse_setattr keeps that one; the VFS's does not).
 * Without the write-back cache the WRITE or FALLOCATE names the writer.
 */
static int is_kill_privs(const struct rfs_mount *m, const struct rfs_inode *inode, int to_set)
{
	const int other = FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID | FUSE_SET_ATTR_SIZE |
			  FUSE_SET_ATTR_CTIME | FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME |
			  FUSE_SET_ATTR_ATIME_NOW | FUSE_SET_ATTR_MTIME_NOW;

	if (!S_ISREG(inode->mode) || (to_set & other))
		return 0;
	return m->wb_cache && (to_set == 0 || (to_set & FUSE_SET_ATTR_MODE));
}

static int setattr_locked(fuse_req_t req, struct rfs_mount *m, fuse_ino_t ino,
			  const struct stat *attr, int to_set, struct rfs_inode *inode)
{
	int ret = read_inode_locked(m, ino, inode);

	if (ret)
		return ret;
	if (to_set & FUSE_SET_ATTR_MODE)
		inode->mode = (inode->mode & S_IFMT) | (attr->st_mode & 07777);
	if (is_kill_privs(m, inode, to_set))
		kill_privs(req, inode);
	/* chown: the rest came as the mode; the group that decides is the
	 * one before (overlayfs' copy-up chowns as root: nothing goes) */
	if (to_set & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID))
		kill_sgid_mark(req, inode);
	if (to_set & FUSE_SET_ATTR_UID)
		inode->uid = attr->st_uid;
	if (to_set & FUSE_SET_ATTR_GID)
		inode->gid = attr->st_gid;
	if (to_set & FUSE_SET_ATTR_SIZE) {
		ret = set_size_locked(m, inode, (uint64_t)attr->st_size);
		if (ret)
			return ret;
		kill_privs(req, inode);
		inode_touch(inode, 1);
	}
	set_times(inode, attr, to_set);
	return inode_write(m->fs, inode);
}

static int reread_inode(struct rfs_mount *m, rfs_ino_t ino, struct rfs_inode *inode)
{
	int ret;

	pthread_mutex_lock(&m->lock);
	ret = read_inode_locked(m, ino, inode);
	pthread_mutex_unlock(&m->lock);
	return ret;
}

/*
 * Before INO shrinks to SIZE: frees its blocks past SIZE, in bounded
 * transactions, while the old size still stands. A crash half-way then
 * leaves holes in the part being cut off (it reads as zeros), never blocks
 * past EOF under a committed smaller size, which a later extension of the
 * file would bring back with their old data.
 */
static int free_before_shrink(fuse_req_t req, struct rfs_mount *m, rfs_ino_t ino, uint64_t size)
{
	uint32_t bs = m->fs->sb.bsize;
	struct rfs_inode inode;
	int ret = reread_inode(m, ino, &inode);

	if (ret || !S_ISREG(inode.mode) || size > inode.size || size > RFS_MAX_FILE_SIZE)
		return ret; /* nothing to free; setattr_locked reports the errors */
	if (size & (bs - 1))
		ret = unshare_zero(req, m, &inode, size,
				   RFS_MIN(inode.size, (size | (bs - 1)) + 1));
	return ret ? ret : range_steps(m, ino, blocks_up(m, size), RFS_MAX_FILE_BLOCKS, 0);
}

static void rfs_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
			struct fuse_file_info *fi)
{
	struct rfs_mount *m = req_mount(req);
	struct itab_entry *e = itab_get(m, ino);
	struct rfs_inode inode;
	struct rfs_handle *h;
	int resize = !!(to_set & FUSE_SET_ATTR_SIZE), ret = 0;

	(void)fi;
	if (resize && e)
		pthread_rwlock_wrlock(&e->io);
	if (resize && attr->st_size >= 0)
		ret = free_before_shrink(req, m, ino, (uint64_t)attr->st_size);
	if (!ret)
		ret = op_begin(m, RFS_META_CREDITS, &h);
	if (!ret)
		ret = op_end(m, h, setattr_locked(req, m, ino, attr, to_set, &inode));
	if (resize && e)
		pthread_rwlock_unlock(&e->io);
	if (ret)
		return reply_error(req, m, ret, "setattr", ino);
	reply_attr(req, m, &inode);
}

/* --- open, create, release ----------------------------------------------------- */

static int is_writer(int flags)
{
	return (flags & O_ACCMODE) != O_RDONLY;
}

/* O_TRUNC at open (the kernel leaves it to us: ATOMIC_O_TRUNC). */
static int truncate_at_open(fuse_req_t req, struct rfs_mount *m, fuse_ino_t ino)
{
	struct stat attr = {.st_size = 0};
	struct rfs_inode inode;
	struct rfs_handle *h;
	int ret = free_before_shrink(req, m, ino, 0);

	if (!ret)
		ret = op_begin(m, RFS_META_CREDITS, &h);
	if (!ret)
		ret = op_end(m, h,
			     setattr_locked(req, m, ino, &attr,
					    FUSE_SET_ATTR_SIZE | FUSE_SET_ATTR_MTIME_NOW, &inode));
	return ret;
}

static void open_reply(fuse_req_t req, struct rfs_mount *m, fuse_ino_t ino,
		       struct fuse_file_info *fi, const struct rfs_inode *created)
{
	struct itab_entry *e = itab_get(m, ino);

	if (!e)
		return reply_error(req, m, -ESTALE, "open", ino);
	itab_open(m, e, is_writer(fi->flags));
	fi->fh = (uint64_t)is_writer(fi->flags);
	fi->keep_cache = 1; /* only we write to the image */
	if (created) {
		struct fuse_entry_param ep;
		memset(&ep, 0, sizeof(ep));
		ep.ino = created->ino;
		ep.generation = created->generation;
		ep.attr_timeout = ep.entry_timeout = m->timeout;
		rfs_fill_stat(m, created, &ep.attr);
		if (fuse_reply_create(req, &ep, fi) != 0) {
			itab_close(m, e, is_writer(fi->flags));
			itab_forget(m, ino, 1);
		}
		return;
	}
	if (fuse_reply_open(req, fi) != 0)
		itab_close(m, e, is_writer(fi->flags));
}

static void rfs_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct rfs_mount *m = req_mount(req);
	struct itab_entry *e = itab_get(m, ino);
	struct rfs_inode inode;
	int ret;

	pthread_mutex_lock(&m->lock);
	ret = read_inode_locked(m, ino, &inode);
	pthread_mutex_unlock(&m->lock);
	if (!ret && S_ISDIR(inode.mode))
		ret = -EISDIR;
	/* as the kernel does for local filesystems: O_TRUNC truncates a
	 * regular file whatever the access mode (permission was checked) */
	if (!ret && (fi->flags & O_TRUNC) && S_ISREG(inode.mode) && e) {
		pthread_rwlock_wrlock(&e->io);
		ret = truncate_at_open(req, m, ino);
		pthread_rwlock_unlock(&e->io);
	}
	if (ret)
		return reply_error(req, m, ret, "open", ino);
	open_reply(req, m, ino, fi, NULL);
}

static void rfs_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		       struct fuse_file_info *fi)
{
	struct rfs_mount *m = req_mount(req);
	struct node_args a = {S_IFREG | (mode & 07777), 0, NULL};
	struct rfs_inode inode;
	int ret = rfs_make_node(req, parent, name, &a, &inode);

	if (ret)
		return reply_error(req, m, ret, "create", parent);
	if (!itab_ref(m, inode.ino, 1))
		return reply_error(req, m, -ENOMEM, "create", parent);
	open_reply(req, m, inode.ino, fi, &inode);
}

static void rfs_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct rfs_mount *m = req_mount(req);
	struct itab_entry *e = itab_get(m, ino);

	int gone = e ? itab_close(m, e, (int)fi->fh) : 0;

	if (gone == 2) {
		free_orphan(m, ino);
	} else if (e && fi->fh && !gone) {
		/* the last writer gone: staged CoW blocks will not be written */
		pthread_rwlock_wrlock(&e->io);
		if (e->nwrite == 0)
			rfs_cancel_staging(m, ino);
		pthread_rwlock_unlock(&e->io);
	}
	fuse_reply_err(req, 0);
}

static void rfs_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	struct rfs_mount *m = req_mount(req);
	rfs_tid_t before = journal_durable_tid(m->fs);
	int ret = journal_commit(m->fs);

	(void)datasync, (void)fi;
	/* A commit that became durable since we started ended with a flush
	 * after our data was written; with none (nothing to commit, data
	 * overwritten in place) the image still needs one. */
	if (!ret && (!m->fs->journal || journal_durable_tid(m->fs) == before))
		ret = dev_flush(m->fs->dev);
	reply_error(req, m, ret, "fsync", ino);
}

/* --- read --------------------------------------------------------------------- */

static int read_segments(struct rfs_mount *m, const struct rfs_seg *segs, unsigned n, uint64_t off,
			 uint64_t end, uint8_t *buf)
{
	uint32_t log = m->fs->sb.block_log;
	unsigned i;
	int ret = 0;

	for (i = 0; i < n && !ret; i++) {
		uint64_t a = RFS_MAX(off, segs[i].off << log);
		uint64_t b = RFS_MIN(end, (segs[i].off + segs[i].len) << log);
		if (b <= a)
			continue;
		if (!segs[i].pblk)
			memset(buf + (a - off), 0, b - a);
		else
			ret = dev_pread(m->fs->dev, buf + (a - off), b - a,
					((segs[i].pblk - segs[i].off) << log) + a);
	}
	return ret;
}

int rfs_read_data(struct rfs_mount *m, fuse_ino_t ino, uint64_t off, size_t size, uint8_t *buf,
		  size_t *got)
{
	uint32_t log = m->fs->sb.block_log;
	struct rfs_seg segs[32];
	struct rfs_inode inode;
	uint64_t end, pos;
	unsigned n;
	int ret;

	pthread_mutex_lock(&m->lock);
	ret = read_inode_locked(m, ino, &inode);
	pthread_mutex_unlock(&m->lock);
	*got = 0;
	if (ret || off >= inode.size)
		return ret;
	end = RFS_MIN(inode.size, off + size);
	for (pos = off; pos < end && !ret;) {
		fileoff_t first = pos >> log;
		pthread_mutex_lock(&m->lock);
		ret = file_plan_read(m->fs, ino, first, blocks_up(m, end) - first, segs, 32, &n);
		pthread_mutex_unlock(&m->lock);
		if (!ret && n == 0)
			break;
		if (!ret) {
			uint64_t seg_end = RFS_MIN(end, (segs[n - 1].off + segs[n - 1].len) << log);
			ret = read_segments(m, segs, n, pos, seg_end, buf + (pos - off));
			pos = seg_end;
		}
	}
	*got = pos - off;
	return ret;
}

static void rfs_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		     struct fuse_file_info *fi)
{
	struct rfs_mount *m = req_mount(req);
	struct itab_entry *e = itab_get(m, ino);
	uint8_t *buf = malloc(size ? size : 1);
	size_t got = 0;
	int ret;

	(void)fi;
	if (!buf)
		return (void)fuse_reply_err(req, ENOMEM);
	if (e)
		pthread_rwlock_rdlock(&e->io);
	ret = rfs_read_data(m, ino, (uint64_t)off, size, buf, &got);
	if (e)
		pthread_rwlock_unlock(&e->io);
	if (ret)
		reply_error(req, m, ret, "read", ino);
	else
		fuse_reply_buf(req, (const char *)buf, got);
	free(buf);
}

/* --- write --------------------------------------------------------------------- */

/* Fills file bytes [A, B) (within one block) of fresh segment S: from
 * the old data it replaces (a CoW segment), else with zeros. BLK is a
 * block-sized buffer. */
static int fill_partial(struct rfs_mount *m, const struct rfs_seg *s, uint8_t *blk, uint64_t a,
			uint64_t b, uint64_t dev_base)
{
	uint32_t log = m->fs->sb.block_log, bs = m->fs->sb.bsize;
	uint64_t block_start = a & ~(uint64_t)(bs - 1);
	int ret;

	if (s->copy_from) {
		uint64_t old = (s->copy_from + ((a >> log) - s->off)) << log;
		ret = dev_pread(m->fs->dev, blk, bs, old);
		if (ret)
			return ret;
	} else {
		memset(blk, 0, bs);
	}
	return dev_pwrite(m->fs->dev, blk + (a - block_start), b - a, dev_base + a);
}

/* Writes DATA ([OFF, END) of the file) into the planned segments; blocks
 * of fresh segments outside the range are filled (fill_partial). */
static int write_segments(struct rfs_mount *m, const struct rfs_seg *segs, unsigned n, uint64_t off,
			  uint64_t end, const uint8_t *data)
{
	uint32_t log = m->fs->sb.block_log, bs = m->fs->sb.bsize;
	uint8_t *blk = NULL;
	unsigned i;
	int ret = 0;

	for (i = 0; i < n && !ret; i++) {
		const struct rfs_seg *s = &segs[i];
		uint64_t sa = s->off << log, sb = (s->off + s->len) << log;
		uint64_t a = RFS_MAX(off, sa), b = RFS_MIN(end, sb);
		uint64_t dev_base = (s->pblk << log) - sa; /* file byte -> device byte */

		if (s->fresh && (a > sa || b < sb)) {
			if (!blk && !(blk = calloc(1, bs)))
				return -ENOMEM;
			if (a > sa) /* the head block's bytes before the data */
				ret = fill_partial(m, s, blk, a & ~(uint64_t)(bs - 1), a, dev_base);
			if (!ret && b < sb && (b & (bs - 1))) /* the tail block's bytes after */
				ret = fill_partial(m, s, blk, b, (b | (bs - 1)) + 1, dev_base);
		}
		if (!ret)
			ret = dev_pwrite(m->fs->dev, data + (a - off), b - a, dev_base + a);
	}
	free(blk);
	return ret;
}

/* After the data went to CoW staging blocks: remaps them into the data
 * fork, in the write's handle (one transaction with the staging unless
 * a commit came between: then a crash leaves staging, freed at mount). */
static int remap_cow_segments(struct rfs_mount *m, fuse_ino_t ino, const struct rfs_seg *segs,
			      unsigned n)
{
	struct rfs_inode inode;
	unsigned i;
	int ret = 0, any = 0;

	for (i = 0; i < n; i++)
		any |= segs[i].cow;
	if (!any)
		return 0;
	pthread_mutex_lock(&m->lock);
	ret = read_inode_locked(m, ino, &inode);
	if (!ret) {
		uint64_t nblocks = inode.nblocks;
		for (i = 0; i < n && !ret; i++)
			if (segs[i].cow)
				ret = file_cow_remap(m->fs, &inode, &segs[i]);
		ret = inode_write_after(m, &inode, nblocks, ret);
	}
	pthread_mutex_unlock(&m->lock);
	return ret;
}

/*
 * Starts a write step: a handle reserving what BLOCKS blocks of INO may
 * cost, the metadata lock, INODE read. A file that may share blocks needs
 * the CoW reservation and fewer segments per step (*MAX): that is found
 * inside the handle, which then starts over with it, so files that never
 * shared pay no extra lookup; *HINT (the flag as last seen) spares the
 * restart on the next steps and writes. The flag cannot change meanwhile
 * (a clone takes the I/O lock the writer holds). *H is NULL if no handle
 * could be had; otherwise the caller ends it whatever is returned.
 */
static int write_begin(struct rfs_mount *m, fuse_ino_t ino, uint64_t blocks, struct rfs_handle **h,
		       struct rfs_inode *inode, unsigned *max, uint64_t *hint)
{
	uint64_t flags = *hint;
	int ret;

	for (;;) {
		struct rfs_inode kind = {.flags = flags};

		/* no more extents than blocks: small writes reserve little */
		*max = (unsigned)RFS_MIN(blocks, flags ? RFS_COW_WRITE_SEGS : WRITE_SEGS);
		ret = op_begin(m, file_write_credits(m->fs, &kind, *max), h);
		if (ret) {
			*h = NULL;
			return ret;
		}
		ret = read_inode_locked(m, ino, inode);
		if (ret || (inode->flags & RFS_IFLAG_REFLINK) == flags)
			return ret;
		op_end(m, *h, 0); /* nothing done yet */
		flags = *hint = inode->flags & RFS_IFLAG_REFLINK;
	}
}

/* One transaction of a write: plans up to WRITE_SEGS extents from file
 * byte POS, writes their data, then ends the transaction (setting mtime
 * and ctime if TOUCH). *DONE receives how many bytes were written. */
static int write_step(fuse_req_t req, struct rfs_mount *m, fuse_ino_t ino, const uint8_t *data,
		      uint64_t pos, uint64_t end, int touch, uint64_t *done, int *allocated,
		      uint64_t *hint)
{
	uint32_t log = m->fs->sb.block_log;
	struct rfs_seg segs[WRITE_SEGS];
	struct rfs_inode inode, before;
	struct rfs_handle *h;
	uint64_t stop;
	unsigned n = 0, i, max;
	int ret;

	*done = 0;
	ret = write_begin(m, ino, blocks_up(m, end) - (pos >> log), &h, &inode, &max, hint);
	if (!h)
		return ret;
	before = inode;
	if (!ret)
		ret = file_plan_write(m->fs, &inode, pos >> log, blocks_up(m, end) - (pos >> log),
				      segs, max, &n);
	stop = n ? RFS_MIN(end, (segs[n - 1].off + segs[n - 1].len) << log) : pos;
	if (ret) /* a plan that failed part-way may have mapped blocks */
		ret = inode_write_after(m, &inode, before.nblocks, ret);
	if (!ret) {
		if (stop > inode.size)
			inode.size = stop;
		kill_privs(req, &inode);
		if (touch)
			inode_touch(&inode, 1);
		/* an overwrite in place under writeback cache changes nothing:
		 * no record rewrite, no journal traffic */
		if (!inode_same(&before, &inode))
			ret = inode_write(m->fs, &inode);
	}
	for (i = 0; i < n; i++)
		if (segs[i].fresh) {
			txn_set_ordered(h);
			*allocated = 1;
		}
	pthread_mutex_unlock(&m->lock);
	/* Data I/O inside the handle: the transaction mapping fresh blocks
	 * cannot commit before their data is written. */
	if (!ret)
		ret = write_segments(m, segs, n, pos, stop, data);
	if (!ret)
		ret = remap_cow_segments(m, ino, segs, n);
	*done = ret ? 0 : stop - pos;
	return op_stop(h, ret);
}

int rfs_write_data(fuse_req_t req, struct rfs_mount *m, fuse_ino_t ino, struct itab_entry *e,
		   const uint8_t *buf, size_t size, uint64_t off, int touch, uint64_t *written,
		   int *allocated)
{
	uint64_t pos = off, end = off + size, done;
	uint64_t hint = e ? __atomic_load_n(&e->reflink, __ATOMIC_RELAXED) : 0;
	int tries = 0, ret = 0;

	/* as generic_write_checks: nothing at or past the limit, and a write
	 * across it is cut short there */
	*written = 0;
	if (pos >= RFS_MAX_FILE_SIZE && size)
		return -EFBIG;
	if (end > RFS_MAX_FILE_SIZE || end < pos)
		end = RFS_MAX_FILE_SIZE;
	while (pos < end && !ret) {
		ret = write_step(req, m, ino, buf + (pos - off), pos, end, touch, &done, allocated,
				 &hint);
		pos += done;
		if (!ret && done == 0)
			ret = -ENOSPC;
		if (!tries && retry_after_commit(m, ret))
			tries = 1, ret = 0;
	}
	if (e)
		__atomic_store_n(&e->reflink, hint, __ATOMIC_RELAXED);
	*written = pos - off;
	if (pos > off && (ret == -ENOSPC || ret == -EFBIG))
		ret = 0; /* a short write */
	return ret;
}

static void rfs_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
		      struct fuse_file_info *fi)
{
	struct rfs_mount *m = req_mount(req);
	struct itab_entry *e = itab_get(m, ino);
	/* a write-back of cached pages: the kernel keeps mtime and ctime
	 * (from the write calls) and sends them itself; "now" would be later */
	int touch = !(m->wb_cache && fi->writepage);
	int allocated = 0, ret;
	uint64_t written;

	if (e)
		pthread_rwlock_wrlock(&e->io);
	ret = rfs_write_data(req, m, ino, e, (const uint8_t *)buf, size, (uint64_t)off, touch,
			     &written, &allocated);
	if (e)
		pthread_rwlock_unlock(&e->io);
	/* the kernel drops a write-back's error (it surfaces at fsync, if at
	 * all): say it here */
	if (ret && fi->writepage)
		rfs_log(RFS_LOG_WARN, "write-back of inode %llu at %lld failed: %s",
			(unsigned long long)ino, (long long)off, strerror(-ret));
	if (ret)
		return reply_error(req, m, ret, "write", ino);
	fuse_reply_write(req, written);
	/* A write-back of cached pages: the kernel does not refresh the
	 * attributes it holds, whose block count is now stale. */
	if (allocated && fi->writepage)
		fuse_lowlevel_notify_inval_inode(m->se, ino, -1, 0);
}

/* --- fallocate, lseek ---------------------------------------------------------- */

static int punch_locked(struct rfs_mount *m, struct rfs_inode *inode, uint64_t a, uint64_t b)
{
	uint32_t bs = m->fs->sb.bsize;
	uint64_t ha = (a + bs - 1) & ~(uint64_t)(bs - 1), hb = b & ~(uint64_t)(bs - 1);
	int ret = 0;

	if (ha > hb) /* within one block */
		return file_zero_partial(m->fs, inode, a, b);
	if (a < ha)
		ret = file_zero_partial(m->fs, inode, a, ha);
	if (!ret && hb < b)
		ret = file_zero_partial(m->fs, inode, hb, b);
	return ret;
}

/* Frees (or, PREALLOC, preallocates) file blocks [FROM, TO) in bounded
 * transactions. */
static int range_steps(struct rfs_mount *m, fuse_ino_t ino, fileoff_t from, fileoff_t to,
		       int prealloc)
{
	int ret = 0;

	while (!ret && from < to) {
		uint32_t credits =
			prealloc ? file_step_credits(m->fs) : free_step_credits(m, ino, from);
		struct rfs_inode inode;
		struct rfs_handle *h;
		fileoff_t next;

		if (!credits)
			break; /* nothing mapped from FROM on */
		ret = op_begin(m, credits, &h);
		if (ret)
			break;
		ret = read_inode_locked(m, ino, &inode);
		if (!ret) {
			uint64_t nblocks = inode.nblocks;
			if (prealloc)
				ret = file_prealloc(m->fs, &inode, from, to - from, &next);
			else
				ret = file_free_range(m->fs, &inode, from, to - from, &next);
			ret = inode_write_after(m, &inode, nblocks, ret);
		}
		ret = op_end(m, h, ret);
		from = next;
	}
	return ret;
}

/* Updates size (unless KEEP_SIZE) and times after a fallocate. */
static int falloc_finish(fuse_req_t req, struct rfs_mount *m, fuse_ino_t ino, uint64_t end,
			 int keep_size)
{
	struct rfs_inode inode;
	struct rfs_handle *h;
	int ret = op_begin(m, RFS_META_CREDITS, &h);

	if (ret)
		return ret;
	ret = read_inode_locked(m, ino, &inode);
	if (!ret && !keep_size && end > inode.size)
		inode.size = end;
	if (!ret) {
		inode_touch(&inode, 1);
		kill_privs(req, &inode); /* file_modified(), as a write */
		ret = inode_write(m->fs, &inode);
	}
	return op_end(m, h, ret);
}

/* Before a punch or zero-range of [A, B): its partial edge blocks made
 * private if shared (unshare_zero). The edges are those punch_locked
 * zeroes in place, of [A, B) cut at the size: a range past the end has
 * the partial last block as its edge. */
static int unshare_edges(fuse_req_t req, struct rfs_mount *m, fuse_ino_t ino, uint64_t a,
			 uint64_t b)
{
	uint32_t bs = m->fs->sb.bsize;
	struct rfs_inode inode;
	uint64_t ha, hb;
	int ret;

	pthread_mutex_lock(&m->lock);
	ret = read_inode_locked(m, ino, &inode);
	pthread_mutex_unlock(&m->lock);
	if (ret)
		return ret;
	b = RFS_MIN(b, RFS_MAX(inode.size, a));
	ha = (a + bs - 1) & ~(uint64_t)(bs - 1);
	hb = b & ~(uint64_t)(bs - 1);
	if (ha > hb) /* within one block */
		return unshare_zero(req, m, &inode, a, b);
	ret = unshare_zero(req, m, &inode, a, RFS_MIN(ha, b));
	if (!ret)
		ret = unshare_zero(req, m, &inode, RFS_MAX(hb, a), b);
	return ret;
}

static int do_fallocate(fuse_req_t req, struct rfs_mount *m, fuse_ino_t ino, int mode, uint64_t a,
			uint64_t b)
{
	uint32_t bs = m->fs->sb.bsize, log = m->fs->sb.block_log;
	fileoff_t fa = (a + bs - 1) >> log, fb = b >> log;
	int keep = !!(mode & FALLOC_FL_KEEP_SIZE), ret = 0;
	struct rfs_inode inode;

	if (mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE)) {
		ret = unshare_edges(req, m, ino, a, b);
		if (ret)
			return ret;
		pthread_mutex_lock(&m->lock);
		ret = read_inode_locked(m, ino, &inode);
		if (!ret)
			ret = punch_locked(m, &inode, a, RFS_MIN(b, RFS_MAX(inode.size, a)));
		pthread_mutex_unlock(&m->lock);
		if (!ret && fa < fb)
			ret = range_steps(m, ino, fa, fb, 0);
		if (mode & FALLOC_FL_PUNCH_HOLE)
			return ret ? ret : falloc_finish(req, m, ino, b, 1);
	}
	if (!ret)
		ret = range_steps(m, ino, a >> log, blocks_up(m, b), 1);
	return ret ? ret : falloc_finish(req, m, ino, b, keep);
}

static void rfs_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len,
			  struct fuse_file_info *fi)
{
	struct rfs_mount *m = req_mount(req);
	struct itab_entry *e = itab_get(m, ino);
	int supported = FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE;
	uint64_t a = (uint64_t)off, b = (uint64_t)off + (uint64_t)len;
	int ret = 0;

	(void)fi;
	if ((mode & ~supported) ||
	    ((mode & FALLOC_FL_PUNCH_HOLE) && !(mode & FALLOC_FL_KEEP_SIZE)) ||
	    ((mode & FALLOC_FL_PUNCH_HOLE) && (mode & FALLOC_FL_ZERO_RANGE)))
		return (void)fuse_reply_err(req, EOPNOTSUPP);
	if (off < 0 || len <= 0)
		return (void)fuse_reply_err(req, EINVAL);
	if (b > RFS_MAX_FILE_SIZE || b < a)
		return (void)fuse_reply_err(req, EFBIG);
	if (e)
		pthread_rwlock_wrlock(&e->io);
	ret = do_fallocate(req, m, ino, mode, a, b);
	if (retry_after_commit(m, ret))
		ret = do_fallocate(req, m, ino, mode, a, b);
	if (e)
		pthread_rwlock_unlock(&e->io);
	reply_error(req, m, ret, "fallocate", ino);
}

static void rfs_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence,
		      struct fuse_file_info *fi)
{
	struct rfs_mount *m = req_mount(req);
	struct itab_entry *e = itab_get(m, ino);
	struct rfs_inode inode;
	uint64_t out = 0;
	int ret;

	(void)fi;
	if (whence != SEEK_DATA && whence != SEEK_HOLE)
		return (void)fuse_reply_err(req, EINVAL);
	if (off < 0)
		return (void)fuse_reply_err(req, ENXIO);
	/* With write-back caching the kernel may hold dirty pages (and a
	 * larger size) we have not been sent: have it write them back from
	 * OFF on first. The notification returns once they are written (by
	 * other threads); no lock of ours is held meanwhile. */
	if (m->wb_cache && e && e->nwrite)
		fuse_lowlevel_notify_inval_inode(m->se, ino, off, 0);
	pthread_mutex_lock(&m->lock);
	ret = read_inode_locked(m, ino, &inode);
	if (!ret)
		ret = file_seek(m->fs, ino, inode.size, (uint64_t)off, whence, &out);
	pthread_mutex_unlock(&m->lock);
	if (ret)
		return reply_error(req, m, ret, "lseek", ino);
	fuse_reply_lseek(req, (off_t)out);
}

/* --- statfs, fsyncdir, init, destroy ---------------------------------------------- */

static void rfs_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct rfs_mount *m = req_mount(req);
	const struct rfs_sb_info *sb = &m->fs->sb;
	struct statvfs st;

	(void)ino;
	memset(&st, 0, sizeof(st));
	pthread_mutex_lock(&m->lock);
	st.f_bsize = sb->bsize;
	st.f_frsize = sb->bsize;
	st.f_blocks = sb->block_count;
	st.f_bfree = sb->free_blocks;
	/* what file data can still take (file_data_reserve is for metadata) */
	st.f_bavail = sb->free_blocks > file_data_reserve(m->fs)
			      ? sb->free_blocks - file_data_reserve(m->fs)
			      : 0;
	st.f_files = sb->inode_count + sb->free_blocks;
	st.f_ffree = sb->free_blocks;
	st.f_favail = sb->free_blocks;
	st.f_namemax = RFS_NAME_MAX;
	pthread_mutex_unlock(&m->lock);
	fuse_reply_statfs(req, &st);
}

static void rfs_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	rfs_fsync(req, ino, datasync, fi);
}

static void rfs_init(void *userdata, struct fuse_conn_info *conn)
{
	struct rfs_mount *m = userdata;

	m->wb_cache = m->opts.writeback && (conn->capable & FUSE_CAP_WRITEBACK_CACHE);
	if (m->wb_cache)
		conn->want |= FUSE_CAP_WRITEBACK_CACHE;
	else
		conn->want &= ~(unsigned)FUSE_CAP_WRITEBACK_CACHE;
	conn->max_write = 1u << 20;
	conn->max_readahead = 1u << 20;
	conn->time_gran = 1;
	conn->want &= ~(unsigned)FUSE_CAP_HANDLE_KILLPRIV; /* we clear suid/sgid ourselves */
	rfs_acl_init(conn); /* POSIX ACLs and the umask (ops_xattr.c) */
}

static void rfs_destroy(void *userdata)
{
	struct rfs_mount *m = userdata;

	/* The kernel holds nothing any more: free every orphan, and the CoW
	 * staging no write will use. */
	rfs_reclaim_orphans(m, 1);
	rfs_free_staging(m);
}

void rfs_ops_init(struct fuse_lowlevel_ops *ops)
{
	memset(ops, 0, sizeof(*ops));
	rfs_ops_dir(ops);
	rfs_ops_xattr(ops);
	rfs_ops_reflink(ops);
	ops->init = rfs_init;
	ops->destroy = rfs_destroy;
	ops->getattr = rfs_getattr;
	ops->setattr = rfs_setattr;
	ops->open = rfs_open;
	ops->create = rfs_create;
	ops->release = rfs_release;
	/* No flush: every close would cost a round trip for nothing (writes
	 * report their errors themselves; the kernel checks write-back errors
	 * before it asks, and keeps POSIX locks itself: we have no lock ops).
	 * libfuse answers ENOSYS, after which the kernel stops sending it. */
	ops->fsync = rfs_fsync;
	ops->read = rfs_read;
	ops->write = rfs_write;
	ops->fallocate = rfs_fallocate;
	ops->lseek = rfs_lseek;
	ops->statfs = rfs_statfs;
	ops->fsyncdir = rfs_fsyncdir;
}
