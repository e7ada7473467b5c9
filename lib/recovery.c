/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * recovery.c - log recovery in three passes: SCAN, REVOKE, REPLAY.
 *
 * Works on the raw device, before any cache exists, because replay may
 * rewrite any metadata block, the superblock included.
 *
 * Each pass walks the ring from the journal superblock's (start, sequence)
 * one transaction at a time:
 *
 *   SCAN    finds end_tid, the first transaction that is not complete:
 *           a control block with the wrong magic, checksum, position or
 *           tid, a logged block whose checksum differs from its tag, or a
 *           commit block whose block count or transaction checksum is wrong
 *           ends the scan. Nothing is written.
 *   REVOKE  records, for every revoked block, the highest tid revoking it.
 *   REPLAY  writes each logged block home unless it is revoked at a tid >=
 *           its own; later transactions overwrite earlier ones in order.
 *
 * Then the device is flushed and the journal superblock rewritten empty,
 * with a sequence past every tid seen (invariant 5 in journal.h). A crash
 * anywhere before that rewrite leaves the log as it was, so replay runs
 * again and writes the same blocks: replay is idempotent.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crc.h"
#include "journal.h"
#include "util.h"

struct jlog {
	struct rfs_dev *dev;
	const struct rfs_sb_info *sb;
	uint32_t seed, bsize, nblocks, first;
	uint8_t *blk, *data; /* scratch blocks */
};

/* A revoke table: open addressing, block -> highest revoking tid. */
struct revoke_table {
	fsblock_t *keys;
	rfs_tid_t *tids;
	size_t cap, n;
};

static size_t rt_slot(const struct revoke_table *rt, fsblock_t b)
{
	return (size_t)((b * 0x9e3779b97f4a7c15ull) >> 17) & (rt->cap - 1);
}

static int rt_grow(struct revoke_table *rt)
{
	struct revoke_table big = {NULL, NULL, rt->cap ? rt->cap * 2 : 1024, 0};
	size_t i;

	big.keys = calloc(big.cap, sizeof(*big.keys));
	big.tids = calloc(big.cap, sizeof(*big.tids));
	if (!big.keys || !big.tids) {
		free(big.keys);
		free(big.tids);
		return -ENOMEM;
	}
	for (i = 0; i < rt->cap; i++) {
		if (rt->keys[i]) {
			size_t s = rt_slot(&big, rt->keys[i]);
			while (big.keys[s])
				s = (s + 1) & (big.cap - 1);
			big.keys[s] = rt->keys[i];
			big.tids[s] = rt->tids[i];
			big.n++;
		}
	}
	free(rt->keys);
	free(rt->tids);
	*rt = big;
	return 0;
}

static int rt_add(struct revoke_table *rt, fsblock_t b, rfs_tid_t tid)
{
	size_t s;

	if (b == 0)
		return 0; /* never a valid home block */
	if ((rt->n + 1) * 2 > rt->cap && rt_grow(rt))
		return -ENOMEM;
	for (s = rt_slot(rt, b); rt->keys[s] && rt->keys[s] != b; s = (s + 1) & (rt->cap - 1))
		;
	if (!rt->keys[s]) {
		rt->keys[s] = b;
		rt->n++;
		rt->tids[s] = tid;
	} else if (tid > rt->tids[s]) {
		rt->tids[s] = tid;
	}
	return 0;
}

/* The highest tid revoking B, or 0. */
static rfs_tid_t rt_get(const struct revoke_table *rt, fsblock_t b)
{
	size_t s;

	if (!rt->cap)
		return 0;
	for (s = rt_slot(rt, b); rt->keys[s]; s = (s + 1) & (rt->cap - 1))
		if (rt->keys[s] == b)
			return rt->tids[s];
	return 0;
}

/* --- ring access ---------------------------------------------------------- */

static uint32_t ring_advance(const struct jlog *l, uint32_t pos, uint32_t n)
{
	uint32_t ring = l->nblocks - l->first;
	return l->first + (uint32_t)(((uint64_t)(pos - l->first) + n) % ring);
}

static int log_read(struct jlog *l, uint32_t pos, uint8_t *buf)
{
	fsblock_t b = l->sb->journal_start + pos;
	return dev_pread(l->dev, buf, l->bsize, b << l->sb->block_log);
}

