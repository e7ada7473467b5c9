/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * journal.h - the metadata journal: transactions, commit, checkpoint, and
 * three-pass recovery (scan, revoke, replay). jbd2 is the model.
 *
 * Use: every metadata change happens between txn_start() and txn_stop().
 * The blocks it dirties (buf_dirty/buf_new) join the running transaction
 * through the cache hooks; blocks it frees (buf_forget) are revoked. Many
 * handles share one running transaction, which commits atomically:
 * explicitly (journal_commit: fsync, syncfs), every commit interval, when
 * it grows past its limit, when the log runs short of space, and at close.
 *
 * Invariants:
 *  1. A buffer in an uncommitted transaction is held and pinned: the cache
 *     neither evicts it nor writes it home (buf.h).
 *  2. A transaction's log blocks are written and flushed no later than its
 *     commit block; fsync returns only after the flush that follows the
 *     commit block. A transaction marked ordered (it maps newly written
 *     data) also flushes before the commit block, so the data it points to
 *     is durable before the commit can be.
 *  3. Home locations are written only with committed contents.
 *  4. The log tail moves (journal superblock rewritten and flushed) only
 *     after everything before it is durable at home; log space behind the
 *     old tail is reused only after that.
 *  5. Transaction ids only grow, across mounts and recoveries, so stale
 *     log blocks (earlier laps of the ring, torn transactions) never match
 *     the sequence a scan expects.
 */
#ifndef RFS_JOURNAL_H
#define RFS_JOURNAL_H

#include <stdint.h>

#include "dev.h"
#include "fs.h"
#include "super.h"

extern const struct rfs_buf_ops rfs_journal_sb_buf_ops;

struct rfs_journal;
struct rfs_handle;

/* Writes an empty journal superblock (mkfs). */
int journal_format(struct rfs_fs *fs);

/* Reads the journal superblock through the cache; *EMPTY is set if the log
 * holds nothing to replay (start == 0). */
int journal_sb_read(struct rfs_fs *fs, int *empty, char *why, size_t whylen);

/* --- recovery ------------------------------------------------------------ */

struct rfs_recovery_info {
	int needed;		  /* the log was not empty */
	rfs_tid_t start_tid;	  /* first transaction in the log */
	rfs_tid_t end_tid;	  /* first transaction not replayed */
	uint64_t transactions;	  /* replayed */
	uint64_t blocks_written;  /* home blocks written */
	uint64_t blocks_revoked;  /* logged blocks skipped because revoked */
	uint64_t revoke_records;  /* revocations read */
	uint64_t blocks_rejected; /* logged blocks whose home is not valid */
	uint32_t recorded_errno;  /* errno the journal recorded when it failed
				   * (now moved into the superblock), or 0 */
	char stop[160];		  /* why the scan ended */
};

/*
 * Replays the log of the filesystem described by SB on DEV: SCAN finds the
 * last transaction with a valid commit block and valid checksums, REVOKE
 * collects the latest revoking tid of each block, REPLAY writes every
 * logged block that is not revoked at an equal or later tid. Then flushes
 * and empties the log (journal superblock start = 0, sequence past every
 * tid seen). Idempotent: a crash during replay and a second replay give the
 * same image. Writes go to DEV (fsck -n passes an overlay device).
 * -EUCLEAN if the journal superblock itself is unusable.
 */
int journal_recover(struct rfs_dev *dev, const struct rfs_sb_info *sb,
		    struct rfs_recovery_info *info);

/* --- the running journal ----------------------------------------------------- */

struct rfs_journal_stats {
	uint64_t commits, checkpoints, blocks_logged, revokes_logged, log_blocks_written;
	uint64_t forced_by_size, forced_by_space, unhandled_dirties;
};

/* Attaches a journal to an open filesystem (after recovery: the log must be
 * empty). From now on metadata changes must run inside handles. */
int journal_open(struct rfs_fs *fs);
/* Commits, checkpoints (log left empty) and detaches. */
int journal_close(struct rfs_fs *fs);

/* Starts a handle that will dirty at most CREDITS blocks; nests inside a
 * handle this thread already holds. -EROFS after a fatal journal error. */
int txn_start(struct rfs_fs *fs, uint32_t credits, struct rfs_handle **out);
/* Marks the handle's transaction as mapping newly written data (ordered:
 * invariant 2). */
void txn_set_ordered(struct rfs_handle *h);
/* Ends the handle. Returns the journal's error, if any. */
int txn_stop(struct rfs_handle *h);
/* How many blocks the handle (with its nested starts) dirtied or freed. */
uint32_t txn_changed(const struct rfs_handle *h);
/* The handle changed metadata and then failed half-way (corruption found
 * under it): what it changed cannot be undone, so its transaction must
 * never commit. As jbd2_journal_abort: the journal fails with ERR (from
 * now on the filesystem is read-only: txn_start gives -EROFS), nothing
 * uncommitted goes home, and ERR is kept in the journal superblock, where
 * the next recovery finds it and records it in the superblock for fsck.
 * The caller still ends the handle with txn_stop. */
void txn_abort(struct rfs_handle *h, int err);
/* The tid of the transaction the handle belongs to (for fsync tracking). */
rfs_tid_t txn_tid(const struct rfs_handle *h);

/* Commits the running transaction (if it has anything) and waits until it
 * is durable. Concurrent callers share one commit (group commit). */
int journal_commit(struct rfs_fs *fs);
/* Waits until transaction TID is durable, committing it if it is running. */
int journal_commit_tid(struct rfs_fs *fs, rfs_tid_t tid);
/* Commits, writes every committed block home, empties the log. */
int journal_checkpoint(struct rfs_fs *fs);

/* Starts a thread that commits every INTERVAL seconds (0: none). */
int journal_start_timer(struct rfs_fs *fs, unsigned interval);

/* The running transaction's tid, and the last durable one (0, 0 without a
 * journal). A block freed in a transaction > the durable one is "busy". */
rfs_tid_t journal_running_tid(const struct rfs_fs *fs);
rfs_tid_t journal_durable_tid(const struct rfs_fs *fs);

/* The first fatal error (an I/O error in commit or checkpoint), or 0.
 * After one the journal refuses new handles: the filesystem is read-only. */
int journal_error(const struct rfs_fs *fs);
void journal_get_stats(const struct rfs_fs *fs, struct rfs_journal_stats *out);

/* Log geometry helpers, exported for fsck and tests. */
uint32_t journal_tags_per_desc(uint32_t bsize);
uint32_t journal_revokes_per_block(uint32_t bsize);

#endif
