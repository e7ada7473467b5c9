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
/* Ends a handle (no lock) after an operation that returned RET. If the
 * operation changed metadata and then met corruption or an I/O error, the
 * journal is aborted first: the half-done change never commits and the
 * filesystem turns read-only (ext4's errors=remount-ro). */
int op_stop(struct rfs_handle *h, int ret);

void rfs_fill_stat(const struct rfs_mount *m, const struct rfs_inode *in, struct stat *st);
/* Replies with an entry for INODE, taking a lookup reference first. */
void reply_entry(fuse_req_t req, struct rfs_mount *m, const struct rfs_inode *inode);
void reply_attr(fuse_req_t req, struct rfs_mount *m, const struct rfs_inode *inode);
void reply_error(fuse_req_t req, struct rfs_mount *m, int err, const char *op, rfs_ino_t ino);

/* 0 if there are free blocks enough for a namespace operation's tree
 * inserts, else -ENOSPC. Called under the metadata lock before the first
 * change: a transaction cannot be undone, so an operation must not run out
 * of blocks half-way (a rename that removed the old name could not add the
 * new one). Removals do not check: they must work on a full disk. */
int check_meta_space(struct rfs_mount *m);

/* After a step that may have changed INODE's extents: writes INODE if RET
 * is 0, or if its block count moved from NBLOCKS anyway (the step failed
 * part-way: the extents it changed are in the transaction, so must the
 * count be). Returns RET, or the write's error. */
int inode_write_after(struct rfs_mount *m, const struct rfs_inode *inode, uint64_t nblocks,
		      int ret);

/* Reads INO under the metadata lock. */
int read_inode_locked(struct rfs_mount *m, rfs_ino_t ino, struct rfs_inode *inode);

/* The caller (from the request context). */
struct rfs_cred {
	uid_t uid;
	gid_t gid;
};
void req_cred(fuse_req_t req, struct rfs_cred *c);

/* Is the caller root or in group GID (primary or supplementary)? */
int in_group_or_root(fuse_req_t req, gid_t gid);

/*
 * What the kernel does to a file's set-ID bits on a write, truncate or
 * fallocate by someone other than root (setattr_should_drop_suidgid;
 * libfuse 3.14 has the daemon do it: no HANDLE_KILLPRIV). Set-user-ID
 * goes. Set-group-ID goes if group-executable; without group exec it is
 * a locking mark that only a caller outside the file's group takes off.
 */
void kill_privs(fuse_req_t req, struct rfs_inode *inode);

/*
 * The part of chown's set-ID clearing that FUSE leaves out: the kernel
 * sends the mode without set-user-ID (and without a group-executable
 * set-group-ID) itself, but keeps fuse_setattr's pre-6.2 rule for a
 * set-group-ID without group exec, which goes when the caller is not in
 * the file's group (its group before the chown) and not root.
 */
void kill_sgid_mark(fuse_req_t req, struct rfs_inode *inode);

/* Writes INODE after it lost a name (nlink already decremented by the
 * caller). With no name left it must already be on the orphan list (the
 * caller adds it before removing the name: that insert is the step that
 * may fail for space); it is freed at once if the kernel does not hold
 * it (*FREE_NOW: the caller frees it after this transaction). Metadata
 * lock held, inside a handle. */
int drop_inode_if_unused(struct rfs_mount *m, struct rfs_inode *inode, int *free_now);

/* After an operation failed with RET: 1 if it was ENOSPC while blocks
 * freed by transactions not yet durable were waiting (the allocator does
 * not hand them out: alloc.c, busy extents) and a commit has now made
 * them usable, so the operation is worth one more try; else 0. Holds no
 * lock and no handle (it commits). */
int retry_after_commit(struct rfs_mount *m, int ret);
/* File data through the same paths as READ and WRITE (copy_file_range's
 * unaligned parts). The caller holds INO's I/O lock: shared to read,
 * exclusive to write. rfs_write_data returns a short count as *WRITTEN
 * with 0 when ENOSPC or EFBIG stopped it part-way; E (INO's entry, or
 * NULL) remembers whether INO may share blocks, so that its next write
 * reserves the right credits at once. */