/* Reads the control block at POS; 0 if it is a valid block of TID,
 * setting *TYPE, else -ENOENT (the end of the log as far as we can tell). */
static int ctrl_read(struct jlog *l, uint32_t pos, rfs_tid_t tid, uint16_t *type)
{
	const struct rfs_blkhdr *h = (const void *)l->blk;
	int ret = log_read(l, pos, l->blk);

	if (ret)
		return ret;
	if (le32_get(h->magic) != RFS_JRNL_MAGIC ||
	    rfs_block_check_crc(l->seed, l->blk, l->bsize) ||
	    le64_get(h->blkno) != l->sb->journal_start + pos || le64_get(h->tid) != tid)
		return -ENOENT;
	*type = le16_get(h->type);
	if (*type == RFS_BLK_JDESC) {
		uint32_t n = le32_get(((const struct rfs_jdesc *)l->blk)->ntags);
		if (n == 0 || n > journal_tags_per_desc(l->bsize))
			return -ENOENT;
	} else if (*type == RFS_BLK_JREVOKE) {
		uint32_t n = le32_get(((const struct rfs_jrevoke *)l->blk)->count);
		if (n > journal_revokes_per_block(l->bsize))
			return -ENOENT;
	} else if (*type != RFS_BLK_JCOMMIT) {
		return -ENOENT;
	}
	return 0;
}

static uint32_t chain(uint32_t crc, uint32_t block_crc)
{
	uint8_t b[4];

	b[0] = (uint8_t)block_crc;
	b[1] = (uint8_t)(block_crc >> 8);
	b[2] = (uint8_t)(block_crc >> 16);
	b[3] = (uint8_t)(block_crc >> 24);
	return rfs_crc32(crc, b, sizeof(b));
}

/* --- the three passes --------------------------------------------------------- */

enum pass { PASS_SCAN, PASS_REVOKE, PASS_REPLAY };

struct walk {
	struct jlog *l;
	enum pass pass;
	uint32_t pos;
	rfs_tid_t tid;
	rfs_tid_t end_tid; /* REVOKE and REPLAY stop here */
	struct revoke_table *rt;
	struct rfs_recovery_info *info;
};

static int home_valid(const struct jlog *l, fsblock_t b)
{
	const struct rfs_sb_info *sb = l->sb;

	if (b >= sb->block_count)
		return 0;
	return b < sb->journal_start || b >= sb->journal_start + sb->journal_blocks;
}

/* Handles the blocks tagged by the descriptor in l->blk, which sits at
 * w->pos. In SCAN checks their checksums, in REPLAY writes them home. */
static int walk_tags(struct walk *w, uint32_t *crc, const char **why)
{
	struct jlog *l = w->l;
	struct rfs_jdesc *d = malloc(l->bsize);
	uint32_t n, i, pos = w->pos;
	int ret = 0;

	if (!d)
		return -ENOMEM;
	memcpy(d, l->blk, l->bsize);
	n = le32_get(d->ntags);
	for (i = 0; i < n && !ret; i++) {
		const struct rfs_jtag *tag = &d->tags[i];
		fsblock_t home = le64_get(tag->blkno);

		pos = ring_advance(l, pos, 1);
		if (w->pass == PASS_REVOKE)
			continue;
		if (w->pass == PASS_SCAN) {
			ret = log_read(l, pos, l->data);
			if (!ret && rfs_crc32(l->seed, l->data, l->bsize) != le32_get(tag->crc)) {
				*why = "a logged block does not match its tag's checksum";
				ret = -ENOENT;
			}
			*crc = chain(*crc, le32_get(tag->crc));
			continue;
		}
		if (!home_valid(l, home)) {
			w->info->blocks_rejected++;
			continue;
		}
		if (rt_get(w->rt, home) >= w->tid) {
			w->info->blocks_revoked++;
			continue;
		}
		ret = log_read(l, pos, l->data);
		if (ret)
			break;
		if (le32_get(tag->flags) & RFS_JTAG_ESCAPE) {
			uint32_t magic = htole32(RFS_JRNL_MAGIC);
			memcpy(l->data, &magic, sizeof(magic));
		}
		ret = dev_pwrite(l->dev, l->data, l->bsize, home << l->sb->block_log);
		if (!ret)
			w->info->blocks_written++;
	}
	w->pos = pos;
	free(d);
	return ret;
}

