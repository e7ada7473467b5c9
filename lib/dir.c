/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * dir.c - directory entries: hashing, lookup and insertion.
 */
#include "dir.h"

#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "util.h"

#define HASH_MASK ((1ull << RFS_DIR_HASH_BITS) - 1)
#define SEQ_MAX	  ((1u << RFS_DIR_SEQ_BITS) - 1)

/* Builds the record of entry NAME -> INO in DIR at COOKIE into REC;
 * returns its length. */
static size_t dirent_encode(uint8_t *rec, rfs_ino_t dir, uint64_t cookie, rfs_ino_t ino,
			    uint8_t ftype, const void *name, size_t len)
{
	struct rfs_dirent d;

	memset(&d, 0, sizeof(d));
	d.key.dir = le64_make(dir);
	d.key.cookie = le64_make(cookie);
	d.ino = le64_make(ino);
	d.ftype = ftype;
	d.namelen = (uint8_t)len;
	memcpy(rec, &d, sizeof(d));
	memcpy(rec + sizeof(d), name, len);
	return sizeof(d) + len;
}

int dir_name_valid(const void *name, size_t len)
{
	const char *s = name;

	if (len == 0)
		return -EINVAL;
	if (len > RFS_NAME_MAX)
		return -ENAMETOOLONG;
	if (memchr(s, '/', len) || memchr(s, '\0', len))
		return -EINVAL;
	if ((len == 1 && s[0] == '.') || (len == 2 && s[0] == '.' && s[1] == '.'))
		return -EINVAL;
	return 0;
}

static int dir_check_rec(const void *rec, size_t len, char *why, size_t whylen)
{
	struct rfs_dirent d;

	memcpy(&d, rec, sizeof(d));
	if (len != sizeof(d) + d.namelen ||
	    dir_name_valid((const uint8_t *)rec + sizeof(d), d.namelen)) {
		snprintf(why, whylen, "malformed directory entry");
		return -EUCLEAN;
	}
	if (le64_get(d.ino) == 0 || le64_get(d.key.cookie) < 3) {
		snprintf(why, whylen, "directory entry with inode 0 or cookie < 3");
		return -EUCLEAN;
	}
	return 0;
}

const struct rfs_btree_ops rfs_dir_ops = {
	.tree_type = RFS_TREE_DIR,
	.name = "directories",
	.key_size = sizeof(struct rfs_dirent_key),
	.min_rec = sizeof(struct rfs_dirent) + 1,
	.max_rec = sizeof(struct rfs_dirent) + RFS_NAME_MAX,
	.cmp_key = btree_cmp_le64x2,
	.check_rec = dir_check_rec,
	.alloc_block = alloc_tree_block,
	.free_block = free_tree_block,
	.root_changed = fs_tree_root_changed,
};

/* 64-bit FNV-1a with the per-filesystem seed folded into the offset
 * basis, reduced to 48 bits. The seed keeps one image's collisions from
 * being precomputed for every image. */
uint64_t dir_name_hash(uint64_t seed, const void *name, size_t len)
{
	const uint8_t *p = name;
	uint64_t h = 0xcbf29ce484222325ull ^ seed;
	size_t i;

	for (i = 0; i < len; i++) {
		h ^= p[i];
		h *= 0x100000001b3ull;
	}
	return (h ^ (h >> 48)) & HASH_MASK;
}

/*
 * Walks the entries of DIR whose cookie carries NAME's hash. Stops at
 * NAME (returns 0 with *COOKIE, *INO, *FTYPE set) or returns -ENOENT with
 * *FREE_SEQ the lowest unused sequence number for this hash.
 */
static int dir_scan_hash(struct rfs_fs *fs, rfs_ino_t dir, const void *name, size_t len,
			 uint64_t *cookie, rfs_ino_t *ino, uint8_t *ftype, uint32_t *free_seq)
{
	uint64_t hash = dir_name_hash(fs->sb.hash_seed, name, len);
	uint32_t seq = hash == 0 ? 3 : 0; /* cookies 0..2 are reserved */
	struct rfs_btree_cursor cur;
	struct rfs_dirent_key key;
	int ret;

	key.dir = le64_make(dir);
	key.cookie = le64_make(hash << RFS_DIR_SEQ_BITS);
	btree_cursor_init(&cur, &fs->dirs);
	for (ret = btree_seek(&cur, &key, RFS_LOOKUP_GE); !ret; ret = btree_next(&cur)) {
		size_t rlen;
		const uint8_t *rec = btree_cursor_rec(&cur, &rlen);
		struct rfs_dirent d;
		uint64_t c;

		memcpy(&d, rec, sizeof(d));
		c = le64_get(d.key.cookie);
		if (le64_get(d.key.dir) != dir || (c >> RFS_DIR_SEQ_BITS) != hash)
			break;
		if (d.namelen == len && memcmp(rec + sizeof(d), name, len) == 0) {
			*cookie = c;
			*ino = le64_get(d.ino);
			*ftype = d.ftype;
			btree_cursor_done(&cur);
			return 0;
		}
		if ((c & SEQ_MAX) == seq)
			seq++;
	}
	btree_cursor_done(&cur);
	if (ret && ret != -ENOENT)
		return ret;
	*free_seq = seq;
	return -ENOENT;
}

