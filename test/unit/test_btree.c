/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * test_btree.c - model-based randomised tests of the generic B+tree engine.
 *
 * Every test runs the engine over a RAM device and a small buffer cache
 * (so nodes are evicted, written back, re-read and re-verified) with a
 * bitmap node allocator that catches double frees and leaks. The random
 * tests mirror every operation in a reference model (a bitmap over a key
 * space) and compare every result; btree_check() runs every few thousand
 * operations and its record walk is compared with the model record by
 * record.
 *
 * Keys: model index I is tree key K(I) = 2 * I + 1, so even keys fall
 * between records and exercise the LE / GE lookups.
 */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "btree.h"
#include "buf.h"
#include "crc.h"
#include "dev.h"
#include "testutil.h"
#include "util.h"

/* ck_assert() logs its location on every pass (a write to Check's pipe):
 * hot paths call into Check only on failure. */

#define CSUM_SEED  0x5eedc0deu
#define DEV_BYTES  (64ull << 20)
#define TREE_OWNER 77
#define REC_CAP	   512
#define FIXED_LEN  16
#define VAR_MIN	   20
/* Largest record a 1 KiB node takes three of: (1024 - 56) / 3 - 4. */
#define VAR_MAX_1K 318

/* --- log sink: engine errors must not go unnoticed -------------------- */

/* --- record formats ---------------------------------------------------- */

static int cmp_u64(uint64_t a, uint64_t b)
{
	return a < b ? -1 : a > b;
}

/* Fixed: le64 key, le64 value. */
static int fixed_cmp(const void *a, const void *b)
{
	return cmp_u64(rfs_get_le64(a), rfs_get_le64(b));
}

/* Variable: a directory-entry-like 16-byte key (dir, cookie). */
static int var_cmp(const void *a, const void *b)
{
	const uint8_t *x = a, *y = b;
	int c = cmp_u64(rfs_get_le64(x), rfs_get_le64(y));

	return c ? c : cmp_u64(rfs_get_le64(x + 8), rfs_get_le64(y + 8));
}

/* Variable records store their own length after the key. */
static int var_check_rec(const void *rec, size_t len, char *why, size_t whylen)
{
	const uint8_t *r = rec;

	if (len < VAR_MIN || (size_t)(r[16] | r[17] << 8) != len) {
		snprintf(why, whylen, "record length tag %u, record %zu bytes",
			 (unsigned)(r[16] | r[17] << 8), len);
		return -EUCLEAN;
	}
	return 0;
}

static int t_alloc(struct rfs_btree *t, fsblock_t hint, fsblock_t *out);
static int t_free(struct rfs_btree *t, fsblock_t blkno);
static int t_root_changed(struct rfs_btree *t);

static const struct rfs_btree_ops fixed_ops = {
	.tree_type = 64,
	.name = "test-fixed",
	.key_size = 8,
	.min_rec = FIXED_LEN,
	.max_rec = FIXED_LEN,
	.cmp_key = fixed_cmp,
	.alloc_block = t_alloc,
	.free_block = t_free,
	.root_changed = t_root_changed,
};

static const struct rfs_btree_ops var_ops = {
	.tree_type = 65,
	.name = "test-var",
	.key_size = 16,
	.min_rec = VAR_MIN,
	.max_rec = VAR_MAX_1K,
	.cmp_key = var_cmp,
	.check_rec = var_check_rec,
	.alloc_block = t_alloc,
	.free_block = t_free,
	.root_changed = t_root_changed,
};

/* One past the limit: btree_init must refuse it for 1 KiB blocks. */
static const struct rfs_btree_ops var_too_big_ops = {
	.tree_type = 66,
	.name = "test-var-too-big",
	.key_size = 16,
	.min_rec = VAR_MIN,
	.max_rec = VAR_MAX_1K + 1,
	.cmp_key = var_cmp,
	.alloc_block = t_alloc,
	.free_block = t_free,
	.root_changed = t_root_changed,
};

static uint64_t key_of(uint32_t idx)
{
	return 2 * (uint64_t)idx + 1;
}

/* Encodes raw key Q; (dir, cookie) order equals the order of Q. */
static void encode_key(int var, uint64_t q, uint8_t *out)
{
	if (!var) {
		rfs_put_le64(out, q);
		return;
	}
	rfs_put_le64(out, q >> 8);
	rfs_put_le64(out + 8, (q & 0xff) << 15 | 5);
}

static uint8_t pattern_byte(uint32_t seed, uint32_t idx, unsigned j)
{
	uint32_t x = (seed ^ idx * 0x9e3779b1u) + j * 0x85ebca6bu;

	x ^= x >> 13;
	x *= 0xc2b2ae35u;
	return (uint8_t)(x ^ x >> 16);
}

/* Builds the record for model entry (IDX, LEN, SEED); returns its length. */
static size_t make_rec(int var, uint32_t idx, unsigned len, uint32_t seed, uint8_t *out)
{
	unsigned j;

	encode_key(var, key_of(idx), out);
	if (!var) {
		rfs_put_le64(out + 8, (uint64_t)seed << 32 | idx);
		return FIXED_LEN;
	}
	out[16] = (uint8_t)len;
	out[17] = (uint8_t)(len >> 8);
	for (j = 18; j < len; j++)
		out[j] = pattern_byte(seed, idx, j);
	return len;
}

/* --- environment: RAM device, cache, bitmap allocator ------------------ */

struct env {
	struct rfs_dev *dev;
	struct rfs_cache *cache;
	uint32_t block_log, bsize;
	size_t cache_budget;
	uint64_t nblocks;
	uint8_t *used; /* one byte per block: 1 = a tree node */
	uint64_t nr_used, next;
	uint64_t allocs_left; /* UINT64_MAX: no limit */
	uint64_t nr_enospc, nr_root_changes;
	fsblock_t seen_root; /* as last reported to root_changed */
	uint32_t seen_height;
	struct rfs_btree t;
};

static int t_alloc(struct rfs_btree *t, fsblock_t hint, fsblock_t *out)
{
	struct env *e = t->priv;
	uint64_t i;

	(void)hint;
	if (e->allocs_left == 0) {
		e->nr_enospc++;
		return -ENOSPC;
	}
	for (i = 0; i < e->nblocks; i++) {
		fsblock_t b = (e->next + i) % e->nblocks;
		if (b == 0 || e->used[b])
			continue;
		e->used[b] = 1;
		e->nr_used++;
		e->next = b + 1;
		if (e->allocs_left != UINT64_MAX)
			e->allocs_left--;
		*out = b;
		return 0;
	}
	ck_abort_msg("test device full");
	return -ENOSPC;
}

static int t_free(struct rfs_btree *t, fsblock_t blkno)
{
	struct env *e = t->priv;

	REQUIRE(blkno > 0 && blkno < e->nblocks, "free of block %" PRIu64 " out of range", blkno);
	REQUIRE(e->used[blkno], "double free of block %" PRIu64, blkno);
	e->used[blkno] = 0;
	e->nr_used--;
	return 0;
}

static int t_root_changed(struct rfs_btree *t)
{
	struct env *e = t->priv;

	REQUIRE((t->root == 0) == (t->height == 0), "root %" PRIu64 " with height %u", t->root,
		t->height);
	e->seen_root = t->root;
	e->seen_height = t->height;
	e->nr_root_changes++;
	return 0;
}

static void env_new_cache(struct env *e)
{
	ck_assert_int_eq(cache_create(e->dev, e->block_log, e->cache_budget, &e->cache), 0);
	cache_set_seed(e->cache, CSUM_SEED);
	e->t.cache = e->cache;
}

/* A cache of CACHE_BLOCKS blocks: small enough that nodes are evicted. */
static void env_setup(struct env *e, uint32_t block_log, size_t cache_blocks,
		      const struct rfs_btree_ops *ops)
{
	memset(e, 0, sizeof(*e));
	rfs_log_set_sink(test_log_count);
	test_log_errors = 0;
	e->block_log = block_log;
	e->bsize = 1u << block_log;
	e->cache_budget = cache_blocks << block_log;
	e->nblocks = DEV_BYTES >> block_log;
	e->next = 1;
	e->allocs_left = UINT64_MAX;
	ck_assert_int_eq(dev_open_mem(DEV_BYTES, &e->dev), 0);
	e->used = calloc(e->nblocks, 1);
	ck_assert_ptr_nonnull(e->used);
	env_new_cache(e);
	ck_assert_int_eq(btree_init(&e->t, ops, e->cache, 0, 0, TREE_OWNER, e), 0);
}

