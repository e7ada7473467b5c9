/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * rfs_share - builds files that share blocks, and a CoW staging extent,
 * then damages the result in exactly one way, for fsck's tests.
 *
 *   rfs_share IMAGE DAMAGE
 *   rfs_share IMAGE clones N SEED [DAMAGE]
 *   rfs_share IMAGE sum
 *
 * On a freshly made IMAGE, through lib/ directly (no journal), makes:
 *   a  8 blocks of its own, P..P+7
 *   b  a clone of a's first 4 blocks (offset 0), and blocks P+2..P+3 once
 *      more at offset 10: counts are 2 on P..P+1 and 3 on P+2..P+3, so
 *      one inode mapping a block twice counts twice
 *   c  4 blocks of its own and, in its CoW fork, a 2-block staging extent
 *      with its COW record (not counted in c's nblocks)
 * a and b carry RFS_IFLAG_REFLINK. DAMAGE is one of:
 *   none              leave it consistent
 *   drop-shared       delete the shared record of P..P+1
 *   wrong-count       the record of P+2..P+3 says 4
 *   unshared-record   a shared record on a's unshared P+6..P+7
 *   unmerged          the record of P..P+1 split in two of equal count
 *   leftover-staging  a staging record whose blocks no CoW fork maps
 *   fork-no-staging   c's staging record removed, its CoW fork kept
 *   staging-owner     c's staging record names a instead
 *   staging-in-data   c's staging blocks also in a's data fork
 *   no-flag           b's RFS_IFLAG_REFLINK cleared
 *   overlap           a new file d maps a's P+6..P+7 with no record
 *   refc-overlap      a shared record of P+1..P+2 overlapping both others
 *   no-feature        RFS_FEAT_RO_COMPAT_REFLINK cleared
 *   unknown-incompat  an incompat feature bit no program knows (62) set
 *   unknown-ro-compat the same in the ro_compat mask
 *   leak              5 blocks allocated and mapped by nothing
 *   free-count        the superblock's free count 7 too high
 *   unmerged-free     the largest free extent split in two in both trees
 *   cnt-differs       the largest free extent missing from the cnt tree
 *   free-over-data    a's P+6..P+7 also recorded as free in both trees
 *   data-on-node      a maps the inode tree's root block at offset 30
 *   beyond-end        a maps 4 blocks from the filesystem's last but one
 *   cow-overlap       a new file g's CoW fork maps c's staging blocks too
 *   nblocks           a's block count 3 too high
 *   fork-overlap      (extent tree forks: mkfs --no-inline-fork) c's first
 *                     extent runs 2 blocks into a second one of
 *                     c's own (unwritten, at offset 4)
 *   no-inode          b's inode and name deleted, its extents (shared
 *                     with a) and an attribute left behind
 * Everything else (block counts, names, free space) stays consistent, so
 * fsck should find that one problem (staging-in-data also shows as blocks
 * claimed twice, which they are). Prints P on success.
 *
 * Every data and staging block is written with a pattern of its own, so
 * that "rfs_share IMAGE sum" (a read-only open) can print, for each
 * inode, "INO NBLOCKS CRC" of what its data fork reads: the files' contents
 * before and after a repair can be compared.
 *
 * "clones N SEED" instead adds N files that each clone a random range of a
 * 64-block file (some twice, at two offsets), then unclones a random part
 * of every third one, freeing what reaches a count of zero: lib/refcount.c
 * splits and merges records its own way, and fsck, which recomputes the
 * counts from the forks alone, must find the result clean. DAMAGE then
 * damages the larger result.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "bmap.h"
#include "crc.h"
#include "dir.h"
#include "fs.h"
#include "inode.h"
#include "refcount.h"
#include "util.h"
#include "xattr.h"

struct share {
	struct rfs_fs *fs;
	struct rfs_inode a, b, c;
	fsblock_t p;	  /* a's blocks */
	fsblock_t staged; /* c's staging extent, 2 blocks */
};

