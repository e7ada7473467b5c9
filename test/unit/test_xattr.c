/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * test_xattr.c - tests of the extended attribute layer (xattr.c).
 *
 * Every test formats a device (1 KiB and 4 KiB blocks) and opens it
 * without a journal. The model test keeps a reference map (inode, name) ->
 * value and compares every get, set, remove and list with it; its periodic
 * tree walk checks the records byte for byte against docs/FORMAT.md §7.5
 * (cookie = hash48 << 15 | seq, chunk 0 = name + first value bytes, every
 * chunk but the last full). Hash collisions use a pair of names found
 * offline (Floyd's cycle search) to collide under the fixed uuid's hash
 * seed, plus raw records inserted with btree_insert.
 */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "btree.h"
#include "dev.h"
#include "dir.h"
#include "fs.h"
#include "fs_create.h"
#include "testutil.h"
#include "util.h"
#include "xattr.h"

#define HDR	  sizeof(struct rfs_xattr_rec)
#define CHUNK	  (RFS_XATTR_REC_MAX - HDR) /* value bytes of a chunk > 0: 286 */
#define VMAX	  RFS_XATTR_SIZE_MAX
#define NMAX	  RFS_XATTR_NAME_MAX
#define SEQ_BITS  RFS_DIR_SEQ_BITS
#define SEQ_MASK  ((1u << SEQ_BITS) - 1)
#define FS_BYTES  (64ull << 20)
#define CACHE	  (4u << 20)
#define TEST_UUID "xattr-test-uuid!" /* hash seed = its bytes 8..15, little-endian */

/* Two names with equal dir_name_hash under TEST_UUID's seed. */
#define COLL_A "user.c466b5dea179f"
#define COLL_B "user.cffbd7563245d"

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static unsigned block_log_of(int i)
{
	return i ? 12 : 10;
}

/* --- log sink: errors logged by the library must not go unnoticed ------------ */

/* --- filesystem setup -------------------------------------------------------- */

/* Formats DEV (not consumed) and opens it (consumed) without a journal. */
static struct rfs_fs *fs_format_open(struct rfs_dev *dev, unsigned block_log)
{
	struct rfs_fs *fs;

	rfs_log_set_sink(test_log_count);
	test_log_errors = 0;
	fs = test_fs_format(dev, block_log, 256u << 10, TEST_UUID, RFS_FS_NOJOURNAL, CACHE);
	ck_assert_uint_eq(fs->sb.hash_seed, rfs_get_le64(TEST_UUID + 8));
	return fs;
}

static struct rfs_fs *fs_mem(unsigned block_log, uint64_t bytes)
{
	struct rfs_dev *dev;

	ck_assert_int_eq(dev_open_mem(bytes, &dev), 0);
	return fs_format_open(dev, block_log);
}

/* btree_check of the attribute tree passes; returns its record count. */
static uint64_t tree_check(struct rfs_fs *fs)
{
	struct rfs_btree_check chk = {.report = test_report_problem};
	int ret = btree_check(&fs->xattrs, &chk);

	REQUIRE(ret == 0 && chk.errors == 0, "btree_check: %d, %" PRIu64 " errors", ret,
		chk.errors);
	return chk.records;
}

static void fs_done(struct rfs_fs *fs)
{
	tree_check(fs);
	ck_assert_int_eq(fs_close(fs), 0);
	ck_assert_uint_eq(test_log_errors, 0);
}

/* --- layout arithmetic (FORMAT.md §7.5) -------------------------------------- */

static size_t chunk0_cap(size_t nlen)
{
	return CHUNK - nlen;
}

static size_t nr_chunks(size_t nlen, size_t vlen)
{
	if (vlen <= chunk0_cap(nlen))
		return 1;
	return 1 + (vlen - chunk0_cap(nlen) + CHUNK - 1) / CHUNK;
}

static uint64_t name_hash(struct rfs_fs *fs, const char *name)
{
	return dir_name_hash(fs->sb.hash_seed, name, strlen(name));
}

/* --- checks through the API ---------------------------------------------------- */

static void fill_pattern(uint8_t *p, size_t n, uint32_t seed)
{
	size_t i;

	for (i = 0; i < n; i++)
		p[i] = (uint8_t)(seed * 31 + i * 7 + (i >> 8));
}

/* get(NAME) returns exactly VAL (LEN bytes); the cap-0 query returns LEN;
 * a nonzero cap one byte short gives -ERANGE with the size; no byte past LEN is
 * written. */
static void expect_value(struct rfs_fs *fs, rfs_ino_t ino, const char *name, const void *val,
			 size_t len)
{
	size_t cap = len + 8, got = 12345, i;
	uint8_t *buf = malloc(cap);
	int ret;

	ck_assert_ptr_nonnull(buf);
	memset(buf, 0xa5, cap);
	ret = xattr_get(fs, ino, name, buf, 0, &got);
	REQUIRE(ret == 0 && got == len,
		"get(ino %" PRIu64 " '%.40s', cap 0) = %d, size %zu, expected %zu", ino, name, ret,
		got, len);
	if (len > 1) { /* (cap 0 is the size query) */
		got = 0;
		ret = xattr_get(fs, ino, name, buf, len - 1, &got);
		REQUIRE(ret == -ERANGE && got == len,
			"get(ino %" PRIu64 " '%.40s', cap %zu) = %d, size %zu", ino, name, len - 1,
			ret, got);
	}
	ret = xattr_get(fs, ino, name, buf, cap, &got);
	REQUIRE(ret == 0 && got == len, "get(ino %" PRIu64 " '%.40s') = %d, size %zu, expected %zu",
		ino, name, ret, got, len);
	REQUIRE(memcmp(buf, val, len) == 0, "get(ino %" PRIu64 " '%.40s'): wrong value bytes", ino,
		name);
	for (i = len; i < cap; i++)
		REQUIRE(buf[i] == 0xa5, "get wrote byte %zu past the %zu-byte value", i, len);
	free(buf);
}

static void expect_absent(struct rfs_fs *fs, rfs_ino_t ino, const char *name)
{
	uint8_t buf[16];
	size_t got;
	int ret = xattr_get(fs, ino, name, buf, sizeof(buf), &got);

	REQUIRE(ret == -ENODATA, "get(ino %" PRIu64 " '%.40s') = %d, expected -ENODATA", ino, name,
		ret);
	ret = xattr_get(fs, ino, name, buf, 0, &got);
	REQUIRE(ret == -ENODATA, "get(ino %" PRIu64 " '%.40s', cap 0) = %d, expected -ENODATA", ino,
		name, ret);
}

static void set_ok(struct rfs_fs *fs, rfs_ino_t ino, const char *name, const void *val, size_t len,
		   int flags)
{
	int ret = xattr_set(fs, ino, name, val, len, flags);

	REQUIRE(ret == 0, "set(ino %" PRIu64 " '%.40s', %zu bytes, flags %d) = %d", ino, name, len,
		flags, ret);
}

/* Sets NAME to a LEN-byte pattern and checks it reads back. */
static void set_pattern(struct rfs_fs *fs, rfs_ino_t ino, const char *name, size_t len,
			uint32_t seed)
{
	uint8_t *v = malloc(len + 1);

	ck_assert_ptr_nonnull(v);
	fill_pattern(v, len, seed);
	set_ok(fs, ino, name, v, len, 0);
	expect_value(fs, ino, name, v, len);
	free(v);
}

static void expect_pattern(struct rfs_fs *fs, rfs_ino_t ino, const char *name, size_t len,
			   uint32_t seed)
{
	uint8_t *v = malloc(len + 1);

	ck_assert_ptr_nonnull(v);
	fill_pattern(v, len, seed);
	expect_value(fs, ino, name, v, len);
	free(v);
}

/* The list of INO is, in any order, exactly the NAMES (N of them). */
static void expect_list(struct rfs_fs *fs, rfs_ino_t ino, const char *const *names, size_t n)
{
	size_t want = 0, len = 777, i, pos;
	char *buf, *seen = calloc(n + 1, 1);
	int ret;

	ck_assert_ptr_nonnull(seen);
	for (i = 0; i < n; i++)
		want += strlen(names[i]) + 1;
	ret = xattr_list(fs, ino, NULL, 0, &len);
	REQUIRE(ret == 0 && len == want,
		"list(ino %" PRIu64 ", cap 0) = %d, size %zu, expected %zu", ino, ret, len, want);
	buf = malloc(want + 8);
	ck_assert_ptr_nonnull(buf);
	if (want > 1) {
		ret = xattr_list(fs, ino, buf, want - 1, &len);
		REQUIRE(ret == -ERANGE, "list(ino %" PRIu64 ", cap %zu) = %d, expected -ERANGE",
			ino, want - 1, ret);
	}
	memset(buf, 0x5a, want + 8);
	ret = xattr_list(fs, ino, buf, want + 8, &len);
	REQUIRE(ret == 0 && len == want, "list(ino %" PRIu64 ") = %d, size %zu, expected %zu", ino,
		ret, len, want);
	for (pos = 0; pos < want;) {
		size_t l = strnlen(buf + pos, want - pos);

		REQUIRE(pos + l < want, "list: name at %zu is not NUL-terminated", pos);
		for (i = 0; i < n; i++)
			if (!seen[i] && strlen(names[i]) == l && !memcmp(names[i], buf + pos, l))
				break;
		REQUIRE(i < n, "list(ino %" PRIu64 "): unexpected or repeated name '%.*s'", ino,
			(int)RFS_MIN(l, 40), buf + pos);
		seen[i] = 1;
		pos += l + 1;
	}
	for (i = want; i < want + 8; i++)
		REQUIRE(buf[i] == 0x5a, "list wrote byte %zu past its %zu bytes", i, want);
	free(buf);
	free(seen);
}

/* --- raw records ---------------------------------------------------------------- */

/* The cookie of NAME's chunk 0 on INO, found by walking INO's records;
 * UINT64_MAX if there is none. */
static uint64_t cookie_of(struct rfs_fs *fs, rfs_ino_t ino, const char *name)
{
	struct rfs_btree_cursor cur;
	struct rfs_xattr_rec key, r;
	size_t nlen = strlen(name);
	uint64_t found = UINT64_MAX;
	int ret;

	memset(&key, 0, sizeof(key));
	key.ino = le64_make(ino);
	btree_cursor_init(&cur, &fs->xattrs);
	for (ret = btree_seek(&cur, &key, RFS_LOOKUP_GE); !ret; ret = btree_next(&cur)) {
		const uint8_t *rec = btree_cursor_rec(&cur, NULL);

		memcpy(&r, rec, HDR);
		if (le64_get(r.ino) != ino)
			break;
		if (le32_get(r.chunk) == 0 && r.namelen == nlen && !memcmp(rec + HDR, name, nlen)) {
			REQUIRE(found == UINT64_MAX, "name '%s' stored twice on ino %" PRIu64, name,
				ino);
			found = le64_get(r.cookie);
		}
	}
	btree_cursor_done(&cur);
	REQUIRE(ret == 0 || ret == -ENOENT, "walk: %d", ret);
	return found;
}

static void expect_seq(struct rfs_fs *fs, rfs_ino_t ino, const char *name, uint32_t seq)
{
	uint64_t c = cookie_of(fs, ino, name);

	REQUIRE(c != UINT64_MAX, "'%s' has no record on ino %" PRIu64, name, ino);
	REQUIRE(c >> SEQ_BITS == name_hash(fs, name),
		"'%s': cookie %#" PRIx64 " has the wrong hash", name, c);
	REQUIRE((c & SEQ_MASK) == seq, "'%s' on ino %" PRIu64 " has seq %u, expected %u", name, ino,
		(unsigned)(c & SEQ_MASK), seq);
}

/* Inserts a one-record attribute NAME with a short VALUE directly, under
 * HASH and SEQ (whatever NAME's real hash). */
static void raw_put(struct rfs_fs *fs, rfs_ino_t ino, uint64_t hash, uint32_t seq, const char *name,
		    const char *value)
{
	uint8_t rec[RFS_XATTR_REC_MAX];
	struct rfs_xattr_rec r;
	size_t nlen = strlen(name), vlen = strlen(value);
	int ret;

	ck_assert_uint_le(HDR + nlen + vlen, sizeof(rec));
	memset(&r, 0, sizeof(r));
	r.ino = le64_make(ino);
	r.cookie = le64_make(hash << SEQ_BITS | seq);
	r.value_len = le32_make((uint32_t)vlen);
	r.namelen = (uint8_t)nlen;
	memcpy(rec, &r, HDR);
	memcpy(rec + HDR, name, nlen);
	memcpy(rec + HDR + nlen, value, vlen);
	ret = btree_insert(&fs->xattrs, rec, HDR + nlen + vlen);
	REQUIRE(ret == 0, "raw insert seq %u: %d", seq, ret);
}

static void raw_del(struct rfs_fs *fs, rfs_ino_t ino, uint64_t hash, uint32_t seq)
{
	struct rfs_xattr_rec k;

	memset(&k, 0, sizeof(k));
	k.ino = le64_make(ino);
	k.cookie = le64_make(hash << SEQ_BITS | seq);
	REQUIRE_INT(btree_delete(&fs->xattrs, &k), 0);
}

/* --- journal credits: the blocks one operation dirties and frees ------------ */

struct touched {
	fsblock_t *v;
	size_t n, cap;
	uint64_t forgets;
};

static struct touched touched;

static void hook_dirty(void *arg, struct rfs_buf *bp)
{
	size_t i;

	(void)arg;
	for (i = 0; i < touched.n; i++)
		if (touched.v[i] == bp->blkno)
			return;
	if (touched.n == touched.cap) {
		touched.cap = touched.cap ? 2 * touched.cap : 256;
		touched.v = realloc(touched.v, touched.cap * sizeof(*touched.v));
		ck_assert_ptr_nonnull(touched.v);
	}
	touched.v[touched.n++] = bp->blkno;
}

static void hook_forget(void *arg, fsblock_t blkno)
{
	(void)arg;
	(void)blkno;
	touched.forgets++;
}

static const struct rfs_cache_hooks count_hooks = {.dirty = hook_dirty, .forget = hook_forget};

static void touch_start(struct rfs_fs *fs)
{
	touched.n = 0;
	touched.forgets = 0;
	fs->cache->hooks = &count_hooks;
	fs->cache->hook_arg = NULL;
}

static double worst_credit_use; /* largest used / reserved seen */

/*
 * The operation just done dirtied and freed no more blocks than CREDITS.
 * A set that replaces a value rewrites or frees every block of the old
 * value: its credits are those of the larger of both lengths
 * (xattr_credits() of the new length alone falls short when the old value
 * was larger).
 */
static void touch_end(struct rfs_fs *fs, uint32_t credits, const char *what)
{
	fs->cache->hooks = NULL;
	REQUIRE(touched.n <= credits, "%s dirtied %zu blocks, credits %u", what, touched.n,
		credits);
	REQUIRE(touched.forgets <= credits, "%s freed %" PRIu64 " blocks, credits %u", what,
		touched.forgets, credits);
	worst_credit_use = RFS_MAX(worst_credit_use, (double)touched.n / credits);
	worst_credit_use = RFS_MAX(worst_credit_use, (double)touched.forgets / credits);
}

/* --- the model ------------------------------------------------------------------ */

#define NINO   5
#define NNAMES 28
#define NFIXED 6

struct attr {
	int present;
	uint8_t *val;
	size_t len;
};

struct model {
	struct rfs_fs *fs;
	struct rfs_rng rng;
	rfs_ino_t ino[NINO];
	char *name[NNAMES];
	size_t nlen[NNAMES];
	struct attr a[NINO][NNAMES];
	uint8_t *scratch; /* VMAX + 1 bytes */
	uint64_t sets, gets, removes, lists, rejects, checks, bytes;
};

static const rfs_ino_t model_inos[NINO] = {1, 41, 42, 43, UINT64_MAX};

static char *name_make(struct model *m, unsigned i)
{
	static const char *const fixed[NFIXED] = {"a", "user.a", "user.ab", "user.b", "b", NULL};
	size_t len, j;
	char *s;

	if (i < NFIXED - 1)
		return strdup(fixed[i]);
	s = malloc(NMAX + 1);
	ck_assert_ptr_nonnull(s);
	if (i == NFIXED - 1) { /* the longest name */
		memset(s, 'n', NMAX);
		s[NMAX] = '\0';
		return s;
	}
	if (rng_below(&m->rng, 2)) { /* "user." and printable */
		len = 6 + rng_below(&m->rng, 20);
		memcpy(s, "user.", 5);
		for (j = 5; j < len; j++)
			s[j] = (char)('a' + rng_below(&m->rng, 26));
	} else { /* any length, any byte but NUL */
		len = rng_below(&m->rng, 4) ? 1 + rng_below(&m->rng, NMAX)
					    : NMAX - rng_below(&m->rng, 3);
		for (j = 0; j < len; j++)
			s[j] = (char)(1 + rng_below(&m->rng, 255));
	}
	s[len] = '\0';
	return s;
}

static void model_init(struct model *m, struct rfs_fs *fs, uint64_t seed)
{
	unsigned i, j;

	memset(m, 0, sizeof(*m));
	m->fs = fs;
	rng_init(&m->rng, "xattr model", seed);
	memcpy(m->ino, model_inos, sizeof(m->ino));
	for (i = 0; i < NNAMES; i++) {
		do {
			free(m->name[i]);
			m->name[i] = name_make(m, i);
			m->nlen[i] = strlen(m->name[i]);
			for (j = 0; j < i; j++)
				if (!strcmp(m->name[i], m->name[j]) ||
				    name_hash(fs, m->name[i]) == name_hash(fs, m->name[j]))
					break;
		} while (j < i);
	}
	m->scratch = malloc(VMAX + 1);
	ck_assert_ptr_nonnull(m->scratch);
}

static void model_free(struct model *m)
{
	unsigned i, k;

	for (i = 0; i < NNAMES; i++)
		free(m->name[i]);
	for (k = 0; k < NINO; k++)
		for (i = 0; i < NNAMES; i++)
			free(m->a[k][i].val);
	free(m->scratch);
	free(touched.v);
	memset(&touched, 0, sizeof(touched));
}

/* A value size for a name of NLEN bytes, biased towards chunk boundaries. */
static size_t pick_size(struct model *m, size_t nlen)
{
	struct rfs_rng *r = &m->rng;
	size_t c0 = chunk0_cap(nlen), k = 1 + rng_below(r, VMAX / CHUNK), s;
	long d = (long)rng_below(r, 3) - 1;

	switch (rng_below(r, 14)) {
	case 0:
		return 0;
	case 1:
		return 1;
	case 2:
		return c0 + (size_t)d;
	case 3:
		return CHUNK + (size_t)d;
	case 4:
		s = k * CHUNK;
		break;
	case 5: /* exactly filling, or one past, K more chunks */
		s = c0 + k * CHUNK + (size_t)d;
		break;
	case 6:
		return VMAX;
	case 7:
		return VMAX - rng_below(r, 2 * CHUNK);
	case 8:
	case 9:
		return rng_below(r, VMAX + 1);
	default:
		return rng_below(r, 3 * CHUNK);
	}
	return s > VMAX ? VMAX : s;
}

static int pick_flags(struct model *m)
{
	switch (rng_below(&m->rng, 4)) {
	case 0:
		return RFS_XATTR_CREATE;
	case 1:
		return RFS_XATTR_REPLACE;
	default:
		return 0;
	}
}

static void op_set(struct model *m, unsigned k, unsigned i)
{
	struct attr *a = &m->a[k][i];
	size_t len = pick_size(m, m->nlen[i]), j;
	int flags = pick_flags(m), want, ret;
	uint32_t credits;

	for (j = 0; j < len; j++)
		m->scratch[j] = (uint8_t)rng_next(&m->rng);
	want = a->present && (flags & RFS_XATTR_CREATE)	    ? -EEXIST
	       : !a->present && (flags & RFS_XATTR_REPLACE) ? -ENODATA
							    : 0;
	touch_start(m->fs);
	ret = xattr_set(m->fs, m->ino[k], m->name[i], m->scratch, len, flags);
	credits = xattr_credits(m->fs, a->present ? RFS_MAX(len, a->len) : len);
	touch_end(m->fs, credits, "set");
	REQUIRE(ret == want, "set(ino %" PRIu64 " name %u, %zu bytes, flags %d) = %d, expected %d",
		m->ino[k], i, len, flags, ret, want);
	if (ret)
		return;
	free(a->val);
	a->val = malloc(len + 1);
	ck_assert_ptr_nonnull(a->val);
	memcpy(a->val, m->scratch, len);
	a->len = len;
	a->present = 1;
	m->sets++;
	m->bytes += len;
}

static void op_get(struct model *m, unsigned k, unsigned i)
{
	struct attr *a = &m->a[k][i];

	if (a->present)
		expect_value(m->fs, m->ino[k], m->name[i], a->val, a->len);
	else
		expect_absent(m->fs, m->ino[k], m->name[i]);
	m->gets++;
}

static void op_remove(struct model *m, unsigned k, unsigned i)
{
	struct attr *a = &m->a[k][i];
	uint32_t credits;
	int ret;

	touch_start(m->fs);
	ret = xattr_remove(m->fs, m->ino[k], m->name[i]);
	credits = xattr_credits(m->fs, a->present ? a->len : 0);
	touch_end(m->fs, credits, "remove");

	REQUIRE(ret == (a->present ? 0 : -ENODATA), "remove(ino %" PRIu64 " name %u) = %d",
		m->ino[k], i, ret);
	a->present = 0;
	m->removes++;
}

static void op_list(struct model *m, unsigned k)
{
	const char *names[NNAMES];
	size_t n = 0;
	unsigned i;

	for (i = 0; i < NNAMES; i++)
		if (m->a[k][i].present)
			names[n++] = m->name[i];
	expect_list(m->fs, m->ino[k], names, n);
	m->lists++;
}

/* Invalid arguments are refused and change nothing. */
static void op_reject(struct model *m, unsigned k, unsigned i)
{
	char *longname = malloc(NMAX + 2);
	rfs_ino_t ino = m->ino[k];
	size_t len;
	int ret;

	ck_assert_ptr_nonnull(longname);
	memset(longname, 'L', NMAX + 1);
	longname[NMAX + 1] = '\0';
	REQUIRE_INT(xattr_set(m->fs, ino, longname, "x", 1, 0), -ERANGE);
	REQUIRE_INT(xattr_get(m->fs, ino, longname, m->scratch, 16, &len), -ERANGE);
	REQUIRE_INT(xattr_remove(m->fs, ino, longname), -ERANGE);
	REQUIRE_INT(xattr_set(m->fs, ino, "", "x", 1, 0), -ERANGE);
	REQUIRE_INT(xattr_get(m->fs, ino, "", m->scratch, 16, &len), -ERANGE);
	REQUIRE_INT(xattr_remove(m->fs, ino, ""), -ERANGE);
	memset(m->scratch, 0xee, VMAX + 1);
	ret = xattr_set(m->fs, ino, m->name[i], m->scratch, VMAX + 1, (int)rng_below(&m->rng, 3));
	REQUIRE(ret == -E2BIG, "set of %u bytes = %d, expected -E2BIG", VMAX + 1, ret);
	free(longname);
	op_get(m, k, i);
	m->rejects++;
}

/* Walks the whole tree: every record is exactly where and what FORMAT.md
 * §7.5 says for the model's attributes, and nothing else is stored. */
static void model_walk(struct model *m)
{
	struct rfs_btree_cursor cur;
	const struct attr *a = NULL;
	size_t off = 0, nattr = 0, want = 0, nlen = 0;
	uint32_t next = 0;
	uint64_t cookie = 0, ino = 0;
	unsigned k, i;
	int ret;

	btree_cursor_init(&cur, &m->fs->xattrs);
	for (ret = btree_first(&cur); !ret; ret = btree_next(&cur)) {
		size_t len, n;
		const uint8_t *rec = btree_cursor_rec(&cur, &len);
		struct rfs_xattr_rec r;
		static const uint8_t zero[7];

		memcpy(&r, rec, HDR);
		REQUIRE(!memcmp(r.pad, zero, sizeof(zero)), "record pad not zero");
		if (le32_get(r.chunk) == 0) {
			REQUIRE(!a || off == a->len, "attribute ended after %zu of %zu bytes", off,
				a ? a->len : 0);
			ino = le64_get(r.ino);
			for (k = 0; k < NINO && m->ino[k] != ino; k++)
				;
			REQUIRE(k < NINO, "record of unknown inode %" PRIu64, ino);
			for (i = 0; i < NNAMES; i++)
				if (r.namelen == m->nlen[i] &&
				    !memcmp(rec + HDR, m->name[i], m->nlen[i]))
					break;
			REQUIRE(i < NNAMES && m->a[k][i].present,
				"ino %" PRIu64 ": record of an attribute that should not exist",
				ino);
			a = &m->a[k][i];
			nlen = m->nlen[i];
			cookie = le64_get(r.cookie);
			REQUIRE(cookie == name_hash(m->fs, m->name[i]) << SEQ_BITS,
				"name %u: cookie %#" PRIx64 ", expected hash << 15 | 0", i, cookie);
			n = RFS_MIN(chunk0_cap(nlen), a->len);
			REQUIRE(len == HDR + nlen + n, "chunk 0 of %zu bytes, expected %zu", len,
				HDR + nlen + n);
			REQUIRE(!memcmp(rec + HDR + nlen, a->val, n), "chunk 0: wrong value bytes");
			off = n;
			next = 1;
			nattr++;
			want += nr_chunks(nlen, a->len);
		} else {
			REQUIRE(a && le64_get(r.ino) == ino && le64_get(r.cookie) == cookie &&
					le32_get(r.chunk) == next,
				"stray chunk %u (expected chunk %u)", le32_get(r.chunk), next);
			REQUIRE(r.namelen == 0, "chunk %u has namelen %u", next, r.namelen);
			n = RFS_MIN((size_t)CHUNK, a->len - off);
			REQUIRE(n > 0 && len == HDR + n, "chunk %u of %zu bytes, expected %zu",
				next, len, HDR + n);
			REQUIRE(!memcmp(rec + HDR, a->val + off, n), "chunk %u: wrong value bytes",
				next);
			off += n;
			next++;
		}
		REQUIRE(le32_get(r.value_len) == a->len, "value_len %u, expected %zu",
			le32_get(r.value_len), a->len);
	}
	btree_cursor_done(&cur);
	REQUIRE(ret == -ENOENT, "walk: %d", ret);
	REQUIRE(!a || off == a->len, "last attribute ended after %zu of %zu bytes", off,
		a ? a->len : 0);
	for (k = 0, i = 0; k < NINO * NNAMES; k++)
		i += m->a[k / NNAMES][k % NNAMES].present;
	REQUIRE(nattr == i, "%zu attributes stored, model has %u", nattr, i);
	REQUIRE(tree_check(m->fs) == want, "record count differs from the layout's %zu", want);
}

static void model_check_all(struct model *m)
{
	unsigned k, i;

	for (k = 0; k < NINO; k++) {
		for (i = 0; i < NNAMES; i++)
			op_get(m, k, i);
		op_list(m, k);
	}
	model_walk(m);
	m->checks++;
}

static void model_step(struct model *m)
{
	unsigned k = (unsigned)rng_below(&m->rng, NINO), i = (unsigned)rng_below(&m->rng, NNAMES);
	unsigned op = (unsigned)rng_below(&m->rng, 100);

	if (op < 45)
		op_set(m, k, i);
	else if (op < 70)
		op_get(m, k, i);
	else if (op < 85)
		op_remove(m, k, i);
	else if (op < 95)
		op_list(m, k);
	else
		op_reject(m, k, i);
}

START_TEST(test_model)
{
	unsigned block_log = block_log_of(_i);
	uint64_t steps = test_scale(6000), s;
	struct model m;
	double t0 = now();

	worst_credit_use = 0;
	model_init(&m, fs_mem(block_log, FS_BYTES), 0x5eedull + block_log);
	model_check_all(&m);
	for (s = 1; s <= steps; s++) {
		model_step(&m);
		if (s % 250 == 0)
			model_check_all(&m);
	}
	model_check_all(&m);
	printf("model (%u-byte blocks): %" PRIu64 " steps: %" PRIu64 " sets (%" PRIu64
	       " bytes), %" PRIu64 " gets, %" PRIu64 " removes, %" PRIu64 " lists, %" PRIu64
	       " rejects, %" PRIu64 " full checks, height %u, credits used <= %.0f%%, %.2f s\n",
	       1u << block_log, steps, m.sets, m.bytes, m.gets, m.removes, m.lists, m.rejects,
	       m.checks, m.fs->xattrs.height, 100 * worst_credit_use, now() - t0);
	fs_done(m.fs);
	model_free(&m);
}
END_TEST

/* Every chunk boundary for every name length class, one after another. */
START_TEST(test_boundaries)
{
	struct rfs_fs *fs = fs_mem(block_log_of(_i), FS_BYTES);
	static const size_t nlens[] = {1, 2, 30, 31, 128, 254, 255};
	char name[NMAX + 1];
	uint64_t records = 0;
	unsigned n, v;

	for (n = 0; n < sizeof(nlens) / sizeof(nlens[0]); n++) {
		size_t c0 = chunk0_cap(nlens[n]);
		const size_t sizes[] = {0,
					1,
					c0 - 1,
					c0,
					c0 + 1,
					CHUNK - 1,
					CHUNK,
					CHUNK + 1,
					2 * CHUNK,
					c0 + CHUNK,
					c0 + CHUNK + 1,
					10 * CHUNK,
					c0 + 228 * CHUNK,
					VMAX - 1,
					VMAX};

		memset(name, 'a' + (int)n, nlens[n]);
		name[nlens[n]] = '\0';
		for (v = 0; v < sizeof(sizes) / sizeof(sizes[0]); v++) {
			size_t sz = RFS_MIN(sizes[v], (size_t)VMAX);

			set_pattern(fs, 7, name, sz, v);
			REQUIRE(tree_check(fs) == records + nr_chunks(nlens[n], sz),
				"name %zu bytes, value %zu bytes: record count", nlens[n], sz);
		}
		records += nr_chunks(nlens[n], VMAX);
	}
	/* An empty value may come without a buffer. */
	REQUIRE_INT(xattr_set(fs, 8, "user.null", NULL, 0, 0), 0);
	expect_value(fs, 8, "user.null", "", 0);
	REQUIRE_INT(xattr_set(fs, 8, "user.null", NULL, 0, RFS_XATTR_REPLACE), 0);
	REQUIRE_INT(xattr_remove(fs, 8, "user.null"), 0);
	/* The largest value takes 230 records after a 1-byte name, 231 after 255. */
	ck_assert_uint_eq(nr_chunks(NMAX, VMAX), 231);
	ck_assert_uint_eq(nr_chunks(1, VMAX), 230);
	fs_done(fs);
}
END_TEST

/* --- hash collisions ----------------------------------------------------------- */

static void collision_setup_check(struct rfs_fs *fs)
{
	ck_assert_str_ne(COLL_A, COLL_B);
	ck_assert_uint_eq(name_hash(fs, COLL_A), name_hash(fs, COLL_B));
}

/* Two real colliding names: seq 0 and 1, values kept apart, the lowest
 * free sequence reused. */
START_TEST(test_collision_real)
{
	struct rfs_fs *fs = fs_mem(block_log_of(_i), FS_BYTES);
	const char *both[] = {COLL_A, COLL_B};
	const rfs_ino_t ino = 500;

	collision_setup_check(fs);
	set_pattern(fs, ino, COLL_A, 1000, 1); /* several chunks */
	set_pattern(fs, ino, COLL_B, 10, 2);
	expect_seq(fs, ino, COLL_A, 0);
	expect_seq(fs, ino, COLL_B, 1);
	expect_pattern(fs, ino, COLL_A, 1000, 1);
	expect_list(fs, ino, both, 2);
	REQUIRE_INT(xattr_set(fs, ino, COLL_B, "x", 1, RFS_XATTR_CREATE), -EEXIST);

	/* Replacing keeps each name at its cookie. */
	set_pattern(fs, ino, COLL_B, 5000, 3);
	set_pattern(fs, ino, COLL_A, 0, 4);
	expect_seq(fs, ino, COLL_A, 0);
	expect_seq(fs, ino, COLL_B, 1);
	expect_pattern(fs, ino, COLL_B, 5000, 3);
	set_pattern(fs, ino, COLL_A, 3000, 5);
	expect_pattern(fs, ino, COLL_B, 5000, 3);

	/* Removing seq 0 leaves seq 1 found; the name comes back at seq 0. */
	REQUIRE_INT(xattr_remove(fs, ino, COLL_A), 0);
	expect_absent(fs, ino, COLL_A);
	REQUIRE_INT(xattr_remove(fs, ino, COLL_A), -ENODATA);
	REQUIRE_INT(xattr_set(fs, ino, COLL_A, "x", 1, RFS_XATTR_REPLACE), -ENODATA);
	expect_pattern(fs, ino, COLL_B, 5000, 3);
	expect_list(fs, ino, both + 1, 1);
	set_ok(fs, ino, COLL_A, "again", 5, RFS_XATTR_CREATE);
	expect_seq(fs, ino, COLL_A, 0);
	expect_seq(fs, ino, COLL_B, 1);
	expect_value(fs, ino, COLL_A, "again", 5);

	/* Removing seq 1 leaves seq 0. */
	REQUIRE_INT(xattr_remove(fs, ino, COLL_B), 0);
	expect_absent(fs, ino, COLL_B);
	expect_value(fs, ino, COLL_A, "again", 5);
	set_pattern(fs, ino, COLL_B, 1, 6);
	expect_seq(fs, ino, COLL_B, 1);

	/* Another inode numbers its own collisions from 0. */
	set_pattern(fs, ino + 1, COLL_B, 300, 7);
	expect_seq(fs, ino + 1, COLL_B, 0);
	expect_absent(fs, ino + 1, COLL_A);
	REQUIRE_INT(tree_check(fs), nr_chunks(strlen(COLL_A), 5) + nr_chunks(strlen(COLL_B), 1) +
					    nr_chunks(strlen(COLL_B), 300));
	fs_done(fs);
}
END_TEST

/* Raw records under COLL_A's hash with other names: lookups compare names,
 * new names take the lowest free sequence, 32768 of them fill the space. */
START_TEST(test_collision_raw)
{
	struct rfs_fs *fs = fs_mem(block_log_of(_i), FS_BYTES);
	uint64_t h;
	const rfs_ino_t ino = 900;
	uint32_t s, nseq = SEQ_MASK + 1;
	char fake[32];
	int done = 0;

	collision_setup_check(fs);
	h = name_hash(fs, COLL_A);
	raw_put(fs, ino, h, 0, "user.fake0", "zero");
	raw_put(fs, ino, h, 1, COLL_B, "bee");
	tree_check(fs);
	expect_value(fs, ino, COLL_B, "bee", 3);
	expect_absent(fs, ino, COLL_A);
	/* user.fake0 is not under its own hash: not found by name. */
	expect_absent(fs, ino, "user.fake0");
	REQUIRE_INT(xattr_remove(fs, ino, "user.fake0"), -ENODATA);
	set_ok(fs, ino, COLL_A, "ay", 2, RFS_XATTR_CREATE);
	expect_seq(fs, ino, COLL_A, 2);
	expect_value(fs, ino, COLL_A, "ay", 2);
	expect_value(fs, ino, COLL_B, "bee", 3);

	/* Replacing and removing touch only the named record. */
	set_pattern(fs, ino, COLL_B, 2000, 11);
	expect_seq(fs, ino, COLL_B, 1);
	expect_value(fs, ino, COLL_A, "ay", 2);
	REQUIRE_INT(xattr_remove(fs, ino, COLL_B), 0);
	expect_absent(fs, ino, COLL_B);
	expect_value(fs, ino, COLL_A, "ay", 2);
	ck_assert_uint_eq(cookie_of(fs, ino, "user.fake0"), h << SEQ_BITS);

	/* The gap at seq 1 is reused; then seq 3. */
	set_ok(fs, ino, COLL_B, "b2", 2, 0);
	expect_seq(fs, ino, COLL_B, 1);
	REQUIRE_INT(xattr_remove(fs, ino, COLL_A), 0);
	raw_put(fs, ino, h, 2, "user.fake2", "two");
	set_ok(fs, ino, COLL_A, "a3", 2, 0);
	expect_seq(fs, ino, COLL_A, 3);
	{
		const char *names[] = {"user.fake0", COLL_B, "user.fake2", COLL_A};
		expect_list(fs, ino, names, 4);
	}
	tree_check(fs);

	/* Every sequence taken: -ENOSPC, until one is freed. */
	for (s = 0; s < nseq; s++) {
		snprintf(fake, sizeof(fake), "user.f%u", s);
		raw_put(fs, ino + 1, h, s, fake, "");
	}
	REQUIRE_INT(tree_check(fs), 4 + nseq);
	REQUIRE_INT(xattr_set(fs, ino + 1, COLL_A, "x", 1, 0), -ENOSPC);
	REQUIRE_INT(xattr_set(fs, ino + 1, COLL_A, "x", 1, RFS_XATTR_CREATE), -ENOSPC);
	expect_absent(fs, ino + 1, COLL_A);
	raw_del(fs, ino + 1, h, 12345);
	set_ok(fs, ino + 1, COLL_A, "x", 1, RFS_XATTR_CREATE);
	expect_seq(fs, ino + 1, COLL_A, 12345);
	expect_value(fs, ino + 1, COLL_A, "x", 1);
	REQUIRE_INT(xattr_set(fs, ino + 1, COLL_B, "y", 1, 0), -ENOSPC);
	expect_absent(fs, ino + 1, COLL_B);
	/* The neighbour is untouched by all this. */
	expect_value(fs, ino, COLL_A, "a3", 2);
	expect_value(fs, ino, COLL_B, "b2", 2);
	while (!done)
		REQUIRE_INT(xattr_remove_all(fs, ino + 1, 1000, &done), 0);
	REQUIRE_INT(tree_check(fs), 4);
	fs_done(fs);
}
END_TEST

/* --- damaged attributes --------------------------------------------------------- */

/* Inserts one raw record: chunk CHUNK of the attribute at COOKIE, with
 * NAME (or none), VALUE_LEN in the header and the N bytes at DATA. */
static int raw_chunk(struct rfs_fs *fs, rfs_ino_t ino, uint64_t cookie, uint32_t chunk,
		     const char *name, uint32_t value_len, const uint8_t *data, size_t n)
{
	uint8_t rec[RFS_XATTR_REC_MAX];
	struct rfs_xattr_rec r;
	size_t nlen = name ? strlen(name) : 0;

	ck_assert_uint_le(HDR + nlen + n, sizeof(rec));
	memset(&r, 0, sizeof(r));
	r.ino = le64_make(ino);
	r.cookie = le64_make(cookie);
	r.chunk = le32_make(chunk);
	r.value_len = le32_make(value_len);
	r.namelen = (uint8_t)nlen;
	memcpy(rec, &r, HDR);
	memcpy(rec + HDR, name ? name : "", nlen);
	memcpy(rec + HDR + nlen, data, n);
	return btree_insert(&fs->xattrs, rec, HDR + nlen + n);
}

static void raw_chunk_del(struct rfs_fs *fs, rfs_ino_t ino, uint64_t cookie, uint32_t chunk)
{
	struct rfs_xattr_rec k;

	memset(&k, 0, sizeof(k));
	k.ino = le64_make(ino);
	k.cookie = le64_make(cookie);
	k.chunk = le32_make(chunk);
	REQUIRE_INT(btree_delete(&fs->xattrs, &k), 0);
}

static unsigned quiet_reports;

static void quiet_report(void *arg, const struct rfs_btree *t, fsblock_t blkno, const char *msg)
{
	(void)arg;
	(void)t;
	(void)blkno;
	(void)msg;
	quiet_reports++;
}

/* The record just inserted is refused by btree_check (the node verifier). */
static void expect_malformed(struct rfs_fs *fs, rfs_ino_t ino, uint64_t cookie, uint32_t chunk,
			     const char *what)
{
	struct rfs_btree_check chk = {.report = quiet_report};

	quiet_reports = 0;
	REQUIRE(btree_check(&fs->xattrs, &chk) == -EUCLEAN && chk.errors && quiet_reports,
		"btree_check accepts a record with %s", what);
	raw_chunk_del(fs, ino, cookie, chunk);
	tree_check(fs);
}

START_TEST(test_damaged)
{
	struct rfs_fs *fs = fs_mem(block_log_of(_i), FS_BYTES);
	const char *nm = "user.broken"; /* 11 bytes: chunk 0 holds 275 value bytes */
	uint64_t c = name_hash(fs, nm) << SEQ_BITS;
	uint8_t v[1000], got[1000];
	const rfs_ino_t ino = 77;
	size_t len;
	int done = 0;

	fill_pattern(v, sizeof(v), 5);
	ck_assert_uint_eq(chunk0_cap(11), 275);
	/* Chunks 0, 2, 3, 4 (one missing) whose bytes add up to the length. */
	REQUIRE_INT(raw_chunk(fs, ino, c, 0, nm, 1000, v, 275), 0);
	REQUIRE_INT(raw_chunk(fs, ino, c, 2, NULL, 1000, v + 275, 286), 0);
	REQUIRE_INT(raw_chunk(fs, ino, c, 3, NULL, 1000, v + 561, 286), 0);
	REQUIRE_INT(raw_chunk(fs, ino, c, 4, NULL, 1000, v + 847, 153), 0);
	tree_check(fs);
	REQUIRE_INT(xattr_get(fs, ino, nm, got, 0, &len), 0);
	REQUIRE_INT(len, 1000);
	REQUIRE_INT(xattr_get(fs, ino, nm, got, sizeof(got), &len), -EUCLEAN);
	expect_list(fs, ino, &nm, 1);
	/* Removing the inode's attributes removes the strays too. */
	REQUIRE_INT(xattr_remove_all(fs, ino, 100, &done), 0);
	REQUIRE_INT(done, 1);
	REQUIRE_INT(tree_check(fs), 0);

	/* A later chunk disagreeing on the length. */
	REQUIRE_INT(raw_chunk(fs, ino, c, 0, nm, 300, v, 275), 0);
	REQUIRE_INT(raw_chunk(fs, ino, c, 1, NULL, 301, v + 275, 25), 0);
	REQUIRE_INT(xattr_get(fs, ino, nm, got, sizeof(got), &len), -EUCLEAN);
	/* Setting it again repairs it. */
	set_pattern(fs, ino, nm, 600, 6);
	REQUIRE_INT(tree_check(fs), nr_chunks(11, 600));
	REQUIRE_INT(xattr_remove(fs, ino, nm), 0);
	REQUIRE_INT(tree_check(fs), 0);

	/* Records the node verifier refuses. */
	REQUIRE_INT(raw_chunk(fs, ino, c, 1, "abc", 300, v, 5), 0);
	expect_malformed(fs, ino, c, 1, "a name in chunk 1");
	REQUIRE_INT(raw_chunk(fs, ino, c, 0, NULL, 300, v, 5), 0);
	expect_malformed(fs, ino, c, 0, "no name in chunk 0");
	REQUIRE_INT(raw_chunk(fs, ino, c, 0, nm, 2, v, 5), 0);
	expect_malformed(fs, ino, c, 0, "more bytes than value_len");
	REQUIRE_INT(raw_chunk(fs, ino, c, 0, nm, VMAX + 1, v, 5), 0);
	expect_malformed(fs, ino, c, 0, "value_len over 64 KiB");
	REQUIRE_INT(raw_chunk(fs, ino, c, 3, NULL, 300, v, 0), 0);
	expect_malformed(fs, ino, c, 3, "an empty later chunk");
	/* Chunk 2 starts at 31 + 286 at the earliest (after a 255-byte name). */
	REQUIRE_INT(raw_chunk(fs, ino, c, 2, NULL, 317, v, 1), 0);
	expect_malformed(fs, ino, c, 2, "chunk 2 of a value of 317 bytes");
	REQUIRE_INT(raw_chunk(fs, ino, c, 2, NULL, 318, v, 1), 0);
	tree_check(fs);
	raw_chunk_del(fs, ino, c, 2);
	fs_done(fs);
}
END_TEST

/* --- remove_all ----------------------------------------------------------------- */

/* The size of INO's attribute I: every fifth the largest, others small. */
static size_t attr_size(rfs_ino_t ino, unsigned i)
{
	return i % 5 == 0 ? VMAX : (size_t)((ino * 7919 + i * 104729) % 3000);
}

/* Gives INO N attributes; returns the records they take. */
static uint64_t populate(struct rfs_fs *fs, rfs_ino_t ino, unsigned n)
{
	uint64_t recs = 0;
	char name[40];
	unsigned i;

	for (i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "user.attr%u", i);
		set_pattern(fs, ino, name, attr_size(ino, i), (uint32_t)(ino * 1000 + i));
		recs += nr_chunks(strlen(name), attr_size(ino, i));
	}
	return recs;
}

