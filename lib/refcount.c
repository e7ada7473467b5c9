/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * refcount.c - the refcount tree: shared extents and CoW staging.
 */
#include "refcount.h"

#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "util.h"

#define REC_LEN_MAX RFS_REFC_LEN_MAX

struct rrec {
	uint64_t domain;
	fsblock_t start;
	extlen_t len;
	uint32_t count;
	rfs_ino_t owner;
};

static int refc_check_rec(const void *rec, size_t len, char *why, size_t whylen)
{
	struct rfs_refc_rec r;
	uint64_t dom, start, owner;
	uint32_t n, cnt;

	(void)len;
	memcpy(&r, rec, sizeof(r));
	dom = le64_get(r.domain);
	start = le64_get(r.start);
	n = le32_get(r.len);
	cnt = le32_get(r.refcount);
	owner = le64_get(r.owner);
	if (dom > RFS_REFC_COW || start == 0 || n == 0 || start + n < start ||
	    (dom == RFS_REFC_SHARED && (cnt < 2 || owner != 0)) ||
	    (dom == RFS_REFC_COW && (cnt != 1 || owner == 0))) {
		snprintf(why, whylen, "malformed refcount record");
		return -EUCLEAN;
	}
	return 0;
}

const struct rfs_btree_ops rfs_refc_ops = {
	.tree_type = RFS_TREE_REFC,
	.name = "refcount",
	.key_size = 16,
	.min_rec = sizeof(struct rfs_refc_rec),
	.max_rec = sizeof(struct rfs_refc_rec),
	.cmp_key = btree_cmp_le64x2,
	.check_rec = refc_check_rec,
	.alloc_block = alloc_tree_block,
	.free_block = free_tree_block,
	.root_changed = fs_tree_root_changed,
};

uint32_t refc_credits(const struct rfs_fs *fs, unsigned pieces)
{
	/* per piece: two inserts (the tail of the record, the piece) and
	 * updates or deletes of the record and of two neighbours merged; new
	 * tree nodes come from the free list, topped up once */
	return pieces * 5 * btree_record_credits(&fs->refc) + alloc_credits(fs);
}

static void rec_encode(struct rfs_refc_rec *r, const struct rrec *x)
{
	r->domain = le64_make(x->domain);
	r->start = le64_make(x->start);
	r->len = le32_make((uint32_t)x->len);
	r->refcount = le32_make(x->count);
	r->owner = le64_make(x->owner);
}

static void rec_decode(const struct rfs_refc_rec *r, struct rrec *x)
{
	x->domain = le64_get(r->domain);
	x->start = le64_get(r->start);
	x->len = le32_get(r->len);
	x->count = le32_get(r->refcount);
	x->owner = le64_get(r->owner);
}

/* The record of DOMAIN found from block B with MODE; -ENOENT if none (or
 * only one of the other domain). */
static int lookup(struct rfs_fs *fs, uint64_t domain, fsblock_t b, enum rfs_lookup_mode mode,
		  struct rrec *x)
{
	struct rfs_refc_rec key = {0}, r;
	int ret;

	key.domain = le64_make(domain);
	key.start = le64_make(b);
	ret = btree_lookup(&fs->refc, &key, mode, &r, sizeof(r), NULL);
	if (ret)
		return ret;
	rec_decode(&r, x);
	return x->domain == domain ? 0 : -ENOENT;
}

static int rec_insert(struct rfs_fs *fs, const struct rrec *x)
{
	struct rfs_refc_rec r;
	int ret;

	rec_encode(&r, x);
	ret = btree_insert(&fs->refc, &r, sizeof(r));
	return ret == -EEXIST ? -EUCLEAN : ret;
}

static int rec_delete(struct rfs_fs *fs, const struct rrec *x)
{
	struct rfs_refc_rec k = {0};
	int ret;

	k.domain = le64_make(x->domain);
	k.start = le64_make(x->start);
	ret = btree_delete(&fs->refc, &k);
	return ret == -ENOENT ? -EUCLEAN : ret;
}

