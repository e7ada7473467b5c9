/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * rfs_names - builds a small namespace (names_tree.h) on a fresh image,
 * then damages exactly one record or field of it, for fsck's tests of the
 * superblock and names side.
 *
 *   rfs_names IMAGE DAMAGE...
 *
 * DAMAGE (and what fsck should say) is one of:
 *   none            consistent
 *   primary-sb      64 bytes of block 0 overwritten       SB_PRIMARY_BAD
 *   backup-sb       the last backup's header zeroed        SB_BACKUP_BAD
 *   backup-differs  both backups with another journal size SB_BACKUP_DIFFERS
 *   journal-sb      bytes of the journal superblock        JOURNAL_SB_BAD
 *   errors          the superblock records an error        SB_ERRORS_RECORDED
 *   inode-count     the superblock's inode count + 1       INODE_COUNT_WRONG
 *   next-ino        next inode number = s's (in use)       NEXT_INO_TOO_LOW
 *   no-root         the root's inode record deleted        ROOT_BAD
 *   no-lost-found   lost+found's inode record deleted      LOST_FOUND_BAD
 *   dangling        root/x names inode 99999               DIRENT_TARGET_MISSING
 *   in-non-dir      an entry "x" in file g naming g        DIRENT_IN_NON_DIR
 *   ftype           root/g's entry says directory          DIRENT_FTYPE_WRONG
 *   hash            root/g filed under another hash        DIRENT_HASH_WRONG
 *   dir-two-names   root/d2 names d as well                DIR_MULTIPLY_LINKED
 *   parent          e's parent says the root (it is in d)  DIR_PARENT_WRONG
 *   loop            d moved into d/e (d and e a loop)      DIR_UNREACHABLE
 *   unnamed-dir     root/d removed                         DIR_UNREACHABLE
 *   unnamed-file    root/g removed                         INODE_UNREACHABLE
 *   nlink           f's link count says 5 (it has 2)       NLINK_WRONG
 *   orphan-linked   f (2 names) on the orphan list         ORPHAN_BAD
 *   orphan-missing  inode 99999 on the orphan list         ORPHAN_BAD
 *   symlink         s's size says 100, its target is 1     SYMLINK_BAD
 *   inline-type     g's inline data of unknown type 7      INODE_BAD
 *   symlink-inline  s's inline target typed 7 (so its
 *                   target is malformed as well)           INODE_BAD, SYMLINK_BAD
 * Link counts are kept right where the damage moves names (loop,
 * unnamed-dir), so each damage is one problem. One damage is two:
 *   errors+dangling errors and dangling together (is the record of
 *                   errors kept while a problem is left?)
 * Several DAMAGEs are applied in order (a combination that cannot be
 * applied, e.g. removing one name twice, fails). Prints nothing on success.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dir.h"
#include "fs.h"
#include "inode.h"
#include "journal.h"
#include "names_tree.h"
#include "super.h"
#include "util.h"

