/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * test_journal.c - tests of the metadata journal (lib/journal.c) and of
 * log recovery (lib/recovery.c).
 *
 * Most tests run a workload of real metadata operations (inode creates,
 * updates and deletes, directory entries, extent allocations and frees)
 * on an image file with the device write log on, and keep a model: the
 * inode records the test expects (ino -> uid, version, inline length,
 * extent, directory cookie). Every operation runs in one handle and is
 * logged with the tid of its transaction, so the state after transaction T
 * is the initial model plus every operation of tid <= T.
 *
 * A crash at cut point k is simulated by rebuilding the image from a copy
 * taken when the write log started plus the first k logged writes, of
 * which those after the last flush before k may be lost (unflushed writes
 * may be lost or reordered): each one alone, a random half, or each with
 * probability 1/8. Recovery then runs on a RAM copy and the result must be
 * exactly the model after the last transaction it replayed; that
 * transaction's commit block must be among the writes that survived; every
 * transaction whose journal_commit returned before k must be there; the
 * trees pass btree_check and every block is accounted for exactly once
 * (static, free list, tree node, free extent or an extent some inode owns).
 * File data written to owned extents after their allocation committed must
 * be intact, so replaying an old copy of a freed (revoked) tree node over
 * reused blocks is caught; and no tid left in the ring may be one the next
 * scan expects (invariant 5).
 *
 * Seeds are fixed ($RFS_TEST_SEED overrides); a failure prints the seed,
 * the cut point and the last operations.
 */
#include <check.h>
#include <dirent.h>
#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "btree.h"
#include "crc.h"
#include "dev.h"
#include "dir.h"
#include "fs.h"
#include "fs_create.h"
#include "inode.h"
#include "journal.h"
#include "super.h"
#include "testutil.h"
#include "util.h"

#define KiB	    (1024ull)
#define MiB	    (1024ull * KiB)
#define NONE	    UINT64_MAX
#define CACHE_BYTES (4u << 20)

/* Every file a test makes lives in this directory, removed by main(). */
static char tmpdir[] = "/tmp/rfs_test_journal.XXXXXX";

/* --- log sink and failure context ------------------------------------------------------------ */

static unsigned log_errors;

static void quiet_log(enum rfs_log_level level, const char *msg)
{
	if (level == RFS_LOG_ERR)
		__atomic_add_fetch(&log_errors, 1, __ATOMIC_RELAXED);
	fprintf(stderr, "reflinkfs: %s\n", msg);
}

static void log_setup(void)
{
	rfs_log_set_sink(quiet_log);
	rfs_log_set_level(RFS_LOG_WARN); /* recovery reports at INFO on every open */
	log_errors = 0;
}

struct env;
static char fail_ctx[512];
static struct env *cur_env;
static void dump_ops(const struct env *e);

static void dump_ctx(void)
{
	fprintf(stderr, "FAILED at: %s\n", fail_ctx);
	if (cur_env)
		dump_ops(cur_env);
}

/* An assertion about the filesystem's state: prints where (seed, cut
 * point, recent operations) before failing. */
#define JCHECK(cond, ...)                                                                          \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			dump_ctx();                                                                \
			ck_abort_msg(__VA_ARGS__);                                                 \
		}                                                                                  \
	} while (0)

/* --- files and images ------------------------------------------------------------------------ */

static void tmp_file(char *out, size_t outlen, const char *stem)
{
	int fd;

	snprintf(out, outlen, "%s/%s.XXXXXX", tmpdir, stem);
	fd = mkstemp(out);
	ck_assert_int_ge(fd, 0);
	close(fd);
}

static void make_image(const char *path, unsigned block_log, uint64_t size, uint64_t jbytes)
{
	struct rfs_mkfs_opts o = {.block_log = block_log, .journal_bytes = jbytes, .have_uuid = 1};
	struct rfs_sb_info sb;
	struct rfs_dev *dev;
	char why[256] = "";
	int ret;

	memcpy(o.uuid, "journal-test-uu!", sizeof(o.uuid));
	ck_assert_int_eq(dev_open_file(path, RFS_DEV_CREATE, size, &dev), 0);
	ret = fs_create(dev, &o, &sb, why, sizeof(why));
	ck_assert_msg(ret == 0, "fs_create: %d %s", ret, why);
	dev_close(dev);
}

static struct rfs_fs *open_dev(struct rfs_dev *dev, unsigned flags, size_t cache)
{
	struct rfs_fs *fs = NULL;
	char why[256] = "";
	int ret = fs_open(dev, flags, cache, &fs, why, sizeof(why));

	JCHECK(ret == 0, "fs_open: %d %s", ret, why);
	return fs;
}

static struct rfs_fs *open_path(const char *path, unsigned flags, size_t cache)
{
	struct rfs_dev *dev;

	ck_assert_int_eq(dev_open_file(path, (flags & RFS_FS_RDONLY) ? RFS_DEV_RDONLY : 0, 0, &dev),
			 0);
	return open_dev(dev, flags, cache);
}

/* The whole device as bytes (what a crash right now would leave, since
 * every write so far reached the file). */
static uint8_t *dev_snapshot(struct rfs_dev *dev)
{
	uint8_t *img = malloc(dev->size);

	ck_assert_ptr_nonnull(img);
	ck_assert_int_eq(dev_pread(dev, img, dev->size, 0), 0);
	return img;
}

static struct rfs_dev *mem_dev_from(const uint8_t *img, uint64_t size)
{
	struct rfs_dev *dev;

	ck_assert_int_eq(dev_open_mem(size, &dev), 0);
	memcpy(dev->mem, img, size);
	return dev;
}

static void write_file(const char *path, const uint8_t *img, uint64_t size)
{
	struct rfs_dev *dev;

	ck_assert_int_eq(dev_open_file(path, RFS_DEV_CREATE, size, &dev), 0);
	ck_assert_int_eq(dev_pwrite(dev, img, size, 0), 0);
	dev_close(dev);
}

static uint8_t *read_file(const char *path, uint64_t *size)
{
	struct rfs_dev *dev;
	uint8_t *img;

	ck_assert_int_eq(dev_open_file(path, RFS_DEV_RDONLY, 0, &dev), 0);
	img = dev_snapshot(dev);
	*size = dev->size;
	dev_close(dev);
	return img;
}

/* --- the write log --------------------------------------------------------------------------- */

struct wrec {
	uint32_t kind, len;
	uint64_t off;
	const uint8_t *data;
	rfs_tid_t ctid; /* a commit block of this tid, else 0 */
};

struct wlog {
	uint8_t *raw;
	size_t n;
	struct wrec *r;
};

static void wlog_load(const char *path, struct wlog *l)
{
	struct rfs_wlog_header hdr;
	size_t cap = 1024, pos, size;
	struct stat st;
	FILE *f = fopen(path, "rb");

	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(fstat(fileno(f), &st), 0);
	size = (size_t)st.st_size;
	ck_assert_uint_ge(size, sizeof(hdr));
	l->raw = malloc(size);
	ck_assert_ptr_nonnull(l->raw);
	ck_assert_uint_eq(fread(l->raw, 1, size, f), size);
	fclose(f);
	memcpy(&hdr, l->raw, sizeof(hdr));
	ck_assert_uint_eq(le64toh(hdr.magic), RFS_WLOG_MAGIC);
	l->n = 0;
	l->r = malloc(cap * sizeof(*l->r));
	ck_assert_ptr_nonnull(l->r);
	for (pos = sizeof(hdr); pos < size;) {
		struct rfs_wlog_rec rec;
		struct wrec *w;

		ck_assert_uint_le(pos + sizeof(rec), size);
		memcpy(&rec, l->raw + pos, sizeof(rec));
		pos += sizeof(rec);
		if (l->n == cap) {
			cap *= 2;
			l->r = realloc(l->r, cap * sizeof(*l->r));
			ck_assert_ptr_nonnull(l->r);
		}
		w = &l->r[l->n++];
		w->kind = le32toh(rec.kind);
		w->len = le32toh(rec.len);
		w->off = le64toh(rec.off);
		w->data = l->raw + pos;
		w->ctid = 0;
		ck_assert(w->kind == RFS_WLOG_WRITE || w->kind == RFS_WLOG_FLUSH);
		pos += w->len;
		ck_assert_uint_le(pos, size);
	}
}

static void wlog_free(struct wlog *l)
{
	free(l->raw);
	free(l->r);
	memset(l, 0, sizeof(*l));
}

/* --- a test-side reader of the log ----------------------------------------------------------- */

/* Where the parts of one transaction sit in the ring (relative blocks). */
struct ltxn {
	rfs_tid_t tid;
	uint32_t first, desc, data, rev, commit; /* 0: none */
	int wraps;
};

struct lscan {
	uint32_t start, first, blocks, end;
	rfs_tid_t seq;
	size_t n;
	int wraps;
	struct ltxn t[1024];
};

static const uint8_t *lblock(const uint8_t *img, const struct rfs_sb_info *sb, uint32_t pos)
{
	return img + ((sb->journal_start + pos) << sb->block_log);
}

static uint32_t ladvance(const struct lscan *s, uint32_t pos, int *wrapped)
{
	if (++pos < s->blocks)
		return pos;
	*wrapped = 1;
	return s->first;
}

/* A valid control block of TID at POS: its type, else 0. */
static uint16_t lctrl(const uint8_t *img, const struct rfs_sb_info *sb, uint32_t pos, rfs_tid_t tid)
{
	const struct rfs_blkhdr *h = (const void *)lblock(img, sb, pos);

	if (le32_get(h->magic) != RFS_JRNL_MAGIC ||
	    rfs_block_check_crc(rfs_crc_seed(sb->uuid), h, sb->bsize) ||
	    le64_get(h->blkno) != sb->journal_start + pos || (tid && le64_get(h->tid) != tid))
		return 0;
	return le16_get(h->type);
}

static void ljsb(const uint8_t *img, const struct rfs_sb_info *sb, struct rfs_journal_sb *jsb)
{
	memcpy(jsb, lblock(img, sb, 0), sizeof(*jsb));
}

/* Walks the live log of IMG by control blocks only (no data checksums). */
static void log_scan(const uint8_t *img, const struct rfs_sb_info *sb, struct lscan *s)
{
	struct rfs_journal_sb jsb;
	uint32_t pos;
	rfs_tid_t tid;

	ljsb(img, sb, &jsb);
	memset(s, 0, sizeof(*s));
	s->start = le32_get(jsb.start);
	s->first = le32_get(jsb.first);
	s->blocks = le32_get(jsb.blocks);
	s->seq = le64_get(jsb.sequence);
	if (!s->start)
		return;
	for (pos = s->start, tid = s->seq; s->n < RFS_ARRAY_SIZE(s->t); tid++) {
		struct ltxn t = {.tid = tid, .first = pos};
		uint16_t type;

		while ((type = lctrl(img, sb, pos, tid)) == RFS_BLK_JDESC ||
		       type == RFS_BLK_JREVOKE) {
			if (type == RFS_BLK_JDESC) {
				const struct rfs_jdesc *d = (const void *)lblock(img, sb, pos);
				uint32_t i, ntags = le32_get(d->ntags);
				if (!t.desc)
					t.desc = pos;
				for (i = 0; i < ntags; i++) {
					pos = ladvance(s, pos, &t.wraps);
					if (!t.data)
						t.data = pos;
				}
			} else if (!t.rev) {
				t.rev = pos;
			}
			pos = ladvance(s, pos, &t.wraps);
		}
		if (type != RFS_BLK_JCOMMIT)
			break;
		t.commit = pos;
		pos = ladvance(s, pos, &t.wraps);
		s->wraps |= t.wraps;
		s->t[s->n++] = t;
	}
	s->end = pos;
}

/* The highest tid of any valid control block anywhere in the ring. */
static rfs_tid_t ring_max_tid(const uint8_t *img, const struct rfs_sb_info *sb)
{
	struct rfs_journal_sb jsb;
	rfs_tid_t max = 0;
	uint32_t pos;

	ljsb(img, sb, &jsb);
	for (pos = le32_get(jsb.first); pos < le32_get(jsb.blocks); pos++) {
		const struct rfs_blkhdr *h = (const void *)lblock(img, sb, pos);
		if (lctrl(img, sb, pos, 0) && le64_get(h->tid) > max)
			max = le64_get(h->tid);
	}
	return max;
}

/* --- the model ------------------------------------------------------------------------------- */

/* What the test expects of one inode. */
struct irec {
	uint8_t live, inl;   /* inl: inline data bytes */
	uint32_t uid, ver;   /* uid and gid fields */
	uint64_t start, len; /* owned extent (size and nblocks fields); len 0: none */
	uint64_t cookie;     /* its entry "f<ino>" in the root (rdev field); 0: none */
	uint64_t aop;	     /* the operation that allocated the extent */
};

/* One operation = one handle = one inode changed. */
struct op {
	rfs_ino_t ino;
	struct irec after;
	rfs_tid_t tid;
	char kind;
};

struct commit_pt {
	uint64_t rec;  /* write log records when journal_commit returned */
	rfs_tid_t tid; /* every tid up to this one is durable */
};

struct env {
	const char *name;
	struct timespec t0;
	uint64_t seed;
	struct rfs_rng rng;
	struct rfs_fs *fs;
	char path[256], wlpath[256];
	uint64_t size;
	uint32_t credits;
	size_t cache;
	size_t max_live;
	/* the model, indexed by inode number */
	struct irec *cur, *init, *tmp;
	size_t *lpos; /* index in livev */
	rfs_ino_t *livev;
	size_t cap, nlive;
	/* operations; those from op0 on ran while the write log was on */
	struct op *ops;
	uint64_t *dflush; /* per op: records up to the flush after its data; 0: before the log */
	size_t nops, opcap, op0;
	size_t *pending; /* ops whose new extent gets data at the next commit */
	size_t npending, pcap;
	int write_data;
	struct commit_pt *commits;
	size_t ncommits, ccap;
	/* the write log and crash images */
	int logging;
	uint64_t rec0, pn;
	uint8_t *base, *pimg, *img, *kept;
	struct wlog wl;
	/* what verification saw */
	uint64_t cuts, replayed, revoked, wrapped;
};

