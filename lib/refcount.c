/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * refcount.c - the refcount tree: shared extents and CoW staging.
 */
#include "refcount.h"

#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "util.h"

/* A record's length is 32 bits: longer runs are cut into pieces. */
#define REC_LEN_MAX 0xffffffffull

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
	/* per piece: the record split in three (delete, two inserts) and two
	 * neighbours merged away; new tree nodes come from the free list,
	 * topped up once */
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

int refc_find_shared(struct rfs_fs *fs, fsblock_t start, extlen_t len, fsblock_t *found,
		     extlen_t *flen)
{
	fsblock_t end = start + len;

	while (start < end) {
		uint32_t count;
		extlen_t run;
		struct rrec x;
		int ret = piece_at(fs, start, end - start, &count, &run, &x);

		if (ret)
			return ret;
		if (count >= 2) {
			*found = start;
			*flen = run;
			return 0;
		}
		start += run;
	}
	return -ENOENT;
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

/* Inserts a shared record for [START, START+LEN) with COUNT, merged with
 * neighbours of the same count. */
static int insert_merged(struct rfs_fs *fs, fsblock_t start, extlen_t len, uint32_t count)
{
	struct rrec m = {RFS_REFC_SHARED, start, len, count, 0}, n;
	int ret;

	if (start > 0) {
		ret = lookup(fs, RFS_REFC_SHARED, start - 1, RFS_LOOKUP_LE, &n);
		if (ret && ret != -ENOENT)
			return ret;
		if (!ret && n.start + n.len == start && n.count == count &&
		    n.len + m.len <= REC_LEN_MAX) {
			ret = rec_delete(fs, &n);
			if (ret)
				return ret;
			m.start = n.start;
			m.len += n.len;
		}
	}
	ret = lookup(fs, RFS_REFC_SHARED, start + len, RFS_LOOKUP_EQ, &n);
	if (ret && ret != -ENOENT)
		return ret;
	if (!ret && n.count == count && n.len + m.len <= REC_LEN_MAX) {
		ret = rec_delete(fs, &n);
		if (ret)
			return ret;
		m.len += n.len;
	}
	return rec_insert(fs, &m);
}

/* Gives [POS, POS+RUN) of shared record X the count NEW (< 2: no record),
 * keeping the rest of X as it was. */
static int recount_part(struct rfs_fs *fs, const struct rrec *x, fsblock_t pos, extlen_t run,
			uint32_t new_count)
{
	struct rrec head = *x, tail = *x;
	int ret = rec_delete(fs, x);

	head.len = pos - x->start;
	tail.start = pos + run;
	tail.len = x->start + x->len - tail.start;
	if (!ret && head.len)
		ret = rec_insert(fs, &head);
	if (!ret && tail.len)
		ret = rec_insert(fs, &tail);
	if (!ret && new_count >= 2)
		ret = insert_merged(fs, pos, run, new_count);
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
		if (count >= 2)
			ret = recount_part(fs, &x, pos, run, count + 1);
		else
			ret = insert_merged(fs, pos, run, 2);
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
			ret = recount_part(fs, &x, pos, run, count - 1);
		else
			ret = free_fn(arg, pos, run);
		pos += run;
	}
	return ret;
}

int refc_cow_add(struct rfs_fs *fs, fsblock_t start, extlen_t len, rfs_ino_t owner)
{
	struct rrec x = {RFS_REFC_COW, start, len, 1, owner};

	if (len == 0 || len > REC_LEN_MAX || owner == 0)
		return -EINVAL;
	return rec_insert(fs, &x);
}

int refc_cow_remove(struct rfs_fs *fs, fsblock_t start, extlen_t len)
{
	fsblock_t pos = start, end = start + len;
	int ret = 0;

	while (!ret && pos < end) {
		struct rrec x, head, tail;

		ret = lookup(fs, RFS_REFC_COW, pos, RFS_LOOKUP_LE, &x);
		if (ret == -ENOENT || (!ret && x.start + x.len <= pos))
			return -EUCLEAN; /* not staging: the caller's fork is corrupt */
		if (ret)
			break;
		head = tail = x;
		head.len = pos - x.start;
		tail.start = RFS_MIN(end, x.start + x.len);
		tail.len = x.start + x.len - tail.start;
		ret = rec_delete(fs, &x);
		if (!ret && head.len)
			ret = rec_insert(fs, &head);
		if (!ret && tail.len)
			ret = rec_insert(fs, &tail);
		pos = tail.start;
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