/* Writes everything back and starts over with an empty cache. */
static void env_reopen_cache(struct env *e)
{
	ck_assert_int_eq(cache_flush(e->cache), 0);
	cache_destroy(e->cache);
	env_new_cache(e);
}

static void env_teardown(struct env *e)
{
	ck_assert_int_eq(cache_flush(e->cache), 0);
	cache_destroy(e->cache);
	dev_close(e->dev);
	free(e->used);
	ck_assert_uint_eq(test_log_errors, 0);
}

/* --- reference model: bitmap over the key space ----------------------- */

struct model {
	uint32_t nkeys, nwords, size;
	uint64_t *bits;
	uint64_t *sum; /* bit w: word w of bits is non-zero */
	uint16_t *len;
	uint32_t *seed;
};

static void model_init(struct model *m, uint32_t nkeys)
{
	m->nkeys = nkeys;
	m->nwords = (nkeys + 63) / 64;
	m->size = 0;
	m->bits = calloc(m->nwords, sizeof(*m->bits));
	m->sum = calloc((m->nwords + 63) / 64, sizeof(*m->sum));
	m->len = calloc(nkeys, sizeof(*m->len));
	m->seed = calloc(nkeys, sizeof(*m->seed));
	ck_assert(m->bits && m->sum && m->len && m->seed);
}

static void model_free(struct model *m)
{
	free(m->bits);
	free(m->sum);
	free(m->len);
	free(m->seed);
}

static int model_has(const struct model *m, uint32_t i)
{
	return (m->bits[i / 64] >> (i % 64)) & 1;
}

static void model_set(struct model *m, uint32_t i, unsigned len, uint32_t seed)
{
	if (!model_has(m, i)) {
		m->bits[i / 64] |= 1ull << (i % 64);
		m->sum[i / 4096] |= 1ull << (i / 64 % 64);
		m->size++;
	}
	m->len[i] = (uint16_t)len;
	m->seed[i] = seed;
}

static void model_clear(struct model *m, uint32_t i)
{
	REQUIRE(model_has(m, i), "index %u not in the model", i);
	m->bits[i / 64] &= ~(1ull << (i % 64));
	if (!m->bits[i / 64])
		m->sum[i / 4096] &= ~(1ull << (i / 64 % 64));
	m->size--;
}

/* First word >= W (or <= W when DOWN) with any key, or -1. */
static int64_t model_word(const struct model *m, int64_t w, int down)
{
	while (w >= 0 && w < m->nwords) {
		uint64_t s = m->sum[w / 64];
		unsigned b = (unsigned)(w % 64);
		s = down ? (b == 63 ? s : s & ((2ull << b) - 1)) : s & (~0ull << b);
		if (s)
			return (w & ~63ll) + (down ? 63 - __builtin_clzll(s) : __builtin_ctzll(s));
		w = down ? (w & ~63ll) - 1 : (w | 63) + 1;
	}
	return -1;
}

/* The first present index >= I, or -1. */
static int64_t model_next(const struct model *m, int64_t i)
{
	int64_t w;
	uint64_t x;

	if (i < 0)
		i = 0;
	if (i >= m->nkeys)
		return -1;
	x = m->bits[i / 64] & (~0ull << (i % 64));
	if (x)
		return (i & ~63ll) + __builtin_ctzll(x);
	w = model_word(m, i / 64 + 1, 0);
	return w < 0 ? -1 : w * 64 + __builtin_ctzll(m->bits[w]);
}

/* The last present index <= I, or -1. */
static int64_t model_prev(const struct model *m, int64_t i)
{
	int64_t w;
	uint64_t x;

	if (i < 0)
		return -1;
	if (i >= m->nkeys)
		i = m->nkeys - 1;
	x = m->bits[i / 64];
	if (i % 64 != 63)
		x &= (2ull << (i % 64)) - 1;
	if (x)
		return (i & ~63ll) + 63 - __builtin_clzll(x);
	w = model_word(m, i / 64 - 1, 1);
	return w < 0 ? -1 : w * 64 + 63 - __builtin_clzll(m->bits[w]);
}

/* Model index of the record a lookup of raw key Q finds, or -1. */
static int64_t model_find(const struct model *m, uint64_t q, enum rfs_lookup_mode mode)
{
	switch (mode) {
	case RFS_LOOKUP_EQ:
		if (!(q & 1) || q / 2 >= m->nkeys)
			return -1;
		return model_has(m, (uint32_t)(q / 2)) ? (int64_t)(q / 2) : -1;
	case RFS_LOOKUP_LE:
		return q == 0 ? -1 : model_prev(m, (int64_t)((q - 1) / 2));
	case RFS_LOOKUP_GE:
		return model_next(m, (int64_t)(q / 2));
	}
	return -1;
}

/* --- the model test ---------------------------------------------------- */

enum mt_op { OP_INSERT, OP_DELETE, OP_UPDATE, OP_LOOKUP, OP_SCAN, OP_RUN_INS, OP_RUN_DEL, NR_OPS };

static const char *const op_names[NR_OPS] = {"insert", "delete",  "update", "lookup",
					     "scan",   "run-ins", "run-del"};

struct mt {
	struct env e;
	struct model m;
	struct rfs_rng rng;
	int var;
	unsigned max_rec;
	uint32_t target; /* grow to this many records, then shrink to empty */
	int growing;
	uint64_t ops, checks, empties, max_size, max_height;
	uint64_t done[NR_OPS], hits[NR_OPS];
	uint64_t len_changes;
	uint64_t upd_splits, upd_merges; /* updates that added / freed nodes */
	uint64_t collapses;		 /* height went down, tree not empty */
	uint32_t last_height;
};

static unsigned mt_rand_len(struct mt *mt)
{
	unsigned span = mt->max_rec - VAR_MIN + 1;

	if (!mt->var)
		return FIXED_LEN;
	switch (rng_below(&mt->rng, 3)) {
	case 0:
		return VAR_MIN + (unsigned)rng_below(&mt->rng, 48);
	case 1:
		return mt->max_rec - (unsigned)rng_below(&mt->rng, 48);
	default:
		return VAR_MIN + (unsigned)rng_below(&mt->rng, span);
	}
}

static void mt_expect_rec(const struct mt *mt, uint32_t idx, const void *rec, size_t len)
{
	uint8_t want[REC_CAP];
	size_t wlen;

	REQUIRE(model_has(&mt->m, idx), "record %u not in the model", idx);
	wlen = make_rec(mt->var, idx, mt->m.len[idx], mt->m.seed[idx], want);
	REQUIRE(len == wlen, "record %u: length %zu, expected %zu", idx, len, wlen);
	REQUIRE(memcmp(rec, want, wlen) == 0, "record %u: bytes differ", idx);
}

static void mt_insert(struct mt *mt, uint32_t idx)
{
	uint8_t rec[REC_CAP];
	unsigned len = mt_rand_len(mt);
	uint32_t seed = (uint32_t)rng_next(&mt->rng);
	int ret;

	make_rec(mt->var, idx, len, seed, rec);
	ret = btree_insert(&mt->e.t, rec, len);
	if (model_has(&mt->m, idx)) {
		REQUIRE_INT(ret, -EEXIST);
		return;
	}
	REQUIRE(ret == 0, "insert of %u: %d", idx, ret);
	model_set(&mt->m, idx, len, seed);
	mt->hits[OP_INSERT]++;
}

static void mt_delete(struct mt *mt, uint32_t idx)
{
	uint8_t key[RFS_BTREE_MAX_KEY];
	int ret;

	encode_key(mt->var, key_of(idx), key);
	ret = btree_delete(&mt->e.t, key);
	if (!model_has(&mt->m, idx)) {
		REQUIRE_INT(ret, -ENOENT);
		return;
	}
	REQUIRE(ret == 0, "delete of %u: %d", idx, ret);
	model_clear(&mt->m, idx);
	mt->hits[OP_DELETE]++;
}

