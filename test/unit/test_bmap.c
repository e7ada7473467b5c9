/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * test_bmap.c - tests of the file fork extent map (bmap.c).
 *
 * Every test formats a RAM device with 1 KiB blocks (so the global extent
 * tree gets deep quickly) and opens it without a journal. Physical block
 * numbers are made up: bmap only maps, it never allocates.
 *
 * The model test keeps a per-block array for several inodes and both
 * forks (physical block or hole, plus the unwritten flag) and compares
 * every find, count and unmap release with it. Because adjacent extents
 * that are contiguous on disk with equal flags are always merged, the
 * records of a fork are exactly the model's maximal runs: the periodic
 * tree walk compares them record by record.
 */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "bmap.h"
#include "btree.h"
#include "dev.h"
#include "fs.h"
#include "fs_create.h"
#include "inode.h"
#include "testutil.h"
#include "util.h"

#define MAXOFF	    RFS_MAX_FILE_BLOCKS
#define MAXLEN	    RFS_MAX_EXTENT_LEN
#define UNW	    RFS_BMAP_UNWRITTEN
#define DATA	    RFS_FORK_DATA
#define COW	    RFS_FORK_COW
#define FAKE_PBLK   (1ull << 40) /* random physical blocks are below this */
#define ANY	    UINT64_MAX	 /* tree_check: any number of records */
#define SMALL_FS    (64ull << 20)
#define SMALL_CACHE (1u << 20)

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t sat_add(uint64_t a, uint64_t b)
{
	return b > UINT64_MAX - a ? UINT64_MAX : a + b;
}

/* --- log sink: errors logged by the library must not go unnoticed ------------ */

/* --- filesystem setup -------------------------------------------------------- */

static struct rfs_fs *fs_mem(uint64_t bytes, size_t cache)
{
	struct rfs_dev *dev;

	rfs_log_set_sink(test_log_count);
	test_log_errors = 0;
	REQUIRE_INT(dev_open_mem(bytes, &dev), 0);
	return test_fs_format(dev, 10, 256u << 10, "bmap-test-uuid!!", RFS_FS_NOJOURNAL, cache);
}

/* A second filesystem over a byte copy of FS's (synced) device. */
static struct rfs_fs *fs_clone(struct rfs_fs *fs)
{
	ck_assert_int_eq(fs_sync(fs), 0);
	return test_fs_copy(fs, RFS_FS_NOJOURNAL | RFS_FS_RDONLY, SMALL_CACHE);
}

/* btree_check passes; returns the height. */
static uint32_t tree_check(struct rfs_fs *fs, uint64_t records)
{
	struct rfs_btree_check chk = {.report = test_report_problem};
	int ret = btree_check(&fs->bmap, &chk);

	REQUIRE(ret == 0 && chk.errors == 0, "btree_check: %d, %" PRIu64 " errors", ret,
		chk.errors);
	if (records != ANY)
		REQUIRE_U64(chk.records, records);
	return fs->bmap.height;
}

static void fs_done(struct rfs_fs *fs)
{
	tree_check(fs, ANY);
	ck_assert_int_eq(fs_close(fs), 0);
	ck_assert_uint_eq(test_log_errors, 0);
}

/* --- thin wrappers ------------------------------------------------------------- */

static int map(struct rfs_fs *fs, rfs_ino_t ino, unsigned fork, fileoff_t off, fsblock_t pblk,
	       extlen_t len, uint32_t flags, rfs_tid_t tid)
{
	struct rfs_extent e = {.off = off, .pblk = pblk, .len = len, .flags = flags, .tid = tid};

	return bmap_map(fs, ino, fork, &e);
}

static void map_ok(struct rfs_fs *fs, rfs_ino_t ino, unsigned fork, fileoff_t off, fsblock_t pblk,
		   extlen_t len, uint32_t flags)
{
	int ret = map(fs, ino, fork, off, pblk, len, flags, 1);

	REQUIRE(ret == 0, "map(ino %" PRIu64 " fork %u off %" PRIu64 " len %" PRIu64 "): %d", ino,
		fork, off, len, ret);
}

/* find must return RET and, unless an error, exactly the extent given. */
static void expect_find(struct rfs_fs *fs, rfs_ino_t ino, unsigned fork, fileoff_t off, int ret,
			fileoff_t eoff, fsblock_t pblk, extlen_t len, uint32_t flags)
{
	struct rfs_extent e;
	int got = bmap_find(fs, ino, fork, off, &e);

	REQUIRE(got == ret, "find(ino %" PRIu64 " fork %u off %" PRIu64 ") = %d, expected %d", ino,
		fork, off, got, ret);
	if (ret < 0)
		return;
	REQUIRE(e.off == eoff && e.pblk == pblk && e.len == len && e.flags == flags,
		"find(ino %" PRIu64 " fork %u off %" PRIu64 "): extent %" PRIu64 "+%" PRIu64
		" -> %" PRIu64 " flags %u, expected %" PRIu64 "+%" PRIu64 " -> %" PRIu64
		" flags %u",
		ino, fork, off, e.off, e.len, e.pblk, e.flags, eoff, len, pblk, flags);
}

static uint64_t count(struct rfs_fs *fs, rfs_ino_t ino, unsigned fork, fileoff_t off, extlen_t len)
{
	uint64_t n = 12345;

	REQUIRE_INT(bmap_count(fs, ino, fork, off, len, &n), 0);
	return n;
}

/* --- releases ------------------------------------------------------------------- */

struct rel {
	fsblock_t pblk;
	extlen_t len;
	uint32_t flags;
};

struct rel_log {
	struct rel *v;
	size_t n, cap;
	size_t fail_at; /* the call with this index fails with -EIO (SIZE_MAX: never) */
};

static void rel_push(struct rel_log *l, fsblock_t pblk, extlen_t len, uint32_t flags)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? 2 * l->cap : 64;
		l->v = realloc(l->v, l->cap * sizeof(*l->v));
		ck_assert_ptr_nonnull(l->v);
	}
	l->v[l->n++] = (struct rel){pblk, len, flags};
}

static void rel_init(struct rel_log *l)
{
	memset(l, 0, sizeof(*l));
	l->fail_at = SIZE_MAX;
}

static int rel_cb(void *arg, fsblock_t pblk, extlen_t len, uint32_t flags)
{
	struct rel_log *l = arg;

	if (l->n == l->fail_at) {
		l->fail_at = SIZE_MAX;
		return -EIO;
	}
	rel_push(l, pblk, len, flags);
	return 0;
}

static void rel_expect(const struct rel_log *got, const struct rel_log *want)
{
	size_t i;

	REQUIRE(got->n == want->n, "%zu ranges released, expected %zu", got->n, want->n);
	for (i = 0; i < got->n; i++) {
		const struct rel *g = &got->v[i], *w = &want->v[i];
		REQUIRE(g->pblk == w->pblk && g->len == w->len && g->flags == w->flags,
			"release %zu: %" PRIu64 "+%" PRIu64 " flags %u, expected %" PRIu64
			"+%" PRIu64 " flags %u",
			i, g->pblk, g->len, g->flags, w->pblk, w->len, w->flags);
	}
}

/*
 * Unmaps [OFF, OFF+LEN) (LEN > 0) by repeated bounded calls, appending the
 * releases to LOG. Every call must make progress, report at most MAX_RECS
 * ranges, and stop early only after MAX_RECS of them. Returns the calls.
 */
static unsigned unmap_all(struct rfs_fs *fs, rfs_ino_t ino, unsigned fork, fileoff_t off,
			  extlen_t len, unsigned max_recs, struct rel_log *log)
{
	fileoff_t end = sat_add(off, len), pos = off;
	unsigned calls = 0;

	do {
		size_t before = log->n;
		fileoff_t next = 0;
		int ret = bmap_unmap(fs, ino, fork, pos, end - pos, max_recs, rel_cb, log, &next);

		REQUIRE(ret == 0, "unmap(ino %" PRIu64 " fork %u off %" PRIu64 "): %d", ino, fork,
			pos, ret);
		REQUIRE(log->n - before <= max_recs, "%zu releases in one call, max_recs %u",
			log->n - before, max_recs);
		REQUIRE(next > pos, "unmap made no progress at %" PRIu64, pos);
		REQUIRE(next >= end || log->n - before == max_recs,
			"unmap stopped at %" PRIu64 " < %" PRIu64 " after %zu of %u records", next,
			end, log->n - before, max_recs);
		pos = next;
		calls++;
	} while (pos < end);
	return calls;
}

/* --- tree walk ----------------------------------------------------------------- */

struct wrec {
	rfs_ino_t ino;
	unsigned fork;
	struct rfs_extent e;
};

struct walk {
	struct wrec *v;
	size_t n, cap;
};

static int mergeable(const struct rfs_extent *a, const struct rfs_extent *b)
{
	return a->off + a->len == b->off && a->pblk + a->len == b->pblk && a->flags == b->flags &&
	       a->len + b->len <= MAXLEN;
}

/* Records are well formed, forks never overlap, and no two neighbours are
 * left unmerged. */
static void walk_invariants(const struct walk *w)
{
	size_t i;

	for (i = 0; i < w->n; i++) {
		const struct wrec *x = &w->v[i], *p = i ? &w->v[i - 1] : NULL;
		REQUIRE(x->fork <= COW && x->e.len >= 1 && x->e.len <= MAXLEN && x->e.pblk &&
				x->e.off + x->e.len <= MAXOFF && !(x->e.flags & ~(uint32_t)UNW),
			"bad record %zu: ino %" PRIu64 " fork %u %" PRIu64 "+%" PRIu64
			" -> %" PRIu64,
			i, x->ino, x->fork, x->e.off, x->e.len, x->e.pblk);
		if (!p || p->ino != x->ino || p->fork != x->fork)
			continue;
		REQUIRE(p->e.off + p->e.len <= x->e.off,
			"ino %" PRIu64 " fork %u: extents at %" PRIu64 " and %" PRIu64 " overlap",
			x->ino, x->fork, p->e.off, x->e.off);
		REQUIRE(!mergeable(&p->e, &x->e),
			"ino %" PRIu64 " fork %u: extents at %" PRIu64 " and %" PRIu64
			" should have been merged",
			x->ino, x->fork, p->e.off, x->e.off);
	}
}

