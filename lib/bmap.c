/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * bmap.c - the extent map of file forks.
 */
#include "bmap.h"

#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "inode.h"
#include "util.h"

static uint64_t fkey(unsigned fork, fileoff_t off)
{
	return ((uint64_t)fork << RFS_BMAP_OFF_BITS) | off;
}

static int bmap_check_rec(const void *rec, size_t len, char *why, size_t whylen)
{
	struct rfs_bmap_rec r;

	(void)len;
	memcpy(&r, rec, sizeof(r));
	if (le32_get(r.len) == 0 || le64_get(r.pblk) == 0 ||
	    (le64_get(r.fkey) >> RFS_BMAP_OFF_BITS) > RFS_FORK_COW ||
	    (le32_get(r.flags) & ~(uint32_t)RFS_BMAP_UNWRITTEN) ||
	    (le64_get(r.fkey) & (RFS_MAX_FILE_BLOCKS - 1)) + le32_get(r.len) >
		    RFS_MAX_FILE_BLOCKS ||
	    le64_get(r.pblk) + le32_get(r.len) < le64_get(r.pblk)) {
		snprintf(why, whylen, "malformed extent record");
		return -EUCLEAN;
	}
	return 0;
}

const struct rfs_btree_ops rfs_bmap_ops = {
	.tree_type = RFS_TREE_BMAP,
	.name = "extents",
	.key_size = 16,
	.min_rec = sizeof(struct rfs_bmap_rec),
	.max_rec = sizeof(struct rfs_bmap_rec),
	.cmp_key = btree_cmp_le64x2,
	.check_rec = bmap_check_rec,
	.alloc_block = alloc_tree_block,
	.free_block = free_tree_block,
	.root_changed = fs_tree_root_changed,
};

static void rec_encode(struct rfs_bmap_rec *r, rfs_ino_t ino, unsigned fork,
		       const struct rfs_extent *e)
{
	r->ino = le64_make(ino);
	r->fkey = le64_make(fkey(fork, e->off));
	r->pblk = le64_make(e->pblk);
	r->len = le32_make((uint32_t)e->len);
	r->flags = le32_make(e->flags);
	r->tid = le64_make(e->tid);
}

static void rec_decode(const void *rec, struct rfs_extent *e)
{
	struct rfs_bmap_rec r;

	memcpy(&r, rec, sizeof(r));
	e->off = le64_get(r.fkey) & (RFS_MAX_FILE_BLOCKS - 1);
	e->pblk = le64_get(r.pblk);
	e->len = le32_get(r.len);
	e->flags = le32_get(r.flags);
	e->tid = le64_get(r.tid);
}

static void key_encode(struct rfs_bmap_rec *k, rfs_ino_t ino, unsigned fork, fileoff_t off)
{
	k->ino = le64_make(ino);
	k->fkey = le64_make(fkey(fork, off));
}

/* Is the record REC one of (INO, FORK)'s? */
static int rec_owned(const void *rec, rfs_ino_t ino, unsigned fork)
{
	struct rfs_bmap_rec r;

	memcpy(&r, rec, 16);
	return le64_get(r.ino) == ino && (le64_get(r.fkey) >> RFS_BMAP_OFF_BITS) == fork;
}

static int tree_find(struct rfs_fs *fs, rfs_ino_t ino, unsigned fork, fileoff_t off,
		     struct rfs_extent *ext)
{
	struct rfs_btree_cursor cur;
	struct rfs_bmap_rec key;
	const void *rec;
	int ret;

	if (fork > RFS_FORK_COW)
		return -EINVAL;
	/* Nothing ends past the last block; and such an offset would spill
	 * into the fork bits of the key (the CoW fork would find its own
	 * extents at OFF - 2^56). */
	if (off >= RFS_MAX_FILE_BLOCKS)
		return -ENOENT;
	key_encode(&key, ino, fork, off);
	btree_cursor_init(&cur, &fs->bmap);
	ret = btree_seek(&cur, &key, RFS_LOOKUP_LE);
	if (!ret && rec_owned(btree_cursor_rec(&cur, NULL), ino, fork)) {
		rec_decode(btree_cursor_rec(&cur, NULL), ext);
		if (ext->off + ext->len > off) {
			btree_cursor_done(&cur);
			return 0;
		}
	}
	/* Not inside an extent: the first one after OFF. */
	if (ret && ret != -ENOENT) {
		btree_cursor_done(&cur);
		return ret; /* an I/O error or corruption is not a hole */
	}
	ret = ret == -ENOENT ? btree_seek(&cur, &key, RFS_LOOKUP_GE) : btree_next(&cur);
	if (!ret) {
		rec = btree_cursor_rec(&cur, NULL);
		if (rec_owned(rec, ino, fork))
			rec_decode(rec, ext);
		else
			ret = -ENOENT;
	}
	btree_cursor_done(&cur);
	if (ret)
		return ret;
	return ext->off > off ? 1 : 0;
}