static void *grow(void *v, size_t *cap, size_t need, size_t elem)
{
	size_t ncap = *cap ? *cap : 64;

	if (need <= *cap)
		return v;
	while (ncap < need)
		ncap *= 2;
	v = realloc(v, ncap * elem);
	ck_assert_ptr_nonnull(v);
	memset((uint8_t *)v + *cap * elem, 0, (ncap - *cap) * elem);
	*cap = ncap;
	return v;
}

static void model_reserve(struct env *e, rfs_ino_t ino)
{
	size_t cap = e->cap;

	if (ino < e->cap)
		return;
	e->cur = grow(e->cur, &cap, ino + 1, sizeof(*e->cur));
	cap = e->cap;
	e->init = grow(e->init, &cap, ino + 1, sizeof(*e->init));
	cap = e->cap;
	e->tmp = grow(e->tmp, &cap, ino + 1, sizeof(*e->tmp));
	cap = e->cap;
	e->lpos = grow(e->lpos, &cap, ino + 1, sizeof(*e->lpos));
	cap = e->cap;
	e->livev = grow(e->livev, &cap, ino + 1, sizeof(*e->livev));
	e->cap = cap;
}

static void model_set(struct env *e, rfs_ino_t ino, const struct irec *r)
{
	model_reserve(e, ino);
	if (r->live && !e->cur[ino].live) {
		e->lpos[ino] = e->nlive;
		e->livev[e->nlive++] = ino;
	} else if (!r->live && e->cur[ino].live) {
		rfs_ino_t last = e->livev[--e->nlive];
		e->livev[e->lpos[ino]] = last;
		e->lpos[last] = e->lpos[ino];
	}
	e->cur[ino] = *r;
}

/* The model after the first H operations since the write log started. */
static const struct irec *model_at(struct env *e, size_t h)
{
	size_t i;

	memcpy(e->tmp, e->init, e->cap * sizeof(*e->tmp));
	for (i = e->op0; i < e->op0 + h; i++)
		e->tmp[e->ops[i].ino] = e->ops[i].after;
	return e->tmp;
}

/* Operations since the write log started whose transaction is < TID. */
static size_t ops_before(const struct env *e, rfs_tid_t tid)
{
	size_t h = 0;

	while (e->op0 + h < e->nops && e->ops[e->op0 + h].tid < tid)
		h++;
	return h;
}

static void dump_ops(const struct env *e)
{
	size_t i = e->nops > 40 ? e->nops - 40 : 0;

	fprintf(stderr,
		"%s: seed %" PRIu64 " (RFS_TEST_SEED=%" PRIu64 " replays), %zu ops, "
		"op0 %zu; last operations:\n",
		e->name, e->seed, e->seed, e->nops, e->op0);
	for (; i < e->nops; i++) {
		const struct op *o = &e->ops[i];
		fprintf(stderr,
			"  op %zu %c ino %" PRIu64 " tid %" PRIu64 " live %u uid %u ver %u "
			"ext %" PRIu64 "+%" PRIu64 " cookie %" PRIx64 "\n",
			i, o->kind, o->ino, o->tid, o->after.live, o->after.uid, o->after.ver,
			o->after.start, o->after.len, o->after.cookie);
	}
}

/* --- environment ----------------------------------------------------------------------------- */

struct env_opts {
	unsigned block_log;
	uint64_t size, jbytes;
	size_t cache;
	uint32_t credits;
};

static void env_init(struct env *e, const char *name, uint64_t seed, const struct env_opts *o)
{
	memset(e, 0, sizeof(*e));
	clock_gettime(CLOCK_MONOTONIC, &e->t0);
	log_setup();
	e->name = name;
	rng_init(&e->rng, name, seed);
	e->seed = e->rng.s;
	e->size = o->size;
	e->cache = o->cache;
	e->credits = o->credits;
	e->max_live = 300;
	e->write_data = 1;
	tmp_file(e->path, sizeof(e->path), "img");
	make_image(e->path, o->block_log, o->size, o->jbytes);
	e->fs = open_path(e->path, 0, o->cache);
	model_reserve(e, 1024);
	cur_env = e;
	snprintf(fail_ctx, sizeof(fail_ctx), "%s (live filesystem)", name);
}

static void env_done(struct env *e)
{
	struct rfs_journal_stats st = {0};
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (e->fs)
		journal_get_stats(e->fs, &st);
	printf("%s: %.1f s, %zu ops; %" PRIu64 " crash images checked (%" PRIu64
	       " replayed, %" PRIu64 " skipped revoked blocks, %" PRIu64
	       " across the ring's end); this mount: %" PRIu64 " commits, %" PRIu64
	       " checkpoints (%" PRIu64 " for space), %" PRIu64 " blocks, %" PRIu64
	       " revokes logged\n",
	       e->name,
	       (double)(t1.tv_sec - e->t0.tv_sec) + (double)(t1.tv_nsec - e->t0.tv_nsec) / 1e9,
	       e->nops, e->cuts, e->replayed, e->revoked, e->wrapped, st.commits, st.checkpoints,
	       st.forced_by_space, st.blocks_logged, st.revokes_logged);
	fflush(stdout);
	if (e->fs)
		ck_assert_int_eq(fs_close(e->fs), 0);
	wlog_free(&e->wl);
	free(e->cur);
	free(e->init);
	free(e->tmp);
	free(e->lpos);
	free(e->livev);
	free(e->ops);
	free(e->dflush);
	free(e->pending);
	free(e->commits);
	free(e->base);
	free(e->pimg);
	free(e->img);
	free(e->kept);
	unlink(e->path);
	if (e->wlpath[0])
		unlink(e->wlpath);
	cur_env = NULL;
	ck_assert_uint_eq(log_errors, 0);
}

static uint64_t records(const struct env *e)
{
	const struct rfs_dev *d = e->fs->dev;
	return d->nr_writes + d->nr_flushes - e->rec0;
}

static uint32_t bsize(const struct env *e)
{
	return e->fs->sb.bsize;
}

/* --- operations ------------------------------------------------------------------------------ */

static void fill_inline(uint8_t *p, size_t len, rfs_ino_t ino, uint32_t ver)
{
	size_t i;

	for (i = 0; i < len; i++)
		p[i] = (uint8_t)(ino * 31 + ver * 7 + i);
}

static void fill_data(uint8_t *p, size_t len, rfs_ino_t ino, uint64_t aop)
{
	size_t i;

	for (i = 0; i + 8 <= len; i += 8)
		rfs_put_le64(p + i, (ino << 40) ^ (aop << 16) ^ (i * 0x9e3779b97f4a7c15ull));
}

static void irec_to_inode(const struct irec *r, struct rfs_inode *in)
{
	in->uid = r->uid;
	in->gid = r->ver;
	in->size = r->start;
	in->nblocks = r->len;
	in->rdev = r->cookie;
	/* raw bytes as a record payload (written with inode_write_all: the
	 * journal must carry the record whatever it holds) */
	in->inline_type = RFS_INLINE_NONE;
	in->inline_len = r->inl;
	fill_inline(in->inline_data, r->inl, in->ino, r->ver);
}

static void op_begin(struct env *e, struct rfs_handle **h)
{
	int ret = txn_start(e->fs, e->credits, h);

	JCHECK(ret == 0, "txn_start: %d", ret);
}

static void op_end(struct env *e, struct rfs_handle *h, rfs_ino_t ino, char kind)
{
	rfs_tid_t tid = txn_tid(h);
	struct op *o;
	int ret = txn_stop(h);

	JCHECK(ret == 0, "txn_stop: %d", ret);
	JCHECK(e->nops == 0 || tid >= e->ops[e->nops - 1].tid, "tid %" PRIu64 " after %" PRIu64,
	       tid, e->ops[e->nops - 1].tid);
	e->ops = grow(e->ops, &e->opcap, e->nops + 1, sizeof(*e->ops));
	e->dflush = realloc(e->dflush, e->opcap * sizeof(*e->dflush));
	ck_assert_ptr_nonnull(e->dflush);
	o = &e->ops[e->nops];
	o->ino = ino;
	o->after = e->cur[ino];
	o->tid = tid;
	o->kind = kind;
	e->dflush[e->nops++] = NONE;
}

static rfs_ino_t op_create(struct env *e, int with_dir)
{
	struct irec r = {.live = 1, .ver = 1};
	struct rfs_handle *h;
	struct rfs_inode in;
	char name[32];
	int ret;

	op_begin(e, &h);
	inode_init_new(e->fs, &in, S_IFREG | 0644, 0, 0);
	r.uid = (uint32_t)rng_next(&e->rng) | 1;
	r.inl = rng_below(&e->rng, 3) ? 0 : (uint8_t)rng_below(&e->rng, RFS_INLINE_MAX + 1);
	if (with_dir) {
		snprintf(name, sizeof(name), "f%" PRIu64, in.ino);
		ret = dir_add(e->fs, RFS_ROOT_INO, name, strlen(name), in.ino, DT_REG, &r.cookie);
		JCHECK(ret == 0, "dir_add(%s): %d", name, ret);
	}
	irec_to_inode(&r, &in);
	ret = inode_insert(e->fs, &in);
	JCHECK(ret == 0, "inode_insert(%" PRIu64 "): %d", in.ino, ret);
	model_set(e, in.ino, &r);
	op_end(e, h, in.ino, 'c');
	return in.ino;
}

/* Reads INO and checks it against the model before changing it. */
static void read_live(struct env *e, rfs_ino_t ino, struct rfs_inode *in)
{
	int ret = inode_read(e->fs, ino, in);

	JCHECK(ret == 0 && e->cur[ino].live && in->uid == e->cur[ino].uid,
	       "inode_read(%" PRIu64 "): %d", ino, ret);
}

static void op_update(struct env *e, rfs_ino_t ino)
{
	struct irec r = e->cur[ino];
	struct rfs_handle *h;
	struct rfs_inode in;
	int ret;

	op_begin(e, &h);
	read_live(e, ino, &in);
	r.uid = (uint32_t)rng_next(&e->rng) | 1;
	r.ver++;
	if (!rng_below(&e->rng, 4))
		r.inl = (uint8_t)rng_below(&e->rng, RFS_INLINE_MAX + 1);
	irec_to_inode(&r, &in);
	ret = inode_write_all(e->fs, &in);
	JCHECK(ret == 0, "inode_write_all(%" PRIu64 "): %d", ino, ret);
	model_set(e, ino, &r);
	op_end(e, h, ino, 'u');
}

static void op_delete(struct env *e, rfs_ino_t ino)
{
	struct irec r = e->cur[ino];
	struct rfs_handle *h;
	struct rfs_inode in;
	uint8_t key[16];
	int ret = 0;

	op_begin(e, &h);
	read_live(e, ino, &in);
	if (r.len)
		ret = free_extent(e->fs, r.start, r.len);
	JCHECK(ret == 0, "free_extent: %d", ret);
	if (r.cookie) {
		rfs_put_le64(key, RFS_ROOT_INO);
		rfs_put_le64(key + 8, r.cookie);
		ret = btree_delete(&e->fs->dirs, key);
		JCHECK(ret == 0, "deleting the entry of %" PRIu64 ": %d", ino, ret);
	}
	rfs_put_le64(key, ino);
	ret = btree_delete(&e->fs->inodes, key);
	JCHECK(ret == 0, "deleting inode %" PRIu64 ": %d", ino, ret);
	e->fs->sb.inode_count--;
	fs_sb_dirty(e->fs);
	memset(&r, 0, sizeof(r));
	model_set(e, ino, &r);
	op_end(e, h, ino, 'd');
}

/* Gives INO (which owns none) an extent near GOAL; MAXLEN 0: random. */
static void op_alloc(struct env *e, rfs_ino_t ino, fsblock_t goal, extlen_t maxlen)
{
	struct irec r = e->cur[ino];
	struct rfs_handle *h;
	struct rfs_inode in;
	int ret;

	op_begin(e, &h);
	read_live(e, ino, &in);
	JCHECK(r.len == 0, "inode %" PRIu64 " already owns an extent", ino);
	if (!maxlen)
		maxlen = 1 + rng_below(&e->rng, 8);
	ret = alloc_extent(e->fs, goal, 1, maxlen, &r.start, &r.len);
	if (ret == -ENOSPC) {
		op_end(e, h, ino, 'n');
		return;
	}
	JCHECK(ret == 0 && r.len >= 1 && r.len <= maxlen, "alloc_extent: %d", ret);
	r.aop = e->nops;
	irec_to_inode(&r, &in);
	ret = inode_write_all(e->fs, &in);
	JCHECK(ret == 0, "inode_write_all(%" PRIu64 "): %d", ino, ret);
	model_set(e, ino, &r);
	e->pending = grow(e->pending, &e->pcap, e->npending + 1, sizeof(*e->pending));
	e->pending[e->npending++] = e->nops;
	op_end(e, h, ino, 'a');
}

static void op_free(struct env *e, rfs_ino_t ino)
{
	struct irec r = e->cur[ino];
	struct rfs_handle *h;
	struct rfs_inode in;
	int ret;

	op_begin(e, &h);
	read_live(e, ino, &in);
	ret = free_extent(e->fs, r.start, r.len);
	JCHECK(ret == 0, "free_extent(%" PRIu64 "+%" PRIu64 "): %d", r.start, r.len, ret);
	r.start = r.len = r.aop = 0;
	irec_to_inode(&r, &in);
	ret = inode_write_all(e->fs, &in);
	JCHECK(ret == 0, "inode_write_all(%" PRIu64 "): %d", ino, ret);
	model_set(e, ino, &r);
	op_end(e, h, ino, 'f');
}

static rfs_ino_t pick_live(struct env *e)
{
	return e->livev[rng_below(&e->rng, e->nlive)];
}

static void random_op(struct env *e)
{
	unsigned x = (unsigned)rng_below(&e->rng, 100);
	rfs_ino_t ino;

	if (!e->nlive || x < 30) {
		if (e->nlive < e->max_live) {
			op_create(e, (int)rng_below(&e->rng, 2));
			return;
		}
	}
	ino = pick_live(e);
	if (x < 50)
		op_update(e, ino);
	else if (x < 65 || e->nlive > e->max_live)
		op_delete(e, ino);
	else if (e->cur[ino].len)
		op_free(e, ino);
	else
		op_alloc(e, ino, rng_below(&e->rng, e->fs->sb.block_count), 0);
}

