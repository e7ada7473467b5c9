/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * buf.h - the metadata buffer cache.
 *
 * Sits on the device layer. Holds whole metadata blocks in a fixed memory
 * budget with LRU replacement. Every block that enters the cache from disk
 * passes a verifier: header (magic, type, own block number), checksum, then
 * the block type's own structure check. Every block that leaves for disk is
 * structure-checked again and re-checksummed.
 *
 * With a journal attached (hooks), a buffer in an uncommitted transaction
 * is held (refs) and pinned (jpins): it is neither evicted nor written home
 * until its transaction has committed.
 *
 * Invariants:
 *  1. A block number has at most one buffer in the cache.
 *  2. A buffer with refs > 0 is never evicted or reused.
 *  3. A dirty buffer is written only by cache_flush(), buf_write(), or by
 *     eviction when the cache allows write-back on eviction. With a
 *     journal, buffers of uncommitted transactions are held and pinned, so
 *     only committed contents are ever written home; after a fatal journal
 *     error the journal turns write-back on eviction off.
 *  4. Disk I/O is done without holding the cache lock; a buffer being read
 *     is marked LOADING and other readers wait for it.
 *
 * The cache is thread-safe; the bytes of a buffer are protected by the
 * layer above (tree locks).
 */
#ifndef RFS_BUF_H
#define RFS_BUF_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "dev.h"
#include "format.h"

struct rfs_cache;
struct rfs_buf;

/* Per block type: structure verifier. Returns 0 or -EUCLEAN, writing a
 * description of the first failed check into WHY. */
struct rfs_buf_ops {
	uint16_t type; /* enum rfs_blk_type */
	const char *name;
	int (*verify)(struct rfs_cache *c, const void *data, char *why, size_t whylen);
};

enum rfs_buf_flags {
	RFS_BUF_DIRTY = 1u << 0,
	RFS_BUF_LOADING = 1u << 1,
	RFS_BUF_WRITEBACK = 1u << 2, /* being written back by eviction */
	RFS_BUF_FORGOTTEN = 1u << 3, /* block freed while referenced: dropped at release */
};

/* Set by the journal: told of every buffer made dirty and every block
 * forgotten (freed), so that it can add the buffer to the running
 * transaction or revoke the block. Called without the cache lock. */
struct rfs_cache_hooks {
	void (*dirty)(void *arg, struct rfs_buf *bp);
	void (*forget)(void *arg, fsblock_t blkno);
};

struct rfs_buf {
	fsblock_t blkno;
	uint8_t *data;
	const struct rfs_buf_ops *ops;
	struct rfs_cache *cache;
	int refs;
	unsigned flags;
	int load_err;			     /* result of the read, for waiters */
	rfs_tid_t jtid;			     /* journal: last transaction it joined */
	unsigned jpins;			     /* journal: uncommitted transactions holding it */
	struct rfs_buf *hnext;		     /* hash chain */
	struct rfs_buf *lru_prev, *lru_next; /* on the LRU while refs == 0 */
};

struct rfs_cache_stats {
	uint64_t hits, misses, evictions, writes, over_budget;
};

struct rfs_cache {
	struct rfs_dev *dev;
	uint32_t block_log, bsize;
	uint32_t csum_seed;
	rfs_tid_t cur_tid; /* stamped into headers at write */
	size_t max_bufs, nr_bufs, nr_dirty;
	int writeback_on_evict;
	const struct rfs_cache_hooks *hooks;
	void *hook_arg;
	struct rfs_buf **hash;
	size_t hash_mask;
	struct rfs_buf lru; /* sentinel: lru.lru_next is the most recently used */
	pthread_mutex_t lock;
	pthread_cond_t loaded;
	struct rfs_cache_stats stats;
};

/* A cache of at most BUDGET bytes of block data (at least 16 blocks). */
int cache_create(struct rfs_dev *dev, uint32_t block_log, size_t budget, struct rfs_cache **out);
/* Writes nothing: call cache_flush() first if dirty buffers must survive. */
void cache_destroy(struct rfs_cache *c);
void cache_set_seed(struct rfs_cache *c, uint32_t seed);

/* Reads and verifies block BLKNO as a block of OPS's type, taking a
 * reference. -EBADMSG on a checksum mismatch, -EUCLEAN on a bad header or
 * structure (both logged, naming the block), -EIO on a device error. */
int buf_read(struct rfs_cache *c, fsblock_t blkno, const struct rfs_buf_ops *ops,
	     struct rfs_buf **out);
/* A new, zeroed, dirty buffer for BLKNO with its header filled in. The
 * block's old contents are not read. */
int buf_new(struct rfs_cache *c, fsblock_t blkno, const struct rfs_buf_ops *ops, uint64_t owner,
	    struct rfs_buf **out);
void buf_hold(struct rfs_buf *bp);
void buf_release(struct rfs_buf *bp);
void buf_dirty(struct rfs_buf *bp);
/* Drops BLKNO from the cache, dirty or not (the block was freed). A
 * buffer still referenced leaves the hash at once and is freed, unwritten,
 * at its last release. */
void buf_forget(struct rfs_cache *c, fsblock_t blkno);

/* Stamps header, verifies structure, checksums and writes one buffer. */
int buf_write(struct rfs_buf *bp);
/* Writes every dirty, unpinned buffer (in block order) and flushes the
 * device. */
int cache_flush(struct rfs_cache *c);

/* Verifies a raw block image against OPS without the cache (fsck). */
int buf_verify_raw(struct rfs_cache *c, fsblock_t blkno, const struct rfs_buf_ops *ops,
		   const void *data, char *why, size_t whylen);

#endif
