/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * xattr.c - extended attributes: chunked records in one B+tree.
 */
#include "xattr.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "dir.h"
#include "util.h"

#define HDR	  sizeof(struct rfs_xattr_rec)
#define KEY_SIZE  20
#define SEQ_MASK  ((1u << RFS_DIR_SEQ_BITS) - 1)
#define CHUNK_MAX (RFS_XATTR_REC_MAX - HDR)

static int xattr_cmp(const void *a, const void *b)
{
	const uint8_t *x = a, *y = b;
	uint32_t s, t;
	int c = btree_cmp_le64x2(a, b);

	if (c)
		return c;
	memcpy(&s, x + 16, 4);
	memcpy(&t, y + 16, 4);
	s = le32toh(s), t = le32toh(t);
	return s < t ? -1 : s > t;
}

/*
 * Chunk 0 has a name, later chunks none; a record never carries more value
 * bytes than the whole value, a later chunk at least one, and chunk C > 0
 * starts past chunk 0 (at least 31 bytes) and C - 1 full chunks.
 */
static int xattr_check_rec(const void *rec, size_t len, char *why, size_t whylen)
{
	struct rfs_xattr_rec r;
	uint32_t chunk, vlen;
	size_t data;

	memcpy(&r, rec, HDR);
	chunk = le32_get(r.chunk);
	vlen = le32_get(r.value_len);
	data = len >= HDR + r.namelen ? len - HDR - r.namelen : 0;
	if (vlen > RFS_XATTR_SIZE_MAX || (chunk == 0) != (r.namelen != 0) ||
	    len < HDR + r.namelen || data > vlen ||
	    (chunk &&
	     (data == 0 ||
	      (uint64_t)(chunk - 1) * CHUNK_MAX + (CHUNK_MAX - RFS_XATTR_NAME_MAX) >= vlen))) {
		snprintf(why, whylen, "malformed extended attribute record");
		return -EUCLEAN;
	}
	return 0;
}

const struct rfs_btree_ops rfs_xattr_ops = {
	.tree_type = RFS_TREE_XATTR,
	.name = "extended attributes",
	.key_size = KEY_SIZE,
	.min_rec = HDR,
	.max_rec = RFS_XATTR_REC_MAX,
	.cmp_key = xattr_cmp,
	.check_rec = xattr_check_rec,
	.alloc_block = alloc_tree_block,
	.free_block = free_tree_block,
	.root_changed = fs_tree_root_changed,
};

static void key_make(struct rfs_xattr_rec *k, rfs_ino_t ino, uint64_t cookie, uint32_t chunk)
{
	memset(k, 0, HDR);
	k->ino = le64_make(ino);
	k->cookie = le64_make(cookie);
	k->chunk = le32_make(chunk);
}

static int name_check(const char *name, size_t *len)
{
	*len = strlen(name);
	return *len == 0 || *len > RFS_XATTR_NAME_MAX ? -ERANGE : 0;
}

/* Value bytes chunk 0 can hold after a name of NAMELEN bytes. */
static size_t chunk0_cap(size_t namelen)
{
	return CHUNK_MAX - namelen;
}

/* Records of a VLEN-byte value after a name of NLEN bytes. */
static uint32_t nr_chunks(size_t nlen, size_t vlen)
{
	if (vlen <= chunk0_cap(nlen))
		return 1;
	return (uint32_t)(1 + (vlen - chunk0_cap(nlen) + CHUNK_MAX - 1) / CHUNK_MAX);
}

/*
 * Finds NAME among INO's attributes. Returns 0 with *COOKIE and *VLEN set,
 * or -ENODATA with *FREE_SEQ the lowest unused sequence for its hash.
 */
static int find(struct rfs_fs *fs, rfs_ino_t ino, const char *name, size_t nlen, uint64_t *cookie,
		size_t *vlen, uint32_t *free_seq)
{
	uint64_t hash = dir_name_hash(fs->sb.hash_seed, name, nlen);
	uint32_t seq = 0;
	struct rfs_btree_cursor cur;
	struct rfs_xattr_rec key;
	int ret;

	key_make(&key, ino, hash << RFS_DIR_SEQ_BITS, 0);
	btree_cursor_init(&cur, &fs->xattrs);
	for (ret = btree_seek(&cur, &key, RFS_LOOKUP_GE); !ret; ret = btree_next(&cur)) {
		const uint8_t *rec = btree_cursor_rec(&cur, NULL);
		struct rfs_xattr_rec r;
		uint64_t c;

		memcpy(&r, rec, HDR);
		c = le64_get(r.cookie);
		if (le64_get(r.ino) != ino || (c >> RFS_DIR_SEQ_BITS) != hash)
			break;
		if (le32_get(r.chunk) != 0)
			continue;
		if (r.namelen == nlen && !memcmp(rec + HDR, name, nlen)) {
			*cookie = c;
			*vlen = le32_get(r.value_len);
			btree_cursor_done(&cur);
			return 0;
		}
		if ((c & SEQ_MASK) == seq)
			seq++;
	}
	btree_cursor_done(&cur);
	if (ret && ret != -ENOENT)
		return ret;
	*free_seq = seq;
	return -ENODATA;
}

