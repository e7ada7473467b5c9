/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fsck.h - shared state of the fsck passes.
 *
 * Passes, in order (each file opens with what it checks and hands on):
 *   pass1_super.c   superblock, backups, journal superblock
 *   pass2_trees.c   every B+tree's structure and checksums; gathers the
 *                   blocks each tree uses and the records fsck needs later
 *   pass3_refc.c    reference counts recomputed from the data forks
 *                   against the refcount tree, CoW forks against the
 *                   staging records; hands the sweep file data and
 *                   staging blocks once each, however often shared
 *   pass3_space.c   every block is exactly one of: static, free list,
 *                   tree node, file data, CoW staging, free; the two
 *                   free-space trees agree
 *   pass4_names.c   inodes, directory entries, reachability, link counts
 * repair_space.c rebuilds free space and the refcount tree, salvages
 * damaged trees and unmaps bad fork extents at the end of pass 3.
 */
#ifndef RFS_FSCK_H
#define RFS_FSCK_H

#include <stdint.h>

#include "fs.h"
#include "problem.h"

struct rfs_inode;
#include "progress.h"

/* The metadata cache: the passes walk each tree once, in order, and keep
 * what they need in their own tables, so a small cache does (the kernel's
 * page cache holds the image too, and the walk prefetches into it). 4 MiB
 * checks 107k inodes as fast as 16 MiB did, in 12 MB less. */
#define FSCK_CACHE (4u << 20)

enum fsck_mode { FSCK_NO, FSCK_PREEN, FSCK_YES };

/* Exit codes of fsck(8). */
enum {
	FSCK_EXIT_OK = 0,
	FSCK_EXIT_FIXED = 1,
	FSCK_EXIT_UNCORRECTED = 4,
	FSCK_EXIT_OPERROR = 8,
	FSCK_EXIT_USAGE = 16,
	FSCK_EXIT_CANCELLED = 32,
};

/* A run of blocks and who claims it. */
struct claim {
	fsblock_t start;
	extlen_t len;
	uint16_t owner; /* enum claim_owner */
};

enum claim_owner {
	CLAIM_SUPER,
	CLAIM_FREELIST_BLOCK,
	CLAIM_JOURNAL,
	CLAIM_FREELIST_ENTRY,
	CLAIM_TREE_BNO,
	CLAIM_TREE_CNT,
	CLAIM_TREE_INODE,
	CLAIM_TREE_DIR,
	CLAIM_TREE_BMAP,
	CLAIM_TREE_XATTR,
	CLAIM_TREE_REFC,
	CLAIM_FILE_DATA,   /* data forks, once per block however shared */
	CLAIM_COW_STAGING, /* CoW forks and staging records */
	CLAIM_FREE,
	CLAIM_OWNER_MAX
};

struct claims {
	struct claim *v;
	size_t n, cap;
};

/* What pass 4 needs of one inode. */
struct ino_info {
	rfs_ino_t ino, parent;
	uint32_t mode, nlink;
	uint32_t refs;		   /* directory entries naming it */
	uint32_t subdirs;	   /* entries of it that are directories */
	uint64_t nblocks;	   /* as the inode says */
	uint64_t mapped;	   /* as its extents say */
	uint8_t walk;		   /* reachability walk state */
	uint8_t orphan;		   /* on the orphan list */
	uint8_t symlink_inline_ok; /* symlinks: inline length matches the size */
	uint8_t reflink;	   /* RFS_IFLAG_REFLINK is set */
	/* pass 4 (names): */
	size_t name;	      /* directories: 1 + index of the entry kept */
	uint8_t parent_names; /* directories: an entry in its parent names it */
	uint8_t cleared;      /* pass 4 freed it */
	uint8_t inline_bad;   /* INODE_BAD reported, pass 4 to repair it */
	/* pass 2, regular files with RFS_INLINE_EXTENTS: */
	uint8_t inline_fork;  /* a well-formed inline data fork: inline_n extents ... */
	uint8_t inline_n;     /* ... at ctx->inline_exts[inline_first] */
	uint8_t inline_clear; /* a repair approved: drop the inline fork */
	uint8_t tree_data;    /* the extent tree holds data-fork records of it too */
	size_t inline_first;
	uint8_t climb;	       /* on the parent chain being climbed */
	uint8_t lost_reported; /* DIR_UNREACHABLE said of it */
};

