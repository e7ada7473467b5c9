/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * repair_space.c - rebuilding what the other metadata already says (free
 * space, reference counts) and unmapping fork extents that cannot stay.
 *
 * xfs_repair's phase 5 is the model: the free-space and refcount trees hold
 * nothing of their own (a block is free when nothing claims it; a count is
 * how many data-fork extents map the block), so instead of patching them
 * record by record they are rebuilt from scratch out of the in-core claims
 * passes 1-3 gathered. Passes 2 and 3 only note which repairs were approved
 * (repair_problem); repair_space() runs once, at the end of pass 3:
 *
 *  1. Decide which fork extents go, in memory. Data fork (if approved):
 *     an extent reaching beyond the end of the filesystem goes whole; the
 *     blocks of an extent that are also metadata that stays (superblocks,
 *     free list block, journal, nodes of the inode, directory, extent and
 *     attribute trees, and of the refcount tree unless it is rebuilt) are
 *     unmapped, leaving a hole. The metadata passed its checksum, so what
 *     the file had there is already overwritten: e2fsck's pass 1b would
 *     clone the blocks, which here would copy metadata into the file.
 *     CoW fork (with a refcount rebuild): an extent beyond the end, over
 *     metadata, over data, or over a CoW extent kept before it (by block)
 *     goes whole: staging is a write not yet remapped, which the daemon
 *     discards at mount anyway, so the data fork always wins.
 *  2. Recount the blocks from the data extents that remain. Read the
 *     records still readable of each primary tree being salvaged (below).
 *  3. In use: the static blocks, the nodes of the trees kept, every data
 *     block once, and the staging blocks (the CoW extents kept, or the
 *     staging claims as they are when the refcount tree is kept). All else
 *     is free: alloc_rebuild() replaces both free-space trees, the free list
 *     and the free count (refusing bad input before changing anything).
 *     Leaked blocks, old tree nodes and staging nobody maps become free.
 *  4. Salvaged trees get their records back. The refcount tree, if
 *     rebuilt, is dropped unread (btree_reset: its nodes are free space
 *     now) and refilled: a shared record per run of count >= 2, a staging
 *     record per CoW extent kept. Nodes come from the new free space
 *     through the ordinary allocator.
 *  5. Unmap what step 1 dropped (bmap_unmap, releasing nothing: step 3 has
 *     already counted those blocks free or owned by their other claimant;
 *     extent tree nodes freed or needed go through the allocator, now
 *     sound) and lower the inodes' block counts.
 *  6. Set the reflink feature if shared records exist; fs_sync().
 *
 * Salvage: a damaged node of a tree holding primary information (inode,
 * directory, extent, attribute) costs what that node held; the tree is
 * rebuilt from the records still readable, and the later checks follow up
 * (pass 4 rewrites block counts, frees what inodes that no longer exist
 * owned; names are the name-side repairs).
 *
 * Writes: fsck opens the filesystem without a journal (RFS_FS_NOJOURNAL),
 * as for its other repairs: everything goes to the buffer cache and the
 * final fs_sync() writes it home, a checkpoint. Until then little reaches
 * the disk (the cache evicts only when over budget); a crash part-way may
 * still leave new nodes over old ones, as with e2fsck or xfs_repair, and
 * the next fsck starts again from what the primary trees say. Journalling
 * a rebuild would take a transaction as large as the trees, more than the
 * log may hold: rejected.
 *
 * Nothing is rebuilt when a tree is damaged and neither rebuilt nor
 * salvaged (-p does not salvage): the claims then miss what its unreadable
 * subtrees map, and a rebuild would hand out blocks still in use.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "bmap.h"
#include "file.h"
#include "fsck.h"
#include "inode.h"
#include "refcount.h"
#include "util.h"
#include "xattr.h"

/* Which rebuild fixes each problem. A refcount rebuild drops the old tree,
 * so it rebuilds free space too; dropping fork extents changes the counts. */
