/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * buf.c - metadata buffer cache: hash + LRU over a fixed budget.
 */
#include "buf.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crc.h"
#include "util.h"

#define MIN_BUFS 16

/* Byte offset of BLKNO on the device; UINT64_MAX (which the device layer
 * refuses) when it does not fit, so that a corrupt block number can never
 * wrap around onto another block, such as the superblock. */
static uint64_t blk_off(const struct rfs_cache *c, fsblock_t blkno)
{
	return blkno > (UINT64_MAX >> c->block_log) ? UINT64_MAX : blkno << c->block_log;
}

static size_t hash_slot(const struct rfs_cache *c, fsblock_t blkno)
{
	return (size_t)((blkno * 0x9e3779b97f4a7c15ull) >> 20) & c->hash_mask;
}

static struct rfs_buf *hash_find(struct rfs_cache *c, fsblock_t blkno)
{
	struct rfs_buf *bp = c->hash[hash_slot(c, blkno)];

	while (bp && bp->blkno != blkno)
		bp = bp->hnext;
	return bp;
}

static void hash_insert(struct rfs_cache *c, struct rfs_buf *bp)
{
	size_t slot = hash_slot(c, bp->blkno);

	bp->hnext = c->hash[slot];
	c->hash[slot] = bp;
}

static void hash_remove(struct rfs_cache *c, struct rfs_buf *bp)
{
	struct rfs_buf **pp = &c->hash[hash_slot(c, bp->blkno)];

	while (*pp != bp)
		pp = &(*pp)->hnext;
	*pp = bp->hnext;
}

static void lru_remove(struct rfs_buf *bp)
{
	bp->lru_prev->lru_next = bp->lru_next;
	bp->lru_next->lru_prev = bp->lru_prev;
	bp->lru_prev = bp->lru_next = NULL;
}

static void lru_push_head(struct rfs_cache *c, struct rfs_buf *bp)
{
	bp->lru_next = c->lru.lru_next;
	bp->lru_prev = &c->lru;
	c->lru.lru_next->lru_prev = bp;
	c->lru.lru_next = bp;
}

int cache_create(struct rfs_dev *dev, uint32_t block_log, size_t budget, struct rfs_cache **out)
{
	struct rfs_cache *c;
	size_t nhash = 64;

	if (block_log < RFS_MIN_BLOCK_LOG || block_log > RFS_MAX_BLOCK_LOG)
		return -EINVAL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->dev = dev;
	c->block_log = block_log;
	c->bsize = 1u << block_log;
	c->max_bufs = RFS_MAX(budget >> block_log, (size_t)MIN_BUFS);
	c->writeback_on_evict = 1;
	while (nhash < c->max_bufs * 2)
		nhash <<= 1;
	c->hash = calloc(nhash, sizeof(*c->hash));
	if (!c->hash) {
		free(c);
		return -ENOMEM;
	}
	c->hash_mask = nhash - 1;
	c->lru.lru_next = c->lru.lru_prev = &c->lru;
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->loaded, NULL);
	*out = c;
	return 0;
}

static void buf_free(struct rfs_buf *bp)
{
	free(bp->data);
	free(bp);
}