static void mt_update(struct mt *mt, uint32_t idx)
{
	uint8_t rec[REC_CAP];
	unsigned len = mt_rand_len(mt);
	uint32_t seed = (uint32_t)rng_next(&mt->rng);
	uint64_t nodes = mt->e.nr_used;
	int ret;

	make_rec(mt->var, idx, len, seed, rec);
	ret = btree_update(&mt->e.t, rec, len);
	mt->upd_splits += mt->e.nr_used > nodes;
	mt->upd_merges += mt->e.nr_used < nodes;
	if (!model_has(&mt->m, idx)) {
		REQUIRE_INT(ret, -ENOENT);
		return;
	}
	REQUIRE(ret == 0, "update of %u: %d", idx, ret);
	if (mt->m.len[idx] != len)
		mt->len_changes++;
	model_set(&mt->m, idx, len, seed);
	mt->hits[OP_UPDATE]++;
}

static uint64_t mt_rand_query(struct mt *mt)
{
	return rng_below(&mt->rng, 2 * (uint64_t)mt->m.nkeys + 4);
}

static void mt_lookup(struct mt *mt)
{
	uint8_t key[RFS_BTREE_MAX_KEY], rec[REC_CAP];
	enum rfs_lookup_mode mode = (enum rfs_lookup_mode)rng_below(&mt->rng, 3);
	uint64_t q = mt_rand_query(mt);
	int64_t want = model_find(&mt->m, q, mode);
	size_t len = 0;
	int ret;

	/* Half of the EQ lookups aim at a record that may exist. */
	if (mode == RFS_LOOKUP_EQ && rng_below(&mt->rng, 2)) {
		q |= 1;
		want = model_find(&mt->m, q, mode);
	}
	encode_key(mt->var, q, key);
	ret = btree_lookup(&mt->e.t, key, mode, rec, sizeof(rec), &len);
	if (want < 0) {
		REQUIRE(ret == -ENOENT, "lookup %" PRIu64 " mode %d: %d, expected -ENOENT", q, mode,
			ret);
		return;
	}
	REQUIRE(ret == 0, "lookup %" PRIu64 " mode %d: %d", q, mode, ret);
	mt_expect_rec(mt, (uint32_t)want, rec, len);
	mt->hits[OP_LOOKUP]++;
}

/* Seeks to a random key and walks up to 24 records, each step forwards or
 * backwards at random, following the model. */
static void mt_scan(struct mt *mt)
{
	struct rfs_btree_cursor cur;
	uint8_t key[RFS_BTREE_MAX_KEY];
	enum rfs_lookup_mode mode = (enum rfs_lookup_mode)rng_below(&mt->rng, 3);
	uint64_t q = mt_rand_query(mt) | (mode == RFS_LOOKUP_EQ);
	int64_t pos = model_find(&mt->m, q, mode);
	int bias = rng_below(&mt->rng, 2) ? 1 : -1; /* mostly one direction */
	unsigned steps = (unsigned)rng_below(&mt->rng, 25), s;
	const void *rec;
	size_t len;
	int ret;

	btree_cursor_init(&cur, &mt->e.t);
	encode_key(mt->var, q, key);
	ret = btree_seek(&cur, key, mode);
	REQUIRE_INT(ret, pos < 0 ? -ENOENT : 0);
	for (s = 0; pos >= 0; s++) {
		rec = btree_cursor_rec(&cur, &len);
		REQUIRE(rec, "no record at a valid cursor");
		mt_expect_rec(mt, (uint32_t)pos, rec, len);
		if (s == steps)
			break;
		if (rng_below(&mt->rng, 4) ? bias > 0 : bias < 0) {
			pos = model_next(&mt->m, pos + 1);
			ret = btree_next(&cur);
		} else {
			pos = model_prev(&mt->m, pos - 1);
			ret = btree_prev(&cur);
		}
		REQUIRE_INT(ret, pos < 0 ? -ENOENT : 0);
	}
	if (pos < 0)
		REQUIRE(!btree_cursor_rec(&cur, NULL), "record at an invalid cursor");
	btree_cursor_done(&cur);
	mt->hits[OP_SCAN]++;
}

/* A random index, or (PRESENT) usually one in the model. */
static uint32_t mt_pick(struct mt *mt, int present)
{
	uint32_t i = (uint32_t)rng_below(&mt->rng, mt->m.nkeys);
	int64_t p;

	if (!present || rng_below(&mt->rng, 10) == 0)
		return i;
	p = rng_below(&mt->rng, 2) ? model_next(&mt->m, i) : model_prev(&mt->m, i);
	if (p < 0)
		p = rng_below(&mt->rng, 2) ? model_next(&mt->m, 0) : model_prev(&mt->m, i);
	return p < 0 ? i : (uint32_t)p;
}

/* Inserts a run of consecutive keys (ascending or descending). */
static void mt_run_insert(struct mt *mt)
{
	uint32_t n = 8 + (uint32_t)rng_below(&mt->rng, 56), i = mt_pick(mt, 0), k;
	int down = (int)rng_below(&mt->rng, 2);

	for (k = 0; k < n; k++) {
		uint32_t idx = down ? i - k : i + k;
		if (idx >= mt->m.nkeys)
			break;
		mt_insert(mt, idx);
	}
}

/* Deletes a run of consecutive present records: empties whole nodes. */
static void mt_run_delete(struct mt *mt)
{
	uint32_t n = 8 + (uint32_t)rng_below(&mt->rng, 120), k;
	int64_t p = model_next(&mt->m, mt_pick(mt, 0));

	for (k = 0; k < n && p >= 0; k++) {
		mt_delete(mt, (uint32_t)p);
		p = model_next(&mt->m, p + 1);
	}
}

/* --- full check: btree_check's walk against the model ----------------- */

struct walk {
	const struct mt *mt;
	int64_t next;
	uint64_t seen, bad;
	unsigned reports;
	char last[256];
};

static void walk_report(void *arg, const struct rfs_btree *t, fsblock_t blkno, const char *msg)
{
	struct walk *w = arg;

	(void)t;
	w->reports++;
	snprintf(w->last, sizeof(w->last), "%s", msg);
	fprintf(stderr, "btree_check: block %" PRIu64 ": %s\n", blkno, msg);
}

static void walk_rec(void *arg, const struct rfs_btree *t, const void *rec, size_t len)
{
	struct walk *w = arg;
	uint8_t want[REC_CAP];
	uint32_t idx;

	(void)t;
	w->seen++;
	if (w->next < 0) {
		w->bad++;
		return;
	}
	idx = (uint32_t)w->next;
	if (make_rec(w->mt->var, idx, w->mt->m.len[idx], w->mt->m.seed[idx], want) != len ||
	    memcmp(want, rec, len) != 0)
		w->bad++;
	w->next = model_next(&w->mt->m, w->next + 1);
}

/* Walks the whole tree with a cursor, forwards or backwards. */
static void mt_full_scan(struct mt *mt, int backwards)
{
	struct rfs_btree_cursor cur;
	int64_t pos = backwards ? model_prev(&mt->m, mt->m.nkeys - 1) : model_next(&mt->m, 0);
	uint64_t n = 0;
	int ret;

	btree_cursor_init(&cur, &mt->e.t);
	ret = backwards ? btree_last(&cur) : btree_first(&cur);
	while (pos >= 0) {
		size_t len;
		const void *rec;

		REQUIRE_INT(ret, 0);
		rec = btree_cursor_rec(&cur, &len);
		REQUIRE(rec, "no record at a valid cursor");
		mt_expect_rec(mt, (uint32_t)pos, rec, len);
		n++;
		pos = backwards ? model_prev(&mt->m, pos - 1) : model_next(&mt->m, pos + 1);
		ret = backwards ? btree_prev(&cur) : btree_next(&cur);
	}
	ck_assert_int_eq(ret, -ENOENT);
	btree_cursor_done(&cur);
	ck_assert_uint_eq(n, mt->m.size);
}