/* What pass 4 needs of each extent or attribute owner, in tree order. */
enum ext_kind { EXT_DATA, EXT_COW, EXT_XATTR, EXT_DROPPED /* freed by repair_drop_owner */ };

struct ext_info {
	rfs_ino_t ino;
	uint64_t len; /* blocks (0 for EXT_XATTR) */
	uint8_t kind; /* enum ext_kind: only EXT_DATA counts in nblocks */
};

/*
 * A run of physical blocks with a value: a fork extent (value: its inode),
 * a shared record (its count), a staging record (its owner), or a run of
 * blocks with one recomputed count. Pass 3 compares lists of these.
 */
struct ival {
	fsblock_t start;
	extlen_t len;
	uint64_t val;
};

struct ivals {
	struct ival *v;
	size_t n, cap;
};

struct dent_info {
	rfs_ino_t dir, ino;
	uint8_t ftype;
	uint64_t cookie; /* the entry's key in its directory */
	uint8_t bad_key; /* orphan list: cookie != inode; else: wrong hash */
	uint8_t gone;	 /* pass 4 removed (or will ignore) it */
};

/* Repairs of blocks, space, trees and refcounts (repair_space.c). Passes
 * 2 and 3 only note what was approved; the repair runs once, at the end
 * of pass 3, from the in-core claims. */
enum repair_want {
	REPAIR_FREE_SPACE = 1u << 0, /* rebuild bno, cnt, free list, free count */
	REPAIR_REFCOUNT = 1u << 1,   /* rebuild the refcount tree (and free space) */
	REPAIR_FORKS = 1u << 2,	     /* unmap fork extents that cannot stay */
};

/* A fork extent as pass 2 found it, in tree order. */
struct fork_ext {
	rfs_ino_t ino;
	fileoff_t off;
	fsblock_t pblk;
	extlen_t len;
	size_t ext_idx; /* its ext_info, whose len pass 4 adds up */
	uint8_t fork;	/* RFS_FORK_DATA or RFS_FORK_COW */
};

/* A fork extent record to shorten to LEN blocks (EXTENT_OVERLAP). */
struct ext_trim {
	rfs_ino_t ino;
	uint64_t fkey;
	extlen_t len;
};

struct repair {
	unsigned want;	   /* enum repair_want */
	unsigned salvage;  /* 1 << tree type: primary trees rebuilt from their readable records */
	uint64_t approved; /* problems the repair fixes if it succeeds */
	struct fork_ext *forks;
	size_t nforks, cap_forks;
	int orphans_done, orphans_ret; /* repair_orphan_extents() ran, and how */
};

struct fsck_ctx {
	const char *image;
	enum fsck_mode mode;
	int force, verbose;
	struct rfs_fs *fs;
	struct claims claims;
	struct claims cnt_extents; /* free extents as the cnt tree sees them */
	struct ino_info *inodes;
	size_t ninodes, cap_inodes;
	struct dent_info *dents;
	size_t ndents, cap_dents;
	struct ext_info *exts;
	size_t nexts, cap_exts;
	struct rfs_bmap_rec *inline_exts; /* well-formed inline data forks, inode order */
	size_t ninline_exts, cap_inline_exts;
	struct ivals data_exts;	  /* data fork extents (val: inode), tree order */
	struct ivals cow_exts;	  /* CoW fork extents (val: inode), tree order */
	struct ivals shared;	  /* SHARED refcount records (val: count), by start */
	struct ivals staging;	  /* COW refcount records (val: owner), by start */
	rfs_ino_t last_xattr_ino; /* attributes come in inode order */
	struct {		  /* the fork extent seen last (tree order) */
		rfs_ino_t ino;
		uint64_t fkey;
		fileoff_t end; /* furthest file offset its fork reached so far */
		int valid;
	} last_ext;
	struct ext_trim *trims; /* EXTENT_OVERLAP repairs, made after the walk */
	size_t ntrims, cap_trims;
	uint64_t xattr_owners_missing;
	uint64_t problems, fixed;
	int replayed; /* the journal held transactions */
	uint64_t tree_nodes[RFS_TREE_MAX], tree_records[RFS_TREE_MAX];
	int trees_ok[RFS_TREE_MAX];
	struct repair repair;
	struct fsck_progress progress; /* -C */
	/* superblock and names (pass1_super.c, pass4_names.c, repair_names.c) */
	int journal_sb_reported; /* JOURNAL_SB_BAD already reported */
	int journal_sb_fix;	 /* ... and -y/-p said to rewrite it */
	uint64_t fragmented;	 /* inodes whose data is not one contiguous run */
	uint64_t shared_blocks;	 /* blocks with a refcount record of 2 or more */
	/* A primary tree (inodes, names, extents, attributes) was rebuilt from
	 * its readable records: what passes 2-4 gathered describes the old
	 * tree, so the check starts again on the new one (e2fsck's restart). */
	int restart;
};

