/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * super.c - superblock encode/decode with range checks, backups.
 */
#include "super.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crc.h"
#include "util.h"

fsblock_t sb_backup_location(uint64_t block_count, unsigned i)
{
	return i == 0 ? block_count / 2 : block_count - 1;
}

void sb_encode(const struct rfs_sb_info *sb, void *block, fsblock_t blkno)
{
	struct rfs_super *d = block;
	unsigned i;

	memset(block, 0, sb->bsize);
	d->hdr.magic = le32_make(RFS_BLK_MAGIC);
	d->hdr.type = le16_make(RFS_BLK_SUPER);
	d->hdr.blkno = le64_make(blkno);
	d->hdr.tid = le64_make(sb->last_tid);
	d->magic = le64_make(RFS_SB_MAGIC);
	d->version = le32_make(RFS_FORMAT_VERSION);
	d->block_log = le32_make(sb->block_log);
	d->block_count = le64_make(sb->block_count);
	memcpy(d->uuid, sb->uuid, sizeof(d->uuid));
	memcpy(d->label, sb->label, strnlen(sb->label, sizeof(d->label)));
	d->feat_compat = le64_make(sb->feat_compat);
	d->feat_ro_compat = le64_make(sb->feat_ro_compat);
	d->feat_incompat = le64_make(sb->feat_incompat);
	d->state = le32_make(sb->state);
	d->mount_count = le32_make(sb->mount_count);
	d->journal_start = le64_make(sb->journal_start);
	d->journal_blocks = le64_make(sb->journal_blocks);
	for (i = 0; i < RFS_NR_BACKUPS; i++)
		d->backup[i] = le64_make(sb->backup[i]);
	d->freelist_blkno = le64_make(sb->freelist_blkno);
	for (i = 0; i < RFS_TREE_MAX; i++) {
		d->roots[i].blkno = le64_make(sb->roots[i].blkno);
		d->roots[i].height = le32_make(sb->roots[i].height);
	}
	d->free_blocks = le64_make(sb->free_blocks);
	d->inode_count = le64_make(sb->inode_count);
	d->next_ino = le64_make(sb->next_ino);
	d->next_generation = le64_make(sb->next_generation);
	d->root_ino = le64_make(sb->root_ino);
	d->lost_found_ino = le64_make(sb->lost_found_ino);
	d->last_tid = le64_make(sb->last_tid);
	d->mkfs_time = le64_make(sb->mkfs_time);
	d->mount_time = le64_make(sb->mount_time);
	d->write_time = le64_make(sb->write_time);
	d->hash_seed = le64_make(sb->hash_seed);
	d->err_count = le32_make(sb->err_count);
	d->err_first_code = le32_make(sb->err_first_code);
	d->err_first_time = le64_make(sb->err_first_time);
	d->err_last_time = le64_make(sb->err_last_time);
	d->err_last_code = le32_make(sb->err_last_code);
}

static void sb_decode_fields(const struct rfs_super *d, struct rfs_sb_info *sb)
{
	unsigned i;

	memset(sb, 0, sizeof(*sb));
	sb->block_log = le32_get(d->block_log);
	sb->bsize = 1u << sb->block_log;
	sb->block_count = le64_get(d->block_count);
	memcpy(sb->uuid, d->uuid, sizeof(sb->uuid));
	memcpy(sb->label, d->label, RFS_LABEL_MAX);
	sb->label[RFS_LABEL_MAX] = '\0';
	sb->feat_compat = le64_get(d->feat_compat);
	sb->feat_ro_compat = le64_get(d->feat_ro_compat);
	sb->feat_incompat = le64_get(d->feat_incompat);
	sb->state = le32_get(d->state);
	sb->mount_count = le32_get(d->mount_count);
	sb->journal_start = le64_get(d->journal_start);
	sb->journal_blocks = le64_get(d->journal_blocks);
	for (i = 0; i < RFS_NR_BACKUPS; i++)
		sb->backup[i] = le64_get(d->backup[i]);
	sb->freelist_blkno = le64_get(d->freelist_blkno);
	for (i = 0; i < RFS_TREE_MAX; i++) {
		sb->roots[i].blkno = le64_get(d->roots[i].blkno);
		sb->roots[i].height = le32_get(d->roots[i].height);
	}
	sb->free_blocks = le64_get(d->free_blocks);
	sb->inode_count = le64_get(d->inode_count);
	sb->next_ino = le64_get(d->next_ino);
	sb->next_generation = le64_get(d->next_generation);
	sb->root_ino = le64_get(d->root_ino);
	sb->lost_found_ino = le64_get(d->lost_found_ino);
	sb->last_tid = le64_get(d->last_tid);
	sb->mkfs_time = le64_get(d->mkfs_time);
	sb->mount_time = le64_get(d->mount_time);
	sb->write_time = le64_get(d->write_time);
	sb->hash_seed = le64_get(d->hash_seed);
	sb->err_count = le32_get(d->err_count);
	sb->err_first_code = le32_get(d->err_first_code);
	sb->err_first_time = le64_get(d->err_first_time);
	sb->err_last_time = le64_get(d->err_last_time);
	sb->err_last_code = le32_get(d->err_last_code);
}

