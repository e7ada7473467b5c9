/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * test_refcount.c - tests of the refcount tree (refcount.c).
 *
 * Every test formats a RAM device with 1 KiB blocks, so that 32-byte
 * refcount records make the tree deep quickly.
 *
 * The model test allocates a region of blocks for real from the allocator,
 * so that the blocks a decrement hands to its free callback can really be
 * freed, and keeps per block of the region a count (0 free, 1 one owner,
 * n shared) and a CoW staging owner with the record boundaries. Random
 * increments, decrements, staging adds and removes, allocations and queries
 * are compared with it. Because shared records of equal count are always
 * merged (no run in the region comes near the 32-bit length limit), the
 * shared records are exactly the model's maximal runs of equal count >= 2:
 * the periodic walk compares them record by record. It also checks that
 * every block of the device is still accounted for: free space, the free
 * list, the nodes of the free-space and refcount trees and the model's
 * allocated blocks always add up to what they were at the start.
 *
 * Every operation runs inside a journal handle whose credits are what a
 * caller would reserve (refc_credits() of the pieces the range spans, plus
 * alloc_credits() for each piece a decrement frees: no more), and
 * the cache hooks count the distinct blocks it dirties and frees: neither
 * may exceed the credits. The journal variant does the same on a journaled
 * filesystem and replays its log into a copy at the end.
 *
 * The targeted tests use block numbers past the device: the refcount tree
 * never checks them against the allocator, and the free callbacks there
 * only record what they are handed. They cover each rule of the record
 * format (merging, the 32-bit length, RFS_REFC_MAX, domains, the node
 * verifier), refused staging removes, and a full device: -ENOSPC may stop
 * a change between pieces, never lose a reference inside one.
 */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "btree.h"
#include "dev.h"
#include "fs.h"
#include "fs_create.h"
#include "journal.h"
#include "refcount.h"
#include "testutil.h"
#include "util.h"

#define REC_LEN_MAX 0xffffffffull /* refcount.c: a record's length is 32 bits */
#define SHARED	    RFS_REFC_SHARED
#define COW	    RFS_REFC_COW
#define FS_BYTES    (64ull << 20)
#define BIG_CACHE   (4u << 20)
#define SMALL_CACHE (256u << 10) /* 256 nodes: evictions write back and re-read */
#define FAKE	    (1ull << 40) /* targeted tests: blocks no allocator hands out */

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* --- log sink: errors logged by the library must not go unnoticed ------------ */

/* --- filesystem setup -------------------------------------------------------- */

/* A formatted RAM device with 1 KiB blocks and a JBYTES journal, opened
 * with FLAGS. */
static struct rfs_fs *fs_mem(unsigned flags, uint64_t jbytes, size_t cache)
{
	struct rfs_dev *dev;

	rfs_log_set_sink(test_log_count);
	test_log_errors = 0;
	REQUIRE_INT(dev_open_mem(FS_BYTES, &dev), 0);
	return test_fs_format(dev, 10, jbytes, "refc-test-uuid!!", flags, cache);
}

/* A read-only filesystem over a byte copy of FS's device as it is now:
 * with a journal, what a crash at this point would leave (replayed). */
static struct rfs_fs *fs_copy(struct rfs_fs *fs)
{
	return test_fs_copy(fs, RFS_FS_RDONLY, BIG_CACHE);
}

/* btree_check of T passes; returns what it counted. */
static struct rfs_btree_check tree_check(struct rfs_btree *t)
{
	struct rfs_btree_check chk = {.report = test_report_problem};
	int ret = btree_check(t, &chk);

	REQUIRE(ret == 0 && chk.errors == 0, "btree_check(%s): %d, %" PRIu64 " errors",
		t->ops->name, ret, chk.errors);
	return chk;
}

static void fs_done(struct rfs_fs *fs)
{
	tree_check(&fs->refc);
	ck_assert_int_eq(fs_close(fs), 0);
	ck_assert_uint_eq(test_log_errors, 0);
}

/*
 * Blocks in free space, on the free list and in the nodes of the trees
 * that change here. With the blocks the test holds, the sum never changes:
 * a leaked block or one handed out twice shows up as a difference.
 */
static uint64_t space_total(struct rfs_fs *fs)
{
	fsblock_t *fl = malloc(fs->fl_capacity * sizeof(*fl));
	uint32_t nfl = 0;

	REQUIRE(fl != NULL, "out of memory");
	REQUIRE_INT(alloc_freelist_read(fs, fl, fs->fl_capacity, &nfl), 0);
	free(fl);
	return fs->sb.free_blocks + nfl + tree_check(&fs->bno).nodes + tree_check(&fs->cnt).nodes +
	       tree_check(&fs->refc).nodes;
}

/* --- raw records ----------------------------------------------------------------- */

static struct rfs_refc_rec raw_rec(uint64_t domain, fsblock_t start, uint64_t len, uint32_t count,
				   rfs_ino_t owner)
{
	struct rfs_refc_rec r;

	memset(&r, 0, sizeof(r));
	r.domain = le64_make(domain);
	r.start = le64_make(start);
	r.len = le32_make((uint32_t)len);
	r.refcount = le32_make(count);
	r.owner = le64_make(owner);
	return r;
}

static int raw_insert(struct rfs_fs *fs, uint64_t domain, fsblock_t start, uint64_t len,
		      uint32_t count, rfs_ino_t owner)
{
	struct rfs_refc_rec r = raw_rec(domain, start, len, count, owner);

	return btree_insert(&fs->refc, &r, sizeof(r));
}

static void raw_delete(struct rfs_fs *fs, uint64_t domain, fsblock_t start)
{
	struct rfs_refc_rec k = raw_rec(domain, start, 0, 0, 0);

	REQUIRE_INT(btree_delete(&fs->refc, &k), 0);
}

/* Every record of the tree, in key order (at most CAP). */
static size_t raw_all(struct rfs_fs *fs, struct rfs_refc_rec *v, size_t cap)
{
	struct rfs_btree_cursor cur;
	size_t n = 0, len;
	int ret;

	btree_cursor_init(&cur, &fs->refc);
	for (ret = btree_first(&cur); ret == 0; ret = btree_next(&cur)) {
		const void *r = btree_cursor_rec(&cur, &len);
		REQUIRE(n < cap && len == sizeof(*v), "record %zu: %zu bytes", n, len);
		memcpy(&v[n++], r, sizeof(*v));
	}
	btree_cursor_done(&cur);
	REQUIRE_INT(ret, -ENOENT);
	return n;
}

/* --- credits: the distinct blocks one operation dirties and frees ------------- */

struct touched {
	fsblock_t *v;
	size_t n, cap;
	uint64_t forgets;
	int on;
	const struct rfs_cache_hooks *next; /* the journal's, if any */
	void *next_arg;
};

static struct touched touched;

static void hook_dirty(void *arg, struct rfs_buf *bp)
{
	size_t i;

	(void)arg;
	if (touched.next)
		touched.next->dirty(touched.next_arg, bp);
	if (!touched.on)
		return;
	for (i = 0; i < touched.n; i++)
		if (touched.v[i] == bp->blkno)
			return;
	if (touched.n == touched.cap) {
		touched.cap = touched.cap ? 2 * touched.cap : 256;
		touched.v = realloc(touched.v, touched.cap * sizeof(*touched.v));
		REQUIRE(touched.v != NULL, "out of memory");
	}
	touched.v[touched.n++] = bp->blkno;
}

static void hook_forget(void *arg, fsblock_t blkno)
{
	(void)arg;
	if (touched.next)
		touched.next->forget(touched.next_arg, blkno);
	if (touched.on)
		touched.forgets++;
}

static const struct rfs_cache_hooks count_hooks = {.dirty = hook_dirty, .forget = hook_forget};

/* Puts the counting hooks in front of whatever FS's cache had. */
static void hooks_install(struct rfs_fs *fs)
{
	touched.next = fs->cache->hooks;
	touched.next_arg = fs->cache->hook_arg;
	touched.on = 0;
	fs->cache->hooks = &count_hooks;
	fs->cache->hook_arg = NULL;
}

static void hooks_remove(struct rfs_fs *fs)
{
	fs->cache->hooks = touched.next;
	fs->cache->hook_arg = touched.next_arg;
	touched.next = NULL;
	free(touched.v);
	memset(&touched, 0, sizeof(touched));
}

struct op {
	struct rfs_handle *h;
	uint32_t credits;
};

static double worst_credit_use; /* largest share of its credits one operation used */
static size_t most_touched;	/* most blocks one operation dirtied */

/* Starts a handle of CREDITS (a no-op handle without a journal). */
static struct op op_begin(struct rfs_fs *fs, uint32_t credits)
{
	struct op o = {NULL, credits};