#define TRY(expr)                                                                                  \
	do {                                                                                       \
		int ret_ = (expr);                                                                 \
		if (ret_) {                                                                        \
			fprintf(stderr, "rfs_names: %s: %s\n", #expr, strerror(-ret_));            \
			return ret_;                                                               \
		}                                                                                  \
	} while (0)

static int add_links(struct rfs_fs *fs, rfs_ino_t ino, int delta)
{
	struct rfs_inode inode;

	TRY(inode_read(fs, ino, &inode));
	inode.nlink = (uint32_t)((int)inode.nlink + delta);
	return inode_write(fs, &inode);
}

/* root/g again, under a hash that is not its name's. */
static int misfile(struct rfs_fs *fs, const struct names_tree *t)
{
	uint8_t rec[sizeof(struct rfs_dirent) + 1];
	struct rfs_dirent d;
	rfs_ino_t ino;
	uint64_t hash = dir_name_hash(fs->sb.hash_seed, "g", 1);

	TRY(dir_remove(fs, RFS_ROOT_INO, "g", 1, &ino));
	memset(&d, 0, sizeof(d));
	d.key.dir = le64_make(RFS_ROOT_INO);
	d.key.cookie =
		le64_make(((hash + 1) & ((1ull << RFS_DIR_HASH_BITS) - 1)) << RFS_DIR_SEQ_BITS);
	d.ino = le64_make(t->g.ino);
	d.ftype = DT_REG;
	d.namelen = 1;
	memcpy(rec, &d, sizeof(d));
	rec[sizeof(d)] = 'g';
	return btree_insert(&fs->dirs, rec, sizeof(rec));
}

static int make_loop(struct rfs_fs *fs, struct names_tree *t)
{
	rfs_ino_t ino;

	TRY(dir_remove(fs, RFS_ROOT_INO, "d", 1, &ino));
	TRY(dir_add(fs, t->e.ino, "d", 1, t->d.ino, DT_DIR, NULL));
	TRY(add_links(fs, RFS_ROOT_INO, -1));
	TRY(add_links(fs, t->e.ino, 1));
	TRY(inode_read(fs, t->d.ino, &t->d));
	t->d.parent = t->e.ino;
	return inode_write(fs, &t->d);
}

/* Damages done through the open filesystem; 1: not one of these. */
static int damage_fs(struct rfs_fs *fs, struct names_tree *t, const char *what)
{
	rfs_ino_t ino;

	if (!strcmp(what, "none"))
		return 0;
	if (!strcmp(what, "errors+dangling")) {
		TRY(damage_fs(fs, t, "errors"));
		return damage_fs(fs, t, "dangling");
	}
	if (!strcmp(what, "errors")) {
		fs->sb.err_count = 1;
		fs->sb.err_first_code = fs->sb.err_last_code = EIO;
		fs->sb.state |= RFS_STATE_ERROR;
	} else if (!strcmp(what, "inode-count")) {
		fs->sb.inode_count++;
	} else if (!strcmp(what, "next-ino")) {
		fs->sb.next_ino = t->s.ino;
	} else if (!strcmp(what, "no-root")) {
		return inode_delete(fs, RFS_ROOT_INO);
	} else if (!strcmp(what, "no-lost-found")) {
		return inode_delete(fs, RFS_LOST_FOUND_INO);
	} else if (!strcmp(what, "dangling")) {
		return dir_add(fs, RFS_ROOT_INO, "x", 1, 99999, DT_REG, NULL);
	} else if (!strcmp(what, "in-non-dir")) {
		return dir_add(fs, t->g.ino, "x", 1, t->g.ino, DT_REG, NULL);
	} else if (!strcmp(what, "ftype")) {
		return dir_replace(fs, RFS_ROOT_INO, "g", 1, t->g.ino, DT_DIR);
	} else if (!strcmp(what, "hash")) {
		return misfile(fs, t);
	} else if (!strcmp(what, "dir-two-names")) {
		return dir_add(fs, RFS_ROOT_INO, "d2", 2, t->d.ino, DT_DIR, NULL);
	} else if (!strcmp(what, "parent")) {
		t->e.parent = RFS_ROOT_INO;
		return inode_write(fs, &t->e);
	} else if (!strcmp(what, "loop")) {
		return make_loop(fs, t);
	} else if (!strcmp(what, "unnamed-dir")) {
		TRY(dir_remove(fs, RFS_ROOT_INO, "d", 1, &ino));
		return add_links(fs, RFS_ROOT_INO, -1);
	} else if (!strcmp(what, "unnamed-file")) {
		return dir_remove(fs, RFS_ROOT_INO, "g", 1, &ino);
	} else if (!strcmp(what, "nlink")) {
		t->f.nlink = 5;
		return inode_write(fs, &t->f);
	} else if (!strcmp(what, "orphan-linked")) {
		return orphan_add(fs, t->f.ino);
	} else if (!strcmp(what, "orphan-missing")) {
		return orphan_add(fs, 99999);
	} else if (!strcmp(what, "symlink")) {
		t->s.size = 100;
		return inode_write(fs, &t->s);
	} else if (!strcmp(what, "inline-type")) {
		t->g.inline_type = 7;
		return inode_write_all(fs, &t->g); /* inode_write keeps a file's inline fork */
	} else if (!strcmp(what, "symlink-inline")) {
		t->s.inline_type = 7;
		return inode_write_all(fs, &t->s);
	} else {
		return 1;
	}
	fs_sb_dirty(fs);
	return 0;
}

/* Damages written over the closed image's raw blocks. */
static int damage_raw(const char *image, const char *what)
{
	struct rfs_sb_info sb;
	struct rfs_dev *dev;
	uint8_t junk[64];
	char why[160];
	uint64_t off;

	TRY(dev_open_file(image, 0, 0, &dev));
	TRY(sb_read_primary(dev, &sb, why, sizeof(why)));
	memset(junk, 0x5a, sizeof(junk));
	if (!strcmp(what, "primary-sb")) {
		off = 100;
	} else if (!strcmp(what, "backup-sb")) {
		memset(junk, 0, sizeof(junk));
		off = sb.backup[RFS_NR_BACKUPS - 1] << sb.block_log;
	} else if (!strcmp(what, "journal-sb")) {
		off = (sb.journal_start << sb.block_log) + 64;
	} else if (!strcmp(what, "backup-differs")) {
		sb.journal_blocks--;
		TRY(sb_write_backups(dev, &sb, sb.last_tid));
		dev_close(dev);
		return 0;
	} else {
		fprintf(stderr, "rfs_names: unknown damage '%s'\n", what);
		dev_close(dev);
		return -EINVAL;
	}
	TRY(dev_pwrite(dev, junk, sizeof(junk), off));
	TRY(dev_flush(dev));
	dev_close(dev);
	return 0;
}

int main(int argc, char **argv)
{
	struct names_tree t;
	struct rfs_dev *dev;
	struct rfs_fs *fs;
	char why[200];
	int i, ret, raw[64] = {0};

	if (argc < 3 || argc > 66) {
		fprintf(stderr, "usage: %s IMAGE DAMAGE...\n", argv[0]);
		return 16;
	}
	ret = dev_open_file(argv[1], 0, 0, &dev);
	if (!ret)
		ret = fs_open(dev, RFS_FS_NOJOURNAL, 8u << 20, &fs, why, sizeof(why));
	if (ret) {
		fprintf(stderr, "%s: cannot open: %s\n", argv[1], strerror(-ret));
		return 1;
	}
	ret = names_tree_build(fs, &t);
	if (ret)
		fprintf(stderr, "rfs_names: building the tree: %s\n", strerror(-ret));
	for (i = 2; !ret && i < argc; i++) { /* in order; raw ones once closed */
		ret = damage_fs(fs, &t, argv[i]);
		if (ret == 1)
			raw[i - 2] = 1, ret = 0;
		else if (ret)
			fprintf(stderr, "rfs_names: %s: %s\n", argv[i], strerror(-ret));
	}
	if (fs_close(fs) && !ret)
		ret = -EIO;
	for (i = 2; !ret && i < argc; i++)
		if (raw[i - 2])
			ret = damage_raw(argv[1], argv[i]);
	return ret ? 1 : 0;
}