#define SAY(...) snprintf(why, whylen, __VA_ARGS__)
#define BAD(...) (SAY(__VA_ARGS__), -EUCLEAN)

int sb_is_static_block(const struct rfs_sb_info *sb, uint64_t b)
{
	unsigned i;

	if (b == 0 || b == sb->freelist_blkno)
		return 1;
	if (b >= sb->journal_start && b < sb->journal_start + sb->journal_blocks)
		return 1;
	for (i = 0; i < RFS_NR_BACKUPS; i++)
		if (b == sb->backup[i])
			return 1;
	return 0;
}

static int sb_check_geometry(const struct rfs_sb_info *sb, uint64_t dev_size, char *why,
			     size_t whylen)
{
	uint64_t n = sb->block_count;
	unsigned i;

	if (n < 512 || n > (1ull << 48))
		return BAD("block count %" PRIu64 " out of range", n);
	if (sb->roots[0].blkno || sb->roots[0].height)
		return BAD("reserved tree slot 0 is not empty");
	if (dev_size && n > (dev_size >> sb->block_log))
		return BAD("block count %" PRIu64 " exceeds the device (%" PRIu64 " blocks)", n,
			   dev_size >> sb->block_log);
	if (sb->journal_start < 2 || sb->journal_blocks < 64 ||
	    sb->journal_start + sb->journal_blocks > n / 2)
		return BAD("journal at %" PRIu64 "+%" PRIu64 " out of range", sb->journal_start,
			   sb->journal_blocks);
	for (i = 0; i < RFS_NR_BACKUPS; i++)
		if (sb->backup[i] != sb_backup_location(n, i))
			return BAD("backup %u at %" PRIu64 ", expected %" PRIu64, i, sb->backup[i],
				   sb_backup_location(n, i));
	if (sb->freelist_blkno == 0 || sb->freelist_blkno >= sb->journal_start)
		return BAD("free list block %" PRIu64 " out of range", sb->freelist_blkno);
	for (i = 1; i < RFS_TREE_MAX; i++) {
		if (sb->roots[i].height > RFS_BTREE_MAX_HEIGHT ||
		    (sb->roots[i].height == 0) != (sb->roots[i].blkno == 0) ||
		    sb->roots[i].blkno >= n)
			return BAD("tree %u root %" PRIu64 " height %u invalid", i,
				   sb->roots[i].blkno, sb->roots[i].height);
		/* Nodes come from free space, which holds no static block: a
		 * root among them says the layout fields are wrong (a journal
		 * that long would be replayed over the trees). */
		if (sb->roots[i].blkno && sb_is_static_block(sb, sb->roots[i].blkno))
			return BAD("tree %u root %" PRIu64 " inside the static blocks (journal "
				   "%" PRIu64 "+%" PRIu64 ")",
				   i, sb->roots[i].blkno, sb->journal_start, sb->journal_blocks);
	}
	if (sb->free_blocks > n)
		return BAD("free block count %" PRIu64 " exceeds the size", sb->free_blocks);
	return 0;
}

int sb_decode(const void *block, uint64_t dev_size, struct rfs_sb_info *sb, char *why,
	      size_t whylen)
{
	const struct rfs_super *d = block;
	uint32_t log = le32_get(d->block_log);

	if (le64_get(d->magic) != RFS_SB_MAGIC)
		return BAD("no reflinkfs magic");
	if (le32_get(d->version) != RFS_FORMAT_VERSION)
		return BAD("format version %u, this program knows %u", le32_get(d->version),
			   RFS_FORMAT_VERSION);
	if (log < RFS_MIN_BLOCK_LOG || log > RFS_MAX_BLOCK_LOG)
		return BAD("block size 2^%u out of range", log);
	sb_decode_fields(d, sb);
	if (sb->root_ino != RFS_ROOT_INO || sb->lost_found_ino != RFS_LOST_FOUND_INO)
		return BAD("root inode %" PRIu64 " / lost+found %" PRIu64 " unexpected",
			   sb->root_ino, sb->lost_found_ino);
	if (sb->next_ino < RFS_FIRST_FREE_INO)
		return BAD("next inode number %" PRIu64 " too small", sb->next_ino);
	return sb_check_geometry(sb, dev_size, why, whylen);
}

static int sb_verify(struct rfs_cache *c, const void *data, char *why, size_t whylen)
{
	struct rfs_sb_info sb;
	return sb_decode(data, c->dev->size, &sb, why, whylen);
}

const struct rfs_buf_ops rfs_super_buf_ops = {
	.type = RFS_BLK_SUPER,
	.name = "superblock",
	.verify = sb_verify,
};