static int walk_revoke_block(struct walk *w)
{
	const struct rfs_jrevoke *r = (const void *)w->l->blk;
	uint32_t i, n = le32_get(r->count);
	int ret = 0;

	if (w->pass != PASS_REVOKE)
		return 0;
	for (i = 0; i < n && !ret; i++) {
		ret = rt_add(w->rt, le64_get(r->blocks[i]), w->tid);
		w->info->revoke_records++;
	}
	return ret;
}

/*
 * Walks one transaction starting at w->pos. Returns 0 when it ended with a
 * valid commit block (w->pos is then past it), -ENOENT when the log ends
 * inside or before it (WHY says how), or another error.
 */
static int walk_txn(struct walk *w, const char **why)
{
	struct jlog *l = w->l;
	uint32_t crc = l->seed, nblocks = 0, ring = l->nblocks - l->first;
	uint16_t type;
	int ret;

	*why = "no transaction follows";
	for (;;) {
		if (nblocks >= ring) {
			*why = "a transaction longer than the log";
			return -ENOENT;
		}
		ret = ctrl_read(l, w->pos, w->tid, &type);
		if (ret)
			return ret;
		if (type == RFS_BLK_JCOMMIT)
			break;
		if (nblocks == 0)
			*why = "transaction is torn (no valid commit block)";
		crc = chain(crc, le32_get(((const struct rfs_blkhdr *)l->blk)->crc));
		nblocks++;
		if (type == RFS_BLK_JDESC) {
			nblocks += le32_get(((const struct rfs_jdesc *)l->blk)->ntags);
			ret = walk_tags(w, &crc, why);
		} else {
			ret = walk_revoke_block(w);
		}
		if (ret)
			return ret;
		w->pos = ring_advance(l, w->pos, 1);
	}
	if (w->pass == PASS_SCAN) {
		const struct rfs_jcommit *c = (const void *)l->blk;
		if (le32_get(c->nblocks) != nblocks || le32_get(c->txn_crc) != crc) {
			*why = "commit block does not match the transaction's checksum";
			return -ENOENT;
		}
	}
	w->pos = ring_advance(l, w->pos, 1);
	return 0;
}

static int run_pass(struct jlog *l, enum pass pass, const struct rfs_journal_sb *jsb,
		    struct walk *w)
{
	const char *why = "";
	int ret = 0;

	w->l = l;
	w->pass = pass;
	w->pos = le32_get(jsb->start);
	w->tid = le64_get(jsb->sequence);
	while (pass == PASS_SCAN || w->tid < w->end_tid) {
		ret = walk_txn(w, &why);
		if (ret)
			break;
		w->tid++;
	}
	if (pass == PASS_SCAN && ret == -ENOENT) {
		w->end_tid = w->tid;
		snprintf(w->info->stop, sizeof(w->info->stop),
			 "log ends at transaction %" PRIu64 " (block %u): %s", w->tid, w->pos, why);
		return 0;
	}
	if (pass != PASS_SCAN && ret == -ENOENT)
		return -EIO; /* the passes disagree: the log changed under us */
	return ret;
}

static int jsb_load(struct jlog *l, struct rfs_journal_sb *jsb)
{
	int ret = log_read(l, 0, l->blk);

	if (ret)
		return ret;
	memcpy(jsb, l->blk, sizeof(*jsb));
	if (le32_get(jsb->hdr.magic) != RFS_BLK_MAGIC ||
	    rfs_block_check_crc(l->seed, l->blk, l->bsize) ||
	    le16_get(jsb->hdr.type) != RFS_BLK_JOURNAL_SB ||
	    le64_get(jsb->hdr.blkno) != l->sb->journal_start ||
	    le32_get(jsb->blocks) != l->nblocks || le32_get(jsb->first) < 1 ||
	    le32_get(jsb->first) >= l->nblocks || memcmp(jsb->uuid, l->sb->uuid, 16) != 0)
		return -EUCLEAN;
	if (le32_get(jsb->start) != 0 &&
	    (le32_get(jsb->start) < le32_get(jsb->first) || le32_get(jsb->start) >= l->nblocks))
		return -EUCLEAN;
	l->first = le32_get(jsb->first);
	return 0;
}

