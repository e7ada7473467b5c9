/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * pass3_space.c - every block accounted for exactly once.
 *
 * The claims gathered by passes 1 and 2 (static blocks, free list entries,
 * tree nodes, free extents) and by pass3_refc.c (file data and CoW
 * staging, each block once however shared) are sorted by block and swept
 * once: an overlap is a block claimed twice, a gap is a leaked block. Then
 * the free extents are checked for merging and against the superblock's
 * count, and the cnt tree's view of free space is compared with the bno
 * tree's.
 *
 * Memory is one entry per claim (tree nodes and extents), not one bit
 * per block: a 1 TiB image with little metadata costs kilobytes.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "fsck.h"
#include "util.h"

#define REPORT_MAX 10

static int cmp_claim(const void *a, const void *b)
{
	const struct claim *x = a, *y = b;

	if (x->start != y->start)
		return x->start < y->start ? -1 : 1;
	return (int)x->owner - (int)y->owner;
}

struct sweep {
	struct fsck_ctx *ctx;
	unsigned overlaps, leaks;
	int report_leaks;
};

static void report_leak(struct sweep *s, fsblock_t from, fsblock_t to)
{
	if (!s->report_leaks)
		return;
	if (s->leaks++ < REPORT_MAX)
		repair_problem(s->ctx, PR_BLOCK_LEAKED, "blocks %" PRIu64 "..%" PRIu64, from,
			       to - 1);
}

/* The primary tree whose nodes OWNER claims, or 0. */
static unsigned primary_tree(uint16_t owner)
{
	switch (owner) {
	case CLAIM_TREE_INODE:
		return RFS_TREE_INODE;
	case CLAIM_TREE_DIR:
		return RFS_TREE_DIR;
	case CLAIM_TREE_BMAP:
		return RFS_TREE_BMAP;
	case CLAIM_TREE_XATTR:
		return RFS_TREE_XATTR;
	default:
		return 0;
	}
}

/* How repair_space() settles an overlap: file data over metadata is
 * unmapped, CoW staging gives way, free space and the free-space and
 * refcount trees are rebuilt. A node reached twice in one primary tree
 * (only a bug can do that: its parents' checksums are sound) means that
 * tree is salvaged, each record once. Two different kinds of metadata on
 * one block cannot both pass their verifiers, so that case does not arise. */
static void report_overlap(struct sweep *s, const struct claim *c, const struct claim *prev,
			   fsblock_t end)
{
	int approved = (s->ctx->repair.want & REPAIR_FORKS) != 0; /* as for the first */

	if (s->overlaps++ < REPORT_MAX)
		approved =
			repair_problem(s->ctx, PR_BLOCK_MULTIPLY_CLAIMED,
				       "blocks %" PRIu64 "..%" PRIu64 " claimed by %s and %s",
				       c->start, RFS_MIN(end, c->start + c->len) - 1,
				       claim_owner_name(prev->owner), claim_owner_name(c->owner));
	if (approved && c->owner == prev->owner && primary_tree(c->owner))
		s->ctx->repair.salvage |= 1u << primary_tree(c->owner);
}

static void sweep_claims(struct fsck_ctx *ctx)
{
	struct claims *cl = &ctx->claims;
	uint64_t n = ctx->fs->sb.block_count;
	struct sweep s = {ctx, 0, 0, 1};
	fsblock_t covered = 0;
	const struct claim *last = NULL;
	size_t i;
	unsigned t;

	for (t = RFS_TREE_BNO; t < RFS_TREE_MAX; t++)
		if (!ctx->trees_ok[t])
			s.report_leaks = 0; /* unreadable subtrees would show as leaks */
	qsort(cl->v, cl->n, sizeof(*cl->v), cmp_claim);
	for (i = 0; i < cl->n; i++) {
		const struct claim *c = &cl->v[i];
		fsck_progress(ctx, 3, i + 1, cl->n);
		if (c->len == 0 || c->start >= n || c->len > n - c->start) {
			repair_problem(ctx, PR_EXTENT_BEYOND_END,
				       "%s at %" PRIu64 "+%" PRIu64 " (filesystem has %" PRIu64
				       " blocks)",
				       claim_owner_name(c->owner), c->start, c->len, n);
			continue;
		}
		if (c->start < covered)
			report_overlap(&s, c, last, covered);
		else if (c->start > covered)
			report_leak(&s, covered, c->start);
		if (c->start + c->len > covered) {
			covered = c->start + c->len;
			last = c;
		}
	}
	if (covered < n)
		report_leak(&s, covered, n);
	if (s.overlaps > REPORT_MAX)
		printf("%s: ... and %u more multiply-claimed ranges\n", ctx->image,
		       s.overlaps - REPORT_MAX);
	if (s.leaks > REPORT_MAX)
		printf("%s: ... and %u more leaked ranges\n", ctx->image, s.leaks - REPORT_MAX);
}

/* The bno tree's extents, in block order (they are claims of CLAIM_FREE). */
static void check_free_extents(struct fsck_ctx *ctx)
{
	const struct claims *cl = &ctx->claims;
	uint64_t total = 0;
	const struct claim *prev = NULL;
	size_t i, unmerged = 0;

	for (i = 0; i < cl->n; i++) {
		const struct claim *c = &cl->v[i];
		if (c->owner != CLAIM_FREE)
			continue;
		total += c->len;
		if (prev && prev->start + prev->len == c->start && unmerged++ < REPORT_MAX)
			repair_problem(ctx, PR_FREE_EXTENT_UNMERGED,
				       "%" PRIu64 "+%" PRIu64 " and %" PRIu64 "+%" PRIu64,
				       prev->start, prev->len, c->start, c->len);
		prev = c;
	}
	if (total != ctx->fs->sb.free_blocks)
		repair_problem(ctx, PR_FREE_COUNT_WRONG,
			       "superblock says %" PRIu64 ", the trees hold %" PRIu64,
			       ctx->fs->sb.free_blocks, total);
}

static void compare_free_trees(struct fsck_ctx *ctx)
{
	struct claims *cnt = &ctx->cnt_extents;
	const struct claims *cl = &ctx->claims;
	size_t i = 0, j = 0;

	if (cnt->n) /* an empty cnt tree gave no array, and qsort wants one */
		qsort(cnt->v, cnt->n, sizeof(*cnt->v), cmp_claim);
	for (;;) {
		while (i < cl->n && cl->v[i].owner != CLAIM_FREE)
			i++;
		if (i >= cl->n || j >= cnt->n)
			break;
		if (cl->v[i].start != cnt->v[j].start || cl->v[i].len != cnt->v[j].len)
			break;
		i++;
		j++;
	}
	while (i < cl->n && cl->v[i].owner != CLAIM_FREE)
		i++;
	if (i < cl->n || j < cnt->n)
		repair_problem(ctx, PR_FREE_TREES_DIFFER, "first difference near block %" PRIu64,
			       j < cnt->n ? cnt->v[j].start : cl->v[i].start);
}

int pass3_space(struct fsck_ctx *ctx)
{
	if (ctx->verbose)
		printf("Pass 3: reference counts, block accounting and free space\n");
	pass3_refcounts(ctx); /* first: it claims the file data and staging blocks */
	sweep_claims(ctx);
	if (ctx->trees_ok[RFS_TREE_BNO])
		check_free_extents(ctx);
	if (ctx->trees_ok[RFS_TREE_BNO] && ctx->trees_ok[RFS_TREE_CNT])
		compare_free_trees(ctx);
	repair_space(ctx);
	return 0;
}