int sb_read_at(struct rfs_dev *dev, uint64_t off, struct rfs_sb_info *sb, char *why, size_t whylen)
{
	uint8_t head[sizeof(struct rfs_super)];
	const struct rfs_super *d = (const void *)head;
	uint8_t *block;
	uint32_t log, bsize;
	int ret;

	if (off + sizeof(head) > dev->size)
		return SAY("beyond the end of the device"), -ENOENT;
	ret = dev_pread(dev, head, sizeof(head), off);
	if (ret)
		return SAY("read error"), ret;
	if (le64_get(d->magic) != RFS_SB_MAGIC || le32_get(d->hdr.magic) != RFS_BLK_MAGIC)
		return SAY("no reflinkfs superblock"), -ENOENT;
	log = le32_get(d->block_log);
	if (log < RFS_MIN_BLOCK_LOG || log > RFS_MAX_BLOCK_LOG)
		return BAD("block size 2^%u out of range", log);
	bsize = 1u << log;
	if (off + bsize > dev->size)
		return BAD("superblock extends beyond the device");
	block = malloc(bsize);
	if (!block)
		return -ENOMEM;
	ret = dev_pread(dev, block, bsize, off);
	if (!ret && rfs_block_check_crc(rfs_crc_seed(d->uuid), block, bsize)) {
		SAY("checksum mismatch");
		ret = -EBADMSG;
	}
	if (!ret && le64_get(((struct rfs_blkhdr *)block)->blkno) != off / bsize)
		ret = BAD("header names block %" PRIu64,
			  le64_get(((struct rfs_blkhdr *)block)->blkno));
	if (!ret && le16_get(((struct rfs_blkhdr *)block)->type) != RFS_BLK_SUPER)
		ret = BAD("wrong block type");
	if (!ret)
		ret = sb_decode(block, dev->size, sb, why, whylen);
	free(block);
	return ret;
}

int sb_read_primary(struct rfs_dev *dev, struct rfs_sb_info *sb, char *why, size_t whylen)
{
	return sb_read_at(dev, 0, sb, why, whylen);
}

int sb_find_backup(struct rfs_dev *dev, struct rfs_sb_info *sb, fsblock_t *found_at)
{
	uint32_t log;
	unsigned i;
	char why[128];

	for (log = RFS_MIN_BLOCK_LOG; log <= RFS_MAX_BLOCK_LOG; log++) {
		uint64_t n = dev->size >> log;
		for (i = 0; i < RFS_NR_BACKUPS && n >= 512; i++) {
			fsblock_t b = sb_backup_location(n, i);
			if (sb_read_at(dev, b << log, sb, why, sizeof(why)) == 0 &&
			    sb->block_log == log) {
				*found_at = b;
				return 0;
			}
		}
	}
	return -ENOENT;
}

/* Writes SB at block BLKNO directly (not through the cache), its header
 * stamped with TID. */
static int sb_write_at(struct rfs_dev *dev, const struct rfs_sb_info *sb, fsblock_t blkno,
		       rfs_tid_t tid)
{
	uint8_t *block = malloc(sb->bsize);
	int ret;

	if (!block)
		return -ENOMEM;
	sb_encode(sb, block, blkno);
	((struct rfs_blkhdr *)block)->tid = le64_make(tid);
	rfs_block_set_crc(rfs_crc_seed(sb->uuid), block, sb->bsize);
	ret = dev_pwrite(dev, block, sb->bsize, blkno << sb->block_log);
	free(block);
	return ret;
}

int sb_write_backups(struct rfs_dev *dev, const struct rfs_sb_info *sb, rfs_tid_t tid)
{
	unsigned i;
	int ret = 0;

	for (i = 0; i < RFS_NR_BACKUPS && !ret; i++)
		ret = sb_write_at(dev, sb, sb->backup[i], tid);
	return ret;
}

int sb_write_primary(struct rfs_dev *dev, const struct rfs_sb_info *sb, rfs_tid_t tid)
{
	int ret = sb_write_at(dev, sb, 0, tid);

	return ret ? ret : dev_flush(dev);
}

void sb_note_error(struct rfs_sb_info *sb, uint32_t err, uint64_t now)
{
	if (!sb->err_count++) {
		sb->err_first_code = err;
		sb->err_first_time = now;
	}
	sb->err_last_code = err;
	sb->err_last_time = now;
	sb->state |= RFS_STATE_ERROR;
}

const char *sb_unsupported_feature(const struct rfs_sb_info *sb, int for_write)
{
	static char name[64];
	uint64_t bad = sb->feat_incompat & ~RFS_FEAT_INCOMPAT_SUPP;

	if (!bad && for_write)
		bad = sb->feat_ro_compat & ~RFS_FEAT_RO_COMPAT_SUPP;
	if (!bad)
		return NULL;
	snprintf(name, sizeof(name), "%s feature bit %d",
		 (sb->feat_incompat & ~RFS_FEAT_INCOMPAT_SUPP) ? "incompat" : "ro_compat",
		 __builtin_ctzll(bad));
	return name;
}