#define TRY(expr)                                                                                  \
	do {                                                                                       \
		int ret_ = (expr);                                                                 \
		if (ret_) {                                                                        \
			fprintf(stderr, "rfs_share: %s: %s\n", #expr, strerror(-ret_));            \
			return ret_;                                                               \
		}                                                                                  \
	} while (0)

static int new_file(struct rfs_fs *fs, const char *name, uint64_t flags, struct rfs_inode *ino)
{
	inode_init_new(fs, ino, S_IFREG | 0644, 0, 0);
	ino->flags = flags;
	TRY(inode_insert(fs, ino));
	return dir_add(fs, RFS_ROOT_INO, name, strlen(name), ino->ino, DT_REG, NULL);
}

/* Maps LEN blocks at PBLK into FORK of INODE at OFF; data forks count
 * them in nblocks. */
static int map(struct rfs_fs *fs, struct rfs_inode *inode, unsigned fork, fileoff_t off,
	       fsblock_t pblk, extlen_t len)
{
	struct rfs_extent e = {.off = off, .pblk = pblk, .len = len};

	TRY(bmap_map(fs, inode->ino, fork, &e));
	if (fork == RFS_FORK_DATA)
		inode->nblocks += len;
	return inode_write(fs, inode);
}

/* Block B holds "block B" repeated: its own content wherever it is mapped. */
static int write_pattern(struct rfs_fs *fs, fsblock_t start, extlen_t len)
{
	uint32_t bsize = fs->sb.bsize;
	char *buf = malloc(bsize);
	extlen_t i;
	int ret = buf ? 0 : -ENOMEM;

	for (i = 0; !ret && i < len; i++) {
		uint32_t k;
		for (k = 0; k < bsize; k++)
			buf[k] = "block "[k % 6] ^ (char)((start + i) >> (8 * (k % 3)));
		ret = dev_pwrite(fs->dev, buf, bsize, (start + i) << fs->sb.block_log);
	}
	free(buf);
	return ret;
}

static int alloc_exact(struct rfs_fs *fs, extlen_t want, fsblock_t *start)
{
	extlen_t got;

	TRY(alloc_extent(fs, 0, want, want, start, &got));
	TRY(got == want ? 0 : -ENOSPC);
	return write_pattern(fs, *start, want);
}

static int build(struct share *s)
{
	struct rfs_fs *fs = s->fs;
	fsblock_t cdata;

	TRY(new_file(fs, "a", RFS_IFLAG_REFLINK, &s->a));
	TRY(new_file(fs, "b", RFS_IFLAG_REFLINK, &s->b));
	TRY(new_file(fs, "c", 0, &s->c));
	TRY(alloc_exact(fs, 8, &s->p));
	TRY(map(fs, &s->a, RFS_FORK_DATA, 0, s->p, 8));
	/* the clone: same blocks in a second fork, one more reference each */
	TRY(map(fs, &s->b, RFS_FORK_DATA, 0, s->p, 4));
	TRY(refc_increment(fs, s->p, 4));
	TRY(map(fs, &s->b, RFS_FORK_DATA, 10, s->p + 2, 2));
	TRY(refc_increment(fs, s->p + 2, 2));
	TRY(alloc_exact(fs, 4, &cdata));
	TRY(map(fs, &s->c, RFS_FORK_DATA, 0, cdata, 4));
	/* a write into c's offset 1..2 staged, as the daemon does for shared
	 * blocks, before the remap */
	TRY(alloc_exact(fs, 2, &s->staged));
	TRY(map(fs, &s->c, RFS_FORK_COW, 1, s->staged, 2));
	return refc_cow_add(fs, s->staged, 2, s->c.ino);
}

static void refc_key(struct rfs_refc_rec *r, uint64_t domain, fsblock_t start)
{
	memset(r, 0, sizeof(*r));
	r->domain = le64_make(domain);
	r->start = le64_make(start);
}

static int shared_rec(struct rfs_fs *fs, fsblock_t start, extlen_t len, uint32_t count)
{
	struct rfs_refc_rec r;

	refc_key(&r, RFS_REFC_SHARED, start);
	r.len = le32_make((uint32_t)len);
	r.refcount = le32_make(count);
	return btree_insert(&fs->refc, &r, sizeof(r));
}

static int drop_rec(struct rfs_fs *fs, uint64_t domain, fsblock_t start)
{
	struct rfs_refc_rec k;

	refc_key(&k, domain, start);
	return btree_delete(&fs->refc, &k);
}

static int set_owner(struct rfs_fs *fs, fsblock_t start, rfs_ino_t owner)
{
	struct rfs_refc_rec r;

	refc_key(&r, RFS_REFC_COW, start);
	TRY(btree_lookup(&fs->refc, &r, RFS_LOOKUP_EQ, &r, sizeof(r), NULL));
	r.owner = le64_make(owner);
	return btree_update(&fs->refc, &r, sizeof(r));
}

/* c's first extent (4 blocks at offset 0) lengthened to 6, over a
 * 2-block extent of c's own at offset 4 (unwritten, so not merged). */
static int fork_overlap(struct share *s)
{
	struct rfs_fs *fs = s->fs;
	struct rfs_extent e = {.off = 4, .len = 2, .flags = RFS_BMAP_UNWRITTEN};
	struct rfs_bmap_rec r = {.ino = le64_make(s->c.ino), .fkey = le64_make(0)};

	TRY(alloc_exact(fs, 2, &e.pblk));
	TRY(bmap_map(fs, s->c.ino, RFS_FORK_DATA, &e));
	s->c.nblocks += 2;
	TRY(inode_write(fs, &s->c));
	TRY(btree_lookup(&fs->bmap, &r, RFS_LOOKUP_EQ, &r, sizeof(r), NULL));
	if (le32_get(r.len) != 4)
		return -EUCLEAN; /* merged after all: no overlap to make */
	r.len = le32_make(6);
	return btree_update(&fs->bmap, &r, sizeof(r));
}

static int overlap(struct share *s)
{
	struct rfs_inode d;

	TRY(new_file(s->fs, "d", RFS_IFLAG_REFLINK, &d));
	return map(s->fs, &d, RFS_FORK_DATA, 0, s->p + 6, 2);
}

static int leftover_staging(struct share *s)
{
	fsblock_t extra;

	TRY(alloc_exact(s->fs, 3, &extra));
	return refc_cow_add(s->fs, extra, 3, s->c.ino);
}

/* Raw edits of the free-space trees (what lib/alloc.c never does). */
static int fsp_rec(struct rfs_fs *fs, int insert, fsblock_t start, extlen_t len, int bno, int cnt)
{
	uint8_t rec[16];

	if (bno) {
		rfs_put_le64(rec, start);
		rfs_put_le64(rec + 8, len);
		TRY(insert ? btree_insert(&fs->bno, rec, 16) : btree_delete(&fs->bno, rec));
	}
	if (cnt) {
		rfs_put_le64(rec, len);
		rfs_put_le64(rec + 8, start);
		TRY(insert ? btree_insert(&fs->cnt, rec, 16) : btree_delete(&fs->cnt, rec));
	}
	return 0;
}

static int largest_free(struct rfs_fs *fs, fsblock_t *start, extlen_t *len)
{
	uint8_t key[16], rec[16];

	memset(key, 0xff, sizeof(key));
	TRY(btree_lookup(&fs->cnt, key, RFS_LOOKUP_LE, rec, sizeof(rec), NULL));
	*len = rfs_get_le64(rec);
	*start = rfs_get_le64(rec + 8);
	return 0;
}

static int unmerged_free(struct rfs_fs *fs)
{
	fsblock_t start;
	extlen_t len;

	TRY(largest_free(fs, &start, &len));
	TRY(fsp_rec(fs, 0, start, len, 1, 1));
	TRY(fsp_rec(fs, 1, start, len / 2, 1, 1));
	return fsp_rec(fs, 1, start + len / 2, len - len / 2, 1, 1);
}

static int cnt_differs(struct rfs_fs *fs)
{
	fsblock_t start;
	extlen_t len;

	TRY(largest_free(fs, &start, &len));
	return fsp_rec(fs, 0, start, len, 0, 1);
}

static int free_over_data(struct share *s)
{
	TRY(fsp_rec(s->fs, 1, s->p + 6, 2, 1, 1));
	s->fs->sb.free_blocks += 2;
	fs_sb_dirty(s->fs);
	return 0;
}

static int cow_overlap(struct share *s)
{
	struct rfs_inode e;

	TRY(new_file(s->fs, "g", 0, &e));
	return map(s->fs, &e, RFS_FORK_COW, 3, s->staged, 2);
}

static uint64_t rnd_state;

static uint64_t rnd(uint64_t n)
{
	rnd_state = rnd_state * 6364136223846793005ull + 1442695040888963407ull;
	return (rnd_state >> 33) % n;
}

struct unclone {
	struct rfs_fs *fs;
	struct rfs_inode *inode;
};

/* Each range bmap_unmap removes from the data fork drops one reference. */
static int free_run(void *arg, fsblock_t start, extlen_t len)
{
	return free_extent(arg, start, len);
}

static int release(void *arg, fsblock_t pblk, extlen_t len, uint32_t flags)
{
	struct unclone *u = arg;

	(void)flags;
	u->inode->nblocks -= len;
	return refc_decrement(u->fs, pblk, len, free_run, u->fs);
}

static int unclone(struct rfs_fs *fs, struct rfs_inode *f, fileoff_t off, extlen_t len)
{
	struct unclone u = {fs, f};
	fileoff_t next = off;

	while (next < off + len)
		TRY(bmap_unmap(fs, f->ino, RFS_FORK_DATA, next, off + len - next, 4, release, &u,
			       &next));
	return inode_write(fs, f);
}

static int clones(struct share *s, unsigned n, uint64_t seed)
{
	struct rfs_fs *fs = s->fs;
	struct rfs_inode e, f;
	fsblock_t base;
	unsigned i;

	rnd_state = seed;
	TRY(new_file(fs, "e", RFS_IFLAG_REFLINK, &e));
	TRY(alloc_exact(fs, 64, &base));
	TRY(map(fs, &e, RFS_FORK_DATA, 0, base, 64));
	for (i = 0; i < n; i++) {
		extlen_t len = 1 + rnd(16);
		fsblock_t from = base + rnd(64 - len + 1);
		char name[32];

		snprintf(name, sizeof(name), "f%u", i);
		TRY(new_file(fs, name, RFS_IFLAG_REFLINK, &f));
		TRY(map(fs, &f, RFS_FORK_DATA, 0, from, len));
		TRY(refc_increment(fs, from, len));
		if (rnd(4) == 0) {
			TRY(map(fs, &f, RFS_FORK_DATA, 100, from, len));
			TRY(refc_increment(fs, from, len));
		}
		if (i % 3 == 0)
			TRY(unclone(fs, &f, rnd(len), 1 + rnd(len)));
	}
	return unclone(fs, &e, rnd(32), rnd(32) + 1);
}

/* Deletes INODE's record, leaving its extents (and an attribute) with no
 * owner: an inline data fork, which would go with the record, is first
 * copied into extent tree records. */
static int drop_inode(struct rfs_fs *fs, struct rfs_inode *inode)
{
	struct rfs_extent e[RFS_INLINE_EXTS];
	struct rfs_inode stored;
	unsigned n = 0, i;
	fileoff_t off = 0;

	TRY(xattr_set(fs, inode->ino, "user.k", "v", 1, 0));
	TRY(dir_remove(fs, RFS_ROOT_INO, "b", 1, &(rfs_ino_t){0}));
	TRY(inode_read(fs, inode->ino, &stored));
	while (stored.inline_type == RFS_INLINE_EXTENTS && n < RFS_INLINE_EXTS &&
	       bmap_find(fs, inode->ino, RFS_FORK_DATA, off, &e[n]) >= 0) {
		off = e[n].off + e[n].len;
		n++;
	}
	TRY(inode_delete(fs, inode->ino));
	for (i = 0; i < n; i++) {
		struct rfs_bmap_rec r = {
			.ino = le64_make(inode->ino),
			.fkey = le64_make(e[i].off),
			.pblk = le64_make(e[i].pblk),
			.len = le32_make((uint32_t)e[i].len),
			.flags = le32_make(e[i].flags),
		};
		TRY(btree_insert(&fs->bmap, &r, sizeof(r)));
	}
	return 0;
}

/* Replaces the inline area of inode INO with N extents (E) of raw
 * fields, or with LEN bytes of a pattern if E is NULL. */
static int poke_inline(struct rfs_fs *fs, rfs_ino_t ino, const uint64_t (*e)[4], unsigned n,
		       unsigned len)
{
	struct rfs_inode in;
	unsigned i;

	TRY(inode_read(fs, ino, &in));
	in.inline_type = RFS_INLINE_EXTENTS;
	in.inline_len = (uint16_t)(e ? n * sizeof(struct rfs_inline_ext) : len);
	for (i = 0; !e && i < len; i++)
		in.inline_data[i] = (uint8_t)(0x5a + i);
	for (i = 0; e && i < n; i++) {
		struct rfs_inline_ext x = {le64_make(e[i][0]), le64_make(e[i][1]),
					   le32_make((uint32_t)e[i][2]),
					   le32_make((uint32_t)e[i][3])};
		memcpy(in.inline_data + i * sizeof(x), &x, sizeof(x));
	}
	return inode_write_all(fs, &in);
}

/* Damages of inline data forks (c's: its 4 blocks are not shared). */
static int damage_inline(struct share *s, const char *what)
{
	struct rfs_extent c0;
	fsblock_t blk;

	TRY(bmap_find(s->fs, s->c.ino, RFS_FORK_DATA, 0, &c0));
	if (!strcmp(what, "inline-len"))
		return poke_inline(s->fs, s->c.ino, NULL, 0, 23);
	if (!strcmp(what, "inline-unsorted")) {
		const uint64_t e[2][4] = {{2, c0.pblk + 2, 2, 0}, {0, c0.pblk, 2, 0}};
		return poke_inline(s->fs, s->c.ino, e, 2, 0);
	}
	if (!strcmp(what, "inline-bad-ext")) {
		const uint64_t e[1][4] = {{0, c0.pblk, 4, 4}};
		return poke_inline(s->fs, s->c.ino, e, 1, 0);
	}
	if (!strcmp(what, "inline-not-file"))
		return poke_inline(s->fs, RFS_ROOT_INO, NULL, 0, 0);
	if (!strcmp(what, "inline-and-tree")) {
		struct rfs_bmap_rec r = {
			.ino = le64_make(s->c.ino), .fkey = le64_make(10), .len = le32_make(1)};
		TRY(alloc_exact(s->fs, 1, &blk));
		r.pblk = le64_make(blk);
		s->c.nblocks += 1;
		TRY(inode_write(s->fs, &s->c));
		return btree_insert(&s->fs->bmap, &r, sizeof(r));
	}
	if (!strcmp(what, "inline-no-feature")) {
		s->fs->sb.feat_incompat &= ~RFS_FEAT_INCOMPAT_INLINE_FORK;
		fs_sb_dirty(s->fs);
		return 0;
	}
	fprintf(stderr, "rfs_share: unknown damage '%s'\n", what);
	return -EINVAL;
}

static int damage(struct share *s, const char *what)
{
	struct rfs_fs *fs = s->fs;

	if (!strcmp(what, "none"))
		return 0;
	if (!strcmp(what, "drop-shared"))
		return drop_rec(fs, RFS_REFC_SHARED, s->p);
	if (!strcmp(what, "wrong-count")) {
		TRY(drop_rec(fs, RFS_REFC_SHARED, s->p + 2));
		return shared_rec(fs, s->p + 2, 2, 4);
	}
	if (!strcmp(what, "unshared-record"))
		return shared_rec(fs, s->p + 6, 2, 2);
	if (!strcmp(what, "unmerged")) {
		TRY(drop_rec(fs, RFS_REFC_SHARED, s->p));
		TRY(shared_rec(fs, s->p, 1, 2));
		return shared_rec(fs, s->p + 1, 1, 2);
	}
	if (!strcmp(what, "leftover-staging"))
		return leftover_staging(s);
	if (!strcmp(what, "fork-no-staging"))
		return refc_cow_remove(fs, s->staged, 2);
	if (!strcmp(what, "staging-owner"))
		return set_owner(fs, s->staged, s->a.ino);
	if (!strcmp(what, "staging-in-data"))
		return map(fs, &s->a, RFS_FORK_DATA, 20, s->staged, 2);
	if (!strcmp(what, "no-flag")) {
		s->b.flags &= ~(uint64_t)RFS_IFLAG_REFLINK;
		return inode_write(fs, &s->b);
	}
	if (!strcmp(what, "overlap"))
		return overlap(s);
	if (!strcmp(what, "refc-overlap"))
		return shared_rec(fs, s->p + 1, 2, 2);
	if (!strcmp(what, "unknown-incompat") || !strcmp(what, "unknown-ro-compat")) {
		if (what[8] == 'i')
			fs->sb.feat_incompat |= 1ull << 62;
		else
			fs->sb.feat_ro_compat |= 1ull << 62;
		fs_sb_dirty(fs);
		return 0;
	}
	if (!strcmp(what, "no-feature")) {
		fs->sb.feat_ro_compat &= ~RFS_FEAT_RO_COMPAT_REFLINK;
		fs_sb_dirty(fs);
		return 0;
	}
	if (!strcmp(what, "leak"))
		return alloc_exact(fs, 5, &(fsblock_t){0});
	if (!strcmp(what, "free-count")) {
		fs->sb.free_blocks += 7;
		fs_sb_dirty(fs);
		return 0;
	}
	if (!strcmp(what, "unmerged-free"))
		return unmerged_free(fs);
	if (!strcmp(what, "cnt-differs"))
		return cnt_differs(fs);
	if (!strcmp(what, "free-over-data"))
		return free_over_data(s);
	if (!strcmp(what, "data-on-node"))
		return map(fs, &s->a, RFS_FORK_DATA, 30, fs->inodes.root, 1);
	if (!strcmp(what, "beyond-end"))
		return map(fs, &s->a, RFS_FORK_DATA, 40, fs->sb.block_count - 2, 4);
	if (!strcmp(what, "cow-overlap"))
		return cow_overlap(s);
	if (!strcmp(what, "no-inode"))
		return drop_inode(fs, &s->b);
	if (!strncmp(what, "inline-", 7))
		return damage_inline(s, what);
	if (!strcmp(what, "fork-overlap"))
		return fork_overlap(s);
	if (!strcmp(what, "nblocks")) {
		s->a.nblocks += 3;
		return inode_write(fs, &s->a);
	}
	fprintf(stderr, "rfs_share: unknown damage '%s'\n", what);
	return -EINVAL;
}

/* "INO NBLOCKS CRC" of every regular file: CRC over (file offset, block)
 * of each block its data fork maps, holes skipped. */
static int sum_file(struct rfs_fs *fs, const struct rfs_inode *inode, char *buf)
{
	struct rfs_extent e;
	fileoff_t off = 0;
	uint32_t crc = 0;
	int ret;

	while ((ret = bmap_find(fs, inode->ino, RFS_FORK_DATA, off, &e)) >= 0) {
		extlen_t i;
		for (i = 0; i < e.len; i++) {
			uint64_t at = e.off + i;
			TRY(dev_pread(fs->dev, buf, fs->sb.bsize,
				      (e.pblk + i) << fs->sb.block_log));
			crc = rfs_crc32(crc, &at, sizeof(at));
			crc = rfs_crc32(crc, buf, fs->sb.bsize);
		}
		off = e.off + e.len;
	}
	if (ret != -ENOENT)
		return ret;
	printf("%llu %llu %08x\n", (unsigned long long)inode->ino,
	       (unsigned long long)inode->nblocks, crc);
	return 0;
}

static int sum(struct rfs_fs *fs)
{
	char *buf = malloc(fs->sb.bsize);
	struct rfs_inode inode;
	rfs_ino_t ino;
	int ret = buf ? 0 : -ENOMEM;

	for (ino = RFS_FIRST_FREE_INO; !ret && ino < fs->sb.next_ino; ino++) {
		ret = inode_read(fs, ino, &inode);
		if (ret == -ENOENT) {
			ret = 0;
			continue;
		}
		if (!ret && S_ISREG(inode.mode))
			ret = sum_file(fs, &inode, buf);
	}
	free(buf);
	return ret;
}

int main(int argc, char **argv)
{
	struct share s = {0};
	struct rfs_dev *dev;
	char why[200];
	int ret;

	if (argc != 3 && !((argc == 5 || argc == 6) && !strcmp(argv[2], "clones"))) {
		fprintf(stderr, "usage: %s IMAGE DAMAGE | %s IMAGE clones N SEED [DAMAGE]\n",
			argv[0], argv[0]);
		return 16;
	}
	if (!strcmp(argv[2], "sum")) {
		ret = dev_open_file(argv[1], RFS_DEV_RDONLY, 0, &dev);
		if (!ret)
			ret = fs_open(dev, RFS_FS_RDONLY, 8u << 20, &s.fs, why, sizeof(why));
	} else {
		ret = dev_open_file(argv[1], 0, 0, &dev);
		if (!ret)
			ret = fs_open(dev, RFS_FS_NOJOURNAL, 8u << 20, &s.fs, why, sizeof(why));
	}
	if (ret) {
		fprintf(stderr, "%s: cannot open: %s\n", argv[1], strerror(-ret));
		return 1;
	}
	if (!strcmp(argv[2], "sum")) {
		ret = sum(s.fs);
		fs_close(s.fs);
		return ret ? 1 : 0;
	}
	ret = build(&s);
	if (!ret && argc >= 5)
		ret = clones(&s, (unsigned)atoi(argv[3]), strtoull(argv[4], NULL, 0));
	if (!ret && argc != 5)
		ret = damage(&s, argv[argc - 1]);
	if (!ret)
		printf("%llu\n", (unsigned long long)s.p);
	if (fs_close(s.fs))
		ret = -EIO;
	return ret ? 1 : 0;
}