static int tree_find_prev(struct rfs_fs *fs, rfs_ino_t ino, unsigned fork, fileoff_t off,
			  struct rfs_extent *ext)
{
	struct rfs_bmap_rec key, r;
	int ret;

	key_encode(&key, ino, fork, RFS_MIN(off, RFS_MAX_FILE_BLOCKS - 1));
	ret = btree_lookup(&fs->bmap, &key, RFS_LOOKUP_LE, &r, sizeof(r), NULL);
	if (ret)
		return ret;
	if (!rec_owned(&r, ino, fork))
		return -ENOENT;
	rec_decode(&r, ext);
	return 0;
}

static int rec_insert(struct rfs_fs *fs, rfs_ino_t ino, unsigned fork, const struct rfs_extent *e)
{
	struct rfs_bmap_rec r;
	int ret;

	rec_encode(&r, ino, fork, e);
	ret = btree_insert(&fs->bmap, &r, sizeof(r));
	return ret == -EEXIST ? -EUCLEAN : ret;
}

static int rec_update(struct rfs_fs *fs, rfs_ino_t ino, unsigned fork, const struct rfs_extent *e)
{
	struct rfs_bmap_rec r;
	int ret;

	rec_encode(&r, ino, fork, e);
	ret = btree_update(&fs->bmap, &r, sizeof(r));
	return ret == -ENOENT ? -EUCLEAN : ret;
}

static int rec_delete(struct rfs_fs *fs, rfs_ino_t ino, unsigned fork, fileoff_t off)
{
	struct rfs_bmap_rec k;
	int ret;

	key_encode(&k, ino, fork, off);
	ret = btree_delete(&fs->bmap, &k);
	return ret == -ENOENT ? -EUCLEAN : ret;
}

static int can_merge(const struct rfs_extent *a, const struct rfs_extent *b)
{
	return a->off + a->len == b->off && a->pblk + a->len == b->pblk && a->flags == b->flags &&
	       a->len + b->len <= RFS_MAX_EXTENT_LEN;
}

/* The neighbour ending right at OFF, if any (0 found, -ENOENT none). */
static int left_neighbour(struct rfs_fs *fs, rfs_ino_t ino, unsigned fork, fileoff_t off,
			  struct rfs_extent *left)
{
	int ret;

	if (off == 0)
		return -ENOENT;
	ret = tree_find(fs, ino, fork, off - 1, left);
	if (ret < 0)
		return ret;
	return ret == 0 && left->off + left->len == off ? 0 : -ENOENT;
}

/* Would E make a record that check_rec (the node verifier) rejects? */
static int map_check(unsigned fork, const struct rfs_extent *e)
{
	if (e->len > RFS_MAX_EXTENT_LEN || e->off >= RFS_MAX_FILE_BLOCKS ||
	    e->len > RFS_MAX_FILE_BLOCKS - e->off)
		return -EFBIG;
	if (fork > RFS_FORK_COW || e->len == 0 || e->pblk == 0 ||
	    (e->flags & ~(uint32_t)RFS_BMAP_UNWRITTEN) || e->pblk + e->len < e->pblk)
		return -EINVAL;
	return 0;
}

