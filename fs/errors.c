/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * errors.c - the one place where a lib error becomes an errno for the
 * kernel. Corruption (EUCLEAN: bad structure, EBADMSG: bad checksum) is
 * logged with the operation and inode, counted in the superblock's error
 * fields, and reported as EIO; after a journal failure (an I/O error in
 * the log, or an operation aborted half-way by corruption: op_stop)
 * everything that would write gets EROFS (the filesystem is read-only, as
 * ext4's errors=remount-ro).
 */
#include <inttypes.h>
#include <string.h>
#include <time.h>

#include "journal.h"
#include "rfs_fuse.h"
#include "util.h"

static void record_error(struct rfs_mount *m, int err)
{
	pthread_mutex_lock(&m->lock);
	sb_note_error(&m->fs->sb, (uint32_t)err, (uint64_t)time(NULL));
	pthread_mutex_unlock(&m->lock);
}

int rfs_errno(struct rfs_mount *m, int err, const char *op, rfs_ino_t ino)
{
	if (err >= 0)
		return 0;
	err = -err;
	if (err == EUCLEAN || err == EBADMSG) {
		rfs_log(RFS_LOG_ERR, "%s on inode %" PRIu64 ": metadata %s; run fsck.reflinkfs", op,
			ino, err == EBADMSG ? "checksum mismatch" : "corruption");
		record_error(m, err);
		return EIO;
	}
	if (err == EIO)
		rfs_log(RFS_LOG_ERR, "%s on inode %" PRIu64 ": I/O error", op, ino);
	if (err == EROFS && journal_error(m->fs))
		return EROFS;
	return err;
}