int claims_add(struct claims *c, fsblock_t start, extlen_t len, uint16_t owner);
const char *claim_owner_name(uint16_t owner);
void ivals_add(struct ivals *l, fsblock_t start, extlen_t len, uint64_t val);
/* In L (sorted, disjoint): the first run that ends after B (L->n if
 * none), and whether [START, START+LEN) meets a run. */
size_t ivals_first_ending_after(const struct ivals *l, fsblock_t b);
int ivals_overlap(const struct ivals *l, fsblock_t start, extlen_t len);
struct ino_info *fsck_find_ino(struct fsck_ctx *ctx, rfs_ino_t ino);

int pass1_super(struct fsck_ctx *ctx, struct rfs_dev *dev);
int pass2_trees(struct fsck_ctx *ctx);
int pass3_space(struct fsck_ctx *ctx);
void pass3_refcounts(struct fsck_ctx *ctx); /* called by pass3_space */
int pass4_names(struct fsck_ctx *ctx);
/* After every pass: clears the recorded errors if all that was found was
 * fixed (pass1_super.c). */
void pass1_finish(struct fsck_ctx *ctx);
/* The passes and summary on an opened image (DEV consumed): fsck.c. */
int fsck_run(struct fsck_ctx *ctx, struct rfs_dev *dev);
int fsck_main(int argc, char **argv);

/* repair_names.c: pass 4's writes; 0 or a negative errno (reported). */
int repair_remove_entry(struct fsck_ctx *ctx, const struct dent_info *d);
int repair_entry_ftype(struct fsck_ctx *ctx, struct dent_info *d, uint8_t ftype);
int repair_entry_rehash(struct fsck_ctx *ctx, struct dent_info *d);
int repair_parent(struct fsck_ctx *ctx, rfs_ino_t ino, rfs_ino_t parent);
int repair_nlink(struct fsck_ctx *ctx, rfs_ino_t ino, uint32_t nlink);
int repair_make_dir(struct fsck_ctx *ctx, rfs_ino_t ino, rfs_ino_t parent, uint32_t perm);
int repair_add_name(struct fsck_ctx *ctx, rfs_ino_t dir, const char *name, rfs_ino_t ino,
		    uint8_t ftype);
int repair_clear_inode(struct fsck_ctx *ctx, rfs_ino_t ino);
/* 0 if the image may be changed now (open for writing, free-space trees
 * sound), else says why not (WHAT, about inode INO) and returns -errno. */
int repair_check_writable(struct fsck_ctx *ctx, const char *what, rfs_ino_t ino);
/* Frees what INODE owns (data, shared references, CoW staging,
 * attributes), not the record itself. */
int repair_free_contents(struct fsck_ctx *ctx, struct rfs_inode *inode);
int repair_orphan_entry(struct fsck_ctx *ctx, rfs_ino_t ino);
int repair_inline(struct fsck_ctx *ctx, rfs_ino_t ino);

/* repair_space.c */
/* Reports CODE through fix_problem(); if approved, notes the repair that
 * fixes it for repair_space() and returns 1. */
int repair_problem(struct fsck_ctx *ctx, enum problem_code code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Applies what was noted, once, after pass 3's checks. */
void repair_space(struct fsck_ctx *ctx);
/* Drops the extents and attributes of every inode that does not exist
 * (pass 4, on its first approved EXTENT_NO_INODE). */
void repair_orphan_extents(struct fsck_ctx *ctx);
/* Frees what INO (which has no inode) owns, now, and marks its extents
 * dropped: before its number is given to a new inode (root, lost+found),
 * which must not inherit them. */
int repair_drop_owner(struct fsck_ctx *ctx, rfs_ino_t ino);
/* Rewrites an inode's block count to what its data fork maps (pass 4). */
void repair_nblocks(struct fsck_ctx *ctx, struct ino_info *ii);
/* pass3_refc.c: the count of every block from data extents EXTS, as
 * disjoint runs sorted by start (val >= 1). */
void refc_count_runs(const struct ivals *exts, struct ivals *runs);

#endif
