/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * journal.c - the running journal: handles, commit, checkpoint, timer.
 * (Recovery is in recovery.c; the invariants are listed in journal.h.)
 *
 * State machine of a transaction:
 *
 *   RUNNING ---capture---> COMMITTING ---commit block durable---> COMMITTED
 *      ^  handles join         (frozen copies                        |
 *      |  while running         written to the log)                   |
 *      +--------------- a new RUNNING starts at capture               v
 *                                               checkpoint: written home,
 *                                               log tail moves past it
 *
 * Capture happens with new handles held off (the barrier) and no handle
 * open, so a transaction never contains half of an operation. It copies
 * every buffer of the transaction, so handles of the next transaction may
 * modify the live buffers while the copies are written to the log.
 *
 * Locking: j->lock, then the cache lock (never the other way round: the
 * cache calls the hooks without holding its lock).
 */
#include "journal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crc.h"
#include "util.h"

struct rfs_txn {
	rfs_tid_t tid;
	int handles;
	uint32_t credits; /* reserved by its open handles */
	int ordered;
	struct rfs_buf **bufs;
	size_t nbufs, cap;
	fsblock_t *revokes;
	size_t nrevokes, rcap;
};

struct rfs_handle {
	struct rfs_journal *j;
	struct rfs_txn *txn;
	uint32_t credits;
	int depth;	  /* nested txn_start calls on this thread */
	uint32_t changed; /* blocks it dirtied or freed */
};

struct rfs_journal {
	struct rfs_fs *fs;
	uint32_t seed, bsize, nblocks, first;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct rfs_txn *running;
	int barrier;	     /* > 0: new handles wait */
	int committing;	     /* a commit or checkpoint owns the log */
	rfs_tid_t committed; /* every tid <= this is durable */
	uint32_t head;	     /* ring position of the next transaction */
	uint32_t used;	     /* ring blocks between the tail and head */
	int jsb_live;	     /* the journal superblock points at the tail */
	uint32_t jsb_start;  /* what the journal superblock on disk says */
	rfs_tid_t jsb_seq;
	uint32_t max_txn; /* buffers per transaction before a commit is forced */
	int error;
	struct rfs_journal_stats stats;
	struct rfs_cache_hooks hooks;
	uint8_t *scratch; /* one block for control blocks */
	pthread_t timer;
	int timer_on, stop;
	unsigned interval;
};

static __thread struct rfs_handle *cur_handle;

uint32_t journal_tags_per_desc(uint32_t bsize)
{
	return (bsize - (uint32_t)sizeof(struct rfs_jdesc)) / (uint32_t)sizeof(struct rfs_jtag);
}

uint32_t journal_revokes_per_block(uint32_t bsize)
{
	return (bsize - (uint32_t)sizeof(struct rfs_jrevoke)) / 8;
}

static uint32_t ring_size(const struct rfs_journal *j)
{
	return j->nblocks - j->first;
}

static uint32_t ring_advance(const struct rfs_journal *j, uint32_t pos, uint32_t n)
{
	return j->first + (uint32_t)(((uint64_t)(pos - j->first) + n) % ring_size(j));
}

/* Log blocks a transaction of NBUFS blocks and NREV revokes takes. */
static uint64_t log_blocks(const struct rfs_journal *j, uint64_t nbufs, uint64_t nrev)
{
	uint64_t tags = journal_tags_per_desc(j->bsize), revs = journal_revokes_per_block(j->bsize);
	return (nbufs + tags - 1) / tags + nbufs + (nrev + revs - 1) / revs + 1;
}

/* --- journal superblock ----------------------------------------------------- */

static int jsb_verify(struct rfs_cache *c, const void *data, char *why, size_t whylen)
{
	const struct rfs_journal_sb *j = data;
	uint32_t blocks = le32_get(j->blocks), first = le32_get(j->first),
		 start = le32_get(j->start);

	(void)c;
	if (blocks < 64 || first < 1 || first >= blocks) {
		snprintf(why, whylen, "log geometry %u/%u invalid", first, blocks);
		return -EUCLEAN;
	}
	if (start != 0 && (start < first || start >= blocks)) {
		snprintf(why, whylen, "log start %u outside the ring", start);
		return -EUCLEAN;
	}
	return 0;
}

const struct rfs_buf_ops rfs_journal_sb_buf_ops = {
	.type = RFS_BLK_JOURNAL_SB,
	.name = "journal superblock",
	.verify = jsb_verify,
};