	REQUIRE_INT(txn_start(fs, credits, &o.h), 0);
	touched.n = 0;
	touched.forgets = 0;
	touched.on = 1;
	return o;
}

/* Ends the handle: what the operation dirtied and freed fit its credits. */
static void op_end(struct op o, const char *what)
{
	touched.on = 0;
	REQUIRE_INT(txn_stop(o.h), 0);
	REQUIRE(touched.n <= o.credits, "%s dirtied %zu blocks, credits %u", what, touched.n,
		o.credits);
	REQUIRE(touched.forgets <= o.credits, "%s freed %" PRIu64 " nodes, credits %u", what,
		touched.forgets, o.credits);
	worst_credit_use = RFS_MAX(worst_credit_use, (double)touched.n / o.credits);
	most_touched = RFS_MAX(most_touched, touched.n);
}

/* --- the model ------------------------------------------------------------------ */

struct model {
	fsblock_t base; /* the region [base, base + n) */
	uint64_t n;
	uint32_t *cnt;	 /* 0 free, 1 one owner, >= 2 shared */
	rfs_ino_t *cow;	 /* staging owner, 0: not staging */
	uint8_t *head;	 /* a staging record starts here */
	uint32_t *saved; /* counts before a decrement */
};

static int m_in(const struct model *m, fsblock_t b)
{
	return b >= m->base && b - m->base < m->n;
}

/* The count the shared domain sees: 1 for anything in no record. */
static uint32_t m_eff(const struct model *m, fsblock_t b)
{
	uint32_t k = m_in(m, b) ? m->cnt[b - m->base] : 1;

	return k >= 2 ? k : 1;
}

/* Blocks from B with B's count, at most LIMIT (and one record's length):
 * what refc_get's *RUN must be. A gap reaching the region's end goes on
 * for ever. */
static extlen_t m_run(const struct model *m, fsblock_t b, extlen_t limit)
{
	fsblock_t end = m->base + m->n, p = RFS_MAX(b, m->base);
	uint32_t k = m_eff(m, b);

	limit = RFS_MIN(limit, REC_LEN_MAX);
	if (b >= end)
		return limit;
	while (p < end && p - b < limit && m_eff(m, p) == k)
		p++;
	if (p == end && k == 1)
		return limit;
	return RFS_MIN(p - b, limit);
}

/* How far from START up to MAX pieces reach, at most LEN (refc_clip), and
 * how many pieces that is. */
static extlen_t m_clip(const struct model *m, fsblock_t start, extlen_t len, unsigned max,
		       unsigned *pieces)
{
	fsblock_t pos = start, end = start + len;
	unsigned n;

	for (n = 0; pos < end && n < max; n++)
		pos += m_run(m, pos, end - pos);
	if (pieces)
		*pieces = n;
	return pos - start;
}

static unsigned m_pieces(const struct model *m, fsblock_t start, extlen_t len)
{
	unsigned n;

	m_clip(m, start, len, UINT32_MAX, &n);
	return n;
}

/* Pieces of [START, +LEN) with one reference: the runs a decrement
 * frees, each one free_extent call. */
static unsigned m_single_pieces(const struct model *m, fsblock_t start, extlen_t len)
{
	fsblock_t pos = start, end = start + len;
	unsigned n = 0;

	while (pos < end) {
		n += m_eff(m, pos) == 1;
		pos += m_run(m, pos, end - pos);
	}
	return n;
}

/* The shared record holding FROM or the first after it: 0, or -ENOENT. */
static int m_shared_next(const struct model *m, fsblock_t from, fsblock_t *s, extlen_t *len,
			 uint32_t *count)
{
	uint64_t i = from > m->base ? from - m->base : 0, j;

	while (i < m->n && m->cnt[i] < 2)
		i++;
	if (i >= m->n)
		return -ENOENT;
	while (i > 0 && m->cnt[i - 1] == m->cnt[i]) /* FROM inside a record */
		i--;
	for (j = i; j < m->n && m->cnt[j] == m->cnt[i]; j++)
		;
	*s = m->base + i;
	*len = j - i;
	*count = m->cnt[i];
	return 0;
}

/* The staging record holding FROM or the first after it. */
static int m_cow_next(const struct model *m, fsblock_t from, fsblock_t *s, extlen_t *len,
		      rfs_ino_t *owner)
{
	uint64_t i = from > m->base ? from - m->base : 0, j;

	while (i < m->n && !m->cow[i])
		i++;
	if (i >= m->n)
		return -ENOENT;
	while (!m->head[i])
		i--;
	for (j = i + 1; j < m->n && m->cow[j] && !m->head[j]; j++)
		;
	*s = m->base + i;
	*len = j - i;
	*owner = m->cow[i];
	return 0;
}

/* --- the model test's context ----------------------------------------------------- */

struct ctx {
	struct rfs_fs *fs;
	struct rfs_rng rng;
	struct model m;
	uint64_t total0; /* space_total() + blocks held, at the start */
	uint64_t ops, incs, decs, clipped, frees, freed_runs, allocs, cow_adds, cow_removes,
		cow_splits, cow_bad, queries, checks, max_count, max_records;
	uint32_t max_height, step_credits;
};

/* Blocks of the region the test holds (allocated, shared or staging). */
static uint64_t m_used(const struct model *m)
{
	uint64_t i, n = 0;

	for (i = 0; i < m->n; i++)
		n += m->cnt[i] != 0;
	return n;
}

/* A random length: mostly short, now and then thousands of blocks. */
static extlen_t rand_len(struct ctx *c)
{
	unsigned k = (unsigned)rng_below(&c->rng, 100);

	if (k < 70)
		return 1 + rng_below(&c->rng, 8);
	if (k < 93)
		return 1 + rng_below(&c->rng, 64);
	if (k < 99)
		return 1 + rng_below(&c->rng, 512);
	return 1 + rng_below(&c->rng, 4096);
}

typedef int (*m_pred)(const struct model *m, uint64_t i);

/* May take a reference: allocated and not staging. */
static int is_mapped(const struct model *m, uint64_t i)
{
	return m->cnt[i] >= 1 && !m->cow[i];
}

/* May become staging: allocated, one owner, not staging yet. */
static int is_unshared(const struct model *m, uint64_t i)
{
	return m->cnt[i] == 1 && !m->cow[i];
}

static int is_staging(const struct model *m, uint64_t i)
{
	return m->cow[i] != 0;
}

static int is_free(const struct model *m, uint64_t i)
{
	return m->cnt[i] == 0;
}

/* A run of at most MAXLEN region blocks that satisfy OK, from near a
 * random block: 0 if none was found there. */
static int pick_run(struct ctx *c, m_pred ok, extlen_t maxlen, uint64_t *i, extlen_t *len)
{
	const struct model *m = &c->m;
	uint64_t j = rng_below(&c->rng, m->n), k, tries;

	for (tries = 0; tries < 512 && !ok(m, j); tries++)
		j = (j + 1) % m->n;
	if (!ok(m, j))
		return 0;
	for (k = j; k < m->n && k - j < maxlen && ok(m, k); k++)
		;
	*i = j;
	*len = k - j;
	return 1;
}

/* --- checks against the model ---------------------------------------------------- */

static void check_get(struct ctx *c, fsblock_t b, extlen_t limit)
{
	uint32_t count = 0;
	extlen_t run = 0;
	int ret = refc_get(c->fs, b, limit, &count, &run);

	REQUIRE(ret == 0 && count == m_eff(&c->m, b) && run == m_run(&c->m, b, limit),
		"refc_get(%" PRIu64 ", limit %" PRIu64 ") = %d: count %u run %" PRIu64
		", expected count %u run %" PRIu64,
		b, limit, ret, count, run, m_eff(&c->m, b), m_run(&c->m, b, limit));
}

static void check_find_shared(struct ctx *c, fsblock_t start, extlen_t len)
{
	fsblock_t end = start + len, b, found = 0;
	extlen_t flen = 0, want = 0;
	int ret = refc_find_shared(c->fs, start, len, &found, &flen);

	for (b = start; b < end && m_eff(&c->m, b) < 2; b += m_run(&c->m, b, end - b))
		;
	if (b < end)
		want = m_run(&c->m, b, end - b);
	REQUIRE(b < end ? ret == 0 && found == b && flen == want : ret == -ENOENT,
		"refc_find_shared(%" PRIu64 "+%" PRIu64 ") = %d: %" PRIu64 "+%" PRIu64
		", expected %" PRIu64 "+%" PRIu64,
		start, len, ret, found, flen, b, want);
}