static int tree_map(struct rfs_fs *fs, rfs_ino_t ino, unsigned fork, const struct rfs_extent *e)
{
	struct rfs_extent m = *e, left, right;
	int ret, lret, merge_right;

	ret = tree_find(fs, ino, fork, e->off, &right);
	if (ret == 0 || (ret == 1 && right.off < e->off + e->len))
		return -EUCLEAN; /* already mapped: the caller's map is corrupt */
	if (ret < 0 && ret != -ENOENT)
		return ret;
	/* Both lookups before any change: an error leaves the map as it was. */
	lret = left_neighbour(fs, ino, fork, e->off, &left);
	if (lret && lret != -ENOENT)
		return lret;
	merge_right = ret == 1 && can_merge(&m, &right);
	if (merge_right) {
		ret = rec_delete(fs, ino, fork, right.off);
		if (ret)
			return ret;
		m.len += right.len;
	}
	if (!lret && can_merge(&left, &m)) {
		left.len += m.len;
		left.tid = m.tid;
		return rec_update(fs, ino, fork, &left);
	}
	return rec_insert(fs, ino, fork, &m);
}

/*
 * Removes [A, B) from extent E (which contains it):
 *
 *   E.off        A          B          E.end
 *   |--- keep ---|== gone ==|-- keep --|
 */
static int cut_extent(struct rfs_fs *fs, rfs_ino_t ino, unsigned fork, const struct rfs_extent *e,
		      fileoff_t a, fileoff_t b)
{
	struct rfs_extent head = *e, tail = *e;
	int ret = 0;

	head.len = a - e->off;
	tail.off = b;
	tail.pblk = e->pblk + (b - e->off);
	tail.len = e->off + e->len - b;
	/* The tail first: its insert is what may fail for space (a node
	 * split), and then nothing has changed; shortening the head in place
	 * or deleting it needs no block. */
	if (tail.len)
		ret = rec_insert(fs, ino, fork, &tail);
	if (!ret && head.len)
		ret = rec_update(fs, ino, fork, &head);
	else if (!ret)
		ret = rec_delete(fs, ino, fork, e->off);
	if (ret && tail.len && ret != -ENOSPC)
		rec_delete(fs, ino, fork, tail.off); /* best effort: the head stayed */
	return ret;
}

static int tree_unmap(struct rfs_fs *fs, rfs_ino_t ino, unsigned fork, fileoff_t off, extlen_t len,
		      unsigned max_recs, rfs_release_fn release, void *arg, fileoff_t *next)
{
	fileoff_t end = bmap_clip_end(off, len), done = bmap_range_end(off, len);
	unsigned n;
	int ret = 0;

	*next = off;
	for (n = 0; off < end && n < max_recs; n++) {
		struct rfs_extent e;
		fileoff_t a, b;

		ret = tree_find(fs, ino, fork, off, &e);
		if (ret == -ENOENT || (ret >= 0 && e.off >= end)) {
			off = end;
			ret = 0;
			break;
		}
		if (ret < 0)
			break;
		a = RFS_MAX(off, e.off);
		b = RFS_MIN(end, e.off + e.len);
		ret = cut_extent(fs, ino, fork, &e, a, b);
		if (ret)
			break;
		off = b; /* unmapped up to here, even if the release fails */
		if (release)
			ret = release(arg, e.pblk + (a - e.off), b - a, e.flags);
		if (ret)
			break;
	}
	/* Done: report OFF+LEN even when the range reaches past the largest
	 * offset, or the caller's loop would never see its end. */
	*next = !ret && off >= end ? done : off;
	return ret;
}

/* --- data forks kept in the inode record (RFS_INLINE_EXTENTS) ---------------- */

/* A data fork as its inode holds it, with room for one extent more than
 * fits: a map or a split that outgrows the inode moves it to the tree. */
struct ifork {
	struct rfs_inode inode;
	struct rfs_extent e[RFS_INLINE_EXTS + 1];
	unsigned n;
};

/* Decodes the inline extents, checking them as check_rec checks records,
 * and that they are sorted and do not overlap. */
static int ifork_decode(struct ifork *f)
{
	const struct rfs_inode *in = &f->inode;
	unsigned i;

	if (!S_ISREG(in->mode) || in->inline_len % sizeof(struct rfs_inline_ext) ||
	    in->inline_len > RFS_INLINE_EXTS * sizeof(struct rfs_inline_ext))
		return -EUCLEAN;
	f->n = in->inline_len / sizeof(struct rfs_inline_ext);
	for (i = 0; i < f->n; i++) {
		struct rfs_inline_ext x;
		struct rfs_extent *e = &f->e[i];

		memcpy(&x, in->inline_data + i * sizeof(x), sizeof(x));
		e->off = le64_get(x.off);
		e->pblk = le64_get(x.pblk);
		e->len = le32_get(x.len);
		e->flags = le32_get(x.flags);
		e->tid = in->tid;
		if (map_check(RFS_FORK_DATA, e) || (i && e[-1].off + e[-1].len > e->off))
			return -EUCLEAN;
	}
	return 0;
}