int dir_lookup(struct rfs_fs *fs, rfs_ino_t dir, const void *name, size_t len, rfs_ino_t *ino,
	       uint8_t *ftype, uint64_t *cookie)
{
	uint64_t c;
	uint32_t seq;
	int ret = dir_name_valid(name, len);

	if (ret)
		return ret;
	ret = dir_scan_hash(fs, dir, name, len, &c, ino, ftype, &seq);
	if (!ret && cookie)
		*cookie = c;
	return ret;
}

int dir_remove(struct rfs_fs *fs, rfs_ino_t dir, const void *name, size_t len, rfs_ino_t *ino)
{
	struct rfs_dirent_key key;
	uint64_t c;
	uint8_t ftype;
	uint32_t seq;
	int ret = dir_name_valid(name, len);

	if (ret)
		return ret;
	ret = dir_scan_hash(fs, dir, name, len, &c, ino, &ftype, &seq);
	if (ret)
		return ret;
	key.dir = le64_make(dir);
	key.cookie = le64_make(c);
	return btree_delete(&fs->dirs, &key);
}

int dir_replace(struct rfs_fs *fs, rfs_ino_t dir, const void *name, size_t len, rfs_ino_t ino,
		uint8_t ftype)
{
	uint8_t rec[sizeof(struct rfs_dirent) + RFS_NAME_MAX];
	rfs_ino_t old;
	uint8_t oldtype;
	uint64_t c;
	uint32_t seq;
	int ret = dir_name_valid(name, len);

	if (ret)
		return ret;
	ret = dir_scan_hash(fs, dir, name, len, &c, &old, &oldtype, &seq);
	if (ret)
		return ret;
	return btree_update(&fs->dirs, rec, dirent_encode(rec, dir, c, ino, ftype, name, len));
}

int dir_iterate(struct rfs_fs *fs, rfs_ino_t dir, uint64_t from, rfs_dir_fn fn, void *arg)
{
	struct rfs_btree_cursor cur;
	struct rfs_dirent_key key;
	int ret;

	key.dir = le64_make(dir);
	key.cookie = le64_make(from);
	btree_cursor_init(&cur, &fs->dirs);
	for (ret = btree_seek(&cur, &key, RFS_LOOKUP_GE); !ret; ret = btree_next(&cur)) {
		const uint8_t *rec = btree_cursor_rec(&cur, NULL);
		struct rfs_dirent d;

		memcpy(&d, rec, sizeof(d));
		if (le64_get(d.key.dir) != dir) {
			ret = -ENOENT;
			break;
		}
		ret = fn(arg, le64_get(d.key.cookie), le64_get(d.ino), d.ftype,
			 (const char *)rec + sizeof(d), d.namelen);
		if (ret)
			break;
	}
	btree_cursor_done(&cur);
	if (ret == -ENOENT || ret == 1)
		return 0;
	return ret;
}

static int found_one(void *arg, uint64_t cookie, rfs_ino_t ino, uint8_t ftype, const char *name,
		     size_t len)
{
	(void)arg, (void)cookie, (void)ino, (void)ftype, (void)name, (void)len;
	return 2;
}

int dir_is_empty(struct rfs_fs *fs, rfs_ino_t dir)
{
	int ret = dir_iterate(fs, dir, 0, found_one, NULL);
	return ret == 2 ? 0 : ret < 0 ? ret : 1;
}

int orphan_add(struct rfs_fs *fs, rfs_ino_t ino)
{
	uint8_t rec[sizeof(struct rfs_dirent) + 1];

	return btree_insert(&fs->dirs, rec,
			    dirent_encode(rec, RFS_ORPHAN_DIR, ino, ino, 0, "#", 1));
}

int orphan_remove(struct rfs_fs *fs, rfs_ino_t ino)
{
	struct rfs_dirent_key key = {le64_make(RFS_ORPHAN_DIR), le64_make(ino)};
	return btree_delete(&fs->dirs, &key);
}

int dir_add(struct rfs_fs *fs, rfs_ino_t dir, const void *name, size_t len, rfs_ino_t ino,
	    uint8_t ftype, uint64_t *cookie)
{
	uint8_t rec[sizeof(struct rfs_dirent) + RFS_NAME_MAX];
	uint64_t c;
	rfs_ino_t old;
	uint8_t oldtype;
	uint32_t seq;
	int ret = dir_name_valid(name, len);

	if (ret)
		return ret;
	ret = dir_scan_hash(fs, dir, name, len, &c, &old, &oldtype, &seq);
	if (ret == 0)
		return -EEXIST;
	if (ret != -ENOENT)
		return ret;
	if (seq > SEQ_MAX)
		return -ENOSPC; /* 32768 names with one hash value */
	c = (dir_name_hash(fs->sb.hash_seed, name, len) << RFS_DIR_SEQ_BITS) | seq;
	ret = btree_insert(&fs->dirs, rec, dirent_encode(rec, dir, c, ino, ftype, name, len));
	if (!ret && cookie)
		*cookie = c;
	return ret;
}