static void walk_tree(struct rfs_fs *fs, struct walk *w)
{
	struct rfs_btree_cursor cur;
	int ret;

	w->n = 0;
	btree_cursor_init(&cur, &fs->bmap);
	for (ret = btree_first(&cur); !ret; ret = btree_next(&cur)) {
		struct rfs_bmap_rec r;
		struct wrec *x;
		size_t len = 0;
		const void *rec = btree_cursor_rec(&cur, &len);
		uint64_t fk;

		REQUIRE_INT(len, sizeof(r));
		memcpy(&r, rec, sizeof(r));
		if (w->n == w->cap) {
			w->cap = w->cap ? 2 * w->cap : 256;
			w->v = realloc(w->v, w->cap * sizeof(*w->v));
			ck_assert_ptr_nonnull(w->v);
		}
		x = &w->v[w->n++];
		fk = le64_get(r.fkey);
		x->ino = le64_get(r.ino);
		x->fork = (unsigned)(fk >> RFS_BMAP_OFF_BITS);
		x->e.off = fk & (MAXOFF - 1);
		x->e.pblk = le64_get(r.pblk);
		x->e.len = le32_get(r.len);
		x->e.flags = le32_get(r.flags);
		x->e.tid = le64_get(r.tid);
	}
	REQUIRE_INT(ret, -ENOENT);
	btree_cursor_done(&cur);
	walk_invariants(w);
}

static int wrec_eq(const struct wrec *a, const struct wrec *b)
{
	return a->ino == b->ino && a->fork == b->fork && a->e.off == b->e.off &&
	       a->e.pblk == b->e.pblk && a->e.len == b->e.len && a->e.flags == b->e.flags &&
	       a->e.tid == b->e.tid;
}

static void walk_expect_same(const struct walk *a, const struct walk *b)
{
	size_t i;

	REQUIRE(a->n == b->n, "%zu records, expected %zu", a->n, b->n);
	for (i = 0; i < a->n; i++)
		REQUIRE(wrec_eq(&a->v[i], &b->v[i]), "record %zu changed", i);
}

/* The records of (INO, FORK) in the walk. */
static size_t walk_count(const struct walk *w, rfs_ino_t ino, unsigned fork)
{
	size_t i, n = 0;

	for (i = 0; i < w->n; i++)
		n += w->v[i].ino == ino && w->v[i].fork == fork;
	return n;
}

/* --- the model ------------------------------------------------------------------- */

#define M_SPAN	16384 /* blocks modelled per fork; nothing is mapped beyond */
#define M_INOS	4
#define M_FORKS (2 * M_INOS)

/* Sorted, so that model index order is key order. 3 neighbours 2 but is
 * never mapped. */
static const rfs_ino_t m_inos[M_INOS] = {0, 1, 2, UINT64_MAX};

struct fmodel {
	rfs_ino_t ino;
	unsigned fork;
	uint64_t pblk[M_SPAN]; /* 0: hole */
	uint8_t flags[M_SPAN];
};

struct mctx {
	struct rfs_fs *fs;
	struct rfs_rng rng;
	struct fmodel *m;  /* [M_FORKS] */
	fileoff_t span;	   /* random offsets below this (<= M_SPAN) */
	rfs_ino_t foreign; /* an inode number no model fork uses */
	struct rel_log got, want;
	struct walk w;
	/* statistics */
	uint64_t ops, maps, merges3, refills, overlaps, unmaps, unmap_calls, released, finds,
		counts, checks;
};

/* Closes the model's filesystem and frees its tables. */
static void mctx_done(struct mctx *c)
{
	fs_done(c->fs);
	free(c->m);
	free(c->got.v);
	free(c->want.v);
	free(c->w.v);
}

static int m_mapped(const struct fmodel *f, fileoff_t o)
{
	return o < M_SPAN && f->pblk[o] != 0;
}

/* Does block O continue block O-1's extent? */
static int m_cont(const struct fmodel *f, fileoff_t o)
{
	return o > 0 && m_mapped(f, o) && m_mapped(f, o - 1) && f->pblk[o] == f->pblk[o - 1] + 1 &&
	       f->flags[o] == f->flags[o - 1];
}

/* The maximal run (= the extent record) around mapped block O. */
static void m_run(const struct fmodel *f, fileoff_t o, fileoff_t *start, fileoff_t *end)
{
	fileoff_t s = o, e = o + 1;

	while (m_cont(f, s))
		s--;
	while (m_cont(f, e))
		e++;
	*start = s;
	*end = e;
}

static fileoff_t m_next_mapped(const struct fmodel *f, fileoff_t o)
{
	while (o < M_SPAN && !f->pblk[o])
		o++;
	return o;
}

static int m_find(const struct fmodel *f, fileoff_t off, struct rfs_extent *x)
{
	fileoff_t o = off, s, e;
	int ret = 0;

	if (!m_mapped(f, off)) {
		o = m_next_mapped(f, off < M_SPAN ? off : M_SPAN);
		if (o >= M_SPAN)
			return -ENOENT;
		ret = 1;
	}
	m_run(f, o, &s, &e);
	x->off = s;
	x->len = e - s;
	x->pblk = f->pblk[s];
	x->flags = f->flags[s];
	return ret;
}

static void check_find(struct mctx *c, const struct fmodel *f, fileoff_t off)
{
	struct rfs_extent want = {0};
	int ret = m_find(f, off, &want); /* want is unset when it says -ENOENT */

	expect_find(c->fs, f->ino, f->fork, off, ret, want.off, want.pblk, want.len, want.flags);
	c->finds++;
}

static void check_count(struct mctx *c, const struct fmodel *f, fileoff_t off, extlen_t len)
{
	fileoff_t end = sat_add(off, len), o;
	uint64_t want = 0;

	for (o = off; o < end && o < M_SPAN; o++)
		want += f->pblk[o] != 0;
	REQUIRE_U64(count(c->fs, f->ino, f->fork, off, len), want);
	c->counts++;
}

/* Expected releases of unmapping [OFF, END): the runs, clipped. */
static void m_releases(const struct fmodel *f, fileoff_t off, fileoff_t end, struct rel_log *l)
{
	fileoff_t o = off;

	l->n = 0;
	while (o < end && o < M_SPAN) {
		fileoff_t s;
		if (!f->pblk[o]) {
			o++;
			continue;
		}
		s = o++;
		while (o < end && m_cont(f, o))
			o++;
		rel_push(l, f->pblk[s], o - s, f->flags[s]);
	}
}

static void m_set(struct fmodel *f, fileoff_t off, extlen_t len, fsblock_t pblk, uint32_t flags)
{
	extlen_t i;

	for (i = 0; i < len && off + i < M_SPAN; i++) {
		f->pblk[off + i] = pblk ? pblk + i : 0;
		f->flags[off + i] = pblk ? (uint8_t)flags : 0;
	}
}

/* Compares the whole tree with the model, record by record. */
static void m_compare_tree(struct mctx *c, struct rfs_fs *fs)
{
	size_t i = 0;
	unsigned k;

	walk_tree(fs, &c->w);
	for (k = 0; k < M_FORKS; k++) {
		const struct fmodel *f = &c->m[k];
		fileoff_t o = m_next_mapped(f, 0), s, e;
		for (; o < M_SPAN; o = m_next_mapped(f, e)) {
			const struct wrec *x;
			m_run(f, o, &s, &e);
			REQUIRE(i < c->w.n, "the tree lacks ino %" PRIu64 " fork %u off %" PRIu64,
				f->ino, f->fork, s);
			x = &c->w.v[i++];
			REQUIRE(x->ino == f->ino && x->fork == f->fork && x->e.off == s &&
					x->e.len == e - s && x->e.pblk == f->pblk[s] &&
					x->e.flags == f->flags[s],
				"record %zu: ino %" PRIu64 " fork %u %" PRIu64 "+%" PRIu64
				" -> %" PRIu64 ", model ino %" PRIu64 " fork %u %" PRIu64
				"+%" PRIu64 " -> %" PRIu64,
				i - 1, x->ino, x->fork, x->e.off, x->e.len, x->e.pblk, f->ino,
				f->fork, s, e - s, f->pblk[s]);
		}
	}
	REQUIRE(i == c->w.n, "the tree has %zu records, the model %zu", c->w.n, i);
	tree_check(fs, i);
	c->checks++;
}

/* --- model operations ----------------------------------------------------------- */

/* Maps part of a random hole, often contiguous with a neighbour. */
static void op_map(struct mctx *c, struct fmodel *f)
{
	fileoff_t o = rng_below(&c->rng, c->span), hs, he, a, b;
	fsblock_t pblk;
	uint32_t flags;
	int l, r, ret;

	while (o < M_SPAN && f->pblk[o])
		o++;
	if (o >= M_SPAN)
		return;
	for (hs = o; hs > 0 && !f->pblk[hs - 1]; hs--)
		;
	for (he = o; he < M_SPAN && !f->pblk[he]; he++)
		;
	a = rng_below(&c->rng, 4) == 0 ? hs : o;
	b = a + 1 + rng_below(&c->rng, RFS_MIN(he - a, 16));
	if (rng_below(&c->rng, 4) == 0 && he - a <= 512)
		b = he;
	l = a > 0 && f->pblk[a - 1];
	r = b < M_SPAN && f->pblk[b];
	switch (rng_below(&c->rng, 4)) {
	case 0:
		if (l) {
			pblk = f->pblk[a - 1] + 1;
			flags = f->flags[a - 1];
			break;
		}
		/* fall through */
	case 1:
		if (r && f->pblk[b] > b - a) {
			pblk = f->pblk[b] - (b - a);
			flags = f->flags[b];
			break;
		}
		/* fall through */
	default:
		pblk = 1 + rng_below(&c->rng, FAKE_PBLK);
		flags = rng_below(&c->rng, 4) == 0 ? UNW : 0;
	}
	if (rng_below(&c->rng, 16) == 0)
		flags ^= UNW; /* contiguous, but the flags differ */
	ret = map(c->fs, f->ino, f->fork, a, pblk, b - a, flags, c->ops);
	REQUIRE(ret == 0, "map %" PRIu64 "+%" PRIu64 ": %d", a, b - a, ret);
	m_set(f, a, b - a, pblk, flags);
	c->merges3 += m_cont(f, a) && m_cont(f, b);
	c->maps++;
	check_find(c, f, a);
	check_find(c, f, b - 1);
}

/* Maps a range overlapping a mapped block: -EUCLEAN. */
static void op_overlap(struct mctx *c, struct fmodel *f)
{
	fileoff_t m = m_next_mapped(f, rng_below(&c->rng, c->span)), a;
	extlen_t len;
	int ret;

	if (m >= M_SPAN)
		return;
	a = m - rng_below(&c->rng, RFS_MIN(m, 8) + 1);
	len = m - a + 1 + rng_below(&c->rng, 16);
	ret = map(c->fs, f->ino, f->fork, a, 1 + rng_below(&c->rng, FAKE_PBLK), len, 0, c->ops);
	REQUIRE(ret == -EUCLEAN, "map over mapped %" PRIu64 "+%" PRIu64 ": %d", a, len, ret);
	c->overlaps++;
	check_find(c, f, m);
}

static void do_unmap(struct mctx *c, struct fmodel *f, fileoff_t off, extlen_t len,
		     unsigned max_recs)
{
	fileoff_t end = sat_add(off, len);

	m_releases(f, off, end, &c->want);
	c->got.n = 0;
	c->unmap_calls += unmap_all(c->fs, f->ino, f->fork, off, len, max_recs, &c->got);
	rel_expect(&c->got, &c->want);
	if (off < M_SPAN)
		m_set(f, off, RFS_MIN(end, M_SPAN) - off, 0, 0);
	c->released += c->got.n;
	c->unmaps++;
}

