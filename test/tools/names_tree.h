/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * names_tree.h - a small, fully consistent namespace built through lib/,
 * for fsck's tests (rfs_names) and fuzz target (test/fuzz/).
 */
#ifndef RFS_NAMES_TREE_H
#define RFS_NAMES_TREE_H

#include "fs.h"
#include "inode.h"

/*
 * In the root of a fresh filesystem (opened without a journal):
 *   d/      a directory, holding e/ and f2
 *   d/e/    an empty directory
 *   f       a file of 4 blocks in two extents that are not contiguous on
 *           disk, with an extended attribute; d/f2 is a second name of it
 *   g       an empty file
 *   s       a symlink to "f", stored inline
 */
struct names_tree {
	struct rfs_inode d, e, f, g, s;
};

int names_tree_build(struct rfs_fs *fs, struct names_tree *t);

#endif
