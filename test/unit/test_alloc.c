/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * test_alloc.c - model-based randomised tests of the free-space trees and
 * the block allocator.
 *
 * Every test formats a small filesystem on a RAM (or file) device and keeps
 * a model of the blocks the test itself has allocated: a byte map plus the
 * list of extents it owns. The verifier rebuilds, independently of the
 * allocator, what free space must be:
 *
 *   all blocks - static blocks - free list entries - tree nodes (bno, cnt,
 *   inode, dir, collected with btree_check) - model-allocated blocks
 *
 * and compares the maximal runs of that set with a cursor walk of the bno
 * tree, the cnt tree with the bno tree, and sb.free_blocks with the sum.
 * Every block must be accounted for exactly once: a block in two roles is
 * a double allocation, a block in none is a leak.
 */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"
#include "btree.h"
#include "dev.h"
#include "fs.h"
#include "fs_create.h"
#include "journal.h"
#include "testutil.h"
#include "util.h"

#define CACHE_BYTES (1u << 20)
/* The allocator alone: no journal, so no transactions around its calls. */
#define OPEN_FLAGS    RFS_FS_NOJOURNAL
#define NEAR_SCAN     8	   /* lib/alloc.c: extents looked at on each side of a goal */
#define SNAP_FREE_MAX 4096 /* snapshot before allocs when this little is free */

/*
 * Check's ck_assert*() writes a location record per *passing* assertion,
 * a system call each; these macros only call into Check on failure, so the
 * per-block and per-operation checks stay cheap.
 */