/* Writes the data of extents allocated since the last commit (they are
 * committed now), then flushes. */
static void write_pending_data(struct env *e)
{
	uint8_t *buf = NULL;
	size_t i, written = 0;

	for (i = 0; i < e->npending; i++) {
		size_t p = e->pending[i], len;
		const struct irec *r = &e->cur[e->ops[p].ino];
		if (!e->write_data || !r->live || !r->len || r->aop != p)
			continue; /* freed or replaced before it committed */
		len = (size_t)r->len * bsize(e);
		buf = realloc(buf, len);
		ck_assert_ptr_nonnull(buf);
		fill_data(buf, len, e->ops[p].ino, p);
		ck_assert_int_eq(dev_pwrite(e->fs->dev, buf, len, r->start * bsize(e)), 0);
		e->pending[written++] = p;
	}
	free(buf);
	if (written)
		ck_assert_int_eq(dev_flush(e->fs->dev), 0);
	for (i = 0; i < written; i++)
		e->dflush[e->pending[i]] = e->logging ? records(e) : 0;
	e->npending = 0;
}

static void env_commit(struct env *e)
{
	int ret = journal_commit(e->fs);

	JCHECK(ret == 0, "journal_commit: %d", ret);
	if (e->logging && e->nops > e->op0) {
		e->commits = grow(e->commits, &e->ccap, e->ncommits + 1, sizeof(*e->commits));
		e->commits[e->ncommits].rec = records(e);
		e->commits[e->ncommits++].tid = e->ops[e->nops - 1].tid;
	}
	write_pending_data(e);
}

/* Commits, optionally checkpoints, and turns the write log on: the image
 * as it is now is the base of every crash image. */
static void env_start_log(struct env *e, int checkpoint)
{
	size_t i;

	env_commit(e);
	if (checkpoint)
		ck_assert_int_eq(journal_checkpoint(e->fs), 0);
	for (i = 0; i < e->nops; i++)
		if (e->dflush[i] != NONE)
			e->dflush[i] = 0;
	e->op0 = e->nops;
	memcpy(e->init, e->cur, e->cap * sizeof(*e->cur));
	free(e->base);
	e->base = dev_snapshot(e->fs->dev);
	tmp_file(e->wlpath, sizeof(e->wlpath), "wlog");
	ck_assert_int_eq(dev_writelog_start(e->fs->dev, e->wlpath), 0);
	e->rec0 = 0;
	e->rec0 = records(e);
	e->logging = 1;
	e->ncommits = 0;
}

static int is_commit_block(const struct env *e, const struct wrec *w, rfs_tid_t *tid)
{
	const struct rfs_sb_info *sb = &e->fs->sb;
	const struct rfs_blkhdr *h = (const void *)w->data;
	uint64_t b = w->off >> sb->block_log;

	if (w->kind != RFS_WLOG_WRITE || w->len != sb->bsize || b <= sb->journal_start ||
	    b >= sb->journal_start + sb->journal_blocks || le32_get(h->magic) != RFS_JRNL_MAGIC ||
	    le16_get(h->type) != RFS_BLK_JCOMMIT || le64_get(h->blkno) != b ||
	    rfs_block_check_crc(rfs_crc_seed(sb->uuid), h, sb->bsize))
		return 0;
	*tid = le64_get(h->tid);
	return 1;
}

/* Loads what the write log holds so far and prepares crash images. */
static void env_load_log(struct env *e)
{
	size_t i;

	wlog_free(&e->wl);
	wlog_load(e->wlpath, &e->wl);
	ck_assert_uint_eq(e->wl.n, records(e));
	for (i = 0; i < e->wl.n; i++)
		is_commit_block(e, &e->wl.r[i], &e->wl.r[i].ctid);
	if (!e->pimg) {
		e->pimg = malloc(e->size);
		e->img = malloc(e->size);
		ck_assert_ptr_nonnull(e->pimg);
		ck_assert_ptr_nonnull(e->img);
		memcpy(e->pimg, e->base, e->size);
		e->pn = 0;
	}
	free(e->kept);
	e->kept = malloc(e->wl.n + 1);
	ck_assert_ptr_nonnull(e->kept);
}

/* --- checks of a filesystem's state ---------------------------------------------------------- */

enum { B_NONE, B_STATIC, B_FL, B_NODE, B_FREE, B_DATA };
static const char *const bname[] = {"unclaimed",   "static", "on the free list",
				    "a tree node", "free",   "an extent of an inode"};

struct amap {
	uint8_t *map;
	uint64_t n, bad;
	fsblock_t bad_blk;
	uint8_t was, want;
};

/* Claims B for WHAT; conflicts are counted, not asserted (this runs in
 * btree_check callbacks). */
static void claim(struct amap *a, fsblock_t b, uint8_t what)
{
	if (b < a->n && a->map[b] == B_NONE) {
		a->map[b] = what;
		return;
	}
	if (!a->bad++) {
		a->bad_blk = b;
		a->was = b < a->n ? a->map[b] : B_NONE;
		a->want = what;
	}
}

static void visit_node(void *arg, const struct rfs_btree *t, fsblock_t blkno, unsigned level)
{
	(void)t;
	(void)level;
	claim(arg, blkno, B_NODE);
}

static void report(void *arg, const struct rfs_btree *t, fsblock_t blkno, const char *msg)
{
	(void)arg;
	fprintf(stderr, "btree_check %s: block %" PRIu64 ": %s\n", t->ops->name, blkno, msg);
}

static void check_trees(struct rfs_fs *fs, struct amap *a)
{
	struct rfs_btree *trees[] = {&fs->bno, &fs->cnt, &fs->inodes, &fs->dirs};
	unsigned i;

	for (i = 0; i < RFS_ARRAY_SIZE(trees); i++) {
		struct rfs_btree_check chk = {.report = report, .visit_node = visit_node, .arg = a};
		int ret = btree_check(trees[i], &chk);
		JCHECK(ret == 0, "btree_check(%s): %d, %" PRIu64 " errors", trees[i]->ops->name,
		       ret, chk.errors);
	}
}

struct ext {
	uint64_t start, len;
};

static int ext_cmp(const void *a, const void *b)
{
	const struct ext *x = a, *y = b;
	return x->start < y->start ? -1 : x->start > y->start;
}

/* Every record of a free-space tree as (start, len), in start order. */
static struct ext *free_extents(struct rfs_btree *t, size_t *n)
{
	struct rfs_btree_cursor cur;
	struct ext *v = NULL;
	size_t cap = 0;
	int ret;

	*n = 0;
	btree_cursor_init(&cur, t);
	for (ret = btree_first(&cur); ret == 0; ret = btree_next(&cur)) {
		size_t len;
		const uint8_t *r = btree_cursor_rec(&cur, &len);
		uint64_t a = rfs_get_le64(r), b = rfs_get_le64(r + 8);
		v = grow(v, &cap, *n + 1, sizeof(*v));
		JCHECK(len == 16, "%s record of %zu bytes", t->ops->name, len);
		if (t->ops->tree_type == RFS_TREE_CNT)
			v[(*n)++] = (struct ext){b, a}; /* key (len, start) */
		else
			v[(*n)++] = (struct ext){a, b};
	}
	btree_cursor_done(&cur);
	JCHECK(ret == -ENOENT, "walking %s: %d", t->ops->name, ret);
	qsort(v, *n, sizeof(*v), ext_cmp);
	return v;
}

static void check_free(struct rfs_fs *fs, struct amap *a)
{
	size_t nb, nc, i;
	struct ext *bno = free_extents(&fs->bno, &nb), *cnt = free_extents(&fs->cnt, &nc);
	uint64_t sum = 0, j;

	JCHECK(nb == nc, "bno has %zu extents, cnt %zu", nb, nc);
	for (i = 0; i < nb; i++) {
		JCHECK(bno[i].start == cnt[i].start && bno[i].len == cnt[i].len,
		       "bno extent %" PRIu64 "+%" PRIu64 " vs cnt %" PRIu64 "+%" PRIu64,
		       bno[i].start, bno[i].len, cnt[i].start, cnt[i].len);
		JCHECK(i == 0 || bno[i - 1].start + bno[i - 1].len < bno[i].start,
		       "free extents touch or overlap at %" PRIu64, bno[i].start);
		for (j = 0; j < bno[i].len; j++)
			claim(a, bno[i].start + j, B_FREE);
		sum += bno[i].len;
	}
	JCHECK(sum == fs->sb.free_blocks, "free extents hold %" PRIu64 " blocks, sb says %" PRIu64,
	       sum, fs->sb.free_blocks);
	free(bno);
	free(cnt);
}

/* Every block is exactly one of: static, free list, tree node, free, or
 * an extent the model's inodes own. */
static void check_space(struct rfs_fs *fs, const struct irec *m, size_t cap)
{
	struct amap a = {.n = fs->sb.block_count};
	fsblock_t *fl = malloc(fs->fl_capacity * sizeof(*fl));
	uint32_t i, count;
	uint64_t b;
	size_t ino;

	a.map = calloc(a.n, 1);
	ck_assert_ptr_nonnull(a.map);
	ck_assert_ptr_nonnull(fl);
	for (b = 0; b < a.n; b++)
		if (fs_is_static_block(fs, b))
			claim(&a, b, B_STATIC);
	JCHECK(alloc_freelist_read(fs, fl, fs->fl_capacity, &count) == 0, "free list unreadable");
	for (i = 0; i < count; i++)
		claim(&a, fl[i], B_FL);
	check_trees(fs, &a);
	check_free(fs, &a);
	for (ino = 0; ino < cap; ino++)
		for (b = 0; m[ino].live && b < m[ino].len; b++)
			claim(&a, m[ino].start + b, B_DATA);
	JCHECK(a.bad == 0, "%" PRIu64 " blocks claimed twice; block %" PRIu64 " is %s and %s",
	       a.bad, a.bad_blk, bname[a.was], bname[a.want]);
	for (b = 0; b < a.n; b++)
		JCHECK(a.map[b] != B_NONE, "block %" PRIu64 " leaked (in no tree, list or extent)",
		       b);
	free(fl);
	free(a.map);
}

static void check_inode(const struct rfs_inode *in, const struct irec *r)
{
	uint8_t want[RFS_INLINE_MAX];

	fill_inline(want, r->inl, in->ino, r->ver);
	JCHECK(in->uid == r->uid && in->gid == r->ver && in->size == r->start &&
		       in->nblocks == r->len && in->rdev == r->cookie && in->inline_len == r->inl &&
		       memcmp(in->inline_data, want, r->inl) == 0 && in->mode == (S_IFREG | 0644),
	       "inode %" PRIu64 ": uid %u ver %u ext %" PRIu64 "+%" PRIu64 " cookie %" PRIx64
	       " inline %u; model: uid %u ver %u ext %" PRIu64 "+%" PRIu64 " cookie %" PRIx64
	       " inline %u",
	       in->ino, in->uid, in->gid, in->size, in->nblocks, in->rdev, in->inline_len, r->uid,
	       r->ver, r->start, r->len, r->cookie, r->inl);
}

static void check_inodes(struct rfs_fs *fs, const struct irec *m, size_t cap)
{
	struct rfs_btree_cursor cur;
	uint64_t found = 0, want = 0, special = 0;
	size_t ino;
	int ret;

	btree_cursor_init(&cur, &fs->inodes);
	for (ret = btree_first(&cur); ret == 0; ret = btree_next(&cur)) {
		size_t len;
		const uint8_t *rec = btree_cursor_rec(&cur, &len);
		struct rfs_inode in;
		JCHECK(inode_decode(rec, len, &in) == 0, "undecodable inode record");
		if (in.ino == RFS_ROOT_INO || in.ino == RFS_LOST_FOUND_INO) {
			special++;
			continue;
		}
		JCHECK(in.ino < cap && m[in.ino].live,
		       "inode %" PRIu64 " exists, the model has none", in.ino);
		check_inode(&in, &m[in.ino]);
		found++;
	}
	btree_cursor_done(&cur);
	JCHECK(ret == -ENOENT, "walking the inodes: %d", ret);
	for (ino = 0; ino < cap; ino++)
		want += m[ino].live;
	JCHECK(found == want && special == 2, "%" PRIu64 " inodes (+%" PRIu64 "), model %" PRIu64,
	       found, special, want);
	JCHECK(fs->sb.inode_count == want + 2, "sb.inode_count %" PRIu64 ", model %" PRIu64,
	       fs->sb.inode_count, want + 2);
}

static void check_dirs(struct rfs_fs *fs, const struct irec *m, size_t cap)
{
	struct rfs_btree_cursor cur;
	uint64_t found = 0, want = 0, lf = 0;
	size_t ino;
	int ret;

	btree_cursor_init(&cur, &fs->dirs);
	for (ret = btree_first(&cur); ret == 0; ret = btree_next(&cur)) {
		size_t len;
		const uint8_t *rec = btree_cursor_rec(&cur, &len);
		struct rfs_dirent d;
		char name[RFS_NAME_MAX + 1], exp[32];
		memcpy(&d, rec, sizeof(d));
		memcpy(name, rec + sizeof(d), d.namelen);
		name[d.namelen] = 0;
		ino = le64_get(d.ino);
		JCHECK(le64_get(d.key.dir) == RFS_ROOT_INO, "entry in directory %" PRIu64,
		       le64_get(d.key.dir));
		if (ino == RFS_LOST_FOUND_INO && strcmp(name, "lost+found") == 0) {
			lf++;
			continue;
		}
		snprintf(exp, sizeof(exp), "f%zu", ino);
		JCHECK(ino < cap && m[ino].live && m[ino].cookie == le64_get(d.key.cookie) &&
			       strcmp(name, exp) == 0,
		       "entry %s -> %zu (cookie %" PRIx64 ") not in the model", name, ino,
		       le64_get(d.key.cookie));
		found++;
	}
	btree_cursor_done(&cur);
	JCHECK(ret == -ENOENT, "walking the directory tree: %d", ret);
	for (ino = 0; ino < cap; ino++)
		want += m[ino].live && m[ino].cookie;
	JCHECK(found == want && lf == 1, "%" PRIu64 " entries, model %" PRIu64, found, want);
}

