/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * test_buf.c - unit tests of lib/buf.c (the metadata buffer cache) and
 * lib/crc.c, over a RAM device.
 */
#include <check.h>
#include <endian.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "buf.h"
#include "crc.h"
#include "dev.h"
#include "testutil.h"
#include "util.h"

/* _i of the loop tests picks the block size. */
static const uint32_t block_logs[] = {10, 12};

/* --- log capture ----------------------------------------------------- */

static int nr_logs, nr_errs;
static char last_log[1024];

static void log_sink(enum rfs_log_level level, const char *msg)
{
	nr_logs++;
	if (level == RFS_LOG_ERR)
		nr_errs++;
	snprintf(last_log, sizeof(last_log), "%s", msg);
}

/* --- a tiny block type: the free list -------------------------------- */

static uint32_t fl_capacity(uint32_t bsize)
{
	return (bsize - (uint32_t)sizeof(struct rfs_freelist)) / 8;
}

static int fl_verify(struct rfs_cache *c, const void *data, char *why, size_t whylen)
{
	const struct rfs_freelist *fl = data;

	if (le32_get(fl->count) > fl_capacity(c->bsize)) {
		snprintf(why, whylen, "count %u too large", le32_get(fl->count));
		return -EUCLEAN;
	}
	if (le32_get(fl->pad) != 0) {
		snprintf(why, whylen, "pad not zero");
		return -EUCLEAN;
	}
	return 0;
}

static const struct rfs_buf_ops fl_ops = {
	.type = RFS_BLK_FREELIST,
	.name = "freelist",
	.verify = fl_verify,
};

/* A second type, without a structure check. */
static const struct rfs_buf_ops jsb_ops = {
	.type = RFS_BLK_JOURNAL_SB,
	.name = "journal sb",
};

static void fl_fill(void *data, fsblock_t blkno, uint32_t salt)
{
	struct rfs_freelist *fl = data;
	uint32_t i, n = 3 + (uint32_t)(blkno % 5);

	fl->count = le32_make(n);
	for (i = 0; i < n; i++)
		fl->blocks[i] = le64_make(blkno * 1000 + i + salt);
}

static void fl_check(const void *data, fsblock_t blkno, uint32_t salt)
{
	const struct rfs_freelist *fl = data;
	uint32_t i, n = 3 + (uint32_t)(blkno % 5);

	ck_assert_uint_eq(le32_get(fl->count), n);
	for (i = 0; i < n; i++)
		ck_assert_uint_eq(le64_get(fl->blocks[i]), blkno * 1000 + i + salt);
}

/* --- environment ----------------------------------------------------- */