/* 1 if INO's FORK is kept inline (*F holds it), 0 if it is in the tree
 * (the CoW fork always is; so is the fork of an inode with no record). */
static int ifork_load(struct rfs_fs *fs, rfs_ino_t ino, unsigned fork, struct ifork *f)
{
	int ret;

	if (fork != RFS_FORK_DATA || !(fs->sb.feat_incompat & RFS_FEAT_INCOMPAT_INLINE_FORK))
		return 0; /* without the feature no fork is inline: no inode read */
	ret = inode_read(fs, ino, &f->inode);
	if (ret == -ENOENT)
		return 0;
	if (ret)
		return ret;
	if (f->inode.inline_type != RFS_INLINE_EXTENTS)
		return 0;
	ret = ifork_decode(f);
	return ret ? ret : 1;
}

/* Sets the inline area of F's inode, as stored now (only the inline area
 * changes: nothing else of F's copy is written back), to TYPE with F's
 * extents (RFS_INLINE_EXTENTS, at most RFS_INLINE_EXTS of them) or empty. */
static int ifork_write(struct rfs_fs *fs, struct ifork *f, uint16_t type)
{
	struct rfs_inode cur;
	unsigned i, n = type == RFS_INLINE_EXTENTS ? f->n : 0;
	int ret = inode_read(fs, f->inode.ino, &cur);

	if (ret)
		return ret;
	for (i = 0; i < n; i++) {
		struct rfs_inline_ext x;

		x.off = le64_make(f->e[i].off);
		x.pblk = le64_make(f->e[i].pblk);
		x.len = le32_make((uint32_t)f->e[i].len);
		x.flags = le32_make(f->e[i].flags);
		memcpy(cur.inline_data + i * sizeof(x), &x, sizeof(x));
	}
	cur.inline_type = type;
	cur.inline_len = (uint16_t)(n * sizeof(struct rfs_inline_ext));
	ret = inode_write_all(fs, &cur);
	if (!ret)
		f->inode = cur;
	return ret;
}

/* Writes F back into its inode record. */
static int ifork_store(struct rfs_fs *fs, struct ifork *f)
{
	return ifork_write(fs, f, RFS_INLINE_EXTENTS);
}

/*
 * Moves F's extents to the tree and leaves the inode without an inline
 * fork. On failure (-ENOSPC splitting a node) the records already
 * inserted are deleted again: the fork stays inline as it was stored.
 */
static int ifork_to_tree(struct rfs_fs *fs, struct ifork *f)
{
	rfs_ino_t ino = f->inode.ino;
	unsigned i, done;
	int ret = 0;

	for (done = 0; done < f->n && !ret; done++)
		ret = rec_insert(fs, ino, RFS_FORK_DATA, &f->e[done]);
	if (ret)
		done--; /* the failed insert changed nothing */
	if (!ret) {
		ret = ifork_write(fs, f, RFS_INLINE_NONE);
		if (!ret)
			return 0;
	}
	for (i = 0; i < done; i++)
		rec_delete(fs, ino, RFS_FORK_DATA, f->e[i].off);
	return ret;
}

static void ifork_insert_at(struct ifork *f, unsigned i, const struct rfs_extent *e)
{
	memmove(&f->e[i + 1], &f->e[i], (f->n - i) * sizeof(f->e[0]));
	f->e[i] = *e;
	f->n++;
}

static void ifork_remove_at(struct ifork *f, unsigned i)
{
	memmove(&f->e[i], &f->e[i + 1], (f->n - i - 1) * sizeof(f->e[0]));
	f->n--;
}

/* The index of the first extent that ends after OFF (F->n if none). */
static unsigned ifork_index(const struct ifork *f, fileoff_t off)
{
	unsigned i = 0;

	while (i < f->n && f->e[i].off + f->e[i].len <= off)
		i++;
	return i;
}

