/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * ops_reflink.c - sharing blocks: copy_file_range as a clone, the mount's
 * own ioctls (extent list, dedupe), and CoW staging left over (freed at
 * last close, unmount and mount).
 *
 * Linux never passes FICLONE to a FUSE server, but cp (coreutils >= 9)
 * falls back to copy_file_range, which reaches us: every whole block of
 * the range is shared, only an unaligned head or tail is copied.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "alloc.h"
#include "bmap.h"
#include "file.h"
#include "ops_common.h"
#include "refcount.h"
#include "rfs_ioctl.h"
#include "util.h"

/* The reply to COPY_FILE_RANGE counts bytes in 32 bits (libfuse before
 * 3.18 truncates larger counts silently): never do more in one call. */
#define COPY_MAX   0xfffff000ull
#define COPY_CHUNK (1u << 20)

/* The I/O locks of a pair of inodes, taken in inode order (the
 * destination exclusively, the source shared; one lock for one inode). */
struct io_pair {
	struct itab_entry *src, *dst;
};

static void pair_lock(struct io_pair *p)
{
	if (p->src == p->dst) {
		pthread_rwlock_wrlock(&p->dst->io);
	} else if (p->src->ino < p->dst->ino) {
		pthread_rwlock_rdlock(&p->src->io);
		pthread_rwlock_wrlock(&p->dst->io);
	} else {
		pthread_rwlock_wrlock(&p->dst->io);
		pthread_rwlock_rdlock(&p->src->io);
	}
}

static void pair_unlock(struct io_pair *p)
{
	pthread_rwlock_unlock(&p->dst->io);
	if (p->src != p->dst)
		pthread_rwlock_unlock(&p->src->io);
}

static int reflink_supported(const struct rfs_mount *m)
{
	return !!(m->fs->sb.feat_ro_compat & RFS_FEAT_RO_COMPAT_REFLINK);
}

/* Frees INO's CoW staging in file blocks [OFF, END), step by step. */
static int cancel_cow_range(struct rfs_mount *m, rfs_ino_t ino, fileoff_t off, fileoff_t end)
{
	struct rfs_fs *fs = m->fs;
	uint32_t credits = file_cancel_credits(fs) + RFS_META_CREDITS;
	struct rfs_inode inode;
	int ret;

	pthread_mutex_lock(&m->lock);
	ret = inode_read(fs, ino, &inode);
	if (!ret && (inode.flags & RFS_IFLAG_REFLINK))
		ret = bmap_any(fs, ino, RFS_FORK_COW, off, end - off);
	pthread_mutex_unlock(&m->lock);
	if (ret <= 0)
		return ret == -ENOENT ? 0 : ret; /* no staging: no handle */
	ret = 0;
	while (!ret && off < end) {
		struct rfs_handle *h;
		fileoff_t next = end;

		ret = op_begin(m, credits, &h);
		if (ret)
			break;
		ret = read_inode_locked(m, ino, &inode);
		if (!ret && (inode.flags & RFS_IFLAG_REFLINK))
			ret = file_cancel_cow(fs, &inode, off, end - off, &next);
		ret = op_end(m, h, ret);
		off = next;
	}
	return ret;
}

/* What a share of blocks does to the destination inode besides mapping. */
struct share_args {
	uint64_t size_end; /* the destination's size grows to at most this */
	int touch;	   /* a copy changes mtime/ctime (a dedupe does not) */
	fuse_req_t req;	   /* the caller: set-ID bits cleared unless root */
};