static void op_unmap(struct mctx *c, struct fmodel *f)
{
	fileoff_t off = rng_below(&c->rng, c->span);
	unsigned k = (unsigned)rng_below(&c->rng, 1000), max_recs;
	extlen_t len;

	if (k < 800)
		len = 1 + rng_below(&c->rng, 16);
	else if (k < 995)
		len = 1 + rng_below(&c->rng, 256);
	else if (k < 997)
		len = M_SPAN;
	else if (k < 998)
		len = MAXOFF - off;
	else
		len = UINT64_MAX; /* "to the end", past the largest offset */
	max_recs = rng_below(&c->rng, 8) ? 1 + (unsigned)rng_below(&c->rng, 4) : 1000;
	do_unmap(c, f, off, len, max_recs);
	check_find(c, f, off);
}

/* Punches a hole inside one extent, then maps the same blocks back: the
 * three pieces must merge into the original extent again. */
static void op_punch_refill(struct mctx *c, struct fmodel *f)
{
	fileoff_t o = m_next_mapped(f, rng_below(&c->rng, c->span)), s, e, a;
	fsblock_t pblk;
	extlen_t len;
	uint32_t flags;

	if (o >= M_SPAN)
		return;
	m_run(f, o, &s, &e);
	if (e - s < 3)
		return;
	a = s + 1 + rng_below(&c->rng, e - s - 2);
	len = 1 + rng_below(&c->rng, e - 1 - a);
	pblk = f->pblk[a];
	flags = f->flags[a];
	do_unmap(c, f, a, len, 1);
	REQUIRE(c->got.n == 1, "punch released %zu ranges", c->got.n);
	check_find(c, f, a);
	REQUIRE_INT(map(c->fs, f->ino, f->fork, a, pblk, len, flags, c->ops), 0);
	m_set(f, a, len, pblk, flags);
	c->maps++;
	c->refills++;
	expect_find(c->fs, f->ino, f->fork, a, 0, s, f->pblk[s], e - s, flags);
}

static void op_query(struct mctx *c, struct fmodel *f)
{
	unsigned k = (unsigned)rng_below(&c->rng, 100);
	fileoff_t off;

	if (k < 80)
		off = rng_below(&c->rng, c->span);
	else if (k < 90)
		off = M_SPAN + rng_below(&c->rng, 64);
	else
		off = rng_below(&c->rng, MAXOFF);
	check_find(c, f, off);
	if (k % 4)
		return;
	/* Counts: short ranges, and now and then to the end of the file. */
	off = rng_below(&c->rng, c->span);
	if (rng_below(&c->rng, 32))
		check_count(c, f, off, rng_below(&c->rng, 1024));
	else
		check_count(c, f, off, rng_below(&c->rng, 2) ? UINT64_MAX : MAXOFF - off);
}

/* c->foreign (3 in test_model: between model inodes 2 and UINT64_MAX)
 * has nothing. */
static void op_foreign(struct mctx *c)
{
	fileoff_t off = rng_below(&c->rng, c->span);
	unsigned fork = (unsigned)rng_below(&c->rng, 2);
	struct rfs_extent e;

	REQUIRE_INT(bmap_find(c->fs, c->foreign, fork, off, &e), -ENOENT);
	REQUIRE_U64(count(c->fs, c->foreign, fork, 0, UINT64_MAX), 0);
	c->finds++;
}

static void model_step(struct mctx *c)
{
	struct fmodel *f = &c->m[rng_below(&c->rng, M_FORKS)];
	unsigned k = (unsigned)rng_below(&c->rng, 100);

	if (k < 30)
		op_map(c, f);
	else if (k < 33)
		op_overlap(c, f);
	else if (k < 38)
		op_punch_refill(c, f);
	else if (k < 55)
		op_unmap(c, f);
	else if (k < 97)
		op_query(c, f);
	else
		op_foreign(c);
	c->ops++;
}

START_TEST(test_model)
{
	struct mctx c = {0};
	uint64_t i, nops = test_scale(400000);
	struct rfs_fs *copy;
	double t0 = now();
	uint32_t height;
	size_t records;
	unsigned k;

	rng_init(&c.rng, "bmap model", 0xb3a9001);
	c.span = M_SPAN;
	c.foreign = 3;
	c.fs = fs_mem(SMALL_FS, 128u << 10); /* 128 nodes cached: evictions happen */
	c.m = calloc(M_FORKS, sizeof(*c.m));
	ck_assert_ptr_nonnull(c.m);
	rel_init(&c.got);
	rel_init(&c.want);
	for (k = 0; k < M_FORKS; k++) {
		c.m[k].ino = m_inos[k / 2];
		c.m[k].fork = k % 2;
	}
	for (i = 0; i < nops; i++) {
		model_step(&c);
		if (i % 8192 == 8191)
			m_compare_tree(&c, c.fs);
	}
	m_compare_tree(&c, c.fs);
	height = c.fs->bmap.height;
	records = c.w.n;
	printf("bmap model: %zu records, height %u\n", records, height);
	ck_assert_uint_ge(height, 3);
	ck_assert_uint_ge(c.merges3, nops / 1000);
	ck_assert_uint_ge(c.refills, nops / 100);
	ck_assert_uint_ge(c.overlaps, nops / 100);
	ck_assert_uint_ge(c.unmap_calls, c.unmaps + c.unmaps / 4); /* bounded calls repeat */
	ck_assert_uint_gt(c.fs->cache->stats.evictions, 0);	   /* nodes were re-read */

	/* What was written survives a reopen. */
	copy = fs_clone(c.fs);
	m_compare_tree(&c, copy);
	ck_assert_int_eq(fs_close(copy), 0);

	/* Unmap everything: every block comes back exactly once. */
	for (k = 0; k < M_FORKS; k++)
		do_unmap(&c, &c.m[k], 0, UINT64_MAX, 16);
	m_compare_tree(&c, c.fs);
	tree_check(c.fs, 0);
	ck_assert_uint_eq(c.fs->bmap.height, 0);
	printf("bmap model: %" PRIu64 " ops (%" PRIu64 " maps, %" PRIu64 " 3-way merges, %" PRIu64
	       " punch+refills, %" PRIu64 " overlaps, %" PRIu64 " unmaps in %" PRIu64
	       " calls releasing %" PRIu64 " ranges, %" PRIu64 " finds, %" PRIu64
	       " counts, %" PRIu64 " tree checks), height %u, %.2f s\n",
	       c.ops, c.maps, c.merges3, c.refills, c.overlaps, c.unmaps, c.unmap_calls, c.released,
	       c.finds, c.counts, c.checks, height, now() - t0);
	mctx_done(&c);
}
END_TEST

/* --- inline data forks ------------------------------------------------------------ */

/* A new regular file: with the feature (mkfs's default) an empty inline
 * data fork. */
static rfs_ino_t new_file(struct rfs_fs *fs)
{
	struct rfs_inode in;

	inode_init_new(fs, &in, S_IFREG | 0644, 0, 0);
	REQUIRE_INT(in.inline_type, RFS_INLINE_EXTENTS);
	REQUIRE_INT(inode_insert(fs, &in), 0);
	return in.ino;
}

/* 1 if INO's data fork is inline; its extents into E (*N of them). */
static int inline_fork(struct rfs_fs *fs, rfs_ino_t ino, struct rfs_extent *e, unsigned *n)
{
	struct rfs_inode in;
	unsigned i;

	REQUIRE_INT(inode_read(fs, ino, &in), 0);
	*n = 0;
	if (in.inline_type != RFS_INLINE_EXTENTS)
		return 0;
	REQUIRE(in.inline_len % 24 == 0 && in.inline_len <= 24 * RFS_INLINE_EXTS,
		"inode %" PRIu64 ": inline_len %u", ino, in.inline_len);
	for (i = 0; i < in.inline_len / 24u; i++) {
		struct rfs_inline_ext x;

		memcpy(&x, in.inline_data + 24 * i, sizeof(x));
		e[i] = (struct rfs_extent){le64_get(x.off), le64_get(x.pblk), le32_get(x.len),
					   le32_get(x.flags), in.tid};
	}
	*n = i;
	return 1;
}

/* Compares every fork with the model: an inline data fork extent by
 * extent (and no record of it in the tree), any other fork record by
 * record. */
static void m_compare_inline(struct mctx *c, struct rfs_fs *fs, unsigned *ninline)
{
	struct rfs_extent ie[RFS_INLINE_EXTS];
	size_t total = 0;
	unsigned k;

	walk_tree(fs, &c->w);
	*ninline = 0;
	for (k = 0; k < M_FORKS; k++) {
		const struct fmodel *f = &c->m[k];
		fileoff_t o = m_next_mapped(f, 0), s, e;
		unsigned n = 0, inl = f->fork == DATA && inline_fork(fs, f->ino, ie, &n);
		size_t i, w = 0;

		*ninline += inl;
		if (inl)
			REQUIRE(walk_count(&c->w, f->ino, f->fork) == 0,
				"inode %" PRIu64 ": inline fork and tree records", f->ino);
		for (; o < M_SPAN; o = m_next_mapped(f, e)) {
			const struct rfs_extent *x = NULL;
			m_run(f, o, &s, &e);
			if (inl) {
				REQUIRE(w < n, "inode %" PRIu64 ": inline fork lacks %" PRIu64,
					f->ino, s);
				x = &ie[w++];
			} else {
				for (i = 0; i < c->w.n && !x; i++)
					if (c->w.v[i].ino == f->ino && c->w.v[i].fork == f->fork &&
					    c->w.v[i].e.off == s)
						x = &c->w.v[i].e;
				w++;
				REQUIRE(x != NULL, "ino %" PRIu64 " fork %u: no record at %" PRIu64,
					f->ino, f->fork, s);
			}
			REQUIRE(x->off == s && x->len == e - s && x->pblk == f->pblk[s] &&
					x->flags == f->flags[s],
				"ino %" PRIu64 " fork %u (%s): %" PRIu64 "+%" PRIu64 " -> %" PRIu64
				", model %" PRIu64 "+%" PRIu64 " -> %" PRIu64,
				f->ino, f->fork, inl ? "inline" : "tree", x->off, x->len, x->pblk,
				s, e - s, f->pblk[s]);
		}
		REQUIRE(w == (inl ? n : walk_count(&c->w, f->ino, f->fork)),
			"ino %" PRIu64 " fork %u: %zu runs in the model, more extents stored",
			f->ino, f->fork, w);
		if (!inl)
			total += w;
	}
	REQUIRE(total == c->w.n, "the tree has %zu records, the model %zu", c->w.n, total);
	c->checks++;
}