static int ifork_find(const struct ifork *f, fileoff_t off, struct rfs_extent *ext)
{
	unsigned i = ifork_index(f, off);

	if (i == f->n)
		return -ENOENT;
	*ext = f->e[i];
	return ext->off > off ? 1 : 0;
}

static int ifork_find_prev(const struct ifork *f, fileoff_t off, struct rfs_extent *ext)
{
	fileoff_t lim = RFS_MIN(off, RFS_MAX_FILE_BLOCKS - 1);
	unsigned i = f->n;

	while (i > 0 && f->e[i - 1].off > lim)
		i--;
	if (i == 0)
		return -ENOENT;
	*ext = f->e[i - 1];
	return 0;
}

/* As tree_map, merging in the same order (right, then left). */
static int ifork_map(struct rfs_fs *fs, struct ifork *f, const struct rfs_extent *e)
{
	struct rfs_extent m = *e;
	unsigned i = ifork_index(f, e->off);

	if (i < f->n && f->e[i].off < e->off + e->len)
		return -EUCLEAN; /* already mapped: the caller's map is corrupt */
	if (i < f->n && can_merge(&m, &f->e[i])) {
		m.len += f->e[i].len;
		ifork_remove_at(f, i);
	}
	if (i > 0 && can_merge(&f->e[i - 1], &m))
		f->e[i - 1].len += m.len;
	else
		ifork_insert_at(f, i, &m);
	return f->n > RFS_INLINE_EXTS ? ifork_to_tree(fs, f) : ifork_store(fs, f);
}

/* Removes [A, B) from extent I (which contains it), as cut_extent. */
static void ifork_cut(struct ifork *f, unsigned i, fileoff_t a, fileoff_t b)
{
	struct rfs_extent e = f->e[i], tail = e;

	tail.off = b;
	tail.pblk = e.pblk + (b - e.off);
	tail.len = e.off + e.len - b;
	f->e[i].len = a - e.off;
	if (f->e[i].len == 0)
		ifork_remove_at(f, i--);
	if (tail.len)
		ifork_insert_at(f, i + 1, &tail);
}

/* As tree_unmap. A cut that splits an extent of a full fork moves the
 * fork to the tree first; the tree goes on from there. Each cut is stored
 * before its blocks are released, as the tree's are: a store that fails
 * (a split of the inode tree's leaf on a full disk) leaves that cut
 * undone and nothing released, never blocks freed that a file maps. */
static int ifork_unmap(struct rfs_fs *fs, struct ifork *f, fileoff_t off, extlen_t len,
		       unsigned max_recs, rfs_release_fn release, void *arg, fileoff_t *next)
{
	fileoff_t end = bmap_clip_end(off, len), done = bmap_range_end(off, len);
	unsigned n;
	int ret = 0;

	for (n = 0; off < end && n < max_recs; n++) {
		unsigned i = ifork_index(f, off);
		struct rfs_extent e;
		fileoff_t a, b;

		if (i == f->n || f->e[i].off >= end) {
			off = end;
			break;
		}
		e = f->e[i];
		a = RFS_MAX(off, e.off);
		b = RFS_MIN(end, e.off + e.len);
		if (a > e.off && b < e.off + e.len && f->n == RFS_INLINE_EXTS) {
			ret = ifork_to_tree(fs, f);
			if (ret)
				break;
			return tree_unmap(fs, f->inode.ino, RFS_FORK_DATA, off, done - off,
					  max_recs - n, release, arg, next);
		}
		ifork_cut(f, i, a, b);
		ret = ifork_store(fs, f);
		if (ret)
			break;
		off = b; /* unmapped up to here, even if the release fails */
		if (release)
			ret = release(arg, e.pblk + (a - e.off), b - a, e.flags);
		if (ret)
			break;
	}
	*next = !ret && off >= end ? done : off;
	return ret;
}

/* --- the interface: either representation -------------------------------------- */

uint32_t bmap_inline_credits(const struct rfs_fs *fs)
{
	return (RFS_INLINE_EXTS + 1) * btree_record_credits(&fs->bmap) +
	       btree_record_credits(&fs->inodes);
}

