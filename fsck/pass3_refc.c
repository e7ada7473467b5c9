/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * pass3_refc.c - reference counts and CoW staging.
 *
 * A block's reference count is the number of data-fork extents mapping it,
 * across all inodes (an inode mapping it twice counts twice). The refcount
 * tree records it only where it is 2 or more (domain SHARED, neighbours of
 * equal count merged); an allocated block in no record has one owner.
 * fsck recomputes the counts from the data forks alone and compares:
 *
 *   - the extents' starts and ends, each sorted, are swept once (a count
 *     only changes there), giving runs of constant count: O(n log n) time
 *     and O(n) memory in the number of extents, never a bit per block
 *     (xfs_repair's compute_refcounts sorts and sweeps the same way);
 *   - those runs against the SHARED records: blocks mapped twice or more
 *     without a record, a record with the wrong count, a record on blocks
 *     mapped once or not at all; and the records among themselves:
 *     overlaps, equal neighbours left unmerged;
 *   - CoW fork extents against the COW (staging) records, block by block:
 *     each staging block is mapped by its owner's CoW fork, by no other
 *     CoW fork, and by no data fork;
 *   - every inode that maps a shared block has RFS_IFLAG_REFLINK.
 *
 * It then hands the space sweep (pass3_space.c) every data block once,
 * however many extents share it, and every staging block once: a shared
 * block is not "claimed twice", but a data block that is also a tree node,
 * free space or staging still is. Data blocks mapped twice without a
 * record are reported here, as REFC_MISSING.
 *
 * Comparisons need sound trees: with the extent or refcount tree damaged
 * the lists are partial and every difference would be noise, so only the
 * claims are handed on (pass 3's sweep then does not report leaks).
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fsck.h"
#include "inode.h"
#include "refcount.h"
#include "util.h"

#define REPORT_MAX 10

struct refc_check {
	struct fsck_ctx *ctx;
	unsigned reported[PR_COUNT]; /* per problem, to cap the output */
	int compare;		     /* the trees are sound enough to compare */
	struct ivals runs;	     /* recomputed counts (val >= 1), disjoint, by start */
	struct ivals shared_runs;    /* the runs with val >= 2 */
	struct ivals staged;	     /* staging blocks (val: an inode), disjoint, by start */
};

static void report(struct refc_check *rc, enum problem_code code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void report(struct refc_check *rc, enum problem_code code, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	if (rc->reported[code]++ >= REPORT_MAX)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	repair_problem(rc->ctx, code, "%s", msg);
}

static void report_totals(struct refc_check *rc)
{
	unsigned code;

	for (code = 0; code < PR_COUNT; code++)
		if (rc->reported[code] > REPORT_MAX)
			printf("%s: ... and %u more %s\n", rc->ctx->image,
			       rc->reported[code] - REPORT_MAX, problem_def(code)->code);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static int cmp_ival(const void *a, const void *b)
{
	const struct ival *x = a, *y = b;

	if (x->start != y->start)
		return x->start < y->start ? -1 : 1;
	return x->val < y->val ? -1 : x->val > y->val;
}

/* Appends a run, merged with the previous one if it continues it with the
 * same value (lists built this way are maximal). */
static void add_run(struct ivals *l, fsblock_t start, extlen_t len, uint64_t val)
{
	struct ival *prev = l->n ? &l->v[l->n - 1] : NULL;

	if (prev && prev->start + prev->len == start && prev->val == val)
		prev->len += len;
	else
		ivals_add(l, start, len, val);
}

static uint64_t *xmalloc_u64(size_t n)
{
	uint64_t *v = malloc(RFS_MAX(n, 1) * sizeof(*v));

	if (!v) {
		fprintf(stderr, "fsck.reflinkfs: out of memory\n");
		exit(FSCK_EXIT_OPERROR);
	}
	return v;
}

/*
 * The count of every block from the data extents: between two consecutive
 * extent boundaries (a start or an end) the number of extents covering a
 * block is constant, and each start adds one, each end removes one.
 */
void refc_count_runs(const struct ivals *exts, struct ivals *runs)
{
	size_t n = exts->n, i = 0, j = 0, k;
	uint64_t *starts = xmalloc_u64(n), *ends = xmalloc_u64(n);
	uint64_t depth = 0;
	fsblock_t pos;

	for (k = 0; k < n; k++) {
		starts[k] = exts->v[k].start;
		ends[k] = exts->v[k].start + exts->v[k].len;
	}
	qsort(starts, n, sizeof(*starts), cmp_u64);
	qsort(ends, n, sizeof(*ends), cmp_u64);
	pos = n ? starts[0] : 0;
	while (j < n) {
		fsblock_t next = i < n && starts[i] < ends[j] ? starts[i] : ends[j];

		if (next > pos && depth)
			add_run(runs, pos, next - pos, depth);
		pos = next;
		for (; i < n && starts[i] == pos; i++)
			depth++;
		for (; j < n && ends[j] == pos; j++)
			depth--;
	}
	free(starts);
	free(ends);
}

/*
 * Sorts L by start and makes its runs disjoint: a run overlapping what
 * came before is reported (CODE, with WHAT naming the list) and cut to its
 * part beyond, or dropped. The walks below need disjoint lists.
 */
static void make_disjoint(struct refc_check *rc, struct ivals *l, enum problem_code code,
			  const char *what)
{
	fsblock_t end = 0;
	size_t k, out = 0;

	if (l->n) /* an empty list has no array, and qsort wants one */
		qsort(l->v, l->n, sizeof(*l->v), cmp_ival);
	for (k = 0; k < l->n; k++) {
		struct ival iv = l->v[k];
		fsblock_t iv_end = iv.start + iv.len;

		if (out && iv.start < end) {
			const struct ival *p = &l->v[out - 1];
			report(rc, code,
			       "%s %" PRIu64 "+%" PRIu64 " (%" PRIu64 ") and %" PRIu64 "+%" PRIu64
			       " (%" PRIu64 ")",
			       what, p->start, p->len, p->val, iv.start, iv.len, iv.val);
			if (iv_end <= end)
				continue;
			iv.start = end;
			iv.len = iv_end - end;
		}
		l->v[out++] = iv;
		end = RFS_MAX(end, iv_end);
	}
	l->n = out;
}

/* The value of list L at block POS (0 where L has no run), stepping *I
 * past runs that end before POS; lowers *NEXT to the next block where
 * that value may change. */
static uint64_t value_at(const struct ivals *l, size_t *i, fsblock_t pos, fsblock_t *next)
{
	const struct ival *iv;

	while (*i < l->n && l->v[*i].start + l->v[*i].len <= pos)
		(*i)++;
	if (*i >= l->n)
		return 0;
	iv = &l->v[*i];
	if (iv->start > pos) {
		*next = RFS_MIN(*next, iv->start);
		return 0;
	}
	*next = RFS_MIN(*next, iv->start + iv->len);
	return iv->val;
}

typedef void (*zip_fn)(struct refc_check *rc, fsblock_t start, fsblock_t end, uint64_t a,
		       uint64_t b);

/* Walks two disjoint sorted lists together, calling FN for every maximal
 * stretch of blocks over which (value in A, value in B) is constant and
 * not (0, 0). Linear in the lengths of the lists. */
static void zip(struct refc_check *rc, const struct ivals *a, const struct ivals *b, zip_fn fn)
{
	size_t i = 0, j = 0;
	fsblock_t pos = 0, from = 0;
	uint64_t cur_a = 0, cur_b = 0;

	for (;;) {
		fsblock_t next = UINT64_MAX;
		uint64_t va = value_at(a, &i, pos, &next), vb = value_at(b, &j, pos, &next);

		if (va != cur_a || vb != cur_b) {
			if (cur_a || cur_b)
				fn(rc, from, pos, cur_a, cur_b);
			from = pos;
			cur_a = va;
			cur_b = vb;
		}
		if (i >= a->n && j >= b->n)
			break;
		pos = next;
	}
}

/* "inodes 12, 40" for the data extents that map any of [START, END): a
 * scan of every extent, affordable because reports are capped. */
static const char *data_owners(const struct refc_check *rc, fsblock_t start, fsblock_t end,
			       char *buf, size_t len)
{
	const struct ivals *d = &rc->ctx->data_exts;
	char list[80] = "";
	size_t k, used = 0;
	unsigned named = 0;

	for (k = 0; k < d->n && used < sizeof(list); k++) {
		const struct ival *e = &d->v[k];
		if (e->start >= end || e->start + e->len <= start)
			continue;
		if (named++ == 4) {
			snprintf(list + used, sizeof(list) - used, ", ...");
			break;
		}
		used += (size_t)snprintf(list + used, sizeof(list) - used, "%s%" PRIu64,
					 used ? ", " : "", e->val);
	}
	snprintf(buf, len, "%s %s", named > 1 ? "inodes" : "inode", list);
	return buf;
}

/* A: recomputed count; B: the shared record's count. */
static void shared_stretch(struct refc_check *rc, fsblock_t start, fsblock_t end, uint64_t mapped,
			   uint64_t rec)
{
	char who[96];

	if (mapped >= 2 && !rec)
		report(rc, PR_REFC_MISSING,
		       "blocks %" PRIu64 "..%" PRIu64 " are mapped %" PRIu64 " times (%s)", start,
		       end - 1, mapped, data_owners(rc, start, end, who, sizeof(who)));
	else if (mapped >= 2 && rec != mapped)
		report(rc, PR_REFC_COUNT_WRONG,
		       "blocks %" PRIu64 "..%" PRIu64 ": the record says %" PRIu64
		       ", data forks map them %" PRIu64 " times",
		       start, end - 1, rec, mapped);
	else if (mapped < 2 && rec)
		report(rc, PR_REFC_NOT_SHARED,
		       "blocks %" PRIu64 "..%" PRIu64 ": the record says %" PRIu64 ", %s", start,
		       end - 1, rec, mapped ? "one data fork maps them" : "no data fork maps them");
}

static void check_unmerged(struct refc_check *rc, const struct ivals *shared)
{
	size_t k;

	for (k = 1; k < shared->n; k++) {
		const struct ival *p = &shared->v[k - 1], *c = &shared->v[k];
		if (p->start + p->len == c->start && p->val == c->val &&
		    p->len + c->len <= RFS_REFC_LEN_MAX)
			report(rc, PR_REFC_UNMERGED,
			       "%" PRIu64 "+%" PRIu64 " and %" PRIu64 "+%" PRIu64
			       ", count %" PRIu64,
			       p->start, p->len, c->start, c->len, c->val);
	}
}

static void check_shared(struct refc_check *rc)
{
	struct fsck_ctx *ctx = rc->ctx;

	make_disjoint(rc, &ctx->shared, PR_REFC_OVERLAP, "shared records (count)");
	if (!rc->compare)
		return;
	check_unmerged(rc, &ctx->shared);
	zip(rc, &rc->runs, &ctx->shared, shared_stretch);
}

/* A: the inode whose CoW fork maps the blocks; B: the staging record's
 * owner. Every stretch is staging space, whichever side says so. */
static void cow_stretch(struct refc_check *rc, fsblock_t start, fsblock_t end, uint64_t fork,
			uint64_t owner)
{
	add_run(&rc->staged, start, end - start, fork ? fork : owner);
	claims_add(&rc->ctx->claims, start, end - start, CLAIM_COW_STAGING);
	if (!rc->compare)
		return;
	if (fork && !owner)
		report(rc, PR_COW_RECORD_MISSING,
		       "blocks %" PRIu64 "..%" PRIu64 ", CoW fork of inode %" PRIu64, start,
		       end - 1, fork);
	else if (!fork)
		report(rc, PR_COW_RECORD_LEFTOVER,
		       "blocks %" PRIu64 "..%" PRIu64 ", owner inode %" PRIu64, start, end - 1,
		       owner);
	else if (fork != owner)
		report(rc, PR_COW_OWNER_WRONG,
		       "blocks %" PRIu64 "..%" PRIu64 ": CoW fork of inode %" PRIu64
		       ", the record says inode %" PRIu64,
		       start, end - 1, fork, owner);
}

/* A: recomputed count; B: the staging blocks' inode. */
static void cow_data_stretch(struct refc_check *rc, fsblock_t start, fsblock_t end, uint64_t mapped,
			     uint64_t ino)
{
	char who[96];

	if (mapped && ino)
		report(rc, PR_COW_IN_DATA_FORK,
		       "blocks %" PRIu64 "..%" PRIu64 ", staging for inode %" PRIu64 ", data of %s",
		       start, end - 1, ino, data_owners(rc, start, end, who, sizeof(who)));
}

static void check_staging(struct refc_check *rc)
{
	struct fsck_ctx *ctx = rc->ctx;

	/* Two CoW forks mapping one block claim it twice, as two data forks
	 * would without a refcount: staging blocks are never shared. */
	make_disjoint(rc, &ctx->cow_exts, PR_BLOCK_MULTIPLY_CLAIMED, "CoW fork extents (inode)");
	make_disjoint(rc, &ctx->staging, PR_REFC_OVERLAP, "staging records (owner)");
	zip(rc, &ctx->cow_exts, &ctx->staging, cow_stretch);
	if (rc->compare)
		zip(rc, &rc->runs, &rc->staged, cow_data_stretch);
}

/* Each data block once, however many extents map it. */
static void claim_data(struct refc_check *rc)
{
	const struct ivals *runs = &rc->runs;
	size_t k = 0;

	while (k < runs->n) {
		fsblock_t start = runs->v[k].start, end = start + runs->v[k].len;
		for (k++; k < runs->n && runs->v[k].start == end; k++)
			end += runs->v[k].len;
		claims_add(&rc->ctx->claims, start, end - start, CLAIM_FILE_DATA);
	}
}

static void set_reflink_flag(struct fsck_ctx *ctx, struct ino_info *ii)
{
	struct rfs_inode inode;
	int ret = ctx->fs->readonly ? -EROFS : inode_read(ctx->fs, ii->ino, &inode);

	if (!ret) {
		inode.flags |= RFS_IFLAG_REFLINK;
		ret = inode_write(ctx->fs, &inode);
	}
	if (ret) {
		printf("%s: cannot set the flag of inode %" PRIu64 ": %s\n", ctx->image, ii->ino,
		       strerror(-ret));
		return;
	}
	ii->reflink = 1;
	ctx->fixed++;
}

/* Data extents come in inode order, so each inode is decided once. Not
 * capped like the others: each report may come with its repair. */
static void check_reflink_flags(struct refc_check *rc)
{
	struct fsck_ctx *ctx = rc->ctx;
	rfs_ino_t done = 0;
	size_t k;

	for (k = 0; k < ctx->data_exts.n; k++) {
		const struct ival *e = &ctx->data_exts.v[k];
		struct ino_info *ii;

		if (e->val == done || !ivals_overlap(&rc->shared_runs, e->start, e->len))
			continue;
		done = e->val;
		ii = fsck_find_ino(ctx, e->val);
		if (!ii || ii->reflink) /* no inode: pass 4 reports the extent */
			continue;
		if (fix_problem(ctx, PR_REFLINK_FLAG_MISSING, "inode %" PRIu64, ii->ino))
			set_reflink_flag(ctx, ii);
	}
}

static void shared_only(struct refc_check *rc)
{
	size_t k;

	for (k = 0; k < rc->runs.n; k++)
		if (rc->runs.v[k].val >= 2)
			ivals_add(&rc->shared_runs, rc->runs.v[k].start, rc->runs.v[k].len,
				  rc->runs.v[k].val);
}

void pass3_refcounts(struct fsck_ctx *ctx)
{
	struct refc_check rc = {.ctx = ctx};

	rc.compare = ctx->trees_ok[RFS_TREE_BMAP] && ctx->trees_ok[RFS_TREE_REFC];
	refc_count_runs(&ctx->data_exts, &rc.runs);
	shared_only(&rc);
	claim_data(&rc);
	check_shared(&rc);
	check_staging(&rc);
	if (ctx->trees_ok[RFS_TREE_BMAP] && ctx->trees_ok[RFS_TREE_INODE])
		check_reflink_flags(&rc);
	report_totals(&rc);
	if (ctx->verbose)
		printf("  %zu data extents, %zu runs mapped more than once, %zu staging runs\n",
		       ctx->data_exts.n, rc.shared_runs.n, rc.staged.n);
	free(rc.runs.v);
	free(rc.shared_runs.v);
	free(rc.staged.v);
}
