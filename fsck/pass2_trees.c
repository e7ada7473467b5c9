/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * pass2_trees.c - every B+tree: structure, checksums, records.
 *
 * Runs the engine's own checker (lib/btree.c) over each tree, so fsck and
 * the daemon agree on what a valid tree is. On the way it records every
 * node block as a claim, and gathers what later passes need: free extents
 * from both free-space trees, a summary of each inode, each directory
 * entry, and each file extent (whose blocks are claimed as file data). The
 * free list's entries are claimed here too.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "bmap.h"
#include "dir.h"
#include "fsck.h"
#include "inode.h"
#include "util.h"

static uint16_t tree_claim(uint16_t tree_type)
{
	switch (tree_type) {
	case RFS_TREE_BNO:
		return CLAIM_TREE_BNO;
	case RFS_TREE_CNT:
		return CLAIM_TREE_CNT;
	case RFS_TREE_INODE:
		return CLAIM_TREE_INODE;
	case RFS_TREE_BMAP:
		return CLAIM_TREE_BMAP;
	case RFS_TREE_XATTR:
		return CLAIM_TREE_XATTR;
	case RFS_TREE_REFC:
		return CLAIM_TREE_REFC;
	default:
		return CLAIM_TREE_DIR;
	}
}

/* The free-space and refcount trees hold nothing the other trees do not
 * say (free = not claimed; counts = what the data forks map): they are
 * rebuilt. The others hold primary information: they are rebuilt from
 * the records still readable, and what the damaged nodes held is lost
 * (repair_space.c). */
static void on_report(void *arg, const struct rfs_btree *t, fsblock_t blkno, const char *msg)
{
	struct fsck_ctx *ctx = arg;
	uint16_t type = t->ops->tree_type;
	enum problem_code code = type == RFS_TREE_BNO || type == RFS_TREE_CNT ? PR_FREE_TREE_CORRUPT
				 : type == RFS_TREE_REFC		      ? PR_REFC_TREE_CORRUPT
									      : PR_TREE_CORRUPT;

	ctx->trees_ok[type] = 0;
	if (repair_problem(ctx, code, "%s tree, block %" PRIu64 ": %s", t->ops->name, blkno, msg) &&
	    code == PR_TREE_CORRUPT)
		ctx->repair.salvage |= 1u << type;
}

static void on_node(void *arg, const struct rfs_btree *t, fsblock_t blkno, unsigned level)
{
	struct fsck_ctx *ctx = arg;

	(void)level;
	if (claims_add(&ctx->claims, blkno, 1, tree_claim(t->ops->tree_type)))
		ctx->trees_ok[0] = 0; /* out of memory: reported by the driver */
}

static void grow(void **v, size_t *cap, size_t n, size_t elem)
{
	if (n < *cap)
		return;
	*cap = *cap ? *cap * 2 : 1024;
	*v = realloc(*v, *cap * elem);
	if (!*v) {
		fprintf(stderr, "fsck.reflinkfs: out of memory\n");
		exit(FSCK_EXIT_OPERROR);
	}
}

static void rec_bno(struct fsck_ctx *ctx, const uint8_t *rec)
{
	claims_add(&ctx->claims, rfs_get_le64(rec), rfs_get_le64(rec + 8), CLAIM_FREE);
}

static void rec_cnt(struct fsck_ctx *ctx, const uint8_t *rec)
{
	claims_add(&ctx->cnt_extents, rfs_get_le64(rec + 8), rfs_get_le64(rec), CLAIM_FREE);
}

