/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * ops_common.h - helpers shared by the FUSE operation files.
 */
#ifndef RFS_OPS_COMMON_H
#define RFS_OPS_COMMON_H

#include <sys/stat.h>

#include "journal.h"
#include "rfs_fuse.h"

/* Journal credits of one namespace operation (two tree records changed,
 * with splits, plus the superblock). */
#define RFS_META_CREDITS 64

static inline struct rfs_mount *req_mount(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

/* Starts a metadata change: a handle, then the metadata lock. */
int op_begin(struct rfs_mount *m, uint32_t credits, struct rfs_handle **h);
/* Ends it: the lock, then the handle. Returns RET, or the handle's error. */
int op_end(struct rfs_mount *m, struct rfs_handle *h, int ret);

void rfs_fill_stat(const struct rfs_mount *m, const struct rfs_inode *in, struct stat *st);
/* Replies with an entry for INODE, taking a lookup reference first. */
void reply_entry(fuse_req_t req, struct rfs_mount *m, const struct rfs_inode *inode);
void reply_attr(fuse_req_t req, struct rfs_mount *m, const struct rfs_inode *inode);
void reply_error(fuse_req_t req, struct rfs_mount *m, int err, const char *op, rfs_ino_t ino);

/* Reads INO under the metadata lock. */
int read_inode_locked(struct rfs_mount *m, rfs_ino_t ino, struct rfs_inode *inode);

/* The caller (from the request context). */
struct rfs_cred {
	uid_t uid;
	gid_t gid;
};
void req_cred(fuse_req_t req, struct rfs_cred *c);

/* Clears set-user-ID (and set-group-ID if group-executable), as the kernel
 * does on write, truncate and chown of a file by someone without
 * CAP_FSETID (libfuse 3.14 asks the daemon to: HANDLE_KILLPRIV). */
void kill_suid(struct rfs_inode *inode);

/* Drops one name of INODE (nlink already decremented by the caller):
 * with no name left, it goes on the orphan list, and is freed at once if
 * the kernel does not hold it. Metadata lock held, inside a handle. */
int drop_inode_if_unused(struct rfs_mount *m, struct rfs_inode *inode, int *free_now);
/* What a new inode is made of (ops_dir.c: mknod, mkdir, symlink, create). */
struct node_args {
	uint32_t mode;
	uint64_t rdev;
	const char *symlink;
};
int rfs_make_node(fuse_req_t req, fuse_ino_t parent, const char *name, const struct node_args *a,
		  struct rfs_inode *inode);

/* Frees an orphan's blocks and record in bounded transactions. */
int free_orphan(struct rfs_mount *m, rfs_ino_t ino);

#endif