/* One clone step: up to RFS_CLONE_STEP chunks from source block *OFF. */
static int share_step(struct rfs_mount *m, rfs_ino_t src_ino, rfs_ino_t dst_ino, fileoff_t sblk,
		      fileoff_t dblk, fileoff_t *off, fileoff_t end, const struct share_args *a)
{
	uint32_t log = m->fs->sb.block_log;
	struct rfs_inode src, dst, *sp = &src;
	struct rfs_handle *h;
	fileoff_t next = *off;
	uint64_t reached;
	int ret, w;

	/* a copy into a new file has nothing to unshare: a smaller
	 * reservation, which does not force a commit first */
	pthread_mutex_lock(&m->lock);
	ret = bmap_any(m->fs, dst_ino, RFS_FORK_DATA, dblk + (*off - sblk), end - *off);
	pthread_mutex_unlock(&m->lock);
	if (ret < 0)
		return ret;
	ret = op_begin(m, file_clone_credits(m->fs, ret == 0), &h);

	if (ret)
		return ret;
	ret = read_inode_locked(m, dst_ino, &dst);
	if (!ret && src_ino == dst_ino)
		sp = &dst;
	else if (!ret)
		ret = read_inode_locked(m, src_ino, &src);
	if (!ret)
		ret = file_clone_range(m->fs, sp, *off, &dst, dblk + (*off - sblk), end - *off,
				       &next);
	if (ret && !txn_changed(h))
		return op_end(m, h, ret);
	/* Also after a failure part-way (ENOSPC in a later chunk): what was
	 * shared commits, so both inodes must say so (reflink flags, block
	 * count). The size follows every step: nothing is mapped past it
	 * after a crash. */
	reached = RFS_MIN(a->size_end, (dblk + (next - sblk)) << log);
	if (reached > dst.size)
		dst.size = reached;
	if (a->touch) {
		inode_touch(&dst, 1);
		kill_privs(a->req, &dst);
	}
	w = sp != &dst ? inode_write(m->fs, sp) : 0;
	if (!w)
		w = inode_write(m->fs, &dst);
	ret = op_end(m, h, ret ? ret : w);
	*off = next;
	return ret;
}

/* Shares source blocks [SBLK, SBLK+N) into the destination at DBLK. The
 * caller holds both I/O locks. */
static int share_blocks(struct rfs_mount *m, rfs_ino_t src_ino, fileoff_t sblk, rfs_ino_t dst_ino,
			fileoff_t dblk, extlen_t n, const struct share_args *a)
{
	fileoff_t off = sblk;
	int ret = cancel_cow_range(m, dst_ino, dblk, dblk + n);

	while (!ret && off < sblk + n)
		ret = share_step(m, src_ino, dst_ino, sblk, dblk, &off, sblk + n, a);
	return ret;
}

/* Copies LEN bytes through the read and write paths; *DONE: how many. */
static int copy_bytes(fuse_req_t req, struct rfs_mount *m, rfs_ino_t src, uint64_t soff,
		      rfs_ino_t dst, uint64_t doff, uint64_t len, uint64_t *done)
{
	uint8_t *buf = len ? malloc(RFS_MIN(len, (uint64_t)COPY_CHUNK)) : NULL;
	int allocated = 0, ret = 0;

	*done = 0;
	if (len && !buf)
		return -ENOMEM;
	while (!ret && *done < len) {
		size_t want = (size_t)RFS_MIN(len - *done, (uint64_t)COPY_CHUNK), got = 0;
		uint64_t written = 0;

		ret = rfs_read_data(m, src, soff + *done, want, buf, &got);
		if (!ret && got)
			ret = rfs_write_data(req, m, dst, NULL, buf, got, doff + *done, 1, &written,
					     &allocated);
		*done += written;
		if (!ret && (got < want || written < got))
			break; /* the source ended, or the disk is full */
	}
	free(buf);
	return ret;
}

static int read_two(struct rfs_mount *m, rfs_ino_t a, struct rfs_inode *ia, rfs_ino_t b,
		    struct rfs_inode *ib)
{
	int ret;

	pthread_mutex_lock(&m->lock);
	ret = inode_read(m->fs, a, ia);
	if (!ret)
		ret = inode_read(m->fs, b, ib);
	pthread_mutex_unlock(&m->lock);
	return ret;
}

/*
 * copy_file_range of LEN bytes (already clipped to the source's end):
 * when source and destination offsets are equal modulo the block size,
 * the whole blocks between are shared, and so is a partial last block
 * when the range runs to the source's end and reaches the destination's
 * end (its bytes past the end are zeros in both). The rest is copied.
 * SRC_SIZE and DST_SIZE: the sizes when the caller took the I/O locks (the
 * head copy may raise the destination's to DOFF + head at most, which does
 * not change whether DOFF + LEN reaches it).
 */