static void expect_populated(struct rfs_fs *fs, rfs_ino_t ino, unsigned n)
{
	char name[40];
	unsigned i;

	for (i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "user.attr%u", i);
		expect_pattern(fs, ino, name, attr_size(ino, i), (uint32_t)(ino * 1000 + i));
	}
}

/* Removes all of INO's attributes MAX records per call; checks the bound of
 * each call and of the number of calls. */
static void remove_all_bounded(struct rfs_fs *fs, rfs_ino_t ino, unsigned max, uint64_t recs)
{
	uint64_t before = tree_check(fs), last = before, calls = 0, after;
	int done = 0;

	while (!done) {
		REQUIRE_INT(xattr_remove_all(fs, ino, max, &done), 0);
		after = tree_check(fs);
		REQUIRE(last - after <= max, "one call removed %" PRIu64 " records, max %u",
			last - after, max);
		REQUIRE(done || last - after == max,
			"not done after removing %" PRIu64 " of at most %u", last - after, max);
		last = after;
		calls++;
		REQUIRE(calls <= recs / max + 1,
			"%" PRIu64 " calls for %" PRIu64 " records, max %u", calls, recs, max);
	}
	REQUIRE_INT(before - last, recs);
	expect_list(fs, ino, NULL, 0);
	done = 0;
	REQUIRE_INT(xattr_remove_all(fs, ino, max, &done), 0);
	REQUIRE_INT(done, 1);
	REQUIRE_INT(tree_check(fs), last);
}