/* Why INODE's inline data fork is malformed (FORMAT.md 7.2), or NULL. */
static const char *inline_fork_fault(const struct rfs_inode *inode)
{
	const size_t esz = sizeof(struct rfs_inline_ext);
	fileoff_t prev_end = 0;
	unsigned i;

	if (inode->inline_len % esz || inode->inline_len > RFS_INLINE_EXTS * esz)
		return "inline_len is not a multiple of 24 up to 120";
	for (i = 0; i < inode->inline_len / esz; i++) {
		struct rfs_inline_ext x;
		uint64_t off, pblk, len;

		memcpy(&x, inode->inline_data + i * esz, esz);
		off = le64_get(x.off);
		pblk = le64_get(x.pblk);
		len = le32_get(x.len);
		if (pblk == 0 || len == 0)
			return "an extent has block 0 or length 0";
		if (le32_get(x.flags) & ~(uint32_t)RFS_BMAP_UNWRITTEN)
			return "an extent has unknown flags";
		if (off >= RFS_MAX_FILE_BLOCKS || len > RFS_MAX_FILE_BLOCKS - off ||
		    pblk + len < pblk)
			return "an extent lies beyond the largest offset or block";
		if (off < prev_end)
			return "extents are not sorted or overlap";
		prev_end = off + len;
	}
	return NULL;
}

static void grow(void **v, size_t *cap, size_t n, size_t elem);

/* Keeps a well-formed inline data fork for check_inline_forks (which
 * feeds it to the checks once the extent tree has been walked), or says
 * what is wrong with it. */
static void note_inline_fork(struct fsck_ctx *ctx, struct ino_info *ii,
			     const struct rfs_inode *inode)
{
	const char *why = inline_fork_fault(inode);
	unsigned i, n = inode->inline_len / sizeof(struct rfs_inline_ext);

	if (!S_ISREG(inode->mode)) {
		ii->inline_bad = (uint8_t)fix_problem(ctx, PR_INLINE_FORK_NOT_FILE,
						      "inode %" PRIu64 " (mode 0%o): dropped",
						      inode->ino, inode->mode);
		return;
	}
	if (why) {
		ii->inline_clear = (uint8_t)fix_problem(
			ctx, PR_INLINE_FORK_BAD, "inode %" PRIu64 ": %s: dropped", inode->ino, why);
		return;
	}
	ii->inline_fork = 1;
	ii->inline_n = (uint8_t)n;
	ii->inline_first = ctx->ninline_exts;
	for (i = 0; i < n; i++) {
		struct rfs_inline_ext x;
		struct rfs_bmap_rec *r;

		grow((void **)&ctx->inline_exts, &ctx->cap_inline_exts, ctx->ninline_exts,
		     sizeof(*r));
		r = &ctx->inline_exts[ctx->ninline_exts++];
		memcpy(&x, inode->inline_data + i * sizeof(x), sizeof(x));
		r->ino = le64_make(inode->ino);
		r->fkey = x.off; /* fork 0: the data fork */
		r->pblk = x.pblk;
		r->len = x.len;
		r->flags = x.flags;
		r->tid = le64_make(inode->tid);
	}
}

static void rec_inode(struct fsck_ctx *ctx, const uint8_t *rec, size_t len)
{
	struct rfs_inode inode;
	struct ino_info *ii;

	if (inode_decode(rec, len, &inode))
		return; /* the tree checker already reported the record */
	grow((void **)&ctx->inodes, &ctx->cap_inodes, ctx->ninodes, sizeof(*ctx->inodes));
	ii = &ctx->inodes[ctx->ninodes++];
	memset(ii, 0, sizeof(*ii));
	ii->ino = inode.ino;
	ii->parent = inode.parent;
	ii->mode = inode.mode;
	ii->nlink = inode.nlink;
	ii->nblocks = inode.nblocks;
	ii->reflink = (inode.flags & RFS_IFLAG_REFLINK) != 0;
	ii->symlink_inline_ok = inode.inline_type == RFS_INLINE_SYMLINK
					? inode.inline_len == inode.size
					: inode.inline_type == RFS_INLINE_NONE && inode.size < 4096;
	/* repaired by pass 4 (the tree cannot change during this walk) */
	if (inode.inline_type > RFS_INLINE_EXTENTS ||
	    (inode.inline_type == RFS_INLINE_SYMLINK && !S_ISLNK(inode.mode)))
		ii->inline_bad = (uint8_t)fix_problem(ctx, PR_INODE_BAD,
						      "inode %" PRIu64 ": inline data of type %u",
						      inode.ino, inode.inline_type);
	if (inode.inline_type == RFS_INLINE_EXTENTS)
		note_inline_fork(ctx, ii, &inode);
}