static int clone_or_copy(fuse_req_t req, struct rfs_mount *m, rfs_ino_t src, uint64_t soff,
			 rfs_ino_t dst, uint64_t doff, uint64_t len, uint64_t src_size,
			 uint64_t dst_size, uint64_t *done)
{
	uint32_t bs = m->fs->sb.bsize, log = m->fs->sb.block_log;
	uint64_t head, nblk, tail, part;
	struct share_args a;
	int ret;

	*done = 0;
	if (!reflink_supported(m) || (soff & (bs - 1)) != (doff & (bs - 1)))
		return copy_bytes(req, m, src, soff, dst, doff, len, done);
	head = (soff & (bs - 1)) ? RFS_MIN(len, bs - (soff & (bs - 1))) : 0;
	ret = copy_bytes(req, m, src, soff, dst, doff, head, done);
	if (ret || *done < head)
		return ret;
	nblk = (len - head) >> log;
	tail = (len - head) & (bs - 1);
	if (tail && soff + len == src_size && doff + len >= dst_size) {
		nblk++; /* the source's partial last block, shared too */
		tail = 0;
	}
	if (nblk) {
		a = (struct share_args){doff + len - tail, 1, req};
		ret = share_blocks(m, src, (soff + head) >> log, dst, (doff + head) >> log, nblk,
				   &a);
		if (ret)
			return ret;
		*done = len - tail;
	}
	ret = copy_bytes(req, m, src, soff + len - tail, dst, doff + len - tail, tail, &part);
	*done += part;
	return ret;
}

static void rfs_copy_file_range(fuse_req_t req, fuse_ino_t ino_in, off_t off_in,
				struct fuse_file_info *fi_in, fuse_ino_t ino_out, off_t off_out,
				struct fuse_file_info *fi_out, size_t len, int flags)
{
	struct rfs_mount *m = req_mount(req);
	struct io_pair p = {itab_get(m, ino_in), itab_get(m, ino_out)};
	uint64_t soff = (uint64_t)off_in, doff = (uint64_t)off_out, done = 0, n;
	uint64_t cap = COPY_MAX & ~(uint64_t)(m->fs->sb.bsize - 1);
	struct rfs_inode si, di;
	int ret;

	(void)fi_in, (void)fi_out;
	if (flags || off_in < 0 || off_out < 0)
		return (void)fuse_reply_err(req, EINVAL);
	if (!p.src || !p.dst)
		return (void)fuse_reply_err(req, EBADF); /* open files are known */
	pair_lock(&p);
	ret = read_two(m, ino_in, &si, ino_out, &di);
	if (!ret && (!S_ISREG(si.mode) || !S_ISREG(di.mode)))
		ret = -EINVAL;
	if (!ret && soff < si.size) {
		n = RFS_MIN(RFS_MIN((uint64_t)len, si.size - soff), cap);
		if (ino_in == ino_out && soff < doff + n && doff < soff + n)
			ret = -EINVAL; /* overlapping ranges of one file */
		else if (doff >= RFS_MAX_FILE_SIZE)
			ret = -EFBIG;
		else
			ret = clone_or_copy(req, m, ino_in, soff, ino_out, doff,
					    RFS_MIN(n, RFS_MAX_FILE_SIZE - doff), si.size, di.size,
					    &done);
	}
	pair_unlock(&p);
	if (ret && !done)
		return reply_error(req, m, ret, "copy_file_range", ino_out);
	fuse_reply_write(req, done);
}

/* --- ioctls ------------------------------------------------------------------- */