static void env_check_tree(struct env *e, const struct mt *mt, uint64_t want_records)
{
	struct walk w = {.mt = mt, .next = mt ? model_next(&mt->m, 0) : -1};
	struct rfs_btree_check chk = {.report = walk_report, .arg = &w};
	int ret;

	if (mt)
		chk.visit_rec = walk_rec;
	ret = btree_check(&e->t, &chk);
	ck_assert_msg(ret == 0 && chk.errors == 0, "btree_check: %d, %" PRIu64 " errors, last: %s",
		      ret, chk.errors, w.last);
	ck_assert_uint_eq(chk.records, want_records);
	ck_assert_msg(chk.nodes == e->nr_used,
		      "%" PRIu64 " nodes in the tree, %" PRIu64 " allocated: leak", chk.nodes,
		      e->nr_used);
	ck_assert_uint_eq(e->seen_root, e->t.root);
	ck_assert_uint_eq(e->seen_height, e->t.height);
	if (mt) {
		ck_assert_msg(w.bad == 0, "%" PRIu64 " records differ from the model", w.bad);
		ck_assert_int_eq(w.next, -1);
	}
	if (want_records == 0) {
		ck_assert_uint_eq(e->t.height, 0);
		ck_assert_uint_eq(e->t.root, 0);
		ck_assert_uint_eq(e->nr_used, 0);
	}
	/* Every dirty node passes the write verifier and is checksummed. */
	ck_assert_int_eq(cache_flush(e->cache), 0);
	ck_assert_uint_eq(test_log_errors, 0);
}

static void mt_check(struct mt *mt)
{
	env_check_tree(&mt->e, mt, mt->m.size);
	if (mt->checks % 8 == 0) {
		mt_full_scan(mt, 0);
		mt_full_scan(mt, 1);
	}
	if (mt->checks % 16 == 5) /* start cold: every node re-read and re-verified */
		env_reopen_cache(&mt->e);
	mt->checks++;
}

/* Operation weights (per mille) while growing and while shrinking. */
static const unsigned grow_w[NR_OPS] = {380, 100, 150, 200, 100, 60, 10};
static const unsigned shrink_w[NR_OPS] = {120, 350, 150, 200, 140, 20, 20};

static enum mt_op mt_choose(struct mt *mt)
{
	const unsigned *w = mt->growing ? grow_w : shrink_w;
	unsigned r = (unsigned)rng_below(&mt->rng, 1000), op;

	for (op = 0; op < NR_OPS - 1 && r >= w[op]; op++)
		r -= w[op];
	return (enum mt_op)op;
}

static void mt_step(struct mt *mt)
{
	enum mt_op op = mt_choose(mt);

	switch (op) {
	case OP_INSERT:
		mt_insert(mt, mt_pick(mt, 0));
		break;
	case OP_DELETE:
		mt_delete(mt, mt_pick(mt, 1));
		break;
	case OP_UPDATE:
		mt_update(mt, mt_pick(mt, 1));
		break;
	case OP_LOOKUP:
		mt_lookup(mt);
		break;
	case OP_SCAN:
		mt_scan(mt);
		break;
	case OP_RUN_INS:
		mt_run_insert(mt);
		break;
	case OP_RUN_DEL:
		mt_run_delete(mt);
		break;
	case NR_OPS:
		break;
	}
	mt->done[op]++;
}

static void mt_phase(struct mt *mt)
{
	if (mt->m.size > mt->max_size)
		mt->max_size = mt->m.size;
	if (mt->e.t.height > mt->max_height)
		mt->max_height = mt->e.t.height;
	if (mt->e.t.height < mt->last_height && mt->e.t.height > 0)
		mt->collapses++;
	mt->last_height = mt->e.t.height;
	if (mt->growing && mt->m.size >= mt->target) {
		mt->growing = 0;
	} else if (!mt->growing && mt->m.size == 0) {
		/* Empty: the root must be gone and every node freed. */
		ck_assert_uint_eq(mt->e.t.height, 0);
		ck_assert_uint_eq(mt->e.t.root, 0);
		ck_assert_uint_eq(mt->e.nr_used, 0);
		mt->empties++;
		mt->growing = 1;
	}
}

static double now_sec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void mt_report(const struct mt *mt, const char *name, double secs)
{
	unsigned op;

	printf("%s: %.1f s, %" PRIu64 " ops, %" PRIu64 " checks, max %" PRIu64
	       " records, max height %" PRIu64 ", emptied %" PRIu64 " times, %" PRIu64
	       " root collapses\n",
	       name, secs, mt->ops, mt->checks, mt->max_size, mt->max_height, mt->empties,
	       mt->collapses);
	if (mt->var)
		printf("  %" PRIu64 " length-changing updates: %" PRIu64 " split a node, %" PRIu64
		       " merged nodes\n",
		       mt->len_changes, mt->upd_splits, mt->upd_merges);
	printf("  %-8s %8s %10s\n", "op", "chosen", "succeeded"); /* runs count as ins/del */
	for (op = 0; op < NR_OPS; op++)
		printf("  %-8s %8" PRIu64 " %10" PRIu64 "\n", op_names[op], mt->done[op],
		       op == OP_RUN_INS || op == OP_RUN_DEL ? mt->done[op] : mt->hits[op]);
	fflush(stdout);
}

struct mt_cfg {
	const char *name;
	uint32_t block_log;
	size_t cache_blocks;
	int var;
	uint32_t target, nkeys;
	uint64_t ops;
	uint64_t seed;
};

static void mt_run(const struct mt_cfg *cfg)
{
	struct mt *mt = calloc(1, sizeof(*mt));
	uint64_t nops = test_scale(cfg->ops), i;
	double start = now_sec();

	ck_assert_ptr_nonnull(mt);
	rng_init(&mt->rng, cfg->name, cfg->seed);
	env_setup(&mt->e, cfg->block_log, cfg->cache_blocks, cfg->var ? &var_ops : &fixed_ops);
	model_init(&mt->m, cfg->nkeys);
	mt->var = cfg->var;
	mt->max_rec = cfg->var ? var_ops.max_rec : FIXED_LEN;
	mt->target = cfg->target;
	mt->growing = 1;
	for (i = 0; i < nops; i++) {
		mt_step(mt);
		mt->ops++;
		mt_phase(mt);
		if (i % 4096 == 4095)
			mt_check(mt);
	}
	mt_check(mt);
	mt_report(mt, cfg->name, now_sec() - start);
	/* The run went through growth to the target and back to empty. */
	if (nops == cfg->ops) {
		ck_assert_uint_ge(mt->max_size, cfg->target);
		ck_assert_uint_ge(mt->empties, 1);
		ck_assert_uint_ge(mt->collapses, 1);
	}
	if (mt->var) {
		ck_assert_uint_ge(mt->upd_splits, 1);
		ck_assert_uint_ge(mt->upd_merges, 1);
	}
	/* Delete what is left, then nothing may remain allocated. */
	while (mt->m.size > 0)
		mt_delete(mt, (uint32_t)model_next(&mt->m, 0));
	env_check_tree(&mt->e, mt, 0);
	env_teardown(&mt->e);
	model_free(&mt->m);
	free(mt);
}

/* 1 KiB nodes: 16-byte records, about 48 a leaf, deep trees. */
START_TEST(test_model_fixed_1k)
{
	const struct mt_cfg cfg = {"model_fixed_1k", 10, 256, 0, 60000, 240000, 400000, 1001};
	mt_run(&cfg);
}
END_TEST

START_TEST(test_model_fixed_4k)
{
	const struct mt_cfg cfg = {"model_fixed_4k", 12, 128, 0, 40000, 160000, 400000, 1002};
	mt_run(&cfg);
}
END_TEST

/* 64 KiB nodes: over 3000 records a leaf; the cache holds 16 nodes. */
START_TEST(test_model_fixed_64k)
{
	const struct mt_cfg cfg = {"model_fixed_64k", 16, 16, 0, 40000, 160000, 400000, 1003};
	mt_run(&cfg);
}
END_TEST