/* Rewrites the journal superblock in the raw block image BLK. */
static int jsb_store(struct jlog *l, uint32_t start, rfs_tid_t sequence)
{
	struct rfs_journal_sb *jsb = (void *)l->blk;
	int ret = log_read(l, 0, l->blk);

	if (ret)
		return ret;
	jsb->start = le32_make(start);
	jsb->sequence = le64_make(sequence);
	jsb->errno_ = le32_make(0); /* moved into the superblock first */
	rfs_block_set_crc(l->seed, l->blk, l->bsize);
	ret = dev_pwrite(l->dev, l->blk, l->bsize, l->sb->journal_start << l->sb->block_log);
	return ret ? ret : dev_flush(l->dev);
}

/*
 * The journal failed on purpose (txn_abort: corruption found in the middle
 * of an update) and recorded why in its superblock. After the replay, the
 * error goes into the filesystem superblock, which fsck reads (as ext4
 * moves s_errno into the superblock at mount). Written before the journal
 * superblock drops it, so a crash in between records it again.
 */
static int record_journal_error(struct jlog *l, uint32_t err)
{
	struct rfs_sb_info sb;
	uint8_t hdr[sizeof(struct rfs_blkhdr)];
	char why[160];
	int ret = sb_read_primary(l->dev, &sb, why, sizeof(why));

	if (ret == -EUCLEAN || ret == -EBADMSG || ret == -ENOENT)
		return 0; /* fsck repairs the superblock from a backup */
	if (!ret)
		ret = dev_pread(l->dev, hdr, sizeof(hdr), 0);
	if (ret)
		return ret;
	sb_note_error(&sb, err, (uint64_t)time(NULL));
	return sb_write_primary(l->dev, &sb, le64_get(((struct rfs_blkhdr *)hdr)->tid));
}

static int recover(struct jlog *l, struct rfs_recovery_info *info)
{
	struct rfs_journal_sb jsb;
	struct revoke_table rt = {0};
	struct walk w = {.rt = &rt, .info = info};
	int ret = jsb_load(l, &jsb);

	if (ret)
		return ret;
	info->start_tid = info->end_tid = le64_get(jsb.sequence);
	info->recorded_errno = le32_get(jsb.errno_);
	if (le32_get(jsb.start) == 0) {
		snprintf(info->stop, sizeof(info->stop), "log is empty");
		if (info->recorded_errno)
			ret = record_journal_error(l, info->recorded_errno);
		return ret ? ret : info->recorded_errno ? jsb_store(l, 0, info->start_tid) : 0;
	}
	info->needed = 1;
	ret = run_pass(l, PASS_SCAN, &jsb, &w);
	info->end_tid = w.end_tid;
	info->transactions = w.end_tid - info->start_tid;
	if (!ret)
		ret = run_pass(l, PASS_REVOKE, &jsb, &w);
	if (!ret)
		ret = run_pass(l, PASS_REPLAY, &jsb, &w);
	if (!ret)
		ret = dev_flush(l->dev);
	/*
	 * Past every tid the ring may hold (invariant 5), not only past the
	 * torn transaction: when the scan stopped at a damaged transaction,
	 * complete ones with higher tids may follow it in the ring, and the
	 * next mount restarts the ring at `first`, so a tid reused from
	 * end_tid + 1 on could meet one of them exactly where the scan
	 * expects it. Every transaction written since the log started at
	 * start_tid takes at least one ring block, and the log never holds
	 * more than the ring: every tid in the ring is below start_tid + ring.
	 */
	if (!ret && info->recorded_errno)
		ret = record_journal_error(l, info->recorded_errno);
	if (!ret)
		ret = jsb_store(l, 0,
				RFS_MAX(w.end_tid + 1, info->start_tid + (l->nblocks - l->first)));
	free(rt.keys);
	free(rt.tids);
	return ret;
}

int journal_recover(struct rfs_dev *dev, const struct rfs_sb_info *sb,
		    struct rfs_recovery_info *info)
{
	struct jlog l = {.dev = dev, .sb = sb, .bsize = sb->bsize};
	int ret;

	memset(info, 0, sizeof(*info));
	if (sb->journal_blocks > UINT32_MAX)
		return -EUCLEAN;
	l.nblocks = (uint32_t)sb->journal_blocks;
	l.seed = rfs_crc_seed(sb->uuid);
	l.blk = malloc(l.bsize);
	l.data = malloc(l.bsize);
	ret = l.blk && l.data ? recover(&l, info) : -ENOMEM;
	free(l.blk);
	free(l.data);
	return ret;
}