/* Extents whose data was durable by write log record K hold it. */
static void check_data(struct env *e, struct rfs_fs *fs, const struct irec *m, uint64_t k)
{
	uint8_t *want = NULL, *got = NULL;
	size_t ino, len;

	for (ino = 0; ino < e->cap; ino++) {
		const struct irec *r = &m[ino];
		if (!r->live || !r->len || e->dflush[r->aop] == NONE || e->dflush[r->aop] > k)
			continue;
		len = (size_t)r->len * fs->sb.bsize;
		want = realloc(want, len);
		got = realloc(got, len);
		ck_assert_ptr_nonnull(want);
		ck_assert_ptr_nonnull(got);
		fill_data(want, len, ino, r->aop);
		ck_assert_int_eq(dev_pread(fs->dev, got, len, r->start * fs->sb.bsize), 0);
		JCHECK(memcmp(want, got, len) == 0,
		       "data of inode %zu at %" PRIu64 "+%" PRIu64
		       " is not there (overwritten by a revoked block, or never made durable)",
		       ino, r->start, r->len);
	}
	free(want);
	free(got);
}

static void check_state(struct env *e, struct rfs_fs *fs, const struct irec *m, uint64_t k)
{
	check_inodes(fs, m, e->cap);
	check_dirs(fs, m, e->cap);
	check_space(fs, m, e->cap);
	check_data(e, fs, m, k);
}

/* Commits and checks the live filesystem against the model. */
static void env_check_live(struct env *e)
{
	env_commit(e);
	snprintf(fail_ctx, sizeof(fail_ctx), "%s (live filesystem)", e->name);
	check_state(e, e->fs, e->cur, NONE);
}

/* Closes and reopens the image: the log must be empty. */
static void env_reopen(struct env *e)
{
	int ret = fs_close(e->fs);

	e->fs = NULL;
	JCHECK(ret == 0, "fs_close: %d", ret);
	e->fs = open_path(e->path, 0, e->cache);
	JCHECK(!e->fs->recovery.needed, "recovery after a clean close: %s", e->fs->recovery.stop);
	e->logging = 0;
	e->rec0 = 0;
}

/* --- crash images ---------------------------------------------------------------------------- */

static void apply_rec(const struct env *e, uint8_t *img, uint64_t i)
{
	const struct wrec *w = &e->wl.r[i];

	if (w->kind == RFS_WLOG_WRITE)
		memcpy(img + w->off, w->data, w->len);
}

/* Records [0, result) are durable at cut K: everything up to the last
 * flush before K. */
static uint64_t durable_prefix(const struct env *e, uint64_t k)
{
	while (k > 0 && e->wl.r[k - 1].kind != RFS_WLOG_FLUSH)
		k--;
	return k;
}

/* Which unflushed writes [FROM, TO) a crash loses: each with probability
 * 1/2, or exactly one of them, or each with probability 1/8 (losing one
 * write among many that survive is what exposes a missing flush). */
struct dropper {
	struct rfs_rng r;
	unsigned mode;
	uint64_t victim;
};

#define DROP_ONLY (1ull << 63) /* a "seed" DROP_ONLY | i: lose write i only */

static void dropper_init(struct dropper *d, uint64_t seed, uint64_t from, uint64_t to)
{
	d->r.s = seed;
	d->mode = (seed & DROP_ONLY) ? 1 : (unsigned)rng_below(&d->r, 3);
	d->victim = (seed & DROP_ONLY) ? seed & ~DROP_ONLY
				       : from + rng_below(&d->r, to > from ? to - from : 1);
}

static int dropper_keep(struct dropper *d, uint64_t i)
{
	if (d->mode == 0)
		return (int)rng_below(&d->r, 2);
	if (d->mode == 1)
		return i != d->victim;
	return rng_below(&d->r, 8) != 0;
}

/* Builds e->img as the device after a crash at cut K: the durable prefix,
 * and of the later writes those DROP keeps (all of them if DROP is NULL). */
static void build_image(struct env *e, uint64_t k, struct dropper *drop)
{
	uint64_t p = durable_prefix(e, k), i;

	if (p < e->pn) {
		memcpy(e->pimg, e->base, e->size);
		e->pn = 0;
	}
	for (; e->pn < p; e->pn++)
		apply_rec(e, e->pimg, e->pn);
	memcpy(e->img, e->pimg, e->size);
	memset(e->kept, 1, p);
	memset(e->kept + p, 0, e->wl.n + 1 - p);
	for (i = p; i < k; i++) {
		e->kept[i] = !drop || dropper_keep(drop, i);
		if (e->kept[i])
			apply_rec(e, e->img, i);
	}
}

static int commit_survived(const struct env *e, uint64_t k, rfs_tid_t tid)
{
	uint64_t i;

	for (i = 0; i < k; i++)
		if (e->kept[i] && e->wl.r[i].ctid == tid)
			return 1;
	return 0;
}

struct vres {
	size_t h; /* operations present */
	struct rfs_recovery_info info;
};

/*
 * Recovers a RAM copy of IMG (the state after write log record K; NONE:
 * after everything) and checks it: every commit that returned before K is
 * in it; the last transaction replayed had its commit block among the
 * surviving writes (if K came from the write log: SURVIVED); the state is
 * exactly the model after the last transaction replayed.
 */
enum {
	V_DURABLE = 1,	/* every commit that returned before K is there */
	V_SURVIVED = 2, /* the last one replayed had its commit block written */
};

static void verify_image(struct env *e, const uint8_t *img, uint64_t k, unsigned flags,
			 struct vres *out)
{
	struct rfs_journal_sb jsb;
	struct rfs_dev *dev = mem_dev_from(img, e->size);
	struct rfs_recovery_info *info = &out->info;
	struct rfs_sb_info sb;
	struct lscan *s = malloc(sizeof(*s));
	struct rfs_fs *fs;
	char why[256] = "";
	size_t i, n = strlen(fail_ctx);
	int ret;

	ck_assert_ptr_nonnull(s);
	ret = sb_read_primary(dev, &sb, why, sizeof(why));
	JCHECK(ret == 0, "superblock of the crash image: %d %s", ret, why);
	log_scan(img, &sb, s);
	ret = journal_recover(dev, &sb, info);
	JCHECK(ret == 0, "journal_recover: %d", ret);
	snprintf(fail_ctx + n, sizeof(fail_ctx) - n,
		 "; recovery: tids %" PRIu64 "..%" PRIu64 ", %s", info->start_tid, info->end_tid,
		 info->stop);
	/* Invariant 5: after a replay no tid in the ring may be one a later
	 * scan expects. (A log that was empty, because a crash dropped the
	 * journal superblock write that would have started it, may hold the
	 * one torn transaction that followed, with the next tid: it is whole
	 * or fails its checksums, and the next commit is written over it.) */
	ljsb(dev->mem, &sb, &jsb);
	JCHECK(le32_get(jsb.start) == 0 &&
		       le64_get(jsb.sequence) + !info->needed > ring_max_tid(dev->mem, &sb),
	       "after recovery the log restarts at tid %" PRIu64 " but the ring holds tid %" PRIu64,
	       le64_get(jsb.sequence), ring_max_tid(dev->mem, &sb));
	for (i = e->ncommits; (flags & V_DURABLE) && i-- > 0;) {
		if (e->commits[i].rec <= k) {
			JCHECK(info->end_tid > e->commits[i].tid,
			       "transaction %" PRIu64
			       " was durable (journal_commit returned) but is not replayed",
			       e->commits[i].tid);
			break;
		}
	}
	if ((flags & V_SURVIVED) && e->nops > e->op0 && info->end_tid > e->ops[e->op0].tid)
		JCHECK(commit_survived(e, k, info->end_tid - 1),
		       "transaction %" PRIu64 " replayed but its commit block was never written",
		       info->end_tid - 1);
	out->h = ops_before(e, info->end_tid);
	fs = open_dev(dev, RFS_FS_RDONLY, CACHE_BYTES);
	JCHECK(!fs->recovery.needed, "the log is not empty after recovery");
	check_state(e, fs, model_at(e, out->h), k);
	ck_assert_int_eq(fs_close(fs), 0);
	e->cuts++;
	e->replayed += info->transactions > 0;
	e->revoked += info->blocks_revoked > 0;
	e->wrapped += s->wraps && info->transactions > 0;
	fail_ctx[n] = 0;
	free(s);
}

/* Crash at cut K; DROP_SEED 0: every write before K survives, else a
 * random subset of those after the last flush. */
static void verify_cut(struct env *e, uint64_t k, uint64_t drop_seed, struct vres *out)
{
	struct dropper drop;

	dropper_init(&drop, drop_seed, durable_prefix(e, k), k);
	snprintf(fail_ctx, sizeof(fail_ctx),
		 "%s: seed %" PRIu64 ", crash at write log record %" PRIu64
		 " of %zu, drop seed %" PRIu64,
		 e->name, e->seed, k, e->wl.n, drop_seed);
	build_image(e, k, drop_seed ? &drop : NULL);
	verify_image(e, e->img, k, V_DURABLE | V_SURVIVED, out);
}

/* --- workloads ------------------------------------------------------------------------------- */

static const struct env_opts small_1k = {
	.block_log = 10, .size = 8 * MiB, .jbytes = 256 * KiB, .cache = CACHE_BYTES, .credits = 16};

static void populate(struct env *e, unsigned n)
{
	unsigned i;

	for (i = 0; i < n; i++) {
		rfs_ino_t ino = op_create(e, (int)(i % 2));
		if (i % 3 == 0)
			op_alloc(e, ino, 0, 0);
		if (i % 8 == 7)
			env_commit(e);
	}
	env_commit(e);
}

static rfs_ino_t pick_with_extent(struct env *e, int want)
{
	size_t i;

	for (i = 0; i < 4 * e->nlive; i++) {
		rfs_ino_t ino = pick_live(e);
		if (!e->cur[ino].len == !want)
			return ino;
	}
	return 0;
}

/* Reads the journal region of the live device into IMG (device-sized). */
static void read_log_region(struct env *e, uint8_t *img)
{
	const struct rfs_sb_info *sb = &e->fs->sb;
	uint64_t off = sb->journal_start << sb->block_log;

	ck_assert_int_eq(dev_pread(e->fs->dev, img + off, sb->journal_blocks << sb->block_log, off),
			 0);
}

/* --- 1. commit and replay -------------------------------------------------------------------- */

START_TEST(test_commit_replay_roundtrip)
{
	struct rfs_journal_stats st;
	struct env e;
	struct rfs_fs *fs;
	uint8_t *img, *after;
	uint64_t size;
	char copy[256];
	unsigned t, i;

	env_init(&e, "test_commit_replay_roundtrip", 0x1001, &small_1k);
	populate(&e, 24);
	for (t = 0; t < 6; t++) {
		for (i = 0; i < 4; i++)
			random_op(&e);
		env_commit(&e);
	}
	journal_get_stats(e.fs, &st);
	ck_assert_uint_eq(st.checkpoints, 0); /* the log holds every commit since the mount */
	ck_assert_uint_ge(st.commits, 8);
	ck_assert_uint_eq(st.unhandled_dirties, 0);

	/* A crash now: every commit is durable, so the file as it is. */
	img = dev_snapshot(e.fs->dev);
	tmp_file(copy, sizeof(copy), "crash");
	write_file(copy, img, e.size);
	fs = open_path(copy, 0, CACHE_BYTES);
	snprintf(fail_ctx, sizeof(fail_ctx), "%s: recovered copy: %s", e.name, fs->recovery.stop);
	JCHECK(fs->recovery.needed && fs->recovery.transactions == st.commits,
	       "recovery replayed %" PRIu64 " transactions, %" PRIu64 " were committed",
	       fs->recovery.transactions, st.commits);
	JCHECK(fs->recovery.blocks_written + fs->recovery.blocks_revoked == st.blocks_logged,
	       "%" PRIu64 " written + %" PRIu64 " revoked, %" PRIu64 " logged",
	       fs->recovery.blocks_written, fs->recovery.blocks_revoked, st.blocks_logged);
	JCHECK(strstr(fs->recovery.stop, "no transaction follows") != NULL, "stop: %s",
	       fs->recovery.stop);
	check_state(&e, fs, e.cur, NONE);
	ck_assert_int_eq(fs_close(fs), 0);

	/* Recovered and closed: it opens with nothing to replay. */
	fs = open_path(copy, 0, CACHE_BYTES);
	JCHECK(!fs->recovery.needed, "log not empty after recovery and close");
	check_state(&e, fs, e.cur, NONE);
	ck_assert_int_eq(fs_close(fs), 0);

	/* A read-only open replays into memory: same view, image untouched. */
	write_file(copy, img, e.size);
	fs = open_path(copy, RFS_FS_RDONLY, CACHE_BYTES);
	JCHECK(fs->recovery.needed && fs->recovery.transactions == st.commits,
	       "read-only recovery replayed %" PRIu64, fs->recovery.transactions);
	check_state(&e, fs, e.cur, NONE);
	ck_assert_int_eq(fs_close(fs), 0);
	after = read_file(copy, &size);
	ck_assert_uint_eq(size, e.size);
	JCHECK(memcmp(after, img, size) == 0, "a read-only open wrote the image");

	env_check_live(&e);
	free(img);
	free(after);
	unlink(copy);
	env_done(&e);
}
END_TEST

/* --- 2. torn commits ------------------------------------------------------------------------- */

static unsigned sweep_one(struct env *e, uint64_t k, uint64_t drop, uint64_t to, size_t h0,
			  size_t h1)
{
	struct vres v;

	verify_cut(e, k, drop, &v);
	JCHECK(v.h == h0 || v.h == h1, "%zu operations present, expected %zu or %zu", v.h, h0, h1);
	JCHECK(k < to || v.h == h1, "the transaction is lost after its final flush");
	return v.h == h0 ? 1u : 2u;
}