/* Empties the data fork of model inode K and puts it back into the inode
 * (bmap_data_inline), or empties both forks and gives it a new inode:
 * either way its data fork is inline again. */
static void m_new_inode(struct mctx *c, unsigned k)
{
	struct fmodel *d = &c->m[2 * k], *w = &c->m[2 * k + 1];
	struct rfs_extent ie[RFS_INLINE_EXTS];
	unsigned n;

	do_unmap(c, d, 0, UINT64_MAX, 16);
	if (rng_below(&c->rng, 2)) {
		REQUIRE_INT(bmap_data_inline(c->fs, d->ino), 0);
		REQUIRE(inline_fork(c->fs, d->ino, ie, &n) && n == 0,
			"inode %" PRIu64 ": the emptied fork is not back inline", d->ino);
		return;
	}
	do_unmap(c, w, 0, UINT64_MAX, 16);
	REQUIRE_INT(inode_delete(c->fs, d->ino), 0);
	d->ino = w->ino = new_file(c->fs);
}

/*
 * The model test again, on a few regular files whose data forks start
 * inline, with offsets in a short span so that forks keep crossing the
 * inline limit; now and then a file is emptied and made again. After
 * every operation the representation is checked against the model.
 */
START_TEST(test_inline_model)
{
	struct mctx c = {0};
	uint64_t i, nops = test_scale(60000), converted = 0, recreated = 0;
	unsigned k, ninline, was[M_INOS];
	struct rfs_fs *copy;

	rng_init(&c.rng, "bmap inline model", 0x1a11e);
	c.span = 40;
	c.foreign = 1000000;
	c.fs = fs_mem(SMALL_FS, SMALL_CACHE);
	c.m = calloc(M_FORKS, sizeof(*c.m));
	ck_assert_ptr_nonnull(c.m);
	rel_init(&c.got);
	rel_init(&c.want);
	for (k = 0; k < M_INOS; k++) {
		c.m[2 * k].ino = c.m[2 * k + 1].ino = new_file(c.fs);
		c.m[2 * k].fork = DATA;
		c.m[2 * k + 1].fork = COW;
	}
	for (i = 0; i < nops; i++) {
		struct rfs_extent ie[RFS_INLINE_EXTS];
		unsigned n;

		for (k = 0; k < M_INOS; k++)
			was[k] = (unsigned)inline_fork(c.fs, c.m[2 * k].ino, ie, &n);
		if (rng_below(&c.rng, 200) == 0) {
			m_new_inode(&c, (unsigned)rng_below(&c.rng, M_INOS));
			recreated++;
		} else {
			model_step(&c);
		}
		for (k = 0; k < M_INOS; k++)
			converted += was[k] && !inline_fork(c.fs, c.m[2 * k].ino, ie, &n);
		if (i % 64 == 63)
			m_compare_inline(&c, c.fs, &ninline);
	}
	m_compare_inline(&c, c.fs, &ninline);
	copy = fs_clone(c.fs);
	m_compare_inline(&c, copy, &ninline);
	ck_assert_int_eq(fs_close(copy), 0);
	printf("bmap inline model: %" PRIu64 " ops, %" PRIu64 " forks moved to the tree, %" PRIu64
	       " emptied forks made inline again, %" PRIu64 " checks, %u inline at the end\n",
	       c.ops, converted, recreated, c.checks, ninline);
	ck_assert_uint_ge(converted, nops / 400);
	ck_assert_uint_ge(c.refills, nops / 100);
	for (k = 0; k < M_FORKS; k++)
		do_unmap(&c, &c.m[k], 0, UINT64_MAX, 16);
	m_compare_inline(&c, c.fs, &ninline);
	tree_check(c.fs, 0);
	mctx_done(&c);
}
END_TEST

/* Five extents that do not merge, at offsets 0, 10, ... 40. */
static rfs_ino_t five_extents(struct rfs_fs *fs)
{
	rfs_ino_t ino = new_file(fs);
	unsigned i;

	for (i = 0; i < RFS_INLINE_EXTS; i++)
		map_ok(fs, ino, DATA, 10 * i, 1000 + 100 * i, 4, 0);
	return ino;
}

/* Takes every free block (in pieces), so that no tree can grow. */
static void fill_space(struct rfs_fs *fs)
{
	fsblock_t start;
	extlen_t len;

	while (alloc_extent(fs, 0, 1, 1u << 20, &start, &len) == 0)
		;
	REQUIRE_U64(fs->sb.free_blocks, 0);
}

/* A fork that cannot move to the tree for want of a node stays inline
 * exactly as it was, for a map and for an unmap that splits an extent. */
START_TEST(test_inline_enospc)
{
	struct rfs_fs *fs = fs_mem(SMALL_FS, SMALL_CACHE);
	struct rfs_extent before[RFS_INLINE_EXTS], after[RFS_INLINE_EXTS];
	struct rel_log log;
	rfs_ino_t ino = five_extents(fs);
	unsigned n0, n1;
	fileoff_t next = 7;

	rel_init(&log);
	ck_assert_int_eq(inline_fork(fs, ino, before, &n0), 1);
	ck_assert_uint_eq(n0, RFS_INLINE_EXTS);
	fill_space(fs);
	ck_assert_int_eq(map(fs, ino, DATA, 100, 5000, 1, 0, 1), -ENOSPC);
	ck_assert_int_eq(bmap_unmap(fs, ino, DATA, 11, 1, 4, rel_cb, &log, &next), -ENOSPC);
	ck_assert_uint_eq(next, 11);
	ck_assert_uint_eq(log.n, 0);
	ck_assert_int_eq(inline_fork(fs, ino, after, &n1), 1);
	ck_assert_uint_eq(n1, n0);
	for (n1 = 0; n1 < n0; n1++)
		ck_assert(before[n1].off == after[n1].off && before[n1].pblk == after[n1].pblk &&
			  before[n1].len == after[n1].len && before[n1].flags == after[n1].flags);
	tree_check(fs, 0);
	/* Unmapping whole extents needs no node: it works on a full disk. */
	ck_assert_int_eq(bmap_unmap(fs, ino, DATA, 40, 4, 4, rel_cb, &log, &next), 0);
	ck_assert_uint_eq(log.n, 1);
	ck_assert_int_eq(inline_fork(fs, ino, after, &n1), 1);
	ck_assert_uint_eq(n1, 4);
	/* With room again, the split moves the fork to the tree. */
	ck_assert_int_eq(free_extent(fs, 1000 + 100 * 4, 4), 0);
	map_ok(fs, ino, DATA, 40, 1400, 4, 0);
	ck_assert_int_eq(bmap_unmap(fs, ino, DATA, 11, 1, 4, rel_cb, &log, &next), 0);
	ck_assert_int_eq(inline_fork(fs, ino, after, &n1), 0);
	tree_check(fs, RFS_INLINE_EXTS + 1);
	expect_find(fs, ino, DATA, 11, 1, 12, 1102, 2, 0);
	free(log.v);
	fs_done(fs);
}
END_TEST

/* The ownership rule: a caller's copy of the inode, read before bmap
 * changed the inline fork, written back afterwards, changes the inode's
 * other fields and leaves the fork alone (both ways across the limit). */
START_TEST(test_inline_stale_copy)
{
	struct rfs_fs *fs = fs_mem(SMALL_FS, SMALL_CACHE);
	struct rfs_extent e[RFS_INLINE_EXTS];
	struct rfs_inode stale, now;
	rfs_ino_t ino = new_file(fs);
	unsigned n;

	ck_assert_int_eq(inode_read(fs, ino, &stale), 0);
	map_ok(fs, ino, DATA, 0, 500, 3, 0);
	stale.nblocks = 3;
	stale.uid = 77;
	ck_assert_int_eq(inode_write(fs, &stale), 0);
	ck_assert_int_eq(inode_read(fs, ino, &now), 0);
	ck_assert_uint_eq(now.uid, 77);
	ck_assert_uint_eq(now.nblocks, 3);
	ck_assert_int_eq(inline_fork(fs, ino, e, &n), 1);
	ck_assert_uint_eq(n, 1);
	expect_find(fs, ino, DATA, 1, 0, 0, 500, 3, 0);

	/* A copy from before the move to the tree cannot bring the inline
	 * fork back. */
	ck_assert_int_eq(inode_read(fs, ino, &stale), 0);
	for (n = 1; n <= RFS_INLINE_EXTS; n++)
		map_ok(fs, ino, DATA, 10 * n, 1000 + 100 * n, 2, 0);
	ck_assert_int_eq(inline_fork(fs, ino, e, &n), 0);
	ck_assert_int_eq(inode_write(fs, &stale), 0);
	ck_assert_int_eq(inline_fork(fs, ino, e, &n), 0);
	ck_assert_uint_eq(count(fs, ino, DATA, 0, UINT64_MAX), 3 + 2 * RFS_INLINE_EXTS);
	tree_check(fs, RFS_INLINE_EXTS + 1);

	/* Without the feature, new files keep their forks in the tree. */
	fs->sb.feat_incompat &= ~RFS_FEAT_INCOMPAT_INLINE_FORK;
	inode_init_new(fs, &now, S_IFREG | 0644, 0, 0);
	ck_assert_uint_eq(now.inline_type, RFS_INLINE_NONE);
	fs_done(fs);
}
END_TEST

/*
 * An unmap that splits an extent on a full disk: the record that would
 * take the tail (an inode record 24 bytes longer, or a new tree record)
 * may need a node split and fail with -ENOSPC. Then the fork must be as
 * it was and nothing released: blocks freed while a file still maps them
 * would be handed to another file. 400 files of 3 extents, both
 * representations; each must hit -ENOSPC at least once.
 */
static void unmap_split_enospc(int inline_forks)
{
	struct rfs_fs *fs = fs_mem(SMALL_FS, SMALL_CACHE);
	rfs_ino_t inos[400];
	unsigned i, hit = 0;
	fileoff_t next;

	if (!inline_forks)
		fs->sb.feat_incompat &= ~RFS_FEAT_INCOMPAT_INLINE_FORK;
	for (i = 0; i < 400; i++) {
		struct rfs_inode in;

		inode_init_new(fs, &in, S_IFREG | 0644, 0, 0);
		REQUIRE_INT(inode_insert(fs, &in), 0);
		inos[i] = in.ino;
		map_ok(fs, inos[i], DATA, 0, 1000 + 100 * i, 4, 0);
		map_ok(fs, inos[i], DATA, 10, 50000 + 100 * i, 4, 0);
		map_ok(fs, inos[i], DATA, 20, 90000 + 100 * i, 4, 0);
	}
	fill_space(fs);
	for (i = 0; i < 400; i++) {
		struct rel_log log;
		struct rfs_extent fe;
		int ret;

		rel_init(&log);
		ret = bmap_unmap(fs, inos[i], DATA, 1, 1, 4, rel_cb, &log, &next);
		if (ret == -ENOSPC) {
			hit++;
			ck_assert_int_eq(bmap_find(fs, inos[i], DATA, 1, &fe), 0);
			ck_assert_msg(fe.off == 0 && fe.len == 4 && fe.pblk == 1000 + 100 * i,
				      "file %u (%s): the fork changed: %llu+%llu", i,
				      inline_forks ? "inline" : "tree", (unsigned long long)fe.off,
				      (unsigned long long)fe.len);
			ck_assert_msg(log.n == 0, "file %u (%s): %zu release(s) after -ENOSPC", i,
				      inline_forks ? "inline" : "tree", log.n);
			ck_assert_uint_eq(next, 1);
		} else {
			ck_assert_int_eq(ret, 0);
		}
		free(log.v);
	}
	ck_assert_msg(hit > 0, "no -ENOSPC reached (%s)", inline_forks ? "inline" : "tree");
	fs_done(fs);
}

