/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * refcount.h - how many data-fork mappings share each block, and which
 * blocks are CoW staging (RFS_TREE_REFC; docs/FORMAT.md).
 *
 * A block that is allocated and in no shared record has one owner. The
 * tree only records blocks with two or more (domain SHARED, merged runs of
 * equal count) and, in a key space of their own, CoW staging extents
 * (domain COW): blocks allocated for a write into shared blocks and not yet
 * remapped into the data fork. XFS's refcount btree is the model.
 *
 * Changes over a range touch one record per "piece": a maximal run of
 * blocks with one count (a record, or a gap between records). Callers
 * bound their transactions by first clipping a range to a number of pieces
 * (refc_clip) and then changing only that.
 */
#ifndef RFS_REFCOUNT_H
#define RFS_REFCOUNT_H

#include <stdint.h>

#include "fs.h"

extern const struct rfs_btree_ops rfs_refc_ops;

/* A record's length is 32 bits: a longer run of one count takes several
 * records, adjacent with equal counts on purpose. */
#define RFS_REFC_LEN_MAX 0xffffffffull

/* Pieces one adjusting call may be given (refc_clip's usual bound). */
#define RFS_REFC_STEP 4

/* Journal credits of changing up to PIECES pieces (splits and merges of
 * refcount records). A decrement adds alloc_credits() per piece it may
 * free. */
uint32_t refc_credits(const struct rfs_fs *fs, unsigned pieces);

/* The count of block B: 1 if no shared record holds it (the caller knows
 * B is allocated). *RUN receives how many blocks from B on have the same
 * count, at most LIMIT. */
int refc_get(struct rfs_fs *fs, fsblock_t b, extlen_t limit, uint32_t *count, extlen_t *run);

/* The first shared block of [START, START+LEN): *FOUND and the length of
 * the shared run from there (clipped to the range). -ENOENT if none. */
int refc_find_shared(struct rfs_fs *fs, fsblock_t start, extlen_t len, fsblock_t *found,
		     extlen_t *flen);

/* How much of [START, START+LEN) (from START) spans at most MAX_PIECES
 * pieces: *OUT >= 1 for LEN >= 1. */
int refc_clip(struct rfs_fs *fs, fsblock_t start, extlen_t len, unsigned max_pieces, extlen_t *out);

/* Adds one reference to every block of [START, START+LEN) (a clone maps
 * them once more). Blocks must be allocated and not staging. -EMLINK if a
 * count would pass RFS_REFC_MAX (nothing changed then). */
int refc_increment(struct rfs_fs *fs, fsblock_t start, extlen_t len);

/* Called for each run of blocks whose last reference went away. */
typedef int (*rfs_refc_free_fn)(void *arg, fsblock_t start, extlen_t len);

/* Drops one reference from every block of [START, START+LEN); blocks that
 * had one are handed to FREE (which frees them). */
int refc_decrement(struct rfs_fs *fs, fsblock_t start, extlen_t len, rfs_refc_free_fn free_fn,
		   void *arg);

/* Records [START, START+LEN) as CoW staging owned by inode OWNER. */
/* Inserts a SHARED record of COUNT (2..RFS_REFC_MAX) for [START, +LEN)
 * as is, with no merge: for fsck, rebuilding the tree from scratch in
 * block order. */
int refc_shared_add(struct rfs_fs *fs, fsblock_t start, extlen_t len, uint32_t count);
int refc_cow_add(struct rfs_fs *fs, fsblock_t start, extlen_t len, rfs_ino_t owner);
/* Removes [START, START+LEN) from the staging records (remapped or
 * freed), splitting a record if needed. -EUCLEAN if not all staging. */
int refc_cow_remove(struct rfs_fs *fs, fsblock_t start, extlen_t len);

/* A staging extent: the first one that ends after FROM. -ENOENT at the
 * end. */
int refc_cow_next(struct rfs_fs *fs, fsblock_t from, fsblock_t *start, extlen_t *len,
		  rfs_ino_t *owner);

/* A shared record: the first one that ends after FROM (fsck, the usage
 * report, tests). -ENOENT at the end. */
int refc_shared_next(struct rfs_fs *fs, fsblock_t from, fsblock_t *start, extlen_t *len,
		     uint32_t *count);

#endif
