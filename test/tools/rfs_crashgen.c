/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * rfs_crashgen - leaves a filesystem as a crash would: committed
 * transactions in the log, nothing checkpointed, no clean unmount.
 *
 *   rfs_crashgen IMAGE NFILES [NCOMMITS [abort]]
 *
 * Opens IMAGE (replaying its log), adds NFILES empty regular files to the
 * root directory (named "f" + inode number) in NCOMMITS commits, then
 * exits at once without closing. With "abort", one more file is added in a
 * handle that is then aborted (as the daemon does when an update meets
 * corruption half-way): that file must never appear, and the error must
 * reach the superblock at the next recovery. Used by the command-line tests of fsck's
 * journal replay until the daemon can produce such images itself.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dir.h"
#include "fs.h"
#include "inode.h"
#include "journal.h"

static int add_file(struct rfs_fs *fs)
{
	struct rfs_inode inode;
	struct rfs_handle *h;
	char name[32];
	int ret = txn_start(fs, 64, &h);

	if (ret)
		return ret;
	inode_init_new(fs, &inode, S_IFREG | 0644, 0, 0);
	snprintf(name, sizeof(name), "f%llu", (unsigned long long)inode.ino);
	ret = inode_insert(fs, &inode);
	if (!ret)
		ret = dir_add(fs, RFS_ROOT_INO, name, strlen(name), inode.ino, DT_REG, NULL);
	txn_stop(h);
	return ret;
}

static int add_file_aborted(struct rfs_fs *fs)
{
	struct rfs_handle *h;
	struct rfs_inode inode;
	int ret = txn_start(fs, 64, &h);

	if (ret)
		return ret;
	inode_init_new(fs, &inode, S_IFREG | 0644, 0, 0);
	ret = inode_insert(fs, &inode);
	if (!ret)
		ret = dir_add(fs, RFS_ROOT_INO, "aborted", 7, inode.ino, DT_REG, NULL);
	txn_abort(h, -EUCLEAN);
	txn_stop(h);
	return ret;
}

int main(int argc, char **argv)
{
	struct rfs_dev *dev;
	struct rfs_fs *fs;
	unsigned n, commits, i;
	char why[200];
	int ret;

	if (argc < 3) {
		fprintf(stderr, "usage: %s IMAGE NFILES [NCOMMITS [abort]]\n", argv[0]);
		return 16;
	}
	n = (unsigned)atoi(argv[2]);
	commits = argc > 3 ? (unsigned)atoi(argv[3]) : 1;
	if (commits == 0)
		commits = 1;
	ret = dev_open_file(argv[1], 0, 0, &dev);
	if (!ret)
		ret = fs_open(dev, 0, 8u << 20, &fs, why, sizeof(why));
	if (ret) {
		fprintf(stderr, "%s: cannot open: %s\n", argv[1], strerror(-ret));
		return 1;
	}
	for (i = 0; i < n && !ret; i++) {
		ret = add_file(fs);
		if (!ret && (i + 1) % ((n + commits - 1) / commits) == 0)
			ret = journal_commit(fs);
	}
	if (!ret)
		ret = journal_commit(fs);
	if (!ret && argc > 4 && !strcmp(argv[4], "abort"))
		ret = add_file_aborted(fs);
	if (ret) {
		fprintf(stderr, "%s: %s\n", argv[1], strerror(-ret));
		return 1;
	}
	_exit(0); /* the crash: no checkpoint, no unmount */
}