/* Removes the inodes' attributes middle first, then its neighbours, then
 * the ends of the key space; the others keep theirs every time. */
START_TEST(test_remove_all)
{
	struct rfs_fs *fs = fs_mem(block_log_of(_i), FS_BYTES);
	static const rfs_ino_t inos[] = {0, 99, 100, 101, UINT64_MAX - 1, UINT64_MAX};
	static const unsigned order[] = {2, 1, 3, 5, 0, 4};
	static const unsigned maxes[] = {1, 3, 7, 1000};
	enum { NI = sizeof(inos) / sizeof(inos[0]), N = 12 };
	uint64_t recs[NI];
	unsigned i, j;
	int done = 0;

	for (i = 0; i < NI; i++)
		recs[i] = populate(fs, inos[i], N);
	/* An inode without attributes is done at once. */
	REQUIRE_INT(xattr_remove_all(fs, 50, 3, &done), 0);
	REQUIRE_INT(done, 1);
	for (j = 0; j < NI; j++) {
		remove_all_bounded(fs, inos[order[j]], maxes[j % 4], recs[order[j]]);
		recs[order[j]] = 0;
		for (i = 0; i < NI; i++)
			if (recs[i])
				expect_populated(fs, inos[i], N);
	}
	REQUIRE_INT(tree_check(fs), 0);
	fs_done(fs);
}
END_TEST