int journal_format(struct rfs_fs *fs)
{
	struct rfs_journal_sb *j;
	struct rfs_buf *bp;
	int ret;

	ret = buf_new(fs->cache, fs->sb.journal_start, &rfs_journal_sb_buf_ops, 0, &bp);
	if (ret)
		return ret;
	j = (struct rfs_journal_sb *)bp->data;
	j->blocks = le32_make((uint32_t)fs->sb.journal_blocks);
	j->first = le32_make(1);
	j->sequence = le64_make(fs->sb.last_tid + 1);
	j->start = 0;
	memcpy(j->uuid, fs->sb.uuid, sizeof(j->uuid));
	buf_release(bp);
	return 0;
}

int journal_sb_read(struct rfs_fs *fs, int *empty, char *why, size_t whylen)
{
	const struct rfs_journal_sb *j;
	struct rfs_buf *bp;
	int ret;

	ret = buf_read(fs->cache, fs->sb.journal_start, &rfs_journal_sb_buf_ops, &bp);
	if (ret) {
		snprintf(why, whylen, "%s",
			 ret == -EBADMSG ? "checksum mismatch" : "bad header or contents");
		return ret;
	}
	j = (const struct rfs_journal_sb *)bp->data;
	if (le32_get(j->blocks) != fs->sb.journal_blocks) {
		snprintf(why, whylen, "log length %u differs from the superblock's %" PRIu64,
			 le32_get(j->blocks), fs->sb.journal_blocks);
		ret = -EUCLEAN;
	} else if (memcmp(j->uuid, fs->sb.uuid, sizeof(j->uuid)) != 0) {
		snprintf(why, whylen, "log belongs to another filesystem (uuid differs)");
		ret = -EUCLEAN;
	}
	*empty = le32_get(j->start) == 0;
	buf_release(bp);
	return ret;
}

/* Writes the journal superblock with the log starting at START (0: empty)
 * with tid SEQUENCE, bypassing the cache like every log write. */
static int jsb_write(struct rfs_journal *j, uint32_t start, rfs_tid_t sequence)
{
	struct rfs_journal_sb *jsb = (void *)j->scratch;
	const struct rfs_sb_info *sb = &j->fs->sb;

	memset(j->scratch, 0, j->bsize);
	jsb->hdr.magic = le32_make(RFS_BLK_MAGIC);
	jsb->hdr.type = le16_make(RFS_BLK_JOURNAL_SB);
	jsb->hdr.blkno = le64_make(sb->journal_start);
	jsb->hdr.tid = le64_make(sequence);
	jsb->blocks = le32_make(j->nblocks);
	jsb->first = le32_make(j->first);
	jsb->sequence = le64_make(sequence);
	jsb->start = le32_make(start);
	jsb->errno_ = le32_make((uint32_t)-j->error);
	memcpy(jsb->uuid, sb->uuid, sizeof(jsb->uuid));
	rfs_block_set_crc(j->seed, j->scratch, j->bsize);
	j->jsb_start = start;
	j->jsb_seq = sequence;
	return dev_pwrite(j->fs->dev, j->scratch, j->bsize, sb->journal_start << sb->block_log);
}

/* --- transactions ---------------------------------------------------------- */

static struct rfs_txn *txn_new(rfs_tid_t tid)
{
	struct rfs_txn *t = calloc(1, sizeof(*t));

	if (t)
		t->tid = tid;
	return t;
}

static void txn_free(struct rfs_txn *t)
{
	if (!t)
		return;
	free(t->bufs);
	free(t->revokes);
	free(t);
}

static int txn_is_empty(const struct rfs_txn *t)
{
	return t->nbufs == 0 && t->nrevokes == 0;
}

static int grow_array(void **v, size_t *cap, size_t n, size_t elem)
{
	void *nv;

	if (n < *cap)
		return 0;
	nv = realloc(*v, (*cap ? *cap * 2 : 64) * elem);
	if (!nv)
		return -ENOMEM;
	*v = nv;
	*cap = *cap ? *cap * 2 : 64;
	return 0;
}

static void fail_locked(struct rfs_journal *j, int err, const char *what)
{
	struct rfs_cache *c = j->fs->cache;

	if (j->error)
		return;
	j->error = err ? err : -EIO;
	/* Dirty buffers may now hold changes that never committed (those of
	 * the failed transaction and of the one running): nothing may go home
	 * any more (invariant 3), not even by eviction. What did commit is in
	 * the log, which stays as it is; recovery puts it home. */
	pthread_mutex_lock(&c->lock);
	c->writeback_on_evict = 0;
	pthread_mutex_unlock(&c->lock);
	rfs_log(RFS_LOG_ERR, "journal: %s failed (%s): the filesystem is now read-only", what,
		strerror(-j->error));
	pthread_cond_broadcast(&j->cond);
}

