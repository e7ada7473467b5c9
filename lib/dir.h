/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * dir.h - directory entries in the directory tree.
 *
 * One global tree keyed by (directory inode, cookie) where cookie =
 * (48-bit seeded name hash << 15) | collision sequence. Lookup by name is a
 * range scan over one hash value: O(log n) in any directory size. The
 * cookie is the readdir offset and stays valid while entries come and go.
 * "." and ".." are not stored: ".." is the directory inode's parent field.
 */
#ifndef RFS_DIR_H
#define RFS_DIR_H

#include <stddef.h>
#include <stdint.h>

#include "fs.h"

extern const struct rfs_btree_ops rfs_dir_ops;

uint64_t dir_name_hash(uint64_t seed, const void *name, size_t len);

/* 0 if NAME (LEN bytes) is a valid entry name: 1..255 bytes, no '/' or
 * NUL, not "." or "..". -ENAMETOOLONG or -EINVAL otherwise. */
int dir_name_valid(const void *name, size_t len);

/* Adds NAME -> INO (of DT_* type FTYPE) to directory DIR. -EEXIST if the
 * name is there. *COOKIE (if not NULL) receives the entry's cookie. */
int dir_add(struct rfs_fs *fs, rfs_ino_t dir, const void *name, size_t len, rfs_ino_t ino,
	    uint8_t ftype, uint64_t *cookie);
/* Looks NAME up in DIR; -ENOENT if absent. */
int dir_lookup(struct rfs_fs *fs, rfs_ino_t dir, const void *name, size_t len, rfs_ino_t *ino,
	       uint8_t *ftype, uint64_t *cookie);

/* Makes the existing entry NAME of DIR name INO (of type FTYPE) instead:
 * the record is rewritten in place (same key and length), so it needs no
 * block and cannot fail for space (rename over an existing name). -ENOENT
 * if NAME is absent. */
int dir_replace(struct rfs_fs *fs, rfs_ino_t dir, const void *name, size_t len, rfs_ino_t ino,
		uint8_t ftype);

/* Removes NAME from DIR; *INO receives what it named. -ENOENT if absent. */
int dir_remove(struct rfs_fs *fs, rfs_ino_t dir, const void *name, size_t len, rfs_ino_t *ino);

/* Calls FN for each entry of DIR with cookie >= FROM, in cookie order,
 * until FN returns non-zero (which dir_iterate then returns; 1 stops
 * without error). */
typedef int (*rfs_dir_fn)(void *arg, uint64_t cookie, rfs_ino_t ino, uint8_t ftype,
			  const char *name, size_t len);
int dir_iterate(struct rfs_fs *fs, rfs_ino_t dir, uint64_t from, rfs_dir_fn fn, void *arg);
/*
 * The orphan list: inodes with no name left that are still open (or whose
 * freeing was cut short by a crash). Stored in the directory tree as the
 * entries of pseudo-directory RFS_ORPHAN_DIR (inode 0, which never exists)
 * with cookie = inode number, so a crash cannot leak them: mount frees them.
 */
#define RFS_ORPHAN_DIR 0
int orphan_add(struct rfs_fs *fs, rfs_ino_t ino);
int orphan_remove(struct rfs_fs *fs, rfs_ino_t ino);

/* 1 if DIR has no entries, 0 if it has, or a negative error. */
int dir_is_empty(struct rfs_fs *fs, rfs_ino_t dir);

#endif