static void check_clip(struct ctx *c, fsblock_t start, extlen_t len, unsigned max)
{
	extlen_t out = 0, want = m_clip(&c->m, start, len, max, NULL);
	int ret = refc_clip(c->fs, start, len, max, &out);

	REQUIRE(ret == 0 && out == want,
		"refc_clip(%" PRIu64 "+%" PRIu64 ", %u pieces) = %d: %" PRIu64
		", expected %" PRIu64,
		start, len, max, ret, out, want);
}

static void check_shared_next(struct ctx *c, struct rfs_fs *fs, fsblock_t from)
{
	fsblock_t s = 0, ws = 0;
	extlen_t len = 0, wlen = 0;
	uint32_t k = 0, wk = 0;
	int ret = refc_shared_next(fs, from, &s, &len, &k);
	int want = m_shared_next(&c->m, from, &ws, &wlen, &wk);

	REQUIRE(ret == want && (ret || (s == ws && len == wlen && k == wk)),
		"refc_shared_next(%" PRIu64 ") = %d: %" PRIu64 "+%" PRIu64 " count %u, expected "
		"%d: %" PRIu64 "+%" PRIu64 " count %u",
		from, ret, s, len, k, want, ws, wlen, wk);
}

static void check_cow_next(struct ctx *c, struct rfs_fs *fs, fsblock_t from)
{
	fsblock_t s = 0, ws = 0;
	extlen_t len = 0, wlen = 0;
	rfs_ino_t o = 0, wo = 0;
	int ret = refc_cow_next(fs, from, &s, &len, &o);
	int want = m_cow_next(&c->m, from, &ws, &wlen, &wo);

	REQUIRE(ret == want && (ret || (s == ws && len == wlen && o == wo)),
		"refc_cow_next(%" PRIu64 ") = %d: %" PRIu64 "+%" PRIu64 " owner %" PRIu64
		", expected %d: %" PRIu64 "+%" PRIu64 " owner %" PRIu64,
		from, ret, s, len, o, want, ws, wlen, wo);
}

/* Walks the shared records: each one is a maximal run of its count in the
 * model (so touching records never have equal counts), and together they
 * cover every model block with a count >= 2. Returns the record count. */
static uint64_t compare_shared(struct ctx *c, struct rfs_fs *fs)
{
	const struct model *m = &c->m;
	fsblock_t from = 0, s, b;
	uint64_t nrec = 0, blocks = 0, want = 0, i;
	extlen_t len;
	uint32_t k;
	int ret;

	while ((ret = refc_shared_next(fs, from, &s, &len, &k)) == 0) {
		REQUIRE(s >= from && len >= 1 && m_in(m, s) && m_in(m, s + len - 1) && k >= 2,
			"shared record %" PRIu64 "+%" PRIu64 " count %u after %" PRIu64
			" outside the region or malformed",
			s, len, k, from);
		for (b = s; b < s + len; b++)
			REQUIRE(m->cnt[b - m->base] == k && !m->cow[b - m->base],
				"block %" PRIu64 " in record %" PRIu64 "+%" PRIu64
				" count %u: model count %u staging %" PRIu64,
				b, s, len, k, m->cnt[b - m->base], m->cow[b - m->base]);
		REQUIRE(m_eff(m, s - 1) != k && m_eff(m, s + len) != k,
			"record %" PRIu64 "+%" PRIu64 " count %u is not merged with a neighbour", s,
			len, k);
		c->max_count = RFS_MAX(c->max_count, k);
		blocks += len;
		nrec++;
		from = s + len;
	}
	REQUIRE_INT(ret, -ENOENT);
	for (i = 0; i < m->n; i++)
		want += m->cnt[i] >= 2;
	REQUIRE_U64(blocks, want);
	return nrec;
}

/* Walks the staging records against the model's. Returns their count. */
static uint64_t compare_cow(struct ctx *c, struct rfs_fs *fs)
{
	const struct model *m = &c->m;
	fsblock_t from = 0, s, ws;
	extlen_t len, wlen;
	rfs_ino_t o, wo;
	uint64_t nrec = 0, blocks = 0, want = 0, i;
	int ret;

	while ((ret = refc_cow_next(fs, from, &s, &len, &o)) == 0) {
		REQUIRE(m_cow_next(m, from, &ws, &wlen, &wo) == 0 && s == ws && len == wlen &&
				o == wo,
			"staging record %" PRIu64 "+%" PRIu64 " owner %" PRIu64
			" not in the model (from %" PRIu64 ")",
			s, len, o, from);
		blocks += len;
		nrec++;
		from = s + len;
	}
	REQUIRE_INT(ret, -ENOENT);
	for (i = 0; i < m->n; i++)
		want += m->cow[i] != 0;
	REQUIRE_U64(blocks, want);
	return nrec;
}

/* The whole tree of FS against the model, and the block accounting. */
static void compare_all(struct ctx *c, struct rfs_fs *fs)
{
	uint64_t nrec = compare_shared(c, fs) + compare_cow(c, fs);
	struct rfs_btree_check chk = tree_check(&fs->refc);

	REQUIRE_U64(chk.records, nrec);
	REQUIRE_U64(space_total(fs) + m_used(&c->m), c->total0);
	c->max_records = RFS_MAX(c->max_records, nrec);
	c->step_credits = RFS_MAX(c->step_credits, refc_credits(fs, RFS_REFC_STEP));
	c->max_height = RFS_MAX(c->max_height, fs->refc.height);
	c->checks++;
}

/* --- operations ------------------------------------------------------------------ */

struct dec_arg {
	struct ctx *c;
	fsblock_t start, end;
	uint64_t runs;
};

/*
 * The decrement's free callback: it may only be handed blocks of the range
 * that had one reference (model count 1, not staging), each run as long as
 * the range allows (a neighbour inside the range was shared). Frees them
 * for real.
 */
static int free_cb(void *arg, fsblock_t start, extlen_t len)
{
	struct dec_arg *d = arg;
	struct model *m = &d->c->m;
	fsblock_t b;

	REQUIRE(len >= 1 && start >= d->start && start + len <= d->end,
		"free %" PRIu64 "+%" PRIu64 " outside the decrement %" PRIu64 "..%" PRIu64, start,
		len, d->start, d->end);
	for (b = start; b < start + len; b++)
		REQUIRE(m->cnt[b - m->base] == 1 && !m->cow[b - m->base],
			"free of block %" PRIu64 " with model count %u staging %" PRIu64, b,
			m->cnt[b - m->base], m->cow[b - m->base]);
	REQUIRE(start == d->start || m->saved[start - 1 - d->start] >= 2,
		"free run %" PRIu64 "+%" PRIu64 " does not start at a shared block", start, len);
	REQUIRE(start + len == d->end || m->saved[start + len - d->start] >= 2,
		"free run %" PRIu64 "+%" PRIu64 " does not end at a shared block", start, len);
	REQUIRE_INT(free_extent(d->c->fs, start, len), 0);
	for (b = start; b < start + len; b++)
		m->cnt[b - m->base] = 0;
	d->runs++;
	d->c->frees += len;
	return 0;
}

/* Clips [START, +*LEN) to RFS_REFC_STEP pieces (checked against the
 * model) as callers bounding a handle do: always with a journal (a handle
 * may not be larger than the log), else three times in four. */
static void maybe_clip(struct ctx *c, fsblock_t start, extlen_t *len)
{
	extlen_t out = 0;

	if (!c->fs->journal && !rng_below(&c->rng, 4))
		return;
	REQUIRE_INT(refc_clip(c->fs, start, *len, RFS_REFC_STEP, &out), 0);
	REQUIRE_U64(out, m_clip(&c->m, start, *len, RFS_REFC_STEP, NULL));
	*len = out;
	c->clipped++;
}

static void op_increment(struct ctx *c)
{
	struct model *m = &c->m;
	uint64_t i, j;
	extlen_t len;
	struct op o;

	if (!pick_run(c, is_mapped, rand_len(c), &i, &len))
		return;
	maybe_clip(c, m->base + i, &len);
	o = op_begin(c->fs, refc_credits(c->fs, m_pieces(m, m->base + i, len)));
	REQUIRE_INT(refc_increment(c->fs, m->base + i, len), 0);
	op_end(o, "increment");
	for (j = i; j < i + len; j++)
		m->cnt[j]++;
	c->incs++;
	check_get(c, m->base + i, len);
}