#define REQ(cond) REQUIRE(cond, "assertion failed: %s", #cond)
#define REQ_ICMP(a, op, b)                                                                         \
	do {                                                                                       \
		int64_t a_ = (int64_t)(a), b_ = (int64_t)(b);                                      \
		REQUIRE(a_ op b_, "assertion failed: %s %s %s (%" PRId64 " vs %" PRId64 ")", #a,   \
			#op, #b, a_, b_);                                                          \
	} while (0)
#define REQ_UCMP(a, op, b)                                                                         \
	do {                                                                                       \
		uint64_t a_ = (uint64_t)(a), b_ = (uint64_t)(b);                                   \
		REQUIRE(a_ op b_, "assertion failed: %s %s %s (%" PRIu64 " vs %" PRIu64 ")", #a,   \
			#op, #b, a_, b_);                                                          \
	} while (0)

/* --- log sink: allocator errors must not go unnoticed ------------------- */

/* --- extent vectors --------------------------------------------------------- */

struct ext {
	fsblock_t start;
	extlen_t len;
};

struct extvec {
	struct ext *v;
	size_t n, cap;
};

static void ev_push(struct extvec *ev, fsblock_t start, extlen_t len)
{
	if (ev->n == ev->cap) {
		ev->cap = ev->cap ? ev->cap * 2 : 256;
		ev->v = realloc(ev->v, ev->cap * sizeof(*ev->v));
		REQ(NULL != ev->v);
	}
	ev->v[ev->n++] = (struct ext){start, len};
}

static void ev_free(struct extvec *ev)
{
	free(ev->v);
	memset(ev, 0, sizeof(*ev));
}

static int ext_cmp_start(const void *a, const void *b)
{
	const struct ext *x = a, *y = b;
	return x->start < y->start ? -1 : x->start > y->start;
}

static uint64_t distance(fsblock_t a, fsblock_t b)
{
	return a > b ? a - b : b - a;
}

/* --- filesystem setup ------------------------------------------------------------ */

static struct rfs_fs *format_and_open(struct rfs_dev *dev, unsigned block_log)
{
	return test_fs_format(dev, block_log, 64ull << block_log, "alloc-test-uuid!", OPEN_FLAGS,
			      CACHE_BYTES);
}

static struct rfs_fs *mem_fs(unsigned block_log, uint64_t bytes)
{
	struct rfs_dev *dev;

	REQ_ICMP(dev_open_mem(bytes, &dev), ==, 0);
	return format_and_open(dev, block_log);
}

/* A second RAM device holding a byte copy of FS's device, opened afresh
 * with FLAGS (enum rfs_fs_flags). */
static struct rfs_fs *clone_fs(struct rfs_fs *fs, unsigned flags)
{
	return test_fs_copy(fs, OPEN_FLAGS | flags, CACHE_BYTES);
}

/* --- the model ------------------------------------------------------------------- */

struct model {
	uint8_t *used;	   /* per block: allocated by the test */
	struct extvec ext; /* the extents the test owns */
	uint64_t used_blocks;
};

struct env {
	const char *name;
	struct rfs_fs *fs;
	uint64_t nblocks;
	struct model m;
	fsblock_t last_end;	      /* end of the last allocation: goal chaining */
	extlen_t cap;		      /* typical largest request */
	uint64_t reserve0;	      /* free + free list + bno/cnt nodes after open */
	uint64_t free0;		      /* sb.free_blocks after open */
	uint64_t ops;		      /* allocator calls made */
	uint64_t enospc, enospc_snap; /* failed allocs; those checked unchanged */
	uint32_t max_height;	      /* deepest free-space tree seen */
	uint64_t max_nfree;	      /* most free extents seen */
	struct rfs_rng rng;
};

static void model_mark(struct model *m, fsblock_t start, extlen_t len, uint8_t v)
{
	extlen_t i;

	for (i = 0; i < len; i++) {
		REQUIRE(m->used[start + i] != v, "model: block %" PRIu64 " already %s", start + i,
			v ? "allocated" : "free");
		m->used[start + i] = v;
	}
	if (v)
		m->used_blocks += len;
	else
		m->used_blocks -= len;
}

static void model_init(struct model *m, uint64_t nblocks)
{
	memset(m, 0, sizeof(*m));
	m->used = calloc(nblocks, 1);
	REQ(NULL != m->used);
}

static void model_done(struct model *m)
{
	free(m->used);
	ev_free(&m->ext);
}

/* --- verification ---------------------------------------------------------------- */

enum bstate { B_FREE, B_STATIC, B_FL, B_NODE, B_USED, B_SEEN };

static const char *const bstate_name[] = {"free",
					  "static",
					  "on the free list",
					  "a tree node",
					  "allocated by the test",
					  "in a free extent"};

struct mapctx {
	uint8_t *map;
	uint64_t n;
	uint64_t fsp_nodes; /* nodes of bno and cnt */
	uint64_t bad;
	fsblock_t bad_blk;
	uint8_t bad_state;
};

/* Claims block B for STATE; records a conflict instead of asserting (this
 * runs inside btree_check callbacks). */
static void claim(struct mapctx *c, fsblock_t b, uint8_t state)
{
	if (b >= c->n || c->map[b] != B_FREE) {
		if (!c->bad++) {
			c->bad_blk = b;
			c->bad_state = b < c->n ? c->map[b] : B_FREE;
		}
		return;
	}
	c->map[b] = state;
}

static void assert_no_conflict(const struct mapctx *c, const char *what)
{
	REQUIRE(c->bad == 0, "%s: %" PRIu64 " conflicts, first block %" PRIu64 " is already %s",
		what, c->bad, c->bad_blk, bstate_name[c->bad_state]);
}

static void visit_node(void *arg, const struct rfs_btree *t, fsblock_t blkno, unsigned level)
{
	struct mapctx *c = arg;

	(void)level;
	claim(c, blkno, B_NODE);
	if (t->ops->tree_type == RFS_TREE_BNO || t->ops->tree_type == RFS_TREE_CNT)
		c->fsp_nodes++;
}

static void report(void *arg, const struct rfs_btree *t, fsblock_t blkno, const char *msg)
{
	(void)arg;
	fprintf(stderr, "btree_check %s: block %" PRIu64 ": %s\n", t->ops->name, blkno, msg);
}

static void mark_trees(struct rfs_fs *fs, struct mapctx *c)
{
	struct rfs_btree *trees[] = {&fs->bno, &fs->cnt, &fs->inodes, &fs->dirs};
	unsigned i;

	for (i = 0; i < RFS_ARRAY_SIZE(trees); i++) {
		struct rfs_btree_check chk = {.report = report, .visit_node = visit_node, .arg = c};
		int ret = btree_check(trees[i], &chk);
		REQUIRE(ret == 0, "btree_check(%s): %d, %" PRIu64 " errors", trees[i]->ops->name,
			ret, chk.errors);
	}
	assert_no_conflict(c, "tree nodes");
}

static uint32_t mark_freelist(struct rfs_fs *fs, struct mapctx *c)
{
	fsblock_t *fl = malloc(fs->fl_capacity * sizeof(*fl));
	uint32_t i, count;

	REQ(NULL != fl);
	REQ_ICMP(alloc_freelist_read(fs, fl, fs->fl_capacity, &count), ==, 0);
	REQ_UCMP(count, <=, fs->fl_capacity);
	for (i = 0; i < count; i++)
		claim(c, fl[i], B_FL);
	free(fl);
	assert_no_conflict(c, "free list");
	return count;
}

static void mark_static(struct rfs_fs *fs, struct mapctx *c)
{
	uint64_t b, nstatic = 0;

	for (b = 0; b < c->n; b++) {
		if (fs_is_static_block(fs, b)) {
			claim(c, b, B_STATIC);
			nstatic++;
		}
	}
	/* Superblock, free list block, journal, two backups. */
	REQ_UCMP(nstatic, ==, 2 + fs->sb.journal_blocks + RFS_NR_BACKUPS);
}

static void mark_model(const struct model *m, struct mapctx *c)
{
	uint64_t sum = 0;
	size_t i;
	extlen_t j;

	for (i = 0; i < m->ext.n; i++) {
		const struct ext *x = &m->ext.v[i];
		for (j = 0; j < x->len; j++) {
			REQ(m->used[x->start + j]);
			claim(c, x->start + j, B_USED);
		}
		sum += x->len;
	}
	REQ_UCMP(sum, ==, m->used_blocks);
	assert_no_conflict(c, "model extents");
}

/* Reads every record of a free-space tree, in tree order, as extents. */
static void read_free(struct rfs_btree *t, struct extvec *out)
{
	struct rfs_btree_cursor cur;
	int ret, is_cnt = t->ops->tree_type == RFS_TREE_CNT;

	btree_cursor_init(&cur, t);
	for (ret = btree_first(&cur); ret == 0; ret = btree_next(&cur)) {
		size_t len;
		const uint8_t *r = btree_cursor_rec(&cur, &len);
		uint64_t a = rfs_get_le64(r), b = rfs_get_le64(r + 8);

		REQ_UCMP(len, ==, 16);
		if (is_cnt)
			ev_push(out, b, a);
		else
			ev_push(out, a, b);
	}
	btree_cursor_done(&cur);
	REQ_ICMP(ret, ==, -ENOENT);
}

/* The bno extents must be exactly the maximal runs of unclaimed blocks. */
static uint64_t check_free_runs(struct mapctx *c, const struct extvec *bno)
{
	uint64_t sum = 0, b;
	size_t i;

	for (i = 0; i < bno->n; i++) {
		const struct ext *x = &bno->v[i];
		REQUIRE(x->len > 0 && x->start > 0 && x->start < c->n && x->len <= c->n - x->start,
			"bad free extent %" PRIu64 "+%" PRIu64, x->start, x->len);
		if (i > 0)
			REQUIRE(bno->v[i - 1].start + bno->v[i - 1].len < x->start,
				"free extents %" PRIu64 "+%" PRIu64 " and %" PRIu64 "+%" PRIu64
				" overlap or touch",
				bno->v[i - 1].start, bno->v[i - 1].len, x->start, x->len);
		for (b = x->start; b < x->start + x->len; b++)
			claim(c, b, B_SEEN);
		sum += x->len;
	}
	assert_no_conflict(c, "free extents");
	for (b = 0; b < c->n; b++)
		REQUIRE(c->map[b] != B_FREE,
			"block %" PRIu64 " leaked: in no free extent, "
			"not allocated, not a node, not on the free list",
			b);
	return sum;
}

static void check_cnt_matches(struct rfs_fs *fs, const struct extvec *bno)
{
	struct extvec cnt = {0};
	size_t i;

	read_free(&fs->cnt, &cnt);
	REQ_UCMP(cnt.n, ==, bno->n);
	for (i = 1; i < cnt.n; i++) /* (len, start) order */
		REQ(cnt.v[i - 1].len < cnt.v[i].len ||
		    (cnt.v[i - 1].len == cnt.v[i].len && cnt.v[i - 1].start < cnt.v[i].start));
	if (cnt.n) /* qsort(NULL, 0, ...) is undefined */
		qsort(cnt.v, cnt.n, sizeof(*cnt.v), ext_cmp_start);
	for (i = 0; i < cnt.n; i++)
		REQUIRE(cnt.v[i].start == bno->v[i].start && cnt.v[i].len == bno->v[i].len,
			"cnt has %" PRIu64 "+%" PRIu64 ", bno %" PRIu64 "+%" PRIu64, cnt.v[i].start,
			cnt.v[i].len, bno->v[i].start, bno->v[i].len);
	ev_free(&cnt);
}

struct totals {
	uint64_t free, fl, fsp_nodes, nfree;
};

/* Full check of FS against model M. With FIX, first brings the free list
 * to its water marks (as every allocator call does) and checks them. */
static struct totals verify_fs(struct rfs_fs *fs, const struct model *m, int fix)
{
	struct mapctx c = {.n = fs->sb.block_count};
	struct extvec bno = {0};
	struct totals tot;

	if (fix)
		REQ_ICMP(alloc_fix_freelist(fs), ==, 0);
	c.map = calloc(c.n, 1);
	REQ(NULL != c.map);
	mark_static(fs, &c);
	tot.fl = mark_freelist(fs, &c);
	if (fix) {
		/* Below the low mark only when nothing is left to refill from,
		 * and never below half of it. */
		uint32_t low = alloc_freelist_low(fs);
		REQUIRE(tot.fl >= low || (tot.fl >= low / 2 && fs->sb.free_blocks == 0),
			"free list holds %" PRIu64 ", low mark %u, %" PRIu64 " blocks free", tot.fl,
			low, fs->sb.free_blocks);
		REQ_UCMP(tot.fl, <=, alloc_freelist_high(fs));
	}
	mark_trees(fs, &c);
	mark_model(m, &c);
	read_free(&fs->bno, &bno);
	tot.free = check_free_runs(&c, &bno);
	REQ_UCMP(tot.free, ==, fs->sb.free_blocks);
	check_cnt_matches(fs, &bno);
	tot.fsp_nodes = c.fsp_nodes;
	tot.nfree = bno.n;
	ev_free(&bno);
	free(c.map);
	return tot;
}

static void verify(struct env *e)
{
	struct totals t = verify_fs(e->fs, &e->m, 1);

	e->max_height = RFS_MAX(e->max_height, RFS_MAX(e->fs->bno.height, e->fs->cnt.height));
	e->max_nfree = RFS_MAX(e->max_nfree, t.nfree);
	/* Blocks only move between free space, the free list and the nodes
	 * of the free-space trees, or to and from the model. */
	REQ_UCMP(t.free + t.fl + t.fsp_nodes + e->m.used_blocks, ==, e->reserve0);
}

/* --- snapshots: "changed nothing" ------------------------------------------------ */

struct snap {
	struct extvec free;
	fsblock_t *fl;
	uint32_t nfl;
	uint64_t free_blocks;
	fsblock_t root[2];
	uint32_t height[2];
};

static void snap_take(struct rfs_fs *fs, struct snap *s)
{
	memset(s, 0, sizeof(*s));
	read_free(&fs->bno, &s->free);
	s->fl = malloc(fs->fl_capacity * sizeof(*s->fl));
	REQ(NULL != s->fl);
	REQ_ICMP(alloc_freelist_read(fs, s->fl, fs->fl_capacity, &s->nfl), ==, 0);
	s->free_blocks = fs->sb.free_blocks;
	s->root[0] = fs->bno.root;
	s->root[1] = fs->cnt.root;
	s->height[0] = fs->bno.height;
	s->height[1] = fs->cnt.height;
}

static void snap_free(struct snap *s)
{
	ev_free(&s->free);
	free(s->fl);
}

static void snap_assert_equal(const struct snap *a, const struct snap *b, const char *what)
{
	size_t i;

	REQUIRE(a->free_blocks == b->free_blocks, "%s: free_blocks %" PRIu64 " -> %" PRIu64, what,
		a->free_blocks, b->free_blocks);
	REQUIRE(a->free.n == b->free.n, "%s: %zu free extents -> %zu", what, a->free.n, b->free.n);
	for (i = 0; i < a->free.n; i++)
		REQUIRE(a->free.v[i].start == b->free.v[i].start &&
				a->free.v[i].len == b->free.v[i].len,
			"%s: free extent %zu changed", what, i);
	REQUIRE(a->nfl == b->nfl, "%s: free list count %u -> %u", what, a->nfl, b->nfl);
	for (i = 0; i < a->nfl; i++)
		REQUIRE(a->fl[i] == b->fl[i], "%s: free list entry %zu changed", what, i);
	for (i = 0; i < 2; i++)
		REQUIRE(a->root[i] == b->root[i] && a->height[i] == b->height[i],
			"%s: root of tree %zu changed", what, i + 1);
}

/* --- env -------------------------------------------------------------------------- */

static void env_init(struct env *e, struct rfs_fs *fs, const char *name, uint64_t seed)
{
	struct totals t;

	memset(e, 0, sizeof(*e));
	e->name = name;
	rfs_log_set_sink(test_log_count);
	test_log_errors = 0;
	e->fs = fs;
	e->nblocks = fs->sb.block_count;
	e->cap = 64;
	model_init(&e->m, e->nblocks);
	rng_init(&e->rng, name, seed);
	t = verify_fs(fs, &e->m, 1);
	e->reserve0 = t.free + t.fl + t.fsp_nodes;
	e->free0 = fs->sb.free_blocks;
}

static void env_open(struct env *e, unsigned block_log, uint64_t bytes, const char *name,
		     uint64_t seed)
{
	env_init(e, mem_fs(block_log, bytes), name, seed);
}

static void env_close(struct env *e)
{
	printf("%s: %" PRIu64 " allocator calls, %" PRIu64 " ENOSPC (%" PRIu64
	       " checked unchanged), up to %" PRIu64 " free extents, tree height up to %u\n",
	       e->name, e->ops, e->enospc, e->enospc_snap, e->max_nfree, e->max_height);
	REQ_ICMP(fs_close(e->fs), ==, 0);
	e->fs = NULL;
	model_done(&e->m);
}

/* --- model operations ---------------------------------------------------------- */

static void check_new_extent(struct env *e, fsblock_t goal, extlen_t minlen, extlen_t maxlen,
			     fsblock_t start, extlen_t len)
{
	extlen_t i;

	REQUIRE(len >= minlen && len <= maxlen,
		"alloc(goal %" PRIu64 ", %" PRIu64 "..%" PRIu64 ") returned %" PRIu64 " blocks",
		goal, minlen, maxlen, len);
	REQUIRE(start > 0 && start < e->nblocks && len <= e->nblocks - start,
		"alloc returned %" PRIu64 "+%" PRIu64 " outside the fs", start, len);
	for (i = 0; i < len; i++) {
		REQUIRE(!fs_is_static_block(e->fs, start + i),
			"alloc returned static block %" PRIu64, start + i);
		REQUIRE(!e->m.used[start + i],
			"alloc returned block %" PRIu64 " that the test already owns", start + i);
	}
}

static extlen_t largest_free(struct rfs_fs *fs)
{
	struct rfs_btree_cursor cur;
	extlen_t len = 0;

	btree_cursor_init(&cur, &fs->cnt);
	if (btree_last(&cur) == 0)
		len = rfs_get_le64(btree_cursor_rec(&cur, NULL));
	btree_cursor_done(&cur);
	return len;
}

/* alloc_extent mirrored in the model. On -ENOSPC checks that there really
 * is no free extent of MINLEN blocks (and, when a snapshot was affordable,
 * that the failing call changed nothing). */
static int do_alloc(struct env *e, fsblock_t goal, extlen_t minlen, extlen_t maxlen,
		    struct ext *out)
{
	struct snap before, after;
	int snap = e->fs->sb.free_blocks <= SNAP_FREE_MAX;
	fsblock_t start = 0;
	extlen_t len = 0;
	int ret;

	if (snap)
		snap_take(e->fs, &before);
	ret = alloc_extent(e->fs, goal, minlen, maxlen, &start, &len);
	e->ops++;
	if (ret == -ENOSPC) {
		REQUIRE(largest_free(e->fs) < minlen,
			"ENOSPC for %" PRIu64 " blocks with a free extent of %" PRIu64, minlen,
			largest_free(e->fs));
		e->enospc++;
		if (snap) {
			e->enospc_snap++;
			snap_take(e->fs, &after);
			snap_assert_equal(&before, &after, "failed alloc");
			snap_free(&after);
		}
	}
	if (snap)
		snap_free(&before);
	if (ret)
		return ret;
	check_new_extent(e, goal, minlen, maxlen, start, len);
	model_mark(&e->m, start, len, 1);
	ev_push(&e->m.ext, start, len);
	e->last_end = start + len;
	if (out)
		*out = (struct ext){start, len};
	return 0;
}

/* Frees OFF..OFF+LEN of model extent IDX, splitting it in the model. */
static void do_free_piece(struct env *e, size_t idx, extlen_t off, extlen_t len)
{
	struct ext x = e->m.ext.v[idx];
	struct ext left = {x.start, off}, right = {x.start + off + len, x.len - off - len};
	int ret;

	REQ(off + len <= x.len && len > 0);
	ret = free_extent(e->fs, x.start + off, len);
	e->ops++;
	REQUIRE(ret == 0, "free_extent(%" PRIu64 "+%" PRIu64 "): %d", x.start + off, len, ret);
	model_mark(&e->m, x.start + off, len, 0);
	if (left.len && right.len) {
		e->m.ext.v[idx] = left;
		ev_push(&e->m.ext, right.start, right.len);
	} else if (left.len || right.len) {
		e->m.ext.v[idx] = left.len ? left : right;
	} else {
		e->m.ext.v[idx] = e->m.ext.v[--e->m.ext.n];
	}
}

/* Goals at the edges: static blocks, the last block, past the end. */
static fsblock_t odd_goal(struct env *e)
{
	const struct rfs_sb_info *sb = &e->fs->sb;

	switch (rng_below(&e->rng, 6)) {
	case 0:
		return sb->backup[rng_below(&e->rng, RFS_NR_BACKUPS)];
	case 1:
		return sb->backup[0] + 1;
	case 2:
		return sb->journal_start + rng_below(&e->rng, sb->journal_blocks + 1);
	case 3:
		return sb->block_count - 2;
	case 4:
		return sb->block_count + rng_below(&e->rng, 3);
	default:
		return UINT64_MAX - rng_below(&e->rng, 3);
	}
}

static fsblock_t pick_goal(struct env *e)
{
	struct ext x;
	uint64_t d;

	if (rng_below(&e->rng, 50) == 0)
		return odd_goal(e);
	switch (rng_below(&e->rng, 4)) {
	case 0:
		return rng_below(&e->rng, e->nblocks);
	case 1:
		if (!e->m.ext.n)
			return 0;
		x = e->m.ext.v[rng_below(&e->rng, e->m.ext.n)];
		d = rng_below(&e->rng, 5);
		return x.start + x.len + d >= 2 ? x.start + x.len + d - 2 : 0;
	case 2:
		return e->last_end;
	default:
		return 0;
	}
}

static void pick_lens(struct env *e, extlen_t *minlen, extlen_t *maxlen)
{
	uint64_t r = rng_below(&e->rng, 10);

	*minlen = r < 5 ? 1 : r < 8 ? 1 + rng_below(&e->rng, 8) : 1 + rng_below(&e->rng, e->cap);
	*maxlen = *minlen + (rng_below(&e->rng, 2) ? 0 : rng_below(&e->rng, e->cap));
	r = rng_below(&e->rng, 200);
	if (r == 0) /* "as much as you can get" */
		*maxlen = UINT64_MAX;
	else if (r == 1) /* more than the whole disk */
		*minlen = *maxlen = e->nblocks + rng_below(&e->rng, 2);
}

static void random_alloc(struct env *e)
{
	extlen_t minlen, maxlen;
	fsblock_t goal = pick_goal(e);
	int ret;

	pick_lens(e, &minlen, &maxlen);
	ret = do_alloc(e, goal, minlen, maxlen, NULL);
	REQUIRE(ret == 0 || ret == -ENOSPC, "alloc_extent: %d", ret);
}

static void random_free(struct env *e)
{
	size_t idx = rng_below(&e->rng, e->m.ext.n);
	struct ext x = e->m.ext.v[idx];
	extlen_t off = 0, len = x.len;

	if (rng_below(&e->rng, 2)) {
		off = rng_below(&e->rng, x.len);
		len = 1 + rng_below(&e->rng, x.len - off);
	}
	do_free_piece(e, idx, off, len);
}

/* Tries to free (part of) a free extent, or a range that straddles an
 * owned block and a free one: must fail with -EUCLEAN and change nothing. */
static void probe_bad_free(struct env *e)
{
	struct extvec fr = {0};
	struct snap before, after;
	struct ext x;
	fsblock_t start;
	extlen_t len;
	int ret;

	read_free(&e->fs->bno, &fr);
	if (!fr.n) {
		ev_free(&fr);
		return;
	}
	x = fr.v[rng_below(&e->rng, fr.n)];
	ev_free(&fr);
	start = x.start + rng_below(&e->rng, x.len);
	len = 1 + rng_below(&e->rng, x.start + x.len - start);
	if (e->m.used[x.start - 1] && rng_below(&e->rng, 2)) {
		start = x.start - 1; /* owned block, then free ones */
		len = 2;
	}
	snap_take(e->fs, &before);
	test_log_errors = 0;
	ret = free_extent(e->fs, start, len);
	REQUIRE(ret == -EUCLEAN, "double free of %" PRIu64 "+%" PRIu64 ": %d", start, len, ret);
	REQ_UCMP(test_log_errors, ==, 1);
	test_log_errors = 0;
	snap_take(e->fs, &after);
	snap_assert_equal(&before, &after, "double free");
	snap_free(&before);
	snap_free(&after);
}

/* One random step; allocations are favoured while the model holds less
 * than TARGET blocks. */
static void random_step(struct env *e, uint64_t target)
{
	uint64_t r = rng_below(&e->rng, 1000);
	int want_alloc = e->m.used_blocks < target ? r < 650 : r < 350;

	if (want_alloc || !e->m.ext.n)
		random_alloc(e);
	else
		random_free(e);
}

/* NOPS random steps. The fill level aimed at changes every 2000 steps
 * (5% to 100%), or stays at FIXED_TARGET blocks if that is set. */
static void random_phase(struct env *e, uint64_t nops, uint64_t verify_every, uint64_t fixed_target)
{
	uint64_t i, target = fixed_target;

	for (i = 0; i < nops; i++) {
		if (!fixed_target && i % 2000 == 0)
			target = e->free0 / 20 * (1 + rng_below(&e->rng, 20));
		random_step(e, target);
		if (rng_below(&e->rng, 1000) == 0)
			probe_bad_free(e);
		if ((i + 1) % verify_every == 0)
			verify(e);
	}
	verify(e);
}

/* Allocates until even one block fails, with shrinking requests. */
static void fill_phase(struct env *e, extlen_t cap)
{
	extlen_t maxmin = cap;
	int ret;

	for (;;) {
		extlen_t minlen = 1 + rng_below(&e->rng, maxmin);
		extlen_t maxlen = minlen + rng_below(&e->rng, cap);
		ret = do_alloc(e, pick_goal(e), minlen, maxlen, NULL);
		if (ret == -ENOSPC && minlen == 1)
			break;
		REQUIRE(ret == 0 || ret == -ENOSPC, "alloc_extent: %d", ret);
		if (ret == -ENOSPC)
			maxmin = RFS_MAX(maxmin / 2, 1);
	}
	REQ_UCMP(e->fs->sb.free_blocks, ==, 0);
	verify(e);
}

/* Frees everything the model owns, in random order and random pieces. */
static void free_all_phase(struct env *e)
{
	struct totals t;

	while (e->m.ext.n)
		random_free(e);
	REQ_UCMP(e->m.used_blocks, ==, 0);
	/* All blocks are back: free space plus the free-space trees' own
	 * blocks (nodes and reserve) is exactly what it was after mkfs. */
	t = verify_fs(e->fs, &e->m, 1);
	REQ_UCMP(t.free + t.fl + t.fsp_nodes, ==, e->reserve0);
}

/* --- 1. model tests -------------------------------------------------------------- */

/* Random churn, two fills to ENOSPC, two frees of everything. The trees
 * must reach MIN_HEIGHT at some point for the run to mean much. */
static void model_run(unsigned block_log, uint64_t bytes, const char *name, uint64_t seed,
		      uint64_t nops, uint32_t min_height)
{
	struct env e;

	env_open(&e, block_log, bytes, name, seed);
	random_phase(&e, nops, 1000, 0);
	fill_phase(&e, e.cap);
	random_phase(&e, nops / 2, 1000, 0);
	fill_phase(&e, 8);
	free_all_phase(&e);
	random_phase(&e, nops / 2, 1000, 0);
	free_all_phase(&e);
	REQ_UCMP(e.max_height, >=, min_height);
	REQ_UCMP(e.enospc_snap, >=, 2);
	REQ_UCMP(test_log_errors, ==, 0);
	env_close(&e);
}

START_TEST(test_model_1k)
{
	model_run(10, 16ull << 20, "model_1k", 0xa110c001, test_scale(60000), 2);
}
END_TEST

/* The smallest filesystem there is: ENOSPC all the time. */
START_TEST(test_model_tiny)
{
	model_run(10, 512ull << 10, "model_tiny", 0xa110c512, test_scale(20000), 1);
}
END_TEST

START_TEST(test_model_4k)
{
	model_run(12, 64ull << 20, "model_4k", 0xa110c004, test_scale(40000), 2);
}
END_TEST

/* Rebuilds the model's extent list as the maximal runs of owned blocks
 * (freeing a run that spans two allocations is as legal as freeing each). */
static void model_rebuild_exts(struct model *m, uint64_t nblocks)
{
	uint64_t b = 0, run;

	m->ext.n = 0;
	while (b < nblocks) {
		if (!m->used[b]) {
			b++;
			continue;
		}
		for (run = 0; b + run < nblocks && m->used[b + run]; run++)
			;
		ev_push(&m->ext, b, run);
		b += run;
	}
}

/* Fills the disk with large extents, then frees every odd block. */
static void fragment_all(struct env *e)
{
	uint64_t b;
	int ret;

	fill_phase(e, 1024);
	for (b = 1; b < e->nblocks; b += 2) {
		if (!e->m.used[b])
			continue;
		ret = free_extent(e->fs, b, 1);
		e->ops++;
		REQUIRE(ret == 0, "free_extent(%" PRIu64 "): %d", b, ret);
		model_mark(&e->m, b, 1, 0);
	}
	model_rebuild_exts(&e->m, e->nblocks);
	verify(e);
}

START_TEST(test_model_fragmented)
{
	struct env e;

	env_open(&e, 10, 64ull << 20, "model_fragmented", 0xa110c0f1);
	e.cap = 4;
	fragment_all(&e);
	printf("fragmented: %" PRIu64 " free extents, bno height %u, cnt height %u\n",
	       verify_fs(e.fs, &e.m, 1).nfree, e.fs->bno.height, e.fs->cnt.height);
	REQ_UCMP(e.fs->bno.height, >=, 3);
	REQ_UCMP(e.fs->cnt.height, >=, 3);
	/* Churn at about the fragmented fill level: mostly single blocks. */
	random_phase(&e, test_scale(40000), 5000, e.m.used_blocks);
	fill_phase(&e, 4);
	free_all_phase(&e);
	REQ_UCMP(test_log_errors, ==, 0);
	env_close(&e);
}
END_TEST

/* Takes free list entries until it holds TARGET, giving the blocks to the
 * model (as if tree splits had used them): the reserve is run down without
 * anything leaking. */
static void steal_freelist(struct env *e, uint32_t target)
{
	struct rfs_freelist *fl;
	struct rfs_buf *bp;
	uint32_t n;

	REQ_ICMP(buf_read(e->fs->cache, e->fs->sb.freelist_blkno, &rfs_freelist_buf_ops, &bp), ==,
		 0);
	fl = (struct rfs_freelist *)bp->data;
	for (n = le32_get(fl->count); n > target; n--) {
		fsblock_t b = le64_get(fl->blocks[n - 1]);
		fl->blocks[n - 1] = 0;
		model_mark(&e->m, b, 1, 1);
		ev_push(&e->m.ext, b, 1);
	}
	fl->count = le32_make(n);
	buf_dirty(bp);
	buf_release(bp);
}

static uint32_t freelist_count(struct rfs_fs *fs)
{
	fsblock_t dummy;
	uint32_t n;

	REQ_ICMP(alloc_freelist_read(fs, &dummy, 0, &n), ==, 0);
	return n;
}

/* A full disk, a file of 10 blocks deleted, a free list below its low mark
 * (but above half of it): an allocation of 11 blocks fails without changing
 * anything, and one of 10 gets them (the reserve top-up must not take the
 * space the allocation needs). */
START_TEST(test_enospc_low_reserve)
{
	struct ext r;
	struct env e;
	size_t i;

	env_open(&e, 10, 8ull << 20, "enospc_low_reserve", 0xa110c0e5);
	fill_phase(&e, 64);
	for (i = 0; e.m.ext.v[i].len < 12; i++)
		REQ(i + 1 < e.m.ext.n);
	do_free_piece(&e, i, 1, 10);
	REQ_UCMP(e.fs->sb.free_blocks, ==, 10);
	steal_freelist(&e, alloc_freelist_low(e.fs) - 1);
	REQ_UCMP(freelist_count(e.fs), >=, alloc_freelist_low(e.fs) / 2);
	REQ_ICMP(do_alloc(&e, 0, 11, 11, NULL), ==, -ENOSPC);
	REQ_UCMP(e.enospc_snap, ==, e.enospc);
	REQ_ICMP(do_alloc(&e, 0, 10, 10, &r), ==, 0);
	REQ_UCMP(r.len, ==, 10);
	REQ_UCMP(e.fs->sb.free_blocks, ==, 0);
	verify(&e);
	free_all_phase(&e);
	REQ_UCMP(test_log_errors, ==, 0);
	env_close(&e);
}
END_TEST

/* --- 2. double frees and static blocks -------------------------------------------- */

static void expect_bad_free(struct env *e, fsblock_t start, extlen_t len)
{
	struct snap before, after;
	int ret;

	snap_take(e->fs, &before);
	test_log_errors = 0;
	ret = free_extent(e->fs, start, len);
	REQUIRE(ret == -EUCLEAN, "free_extent(%" PRIu64 "+%" PRIu64 "): %d, expected -EUCLEAN",
		start, len, ret);
	REQ_UCMP(test_log_errors, ==, 1);
	test_log_errors = 0;
	snap_take(e->fs, &after);
	snap_assert_equal(&before, &after, "rejected free");
	snap_free(&before);
	snap_free(&after);
}

static void expect_bad_alloc(struct env *e, extlen_t minlen, extlen_t maxlen)
{
	struct snap before, after;
	fsblock_t start = 0;
	extlen_t len = 0;

	snap_take(e->fs, &before);
	REQ_ICMP(alloc_extent(e->fs, 0, minlen, maxlen, &start, &len), ==, -EINVAL);
	snap_take(e->fs, &after);
	snap_assert_equal(&before, &after, "rejected alloc");
	snap_free(&before);
	snap_free(&after);
}

START_TEST(test_bad_free)
{
	const struct rfs_sb_info *sb;
	struct ext a, b, c;
	struct env e;

	env_open(&e, 10, 16ull << 20, "bad_free", 0xa110c0b1);
	sb = &e.fs->sb;
	REQ_ICMP(do_alloc(&e, 0, 100, 100, &a), ==, 0);
	REQ_ICMP(do_alloc(&e, a.start + a.len, 50, 50, &b), ==, 0);
	REQ_ICMP(do_alloc(&e, b.start + b.len, 30, 30, &c), ==, 0);
	REQ_UCMP(b.start, ==, a.start + a.len);
	REQ_UCMP(c.start, ==, b.start + b.len);
	do_free_piece(&e, 1, 0, b.len); /* b: model index 1 */
	verify(&e);

	expect_bad_free(&e, b.start, b.len);		     /* the same extent again */
	expect_bad_free(&e, b.start + 10, 5);		     /* inside it */
	expect_bad_free(&e, a.start + a.len - 1, 2);	     /* a's last + b's first */
	expect_bad_free(&e, b.start + b.len - 1, 2);	     /* b's last + c's first */
	expect_bad_free(&e, a.start, a.len + b.len + c.len); /* all three */
	expect_bad_free(&e, 0, 1);			     /* superblock */
	expect_bad_free(&e, sb->freelist_blkno, 1);
	expect_bad_free(&e, sb->journal_start, 1);
	expect_bad_free(&e, sb->journal_start + sb->journal_blocks - 1, 2);
	expect_bad_free(&e, sb->backup[0], 1);
	expect_bad_free(&e, sb->backup[0] - 1, 3);
	expect_bad_free(&e, sb->backup[1], 1);
	expect_bad_free(&e, sb->block_count - 3, 3);
	expect_bad_free(&e, sb->block_count, 1);  /* past the end */
	expect_bad_free(&e, c.start, 0);	  /* empty */
	expect_bad_free(&e, c.start, UINT64_MAX); /* wraps */
	expect_bad_free(&e, UINT64_MAX, 2);
	expect_bad_alloc(&e, 0, 5);
	expect_bad_alloc(&e, 6, 5);
	verify(&e);
	/* Also with the free list below its low mark: the refused call must
	 * not top it up either. */
	steal_freelist(&e, alloc_freelist_low(e.fs) - 1);
	expect_bad_free(&e, b.start, b.len);
	expect_bad_free(&e, sb->backup[0], 1);
	verify(&e);

	/* a and c are still allocated: freeing them works, exactly once. */
	free_all_phase(&e);
	expect_bad_free(&e, a.start, a.len);
	expect_bad_free(&e, c.start, c.len);
	verify(&e);
	env_close(&e);
}
END_TEST

/* Random double frees on a busy filesystem (besides the 1-in-1000 probes
 * of the model tests). */
START_TEST(test_bad_free_random)
{
	struct env e;
	int i;

	env_open(&e, 10, 8ull << 20, "bad_free_random", 0xa110c0b2);
	for (i = 0; i < 200; i++) {
		random_phase(&e, 100, 1000000, e.free0 / 2);
		probe_bad_free(&e);
	}
	verify(&e);
	free_all_phase(&e);
	env_close(&e);
}
END_TEST

/* --- 3. contiguity ------------------------------------------------------------------ */

/* Allocates COUNT blocks one at a time with goal chaining from GOAL;
 * returns the number of separate runs they landed in. */
static unsigned chain_runs(struct env *e, fsblock_t goal, unsigned count, fsblock_t *end)
{
	unsigned i, runs = 0;
	struct ext x;

	for (i = 0; i < count; i++) {
		REQ_ICMP(do_alloc(e, goal, 1, 1, &x), ==, 0);
		if (i == 0 || x.start != goal)
			runs++;
		goal = x.start + 1;
	}
	*end = goal;
	return runs;
}

START_TEST(test_contiguous_extents)
{
	struct env e;
	struct ext x;
	fsblock_t end;
	int i;

	env_open(&e, 10, 32ull << 20, "contiguous_extents", 0xa110cc01);
	REQ_ICMP(do_alloc(&e, 0, 1, 1, &x), ==, 0);
	end = x.start + x.len;
	for (i = 0; i < 500; i++) {
		extlen_t len = 1 + rng_below(&e.rng, 16);
		REQ_ICMP(do_alloc(&e, end, len, len, &x), ==, 0);
		REQ_UCMP(x.start, ==, end);
		end += len;
	}
	/* Variable requests take what is at the goal, up to MAXLEN. */
	for (i = 0; i < 500; i++) {
		extlen_t max = 1 + rng_below(&e.rng, 32);
		REQ_ICMP(do_alloc(&e, end, 1, max, &x), ==, 0);
		REQ_UCMP(x.start, ==, end);
		REQ_UCMP(x.len, ==, max);
		end += max;
	}
	verify(&e);
	env_close(&e);
}
END_TEST

START_TEST(test_contiguous_file)
{
	fsblock_t end;
	struct env e;
	unsigned runs;

	env_open(&e, 10, 32ull << 20, "contiguous_file", 0xa110cc02);
	runs = chain_runs(&e, 0, 10000, &end);
	printf("10000 chained one-block allocations: %u run(s)\n", runs);
	REQ_UCMP(runs, <=, 3);
	verify(&e);
	env_close(&e);
}
END_TEST

/* Two files growing in turns, each chaining its own goal. */
START_TEST(test_contiguous_interleaved)
{
	unsigned runs[2] = {0, 0};
	fsblock_t goal[2];
	struct env e;
	struct ext x;
	int i, f;

	env_open(&e, 10, 32ull << 20, "contiguous_interleaved", 0xa110cc03);
	goal[0] = e.fs->sb.journal_start + e.fs->sb.journal_blocks;
	goal[1] = e.fs->sb.backup[0] + 1;
	for (i = 0; i < 4000; i++) {
		f = i % 2;
		REQ_ICMP(do_alloc(&e, goal[f], 1, 1, &x), ==, 0);
		if (i < 2 || x.start != goal[f])
			runs[f]++;
		goal[f] = x.start + 1;
	}
	printf("interleaved files: %u and %u run(s)\n", runs[0], runs[1]);
	REQ_UCMP(runs[0], <=, 3);
	REQ_UCMP(runs[1], <=, 3);
	verify(&e);
	env_close(&e);
}
END_TEST

/* --- 4. near goal --------------------------------------------------------------------- */

/* Frees holes of 1..6 blocks between owned runs of 1..10 in extent W. */
static void punch_holes(struct env *e, struct ext w)
{
	fsblock_t b = w.start + 1, end = w.start + w.len - 1;
	int ret;

	while (b < end) {
		extlen_t hole = RFS_MIN(1 + rng_below(&e->rng, 6), end - b);
		ret = free_extent(e->fs, b, hole);
		e->ops++;
		REQ_ICMP(ret, ==, 0);
		model_mark(&e->m, b, hole, 0);
		b += hole + 1 + rng_below(&e->rng, 10);
	}
	model_rebuild_exts(&e->m, e->nblocks);
}

/* Gives back the extent that do_alloc() just added (the model's last). */
static void free_last(struct env *e, struct ext x)
{
	size_t last = e->m.ext.n - 1;

	REQ_UCMP(e->m.ext.v[last].start, ==, x.start);
	do_free_piece(e, last, 0, x.len);
}

static struct ext random_free_ext_in(struct env *e, struct ext w, struct extvec *fr)
{
	for (;;) {
		struct ext x = fr->v[rng_below(&e->rng, fr->n)];
		if (x.start >= w.start && x.start + x.len <= w.start + w.len)
			return x;
	}
}

/* A goal inside a free extent is honoured exactly. */
static void exact_goal_probe(struct env *e, struct ext w)
{
	struct extvec fr = {0};
	struct ext x, r;
	fsblock_t goal;
	extlen_t len, maxlen;

	REQ_ICMP(alloc_fix_freelist(e->fs), ==, 0);
	read_free(&e->fs->bno, &fr);
	x = random_free_ext_in(e, w, &fr);
	ev_free(&fr);
	goal = x.start + rng_below(&e->rng, x.len);
	len = 1 + rng_below(&e->rng, x.start + x.len - goal);
	if (rng_below(&e->rng, 2)) {
		REQ_ICMP(do_alloc(e, goal, len, len, &r), ==, 0);
		REQ_UCMP(r.len, ==, len);
	} else {
		maxlen = len + rng_below(&e->rng, 8);
		REQ_ICMP(do_alloc(e, goal, 1, maxlen, &r), ==, 0);
		REQ_UCMP(r.len, ==, RFS_MIN(maxlen, x.start + x.len - goal));
	}
	REQUIRE(r.start == goal, "goal %" PRIu64 " free, got %" PRIu64, goal, r.start);
	free_last(e, r);
}

/* The best placement for LEN blocks among NEAR_SCAN free extents on each
 * side of GOAL (an allocated block), as a distance; UINT64_MAX if none. */
static uint64_t near_best(const struct extvec *fr, fsblock_t goal, extlen_t len)
{
	uint64_t best = UINT64_MAX;
	size_t i = 0, k;

	while (i < fr->n && fr->v[i].start < goal)
		i++;
	for (k = i; k < fr->n && k < i + NEAR_SCAN; k++)
		if (fr->v[k].len >= len)
			best = RFS_MIN(best, fr->v[k].start - goal);
	for (k = i; k > 0 && k + NEAR_SCAN > i; k--) {
		const struct ext *x = &fr->v[k - 1];
		if (x->len >= len)
			best = RFS_MIN(best, goal - (x->start + x->len - len));
	}
	return best;
}

/* A goal in an allocated region gets a nearby extent. Returns 1 if the
 * neighbourhood had a candidate (and the result was checked against it). */
static int near_goal_probe(struct env *e, struct ext w)
{
	struct extvec fr = {0};
	extlen_t len = 1 + rng_below(&e->rng, 6);
	fsblock_t goal;
	uint64_t best;
	struct ext r;

	REQ_ICMP(alloc_fix_freelist(e->fs), ==, 0);
	read_free(&e->fs->bno, &fr);
	do
		goal = w.start + rng_below(&e->rng, w.len);
	while (!e->m.used[goal]);
	best = near_best(&fr, goal, len);
	ev_free(&fr);
	REQ_ICMP(do_alloc(e, goal, len, len, &r), ==, 0);
	if (best != UINT64_MAX)
		REQUIRE(distance(r.start, goal) <= best,
			"goal %" PRIu64 " (allocated), len %" PRIu64 ": got %" PRIu64 ", %" PRIu64
			" away; a neighbour extent is %" PRIu64 " away",
			goal, len, r.start, distance(r.start, goal), best);
	free_last(e, r);
	return best != UINT64_MAX;
}

START_TEST(test_near_goal)
{
	struct env e;
	struct ext w;
	int i, checked = 0;

	env_open(&e, 10, 16ull << 20, "near_goal", 0xa110c0e1);
	REQ_ICMP(do_alloc(&e, 0, 6000, 6000, &w), ==, 0);
	punch_holes(&e, w);
	verify(&e);
	for (i = 0; i < 500; i++)
		exact_goal_probe(&e, w);
	for (i = 0; i < 500; i++)
		checked += near_goal_probe(&e, w);
	printf("near goal: %d of 500 probes had a candidate within %d extents\n", checked,
	       NEAR_SCAN);
	REQ_ICMP(checked, >=, 450);
	verify(&e);
	free_all_phase(&e);
	env_close(&e);
}
END_TEST

/* --- 5. persistence ------------------------------------------------------------------- */

static void env_clone(struct env *dst, const struct env *src)
{
	*dst = *src;
	dst->name = "copy";
	dst->fs = clone_fs(src->fs, 0);
	dst->m.used = malloc(src->nblocks);
	REQ(NULL != dst->m.used);
	memcpy(dst->m.used, src->m.used, src->nblocks);
	memset(&dst->m.ext, 0, sizeof(dst->m.ext));
	for (size_t i = 0; i < src->m.ext.n; i++)
		ev_push(&dst->m.ext, src->m.ext.v[i].start, src->m.ext.v[i].len);
}

static void assert_same_fs(struct rfs_fs *a, struct rfs_fs *b, const char *what)
{
	struct snap sa, sb;

	snap_take(a, &sa);
	snap_take(b, &sb);
	snap_assert_equal(&sa, &sb, what);
	snap_free(&sa);
	snap_free(&sb);
}

/* A read-only copy of E's filesystem refuses to allocate, or to free an
 * extent E owns, and changes nothing. */
static void check_readonly(struct env *e)
{
	struct rfs_fs *ro = clone_fs(e->fs, RFS_FS_RDONLY);
	fsblock_t start;
	extlen_t len;

	REQ(ro->readonly);
	REQ(e->m.ext.n > 0);
	REQ_ICMP(alloc_extent(ro, 0, 1, 1, &start, &len), ==, -EROFS);
	REQ_ICMP(free_extent(ro, e->m.ext.v[0].start, e->m.ext.v[0].len), ==, -EROFS);
	assert_same_fs(e->fs, ro, "read-only copy after refused calls");
	REQ_ICMP(fs_close(ro), ==, 0);
}

/* The on-disk image after fs_sync, opened with a fresh cache, holds the
 * same free space; and both copies then behave identically. */
START_TEST(test_persist_mem)
{
	struct env e1, e2;
	uint64_t i;

	env_open(&e1, 10, 16ull << 20, "persist_mem", 0xa110c5a1);
	random_phase(&e1, test_scale(20000), 5000, 0);
	REQ_ICMP(fs_sync(e1.fs), ==, 0);
	check_readonly(&e1);
	env_clone(&e2, &e1);
	assert_same_fs(e1.fs, e2.fs, "fresh open of the synced image");
	verify_fs(e2.fs, &e2.m, 0);
	verify(&e2); /* fixes e2's free list: do the same on e1 */
	REQ_ICMP(alloc_fix_freelist(e1.fs), ==, 0);
	for (i = 0; i < test_scale(5000); i++) {
		random_step(&e1, e1.free0 / 2);
		random_step(&e2, e2.free0 / 2);
		REQ_UCMP(e1.last_end, ==, e2.last_end);
		REQ_UCMP(e1.m.used_blocks, ==, e2.m.used_blocks);
		REQ_UCMP(e1.m.ext.n, ==, e2.m.ext.n);
	}
	assert_same_fs(e1.fs, e2.fs, "same operations on both copies");
	REQ(memcmp(e1.m.used, e2.m.used, e1.nblocks) == 0);
	verify(&e1);
	verify(&e2);
	env_close(&e2);
	env_close(&e1);
}
END_TEST

START_TEST(test_persist_file)
{
	const char *tmp = getenv("TMPDIR");
	char path[512], why[256] = "";
	struct rfs_dev *dev;
	struct snap before, after;
	struct env e;
	int fd;

	snprintf(path, sizeof(path), "%s/rfs-test-alloc-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	fd = mkstemp(path);
	REQ_ICMP(fd, >=, 0);
	close(fd);
	REQ_ICMP(dev_open_file(path, RFS_DEV_CREATE, 16ull << 20, &dev), ==, 0);
	env_init(&e, format_and_open(dev, 12), "persist_file", 0xa110c5f1);
	random_phase(&e, test_scale(10000), 2000, 0);
	snap_take(e.fs, &before);
	REQ_ICMP(fs_close(e.fs), ==, 0);
	REQ_ICMP(dev_open_file(path, 0, 0, &dev), ==, 0);
	REQUIRE(fs_open(dev, OPEN_FLAGS, CACHE_BYTES, &e.fs, why, sizeof(why)) == 0, "%s", why);
	snap_take(e.fs, &after);
	snap_assert_equal(&before, &after, "close and reopen");
	snap_free(&before);
	snap_free(&after);
	verify(&e);
	random_phase(&e, test_scale(5000), 2500, 0);
	free_all_phase(&e);
	env_close(&e);
	unlink(path);
}
END_TEST

/* --- busy extents ------------------------------------------------------------------ */

/* Blocks freed in a transaction that is not durable yet must not be handed
 * out again until it is: a crash would leave the old owner pointing at
 * blocks someone else overwrote. With a journal attached. */
START_TEST(test_busy_extents)
{
	struct rfs_mkfs_opts o = {.block_log = 12};
	struct rfs_handle *h;
	struct rfs_sb_info sb;
	struct rfs_dev *dev;
	struct rfs_fs *fs;
	fsblock_t a, b, c;
	extlen_t la, lb, lc;
	char why[256] = "";

	ck_assert_int_eq(dev_open_mem(64ull << 20, &dev), 0);
	ck_assert_int_eq(fs_create(dev, &o, &sb, why, sizeof(why)), 0);
	ck_assert_int_eq(fs_open(dev, 0, CACHE_BYTES, &fs, why, sizeof(why)), 0);
	ck_assert_ptr_nonnull(fs->journal);

	/* A is allocated and committed, then freed: busy until the commit. */
	ck_assert_int_eq(txn_start(fs, 256, &h), 0);
	ck_assert_int_eq(alloc_extent(fs, 0, 16, 16, &a, &la), 0);
	ck_assert_int_eq(txn_stop(h), 0);
	ck_assert_int_eq(journal_commit(fs), 0);
	ck_assert_int_eq(txn_start(fs, 256, &h), 0);
	ck_assert_int_eq(free_extent(fs, a, la), 0);
	/* Asked for exactly A's place: A is free in the trees but busy. */
	ck_assert_int_eq(alloc_extent(fs, a, 1, 16, &b, &lb), 0);
	ck_assert(b + lb <= a || b >= a + la);
	ck_assert_int_eq(free_extent(fs, b, lb), 0);
	ck_assert_int_eq(txn_stop(h), 0);
	ck_assert_int_eq(journal_commit(fs), 0);

	/* Durable now: A may be reused. */
	ck_assert_int_eq(txn_start(fs, 256, &h), 0);
	ck_assert_int_eq(alloc_extent(fs, a, 16, 16, &c, &lc), 0);
	ck_assert_uint_eq(c, a);
	ck_assert_int_eq(txn_stop(h), 0);
	ck_assert_int_eq(fs_close(fs), 0);
}
END_TEST

/* Many small extents freed at once are all busy, and they are the
 * smallest free extents: an allocation must still find the big free
 * extent that is not busy, not fail with ENOSPC. */
START_TEST(test_busy_small_extents)
{
	enum { N = 200 };
	struct rfs_mkfs_opts o = {.block_log = 12};
	struct rfs_handle *h;
	struct rfs_sb_info sb;
	struct rfs_dev *dev;
	struct rfs_fs *fs;
	fsblock_t blk[N], b;
	extlen_t l;
	char why[256] = "";
	int i;

	ck_assert_int_eq(dev_open_mem(64ull << 20, &dev), 0);
	ck_assert_int_eq(fs_create(dev, &o, &sb, why, sizeof(why)), 0);
	ck_assert_int_eq(fs_open(dev, 0, CACHE_BYTES, &fs, why, sizeof(why)), 0);
	ck_assert_int_eq(txn_start(fs, 4096, &h), 0);
	for (i = 0; i < N; i++) {
		ck_assert_int_eq(alloc_extent(fs, i ? blk[i - 1] + 1 : 0, 1, 1, &blk[i], &l), 0);
		ck_assert_uint_eq(blk[i], i ? blk[i - 1] + 1 : blk[0]);
	}
	ck_assert_int_eq(txn_stop(h), 0);
	ck_assert_int_eq(journal_commit(fs), 0);
	/* every other one freed: N/2 one-block free extents, all busy */
	ck_assert_int_eq(txn_start(fs, 4096, &h), 0);
	for (i = 0; i < N; i += 2)
		ck_assert_int_eq(free_extent(fs, blk[i], 1), 0);
	ck_assert_int_eq(alloc_extent(fs, blk[0], 1, 1, &b, &l), 0);
	for (i = 0; i < N; i += 2)
		ck_assert_uint_ne(b, blk[i]);
	ck_assert_int_eq(txn_stop(h), 0);
	ck_assert_int_eq(fs_close(fs), 0);
}
END_TEST

/* --- 3. rebuild (fsck) --------------------------------------------------------------- */

static void mark_node_only(void *arg, const struct rfs_btree *t, fsblock_t blkno, unsigned level)
{
	(void)t;
	(void)level;
	((uint8_t *)arg)[blkno] = 1;
}

/* What fsck computes before alloc_rebuild: every block that is not static,
 * not owned by the model and not a node of a tree other than bno/cnt. The
 * old free list and free-space tree nodes are free again. */
static void free_from_model(struct env *e, struct extvec *out)
{
	uint8_t *used = calloc(e->nblocks, 1);
	struct rfs_btree *keep[] = {&e->fs->inodes, &e->fs->dirs};
	uint64_t b, run;
	unsigned i;

	REQ(NULL != used);
	for (i = 0; i < RFS_ARRAY_SIZE(keep); i++) {
		struct rfs_btree_check chk = {.visit_node = mark_node_only, .arg = used};
		REQ_ICMP(btree_check(keep[i], &chk), ==, 0);
	}
	for (b = 0; b < e->nblocks; b++)
		used[b] |= e->m.used[b] || fs_is_static_block(e->fs, b);
	for (b = 0; b < e->nblocks; b += run) {
		for (run = 0; b + run < e->nblocks && used[b + run] == used[b]; run++)
			;
		if (!used[b])
			ev_push(out, b, run);
	}
	free(used);
}

static void swap_first_two(struct extvec *ev)
{
	struct ext t = ev->v[0];

	ev->v[0] = ev->v[1];
	ev->v[1] = t;
}

static int rebuild(struct env *e, const struct extvec *free_exts)
{
	_Static_assert(sizeof(struct ext) == sizeof(struct rfs_free_ext), "same layout");
	return alloc_rebuild(e->fs, (const struct rfs_free_ext *)free_exts->v, free_exts->n);
}

/* A fragmented disk (thousands of one-block extents, trees of height 3)
 * rebuilt from the model alone gives trees, free list and count that the
 * full verifier accepts, with every block accounted for; the allocator
 * then works on them. A refused call changes nothing. */
START_TEST(test_rebuild)
{
	struct extvec fx = {0};
	struct snap before, after;
	struct env e;

	env_open(&e, 10, 16ull << 20, "rebuild", 0xa110c0eb);
	e.cap = 4;
	fragment_all(&e);
	free_from_model(&e, &fx);
	REQ_UCMP(fx.n, >, 2000);
	/* unsorted input is refused before anything changes */
	snap_take(e.fs, &before);
	swap_first_two(&fx);
	REQ_ICMP(rebuild(&e, &fx), ==, -EINVAL);
	swap_first_two(&fx);
	snap_take(e.fs, &after);
	snap_assert_equal(&before, &after, "refused rebuild");
	snap_free(&before);
	snap_free(&after);

	REQ_ICMP(rebuild(&e, &fx), ==, 0);
	verify(&e);
	REQ_UCMP(e.fs->bno.height, >=, 2);
	random_phase(&e, test_scale(5000), 1000, 0);
	free_all_phase(&e);
	/* everything free: one rebuild from scratch gives the same space */
	fx.n = 0;
	free_from_model(&e, &fx);
	REQ_ICMP(rebuild(&e, &fx), ==, 0);
	verify(&e);
	REQ_UCMP(test_log_errors, ==, 0);
	ev_free(&fx);
	env_close(&e);
}
END_TEST

/* A full disk with a few single free blocks: they all go on the free
 * list, the trees stay empty, and the allocator works from there. */
START_TEST(test_rebuild_tiny)
{
	struct extvec fx = {0}, keep = {0};
	struct env e;
	size_t i;
	extlen_t k;

	env_open(&e, 10, 8ull << 20, "rebuild_tiny", 0xa110c0e7);
	fill_phase(&e, 64);
	free_from_model(&e, &fx); /* the old free list and tree nodes */
	/* every other block of it stays free (8 of them), the model owns
	 * the rest: no free extent longer than one block */
	for (i = 0; i < fx.n; i++)
		for (k = 0; k < fx.v[i].len; k++) {
			fsblock_t b = fx.v[i].start + k;
			if (keep.n < 8 && k % 2 == 0) {
				ev_push(&keep, b, 1);
				continue;
			}
			model_mark(&e.m, b, 1, 1);
			ev_push(&e.m.ext, b, 1);
		}
	REQ_UCMP(keep.n, ==, 8);
	REQ_ICMP(rebuild(&e, &keep), ==, 0);
	REQ_UCMP(e.fs->sb.free_blocks, ==, 0);
	REQ_UCMP(e.fs->bno.height, ==, 0);
	verify_fs(e.fs, &e.m, 0);
	free_all_phase(&e);
	REQ_UCMP(test_log_errors, ==, 0);
	ev_free(&fx);
	ev_free(&keep);
	env_close(&e);
}
END_TEST

/* btree_reset drops a tree without touching its nodes. */
START_TEST(test_btree_reset)
{
	struct rfs_fs *fs = mem_fs(12, 16ull << 20);
	uint8_t rec[16] = {0};

	ck_assert_uint_ne(fs->bno.root, 0);
	ck_assert_int_eq(btree_reset(&fs->bno), 0);
	ck_assert_uint_eq(fs->bno.root, 0);
	ck_assert_uint_eq(fs->bno.height, 0);
	ck_assert_uint_eq(fs->sb.roots[RFS_TREE_BNO].blkno, 0);
	ck_assert_int_eq(btree_lookup(&fs->bno, rec, RFS_LOOKUP_GE, rec, sizeof(rec), NULL),
			 -ENOENT);
	ck_assert_int_eq(fs_close(fs), 0);
}
END_TEST

static Suite *alloc_suite(void)
{
	Suite *s = suite_create("alloc");
	TCase *model = tcase_create("model");
	TCase *det = tcase_create("deterministic");

	tcase_set_timeout(model, 1200);
	tcase_add_test(model, test_model_1k);
	tcase_add_test(model, test_model_4k);
	tcase_add_test(model, test_model_tiny);
	tcase_add_test(model, test_model_fragmented);
	tcase_add_test(model, test_bad_free_random);
	tcase_add_test(model, test_persist_mem);
	tcase_add_test(model, test_persist_file);
	suite_add_tcase(s, model);

	tcase_set_timeout(det, 1200);
	tcase_add_test(det, test_bad_free);
	tcase_add_test(det, test_contiguous_extents);
	tcase_add_test(det, test_contiguous_file);
	tcase_add_test(det, test_contiguous_interleaved);
	tcase_add_test(det, test_near_goal);
	tcase_add_test(det, test_enospc_low_reserve);
	tcase_add_test(det, test_busy_extents);
	tcase_add_test(det, test_busy_small_extents);
	tcase_add_test(det, test_rebuild);
	tcase_add_test(det, test_rebuild_tiny);
	tcase_add_test(det, test_btree_reset);
	suite_add_tcase(s, det);
	return s;
}

int main(void)
{
	return test_run_suite(alloc_suite());
}