/* Crashes at every cut point in [FROM, TO]: with every write before it,
 * with each unflushed write lost alone, and with NSUB random losses. The
 * state must hold H0 or H1 operations, H1 from TO on. Returns what was
 * seen: bit 0 the state before, bit 1 the state after. */
static unsigned sweep(struct env *e, uint64_t from, uint64_t to, size_t h0, size_t h1,
		      unsigned nsub)
{
	unsigned seen = 0, s;
	uint64_t k, i;

	for (k = from; k <= to; k++) {
		uint64_t p = durable_prefix(e, k);
		seen |= sweep_one(e, k, 0, to, h0, h1);
		for (i = p; i < k; i++)
			if (e->wl.r[i].kind == RFS_WLOG_WRITE)
				seen |= sweep_one(e, k, DROP_ONLY | i, to, h0, h1);
		for (s = 0; p < k && s < nsub; s++)
			seen |= sweep_one(e, k, rng_next(&e->rng) | 1, to, h0, h1);
	}
	return seen;
}

/* Ordered mode: the data of extents allocated since the last commit is
 * written now, before the commit that maps them. Whenever a recovered
 * state has those mappings, the data must be there (dflush 0: always
 * checked when the extent is in the state). */
static void write_data_ordered(struct env *e)
{
	size_t i, np = e->npending;

	e->npending = 0;
	for (i = 0; i < np; i++) {
		size_t p = e->pending[i], len;
		const struct irec *r = &e->cur[e->ops[p].ino];
		uint8_t *buf;
		if (!r->live || r->aop != p)
			continue;
		len = (size_t)r->len * bsize(e);
		buf = malloc(len);
		ck_assert_ptr_nonnull(buf);
		fill_data(buf, len, e->ops[p].ino, p);
		ck_assert_int_eq(dev_pwrite(e->fs->dev, buf, len, r->start * bsize(e)), 0);
		e->dflush[p] = 0;
		free(buf);
	}
}

/* One transaction of every kind of change, under one outer handle;
 * crashes at every one of its writes. Returns its tid. ORDERED: it maps
 * data written before its commit, and frees nothing (a block freed by an
 * uncommitted transaction must not receive data). */
static rfs_tid_t torn_txn(struct env *e, int ordered)
{
	struct rfs_journal_stats a, b;
	struct rfs_handle *outer;
	size_t h0 = e->nops - e->op0, h1;
	uint64_t r0 = records(e), r1;
	rfs_ino_t ino;
	unsigned i;

	journal_get_stats(e->fs, &a);
	ck_assert_int_eq(txn_start(e->fs, 64, &outer), 0);
	if (ordered)
		txn_set_ordered(outer);
	for (i = 0; i < 4; i++)
		op_create(e, 1);
	for (i = 0; i < 3; i++)
		op_update(e, pick_live(e));
	for (i = 0; !ordered && i < 2; i++)
		op_delete(e, pick_live(e));
	for (i = 0; i < (ordered ? 3u : 1u); i++)
		if ((ino = pick_with_extent(e, 0)) != 0)
			op_alloc(e, ino, 0, 0);
	if (!ordered && (ino = pick_with_extent(e, 1)) != 0)
		op_free(e, ino);
	if (ordered)
		write_data_ordered(e);
	ck_assert_int_eq(txn_stop(outer), 0);
	env_commit(e);
	r1 = e->commits[e->ncommits - 1].rec;
	journal_get_stats(e->fs, &b);
	ck_assert_uint_eq(b.commits, a.commits + 1); /* it was one transaction */
	h1 = e->nops - e->op0;
	ck_assert_uint_gt(h1, h0);
	env_load_log(e);
	JCHECK(sweep(e, r0, r1, h0, h1, 4) == 3, "never saw both sides of the transaction");
	return e->ops[e->nops - 1].tid;
}

/* Small transactions until the head of the log is near the ring's end. */
static void head_near_ring_end(struct env *e, uint8_t *img, uint32_t lo, uint32_t hi)
{
	struct lscan *s = malloc(sizeof(*s));
	unsigned i;

	ck_assert_ptr_nonnull(s);
	for (i = 0; i < 2000; i++) {
		op_update(e, pick_live(e));
		env_commit(e);
		read_log_region(e, img);
		log_scan(img, &e->fs->sb, s);
		if (s->start && s->n && s->blocks - s->end >= lo && s->blocks - s->end <= hi)
			break;
	}
	ck_assert_uint_lt(i, 2000);
	free(s);
}

START_TEST(test_torn_commit)
{
	struct env_opts o = small_1k;
	struct lscan *s = malloc(sizeof(*s));
	uint8_t *img = malloc(small_1k.size);
	struct env e;
	rfs_tid_t tid;
	uint64_t r0;
	size_t h, i;

	ck_assert_ptr_nonnull(s);
	ck_assert_ptr_nonnull(img);
	o.jbytes = 128 * KiB;
	env_init(&e, "test_torn_commit", 0x2002, &o);
	populate(&e, 40);
	env_start_log(&e, 1); /* the first commit also writes the journal superblock */
	torn_txn(&e, 0);
	torn_txn(&e, 0); /* into a live log */
	torn_txn(&e, 1); /* ordered: a flush before the commit block */

	/* One that wraps around the end of the ring. */
	head_near_ring_end(&e, img, 2, 5);
	tid = torn_txn(&e, 0);
	read_log_region(&e, img);
	log_scan(img, &e.fs->sb, s);
	for (i = 0; i < s->n && s->t[i].tid != tid; i++)
		;
	ck_assert_uint_lt(i, s->n);
	JCHECK(s->t[i].wraps, "transaction %" PRIu64 " did not wrap (at %u, ring ends at %u)", tid,
	       s->t[i].first, s->blocks);

	/* A crash anywhere in a checkpoint loses nothing. */
	h = e.nops - e.op0;
	r0 = records(&e);
	ck_assert_int_eq(journal_checkpoint(e.fs), 0);
	env_load_log(&e);
	sweep(&e, r0, records(&e), h, h, 3);

	env_check_live(&e);
	env_reopen(&e);
	env_check_live(&e);
	free(s);
	free(img);
	env_done(&e);
}
END_TEST

/* --- 3. revokes across transactions and the ring's end --------------------------------------- */

struct nodeset {
	fsblock_t *v;
	size_t n, cap;
};

static void collect_node(void *arg, const struct rfs_btree *t, fsblock_t blkno, unsigned level)
{
	struct nodeset *ns = arg;

	(void)t;
	(void)level;
	if (ns->n == ns->cap) {
		ns->cap = ns->cap ? ns->cap * 2 : 256;
		ns->v = realloc(ns->v, ns->cap * sizeof(*ns->v));
	}
	if (ns->v)
		ns->v[ns->n++] = blkno;
}

static int blk_cmp(const void *a, const void *b)
{
	fsblock_t x = *(const fsblock_t *)a, y = *(const fsblock_t *)b;
	return x < y ? -1 : x > y;
}

/* Every node of the inode and directory trees, sorted. */
static void tree_nodes(struct rfs_fs *fs, struct nodeset *ns)
{
	struct rfs_btree_check chk = {.visit_node = collect_node, .arg = ns};

	ns->n = 0;
	ck_assert_int_eq(btree_check(&fs->inodes, &chk), 0);
	ck_assert_int_eq(btree_check(&fs->dirs, &chk), 0);
	ck_assert_ptr_nonnull(ns->v);
	qsort(ns->v, ns->n, sizeof(*ns->v), blk_cmp);
}

/* Frees tree nodes by deleting inodes, then allocates exactly the freed
 * blocks as extents (their data is written once that commits) and grows
 * the trees again. Returns how many freed nodes became file data. */
static unsigned revoke_round(struct env *e, struct nodeset *before, struct nodeset *after)
{
	unsigned i, reused = 0;
	size_t j;

	tree_nodes(e->fs, before);
	for (i = 0; i < 48 && e->nlive > 20; i++) {
		op_delete(e, pick_live(e));
		if (i % 6 == 5)
			env_commit(e);
	}
	env_commit(e);
	tree_nodes(e->fs, after);
	for (j = 0; j < before->n && reused < 24; j++) {
		fsblock_t b = before->v[j];
		rfs_ino_t ino;
		if (bsearch(&b, after->v, after->n, sizeof(b), blk_cmp))
			continue; /* still a node */
		ino = pick_with_extent(e, 0);
		if (!ino)
			ino = op_create(e, 0);
		op_alloc(e, ino, b, 1);
		reused += e->cur[ino].start == b;
	}
	env_commit(e); /* the data goes to the blocks once this is durable */
	for (i = 0; i < 48; i++) {
		op_create(e, (int)(i % 2));
		if (i % 6 == 5)
			env_commit(e);
	}
	env_commit(e);
	return reused;
}

START_TEST(test_revoke_and_ring_wrap)
{
	struct env_opts o = small_1k;
	struct nodeset before = {0}, after = {0};
	struct rfs_journal_stats st;
	unsigned r, rounds = (unsigned)test_scale(12), reused = 0;
	struct vres v;
	struct env e;
	size_t i;

	o.jbytes = 128 * KiB;
	env_init(&e, "test_revoke_and_ring_wrap", 0x3005, &o);
	e.max_live = 5000;
	populate(&e, 160);
	env_start_log(&e, 0);
	for (r = 0; r < rounds; r++)
		reused += revoke_round(&e, &before, &after);
	journal_get_stats(e.fs, &st);
	ck_assert_uint_gt(reused, 0);
	ck_assert_uint_gt(st.revokes_logged, 0);
	ck_assert_uint_gt(st.forced_by_space, 0);
	ck_assert_uint_ge(st.checkpoints, 3);
	ck_assert_uint_gt(st.log_blocks_written, 3 * (e.fs->sb.journal_blocks - 1));
	env_load_log(&e);

	/* A crash after every commit and after every data write. */
	for (i = 0; i < e.ncommits; i++)
		verify_cut(&e, e.commits[i].rec, 0, &v);
	for (i = e.op0; i < e.nops; i++)
		if (e.dflush[i] != NONE)
			verify_cut(&e, e.dflush[i], 0, &v);
	printf("test_revoke_and_ring_wrap: %u freed tree nodes reused as file data\n", reused);
	JCHECK(e.revoked > 0, "no crash image had revoked blocks to skip");
	JCHECK(e.wrapped > 0, "no crash image had a live log across the ring's end");
	env_check_live(&e);
	env_reopen(&e);
	env_check_live(&e);
	free(before.v);
	free(after.v);
	env_done(&e);
}
END_TEST

/* --- 4. replay is idempotent ----------------------------------------------------------------- */

/* IMG = BASE with the first K records of L applied; of the writes after
 * the last flush before K only a random subset if DROP is set. */
static void wlog_image(const struct wlog *l, const uint8_t *base, uint64_t size, uint64_t k,
		       uint64_t drop_seed, uint8_t *img)
{
	struct dropper drop;
	uint64_t p = k, i;

	while (p > 0 && l->r[p - 1].kind != RFS_WLOG_FLUSH)
		p--;
	dropper_init(&drop, drop_seed, p, k);
	memcpy(img, base, size);
	for (i = 0; i < k; i++)
		if (l->r[i].kind == RFS_WLOG_WRITE &&
		    (i < p || !drop_seed || dropper_keep(&drop, i)))
			memcpy(img + l->r[i].off, l->r[i].data, l->r[i].len);
}

START_TEST(test_replay_idempotent)
{
	struct rfs_recovery_info ref_info, info;
	struct rfs_journal_stats st;
	struct rfs_dev *ref, *dev;
	struct rfs_sb_info sb;
	struct rfs_fs *fs;
	struct wlog l = {0};
	uint8_t *img0, *img;
	char wl[256], why[256];
	struct env e;
	uint64_t k;
	unsigned t, i, d, runs = 0;

	struct env_opts o = small_1k;

	o.jbytes = 1 * MiB; /* no checkpoint: the log holds every commit */
	env_init(&e, "test_replay_idempotent", 0x4004, &o);
	e.max_live = 1000;
	populate(&e, 80);
	for (t = 0; t < 14; t++) {
		for (i = 0; i < 6; i++)
			random_op(&e);
		for (i = 0; t % 3 == 1 && i < 8; i++)
			op_delete(&e, pick_live(&e));
		env_commit(&e);
	}
	journal_get_stats(e.fs, &st);
	ck_assert_uint_eq(st.checkpoints, 0);
	img0 = dev_snapshot(e.fs->dev); /* a crash: the log holds everything since the mount */
	img = malloc(e.size);
	ck_assert_ptr_nonnull(img);

	/* The reference: a recovery that ran to the end. */
	ref = mem_dev_from(img0, e.size);
	ck_assert_int_eq(sb_read_primary(ref, &sb, why, sizeof(why)), 0);
	ck_assert_int_eq(journal_recover(ref, &sb, &ref_info), 0);
	ck_assert_uint_eq(ref_info.transactions, st.commits);
	ck_assert_uint_gt(ref_info.blocks_revoked, 0);
	ck_assert_uint_gt(ref_info.blocks_written, 20);

	/* The same recovery with the write log on: the same writes. */
	dev = mem_dev_from(img0, e.size);
	tmp_file(wl, sizeof(wl), "recovery-wlog");
	ck_assert_int_eq(dev_writelog_start(dev, wl), 0);
	ck_assert_int_eq(journal_recover(dev, &sb, &info), 0);
	ck_assert_mem_eq(dev->mem, ref->mem, e.size);
	dev_close(dev);
	wlog_load(wl, &l);
	ck_assert_uint_ge(l.n, ref_info.blocks_written + 3);

	/* Interrupted at every write (with and without losing unflushed
	 * ones), then recovered again: the very same bytes. */
	for (k = 0; k <= l.n; k++) {
		for (d = 0; d < 4; d++) {
			wlog_image(&l, img0, e.size, k, d ? k * 7919 + d : 0, img);
			dev = mem_dev_from(img, e.size);
			ck_assert_int_eq(sb_read_primary(dev, &sb, why, sizeof(why)), 0);
			ck_assert_int_eq(journal_recover(dev, &sb, &info), 0);
			ck_assert_msg(memcmp(dev->mem, ref->mem, e.size) == 0,
				      "%s: seed %" PRIu64 ", recovery interrupted at write %" PRIu64
				      " of %zu (drop %u), then rerun: not what an uninterrupted "
				      "one wrote",
				      e.name, e.seed, k, l.n, d);
			dev_close(dev);
			runs++;
		}
	}
	printf("test_replay_idempotent: %u interrupted recoveries over %zu writes, %" PRIu64
	       " transactions\n",
	       runs, l.n, ref_info.transactions);

	/* And the recovered image is the committed state. */
	snprintf(fail_ctx, sizeof(fail_ctx), "%s: the recovered reference image", e.name);
	fs = open_dev(ref, RFS_FS_RDONLY, CACHE_BYTES);
	check_state(&e, fs, e.cur, NONE);
	ck_assert_int_eq(fs_close(fs), 0);
	wlog_free(&l);
	free(img0);
	free(img);
	unlink(wl);
	env_done(&e);
}
END_TEST