/* Cache hook: BP was made dirty. It joins the running transaction. */
static void hook_dirty(void *arg, struct rfs_buf *bp)
{
	struct rfs_journal *j = arg;
	struct rfs_txn *t;

	pthread_mutex_lock(&j->lock);
	t = j->running;
	if (!cur_handle)
		j->stats.unhandled_dirties++;
	else if (cur_handle->j == j)
		cur_handle->changed++;
	if (bp->jtid != t->tid) {
		if (grow_array((void **)&t->bufs, &t->cap, t->nbufs, sizeof(*t->bufs))) {
			fail_locked(j, -ENOMEM, "joining a transaction");
		} else {
			buf_hold(bp);
			bp->jtid = t->tid;
			bp->jpins++;
			t->bufs[t->nbufs++] = bp;
		}
	}
	pthread_mutex_unlock(&j->lock);
}

/* Cache hook: block BLKNO was freed. Its logged copies must not be
 * replayed over whatever it becomes next. */
static void hook_forget(void *arg, fsblock_t blkno)
{
	struct rfs_journal *j = arg;
	struct rfs_txn *t;

	pthread_mutex_lock(&j->lock);
	t = j->running;
	if (!cur_handle)
		j->stats.unhandled_dirties++;
	else if (cur_handle->j == j)
		cur_handle->changed++;
	if (grow_array((void **)&t->revokes, &t->rcap, t->nrevokes, sizeof(*t->revokes)))
		fail_locked(j, -ENOMEM, "revoking a block");
	else
		t->revokes[t->nrevokes++] = blkno;
	pthread_mutex_unlock(&j->lock);
}

/* --- commit ------------------------------------------------------------------ */

/* What a commit writes, taken at capture. */
struct commit_set {
	struct rfs_txn *txn;
	uint8_t **copies; /* frozen block images, in txn->bufs order */
	fsblock_t *homes;
	size_t n;
	fsblock_t *revokes; /* after dropping blocks logged in this transaction */
	size_t nrevokes;
};

static int cmp_buf(const void *a, const void *b)
{
	const struct rfs_buf *x = *(struct rfs_buf *const *)a, *y = *(struct rfs_buf *const *)b;
	return x->blkno < y->blkno ? -1 : x->blkno > y->blkno;
}

static int cmp_blk(const void *a, const void *b)
{
	fsblock_t x = *(const fsblock_t *)a, y = *(const fsblock_t *)b;
	return x < y ? -1 : x > y;
}

/* Freezes one buffer: stamps its tid, checks it, copies it checksummed. */
static int freeze_one(struct rfs_journal *j, struct rfs_buf *bp, rfs_tid_t tid, uint8_t **copy)
{
	struct rfs_blkhdr *h = (struct rfs_blkhdr *)bp->data;
	char why[160];

	h->blkno = le64_make(bp->blkno);
	h->tid = le64_make(tid);
	if (bp->ops->verify && bp->ops->verify(bp->cache, bp->data, why, sizeof(why))) {
		rfs_log(RFS_LOG_ERR, "journal: refusing to commit corrupt %s block %" PRIu64 ": %s",
			bp->ops->name, bp->blkno, why);
		return -EUCLEAN;
	}
	*copy = malloc(j->bsize);
	if (!*copy)
		return -ENOMEM;
	memcpy(*copy, bp->data, j->bsize);
	rfs_block_set_crc(j->seed, *copy, j->bsize);
	return 0;
}

static int capture_bufs(struct rfs_journal *j, struct commit_set *cs)
{
	struct rfs_txn *t = cs->txn;
	size_t i;
	int ret = 0;

	if (t->nbufs) /* bufs is NULL in a revoke-only transaction */
		qsort(t->bufs, t->nbufs, sizeof(*t->bufs), cmp_buf);
	cs->copies = calloc(t->nbufs + 1, sizeof(*cs->copies));
	cs->homes = calloc(t->nbufs + 1, sizeof(*cs->homes));
	if (!cs->copies || !cs->homes)
		return -ENOMEM;
	for (i = 0; i < t->nbufs && !ret; i++) {
		struct rfs_buf *bp = t->bufs[i];
		if (bp->flags & RFS_BUF_FORGOTTEN)
			continue; /* freed in this transaction: revoked, not logged */
		ret = freeze_one(j, bp, t->tid, &cs->copies[cs->n]);
		cs->homes[cs->n++] = bp->blkno;
	}
	return ret;
}