/*
 * The piece at B: the shared record holding B (*X filled, its count), or
 * the gap before the next record (count 1). *RUN: blocks from B with that
 * count, at most LIMIT and REC_LEN_MAX.
 */
static int piece_at(struct rfs_fs *fs, fsblock_t b, extlen_t limit, uint32_t *count, extlen_t *run,
		    struct rrec *x)
{
	int ret = lookup(fs, RFS_REFC_SHARED, b, RFS_LOOKUP_LE, x);

	limit = RFS_MIN(limit, REC_LEN_MAX);
	if (ret && ret != -ENOENT)
		return ret;
	if (!ret && x->start + x->len > b) {
		*count = x->count;
		*run = RFS_MIN(limit, x->start + x->len - b);
		return 0;
	}
	ret = lookup(fs, RFS_REFC_SHARED, b, RFS_LOOKUP_GE, x);
	if (ret && ret != -ENOENT)
		return ret;
	*count = 1;
	*run = ret ? limit : RFS_MIN(limit, x->start - b);
	return 0;
}

int refc_get(struct rfs_fs *fs, fsblock_t b, extlen_t limit, uint32_t *count, extlen_t *run)
{
	struct rrec x;

	return piece_at(fs, b, limit, count, run, &x);
}

static int next_in(struct rfs_fs *fs, uint64_t domain, fsblock_t from, struct rrec *x);

int refc_find_shared(struct rfs_fs *fs, fsblock_t start, extlen_t len, fsblock_t *found,
		     extlen_t *flen)
{
	fsblock_t end = start + len;
	struct rrec x;
	int ret = len ? next_in(fs, RFS_REFC_SHARED, start, &x) : -ENOENT;

	if (ret)
		return ret;
	if (x.start >= end)
		return -ENOENT;
	*found = RFS_MAX(start, x.start);
	*flen = RFS_MIN(end, x.start + x.len) - *found;
	return 0;
}

int refc_clip(struct rfs_fs *fs, fsblock_t start, extlen_t len, unsigned max_pieces, extlen_t *out)
{
	fsblock_t pos = start, end = start + len;
	unsigned n;

	for (n = 0; pos < end && n < max_pieces; n++) {
		uint32_t count;
		extlen_t run;
		struct rrec x;
		int ret = piece_at(fs, pos, end - pos, &count, &run, &x);

		if (ret)
			return ret;
		pos += run;
	}
	*out = pos - start;
	return 0;
}

/* Replaces the record with X's key (same size: never a new tree node). */
static int rec_update(struct rfs_fs *fs, const struct rrec *x)
{
	struct rfs_refc_rec r;
	int ret;

	rec_encode(&r, x);
	ret = btree_update(&fs->refc, &r, sizeof(r));
	return ret == -ENOENT ? -EUCLEAN : ret;
}

/* Inserts A, then B (either may be NULL). If B fails, A is taken out
 * again: a full device changes nothing. */
static int insert_two(struct rfs_fs *fs, const struct rrec *a, const struct rrec *b)
{
	int ret = a ? rec_insert(fs, a) : 0, undo;

	if (ret || !b)
		return ret;
	ret = rec_insert(fs, b);
	if (ret && a) {
		undo = rec_delete(fs, a);
		ret = undo ? undo : ret;
	}
	return ret;
}

/* The shared records M may merge with: *L ending where M starts, *R
 * starting where M ends, with M's count and within the length limit. */
static int find_merges(struct rfs_fs *fs, const struct rrec *m, struct rrec *l, int *have_l,
		       struct rrec *r, int *have_r)
{
	int ret = -ENOENT;

	if (m->start > 0)
		ret = lookup(fs, RFS_REFC_SHARED, m->start - 1, RFS_LOOKUP_LE, l);
	if (ret && ret != -ENOENT)
		return ret;
	*have_l = !ret && l->start + l->len == m->start && l->count == m->count &&
		  l->len + m->len <= REC_LEN_MAX;
	ret = lookup(fs, RFS_REFC_SHARED, m->start + m->len, RFS_LOOKUP_EQ, r);
	if (ret && ret != -ENOENT)
		return ret;
	*have_r = !ret && r->count == m->count &&
		  r->len + m->len + (*have_l ? l->len : 0) <= REC_LEN_MAX;
	return 0;
}