static void do_decrement(struct ctx *c, uint64_t i, extlen_t len)
{
	struct model *m = &c->m;
	struct dec_arg d = {c, m->base + i, m->base + i + len, 0};
	uint64_t j;
	struct op o;

	memcpy(m->saved, m->cnt + i, len * sizeof(*m->saved));
	o = op_begin(c->fs, refc_credits(c->fs, m_pieces(m, m->base + i, len)) +
				    m_single_pieces(m, m->base + i, len) * alloc_credits(c->fs));
	REQUIRE_INT(refc_decrement(c->fs, m->base + i, len, free_cb, &d), 0);
	op_end(o, "decrement");
	for (j = 0; j < len; j++) {
		REQUIRE(m->saved[j] >= 2 || m->cnt[i + j] == 0,
			"block %" PRIu64 " lost its last reference but was not freed",
			m->base + i + j);
		if (m->saved[j] >= 2)
			m->cnt[i + j] = m->saved[j] - 1;
	}
	c->freed_runs += d.runs;
	c->decs++;
}

static void op_decrement(struct ctx *c)
{
	uint64_t i;
	extlen_t len;

	if (!pick_run(c, is_mapped, rand_len(c), &i, &len))
		return;
	maybe_clip(c, c->m.base + i, &len);
	do_decrement(c, i, len);
	check_get(c, c->m.base + i, len);
}

/* Frees [START, +LEN) (blocks outside the model, or staging just removed). */
static void do_free(struct ctx *c, fsblock_t start, extlen_t len)
{
	struct op o = op_begin(c->fs, alloc_credits(c->fs));

	REQUIRE_INT(free_extent(c->fs, start, len), 0);
	op_end(o, "free_extent");
}

/* Allocates near a free region block; what lands outside the region goes
 * straight back. The allocator must never hand out a block the model
 * holds. */
static void op_alloc(struct ctx *c)
{
	struct model *m = &c->m;
	fsblock_t s, end, b;
	uint64_t i;
	extlen_t len, l;
	struct op o;
	int ret;

	if (!pick_run(c, is_free, 1, &i, &len))
		return;
	o = op_begin(c->fs, alloc_credits(c->fs));
	ret = alloc_extent(c->fs, m->base + i, 1, 1 + rng_below(&c->rng, 64), &s, &l);
	op_end(o, "alloc_extent");
	if (ret == -ENOSPC)
		return;
	REQUIRE_INT(ret, 0);
	end = s + l;
	if (s < m->base)
		do_free(c, s, RFS_MIN(end, m->base) - s);
	if (end > m->base + m->n)
		do_free(c, RFS_MAX(s, m->base + m->n), end - RFS_MAX(s, m->base + m->n));
	for (b = RFS_MAX(s, m->base); b < RFS_MIN(end, m->base + m->n); b++) {
		REQUIRE(m->cnt[b - m->base] == 0,
			"allocator handed out block %" PRIu64 " which has count %u", b,
			m->cnt[b - m->base]);
		m->cnt[b - m->base] = 1;
	}
	c->allocs++;
}

static void op_cow_add(struct ctx *c)
{
	struct model *m = &c->m;
	rfs_ino_t owner =
		rng_below(&c->rng, 8) ? 1 + rng_below(&c->rng, 16) : rng_next(&c->rng) | 1;
	uint64_t i, j;
	extlen_t len;
	struct op o;

	if (!pick_run(c, is_unshared, 1 + rng_below(&c->rng, 32), &i, &len))
		return;
	o = op_begin(c->fs, refc_credits(c->fs, 1));
	REQUIRE_INT(refc_cow_add(c->fs, m->base + i, len, owner), 0);
	op_end(o, "cow_add");
	for (j = i; j < i + len; j++)
		m->cow[j] = owner;
	m->head[i] = 1;
	c->cow_adds++;
	check_cow_next(c, c->fs, m->base + i + rng_below(&c->rng, len));
}

/* Removes part of a run of staging blocks (one or more records, cut at
 * either end), then either frees it or keeps it (remapped). */
static void op_cow_remove(struct ctx *c)
{
	struct model *m = &c->m;
	uint64_t i, a, j, nrec = 1;
	extlen_t len, l;
	struct op o;

	if (!pick_run(c, is_staging, rand_len(c), &i, &len))
		return;
	a = i + rng_below(&c->rng, len);
	l = 1 + rng_below(&c->rng, i + len - a);
	for (j = a + 1; j < a + l; j++)
		nrec += m->head[j];
	c->cow_splits += !m->head[a] || (a + l < m->n && m->cow[a + l] && !m->head[a + l]);
	o = op_begin(c->fs, refc_credits(c->fs, (unsigned)nrec));
	REQUIRE_INT(refc_cow_remove(c->fs, m->base + a, l), 0);
	op_end(o, "cow_remove");
	for (j = a; j < a + l; j++)
		m->cow[j] = m->head[j] = 0;
	if (a + l < m->n && m->cow[a + l])
		m->head[a + l] = 1;
	if (rng_below(&c->rng, 2)) {
		do_free(c, m->base + a, l);
		for (j = a; j < a + l; j++)
			m->cnt[j] = 0;
	}
	c->cow_removes++;
	check_cow_next(c, c->fs, m->base + a - RFS_MIN(a, 1));
}

/* A remove reaching past the staging blocks on one side: -EUCLEAN, and
 * nothing changes (not even the staging part of the range). */
static void op_cow_bad(struct ctx *c)
{
	struct model *m = &c->m;
	uint64_t i, s, e, a, b, k;
	extlen_t len;
	struct op o;

	if (!pick_run(c, is_staging, 1, &i, &len))
		return;
	for (s = i; s > 0 && m->cow[s - 1]; s--)
		;
	for (e = i; e < m->n && m->cow[e]; e++)
		;
	if (rng_below(&c->rng, 2) && s > 0) {
		a = s - 1 - rng_below(&c->rng, RFS_MIN(s, 3));
		b = s + rng_below(&c->rng, e - s) + 1;
	} else if (e < m->n) {
		a = s + rng_below(&c->rng, e - s);
		b = RFS_MIN(m->n, e + 1 + rng_below(&c->rng, 3));
	} else {
		return;
	}
	o = op_begin(c->fs, refc_credits(c->fs, 1));
	REQUIRE_INT(refc_cow_remove(c->fs, m->base + a, b - a), -EUCLEAN);
	op_end(o, "refused cow_remove");
	REQUIRE(touched.n == 0 && touched.forgets == 0,
		"refused cow_remove of %" PRIu64 "+%" PRIu64 " dirtied %zu blocks", m->base + a,
		b - a, touched.n);
	for (k = a; k <= b; k++)
		check_cow_next(c, c->fs, m->base + k);
	c->cow_bad++;
}

/* A block of the region mostly, else just before or after it. */
static fsblock_t rand_block(struct ctx *c)
{
	unsigned k = (unsigned)rng_below(&c->rng, 20);

	if (k == 0)
		return c->m.base - 1 - rng_below(&c->rng, 64);
	if (k == 1)
		return c->m.base + c->m.n + rng_below(&c->rng, 64);
	return c->m.base + rng_below(&c->rng, c->m.n);
}

static void op_query(struct ctx *c)
{
	fsblock_t b = rand_block(c);
	unsigned k = (unsigned)rng_below(&c->rng, 100);
	extlen_t limit = k < 95 ? rand_len(c) : k < 98 ? 1ull << 40 : UINT64_MAX;

	check_get(c, b, limit);
	check_find_shared(c, b, rand_len(c));
	check_clip(c, b, rand_len(c), 1 + (unsigned)rng_below(&c->rng, 6));
	check_shared_next(c, c->fs, b);
	check_cow_next(c, c->fs, b);
	c->queries++;
}

static void model_step(struct ctx *c)
{
	unsigned k = (unsigned)rng_below(&c->rng, 100);

	if (k < 24)
		op_increment(c);
	else if (k < 46)
		op_decrement(c);
	else if (k < 56)
		op_alloc(c);
	else if (k < 64)
		op_cow_add(c);
	else if (k < 72)
		op_cow_remove(c);
	else if (k < 73)
		op_cow_bad(c);
	else
		op_query(c);
	c->ops++;
}

/* Drops every staging record and every reference, in clipped steps as a
 * truncate would: all blocks go back and the tree ends up empty. */
static void drain(struct ctx *c)
{
	struct model *m = &c->m;
	uint64_t i, j, passes = 0;
	extlen_t len;
	struct op o;
	int busy = 1;

	for (i = 0; i < m->n; i++) {
		if (!m->head[i])
			continue;
		for (j = i + 1; j < m->n && m->cow[j] && !m->head[j]; j++)
			;
		o = op_begin(c->fs, refc_credits(c->fs, 1));
		REQUIRE_INT(refc_cow_remove(c->fs, m->base + i, j - i), 0);
		op_end(o, "cow_remove (drain)");
		memset(m->cow + i, 0, (j - i) * sizeof(*m->cow));
		memset(m->head + i, 0, j - i);
	}
	while (busy) {
		busy = 0;
		for (i = 0; i < m->n; i = j) {
			for (j = i; j < m->n && m->cnt[j]; j++)
				;
			if (j == i) {
				j++;
				continue;
			}
			len = 0;
			REQUIRE_INT(refc_clip(c->fs, m->base + i, j - i, RFS_REFC_STEP, &len), 0);
			do_decrement(c, i, len);
			j = i + len;
			busy = 1;
		}
		passes++;
	}
	compare_all(c, c->fs);
	REQUIRE(c->fs->refc.height == 0 && c->fs->refc.root == 0,
		"refcount tree not empty after the drain: height %u", c->fs->refc.height);
	printf("refcount drain: %" PRIu64 " passes\n", passes);
}