/* Journaling a block cancels its revoke in the same transaction. */
static int capture_revokes(struct commit_set *cs)
{
	struct rfs_txn *t = cs->txn;
	size_t i;

	cs->revokes = malloc((t->nrevokes + 1) * sizeof(*cs->revokes));
	if (!cs->revokes)
		return -ENOMEM;
	if (t->nrevokes) /* revokes is NULL when nothing was freed */
		qsort(t->revokes, t->nrevokes, sizeof(*t->revokes), cmp_blk);
	for (i = 0; i < t->nrevokes; i++) {
		fsblock_t b = t->revokes[i];
		if (i > 0 && b == t->revokes[i - 1])
			continue;
		if (bsearch(&b, cs->homes, cs->n, sizeof(b), cmp_blk))
			continue;
		cs->revokes[cs->nrevokes++] = b;
	}
	return 0;
}

static void commit_set_free(struct commit_set *cs)
{
	size_t i;

	for (i = 0; cs->copies && i < cs->n; i++)
		free(cs->copies[i]);
	free(cs->copies);
	free(cs->homes);
	free(cs->revokes);
}

/* Writes one log block at *POS and moves *POS on; chains its crc. */
static int log_write(struct rfs_journal *j, uint32_t *pos, const uint8_t *data, uint32_t *chain_crc,
		     uint32_t block_crc)
{
	const struct rfs_sb_info *sb = &j->fs->sb;
	uint8_t le[4] = {(uint8_t)block_crc, (uint8_t)(block_crc >> 8), (uint8_t)(block_crc >> 16),
			 (uint8_t)(block_crc >> 24)};
	int ret =
		dev_pwrite(j->fs->dev, data, j->bsize, (sb->journal_start + *pos) << sb->block_log);

	*chain_crc = rfs_crc32(*chain_crc, le, sizeof(le));
	*pos = ring_advance(j, *pos, 1);
	j->stats.log_blocks_written++;
	return ret;
}

static void ctrl_init(struct rfs_journal *j, uint16_t type, uint32_t pos, rfs_tid_t tid)
{
	struct rfs_blkhdr *h = (void *)j->scratch;

	memset(j->scratch, 0, j->bsize);
	h->magic = le32_make(RFS_JRNL_MAGIC);
	h->type = le16_make(type);
	h->blkno = le64_make(j->fs->sb.journal_start + pos);
	h->tid = le64_make(tid);
}

static uint32_t ctrl_seal(struct rfs_journal *j)
{
	rfs_block_set_crc(j->seed, j->scratch, j->bsize);
	return le32_get(((struct rfs_blkhdr *)j->scratch)->crc);
}

/* Writes descriptor + blocks for copies [FROM, TO). Escapes blocks that
 * begin with the log magic. */
static int write_desc_group(struct rfs_journal *j, const struct commit_set *cs, size_t from,
			    size_t to, uint32_t *pos, uint32_t *crc)
{
	struct rfs_jdesc *d = (void *)j->scratch;
	uint32_t magic = htole32(RFS_JRNL_MAGIC), zero = 0;
	size_t i;
	int ret;

	ctrl_init(j, RFS_BLK_JDESC, *pos, cs->txn->tid);
	d->ntags = le32_make((uint32_t)(to - from));
	for (i = from; i < to; i++) {
		struct rfs_jtag *tag = &d->tags[i - from];
		tag->blkno = le64_make(cs->homes[i]);
		if (memcmp(cs->copies[i], &magic, 4) == 0) {
			memcpy(cs->copies[i], &zero, 4);
			tag->flags = le32_make(RFS_JTAG_ESCAPE);
		}
		tag->crc = le32_make(rfs_crc32(j->seed, cs->copies[i], j->bsize));
	}
	ret = log_write(j, pos, j->scratch, crc, ctrl_seal(j));
	for (i = from; i < to && !ret; i++)
		ret = log_write(j, pos, cs->copies[i], crc, le32_get(d->tags[i - from].crc));
	return ret;
}

static int write_revokes(struct rfs_journal *j, const struct commit_set *cs, uint32_t *pos,
			 uint32_t *crc)
{
	struct rfs_jrevoke *r = (void *)j->scratch;
	size_t per = journal_revokes_per_block(j->bsize), i, k;
	int ret = 0;

	for (i = 0; i < cs->nrevokes && !ret; i += per) {
		size_t n = RFS_MIN(per, cs->nrevokes - i);
		ctrl_init(j, RFS_BLK_JREVOKE, *pos, cs->txn->tid);
		r->count = le32_make((uint32_t)n);
		for (k = 0; k < n; k++)
			r->blocks[k] = le64_make(cs->revokes[i + k]);
		ret = log_write(j, pos, j->scratch, crc, ctrl_seal(j));
	}
	j->stats.revokes_logged += cs->nrevokes;
	return ret;
}