START_TEST(test_unmap_split_enospc)
{
	unmap_split_enospc(1);
	unmap_split_enospc(0);
}
END_TEST

/* A data fork in the tree goes back into its inode once nothing is
 * mapped, and only then; the CoW fork does not count. */
START_TEST(test_inline_back)
{
	struct rfs_fs *fs = fs_mem(SMALL_FS, SMALL_CACHE);
	rfs_ino_t ino = five_extents(fs);
	struct rfs_extent e[RFS_INLINE_EXTS];
	struct rel_log log;
	fileoff_t next;
	unsigned n;

	rel_init(&log);
	map_ok(fs, ino, DATA, 100, 7000, 1, 0);
	map_ok(fs, ino, COW, 0, 8000, 2, 0);
	ck_assert_int_eq(inline_fork(fs, ino, e, &n), 0);
	ck_assert_int_eq(bmap_data_inline(fs, ino), 0);
	ck_assert_int_eq(inline_fork(fs, ino, e, &n), 0); /* still maps blocks */
	ck_assert_int_eq(bmap_unmap(fs, ino, DATA, 0, UINT64_MAX, 100, rel_cb, &log, &next), 0);
	ck_assert_uint_eq(log.n, RFS_INLINE_EXTS + 1);
	ck_assert_int_eq(bmap_data_inline(fs, ino), 0);
	ck_assert_int_eq(inline_fork(fs, ino, e, &n), 1);
	ck_assert_uint_eq(n, 0);
	tree_check(fs, 1); /* the CoW extent stays in the tree */
	map_ok(fs, ino, DATA, 3, 9000, 1, 0);
	ck_assert_int_eq(inline_fork(fs, ino, e, &n), 1);
	ck_assert_uint_eq(n, 1);
	/* no inode record, or not a regular file: nothing to do */
	ck_assert_int_eq(bmap_data_inline(fs, 999999), 0);
	ck_assert_int_eq(bmap_data_inline(fs, RFS_ROOT_INO), 0);
	free(log.v);
	fs_done(fs);
}
END_TEST

/* Garbage in the inline area is corruption, never a crash. */
START_TEST(test_inline_corrupt)
{
	struct rfs_fs *fs = fs_mem(SMALL_FS, SMALL_CACHE);
	rfs_ino_t ino = five_extents(fs);
	struct rfs_inode in, bad;
	struct rfs_extent e;
	fileoff_t next;
	unsigned i;

	ck_assert_int_eq(inode_read(fs, ino, &in), 0);
	for (i = 0; i < 6; i++) {
		bad = in;
		switch (i) {
		case 0: /* not a whole extent */
			bad.inline_len = 23;
			break;
		case 1: /* unsorted: the first extent's offset past the second's */
			rfs_put_le64(bad.inline_data, 12);
			break;
		case 2: /* block 0 */
			rfs_put_le64(bad.inline_data + 8, 0);
			break;
		case 3: /* length 0 */
			memset(bad.inline_data + 16, 0, 4);
			break;
		case 4: /* unknown flag */
			bad.inline_data[20] = 2;
			break;
		default: /* beyond the largest offset */
			rfs_put_le64(bad.inline_data + 24 * 4, MAXOFF);
		}
		ck_assert_int_eq(inode_write_all(fs, &bad), 0);
		ck_assert_int_eq(bmap_find(fs, ino, DATA, 0, &e), -EUCLEAN);
		ck_assert_int_eq(map(fs, ino, DATA, 200, 9000, 1, 0, 1), -EUCLEAN);
		ck_assert_int_eq(bmap_unmap(fs, ino, DATA, 0, 100, 8, NULL, NULL, &next), -EUCLEAN);
		ck_assert_int_eq(bmap_any(fs, ino, DATA, 0, 100), -EUCLEAN);
	}
	ck_assert_int_eq(inode_write_all(fs, &in), 0);
	ck_assert_uint_eq(count(fs, ino, DATA, 0, UINT64_MAX), 4 * RFS_INLINE_EXTS);
	fs_done(fs);
}
END_TEST

/* --- edge cases ----------------------------------------------------------------- */

/* Bad arguments are refused without touching anything. */
START_TEST(test_map_invalid)
{
	struct rfs_fs *fs = fs_mem(SMALL_FS, SMALL_CACHE);
	struct walk before = {0}, after = {0};

	map_ok(fs, 5, DATA, 100, 1000, 10, 0);
	walk_tree(fs, &before);
	ck_assert_int_eq(fs_sync(fs), 0);
	ck_assert_uint_eq(fs->cache->nr_dirty, 0);

	ck_assert_int_eq(map(fs, 5, DATA, 0, 1000, 0, 0, 1), -EINVAL);
	ck_assert_int_eq(map(fs, 5, DATA, 0, 1000, MAXLEN + 1, 0, 1), -EFBIG);
	ck_assert_int_eq(map(fs, 5, DATA, 0, 1000, UINT64_MAX, 0, 1), -EFBIG);
	ck_assert_int_eq(map(fs, 5, DATA, MAXOFF - 5, 1000, 6, 0, 1), -EFBIG);
	ck_assert_int_eq(map(fs, 5, DATA, MAXOFF, 1000, 1, 0, 1), -EFBIG);
	ck_assert_int_eq(map(fs, 5, DATA, UINT64_MAX, 1000, 2, 0, 1), -EFBIG);
	ck_assert_int_eq(map(fs, 5, DATA, UINT64_MAX - 4, 1000, 10, 0, 1), -EFBIG);
	ck_assert_int_eq(map(fs, 5, DATA, 0, 0, 10, 0, 1), -EINVAL);		  /* block 0 */
	ck_assert_int_eq(map(fs, 5, DATA, 0, UINT64_MAX - 3, 10, 0, 1), -EINVAL); /* wraps */
	ck_assert_int_eq(map(fs, 5, DATA, 0, 1000, 10, 2, 1), -EINVAL);		  /* flags */
	ck_assert_int_eq(map(fs, 5, 2, 0, 1000, 10, 0, 1), -EINVAL);		  /* fork */
	ck_assert_int_eq(map(fs, 5, 255, 0, 1000, 10, 0, 1), -EINVAL);
	/* The rest of the interface refuses forks that do not exist too. */
	{
		struct rfs_extent e;
		fileoff_t next;
		uint64_t n;
		ck_assert_int_eq(bmap_find(fs, 5, 2, 0, &e), -EINVAL);
		ck_assert_int_eq(bmap_count(fs, 5, 2, 0, 10, &n), -EINVAL);
		ck_assert_int_eq(bmap_unmap(fs, 5, 2, 0, 10, 1, NULL, NULL, &next), -EINVAL);
		ck_assert_int_eq(bmap_unmap(fs, 5, DATA, 0, 1000, 0, NULL, NULL, &next), -EINVAL);
	}
	ck_assert_uint_eq(fs->cache->nr_dirty, 0);
	walk_tree(fs, &after);
	walk_expect_same(&after, &before);
	tree_check(fs, 1);
	free(before.v);
	free(after.v);
	fs_done(fs);
}
END_TEST

/* Offsets up to the very last block, and beyond it. */
START_TEST(test_offset_limits)
{
	struct rfs_fs *fs = fs_mem(SMALL_FS, SMALL_CACHE);
	struct rel_log got, want;
	struct rfs_extent e;
	fileoff_t next = 0;

	rel_init(&got);
	rel_init(&want);
	map_ok(fs, 5, DATA, MAXOFF - 10, 7000, 10, UNW);
	map_ok(fs, 5, DATA, 0, 100, 4, 0);
	expect_find(fs, 5, DATA, MAXOFF - 1, 0, MAXOFF - 10, 7000, 10, UNW);
	expect_find(fs, 5, DATA, MAXOFF - 11, 1, MAXOFF - 10, 7000, 10, UNW);
	expect_find(fs, 5, DATA, 4, 1, MAXOFF - 10, 7000, 10, UNW);
	expect_find(fs, 5, DATA, MAXOFF, -ENOENT, 0, 0, 0, 0);
	expect_find(fs, 5, DATA, UINT64_MAX, -ENOENT, 0, 0, 0, 0);
	ck_assert_uint_eq(count(fs, 5, DATA, 0, UINT64_MAX), 14);
	ck_assert_uint_eq(count(fs, 5, DATA, 2, UINT64_MAX), 12);
	ck_assert_uint_eq(count(fs, 5, DATA, MAXOFF - 20, UINT64_MAX), 10);
	ck_assert_uint_eq(count(fs, 5, DATA, MAXOFF - 3, MAXOFF), 3);
	ck_assert_uint_eq(count(fs, 5, DATA, MAXOFF - 3, 2), 2);
	ck_assert_uint_eq(count(fs, 5, DATA, MAXOFF, 100), 0);
	ck_assert_uint_eq(count(fs, 5, DATA, UINT64_MAX - 1, 100), 0);

	/* The CoW fork's keys follow the data fork's: offsets past the
	 * last block must not wrap around into them. */
	map_ok(fs, 5, COW, 0, 500, 10, 0);
	map_ok(fs, 5, COW, 20, 600, 10, 0);
	expect_find(fs, 5, COW, MAXOFF, -ENOENT, 0, 0, 0, 0);
	expect_find(fs, 5, COW, MAXOFF + 25, -ENOENT, 0, 0, 0, 0);
	expect_find(fs, 5, COW, UINT64_MAX, -ENOENT, 0, 0, 0, 0);
	expect_find(fs, 5, DATA, MAXOFF + 5, -ENOENT, 0, 0, 0, 0);
	ck_assert_uint_eq(count(fs, 5, COW, MAXOFF, 100), 0);
	ck_assert_uint_eq(count(fs, 5, COW, MAXOFF - 5, 100), 0);
	ck_assert_uint_eq(count(fs, 5, COW, 0, UINT64_MAX), 20);
	ck_assert_int_eq(bmap_unmap(fs, 5, COW, MAXOFF, 30, 8, rel_cb, &got, &next), 0);
	ck_assert_uint_eq(got.n, 0);
	ck_assert_uint_ge(next, MAXOFF + 30);
	ck_assert_uint_eq(count(fs, 5, COW, 0, UINT64_MAX), 20);

	/* Unmapping "to the end" reports completion at OFF+LEN or beyond,
	 * so that a caller's loop ends. */
	ck_assert_int_eq(bmap_unmap(fs, 5, DATA, MAXOFF - 3, UINT64_MAX, 8, rel_cb, &got, &next),
			 0);
	ck_assert_uint_eq(next, UINT64_MAX);
	rel_push(&want, 7007, 3, UNW);
	rel_expect(&got, &want);
	ck_assert_int_eq(bmap_unmap(fs, 5, DATA, MAXOFF - 10, 100, 8, rel_cb, &got, &next), 0);
	ck_assert_uint_ge(next, MAXOFF + 90);
	rel_push(&want, 7000, 7, UNW);
	rel_expect(&got, &want);
	ck_assert_int_eq(bmap_unmap(fs, 5, DATA, UINT64_MAX - 5, 5, 8, rel_cb, &got, &next), 0);
	ck_assert_uint_ge(next, UINT64_MAX);
	rel_expect(&got, &want);
	expect_find(fs, 5, DATA, 4, -ENOENT, 0, 0, 0, 0);
	expect_find(fs, 5, DATA, 3, 0, 0, 100, 4, 0);

	/* Longest extent, and the last possible one. */
	map_ok(fs, 6, DATA, MAXOFF - MAXLEN, 1ull << 50, MAXLEN, 0);
	expect_find(fs, 6, DATA, MAXOFF - 1, 0, MAXOFF - MAXLEN, 1ull << 50, MAXLEN, 0);
	expect_find(fs, 6, DATA, 0, 1, MAXOFF - MAXLEN, 1ull << 50, MAXLEN, 0);
	ck_assert_uint_eq(count(fs, 6, DATA, 0, UINT64_MAX), MAXLEN);
	ck_assert_uint_eq(count(fs, 6, DATA, MAXOFF - 2, 1), 1);
	ck_assert_int_eq(map(fs, 6, DATA, MAXOFF - MAXLEN - 1, 5, 2, 0, 1), -EUCLEAN);
	ck_assert_uint_eq(bmap_find(fs, 6, DATA, 12345, &e), 1);
	tree_check(fs, 4);
	free(got.v);
	free(want.v);
	fs_done(fs);
}
END_TEST