/* --- a full filesystem ------------------------------------------------------------ */

/* Sets NAME to VMAX bytes of pattern SEED; returns the result. */
static int try_set_big(struct rfs_fs *fs, rfs_ino_t ino, const char *name, uint32_t seed, int flags)
{
	uint8_t *v = malloc(VMAX);
	int ret;

	ck_assert_ptr_nonnull(v);
	fill_pattern(v, VMAX, seed);
	ret = xattr_set(fs, ino, name, v, VMAX, flags);
	free(v);
	return ret;
}

/* Fills the filesystem with 64 KiB values: the set that runs out of space
 * fails with -ENOSPC and leaves no partial value behind; freeing one makes
 * room again. */
START_TEST(test_enospc)
{
	struct rfs_fs *fs = fs_mem(block_log_of(_i), 2ull << 20);
	char name[40], names[64][16];
	const char *list[64];
	uint64_t recs = 0;
	unsigned n, i;
	int ret;

	for (n = 0;; n++) {
		ck_assert_uint_lt(n, 64);
		snprintf(names[n], sizeof(names[n]), "user.fill%u", n);
		list[n] = names[n];
		ret = try_set_big(fs, 5, names[n], n, 0);
		if (ret)
			break;
		recs += nr_chunks(strlen(names[n]), VMAX);
	}
	REQUIRE(ret == -ENOSPC && n > 2, "set %u of 64 KiB = %d, expected -ENOSPC", n, ret);
	expect_absent(fs, 5, names[n]);
	REQUIRE(tree_check(fs) == recs, "records of the failed set remain");
	expect_list(fs, 5, list, n);
	for (i = 0; i < n; i++)
		expect_pattern(fs, 5, names[i], VMAX, i);
	/* Small values still fit somewhere, or fail cleanly too. */
	for (i = 0; i < 200; i++) {
		snprintf(name, sizeof(name), "user.small%u", i);
		ret = xattr_set(fs, 6, name, name, strlen(name), 0);
		REQUIRE(ret == 0 || ret == -ENOSPC, "small set: %d", ret);
		if (ret) {
			expect_absent(fs, 6, name);
			break;
		}
		expect_value(fs, 6, name, name, strlen(name));
		recs += 1;
	}
	REQUIRE(tree_check(fs) == recs, "records of the failed small set remain");
	/* A replace that does not fit keeps the old value. */
	ret = try_set_big(fs, 6, "user.small0", 99, RFS_XATTR_REPLACE);
	REQUIRE_INT(ret, -ENOSPC);
	expect_value(fs, 6, "user.small0", "user.small0", 11);
	REQUIRE(tree_check(fs) == recs, "records of the failed replace remain");
	ret = try_set_big(fs, 5, names[2], 1000, 0);
	REQUIRE(ret == 0 || ret == -ENOSPC, "replacing 64 KiB by 64 KiB: %d", ret);
	expect_pattern(fs, 5, names[2], VMAX, ret ? 2 : 1000);
	if (!ret)
		REQUIRE_INT(try_set_big(fs, 5, names[2], 2, 0), 0);
	/* Room again. */
	REQUIRE_INT(xattr_remove(fs, 5, names[0]), 0);
	REQUIRE_INT(xattr_remove(fs, 5, names[1]), 0);
	REQUIRE_INT(try_set_big(fs, 5, names[n], n, RFS_XATTR_CREATE), 0);
	expect_pattern(fs, 5, names[n], VMAX, n);
	for (i = 2; i < n; i++)
		expect_pattern(fs, 5, names[i], VMAX, i);
	fs_done(fs);
}
END_TEST