static int write_commit_block(struct rfs_journal *j, const struct commit_set *cs, uint32_t *pos,
			      uint32_t nblocks, uint32_t crc)
{
	struct rfs_jcommit *c = (void *)j->scratch;
	struct timespec now;
	uint32_t unused = 0;

	clock_gettime(CLOCK_REALTIME, &now);
	ctrl_init(j, RFS_BLK_JCOMMIT, *pos, cs->txn->tid);
	c->nblocks = le32_make(nblocks);
	c->txn_crc = le32_make(crc);
	c->sec = le64_make((uint64_t)now.tv_sec);
	c->nsec = le32_make((uint32_t)now.tv_nsec);
	return log_write(j, pos, j->scratch, &unused, ctrl_seal(j));
}

/* The commit I/O (no lock held; the caller owns the log: committing). */
static int write_txn(struct rfs_journal *j, const struct commit_set *cs, uint32_t start)
{
	size_t per = journal_tags_per_desc(j->bsize), i;
	uint32_t pos = start, crc = j->seed, nblocks;
	int ret = 0;

	if (!j->jsb_live)
		ret = jsb_write(j, start, cs->txn->tid);
	for (i = 0; i < cs->n && !ret; i += per)
		ret = write_desc_group(j, cs, i, RFS_MIN(i + per, cs->n), &pos, &crc);
	if (!ret)
		ret = write_revokes(j, cs, &pos, &crc);
	nblocks = (uint32_t)((pos + ring_size(j) - start) % ring_size(j));
	if (!ret && cs->txn->ordered)
		ret = dev_flush(j->fs->dev); /* data and log before the commit block */
	if (!ret)
		ret = write_commit_block(j, cs, &pos, nblocks, crc);
	if (!ret)
		ret = dev_flush(j->fs->dev);
	return ret;
}

/* Drops the transaction's holds on its buffers after commit (or failure). */
static void unpin_all(struct rfs_txn *t)
{
	size_t i;

	for (i = 0; i < t->nbufs; i++) {
		t->bufs[i]->jpins--;
		buf_release(t->bufs[i]);
	}
}

static void wait_handles_locked(struct rfs_journal *j)
{
	while (j->running->handles > 0)
		pthread_cond_wait(&j->cond, &j->lock);
}

/*
 * Waits until the running transaction may be captured: no other commit or
 * checkpoint owns the log and no handle is open. Every condition is checked
 * again after each wait, all at once: while we waited another committer may
 * have captured the transaction we came for (and a new, possibly empty one
 * runs now), or be writing it. Returns 1 when there is something to
 * capture, with the barrier raised (unless HOLD_BARRIER: the caller holds
 * it), 0 when there is nothing, or the journal's error.
 */
static int wait_capture_locked(struct rfs_journal *j, int hold_barrier)
{
	int raised = 0;

	while (!j->error && !txn_is_empty(j->running)) {
		if (!j->committing && j->running->handles == 0) {
			if (!hold_barrier && !raised)
				j->barrier++;
			return 1;
		}
		if (j->committing && raised) {
			/* Let handles run during the other commit's I/O. */
			j->barrier--, raised = 0;
			pthread_cond_broadcast(&j->cond);
		} else if (!j->committing && !hold_barrier && !raised) {
			j->barrier++, raised = 1; /* hold off new handles */
		}
		pthread_cond_wait(&j->cond, &j->lock);
	}
	if (raised) {
		j->barrier--;
		pthread_cond_broadcast(&j->cond);
	}
	return j->error;
}

/*
 * Commits the running transaction. Called with j->lock held; returns with
 * it held. With HOLD_BARRIER the caller already holds the barrier and keeps
 * it; otherwise new handles may start as soon as capture is done.
 */
static int commit_locked(struct rfs_journal *j, int hold_barrier)
{
	struct commit_set cs = {0};
	uint64_t need;
	uint32_t start;
	int ret;

	ret = wait_capture_locked(j, hold_barrier);
	if (ret <= 0)
		return ret;
	cs.txn = j->running;
	ret = capture_bufs(j, &cs);
	if (!ret)
		ret = capture_revokes(&cs);
	need = log_blocks(j, cs.n, cs.nrevokes);
	if (!ret && need > ring_size(j) - j->used)
		ret = -ENOSPC; /* credits were exceeded: the log cannot hold it */
	j->running = txn_new(cs.txn->tid + 1);
	if (!j->running)
		ret = -ENOMEM, j->running = cs.txn, cs.txn = NULL;
	if (!hold_barrier)
		j->barrier--;
	pthread_cond_broadcast(&j->cond);
	if (ret) {
		fail_locked(j, ret, "capturing a transaction");
		goto out;
	}
	start = j->head;
	j->head = ring_advance(j, j->head, (uint32_t)need);
	j->used += (uint32_t)need;
	j->committing = 1;
	pthread_mutex_unlock(&j->lock);
	ret = write_txn(j, &cs, start);
	pthread_mutex_lock(&j->lock);
	j->committing = 0;
	if (ret) {
		fail_locked(j, ret, "writing a transaction to the log");
	} else {
		j->jsb_live = 1;
		j->committed = cs.txn->tid;
		j->stats.commits++;
		j->stats.blocks_logged += cs.n;
		if (j->fs->sb.last_tid < cs.txn->tid)
			j->fs->sb.last_tid = cs.txn->tid;
	}
	pthread_cond_broadcast(&j->cond);
out:
	if (cs.txn) {
		unpin_all(cs.txn);
		txn_free(cs.txn);
	}
	commit_set_free(&cs);
	return ret;
}

