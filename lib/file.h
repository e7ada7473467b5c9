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
#include "bmap.h"
#include "inode.h"

/* A run of file blocks and where it is. */
struct rfs_seg {
	fileoff_t off;	     /* first file block */
	extlen_t len;	     /* blocks */
	fsblock_t pblk;	     /* 0: a hole or unwritten (reads as zeros) */
	int fresh;	     /* write plan: newly allocated or converted: blocks not
			      * covered by the write must be filled by the writer, from
			      * COPY_FROM (or with zeros if 0) */
	fsblock_t copy_from; /* write plan: the old data of a CoW segment */
	int cow;	     /* write plan: PBLK is CoW staging; after writing the
			      * data the caller remaps it (file_cow_remap) */
};

/* CoW extent size hint (blocks): a write into shared blocks stages CoW
 * blocks for the aligned range around it, so random overwrites of a clone
 * stay contiguous (XFS's cowextsize, default 32). */
#define RFS_COW_EXTSIZE 32
/* Segments one write transaction plans for a file that may share blocks
 * (each may need a CoW remap, which costs more than an in-place write). */
#define RFS_COW_WRITE_SEGS 4

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
/* Credits a write plan of up to MAX segments needs (including the CoW
 * remap of each, for an inode with RFS_IFLAG_REFLINK). */
uint32_t file_write_credits(const struct rfs_fs *fs, const struct rfs_inode *inode, unsigned max);
/* Credits of the next file_free_range step of INODE from FROM: sized by
 * the extents mapped there (0 if none in either fork). */
int file_free_credits(struct rfs_fs *fs, const struct rfs_inode *inode, fileoff_t from,
		      uint32_t *credits);

/*
 * Frees the blocks of [OFF, OFF+LEN) (file blocks), at most RFS_TRUNC_STEP
 * extent records per call; *NEXT receives how far it got (>= OFF+LEN when
 * done; OFF when the step went to CoW staging only, which goes first).
 * Updates INODE's nblocks; the caller writes the inode. Shared blocks lose
 * one reference (freed at zero); CoW staging over the range is freed
 * first.
 */
int file_free_range(struct rfs_fs *fs, struct rfs_inode *inode, fileoff_t off, extlen_t len,
		    fileoff_t *next);

/* After the data of CoW segment S (planned by file_plan_write) is
 * written: maps its staging blocks into the data fork in place of the old
 * ones (which lose a reference) and drops them from the CoW fork and the
 * staging records. Credits are in file_write_credits. */
int file_cow_remap(struct rfs_fs *fs, struct rfs_inode *inode, const struct rfs_seg *s);

/* Frees the CoW staging of [OFF, OFF+LEN), at most RFS_TRUNC_STEP extents
 * per call; *NEXT as for file_free_range. */
int file_cancel_cow(struct rfs_fs *fs, const struct rfs_inode *inode, fileoff_t off, extlen_t len,
		    fileoff_t *next);
/* Frees CoW staging blocks [START, START+LEN): their staging record and
 * the blocks (what file_cancel_cow does per extent; also for staging no
 * fork maps, after a crash). */
int file_free_staging(struct rfs_fs *fs, fsblock_t start, extlen_t len);
/* Journal credits of one file_cancel_cow call. */
uint32_t file_cancel_credits(const struct rfs_fs *fs);

/* Extents one clone step maps. */
#define RFS_CLONE_STEP 4
/* Credits of one clone step; DST_EMPTY: the destination range maps no
 * blocks (nothing to unshare there: a copy into a new file). */
uint32_t file_clone_credits(const struct rfs_fs *fs, int dst_empty);
/*
 * Shares blocks: SRC's [SOFF, SOFF+LEN) replaces DST's range at DOFF. The
 * written blocks get one more reference and are mapped in DST; holes and
 * unwritten extents of SRC become holes; DST's old blocks there lose a
 * reference. Each chunk is swapped in one transaction (DST never shows a
 * hole where both had data), at most RFS_CLONE_STEP chunks per call; *NEXT
 * receives the source offset reached. DST's CoW staging over the range
 * must be cancelled first (file_cancel_cow). Sets RFS_IFLAG_REFLINK on
 * both and DST's nblocks; the caller writes both inodes (SRC == DST for a
 * clone within one file, at ranges that do not overlap).
 */
int file_clone_range(struct rfs_fs *fs, struct rfs_inode *src, fileoff_t soff,
		     struct rfs_inode *dst, fileoff_t doff, extlen_t len, fileoff_t *next);

/* The first run of shared blocks that blocks [OFF, OFF+LEN) of INO map:
 * for the extent list of the clone tool. Fills *E with the data extent
 * piece from OFF (or the next one) and *SHARED with whether its blocks are
 * shared; the piece stops where sharing changes. -ENOENT past the last. */
int file_extent_shared(struct rfs_fs *fs, rfs_ino_t ino, fileoff_t off, struct rfs_extent *e,
		       int *shared);

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
