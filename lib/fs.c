/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fs.c - open, sync and close a filesystem.
 */
#include "fs.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "bmap.h"
#include "crc.h"
#include "dir.h"
#include "inode.h"
#include "journal.h"
#include "refcount.h"
#include "util.h"
#include "xattr.h"

int fs_tree_root_changed(struct rfs_btree *t)
{
	struct rfs_fs *fs = t->priv;

	fs->sb.roots[t->ops->tree_type].blkno = t->root;
	fs->sb.roots[t->ops->tree_type].height = t->height;
	fs_sb_dirty(fs);
	return 0;
}

void fs_sb_dirty(struct rfs_fs *fs)
{
	if (!fs->sb_bp)
		return;
	sb_encode(&fs->sb, fs->sb_bp->data, 0);
	buf_dirty(fs->sb_bp);
}

static int tree_attach(struct rfs_fs *fs, struct rfs_btree *t, const struct rfs_btree_ops *ops)
{
	return btree_init(t, ops, fs->cache, fs->sb.roots[ops->tree_type].blkno,
			  fs->sb.roots[ops->tree_type].height, ops->tree_type, fs);
}

int fs_trees_init(struct rfs_fs *fs)
{
	int ret = tree_attach(fs, &fs->bno, &rfs_bno_ops);

	if (!ret)
		ret = tree_attach(fs, &fs->cnt, &rfs_cnt_ops);
	if (!ret)
		ret = tree_attach(fs, &fs->inodes, &rfs_inode_ops);
	if (!ret)
		ret = tree_attach(fs, &fs->dirs, &rfs_dir_ops);
	if (!ret)
		ret = tree_attach(fs, &fs->bmap, &rfs_bmap_ops);
	if (!ret)
		ret = tree_attach(fs, &fs->xattrs, &rfs_xattr_ops);
	if (!ret)
		ret = tree_attach(fs, &fs->refc, &rfs_refc_ops);
	fs->fl_capacity = (fs->sb.bsize - (uint32_t)sizeof(struct rfs_freelist)) / 8;
	return ret;
}

static int fs_setup(struct rfs_fs *fs, size_t cache_bytes, char *why, size_t whylen)
{
	const char *feat = sb_unsupported_feature(&fs->sb, !fs->readonly);
	int ret;

	if (feat) {
		snprintf(why, whylen, "unsupported %s", feat);
		return -EOPNOTSUPP;
	}
	ret = cache_create(fs->dev, fs->sb.block_log, cache_bytes, &fs->cache);
	if (ret)
		return ret;
	cache_set_seed(fs->cache, rfs_crc_seed(fs->sb.uuid));
	fs->cache->cur_tid = fs->sb.last_tid;
	ret = buf_read(fs->cache, 0, &rfs_super_buf_ops, &fs->sb_bp);
	if (ret && fs->readonly) /* a damaged primary: read-only from a backup */
		ret = 0, fs->sb_bp = NULL;
	if (!ret)
		ret = fs_trees_init(fs);
	if (ret)
		snprintf(why, whylen, "cannot set up the metadata cache or trees: %s",
			 strerror(-ret));
	return ret;
}

int fs_open_with_sb(struct rfs_dev *dev, unsigned flags, size_t cache_bytes,
		    const struct rfs_sb_info *sb, struct rfs_fs **out, char *why, size_t whylen)
{
	struct rfs_fs *fs = calloc(1, sizeof(*fs));
	int ret;

	if (!fs) {
		dev_close(dev);
		return -ENOMEM;
	}
	fs->dev = dev;
	fs->readonly = !!(flags & RFS_FS_RDONLY) || dev->readonly;
	fs->sb = *sb;
	ret = fs_setup(fs, cache_bytes, why, whylen);
	if (ret) {
		buf_release(fs->sb_bp);
		cache_destroy(fs->cache);
		dev_close(dev);
		free(fs);
		return ret;
	}
	*out = fs;
	return 0;
}

/* Replays the log. A read-only open replays into an in-memory overlay so
 * that the image is not written; *DEV then becomes the overlay. */
static int fs_recover(struct rfs_dev **dev, unsigned flags, struct rfs_sb_info *sb,
		      struct rfs_recovery_summary *sum, char *why, size_t whylen)
{
	struct rfs_recovery_info info;
	struct rfs_dev *target = *dev;
	int ret;