/* Merging stops at the largest extent length. */
START_TEST(test_merge_limit)
{
	struct rfs_fs *fs = fs_mem(SMALL_FS, SMALL_CACHE);
	const fsblock_t p = 1ull << 36;
	struct walk w = {0};

	/* Left merge up to exactly MAXLEN, then no further. */
	map_ok(fs, 9, DATA, 0, p, MAXLEN - 10, 0);
	map_ok(fs, 9, DATA, MAXLEN - 10, p + MAXLEN - 10, 10, 0);
	expect_find(fs, 9, DATA, 0, 0, 0, p, MAXLEN, 0);
	map_ok(fs, 9, DATA, MAXLEN, p + MAXLEN, 5, 0);
	expect_find(fs, 9, DATA, MAXLEN - 1, 0, 0, p, MAXLEN, 0);
	expect_find(fs, 9, DATA, MAXLEN, 0, MAXLEN, p + MAXLEN, 5, 0);

	/* Right merge refused the same way. */
	map_ok(fs, 10, DATA, 10, p + 10, MAXLEN, UNW);
	map_ok(fs, 10, DATA, 5, p + 5, 5, UNW);
	expect_find(fs, 10, DATA, 9, 0, 5, p + 5, 5, UNW);
	expect_find(fs, 10, DATA, 10, 0, 10, p + 10, MAXLEN, UNW);

	/* Three-way: the right merge fits, the left one would not. */
	map_ok(fs, 11, DATA, 0, p, 100, 0);
	map_ok(fs, 11, DATA, 200, p + 200, MAXLEN - 150, 0);
	map_ok(fs, 11, DATA, 100, p + 100, 100, 0);
	expect_find(fs, 11, DATA, 99, 0, 0, p, 100, 0);
	expect_find(fs, 11, DATA, 100, 0, 100, p + 100, MAXLEN - 50, 0);
	ck_assert_uint_eq(count(fs, 11, DATA, 0, UINT64_MAX), MAXLEN + 50);

	/* Three-way: the right merge would not fit, the left one does. */
	map_ok(fs, 12, DATA, 0, p, 100, 0);
	map_ok(fs, 12, DATA, 200, p + 200, MAXLEN - 50, 0);
	map_ok(fs, 12, DATA, 100, p + 100, 100, 0);
	expect_find(fs, 12, DATA, 150, 0, 0, p, 200, 0);
	expect_find(fs, 12, DATA, 200, 0, 200, p + 200, MAXLEN - 50, 0);

	/* Three-way to exactly MAXLEN: one extent. */
	map_ok(fs, 13, DATA, 0, p, 100, 0);
	map_ok(fs, 13, DATA, 200, p + 200, MAXLEN - 200, 0);
	map_ok(fs, 13, DATA, 100, p + 100, 100, 0);
	expect_find(fs, 13, DATA, 0, 0, 0, p, MAXLEN, 0);

	walk_tree(fs, &w); /* checks that nothing mergeable is left */
	ck_assert_uint_eq(w.n, 2 + 2 + 2 + 2 + 1);
	tree_check(fs, 9);
	free(w.v);
	fs_done(fs);
}
END_TEST

/* What merges and what does not. */
START_TEST(test_merge_rules)
{
	struct rfs_fs *fs = fs_mem(SMALL_FS, SMALL_CACHE);
	struct walk w = {0};

	/* Contiguous with both neighbours: one record, the newest tid. */
	ck_assert_int_eq(map(fs, 20, DATA, 0, 1000, 10, 0, 1), 0);
	ck_assert_int_eq(map(fs, 20, DATA, 20, 1020, 10, 0, 2), 0);
	ck_assert_int_eq(map(fs, 20, DATA, 10, 1010, 10, 0, 3), 0);
	expect_find(fs, 20, DATA, 25, 0, 0, 1000, 30, 0);
	walk_tree(fs, &w);
	ck_assert_uint_eq(walk_count(&w, 20, DATA), 1);
	ck_assert_uint_eq(w.v[0].e.tid, 3);
	/* Right merge only. */
	ck_assert_int_eq(map(fs, 21, DATA, 10, 1010, 10, UNW, 4), 0);
	ck_assert_int_eq(map(fs, 21, DATA, 5, 1005, 5, UNW, 5), 0);
	expect_find(fs, 21, DATA, 5, 0, 5, 1005, 15, UNW);
	/* Not contiguous on disk, in the file, or different flags. */
	map_ok(fs, 22, DATA, 0, 1000, 10, 0);
	map_ok(fs, 22, DATA, 10, 1011, 10, 0);	 /* disk gap */
	map_ok(fs, 22, DATA, 21, 1021, 10, 0);	 /* file gap */
	map_ok(fs, 22, DATA, 31, 1031, 10, UNW); /* flags */
	map_ok(fs, 22, DATA, 41, 1041, 10, 0);	 /* flags again */
	map_ok(fs, 22, DATA, 51, 1040, 10, 0);	 /* disk goes backwards */
	expect_find(fs, 22, DATA, 9, 0, 0, 1000, 10, 0);
	expect_find(fs, 22, DATA, 10, 0, 10, 1011, 10, 0);
	expect_find(fs, 22, DATA, 20, 1, 21, 1021, 10, 0);
	expect_find(fs, 22, DATA, 31, 0, 31, 1031, 10, UNW);
	expect_find(fs, 22, DATA, 41, 0, 41, 1041, 10, 0);
	expect_find(fs, 22, DATA, 51, 0, 51, 1040, 10, 0);
	/* Other inodes and forks never merge with each other. */
	map_ok(fs, 23, DATA, 0, 5000, 10, 0);
	map_ok(fs, 23, COW, 10, 5010, 10, 0);
	map_ok(fs, 24, DATA, 10, 5010, 10, 0);
	expect_find(fs, 23, DATA, 0, 0, 0, 5000, 10, 0);
	expect_find(fs, 23, DATA, 10, -ENOENT, 0, 0, 0, 0);
	expect_find(fs, 23, COW, 0, 1, 10, 5010, 10, 0);
	expect_find(fs, 24, DATA, 0, 1, 10, 5010, 10, 0);
	walk_tree(fs, &w);
	ck_assert_uint_eq(w.n, 1 + 1 + 6 + 3);
	tree_check(fs, 11);
	free(w.v);
	fs_done(fs);
}
END_TEST

/* Mapping over mapped blocks is refused and changes nothing. */
START_TEST(test_map_overlap)
{
	static const struct {
		fileoff_t off;
		extlen_t len;
		fsblock_t pblk;
	} tries[] = {
		{10, 10, 1000}, {15, 1, 1005}, {5, 6, 995},   {5, 6, 5},      {19, 6, 1009},
		{19, 1, 77},	{0, 100, 1},   {25, 6, 2000}, {20, 11, 1010}, {39, 11, 2009},
		{5, 40, 3},	{29, 2, 1029}, {30, 1, 2000}, {39, 1, 2009},
	};
	struct rfs_fs *fs = fs_mem(SMALL_FS, SMALL_CACHE);
	struct walk before = {0}, after = {0};
	struct rel_log got;
	fileoff_t next = 0;
	size_t i;

	rel_init(&got);
	map_ok(fs, 12, DATA, 10, 1000, 10, 0);
	map_ok(fs, 12, DATA, 30, 2000, 10, UNW);
	map_ok(fs, 11, DATA, 0, 3000, 100, 0);
	map_ok(fs, 13, DATA, 0, 4000, 100, 0);
	map_ok(fs, 12, COW, 0, 5000, 100, 0);
	walk_tree(fs, &before);
	ck_assert_int_eq(fs_sync(fs), 0);
	ck_assert_uint_eq(fs->cache->nr_dirty, 0);
	for (i = 0; i < sizeof(tries) / sizeof(tries[0]); i++) {
		int ret = map(fs, 12, DATA, tries[i].off, tries[i].pblk, tries[i].len, 0, 9);
		ck_assert_msg(ret == -EUCLEAN, "map %" PRIu64 "+%" PRIu64 ": %d", tries[i].off,
			      tries[i].len, ret);
		ret = map(fs, 12, DATA, tries[i].off, tries[i].pblk, tries[i].len, UNW, 9);
		ck_assert_int_eq(ret, -EUCLEAN);
	}
	/* Unmapping holes is a no-op too. */
	ck_assert_int_eq(bmap_unmap(fs, 12, DATA, 20, 10, 1, rel_cb, &got, &next), 0);
	ck_assert_uint_ge(next, 30);
	ck_assert_int_eq(bmap_unmap(fs, 12, DATA, 0, 10, 1, rel_cb, &got, &next), 0);
	ck_assert_uint_ge(next, 10);
	ck_assert_int_eq(bmap_unmap(fs, 12, DATA, 40, UINT64_MAX, 1, rel_cb, &got, &next), 0);
	ck_assert_uint_eq(next, UINT64_MAX);
	ck_assert_int_eq(bmap_unmap(fs, 14, DATA, 0, UINT64_MAX, 1, rel_cb, &got, &next), 0);
	ck_assert_int_eq(bmap_unmap(fs, 11, COW, 0, UINT64_MAX, 1, rel_cb, &got, &next), 0);
	ck_assert_int_eq(bmap_unmap(fs, 0, DATA, 0, UINT64_MAX, 1, rel_cb, &got, &next), 0);
	ck_assert_int_eq(bmap_unmap(fs, 12, DATA, 25, 0, 1, rel_cb, &got, &next), 0);
	ck_assert_uint_ge(next, 25);
	ck_assert_uint_eq(got.n, 0);
	ck_assert_uint_eq(fs->cache->nr_dirty, 0);
	walk_tree(fs, &after);
	walk_expect_same(&after, &before);
	/* The hole between them still takes an extent, merging both ways. */
	map_ok(fs, 12, DATA, 20, 1010, 10, 0);
	expect_find(fs, 12, DATA, 10, 0, 10, 1000, 20, 0);
	expect_find(fs, 12, DATA, 30, 0, 30, 2000, 10, UNW);
	tree_check(fs, 5);
	free(before.v);
	free(after.v);
	free(got.v);
	fs_done(fs);
}
END_TEST