/* Commits, writes every committed block home, and empties the log. Called
 * and returns with j->lock held. */
static int checkpoint_locked(struct rfs_journal *j)
{
	int ret;

	j->barrier++;
	wait_handles_locked(j);
	ret = commit_locked(j, 1);
	while (!ret && j->committing)
		pthread_cond_wait(&j->cond, &j->lock);
	if (!ret && j->error)
		ret = j->error;
	if (!ret && (j->used || j->jsb_live)) {
		j->committing = 1;
		j->fs->cache->cur_tid = j->committed;
		pthread_mutex_unlock(&j->lock);
		ret = cache_flush(j->fs->cache); /* every block home, then a flush */
		if (!ret)
			ret = jsb_write(j, 0, j->running->tid);
		if (!ret)
			ret = dev_flush(j->fs->dev);
		pthread_mutex_lock(&j->lock);
		j->committing = 0;
		if (ret) {
			fail_locked(j, ret, "checkpoint");
		} else {
			j->used = 0;
			j->jsb_live = 0;
			j->stats.checkpoints++;
		}
	}
	j->barrier--;
	pthread_cond_broadcast(&j->cond);
	return ret;
}

/* --- handles ---------------------------------------------------------------------- */

static int txn_too_big(const struct rfs_journal *j, uint32_t credits)
{
	const struct rfs_txn *t = j->running;
	return !txn_is_empty(t) && t->nbufs + t->credits + credits > j->max_txn;
}

/* Log space the running transaction may need once this handle joins,
 * with a margin for handles that dirty a little more than they said. */
static int log_too_full(const struct rfs_journal *j, uint32_t credits)
{
	const struct rfs_txn *t = j->running;
	uint64_t need = log_blocks(j, t->nbufs + t->credits + credits, t->nrevokes + credits);

	return need + ring_size(j) / 8 > ring_size(j) - j->used;
}

static struct rfs_handle null_handle; /* filesystems without a journal */

int txn_start(struct rfs_fs *fs, uint32_t credits, struct rfs_handle **out)
{
	struct rfs_journal *j = fs->journal;
	struct rfs_handle *h;
	int ret = 0;

	if (!j) {
		*out = &null_handle;
		return fs->readonly ? -EROFS : 0;
	}
	if (cur_handle && cur_handle->j == j) {
		cur_handle->depth++;
		*out = cur_handle;
		return 0;
	}
	h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	pthread_mutex_lock(&j->lock);
	for (;;) {
		if (j->error) {
			ret = -EROFS;
			break;
		}
		if (j->barrier) {
			pthread_cond_wait(&j->cond, &j->lock);
		} else if (log_too_full(j, credits) && (j->used || !txn_is_empty(j->running))) {
			j->stats.forced_by_space++;
			ret = checkpoint_locked(j);
		} else if (txn_too_big(j, credits)) {
			j->stats.forced_by_size++;
			ret = commit_locked(j, 0);
		} else {
			break;
		}
		if (ret)
			break;
	}
	if (!ret) {
		h->j = j;
		h->txn = j->running;
		h->credits = credits;
		j->running->handles++;
		j->running->credits += credits;
		cur_handle = h;
	}
	pthread_mutex_unlock(&j->lock);
	if (ret) {
		free(h);
		return ret;
	}
	*out = h;
	return 0;
}

void txn_set_ordered(struct rfs_handle *h)
{
	if (h->j) {
		pthread_mutex_lock(&h->j->lock);
		h->txn->ordered = 1;
		pthread_mutex_unlock(&h->j->lock);
	}
}

rfs_tid_t txn_tid(const struct rfs_handle *h)
{
	return h->txn ? h->txn->tid : 0;
}

int txn_stop(struct rfs_handle *h)
{
	struct rfs_journal *j = h->j;
	int ret;

	if (!j)
		return 0;
	if (h->depth > 0) {
		h->depth--;
		return 0;
	}
	pthread_mutex_lock(&j->lock);
	h->txn->handles--;
	h->txn->credits -= h->credits; /* what it dirtied is counted in nbufs */
	ret = j->error;
	pthread_cond_broadcast(&j->cond);
	pthread_mutex_unlock(&j->lock);
	cur_handle = NULL;
	free(h);
	return ret;
}