static void add_ext_info(struct fsck_ctx *ctx, rfs_ino_t ino, uint64_t len, enum ext_kind kind)
{
	struct ext_info *ei;

	grow((void **)&ctx->exts, &ctx->cap_exts, ctx->nexts, sizeof(*ctx->exts));
	ei = &ctx->exts[ctx->nexts++];
	ei->ino = ino;
	ei->len = len;
	ei->kind = (uint8_t)kind;
}

/* The whole extent, file offset included, for repairs that unmap it; its
 * ext_info was the last one added. */
static void add_fork_ext(struct fsck_ctx *ctx, const struct rfs_bmap_rec *r)
{
	struct repair *rp = &ctx->repair;
	struct fork_ext *fe;

	grow((void **)&rp->forks, &rp->cap_forks, rp->nforks, sizeof(*rp->forks));
	fe = &rp->forks[rp->nforks++];
	fe->ino = le64_get(r->ino);
	fe->off = le64_get(r->fkey) & (RFS_MAX_FILE_BLOCKS - 1);
	fe->pblk = le64_get(r->pblk);
	fe->len = le32_get(r->len);
	fe->ext_idx = ctx->nexts - 1;
	fe->fork = (le64_get(r->fkey) >> RFS_BMAP_OFF_BITS) == RFS_FORK_COW ? RFS_FORK_COW
									    : RFS_FORK_DATA;
}

/*
 * Extents of one fork must not overlap in file offsets (bmap_unmap and
 * every lookup assume it). Records come in key order, so the one before R
 * is the only one to compare with, and the overlap is its tail: if the
 * repair is approved, it is shortened to end where R starts, in what pass
 * 2 gathered now and in the tree after the walk (apply_trims). Returns 1
 * if the extent before was trimmed.
 */
static int trim_overlap(struct fsck_ctx *ctx, const struct rfs_bmap_rec *r)
{
	uint64_t fkey = le64_get(r->fkey), mask = RFS_MAX_FILE_BLOCKS - 1;
	fileoff_t off = fkey & mask, prev_off = ctx->last_ext.fkey & mask;
	struct ext_trim *t;
	struct ivals *iv;

	if (!ctx->last_ext.valid || ctx->last_ext.ino != le64_get(r->ino) ||
	    (ctx->last_ext.fkey & ~mask) != (fkey & ~mask) || off >= ctx->last_ext.end ||
	    off <= prev_off)
		return 0;
	if (!fix_problem(ctx, PR_EXTENT_OVERLAP,
			 "inode %" PRIu64 ", %s fork: the extent at file block %" PRIu64
			 " runs past the one at %" PRIu64 "; shortened to %" PRIu64 " blocks",
			 le64_get(r->ino), fkey >> RFS_BMAP_OFF_BITS ? "CoW" : "data", prev_off,
			 off, off - prev_off) ||
	    ctx->fs->readonly)
		return 0;
	iv = fkey >> RFS_BMAP_OFF_BITS ? &ctx->cow_exts : &ctx->data_exts;
	iv->v[iv->n - 1].len = (extlen_t)(off - prev_off);
	ctx->exts[ctx->nexts - 1].len = (extlen_t)(off - prev_off);
	ctx->repair.forks[ctx->repair.nforks - 1].len = (extlen_t)(off - prev_off);
	grow((void **)&ctx->trims, &ctx->cap_trims, ctx->ntrims, sizeof(*ctx->trims));
	t = &ctx->trims[ctx->ntrims++];
	*t = (struct ext_trim){ctx->last_ext.ino, ctx->last_ext.fkey, (extlen_t)(off - prev_off)};
	return 1;
}