	if ((flags & RFS_FS_RDONLY) || (*dev)->readonly) {
		ret = dev_open_overlay(*dev, sb->bsize, &target);
		if (ret)
			return ret;
		*dev = target;
	}
	ret = journal_recover(target, sb, &info);
	if (ret) {
		snprintf(why, whylen, "journal recovery failed: %s", strerror(-ret));
		return ret;
	}
	sum->needed = info.needed;
	sum->transactions = info.transactions;
	sum->blocks_written = info.blocks_written;
	sum->blocks_revoked = info.blocks_revoked;
	snprintf(sum->stop, sizeof(sum->stop), "%s", info.stop);
	if (info.recorded_errno)
		rfs_log(RFS_LOG_WARN,
			"the journal recorded a fatal error (%s) before it stopped: "
			"run fsck.reflinkfs",
			strerror((int)info.recorded_errno));
	if (!info.needed)
		return info.recorded_errno ? sb_read_primary(target, sb, why, whylen) : 0;
	rfs_log(RFS_LOG_INFO,
		"journal recovery: %" PRIu64 " transactions replayed (%" PRIu64
		" blocks written, %" PRIu64 " revoked); %s",
		info.transactions, info.blocks_written, info.blocks_revoked, info.stop);
	/* Replay may have rewritten the superblock. */
	return sb_read_primary(target, sb, why, whylen);
}

/* Marks the filesystem mounted in the first transaction. */
static int fs_mark_mounted(struct rfs_fs *fs)
{
	struct rfs_handle *h;
	int ret = txn_start(fs, 1, &h);

	if (ret)
		return ret;
	fs->sb.state &= ~(uint32_t)RFS_STATE_CLEAN;
	fs->sb.mount_count++;
	fs->sb.mount_time = (uint64_t)time(NULL);
	fs_sb_dirty(fs);
	ret = txn_stop(h);
	return ret ? ret : journal_commit(fs);
}

int fs_open(struct rfs_dev *dev, unsigned flags, size_t cache_bytes, struct rfs_fs **out, char *why,
	    size_t whylen)
{
	struct rfs_recovery_summary sum = {0};
	struct rfs_sb_info sb;
	struct rfs_fs *fs;
	int ret = sb_read_primary(dev, &sb, why, whylen);

	if (!ret)
		ret = fs_recover(&dev, flags, &sb, &sum, why, whylen);
	if (ret) {
		dev_close(dev);
		return ret;
	}
	ret = fs_open_with_sb(dev, flags, cache_bytes, &sb, &fs, why, whylen);
	if (ret)
		return ret;
	fs->recovery = sum;
	if (!fs->readonly && !(flags & RFS_FS_NOJOURNAL)) {
		ret = journal_open(fs);
		if (!ret)
			ret = fs_mark_mounted(fs);
		if (ret) {
			snprintf(why, whylen, "cannot start the journal: %s", strerror(-ret));
			fs->readonly = 1; /* write nothing more */
			journal_close(fs);
			fs_close(fs);
			return ret;
		}
	}
	*out = fs;
	return 0;
}

/* Writes the superblock into the log (journaled) or the cache. */
static int fs_sb_commit_state(struct rfs_fs *fs, int clean)
{
	struct rfs_handle *h;
	int ret = txn_start(fs, 1, &h);

	if (ret)
		return ret;
	if (clean)
		fs->sb.state |= RFS_STATE_CLEAN;
	fs->sb.write_time = (uint64_t)time(NULL);
	fs_sb_dirty(fs);
	return txn_stop(h);
}

static int fs_sync_state(struct rfs_fs *fs, int clean)
{
	int ret;

	if (fs->readonly)
		return 0;
	ret = fs_sb_commit_state(fs, clean);
	if (!ret)
		ret = journal_checkpoint(fs); /* no journal: a cache flush */
	/* Backups follow the primary so that a lost block 0 costs little. */
	if (!ret)
		ret = sb_write_backups(fs->dev, &fs->sb, fs->sb.last_tid);
	return ret ? ret : dev_flush(fs->dev);
}

int fs_sync(struct rfs_fs *fs)
{
	return fs_sync_state(fs, 0);
}

int fs_close(struct rfs_fs *fs)
{
	int ret = 0, r;

	if (!fs)
		return 0;
	if (!fs->readonly)
		ret = fs_sync_state(fs, 1);
	r = journal_close(fs);
	if (!ret)
		ret = r;
	buf_release(fs->sb_bp);
	cache_destroy(fs->cache);
	dev_close(fs->dev);
	free(fs->busy.v);
	free(fs);
	return ret;
}