/* Copies the value of the attribute at COOKIE (VLEN bytes) into BUF.
 * -EUCLEAN unless chunks 0, 1, ... each carry the whole value's length and
 * together exactly VLEN bytes. */
static int read_value(struct rfs_fs *fs, rfs_ino_t ino, uint64_t cookie, size_t vlen, uint8_t *buf)
{
	struct rfs_btree_cursor cur;
	struct rfs_xattr_rec key;
	size_t got = 0;
	uint32_t chunk = 0;
	int ret;

	key_make(&key, ino, cookie, 0);
	btree_cursor_init(&cur, &fs->xattrs);
	for (ret = btree_seek(&cur, &key, RFS_LOOKUP_EQ); !ret && got < vlen;
	     ret = btree_next(&cur)) {
		size_t len;
		const uint8_t *rec = btree_cursor_rec(&cur, &len);
		struct rfs_xattr_rec r;
		size_t n;

		memcpy(&r, rec, HDR);
		if (le64_get(r.ino) != ino || le64_get(r.cookie) != cookie ||
		    le32_get(r.chunk) != chunk++ || le32_get(r.value_len) != vlen)
			break;
		n = len - HDR - r.namelen;
		if (n > vlen - got)
			break;
		memcpy(buf + got, rec + HDR + r.namelen, n);
		got += n;
	}
	btree_cursor_done(&cur);
	if (ret && ret != -ENOENT)
		return ret;
	return got == vlen ? 0 : -EUCLEAN;
}

int xattr_get(struct rfs_fs *fs, rfs_ino_t ino, const char *name, void *buf, size_t cap,
	      size_t *len)
{
	uint64_t cookie;
	uint32_t seq;
	size_t nlen;
	int ret = name_check(name, &nlen);

	if (ret)
		return ret;
	ret = find(fs, ino, name, nlen, &cookie, len, &seq);
	if (ret || cap == 0)
		return ret;
	if (cap < *len)
		return -ERANGE;
	return read_value(fs, ino, cookie, *len, buf);
}

/* Deletes chunks 0 .. CHUNKS-1 of the attribute at COOKIE. */
static int delete_chunks(struct rfs_fs *fs, rfs_ino_t ino, uint64_t cookie, uint32_t chunks)
{
	struct rfs_xattr_rec key;
	uint32_t i;
	int ret = 0;

	for (i = 0; i < chunks && !ret; i++) {
		key_make(&key, ino, cookie, i);
		ret = btree_delete(&fs->xattrs, &key);
	}
	return ret == -ENOENT ? -EUCLEAN : ret;
}

/* Deletes the records of the attribute at COOKIE. */
static int delete_value(struct rfs_fs *fs, rfs_ino_t ino, uint64_t cookie, size_t vlen, size_t nlen)
{
	return delete_chunks(fs, ino, cookie, nr_chunks(nlen, vlen));
}

/* Inserts the attribute at COOKIE, all or nothing: when a chunk cannot be
 * inserted (-ENOSPC, say), the chunks already in are deleted again. */
static int insert_value(struct rfs_fs *fs, rfs_ino_t ino, uint64_t cookie, const char *name,
			size_t nlen, const uint8_t *value, size_t vlen)
{
	uint8_t rec[RFS_XATTR_REC_MAX];
	struct rfs_xattr_rec *r = (struct rfs_xattr_rec *)rec;
	size_t done = 0;
	uint32_t chunk = 0;
	int ret = 0;

	do {
		size_t cap = chunk ? CHUNK_MAX : chunk0_cap(nlen), n = RFS_MIN(cap, vlen - done);
		size_t namel = chunk ? 0 : nlen;

		key_make(r, ino, cookie, chunk);
		r->value_len = le32_make((uint32_t)vlen);
		r->namelen = (uint8_t)namel;
		memcpy(rec + HDR, name, namel);
		if (n)
			memcpy(rec + HDR + namel, value + done, n);
		ret = btree_insert(&fs->xattrs, rec, HDR + namel + n);
		done += n;
		chunk++;
	} while (!ret && done < vlen);
	if (ret) {
		int undo = delete_chunks(fs, ino, cookie, chunk - 1);

		return undo ? undo : ret == -EEXIST ? -EUCLEAN : ret;
	}
	return 0;
}

/*
 * Replaces the value (OLD bytes) of the attribute at COOKIE, keeping the
 * cookie. When the new value cannot be inserted (-ENOSPC, say), the old
 * one is put back. A damaged old value (-EUCLEAN) is overwritten without that
 * safety net.
 */