/* Records of 20..318 bytes in 1 KiB nodes: 1 to 40 a leaf. */
START_TEST(test_model_var_1k)
{
	const struct mt_cfg cfg = {"model_var_1k", 10, 512, 1, 8000, 32000, 300000, 2001};
	struct env e;

	/* 318 bytes is the largest record three fit in a 1 KiB node. */
	memset(&e, 0, sizeof(e));
	env_setup(&e, 10, 64, &var_ops);
	ck_assert_int_eq(btree_init(&e.t, &var_too_big_ops, e.cache, 0, 0, TREE_OWNER, &e),
			 -EINVAL);
	env_teardown(&e);
	mt_run(&cfg);
}
END_TEST

START_TEST(test_model_var_4k)
{
	const struct mt_cfg cfg = {"model_var_4k", 12, 128, 1, 12000, 48000, 200000, 2002};
	mt_run(&cfg);
}
END_TEST

/* --- sequential inserts ------------------------------------------------ */

static void insert_idx(struct env *e, uint32_t idx)
{
	uint8_t rec[FIXED_LEN];

	make_rec(0, idx, FIXED_LEN, 7, rec);
	REQUIRE_INT(btree_insert(&e->t, rec, FIXED_LEN), 0);
}

static void delete_idx(struct env *e, uint32_t idx)
{
	uint8_t key[8];

	encode_key(0, key_of(idx), key);
	REQUIRE_INT(btree_delete(&e->t, key), 0);
}

static void shuffle(struct rfs_rng *r, uint32_t *a, uint32_t n)
{
	uint32_t i;

	for (i = n; i > 1; i--) {
		uint32_t j = (uint32_t)rng_below(r, i), x = a[i - 1];
		a[i - 1] = a[j];
		a[j] = x;
	}
}

/* Every record idx in [0, n) must be found, with the right value. */
static void expect_all(struct env *e, uint32_t n)
{
	uint8_t key[8], rec[FIXED_LEN], want[FIXED_LEN];
	size_t len;
	uint32_t i;

	for (i = 0; i < n; i++) {
		encode_key(0, key_of(i), key);
		REQUIRE_INT(btree_lookup(&e->t, key, RFS_LOOKUP_EQ, rec, sizeof(rec), &len), 0);
		make_rec(0, i, FIXED_LEN, 7, want);
		REQUIRE_INT(len, FIXED_LEN);
		REQUIRE_INT(memcmp(rec, want, FIXED_LEN), 0);
	}
}

static void count_leaf(void *arg, const struct rfs_btree *t, fsblock_t blkno, unsigned level)
{
	(void)t;
	(void)blkno;
	*(uint64_t *)arg += level == 0;
}

/* Appended records pack the leaves: all but the last two are full, so the
 * leaves hold at least 90% of what they could (half-split leaves: 50%). */
static void expect_packed_leaves(struct env *e, uint32_t n)
{
	uint64_t leaves = 0;
	struct rfs_btree_check chk = {.visit_node = count_leaf, .arg = &leaves};
	uint64_t per_leaf = (e->bsize - sizeof(struct rfs_btree_node)) / (FIXED_LEN + 4);

	ck_assert_int_eq(btree_check(&e->t, &chk), 0);
	ck_assert_uint_ge(10 * (uint64_t)n, 9 * leaves * per_leaf);
}

static void sequential_run(uint32_t block_log, int descending, uint64_t seed)
{
	struct env e;
	struct rfs_rng r;
	uint32_t n = (uint32_t)test_scale(40000), i, *order;

	rng_init(&r, descending ? "sequential_desc" : "sequential_asc", seed);
	env_setup(&e, block_log, 64, &fixed_ops);
	for (i = 0; i < n; i++) {
		insert_idx(&e, descending ? n - 1 - i : i);
		if (i % 5000 == 4999)
			env_check_tree(&e, NULL, i + 1);
	}
	env_check_tree(&e, NULL, n);
	expect_all(&e, n);
	printf("sequential %s %u B: %u records, height %u, %" PRIu64 " nodes\n",
	       descending ? "desc" : "asc", e.bsize, n, e.t.height, e.nr_used);
	if (!descending)
		expect_packed_leaves(&e, n);
	order = malloc(n * sizeof(*order));
	ck_assert_ptr_nonnull(order);
	for (i = 0; i < n; i++)
		order[i] = i;
	shuffle(&r, order, n);
	for (i = 0; i < n; i++) {
		delete_idx(&e, order[i]);
		if (i % 5000 == 4999)
			env_check_tree(&e, NULL, n - i - 1);
	}
	free(order);
	env_check_tree(&e, NULL, 0);
	env_teardown(&e);
}

START_TEST(test_sequential)
{
	static const uint32_t logs[] = {10, 12, 16};
	unsigned i;

	for (i = 0; i < RFS_ARRAY_SIZE(logs); i++) {
		sequential_run(logs[i], 0, 3001 + i);
		sequential_run(logs[i], 1, 3101 + i);
	}
}
END_TEST

/* Inserted in two interleaved ascending streams, removed ascending. */
START_TEST(test_sequential_interleaved)
{
	struct env e;
	uint32_t n = (uint32_t)test_scale(20000), i;

	env_setup(&e, 10, 64, &fixed_ops);
	for (i = 0; i < n / 2; i++) {
		insert_idx(&e, i);
		insert_idx(&e, n / 2 + i);
	}
	env_check_tree(&e, NULL, n);
	expect_all(&e, n);
	for (i = 0; i < n; i++) {
		delete_idx(&e, i);
		if (i % 2000 == 1999)
			env_check_tree(&e, NULL, n - i - 1);
	}
	env_check_tree(&e, NULL, 0);
	env_teardown(&e);
}
END_TEST

/* --- corruption -------------------------------------------------------- */

struct node_list {
	fsblock_t blk[4096];
	unsigned level[4096];
	unsigned n;
};

static void list_node(void *arg, const struct rfs_btree *t, fsblock_t blkno, unsigned level)
{
	struct node_list *l = arg;

	(void)t;
	if (l->n < RFS_ARRAY_SIZE(l->blk)) {
		l->blk[l->n] = blkno;
		l->level[l->n++] = level;
	}
}

/* A flushed tree of N records (1 KiB nodes) and a list of its nodes in
 * walk order; the cache is cold. */
static void corrupt_setup(struct env *e, struct node_list *l, uint32_t n)
{
	struct rfs_btree_check chk = {.visit_node = list_node, .arg = l};
	uint32_t i;

	env_setup(e, 10, 64, &fixed_ops);
	for (i = 0; i < n; i++)
		insert_idx(e, i);
	l->n = 0;
	ck_assert_int_eq(btree_check(&e->t, &chk), 0);
	ck_assert_uint_ge(e->t.height, 3);
	env_reopen_cache(e);
}

static uint8_t *blk_mem(struct env *e, fsblock_t b)
{
	return e->dev->mem + (b << e->block_log);
}

/* Record I of raw node image D, copied out (records are unaligned). */
static void raw_rec(const uint8_t *d, unsigned i, uint8_t *out, unsigned *len)
{
	struct rfs_btree_slot s;

	memcpy(&s, d + sizeof(struct rfs_btree_node) + i * sizeof(s), sizeof(s));
	*len = le16_get(s.len);
	memcpy(out, d + le16_get(s.off), *len);
}

static unsigned raw_nrecs(const uint8_t *d)
{
	struct rfs_btree_node h;

	memcpy(&h, d, sizeof(h));
	return le16_get(h.nrecs);
}

static uint8_t *raw_rec_ptr(uint8_t *d, unsigned i)
{
	struct rfs_btree_slot s;

	memcpy(&s, d + sizeof(struct rfs_btree_node) + i * sizeof(s), sizeof(s));
	return d + le16_get(s.off);
}

static uint64_t raw_key(const uint8_t *d, unsigned i)
{
	uint8_t rec[REC_CAP];
	unsigned len;

	raw_rec(d, i, rec, &len);
	return rfs_get_le64(rec);
}

/* Index in L of the K-th node at LEVEL. */
static unsigned nth_at_level(const struct node_list *l, unsigned level, unsigned k)
{
	unsigned i;

	for (i = 0; i < l->n; i++)
		if (l->level[i] == level && k-- == 0)
			return i;
	ck_abort_msg("no node %u at level %u", k, level);
	return 0;
}