int bmap_find(struct rfs_fs *fs, rfs_ino_t ino, unsigned fork, fileoff_t off,
	      struct rfs_extent *ext)
{
	struct ifork f;
	int ret;

	if (fork > RFS_FORK_COW)
		return -EINVAL;
	ret = ifork_load(fs, ino, fork, &f);
	if (ret < 0)
		return ret;
	return ret ? ifork_find(&f, off, ext) : tree_find(fs, ino, fork, off, ext);
}

int bmap_find_prev(struct rfs_fs *fs, rfs_ino_t ino, unsigned fork, fileoff_t off,
		   struct rfs_extent *ext)
{
	struct ifork f;
	int ret;

	if (fork > RFS_FORK_COW)
		return -EINVAL;
	ret = ifork_load(fs, ino, fork, &f);
	if (ret < 0)
		return ret;
	return ret ? ifork_find_prev(&f, off, ext) : tree_find_prev(fs, ino, fork, off, ext);
}

int bmap_map(struct rfs_fs *fs, rfs_ino_t ino, unsigned fork, const struct rfs_extent *e)
{
	struct ifork f;
	int ret = map_check(fork, e);

	if (ret)
		return ret;
	ret = ifork_load(fs, ino, fork, &f);
	if (ret < 0)
		return ret;
	return ret ? ifork_map(fs, &f, e) : tree_map(fs, ino, fork, e);
}

int bmap_unmap(struct rfs_fs *fs, rfs_ino_t ino, unsigned fork, fileoff_t off, extlen_t len,
	       unsigned max_recs, rfs_release_fn release, void *arg, fileoff_t *next)
{
	struct ifork f;
	int ret;

	*next = off;
	if (fork > RFS_FORK_COW || max_recs == 0)
		return -EINVAL; /* max_recs 0 would never make progress */
	ret = ifork_load(fs, ino, fork, &f);
	if (ret < 0)
		return ret;
	if (ret)
		return ifork_unmap(fs, &f, off, len, max_recs, release, arg, next);
	return tree_unmap(fs, ino, fork, off, len, max_recs, release, arg, next);
}

int bmap_data_inline(struct rfs_fs *fs, rfs_ino_t ino)
{
	struct rfs_inode in;
	struct rfs_extent e;
	int ret = inode_read(fs, ino, &in);

	if (ret)
		return ret == -ENOENT ? 0 : ret; /* no record: forks in the tree */
	if (!S_ISREG(in.mode) || in.inline_type != RFS_INLINE_NONE ||
	    !(fs->sb.feat_incompat & RFS_FEAT_INCOMPAT_INLINE_FORK))
		return 0;
	ret = tree_find(fs, ino, RFS_FORK_DATA, 0, &e);
	if (ret != -ENOENT)
		return ret < 0 ? ret : 0; /* something is still mapped */
	in.inline_type = RFS_INLINE_EXTENTS;
	in.inline_len = 0;
	return inode_write_all(fs, &in);
}

int bmap_any(struct rfs_fs *fs, rfs_ino_t ino, unsigned fork, fileoff_t off, extlen_t len)
{
	struct rfs_extent e;
	int ret = bmap_find(fs, ino, fork, off, &e);

	if (ret == -ENOENT)
		return 0;
	if (ret < 0)
		return ret;
	return ret == 0 || e.off < bmap_clip_end(off, len);
}

int bmap_count(struct rfs_fs *fs, rfs_ino_t ino, unsigned fork, fileoff_t off, extlen_t len,
	       uint64_t *blocks)
{
	fileoff_t end = bmap_clip_end(off, len); /* OFF + LEN may wrap */
	struct ifork f;
	int ret, inl;

	*blocks = 0;
	if (fork > RFS_FORK_COW)
		return -EINVAL;
	inl = ifork_load(fs, ino, fork, &f);
	if (inl < 0)
		return inl;
	while (off < end) {
		struct rfs_extent e;
		ret = inl ? ifork_find(&f, off, &e) : tree_find(fs, ino, fork, off, &e);
		if (ret == -ENOENT || (ret >= 0 && e.off >= end))
			return 0;
		if (ret < 0)
			return ret;
		*blocks += RFS_MIN(end, e.off + e.len) - RFS_MAX(off, e.off);
		off = e.off + e.len;
	}
	return 0;
}