/* --- 5. corrupt log blocks ------------------------------------------------------------------- */

enum corrupt_kind {
	C_DESC,	      /* a byte of the first descriptor */
	C_DATA,	      /* a byte of the first logged block */
	C_REVOKE,     /* a byte of the first revoke block */
	C_COMMIT,     /* a byte of the commit block */
	C_COMMIT_CRC, /* the commit block's txn_crc, block checksum made valid */
	C_TAG_HOME,   /* a tag's home block, descriptor checksum made valid */
	C_NKINDS
};

static const char *const corrupt_name[] = {"descriptor",   "logged block",   "revoke block",
					   "commit block", "commit txn_crc", "tag home"};
static const char *const corrupt_why[] = {"no transaction follows",
					  "does not match its tag",
					  "transaction is torn",
					  "transaction is torn",
					  "does not match the transaction's checksum",
					  "does not match the transaction's checksum"};

static void reseal(const struct rfs_sb_info *sb, uint8_t *blk)
{
	rfs_block_set_crc(rfs_crc_seed(sb->uuid), blk, sb->bsize);
}

/* Corrupts transaction T of IMG as KIND says. */
static void corrupt_txn(struct env *e, uint8_t *img, const struct ltxn *t, enum corrupt_kind kind)
{
	const struct rfs_sb_info *sb = &e->fs->sb;
	uint32_t pos = kind == C_DATA				  ? t->data
		       : kind == C_REVOKE			  ? t->rev
		       : kind == C_COMMIT || kind == C_COMMIT_CRC ? t->commit
								  : t->desc;
	uint8_t *blk = img + ((sb->journal_start + pos) << sb->block_log);

	ck_assert_uint_ne(pos, 0);
	if (kind == C_COMMIT_CRC) {
		struct rfs_jcommit *c = (void *)blk;
		c->txn_crc = le32_make(le32_get(c->txn_crc) ^ 0x100);
		reseal(sb, blk);
	} else if (kind == C_TAG_HOME) {
		struct rfs_jdesc *d = (void *)blk;
		d->tags[0].blkno = le64_make(le64_get(d->tags[0].blkno) + 1);
		reseal(sb, blk);
	} else {
		blk[rng_below(&e->rng, sb->bsize)] ^= (uint8_t)(1 + rng_below(&e->rng, 255));
	}
}

/* Five transactions; 1, 3 and 4 delete enough inodes to free tree nodes,
 * so they carry revoke blocks. */
static void corrupt_workload(struct env *e)
{
	struct rfs_handle *outer;
	unsigned t, i;

	for (t = 0; t < 5; t++) {
		ck_assert_int_eq(txn_start(e->fs, 100, &outer), 0);
		for (i = 0; i < 30 && (t == 1 || t == 3 || t == 4); i++)
			op_delete(e, pick_live(e));
		for (i = 0; i < 6; i++)
			op_create(e, (int)(i % 2));
		for (i = 0; i < 4; i++)
			op_update(e, pick_live(e));
		ck_assert_int_eq(txn_stop(outer), 0);
		env_commit(e);
	}
}

START_TEST(test_corrupt_log)
{
	static const unsigned targets[] = {1, 3, 4}; /* middle, middle, last */
	struct lscan *s = malloc(sizeof(*s));
	uint8_t *img, *bad = malloc(small_1k.size);
	struct rfs_recovery_info info;
	struct env_opts o = small_1k;
	struct rfs_fs *fs;
	struct vres v;
	struct env e;
	unsigned ti, kind, i;

	ck_assert_ptr_nonnull(s);
	ck_assert_ptr_nonnull(bad);
	o.jbytes = 1 * MiB; /* five big transactions, no checkpoint */
	env_init(&e, "test_corrupt_log", 0x5005, &o);
	e.write_data = 0; /* with a corrupt log, data written after it cannot be kept safe */
	e.max_live = 1000;
	populate(&e, 150);
	env_start_log(&e, 1);
	corrupt_workload(&e);
	img = dev_snapshot(e.fs->dev);
	log_scan(img, &e.fs->sb, s);
	ck_assert_uint_eq(s->n, 5);
	for (ti = 0; ti < RFS_ARRAY_SIZE(targets); ti++) {
		const struct ltxn *t = &s->t[targets[ti]];
		JCHECK(t->desc && t->data && t->rev, "transaction %u has no revoke block",
		       targets[ti]);
		for (kind = 0; kind < C_NKINDS; kind++) {
			memcpy(bad, img, e.size);
			corrupt_txn(&e, bad, t, kind);
			snprintf(fail_ctx, sizeof(fail_ctx),
				 "%s: seed %" PRIu64 ", %s of transaction %u corrupt", e.name,
				 e.seed, corrupt_name[kind], targets[ti]);
			verify_image(&e, bad, NONE, 0, &v);
			JCHECK(v.info.end_tid == t->tid && v.info.transactions == targets[ti],
			       "recovery stopped at %" PRIu64 " after %" PRIu64 " transactions",
			       v.info.end_tid, v.info.transactions);
			JCHECK(strstr(v.info.stop, corrupt_why[kind]) != NULL, "stop: %s",
			       v.info.stop);
		}
	}

	/* fs_open tells the same story in fs->recovery. */
	memcpy(bad, img, e.size);
	corrupt_txn(&e, bad, &s->t[3], C_DATA);
	fs = open_dev(mem_dev_from(bad, e.size), 0, CACHE_BYTES);
	JCHECK(fs->recovery.needed && fs->recovery.transactions == 3 &&
		       strstr(fs->recovery.stop, corrupt_why[C_DATA]) != NULL,
	       "fs_open recovery: %" PRIu64 " transactions, %s", fs->recovery.transactions,
	       fs->recovery.stop);
	ck_assert_int_eq(fs_close(fs), 0);

	/* Random damage anywhere in the live log: never a crash, and always
	 * the state after some prefix of the transactions. */
	for (i = 0; i < test_scale(150); i++) {
		uint32_t span =
			(s->end + s->blocks - s->first - s->t[0].first) % (s->blocks - s->first);
		uint32_t pos =
			s->first + (s->t[0].first - s->first + (uint32_t)rng_below(&e.rng, span)) %
					   (s->blocks - s->first);
		unsigned nbytes = 1 + (unsigned)rng_below(&e.rng, 3), b;
		memcpy(bad, img, e.size);
		for (b = 0; b < nbytes; b++)
			bad[((e.fs->sb.journal_start + pos) << e.fs->sb.block_log) +
			    rng_below(&e.rng, e.fs->sb.bsize)] ^=
				(uint8_t)(1 + rng_below(&e.rng, 255));
		snprintf(fail_ctx, sizeof(fail_ctx),
			 "%s: seed %" PRIu64 ", fuzz %u at ring block %u", e.name, e.seed, i, pos);
		verify_image(&e, bad, NONE, 0, &v);
		JCHECK(v.info.transactions <= 5, "replayed %" PRIu64, v.info.transactions);
	}

	/* A bad journal superblock: -EUCLEAN, never a crash, nothing written. */
	for (kind = 0; kind < 5; kind++) {
		struct rfs_journal_sb *jsb;
		struct rfs_fs *fs = NULL;
		struct rfs_dev *dev;
		char why[256] = "";
		int ret;

		memcpy(bad, img, e.size);
		jsb = (void *)(bad + (e.fs->sb.journal_start << e.fs->sb.block_log));
		if (kind == 0)
			bad[(e.fs->sb.journal_start << e.fs->sb.block_log) + 50] ^= 4; /* crc */
		else if (kind == 1)
			jsb->start = le32_make(le32_get(jsb->blocks) + 3);
		else if (kind == 2)
			jsb->uuid[3] ^= 1;
		else if (kind == 3)
			jsb->first = 0;
		else
			jsb->blocks = le32_make(le32_get(jsb->blocks) - 1);
		if (kind)
			reseal(&e.fs->sb, (uint8_t *)jsb);
		dev = mem_dev_from(bad, e.size);
		ck_assert_int_eq(journal_recover(dev, &e.fs->sb, &info), -EUCLEAN);
		ck_assert_mem_eq(dev->mem, bad, e.size);
		ret = fs_open(dev, 0, CACHE_BYTES, &fs, why, sizeof(why));
		ck_assert_msg(ret == -EUCLEAN && strstr(why, "journal") != NULL, "fs_open: %d %s",
			      ret, why);
	}
	free(img);
	free(bad);
	free(s);
	env_done(&e);
}
END_TEST

/* One inode of each leaf of the inode tree (not in leaf AVOID). */
static size_t leaf_inodes(struct rfs_fs *fs, rfs_ino_t *out, size_t max, fsblock_t avoid,
			  fsblock_t *leaf_of_first)
{
	struct rfs_btree_cursor cur;
	fsblock_t last = 0;
	size_t n = 0;
	int ret;

	ck_assert_uint_ge(fs->inodes.height, 2);
	btree_cursor_init(&cur, &fs->inodes);
	for (ret = btree_first(&cur); ret == 0 && n < max; ret = btree_next(&cur)) {
		fsblock_t leaf = cur.path[fs->inodes.height - 1].bp->blkno;
		rfs_ino_t ino = rfs_get_le64(btree_cursor_rec(&cur, NULL));
		if (leaf == last || leaf == avoid || ino <= RFS_LOST_FOUND_INO)
			continue;
		last = leaf;
		if (!n && leaf_of_first)
			*leaf_of_first = leaf;
		out[n++] = ino;
	}
	btree_cursor_done(&cur);
	return n;
}

/* Sets INO's uid in its own transaction (or the caller's handle). */
static void set_uid(struct rfs_fs *fs, rfs_ino_t ino, uint32_t uid)
{
	struct rfs_handle *h;
	struct rfs_inode in;

	ck_assert_int_eq(txn_start(fs, 8, &h), 0);
	ck_assert_int_eq(inode_read(fs, ino, &in), 0);
	in.uid = uid;
	ck_assert_int_eq(inode_write(fs, &in), 0);
	ck_assert_int_eq(txn_stop(h), 0);
}

static uint32_t get_uid(struct rfs_fs *fs, rfs_ino_t ino)
{
	struct rfs_inode in;

	ck_assert_int_eq(inode_read(fs, ino, &in), 0);
	return in.uid;
}

/*
 * Invariant 5 end to end. Mount M, then T0..T3 (one inode update each) are
 * committed; a crash; T0 turns out corrupt, so recovery keeps M only. The
 * next mount starts the ring at `first` again. If its tids restarted right
 * after T0, a transaction X sized to end where the old T3 begins would be
 * followed, in the ring, by a perfectly valid T3 with exactly the tid the
 * scan expects next: a crash before the next commit would replay the stale
 * T3 over a filesystem that never had T0..T2.
 */
START_TEST(test_stale_txn_after_corrupt_recovery)
{
	struct lscan *s = malloc(sizeof(*s));
	rfs_ino_t lino[64], q, abc[3];
	uint32_t q_before;
	fsblock_t q_leaf;
	struct rfs_handle *outer;
	struct rfs_fs *fs;
	struct env e;
	uint8_t *img;
	size_t n, i, k;
	char copy[256];

	ck_assert_ptr_nonnull(s);
	env_init(&e, "test_stale_txn_after_corrupt_recovery", 0x5006, &small_1k);
	for (i = 0; i < 120; i++)
		op_create(&e, 0);
	env_reopen(&e); /* a fresh mount: M sits at the start of the ring */

	n = leaf_inodes(e.fs, lino, 4, 0, &q_leaf);
	ck_assert_uint_eq(n, 4);
	q = lino[0];
	memcpy(abc, lino + 1, sizeof(abc));
	q_before = get_uid(e.fs, q);
	for (i = 0; i < 3; i++) {
		set_uid(e.fs, abc[i], 7000 + (uint32_t)i);
		ck_assert_int_eq(journal_commit(e.fs), 0);
	}
	set_uid(e.fs, q, 7777); /* T3 */
	ck_assert_int_eq(journal_commit(e.fs), 0);
	img = dev_snapshot(e.fs->dev);
	log_scan(img, &e.fs->sb, s);
	ck_assert_uint_eq(s->n, 5); /* M, T0..T3 */
	ck_assert_uint_eq(s->t[0].first, s->first);

	/* T0's logged leaf is damaged: only M is replayed. */
	img[((e.fs->sb.journal_start + s->t[1].data) << e.fs->sb.block_log) + 100] ^= 0x20;
	tmp_file(copy, sizeof(copy), "stale");
	write_file(copy, img, e.size);
	fs = open_path(copy, 0, CACHE_BYTES);
	ck_assert_uint_eq(fs->recovery.transactions, 1);
	ck_assert_uint_eq(get_uid(fs, q), q_before);

	/* X: one descriptor, K leaves, a commit: it ends where T3 begins. */
	k = s->t[4].first - s->t[1].first - 2;
	n = leaf_inodes(fs, lino, k, q_leaf, NULL);
	ck_assert_uint_eq(n, k);
	ck_assert_int_eq(txn_start(fs, 64, &outer), 0);
	for (i = 0; i < k; i++)
		set_uid(fs, lino[i], 9000 + (uint32_t)i);
	ck_assert_int_eq(txn_stop(outer), 0);
	ck_assert_int_eq(journal_commit(fs), 0);
	free(img);
	img = dev_snapshot(fs->dev);
	log_scan(img, &fs->sb, s);
	ck_assert_uint_ge(s->n, 2); /* M', X */
	ck_assert_uint_eq(s->t[1].first, s->t[0].commit + 1);

	/* A crash now: M' and X are replayed, and nothing else. */
	ck_assert_int_eq(fs_close(fs), 0);
	write_file(copy, img, e.size);
	fs = open_path(copy, 0, CACHE_BYTES);
	JCHECK(fs->recovery.transactions == 2, "%" PRIu64 " transactions replayed (%s)",
	       fs->recovery.transactions, fs->recovery.stop);
	JCHECK(get_uid(fs, q) == q_before,
	       "a stale transaction from an earlier lap of the ring "
	       "was replayed: inode %" PRIu64 " has uid %u",
	       q, get_uid(fs, q));
	for (i = 0; i < k; i++)
		ck_assert_uint_eq(get_uid(fs, lino[i]), 9000 + i);
	check_space(fs, NULL, 0);
	ck_assert_int_eq(fs_close(fs), 0);
	unlink(copy);
	free(img);
	free(s);
	env_done(&e);
}
END_TEST