static int replace_value(struct rfs_fs *fs, rfs_ino_t ino, uint64_t cookie, const char *name,
			 size_t nlen, size_t old, const uint8_t *value, size_t vlen)
{
	uint8_t *saved = malloc(old ? old : 1);
	int ret, undo;

	if (!saved)
		return -ENOMEM;
	ret = read_value(fs, ino, cookie, old, saved);
	if (ret == -EUCLEAN) {
		free(saved);
		saved = NULL;
	} else if (ret) {
		free(saved);
		return ret;
	}
	ret = delete_value(fs, ino, cookie, old, nlen);
	if (ret)
		goto out;
	ret = insert_value(fs, ino, cookie, name, nlen, value, vlen);
	if (ret && saved) {
		undo = insert_value(fs, ino, cookie, name, nlen, saved, old);
		if (undo)
			rfs_log(RFS_LOG_ERR,
				"inode %" PRIu64 ": extended attribute '%.*s' lost: %s", ino,
				(int)nlen, name, strerror(-undo));
	}
out:
	free(saved);
	return ret;
}

int xattr_set(struct rfs_fs *fs, rfs_ino_t ino, const char *name, const void *value, size_t len,
	      int flags)
{
	uint64_t cookie;
	uint32_t seq;
	size_t nlen, old;
	int ret = name_check(name, &nlen);

	if (ret)
		return ret;
	if (len > RFS_XATTR_SIZE_MAX)
		return -E2BIG;
	ret = find(fs, ino, name, nlen, &cookie, &old, &seq);
	if (ret && ret != -ENODATA)
		return ret;
	if (!ret && (flags & RFS_XATTR_CREATE))
		return -EEXIST;
	if (ret && (flags & RFS_XATTR_REPLACE))
		return -ENODATA;
	if (!ret)
		return replace_value(fs, ino, cookie, name, nlen, old, value, len);
	if (seq > SEQ_MASK)
		return -ENOSPC;
	cookie = (dir_name_hash(fs->sb.hash_seed, name, nlen) << RFS_DIR_SEQ_BITS) | seq;
	return insert_value(fs, ino, cookie, name, nlen, value, len);
}

int xattr_remove(struct rfs_fs *fs, rfs_ino_t ino, const char *name)
{
	uint64_t cookie;
	uint32_t seq;
	size_t nlen, old;
	int ret = name_check(name, &nlen);

	if (!ret)
		ret = find(fs, ino, name, nlen, &cookie, &old, &seq);
	return ret ? ret : delete_value(fs, ino, cookie, old, nlen);
}

int xattr_list(struct rfs_fs *fs, rfs_ino_t ino, char *buf, size_t cap, size_t *len)
{
	struct rfs_btree_cursor cur;
	struct rfs_xattr_rec key;
	int ret;

	*len = 0;
	key_make(&key, ino, 0, 0);
	btree_cursor_init(&cur, &fs->xattrs);
	for (ret = btree_seek(&cur, &key, RFS_LOOKUP_GE); !ret; ret = btree_next(&cur)) {
		const uint8_t *rec = btree_cursor_rec(&cur, NULL);
		struct rfs_xattr_rec r;

		memcpy(&r, rec, HDR);
		if (le64_get(r.ino) != ino)
			break;
		if (le32_get(r.chunk) != 0)
			continue;
		if (cap && *len + r.namelen + 1 > cap) {
			ret = -ERANGE;
			break;
		}
		if (cap) {
			memcpy(buf + *len, rec + HDR, r.namelen);
			buf[*len + r.namelen] = '\0';
		}
		*len += r.namelen + 1u;
	}
	btree_cursor_done(&cur);
	return ret == -ENOENT ? 0 : ret;
}

int xattr_remove_all(struct rfs_fs *fs, rfs_ino_t ino, unsigned max, int *done)
{
	struct rfs_xattr_rec key, rec;
	unsigned n;
	int ret = 0;

	*done = 0;
	for (n = 0; n < max && !ret; n++) {
		key_make(&key, ino, 0, 0);
		ret = btree_lookup(&fs->xattrs, &key, RFS_LOOKUP_GE, &rec, HDR, NULL);
		if (ret == -ENOENT || (!ret && le64_get(rec.ino) != ino)) {
			*done = 1;
			return 0;
		}
		if (!ret)
			ret = btree_delete(&fs->xattrs, &rec);
	}
	return ret;
}

/* LEN must be the larger of the old and the new value's length: replacing
 * a value dirties and frees the old value's blocks too. */
uint32_t xattr_credits(const struct rfs_fs *fs, size_t len)
{
	uint32_t per = btree_record_credits(&fs->xattrs);
	return (uint32_t)(2 * (len / CHUNK_MAX + 2)) * per + 2;
}