static unsigned want_of(enum problem_code code)
{
	const unsigned refc = REPAIR_REFCOUNT | REPAIR_FREE_SPACE;

	switch (code) {
	case PR_FREELIST_BAD:
	case PR_FREE_TREE_CORRUPT:
	case PR_BLOCK_LEAKED:
	case PR_FREE_EXTENT_UNMERGED:
	case PR_FREE_COUNT_WRONG:
	case PR_FREE_TREES_DIFFER:
		return REPAIR_FREE_SPACE;
	case PR_REFC_TREE_CORRUPT:
	case PR_REFC_OVERLAP:
	case PR_REFC_UNMERGED:
	case PR_REFC_MISSING:
	case PR_REFC_COUNT_WRONG:
	case PR_REFC_NOT_SHARED:
	case PR_COW_RECORD_LEFTOVER:
	case PR_COW_RECORD_MISSING:
	case PR_COW_OWNER_WRONG:
	case PR_TREE_CORRUPT: /* a salvaged extent tree changes the counts */
		return refc;
	case PR_COW_IN_DATA_FORK:
	case PR_BLOCK_MULTIPLY_CLAIMED:
	case PR_EXTENT_BEYOND_END:
		return refc | REPAIR_FORKS;
	default:
		return 0;
	}
}

int repair_problem(struct fsck_ctx *ctx, enum problem_code code, const char *fmt, ...)
{
	char msg[320];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (!fix_problem(ctx, code, "%s", msg) || !want_of(code))
		return 0;
	ctx->repair.want |= want_of(code);
	ctx->repair.approved++;
	return 1;
}

/* --- interval lists ------------------------------------------------------ */