/* --- 6. randomized crashes ------------------------------------------------------------------- */

/* A random transaction: 1..12 operations, sometimes all under one outer
 * handle (one transaction for sure), then journal_commit. */
static void random_txn(struct env *e)
{
	unsigned n = 1 + (unsigned)rng_below(&e->rng, rng_below(&e->rng, 2) ? 3 : 12), i;
	struct rfs_handle *outer = NULL;

	if (!rng_below(&e->rng, 3))
		ck_assert_int_eq(txn_start(e->fs, RFS_MIN(n * e->credits, 48u), &outer), 0);
	for (i = 0; i < n; i++)
		random_op(e);
	if (outer)
		ck_assert_int_eq(txn_stop(outer), 0);
	env_commit(e);
	if (!rng_below(&e->rng, 100))
		ck_assert_int_eq(journal_checkpoint(e->fs), 0);
}

struct cut {
	uint64_t k, drop;
};

static int cut_cmp(const void *a, const void *b)
{
	const struct cut *x = a, *y = b;
	return x->k < y->k ? -1 : x->k > y->k;
}

/* Random cut points: anywhere, near commit blocks, after data flushes. */
static struct cut *random_cuts(struct env *e, size_t n)
{
	struct cut *c = malloc(n * sizeof(*c));
	size_t i;

	ck_assert_ptr_nonnull(c);
	for (i = 0; i < n; i++) {
		unsigned how = (unsigned)rng_below(&e->rng, 10);
		uint64_t k = rng_below(&e->rng, e->wl.n + 1);
		if (how < 4) {
			uint64_t j = k;
			while (j < e->wl.n && !e->wl.r[j].ctid)
				j++;
			if (j < e->wl.n)
				k = j + 1 - RFS_MIN(j + 1, rng_below(&e->rng, 4));
		} else if (how < 6 && e->ncommits) {
			k = e->commits[rng_below(&e->rng, e->ncommits)].rec + rng_below(&e->rng, 3);
		}
		c[i].k = RFS_MIN(k, (uint64_t)e->wl.n);
		c[i].drop = rng_below(&e->rng, 2) ? rng_next(&e->rng) | 1 : 0;
	}
	qsort(c, n, sizeof(*c), cut_cmp);
	return c;
}

static const struct env_opts random_opts[] = {
	/* 1 KiB blocks, a 128-block log, a roomy cache */
	{.block_log = 10,
	 .size = 8 * MiB,
	 .jbytes = 128 * KiB,
	 .cache = CACHE_BYTES,
	 .credits = 16},
	/* 4 KiB blocks, a 64-block log, a 16-block cache: committed blocks go
	 * home early by eviction */
	{.block_log = 12, .size = 16 * MiB, .jbytes = 256 * KiB, .cache = 64 * KiB, .credits = 12},
};

START_TEST(test_random_crashes)
{
	static const char *const names[] = {"test_random_crashes(1k)", "test_random_crashes(4k)"};
	unsigned t, ntx = (unsigned)test_scale(1500);
	size_t ncuts = (size_t)test_scale(400), i;
	struct rfs_journal_stats st;
	struct timespec t1;
	struct cut *cuts;
	struct vres v;
	struct env e;

	env_init(&e, names[_i], 0x6006 + (uint64_t)_i, &random_opts[_i]);
	e.max_live = 250;
	populate(&e, 40);
	env_start_log(&e, 0);
	for (t = 0; t < ntx; t++)
		random_txn(&e);
	journal_get_stats(e.fs, &st);
	ck_assert_uint_ge(st.commits, ntx);
	ck_assert_uint_gt(st.forced_by_space, 0);
	ck_assert_uint_gt(st.revokes_logged, 0);
	ck_assert_uint_eq(st.unhandled_dirties, 0);
	env_load_log(&e);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("%s: workload %.1f s, %zu write log records\n", names[_i],
	       (double)(t1.tv_sec - e.t0.tv_sec) + (double)(t1.tv_nsec - e.t0.tv_nsec) / 1e9,
	       e.wl.n);
	cuts = random_cuts(&e, ncuts);
	for (i = 0; i < ncuts; i++)
		verify_cut(&e, cuts[i].k, cuts[i].drop, &v);
	JCHECK(e.replayed > ncuts / 4 && e.revoked > 0 && e.wrapped > 0,
	       "too few interesting crashes: %" PRIu64 " replayed, %" PRIu64 " revoked, %" PRIu64
	       " wrapped",
	       e.replayed, e.revoked, e.wrapped);
	free(cuts);
	env_check_live(&e);
	env_reopen(&e);
	env_check_live(&e);
	env_done(&e);
}
END_TEST

/* --- I/O errors ------------------------------------------------------------------------------ */

static const struct rfs_dev_ops *real_ops;
static struct rfs_dev_ops gated_ops;
static int fail_writes;
static uint64_t writes_seen;

static pthread_mutex_t gate_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cond = PTHREAD_COND_INITIALIZER;
static int gate_armed, gate_hit, gate_open;

/* Writes fail while fail_writes is set; once the gate is armed, the next
 * write waits until the gate opens, then fails. */
static int gated_pwrite(struct rfs_dev *dev, const void *buf, size_t len, uint64_t off)
{
	int armed;

	pthread_mutex_lock(&gate_lock);
	writes_seen++;
	armed = gate_armed;
	if (armed) {
		gate_hit = 1;
		pthread_cond_broadcast(&gate_cond);
		while (!gate_open)
			pthread_cond_wait(&gate_cond, &gate_lock);
	}
	pthread_mutex_unlock(&gate_lock);
	return armed || fail_writes ? -EIO : real_ops->pwrite(dev, buf, len, off);
}

static void gate_install(struct env *e)
{
	real_ops = e->fs->dev->ops;
	gated_ops = *real_ops;
	gated_ops.pwrite = gated_pwrite;
	e->fs->dev->ops = &gated_ops;
	gate_armed = gate_hit = gate_open = fail_writes = 0;
}

static void *commit_main(void *arg)
{
	struct env *e = arg;
	return (void *)(intptr_t)journal_commit(e->fs);
}

/* A failed commit makes the journal refuse handles, and nothing of the
 * failed transaction ever reaches its home location: not at close, not
 * by cache eviction. */
START_TEST(test_io_error_makes_readonly)
{
	struct env_opts o = random_opts[1];
	struct rfs_handle *h;
	struct vres v;
	struct env e;
	uint8_t *img;
	size_t i;
	int ret;

	env_init(&e, "test_io_error_makes_readonly", 0x7007, &o);
	e.write_data = 0;
	e.max_live = 5000;
	populate(&e, 800); /* more leaves than the cache holds */
	for (i = 0; i < 30; i++)
		op_update(&e, pick_live(&e));
	env_start_log(&e, 0);
	gate_install(&e);

	ck_assert_int_eq(txn_start(e.fs, 40, &h), 0);
	for (i = 0; i < 30; i++)
		op_update(&e, pick_live(&e)); /* dirties leaves all over the tree */
	fail_writes = 1;
	ck_assert_int_eq(txn_stop(h), 0);
	ret = journal_commit(e.fs);
	ck_assert_int_eq(ret, -EIO);
	ck_assert_int_eq(journal_error(e.fs), -EIO);
	ck_assert_int_eq(txn_start(e.fs, 4, &h), -EROFS);
	ck_assert_uint_ge(log_errors, 1);
	log_errors = 0;

	/* Reads through a 16-block cache evict the failed transaction's
	 * dirty buffers: they must not be written home. */
	fail_writes = 0;
	writes_seen = 0;
	for (i = 0; i < e.nlive; i++) {
		struct rfs_inode in;
		ck_assert_int_eq(inode_read(e.fs, e.livev[i], &in), 0);
	}
	ck_assert_uint_gt(e.fs->cache->stats.evictions, 0);
	ck_assert_int_lt(fs_close(e.fs), 0); /* -EROFS: it cannot sync */
	e.fs = NULL;
	ck_assert_msg(writes_seen == 0, "%" PRIu64 " writes after the journal failed", writes_seen);

	/* The image holds the last committed state. */
	img = read_file(e.path, &e.size);
	e.fs = open_path(e.path, RFS_FS_RDONLY, CACHE_BYTES); /* for the geometry */
	snprintf(fail_ctx, sizeof(fail_ctx), "%s: the image after the failure", e.name);
	verify_image(&e, img, NONE, 0, &v);
	ck_assert_uint_eq(v.h, 0);
	free(img);
	env_done(&e);
}
END_TEST

/* A commit fails while handles of the next transaction run (they free
 * tree nodes): the journal is read-only, closing it leaks nothing (the
 * sanitizer build checks), and the image holds the state before both. */
START_TEST(test_io_error_with_handles_running)
{
	struct env_opts o = small_1k;
	struct rfs_handle *h;
	pthread_t th;
	void *res;
	struct vres v;
	struct env e;
	uint8_t *img;
	size_t i;

	o.jbytes = 1 * MiB;
	env_init(&e, "test_io_error_with_handles_running", 0x7008, &o);
	e.write_data = 0;
	e.max_live = 5000;
	populate(&e, 300);
	env_start_log(&e, 0);
	gate_install(&e);
	for (i = 0; i < 5; i++)
		op_update(&e, pick_live(&e));
	pthread_mutex_lock(&gate_lock);
	gate_armed = 1;
	pthread_mutex_unlock(&gate_lock);
	ck_assert_int_eq(pthread_create(&th, NULL, commit_main, &e), 0);
	pthread_mutex_lock(&gate_lock);
	while (!gate_hit)
		pthread_cond_wait(&gate_cond, &gate_lock);
	pthread_mutex_unlock(&gate_lock);

	/* The commit is writing: the next transaction runs meanwhile. */
	for (i = 0; i < 60; i++)
		op_delete(&e, pick_live(&e));
	pthread_mutex_lock(&gate_lock);
	gate_open = 1;
	pthread_cond_broadcast(&gate_cond);
	pthread_mutex_unlock(&gate_lock);
	ck_assert_int_eq(pthread_join(th, &res), 0);
	ck_assert_int_eq((int)(intptr_t)res, -EIO);
	ck_assert_int_eq(journal_error(e.fs), -EIO);
	ck_assert_int_eq(txn_start(e.fs, 4, &h), -EROFS);
	ck_assert_int_eq(journal_commit(e.fs), -EIO);
	log_errors = 0;
	ck_assert_int_lt(fs_close(e.fs), 0);
	e.fs = NULL;

	img = read_file(e.path, &e.size);
	e.fs = open_path(e.path, RFS_FS_RDONLY, CACHE_BYTES);
	snprintf(fail_ctx, sizeof(fail_ctx), "%s: the image after the failure", e.name);
	verify_image(&e, img, NONE, 0, &v);
	ck_assert_uint_eq(v.h, 0);
	free(img);
	env_done(&e);
}
END_TEST

/* --- handles --------------------------------------------------------------------------------- */

/* Many handles that dirty the same few blocks share one transaction: a
 * handle's credits are a reservation while it is open, not a charge that
 * stays with the transaction. */
START_TEST(test_group_commit_shares_transaction)
{
	struct env_opts o = small_1k;
	struct rfs_journal_stats a, b;
	struct env e;
	rfs_ino_t ino;
	unsigned i;

	o.jbytes = 1 * MiB; /* max_txn: a quarter of the ring, 255 blocks */
	o.credits = 24;
	env_init(&e, "test_group_commit_shares_transaction", 0x3003, &o);
	populate(&e, 10);
	ino = pick_live(&e);
	journal_get_stats(e.fs, &a);
	for (i = 0; i < 200; i++)
		op_update(&e, ino);
	env_commit(&e);
	journal_get_stats(e.fs, &b);
	JCHECK(b.forced_by_size == a.forced_by_size && b.forced_by_space == a.forced_by_space,
	       "200 handles dirtying one leaf forced %" PRIu64 " commits by size, %" PRIu64
	       " by space",
	       b.forced_by_size - a.forced_by_size, b.forced_by_space - a.forced_by_space);
	ck_assert_uint_eq(b.commits, a.commits + 1);
	ck_assert_uint_eq(e.ops[e.nops - 1].tid, e.ops[e.nops - 200].tid);
	env_check_live(&e);
	env_done(&e);
}
END_TEST