/* Runs btree_check expecting problems; returns the first report. */
static void expect_check_fails(struct env *e, const char *what)
{
	struct walk w = {0};
	struct rfs_btree_check chk = {.report = walk_report, .arg = &w};

	ck_assert_int_eq(btree_check(&e->t, &chk), -EUCLEAN);
	ck_assert_uint_ge(chk.errors, 1);
	ck_assert_uint_ge(w.reports, 1);
	ck_assert_msg(strstr(w.last, what), "report \"%s\", expected \"%s\"", w.last, what);
}

static int lookup_raw(struct env *e, uint64_t k)
{
	uint8_t key[8], rec[FIXED_LEN];
	size_t len;

	rfs_put_le64(key, k);
	return btree_lookup(&e->t, key, RFS_LOOKUP_EQ, rec, sizeof(rec), &len);
}

/* Every lookup fails cleanly or finds the right record: never a crash. */
static void lookups_survive(struct env *e, uint32_t n, int want_err)
{
	uint32_t i, errs = 0;

	for (i = 0; i < n; i++) {
		int ret = lookup_raw(e, key_of(i));
		REQUIRE(ret == 0 || ret == want_err, "lookup of %u: %d", i, ret);
		errs += ret != 0;
	}
	ck_assert_uint_ge(errs, 1);
}

/* (a) A flipped byte in a leaf: checksum error. */
START_TEST(test_corrupt_byte)
{
	struct env e;
	struct node_list *l = calloc(1, sizeof(*l));
	uint32_t n = 3000;
	uint8_t *d;
	uint64_t first;
	unsigned leaf;

	ck_assert_ptr_nonnull(l);
	corrupt_setup(&e, l, n);
	leaf = nth_at_level(l, 0, 7);
	d = blk_mem(&e, l->blk[leaf]);
	first = raw_key(d, 0);
	d[e.bsize - 3] ^= 0x40;
	expect_check_fails(&e, "checksum mismatch");
	ck_assert_int_eq(lookup_raw(&e, first), -EBADMSG);
	lookups_survive(&e, n, -EBADMSG);
	/* The rest of the tree still reads. */
	ck_assert_int_eq(lookup_raw(&e, key_of(0)), 0);
	ck_assert_int_eq(lookup_raw(&e, key_of(n - 1)), 0);
	/* The root itself (dropped from the cache): nothing reads. */
	blk_mem(&e, e.t.root)[100] ^= 1;
	env_reopen_cache(&e);
	ck_assert_int_eq(lookup_raw(&e, key_of(0)), -EBADMSG);
	expect_check_fails(&e, "checksum mismatch");
	d[e.bsize - 3] ^= 0x40;
	blk_mem(&e, e.t.root)[100] ^= 1;
	env_check_tree(&e, NULL, n);
	env_teardown(&e);
	free(l);
}
END_TEST

/* Rewrites block B's checksum after a deliberate change. */
static void fix_crc(struct env *e, fsblock_t b)
{
	rfs_block_set_crc(CSUM_SEED, blk_mem(e, b), e->bsize);
}

static void swap_recs(uint8_t *d, unsigned i, unsigned j, unsigned len)
{
	uint8_t tmp[REC_CAP];

	memcpy(tmp, raw_rec_ptr(d, i), len);
	memcpy(raw_rec_ptr(d, i), raw_rec_ptr(d, j), len);
	memcpy(raw_rec_ptr(d, j), tmp, len);
}

/* (b) Two keys of a leaf swapped, checksum valid: structure error. */
START_TEST(test_corrupt_swap_keys)
{
	struct env e;
	struct node_list *l = calloc(1, sizeof(*l));
	uint32_t n = 3000;
	uint8_t *d;
	uint64_t k1;
	fsblock_t b;

	ck_assert_ptr_nonnull(l);
	corrupt_setup(&e, l, n);
	b = l->blk[nth_at_level(l, 0, 11)];
	d = blk_mem(&e, b);
	k1 = raw_key(d, 1);
	swap_recs(d, 1, 4, FIXED_LEN);
	fix_crc(&e, b);
	expect_check_fails(&e, "bad header or structure");
	ck_assert_int_eq(lookup_raw(&e, k1), -EUCLEAN);
	lookups_survive(&e, n, -EUCLEAN);
	env_teardown(&e);
	free(l);
}
END_TEST

/* (c) A leaf's last key raised past its parent's next key, the leaf
 * itself still sorted: only the checker's bounds catch it. */
START_TEST(test_corrupt_bounds)
{
	struct env e;
	struct node_list *l = calloc(1, sizeof(*l));
	uint32_t n = 3000;
	uint8_t *d;
	unsigned last;
	fsblock_t b;

	ck_assert_ptr_nonnull(l);
	corrupt_setup(&e, l, n);
	b = l->blk[nth_at_level(l, 0, 5)];
	d = blk_mem(&e, b);
	last = raw_nrecs(d) - 1;
	rfs_put_le64(raw_rec_ptr(d, last), raw_key(d, last) + 100); /* 50 records on */
	fix_crc(&e, b);
	expect_check_fails(&e, "last key not below the next parent key");
	env_teardown(&e);
	free(l);
}
END_TEST

/* (d) A leaf that lost most of its records: underfull. Then a child pointer aimed at the root:
 * a cycle the checker must survive. */
START_TEST(test_corrupt_structure)
{
	struct env e;
	struct node_list *l = calloc(1, sizeof(*l));
	struct rfs_btree_node h;
	uint32_t n = 3000;
	uint8_t *d;
	fsblock_t b;

	ck_assert_ptr_nonnull(l);
	corrupt_setup(&e, l, n);
	b = l->blk[nth_at_level(l, 0, 3)];
	d = blk_mem(&e, b);
	memcpy(&h, d, sizeof(h));
	h.nrecs = le16_make(2);
	memcpy(d, &h, sizeof(h));
	fix_crc(&e, b);
	expect_check_fails(&e, "underfull node");
	env_teardown(&e);

	corrupt_setup(&e, l, n);
	b = l->blk[nth_at_level(l, 1, 1)];
	d = blk_mem(&e, b);
	rfs_put_le64(raw_rec_ptr(d, 2) + 8, e.t.root);
	fix_crc(&e, b);
	expect_check_fails(&e, "bad header or structure");
	lookups_survive(&e, n, -EUCLEAN);
	rfs_put_le64(raw_rec_ptr(d, 2) + 8, e.nblocks + 5);
	fix_crc(&e, b);
	env_reopen_cache(&e);
	expect_check_fails(&e, "bad header or structure");
	lookups_survive(&e, n, -EUCLEAN);
	env_teardown(&e);
	free(l);
}
END_TEST

/* (e) Corruption of a node in the cache (never written): the checker
 * verifies cached nodes too. */
START_TEST(test_corrupt_cached)
{
	struct env e;
	struct node_list *l = calloc(1, sizeof(*l));
	struct rfs_buf *bp;
	uint32_t n = 3000;
	fsblock_t b;

	ck_assert_ptr_nonnull(l);
	corrupt_setup(&e, l, n);
	env_check_tree(&e, NULL, n); /* everything is cached now */
	b = l->blk[nth_at_level(l, 0, 9)];
	ck_assert_int_eq(buf_read(e.cache, b, &rfs_btree_buf_ops, &bp), 0);
	swap_recs(bp->data, 0, 1, FIXED_LEN);
	expect_check_fails(&e, "out of order");
	swap_recs(bp->data, 0, 1, FIXED_LEN);
	buf_release(bp);
	env_check_tree(&e, NULL, n);
	env_teardown(&e);
	free(l);
}
END_TEST

