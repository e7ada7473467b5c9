/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fs_create.c - lay out and write a new filesystem.
 *
 * Everything is written through the same layers the daemon uses (cache,
 * trees, allocator), so a freshly made image is exactly what the library
 * would have produced by itself. Only a handful of blocks are written:
 * a 1 TiB sparse image takes milliseconds. The journal region is not
 * zeroed: stale log blocks from an earlier filesystem fail the checksum,
 * which is seeded with the new uuid.
 */
#include "fs_create.h"

#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uuid/uuid.h>

#include "alloc.h"
#include "crc.h"
#include "dir.h"
#include "fs.h"
#include "inode.h"
#include "journal.h"
#include "util.h"

#define MAX_BLOCKS (1ull << 48)

static uint64_t default_journal_blocks(uint64_t n, uint32_t log)
{
	uint64_t bytes = (n << log) / 64;

	bytes = RFS_MAX(bytes, 4ull << 20);
	bytes = RFS_MIN(bytes, 1ull << 30);
	return RFS_MAX(RFS_MIN(bytes >> log, n / 4), 64ull);
}

int fs_geometry(const struct rfs_mkfs_opts *opts, uint64_t dev_size, struct rfs_sb_info *sb,
		char *why, size_t whylen)
{
	uint32_t log = opts->block_log ? opts->block_log : RFS_DEFAULT_BLOCK_LOG;
	uint64_t n, j;
	unsigned i;

	memset(sb, 0, sizeof(*sb));
	if (log < RFS_MIN_BLOCK_LOG || log > RFS_MAX_BLOCK_LOG) {
		snprintf(why, whylen, "block size must be a power of two from 1024 to 65536");
		return -EINVAL;
	}
	n = opts->block_count ? opts->block_count : dev_size >> log;
	if (n > (dev_size >> log)) {
		snprintf(why, whylen, "%" PRIu64 " blocks do not fit on the device (%" PRIu64 ")",
			 n, dev_size >> log);
		return -EINVAL;
	}
	if (n < RFS_MIN_BLOCKS || n > MAX_BLOCKS) {
		snprintf(why, whylen,
			 "a filesystem needs %u to %llu blocks of %u bytes; this one would have "
			 "%" PRIu64,
			 RFS_MIN_BLOCKS, MAX_BLOCKS, 1u << log, n);
		return -EINVAL;
	}
	j = opts->journal_bytes ? opts->journal_bytes >> log : default_journal_blocks(n, log);
	if (j < 64 || j > n / 4 || j > UINT32_MAX) {
		snprintf(why, whylen,
			 "journal of %" PRIu64 " blocks: must be 64 blocks to a quarter "
			 "of the filesystem (%" PRIu64 " blocks)",
			 j, n / 4);
		return -EINVAL;
	}
	sb->block_log = log;
	sb->bsize = 1u << log;
	sb->block_count = n;
	sb->journal_start = 2;
	sb->journal_blocks = j;
	sb->freelist_blkno = 1;
	for (i = 0; i < RFS_NR_BACKUPS; i++)
		sb->backup[i] = sb_backup_location(n, i);
	if (opts->have_uuid)
		memcpy(sb->uuid, opts->uuid, sizeof(sb->uuid));
	else
		uuid_generate(sb->uuid);
	snprintf(sb->label, sizeof(sb->label), "%s", opts->label);
	sb->next_ino = RFS_ROOT_INO;
	sb->next_generation = 1;
	sb->root_ino = RFS_ROOT_INO;
	sb->lost_found_ino = RFS_LOST_FOUND_INO;
	sb->last_tid = 1;
	sb->mkfs_time = sb->write_time = (uint64_t)time(NULL);
	sb->hash_seed = rfs_get_le64(sb->uuid + 8);
	sb->feat_ro_compat = RFS_FEAT_RO_COMPAT_REFLINK;
	sb->feat_incompat = opts->no_inline_fork ? 0 : RFS_FEAT_INCOMPAT_INLINE_FORK;
	return 0;
}

static int make_dir(struct rfs_fs *fs, rfs_ino_t parent, uint32_t perm, uint32_t nlink,
		    rfs_ino_t expect)
{
	struct rfs_inode inode;

	inode_init_new(fs, &inode, S_IFDIR | perm, (uint32_t)getuid(), (uint32_t)getgid());
	if (inode.ino != expect)
		return -EINVAL;
	inode.nlink = nlink;
	inode.parent = parent ? parent : inode.ino;
	return inode_insert(fs, &inode);
}

/* Lays out free space: the free list reserve right after the journal,
 * then everything that is not a static block. */
static int create_free_space(struct rfs_fs *fs)
{
	const struct rfs_sb_info *sb = &fs->sb;
	fsblock_t first = sb->journal_start + sb->journal_blocks;
	uint32_t fl = alloc_freelist_low(fs) * 2;
	fsblock_t mid = sb->backup[0], last = sb->backup[1];
	int ret;

	ret = alloc_create(fs, first, fl);
	if (!ret && mid > first + fl)
		ret = alloc_add_free(fs, first + fl, mid - (first + fl));
	if (!ret && last > mid + 1)
		ret = alloc_add_free(fs, mid + 1, last - (mid + 1));
	return ret;
}

static int create_root(struct rfs_fs *fs)
{
	int ret = make_dir(fs, 0, 0755, 3, RFS_ROOT_INO);

	if (!ret)
		ret = make_dir(fs, RFS_ROOT_INO, 0700, 2, RFS_LOST_FOUND_INO);
	if (!ret)
		ret = dir_add(fs, RFS_ROOT_INO, "lost+found", 10, RFS_LOST_FOUND_INO, DT_DIR, NULL);
	return ret;
}

static int create_all(struct rfs_fs *fs)
{
	int ret = buf_new(fs->cache, 0, &rfs_super_buf_ops, 0, &fs->sb_bp);

	if (!ret)
		ret = fs_trees_init(fs);
	if (!ret)
		ret = journal_format(fs);
	if (!ret)
		ret = create_free_space(fs);
	if (!ret)
		ret = create_root(fs);
	if (!ret) {
		fs->sb.state = RFS_STATE_CLEAN;
		ret = fs_sync(fs);
	}
	if (!ret)
		ret = sb_write_backups(fs->dev, &fs->sb, fs->sb.last_tid);
	if (!ret)
		ret = dev_flush(fs->dev);
	return ret;
}

int fs_create(struct rfs_dev *dev, const struct rfs_mkfs_opts *opts, struct rfs_sb_info *sb,
	      char *why, size_t whylen)
{
	struct rfs_fs fs;
	int ret;

	memset(&fs, 0, sizeof(fs));
	ret = fs_geometry(opts, dev->size, &fs.sb, why, whylen);
	if (ret)
		return ret;
	fs.dev = dev;
	ret = cache_create(dev, fs.sb.block_log, 4u << 20, &fs.cache);
	if (ret)
		return ret;
	cache_set_seed(fs.cache, rfs_crc_seed(fs.sb.uuid));
	fs.cache->cur_tid = fs.sb.last_tid;
	ret = create_all(&fs);
	if (ret)
		snprintf(why, whylen, "writing the new filesystem failed: %s", strerror(-ret));
	buf_release(fs.sb_bp);
	cache_destroy(fs.cache);
	*sb = fs.sb;
	return ret;
}

int fs_probe(struct rfs_dev *dev)
{
	struct rfs_super head;

	if (dev->size < sizeof(head) || dev_pread(dev, &head, sizeof(head), 0))
		return 0;
	return le64_get(head.magic) == RFS_SB_MAGIC;
}
