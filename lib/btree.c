/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * btree.c - the generic B+tree engine (see btree.h for the invariants).
 *
 * Nodes are slotted pages (format.h). Every structural change is built the
 * same way: gather the records of the node(s) involved into a list of
 * references into a private copy, then rebuild the node(s) from the list.
 * Split, merge and rebalance are thus one function each on top of
 * node_build() and split_point().
 *
 *   split:      [a b c d e] + x   ->  [a b c] [x d e]   (parent gets x's key)
 *   merge:      [a b] [c]         ->  [a b c]           (parent loses c's entry)
 *   rebalance:  [a] [b c d e]     ->  [a b c] [d e]     (parent key becomes d)
 */
#include "btree.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define NODE_HDR  sizeof(struct rfs_btree_node)
#define SLOT_SIZE sizeof(struct rfs_btree_slot)
#define PTR_SIZE  8u

static const struct rfs_btree_ops *registry[256];

int btree_register(const struct rfs_btree_ops *ops)
{
	if (ops->tree_type == 0 || ops->tree_type >= RFS_ARRAY_SIZE(registry) ||
	    ops->key_size == 0 || ops->key_size > RFS_BTREE_MAX_KEY ||
	    ops->min_rec < ops->key_size || ops->max_rec < ops->min_rec || !ops->cmp_key)
		return -EINVAL;
	registry[ops->tree_type] = ops;
	return 0;
}

int btree_cmp_le64(const void *a, const void *b)
{
	uint64_t x = rfs_get_le64(a), y = rfs_get_le64(b);
	return x < y ? -1 : x > y;
}

int btree_cmp_le64x2(const void *a, const void *b)
{
	int c = btree_cmp_le64(a, b);
	return c ? c : btree_cmp_le64((const uint8_t *)a + 8, (const uint8_t *)b + 8);
}

const struct rfs_btree_ops *btree_ops_for(uint16_t tree_type)
{
	return tree_type < RFS_ARRAY_SIZE(registry) ? registry[tree_type] : NULL;
}

/* --- node accessors ------------------------------------------------- */

static struct rfs_btree_node *node_hdr(const uint8_t *d)
{
	return (struct rfs_btree_node *)d;
}

static unsigned node_nrecs(const uint8_t *d)
{
	return le16_get(node_hdr(d)->nrecs);
}

static unsigned node_level(const uint8_t *d)
{
	return le16_get(node_hdr(d)->level);
}

static struct rfs_btree_slot *node_slot(const uint8_t *d, unsigned i)
{
	return (struct rfs_btree_slot *)(d + NODE_HDR) + i;
}

static uint8_t *node_rec(const uint8_t *d, unsigned i, unsigned *len)
{
	const struct rfs_btree_slot *s = node_slot(d, i);
	if (len)
		*len = le16_get(s->len);
	return (uint8_t *)d + le16_get(s->off);
}

static fsblock_t node_child(const struct rfs_btree *t, const uint8_t *d, unsigned i)
{
	return rfs_get_le64(node_rec(d, i, NULL) + t->ops->key_size);
}

static size_t usable_bytes(uint32_t bsize)
{
	return bsize - NODE_HDR;
}

static size_t node_used(const uint8_t *d)
{
	unsigned i, n = node_nrecs(d);
	size_t used = 0;

	for (i = 0; i < n; i++)
		used += le16_get(node_slot(d, i)->len) + SLOT_SIZE;
	return used;
}

/* Largest entry (slot included) a node at LEVEL may hold. */
static size_t max_entry(const struct rfs_btree_ops *ops, unsigned level)
{
	return (level ? ops->key_size + PTR_SIZE : ops->max_rec) + SLOT_SIZE;
}

static size_t min_fill(const struct rfs_btree_ops *ops, uint32_t bsize, unsigned level)
{
	return (usable_bytes(bsize) - max_entry(ops, level)) / 2;
}

/* --- node verifier (runs on every read from disk and every write) ---- */

struct span {
	unsigned off, len;
};

static int cmp_span(const void *a, const void *b)
{
	const struct span *x = a, *y = b;
	return x->off < y->off ? -1 : x->off > y->off;
}

static int verify_slots(const uint8_t *d, uint32_t bsize, const struct rfs_btree_ops *ops,
			unsigned level, char *why, size_t whylen)
{
	unsigned n = node_nrecs(d), heap = le32_get(node_hdr(d)->heap_top), i;
	struct span *sp;
	int ret = 0;

	if (heap > bsize || heap < NODE_HDR + n * SLOT_SIZE) {
		snprintf(why, whylen, "heap_top %u out of range for %u records", heap, n);
		return -EUCLEAN;
	}
	sp = malloc((n + 1) * sizeof(*sp));
	if (!sp)
		return -ENOMEM;
	for (i = 0; i < n && !ret; i++) {
		unsigned len;
		sp[i].off = (unsigned)(node_rec(d, i, &len) - d);
		sp[i].len = len;
		if (sp[i].off < heap || sp[i].off + len > bsize) {
			snprintf(why, whylen, "record %u at %u+%u outside the heap", i, sp[i].off,
				 len);
			ret = -EUCLEAN;
		} else if (level ? len != ops->key_size + PTR_SIZE
				 : (len < ops->min_rec || len > ops->max_rec)) {
			snprintf(why, whylen, "record %u has bad length %u", i, len);
			ret = -EUCLEAN;
		}
	}
	if (!ret) {
		qsort(sp, n, sizeof(*sp), cmp_span);
		for (i = 1; i < n && !ret; i++) {
			if (sp[i - 1].off + sp[i - 1].len > sp[i].off) {
				snprintf(why, whylen, "records at %u and %u overlap", sp[i - 1].off,
					 sp[i].off);
				ret = -EUCLEAN;
			}
		}
	}
	free(sp);
	return ret;
}

static int verify_keys(const uint8_t *d, const struct rfs_btree_ops *ops, unsigned level, char *why,
		       size_t whylen)
{
	unsigned n = node_nrecs(d), i;

	for (i = 0; i < n; i++) {
		unsigned len;
		const uint8_t *rec = node_rec(d, i, &len);
		if (i > 0 && ops->cmp_key(node_rec(d, i - 1, NULL), rec) >= 0) {
			snprintf(why, whylen, "keys %u and %u out of order", i - 1, i);
			return -EUCLEAN;
		}
		if (!level && ops->check_rec && ops->check_rec(rec, len, why, whylen))
			return -EUCLEAN;
	}
	return 0;
}

static int btree_node_verify(struct rfs_cache *c, const void *data, char *why, size_t whylen)
{
	const uint8_t *d = data;
	const struct rfs_btree_ops *ops = btree_ops_for(le16_get(node_hdr(d)->tree_type));
	unsigned level = node_level(d);
	int ret;

	if (!ops) {
		snprintf(why, whylen, "unknown tree type %u", le16_get(node_hdr(d)->tree_type));
		return -EUCLEAN;
	}
	if (level >= RFS_BTREE_MAX_HEIGHT) {
		snprintf(why, whylen, "level %u too deep", level);
		return -EUCLEAN;
	}
	ret = verify_slots(d, c->bsize, ops, level, why, whylen);
	return ret ? ret : verify_keys(d, ops, level, why, whylen);
}

const struct rfs_buf_ops rfs_btree_buf_ops = {
	.type = RFS_BLK_BTREE,
	.name = "btree node",
	.verify = btree_node_verify,
};

/* --- node building --------------------------------------------------- */

struct recref {
	const uint8_t *p;
	unsigned len;
};

static void node_init(struct rfs_btree *t, uint8_t *d, unsigned level)
{
	struct rfs_btree_node *h = node_hdr(d);

	h->level = le16_make((uint16_t)level);
	h->nrecs = 0;
	h->tree_type = le16_make(t->ops->tree_type);
	h->heap_top = le32_make(t->cache->bsize);
}

/* Rewrites node D at LEVEL to hold exactly REFS[0..N). REFS must not point
 * into D itself. */
static void node_build(struct rfs_btree *t, uint8_t *d, unsigned level, const struct recref *refs,
		       unsigned n)
{
	unsigned i, heap = t->cache->bsize;

	node_init(t, d, level);
	for (i = 0; i < n; i++) {
		struct rfs_btree_slot *s = node_slot(d, i);
		heap -= refs[i].len;
		memcpy(d + heap, refs[i].p, refs[i].len);
		s->off = le16_make((uint16_t)heap);
		s->len = le16_make((uint16_t)refs[i].len);
	}
	node_hdr(d)->nrecs = le16_make((uint16_t)n);
	node_hdr(d)->heap_top = le32_make(heap);
}

/* Collects references to D's records into REFS (which must have room). */
static unsigned node_refs(const uint8_t *d, struct recref *refs)
{
	unsigned i, n = node_nrecs(d);

	for (i = 0; i < n; i++)
		refs[i].p = node_rec(d, i, &refs[i].len);
	return n;
}

static int node_compact(struct rfs_btree *t, uint8_t *d)
{
	uint32_t bsize = t->cache->bsize;
	uint8_t *copy = malloc(bsize);
	struct recref *refs;
	unsigned n;

	refs = malloc((node_nrecs(d) + 1) * sizeof(*refs));
	if (!copy || !refs) {
		free(copy);
		free(refs);
		return -ENOMEM;
	}
	memcpy(copy, d, bsize);
	n = node_refs(copy, refs);
	node_build(t, d, node_level(copy), refs, n);
	free(refs);
	free(copy);
	return 0;
}

static size_t node_gap(const uint8_t *d)
{
	return le32_get(node_hdr(d)->heap_top) - NODE_HDR - node_nrecs(d) * SLOT_SIZE;
}

/* Inserts REC as entry I; the caller made sure it fits. */
static int node_insert_at(struct rfs_btree *t, uint8_t *d, unsigned i, const void *rec,
			  unsigned len)
{
	struct rfs_btree_node *h = node_hdr(d);
	unsigned n = node_nrecs(d), heap;
	int ret;

	if (node_gap(d) < len + SLOT_SIZE) {
		ret = node_compact(t, d);
		if (ret)
			return ret;
	}
	heap = le32_get(h->heap_top) - len;
	memcpy(d + heap, rec, len);
	memmove(node_slot(d, i + 1), node_slot(d, i), (n - i) * SLOT_SIZE);
	node_slot(d, i)->off = le16_make((uint16_t)heap);
	node_slot(d, i)->len = le16_make((uint16_t)len);
	h->heap_top = le32_make(heap);
	h->nrecs = le16_make((uint16_t)(n + 1));
	return 0;
}

static void node_remove_at(uint8_t *d, unsigned i)
{
	struct rfs_btree_node *h = node_hdr(d);
	unsigned n = node_nrecs(d), len;
	uint8_t *rec = node_rec(d, i, &len);

	/* Space of a record at the heap top comes back at once; elsewhere it
	 * is reclaimed by the next compaction. */
	if ((unsigned)(rec - d) == le32_get(h->heap_top))
		h->heap_top = le32_make(le32_get(h->heap_top) + len);
	memmove(node_slot(d, i), node_slot(d, i + 1), (n - i - 1) * SLOT_SIZE);
	h->nrecs = le16_make((uint16_t)(n - 1));
}

/* Index of the first record whose key is >= KEY (n if none). */
static unsigned node_lower_bound(const struct rfs_btree *t, const uint8_t *d, const void *key)
{
	unsigned lo = 0, hi = node_nrecs(d);

	while (lo < hi) {
		unsigned mid = lo + (hi - lo) / 2;
		if (t->ops->cmp_key(node_rec(d, mid, NULL), key) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Child index to follow for KEY in an internal node: the last entry whose
 * key is <= KEY, or 0. */
static unsigned node_child_index(const struct rfs_btree *t, const uint8_t *d, const void *key)
{
	unsigned i = node_lower_bound(t, d, key);

	if (i < node_nrecs(d) && t->ops->cmp_key(node_rec(d, i, NULL), key) == 0)
		return i;
	return i ? i - 1 : 0;
}

/*
 * Chooses K so that REFS[0..K) and REFS[K..N) both fit in a node and their
 * sizes differ as little as possible. Both sides are then at least
 * (total - largest entry) / 2 bytes, which is what invariant 4 needs.
 */
static unsigned split_point(const struct recref *refs, unsigned n, size_t usable)
{
	size_t total = 0, left = 0, best_diff = SIZE_MAX;
	unsigned i, best = 1;

	for (i = 0; i < n; i++)
		total += refs[i].len + SLOT_SIZE;
	for (i = 1; i < n; i++) {
		size_t diff;
		left += refs[i - 1].len + SLOT_SIZE;
		if (left > usable || total - left > usable)
			continue;
		diff = left > total - left ? left - (total - left) : (total - left) - left;
		if (diff < best_diff) {
			best_diff = diff;
			best = i;
		}
	}
	return best;
}

/* --- tree plumbing ---------------------------------------------------- */

int btree_init(struct rfs_btree *t, const struct rfs_btree_ops *ops, struct rfs_cache *c,
	       fsblock_t root, uint32_t height, uint64_t owner, void *priv)
{
	size_t usable = usable_bytes(c->bsize);

	if (max_entry(ops, 0) * 3 > usable || max_entry(ops, 1) * 3 > usable)
		return -EINVAL;
	if (btree_ops_for(ops->tree_type) != ops) {
		int ret = btree_register(ops);
		if (ret)
			return ret;
	}
	t->ops = ops;
	t->cache = c;
	t->root = root;
	t->height = height;
	t->owner = owner;
	t->priv = priv;
	return 0;
}

int btree_reset(struct rfs_btree *t)
{
	t->root = 0;
	t->height = 0;
	return t->ops->root_changed ? t->ops->root_changed(t) : 0;
}

static int read_node(struct rfs_btree *t, fsblock_t blkno, unsigned level, struct rfs_buf **out)
{
	struct rfs_buf *bp;
	int ret;

	if (blkno == 0 || blkno >= (t->cache->dev->size >> t->cache->block_log)) {
		rfs_log(RFS_LOG_WARN, "%s tree: node pointer %" PRIu64 " out of range",
			t->ops->name, blkno);
		return -EUCLEAN;
	}
	ret = buf_read(t->cache, blkno, &rfs_btree_buf_ops, &bp);
	if (ret)
		return ret;
	if (node_level(bp->data) != level ||
	    le16_get(node_hdr(bp->data)->tree_type) != t->ops->tree_type) {
		rfs_log(RFS_LOG_WARN,
			"%s tree: block %" PRIu64 " is level %u of tree %u, expected "
			"level %u of tree %u",
			t->ops->name, blkno, node_level(bp->data),
			le16_get(node_hdr(bp->data)->tree_type), level, t->ops->tree_type);
		buf_release(bp);
		return -EUCLEAN;
	}
	*out = bp;
	return 0;
}

static int set_root(struct rfs_btree *t, fsblock_t root, uint32_t height)
{
	t->root = root;
	t->height = height;
	return t->ops->root_changed ? t->ops->root_changed(t) : 0;
}

static int alloc_node(struct rfs_btree *t, fsblock_t hint, unsigned level, struct rfs_buf **out)
{
	fsblock_t blkno;
	int ret = t->ops->alloc_block(t, hint, &blkno);

	if (ret)
		return ret;
	ret = buf_new(t->cache, blkno, &rfs_btree_buf_ops, t->owner, out);
	if (ret) {
		t->ops->free_block(t, blkno);
		return ret;
	}
	node_init(t, (*out)->data, level);
	return 0;
}

static int free_node(struct rfs_btree *t, struct rfs_buf *bp)
{
	fsblock_t blkno = bp->blkno;

	buf_release(bp);
	buf_forget(t->cache, blkno);
	return t->ops->free_block(t, blkno);
}

struct path {
	unsigned height;
	struct {
		struct rfs_buf *bp;
		unsigned idx;
	} lv[RFS_BTREE_MAX_HEIGHT];
};

static void path_release(struct path *p)
{
	unsigned i;

	for (i = 0; i < p->height; i++)
		buf_release(p->lv[i].bp);
	p->height = 0;
}

/*
 * Reads the path from the root to the leaf that may hold KEY. With
 * LOWER_SPINE set, a KEY below the leftmost spine's first keys becomes their
 * new first key, so that invariant 3's lower bounds stay true after the
 * insert.
 */
static int descend(struct rfs_btree *t, const void *key, struct path *p, int lower_spine)
{
	fsblock_t blkno = t->root;
	unsigned depth;
	int ret;

	p->height = 0;
	if (t->height > RFS_BTREE_MAX_HEIGHT)
		return -EUCLEAN;
	for (depth = 0; depth < t->height; depth++) {
		unsigned level = t->height - 1 - depth, i;
		uint8_t *d;

		ret = read_node(t, blkno, level, &p->lv[depth].bp);
		if (ret) {
			path_release(p);
			return ret;
		}
		p->height = depth + 1;
		d = p->lv[depth].bp->data;
		if (level == 0)
			break;
		if (node_nrecs(d) == 0) {
			path_release(p);
			return -EUCLEAN;
		}
		i = node_child_index(t, d, key);
		if (lower_spine && i == 0 && t->ops->cmp_key(key, node_rec(d, 0, NULL)) < 0) {
			memcpy(node_rec(d, 0, NULL), key, t->ops->key_size);
			buf_dirty(p->lv[depth].bp);
		}
		p->lv[depth].idx = i;
		blkno = node_child(t, d, i);
	}
	return 0;
}

/* --- insert / update ------------------------------------------------------ */

static void make_internal(const struct rfs_btree *t, uint8_t *out, const void *key, fsblock_t child)
{
	memcpy(out, key, t->ops->key_size);
	rfs_put_le64(out + t->ops->key_size, child);
}

/*
 * Counts the nodes an insert of a LEN-byte record at the leaf of P (replacing
 * REPLACED bytes, 0 for none) will allocate: one per splitting level, plus a
 * new root if the root splits. They are allocated before anything changes,
 * so ENOSPC leaves the tree untouched.
 */
static unsigned splits_needed(const struct rfs_btree *t, const struct path *p, size_t len,
			      size_t replaced)
{
	size_t usable = usable_bytes(t->cache->bsize), need = len + SLOT_SIZE;
	unsigned depth = p->height, n = 0;

	while (depth-- > 0) {
		size_t used = node_used(p->lv[depth].bp->data) - replaced;
		if (used + need <= usable)
			return n;
		n++;
		replaced = 0;
		need = t->ops->key_size + PTR_SIZE + SLOT_SIZE;
	}
	return n + 1; /* the root split too: a new root */
}

struct spare {
	struct rfs_buf *bp[RFS_BTREE_MAX_HEIGHT + 1];
	unsigned n;
};

static void spare_release(struct rfs_btree *t, struct spare *s)
{
	while (s->n > 0)
		free_node(t, s->bp[--s->n]);
}

static int spare_fill(struct rfs_btree *t, struct spare *s, unsigned n, fsblock_t hint)
{
	int ret;

	s->n = 0;
	if (n > t->height && t->height >= RFS_BTREE_MAX_HEIGHT)
		return -EFBIG; /* the root would split past the height limit */
	while (s->n < n) {
		ret = alloc_node(t, hint, 0, &s->bp[s->n]);
		if (ret) {
			spare_release(t, s);
			return ret;
		}
		s->n++;
	}
	return 0;
}

/*
 * Splits node BP (at LEVEL) that cannot take REC at index I, replacing the
 * record there if REPLACE. The upper half goes to a spare node; returns it in
 * *RIGHT and its first key in SEPKEY.
 */
static int split_node(struct rfs_btree *t, struct rfs_buf *bp, unsigned level, unsigned i,
		      const void *rec, unsigned len, int replace, struct spare *s,
		      struct rfs_buf **right, uint8_t *sepkey)
{
	uint32_t bsize = t->cache->bsize;
	unsigned n = node_nrecs(bp->data), k, m;
	uint8_t *copy = malloc(bsize);
	struct recref *refs = malloc((n + 1) * sizeof(*refs));

	if (!copy || !refs) {
		free(copy);
		free(refs);
		return -ENOMEM;
	}
	memcpy(copy, bp->data, bsize);
	node_refs(copy, refs);
	if (replace) {
		refs[i].p = rec;
		refs[i].len = len;
		m = n;
	} else {
		memmove(&refs[i + 1], &refs[i], (n - i) * sizeof(*refs));
		refs[i].p = rec;
		refs[i].len = len;
		m = n + 1;
	}
	k = split_point(refs, m, usable_bytes(bsize));
	*right = s->bp[--s->n];
	node_build(t, bp->data, level, refs, k);
	node_build(t, (*right)->data, level, refs + k, m - k);
	memcpy(sepkey, refs[k].p, t->ops->key_size);
	buf_dirty(bp);
	buf_dirty(*right);
	free(refs);
	free(copy);
	return 0;
}

static int grow_root(struct rfs_btree *t, struct rfs_buf *left, struct rfs_buf *right,
		     const uint8_t *sepkey, struct spare *s)
{
	uint8_t ent[2][RFS_BTREE_MAX_KEY + PTR_SIZE];
	struct recref refs[2];
	struct rfs_buf *root = s->bp[--s->n];
	unsigned level = node_level(left->data) + 1, len = t->ops->key_size + PTR_SIZE;
	int ret;

	make_internal(t, ent[0], node_rec(left->data, 0, NULL), left->blkno);
	make_internal(t, ent[1], sepkey, right->blkno);
	refs[0] = (struct recref){ent[0], len};
	refs[1] = (struct recref){ent[1], len};
	node_build(t, root->data, level, refs, 2);
	buf_dirty(root);
	ret = set_root(t, root->blkno, t->height + 1);
	buf_release(root);
	return ret;
}

/*
 * Keys that arrive in increasing order (new inode numbers, the next extent
 * of a file being written) are appended at the end of a leaf. Splitting
 * such a leaf in halves leaves every leaf behind the insertion point half
 * empty, for good: a tree built by appending would be twice its size. So,
 * as in a B*-tree, an append into a full leaf first moves the leaf's first
 * records into its left sibling (under the same parent) while that one has
 * room; only when it is full does the leaf split. Invariant 4 holds: the
 * leaf keeps at least min_fill bytes. Dirties the leaf, its sibling and the
 * parent, no more than a split of the leaf would.
 *
 * Returns the number of records moved (0: nothing to do, split instead) or
 * an error before anything changed.
 */
static int append_shift_left(struct rfs_btree *t, struct path *p, unsigned len)
{
	uint32_t bsize = t->cache->bsize;
	size_t usable = usable_bytes(bsize), fill = min_fill(t->ops, bsize, 0);
	struct rfs_buf *leaf = p->lv[p->height - 1].bp, *parent, *left;
	size_t leaf_used = node_used(leaf->data), left_used, moved = 0;
	unsigned pidx, n = node_nrecs(leaf->data), nl, k = 0, j;
	struct recref *refs;
	uint8_t *copy;
	int ret;

	if (p->height < 2 || leaf_used + len + SLOT_SIZE <= usable)
		return 0;
	parent = p->lv[p->height - 2].bp;
	pidx = p->lv[p->height - 2].idx;
	if (pidx == 0)
		return 0;
	ret = read_node(t, node_child(t, parent->data, pidx - 1), 0, &left);
	if (ret)
		return ret;
	left_used = node_used(left->data);
	for (j = 0; j < n; j++) {
		size_t e = le16_get(node_slot(leaf->data, j)->len) + SLOT_SIZE;
		if (left_used + moved + e > usable || leaf_used - moved - e < fill)
			break;
		moved += e;
		k = j + 1;
	}
	if (k == 0 || leaf_used - moved + len + SLOT_SIZE > usable) {
		buf_release(left);
		return 0;
	}
	nl = node_nrecs(left->data);
	copy = malloc(2 * (size_t)bsize);
	refs = malloc((nl + n) * sizeof(*refs));
	if (!copy || !refs) {
		free(copy);
		free(refs);
		buf_release(left);
		return -ENOMEM;
	}
	memcpy(copy, left->data, bsize);
	memcpy(copy + bsize, leaf->data, bsize);
	node_refs(copy, refs);
	node_refs(copy + bsize, refs + nl);
	node_build(t, left->data, 0, refs, nl + k);
	node_build(t, leaf->data, 0, refs + nl + k, n - k);
	memcpy(node_rec(parent->data, pidx, NULL), node_rec(leaf->data, 0, NULL), t->ops->key_size);
	buf_dirty(left);
	buf_dirty(leaf);
	buf_dirty(parent);
	free(refs);
	free(copy);
	buf_release(left);
	return (int)k;
}

/*
 * Puts REC into the leaf of P at index I (replacing the record there if
 * REPLACE) and carries splits up the path.
 */
static int insert_path(struct rfs_btree *t, struct path *p, unsigned i, const void *rec,
		       unsigned len, int replace)
{
	size_t usable = usable_bytes(t->cache->bsize);
	uint8_t sepkey[RFS_BTREE_MAX_KEY], ent[RFS_BTREE_MAX_KEY + PTR_SIZE];
	size_t replaced = 0;
	unsigned depth = p->height - 1, level = 0;
	struct spare s;
	int ret;

	if (replace) {
		unsigned oldlen;
		node_rec(p->lv[depth].bp->data, i, &oldlen);
		replaced = oldlen + SLOT_SIZE;
	} else if (i == node_nrecs(p->lv[depth].bp->data)) {
		ret = append_shift_left(t, p, len);
		if (ret < 0)
			return ret;
		i -= (unsigned)ret;
	}
	ret = spare_fill(t, &s, splits_needed(t, p, len, replaced), p->lv[depth].bp->blkno);
	if (ret)
		return ret;
	for (;;) {
		struct rfs_buf *bp = p->lv[depth].bp, *right;
		uint8_t *d = bp->data;

		if (node_used(d) - replaced + len + SLOT_SIZE <= usable) {
			if (replace)
				node_remove_at(d, i);
			ret = node_insert_at(t, d, i, rec, len);
			buf_dirty(bp);
			break;
		}
		ret = split_node(t, bp, level, i, rec, len, replace, &s, &right, sepkey);
		if (ret)
			break;
		if (depth == 0) {
			ret = grow_root(t, bp, right, sepkey, &s);
			buf_release(right);
			break;
		}
		make_internal(t, ent, sepkey, right->blkno);
		buf_release(right);
		depth--;
		level++;
		i = p->lv[depth].idx + 1;
		rec = ent;
		len = t->ops->key_size + PTR_SIZE;
		replace = 0;
		replaced = 0;
	}
	spare_release(t, &s);
	return ret;
}

static int check_rec_size(const struct rfs_btree *t, size_t len)
{
	return len < t->ops->min_rec || len > t->ops->max_rec ? -EINVAL : 0;
}

static int insert_first(struct rfs_btree *t, const void *rec, size_t len)
{
	struct recref ref = {rec, (unsigned)len};
	struct rfs_buf *bp;
	int ret = alloc_node(t, 0, 0, &bp);

	if (ret)
		return ret;
	node_build(t, bp->data, 0, &ref, 1);
	buf_dirty(bp);
	ret = set_root(t, bp->blkno, 1);
	buf_release(bp);
	return ret;
}

int btree_insert(struct rfs_btree *t, const void *rec, size_t len)
{
	struct path p;
	uint8_t *leaf;
	unsigned i;
	int ret;

	ret = check_rec_size(t, len);
	if (ret)
		return ret;
	if (t->height == 0)
		return insert_first(t, rec, len);
	ret = descend(t, rec, &p, 1);
	if (ret)
		return ret;
	leaf = p.lv[p.height - 1].bp->data;
	i = node_lower_bound(t, leaf, rec);
	if (i < node_nrecs(leaf) && t->ops->cmp_key(node_rec(leaf, i, NULL), rec) == 0)
		ret = -EEXIST;
	else
		ret = insert_path(t, &p, i, rec, (unsigned)len, 0);
	path_release(&p);
	return ret;
}

/* --- delete ------------------------------------------------------------- */

/* Root with one child, or an empty root leaf: shrink the tree. */
static int shrink_root(struct rfs_btree *t, struct path *p)
{
	struct rfs_buf *root = p->lv[0].bp;
	uint8_t *d = root->data;
	int ret;

	if (node_level(d) > 0 && node_nrecs(d) == 1) {
		fsblock_t child = node_child(t, d, 0);
		p->lv[0].bp = NULL;
		ret = free_node(t, root);
		return ret ? ret : set_root(t, child, t->height - 1);
	}
	if (node_level(d) == 0 && node_nrecs(d) == 0) {
		p->lv[0].bp = NULL;
		ret = free_node(t, root);
		return ret ? ret : set_root(t, 0, 0);
	}
	return 0;
}

/* Merges or rebalances the underfull node at DEPTH with a sibling.
 * Sets *MERGED when the parent lost an entry. */
static int fix_underflow(struct rfs_btree *t, struct path *p, unsigned depth, int *merged)
{
	uint32_t bsize = t->cache->bsize;
	struct rfs_buf *parent = p->lv[depth - 1].bp, *node = p->lv[depth].bp, *sib, *lbp, *rbp;
	unsigned pidx = p->lv[depth - 1].idx, sidx, level = node_level(node->data);
	unsigned nl, nr, k, ridx;
	uint8_t *copy = NULL;
	struct recref *refs = NULL;
	int ret;

	*merged = 0;
	if (node_nrecs(parent->data) < 2)
		return -EUCLEAN; /* a non-root internal node with one child */
	sidx = pidx + 1 < node_nrecs(parent->data) ? pidx + 1 : pidx - 1;
	ret = read_node(t, node_child(t, parent->data, sidx), level, &sib);
	if (ret)
		return ret;
	lbp = sidx > pidx ? node : sib;
	rbp = sidx > pidx ? sib : node;
	ridx = sidx > pidx ? sidx : pidx;
	nl = node_nrecs(lbp->data);
	nr = node_nrecs(rbp->data);
	copy = malloc(2 * (size_t)bsize);
	refs = malloc((nl + nr + 1) * sizeof(*refs));
	if (!copy || !refs) {
		ret = -ENOMEM;
		goto out;
	}
	memcpy(copy, lbp->data, bsize);
	memcpy(copy + bsize, rbp->data, bsize);
	node_refs(copy, refs);
	node_refs(copy + bsize, refs + nl);
	if (node_used(lbp->data) + node_used(rbp->data) <= usable_bytes(bsize)) {
		node_build(t, lbp->data, level, refs, nl + nr);
		buf_dirty(lbp);
		node_remove_at(parent->data, ridx);
		buf_dirty(parent);
		if (rbp == node)
			p->lv[depth].bp = NULL;
		else
			sib = NULL;
		ret = free_node(t, rbp);
		*merged = 1;
		goto out;
	}
	k = split_point(refs, nl + nr, usable_bytes(bsize));
	node_build(t, lbp->data, level, refs, k);
	node_build(t, rbp->data, level, refs + k, nl + nr - k);
	buf_dirty(lbp);
	buf_dirty(rbp);
	memcpy(node_rec(parent->data, ridx, NULL), node_rec(rbp->data, 0, NULL), t->ops->key_size);
	buf_dirty(parent);
out:
	free(refs);
	free(copy);
	buf_release(sib);
	return ret;
}

/* Restores invariant 4 from the leaf of P upwards after a removal. */
static int rebalance_path(struct rfs_btree *t, struct path *p)
{
	unsigned depth = p->height - 1;
	int merged, ret;

	for (;;) {
		uint8_t *d = p->lv[depth].bp->data;
		if (depth == 0)
			return shrink_root(t, p);
		if (node_used(d) >= min_fill(t->ops, t->cache->bsize, node_level(d)))
			return 0;
		ret = fix_underflow(t, p, depth, &merged);
		if (ret || !merged)
			return ret;
		depth--;
	}
}

int btree_delete(struct rfs_btree *t, const void *key)
{
	struct path p;
	struct rfs_buf *leafbp;
	unsigned i;
	int ret;

	if (t->height == 0)
		return -ENOENT;
	ret = descend(t, key, &p, 0);
	if (ret)
		return ret;
	leafbp = p.lv[p.height - 1].bp;
	i = node_lower_bound(t, leafbp->data, key);
	if (i >= node_nrecs(leafbp->data) ||
	    t->ops->cmp_key(node_rec(leafbp->data, i, NULL), key) != 0) {
		ret = -ENOENT;
	} else {
		node_remove_at(leafbp->data, i);
		buf_dirty(leafbp);
		ret = rebalance_path(t, &p);
	}
	path_release(&p);
	return ret;
}

int btree_update(struct rfs_btree *t, const void *rec, size_t len)
{
	struct path p;
	struct rfs_buf *leafbp;
	unsigned i, oldlen;
	uint8_t *old;
	int ret;

	ret = check_rec_size(t, len);
	if (ret)
		return ret;
	if (t->height == 0)
		return -ENOENT;
	ret = descend(t, rec, &p, 0);
	if (ret)
		return ret;
	leafbp = p.lv[p.height - 1].bp;
	i = node_lower_bound(t, leafbp->data, rec);
	if (i >= node_nrecs(leafbp->data) ||
	    t->ops->cmp_key(node_rec(leafbp->data, i, NULL), rec) != 0) {
		ret = -ENOENT;
		goto out;
	}
	old = node_rec(leafbp->data, i, &oldlen);
	if (oldlen == len) {
		memcpy(old, rec, len);
		buf_dirty(leafbp);
	} else {
		ret = insert_path(t, &p, i, rec, (unsigned)len, 1);
		if (!ret && len < oldlen)
			ret = rebalance_path(t, &p);
	}
out:
	path_release(&p);
	return ret;
}

/* --- cursors ------------------------------------------------------------- */

void btree_cursor_init(struct rfs_btree_cursor *cur, struct rfs_btree *t)
{
	memset(cur, 0, sizeof(*cur));
	cur->t = t;
}

void btree_cursor_done(struct rfs_btree_cursor *cur)
{
	unsigned i;

	for (i = 0; i < RFS_BTREE_MAX_HEIGHT; i++) {
		buf_release(cur->path[i].bp);
		cur->path[i].bp = NULL;
	}
	cur->valid = 0;
}

/* Fills the cursor path from DEPTH down, taking child IDX at DEPTH-1 and
 * then the first (or last, if TO_LAST) entry of every lower node. */
static int cursor_fill(struct rfs_btree_cursor *cur, unsigned depth, fsblock_t blkno, int to_last)
{
	struct rfs_btree *t = cur->t;
	int ret;

	for (; depth < t->height; depth++) {
		struct rfs_buf *bp;
		unsigned n;

		ret = read_node(t, blkno, t->height - 1 - depth, &bp);
		if (ret)
			return ret;
		buf_release(cur->path[depth].bp);
		cur->path[depth].bp = bp;
		n = node_nrecs(bp->data);
		if (n == 0 && depth + 1 < t->height)
			return -EUCLEAN;
		cur->path[depth].idx = to_last && n ? (int)n - 1 : 0;
		if (depth + 1 < t->height)
			blkno = node_child(t, bp->data, (unsigned)cur->path[depth].idx);
	}
	return 0;
}

static int cursor_leaf_ok(struct rfs_btree_cursor *cur)
{
	const struct rfs_btree *t = cur->t;
	const uint8_t *leaf = cur->path[t->height - 1].bp->data;
	int idx = cur->path[t->height - 1].idx;

	cur->valid = idx >= 0 && (unsigned)idx < node_nrecs(leaf);
	return cur->valid ? 0 : -ENOENT;
}

/* Moves the cursor one record in direction DIR (+1 or -1). */
static int cursor_step(struct rfs_btree_cursor *cur, int dir)
{
	struct rfs_btree *t = cur->t;
	int depth = (int)t->height - 1, ret;

	if (t->height == 0)
		return -ENOENT;
	/* Climb to the lowest level that still has a neighbour entry. */
	for (; depth >= 0; depth--) {
		int idx = cur->path[depth].idx + dir;
		if (idx >= 0 && (unsigned)idx < node_nrecs(cur->path[depth].bp->data))
			break;
	}
	if (depth < 0) {
		cur->valid = 0;
		return -ENOENT;
	}
	cur->path[depth].idx += dir;
	if ((unsigned)depth + 1 < t->height) {
		fsblock_t child =
			node_child(t, cur->path[depth].bp->data, (unsigned)cur->path[depth].idx);
		ret = cursor_fill(cur, (unsigned)depth + 1, child, dir < 0);
		if (ret) {
			cur->valid = 0;
			return ret;
		}
	}
	return cursor_leaf_ok(cur);
}

int btree_next(struct rfs_btree_cursor *cur)
{
	return cur->valid ? cursor_step(cur, +1) : -ENOENT;
}

int btree_prev(struct rfs_btree_cursor *cur)
{
	return cur->valid ? cursor_step(cur, -1) : -ENOENT;
}

int btree_first(struct rfs_btree_cursor *cur)
{
	int ret;

	cur->valid = 0;
	if (cur->t->height == 0)
		return -ENOENT;
	ret = cursor_fill(cur, 0, cur->t->root, 0);
	return ret ? ret : cursor_leaf_ok(cur);
}

int btree_last(struct rfs_btree_cursor *cur)
{
	int ret;

	cur->valid = 0;
	if (cur->t->height == 0)
		return -ENOENT;
	ret = cursor_fill(cur, 0, cur->t->root, 1);
	return ret ? ret : cursor_leaf_ok(cur);
}

int btree_seek(struct rfs_btree_cursor *cur, const void *key, enum rfs_lookup_mode mode)
{
	struct rfs_btree *t = cur->t;
	struct path p;
	const uint8_t *leaf;
	unsigned i, n, d;
	int ret;

	btree_cursor_done(cur);
	if (t->height == 0)
		return -ENOENT;
	ret = descend(t, key, &p, 0);
	if (ret)
		return ret;
	for (d = 0; d < p.height; d++) {
		cur->path[d].bp = p.lv[d].bp; /* the cursor takes the references */
		cur->path[d].idx = (int)p.lv[d].idx;
	}
	leaf = cur->path[t->height - 1].bp->data;
	n = node_nrecs(leaf);
	i = node_lower_bound(t, leaf, key);
	cur->valid = 1;
	cur->path[t->height - 1].idx = (int)i;
	if (mode == RFS_LOOKUP_GE) {
		if (i < n)
			return 0;
		cur->path[t->height - 1].idx = (int)n - 1;
		return cursor_step(cur, +1);
	}
	if (i < n && t->ops->cmp_key(node_rec(leaf, i, NULL), key) == 0)
		return 0;
	if (mode == RFS_LOOKUP_EQ) {
		cur->valid = 0;
		return -ENOENT;
	}
	/* LE: the record before the first one that is greater. */
	cur->path[t->height - 1].idx = (int)i - 1;
	if (i > 0)
		return 0;
	cur->path[t->height - 1].idx = 0;
	return cursor_step(cur, -1);
}

const void *btree_cursor_rec(const struct rfs_btree_cursor *cur, size_t *len)
{
	unsigned l;
	const uint8_t *rec;

	if (!cur->valid)
		return NULL;
	rec = node_rec(cur->path[cur->t->height - 1].bp->data,
		       (unsigned)cur->path[cur->t->height - 1].idx, &l);
	if (len)
		*len = l;
	return rec;
}

int btree_lookup(struct rfs_btree *t, const void *key, enum rfs_lookup_mode mode, void *rec,
		 size_t cap, size_t *len)
{
	struct rfs_btree_cursor cur;
	const void *r;
	size_t l = 0;
	int ret;

	btree_cursor_init(&cur, t);
	ret = btree_seek(&cur, key, mode);
	if (!ret) {
		r = btree_cursor_rec(&cur, &l);
		memcpy(rec, r, RFS_MIN(l, cap));
		if (len)
			*len = l;
	}
	btree_cursor_done(&cur);
	return ret;
}

/* --- checker ----------------------------------------------------------- */

struct check_walk {
	struct rfs_btree *t;
	struct rfs_btree_check *chk;
};

static void check_report(struct check_walk *w, fsblock_t blkno, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void check_report(struct check_walk *w, fsblock_t blkno, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	w->chk->errors++;
	if (w->chk->report)
		w->chk->report(w->chk->arg, w->t, blkno, msg);
}

/* Checks that every key of node D is within [LO, HI) (NULL = unbounded),
 * and that an internal node's first key equals LO when LO is exact. */
static void check_bounds(struct check_walk *w, fsblock_t blkno, const uint8_t *d, const uint8_t *lo,
			 int lo_exact, const uint8_t *hi)
{
	const struct rfs_btree_ops *ops = w->t->ops;
	unsigned n = node_nrecs(d);
	const uint8_t *first, *last;

	if (n == 0)
		return;
	first = node_rec(d, 0, NULL);
	last = node_rec(d, n - 1, NULL);
	if (lo && ops->cmp_key(first, lo) < 0)
		check_report(w, blkno, "first key below the parent's key");
	if (hi && ops->cmp_key(last, hi) >= 0)
		check_report(w, blkno, "last key not below the next parent key");
	if (lo && lo_exact && node_level(d) > 0 && ops->cmp_key(first, lo) != 0)
		check_report(w, blkno, "first key differs from the parent's key");
}

static void check_node(struct check_walk *w, fsblock_t blkno, unsigned level, const uint8_t *lo,
		       int lo_exact, const uint8_t *hi, int is_root)
{
	struct rfs_btree *t = w->t;
	struct rfs_buf *bp;
	const uint8_t *d;
	char why[160];
	unsigned n, i;
	int ret;

	ret = read_node(t, blkno, level, &bp);
	if (ret) {
		check_report(w, blkno, "%s: unreadable node (%s)", t->ops->name,
			     ret == -EBADMSG ? "checksum mismatch" : "bad header or structure");
		return;
	}
	d = bp->data;
	/* A cached node was verified when it was read, not since: check it
	 * again (invariants 2 and 5) before trusting its slots. */
	if (btree_node_verify(t->cache, d, why, sizeof(why))) {
		check_report(w, blkno, "%s: %s", t->ops->name, why);
		buf_release(bp);
		return;
	}
	w->chk->nodes++;
	if (w->chk->visit_node)
		w->chk->visit_node(w->chk->arg, t, blkno, level);
	n = node_nrecs(d);
	if (le64_get(((const struct rfs_blkhdr *)d)->owner) != t->owner)
		check_report(w, blkno, "owner %" PRIu64 ", expected %" PRIu64,
			     le64_get(((const struct rfs_blkhdr *)d)->owner), t->owner);
	if (!is_root && n == 0)
		check_report(w, blkno, "empty non-root node");
	else if (!is_root && node_used(d) < min_fill(t->ops, t->cache->bsize, level))
		check_report(w, blkno, "underfull node: %zu bytes used", node_used(d));
	if (is_root && level > 0 && n < 2)
		check_report(w, blkno, "internal root with %u entries", n);
	check_bounds(w, blkno, d, lo, lo_exact, hi);
	/* fsck's cold walk: ask for every child at once, not one read at a time */
	for (i = 0; level > 0 && i < n; i++)
		dev_prefetch(t->cache->dev, node_child(t, d, i) << t->cache->block_log,
			     t->cache->bsize);
	for (i = 0; i < n; i++) {
		unsigned len;
		const uint8_t *rec = node_rec(d, i, &len);
		if (level == 0) {
			w->chk->records++;
			if (w->chk->visit_rec)
				w->chk->visit_rec(w->chk->arg, t, rec, len);
			continue;
		}
		check_node(w, node_child(t, d, i), level - 1, i ? rec : lo, i ? 1 : lo_exact,
			   i + 1 < n ? node_rec(d, i + 1, NULL) : hi, 0);
	}
	buf_release(bp);
}

int btree_check(struct rfs_btree *t, struct rfs_btree_check *chk)
{
	struct check_walk w = {t, chk};

	chk->nodes = chk->records = chk->errors = 0;
	if (t->height == 0) {
		if (t->root != 0)
			check_report(&w, t->root, "empty tree with a root block");
		return chk->errors ? -EUCLEAN : 0;
	}
	if (t->height > RFS_BTREE_MAX_HEIGHT) {
		check_report(&w, t->root, "height %u too large", t->height);
		return -EUCLEAN;
	}
	check_node(&w, t->root, t->height - 1, NULL, 0, NULL, 1);
	return chk->errors ? -EUCLEAN : 0;
}