/* Read-only use of a corrupt tree: every call fails cleanly or succeeds. */
static void survey_tree(struct env *e, struct rfs_rng *r, uint32_t n)
{
	struct rfs_btree_cursor cur;
	uint8_t key[8], rec[REC_CAP];
	unsigned i, steps = 0;
	size_t len;
	int ret;

	for (i = 0; i < 64; i++) {
		enum rfs_lookup_mode mode = (enum rfs_lookup_mode)rng_below(r, 3);
		rfs_put_le64(key, rng_below(r, 2 * (uint64_t)n + 4));
		ret = btree_lookup(&e->t, key, mode, rec, sizeof(rec), &len);
		REQUIRE(ret == 0 || ret == -ENOENT || ret == -EUCLEAN || ret == -EBADMSG,
			"lookup on a corrupt tree: %d", ret);
		REQUIRE(ret || len <= sizeof(rec), "record of %zu bytes", len);
	}
	btree_cursor_init(&cur, &e->t);
	ret = rng_below(r, 2) ? btree_first(&cur) : btree_last(&cur);
	while (ret == 0 && steps++ < 2 * n) {
		REQUIRE(btree_cursor_rec(&cur, &len) != NULL, "valid cursor without a record");
		ret = rng_below(r, 8) ? btree_next(&cur) : btree_prev(&cur);
	}
	REQUIRE(ret == 0 || ret == -ENOENT || ret == -EUCLEAN || ret == -EBADMSG,
		"cursor on a corrupt tree: %d", ret);
	btree_cursor_done(&cur);
}

/* (f) Random bytes of random nodes changed and the checksum fixed, so the
 * node verifier and the checker meet arbitrary structure. Nothing may
 * crash (run under ASan), and a restored tree checks clean again. */
START_TEST(test_corrupt_fuzz)
{
	struct env e;
	struct rfs_rng r;
	struct node_list *l = calloc(1, sizeof(*l));
	uint8_t *save;
	uint32_t n = 3000;
	uint64_t rounds = test_scale(1500), i, detected = 0;

	ck_assert_ptr_nonnull(l);
	rng_init(&r, "corrupt_fuzz", 6001);
	corrupt_setup(&e, l, n);
	rfs_log_set_level(RFS_LOG_ERR); /* thousands of expected warnings */
	save = malloc(e.bsize);
	ck_assert_ptr_nonnull(save);
	for (i = 0; i < rounds; i++) {
		unsigned k = (unsigned)rng_below(&r, l->n), f;
		unsigned flips = 1 + (unsigned)rng_below(&r, 4);
		uint8_t *d = blk_mem(&e, l->blk[k]);
		struct rfs_btree_check chk = {0};
		int ret;

		memcpy(save, d, e.bsize);
		for (f = 0; f < flips; f++) {
			/* Mostly the node header and slots, where structure lives. */
			unsigned off = rng_below(&r, 2) ? 40 + (unsigned)rng_below(&r, 120)
							: (unsigned)rng_below(&r, e.bsize);
			d[off] ^= (uint8_t)(1u << rng_below(&r, 8));
		}
		if (rng_below(&r, 8))
			fix_crc(&e, l->blk[k]);
		env_reopen_cache(&e);
		ret = btree_check(&e.t, &chk);
		REQUIRE(ret == 0 || ret == -EUCLEAN, "btree_check: %d", ret);
		REQUIRE((ret != 0) == (chk.errors != 0), "btree_check %d with %" PRIu64 " errors",
			ret, chk.errors);
		detected += ret != 0;
		survey_tree(&e, &r, n);
		memcpy(d, save, e.bsize);
		env_reopen_cache(&e);
	}
	printf("corrupt_fuzz: %" PRIu64 " of %" PRIu64 " corruptions detected by btree_check\n",
	       detected, rounds);
	ck_assert_uint_ge(detected, rounds / 2);
	env_check_tree(&e, NULL, n);
	expect_all(&e, n);
	free(save);
	env_teardown(&e);
	free(l);
}
END_TEST

/* --- ENOSPC ------------------------------------------------------------ */

static int put_rec(struct mt *mt, int update, const uint8_t *rec, unsigned len)
{
	return update ? btree_update(&mt->e.t, rec, len) : btree_insert(&mt->e.t, rec, len);
}

/* Inserts and updates with an allocator that fails after 0..2 blocks:
 * a failed call returns -ENOSPC and changes nothing. */
static void enospc_run(struct mt *mt, uint64_t rounds)
{
	uint64_t i, failed = 0, partial = 0, ok = 0;

	for (i = 0; i < rounds; i++) {
		uint32_t idx = mt_pick(mt, mt->var && rng_below(&mt->rng, 2));
		uint8_t rec[REC_CAP];
		unsigned len = mt_rand_len(mt);
		uint32_t seed = (uint32_t)rng_next(&mt->rng);
		uint64_t budget = rng_below(&mt->rng, 3);
		int update = model_has(&mt->m, idx), ret;

		make_rec(mt->var, idx, len, seed, rec);
		mt->e.allocs_left = budget;
		ret = put_rec(mt, update, rec, len);
		mt->e.allocs_left = UINT64_MAX;
		if (ret == -ENOSPC) {
			failed++;
			partial += budget > 0; /* blocks were taken, then given back */
		} else {
			REQUIRE(ret == 0, "%s of %u: %d", update ? "update" : "insert", idx, ret);
			model_set(&mt->m, idx, len, seed);
			ok++;
		}
		if (ret == -ENOSPC || i % 1000 == 999)
			env_check_tree(&mt->e, mt, mt->m.size);
		/* Now and then the same record must go in with space. */
		if (ret == -ENOSPC && rng_below(&mt->rng, 2)) {
			REQUIRE_INT(put_rec(mt, update, rec, len), 0);
			model_set(&mt->m, idx, len, seed);
		}
	}
	printf("enospc %s: %" PRIu64 " calls failed with ENOSPC (%" PRIu64
	       " after taking blocks), %" PRIu64 " succeeded\n",
	       mt->var ? "var" : "fixed", failed, partial, ok);
	ck_assert_uint_ge(failed, rounds / 200);
	ck_assert_uint_ge(partial, 1);
	ck_assert_uint_ge(ok, rounds / 4);
}

static void enospc_case(int var, uint64_t seed)
{
	struct mt *mt = calloc(1, sizeof(*mt));
	uint8_t rec[REC_CAP];

	ck_assert_ptr_nonnull(mt);
	rng_init(&mt->rng, var ? "enospc_var" : "enospc_fixed", seed);
	env_setup(&mt->e, 10, 128, var ? &var_ops : &fixed_ops);
	model_init(&mt->m, 40000);
	mt->var = var;
	mt->max_rec = var ? var_ops.max_rec : FIXED_LEN;
	/* An empty tree needs a block for its first record. */
	mt->e.allocs_left = 0;
	make_rec(var, 5, var ? 100 : FIXED_LEN, 1, rec);
	ck_assert_int_eq(btree_insert(&mt->e.t, rec, var ? 100 : FIXED_LEN), -ENOSPC);
	ck_assert_uint_eq(mt->e.t.height, 0);
	ck_assert_uint_eq(mt->e.nr_used, 0);
	mt->e.allocs_left = UINT64_MAX;
	enospc_run(mt, test_scale(var ? 6000 : 12000));
	ck_assert_uint_ge(mt->e.t.height, 3);
	while (mt->m.size > 0)
		mt_delete(mt, (uint32_t)model_next(&mt->m, 0));
	env_check_tree(&mt->e, mt, 0);
	env_teardown(&mt->e);
	model_free(&mt->m);
	free(mt);
}

START_TEST(test_enospc_fixed)
{
	enospc_case(0, 4001);
}
END_TEST

START_TEST(test_enospc_var)
{
	enospc_case(1, 4002);
}
END_TEST

/* --- height ------------------------------------------------------------ */

/* Smallest h with f^h >= n. */
static unsigned ceil_log(uint64_t n, uint64_t f)
{
	unsigned h = 0;
	uint64_t p = 1;

	while (p < n) {
		p *= f;
		h++;
	}
	return h;
}

