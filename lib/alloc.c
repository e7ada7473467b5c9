/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * alloc.c - free-space trees (bno, cnt), the free list, and the allocator.
 *
 * Invariants:
 *  1. bno and cnt hold the same set of free extents; extents are non-empty,
 *     never overlap, are never adjacent (always merged), and never cover a
 *     static block (superblocks, free list block, journal).
 *  2. sb.free_blocks is the sum of their lengths.
 *  3. Blocks on the free list are neither free nor used by a tree.
 *  4. At the start of every allocator operation the free list holds at
 *     least alloc_freelist_low() blocks (at least half of that when free
 *     space is too short to top it up) and at most alloc_freelist_high().
 *     One operation changes at most three records per tree, so it takes or
 *     gives back at most 3 * (height + 2) blocks per tree.
 *  6. An extent freed in a transaction that is not yet durable is "busy":
 *     it is free in the trees (so the free is atomic with whatever freed
 *     it) but not handed out again until that transaction commits. Else
 *     a crash could leave its old owner pointing at blocks another file
 *     has already overwritten.
 *  5. A refused call (bad range, double free, read-only) changes nothing;
 *     so does an allocation that fails for lack of space, unless the free
 *     list was below half its low mark (topping it up comes first).
 */
#include "alloc.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "journal.h"
#include "util.h"

/* --- record encoding ------------------------------------------------ */

static int ext_check(const void *rec, size_t len, char *why, size_t whylen)
{
	(void)len;
	if (rfs_get_le64((const uint8_t *)rec + 8) == 0 || rfs_get_le64(rec) == 0) {
		snprintf(why, whylen, "free extent with zero start or length");
		return -EUCLEAN;
	}
	return 0;
}

struct ext {
	fsblock_t start;
	extlen_t len;
};

static void bno_encode(uint8_t *rec, fsblock_t start, extlen_t len)
{
	rfs_put_le64(rec, start);
	rfs_put_le64(rec + 8, len);
}

static void cnt_encode(uint8_t *rec, fsblock_t start, extlen_t len)
{
	rfs_put_le64(rec, len);
	rfs_put_le64(rec + 8, start);
}

static int fl_pop(struct rfs_btree *t, fsblock_t hint, fsblock_t *out);
static int fl_push(struct rfs_btree *t, fsblock_t blkno);

const struct rfs_btree_ops rfs_bno_ops = {
	.tree_type = RFS_TREE_BNO,
	.name = "free space by block",
	.key_size = 8,
	.min_rec = 16,
	.max_rec = 16,
	.cmp_key = btree_cmp_le64,
	.check_rec = ext_check,
	.alloc_block = fl_pop,
	.free_block = fl_push,
	.root_changed = fs_tree_root_changed,
};

const struct rfs_btree_ops rfs_cnt_ops = {
	.tree_type = RFS_TREE_CNT,
	.name = "free space by size",
	.key_size = 16,
	.min_rec = 16,
	.max_rec = 16,
	.cmp_key = btree_cmp_le64x2,
	.check_rec = ext_check,
	.alloc_block = fl_pop,
	.free_block = fl_push,
	.root_changed = fs_tree_root_changed,
};

/* --- the free list ---------------------------------------------------- */

static uint32_t fl_capacity(uint32_t bsize)
{
	return (bsize - (uint32_t)sizeof(struct rfs_freelist)) / 8;
}

static int fl_verify(struct rfs_cache *c, const void *data, char *why, size_t whylen)
{
	const struct rfs_freelist *fl = data;
	uint64_t nblocks = c->dev->size >> c->block_log;
	uint32_t i, n = le32_get(fl->count);

	if (n > fl_capacity(c->bsize)) {
		snprintf(why, whylen, "free list count %u exceeds capacity", n);
		return -EUCLEAN;
	}
	for (i = 0; i < n; i++) {
		uint64_t b = le64_get(fl->blocks[i]);
		if (b == 0 || b >= nblocks) {
			snprintf(why, whylen, "free list entry %u (%" PRIu64 ") out of range", i,
				 b);
			return -EUCLEAN;
		}
	}
	return 0;
}

