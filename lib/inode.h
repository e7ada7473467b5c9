/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * inode.h - inode records in the inode tree.
 *
 * One record per inode, keyed by inode number: struct rfs_dinode followed
 * by up to RFS_INLINE_MAX bytes of inline data (small forks, short symlink
 * targets, small xattrs: defined with the daemon).
 */
#ifndef RFS_INODE_H
#define RFS_INODE_H

#include <stdint.h>
#include <sys/stat.h>

#include "fs.h"

#define RFS_INLINE_MAX 128
_Static_assert(RFS_INLINE_EXTS * sizeof(struct rfs_inline_ext) <= RFS_INLINE_MAX,
	       "inline extents fit the inline area");

extern const struct rfs_btree_ops rfs_inode_ops;

/* The decoded inode. */
struct rfs_inode {
	rfs_ino_t ino;
	uint32_t mode, uid, gid, nlink;
	uint64_t size, nblocks, flags, generation;
	rfs_tid_t tid;
	rfs_ino_t parent;
	uint64_t rdev;
	struct timespec atime, mtime, ctime, btime;
	uint16_t inline_type, inline_len;
	uint8_t inline_data[RFS_INLINE_MAX];
};

/* Encodes INODE into REC (room for sizeof(rfs_dinode) + RFS_INLINE_MAX);
 * returns the record length. */
size_t inode_encode(const struct rfs_inode *inode, uint8_t *rec);
/* Decodes a record; -EUCLEAN if it is malformed. */
int inode_decode(const uint8_t *rec, size_t len, struct rfs_inode *inode);

/* Fills a new inode with the next inode number and generation from the
 * superblock, the given type/mode and owner, all timestamps now. A
 * regular file gets an empty inline data fork when the filesystem has
 * RFS_FEAT_INCOMPAT_INLINE_FORK. */
void inode_init_new(struct rfs_fs *fs, struct rfs_inode *inode, uint32_t mode, uint32_t uid,
		    uint32_t gid);
int inode_insert(struct rfs_fs *fs, const struct rfs_inode *inode);
int inode_read(struct rfs_fs *fs, rfs_ino_t ino, struct rfs_inode *inode);
/*
 * Ownership of the inline area of a REGULAR FILE: it is its data fork
 * (RFS_INLINE_EXTENTS, or NONE when the fork is in the extent tree) and
 * belongs to lib/bmap.c, which reads and writes it in the stored record
 * on every call. A caller's decoded copy may be stale after any bmap
 * call, so on a filesystem with RFS_FEAT_INCOMPAT_INLINE_FORK inode_write
 * keeps the stored inline area of a regular file (type, length and bytes)
 * whatever INODE says; every other field is INODE's. For other file types,
 * or without the feature (no fork is inline), it writes INODE as it is.
 */
int inode_write(struct rfs_fs *fs, const struct rfs_inode *inode);
/* Writes INODE as it is, inline area included: for bmap.c (the owner of
 * a data fork kept inline) and for fsck repairs of the inline area. */
int inode_write_all(struct rfs_fs *fs, const struct rfs_inode *inode);
/* True if A and B would be stored as the same record. */
int inode_same(const struct rfs_inode *a, const struct rfs_inode *b);
/* Removes the inode record (its forks must already be empty). */
int inode_delete(struct rfs_fs *fs, rfs_ino_t ino);
/* Sets ctime (and mtime if MTIME) to now. */
void inode_touch(struct rfs_inode *inode, int mtime);

/* True if MODE's file type is one reflinkfs stores. */
int inode_mode_valid(uint32_t mode);

#endif
