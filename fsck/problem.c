/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * problem.c - the problem table and fix_problem().
 *
 * Repairs: a journal that needs replay (the replay itself happens in pass 1
 * before any check), a missing reflink feature bit and a missing inode
 * reflink flag (each one bit whose setting can never make an image worse),
 * the blocks, free space, trees and refcounts (repair_space.c, decided by
 * passes 2-3 through repair_problem()), and the superblock and names side
 * (pass1_super.c, pass4_names.c, repair_names.c). PR_PREEN_OK marks what
 * e2fsck -p also fixes unasked: summary counts, backups, link counts, the
 * orphan list, entry types, leaked blocks. PR_NO_REPAIR marks what this
 * fsck must not repair (a feature it does not know: what the bit protects
 * is unknown to it), and fix_problem() says so plainly instead of
 * pretending.
 */
#include "problem.h"

#include <stdarg.h>
#include <stdio.h>

#include "fsck.h"

#define NR PR_NO_REPAIR

static const struct problem_def table[PR_COUNT] = {
	[PR_SB_PRIMARY_BAD] = {"SB_PRIMARY_BAD", "primary superblock is damaged", 0},
	[PR_SB_BACKUP_BAD] = {"SB_BACKUP_BAD", "backup superblock is damaged", PR_PREEN_OK},
	[PR_SB_BACKUP_DIFFERS] = {"SB_BACKUP_DIFFERS",
				  "backup superblock disagrees with the "
				  "primary",
				  PR_PREEN_OK},
	[PR_SB_FEATURE_UNKNOWN] = {"SB_FEATURE_UNKNOWN",
				   "filesystem uses a feature this fsck "
				   "does not know",
				   NR},
	[PR_SB_ERRORS_RECORDED] = {"SB_ERRORS_RECORDED",
				   "the filesystem recorded errors while "
				   "mounted",
				   PR_PREEN_OK},
	[PR_JOURNAL_SB_BAD] = {"JOURNAL_SB_BAD", "journal superblock is damaged", 0},
	[PR_JOURNAL_NEEDS_RECOVERY] = {"JOURNAL_NEEDS_RECOVERY",
				       "the journal holds transactions "
				       "to replay",
				       PR_PREEN_OK},
	[PR_FREELIST_BAD] = {"FREELIST_BAD", "free list block is damaged", 0},
	[PR_TREE_CORRUPT] = {"TREE_CORRUPT", "B+tree is damaged", 0},
	[PR_BLOCK_MULTIPLY_CLAIMED] = {"BLOCK_MULTIPLY_CLAIMED", "blocks are claimed twice", 0},
	[PR_BLOCK_LEAKED] = {"BLOCK_LEAKED", "blocks are neither free nor in use", PR_PREEN_OK},
	[PR_EXTENT_BEYOND_END] = {"EXTENT_BEYOND_END",
				  "blocks claimed beyond the end of the "
				  "filesystem",
				  0},
	/* Trimming the earlier extent to where the next one starts keeps
	 * both; which one is right cannot be known, but a length is what a
	 * damaged record most often gets wrong (offsets are keys, kept in
	 * order by the tree). What the trim releases becomes free. */
	[PR_EXTENT_OVERLAP] = {"EXTENT_OVERLAP", "extents of one fork overlap in file offsets", 0},
	[PR_FREE_EXTENT_UNMERGED] = {"FREE_EXTENT_UNMERGED",
				     "adjacent free extents are not "
				     "merged",
				     PR_PREEN_OK},
	[PR_FREE_COUNT_WRONG] = {"FREE_COUNT_WRONG",
				 "free block count in the superblock is "
				 "wrong",
				 PR_PREEN_OK},
	[PR_FREE_TREES_DIFFER] = {"FREE_TREES_DIFFER", "the two free-space trees disagree",
				  PR_PREEN_OK},
	[PR_INODE_COUNT_WRONG] = {"INODE_COUNT_WRONG", "inode count in the superblock is wrong",
				  PR_PREEN_OK},
	[PR_NEXT_INO_TOO_LOW] = {"NEXT_INO_TOO_LOW", "next inode number is already in use",
				 PR_PREEN_OK},
	[PR_ROOT_BAD] = {"ROOT_BAD", "root directory is missing or not a directory", 0},
	[PR_LOST_FOUND_BAD] = {"LOST_FOUND_BAD", "lost+found is missing or not a directory", 0},
	[PR_DIRENT_IN_NON_DIR] = {"DIRENT_IN_NON_DIR",
				  "directory entry in something that is "
				  "not a directory",
				  0},
	[PR_DIRENT_TARGET_MISSING] = {"DIRENT_TARGET_MISSING",
				      "directory entry points to a "
				      "missing inode",
				      0},
	[PR_DIRENT_FTYPE_WRONG] = {"DIRENT_FTYPE_WRONG",
				   "directory entry has the wrong file "
				   "type",
				   PR_PREEN_OK},
	[PR_DIRENT_HASH_WRONG] = {"DIRENT_HASH_WRONG",
				  "directory entry is filed under the wrong "
				  "hash",
				  0},
	[PR_DIR_MULTIPLY_LINKED] = {"DIR_MULTIPLY_LINKED", "directory has more than one name", 0},
	[PR_DIR_PARENT_WRONG] = {"DIR_PARENT_WRONG", "directory's parent (..) is wrong", 0},
	[PR_DIR_UNREACHABLE] = {"DIR_UNREACHABLE", "directory is not reachable from the root", 0},
	[PR_INODE_UNREACHABLE] = {"INODE_UNREACHABLE", "inode has no name", 0},
	[PR_NLINK_WRONG] = {"NLINK_WRONG", "inode link count is wrong", PR_PREEN_OK},
	[PR_INODE_BAD] = {"INODE_BAD", "inode record is inconsistent", 0},
	[PR_ORPHAN_BAD] = {"ORPHAN_BAD", "orphan list entry is wrong", PR_PREEN_OK},
	[PR_SYMLINK_BAD] = {"SYMLINK_BAD", "symbolic link target is malformed", 0},
	[PR_EXTENT_NO_INODE] = {"EXTENT_NO_INODE", "file extents or attributes belong to no inode",
				0},
	[PR_NBLOCKS_WRONG] = {"NBLOCKS_WRONG", "inode block count disagrees with its extents", 0},
	/* Setting the bit only keeps writers that do not know the refcount
	 * tree to read-only: always safe, so preen may do it. */
	[PR_REFC_WITHOUT_FEATURE] = {"REFC_WITHOUT_FEATURE",
				     "refcount tree in use but the reflink feature is "
				     "not set",
				     PR_PREEN_OK},
	[PR_REFC_OVERLAP] = {"REFC_OVERLAP", "refcount records overlap", 0},
	[PR_REFC_UNMERGED] = {"REFC_UNMERGED",
			      "adjacent shared records with equal counts are not merged",
			      PR_PREEN_OK},
	[PR_REFC_MISSING] = {"REFC_MISSING", "shared blocks have no refcount record", 0},
	[PR_REFC_COUNT_WRONG] = {"REFC_COUNT_WRONG", "refcount record has the wrong count", 0},
	[PR_REFC_NOT_SHARED] = {"REFC_NOT_SHARED", "refcount record for blocks that are not shared",
				0},
	[PR_COW_RECORD_LEFTOVER] = {"COW_RECORD_LEFTOVER",
				    "CoW staging record with no CoW fork extent", PR_PREEN_OK},
	[PR_COW_RECORD_MISSING] = {"COW_RECORD_MISSING", "CoW fork extent without a staging record",
				   0},
	[PR_COW_OWNER_WRONG] = {"COW_OWNER_WRONG",
				"CoW staging record names another inode than the fork "
				"mapping it",
				0},
	[PR_COW_IN_DATA_FORK] = {"COW_IN_DATA_FORK",
				 "CoW staging blocks are also mapped by a data fork", 0},
	/* The flag only says "may have shared blocks": setting it on an inode
	 * that has some is always right, so preen may do it. */
	[PR_REFLINK_FLAG_MISSING] = {"REFLINK_FLAG_MISSING",
				     "inode has shared blocks but no reflink flag", PR_PREEN_OK},
	/* Rebuilt from the other trees (repair_space.c); a damaged inode,
	 * directory, extent or attribute tree is TREE_CORRUPT, rebuilt from
	 * its readable records. */
	[PR_FREE_TREE_CORRUPT] = {"FREE_TREE_CORRUPT", "free-space B+tree is damaged", 0},
	[PR_REFC_TREE_CORRUPT] = {"REFC_TREE_CORRUPT", "refcount B+tree is damaged", 0},
	/* Inline data forks (FORMAT.md 7.2): a malformed one, or one beside
	 * extent records, is dropped (the file keeps what the tree maps;
	 * the blocks it held become leaked and free); one in something that
	 * is not a regular file goes as other misplaced inline data does
	 * (INODE_BAD's repair). */
	[PR_INLINE_FORK_BAD] = {"INLINE_FORK_BAD", "inline data fork is malformed", 0},
	[PR_INLINE_FORK_NOT_FILE] = {"INLINE_FORK_NOT_FILE",
				     "inline data fork in something that is not a regular "
				     "file",
				     0},
	[PR_INLINE_FORK_AND_TREE] = {"INLINE_FORK_AND_TREE",
				     "file has an inline data fork and extent records", 0},
	/* The forks are well formed, but on an image made without the
	 * feature they may as well be damage that looks like one; setting an
	 * incompat bit locks older programs out, so it is not preen's call. */
	[PR_INLINE_FORK_NO_FEATURE] = {"INLINE_FORK_NO_FEATURE",
				       "inline data forks in use but the inline_fork "
				       "feature is not set",
				       0},
};

const struct problem_def *problem_def(enum problem_code code)
{
	return &table[code];
}

int fix_problem(struct fsck_ctx *ctx, enum problem_code code, const char *fmt, ...)
{
	const struct problem_def *p = &table[code];
	va_list ap;

	ctx->problems++;
	fsck_progress_clear(ctx);
	printf("%s: [%s] %s: ", ctx->image, p->code, p->msg);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	if (ctx->mode == FSCK_NO)
		printf(" (not fixed: -n)\n");
	else if (p->flags & PR_NO_REPAIR)
		printf(" (not fixed: this fsck must leave it alone)\n");
	else if (ctx->mode == FSCK_PREEN && !(p->flags & PR_PREEN_OK))
		printf(" (not fixed: run fsck without -p)\n");
	else {
		printf(" (fixed)\n");
		return 1;
	}
	return 0;
}