/* Neighbouring inodes and the other fork are untouched and invisible. */
START_TEST(test_isolation)
{
	static const rfs_ino_t inos[] = {0, 1, 2, UINT64_MAX - 1, UINT64_MAX};
	static const fileoff_t offs[] = {0, 16, MAXOFF - 4};
	struct rfs_fs *fs = fs_mem(SMALL_FS, SMALL_CACHE);
	struct walk before = {0}, after = {0};
	struct rel_log got, want;
	size_t i, j, k, n;
	unsigned fork;

	rel_init(&got);
	rel_init(&want);
	for (i = 0; i < 5; i++)
		for (fork = 0; fork < 2; fork++)
			for (j = 0; j < 3; j++)
				map_ok(fs, inos[i], fork, offs[j],
				       1000000 * (i * 2 + fork + 1) + offs[j] % 1000, 4,
				       (unsigned)j % 2 ? UNW : 0);
	for (i = 0; i < 5; i++) {
		for (fork = 0; fork < 2; fork++) {
			fsblock_t b = 1000000 * (i * 2 + fork + 1);
			expect_find(fs, inos[i], fork, 0, 0, 0, b, 4, 0);
			expect_find(fs, inos[i], fork, 4, 1, 16, b + 16, 4, UNW);
			expect_find(fs, inos[i], fork, 20, 1, MAXOFF - 4, b + (MAXOFF - 4) % 1000,
				    4, 0);
			expect_find(fs, inos[i], fork, MAXOFF - 1, 0, MAXOFF - 4,
				    b + (MAXOFF - 4) % 1000, 4, 0);
			ck_assert_uint_eq(count(fs, inos[i], fork, 0, UINT64_MAX), 12);
		}
	}
	for (n = 0; n < 10; n++) {
		const rfs_ino_t ino = inos[n / 2];
		walk_tree(fs, &before);
		fork = n % 2;
		/* Wipe one fork of one inode, a piece at a time. */
		got.n = want.n = 0;
		for (j = 0; j < 3; j++)
			rel_push(&want, 1000000 * (n + 1) + offs[j] % 1000, 4,
				 (unsigned)j % 2 ? UNW : 0);
		unmap_all(fs, ino, fork, 0, UINT64_MAX, 1, &got);
		rel_expect(&got, &want);
		expect_find(fs, ino, fork, 0, -ENOENT, 0, 0, 0, 0);
		expect_find(fs, ino, fork, 17, -ENOENT, 0, 0, 0, 0);
		expect_find(fs, ino, fork, MAXOFF - 1, -ENOENT, 0, 0, 0, 0);
		ck_assert_uint_eq(count(fs, ino, fork, 0, UINT64_MAX), 0);
		walk_tree(fs, &after);
		ck_assert_uint_eq(after.n + 3, before.n);
		ck_assert_uint_eq(walk_count(&after, ino, fork), 0);
		/* Everything else is exactly as it was. */
		for (i = k = 0; i < before.n; i++) {
			if (before.v[i].ino == ino && before.v[i].fork == fork)
				continue;
			ck_assert(wrec_eq(&before.v[i], &after.v[k]));
			k++;
		}
	}
	expect_find(fs, 3, DATA, 0, -ENOENT, 0, 0, 0, 0);
	tree_check(fs, 0);
	free(before.v);
	free(after.v);
	free(got.v);
	free(want.v);
	fs_done(fs);
}
END_TEST

/* Unmapping splits extents at the edges and stops after max_recs. */
START_TEST(test_unmap_split)
{
	struct rfs_fs *fs = fs_mem(SMALL_FS, SMALL_CACHE);
	struct rel_log got, want;
	fileoff_t next = 0;
	struct rfs_extent e;

	rel_init(&got);
	rel_init(&want);
	map_ok(fs, 30, DATA, 0, 1000, 100, UNW);
	/* The middle: head and tail stay. */
	ck_assert_int_eq(bmap_unmap(fs, 30, DATA, 40, 10, 1, rel_cb, &got, &next), 0);
	ck_assert_uint_ge(next, 50);
	rel_push(&want, 1040, 10, UNW);
	rel_expect(&got, &want);
	expect_find(fs, 30, DATA, 39, 0, 0, 1000, 40, UNW);
	expect_find(fs, 30, DATA, 40, 1, 50, 1050, 50, UNW);
	ck_assert_uint_eq(count(fs, 30, DATA, 0, 100), 90);
	/* Head only and tail only. */
	ck_assert_int_eq(bmap_unmap(fs, 30, DATA, 0, 5, 1, rel_cb, &got, &next), 0);
	ck_assert_int_eq(bmap_unmap(fs, 30, DATA, 95, 5, 1, rel_cb, &got, &next), 0);
	rel_push(&want, 1000, 5, UNW);
	rel_push(&want, 1095, 5, UNW);
	rel_expect(&got, &want);
	expect_find(fs, 30, DATA, 0, 1, 5, 1005, 35, UNW);
	expect_find(fs, 30, DATA, 94, 0, 50, 1050, 45, UNW);
	expect_find(fs, 30, DATA, 95, -ENOENT, 0, 0, 0, 0);
	/* Across three extents, one record per call. */
	map_ok(fs, 30, DATA, 45, 9000, 2, 0);
	ck_assert_int_eq(bmap_unmap(fs, 30, DATA, 30, 30, 1, rel_cb, &got, &next), 0);
	ck_assert_uint_eq(next, 40);
	ck_assert_int_eq(bmap_unmap(fs, 30, DATA, next, 60 - next, 1, rel_cb, &got, &next), 0);
	ck_assert_uint_eq(next, 47);
	ck_assert_int_eq(bmap_unmap(fs, 30, DATA, next, 60 - next, 1, rel_cb, &got, &next), 0);
	ck_assert_uint_eq(next, 60);
	rel_push(&want, 1030, 10, UNW);
	rel_push(&want, 9000, 2, 0);
	rel_push(&want, 1050, 10, UNW);
	rel_expect(&got, &want);
	expect_find(fs, 30, DATA, 29, 0, 5, 1005, 25, UNW);
	expect_find(fs, 30, DATA, 30, 1, 60, 1060, 35, UNW);
	/* Without a release callback. */
	ck_assert_int_eq(bmap_unmap(fs, 30, DATA, 0, 62, 8, NULL, NULL, &next), 0);
	ck_assert_uint_ge(next, 62);
	expect_find(fs, 30, DATA, 0, 1, 62, 1062, 33, UNW);
	/* A failing release stops the call; NEXT tells how far it got. */
	map_ok(fs, 30, DATA, 0, 2000, 10, 0);
	map_ok(fs, 30, DATA, 20, 3000, 10, 0);
	got.fail_at = got.n + 1;
	ck_assert_int_eq(bmap_unmap(fs, 30, DATA, 5, 50, 8, rel_cb, &got, &next), -EIO);
	rel_push(&want, 2005, 5, 0);
	rel_expect(&got, &want);
	ck_assert_uint_eq(bmap_find(fs, 30, DATA, 5, &e), 1);
	ck_assert_uint_eq(next, e.off == 20 ? 20 : 30);
	tree_check(fs, ANY);
	free(got.v);
	free(want.v);
	fs_done(fs);
}
END_TEST

/* The leaf holding the key of (INO, FORK, OFF). */
static fsblock_t leaf_of(struct rfs_fs *fs, rfs_ino_t ino, unsigned fork, fileoff_t off)
{
	struct rfs_btree_cursor cur;
	struct rfs_bmap_rec key;
	fsblock_t blkno;

	memset(&key, 0, sizeof(key));
	key.ino = le64_make(ino);
	key.fkey = le64_make((uint64_t)fork << RFS_BMAP_OFF_BITS | off);
	btree_cursor_init(&cur, &fs->bmap);
	ck_assert_int_eq(btree_seek(&cur, &key, RFS_LOOKUP_EQ), 0);
	blkno = cur.path[fs->bmap.height - 1].bp->blkno;
	btree_cursor_done(&cur);
	return blkno;
}

/* A damaged node is an error, never a hole: a truncate must not report
 * success with blocks still mapped, a count must not come out short. */
