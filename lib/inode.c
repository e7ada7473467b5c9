/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * inode.c - inode record encoding and the inode tree.
 */
#include "inode.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "util.h"

int inode_mode_valid(uint32_t mode)
{
	switch (mode & S_IFMT) {
	case S_IFREG:
	case S_IFDIR:
	case S_IFLNK:
	case S_IFCHR:
	case S_IFBLK:
	case S_IFIFO:
	case S_IFSOCK:
		return (mode & ~(uint32_t)(S_IFMT | 07777)) == 0;
	default:
		return 0;
	}
}

static int inode_check_rec(const void *rec, size_t len, char *why, size_t whylen)
{
	struct rfs_inode inode;

	if (inode_decode(rec, len, &inode)) {
		snprintf(why, whylen, "malformed inode record (%zu bytes)", len);
		return -EUCLEAN;
	}
	if (!inode_mode_valid(inode.mode)) {
		snprintf(why, whylen, "inode %llu has invalid mode 0%o",
			 (unsigned long long)inode.ino, inode.mode);
		return -EUCLEAN;
	}
	return 0;
}

const struct rfs_btree_ops rfs_inode_ops = {
	.tree_type = RFS_TREE_INODE,
	.name = "inodes",
	.key_size = 8,
	.min_rec = sizeof(struct rfs_dinode),
	.max_rec = sizeof(struct rfs_dinode) + RFS_INLINE_MAX,
	.cmp_key = btree_cmp_le64,
	.check_rec = inode_check_rec,
	.alloc_block = alloc_tree_block,
	.free_block = free_tree_block,
	.root_changed = fs_tree_root_changed,
};

static void ts_encode(struct rfs_timestamp *d, const struct timespec *ts)
{
	d->sec = le64_make((uint64_t)ts->tv_sec);
	d->nsec = le32_make((uint32_t)ts->tv_nsec);
	d->pad = 0;
}

static void ts_decode(struct timespec *ts, const struct rfs_timestamp *d)
{
	ts->tv_sec = (time_t)le64_get(d->sec);
	ts->tv_nsec = (long)le32_get(d->nsec);
}

size_t inode_encode(const struct rfs_inode *inode, uint8_t *rec)
{
	struct rfs_dinode d;

	memset(&d, 0, sizeof(d));
	d.ino = le64_make(inode->ino);
	d.mode = le32_make(inode->mode);
	d.uid = le32_make(inode->uid);
	d.gid = le32_make(inode->gid);
	d.nlink = le32_make(inode->nlink);
	d.size = le64_make(inode->size);
	d.nblocks = le64_make(inode->nblocks);
	ts_encode(&d.atime, &inode->atime);
	ts_encode(&d.mtime, &inode->mtime);
	ts_encode(&d.ctime, &inode->ctime);
	ts_encode(&d.btime, &inode->btime);
	d.flags = le64_make(inode->flags);
	d.generation = le64_make(inode->generation);
	d.tid = le64_make(inode->tid);
	d.parent = le64_make(inode->parent);
	d.rdev = le64_make(inode->rdev);
	d.inline_type = le16_make(inode->inline_type);
	d.inline_len = le16_make(inode->inline_len);
	memcpy(rec, &d, sizeof(d));
	memcpy(rec + sizeof(d), inode->inline_data, inode->inline_len);
	return sizeof(d) + inode->inline_len;
}

int inode_decode(const uint8_t *rec, size_t len, struct rfs_inode *inode)
{
	struct rfs_dinode d;

	if (len < sizeof(d))
		return -EUCLEAN;
	memcpy(&d, rec, sizeof(d));
	memset(inode, 0, sizeof(*inode));
	inode->ino = le64_get(d.ino);
	inode->mode = le32_get(d.mode);
	inode->uid = le32_get(d.uid);
	inode->gid = le32_get(d.gid);
	inode->nlink = le32_get(d.nlink);
	inode->size = le64_get(d.size);
	inode->nblocks = le64_get(d.nblocks);
	ts_decode(&inode->atime, &d.atime);
	ts_decode(&inode->mtime, &d.mtime);
	ts_decode(&inode->ctime, &d.ctime);
	ts_decode(&inode->btime, &d.btime);
	inode->flags = le64_get(d.flags);
	inode->generation = le64_get(d.generation);
	inode->tid = le64_get(d.tid);
	inode->parent = le64_get(d.parent);
	inode->rdev = le64_get(d.rdev);
	inode->inline_type = le16_get(d.inline_type);
	inode->inline_len = le16_get(d.inline_len);
	if (inode->inline_len > RFS_INLINE_MAX || len != sizeof(d) + inode->inline_len ||
	    le32_get(d.atime.nsec) >= 1000000000u || le32_get(d.mtime.nsec) >= 1000000000u ||
	    le32_get(d.ctime.nsec) >= 1000000000u || le32_get(d.btime.nsec) >= 1000000000u)
		return -EUCLEAN;
	memcpy(inode->inline_data, rec + sizeof(d), inode->inline_len);
	return 0;
}