static void rec_bmap(struct fsck_ctx *ctx, const uint8_t *rec)
{
	struct rfs_bmap_rec r;
	rfs_ino_t ino;
	fileoff_t end;
	int cow, same_fork;

	memcpy(&r, rec, sizeof(r));
	ino = le64_get(r.ino);
	cow = (le64_get(r.fkey) >> RFS_BMAP_OFF_BITS) == RFS_FORK_COW;
	if (!cow) {
		struct ino_info *ii = fsck_find_ino(ctx, ino);
		if (ii && ii->inline_fork)
			ii->tree_data = 1;
	}
	same_fork = ctx->last_ext.valid && ctx->last_ext.ino == ino &&
		    (ctx->last_ext.fkey >> RFS_BMAP_OFF_BITS) ==
			    (le64_get(r.fkey) >> RFS_BMAP_OFF_BITS);
	if (trim_overlap(ctx, &r))
		same_fork = 0; /* the fork now ends where R starts */
	end = (le64_get(r.fkey) & (RFS_MAX_FILE_BLOCKS - 1)) + le32_get(r.len);
	ctx->last_ext.end = same_fork ? RFS_MAX(ctx->last_ext.end, end) : end;
	ctx->last_ext.ino = ino;
	ctx->last_ext.fkey = le64_get(r.fkey);
	ctx->last_ext.valid = 1;
	ivals_add(cow ? &ctx->cow_exts : &ctx->data_exts, le64_get(r.pblk), le32_get(r.len), ino);
	add_ext_info(ctx, ino, le32_get(r.len), cow ? EXT_COW : EXT_DATA);
	add_fork_ext(ctx, &r);
}

/* Writes the EXTENT_OVERLAP trims pass 2 made in memory into the tree
 * (same-size record updates: the tree's shape does not change). */
static void apply_trims(struct fsck_ctx *ctx)
{
	size_t i;

	for (i = 0; i < ctx->ntrims; i++) {
		const struct ext_trim *t = &ctx->trims[i];
		struct rfs_bmap_rec r = {.ino = le64_make(t->ino), .fkey = le64_make(t->fkey)};
		int ret = btree_lookup(&ctx->fs->bmap, &r, RFS_LOOKUP_EQ, &r, sizeof(r), NULL);

		if (!ret) {
			r.len = le32_make(t->len);
			ret = btree_update(&ctx->fs->bmap, &r, sizeof(r));
		}
		if (ret)
			printf("%s: shortening the extent of inode %" PRIu64 " failed: %s\n",
			       ctx->image, t->ino, strerror(-ret));
		else
			ctx->fixed++;
	}
}

/* Records come in key order: all shared ones by start, then staging. */
static void rec_refc(struct fsck_ctx *ctx, const uint8_t *rec)
{
	struct rfs_refc_rec r;

	memcpy(&r, rec, sizeof(r));
	if (le64_get(r.domain) == RFS_REFC_SHARED)
		ivals_add(&ctx->shared, le64_get(r.start), le32_get(r.len), le32_get(r.refcount));
	else
		ivals_add(&ctx->staging, le64_get(r.start), le32_get(r.len), le64_get(r.owner));
}

/* Pass 4 reports and repairs a wrong key (it may rewrite the tree, which
 * cannot happen during this walk). */
static void rec_dirent(struct fsck_ctx *ctx, const uint8_t *rec, size_t len)
{
	struct rfs_dirent d;
	struct dent_info *di;
	uint64_t hash;

	(void)len;
	memcpy(&d, rec, sizeof(d));
	hash = dir_name_hash(ctx->fs->sb.hash_seed, rec + sizeof(d), d.namelen);
	grow((void **)&ctx->dents, &ctx->cap_dents, ctx->ndents, sizeof(*ctx->dents));
	di = &ctx->dents[ctx->ndents++];
	memset(di, 0, sizeof(*di));
	di->dir = le64_get(d.key.dir);
	di->ino = le64_get(d.ino);
	di->ftype = d.ftype;
	di->cookie = le64_get(d.key.cookie);
	if (di->dir == RFS_ORPHAN_DIR)
		di->bad_key = di->cookie != di->ino;
	else
		di->bad_key = (di->cookie >> RFS_DIR_SEQ_BITS) != hash;
}