/*
 * Gives [POS, POS+RUN) the count NEW (< 2: no record), merged with
 * neighbours of that count. X is the shared record holding the piece (the
 * rest of it keeps its count), or NULL for a gap.
 *
 * Only records with new keys need a tree node, so they are inserted first
 * (the tail of X, and the piece unless it extends a neighbour or takes X's
 * key); the rest are updates in place and deletes, which never allocate.
 * A full device (-ENOSPC) thus leaves every count as it was: dropping a
 * record first and failing to put it back would lose references, and a
 * block still mapped twice would be freed on the next decrement.
 */
static int set_count(struct rfs_fs *fs, const struct rrec *x, fsblock_t pos, extlen_t run,
		     uint32_t new_count)
{
	struct rrec head = {0}, tail = {0}, mid = {RFS_REFC_SHARED, pos, run, new_count, 0};
	struct rrec l = {0}, r = {0};
	int have_l = 0, have_r = 0, ret = 0;

	if (x) {
		head = tail = *x;
		head.len = pos - x->start;
		tail.start = pos + run;
		tail.len = x->start + x->len - tail.start;
	}
	if (new_count >= 2)
		ret = find_merges(fs, &mid, &l, &have_l, &r, &have_r);
	if (ret)
		return ret;
	mid.len += have_r ? r.len : 0;
	l.len += have_l ? mid.len : 0;
	ret = insert_two(fs, tail.len ? &tail : NULL,
			 new_count >= 2 && !have_l && (!x || head.len) ? &mid : NULL);
	if (!ret && x && head.len)
		ret = rec_update(fs, &head);
	else if (!ret && x && new_count >= 2 && !have_l)
		ret = rec_update(fs, &mid); /* the piece starts X: it takes X's key */
	else if (!ret && x)
		ret = rec_delete(fs, x);
	if (!ret && have_l)
		ret = rec_update(fs, &l);
	if (!ret && have_r)
		ret = rec_delete(fs, &r);
	return ret;
}

/* Refuses an increment that would overflow a count, before any change. */
static int check_increment(struct rfs_fs *fs, fsblock_t pos, fsblock_t end)
{
	while (pos < end) {
		uint32_t count;
		extlen_t run;
		struct rrec x;
		int ret = piece_at(fs, pos, end - pos, &count, &run, &x);

		if (ret)
			return ret;
		if (count >= RFS_REFC_MAX)
			return -EMLINK;
		pos += run;
	}
	return 0;
}

int refc_increment(struct rfs_fs *fs, fsblock_t start, extlen_t len)
{
	fsblock_t pos = start, end = start + len;
	int ret = check_increment(fs, start, end);

	while (!ret && pos < end) {
		uint32_t count;
		extlen_t run;
		struct rrec x;

		ret = piece_at(fs, pos, end - pos, &count, &run, &x);
		if (ret)
			break;
		ret = set_count(fs, count >= 2 ? &x : NULL, pos, run, count + 1);
		pos += run;
	}
	return ret;
}

int refc_decrement(struct rfs_fs *fs, fsblock_t start, extlen_t len, rfs_refc_free_fn free_fn,
		   void *arg)
{
	fsblock_t pos = start, end = start + len;
	int ret = 0;

	while (!ret && pos < end) {
		uint32_t count;
		extlen_t run;
		struct rrec x;

		ret = piece_at(fs, pos, end - pos, &count, &run, &x);
		if (ret)
			break;
		if (count >= 2)
			ret = set_count(fs, &x, pos, run, count - 1);
		else
			ret = free_fn(arg, pos, run);
		pos += run;
	}
	return ret;
}