static void height_run(uint32_t block_log, int sequential, uint64_t seed)
{
	struct env e;
	struct rfs_rng r;
	uint32_t n = (uint32_t)test_scale(60000), i, *order;
	/* Every non-root node is at least a third full; an entry (internal or
	 * leaf) takes 20 bytes with its slot. */
	uint64_t fanout = ((1u << block_log) - sizeof(struct rfs_btree_node)) / 3 / 20;
	unsigned bound = ceil_log(n, fanout) + 2;

	rng_init(&r, "height", seed);
	env_setup(&e, block_log, 64, &fixed_ops);
	order = malloc(n * sizeof(*order));
	ck_assert_ptr_nonnull(order);
	for (i = 0; i < n; i++)
		order[i] = i;
	if (!sequential)
		shuffle(&r, order, n);
	for (i = 0; i < n; i++) {
		insert_idx(&e, order[i]);
		REQUIRE(e.t.height <= ceil_log(i + 1, fanout) + 2, "height %u with %u records",
			e.t.height, i + 1);
	}
	env_check_tree(&e, NULL, n);
	printf("height %u B %s: %u records, height %u (bound %u, min fanout %" PRIu64 ")\n",
	       e.bsize, sequential ? "sequential" : "random", n, e.t.height, bound, fanout);
	ck_assert_uint_le(e.t.height, bound);
	ck_assert_uint_ge(e.t.height, ceil_log(n, ((1u << block_log) - 56) / 20));
	/* Deleting all but a few shrinks it again. */
	for (i = 0; i + 10 < n; i++)
		delete_idx(&e, order[i]);
	env_check_tree(&e, NULL, 10);
	ck_assert_uint_eq(e.t.height, 1);
	free(order);
	env_teardown(&e);
}

START_TEST(test_height)
{
	static const uint32_t logs[] = {10, 12, 16};
	unsigned i;

	for (i = 0; i < RFS_ARRAY_SIZE(logs); i++) {
		height_run(logs[i], 0, 5001 + i);
		height_run(logs[i], 1, 5101 + i);
	}
}
END_TEST

/* --- small deterministic cases ----------------------------------------- */

START_TEST(test_empty_tree)
{
	struct env e;
	struct rfs_btree_cursor cur;
	uint8_t key[8], rec[FIXED_LEN];
	size_t len;

	env_setup(&e, 12, 64, &fixed_ops);
	rfs_put_le64(key, 5);
	ck_assert_int_eq(btree_lookup(&e.t, key, RFS_LOOKUP_GE, rec, sizeof(rec), &len), -ENOENT);
	ck_assert_int_eq(btree_delete(&e.t, key), -ENOENT);
	make_rec(0, 2, FIXED_LEN, 1, rec);
	ck_assert_int_eq(btree_update(&e.t, rec, FIXED_LEN), -ENOENT);
	ck_assert_int_eq(btree_insert(&e.t, rec, FIXED_LEN - 1), -EINVAL);
	btree_cursor_init(&cur, &e.t);
	ck_assert_int_eq(btree_first(&cur), -ENOENT);
	ck_assert_int_eq(btree_last(&cur), -ENOENT);
	ck_assert_int_eq(btree_next(&cur), -ENOENT);
	ck_assert_ptr_null(btree_cursor_rec(&cur, NULL));
	btree_cursor_done(&cur);
	/* One record: a lone leaf as root, then empty again. */
	ck_assert_int_eq(btree_insert(&e.t, rec, FIXED_LEN), 0);
	ck_assert_int_eq(btree_insert(&e.t, rec, FIXED_LEN), -EEXIST);
	ck_assert_uint_eq(e.t.height, 1);
	env_check_tree(&e, NULL, 1);
	rfs_put_le64(key, key_of(2));
	ck_assert_int_eq(btree_delete(&e.t, key), 0);
	env_check_tree(&e, NULL, 0);
	ck_assert_uint_ge(e.nr_root_changes, 2);
	env_teardown(&e);
}
END_TEST

/* A tree type past the registry must be refused, not alias a lower one. */
START_TEST(test_register_range)
{
	struct rfs_btree_ops alias = fixed_ops;
	struct env e;

	env_setup(&e, 12, 64, &fixed_ops);
	ck_assert_ptr_eq(btree_ops_for(fixed_ops.tree_type), &fixed_ops);
	alias.tree_type = fixed_ops.tree_type + 256;
	alias.name = "test-alias";
	ck_assert_int_eq(btree_register(&alias), -EINVAL);
	ck_assert_ptr_eq(btree_ops_for(fixed_ops.tree_type), &fixed_ops);
	ck_assert_ptr_null(btree_ops_for(alias.tree_type));
	insert_idx(&e, 1);
	env_check_tree(&e, NULL, 1);
	env_teardown(&e);
}
END_TEST

static int fail_root_changed(struct rfs_btree *t)
{
	t_root_changed(t);
	return -EIO;
}

/* A failure to persist a new root reaches the caller, whichever
 * operation moved the root. */
START_TEST(test_root_changed_error)
{
	struct rfs_btree_ops ops = fixed_ops;
	struct env e;
	uint32_t i, failed = 0;

	ops.root_changed = fail_root_changed;
	env_setup(&e, 10, 64, &fixed_ops);
	e.t.ops = &ops; /* same tree type: the verifier keeps fixed_ops */
	/* Descending, so that leaves split in halves and 2000 records reach
	 * height 3 (appends pack leaves full: see test_sequential). */
	for (i = 0; i < 2000; i++) {
		uint8_t rec[FIXED_LEN];
		uint32_t height = e.t.height;
		int ret;

		make_rec(0, 1999 - i, FIXED_LEN, 7, rec);
		ret = btree_insert(&e.t, rec, FIXED_LEN);
		if (e.t.height != height) {
			REQUIRE_INT(ret, -EIO);
			failed++;
		} else {
			REQUIRE_INT(ret, 0);
		}
	}
	ck_assert_uint_ge(failed, 3); /* first leaf, then two root splits */
	ck_assert_uint_ge(e.t.height, 3);
	env_check_tree(&e, NULL, 2000);
	expect_all(&e, 2000);
	env_teardown(&e);
}
END_TEST

/* A lookup into a short buffer copies what fits and reports the length. */
START_TEST(test_lookup_cap)
{
	struct env e;
	uint8_t rec[REC_CAP], out[64], key[16];
	size_t len = 0;

	env_setup(&e, 10, 64, &var_ops);
	make_rec(1, 9, 300, 3, rec);
	ck_assert_int_eq(btree_insert(&e.t, rec, 300), 0);
	memset(out, 0xa5, sizeof(out));
	encode_key(1, key_of(9), key);
	ck_assert_int_eq(btree_lookup(&e.t, key, RFS_LOOKUP_EQ, out, 40, &len), 0);
	ck_assert_uint_eq(len, 300);
	ck_assert_int_eq(memcmp(out, rec, 40), 0);
	ck_assert_uint_eq(out[40], 0xa5);
	env_check_tree(&e, NULL, 1);
	env_teardown(&e);
}
END_TEST

static Suite *btree_suite(void)
{
	Suite *s = suite_create("btree");
	TCase *model = tcase_create("model");
	TCase *det = tcase_create("deterministic");
	TCase *corrupt = tcase_create("corrupt");

	tcase_set_timeout(model, 1200);
	tcase_add_test(model, test_model_fixed_1k);
	tcase_add_test(model, test_model_fixed_4k);
	tcase_add_test(model, test_model_fixed_64k);
	tcase_add_test(model, test_model_var_1k);
	tcase_add_test(model, test_model_var_4k);
	tcase_add_test(model, test_enospc_fixed);
	tcase_add_test(model, test_enospc_var);
	suite_add_tcase(s, model);

	tcase_set_timeout(det, 1200);
	tcase_add_test(det, test_empty_tree);
	tcase_add_test(det, test_register_range);
	tcase_add_test(det, test_root_changed_error);
	tcase_add_test(det, test_lookup_cap);
	tcase_add_test(det, test_sequential);
	tcase_add_test(det, test_sequential_interleaved);
	tcase_add_test(det, test_height);
	suite_add_tcase(s, det);

	tcase_set_timeout(corrupt, 1200);
	tcase_add_test(corrupt, test_corrupt_byte);
	tcase_add_test(corrupt, test_corrupt_swap_keys);
	tcase_add_test(corrupt, test_corrupt_bounds);
	tcase_add_test(corrupt, test_corrupt_structure);
	tcase_add_test(corrupt, test_corrupt_cached);
	tcase_add_test(corrupt, test_corrupt_fuzz);
	suite_add_tcase(s, corrupt);
	return s;
}

int main(void)
{
	return test_run_suite(btree_suite());
}