const struct rfs_buf_ops rfs_freelist_buf_ops = {
	.type = RFS_BLK_FREELIST,
	.name = "free list",
	.verify = fl_verify,
};

static int fl_read(struct rfs_fs *fs, struct rfs_buf **bp)
{
	return buf_read(fs->cache, fs->sb.freelist_blkno, &rfs_freelist_buf_ops, bp);
}

static int fl_pop(struct rfs_btree *t, fsblock_t hint, fsblock_t *out)
{
	struct rfs_fs *fs = t->priv;
	struct rfs_freelist *fl;
	struct rfs_buf *bp;
	uint32_t n;
	int ret;

	(void)hint;
	ret = fl_read(fs, &bp);
	if (ret)
		return ret;
	fl = (struct rfs_freelist *)bp->data;
	n = le32_get(fl->count);
	if (n == 0) {
		rfs_log(RFS_LOG_ERR, "free list empty during a free-space tree split");
		ret = -ENOSPC;
	} else {
		*out = le64_get(fl->blocks[n - 1]);
		fl->blocks[n - 1] = 0;
		fl->count = le32_make(n - 1);
		buf_dirty(bp);
	}
	buf_release(bp);
	return ret;
}

static int fl_push(struct rfs_btree *t, fsblock_t blkno)
{
	struct rfs_fs *fs = t->priv;
	struct rfs_freelist *fl;
	struct rfs_buf *bp;
	uint32_t n;
	int ret;

	ret = fl_read(fs, &bp);
	if (ret)
		return ret;
	fl = (struct rfs_freelist *)bp->data;
	n = le32_get(fl->count);
	if (n >= fs->fl_capacity) {
		rfs_log(RFS_LOG_ERR, "free list full while freeing block %" PRIu64, blkno);
		ret = -ENOSPC;
	} else {
		fl->blocks[n] = le64_make(blkno);
		fl->count = le32_make(n + 1);
		buf_dirty(bp);
	}
	buf_release(bp);
	return ret;
}

static int fl_count(struct rfs_fs *fs, uint32_t *count)
{
	struct rfs_buf *bp;
	int ret = fl_read(fs, &bp);

	if (ret)
		return ret;
	*count = le32_get(((struct rfs_freelist *)bp->data)->count);
	buf_release(bp);
	return 0;
}

int alloc_freelist_read(struct rfs_fs *fs, fsblock_t *blocks, uint32_t cap, uint32_t *count)
{
	struct rfs_freelist *fl;
	struct rfs_buf *bp;
	uint32_t i;
	int ret = fl_read(fs, &bp);

	if (ret)
		return ret;
	fl = (struct rfs_freelist *)bp->data;
	*count = le32_get(fl->count);
	for (i = 0; i < *count && i < cap; i++)
		blocks[i] = le64_get(fl->blocks[i]);
	buf_release(bp);
	return 0;
}

/* Blocks one operation may take from or give to the free list. */
static uint32_t fl_per_op(const struct rfs_fs *fs)
{
	uint32_t h = RFS_MAX(fs->bno.height, fs->cnt.height);
	return 3 * (h + 2) * 2; /* both trees */
}

/* The marks are clamped to thirds of the list: free-space trees tall
 * enough to need more (a huge filesystem of 1 KiB blocks with free space
 * in single blocks) get ENOSPC from a split that finds the list empty,
 * which the B+tree engine turns into an unchanged tree, never corruption. */
uint32_t alloc_freelist_low(const struct rfs_fs *fs)
{
	return RFS_MIN(fl_per_op(fs), fs->fl_capacity / 3);
}

uint32_t alloc_freelist_high(const struct rfs_fs *fs)
{
	return fs->fl_capacity - alloc_freelist_low(fs);
}

/* --- raw free-space tree edits (no free list fixing) -------------------- */

