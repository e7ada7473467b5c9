/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * xattr.h - extended attributes in one global tree (RFS_TREE_XATTR).
 *
 * Names are whole ("user.foo"), 1..255 bytes; values up to 64 KiB, split
 * into chunks of at most one record each. Lookup is by seeded name hash,
 * O(log n) whatever the number of attributes. The daemon decides which
 * namespaces it accepts; this layer stores any name.
 */
#ifndef RFS_XATTR_H
#define RFS_XATTR_H

#include <stddef.h>
#include <stdint.h>

#include "fs.h"

extern const struct rfs_btree_ops rfs_xattr_ops;

enum rfs_xattr_flags {
	RFS_XATTR_CREATE = 1,  /* fail with -EEXIST if it exists */
	RFS_XATTR_REPLACE = 2, /* fail with -ENODATA if it does not */
};

/* Copies the value of NAME into BUF (CAP bytes; CAP 0 asks only the size)
 * and sets *LEN to its size. -ENODATA if absent, -ERANGE if CAP is too
 * small. */
int xattr_get(struct rfs_fs *fs, rfs_ino_t ino, const char *name, void *buf, size_t cap,
	      size_t *len);
/* Sets NAME to VALUE (LEN bytes). -ERANGE for a bad name length, -E2BIG
 * for a value over 64 KiB. */
int xattr_set(struct rfs_fs *fs, rfs_ino_t ino, const char *name, const void *value, size_t len,
	      int flags);
/* -ENODATA if absent. */
int xattr_remove(struct rfs_fs *fs, rfs_ino_t ino, const char *name);
/* Writes the names, each NUL-terminated, into BUF (CAP 0: size only);
 * -ERANGE if CAP is too small. */
int xattr_list(struct rfs_fs *fs, rfs_ino_t ino, char *buf, size_t cap, size_t *len);
/* Removes up to MAX records of INO's attributes; *DONE when none is left
 * (inode deletion in bounded transactions). */
int xattr_remove_all(struct rfs_fs *fs, rfs_ino_t ino, unsigned max, int *done);
/* Journal credits of setting or removing a value of LEN bytes. */
uint32_t xattr_credits(const struct rfs_fs *fs, size_t len);

#endif