int refc_shared_add(struct rfs_fs *fs, fsblock_t start, extlen_t len, uint32_t count)
{
	struct rrec x = {RFS_REFC_SHARED, start, len, count, 0};

	if (len == 0 || len > REC_LEN_MAX || count < 2 || count > RFS_REFC_MAX)
		return -EINVAL;
	return rec_insert(fs, &x);
}

int refc_cow_add(struct rfs_fs *fs, fsblock_t start, extlen_t len, rfs_ino_t owner)
{
	struct rrec x = {RFS_REFC_COW, start, len, 1, owner};

	if (len == 0 || len > REC_LEN_MAX || owner == 0)
		return -EINVAL;
	return rec_insert(fs, &x);
}

/* Refuses a remove of anything not all staging before any change (the
 * caller's fork is corrupt then: a half-done remove would leave it worse). */
static int check_staging(struct rfs_fs *fs, fsblock_t pos, fsblock_t end)
{
	while (pos < end) {
		struct rrec x;
		int ret = lookup(fs, RFS_REFC_COW, pos, RFS_LOOKUP_LE, &x);

		if (ret == -ENOENT || (!ret && x.start + x.len <= pos))
			return -EUCLEAN;
		if (ret)
			return ret;
		pos = x.start + x.len;
	}
	return 0;
}

/* Inserts what lies past END of the staging record holding END - 1: the
 * one change of a remove that may need a tree node, made first so that a
 * full device changes nothing. */
static int cow_insert_tail(struct rfs_fs *fs, fsblock_t end)
{
	struct rrec x;
	int ret = lookup(fs, RFS_REFC_COW, end - 1, RFS_LOOKUP_LE, &x);

	if (ret || x.start + x.len <= end)
		return ret;
	x.len = x.start + x.len - end;
	x.start = end;
	return rec_insert(fs, &x);
}

int refc_cow_remove(struct rfs_fs *fs, fsblock_t start, extlen_t len)
{
	fsblock_t pos = start, end = start + len;
	int ret = check_staging(fs, start, end);

	if (!ret && len)
		ret = cow_insert_tail(fs, end);
	while (!ret && pos < end) {
		struct rrec x;
		fsblock_t next;

		ret = lookup(fs, RFS_REFC_COW, pos, RFS_LOOKUP_LE, &x);
		if (ret == -ENOENT || (!ret && x.start + x.len <= pos))
			return -EUCLEAN; /* not staging: the caller's fork is corrupt */
		if (ret)
			break;
		next = RFS_MIN(end, x.start + x.len);
		x.len = pos - x.start; /* the head before POS keeps X's key */
		ret = x.len ? rec_update(fs, &x) : rec_delete(fs, &x);
		pos = next;
	}
	return ret;
}

static int next_in(struct rfs_fs *fs, uint64_t domain, fsblock_t from, struct rrec *x)
{
	struct rrec prev;
	int ret;

	/* a record starting before FROM but reaching past it comes first */
	ret = lookup(fs, domain, from, RFS_LOOKUP_LE, &prev);
	if (!ret && prev.start + prev.len > from) {
		*x = prev;
		return 0;
	}
	if (ret && ret != -ENOENT)
		return ret;
	return lookup(fs, domain, from, RFS_LOOKUP_GE, x);
}

int refc_cow_next(struct rfs_fs *fs, fsblock_t from, fsblock_t *start, extlen_t *len,
		  rfs_ino_t *owner)
{
	struct rrec x;
	int ret = next_in(fs, RFS_REFC_COW, from, &x);

	if (ret)
		return ret;
	*start = x.start;
	*len = x.len;
	*owner = x.owner;
	return 0;
}

int refc_shared_next(struct rfs_fs *fs, fsblock_t from, fsblock_t *start, extlen_t *len,
		     uint32_t *count)
{
	struct rrec x;
	int ret = next_in(fs, RFS_REFC_SHARED, from, &x);

	if (ret)
		return ret;
	*start = x.start;
	*len = x.len;
	*count = x.count;
	return 0;
}
