/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * rfs_fuse.h - the FUSE daemon's shared state.
 *
 * Locking, always in this order:
 *   1. an inode's I/O lock (itab entry rwlock): writes, truncates and
 *      fallocate take it exclusively, reads shared, so blocks are never
 *      freed under a read or a write in flight;
 *   2. a journal handle (txn_start), never while holding 3;
 *   3. the metadata lock m->lock around every use of the trees.
 * Data I/O happens under 1 (and 2 for writes into new blocks) but never 3.
 * Notifications to the kernel (fuse_lowlevel_notify_inval_inode) are sent
 * holding none of them: the kernel may write cached pages back first, and
 * those WRITE requests need 1-3 on other threads. A journal commit (for
 * busy blocks, retry_after_commit) may hold 1, never 2 or 3.
 */
#ifndef RFS_FUSE_H
#define RFS_FUSE_H

#define FUSE_USE_VERSION 312

#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdint.h>

#include "fs.h"
#include "inode.h"

struct rfs_opts {
	int foreground, debug, readonly, writeback, allow_other;
	unsigned commit_interval;
	uint64_t cache_size;
	char *image, *mountpoint;
	char *writelog; /* testing: log every device write and flush here */
};

/* What the daemon keeps per inode the kernel knows. */
struct itab_entry {
	rfs_ino_t ino;
	uint64_t nlookup; /* kernel references (lookup counts) */
	uint32_t nopen;	  /* open files */
	uint32_t nwrite;  /* of which open for writing */
	int unlinked;	  /* no name left: free the inode when released */
	int xattrs;	  /* has extended attributes: 1, 0, or -1 unknown */
	uint64_t reflink; /* hint for writes: RFS_IFLAG_REFLINK as last seen */
	pthread_rwlock_t io;
	struct itab_entry *next;
};

struct rfs_mount {
	struct rfs_fs *fs;
	struct rfs_opts opts;
	pthread_mutex_t lock; /* metadata: every tree access */
	pthread_mutex_t itab_lock;
	struct itab_entry **itab;
	size_t itab_size;
	double timeout;		 /* entry and attribute cache timeout, seconds */
	struct fuse_session *se; /* for notifications to the kernel */
	int wb_cache;		 /* the kernel caches writes (FUSE_CAP_WRITEBACK_CACHE) */
};

/* --- itab.c ------------------------------------------------------------ */
int itab_init(struct rfs_mount *m);
void itab_destroy(struct rfs_mount *m);
/* Finds or creates the entry of INO and adds N lookups. */
struct itab_entry *itab_ref(struct rfs_mount *m, rfs_ino_t ino, uint64_t n);
/* The entry of INO if the kernel knows it, else NULL. */
struct itab_entry *itab_get(struct rfs_mount *m, rfs_ino_t ino);
/* Drops N lookups. Returns 1 if the entry is gone (nothing holds INO), 2
 * if it is gone and the inode had lost its last name (free it now). */
int itab_forget(struct rfs_mount *m, rfs_ino_t ino, uint64_t n);
/* Open count changes; itab_close returns as itab_forget. */
void itab_open(struct rfs_mount *m, struct itab_entry *e, int writer);
int itab_close(struct rfs_mount *m, struct itab_entry *e, int writer);
/* If the kernel still holds INO, marks it unlinked and returns 1; else 0
 * (the caller frees it). */
int itab_mark_unlinked(struct rfs_mount *m, rfs_ino_t ino);

/* --- ops_*.c ---------------------------------------------------------- */
void rfs_ops_init(struct fuse_lowlevel_ops *ops);
void rfs_ops_dir(struct fuse_lowlevel_ops *ops);
void rfs_ops_xattr(struct fuse_lowlevel_ops *ops);
void rfs_ops_reflink(struct fuse_lowlevel_ops *ops);
/* Frees all CoW staging (mount: a crash left it; unmount: tidy), logging
 * how much; and one inode's (its last writer closed it). */
int rfs_free_staging(struct rfs_mount *m);
int rfs_cancel_staging(struct rfs_mount *m, rfs_ino_t ino);
/* Frees every inode on the orphan list that nothing holds (mount, unmount). */
int rfs_reclaim_orphans(struct rfs_mount *m, int all);

/* --- errors.c ---------------------------------------------------------- */
/* The one place where a lib error becomes an errno for the kernel: logs
 * corruption (EUCLEAN, EBADMSG become EIO) and records it in the
 * superblock. Returns a positive errno. */
int rfs_errno(struct rfs_mount *m, int err, const char *op, rfs_ino_t ino);

/* --- log.c ------------------------------------------------------------- */
/* The daemon's messages (rfs_log and libfuse's) go to stderr in the
 * foreground, to syslog in the background (and errors to stderr until
 * rfs_log_detached(), when the mount is up). */
void rfs_log_start(const char *prog, int foreground, int debug);
void rfs_log_detached(void);

#endif