static const uint8_t uuid_a[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
static const uint8_t uuid_b[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 17};

struct env {
	struct rfs_dev *dev;
	struct rfs_cache *c;
	uint32_t block_log, bsize;
	uint64_t nblocks;
	uint32_t seed;
};

static void env_init(struct env *e, uint32_t block_log, uint64_t nblocks, size_t budget_blocks)
{
	memset(e, 0, sizeof(*e));
	e->block_log = block_log;
	e->bsize = 1u << block_log;
	e->nblocks = nblocks;
	e->seed = rfs_crc_seed(uuid_a);
	ck_assert_int_eq(dev_open_mem(nblocks << block_log, &e->dev), 0);
	ck_assert_int_eq(cache_create(e->dev, block_log, budget_blocks << block_log, &e->c), 0);
	ck_assert_uint_eq(e->c->bsize, e->bsize);
	ck_assert_uint_eq(e->c->max_bufs, budget_blocks < 16 ? 16 : budget_blocks);
	cache_set_seed(e->c, e->seed);
	e->c->cur_tid = 42;
	nr_logs = nr_errs = 0;
	last_log[0] = 0;
	rfs_log_set_sink(log_sink);
}

static void env_fini(struct env *e)
{
	cache_destroy(e->c);
	dev_close(e->dev);
	rfs_log_set_sink(NULL);
}

static uint8_t *dev_block(struct env *e, fsblock_t blkno)
{
	return e->dev->mem + (blkno << e->block_log);
}

/* Builds a valid block image of TYPE in IMG, as another writer would. */
static void make_image(struct env *e, void *img, uint32_t seed, fsblock_t blkno, uint16_t type,
		       uint32_t salt)
{
	struct rfs_blkhdr *h = img;

	memset(img, 0, e->bsize);
	h->magic = le32_make(RFS_BLK_MAGIC);
	h->type = le16_make(type);
	h->blkno = le64_make(blkno);
	h->tid = le64_make(7);
	fl_fill(img, blkno, salt);
	rfs_block_set_crc(seed, img, e->bsize);
}

static void put_raw(struct env *e, fsblock_t blkno, uint16_t type, uint32_t salt)
{
	make_image(e, dev_block(e, blkno), e->seed, blkno, type, salt);
}

static int block_is_zero(struct env *e, fsblock_t blkno)
{
	const uint8_t *p = dev_block(e, blkno);
	uint32_t i;

	for (i = 0; i < e->bsize; i++)
		if (p[i])
			return 0;
	return 1;
}

/* The block on the device is a valid free-list block with the payload. */
static void check_on_device(struct env *e, fsblock_t blkno, uint32_t salt)
{
	char why[160] = "";
	int ret = buf_verify_raw(e->c, blkno, &fl_ops, dev_block(e, blkno), why, sizeof(why));

	ck_assert_msg(ret == 0, "block %lu: %d %s", (unsigned long)blkno, ret, why);
	fl_check(dev_block(e, blkno), blkno, salt);
}

/* How many buffers the hash holds for BLKNO, and one of them. */
static int count_cached(struct rfs_cache *c, fsblock_t blkno, struct rfs_buf **out)
{
	struct rfs_buf *bp;
	size_t i;
	int n = 0;

	if (out)
		*out = NULL;
	for (i = 0; i <= c->hash_mask; i++)
		for (bp = c->hash[i]; bp; bp = bp->hnext)
			if (bp->blkno == blkno) {
				n++;
				if (out)
					*out = bp;
			}
	return n;
}

static struct rfs_buf *cached(struct rfs_cache *c, fsblock_t blkno)
{
	struct rfs_buf *bp;

	ck_assert_int_le(count_cached(c, blkno, &bp), 1);
	return bp;
}

static size_t hash_count(struct rfs_cache *c)
{
	struct rfs_buf *bp;
	size_t i, n = 0;

	for (i = 0; i <= c->hash_mask; i++)
		for (bp = c->hash[i]; bp; bp = bp->hnext)
			n++;
	return n;
}

static size_t lru_len(struct rfs_cache *c)
{
	struct rfs_buf *bp;
	size_t n = 0;

	for (bp = c->lru.lru_next; bp != &c->lru; bp = bp->lru_next) {
		ck_assert_int_eq(bp->refs, 0);
		ck_assert_ptr_eq(bp->lru_next->lru_prev, bp);
		n++;
	}
	return n;
}

/* Reads a free-list block, checks its payload and releases it. */
static void read_check_release(struct env *e, fsblock_t blkno, uint32_t salt)
{
	struct rfs_buf *bp = NULL;

	ck_assert_int_eq(buf_read(e->c, blkno, &fl_ops, &bp), 0);
	ck_assert_uint_eq(bp->blkno, blkno);
	fl_check(bp->data, blkno, salt);
	buf_release(bp);
}

/* --- crc ------------------------------------------------------------- */

START_TEST(test_crc_definition)
{
	uint32_t bsize = 1u << block_logs[_i], seed = rfs_crc_seed(uuid_a);
	uint8_t *blk = malloc(bsize), *copy = malloc(bsize);
	struct rfs_blkhdr *h = (struct rfs_blkhdr *)blk;
	uint32_t i, crc;

	ck_assert_ptr_nonnull(blk);
	ck_assert_ptr_nonnull(copy);
	ck_assert_uint_eq(seed, (uint32_t)crc32(0, uuid_a, 16));
	ck_assert_uint_ne(seed, rfs_crc_seed(uuid_b));
	for (i = 0; i < bsize; i++)
		blk[i] = (uint8_t)(i * 37 + 5);

	/* zlib crc32 continued from the seed, over the block with crc = 0. */
	memcpy(copy, blk, bsize);
	memset(copy + RFS_BLKHDR_CRC_OFF, 0, 4);
	crc = (uint32_t)crc32(seed, copy, bsize);
	ck_assert_uint_eq(rfs_block_crc(seed, blk, bsize), crc);
	h->crc = le32_make(0xdeadbeef); /* the crc field itself is not covered */
	ck_assert_uint_eq(rfs_block_crc(seed, blk, bsize), crc);
	ck_assert_uint_ne(rfs_block_crc(rfs_crc_seed(uuid_b), blk, bsize), crc);

	ck_assert_int_eq(rfs_block_check_crc(seed, blk, bsize), -EBADMSG);
	rfs_block_set_crc(seed, blk, bsize);
	ck_assert_uint_eq(le32_get(h->crc), crc);
	ck_assert_mem_eq(blk + RFS_BLKHDR_CRC_OFF, &(uint32_t){htole32(crc)}, 4);
	ck_assert_int_eq(rfs_block_check_crc(seed, blk, bsize), 0);
	ck_assert_int_eq(rfs_block_check_crc(rfs_crc_seed(uuid_b), blk, bsize), -EBADMSG);
	blk[bsize - 1] ^= 1;
	ck_assert_int_eq(rfs_block_check_crc(seed, blk, bsize), -EBADMSG);
	free(blk);
	free(copy);
}
END_TEST

/* --- basic life cycle ------------------------------------------------ */

START_TEST(test_cache_create_args)
{
	struct rfs_dev *dev = NULL;
	struct rfs_cache *c = NULL;

	ck_assert_int_eq(dev_open_mem(1 << 20, &dev), 0);
	ck_assert_int_eq(cache_create(dev, RFS_MIN_BLOCK_LOG - 1, 1 << 20, &c), -EINVAL);
	ck_assert_int_eq(cache_create(dev, RFS_MAX_BLOCK_LOG + 1, 1 << 20, &c), -EINVAL);
	ck_assert_int_eq(cache_create(dev, 40, 1 << 20, &c), -EINVAL);
	ck_assert_ptr_null(c);
	/* A tiny budget still gets 16 buffers. */
	ck_assert_int_eq(cache_create(dev, 12, 0, &c), 0);
	ck_assert_uint_eq(c->max_bufs, 16);
	ck_assert_uint_eq(c->bsize, 4096);
	ck_assert_int_eq(c->writeback_on_evict, 1);
	ck_assert_uint_eq(c->nr_bufs, 0);
	cache_destroy(c);
	ck_assert_int_eq(cache_create(dev, 10, 100 << 10, &c), 0);
	ck_assert_uint_eq(c->max_bufs, 100);
	cache_destroy(c);
	cache_destroy(NULL);
	dev_close(dev);
}
END_TEST

START_TEST(test_roundtrip)
{
	struct env e;
	struct rfs_buf *bp = NULL, *bp2 = NULL;
	struct rfs_blkhdr *h;

	env_init(&e, block_logs[_i], 64, 16);
	ck_assert_int_eq(buf_new(e.c, 5, &fl_ops, 77, &bp), 0);
	ck_assert_uint_eq(bp->blkno, 5);
	ck_assert_int_eq(bp->refs, 1);
	ck_assert_uint_eq(bp->flags, RFS_BUF_DIRTY);
	ck_assert_uint_eq(e.c->nr_dirty, 1);
	h = (struct rfs_blkhdr *)bp->data;
	ck_assert_uint_eq(le32_get(h->magic), RFS_BLK_MAGIC);
	ck_assert_uint_eq(le16_get(h->type), RFS_BLK_FREELIST);
	ck_assert_uint_eq(le64_get(h->blkno), 5);
	ck_assert_uint_eq(le64_get(h->owner), 77);
	fl_fill(bp->data, 5, 1);
	ck_assert(block_is_zero(&e, 5)); /* nothing written yet */

	ck_assert_int_eq(buf_write(bp), 0);
	ck_assert_uint_eq(bp->flags & RFS_BUF_DIRTY, 0);
	ck_assert_uint_eq(e.c->nr_dirty, 0);
	ck_assert_uint_eq(e.c->stats.writes, 1);
	ck_assert_uint_eq(e.dev->nr_writes, 1);
	ck_assert_uint_eq(le64_get(h->tid), 42);
	ck_assert_mem_eq(dev_block(&e, 5), bp->data, e.bsize);
	check_on_device(&e, 5, 1);
	buf_release(bp);
	ck_assert_int_eq(bp->refs, 0);

	buf_forget(e.c, 5);
	ck_assert_uint_eq(e.c->nr_bufs, 0);
	ck_assert_ptr_null(cached(e.c, 5));
	ck_assert_int_eq(buf_read(e.c, 5, &fl_ops, &bp), 0);
	ck_assert_uint_eq(e.c->stats.misses, 1);
	fl_check(bp->data, 5, 1);
	ck_assert_uint_eq(le64_get(((struct rfs_blkhdr *)bp->data)->owner), 77);
	ck_assert_uint_eq(le64_get(((struct rfs_blkhdr *)bp->data)->tid), 42);
	ck_assert_uint_eq(bp->flags, 0);

	/* A second read is a hit on the same buffer; hold adds a reference. */
	ck_assert_int_eq(buf_read(e.c, 5, &fl_ops, &bp2), 0);
	ck_assert_ptr_eq(bp, bp2);
	ck_assert_uint_eq(e.c->stats.hits, 1);
	ck_assert_int_eq(bp->refs, 2);
	buf_hold(bp);
	ck_assert_int_eq(bp->refs, 3);
	buf_release(bp);
	buf_release(bp);
	buf_release(bp2);
	buf_release(NULL);
	ck_assert_int_eq(bp->refs, 0);
	ck_assert_uint_eq(lru_len(e.c), 1);
	buf_hold(bp); /* hold from the LRU takes it off */
	ck_assert_uint_eq(lru_len(e.c), 0);
	buf_release(bp);
	ck_assert_uint_eq(lru_len(e.c), 1);
	env_fini(&e);
}
END_TEST

/* --- verification ---------------------------------------------------- */

START_TEST(test_seed_mismatch)
{
	struct env e;
	struct rfs_buf *bp = NULL;

	env_init(&e, block_logs[_i], 64, 16);
	ck_assert_int_eq(buf_new(e.c, 9, &fl_ops, 0, &bp), 0);
	fl_fill(bp->data, 9, 0);
	ck_assert_int_eq(buf_write(bp), 0);
	buf_release(bp);
	buf_forget(e.c, 9);

	cache_set_seed(e.c, rfs_crc_seed(uuid_b));
	ck_assert_int_eq(buf_read(e.c, 9, &fl_ops, &bp), -EBADMSG);
	ck_assert_uint_eq(e.c->nr_bufs, 0); /* a failed read leaves nothing */
	ck_assert_int_eq(nr_logs, 1);
	ck_assert_ptr_nonnull(strstr(last_log, "9"));
	cache_set_seed(e.c, e.seed);
	ck_assert_int_eq(buf_read(e.c, 9, &fl_ops, &bp), 0);
	fl_check(bp->data, 9, 0);
	buf_release(bp);
	env_fini(&e);
}
END_TEST

/* Any single flipped byte, header or payload, is a checksum failure. */
START_TEST(test_flipped_byte)
{
	struct env e;
	struct rfs_buf *bp = NULL;
	char name[32];
	uint32_t off;
	uint8_t *p;

	env_init(&e, block_logs[_i], 64, 16);
	put_raw(&e, 5, RFS_BLK_FREELIST, 3);
	p = dev_block(&e, 5);
	snprintf(name, sizeof(name), "block 5 ");
	for (off = 0; off < e.bsize; off++) {
		uint8_t flip = (uint8_t)(1u << (off % 8));

		p[off] ^= flip;
		ck_assert_msg(buf_read(e.c, 5, &fl_ops, &bp) == -EBADMSG, "offset %u", off);
		ck_assert_uint_eq(e.c->nr_bufs, 0);
		ck_assert_ptr_nonnull(strstr(last_log, name));
		p[off] ^= 0xff; /* a whole-byte change too */
		ck_assert_msg(buf_read(e.c, 5, &fl_ops, &bp) == -EBADMSG, "offset %u", off);
		p[off] ^= 0xff ^ flip;
	}
	ck_assert_int_eq(nr_logs, 2 * (int)e.bsize);
	read_check_release(&e, 5, 3);
	env_fini(&e);
}
END_TEST

START_TEST(test_unwritten_block)
{
	struct env e;
	struct rfs_buf *bp = NULL;
	int ret;

	env_init(&e, block_logs[_i], 64, 16);
	ret = buf_read(e.c, 20, &fl_ops, &bp);
	ck_assert_msg(ret == -EBADMSG || ret == -EUCLEAN, "ret %d", ret);
	ck_assert_uint_eq(e.c->nr_bufs, 0);
	env_fini(&e);
}
END_TEST

/* A valid image of block 5 found at block 9: a misdirected write. */
START_TEST(test_misdirected)
{
	struct env e;
	struct rfs_buf *bp = NULL;

	env_init(&e, block_logs[_i], 64, 16);
	put_raw(&e, 5, RFS_BLK_FREELIST, 0);
	memcpy(dev_block(&e, 9), dev_block(&e, 5), e.bsize);
	ck_assert_int_eq(buf_read(e.c, 9, &fl_ops, &bp), -EUCLEAN);
	ck_assert_ptr_nonnull(strstr(last_log, "misdirected"));
	ck_assert_ptr_nonnull(strstr(last_log, "block 9"));
	ck_assert_uint_eq(e.c->nr_bufs, 0);
	read_check_release(&e, 5, 0);
	env_fini(&e);
}
END_TEST

START_TEST(test_wrong_type)
{
	struct env e;
	struct rfs_buf *bp = NULL;

	env_init(&e, block_logs[_i], 64, 16);
	put_raw(&e, 6, RFS_BLK_JOURNAL_SB, 0);
	ck_assert_int_eq(buf_read(e.c, 6, &fl_ops, &bp), -EUCLEAN);
	ck_assert_ptr_nonnull(strstr(last_log, "type"));
	ck_assert_uint_eq(e.c->nr_bufs, 0);
	/* Read as its real type it is fine... */
	ck_assert_int_eq(buf_read(e.c, 6, &jsb_ops, &bp), 0);
	buf_release(bp);
	/* ...and while cached so, reading it as another type still fails. */
	ck_assert_int_eq(buf_read(e.c, 6, &fl_ops, &bp), -EUCLEAN);
	ck_assert_uint_eq(e.c->nr_bufs, 1);
	/* A bad magic is a bad header. */
	put_raw(&e, 7, RFS_BLK_FREELIST, 0);
	((struct rfs_blkhdr *)dev_block(&e, 7))->magic = le32_make(0x12345678);
	rfs_block_set_crc(e.seed, dev_block(&e, 7), e.bsize);
	ck_assert_int_eq(buf_read(e.c, 7, &fl_ops, &bp), -EUCLEAN);
	ck_assert_ptr_nonnull(strstr(last_log, "magic"));
	env_fini(&e);
}
END_TEST

START_TEST(test_verify_failure)
{
	struct env e;
	struct rfs_buf *bp = NULL;
	struct rfs_freelist *fl;
	uint64_t flushes;

	env_init(&e, block_logs[_i], 64, 16);
	/* On read: a checksummed block whose structure is wrong. */
	put_raw(&e, 4, RFS_BLK_FREELIST, 0);
	fl = (struct rfs_freelist *)dev_block(&e, 4);
	fl->count = le32_make(fl_capacity(e.bsize) + 1);
	rfs_block_set_crc(e.seed, fl, e.bsize);
	ck_assert_int_eq(buf_read(e.c, 4, &fl_ops, &bp), -EUCLEAN);
	ck_assert_ptr_nonnull(strstr(last_log, "count"));
	ck_assert_uint_eq(e.c->nr_bufs, 0);
	fl->count = le32_make(fl_capacity(e.bsize)); /* the limit itself is fine */
	rfs_block_set_crc(e.seed, fl, e.bsize);
	ck_assert_int_eq(buf_read(e.c, 4, &fl_ops, &bp), 0);
	buf_release(bp);

	/* On write: a corrupt buffer never reaches the device. */
	ck_assert_int_eq(buf_new(e.c, 3, &fl_ops, 0, &bp), 0);
	fl_fill(bp->data, 3, 0);
	((struct rfs_freelist *)bp->data)->pad = le32_make(1);
	nr_errs = 0;
	ck_assert_int_eq(buf_write(bp), -EUCLEAN);
	ck_assert_int_eq(nr_errs, 1);
	ck_assert(block_is_zero(&e, 3));
	ck_assert_uint_eq(e.dev->nr_writes, 0);
	ck_assert_uint_ne(bp->flags & RFS_BUF_DIRTY, 0);
	ck_assert_uint_eq(e.c->nr_dirty, 1);
	flushes = e.dev->nr_flushes;
	ck_assert_int_eq(cache_flush(e.c), -EUCLEAN);
	ck_assert(block_is_zero(&e, 3));
	ck_assert_uint_eq(e.dev->nr_flushes, flushes);

	((struct rfs_freelist *)bp->data)->pad = 0;
	ck_assert_int_eq(buf_write(bp), 0);
	check_on_device(&e, 3, 0);
	buf_release(bp);
	env_fini(&e);
}
END_TEST

/* --- concurrency: one load, many readers ------------------------------ */

/* A gate in the RAM backend: the armed read or write does its I/O, then
 * blocks until the test opens the gate. Counts the I/O it sees. */
static struct {
	pthread_mutex_t m;
	pthread_cond_t cv;
	const struct rfs_dev_ops *orig;
	struct rfs_dev_ops ops;
	int arm_read, arm_write, blocked, open;
	unsigned reads, writes;
} gate = {.m = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static void gate_pass(int *armed, unsigned *count)
{
	pthread_mutex_lock(&gate.m);
	(*count)++;
	if (*armed) {
		*armed = 0;
		gate.blocked = 1;
		pthread_cond_broadcast(&gate.cv);
		while (!gate.open)
			pthread_cond_wait(&gate.cv, &gate.m);
	}
	pthread_mutex_unlock(&gate.m);
}

static int gate_pread(struct rfs_dev *dev, void *buf, size_t len, uint64_t off)
{
	int ret = gate.orig->pread(dev, buf, len, off);

	gate_pass(&gate.arm_read, &gate.reads);
	return ret;
}

static int gate_pwrite(struct rfs_dev *dev, const void *buf, size_t len, uint64_t off)
{
	int ret = gate.orig->pwrite(dev, buf, len, off);

	gate_pass(&gate.arm_write, &gate.writes);
	return ret;
}

static void gate_install(struct rfs_dev *dev, int arm_read, int arm_write)
{
	gate.orig = dev->ops;
	gate.ops = *dev->ops;
	gate.ops.pread = gate_pread;
	gate.ops.pwrite = gate_pwrite;
	gate.arm_read = arm_read;
	gate.arm_write = arm_write;
	gate.blocked = gate.open = 0;
	gate.reads = gate.writes = 0;
	dev->ops = &gate.ops;
}

static void gate_wait_blocked(void)
{
	pthread_mutex_lock(&gate.m);
	while (!gate.blocked)
		pthread_cond_wait(&gate.cv, &gate.m);
	pthread_mutex_unlock(&gate.m);
}

static void gate_open(void)
{
	pthread_mutex_lock(&gate.m);
	gate.open = 1;
	pthread_cond_broadcast(&gate.cv);
	pthread_mutex_unlock(&gate.m);
}

struct reader {
	struct rfs_cache *c;
	fsblock_t blkno;
	struct rfs_buf *bp;
	int ret;
};

static void *reader_main(void *arg)
{
	struct reader *r = arg;

	r->ret = buf_read(r->c, r->blkno, &fl_ops, &r->bp);
	return NULL;
}

#define NR_READERS 8

START_TEST(test_concurrent_read)
{
	struct reader r[NR_READERS];
	pthread_t t[NR_READERS];
	struct env e;
	int i;

	env_init(&e, block_logs[_i], 64, 16);
	put_raw(&e, 11, RFS_BLK_FREELIST, 5);
	gate_install(e.dev, 1, 0);
	for (i = 0; i < NR_READERS; i++)
		r[i] = (struct reader){.c = e.c, .blkno = 11, .ret = 1};
	ck_assert_int_eq(pthread_create(&t[0], NULL, reader_main, &r[0]), 0);
	gate_wait_blocked(); /* the first reader holds the block LOADING */
	for (i = 1; i < NR_READERS; i++)
		ck_assert_int_eq(pthread_create(&t[i], NULL, reader_main, &r[i]), 0);
	usleep(50 * 1000);
	ck_assert_uint_eq(e.c->stats.hits, 0); /* the others are waiting */
	gate_open();
	for (i = 0; i < NR_READERS; i++)
		ck_assert_int_eq(pthread_join(t[i], NULL), 0);

	for (i = 0; i < NR_READERS; i++) {
		ck_assert_int_eq(r[i].ret, 0);
		ck_assert_ptr_eq(r[i].bp, r[0].bp);
	}
	ck_assert_uint_eq(gate.reads, 1);
	ck_assert_uint_eq(e.c->stats.misses, 1);
	ck_assert_uint_eq(e.c->stats.hits, NR_READERS - 1);
	ck_assert_uint_eq(e.c->nr_bufs, 1);
	ck_assert_int_eq(r[0].bp->refs, NR_READERS);
	ck_assert_uint_eq(r[0].bp->flags, 0);
	fl_check(r[0].bp->data, 11, 5);
	for (i = 0; i < NR_READERS; i++)
		buf_release(r[i].bp);
	ck_assert_int_eq(r[0].bp->refs, 0);
	env_fini(&e);
}
END_TEST

/* Many threads read overlapping random blocks through a small cache. */
struct stress {
	struct env *e;
	uint64_t seed;
	int failures;
};

static void *stress_main(void *arg)
{
	struct stress *s = arg;
	struct rfs_rng rng = {.s = s->seed};
	int i;

	for (i = 0; i < 2000; i++) {
		fsblock_t b = rng_below(&rng, 64);
		struct rfs_buf *bp = NULL;
		const struct rfs_freelist *fl;

		if (buf_read(s->e->c, b, &fl_ops, &bp)) {
			s->failures++;
			continue;
		}
		fl = (const struct rfs_freelist *)bp->data;
		if (bp->blkno != b || le64_get(fl->blocks[0]) != b * 1000)
			s->failures++;
		buf_release(bp);
	}
	return NULL;
}

START_TEST(test_concurrent_stress)
{
	struct stress s[4];
	pthread_t t[4];
	struct env e;
	fsblock_t b;
	int i;

	env_init(&e, block_logs[_i], 64, 16);
	for (b = 0; b < 64; b++)
		put_raw(&e, b, RFS_BLK_FREELIST, 0);
	for (i = 0; i < 4; i++) {
		s[i] = (struct stress){.e = &e, .seed = 1000 + (uint64_t)i};
		ck_assert_int_eq(pthread_create(&t[i], NULL, stress_main, &s[i]), 0);
	}
	for (i = 0; i < 4; i++) {
		ck_assert_int_eq(pthread_join(t[i], NULL), 0);
		ck_assert_int_eq(s[i].failures, 0);
	}
	for (b = 0; b < 64; b++)
		ck_assert_int_le(count_cached(e.c, b, NULL), 1);
	ck_assert_uint_le(e.c->nr_bufs, e.c->max_bufs + 4);
	ck_assert_uint_eq(hash_count(e.c), e.c->nr_bufs);
	ck_assert_uint_eq(lru_len(e.c), e.c->nr_bufs);
	ck_assert_uint_eq(e.c->stats.hits + e.c->stats.misses, 4 * 2000);
	env_fini(&e);
}
END_TEST

/* --- LRU and budget -------------------------------------------------- */

START_TEST(test_lru_budget)
{
	const fsblock_t nblk = 300;
	struct rfs_buf *held[4];
	struct env e;
	fsblock_t b;

	env_init(&e, block_logs[_i], 512, 16);
	for (b = 0; b < nblk; b++)
		put_raw(&e, b, RFS_BLK_FREELIST, 9);
	for (b = 0; b < 4; b++)
		ck_assert_int_eq(buf_read(e.c, b, &fl_ops, &held[b]), 0);
	for (b = 4; b < nblk; b++) {
		read_check_release(&e, b, 9);
		ck_assert_uint_le(e.c->nr_bufs, e.c->max_bufs);
	}
	ck_assert_uint_eq(e.c->stats.misses, nblk);
	ck_assert_uint_ge(e.c->stats.evictions, nblk - e.c->max_bufs);
	ck_assert_uint_eq(e.c->stats.over_budget, 0);
	/* The referenced buffers were never evicted nor reused. */
	for (b = 0; b < 4; b++) {
		ck_assert_ptr_eq(cached(e.c, b), held[b]);
		ck_assert_int_eq(held[b]->refs, 1);
		ck_assert_uint_eq(held[b]->blkno, b);
		fl_check(held[b]->data, b, 9);
		buf_release(held[b]);
	}
	ck_assert_uint_eq(hash_count(e.c), e.c->nr_bufs);
	ck_assert_uint_eq(lru_len(e.c), e.c->nr_bufs);
	env_fini(&e);
}
END_TEST

START_TEST(test_lru_order)
{
	struct env e;
	fsblock_t b;
	uint64_t misses;

	env_init(&e, block_logs[_i], 64, 16);
	for (b = 0; b < 20; b++)
		put_raw(&e, b, RFS_BLK_FREELIST, 0);
	for (b = 0; b < 16; b++)
		read_check_release(&e, b, 0);
	ck_assert_uint_eq(e.c->nr_bufs, 16);
	read_check_release(&e, 0, 0); /* 0 becomes the most recent */
	ck_assert_uint_eq(e.c->stats.hits, 1);
	read_check_release(&e, 16, 0); /* evicts 1, the least recent */
	ck_assert_ptr_nonnull(cached(e.c, 0));
	ck_assert_ptr_null(cached(e.c, 1));
	ck_assert_ptr_nonnull(cached(e.c, 2));
	read_check_release(&e, 17, 0); /* then 2 */
	ck_assert_ptr_null(cached(e.c, 2));
	ck_assert_ptr_nonnull(cached(e.c, 3));
	ck_assert_uint_eq(e.c->stats.evictions, 2);
	misses = e.c->stats.misses;
	read_check_release(&e, 1, 0); /* gone: read again from the device */
	ck_assert_uint_eq(e.c->stats.misses, misses + 1);
	env_fini(&e);
}
END_TEST

/* Creates dirty blocks 0..N-1 with payload SALT, releasing each. */
static void make_dirty(struct env *e, fsblock_t n, uint32_t salt)
{
	struct rfs_buf *bp = NULL;
	fsblock_t b;

	for (b = 0; b < n; b++) {
		ck_assert_int_eq(buf_new(e->c, b, &fl_ops, b, &bp), 0);
		fl_fill(bp->data, b, salt);
		buf_release(bp);
	}
}

START_TEST(test_writeback_on_evict)
{
	const fsblock_t n = 64;
	struct env e;
	fsblock_t b;

	env_init(&e, block_logs[_i], 128, 16);
	ck_assert_int_eq(e.c->writeback_on_evict, 1);
	make_dirty(&e, n, 4);
	ck_assert_uint_le(e.c->nr_bufs, e.c->max_bufs);
	ck_assert_uint_le(e.c->nr_dirty, e.c->max_bufs);
	ck_assert_uint_eq(e.c->stats.over_budget, 0);
	ck_assert_uint_ge(e.c->stats.evictions, n - e.c->max_bufs);
	ck_assert_uint_ge(e.c->stats.writes, n - e.c->max_bufs);
	ck_assert_uint_eq(e.dev->nr_writes, e.c->stats.writes);
	/* What was evicted is on the device, whole and valid. */
	for (b = 0; b < n; b++) {
		if (cached(e.c, b))
			continue;
		check_on_device(&e, b, 4);
		read_check_release(&e, b, 4);
	}
	ck_assert_int_eq(cache_flush(e.c), 0);
	ck_assert_uint_eq(e.c->nr_dirty, 0);
	for (b = 0; b < n; b++)
		check_on_device(&e, b, 4);
	env_fini(&e);
}
END_TEST

START_TEST(test_no_writeback_overcommits)
{
	const fsblock_t n = 64;
	struct env e;
	fsblock_t b;

	env_init(&e, block_logs[_i], 256, 16);
	for (b = 100; b < 200; b++)
		put_raw(&e, b, RFS_BLK_FREELIST, 0);
	e.c->writeback_on_evict = 0;
	make_dirty(&e, n, 6);
	ck_assert_uint_eq(e.c->nr_bufs, n);
	ck_assert_uint_eq(e.c->nr_dirty, n);
	ck_assert_uint_eq(e.c->stats.over_budget, n - e.c->max_bufs);
	ck_assert_uint_eq(e.c->stats.evictions, 0);
	ck_assert_uint_eq(e.c->stats.writes, 0);
	ck_assert_uint_eq(e.dev->nr_writes, 0);
	for (b = 0; b < n; b++)
		ck_assert(block_is_zero(&e, b));
	/* Clean reads cannot push dirty buffers out either. */
	for (b = 100; b < 120; b++)
		read_check_release(&e, b, 0);
	ck_assert_uint_eq(e.dev->nr_writes, 0);
	for (b = 0; b < n; b++)
		ck_assert_ptr_nonnull(cached(e.c, b));

	ck_assert_int_eq(cache_flush(e.c), 0);
	ck_assert_uint_eq(e.dev->nr_writes, n);
	ck_assert_uint_eq(e.c->stats.writes, n);
	ck_assert_uint_eq(e.dev->nr_flushes, 1);
	ck_assert_uint_eq(e.c->nr_dirty, 0);
	for (b = 0; b < n; b++)
		check_on_device(&e, b, 6);

	/* Once clean, the cache shrinks back into its budget. */
	for (b = 120; b < 200; b++)
		read_check_release(&e, b, 0);
	ck_assert_uint_le(e.c->nr_bufs, e.c->max_bufs);
	ck_assert_uint_eq(hash_count(e.c), e.c->nr_bufs);
	ck_assert_uint_eq(lru_len(e.c), e.c->nr_bufs);
	env_fini(&e);
}
END_TEST

/* --- flush ----------------------------------------------------------- */

START_TEST(test_cache_flush_order)
{
	static const fsblock_t order[] = {37, 5, 99, 12, 64, 6};
	char path[] = "/tmp/rfs_test_buf.XXXXXX";
	struct rfs_buf *bp = NULL, *held = NULL;
	struct rfs_wlog_header hdr;
	struct rfs_wlog_rec rec;
	uint64_t last = 0;
	struct env e;
	size_t i;
	FILE *f;
	int fd;

	env_init(&e, block_logs[_i], 128, 16);
	put_raw(&e, 100, RFS_BLK_FREELIST, 0);
	fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	close(fd);
	ck_assert_int_eq(dev_writelog_start(e.dev, path), 0);
	read_check_release(&e, 100, 0); /* clean: not written */
	for (i = 0; i < RFS_ARRAY_SIZE(order); i++) {
		ck_assert_int_eq(buf_new(e.c, order[i], &fl_ops, 0, &bp), 0);
		fl_fill(bp->data, order[i], 2);
		if (order[i] == 6)
			held = bp; /* a referenced dirty buffer is written too */
		else
			buf_release(bp);
	}
	ck_assert_int_eq(cache_flush(e.c), 0);
	ck_assert_uint_eq(e.c->stats.writes, RFS_ARRAY_SIZE(order));
	ck_assert_uint_eq(e.dev->nr_flushes, 1);
	ck_assert_uint_eq(e.c->nr_dirty, 0);
	ck_assert_int_eq(held->refs, 1);
	buf_release(held);

	/* The log: every write in block order, then one flush. */
	f = fopen(path, "rb");
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fread(&hdr, sizeof(hdr), 1, f), 1);
	for (i = 0; i < RFS_ARRAY_SIZE(order); i++) {
		ck_assert_uint_eq(fread(&rec, sizeof(rec), 1, f), 1);
		ck_assert_uint_eq(le32toh(rec.kind), RFS_WLOG_WRITE);
		ck_assert_uint_eq(le32toh(rec.len), e.bsize);
		ck_assert(i == 0 || le64toh(rec.off) > last);
		last = le64toh(rec.off);
		ck_assert_int_eq(fseek(f, (long)e.bsize, SEEK_CUR), 0);
	}
	ck_assert_uint_eq(fread(&rec, sizeof(rec), 1, f), 1);
	ck_assert_uint_eq(le32toh(rec.kind), RFS_WLOG_FLUSH);
	ck_assert_uint_eq(fread(&rec, 1, 1, f), 0);
	fclose(f);
	unlink(path);
	for (i = 0; i < RFS_ARRAY_SIZE(order); i++)
		check_on_device(&e, order[i], 2);

	/* Nothing dirty: no writes, still a device flush. */
	ck_assert_int_eq(cache_flush(e.c), 0);
	ck_assert_uint_eq(e.c->stats.writes, RFS_ARRAY_SIZE(order));
	ck_assert_uint_eq(e.dev->nr_flushes, 2);
	env_fini(&e);
}
END_TEST

/* --- buf_new and buf_forget ------------------------------------------ */

START_TEST(test_new_reuses_cached)
{
	struct rfs_buf *bp = NULL, *nbp = NULL;
	struct rfs_blkhdr *h;
	struct env e;
	uint32_t i;

	env_init(&e, block_logs[_i], 64, 16);
	put_raw(&e, 7, RFS_BLK_FREELIST, 1);
	ck_assert_int_eq(buf_read(e.c, 7, &fl_ops, &bp), 0);
	/* Reallocating a block someone holds is a bug above: refused. */
	ck_assert_int_eq(buf_new(e.c, 7, &fl_ops, 0, &nbp), -EUCLEAN);
	buf_release(bp);

	ck_assert_int_eq(buf_new(e.c, 7, &jsb_ops, 99, &nbp), 0);
	ck_assert_ptr_eq(nbp, bp);
	ck_assert_uint_eq(e.c->nr_bufs, 1);
	ck_assert_uint_eq(count_cached(e.c, 7, NULL), 1);
	ck_assert_ptr_eq(nbp->ops, &jsb_ops);
	ck_assert_uint_eq(nbp->flags, RFS_BUF_DIRTY);
	ck_assert_uint_eq(e.c->nr_dirty, 1);
	ck_assert_int_eq(nbp->refs, 1);
	h = (struct rfs_blkhdr *)nbp->data;
	ck_assert_uint_eq(le32_get(h->magic), RFS_BLK_MAGIC);
	ck_assert_uint_eq(le16_get(h->type), RFS_BLK_JOURNAL_SB);
	ck_assert_uint_eq(le64_get(h->blkno), 7);
	ck_assert_uint_eq(le64_get(h->owner), 99);
	ck_assert_uint_eq(le64_get(h->tid), 0);
	ck_assert_uint_eq(h->crc, 0);
	for (i = sizeof(*h); i < e.bsize; i++)
		ck_assert_uint_eq(nbp->data[i], 0);
	buf_release(nbp);

	/* Over a dirty unreferenced buffer: still one dirty buffer. */
	ck_assert_int_eq(buf_new(e.c, 7, &fl_ops, 0, &nbp), 0);
	ck_assert_ptr_eq(nbp, bp);
	ck_assert_uint_eq(e.c->nr_dirty, 1);
	fl_fill(nbp->data, 7, 8);
	ck_assert_int_eq(buf_write(nbp), 0);
	buf_release(nbp);
	check_on_device(&e, 7, 8);
	env_fini(&e);
}
END_TEST

START_TEST(test_forget)
{
	struct rfs_buf *bp = NULL;
	struct env e;

	env_init(&e, block_logs[_i], 64, 16);
	make_dirty(&e, 3, 0);
	ck_assert_uint_eq(e.c->nr_dirty, 3);
	buf_forget(e.c, 1);
	ck_assert_uint_eq(e.c->nr_dirty, 2);
	ck_assert_uint_eq(e.c->nr_bufs, 2);
	ck_assert_ptr_null(cached(e.c, 1));
	buf_forget(e.c, 50); /* not cached: nothing to do */
	ck_assert_uint_eq(e.c->nr_bufs, 2);
	ck_assert_int_eq(nr_errs, 0);

	/* A referenced buffer leaves the cache at once (a new buffer for the
	 * block can be made) and is freed, unwritten, at its last release. */
	ck_assert_int_eq(buf_read(e.c, 2, &fl_ops, &bp), 0);
	buf_forget(e.c, 2);
	ck_assert_int_eq(nr_errs, 0);
	ck_assert_ptr_null(cached(e.c, 2));
	ck_assert_uint_eq(e.c->nr_dirty, 1);
	ck_assert_uint_eq(bp->blkno, 2); /* still valid for its holder */
	buf_release(bp);
	ck_assert_uint_eq(e.c->nr_bufs, 1);

	ck_assert_int_eq(cache_flush(e.c), 0);
	ck_assert(block_is_zero(&e, 1)); /* forgotten blocks are never written */
	ck_assert(block_is_zero(&e, 2));
	check_on_device(&e, 0, 0);
	ck_assert_uint_eq(e.dev->nr_writes, 1);
	env_fini(&e);
}
END_TEST

/* --- block numbers at the edge --------------------------------------- */

START_TEST(test_blkno_out_of_range)
{
	struct rfs_buf *bp = NULL;
	uint8_t *before;
	struct env e;
	fsblock_t wrap;

	env_init(&e, block_logs[_i], 64, 16);
	put_raw(&e, 0, RFS_BLK_FREELIST, 0);
	before = malloc(e.bsize);
	ck_assert_ptr_nonnull(before);
	memcpy(before, dev_block(&e, 0), e.bsize);
	/* blkno << block_log wraps to byte offset 0: must not hit block 0. */
	wrap = 1ull << (64 - e.block_log);
	ck_assert_int_eq(buf_read(e.c, wrap, &fl_ops, &bp), -EIO);
	ck_assert_int_eq(buf_read(e.c, e.nblocks, &fl_ops, &bp), -EIO);
	ck_assert_uint_eq(e.c->nr_bufs, 0);
	ck_assert_int_eq(buf_new(e.c, wrap, &fl_ops, 0, &bp), 0);
	fl_fill(bp->data, 0, 0);
	ck_assert_int_lt(buf_write(bp), 0);
	ck_assert_uint_ne(bp->flags & RFS_BUF_DIRTY, 0);
	buf_release(bp);
	ck_assert_int_lt(cache_flush(e.c), 0);
	ck_assert_mem_eq(dev_block(&e, 0), before, e.bsize);
	buf_forget(e.c, wrap);
	ck_assert_uint_eq(e.c->nr_bufs, 0);
	ck_assert_uint_eq(e.c->nr_dirty, 0);
	/* The last block is fine. */
	ck_assert_int_eq(buf_new(e.c, e.nblocks - 1, &fl_ops, 0, &bp), 0);
	fl_fill(bp->data, e.nblocks - 1, 0);
	ck_assert_int_eq(buf_write(bp), 0);
	buf_release(bp);
	check_on_device(&e, e.nblocks - 1, 0);
	free(before);
	env_fini(&e);
}
END_TEST

/* --- eviction write-back racing other callers ------------------------- */

/* Fills the cache with dirty, unreferenced blocks 0..15, puts a valid block
 * 100 on the device, and starts a thread reading block 100: its eviction
 * writes block 0 back and blocks in the device. */
static void start_blocked_eviction(struct env *e, uint32_t block_log, struct reader *r,
				   pthread_t *t)
{
	env_init(e, block_log, 128, 16);
	put_raw(e, 100, RFS_BLK_FREELIST, 3);
	make_dirty(e, 16, 0);
	ck_assert_uint_eq(e->c->nr_bufs, 16);
	gate_install(e->dev, 0, 1);
	*r = (struct reader){.c = e->c, .blkno = 100, .ret = 1};
	ck_assert_int_eq(pthread_create(t, NULL, reader_main, r), 0);
	gate_wait_blocked();
}

/* Another reader of the same block while the first one's eviction is in
 * the device: still one buffer per block number. */
START_TEST(test_evict_race_same_block)
{
	struct rfs_buf *bp = NULL;
	struct reader r;
	struct env e;
	pthread_t t;

	start_blocked_eviction(&e, block_logs[_i], &r, &t);
	ck_assert_int_eq(buf_read(e.c, 100, &fl_ops, &bp), 0);
	gate_open();
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	ck_assert_int_eq(r.ret, 0);
	ck_assert_ptr_eq(r.bp, bp);
	ck_assert_int_eq(count_cached(e.c, 100, NULL), 1);
	ck_assert_int_eq(bp->refs, 2);
	fl_check(bp->data, 100, 3);
	buf_release(bp);
	buf_release(r.bp);
	ck_assert_uint_eq(hash_count(e.c), e.c->nr_bufs);
	ck_assert_uint_eq(lru_len(e.c), e.c->nr_bufs);
	check_on_device(&e, 0, 0);
	ck_assert_int_eq(cache_flush(e.c), 0);
	env_fini(&e);
}
END_TEST

struct renewer {
	struct rfs_cache *c;
	struct rfs_buf *bp;
	int ret;
};

static void *renewer_main(void *arg)
{
	struct renewer *n = arg;

	buf_forget(n->c, 0);
	n->ret = buf_new(n->c, 0, &fl_ops, 5, &n->bp);
	return NULL;
}

/* Block 0 is freed and reallocated while eviction writes it back: the
 * caller waits for the write instead of failing. */
START_TEST(test_evict_race_realloc)
{
	struct renewer n;
	struct reader r;
	struct env e;
	pthread_t t, tn;
	uint32_t i;

	start_blocked_eviction(&e, block_logs[_i], &r, &t);
	n = (struct renewer){.c = e.c, .ret = 1};
	ck_assert_int_eq(pthread_create(&tn, NULL, renewer_main, &n), 0);
	usleep(100 * 1000);
	gate_open();
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	ck_assert_int_eq(pthread_join(tn, NULL), 0);
	ck_assert_int_eq(r.ret, 0);
	ck_assert_int_eq(n.ret, 0);
	ck_assert_int_eq(nr_errs, 0);
	ck_assert_int_eq(count_cached(e.c, 0, NULL), 1);
	ck_assert_uint_eq(n.bp->blkno, 0);
	ck_assert_uint_ne(n.bp->flags & RFS_BUF_DIRTY, 0);
	ck_assert_uint_eq(le64_get(((struct rfs_blkhdr *)n.bp->data)->owner), 5);
	for (i = sizeof(struct rfs_blkhdr); i < e.bsize; i++)
		ck_assert_uint_eq(n.bp->data[i], 0);
	buf_release(n.bp);
	buf_release(r.bp);
	ck_assert_int_eq(cache_flush(e.c), 0);
	ck_assert_uint_eq(e.c->nr_dirty, 0);
	env_fini(&e);
}
END_TEST

/* --- teardown -------------------------------------------------------- */

START_TEST(test_destroy_after_use)
{
	struct rfs_buf *held = NULL;
	struct env e;
	fsblock_t b;

	env_init(&e, block_logs[_i], 256, 16);
	for (b = 100; b < 140; b++)
		put_raw(&e, b, RFS_BLK_FREELIST, 0);
	e.c->writeback_on_evict = 0;
	make_dirty(&e, 24, 0); /* over budget */
	ck_assert_int_eq(buf_read(e.c, 100, &fl_ops, &held), 0);
	for (b = 101; b < 140; b++)
		read_check_release(&e, b, 0);
	ck_assert_int_eq(buf_read(e.c, 5000, &fl_ops, &(struct rfs_buf *){NULL}), -EIO);
	buf_forget(e.c, 3);
	buf_release(held);
	ck_assert_uint_eq(hash_count(e.c), e.c->nr_bufs);
	ck_assert_uint_eq(lru_len(e.c), e.c->nr_bufs);
	ck_assert_uint_eq(e.c->nr_dirty, 23);
	/* cache_destroy writes nothing and frees everything (ASan checks). */
	cache_destroy(e.c);
	e.c = NULL;
	ck_assert_uint_eq(e.dev->nr_writes, 0);
	dev_close(e.dev);
	rfs_log_set_sink(NULL);
}
END_TEST

/* --- runner ---------------------------------------------------------- */

/* Runs T once per block size. */
#define add_loop(tc, t) tcase_add_loop_test(tc, t, 0, (int)RFS_ARRAY_SIZE(block_logs))

static Suite *buf_suite(void)
{
	Suite *s = suite_create("buf");
	TCase *tc = tcase_create("verify");

	add_loop(tc, test_crc_definition);
	tcase_add_test(tc, test_cache_create_args);
	add_loop(tc, test_roundtrip);
	add_loop(tc, test_seed_mismatch);
	add_loop(tc, test_flipped_byte);
	add_loop(tc, test_unwritten_block);
	add_loop(tc, test_misdirected);
	add_loop(tc, test_wrong_type);
	add_loop(tc, test_verify_failure);
	add_loop(tc, test_blkno_out_of_range);
	suite_add_tcase(s, tc);

	tc = tcase_create("cache");
	add_loop(tc, test_lru_budget);
	add_loop(tc, test_lru_order);
	add_loop(tc, test_writeback_on_evict);
	add_loop(tc, test_no_writeback_overcommits);
	add_loop(tc, test_cache_flush_order);
	add_loop(tc, test_new_reuses_cached);
	add_loop(tc, test_forget);
	add_loop(tc, test_destroy_after_use);
	suite_add_tcase(s, tc);

	tc = tcase_create("threads");
	add_loop(tc, test_concurrent_read);
	add_loop(tc, test_concurrent_stress);
	add_loop(tc, test_evict_race_same_block);
	add_loop(tc, test_evict_race_realloc);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_run_suite(buf_suite());
}