/* --- the model tests ------------------------------------------------------------------ */

/* Allocates the region for real: one extent of N blocks. */
static void ctx_init(struct ctx *c, struct rfs_fs *fs, const char *name, uint64_t seed, uint64_t n)
{
	struct model *m = &c->m;
	extlen_t len = 0;
	struct op o;
	uint64_t i;

	memset(c, 0, sizeof(*c));
	c->fs = fs;
	rng_init(&c->rng, name, seed);
	hooks_install(fs);
	worst_credit_use = 0;
	most_touched = 0;
	c->total0 = space_total(fs);
	m->cnt = calloc(n, sizeof(*m->cnt));
	m->cow = calloc(n, sizeof(*m->cow));
	m->head = calloc(n, 1);
	m->saved = calloc(n, sizeof(*m->saved));
	ck_assert(m->cnt && m->cow && m->head && m->saved);
	o = op_begin(fs, alloc_credits(fs));
	ck_assert_int_eq(alloc_extent(fs, fs->sb.block_count / 4, n, n, &m->base, &len), 0);
	op_end(o, "alloc_extent (region)");
	ck_assert_uint_eq(len, n);
	m->n = n;
	for (i = 0; i < n; i++)
		m->cnt[i] = 1;
	compare_all(c, fs);
}

static void ctx_done(struct ctx *c)
{
	hooks_remove(c->fs);
	free(c->m.cnt);
	free(c->m.cow);
	free(c->m.head);
	free(c->m.saved);
}

static void print_stats(struct ctx *c, const char *name, double t0)
{
	printf("%s: %" PRIu64 " ops (%" PRIu64 " increments, %" PRIu64 " decrements, %" PRIu64
	       " clipped, %" PRIu64 " blocks freed in %" PRIu64 " runs, %" PRIu64
	       " allocations, %" PRIu64 " staging adds, %" PRIu64 " removes (%" PRIu64
	       " splitting), %" PRIu64 " refused, %" PRIu64 " query rounds, %" PRIu64
	       " full checks), max count %" PRIu64 ", %" PRIu64
	       " records, height %u; credits used <= "
	       "%.0f%%, at most %zu blocks (refc_credits(%u) = %u), %.2f s\n",
	       name, c->ops, c->incs, c->decs, c->clipped, c->frees, c->freed_runs, c->allocs,
	       c->cow_adds, c->cow_removes, c->cow_splits, c->cow_bad, c->queries, c->checks,
	       c->max_count, c->max_records, c->max_height, 100 * worst_credit_use, most_touched,
	       RFS_REFC_STEP, c->step_credits, now() - t0);
	fflush(stdout);
}

#define REGION	    30000 /* most of one half of the device */
#define CHECK_EVERY 4096

START_TEST(test_model)
{
	struct ctx c;
	uint64_t i, nops = test_scale(300000);
	struct rfs_fs *copy;
	double t0 = now();

	ctx_init(&c, fs_mem(RFS_FS_NOJOURNAL, 256u << 10, SMALL_CACHE), "refcount model", 0x4efc001,
		 REGION);
	for (i = 0; i < nops; i++) {
		model_step(&c);
		if (i % CHECK_EVERY == CHECK_EVERY - 1)
			compare_all(&c, c.fs);
	}
	compare_all(&c, c.fs);
	ck_assert_uint_ge(c.max_height, 3);
	ck_assert_uint_ge(c.max_count, 5);
	ck_assert_uint_ge(c.cow_splits, nops / 200);
	ck_assert_uint_gt(c.fs->cache->stats.evictions, 0); /* nodes were re-read */

	/* What was written reads back through the node verifier. */
	ck_assert_int_eq(fs_sync(c.fs), 0);
	copy = fs_copy(c.fs);
	compare_shared(&c, copy);
	compare_cow(&c, copy);
	tree_check(&copy->refc);
	ck_assert_int_eq(fs_close(copy), 0);

	drain(&c);
	print_stats(&c, "refcount model", t0);
	ctx_done(&c);
	fs_done(c.fs);
}
END_TEST

/* The same operations in journal handles: credits hold, every change is
 * in a handle, and the log replays to the model's state. */
START_TEST(test_model_journal)
{
	struct rfs_journal_stats st;
	struct ctx c;
	uint64_t i, nops = test_scale(10000);
	struct rfs_fs *copy;
	double t0 = now();

	ctx_init(&c, fs_mem(0, 1u << 20, SMALL_CACHE), "refcount journal", 0x4efc002, REGION);
	for (i = 0; i < nops; i++) {
		model_step(&c);
		if (i % 1024 == 1023)
			compare_all(&c, c.fs);
	}
	compare_all(&c, c.fs);
	ck_assert_int_eq(journal_commit(c.fs), 0);
	copy = fs_copy(c.fs);
	ck_assert_int_eq(copy->recovery.needed, 1);
	compare_all(&c, copy);
	ck_assert_int_eq(fs_close(copy), 0);

	drain(&c);
	journal_get_stats(c.fs, &st);
	ck_assert_uint_eq(st.unhandled_dirties, 0);
	ck_assert_uint_gt(st.commits, 0);
	ck_assert_int_eq(journal_error(c.fs), 0);
	print_stats(&c, "refcount journal", t0);
	printf("refcount journal: %" PRIu64 " commits (%" PRIu64 " for size, %" PRIu64
	       " for space), %" PRIu64 " blocks logged\n",
	       st.commits, st.forced_by_size, st.forced_by_space, st.blocks_logged);
	ctx_done(&c);
	fs_done(c.fs);
}
END_TEST

/* --- targeted tests -------------------------------------------------------------------- */

struct xrec {
	fsblock_t start;
	extlen_t len;
	uint64_t val; /* count (shared) or owner (staging) */
};

/* The records of DOMAIN are exactly WANT[0..N). */
static void expect_recs(struct rfs_fs *fs, uint64_t domain, const struct xrec *want, size_t n)
{
	fsblock_t from = 0, s = 0;
	extlen_t len = 0;
	uint64_t val = 0;
	size_t i;
	int ret;

	for (i = 0;; i++) {
		if (domain == SHARED) {
			uint32_t k = 0;
			ret = refc_shared_next(fs, from, &s, &len, &k);
			val = k;
		} else {
			ret = refc_cow_next(fs, from, &s, &len, &val);
		}
		if (i == n)
			break;
		REQUIRE(ret == 0 && s == want[i].start && len == want[i].len && val == want[i].val,
			"domain %" PRIu64 " record %zu: %d %" PRIu64 "+%" PRIu64 " (%" PRIu64
			"), expected %" PRIu64 "+%" PRIu64 " (%" PRIu64 ")",
			domain, i, ret, s, len, val, want[i].start, want[i].len, want[i].val);
		from = s + len;
	}
	REQUIRE(ret == -ENOENT,
		"domain %" PRIu64 ": more than %zu records (%d: %" PRIu64 "+%" PRIu64 ")", domain,
		n, ret, s, len);
	tree_check(&fs->refc);
}

static void expect_get(struct rfs_fs *fs, fsblock_t b, extlen_t limit, uint32_t count, extlen_t run)
{
	uint32_t k = 0;
	extlen_t r = 0;
	int ret = refc_get(fs, b, limit, &k, &r);

	REQUIRE(ret == 0 && k == count && r == run,
		"refc_get(%" PRIu64 ", %" PRIu64 ") = %d: count %u run %" PRIu64
		", expected %u run %" PRIu64,
		b, limit, ret, k, r, count, run);
}

/* A free callback that only records what it is handed. */
struct rec_frees {
	struct xrec v[16];
	size_t n;
	int fail_at; /* returns -EIO at this call (1-based), 0: never */
};

static int record_free(void *arg, fsblock_t start, extlen_t len)
{
	struct rec_frees *f = arg;

	if (f->fail_at && (int)f->n + 1 == f->fail_at)
		return -EIO;
	REQUIRE(f->n < 16, "too many frees");
	f->v[f->n++] = (struct xrec){start, len, 1};
	return 0;
}

static struct rfs_fs *edge_fs(void)
{
	return fs_mem(RFS_FS_NOJOURNAL, 256u << 10, BIG_CACHE);
}