/* Attributes of one inode are contiguous: remember each owner once, as a
 * pseudo-extent so pass 4 can check the owner exists. */
static void rec_xattr(struct fsck_ctx *ctx, const uint8_t *rec)
{
	rfs_ino_t ino = rfs_get_le64(rec);

	if (ino == ctx->last_xattr_ino)
		return;
	ctx->last_xattr_ino = ino;
	add_ext_info(ctx, ino, 0, EXT_XATTR);
}

static void on_rec(void *arg, const struct rfs_btree *t, const void *rec, size_t len)
{
	struct fsck_ctx *ctx = arg;

	switch (t->ops->tree_type) {
	case RFS_TREE_BNO:
		rec_bno(ctx, rec);
		break;
	case RFS_TREE_CNT:
		rec_cnt(ctx, rec);
		break;
	case RFS_TREE_INODE:
		rec_inode(ctx, rec, len);
		break;
	case RFS_TREE_DIR:
		rec_dirent(ctx, rec, len);
		break;
	case RFS_TREE_BMAP:
		rec_bmap(ctx, rec);
		break;
	case RFS_TREE_XATTR:
		rec_xattr(ctx, rec);
		break;
	case RFS_TREE_REFC:
		rec_refc(ctx, rec);
		break;
	}
}

static void check_tree(struct fsck_ctx *ctx, struct rfs_btree *t)
{
	struct rfs_btree_check chk = {
		.report = on_report, .visit_node = on_node, .visit_rec = on_rec, .arg = ctx};

	ctx->trees_ok[t->ops->tree_type] = 1;
	btree_check(t, &chk);
	fsck_progress(ctx, 2, t->ops->tree_type, RFS_TREE_MAX - 1);
	ctx->tree_nodes[t->ops->tree_type] = chk.nodes;
	ctx->tree_records[t->ops->tree_type] = chk.records;
	if (ctx->verbose)
		printf("  %s: %" PRIu64 " nodes, %" PRIu64 " records, height %u\n", t->ops->name,
		       chk.nodes, chk.records, t->height);
}

/* Feeds the inline fork of II to the checks as the tree's records are. */
static void feed_inline_fork(struct fsck_ctx *ctx, const struct ino_info *ii)
{
	unsigned k;

	for (k = 0; k < ii->inline_n; k++) {
		const struct rfs_bmap_rec *r = &ctx->inline_exts[ii->inline_first + k];

		ivals_add(&ctx->data_exts, le64_get(r->pblk), le32_get(r->len), ii->ino);
		add_ext_info(ctx, ii->ino, le32_get(r->len), EXT_DATA);
		add_fork_ext(ctx, r);
	}
}

/*
 * After the inode and extent trees: a well-formed inline data fork joins
 * the checks unless the tree holds data records of the same file too (the
 * tree's are kept: a file that outgrew its inode is in the tree). A fork
 * that cannot stay is dropped now, before pass 3 may unmap the tree's
 * extents of the file (bmap would take the inline fork for its data
 * fork); not while the inode tree awaits a rebuild (the check restarts).
 * Then: inline forks need the incompat feature.
 */