static void account_free(struct rfs_fs *fs, int64_t delta)
{
	fs->sb.free_blocks += (uint64_t)delta;
	fs_sb_dirty(fs);
}

static int fsp_insert(struct rfs_fs *fs, fsblock_t start, extlen_t len)
{
	uint8_t rec[16];
	int ret;

	bno_encode(rec, start, len);
	ret = btree_insert(&fs->bno, rec, sizeof(rec));
	if (ret)
		return ret == -EEXIST ? -EUCLEAN : ret;
	cnt_encode(rec, start, len);
	ret = btree_insert(&fs->cnt, rec, sizeof(rec));
	if (ret)
		return ret == -EEXIST ? -EUCLEAN : ret;
	account_free(fs, (int64_t)len);
	return 0;
}

static int fsp_remove(struct rfs_fs *fs, fsblock_t start, extlen_t len)
{
	uint8_t key[16];
	int ret;

	bno_encode(key, start, len);
	ret = btree_delete(&fs->bno, key);
	if (ret)
		return ret == -ENOENT ? -EUCLEAN : ret;
	cnt_encode(key, start, len);
	ret = btree_delete(&fs->cnt, key);
	if (ret)
		return ret == -ENOENT ? -EUCLEAN : ret;
	account_free(fs, -(int64_t)len);
	return 0;
}

/*
 * Takes [A, A+N) out of the free extent E:
 *
 *     E.start          A        A+N          E.end
 *     |---- left ------|=========|--- right ---|
 */
static int fsp_carve(struct rfs_fs *fs, struct ext e, fsblock_t a, extlen_t n)
{
	extlen_t left = a - e.start, right = e.start + e.len - (a + n);
	int ret;

	ret = fsp_remove(fs, e.start, e.len);
	if (!ret && left)
		ret = fsp_insert(fs, e.start, left);
	if (!ret && right)
		ret = fsp_insert(fs, a + n, right);
	return ret;
}

static int bno_find(struct rfs_fs *fs, fsblock_t at, enum rfs_lookup_mode mode, struct ext *e)
{
	uint8_t key[8], rec[16];
	int ret;

	rfs_put_le64(key, at);
	ret = btree_lookup(&fs->bno, key, mode, rec, sizeof(rec), NULL);
	if (!ret) {
		e->start = rfs_get_le64(rec);
		e->len = rfs_get_le64(rec + 8);
	}
	return ret;
}

static int cnt_find(struct rfs_fs *fs, extlen_t len, fsblock_t start, enum rfs_lookup_mode mode,
		    struct ext *e)
{
	uint8_t key[16], rec[16];
	int ret;

	cnt_encode(key, start, len);
	ret = btree_lookup(&fs->cnt, key, mode, rec, sizeof(rec), NULL);
	if (!ret) {
		e->len = rfs_get_le64(rec);
		e->start = rfs_get_le64(rec + 8);
	}
	return ret;
}

/* --- free list water marks ------------------------------------------------ */

static int largest_free(struct rfs_fs *fs, struct ext *e)
{
	return cnt_find(fs, UINT64_MAX, UINT64_MAX, RFS_LOOKUP_LE, e);
}

/* Moves up to WANT blocks from the end of the largest free extent onto the
 * free list, leaving KEEP blocks of it free when it has more than KEEP (an
 * allocation of KEEP blocks is about to be made). If it has no more than
 * KEEP, takes all of it only if MUST, else fails with -ENOSPC. Taking from
 * the end leaves the bno key unchanged. */
static int fl_refill_once(struct rfs_fs *fs, uint32_t want, extlen_t keep, int must)
{
	struct rfs_btree t = {.priv = fs};
	struct ext e;
	extlen_t n, i;
	int ret;

	ret = largest_free(fs, &e);
	if (ret)
		return ret == -ENOENT ? -ENOSPC : ret;
	n = e.len > keep ? e.len - keep : must ? e.len : 0;
	if (n == 0)
		return -ENOSPC;
	n = RFS_MIN((extlen_t)want, n);
	ret = fsp_carve(fs, e, e.start + e.len - n, n);
	for (i = 0; !ret && i < n; i++)
		ret = fl_push(&t, e.start + e.len - n + i);
	return ret;
}