#define FB FAKE /* the targeted tests' blocks */

/* A gap becomes a count-2 record; the gap around it stays count 1. */
START_TEST(test_increment_gap)
{
	struct rfs_fs *fs = edge_fs();
	fsblock_t found = 0;
	extlen_t flen = 0;
	const struct xrec one[] = {{FB + 10, 5, 2}};

	expect_recs(fs, SHARED, NULL, 0);
	expect_get(fs, FB, 100, 1, 100);
	ck_assert_int_eq(refc_find_shared(fs, FB, 1000, &found, &flen), -ENOENT);
	ck_assert_int_eq(refc_increment(fs, FB + 10, 5), 0);
	expect_recs(fs, SHARED, one, 1);
	expect_get(fs, FB, 100, 1, 10);
	expect_get(fs, FB + 12, 100, 2, 3);
	expect_get(fs, FB + 12, 2, 2, 2);
	expect_get(fs, FB + 15, UINT64_MAX, 1, REC_LEN_MAX);
	ck_assert_int_eq(refc_find_shared(fs, FB, 1000, &found, &flen), 0);
	ck_assert_uint_eq(found, FB + 10);
	ck_assert_uint_eq(flen, 5);
	ck_assert_int_eq(refc_find_shared(fs, FB + 13, 1, &found, &flen), 0);
	ck_assert_uint_eq(found, FB + 13);
	ck_assert_uint_eq(flen, 1);
	ck_assert_int_eq(refc_find_shared(fs, FB, 10, &found, &flen), -ENOENT);
	ck_assert_int_eq(refc_find_shared(fs, FB + 15, 1000, &found, &flen), -ENOENT);
	fs_done(fs);
}
END_TEST

/* An increment over records and gaps raises each piece by one; the
 * decrement of the same range undoes it and frees exactly the gaps. */
START_TEST(test_increment_across)
{
	struct rfs_fs *fs = edge_fs();
	const struct xrec before[] = {{FB + 10, 5, 2}, {FB + 20, 5, 3}};
	const struct xrec after[] = {
		{FB + 5, 5, 2}, {FB + 10, 5, 3}, {FB + 15, 5, 2}, {FB + 20, 5, 4}, {FB + 25, 5, 2}};
	const struct xrec gaps[] = {{FB + 5, 5, 1}, {FB + 15, 5, 1}, {FB + 25, 5, 1}};
	struct rec_frees f = {.n = 0};
	extlen_t out = 0;
	size_t i;

	ck_assert_int_eq(refc_increment(fs, FB + 10, 5), 0);
	ck_assert_int_eq(refc_increment(fs, FB + 20, 5), 0);
	ck_assert_int_eq(refc_increment(fs, FB + 20, 5), 0);
	expect_recs(fs, SHARED, before, 2);
	/* [FB+5, FB+30) is five pieces: gap, 2, gap, 3, gap */
	ck_assert_int_eq(refc_clip(fs, FB + 5, 25, 5, &out), 0);
	ck_assert_uint_eq(out, 25);
	ck_assert_int_eq(refc_clip(fs, FB + 5, 25, 4, &out), 0);
	ck_assert_uint_eq(out, 20);
	ck_assert_int_eq(refc_clip(fs, FB + 7, 25, 1, &out), 0);
	ck_assert_uint_eq(out, 3);
	ck_assert_int_eq(refc_increment(fs, FB + 5, 25), 0);
	expect_recs(fs, SHARED, after, 5);
	ck_assert_int_eq(refc_decrement(fs, FB + 5, 25, record_free, &f), 0);
	expect_recs(fs, SHARED, before, 2);
	ck_assert_uint_eq(f.n, 0); /* every block had two references or more */
	ck_assert_int_eq(refc_decrement(fs, FB + 5, 25, record_free, &f), 0);
	ck_assert_uint_eq(f.n, 3);
	for (i = 0; i < 3; i++)
		ck_assert(f.v[i].start == gaps[i].start && f.v[i].len == gaps[i].len);
	{
		const struct xrec left[] = {{FB + 20, 5, 2}};
		expect_recs(fs, SHARED, left, 1);
	}
	fs_done(fs);
}
END_TEST

/* Decrementing to one reference removes (that part of) the record. */
START_TEST(test_decrement_to_one)
{
	struct rfs_fs *fs = edge_fs();
	const struct xrec split[] = {{FB, 3, 2}, {FB + 7, 3, 2}};
	struct rec_frees f = {.n = 0};

	ck_assert_int_eq(refc_increment(fs, FB, 10), 0);
	ck_assert_int_eq(refc_decrement(fs, FB + 3, 4, record_free, &f), 0);
	ck_assert_uint_eq(f.n, 0);
	expect_recs(fs, SHARED, split, 2);
	expect_get(fs, FB + 3, 100, 1, 4);
	ck_assert_int_eq(refc_decrement(fs, FB, 10, record_free, &f), 0);
	ck_assert_uint_eq(f.n, 1);
	ck_assert(f.v[0].start == FB + 3 && f.v[0].len == 4);
	expect_recs(fs, SHARED, NULL, 0);
	ck_assert_uint_eq(fs->refc.height, 0);
	fs_done(fs);
}
END_TEST

/* A piece that takes the count of both neighbours merges with both, by
 * increment and by decrement; with one of them, with that one. */
START_TEST(test_merge_neighbours)
{
	struct rfs_fs *fs = edge_fs();
	const struct xrec merged[] = {{FB, 15, 2}};
	const struct xrec left[] = {{FB, 8, 2}, {FB + 10, 5, 2}};
	const struct xrec three[] = {{FB, 5, 2}, {FB + 5, 5, 3}, {FB + 10, 5, 2}};
	struct rec_frees f = {.n = 0};

	ck_assert_int_eq(refc_increment(fs, FB, 5), 0);
	ck_assert_int_eq(refc_increment(fs, FB + 10, 5), 0);
	ck_assert_int_eq(refc_increment(fs, FB + 5, 3), 0);
	expect_recs(fs, SHARED, left, 2);
	ck_assert_int_eq(refc_increment(fs, FB + 8, 2), 0);
	expect_recs(fs, SHARED, merged, 1);
	ck_assert_int_eq(refc_increment(fs, FB + 5, 5), 0);
	expect_recs(fs, SHARED, three, 3);
	ck_assert_int_eq(refc_decrement(fs, FB + 5, 5, record_free, &f), 0);
	expect_recs(fs, SHARED, merged, 1);
	ck_assert_uint_eq(f.n, 0);
	fs_done(fs);
}
END_TEST

/* Records never grow past 32 bits of length: touching records of equal
 * count are then left apart, and a gap piece is at most that long. */
START_TEST(test_merge_limit)
{
	struct rfs_fs *fs = edge_fs();
	const fsblock_t s = FB, m = FB + REC_LEN_MAX - 0x10;
	const struct xrec two[] = {{s, REC_LEN_MAX - 0x10, 2}, {m, 0x20, 2}};
	const fsblock_t g = 2 * FB;
	const struct xrec gap[] = {{g, REC_LEN_MAX, 2}, {g + REC_LEN_MAX, 6, 2}};
	struct rec_frees f = {.n = 0};
	extlen_t out = 0;

	ck_assert_int_eq(raw_insert(fs, SHARED, s, REC_LEN_MAX - 0x10, 2, 0), 0);
	ck_assert_int_eq(refc_increment(fs, m, 0x20), 0);
	expect_recs(fs, SHARED, two, 2);
	expect_get(fs, s, UINT64_MAX, 2, REC_LEN_MAX - 0x10);
	expect_get(fs, m - 1, UINT64_MAX, 2, 1);
	ck_assert_int_eq(refc_clip(fs, s, UINT64_MAX / 2, 2, &out), 0);
	ck_assert_uint_eq(out, REC_LEN_MAX - 0x10 + 0x20);

	/* An increment of a gap longer than a record can be: two records. */
	expect_get(fs, g, UINT64_MAX, 1, REC_LEN_MAX);
	ck_assert_int_eq(refc_increment(fs, g, REC_LEN_MAX + 6), 0);
	expect_recs(fs, SHARED, (const struct xrec[]){two[0], two[1], gap[0], gap[1]}, 4);
	ck_assert_int_eq(refc_decrement(fs, g, REC_LEN_MAX + 6, record_free, &f), 0);
	ck_assert_uint_eq(f.n, 0);
	expect_recs(fs, SHARED, two, 2);
	ck_assert_int_eq(refc_decrement(fs, g, REC_LEN_MAX + 6, record_free, &f), 0);
	ck_assert_uint_eq(f.n, 2); /* one run per gap piece */
	ck_assert(f.v[0].start == g && f.v[0].len == REC_LEN_MAX);
	ck_assert(f.v[1].start == g + REC_LEN_MAX && f.v[1].len == 6);

	/* Dropping the short one's count lets nothing merge either. */
	ck_assert_int_eq(refc_increment(fs, m, 0x20), 0);
	ck_assert_int_eq(refc_decrement(fs, m, 0x20, record_free, &f), 0);
	expect_recs(fs, SHARED, two, 2);
	fs_done(fs);
}
END_TEST

