/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * btree.h - the generic B+tree engine: one implementation, many trees.
 *
 * Each tree supplies a small ops table (key size, record size bounds, key
 * compare, record check, node allocation, root persistence); the engine
 * does lookup, insert, delete, update, cursors and range scans, splits,
 * merges and rebalancing, and a structure checker that fsck reuses.
 *
 * Invariants (checked by btree_check()):
 *  1. All leaves are at level 0 and the root is at level height-1.
 *  2. Within a node, keys are strictly increasing.
 *  3. An internal entry (k_i, c_i): every key in c_i's subtree is >= k_i and
 *     < k_{i+1}. An internal node's first key equals its parent's entry key,
 *     except on the leftmost spine where it is only a lower bound.
 *  4. Every node but the root uses at least min_fill bytes (slots + records):
 *     min_fill = (usable - largest entry) / 2, at least a third of the node.
 *  5. A leaf record's length is within [min_rec, max_rec]; an internal
 *     record is key_size + 8 bytes.
 *
 * Costs: every operation reads O(height) nodes; height is O(log n).
 *
 * Concurrency: the engine does no locking. The caller serialises
 * modifications of one tree against all other access to it. A cursor holds
 * references on its path and is invalidated by any modification of the tree.
 */
#ifndef RFS_BTREE_H
#define RFS_BTREE_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "format.h"

struct rfs_btree;

#define RFS_BTREE_MAX_KEY 32 /* bytes */

struct rfs_btree_ops {
	uint16_t tree_type; /* enum rfs_tree_type, or a test type >= 64 */
	const char *name;
	uint16_t key_size;
	uint16_t min_rec, max_rec; /* leaf record bytes, key included */
	int (*cmp_key)(const void *a, const void *b);
	/* Optional: checks a leaf record's contents; 0 or -EUCLEAN. */
	int (*check_rec)(const void *rec, size_t len, char *why, size_t whylen);
	/* Allocates / frees a node block. HINT is a nearby block. */
	int (*alloc_block)(struct rfs_btree *t, fsblock_t hint, fsblock_t *out);
	int (*free_block)(struct rfs_btree *t, fsblock_t blkno);
	/* Persists t->root and t->height after they changed. */
	int (*root_changed)(struct rfs_btree *t);
};

struct rfs_btree {
	const struct rfs_btree_ops *ops;
	struct rfs_cache *cache;
	fsblock_t root;
	uint32_t height;
	uint64_t owner; /* stamped in node headers */
	void *priv;	/* for the ops */
};

/* Key compares for the common key shapes: one little-endian u64, and two
 * compared in order (most trees' keys are one of these). */
int btree_cmp_le64(const void *a, const void *b);
int btree_cmp_le64x2(const void *a, const void *b);

/* Blocks one record change in tree T may dirty (journal credits): its
 * path, a split of every level (old and new node) plus a new root, or a
 * merge with a sibling at every level. */
static inline uint32_t btree_record_credits(const struct rfs_btree *t)
{
	return 2 * (t->height + 1) + 1;
}

/* The buffer type of every node, whatever the tree. */
extern const struct rfs_buf_ops rfs_btree_buf_ops;

/* Makes OPS known to the node verifier. Returns -EINVAL if OPS cannot
 * work (records too large for the smallest node that may hold them is
 * checked per cache in btree_init). */
int btree_register(const struct rfs_btree_ops *ops);
const struct rfs_btree_ops *btree_ops_for(uint16_t tree_type);

/* Sets up T over CACHE. -EINVAL if the tree's largest record does not fit
 * three to a node of this block size. */
int btree_init(struct rfs_btree *t, const struct rfs_btree_ops *ops, struct rfs_cache *c,
	       fsblock_t root, uint32_t height, uint64_t owner, void *priv);

enum rfs_lookup_mode {
	RFS_LOOKUP_EQ,
	RFS_LOOKUP_LE, /* the last record whose key is <= the key */
	RFS_LOOKUP_GE, /* the first record whose key is >= the key */
};

/* Makes T an empty tree (root 0, height 0, persisted through
 * root_changed) without reading or freeing its nodes: fsck drops a tree it
 * rebuilds this way, and rebuilds the free space knowing those blocks are
 * no longer used. */
int btree_reset(struct rfs_btree *t);

/* Copies the matching record into REC (at most CAP bytes) and sets *LEN to
 * its real length. -ENOENT if there is none. */
int btree_lookup(struct rfs_btree *t, const void *key, enum rfs_lookup_mode mode, void *rec,
		 size_t cap, size_t *len);
/* -EEXIST if a record with the same key exists. */
int btree_insert(struct rfs_btree *t, const void *rec, size_t len);
/* Replaces the record with REC's key; -ENOENT if there is none. */
int btree_update(struct rfs_btree *t, const void *rec, size_t len);
/* -ENOENT if there is no record with KEY. */
int btree_delete(struct rfs_btree *t, const void *key);

struct rfs_btree_cursor {
	struct rfs_btree *t;
	int valid;
	struct {
		struct rfs_buf *bp;
		int idx;
	} path[RFS_BTREE_MAX_HEIGHT]; /* [0] is the root, [height-1] the leaf */
};

void btree_cursor_init(struct rfs_btree_cursor *cur, struct rfs_btree *t);
void btree_cursor_done(struct rfs_btree_cursor *cur);
/* Positions the cursor; -ENOENT leaves it invalid. */
int btree_seek(struct rfs_btree_cursor *cur, const void *key, enum rfs_lookup_mode mode);
int btree_first(struct rfs_btree_cursor *cur);
int btree_last(struct rfs_btree_cursor *cur);
/* Moves one record; -ENOENT past either end (the cursor becomes invalid). */
int btree_next(struct rfs_btree_cursor *cur);
int btree_prev(struct rfs_btree_cursor *cur);
/* The current record, valid until the cursor moves. */
const void *btree_cursor_rec(const struct rfs_btree_cursor *cur, size_t *len);

/* Checker ----------------------------------------------------------- */

struct rfs_btree_check {
	/* All optional. report() gets one line per problem found. */
	void (*report)(void *arg, const struct rfs_btree *t, fsblock_t blkno, const char *msg);
	void (*visit_node)(void *arg, const struct rfs_btree *t, fsblock_t blkno, unsigned level);
	void (*visit_rec)(void *arg, const struct rfs_btree *t, const void *rec, size_t len);
	void *arg;
	/* Results. */
	uint64_t nodes, records, errors;
};

/* Walks the whole tree checking invariants 1-5 and every node's checksum.
 * Returns 0 if no problem was found, -EUCLEAN otherwise; never crashes on
 * a corrupt tree and terminates on cycles (levels strictly decrease). */
int btree_check(struct rfs_btree *t, struct rfs_btree_check *chk);

#endif
