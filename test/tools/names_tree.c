/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * names_tree.c - the small namespace of names_tree.h.
 */
#include "names_tree.h"

#include <dirent.h>
#include <errno.h>
#include <string.h>

#include "alloc.h"
#include "bmap.h"
#include "dir.h"
#include "xattr.h"

static int add(struct rfs_fs *fs, rfs_ino_t dir, const char *name, struct rfs_inode *inode,
	       uint8_t ftype)
{
	return dir_add(fs, dir, name, strlen(name), inode->ino, ftype, NULL);
}

static int new_node(struct rfs_fs *fs, rfs_ino_t dir, const char *name, uint32_t mode,
		    struct rfs_inode *inode)
{
	int ret;

	inode_init_new(fs, inode, mode, 0, 0);
	if (S_ISDIR(mode)) {
		inode->nlink = 2;
		inode->parent = dir;
	}
	ret = inode_insert(fs, inode);
	return ret ? ret : add(fs, dir, name, inode, (uint8_t)((mode & S_IFMT) >> 12));
}

/* Adds 1 to the link count of directory DIR (a new subdirectory). */
static int one_more_link(struct rfs_fs *fs, rfs_ino_t dir)
{
	struct rfs_inode inode;
	int ret = inode_read(fs, dir, &inode);

	if (!ret) {
		inode.nlink++;
		ret = inode_write(fs, &inode);
	}
	return ret;
}

/* Maps two 2-block extents, the later one in the file first on disk. */
static int fill_file(struct rfs_fs *fs, struct rfs_inode *f)
{
	struct rfs_extent e = {.len = 2};
	fsblock_t a, b;
	extlen_t got;
	int ret = alloc_extent(fs, 0, 2, 2, &a, &got);

	if (!ret)
		ret = alloc_extent(fs, 0, 2, 2, &b, &got);
	if (ret)
		return ret;
	e.pblk = b > a ? b : a;
	ret = bmap_map(fs, f->ino, RFS_FORK_DATA, &e);
	e.off = 2;
	e.pblk = b > a ? a : b;
	if (!ret)
		ret = bmap_map(fs, f->ino, RFS_FORK_DATA, &e);
	f->nblocks = 4;
	f->size = 4ull << fs->sb.block_log;
	return ret ? ret : inode_write(fs, f);
}

int names_tree_build(struct rfs_fs *fs, struct names_tree *t)
{
	int ret = new_node(fs, RFS_ROOT_INO, "d", S_IFDIR | 0755, &t->d);

	if (!ret)
		ret = one_more_link(fs, RFS_ROOT_INO);
	if (!ret)
		ret = new_node(fs, t->d.ino, "e", S_IFDIR | 0755, &t->e);
	if (!ret)
		ret = one_more_link(fs, t->d.ino);
	if (!ret)
		ret = new_node(fs, RFS_ROOT_INO, "f", S_IFREG | 0644, &t->f);
	if (!ret)
		ret = fill_file(fs, &t->f);
	if (!ret)
		ret = xattr_set(fs, t->f.ino, "user.note", "kept", 4, 0);
	if (!ret) {
		t->f.nlink = 2;
		ret = inode_write(fs, &t->f);
	}
	if (!ret)
		ret = add(fs, t->d.ino, "f2", &t->f, DT_REG);
	if (!ret)
		ret = new_node(fs, RFS_ROOT_INO, "g", S_IFREG | 0644, &t->g);
	if (ret)
		return ret;
	inode_init_new(fs, &t->s, S_IFLNK | 0777, 0, 0);
	t->s.size = t->s.inline_len = 1;
	t->s.inline_type = RFS_INLINE_SYMLINK;
	t->s.inline_data[0] = 'f';
	ret = inode_insert(fs, &t->s);
	return ret ? ret : add(fs, RFS_ROOT_INO, "s", &t->s, DT_LNK);
}