uint32_t txn_changed(const struct rfs_handle *h)
{
	return h->changed;
}

/*
 * Rewrites the journal superblock as it is on disk, plus the error, so
 * that the next recovery replays what did commit and records the error in
 * the superblock. The caller has just failed the journal; waits for a
 * commit in flight to finish with the log first. Called and returns with
 * j->lock held.
 */
static void record_error_locked(struct rfs_journal *j)
{
	int ret;

	while (j->committing)
		pthread_cond_wait(&j->cond, &j->lock);
	j->committing = 1;
	pthread_mutex_unlock(&j->lock);
	ret = jsb_write(j, j->jsb_start, j->jsb_seq);
	if (!ret)
		ret = dev_flush(j->fs->dev);
	if (ret)
		rfs_log(RFS_LOG_ERR, "journal: cannot record the error in the log: %s",
			strerror(-ret));
	pthread_mutex_lock(&j->lock);
	j->committing = 0;
	pthread_cond_broadcast(&j->cond);
}

void txn_abort(struct rfs_handle *h, int err)
{
	struct rfs_journal *j = h->j;

	if (!j)
		return;
	pthread_mutex_lock(&j->lock);
	if (!j->error) {
		fail_locked(j, err, "a metadata update");
		record_error_locked(j);
	}
	pthread_mutex_unlock(&j->lock);
}

/* --- commit and checkpoint on request -------------------------------------------- */

int journal_commit_tid(struct rfs_fs *fs, rfs_tid_t tid)
{
	struct rfs_journal *j = fs->journal;
	int ret = 0;

	if (!j)
		return fs->readonly ? 0 : cache_flush(fs->cache);
	pthread_mutex_lock(&j->lock);
	while (!ret && j->committed < tid && !j->error) {
		if (j->running->tid == tid && !txn_is_empty(j->running))
			ret = commit_locked(j, 0);
		else if (j->running->tid <= tid && !j->committing)
			break; /* nothing to commit: tid is empty or not yet begun */
		else
			pthread_cond_wait(&j->cond, &j->lock);
	}
	if (!ret)
		ret = j->error;
	pthread_mutex_unlock(&j->lock);
	return ret;
}

int journal_commit(struct rfs_fs *fs)
{
	struct rfs_journal *j = fs->journal;
	rfs_tid_t tid;

	if (!j)
		return journal_commit_tid(fs, 0);
	pthread_mutex_lock(&j->lock);
	tid = txn_is_empty(j->running) ? j->running->tid - 1 : j->running->tid;
	pthread_mutex_unlock(&j->lock);
	return journal_commit_tid(fs, tid);
}

int journal_checkpoint(struct rfs_fs *fs)
{
	struct rfs_journal *j = fs->journal;
	int ret;

	if (!j)
		return fs->readonly ? 0 : cache_flush(fs->cache);
	pthread_mutex_lock(&j->lock);
	ret = checkpoint_locked(j);
	pthread_mutex_unlock(&j->lock);
	return ret;
}

/* --- timer ------------------------------------------------------------------------ */

static void *timer_main(void *arg)
{
	struct rfs_journal *j = arg;
	struct timespec until;

	pthread_mutex_lock(&j->lock);
	while (!j->stop) {
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += j->interval;
		while (!j->stop && pthread_cond_timedwait(&j->cond, &j->lock, &until) == 0)
			;
		if (j->stop || j->error)
			continue;
		if (!txn_is_empty(j->running))
			commit_locked(j, 0);
		if (j->used > ring_size(j) / 2)
			checkpoint_locked(j);
	}
	pthread_mutex_unlock(&j->lock);
	return NULL;
}

int journal_start_timer(struct rfs_fs *fs, unsigned interval)
{
	struct rfs_journal *j = fs->journal;

	if (!j || !interval || j->timer_on)
		return 0;
	j->interval = interval;
	if (pthread_create(&j->timer, NULL, timer_main, j))
		return -errno;
	j->timer_on = 1;
	return 0;
}

/* --- open and close --------------------------------------------------------------- */