/* Gives one block from the free list back to the free-space trees. */
static int fl_drain_one(struct rfs_fs *fs);

/*
 * Brings the free list between its water marks. Half the low mark is
 * enough for one operation, so below the low mark but above half of it a
 * refill is optional: on a nearly full disk it takes only what leaves KEEP
 * blocks in the largest free extent (for the allocation that follows), and
 * its failure is not an error.
 */
static int fix_freelist(struct rfs_fs *fs, extlen_t keep)
{
	uint32_t count, low, high;
	int ret;

	for (;;) {
		ret = fl_count(fs, &count);
		if (ret)
			return ret;
		low = alloc_freelist_low(fs);
		high = alloc_freelist_high(fs);
		if (count < low) {
			int must = count < low / 2;
			ret = fl_refill_once(fs, (low + high) / 2 - count, keep, must);
			if (ret == -ENOSPC && !must)
				return 0; /* nearly full disk: still enough for one op */
		} else if (count > high) {
			ret = fl_drain_one(fs);
		} else {
			return 0;
		}
		if (ret)
			return ret;
	}
}

int alloc_fix_freelist(struct rfs_fs *fs)
{
	return fix_freelist(fs, 0);
}

/* --- freeing ----------------------------------------------------------- */

int fs_is_static_block(const struct rfs_fs *fs, fsblock_t b)
{
	return sb_is_static_block(&fs->sb, b);
}

static int range_is_valid(const struct rfs_fs *fs, fsblock_t start, extlen_t len)
{
	const struct rfs_sb_info *sb = &fs->sb;
	unsigned i;

	if (len == 0 || start == 0 || start >= sb->block_count || len > sb->block_count - start)
		return 0;
	if (start < sb->journal_start + sb->journal_blocks)
		return 0; /* sb, free list block and journal all sit below */
	for (i = 0; i < RFS_NR_BACKUPS; i++)
		if (sb->backup[i] >= start && sb->backup[i] < start + len)
			return 0;
	return 1;
}

/* Looks up the free extents around [START, START+LEN), which must be a
 * valid range that overlaps no free extent. Changes nothing. */
static int free_neighbours(struct rfs_fs *fs, fsblock_t start, extlen_t len, struct ext *left,
			   int *has_left, struct ext *right, int *has_right)
{
	int ret;

	if (!range_is_valid(fs, start, len)) {
		rfs_log(RFS_LOG_ERR, "freeing invalid extent %" PRIu64 "+%" PRIu64, start, len);
		return -EUCLEAN;
	}
	ret = bno_find(fs, start, RFS_LOOKUP_LE, left);
	if (ret && ret != -ENOENT)
		return ret;
	*has_left = !ret;
	if (*has_left && left->start + left->len > start)
		goto double_free;
	ret = bno_find(fs, start, RFS_LOOKUP_GE, right);
	if (ret && ret != -ENOENT)
		return ret;
	*has_right = !ret;
	if (*has_right && right->start < start + len)
		goto double_free;
	return 0;
double_free:
	rfs_log(RFS_LOG_ERR, "freeing extent %" PRIu64 "+%" PRIu64 " that is already free", start,
		len);
	return -EUCLEAN;
}

/* Frees [START, START+LEN), merging with free neighbours. */
static int fsp_free(struct rfs_fs *fs, fsblock_t start, extlen_t len)
{
	struct ext left, right, merged = {start, len};
	int has_left, has_right, ret;

	ret = free_neighbours(fs, start, len, &left, &has_left, &right, &has_right);
	if (ret)
		return ret;
	if (has_left && left.start + left.len == start) {
		ret = fsp_remove(fs, left.start, left.len);
		if (ret)
			return ret;
		merged.start = left.start;
		merged.len += left.len;
	}
	if (has_right && right.start == start + len) {
		ret = fsp_remove(fs, right.start, right.len);
		if (ret)
			return ret;
		merged.len += right.len;
	}
	return fsp_insert(fs, merged.start, merged.len);
}