static int get_extents(struct rfs_mount *m, rfs_ino_t ino, struct rfs_ioc_extents *x)
{
	uint32_t log = m->fs->sb.block_log;
	fileoff_t off = x->start >> log;
	int ret = 0;

	x->count = 0;
	x->done = 0;
	x->block_size = m->fs->sb.bsize;
	pthread_mutex_lock(&m->lock);
	while (x->count < RFS_IOC_EXTENTS_MAX) {
		struct rfs_ioc_extent *o = &x->ext[x->count];
		struct rfs_extent e;
		int shared;

		ret = file_extent_shared(m->fs, ino, off, &e, &shared);
		if (ret == -ENOENT) {
			x->done = 1;
			ret = 0;
			break;
		}
		if (ret)
			break;
		*o = (struct rfs_ioc_extent){e.off << log, e.pblk << log, e.len << log, 0, 0};
		if (shared)
			o->flags |= RFS_IOC_EXTENT_SHARED;
		if (e.flags & RFS_BMAP_UNWRITTEN)
			o->flags |= RFS_IOC_EXTENT_UNWRITTEN;
		x->count++;
		off = e.off + e.len;
	}
	pthread_mutex_unlock(&m->lock);
	x->next = off << log;
	return ret;
}

/* May the caller dedupe into INODE: its owner, or someone allowed to write
 * it (allow_file_dedupe; the kernel's "open for writing" case cannot be
 * told apart here: the tool names the destination by inode number). */
static int may_dedupe_into(fuse_req_t req, struct rfs_mount *m, const struct rfs_inode *inode)
{
	if (fuse_req_ctx(req)->uid == inode->uid)
		return 1;
	return may_write_inode(req, m, inode);
}

/* Compares LEN bytes of both files; 1 if equal. */
static int same_bytes(struct rfs_mount *m, rfs_ino_t a, uint64_t aoff, rfs_ino_t b, uint64_t boff,
		      uint64_t len, int *equal)
{
	uint8_t *x = malloc(COPY_CHUNK), *y = malloc(COPY_CHUNK);
	uint64_t pos = 0;
	int ret = x && y ? 0 : -ENOMEM;

	*equal = 1;
	while (!ret && *equal && pos < len) {
		size_t want = (size_t)RFS_MIN(len - pos, (uint64_t)COPY_CHUNK), ga = 0, gb = 0;
		ret = rfs_read_data(m, a, aoff + pos, want, x, &ga);
		if (!ret)
			ret = rfs_read_data(m, b, boff + pos, want, y, &gb);
		if (!ret && (ga != want || gb != want || memcmp(x, y, want)))
			*equal = 0;
		pos += want;
	}
	free(x);
	free(y);
	return ret;
}

static int dedupe_locked(fuse_req_t req, struct rfs_mount *m, rfs_ino_t src,
			 struct rfs_ioc_dedupe *d)
{
	uint32_t bs = m->fs->sb.bsize, log = m->fs->sb.block_log;
	struct share_args a = {0, 0, NULL};
	struct rfs_inode si, di;
	uint64_t len = d->len, nblk;
	int equal, ret = read_two(m, src, &si, d->dst_ino, &di);

	if (ret)
		return ret;
	if (!S_ISREG(si.mode) || !S_ISREG(di.mode))
		return -EINVAL;
	ret = may_dedupe_into(req, m, &di);
	if (ret <= 0)
		return ret ? ret : -EPERM;
	if (((d->src_off | d->dst_off) & (bs - 1)) || d->src_off > si.size || d->dst_off > di.size)
		return -EINVAL;
	len = RFS_MIN(len, si.size - d->src_off);
	if (d->dst_off + len > di.size)
		return -EINVAL;
	if (src == d->dst_ino && d->src_off < d->dst_off + len && d->dst_off < d->src_off + len)
		return -EINVAL;
	/* a partial last block only where both files end in it */
	if ((len & (bs - 1)) && !(d->src_off + len == si.size && d->dst_off + len == di.size))
		len &= ~(uint64_t)(bs - 1);
	ret = same_bytes(m, src, d->src_off, d->dst_ino, d->dst_off, len, &equal);
	if (ret || !equal) {
		d->status = equal ? 0 : RFS_DEDUPE_DIFFERS;
		return ret;
	}
	nblk = (len + bs - 1) >> log;
	a.size_end = di.size;
	if (nblk)
		ret = share_blocks(m, src, d->src_off >> log, d->dst_ino, d->dst_off >> log, nblk,
				   &a);
	d->bytes = ret ? 0 : len;
	return ret;
}