/* Nested handles share the outer one; the outer stop ends it. */
START_TEST(test_nested_handles)
{
	struct rfs_handle *h1, *h2;
	struct rfs_journal_stats a, b;
	struct env e;
	uint64_t r0;

	env_init(&e, "test_nested_handles", 0x3004, &small_1k);
	populate(&e, 4);
	ck_assert_int_eq(txn_start(e.fs, 8, &h1), 0);
	ck_assert_int_eq(txn_start(e.fs, 8, &h2), 0);
	ck_assert_ptr_eq(h1, h2);
	ck_assert_uint_eq(txn_tid(h1), txn_tid(h2));
	op_update(&e, pick_live(&e)); /* a third level */
	ck_assert_int_eq(txn_stop(h2), 0);
	ck_assert_int_eq(txn_stop(h1), 0);
	/* Nothing to commit: no I/O at all. */
	env_commit(&e);
	journal_get_stats(e.fs, &a);
	r0 = e.fs->dev->nr_writes + e.fs->dev->nr_flushes;
	ck_assert_int_eq(journal_commit(e.fs), 0);
	ck_assert_int_eq(journal_commit_tid(e.fs, e.ops[e.nops - 1].tid), 0);
	ck_assert_uint_eq(e.fs->dev->nr_writes + e.fs->dev->nr_flushes, r0);
	journal_get_stats(e.fs, &b);
	ck_assert_uint_eq(a.commits, b.commits);
	ck_assert_uint_eq(journal_tags_per_desc(1024), (1024 - 48) / 16);
	ck_assert_uint_eq(journal_revokes_per_block(4096), (4096 - 48) / 8);
	env_check_live(&e);
	env_done(&e);
}
END_TEST

/* --- 7. group commit and threads ------------------------------------------------------------- */

struct conc {
	struct rfs_fs *fs;
	pthread_mutex_t *tree; /* the B+tree engine does no locking */
	uint32_t id;
	unsigned n, commits;
	rfs_ino_t *inos;
	int *stop;
	int err;
};

/* Creates N inodes, one handle each, and every 16th waits for its
 * transaction to be durable (fsync). */
static void *inserter_main(void *arg)
{
	struct conc *c = arg;
	unsigned i;

	for (i = 0; i < c->n && !c->err; i++) {
		struct rfs_handle *h;
		struct rfs_inode in;
		rfs_tid_t tid;
		int ret = txn_start(c->fs, 16, &h), r;

		if (ret) {
			c->err = ret;
			break;
		}
		pthread_mutex_lock(c->tree);
		inode_init_new(c->fs, &in, S_IFREG | 0644, c->id, i);
		in.size = i;
		ret = inode_insert(c->fs, &in);
		pthread_mutex_unlock(c->tree);
		tid = txn_tid(h);
		r = txn_stop(h);
		c->inos[i] = in.ino;
		if (!ret)
			ret = r;
		if (!ret && i % 16 == 0)
			ret = journal_commit_tid(c->fs, tid);
		c->err = ret;
	}
	return NULL;
}

static void *committer_main(void *arg)
{
	struct conc *c = arg;

	while (!__atomic_load_n(c->stop, __ATOMIC_ACQUIRE) && !c->err) {
		c->err = journal_commit(c->fs);
		c->commits++;
	}
	return NULL;
}

static void join_by(pthread_t t, time_t deadline)
{
	struct timespec ts = {deadline, 0};
	int ret = pthread_timedjoin_np(t, NULL, &ts);

	ck_assert_msg(ret == 0, "a thread is still running after the deadline: deadlock? (%d)",
		      ret);
}

static void check_conc(struct rfs_fs *fs, const struct conc *c, unsigned n)
{
	uint64_t total = 0;
	unsigned t, i;

	for (t = 0; t < n; t++) {
		for (i = 0; i < c[t].n; i++) {
			struct rfs_inode in;
			int ret = inode_read(fs, c[t].inos[i], &in);
			ck_assert_msg(ret == 0, "thread %u inode %u (%" PRIu64 ") lost: %d", t, i,
				      c[t].inos[i], ret);
			ck_assert_uint_eq(in.uid, c[t].id);
			ck_assert_uint_eq(in.gid, i);
			ck_assert_uint_eq(in.size, i);
		}
		total += c[t].n;
	}
	ck_assert_uint_eq(fs->sb.inode_count, total + 2);
	check_space(fs, NULL, 0);
}

START_TEST(test_group_commit_threads)
{
	enum { NINS = 4, NCOM = 3 };
	unsigned per = (unsigned)test_scale(500), t;
	pthread_mutex_t tree = PTHREAD_MUTEX_INITIALIZER;
	struct conc c[NINS + NCOM];
	pthread_t th[NINS + NCOM];
	struct rfs_journal_stats st;
	struct rfs_fs *fs;
	int stop = 0;
	time_t t0 = time(NULL), deadline = t0 + 300;
	char path[256];
	uint8_t *img;

	log_setup();
	snprintf(fail_ctx, sizeof(fail_ctx), "test_group_commit_threads");
	tmp_file(path, sizeof(path), "img");
	make_image(path, 12, 32 * MiB, 256 * KiB);
	fs = open_path(path, 0, CACHE_BYTES);
	ck_assert_int_eq(journal_start_timer(fs, 1), 0);
	memset(c, 0, sizeof(c));
	for (t = 0; t < NINS + NCOM; t++) {
		c[t].fs = fs;
		c[t].tree = &tree;
		c[t].id = 1000 + t;
		c[t].stop = &stop;
		c[t].n = t < NINS ? per : 0;
		c[t].inos = calloc(per, sizeof(*c[t].inos));
		ck_assert_ptr_nonnull(c[t].inos);
		ck_assert_int_eq(pthread_create(&th[t], NULL,
						t < NINS ? inserter_main : committer_main, &c[t]),
				 0);
	}
	for (t = 0; t < NINS; t++)
		join_by(th[t], deadline);
	__atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
	for (t = NINS; t < NINS + NCOM; t++)
		join_by(th[t], deadline);
	for (t = 0; t < NINS + NCOM; t++)
		ck_assert_msg(c[t].err == 0, "thread %u: %d", t, c[t].err);
	ck_assert_int_eq(journal_error(fs), 0);
	journal_get_stats(fs, &st);
	printf("test_group_commit_threads: ~%ld s, %u inodes by %u threads, %u+%u+%u commit "
	       "calls; journal: %" PRIu64 " commits, %" PRIu64 " checkpoints (%" PRIu64
	       " for space)\n",
	       (long)(time(NULL) - t0), NINS * per, NINS, c[NINS].commits, c[NINS + 1].commits,
	       c[NINS + 2].commits, st.commits, st.checkpoints, st.forced_by_space);
	ck_assert_uint_gt(st.commits, 1);
	/* Every transaction committed holds at least one handle's changes (one
	 * per inode, one for the mount): concurrent committers never commit an
	 * empty transaction, nor one twice. */
	ck_assert_msg(st.commits <= NINS * per + 1, "%" PRIu64 " commits for %u handles",
		      st.commits, NINS * per + 1);
	ck_assert_uint_le(st.blocks_logged + st.commits, st.log_blocks_written);
	ck_assert_uint_gt(st.checkpoints, 0);

	/* Everything was committed: a crash now loses nothing. */
	ck_assert_int_eq(journal_commit(fs), 0);
	img = dev_snapshot(fs->dev);
	check_conc(fs, c, NINS);
	ck_assert_int_eq(fs_close(fs), 0);
	fs = open_dev(mem_dev_from(img, 32 * MiB), RFS_FS_RDONLY, CACHE_BYTES);
	check_conc(fs, c, NINS);
	ck_assert_int_eq(fs_close(fs), 0);
	fs = open_path(path, 0, CACHE_BYTES);
	ck_assert_int_eq(fs->recovery.needed, 0);
	check_conc(fs, c, NINS);
	ck_assert_int_eq(fs_close(fs), 0);
	for (t = 0; t < NINS + NCOM; t++)
		free(c[t].inos);
	free(img);
	unlink(path);
	ck_assert_uint_eq(log_errors, 0);
}
END_TEST

/* --- 8. clean close -------------------------------------------------------------------------- */

START_TEST(test_clean_close_empty_log)
{
	struct rfs_recovery_info info;
	struct rfs_journal_sb jsb;
	struct rfs_sb_info sb;
	struct rfs_dev *dev;
	struct env e;
	uint8_t *img;
	uint64_t size;
	char why[256];
	unsigned i;

	env_init(&e, "test_clean_close_empty_log", 0x8008, &small_1k);
	populate(&e, 20);
	for (i = 0; i < 20; i++)
		random_op(&e);
	env_commit(&e);
	img = dev_snapshot(e.fs->dev);
	ljsb(img, &e.fs->sb, &jsb);
	ck_assert_uint_ne(le32_get(jsb.start), 0); /* mounted: the log is live */
	free(img);

	ck_assert_int_eq(fs_close(e.fs), 0);
	e.fs = NULL;
	img = read_file(e.path, &size);
	dev = mem_dev_from(img, size);
	ck_assert_int_eq(sb_read_primary(dev, &sb, why, sizeof(why)), 0);
	ck_assert_uint_ne(sb.state & RFS_STATE_CLEAN, 0);
	ljsb(img, &sb, &jsb);
	ck_assert_uint_eq(le32_get(jsb.start), 0);
	ck_assert_uint_gt(le64_get(jsb.sequence), ring_max_tid(img, &sb));
	ck_assert_uint_gt(le64_get(jsb.sequence), sb.last_tid);
	ck_assert_int_eq(journal_recover(dev, &sb, &info), 0);
	ck_assert_int_eq(info.needed, 0);
	ck_assert_uint_eq(info.transactions, 0);
	ck_assert_mem_eq(dev->mem, img, size); /* nothing written */
	dev_close(dev);
	free(img);

	e.fs = open_path(e.path, 0, e.cache);
	ck_assert_int_eq(e.fs->recovery.needed, 0);
	env_check_live(&e);
	env_done(&e);
}
END_TEST

/* An operation that changed metadata and then met corruption aborts the
 * journal: its half-done transaction never commits (nor goes home), the
 * filesystem is read-only, and the error travels through the journal
 * superblock into the superblock at the next recovery, once. */
START_TEST(test_abort_half_done_update)
{
	struct rfs_recovery_info info;
	struct rfs_journal_sb jsb;
	struct rfs_inode in;
	struct rfs_handle *h;
	struct rfs_sb_info sb;
	struct rfs_dev *dev;
	struct env e;
	uint8_t *img;
	uint64_t size;
	char why[256];
	unsigned i;

	env_init(&e, "test_abort_half_done_update", 0x8118, &small_1k);
	populate(&e, 40);
	for (i = 0; i < 20; i++)
		random_op(&e);
	env_commit(&e); /* committed, not checkpointed: the log is live */

	ck_assert_int_eq(txn_start(e.fs, 8, &h), 0);
	ck_assert_uint_eq(txn_changed(h), 0);
	inode_init_new(e.fs, &in, S_IFREG | 0644, 0, 0);
	ck_assert_int_eq(inode_insert(e.fs, &in), 0);
	ck_assert_uint_gt(txn_changed(h), 0);
	txn_abort(h, -EUCLEAN);
	ck_assert_int_eq(txn_stop(h), -EUCLEAN);
	ck_assert_uint_ge(log_errors, 1);
	log_errors = 0;
	ck_assert_int_eq(journal_error(e.fs), -EUCLEAN);
	ck_assert_int_eq(txn_start(e.fs, 4, &h), -EROFS);
	ck_assert_int_lt(journal_commit(e.fs), 0);
	ck_assert_int_lt(fs_close(e.fs), 0);
	e.fs = NULL;

	/* The log holds the committed work and the error. */
	img = read_file(e.path, &size);
	dev = mem_dev_from(img, size);
	ck_assert_int_eq(sb_read_primary(dev, &sb, why, sizeof(why)), 0);
	ljsb(img, &sb, &jsb);
	ck_assert_uint_ne(le32_get(jsb.start), 0);
	ck_assert_uint_eq(le32_get(jsb.errno_), EUCLEAN);
	ck_assert_uint_eq(sb.err_count, 0);
	ck_assert_int_eq(journal_recover(dev, &sb, &info), 0);
	ck_assert_int_eq(info.needed, 1);
	ck_assert_uint_eq(info.recorded_errno, EUCLEAN);
	ck_assert_int_eq(sb_read_primary(dev, &sb, why, sizeof(why)), 0);
	ck_assert_uint_eq(sb.err_count, 1);
	ck_assert_uint_eq(sb.err_first_code, EUCLEAN);
	ck_assert_uint_ne(sb.state & RFS_STATE_ERROR, 0);
	ljsb(dev->mem, &sb, &jsb);
	ck_assert_uint_eq(le32_get(jsb.errno_), 0);
	ck_assert_uint_eq(le32_get(jsb.start), 0);
	dev_close(dev);
	free(img);

	/* The same through a mount: committed work there, the aborted inode
	 * not, the error recorded once and kept across a clean close. */
	e.fs = open_path(e.path, 0, e.cache);
	ck_assert_uint_eq(e.fs->sb.err_count, 1);
	ck_assert_int_eq(inode_read(e.fs, in.ino, &in), -ENOENT);
	env_check_live(&e);
	ck_assert_int_eq(fs_close(e.fs), 0);
	e.fs = open_path(e.path, 0, e.cache);
	ck_assert_uint_eq(e.fs->sb.err_count, 1);
	ck_assert_uint_ne(e.fs->sb.state & RFS_STATE_ERROR, 0);
	env_done(&e);
}
END_TEST

/* --- runner ---------------------------------------------------------------------------------- */

static Suite *journal_suite(void)
{
	Suite *s = suite_create("journal");
	TCase *tc = tcase_create("journal");

	tcase_set_timeout(tc, 1200);
	tcase_add_test(tc, test_commit_replay_roundtrip);
	tcase_add_test(tc, test_torn_commit);
	tcase_add_test(tc, test_revoke_and_ring_wrap);
	tcase_add_test(tc, test_replay_idempotent);
	tcase_add_test(tc, test_corrupt_log);
	tcase_add_test(tc, test_stale_txn_after_corrupt_recovery);
	tcase_add_loop_test(tc, test_random_crashes, 0, 2);
	tcase_add_test(tc, test_io_error_makes_readonly);
	tcase_add_test(tc, test_io_error_with_handles_running);
	tcase_add_test(tc, test_group_commit_shares_transaction);
	tcase_add_test(tc, test_nested_handles);
	tcase_add_test(tc, test_group_commit_threads);
	tcase_add_test(tc, test_clean_close_empty_log);
	tcase_add_test(tc, test_abort_half_done_update);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_run_in_tmpdir(journal_suite(), tmpdir);
}