static int fl_drain_one(struct rfs_fs *fs)
{
	struct rfs_btree t = {.priv = fs};
	fsblock_t b;
	int ret = fl_pop(&t, 0, &b);

	return ret ? ret : fsp_free(fs, b, 1);
}

/* --- busy extents (invariant 6) ----------------------------------------- */

static void busy_prune(struct rfs_fs *fs)
{
	struct rfs_busy_set *b = &fs->busy;
	rfs_tid_t durable = journal_durable_tid(fs);
	size_t i, n = 0;

	for (i = 0; i < b->n; i++)
		if (b->v[i].tid > durable)
			b->v[n++] = b->v[i];
	b->n = n;
}

static int busy_add(struct rfs_fs *fs, fsblock_t start, extlen_t len)
{
	struct rfs_busy_set *b = &fs->busy;
	size_t lo = 0, hi;

	if (!fs->journal)
		return 0;
	if (b->n == b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 64;
		struct rfs_busy *v = realloc(b->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		b->v = v;
		b->cap = cap;
	}
	for (hi = b->n; lo < hi;) {
		size_t mid = lo + (hi - lo) / 2;
		if (b->v[mid].start < start)
			lo = mid + 1;
		else
			hi = mid;
	}
	memmove(&b->v[lo + 1], &b->v[lo], (b->n - lo) * sizeof(*b->v));
	b->v[lo] = (struct rfs_busy){start, len, journal_running_tid(fs)};
	b->n++;
	return 0;
}

/*
 * Narrows the choice [*AT, *AT+*LEN) inside free extent E to blocks that
 * are not busy. E's non-busy stretches are walked in order: the one
 * holding *AT keeps it if MINLEN blocks follow, else the first stretch of
 * MINLEN blocks is taken from its start. -ENOSPC if there is none.
 */
static int busy_trim(const struct rfs_fs *fs, const struct ext *e, extlen_t minlen, extlen_t maxlen,
		     fsblock_t *at, extlen_t *len)
{
	const struct rfs_busy_set *b = &fs->busy;
	fsblock_t end = e->start + e->len, cur = e->start, first = 0;
	extlen_t first_len = 0;
	size_t i;

	for (i = 0; i <= b->n; i++) {
		fsblock_t stop = end, resume = end;
		if (i < b->n) {
			if (b->v[i].start >= end)
				i = b->n; /* sorted: nothing further overlaps */
			else if (b->v[i].start + b->v[i].len <= cur)
				continue;
			else
				stop = RFS_MAX(cur, b->v[i].start),
				resume = b->v[i].start + b->v[i].len;
		}
		/* [cur, stop) is not busy */
		if (*at >= cur && *at < stop && stop - *at >= minlen) {
			*len = RFS_MIN(maxlen, stop - *at);
			return 0;
		}
		if (!first_len && stop - cur >= minlen)
			first = cur, first_len = stop - cur;
		cur = RFS_MAX(cur, resume);
		if (cur >= end)
			break;
	}
	if (!first_len)
		return -ENOSPC;
	*at = first;
	*len = RFS_MIN(maxlen, first_len);
	return 0;
}

/* Walks at most 64 cnt-tree extents from CUR's position (forwards or
 * backwards) for a stretch of MINLEN blocks that is not busy. */
static int walk_not_busy(struct rfs_fs *fs, struct rfs_btree_cursor *cur, int ret, int forward,
			 extlen_t minlen, extlen_t maxlen, struct ext *e, fsblock_t *at,
			 extlen_t *len)
{
	int i;

	for (i = 0; !ret && i < 64; i++, ret = forward ? btree_next(cur) : btree_prev(cur)) {
		const uint8_t *rec = btree_cursor_rec(cur, NULL);
		e->len = rfs_get_le64(rec);
		e->start = rfs_get_le64(rec + 8);
		*at = e->start;
		if (e->len >= minlen && !busy_trim(fs, e, minlen, maxlen, at, len))
			return 0;
	}
	return ret == -ENOENT || i == 64 ? -ENOSPC : ret;
}

/*
 * When the chosen extent is all busy: the smallest extents that hold
 * MINLEN, then the largest, a bounded number of each, for a stretch that
 * is not busy. The smallest alone are not enough: after many small files
 * were deleted they are exactly the freed, busy ones (concurrent creates
 * and unlinks got ENOSPC on an almost empty filesystem, and a conversion
 * of unwritten blocks failed half-way on a tree split).
 */
static int pick_not_busy(struct rfs_fs *fs, extlen_t minlen, extlen_t maxlen, struct ext *e,
			 fsblock_t *at, extlen_t *len)
{
	struct rfs_btree_cursor cur;
	uint8_t key[16];
	int ret;

	rfs_put_le64(key, minlen);
	rfs_put_le64(key + 8, 0);
	btree_cursor_init(&cur, &fs->cnt);
	ret = walk_not_busy(fs, &cur, btree_seek(&cur, key, RFS_LOOKUP_GE), 1, minlen, maxlen, e,
			    at, len);
	if (ret == -ENOSPC)
		ret = walk_not_busy(fs, &cur, btree_last(&cur), 0, minlen, maxlen, e, at, len);
	btree_cursor_done(&cur);
	return ret;
}

int free_extent(struct rfs_fs *fs, fsblock_t start, extlen_t len)
{
	struct ext left, right;
	int has_left, has_right, ret;

	if (fs->readonly)
		return -EROFS;
	/* Refuse a bad range before fixing the free list: a refused call
	 * changes nothing. */
	ret = free_neighbours(fs, start, len, &left, &has_left, &right, &has_right);
	if (!ret)
		ret = alloc_fix_freelist(fs);
	if (!ret)
		ret = fsp_free(fs, start, len);
	return ret ? ret : busy_add(fs, start, len);
}

/* --- allocation ----------------------------------------------------------- */

#define NEAR_SCAN 8 /* extents looked at on each side of the goal */

/* The free extent that contains GOAL, if it has MINLEN blocks from GOAL. */
static int try_exact(struct rfs_fs *fs, fsblock_t goal, extlen_t minlen, struct ext *e)
{
	int ret = bno_find(fs, goal, RFS_LOOKUP_LE, e);

	if (ret)
		return ret;
	if (e->start + e->len <= goal || e->start + e->len - goal < minlen)
		return -ENOENT;
	return 0;
}

static uint64_t distance(fsblock_t a, fsblock_t b)
{
	return a > b ? a - b : b - a;
}

/* Scans a few extents on each side of GOAL for the nearest one holding
 * LEN blocks; sets *AT to where in it to allocate (its end nearest GOAL). */
static int try_near(struct rfs_fs *fs, fsblock_t goal, extlen_t len, struct ext *best,
		    fsblock_t *at)
{
	struct rfs_btree_cursor cur;
	uint64_t best_dist = UINT64_MAX;
	uint8_t key[8];
	int dir, i, ret = 0;

	rfs_put_le64(key, goal);
	for (dir = 0; dir < 2 && ret >= 0; dir++) {
		btree_cursor_init(&cur, &fs->bno);
		ret = btree_seek(&cur, key, dir ? RFS_LOOKUP_LE : RFS_LOOKUP_GE);
		for (i = 0; !ret && i < NEAR_SCAN; i++) {
			const uint8_t *rec = btree_cursor_rec(&cur, NULL);
			struct ext e = {rfs_get_le64(rec), rfs_get_le64(rec + 8)};
			fsblock_t where = e.start >= goal ? e.start : e.start + e.len - len;
			if (e.len >= len && distance(where, goal) < best_dist) {
				best_dist = distance(where, goal);
				*best = e;
				*at = where;
			}
			ret = dir ? btree_prev(&cur) : btree_next(&cur);
		}
		btree_cursor_done(&cur);
		if (ret == -ENOENT)
			ret = 0;
	}
	if (ret)
		return ret;
	return best_dist == UINT64_MAX ? -ENOENT : 0;
}

static int alloc_pick(struct rfs_fs *fs, fsblock_t goal, extlen_t minlen, extlen_t maxlen,
		      struct ext *e, fsblock_t *at, extlen_t *len)
{
	int ret;

	if (goal && goal < fs->sb.block_count) {
		ret = try_exact(fs, goal, minlen, e);
		if (ret != -ENOENT) {
			*at = goal;
			*len = RFS_MIN(maxlen, e->start + e->len - goal);
			return ret;
		}
		ret = try_near(fs, goal, maxlen, e, at);
		if (ret != -ENOENT) {
			*len = maxlen;
			return ret;
		}
	}
	/* Best fit: the smallest extent that holds MAXLEN. */
	ret = cnt_find(fs, maxlen, goal, RFS_LOOKUP_GE, e);
	if (ret != -ENOENT) {
		*at = e->start;
		*len = maxlen;
		return ret;
	}
	/* Else the largest extent, if it holds MINLEN. */
	ret = largest_free(fs, e);
	if (ret)
		return ret == -ENOENT ? -ENOSPC : ret;
	if (e->len < minlen)
		return -ENOSPC;
	*at = e->start;
	*len = e->len;
	return 0;
}

int alloc_extent(struct rfs_fs *fs, fsblock_t goal, extlen_t minlen, extlen_t maxlen,
		 fsblock_t *start, extlen_t *len)
{
	struct ext e;
	fsblock_t at;
	extlen_t n;
	int ret;

	if (minlen == 0 || maxlen < minlen)
		return -EINVAL;
	if (fs->readonly)
		return -EROFS;
	/* Fail before changing anything if no extent holds MINLEN blocks;
	 * then keep MINLEN blocks out of the free list's reach, so that the
	 * pick below can only fail if the reserve is critically low. */
	ret = largest_free(fs, &e);
	if (ret)
		return ret == -ENOENT ? -ENOSPC : ret;
	if (e.len < minlen)
		return -ENOSPC;
	ret = fix_freelist(fs, minlen);
	if (ret)
		return ret;
	ret = alloc_pick(fs, goal, minlen, maxlen, &e, &at, &n);
	if (!ret && fs->busy.n) {
		busy_prune(fs);
		if (busy_trim(fs, &e, minlen, maxlen, &at, &n))
			ret = pick_not_busy(fs, minlen, maxlen, &e, &at, &n);
	}
	if (ret)
		return ret;
	ret = fsp_carve(fs, e, at, n);
	if (ret)
		return ret;
	*start = at;
	*len = n;
	return 0;
}

/* --- setup --------------------------------------------------------------------- */

int alloc_add_free(struct rfs_fs *fs, fsblock_t start, extlen_t len)
{
	if (!range_is_valid(fs, start, len))
		return -EINVAL;
	return fsp_insert(fs, start, len);
}

int alloc_create(struct rfs_fs *fs, fsblock_t fl_start, uint32_t fl_len)
{
	struct rfs_btree t = {.priv = fs};
	struct rfs_buf *bp;
	uint32_t i;
	int ret;

	ret = buf_new(fs->cache, fs->sb.freelist_blkno, &rfs_freelist_buf_ops, 0, &bp);
	if (ret)
		return ret;
	buf_release(bp);
	for (i = 0, ret = 0; i < fl_len && !ret; i++)
		ret = fl_push(&t, fl_start + i);
	return ret;
}

/* --- rebuild (fsck) ---------------------------------------------------------- */

static int rebuild_args_valid(const struct rfs_fs *fs, const struct rfs_free_ext *free, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (!range_is_valid(fs, free[i].start, free[i].len))
			return 0;
		if (i && free[i - 1].start + free[i - 1].len > free[i].start)
			return 0;
	}
	return 1;
}