START_TEST(test_corrupt_leaf)
{
	struct rfs_fs *fs = fs_mem(SMALL_FS, SMALL_CACHE), *bad;
	struct rfs_extent e;
	struct rel_log got;
	fileoff_t next = 0;
	fsblock_t leaf;
	uint64_t i, n = 0;
	int ret;

	rel_init(&got);
	for (i = 0; i < 500; i++)
		map_ok(fs, 40, DATA, 2 * i, 5000 + 3 * i, 1, 0);
	map_ok(fs, 41, DATA, 0, 100, 1, 0);
	ck_assert_uint_ge(fs->bmap.height, 2);
	leaf = leaf_of(fs, 40, DATA, 500);
	ck_assert_uint_ne(leaf, leaf_of(fs, 40, DATA, 0));
	ck_assert_uint_ne(leaf, leaf_of(fs, 41, DATA, 0));
	ck_assert_int_eq(fs_sync(fs), 0);
	/* A copy with one byte of that leaf flipped on disk. */
	{
		struct rfs_dev *dev;
		char why[256] = "";
		ck_assert_int_eq(dev_open_mem(fs->dev->size, &dev), 0);
		memcpy(dev->mem, fs->dev->mem, fs->dev->size);
		dev->mem[(leaf << 10) + 200] ^= 0x40;
		ret = fs_open(dev, RFS_FS_NOJOURNAL, SMALL_CACHE, &bad, why, sizeof(why));
		ck_assert_msg(ret == 0, "fs_open: %d %s", ret, why);
	}
	ret = bmap_find(bad, 40, DATA, 500, &e);
	ck_assert_msg(ret < 0 && ret != -ENOENT, "find in a corrupt leaf: %d", ret);
	ret = bmap_find(bad, 40, DATA, 501, &e);
	ck_assert_msg(ret < 0 && ret != -ENOENT, "find in a corrupt leaf: %d", ret);
	ret = bmap_count(bad, 40, DATA, 0, UINT64_MAX, &n);
	ck_assert_msg(ret < 0 && ret != -ENOENT, "count over a corrupt leaf: %d", ret);
	ret = bmap_unmap(bad, 40, DATA, 499, 20, 100, rel_cb, &got, &next);
	ck_assert_msg(ret < 0 && ret != -ENOENT, "unmap of a corrupt leaf: %d", ret);
	ck_assert_uint_lt(next, 519);
	ret = map(bad, 40, DATA, 501, 99, 1, 0, 1);
	ck_assert_msg(ret < 0 && ret != -ENOENT, "map into a corrupt leaf: %d", ret);
	/* The rest of the tree still reads. */
	expect_find(bad, 40, DATA, 0, 0, 0, 5000, 1, 0);
	expect_find(bad, 41, DATA, 0, 0, 0, 100, 1, 0);
	ck_assert_int_eq(fs_close(bad), 0);
	fs_done(fs);
	free(got.v);
}
END_TEST

/* --- scale: one file of many extents ------------------------------------------- */

#define BIG_INO 1000

static fsblock_t big_pblk(uint64_t i)
{
	return (1ull << 32) + 2 * i;
}

static uint32_t big_flags(uint64_t i)
{
	return i % 7 == 3 ? UNW : 0;
}

static uint64_t gcd(uint64_t a, uint64_t b)
{
	while (b) {
		uint64_t t = a % b;
		a = b;
		b = t;
	}
	return a;
}

/* Writes the cache back now and then, as journal checkpoints would: a
 * cache full of dirty nodes makes every eviction scan all of them. */
static void big_sync(struct rfs_fs *fs, uint64_t i)
{
	if (i % 16384 == 16383)
		ck_assert_int_eq(fs_sync(fs), 0);
}

/* Extent I of the big file is block 2*I: alternate blocks, no merging. */
static void big_fill(struct rfs_fs *fs, uint64_t n)
{
	uint64_t half = (n + 1) / 2, odd = n / 2, step = 7919, i;

	/* Even extents appended in order, odd ones in between, scattered. */
	for (i = 0; i < half; i++) {
		map_ok(fs, BIG_INO, DATA, 4 * i, big_pblk(2 * i), 1, big_flags(2 * i));
		big_sync(fs, i);
	}
	while (odd && gcd(step, odd) != 1)
		step++;
	for (i = 0; i < odd; i++) {
		uint64_t j = 2 * ((i * step) % odd) + 1;
		map_ok(fs, BIG_INO, DATA, 2 * j, big_pblk(j), 1, big_flags(j));
		big_sync(fs, i);
	}
	ck_assert_int_eq(fs_sync(fs), 0);
}

/* Random finds agree and read O(height) nodes each. */
static void big_finds(struct rfs_fs *fs, struct rfs_rng *rng, uint64_t n, uint64_t q)
{
	const struct rfs_cache_stats *st = &fs->cache->stats;
	uint64_t gets0 = st->hits + st->misses, maxg = 0, i;
	uint32_t h = fs->bmap.height;

	for (i = 0; i < q; i++) {
		fileoff_t off = rng_below(rng, 2 * n + 8);
		uint64_t g = st->hits + st->misses, x = (off + 1) / 2;
		if (off >= 2 * n - 1)
			expect_find(fs, BIG_INO, DATA, off, -ENOENT, 0, 0, 0, 0);
		else
			expect_find(fs, BIG_INO, DATA, off, off % 2, 2 * x, big_pblk(x), 1,
				    big_flags(x));
		g = st->hits + st->misses - g;
		maxg = RFS_MAX(maxg, g);
	}
	REQUIRE(maxg <= 3 * (uint64_t)h + 1, "a find read %" PRIu64 " nodes, height %u", maxg, h);
	REQUIRE((st->hits + st->misses - gets0) <= q * (h + 2),
		"finds read %" PRIu64 " nodes for %" PRIu64 " lookups, height %u",
		st->hits + st->misses - gets0, q, h);
}

START_TEST(test_big_file)
{
	uint64_t n = test_scale(200000),
		 bytes = RFS_MAX(SMALL_FS, (n * 256 + (1 << 20)) & ~((1ull << 20) - 1));
	struct rfs_btree_check chk = {.report = test_report_problem};
	/* The cache holds the whole tree (about 50 bytes per record): with
	 * most of it dirty, evictions cost a scan of the cache each. */
	struct rfs_fs *fs = fs_mem(bytes, RFS_MAX(8u << 20, n * 64));
	struct rel_log got;
	struct rfs_rng rng;
	uint64_t free0, i, calls = 0, bound;
	fileoff_t pos = 0, next;
	double t0 = now(), t1, t2, t3;
	uint32_t h;

	rng_init(&rng, "bmap big file", 0xb16f11e);
	rel_init(&got);
	ck_assert_int_eq(alloc_fix_freelist(fs), 0);
	free0 = fs->sb.free_blocks;
	/* Neighbours that must survive. */
	map_ok(fs, BIG_INO - 1, DATA, 0, 77, 1, 0);
	map_ok(fs, BIG_INO, COW, 0, 78, 1, 0);
	map_ok(fs, BIG_INO + 1, DATA, 0, 79, 1, 0);

	big_fill(fs, n);
	t1 = now();
	ck_assert_int_eq(btree_check(&fs->bmap, &chk), 0);
	ck_assert_uint_eq(chk.records, n + 3);
	h = fs->bmap.height;
	/* Leaves hold at least 7 records, internal nodes 11 entries (a third
	 * of a 1 KiB node, and then some): height <= 2 + log_11(n / 7). */
	for (bound = 2, i = 7 * 11; i < n + 3; i *= 11)
		bound++;
	REQUIRE(h >= 3 && h <= bound, "height %u for %" PRIu64 " records, bound %" PRIu64, h, n,
		bound);
	ck_assert_uint_eq(count(fs, BIG_INO, DATA, 0, UINT64_MAX), n);
	/* Even offsets below B: (B + 1) / 2. */
	ck_assert_uint_eq(count(fs, BIG_INO, DATA, n / 2 + 1, n),
			  (n / 2 + 1 + n + 1) / 2 - (n / 2 + 1 + 1) / 2);
	big_finds(fs, &rng, n, test_scale(100000));
	t2 = now();

	/* Unmap everything, 256 records per call. */
	do {
		size_t before = got.n;
		ck_assert_int_eq(bmap_unmap(fs, BIG_INO, DATA, pos, UINT64_MAX - pos, 256, rel_cb,
					    &got, &next),
				 0);
		REQUIRE(got.n - before <= 256 && next > pos, "unmap call %" PRIu64, calls);
		pos = next;
		calls++;
		if (calls % 64 == 0 && pos < 2 * n)
			expect_find(fs, BIG_INO, DATA, 0, 1, (pos + 1) & ~1ull,
				    big_pblk((pos + 1) / 2), 1, big_flags((pos + 1) / 2));
	} while (pos < UINT64_MAX);
	ck_assert_uint_eq(calls, (n + 255) / 256 + (n % 256 == 0));
	ck_assert_uint_eq(got.n, n);
	for (i = 0; i < n; i++)
		REQUIRE(got.v[i].pblk == big_pblk(i) && got.v[i].len == 1 &&
				got.v[i].flags == big_flags(i),
			"release %" PRIu64 ": %" PRIu64 "+%" PRIu64, i, got.v[i].pblk,
			got.v[i].len);
	expect_find(fs, BIG_INO, DATA, 0, -ENOENT, 0, 0, 0, 0);
	expect_find(fs, BIG_INO - 1, DATA, 0, 0, 0, 77, 1, 0);
	expect_find(fs, BIG_INO, COW, 0, 0, 0, 78, 1, 0);
	expect_find(fs, BIG_INO + 1, DATA, 0, 0, 0, 79, 1, 0);
	tree_check(fs, 3);
	unmap_all(fs, BIG_INO - 1, DATA, 0, 1, 1, &got);
	unmap_all(fs, BIG_INO, COW, 0, 1, 1, &got);
	unmap_all(fs, BIG_INO + 1, DATA, 0, 1, 1, &got);
	ck_assert_uint_eq(got.n, n + 3);
	tree_check(fs, 0);
	ck_assert_uint_eq(fs->bmap.height, 0);
	/* Every node block went back. */
	ck_assert_int_eq(alloc_fix_freelist(fs), 0);
	ck_assert_uint_eq(fs->sb.free_blocks, free0);
	t3 = now();
	printf("bmap big file: %" PRIu64 " extents, height %u (bound %" PRIu64 "), %" PRIu64
	       " nodes; map %.2f s, %" PRIu64 " finds %.2f s, unmap in %" PRIu64 " calls %.2f s\n",
	       n, h, bound, chk.nodes, t1 - t0, test_scale(100000), t2 - t1, calls, t3 - t2);
	free(got.v);
	fs_done(fs);
}
END_TEST

static Suite *bmap_suite(void)
{
	Suite *s = suite_create("bmap");
	TCase *model = tcase_create("model");
	TCase *edge = tcase_create("edge");
	TCase *scale = tcase_create("scale");

	tcase_set_timeout(model, 1200);
	tcase_add_test(model, test_model);
	tcase_add_test(model, test_inline_model);
	suite_add_tcase(s, model);

	tcase_set_timeout(edge, 1200);
	tcase_add_test(edge, test_map_invalid);
	tcase_add_test(edge, test_offset_limits);
	tcase_add_test(edge, test_merge_limit);
	tcase_add_test(edge, test_merge_rules);
	tcase_add_test(edge, test_map_overlap);
	tcase_add_test(edge, test_isolation);
	tcase_add_test(edge, test_unmap_split);
	tcase_add_test(edge, test_corrupt_leaf);
	tcase_add_test(edge, test_inline_enospc);
	tcase_add_test(edge, test_inline_stale_copy);
	tcase_add_test(edge, test_inline_corrupt);
	tcase_add_test(edge, test_inline_back);
	tcase_add_test(edge, test_unmap_split_enospc);
	suite_add_tcase(s, edge);

	tcase_set_timeout(scale, 1200);
	tcase_add_test(scale, test_big_file);
	suite_add_tcase(s, scale);
	return s;
}

int main(void)
{
	return test_run_suite(bmap_suite());
}
