/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * file.h - file data on top of the data fork: what to read, where to write,
 * and how to drop or preallocate blocks.
 *
 * These functions decide placement and keep the fork, the inode's block
 * count and free space consistent; they do no data I/O themselves except
 * zeroing partial blocks. The caller (the daemon) holds the metadata lock,
 * and for anything that changes metadata, a journal handle, and does the
 * data I/O: for a write, inside the same handle, so that the transaction
 * mapping new blocks commits only after their data was written (ordered).
 */
#ifndef RFS_FILE_H
#define RFS_FILE_H

#include <stddef.h>
#include <stdint.h>

#include "fs.h"
#include "inode.h"

/* A run of file blocks and where it is. */
struct rfs_seg {
	fileoff_t off;	/* first file block */
	extlen_t len;	/* blocks */
	fsblock_t pblk; /* 0: a hole or unwritten (reads as zeros) */
	int fresh;	/* write plan: newly allocated or converted: blocks not
			 * covered by the write must be zero-filled by the writer */
};

#define RFS_MAX_FILE_SIZE ((uint64_t)1 << 60)

/* Plans a read of blocks [OFF, OFF+LEN): fills at most MAX segments
 * covering the range from OFF in order; *N receives how many. */
int file_plan_read(struct rfs_fs *fs, rfs_ino_t ino, fileoff_t off, extlen_t len,
		   struct rfs_seg *segs, unsigned max, unsigned *n);

/*
 * Plans a write of blocks [OFF, OFF+LEN) of INODE (whose nblocks it
 * updates; the caller writes the inode): allocates holes near the
 * previous extent (so sequential files stay contiguous), converts
 * unwritten extents, and fills at most MAX segments (*N). A short plan
 * covers a prefix; the caller loops. -ENOSPC if no block at all could be
 * had for the first segment.
 */
int file_plan_write(struct rfs_fs *fs, struct rfs_inode *inode, fileoff_t off, extlen_t len,
		    struct rfs_seg *segs, unsigned max, unsigned *n);

/* Free blocks file data never takes (as ext4's reserved clusters): what
 * the trees need to split, so that metadata operations (creating names,
 * mapping extents, unlinking to make room) still work on a disk full of
 * data. 2% of the filesystem, 256 to 4096 blocks, at most an eighth. */
uint64_t file_data_reserve(const struct rfs_fs *fs);

/* Maximum extent records one truncate step touches (bounded transactions). */
#define RFS_TRUNC_STEP 8
/* Credits one truncate/punch step needs. */
uint32_t file_step_credits(const struct rfs_fs *fs);
/* Credits a write plan of up to MAX segments needs. */
uint32_t file_write_credits(const struct rfs_fs *fs, unsigned max);

/*
 * Frees the blocks of [OFF, OFF+LEN) (file blocks), at most RFS_TRUNC_STEP
 * extent records per call; *NEXT receives how far it got (>= OFF+LEN when
 * done). Updates INODE's nblocks; the caller writes the inode.
 */
int file_free_range(struct rfs_fs *fs, struct rfs_inode *inode, fileoff_t off, extlen_t len,
		    fileoff_t *next);

/* Allocates the holes of [OFF, OFF+LEN) as unwritten extents (fallocate),
 * at most RFS_TRUNC_STEP extents per call; *NEXT as above. */
int file_prealloc(struct rfs_fs *fs, struct rfs_inode *inode, fileoff_t off, extlen_t len,
		  fileoff_t *next);

/* Writes zeros to bytes [FROM, TO) of INODE's data, which must lie within
 * one block; holes and unwritten blocks are left alone (they read as
 * zeros already). */
int file_zero_partial(struct rfs_fs *fs, const struct rfs_inode *inode, uint64_t from, uint64_t to);

/* SEEK_DATA / SEEK_HOLE from byte POS in a file of SIZE bytes: -ENXIO at
 * or past EOF, else the offset (holes end at SIZE). */
int file_seek(struct rfs_fs *fs, rfs_ino_t ino, uint64_t size, uint64_t pos, int whence,
	      uint64_t *out);

#endif