static size_t largest_index(const struct rfs_free_ext *free, size_t n)
{
	size_t i, best = 0;

	for (i = 1; i < n; i++)
		if (free[i].len > free[best].len)
			best = i;
	return best;
}

/* No extent can seed the trees (a nearly full disk): if the free list can
 * hold every free block and that is at least half its low mark (what
 * every operation needs), the trees stay empty, which is consistent: the
 * next operation drains the list into them. */
static int rebuild_tiny(struct rfs_fs *fs, const struct rfs_free_ext *free, size_t n)
{
	struct rfs_btree t = {.priv = fs};
	uint64_t total = 0;
	size_t i;
	extlen_t j;
	int ret = 0;

	for (i = 0; i < n; i++)
		total += free[i].len;
	if (total > fs->fl_capacity || total < alloc_freelist_low(fs) / 2)
		return -ENOSPC; /* below half the low mark even a free fails */
	for (i = 0; !ret && i < n; i++)
		for (j = 0; !ret && j < free[i].len; j++)
			ret = fl_push(&t, free[i].start + j);
	return ret;
}

/* The refills above aim at the middle of the water marks; a rebuild leaves
 * the reserve where mkfs puts it (twice the low mark), so that repairing a
 * few leaked blocks does not show as hundreds more in use. */
