/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * super.h - the superblock: decoded form, encode/decode, primary and
 * backup copies.
 *
 * The superblock is block 0; backups sit at block_count/2 and
 * block_count-1. Reading a copy cannot use the cache (the checksum seed
 * comes from the superblock's own uuid), so sb_read_at() reads raw bytes,
 * takes the uuid, and verifies the crc against it.
 */
#ifndef RFS_SUPER_H
#define RFS_SUPER_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "dev.h"
#include "format.h"

struct rfs_sb_info {
	uint32_t block_log, bsize;
	uint64_t block_count;
	uint8_t uuid[16];
	char label[RFS_LABEL_MAX + 1];
	uint64_t feat_compat, feat_ro_compat, feat_incompat;
	uint32_t state, mount_count;
	fsblock_t journal_start;
	uint64_t journal_blocks;
	fsblock_t backup[RFS_NR_BACKUPS];
	fsblock_t freelist_blkno;
	struct {
		fsblock_t blkno;
		uint32_t height;
	} roots[RFS_TREE_MAX];
	uint64_t free_blocks, inode_count, next_ino, next_generation;
	rfs_ino_t root_ino, lost_found_ino;
	rfs_tid_t last_tid;
	uint64_t mkfs_time, mount_time, write_time, hash_seed;
	uint32_t err_count, err_first_code, err_last_code;
	uint64_t err_first_time, err_last_time;
};

extern const struct rfs_buf_ops rfs_super_buf_ops;

/* Encodes SB into the block image BLOCK (bsize bytes; the header's magic,
 * type and blkno are set; the crc is left to the writer). */
void sb_encode(const struct rfs_sb_info *sb, void *block, fsblock_t blkno);
/* Decodes and range-checks a superblock image (crc not checked here).
 * DEV_SIZE is the device size in bytes, or 0 to skip that check. -EUCLEAN with WHY on any
 * inconsistency. */
int sb_decode(const void *block, uint64_t dev_size, struct rfs_sb_info *sb, char *why,
	      size_t whylen);

/* Reads, checksums and decodes the superblock copy at byte offset OFF.
 * -EBADMSG on a crc mismatch, -EUCLEAN on bad contents, -ENOENT when there
 * is no reflinkfs magic at all. */
int sb_read_at(struct rfs_dev *dev, uint64_t off, struct rfs_sb_info *sb, char *why, size_t whylen);
/* Reads the primary; WHY says what was wrong if it fails. */
int sb_read_primary(struct rfs_dev *dev, struct rfs_sb_info *sb, char *why, size_t whylen);
/* Looks for a valid backup copy when the primary is unusable: tries every
 * block size at the places backups would be for this device size. On
 * success *FOUND_AT is the block number of the copy used. */
int sb_find_backup(struct rfs_dev *dev, struct rfs_sb_info *sb, fsblock_t *found_at);

/* Writes SB to every backup location directly (not through the cache). */
int sb_write_backups(struct rfs_dev *dev, const struct rfs_sb_info *sb, rfs_tid_t tid);
/* Writes SB as the primary (block 0) directly and flushes: fsck restoring
 * a damaged primary from a backup before it opens the filesystem. */
int sb_write_primary(struct rfs_dev *dev, const struct rfs_sb_info *sb, rfs_tid_t tid);

/* Records error ERR (a positive errno) at time NOW in SB's error fields
 * and marks it as needing fsck (RFS_STATE_ERROR). */
void sb_note_error(struct rfs_sb_info *sb, uint32_t err, uint64_t now);

/* The place of backup I for a filesystem of BLOCK_COUNT blocks. */
fsblock_t sb_backup_location(uint64_t block_count, unsigned i);
/* The blocks mkfs lays out and free space never holds: block 0, the free
 * list block, the journal and the backups. */
int sb_is_static_block(const struct rfs_sb_info *sb, uint64_t b);

/* Names the first unsupported incompat / ro_compat bit, or NULL. */
const char *sb_unsupported_feature(const struct rfs_sb_info *sb, int for_write);

#endif