/* --- persistence ------------------------------------------------------------------ */

static struct rfs_fs *reopen_file(const char *path)
{
	struct rfs_dev *dev;
	struct rfs_fs *fs;
	char why[256] = "";
	int ret;

	ck_assert_int_eq(dev_open_file(path, 0, 0, &dev), 0);
	ret = fs_open(dev, RFS_FS_NOJOURNAL, CACHE, &fs, why, sizeof(why));
	ck_assert_msg(ret == 0, "fs_open: %d %s", ret, why);
	return fs;
}

START_TEST(test_persist)
{
	char path[] = "/tmp/test_xattr.XXXXXX";
	const char *names[] = {"user.big", "user.small", "user.empty", COLL_A, COLL_B};
	const size_t sizes[] = {VMAX, 10, 0, 700, 287};
	struct rfs_dev *dev;
	struct rfs_fs *fs;
	int fd = mkstemp(path);
	unsigned i;

	ck_assert_int_ge(fd, 0);
	close(fd);
	ck_assert_int_eq(dev_open_file(path, RFS_DEV_CREATE, 32ull << 20, &dev), 0);
	fs = fs_format_open(dev, block_log_of(_i));
	for (i = 0; i < 5; i++) {
		set_pattern(fs, 10, names[i], sizes[i], i);
		set_pattern(fs, 11, names[i], sizes[i] / 2, i + 100);
	}
	fs_done(fs);

	fs = reopen_file(path);
	for (i = 0; i < 5; i++) {
		expect_pattern(fs, 10, names[i], sizes[i], i);
		expect_pattern(fs, 11, names[i], sizes[i] / 2, i + 100);
	}
	expect_list(fs, 10, names, 5);
	expect_seq(fs, 10, COLL_A, 0);
	expect_seq(fs, 10, COLL_B, 1);
	/* Change some, close, and see the changes. */
	REQUIRE_INT(xattr_remove(fs, 10, COLL_A), 0);
	set_pattern(fs, 10, "user.small", 4000, 77);
	set_pattern(fs, 11, "user.big", 1, 78);
	fs_done(fs);

	fs = reopen_file(path);
	expect_absent(fs, 10, COLL_A);
	expect_pattern(fs, 10, COLL_B, sizes[4], 4);
	expect_seq(fs, 10, COLL_B, 1);
	expect_pattern(fs, 10, "user.small", 4000, 77);
	expect_pattern(fs, 10, "user.big", VMAX, 0);
	expect_pattern(fs, 11, "user.big", 1, 78);
	expect_list(fs, 10, (const char *const[]){"user.big", "user.small", "user.empty", COLL_B},
		    4);
	fs_done(fs);
	ck_assert_int_eq(unlink(path), 0);
}
END_TEST

static Suite *xattr_suite(void)
{
	Suite *s = suite_create("xattr");
	TCase *model = tcase_create("model");
	TCase *edge = tcase_create("edge");

	tcase_set_timeout(model, 1200);
	tcase_add_loop_test(model, test_model, 0, 2);
	suite_add_tcase(s, model);
	tcase_set_timeout(edge, 1200);
	tcase_add_loop_test(edge, test_boundaries, 0, 2);
	tcase_add_loop_test(edge, test_collision_real, 0, 2);
	tcase_add_loop_test(edge, test_collision_raw, 0, 2);
	tcase_add_loop_test(edge, test_remove_all, 0, 2);
	tcase_add_loop_test(edge, test_damaged, 0, 2);
	tcase_add_loop_test(edge, test_enospc, 0, 2);
	tcase_add_loop_test(edge, test_persist, 0, 2);
	suite_add_tcase(s, edge);
	return s;
}

int main(void)
{
	return test_run_suite(xattr_suite());
}
