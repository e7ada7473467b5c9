/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * dev.h - the device layer: an image file, a block device, or RAM.
 *
 * The bottom of the stack. Byte-addressed pread/pwrite/flush; short reads
 * and writes are retried here so callers see all-or-error. Optionally every
 * write and every flush is appended to a side "write log" (format in
 * docs/FORMAT.md) so the crash tests can rebuild the image as it was at any
 * point of the write stream.
 *
 * An image opened for writing is locked with flock(LOCK_EX); read-only
 * opens take LOCK_SH. The daemon, mkfs and fsck all go through here, so a
 * mounted image cannot be formatted or repaired under the daemon's feet.
 */
#ifndef RFS_DEV_H
#define RFS_DEV_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

struct rfs_dev;

struct rfs_dev_ops {
	int (*pread)(struct rfs_dev *dev, void *buf, size_t len, uint64_t off);
	int (*pwrite)(struct rfs_dev *dev, const void *buf, size_t len, uint64_t off);
	int (*flush)(struct rfs_dev *dev);
	void (*close)(struct rfs_dev *dev);
};

struct rfs_dev {
	const struct rfs_dev_ops *ops;
	uint64_t size; /* bytes */
	int fd;	       /* file backends; -1 for RAM */
	uint8_t *mem;  /* RAM backend */
	int readonly;
	int wlog_fd; /* -1 when not logging */
	pthread_mutex_t wlog_lock;
	uint64_t nr_writes, nr_flushes; /* statistics */
	struct rfs_overlay *overlay;	/* overlay backend */
};

enum rfs_dev_flags {
	RFS_DEV_RDONLY = 1 << 0,
	RFS_DEV_CREATE = 1 << 1, /* create the file if missing (mkfs -s) */
	RFS_DEV_NOLOCK = 1 << 2, /* skip flock (tests of the lock itself) */
};

/* Opens PATH. For a regular file the size is the file size (with
 * RFS_DEV_CREATE and SIZE > 0 the file is created or extended to SIZE,
 * sparse); for a block device it is the device size. -EBUSY if another
 * process holds the image lock. */
int dev_open_file(const char *path, unsigned flags, uint64_t size, struct rfs_dev **out);
/* Sets a regular file's size to SIZE (sparse); -ENOTTY for other kinds. */
int dev_resize(struct rfs_dev *dev, uint64_t size);
/* An overlay over BASE (which it owns): reads come from BASE except for
 * blocks of GRAN bytes written through the overlay, which live in memory.
 * Writes must be GRAN-aligned. Used to replay a journal without writing
 * the image (read-only mounts, fsck -n). */
int dev_open_overlay(struct rfs_dev *base, uint32_t gran, struct rfs_dev **out);
/* A zero-filled RAM device of SIZE bytes, for unit tests. */
int dev_open_mem(uint64_t size, struct rfs_dev **out);
void dev_close(struct rfs_dev *dev);

int dev_pread(struct rfs_dev *dev, void *buf, size_t len, uint64_t off);
int dev_pwrite(struct rfs_dev *dev, const void *buf, size_t len, uint64_t off);
/* Hints that [OFF, OFF + LEN) will be read soon: the read starts in the
 * background (page cache readahead) for file backends; nothing otherwise.
 * Lets a walk of many scattered blocks keep the disk busy. */
void dev_prefetch(struct rfs_dev *dev, uint64_t off, size_t len);
/* Makes every completed write durable (fdatasync for files). */
int dev_flush(struct rfs_dev *dev);

/* Starts appending every write and flush to the file at PATH. */
int dev_writelog_start(struct rfs_dev *dev, const char *path);

/* Write log records (all little-endian). The file starts with a header. */
#define RFS_WLOG_MAGIC 0x31474f4c57534652ull /* "RFSWLOG1" */
enum rfs_wlog_kind { RFS_WLOG_WRITE = 1, RFS_WLOG_FLUSH = 2 };
struct rfs_wlog_header {
	uint64_t magic;
	uint64_t dev_size;
};
struct rfs_wlog_rec {
	uint32_t kind;
	uint32_t len; /* bytes of data following (writes) */
	uint64_t off;
};

#endif