static int dedupe(fuse_req_t req, struct rfs_mount *m, rfs_ino_t src, struct rfs_ioc_dedupe *d)
{
	struct io_pair p = {itab_get(m, src), itab_get(m, d->dst_ino)};
	int ret;

	d->bytes = 0;
	d->status = 0;
	if (!reflink_supported(m))
		return -EOPNOTSUPP;
	if (!p.src || !p.dst)
		return -ESTALE; /* the tool holds both open: the kernel knows them */
	pair_lock(&p);
	ret = dedupe_locked(req, m, src, d);
	pair_unlock(&p);
	return ret;
}

static void rfs_ioctl(fuse_req_t req, fuse_ino_t ino, unsigned int cmd, void *arg,
		      struct fuse_file_info *fi, unsigned flags, const void *in_buf,
		      size_t in_bufsz, size_t out_bufsz)
{
	struct rfs_mount *m = req_mount(req);
	union {
		struct rfs_ioc_extents x;
		struct rfs_ioc_dedupe d;
	} u;
	size_t size = _IOC_SIZE(cmd);
	int ret;

	(void)arg, (void)fi;
	if (flags & FUSE_IOCTL_COMPAT)
		return (void)fuse_reply_err(req, ENOTTY); /* 32-bit callers: layouts differ */
	if ((cmd != RFS_IOC_GET_EXTENTS && cmd != RFS_IOC_DEDUPE) || in_bufsz < size ||
	    out_bufsz < size)
		return (void)fuse_reply_err(req, ENOTTY);
	memcpy(&u, in_buf, size);
	if (cmd == RFS_IOC_GET_EXTENTS)
		ret = get_extents(m, ino, &u.x);
	else
		ret = dedupe(req, m, ino, &u.d);
	if (ret)
		return reply_error(req, m, ret, "ioctl", ino);
	fuse_reply_ioctl(req, 0, &u, size);
}

/* --- staging left over --------------------------------------------------------- */

/* Frees a staging extent no CoW fork maps (the record alone, corrupt). */
static int free_lone_staging(struct rfs_mount *m, fsblock_t start, extlen_t len)
{
	struct rfs_handle *h;
	int ret = op_begin(m, RFS_META_CREDITS + alloc_credits(m->fs), &h);

	if (ret)
		return ret;
	return op_end(m, h, file_free_staging(m->fs, start, len));
}

int rfs_cancel_staging(struct rfs_mount *m, rfs_ino_t ino)
{
	return cancel_cow_range(m, ino, 0, RFS_MAX_FILE_BLOCKS);
}

int rfs_free_staging(struct rfs_mount *m)
{
	uint64_t before = m->fs->sb.free_blocks, files = 0;
	fsblock_t from = 0;
	int ret = 0;

	while (!ret) {
		fsblock_t start;
		extlen_t len;
		rfs_ino_t owner;

		pthread_mutex_lock(&m->lock);
		ret = refc_cow_next(m->fs, from, &start, &len, &owner);
		pthread_mutex_unlock(&m->lock);
		if (ret == -ENOENT) {
			ret = 0;
			break;
		}
		if (ret)
			break;
		from = start + len;
		/* the owner's whole CoW fork goes, this extent with it */
		ret = cancel_cow_range(m, owner, 0, RFS_MAX_FILE_BLOCKS);
		if (!ret) {
			pthread_mutex_lock(&m->lock);
			ret = refc_cow_next(m->fs, start, &start, &len, &owner);
			pthread_mutex_unlock(&m->lock);
			if (ret == 0 && start < from) /* no fork maps it */
				ret = free_lone_staging(m, start, len);
			else if (ret == -ENOENT || ret == 0)
				ret = 0;
		}
		files++;
	}
	if (m->fs->sb.free_blocks > before)
		rfs_log(RFS_LOG_INFO, "freed %llu CoW staging block(s) of %llu file(s)",
			(unsigned long long)(m->fs->sb.free_blocks - before),
			(unsigned long long)files);
	return ret;
}

void rfs_ops_reflink(struct fuse_lowlevel_ops *ops)
{
	ops->copy_file_range = rfs_copy_file_range;
	ops->ioctl = rfs_ioctl;
}