static void check_inline_forks(struct fsck_ctx *ctx)
{
	struct rfs_sb_info *sb = &ctx->fs->sb;
	uint64_t forks = 0;
	size_t i;

	for (i = 0; i < ctx->ninodes; i++) {
		struct ino_info *ii = &ctx->inodes[i];
		if (ii->inline_fork && ii->tree_data) {
			ii->inline_fork = 0;
			ii->inline_clear = (uint8_t)fix_problem(
				ctx, PR_INLINE_FORK_AND_TREE,
				"inode %" PRIu64 ": %u inline extent(s) dropped, the tree's kept",
				ii->ino, ii->inline_n);
		}
		if (ii->inline_fork) {
			feed_inline_fork(ctx, ii);
			forks++;
		}
		if (ii->inline_clear && ctx->trees_ok[RFS_TREE_INODE] &&
		    !repair_inline(ctx, ii->ino)) {
			ctx->fixed++;
			/* The record shrank: its leaf may have merged and freed
			 * nodes this walk counted as the inode tree's, so what
			 * pass 3 would rebuild free space from is stale. */
			ctx->restart = 1;
		}
	}
	if (!forks || (sb->feat_incompat & RFS_FEAT_INCOMPAT_INLINE_FORK))
		return;
	if (!fix_problem(ctx, PR_INLINE_FORK_NO_FEATURE,
			 "%" PRIu64 " inode(s), incompat 0x%" PRIx64, forks, sb->feat_incompat))
		return;
	if (ctx->fs->readonly) {
		printf("%s: cannot set the feature: the filesystem is open read-only\n",
		       ctx->image);
		return;
	}
	sb->feat_incompat |= RFS_FEAT_INCOMPAT_INLINE_FORK;
	fs_sb_dirty(ctx->fs);
	ctx->fixed++;
}

/*
 * Refcount records on an image without the reflink feature: a writer that
 * does not know the tree would free shared blocks while other files still
 * map them. The records are what the data says (pass 3 checks them), so
 * the bit is what is missing: setting it only keeps such writers to
 * read-only, which is always safe.
 */
static void check_reflink_feature(struct fsck_ctx *ctx)
{
	struct rfs_sb_info *sb = &ctx->fs->sb;

	if (!ctx->tree_records[RFS_TREE_REFC] || (sb->feat_ro_compat & RFS_FEAT_RO_COMPAT_REFLINK))
		return;
	if (!fix_problem(ctx, PR_REFC_WITHOUT_FEATURE,
			 "%" PRIu64 " record(s), ro_compat 0x%" PRIx64,
			 ctx->tree_records[RFS_TREE_REFC], sb->feat_ro_compat))
		return;
	if (ctx->fs->readonly) {
		printf("%s: cannot set the feature: the filesystem is open read-only\n",
		       ctx->image);
		return;
	}
	sb->feat_ro_compat |= RFS_FEAT_RO_COMPAT_REFLINK;
	fs_sb_dirty(ctx->fs);
	ctx->fixed++;
}

static void check_freelist(struct fsck_ctx *ctx)
{
	fsblock_t *blocks = malloc(ctx->fs->fl_capacity * sizeof(*blocks));
	uint32_t n = 0, i;
	int ret;

	if (!blocks)
		exit(FSCK_EXIT_OPERROR);
	ret = alloc_freelist_read(ctx->fs, blocks, ctx->fs->fl_capacity, &n);
	if (ret)
		repair_problem(ctx, PR_FREELIST_BAD, "block %" PRIu64 ": %s",
			       ctx->fs->sb.freelist_blkno,
			       ret == -EBADMSG ? "checksum mismatch" : "bad header or contents");
	for (i = 0; !ret && i < n; i++)
		claims_add(&ctx->claims, blocks[i], 1, CLAIM_FREELIST_ENTRY);
	free(blocks);
}

int pass2_trees(struct fsck_ctx *ctx)
{
	if (ctx->verbose)
		printf("Pass 2: B+trees\n");
	ctx->trees_ok[0] = 1;
	check_tree(ctx, &ctx->fs->bno);
	check_tree(ctx, &ctx->fs->cnt);
	check_tree(ctx, &ctx->fs->inodes);
	check_tree(ctx, &ctx->fs->dirs);
	check_tree(ctx, &ctx->fs->bmap);
	apply_trims(ctx);
	check_tree(ctx, &ctx->fs->xattrs);
	check_tree(ctx, &ctx->fs->refc);
	check_inline_forks(ctx);
	check_reflink_feature(ctx);
	check_freelist(ctx);
	return ctx->trees_ok[0] ? 0 : FSCK_EXIT_OPERROR;
}