int rfs_read_data(struct rfs_mount *m, fuse_ino_t ino, uint64_t off, size_t size, uint8_t *buf,
		  size_t *got);
int rfs_write_data(fuse_req_t req, struct rfs_mount *m, fuse_ino_t ino, struct itab_entry *e,
		   const uint8_t *buf, size_t size, uint64_t off, int touch, uint64_t *written,
		   int *allocated);

/* What a new inode is made of (ops_dir.c: mknod, mkdir, symlink, create). */
struct node_args {
	uint32_t mode;
	uint64_t rdev;
	const char *symlink;
};
int rfs_make_node(fuse_req_t req, fuse_ino_t parent, const char *name, const struct node_args *a,
		  struct rfs_inode *inode);

/* Journal credits of one step freeing INO's blocks from FROM on (what
 * file_free_range touches): sized by the extents mapped there, up to
 * RFS_TRUNC_STEP of them, so that freeing a small file does not reserve
 * (and force a commit for) the worst case; 0 if nothing is mapped. Takes
 * the metadata lock; the caller holds the inode's I/O lock (or nothing can
 * map blocks: an orphan). */
uint32_t free_step_credits(struct rfs_mount *m, rfs_ino_t ino, fileoff_t from);

/* Frees an orphan's blocks and record in bounded transactions. */
int free_orphan(struct rfs_mount *m, rfs_ino_t ino);

/* --- POSIX ACLs (ops_xattr.c) ------------------------------------------------ */

/* At init: asks for POSIX ACLs (the kernel then enforces and caches them)
 * and for the umask to be left to us (DONT_MASK), which a default ACL
 * replaces; without both, system.* attributes stay unsupported. */
void rfs_acl_init(struct fuse_conn_info *conn);

/* The ACLs a new inode inherits from its parent's default ACL, in the
 * kernel's xattr format (malloc'ed; NULL: none). */
struct acl_new {
	size_t budget; /* parent's default ACL size the credits are for */
	void *access, *deflt;
	size_t access_len, deflt_len;
};
/* Before the handle: looks at PARENT's default ACL (metadata lock) so that
 * acl_new_credits can reserve for storing what a new inode of MODE
 * inherits. */
void acl_new_init(struct rfs_mount *m, rfs_ino_t parent, uint32_t mode, struct acl_new *a);
uint32_t acl_new_credits(const struct rfs_mount *m, const struct acl_new *a);
/* Metadata lock held: the permission bits of *MODE (the new inode's type
 * and the mode asked for) become the create mode masked by the parent's
 * default ACL, and A holds the inherited ACLs (posix_acl_create); without a
 * default ACL the request's umask applies. -EAGAIN if the default ACL grew
 * past A's budget since acl_new_init: start a handle with the new
 * acl_new_credits and call again. */
int acl_new_locked(fuse_req_t req, struct rfs_mount *m, rfs_ino_t parent, uint32_t *mode,
		   struct acl_new *a);
/* Stores A's ACLs on INO, all or none; acl_new_remove takes them off again
 * (a create that failed after this). Metadata lock held, inside a handle. */
int acl_new_store(struct rfs_mount *m, rfs_ino_t ino, const struct acl_new *a);
void acl_new_remove(struct rfs_mount *m, rfs_ino_t ino, const struct acl_new *a);
void acl_new_done(struct acl_new *a);

/* Whether the caller may write INODE, as inode_permission(MAY_WRITE)
 * decides on a kernel filesystem: root, the owner's bits, the access ACL
 * (named users, the group class with supplementary groups, the mask), the
 * group or other bits. 1 or 0, or an error reading the ACL. For our own
 * ioctls: the kernel checks everything else (default_permissions). */
int may_write_inode(fuse_req_t req, struct rfs_mount *m, const struct rfs_inode *inode);

#endif