static int cmp_ival_start(const void *a, const void *b)
{
	const struct ival *x = a, *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

/* Sorts L and merges overlapping or touching runs (values are dropped). */
static void normalise(struct ivals *l)
{
	size_t k, out = 0;

	if (!l->n)
		return;
	qsort(l->v, l->n, sizeof(*l->v), cmp_ival_start);
	for (k = 0; k < l->n; k++) {
		struct ival *p = out ? &l->v[out - 1] : NULL;
		fsblock_t end = l->v[k].start + l->v[k].len;

		if (p && l->v[k].start <= p->start + p->len) {
			if (end > p->start + p->len)
				p->len = end - p->start;
			continue;
		}
		l->v[out] = l->v[k];
		l->v[out++].val = 0;
	}
	l->n = out;
}

static int beyond_end(const struct fsck_ctx *ctx, fsblock_t start, extlen_t len)
{
	uint64_t n = ctx->fs->sb.block_count;

	return len == 0 || start >= n || len > n - start;
}

/* --- the plan ------------------------------------------------------------- */

struct drop {
	const struct fork_ext *fe;
	fileoff_t off;
	extlen_t len;
};

/* A primary tree's readable records, each as a u16 length and its bytes. */
struct salvage {
	struct rfs_btree *t;
	uint8_t *buf;
	size_t used, cap, nrecs;
};

struct plan {
	struct fsck_ctx *ctx;
	int refcount, forks;
	unsigned salvage; /* 1 << tree type */
	struct salvage salvaged[4];
	unsigned nsalvaged;
	struct ivals hard;    /* metadata that stays, disjoint */
	struct ivals data;    /* data extents kept (val: inode) */
	struct ivals runs;    /* counts of the kept data, disjoint */
	struct ivals staging; /* staging kept (val: owner), disjoint, by start */
	struct drop *drops;
	size_t ndrops, cap_drops;
};

static void add_drop(struct plan *p, const struct fork_ext *fe, fileoff_t off, extlen_t len)
{
	if (p->ndrops == p->cap_drops) {
		p->cap_drops = p->cap_drops ? 2 * p->cap_drops : 64;
		p->drops = realloc(p->drops, p->cap_drops * sizeof(*p->drops));
		if (!p->drops) {
			fprintf(stderr, "fsck.reflinkfs: out of memory\n");
			exit(FSCK_EXIT_OPERROR);
		}
	}
	p->drops[p->ndrops++] = (struct drop){fe, off, len};
}

/* Blocks that stay what they are: static blocks and the nodes of the
 * trees that are neither rebuilt nor salvaged. */
static int is_hard(const struct plan *p, uint16_t owner)
{
	switch (owner) {
	case CLAIM_SUPER:
	case CLAIM_FREELIST_BLOCK:
	case CLAIM_JOURNAL:
		return 1;
	case CLAIM_TREE_INODE:
		return !(p->salvage & (1u << RFS_TREE_INODE));
	case CLAIM_TREE_DIR:
		return !(p->salvage & (1u << RFS_TREE_DIR));
	case CLAIM_TREE_BMAP:
		return !(p->salvage & (1u << RFS_TREE_BMAP));
	case CLAIM_TREE_XATTR:
		return !(p->salvage & (1u << RFS_TREE_XATTR));
	case CLAIM_TREE_REFC:
		return !p->refcount;
	default:
		return 0;
	}
}

static void gather_hard(struct plan *p)
{
	const struct claims *cl = &p->ctx->claims;
	size_t k;

	for (k = 0; k < cl->n; k++)
		if (is_hard(p, cl->v[k].owner) && !beyond_end(p->ctx, cl->v[k].start, cl->v[k].len))
			ivals_add(&p->hard, cl->v[k].start, cl->v[k].len, 0);
	normalise(&p->hard);
}

/* Splits data extent FE into what stays (p->data) and what is dropped:
 * its blocks that are metadata, or all of it if it reaches beyond the end. */
static void plan_data_extent(struct plan *p, const struct fork_ext *fe)
{
	fsblock_t pos = fe->pblk, end = fe->pblk + fe->len;
	size_t k;

	if (beyond_end(p->ctx, fe->pblk, fe->len)) {
		uint64_t n = p->ctx->fs->sb.block_count;
		if (p->forks)
			add_drop(p, fe, fe->off, fe->len);
		else if (fe->pblk && fe->pblk < n) /* kept: what it maps inside stays used */
			ivals_add(&p->data, fe->pblk, n - fe->pblk, fe->ino);
		return;
	}
	if (!p->forks) {
		ivals_add(&p->data, fe->pblk, fe->len, fe->ino);
		return;
	}
	for (k = ivals_first_ending_after(&p->hard, pos); pos < end; k++) {
		fsblock_t hs = k < p->hard.n ? RFS_MIN(p->hard.v[k].start, end) : end;
		fsblock_t he =
			k < p->hard.n ? RFS_MIN(p->hard.v[k].start + p->hard.v[k].len, end) : end;

		if (hs > pos)
			ivals_add(&p->data, pos, hs - pos, fe->ino);
		if (he > hs && he > pos)
			add_drop(p, fe, fe->off + (RFS_MAX(hs, pos) - fe->pblk),
				 he - RFS_MAX(hs, pos));
		pos = RFS_MAX(pos, he);
	}
}

static int cmp_fork_pblk(const void *a, const void *b)
{
	const struct fork_ext *x = *(const struct fork_ext *const *)a;
	const struct fork_ext *y = *(const struct fork_ext *const *)b;

	return x->pblk < y->pblk ? -1 : x->pblk > y->pblk;
}

/* CoW extents, by block: kept if they meet nothing else. */
static void plan_cow(struct plan *p, const struct fork_ext **cow, size_t n)
{
	fsblock_t kept_end = 0;
	size_t k;

	if (n)
		qsort(cow, n, sizeof(*cow), cmp_fork_pblk);
	for (k = 0; k < n; k++) {
		const struct fork_ext *fe = cow[k];
		if (beyond_end(p->ctx, fe->pblk, fe->len) || fe->pblk < kept_end ||
		    ivals_overlap(&p->hard, fe->pblk, fe->len) ||
		    ivals_overlap(&p->runs, fe->pblk, fe->len)) {
			add_drop(p, fe, fe->off, fe->len);
			continue;
		}
		ivals_add(&p->staging, fe->pblk, fe->len, fe->ino);
		kept_end = fe->pblk + fe->len;
	}
}

static void plan_forks(struct plan *p)
{
	const struct repair *r = &p->ctx->repair;
	const struct fork_ext **cow = malloc(RFS_MAX(r->nforks, 1) * sizeof(*cow));
	size_t k, ncow = 0;

	if (!cow) {
		fprintf(stderr, "fsck.reflinkfs: out of memory\n");
		exit(FSCK_EXIT_OPERROR);
	}
	for (k = 0; k < r->nforks; k++) {
		if (r->forks[k].fork == RFS_FORK_DATA)
			plan_data_extent(p, &r->forks[k]);
		else
			cow[ncow++] = &r->forks[k];
	}
	refc_count_runs(&p->data, &p->runs);
	if (p->refcount)
		plan_cow(p, cow, ncow);
	free(cow);
}

/* Free space: the complement of everything still in use. */
static struct rfs_free_ext *free_space(struct plan *p, size_t *nfree)
{
	const struct claims *cl = &p->ctx->claims;
	uint64_t n = p->ctx->fs->sb.block_count;
	struct ivals used = {0};
	struct rfs_free_ext *f;
	fsblock_t pos = 0;
	size_t k;

	for (k = 0; k < p->hard.n; k++)
		ivals_add(&used, p->hard.v[k].start, p->hard.v[k].len, 0);
	for (k = 0; k < p->runs.n; k++)
		ivals_add(&used, p->runs.v[k].start, p->runs.v[k].len, 0);
	for (k = 0; k < p->staging.n; k++)
		ivals_add(&used, p->staging.v[k].start, p->staging.v[k].len, 0);
	for (k = 0; !p->refcount && k < cl->n; k++) /* staging as it is */
		if (cl->v[k].owner == CLAIM_COW_STAGING &&
		    !beyond_end(p->ctx, cl->v[k].start, cl->v[k].len))
			ivals_add(&used, cl->v[k].start, cl->v[k].len, 0);
	normalise(&used);
	f = malloc((used.n + 1) * sizeof(*f));
	if (!f) {
		fprintf(stderr, "fsck.reflinkfs: out of memory\n");
		exit(FSCK_EXIT_OPERROR);
	}
	*nfree = 0;
	for (k = 0; k <= used.n; k++) {
		fsblock_t next = k < used.n ? used.v[k].start : n;
		if (next > pos)
			f[(*nfree)++] = (struct rfs_free_ext){pos, next - pos};
		if (k < used.n)
			pos = used.v[k].start + used.v[k].len;
	}
	free(used.v);
	return f;
}

/* --- applying it ---------------------------------------------------------- */

/* Shared records (runs longer than a record holds take several), then
 * staging records; returns how many shared records went in via *NSHARED. */
static int fill_refcount(struct plan *p, uint64_t *nshared)
{
	struct rfs_fs *fs = p->ctx->fs;
	size_t k;
	int ret = 0;

	*nshared = 0;
	for (k = 0; !ret && k < p->runs.n; k++) {
		fsblock_t pos = p->runs.v[k].start, end = pos + p->runs.v[k].len;
		uint64_t count = RFS_MIN(p->runs.v[k].val, (uint64_t)RFS_REFC_MAX);

		for (; !ret && count >= 2 && pos < end; (*nshared)++) {
			extlen_t len = RFS_MIN(end - pos, RFS_REFC_LEN_MAX);
			ret = refc_shared_add(fs, pos, len, (uint32_t)count);
			pos += len;
		}
	}
	for (k = 0; !ret && k < p->staging.n; k++)
		ret = refc_cow_add(fs, p->staging.v[k].start, p->staging.v[k].len,
				   p->staging.v[k].val);
	return ret;
}

/* Lowers INO's block count by LEN, in the inode and in pass 4's view. */
static int lower_nblocks(struct fsck_ctx *ctx, const struct drop *d)
{
	struct ino_info *ii = fsck_find_ino(ctx, d->fe->ino);
	struct rfs_inode inode;
	int ret;

	ctx->exts[d->fe->ext_idx].len -= d->len;
	if (!ii)
		return 0; /* pass 4 reports extents of no inode */
	ret = inode_read(ctx->fs, ii->ino, &inode);
	if (ret)
		return ret;
	inode.nblocks = inode.nblocks >= d->len ? inode.nblocks - d->len : 0;
	ii->nblocks = inode.nblocks;
	return inode_write(ctx->fs, &inode);
}

static int apply_drop(struct fsck_ctx *ctx, const struct drop *d)
{
	fileoff_t next = d->off, end = d->off + d->len;
	int ret = 0;

	while (!ret && next < end)
		ret = bmap_unmap(ctx->fs, d->fe->ino, d->fe->fork, next, end - next, 16, NULL, NULL,
				 &next);
	if (!ret && ctx->verbose)
		printf("%s: unmapped %s blocks %" PRIu64 "..%" PRIu64 " of inode %" PRIu64 "\n",
		       ctx->image, d->fe->fork == RFS_FORK_DATA ? "data" : "CoW", d->off, end - 1,
		       d->fe->ino);
	if (!ret && d->fe->fork == RFS_FORK_DATA)
		ret = lower_nblocks(ctx, d);
	return ret;
}

/* Shared records need the feature (REFC_WITHOUT_FEATURE otherwise). */
static void set_reflink_feature(struct fsck_ctx *ctx)
{
	struct rfs_sb_info *sb = &ctx->fs->sb;

	if (!(sb->feat_ro_compat & RFS_FEAT_RO_COMPAT_REFLINK)) {
		sb->feat_ro_compat |= RFS_FEAT_RO_COMPAT_REFLINK;
		fs_sb_dirty(ctx->fs);
	}
}

/* --- salvaging a primary tree --------------------------------------------- */

static void keep_rec(void *arg, const struct rfs_btree *t, const void *rec, size_t len)
{
	struct salvage *sv = arg;
	uint16_t l = (uint16_t)len;

	(void)t;
	if (sv->used + len + 2 > sv->cap) {
		sv->cap = RFS_MAX(2 * sv->cap, sv->used + len + 2 + 65536);
		sv->buf = realloc(sv->buf, sv->cap);
		if (!sv->buf) {
			fprintf(stderr, "fsck.reflinkfs: out of memory\n");
			exit(FSCK_EXIT_OPERROR);
		}
	}
	memcpy(sv->buf + sv->used, &l, 2);
	memcpy(sv->buf + sv->used + 2, rec, len);
	sv->used += len + 2;
	sv->nrecs++;
}

/* Reads what is still readable of each salvaged tree, before anything is
 * written: the new free space may reuse the old nodes' blocks. */
static void salvage_collect(struct plan *p)
{
	struct rfs_fs *fs = p->ctx->fs;
	struct rfs_btree *trees[] = {&fs->inodes, &fs->dirs, &fs->bmap, &fs->xattrs};
	unsigned i;

	for (i = 0; i < RFS_ARRAY_SIZE(trees); i++) {
		struct salvage *sv = &p->salvaged[p->nsalvaged];
		struct rfs_btree_check chk = {.visit_rec = keep_rec, .arg = sv};

		if (!(p->salvage & (1u << trees[i]->ops->tree_type)))
			continue;
		sv->t = trees[i];
		btree_check(trees[i], &chk);
		p->nsalvaged++;
	}
}

/* The tree again from its readable records, in key order (a record seen
 * twice through a damaged pointer goes in once). */
static int salvage_insert(struct plan *p, struct salvage *sv)
{
	size_t at = 0, dups = 0;
	int ret = btree_reset(sv->t);

	while (!ret && at < sv->used) {
		uint16_t len;
		memcpy(&len, sv->buf + at, 2);
		ret = btree_insert(sv->t, sv->buf + at + 2, len);
		if (ret == -EEXIST) {
			dups++;
			ret = 0;
		}
		at += 2 + len;
	}
	if (!ret) {
		p->ctx->trees_ok[sv->t->ops->tree_type] = 1; /* pass 4 may look now */
		printf("%s: %s tree rebuilt from its %zu readable records; what the damaged "
		       "nodes held is lost\n",
		       p->ctx->image, sv->t->ops->name, sv->nrecs - dups);
	}
	return ret;
}

static int apply(struct plan *p, const char **step)
{
	struct fsck_ctx *ctx = p->ctx;
	struct rfs_free_ext *f;
	size_t nfree, k;
	uint64_t nshared = 0;
	int ret = 0;

	*step = "rebuilding the free space";
	f = free_space(p, &nfree);
	ret = alloc_rebuild(ctx->fs, f, nfree);
	free(f);
	if (ret)
		return ret;
	*step = "salvaging a damaged tree";
	for (k = 0; k < p->nsalvaged; k++)
		if ((ret = salvage_insert(p, &p->salvaged[k])))
			return ret;
	/* The old tree's nodes are free space now: drop it unread. */
	*step = "rebuilding the refcount tree";
	if (p->refcount &&
	    ((ret = btree_reset(&ctx->fs->refc)) || (ret = fill_refcount(p, &nshared))))
		return ret;
	*step = "unmapping fork extents";
	for (k = 0; k < p->ndrops; k++)
		if ((ret = apply_drop(ctx, &p->drops[k])))
			return ret;
	if (nshared)
		set_reflink_feature(ctx);
	*step = "writing the repairs";
	return fs_sync(ctx->fs);
}

/* A damaged tree that is neither rebuilt nor salvaged, or NULL. */
static const char *damaged_source(const struct fsck_ctx *ctx, int refcount_rebuilt)
{
	static const struct {
		unsigned tree;
		const char *name;
	} need[] = {{RFS_TREE_INODE, "inode"},
		    {RFS_TREE_DIR, "directory"},
		    {RFS_TREE_BMAP, "extent"},
		    {RFS_TREE_XATTR, "extended attribute"},
		    {RFS_TREE_REFC, "refcount"}};
	size_t k;

	for (k = 0; k < RFS_ARRAY_SIZE(need); k++)
		if (!ctx->trees_ok[need[k].tree] && !(ctx->repair.salvage & (1u << need[k].tree)) &&
		    !(need[k].tree == RFS_TREE_REFC && refcount_rebuilt))
			return need[k].name;
	return NULL;
}

void repair_space(struct fsck_ctx *ctx)
{
	struct repair *r = &ctx->repair;
	struct plan p = {.ctx = ctx};
	const char *why, *step = "";
	int ret;

	if (!r->want)
		return;
	p.refcount = (r->want & REPAIR_REFCOUNT) != 0;
	p.forks = (r->want & REPAIR_FORKS) != 0;
	why = damaged_source(ctx, p.refcount);
	if (why || ctx->fs->readonly) {
		printf("%s: free space and refcounts not rebuilt: %s%s\n", ctx->image,
		       why ? why : "the filesystem is open read-only", why ? " tree damaged" : "");
		return;
	}
	if (ctx->verbose)
		printf("%s: rebuilding free space%s%s\n", ctx->image,
		       p.refcount ? ", the refcount tree" : "", p.forks ? ", fork extents" : "");
	p.salvage = r->salvage;
	salvage_collect(&p);
	gather_hard(&p);
	plan_forks(&p);
	ret = apply(&p, &step);
	if (ret) {
		printf("%s: repair failed while %s: %s\n", ctx->image, step, strerror(-ret));
	} else {
		ctx->fixed += r->approved;
		/* rebuilt, hence sound: pass 4's repairs may allocate and free */
		ctx->trees_ok[RFS_TREE_BNO] = ctx->trees_ok[RFS_TREE_CNT] = 1;
		if (p.refcount)
			ctx->trees_ok[RFS_TREE_REFC] = 1;
		if (r->salvage)
			ctx->restart = 1;
	}
	free(p.hard.v);
	free(p.data.v);
	free(p.runs.v);
	free(p.staging.v);
	free(p.drops);
	while (p.nsalvaged)
		free(p.salvaged[--p.nsalvaged].buf);
}

/* The count pass 4 computed (ii->mapped) is what the data fork maps. */
void repair_nblocks(struct fsck_ctx *ctx, struct ino_info *ii)
{
	struct rfs_inode inode;
	int ret = ctx->fs->readonly ? -EROFS : inode_read(ctx->fs, ii->ino, &inode);

	if (!ret) {
		inode.nblocks = ii->mapped;
		ret = inode_write(ctx->fs, &inode);
	}
	if (ret) {
		printf("%s: cannot rewrite the block count of inode %" PRIu64 ": %s\n", ctx->image,
		       ii->ino, strerror(-ret));
		return;
	}
	ii->nblocks = ii->mapped;
	ctx->fixed++;
}

/* Frees everything inode INO (which does not exist) still owns, as a
 * deletion would: data blocks lose a reference (freed at zero), CoW
 * staging is freed, attributes are removed. Free space and refcounts are
 * sound by now (pass 3 rebuilt them if they were not), so the ordinary
 * lib/ paths do it, on a stand-in inode. */
static int drop_owner(struct fsck_ctx *ctx, rfs_ino_t ino)
{
	struct rfs_inode fake = {.ino = ino, .flags = RFS_IFLAG_REFLINK, .nblocks = UINT64_MAX / 2};
	int ret = repair_check_writable(ctx, "free what the inode owned", ino);

	return ret ? ret : repair_free_contents(ctx, &fake);
}

int repair_drop_owner(struct fsck_ctx *ctx, rfs_ino_t ino)
{
	size_t k;
	int ret = drop_owner(ctx, ino);

	if (ret) {
		printf("%s: cannot free what inode %" PRIu64 " owned: %s\n", ctx->image, ino,
		       strerror(-ret));
		return ret;
	}
	for (k = 0; k < ctx->nexts; k++)
		if (ctx->exts[k].ino == ino)
			ctx->exts[k].kind = EXT_DROPPED;
	return 0;
}

/* Every owner of extents or attributes that has no inode, the first time
 * pass 4 reports one (it reports only the first few); each later report
 * only counts as fixed. */
void repair_orphan_extents(struct fsck_ctx *ctx)
{
	struct repair *r = &ctx->repair;
	rfs_ino_t last = 0;
	size_t k;
	int ret = r->orphans_ret;

	for (k = 0; !r->orphans_done && !ret && k < ctx->nexts; k++) {
		rfs_ino_t ino = ctx->exts[k].ino;
		if (ino == last || fsck_find_ino(ctx, ino))
			continue;
		last = ino;
		ret = drop_owner(ctx, ino);
		if (ret)
			printf("%s: cannot free what inode %" PRIu64 " owned: %s\n", ctx->image,
			       ino, strerror(-ret));
	}
	r->orphans_done = 1;
	r->orphans_ret = ret;
	if (!ret)
		ctx->fixed++;
}
