/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * journal.c - the journal superblock.
 */
#include "journal.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "util.h"

static int jsb_verify(struct rfs_cache *c, const void *data, char *why, size_t whylen)
{
	const struct rfs_journal_sb *j = data;
	uint32_t blocks = le32_get(j->blocks), first = le32_get(j->first),
		 start = le32_get(j->start);

	(void)c;
	if (blocks < 64 || first < 1 || first >= blocks) {
		snprintf(why, whylen, "log geometry %u/%u invalid", first, blocks);
		return -EUCLEAN;
	}
	if (start != 0 && (start < first || start >= blocks)) {
		snprintf(why, whylen, "log start %u outside the ring", start);
		return -EUCLEAN;
	}
	return 0;
}

const struct rfs_buf_ops rfs_journal_sb_buf_ops = {
	.type = RFS_BLK_JOURNAL_SB,
	.name = "journal superblock",
	.verify = jsb_verify,
};

int journal_format(struct rfs_fs *fs)
{
	struct rfs_journal_sb *j;
	struct rfs_buf *bp;
	int ret;

	ret = buf_new(fs->cache, fs->sb.journal_start, &rfs_journal_sb_buf_ops, 0, &bp);
	if (ret)
		return ret;
	j = (struct rfs_journal_sb *)bp->data;
	j->blocks = le32_make((uint32_t)fs->sb.journal_blocks);
	j->first = le32_make(1);
	j->sequence = le64_make(fs->sb.last_tid + 1);
	j->start = 0;
	memcpy(j->uuid, fs->sb.uuid, sizeof(j->uuid));
	buf_release(bp);
	return 0;
}

int journal_sb_read(struct rfs_fs *fs, int *empty, char *why, size_t whylen)
{
	const struct rfs_journal_sb *j;
	struct rfs_buf *bp;
	int ret;

	ret = buf_read(fs->cache, fs->sb.journal_start, &rfs_journal_sb_buf_ops, &bp);
	if (ret) {
		snprintf(why, whylen, "%s", ret == -EBADMSG ? "checksum mismatch"
							     : "bad header or contents");
		return ret;
	}
	j = (const struct rfs_journal_sb *)bp->data;
	if (le32_get(j->blocks) != fs->sb.journal_blocks) {
		snprintf(why, whylen, "log length %u differs from the superblock's %" PRIu64,
			 le32_get(j->blocks), fs->sb.journal_blocks);
		ret = -EUCLEAN;
	} else if (memcmp(j->uuid, fs->sb.uuid, sizeof(j->uuid)) != 0) {
		snprintf(why, whylen, "log belongs to another filesystem (uuid differs)");
		ret = -EUCLEAN;
	}
	*empty = le32_get(j->start) == 0;
	buf_release(bp);
	return ret;
}