void cache_destroy(struct rfs_cache *c)
{
	size_t i;

	if (!c)
		return;
	for (i = 0; i <= c->hash_mask; i++) {
		struct rfs_buf *bp = c->hash[i];
		while (bp) {
			struct rfs_buf *next = bp->hnext;
			buf_free(bp);
			bp = next;
		}
	}
	free(c->hash);
	pthread_cond_destroy(&c->loaded);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

void cache_set_seed(struct rfs_cache *c, uint32_t seed)
{
	c->csum_seed = seed;
}

/* Checks the checksum first (any damaged byte, header included, is a
 * checksum failure), then the header fields, then the structure. */
int buf_verify_raw(struct rfs_cache *c, fsblock_t blkno, const struct rfs_buf_ops *ops,
		   const void *data, char *why, size_t whylen)
{
	const struct rfs_blkhdr *h = data;

	if (rfs_block_check_crc(c->csum_seed, data, c->bsize)) {
		if (le32_get(h->magic) != RFS_BLK_MAGIC)
			snprintf(why, whylen, "checksum mismatch, bad magic 0x%08x",
				 le32_get(h->magic));
		else
			snprintf(why, whylen, "checksum mismatch");
		return -EBADMSG;
	}
	if (le32_get(h->magic) != RFS_BLK_MAGIC) {
		snprintf(why, whylen, "bad magic 0x%08x", le32_get(h->magic));
		return -EUCLEAN;
	}
	if (le64_get(h->blkno) != blkno) {
		snprintf(why, whylen, "header says block %" PRIu64 " (misdirected write)",
			 le64_get(h->blkno));
		return -EUCLEAN;
	}
	if (le16_get(h->type) != ops->type) {
		snprintf(why, whylen, "type %u, expected %u (%s)", le16_get(h->type), ops->type,
			 ops->name);
		return -EUCLEAN;
	}
	return ops->verify ? ops->verify(c, data, why, whylen) : 0;
}

static int verify_loaded(struct rfs_cache *c, struct rfs_buf *bp)
{
	char why[160];
	int ret = buf_verify_raw(c, bp->blkno, bp->ops, bp->data, why, sizeof(why));

	if (ret)
		rfs_log(RFS_LOG_WARN, "metadata block %" PRIu64 " (%s): %s", bp->blkno,
			bp->ops->name, why);
	return ret;
}

static void ref_get_locked(struct rfs_cache *c, struct rfs_buf *bp);

/* Finds an unreferenced buffer to reuse, or NULL. Cache lock held.
 * Prefers the least recently used clean buffer; without one, and when the
 * cache may write back on eviction, writes the least recently used dirty
 * buffer first (dropping the lock for the I/O). While that write is in
 * flight the buffer is marked WRITEBACK: buf_read, buf_new, buf_forget and
 * cache_flush wait for it rather than race with the eviction. */
static struct rfs_buf *evict_one_locked(struct rfs_cache *c)
{
	struct rfs_buf *bp, *dirty = NULL;
	int ret;

	for (bp = c->lru.lru_prev; bp != &c->lru; bp = bp->lru_prev) {
		if (!(bp->flags & RFS_BUF_DIRTY))
			goto take;
		if (!dirty)
			dirty = bp;
	}
	if (!dirty || !c->writeback_on_evict)
		return NULL;
	bp = dirty;
	ref_get_locked(c, bp); /* off the LRU while we write it */
	bp->flags |= RFS_BUF_WRITEBACK;
	pthread_mutex_unlock(&c->lock);
	ret = buf_write(bp);
	pthread_mutex_lock(&c->lock);
	bp->flags &= ~RFS_BUF_WRITEBACK;
	pthread_cond_broadcast(&c->loaded);
	if (--bp->refs > 0)
		return NULL; /* someone else wants it now: let the caller grow */
	if (ret || (bp->flags & RFS_BUF_DIRTY)) {
		lru_push_head(c, bp);
		return NULL;
	}
	hash_remove(c, bp);
	c->stats.evictions++;
	return bp;
take:
	lru_remove(bp);
	hash_remove(c, bp);
	c->stats.evictions++;
	return bp;
}

static void buf_free_slot_locked(struct rfs_cache *c, struct rfs_buf *bp)
{
	c->nr_bufs--;
	buf_free(bp);
}

/* An unhashed buffer for a new block number, or NULL. Cache lock held; it
 * may be dropped for an eviction write-back, so the caller must look its
 * block number up again. A cache that grew past its budget (pinned or
 * dirty buffers) first frees unreferenced buffers to shrink back. */
static struct rfs_buf *buf_get_slot_locked(struct rfs_cache *c)
{
	struct rfs_buf *bp = NULL;

	while (c->nr_bufs > c->max_bufs && (bp = evict_one_locked(c)) != NULL)
		buf_free_slot_locked(c, bp);
	bp = NULL;
	if (c->nr_bufs >= c->max_bufs)
		bp = evict_one_locked(c);
	if (bp) {
		bp->flags = 0;
		bp->hnext = NULL;
		bp->jtid = 0;
		bp->jpins = 0;
		return bp;
	}
	bp = calloc(1, sizeof(*bp));
	if (!bp)
		return NULL;
	bp->data = malloc(c->bsize);
	if (!bp->data) {
		free(bp);
		return NULL;
	}
	bp->cache = c;
	if (c->nr_bufs >= c->max_bufs)
		c->stats.over_budget++;
	c->nr_bufs++;
	return bp;
}

static void ref_get_locked(struct rfs_cache *c, struct rfs_buf *bp)
{
	(void)c;
	if (bp->refs++ == 0)
		lru_remove(bp);
}

static void buf_drop_locked(struct rfs_cache *c, struct rfs_buf *bp)
{
	hash_remove(c, bp);
	if (bp->flags & RFS_BUF_DIRTY)
		c->nr_dirty--;
	buf_free_slot_locked(c, bp);
}

/* Looks BLKNO up, waiting out a read or an eviction write-back of it. */
static struct rfs_buf *find_settled_locked(struct rfs_cache *c, fsblock_t blkno)
{
	struct rfs_buf *bp;

	while ((bp = hash_find(c, blkno)) && (bp->flags & (RFS_BUF_LOADING | RFS_BUF_WRITEBACK)))
		pthread_cond_wait(&c->loaded, &c->lock);
	return bp;
}

/* Finds BLKNO's buffer or, failing that, a free slot for it (*SLOT), with
 * the cache lock held and no other buffer for BLKNO able to appear until it
 * is dropped. -ENOMEM if neither. */
static int find_or_slot_locked(struct rfs_cache *c, fsblock_t blkno, struct rfs_buf **bpp,
			       struct rfs_buf **slot)
{
	*slot = NULL;
	for (;;) {
		*bpp = find_settled_locked(c, blkno);
		if (*bpp) {
			if (*slot) /* someone cached it while we evicted */
				buf_free_slot_locked(c, *slot);
			*slot = NULL;
			return 0;
		}
		if (*slot)
			return 0;
		*slot = buf_get_slot_locked(c);
		if (!*slot)
			return -ENOMEM;
	}
}

int buf_read(struct rfs_cache *c, fsblock_t blkno, const struct rfs_buf_ops *ops,
	     struct rfs_buf **out)
{
	struct rfs_buf *bp, *slot;
	int ret;

	pthread_mutex_lock(&c->lock);
	ret = find_or_slot_locked(c, blkno, &bp, &slot);
	if (ret) {
		pthread_mutex_unlock(&c->lock);
		return ret;
	}
	if (bp) {
		if (bp->ops != ops) {
			pthread_mutex_unlock(&c->lock);
			rfs_log(RFS_LOG_WARN,
				"metadata block %" PRIu64 " read as %s but cached as %s", blkno,
				ops->name, bp->ops->name);
			return -EUCLEAN;
		}
		ref_get_locked(c, bp);
		c->stats.hits++;
		pthread_mutex_unlock(&c->lock);
		*out = bp;
		return 0;
	}
	bp = slot;
	bp->blkno = blkno;
	bp->ops = ops;
	bp->refs = 1;
	bp->flags = RFS_BUF_LOADING;
	hash_insert(c, bp);
	c->stats.misses++;
	pthread_mutex_unlock(&c->lock);

	ret = dev_pread(c->dev, bp->data, c->bsize, blk_off(c, blkno));
	if (!ret)
		ret = verify_loaded(c, bp);

	pthread_mutex_lock(&c->lock);
	bp->flags &= ~RFS_BUF_LOADING;
	if (ret)
		buf_drop_locked(c, bp);
	pthread_cond_broadcast(&c->loaded);
	pthread_mutex_unlock(&c->lock);
	if (ret)
		return ret;
	*out = bp;
	return 0;
}

int buf_new(struct rfs_cache *c, fsblock_t blkno, const struct rfs_buf_ops *ops, uint64_t owner,
	    struct rfs_buf **out)
{
	struct rfs_blkhdr *h;
	struct rfs_buf *bp, *slot;
	int ret;

	pthread_mutex_lock(&c->lock);
	ret = find_or_slot_locked(c, blkno, &bp, &slot);
	if (ret) {
		pthread_mutex_unlock(&c->lock);
		return ret;
	}
	if (bp) {
		if (bp->refs) {
			pthread_mutex_unlock(&c->lock);
			rfs_log(RFS_LOG_ERR, "block %" PRIu64 " reallocated while in use", blkno);
			return -EUCLEAN;
		}
		lru_remove(bp);
	} else {
		bp = slot;
		bp->blkno = blkno;
		hash_insert(c, bp);
	}
	bp->ops = ops;
	bp->refs = 1;
	if (!(bp->flags & RFS_BUF_DIRTY))
		c->nr_dirty++;
	bp->flags = RFS_BUF_DIRTY;
	pthread_mutex_unlock(&c->lock);

	memset(bp->data, 0, c->bsize);
	h = (struct rfs_blkhdr *)bp->data;
	h->magic = le32_make(RFS_BLK_MAGIC);
	h->type = le16_make(ops->type);
	h->blkno = le64_make(blkno);
	h->owner = le64_make(owner);
	if (c->hooks)
		c->hooks->dirty(c->hook_arg, bp);
	*out = bp;
	return 0;
}

void buf_hold(struct rfs_buf *bp)
{
	struct rfs_cache *c = bp->cache;

	pthread_mutex_lock(&c->lock);
	ref_get_locked(c, bp);
	pthread_mutex_unlock(&c->lock);
}

void buf_release(struct rfs_buf *bp)
{
	struct rfs_cache *c;

	if (!bp)
		return;
	c = bp->cache;
	pthread_mutex_lock(&c->lock);
	if (--bp->refs == 0) {
		if (bp->flags & RFS_BUF_FORGOTTEN)
			buf_free_slot_locked(c, bp);
		else
			lru_push_head(c, bp);
	}
	pthread_mutex_unlock(&c->lock);
}

void buf_dirty(struct rfs_buf *bp)
{
	struct rfs_cache *c = bp->cache;

	pthread_mutex_lock(&c->lock);
	if (!(bp->flags & RFS_BUF_DIRTY)) {
		bp->flags |= RFS_BUF_DIRTY;
		c->nr_dirty++;
	}
	pthread_mutex_unlock(&c->lock);
	if (c->hooks)
		c->hooks->dirty(c->hook_arg, bp);
}

void buf_forget(struct rfs_cache *c, fsblock_t blkno)
{
	struct rfs_buf *bp;

	if (c->hooks)
		c->hooks->forget(c->hook_arg, blkno);
	pthread_mutex_lock(&c->lock);
	bp = find_settled_locked(c, blkno);
	if (bp && !bp->refs) {
		lru_remove(bp);
		buf_drop_locked(c, bp);
	} else if (bp) {
		hash_remove(c, bp);
		if (bp->flags & RFS_BUF_DIRTY)
			c->nr_dirty--;
		bp->flags = (bp->flags & ~RFS_BUF_DIRTY) | RFS_BUF_FORGOTTEN;
	}
	pthread_mutex_unlock(&c->lock);
}

int buf_write(struct rfs_buf *bp)
{
	struct rfs_cache *c = bp->cache;
	struct rfs_blkhdr *h = (struct rfs_blkhdr *)bp->data;
	char why[160];
	int ret;

	h->blkno = le64_make(bp->blkno);
	h->tid = le64_make(c->cur_tid);
	if (bp->ops->verify && bp->ops->verify(c, bp->data, why, sizeof(why))) {
		/* Never write a block we know is corrupt: that is a bug above. */
		rfs_log(RFS_LOG_ERR, "refusing to write corrupt %s block %" PRIu64 ": %s",
			bp->ops->name, bp->blkno, why);
		return -EUCLEAN;
	}
	rfs_block_set_crc(c->csum_seed, bp->data, c->bsize);
	ret = dev_pwrite(c->dev, bp->data, c->bsize, blk_off(c, bp->blkno));
	if (ret)
		return ret;
	pthread_mutex_lock(&c->lock);
	if (bp->flags & RFS_BUF_DIRTY) {
		bp->flags &= ~RFS_BUF_DIRTY;
		c->nr_dirty--;
	}
	c->stats.writes++;
	pthread_mutex_unlock(&c->lock);
	return 0;
}

static int cmp_buf_blkno(const void *a, const void *b)
{
	const struct rfs_buf *x = *(struct rfs_buf *const *)a, *y = *(struct rfs_buf *const *)b;
	return x->blkno < y->blkno ? -1 : x->blkno > y->blkno;
}

/* Writes BP, unless an eviction write-back (waited for) already did. */
static int flush_one(struct rfs_cache *c, struct rfs_buf *bp)
{
	int dirty;

	pthread_mutex_lock(&c->lock);
	while (bp->flags & RFS_BUF_WRITEBACK)
		pthread_cond_wait(&c->loaded, &c->lock);
	dirty = !!(bp->flags & RFS_BUF_DIRTY);
	pthread_mutex_unlock(&c->lock);
	return dirty ? buf_write(bp) : 0;
}

int cache_flush(struct rfs_cache *c)
{
	struct rfs_buf **list;
	size_t n = 0, i;
	int ret = 0;

	pthread_mutex_lock(&c->lock);
	list = malloc((c->nr_dirty + 1) * sizeof(*list));
	if (!list) {
		pthread_mutex_unlock(&c->lock);
		return -ENOMEM;
	}
	for (i = 0; i <= c->hash_mask; i++) {
		struct rfs_buf *bp;
		for (bp = c->hash[i]; bp; bp = bp->hnext) {
			if (!(bp->flags & RFS_BUF_DIRTY) || bp->jpins || n > c->nr_dirty)
				continue;
			ref_get_locked(c, bp);
			list[n++] = bp;
		}
	}
	pthread_mutex_unlock(&c->lock);
	qsort(list, n, sizeof(*list), cmp_buf_blkno);
	for (i = 0; i < n; i++) {
		int r = flush_one(c, list[i]);
		if (r && !ret)
			ret = r;
		buf_release(list[i]);
	}
	free(list);
	if (!ret)
		ret = dev_flush(c->dev);
	return ret;
}
