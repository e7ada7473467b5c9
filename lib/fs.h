/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fs.h - an open filesystem: device, cache, superblock and trees.
 *
 * The handle that mkfs, fsck, the daemon and the tests share. Opening
 * reads and checks the superblock, sets the checksum seed, pins block 0 in
 * the cache and attaches every tree to its root.
 */
#ifndef RFS_FS_H
#define RFS_FS_H

#include <stdint.h>

#include "btree.h"
#include "buf.h"
#include "dev.h"
#include "super.h"

struct rfs_journal;

/* What journal recovery did at open (needed == 0: the log was empty). */
struct rfs_recovery_summary {
	int needed;
	uint64_t transactions, blocks_written, blocks_revoked;
	char stop[160];
};

/* Extents freed in transactions not yet durable (alloc.c): not to be
 * reused until they are, or a crash could leave their old owner pointing
 * at blocks something else has overwritten (XFS's busy extents). */
struct rfs_busy {
	fsblock_t start;
	extlen_t len;
	rfs_tid_t tid;
};

struct rfs_busy_set {
	struct rfs_busy *v; /* sorted by start, may overlap */
	size_t n, cap;
};

struct rfs_fs {
	struct rfs_dev *dev;
	struct rfs_cache *cache;
	struct rfs_sb_info sb;
	struct rfs_buf *sb_bp; /* block 0, referenced while open */
	struct rfs_btree bno, cnt, inodes, dirs, bmap, xattrs, refc;
	uint32_t fl_capacity;	     /* entries the free list block holds */
	struct rfs_journal *journal; /* NULL: no journal (mkfs, read-only, fsck) */
	struct rfs_recovery_summary recovery;
	struct rfs_busy_set busy;
	int readonly;
};

enum rfs_fs_flags {
	RFS_FS_RDONLY = 1 << 0,
	/* Write without a journal (fsck repairs, unit tests of single layers).
	 * Recovery still runs first. */
	RFS_FS_NOJOURNAL = 1 << 1,
};

#define RFS_DEFAULT_CACHE (64u << 20)

/* Opens the filesystem on DEV (taking ownership of DEV, also on failure):
 * replays the journal (read-only: into memory, the image is not written),
 * then attaches a journal unless read-only or RFS_FS_NOJOURNAL. WHY
 * receives a message for the user on failure. */
int fs_open(struct rfs_dev *dev, unsigned flags, size_t cache_bytes, struct rfs_fs **out, char *why,
	    size_t whylen);
/* Opens with an already decoded superblock SB (fsck: from a backup when
 * the primary is damaged; the filesystem is then read-only). */
int fs_open_with_sb(struct rfs_dev *dev, unsigned flags, size_t cache_bytes,
		    const struct rfs_sb_info *sb, struct rfs_fs **out, char *why, size_t whylen);
/* Syncs (if writable) and closes everything, the device included. */
int fs_close(struct rfs_fs *fs);
/* Encodes the in-memory superblock into block 0 and marks it dirty. */
void fs_sb_dirty(struct rfs_fs *fs);
/* Writes every dirty block and the superblock, then flushes the device. */
int fs_sync(struct rfs_fs *fs);

/* root_changed op of every tree whose root lives in the superblock. */
int fs_tree_root_changed(struct rfs_btree *t);

/* Attaches the trees to the roots in fs->sb (used by open and create). */
int fs_trees_init(struct rfs_fs *fs);

/* Blocks that belong to no tree and are never free: superblock and
 * backups, free list block, journal. */
int fs_is_static_block(const struct rfs_fs *fs, fsblock_t b);

#endif