/* At RFS_REFC_MAX an increment is refused before anything changes. */
START_TEST(test_emlink)
{
	struct rfs_fs *fs = edge_fs();
	const struct xrec at_max[] = {{FB + 4, 4, RFS_REFC_MAX}};
	const struct xrec below[] = {{FB + 4, 2, RFS_REFC_MAX}, {FB + 6, 2, RFS_REFC_MAX - 1}};
	struct rfs_refc_rec v1[8], v2[8];
	struct rec_frees f = {.n = 0};
	size_t n1, n2;

	ck_assert_int_eq(raw_insert(fs, SHARED, FB + 4, 4, RFS_REFC_MAX, 0), 0);
	expect_recs(fs, SHARED, at_max, 1);
	n1 = raw_all(fs, v1, 8);
	ck_assert_int_eq(refc_increment(fs, FB, 10), -EMLINK);
	ck_assert_int_eq(refc_increment(fs, FB + 7, 1), -EMLINK);
	n2 = raw_all(fs, v2, 8);
	ck_assert(n1 == n2 && memcmp(v1, v2, n1 * sizeof(*v1)) == 0);
	/* One below the limit, and back up to it: merged again. */
	ck_assert_int_eq(refc_decrement(fs, FB + 6, 2, record_free, &f), 0);
	expect_recs(fs, SHARED, below, 2);
	ck_assert_int_eq(refc_increment(fs, FB + 6, 2), 0);
	expect_recs(fs, SHARED, at_max, 1);
	ck_assert_uint_eq(f.n, 0);
	fs_done(fs);
}
END_TEST

/* A remove of anything not all staging is refused and changes nothing;
 * one over two adjacent records cuts both. */
START_TEST(test_cow_remove)
{
	struct rfs_fs *fs = edge_fs();
	const struct xrec two[] = {{FB, 10, 7}, {FB + 10, 5, 8}};
	const struct xrec cut[] = {{FB, 5, 7}, {FB + 13, 2, 8}};
	const struct xrec mid[] = {{FB, 2, 7}, {FB + 4, 1, 7}, {FB + 13, 2, 8}};
	const struct {
		fsblock_t start;
		extlen_t len;
	} bad[] = {{FB + 12, 10}, {FB - 1, 3}, {FB + 20, 1}, {FB + 14, 2}, {FB - 5, 30}, {0, 1}};
	struct rfs_refc_rec v1[8], v2[8];
	size_t i, n1, n2;

	ck_assert_int_eq(refc_cow_add(fs, FB, 10, 7), 0);
	ck_assert_int_eq(refc_cow_add(fs, FB + 10, 5, 8), 0);
	ck_assert_int_eq(refc_cow_add(fs, FB + 20, 0, 8), -EINVAL);
	ck_assert_int_eq(refc_cow_add(fs, FB + 20, 1, 0), -EINVAL);
	ck_assert_int_eq(refc_cow_add(fs, FB + 20, REC_LEN_MAX + 1, 9), -EINVAL);
	ck_assert_int_eq(refc_cow_add(fs, FB, 3, 9), -EUCLEAN);
	expect_recs(fs, COW, two, 2);
	n1 = raw_all(fs, v1, 8);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int ret = refc_cow_remove(fs, bad[i].start, bad[i].len);
		REQUIRE(ret == -EUCLEAN, "cow_remove(%" PRIu64 "+%" PRIu64 ") = %d", bad[i].start,
			bad[i].len, ret);
		n2 = raw_all(fs, v2, 8);
		REQUIRE(n1 == n2 && memcmp(v1, v2, n1 * sizeof(*v1)) == 0,
			"refused cow_remove(%" PRIu64 "+%" PRIu64 ") changed the tree",
			bad[i].start, bad[i].len);
	}
	expect_recs(fs, COW, two, 2);
	ck_assert_int_eq(refc_cow_remove(fs, FB + 5, 8), 0);
	expect_recs(fs, COW, cut, 2);
	ck_assert_int_eq(refc_cow_remove(fs, FB + 2, 2), 0);
	expect_recs(fs, COW, mid, 3);
	ck_assert_int_eq(refc_cow_remove(fs, FB + 4, 1), 0);
	ck_assert_int_eq(refc_cow_remove(fs, FB, 2), 0);
	ck_assert_int_eq(refc_cow_remove(fs, FB + 13, 2), 0);
	expect_recs(fs, COW, NULL, 0);
	ck_assert_uint_eq(fs->refc.height, 0);
	fs_done(fs);
}
END_TEST

/* Staging records are invisible to the shared queries and the other way
 * round, even where both domains hold the same blocks (which a correct
 * caller never makes: the key space alone must keep them apart). */
START_TEST(test_domains)
{
	struct rfs_fs *fs = edge_fs();
	const struct xrec cow[] = {{FB + 100, 10, 42}, {FB + 300, 4, 43}};
	const struct xrec shared[] = {{FB + 105, 10, 2}};
	fsblock_t s = 0;
	extlen_t len = 0;
	rfs_ino_t o = 0;
	uint32_t k = 0;

	ck_assert_int_eq(refc_cow_add(fs, FB + 100, 10, 42), 0);
	expect_get(fs, FB + 100, 50, 1, 50);
	ck_assert_int_eq(refc_find_shared(fs, FB, 1000, &s, &len), -ENOENT);
	ck_assert_int_eq(refc_shared_next(fs, 0, &s, &len, &k), -ENOENT);
	ck_assert_int_eq(refc_cow_remove(fs, FB + 105, 10), -EUCLEAN);

	ck_assert_int_eq(refc_increment(fs, FB + 105, 10), 0);
	ck_assert_int_eq(refc_cow_add(fs, FB + 300, 4, 43), 0);
	expect_recs(fs, COW, cow, 2);
	expect_recs(fs, SHARED, shared, 1);
	expect_get(fs, FB + 100, 50, 1, 5);
	expect_get(fs, FB + 115, UINT64_MAX, 1, REC_LEN_MAX); /* no shared record after */
	expect_get(fs, FB + 301, 1000, 1, 1000);
	ck_assert_int_eq(refc_find_shared(fs, FB + 115, 1000, &s, &len), -ENOENT);
	ck_assert_int_eq(refc_shared_next(fs, FB + 115, &s, &len, &k), -ENOENT);
	ck_assert_int_eq(refc_cow_next(fs, FB + 304, &s, &len, &o), -ENOENT);
	ck_assert_int_eq(refc_cow_next(fs, FB + 110, &s, &len, &o), 0);
	ck_assert_uint_eq(s, FB + 300);
	/* a COW lookup below every staging record lands on a shared one */
	ck_assert_int_eq(refc_cow_remove(fs, FB + 50, 1), -EUCLEAN);
	ck_assert_int_eq(refc_cow_next(fs, 0, &s, &len, &o), 0);
	ck_assert_uint_eq(s, FB + 100);
	expect_recs(fs, COW, cow, 2);
	expect_recs(fs, SHARED, shared, 1);
	fs_done(fs);
}
END_TEST

static unsigned quiet_reports;

static void quiet_report(void *arg, const struct rfs_btree *t, fsblock_t blkno, const char *msg)
{
	(void)arg;
	(void)t;
	(void)blkno;
	(void)msg;
	quiet_reports++;
}

/* The node verifier (refc_check_rec) refuses records that break the
 * format's rules; the tree checks clean again once they are gone. */