static int trim_reserve(struct rfs_fs *fs)
{
	uint32_t count;
	int ret = alloc_fix_freelist(fs);

	while (!ret && !(ret = fl_count(fs, &count)) && count > 2 * alloc_freelist_low(fs))
		ret = fl_drain_one(fs);
	return ret;
}

/*
 * The largest extent goes in first, by hand: two blocks from its end seed
 * the free list (the first insert into each empty tree needs one node),
 * the rest is inserted raw. From then on every extent goes through
 * free_extent(), which merges neighbours and tops the free list up from
 * the largest extent before each insert, exactly as in normal operation:
 * no node count has to be predicted.
 */
int alloc_rebuild(struct rfs_fs *fs, const struct rfs_free_ext *free, size_t n)
{
	struct rfs_btree t = {.priv = fs};
	size_t big, i;
	extlen_t seed;
	int ret;

	if (fs->readonly)
		return -EROFS;
	if (!rebuild_args_valid(fs, free, n))
		return -EINVAL;
	ret = btree_reset(&fs->bno);
	if (!ret)
		ret = btree_reset(&fs->cnt);
	if (!ret)
		ret = alloc_create(fs, 0, 0); /* an empty free list */
	fs->sb.free_blocks = 0;
	fs_sb_dirty(fs);
	if (ret || n == 0)
		return ret;
	big = largest_index(free, n);
	if (free[big].len < 3)
		return rebuild_tiny(fs, free, n);
	seed = 2;
	for (i = 0; !ret && i < seed; i++)
		ret = fl_push(&t, free[big].start + free[big].len - seed + i);
	if (!ret)
		ret = fsp_insert(fs, free[big].start, free[big].len - seed);
	for (i = 0; !ret && i < n; i++)
		if (i != big)
			ret = free_extent(fs, free[i].start, free[i].len);
	return ret ? ret : trim_reserve(fs);
}

int alloc_tree_block(struct rfs_btree *t, fsblock_t hint, fsblock_t *out)
{
	extlen_t len;
	return alloc_extent(t->priv, hint, 1, 1, out, &len);
}

int free_tree_block(struct rfs_btree *t, fsblock_t blkno)
{
	return free_extent(t->priv, blkno, 1);
}

uint32_t alloc_credits(const struct rfs_fs *fs)
{
	return 2 * 3 * (btree_record_credits(&fs->bno) + btree_record_credits(&fs->cnt)) + 2;
}