static int read_jsb_raw(struct rfs_journal *j, struct rfs_journal_sb *jsb)
{
	const struct rfs_sb_info *sb = &j->fs->sb;
	int ret = dev_pread(j->fs->dev, j->scratch, j->bsize, sb->journal_start << sb->block_log);

	if (ret)
		return ret;
	memcpy(jsb, j->scratch, sizeof(*jsb));
	if (le32_get(jsb->hdr.magic) != RFS_BLK_MAGIC ||
	    rfs_block_check_crc(j->seed, j->scratch, j->bsize) ||
	    le32_get(jsb->blocks) != j->nblocks || le32_get(jsb->first) < 1 ||
	    le32_get(jsb->first) >= j->nblocks)
		return -EUCLEAN;
	return le32_get(jsb->start) ? -EAGAIN : 0; /* -EAGAIN: recover first */
}

static struct rfs_journal *journal_alloc(struct rfs_fs *fs)
{
	struct rfs_journal *j = calloc(1, sizeof(*j));

	if (!j)
		return NULL;
	j->fs = fs;
	j->bsize = fs->sb.bsize;
	j->nblocks = (uint32_t)fs->sb.journal_blocks;
	j->seed = rfs_crc_seed(fs->sb.uuid);
	j->scratch = malloc(j->bsize);
	if (!j->scratch) {
		free(j);
		return NULL;
	}
	pthread_mutex_init(&j->lock, NULL);
	pthread_cond_init(&j->cond, NULL);
	j->hooks.dirty = hook_dirty;
	j->hooks.forget = hook_forget;
	return j;
}

static void journal_free(struct rfs_journal *j)
{
	txn_free(j->running);
	pthread_cond_destroy(&j->cond);
	pthread_mutex_destroy(&j->lock);
	free(j->scratch);
	free(j);
}

int journal_open(struct rfs_fs *fs)
{
	struct rfs_journal *j = journal_alloc(fs);
	struct rfs_journal_sb jsb;
	rfs_tid_t tid;
	int ret;

	if (!j)
		return -ENOMEM;
	ret = read_jsb_raw(j, &jsb);
	if (ret) {
		journal_free(j);
		return ret;
	}
	j->first = le32_get(jsb.first);
	j->head = j->first;
	j->jsb_start = le32_get(jsb.start);
	j->jsb_seq = le64_get(jsb.sequence);
	tid = RFS_MAX(le64_get(jsb.sequence), fs->sb.last_tid + 1);
	j->running = txn_new(tid);
	j->committed = tid - 1;
	/* A transaction may pin at most a quarter of the cache and of the log. */
	j->max_txn = (uint32_t)RFS_MIN(fs->cache->max_bufs / 4, (size_t)ring_size(j) / 4);
	j->max_txn = RFS_MAX(j->max_txn, 16u);
	if (!j->running) {
		journal_free(j);
		return -ENOMEM;
	}
	fs->cache->hook_arg = j;
	fs->cache->hooks = &j->hooks;
	fs->journal = j;
	return 0;
}

int journal_close(struct rfs_fs *fs)
{
	struct rfs_journal *j = fs->journal;
	int ret;

	if (!j)
		return 0;
	if (j->timer_on) {
		pthread_mutex_lock(&j->lock);
		j->stop = 1;
		pthread_cond_broadcast(&j->cond);
		pthread_mutex_unlock(&j->lock);
		pthread_join(j->timer, NULL);
	}
	ret = journal_checkpoint(fs);
	if (!ret)
		ret = j->error;
	/* After an error the running transaction may still hold buffers
	 * (freed ones are in no hash chain: cache_destroy would miss them). */
	pthread_mutex_lock(&j->lock);
	unpin_all(j->running);
	j->running->nbufs = 0;
	pthread_mutex_unlock(&j->lock);
	fs->cache->hooks = NULL;
	fs->cache->hook_arg = NULL;
	fs->journal = NULL;
	journal_free(j);
	return ret;
}

int journal_error(const struct rfs_fs *fs)
{
	return fs->journal ? fs->journal->error : 0;
}

void journal_get_stats(const struct rfs_fs *fs, struct rfs_journal_stats *out)
{
	memset(out, 0, sizeof(*out));
	if (fs->journal) {
		pthread_mutex_lock(&fs->journal->lock);
		*out = fs->journal->stats;
		pthread_mutex_unlock(&fs->journal->lock);
	}
}

rfs_tid_t journal_running_tid(const struct rfs_fs *fs)
{
	rfs_tid_t tid;

	if (!fs->journal)
		return 0;
	pthread_mutex_lock(&fs->journal->lock);
	tid = fs->journal->running->tid;
	pthread_mutex_unlock(&fs->journal->lock);
	return tid;
}

rfs_tid_t journal_durable_tid(const struct rfs_fs *fs)
{
	rfs_tid_t tid;

	if (!fs->journal)
		return 0;
	pthread_mutex_lock(&fs->journal->lock);
	tid = fs->journal->committed;
	pthread_mutex_unlock(&fs->journal->lock);
	return tid;
}
