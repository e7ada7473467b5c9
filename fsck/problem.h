/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * problem.h - every inconsistency fsck knows, as a coded table entry.
 *
 * Each problem has a stable code (printed, and used by the tests), a
 * message, and a fix policy. All decisions about fixing go through
 * fix_problem(), which knows -n/-p/-y: no pass prints its own "would fix".
 */
#ifndef RFS_PROBLEM_H
#define RFS_PROBLEM_H

struct fsck_ctx;

enum problem_code {
	PR_SB_PRIMARY_BAD,
	PR_SB_BACKUP_BAD,
	PR_SB_BACKUP_DIFFERS,
	PR_SB_FEATURE_UNKNOWN,
	PR_SB_ERRORS_RECORDED,
	PR_JOURNAL_SB_BAD,
	PR_JOURNAL_NEEDS_RECOVERY,
	PR_FREELIST_BAD,
	PR_TREE_CORRUPT,
	PR_BLOCK_MULTIPLY_CLAIMED,
	PR_BLOCK_LEAKED,
	PR_EXTENT_BEYOND_END,
	PR_EXTENT_OVERLAP,
	PR_FREE_EXTENT_UNMERGED,
	PR_FREE_COUNT_WRONG,
	PR_FREE_TREES_DIFFER,
	PR_INODE_COUNT_WRONG,
	PR_NEXT_INO_TOO_LOW,
	PR_ROOT_BAD,
	PR_LOST_FOUND_BAD,
	PR_DIRENT_IN_NON_DIR,
	PR_DIRENT_TARGET_MISSING,
	PR_DIRENT_FTYPE_WRONG,
	PR_DIRENT_HASH_WRONG,
	PR_DIR_MULTIPLY_LINKED,
	PR_DIR_PARENT_WRONG,
	PR_DIR_UNREACHABLE,
	PR_INODE_UNREACHABLE,
	PR_NLINK_WRONG,
	PR_EXTENT_NO_INODE,
	PR_ORPHAN_BAD,
	PR_INODE_BAD,
	PR_SYMLINK_BAD,
	PR_NBLOCKS_WRONG,
	PR_REFC_WITHOUT_FEATURE,
	PR_REFC_OVERLAP,
	PR_REFC_UNMERGED,
	PR_REFC_MISSING,
	PR_REFC_COUNT_WRONG,
	PR_REFC_NOT_SHARED,
	PR_COW_RECORD_LEFTOVER,
	PR_COW_RECORD_MISSING,
	PR_COW_OWNER_WRONG,
	PR_COW_IN_DATA_FORK,
	PR_REFLINK_FLAG_MISSING,
	PR_FREE_TREE_CORRUPT, /* TREE_CORRUPT of the trees fsck can rebuild */
	PR_REFC_TREE_CORRUPT,
	PR_INLINE_FORK_BAD,
	PR_INLINE_FORK_NOT_FILE,
	PR_INLINE_FORK_AND_TREE,
	PR_INLINE_FORK_NO_FEATURE,
	PR_COUNT
};

/* Fix policies. */
#define PR_PREEN_OK  (1u << 0) /* -p may fix it without asking */
#define PR_NO_REPAIR (1u << 1) /* this fsck must not repair it */

struct problem_def {
	const char *code; /* stable name, e.g. "BLOCK_LEAKED" */
	const char *msg;  /* printf format completed by the caller's details */
	unsigned flags;
};

/* Reports problem CODE with the formatted details. Returns 1 if the caller
 * should repair it now (never with -n), 0 if not. */
int fix_problem(struct fsck_ctx *ctx, enum problem_code code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

const struct problem_def *problem_def(enum problem_code code);

#endif