void inode_init_new(struct rfs_fs *fs, struct rfs_inode *inode, uint32_t mode, uint32_t uid,
		    uint32_t gid)
{
	struct timespec now;

	clock_gettime(CLOCK_REALTIME, &now);
	memset(inode, 0, sizeof(*inode));
	inode->ino = fs->sb.next_ino++;
	inode->generation = fs->sb.next_generation++;
	inode->mode = mode;
	inode->uid = uid;
	inode->gid = gid;
	inode->nlink = 1;
	inode->tid = fs->cache->cur_tid; /* the transaction making it */
	inode->atime = inode->mtime = inode->ctime = inode->btime = now;
	if (S_ISREG(mode) && (fs->sb.feat_incompat & RFS_FEAT_INCOMPAT_INLINE_FORK))
		inode->inline_type = RFS_INLINE_EXTENTS; /* an empty data fork */
	fs_sb_dirty(fs);
}

int inode_insert(struct rfs_fs *fs, const struct rfs_inode *inode)
{
	uint8_t rec[sizeof(struct rfs_dinode) + RFS_INLINE_MAX];
	size_t len = inode_encode(inode, rec);
	int ret = btree_insert(&fs->inodes, rec, len);

	if (!ret) {
		fs->sb.inode_count++;
		fs_sb_dirty(fs);
	}
	return ret;
}

int inode_read(struct rfs_fs *fs, rfs_ino_t ino, struct rfs_inode *inode)
{
	uint8_t key[8], rec[sizeof(struct rfs_dinode) + RFS_INLINE_MAX];
	size_t len;
	int ret;

	rfs_put_le64(key, ino);
	ret = btree_lookup(&fs->inodes, key, RFS_LOOKUP_EQ, rec, sizeof(rec), &len);
	if (ret)
		return ret;
	return len > sizeof(rec) ? -EUCLEAN : inode_decode(rec, len, inode);
}

int inode_same(const struct rfs_inode *a, const struct rfs_inode *b)
{
	uint8_t ra[sizeof(struct rfs_dinode) + RFS_INLINE_MAX];
	uint8_t rb[sizeof(struct rfs_dinode) + RFS_INLINE_MAX];
	size_t la = inode_encode(a, ra), lb = inode_encode(b, rb);

	return la == lb && !memcmp(ra, rb, la);
}

int inode_delete(struct rfs_fs *fs, rfs_ino_t ino)
{
	uint8_t key[8];
	int ret;

	rfs_put_le64(key, ino);
	ret = btree_delete(&fs->inodes, key);
	if (!ret) {
		fs->sb.inode_count--;
		fs_sb_dirty(fs);
	}
	return ret;
}

void inode_touch(struct rfs_inode *inode, int mtime)
{
	struct timespec now;

	clock_gettime(CLOCK_REALTIME, &now);
	inode->ctime = now;
	if (mtime)
		inode->mtime = now;
}

int inode_write_all(struct rfs_fs *fs, const struct rfs_inode *inode)
{
	uint8_t rec[sizeof(struct rfs_dinode) + RFS_INLINE_MAX];
	size_t len = inode_encode(inode, rec);

	return btree_update(&fs->inodes, rec, len);
}

int inode_write(struct rfs_fs *fs, const struct rfs_inode *inode)
{
	struct rfs_inode stored, merged;
	int ret;

	if (!S_ISREG(inode->mode) || !(fs->sb.feat_incompat & RFS_FEAT_INCOMPAT_INLINE_FORK))
		return inode_write_all(fs, inode);
	ret = inode_read(fs, inode->ino, &stored);
	if (ret)
		return ret; /* -ENOENT as btree_update's */
	merged = *inode;
	merged.inline_type = stored.inline_type;
	merged.inline_len = stored.inline_len;
	memcpy(merged.inline_data, stored.inline_data, stored.inline_len);
	return inode_write_all(fs, &merged);
}