START_TEST(test_malformed)
{
	struct rfs_fs *fs = edge_fs();
	const struct {
		uint64_t domain;
		fsblock_t start;
		uint64_t len;
		uint32_t count;
		rfs_ino_t owner;
		const char *what;
	} bad[] = {
		{SHARED, FB, 4, 1, 0, "a shared record with count 1"},
		{SHARED, FB, 4, 0, 0, "a shared record with count 0"},
		{SHARED, FB, 4, 3, 9, "a shared record with an owner"},
		{COW, FB, 4, 1, 0, "a staging record without an owner"},
		{COW, FB, 4, 2, 9, "a staging record with count 2"},
		{2, FB, 4, 2, 0, "domain 2"},
		{SHARED, FB, 0, 2, 0, "length 0"},
		{SHARED, 0, 4, 2, 0, "block 0"},
		{COW, UINT64_MAX - 1, 4, 1, 9, "a range past the last block number"},
	};
	size_t i;

	ck_assert_int_eq(refc_increment(fs, FB + 100, 3), 0);
	ck_assert_int_eq(refc_cow_add(fs, FB + 200, 3, 5), 0);
	ck_assert_uint_eq(tree_check(&fs->refc).records, 2);
	/* the limits themselves are fine */
	ck_assert_int_eq(raw_insert(fs, SHARED, FB, REC_LEN_MAX, RFS_REFC_MAX, 0), 0);
	ck_assert_int_eq(raw_insert(fs, COW, UINT64_MAX - 4, 4, 1, UINT64_MAX), 0);
	ck_assert_uint_eq(tree_check(&fs->refc).records, 4);
	raw_delete(fs, SHARED, FB);
	raw_delete(fs, COW, UINT64_MAX - 4);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct rfs_btree_check chk = {.report = quiet_report};
		ck_assert_int_eq(raw_insert(fs, bad[i].domain, bad[i].start, bad[i].len,
					    bad[i].count, bad[i].owner),
				 0);
		quiet_reports = 0;
		REQUIRE(btree_check(&fs->refc, &chk) == -EUCLEAN && chk.errors && quiet_reports,
			"btree_check accepts %s", bad[i].what);
		raw_delete(fs, bad[i].domain, bad[i].start);
		ck_assert_uint_eq(tree_check(&fs->refc).records, 2);
	}
	fs_done(fs);
}
END_TEST

/* A free callback's error stops the decrement and is returned; the pieces
 * before it were done, the failed one and those after were not. */
START_TEST(test_free_error)
{
	struct rfs_fs *fs = edge_fs();
	const struct xrec done[] = {{FB + 5, 5, 2}, {FB + 20, 5, 2}};
	struct rec_frees f = {.n = 0, .fail_at = 2};

	ck_assert_int_eq(refc_increment(fs, FB + 5, 5), 0);
	ck_assert_int_eq(refc_increment(fs, FB + 5, 5), 0);
	ck_assert_int_eq(refc_increment(fs, FB + 20, 5), 0);
	ck_assert_int_eq(refc_decrement(fs, FB, 30, record_free, &f), -EIO);
	ck_assert_uint_eq(f.n, 1);
	ck_assert(f.v[0].start == FB && f.v[0].len == 5);
	expect_recs(fs, SHARED, done, 2);
	fs_done(fs);
}
END_TEST

/* Takes every free block: the next tree node allocation fails. */
static void fill_device(struct rfs_fs *fs)
{
	fsblock_t s;
	extlen_t l;
	int ret;

	while ((ret = alloc_extent(fs, 0, 1, UINT32_MAX, &s, &l)) == 0)
		;
	ck_assert_int_eq(ret, -ENOSPC);
}

#define WIN 24 /* blocks around a change whose counts are compared */

/* The counts of [S, S + WIN). */
static void window_counts(struct rfs_fs *fs, fsblock_t s, uint32_t *v)
{
	extlen_t run;
	unsigned k;

	for (k = 0; k < WIN; k++)
		REQUIRE_INT(refc_get(fs, s + k, 1, &v[k], &run), 0);
}

/* A change of [A, A + LEN) by DELTA that failed: the blocks of a leading
 * part of the range have their new count, all others their old one. */
static void expect_prefix(const uint32_t *before, const uint32_t *after, fsblock_t s, fsblock_t a,
			  extlen_t len, int delta)
{
	fsblock_t p = a;
	unsigned k;

	while (p < a + len && after[p - s] == before[p - s] + delta)
		p++;
	for (k = 0; k < WIN; k++)
		REQUIRE(after[k] == before[k] || (s + k >= a && s + k < p),
			"refused change of %" PRIu64 "+%" PRIu64 ": block %" PRIu64
			" count %u -> %u",
			a, len, s + k, before[k], after[k]);
}

static int count_free(void *arg, fsblock_t start, extlen_t len)
{
	(void)start;
	*(uint64_t *)arg += len;
	return 0;
}

struct enospc_stats {
	unsigned done, failed, partial;
	uint64_t freed;
};

/* One change near record I of test_enospc, of kind K, on a full device. */
static void enospc_step(struct rfs_fs *fs, unsigned i, unsigned k, struct enospc_stats *st)
{
	static struct rfs_refc_rec v1[8192], v2[8192];
	uint32_t before[WIN], after[WIN];
	fsblock_t b = FB + 4 * i, a = k < 2 ? b + 1 : b - 1, w = b - 8, s;
	extlen_t len = k == 2 ? 3 : 1, l;
	rfs_ino_t o;
	int ret, delta = k == 0 ? -1 : 1, staging;
	size_t n1, n2;

	fill_device(fs); /* again: merged nodes were freed */
	n1 = raw_all(fs, v1, 8192);
	window_counts(fs, w, before);
	if (k >= 4) /* a staging record cut in two, or at its end */
		a = b + k - 3;
	staging = refc_cow_next(fs, a, &s, &l, &o) == 0 && s <= a;
	if (k == 0) /* a decrement, splitting a record in three */
		ret = refc_decrement(fs, a, len, count_free, &st->freed);
	else if (k < 4) /* in a record; a gap and a record (two pieces); a gap */
		ret = refc_increment(fs, a, len);
	else if (staging)
		ret = refc_cow_remove(fs, a, 1);
	else
		ret = refc_cow_add(fs, a, 1, 77);
	REQUIRE(ret == 0 || ret == -ENOSPC, "change %u kind %u: %d", i, k, ret);
	tree_check(&fs->refc);
	if (ret == 0) {
		st->done++;
		return;
	}
	st->failed++;
	n2 = raw_all(fs, v2, 8192);
	window_counts(fs, w, after);
	if (k >= 4)
		REQUIRE(n1 == n2 && memcmp(v1, v2, n1 * sizeof(*v1)) == 0,
			"refused staging change %u changed the tree", i);
	else
		expect_prefix(before, after, w, a, len, delta);
	st->partial += memcmp(before, after, sizeof(before)) != 0;
}

/*
 * With no block left for a tree node, a change that must split a leaf
 * fails with -ENOSPC. No reference may be lost: a piece is changed
 * completely or not at all (a record dropped and not put back would lose
 * references, and a block still mapped twice would be freed on the next
 * decrement), so a refused change leaves a leading part of its range done
 * and the rest as it was; a staging change changes nothing. Changes that
 * need no new node (merges, shrinking a record) still work.
 */
START_TEST(test_enospc)
{
	struct rfs_fs *fs = edge_fs();
	struct enospc_stats st = {0};
	unsigned i, pass;

	/* [FB + 4i, +3) with count 2 + i % 2 and staging, one-block gaps */
	for (i = 0; i < 600; i++) {
		ck_assert_int_eq(refc_increment(fs, FB + 4 * i, 3), 0);
		if (i % 2)
			ck_assert_int_eq(refc_increment(fs, FB + 4 * i, 3), 0);
		ck_assert_int_eq(refc_cow_add(fs, FB + 4 * i, 3, 1 + i), 0);
	}
	for (pass = 0; pass < 4; pass++)
		for (i = 1; i < 600; i++)
			enospc_step(fs, i, (i + pass) % 6, &st);
	printf("refcount enospc: %u changes done, %u refused (%u after a first piece), %" PRIu64
	       " blocks freed\n",
	       st.done, st.failed, st.partial, st.freed);
	ck_assert_uint_gt(st.failed, 40);
	ck_assert_uint_gt(st.done, 100);
	fs_done(fs);
}
END_TEST

static Suite *refcount_suite(void)
{
	Suite *s = suite_create("refcount");
	TCase *model = tcase_create("model");
	TCase *edge = tcase_create("edge");
	TCase *journal = tcase_create("journal");

	tcase_set_timeout(model, 1200);
	tcase_add_test(model, test_model);
	suite_add_tcase(s, model);

	tcase_set_timeout(edge, 1200);
	tcase_add_test(edge, test_increment_gap);
	tcase_add_test(edge, test_increment_across);
	tcase_add_test(edge, test_decrement_to_one);
	tcase_add_test(edge, test_merge_neighbours);
	tcase_add_test(edge, test_merge_limit);
	tcase_add_test(edge, test_emlink);
	tcase_add_test(edge, test_cow_remove);
	tcase_add_test(edge, test_domains);
	tcase_add_test(edge, test_malformed);
	tcase_add_test(edge, test_free_error);
	tcase_add_test(edge, test_enospc);
	suite_add_tcase(s, edge);

	tcase_set_timeout(journal, 1200);
	tcase_add_test(journal, test_model_journal);
	suite_add_tcase(s, journal);
	return s;
}

int main(void)
{
	return test_run_suite(refcount_suite());
}
