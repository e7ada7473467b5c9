/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * rfsx - a randomized file exerciser in the manner of xfstests' fsx: random
 * reads, writes, truncates, fallocates, copy_file_range, dedupes, mmap
 * reads and writes, syncs, reopens and cache drops on a few files of a
 * mounted filesystem, every read checked against an in-memory model.
 *
 *   rfsx [options] DIR            run on DIR/rfsx.0 .. DIR/rfsx.N-1
 *   rfsx -r LOG [options] DIR     replay the ops of LOG exactly
 *
 * Options (defaults): -S seed (1), -N ops (10000), -l max file size (1M),
 * -m max op length (64K), -n files (4), -x kinds to leave out (comma list
 * of op names), -c whole-file check every N ops (500), -L ops shown on a
 * failure (40), -o op log (rfsx.log), -q quiet.
 *
 * Every op goes to the op log (-o, default rfsx.log) before it runs, one a
 * line, "N NAME F OFF LEN G OFF2 ARG # description"; the data of a write
 * is a function of N and the file offset, so a log replays byte for byte.
 * On a mismatch or an unexpected error it prints the last -L ops (those
 * that touched the bad offset marked '*') and the first differing bytes,
 * and exits 1. Exit 0 when every op ran and checked, 2 on a usage error.
 *
 * What is checked: the bytes of every read and mmap read; st_size and
 * the whole contents every -c ops and at the end; copy_file_range's count;
 * the dedupe's status and byte count (the ranges' equality as the model
 * sees it); SEEK_DATA/SEEK_HOLE only where Linux guarantees an answer: no
 * hole may cover a byte the model says is not zero, and beyond the end
 * there is no data (a filesystem may report zeros as data).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rfs_ioctl.h"
#include "rng.h"

enum op_kind {
	OP_READ,
	OP_WRITE,
	OP_MREAD,
	OP_MWRITE,
	OP_TRUNC,
	OP_FALLOC,
	OP_CFR,
	OP_DEDUPE,
	OP_FSYNC,
	OP_FDATASYNC,
	OP_REOPEN,
	OP_DROP,
	OP_SEEK,
	OP_CHECK,
	OP_NKINDS
};

static const char *const op_names[OP_NKINDS] = {
	"read",	  "write", "mread",	"mwrite", "trunc", "falloc", "cfr",
	"dedupe", "fsync", "fdatasync", "reopen", "drop",  "seek",   "check",
};

/* How often each kind is picked (check runs every -c ops instead). */
static const unsigned op_weights[OP_NKINDS] = {
	[OP_READ] = 20,	  [OP_WRITE] = 20, [OP_MREAD] = 6,  [OP_MWRITE] = 6, [OP_TRUNC] = 6,
	[OP_FALLOC] = 10, [OP_CFR] = 10,   [OP_DEDUPE] = 5, [OP_FSYNC] = 2,  [OP_FDATASYNC] = 2,
	[OP_REOPEN] = 3,  [OP_DROP] = 2,   [OP_SEEK] = 5,   [OP_CHECK] = 0,
};

static const int falloc_modes[] = {
	0,
	FALLOC_FL_KEEP_SIZE,
	FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
	FALLOC_FL_ZERO_RANGE,
	FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE,
};
static const char *const falloc_names[] = {"default", "keep_size", "punch_hole", "zero_range",
					   "zero_range|keep_size"};
#define NFALLOC ((int)(sizeof(falloc_modes) / sizeof(falloc_modes[0])))

struct op {
	uint64_t n;
	enum op_kind kind;
	int f, g;      /* file; second file (cfr: destination, dedupe: destination) */
	uint64_t off;  /* offset in f (trunc: the new size) */
	uint64_t len;  /* length */
	uint64_t off2; /* offset in g */
	int arg;       /* falloc: mode index; mwrite: msync; dedupe: make equal first;
			* drop: 1 for /proc/sys/vm/drop_caches */
};

struct rfile {
	char *path;
	int fd;
	uint8_t *model;
	uint64_t size;
};

static struct {
	uint64_t seed, nops, maxlen, maxop, check_every;
	int nfiles, ring_len, quiet, disabled[OP_NKINDS];
	const char *dir, *log_path, *replay_path;
	struct rfile *files;
	FILE *log;
	struct op *ring;
	uint64_t done, counts[OP_NKINDS];
	uint32_t bs;
	long page;
	uint8_t *buf;
	uint64_t rng;
} g;

/* --- random numbers (xorshift64*, seeded) --------------------------------------- */

static uint64_t rnd(void)
{
	return rng_xorshift(&g.rng);
}

static uint64_t below(uint64_t n)
{
	return n ? rnd() % n : 0;
}

/* The byte op N writes at file offset OFF: never zero, different for
 * neighbouring offsets and ops (a shifted or stale block shows). */
static uint8_t pattern(uint64_t n, uint64_t off)
{
	return (uint8_t)(1 + (n * 251 + off) % 255);
}

/* --- the op log -------------------------------------------------------------------- */

static void describe(const struct op *o, char *s, size_t n)
{
	switch (o->kind) {
	case OP_READ:
	case OP_MREAD:
	case OP_WRITE:
		snprintf(s, n, "f%d [0x%" PRIx64 ", 0x%" PRIx64 ") len 0x%" PRIx64, o->f, o->off,
			 o->off + o->len, o->len);
		break;
	case OP_MWRITE:
		snprintf(s, n, "f%d [0x%" PRIx64 ", 0x%" PRIx64 ") len 0x%" PRIx64 "%s", o->f,
			 o->off, o->off + o->len, o->len, o->arg ? " msync" : " no msync");
		break;
	case OP_TRUNC:
		snprintf(s, n, "f%d to 0x%" PRIx64, o->f, o->off);
		break;
	case OP_FALLOC:
		snprintf(s, n, "f%d %s [0x%" PRIx64 ", 0x%" PRIx64 ")", o->f, falloc_names[o->arg],
			 o->off, o->off + o->len);
		break;
	case OP_CFR:
		snprintf(s, n,
			 "f%d [0x%" PRIx64 ", 0x%" PRIx64 ") -> f%d [0x%" PRIx64 ", 0x%" PRIx64 ")",
			 o->f, o->off, o->off + o->len, o->g, o->off2, o->off2 + o->len);
		break;
	case OP_DEDUPE:
		snprintf(s, n, "f%d 0x%" PRIx64 " -> f%d 0x%" PRIx64 " len 0x%" PRIx64 "%s", o->f,
			 o->off, o->g, o->off2, o->len, o->arg ? " (made equal first)" : "");
		break;
	case OP_SEEK:
		snprintf(s, n, "f%d SEEK_DATA/SEEK_HOLE from 0x%" PRIx64, o->f, o->off);
		break;
	case OP_DROP:
		snprintf(s, n, "%s", o->arg ? "drop_caches" : "fadvise DONTNEED");
		break;
	case OP_CHECK:
		snprintf(s, n, "all files");
		break;
	default:
		snprintf(s, n, "f%d", o->f);
	}
}

static void log_op(const struct op *o)
{
	char d[160];

	g.ring[o->n % (uint64_t)g.ring_len] = *o;
	if (!g.log)
		return;
	describe(o, d, sizeof(d));
	fprintf(g.log, "%" PRIu64 " %s %d %" PRIu64 " %" PRIu64 " %d %" PRIu64 " %d # %s\n", o->n,
		op_names[o->kind], o->f, o->off, o->len, o->g, o->off2, o->arg, d);
}

/* Does O change or read file F's byte at OFF? */
static int touches(const struct op *o, int f, uint64_t off)
{
	switch (o->kind) {
	case OP_TRUNC:
		return o->f == f;
	case OP_CFR:
	case OP_DEDUPE:
		if (o->g == f && off >= o->off2 && off < o->off2 + o->len)
			return 1;
		/* fall through */
	case OP_READ:
	case OP_WRITE:
	case OP_MREAD:
	case OP_MWRITE:
	case OP_FALLOC:
		return o->f == f && off >= o->off && off < o->off + o->len;
	default:
		return 0;
	}
}

/* Prints the last ops (those touching F's OFF starred, when F >= 0). */
static void dump_ring(int f, uint64_t off)
{
	uint64_t first = g.done + 1 > (uint64_t)g.ring_len ? g.done + 1 - (uint64_t)g.ring_len : 0;
	uint64_t i;
	char d[160];

	fprintf(stderr, "last %" PRIu64 " ops:\n", g.done + 1 - first);
	for (i = first; i <= g.done; i++) {
		const struct op *o = &g.ring[i % (uint64_t)g.ring_len];
		describe(o, d, sizeof(d));
		fprintf(stderr, "%c %8" PRIu64 " %-9s %s\n",
			f >= 0 && touches(o, f, off) ? '*' : ' ', o->n, op_names[o->kind], d);
	}
}

static void finish_log(void)
{
	if (g.log && g.log != stdout) {
		fflush(g.log);
		fsync(fileno(g.log));
	}
}

/* Reports a failure of the current op (F's byte at OFF, if F >= 0) and exits. */
static void __attribute__((format(printf, 3, 4), noreturn))
fail(int f, uint64_t off, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "rfsx: FAILED at op %" PRIu64 " (seed %" PRIu64 "): ", g.done, g.seed);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	dump_ring(f, off);
	finish_log();
	if (g.log_path)
		fprintf(stderr, "full op log: %s (replay: rfsx -r %s ... DIR)\n", g.log_path,
			g.log_path);
	exit(1);
}

/* --- files and checks ------------------------------------------------------------ */

static void open_file(int f, int flags)
{
	struct rfile *r = &g.files[f];

	r->fd = open(r->path, O_RDWR | flags, 0644);
	if (r->fd < 0)
		fail(-1, 0, "open %s: %s", r->path, strerror(errno));
}

static void close_file(int f)
{
	if (close(g.files[f].fd))
		fail(-1, 0, "close %s: %s", g.files[f].path, strerror(errno));
	g.files[f].fd = -1;
}

/* Compares GOT (LEN bytes read from F at OFF) with the model. */
static void compare(int f, const uint8_t *got, uint64_t off, uint64_t len, const char *what)
{
	const uint8_t *want = g.files[f].model + off;
	uint64_t i, j, bad = 0;

	if (!memcmp(got, want, len))
		return;
	while (got[bad] == want[bad])
		bad++;
	for (i = bad; i < len && got[i] != want[i]; i++)
		;
	fprintf(stderr, "%s of f%d: %" PRIu64 " bytes differ from 0x%" PRIx64 " on\n", what, f,
		i - bad, off + bad);
	fprintf(stderr, "  offset      want got\n");
	for (j = bad; j < len && j < bad + 16; j++)
		fprintf(stderr, "  0x%08" PRIx64 "  %02x   %02x%s\n", off + j, want[j], got[j],
			got[j] != want[j] ? "  <-" : "");
	fail(f, off + bad, "%s of f%d [0x%" PRIx64 ", 0x%" PRIx64 "): wrong data at 0x%" PRIx64,
	     what, f, off, off + len, off + bad);
}

static void read_exact(int f, uint8_t *buf, uint64_t off, uint64_t len, const char *what)
{
	uint64_t got = 0;

	while (got < len) {
		ssize_t n = pread(g.files[f].fd, buf + got, len - got, (off_t)(off + got));
		if (n < 0)
			fail(f, off + got, "%s: pread f%d at 0x%" PRIx64 ": %s", what, f, off + got,
			     strerror(errno));
		if (n == 0)
			fail(f, off + got, "%s: f%d ends at 0x%" PRIx64 ", the model at 0x%" PRIx64,
			     what, f, off + got, g.files[f].size);
		got += (uint64_t)n;
	}
}

static void check_size(int f)
{
	struct stat st;

	if (fstat(g.files[f].fd, &st))
		fail(f, 0, "fstat f%d: %s", f, strerror(errno));
	if ((uint64_t)st.st_size != g.files[f].size)
		fail(f, g.files[f].size, "f%d: st_size 0x%" PRIx64 ", the model 0x%" PRIx64, f,
		     (uint64_t)st.st_size, g.files[f].size);
}

/* The whole file: size, contents, nothing past the end. */
static void check_file(int f)
{
	uint64_t size = g.files[f].size, off;
	ssize_t n;

	check_size(f);
	for (off = 0; off < size; off += g.maxop) {
		uint64_t len = size - off < g.maxop ? size - off : g.maxop;
		read_exact(f, g.buf, off, len, "check");
		compare(f, g.buf, off, len, "check");
	}
	n = pread(g.files[f].fd, g.buf, 1, (off_t)size);
	if (n != 0)
		fail(f, size, "f%d: read at the end (0x%" PRIx64 ") returned %zd", f, size, n);
}

static int model_zero(int f, uint64_t a, uint64_t b)
{
	const uint8_t *m = g.files[f].model;

	for (; a < b; a++)
		if (m[a])
			return 0;
	return 1;
}

/* --- the ops ------------------------------------------------------------------------- */

static void set_size(int f, uint64_t size)
{
	struct rfile *r = &g.files[f];

	if (size < r->size)
		memset(r->model + size, 0, r->size - size);
	r->size = size;
}

static void do_read(const struct op *o)
{
	struct rfile *r = &g.files[o->f];
	uint64_t want = o->off >= r->size ? 0 : r->size - o->off;
	ssize_t n;

	if (want > o->len)
		want = o->len;
	n = pread(r->fd, g.buf, o->len, (off_t)o->off);
	if (n < 0)
		fail(o->f, o->off, "pread: %s", strerror(errno));
	if ((uint64_t)n != want)
		fail(o->f, o->off + (uint64_t)n,
		     "pread returned 0x%zx bytes, the model has 0x%" PRIx64, n, want);
	compare(o->f, g.buf, o->off, want, "read");
}

static void write_exact(int f, const uint8_t *buf, uint64_t off, uint64_t len)
{
	uint64_t done = 0;

	while (done < len) {
		ssize_t n = pwrite(g.files[f].fd, buf + done, len - done, (off_t)(off + done));
		if (n <= 0)
			fail(f, off + done, "pwrite f%d at 0x%" PRIx64 ": %s", f, off + done,
			     n < 0 ? strerror(errno) : "wrote nothing");
		done += (uint64_t)n;
	}
}

static void model_write(int f, const uint8_t *data, uint64_t off, uint64_t len)
{
	struct rfile *r = &g.files[f];

	if (!len)
		return;
	memcpy(r->model + off, data, len);
	if (off + len > r->size)
		r->size = off + len;
}

static void make_data(const struct op *o)
{
	uint64_t i;

	for (i = 0; i < o->len; i++)
		g.buf[i] = pattern(o->n, o->off + i);
}

static void do_write(const struct op *o)
{
	make_data(o);
	write_exact(o->f, g.buf, o->off, o->len);
	model_write(o->f, g.buf, o->off, o->len);
}

/* Maps F's pages that hold [OFF, OFF+LEN); *DELTA is OFF's place in them. */
static uint8_t *map_range(int f, uint64_t off, uint64_t len, int prot, uint64_t *map_len,
			  uint64_t *delta)
{
	uint64_t pg = off & ~(uint64_t)(g.page - 1);
	void *p;

	*delta = off - pg;
	*map_len = len + *delta;
	p = mmap(NULL, *map_len, prot, MAP_SHARED, g.files[f].fd, (off_t)pg);
	if (p == MAP_FAILED)
		fail(f, off, "mmap f%d [0x%" PRIx64 ", +0x%" PRIx64 "): %s", f, pg, *map_len,
		     strerror(errno));
	return p;
}

static void do_mread(const struct op *o)
{
	uint64_t map_len, delta;
	uint8_t *p;

	if (!o->len)
		return;
	p = map_range(o->f, o->off, o->len, PROT_READ, &map_len, &delta);
	memcpy(g.buf, p + delta, o->len);
	if (munmap(p, map_len))
		fail(o->f, o->off, "munmap: %s", strerror(errno));
	compare(o->f, g.buf, o->off, o->len, "mmap read");
}

static void do_mwrite(const struct op *o)
{
	struct rfile *r = &g.files[o->f];
	uint64_t map_len, delta;
	uint8_t *p;

	if (o->off + o->len > r->size) { /* a mapping cannot grow the file */
		if (ftruncate(r->fd, (off_t)(o->off + o->len)))
			fail(o->f, o->off, "ftruncate before mmap write: %s", strerror(errno));
		set_size(o->f, o->off + o->len);
	}
	make_data(o);
	p = map_range(o->f, o->off, o->len, PROT_READ | PROT_WRITE, &map_len, &delta);
	memcpy(p + delta, g.buf, o->len);
	if (o->arg && msync(p, map_len, MS_SYNC))
		fail(o->f, o->off, "msync: %s", strerror(errno));
	if (munmap(p, map_len))
		fail(o->f, o->off, "munmap: %s", strerror(errno));
	model_write(o->f, g.buf, o->off, o->len);
}

static void do_trunc(const struct op *o)
{
	if (ftruncate(g.files[o->f].fd, (off_t)o->off))
		fail(o->f, o->off, "ftruncate to 0x%" PRIx64 ": %s", o->off, strerror(errno));
	set_size(o->f, o->off);
}

static void do_falloc(const struct op *o)
{
	struct rfile *r = &g.files[o->f];
	int mode = falloc_modes[o->arg];
	uint64_t end = o->off + o->len;

	if (fallocate(r->fd, mode, (off_t)o->off, (off_t)o->len))
		fail(o->f, o->off, "fallocate %s [0x%" PRIx64 ", 0x%" PRIx64 "): %s",
		     falloc_names[o->arg], o->off, end, strerror(errno));
	if (mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE)) {
		uint64_t zend = end < r->size ? end : r->size;
		if (o->off < zend)
			memset(r->model + o->off, 0, zend - o->off);
	}
	if (!(mode & FALLOC_FL_KEEP_SIZE) && end > r->size)
		r->size = end; /* the bytes between are zeros already */
}

static int overlap(uint64_t a, uint64_t b, uint64_t len)
{
	return a < b + len && b < a + len;
}

static void do_cfr(const struct op *o)
{
	struct rfile *src = &g.files[o->f];
	uint64_t want = o->off >= src->size ? 0 : src->size - o->off;
	loff_t in = (loff_t)o->off, out = (loff_t)o->off2;
	ssize_t n;

	if (want > o->len)
		want = o->len;
	n = copy_file_range(src->fd, &in, g.files[o->g].fd, &out, o->len, 0);
	if (o->f == o->g && want && overlap(o->off, o->off2, want)) {
		if (n != -1 || errno != EINVAL)
			fail(o->g, o->off2,
			     "copy_file_range of overlapping ranges: %zd (%s), not EINVAL", n,
			     n < 0 ? strerror(errno) : "no error");
		return;
	}
	if (n < 0)
		fail(o->g, o->off2, "copy_file_range: %s", strerror(errno));
	if ((uint64_t)n > want || (want && !n))
		fail(o->g, o->off2, "copy_file_range copied 0x%zx bytes, the model has 0x%" PRIx64,
		     n, want);
	if (n) {
		memcpy(g.buf, src->model + o->off, (size_t)n);
		model_write(o->g, g.buf, o->off2, (uint64_t)n);
	}
}

/* What the dedupe of O should do: -errno, or 0 and *LEN, *EQUAL. */
static int dedupe_expect(const struct op *o, uint64_t *len, int *equal)
{
	struct rfile *s = &g.files[o->f], *d = &g.files[o->g];
	uint64_t l = o->len;

	if ((o->off | o->off2) % g.bs || o->off > s->size || o->off2 > d->size)
		return -EINVAL;
	if (l > s->size - o->off)
		l = s->size - o->off;
	if (o->off2 + l > d->size)
		return -EINVAL;
	if (o->f == o->g && overlap(o->off, o->off2, l))
		return -EINVAL;
	if (l % g.bs && !(o->off + l == s->size && o->off2 + l == d->size))
		l -= l % g.bs;
	*len = l;
	*equal = !memcmp(s->model + o->off, d->model + o->off2, l);
	return 0;
}

static void do_dedupe(const struct op *o)
{
	struct rfs_ioc_dedupe d = {0};
	uint64_t len = 0;
	struct stat st;
	int equal = 0, want, ret;

	if (o->arg) { /* make the destination's range equal to the source's */
		memcpy(g.buf, g.files[o->f].model + o->off, o->len);
		write_exact(o->g, g.buf, o->off2, o->len);
		model_write(o->g, g.buf, o->off2, o->len);
	}
	/* the daemon compares what it has: write back what the kernel caches */
	if (fsync(g.files[o->f].fd) || fsync(g.files[o->g].fd))
		fail(o->f, o->off, "fsync before dedupe: %s", strerror(errno));
	if (fstat(g.files[o->g].fd, &st))
		fail(o->g, 0, "fstat: %s", strerror(errno));
	d.dst_ino = st.st_ino;
	d.src_off = o->off;
	d.dst_off = o->off2;
	d.len = o->len;
	want = dedupe_expect(o, &len, &equal);
	ret = ioctl(g.files[o->f].fd, RFS_IOC_DEDUPE, &d) ? -errno : 0;
	if (ret != want)
		fail(o->g, o->off2, "dedupe: %s, the model expects %s", strerror(-ret),
		     strerror(-want));
	if (ret)
		return;
	if (equal && (d.status || d.bytes != len))
		fail(o->g, o->off2,
		     "dedupe of equal ranges: status %d, 0x%" PRIx64 " bytes, expected 0x%" PRIx64,
		     d.status, (uint64_t)d.bytes, len);
	if (!equal && (d.status != RFS_DEDUPE_DIFFERS || d.bytes))
		fail(o->g, o->off2, "dedupe of different ranges: status %d, 0x%" PRIx64 " bytes",
		     d.status, (uint64_t)d.bytes);
}

static void do_seek(const struct op *o)
{
	struct rfile *r = &g.files[o->f];
	off_t data = lseek(r->fd, (off_t)o->off, SEEK_DATA);
	int derr = errno;
	off_t hole = lseek(r->fd, (off_t)o->off, SEEK_HOLE);
	int herr = errno;

	if (o->off >= r->size) {
		if (data != -1 || derr != ENXIO || hole != -1 || herr != ENXIO)
			fail(o->f, o->off,
			     "past the end (0x%" PRIx64
			     "): SEEK_DATA %jd, SEEK_HOLE %jd, not ENXIO",
			     r->size, (intmax_t)data, (intmax_t)hole);
		return;
	}
	if (data == -1 && derr != ENXIO)
		fail(o->f, o->off, "SEEK_DATA: %s", strerror(derr));
	if (data == -1 && !model_zero(o->f, o->off, r->size))
		fail(o->f, o->off, "SEEK_DATA: ENXIO, but the model has data before 0x%" PRIx64,
		     r->size);
	if (data != -1 && ((uint64_t)data < o->off || (uint64_t)data >= r->size ||
			   !model_zero(o->f, o->off, (uint64_t)data)))
		fail(o->f, o->off,
		     "SEEK_DATA: 0x%jx skips data or is out of [0x%" PRIx64 ", 0x%" PRIx64 ")",
		     (intmax_t)data, o->off, r->size);
	if (hole == -1)
		fail(o->f, o->off, "SEEK_HOLE: %s", strerror(herr));
	if ((uint64_t)hole < o->off || (uint64_t)hole > r->size ||
	    ((uint64_t)hole < r->size && r->model[hole]))
		fail(o->f, (uint64_t)hole,
		     "SEEK_HOLE: 0x%jx is out of [0x%" PRIx64 ", 0x%" PRIx64 "] or not zero",
		     (intmax_t)hole, o->off, r->size);
}

static void do_drop(const struct op *o)
{
	int f, fd;

	if (o->arg) {
		fd = open("/proc/sys/vm/drop_caches", O_WRONLY);
		if (fd >= 0) {
			if (write(fd, "3", 1) != 1)
				fail(-1, 0, "drop_caches: %s", strerror(errno));
			close(fd);
			return;
		}
	}
	for (f = 0; f < g.nfiles; f++) {
		errno = posix_fadvise(g.files[f].fd, 0, 0, POSIX_FADV_DONTNEED);
		if (errno)
			fail(f, 0, "posix_fadvise DONTNEED: %s", strerror(errno));
	}
}

static void run_op(const struct op *o)
{
	int f;

	g.done = o->n;
	log_op(o);
	g.counts[o->kind]++;
	switch (o->kind) {
	case OP_READ:
		return do_read(o);
	case OP_WRITE:
		return do_write(o);
	case OP_MREAD:
		return do_mread(o);
	case OP_MWRITE:
		return do_mwrite(o);
	case OP_TRUNC:
		return do_trunc(o);
	case OP_FALLOC:
		return do_falloc(o);
	case OP_CFR:
		return do_cfr(o);
	case OP_DEDUPE:
		return do_dedupe(o);
	case OP_FSYNC:
	case OP_FDATASYNC:
		if ((o->kind == OP_FSYNC ? fsync : fdatasync)(g.files[o->f].fd))
			fail(o->f, 0, "%s: %s", op_names[o->kind], strerror(errno));
		return;
	case OP_REOPEN:
		close_file(o->f);
		open_file(o->f, 0);
		return;
	case OP_DROP:
		return do_drop(o);
	case OP_SEEK:
		return do_seek(o);
	case OP_CHECK:
		for (f = 0; f < g.nfiles; f++)
			check_file(f);
		return;
	default:
		fail(-1, 0, "unknown op kind %d", o->kind);
	}
}

/* --- making random ops ---------------------------------------------------------------- */

static enum op_kind pick_kind(void)
{
	unsigned total = 0, k, x;

	for (k = 0; k < OP_NKINDS; k++)
		total += g.disabled[k] ? 0 : op_weights[k];
	x = (unsigned)below(total);
	for (k = 0; k < OP_NKINDS; k++) {
		unsigned w = g.disabled[k] ? 0 : op_weights[k];
		if (x < w)
			break;
		x -= w;
	}
	return (enum op_kind)k;
}

/* An offset below LIMIT, block aligned half the time. */
static uint64_t pick_off(uint64_t limit)
{
	uint64_t off = below(limit);

	return rnd() & 1 ? off - off % g.bs : off;
}

/* An offset below LIMIT; a quarter of the time near SIZE (a file's end,
 * where partial blocks, shared tails and size changes meet). */
static uint64_t pick_off_near(uint64_t limit, uint64_t size)
{
	uint64_t back = below(2 * g.bs), off;

	if (rnd() % 4)
		return pick_off(limit);
	off = size > back ? size - back : 0;
	if (rnd() & 1)
		off -= off % g.bs;
	return off < limit ? off : limit - 1;
}

/* A length of 1..maxop, a multiple of the block size half the time, that
 * keeps OFF + length within MAXLEN. */
static uint64_t pick_len(uint64_t off)
{
	uint64_t room = g.maxlen - off, len = 1 + below(g.maxop);

	if (rnd() & 1 && len >= g.bs)
		len -= len % g.bs;
	return len < room ? len : room;
}

static void pick_cfr(struct op *o)
{
	uint64_t ssize = g.files[o->f].size;

	o->g = (int)below((uint64_t)g.nfiles);
	o->off = pick_off(ssize + g.bs);
	o->len = 1 + below(g.maxop);
	if (rnd() % 3) { /* equal offsets modulo the block size: blocks are shared */
		o->off2 = below(g.maxlen / g.bs) * g.bs + o->off % g.bs;
		if (o->off2 >= g.maxlen)
			o->off2 -= g.bs;
	} else {
		o->off2 = below(g.maxlen);
	}
	if (o->off2 + o->len > g.maxlen)
		o->len = g.maxlen - o->off2;
	if (rnd() % 4 == 0 && o->off < ssize && o->off2 + (ssize - o->off) <= g.maxlen)
		o->len = ssize - o->off; /* to the source's end: its last block shared */
}

static void pick_dedupe(struct op *o)
{
	struct rfile *s = &g.files[o->f], *d;
	uint64_t room;

	o->g = (int)below((uint64_t)g.nfiles);
	d = &g.files[o->g];
	o->off = below(s->size / g.bs + 1) * g.bs;
	o->off2 = below(d->size / g.bs + 1) * g.bs;
	o->arg = (int)(rnd() % 4 != 0);
	room = o->off <= s->size ? s->size - o->off : 0;
	if (o->off2 <= d->size && d->size - o->off2 < room)
		room = d->size - o->off2;
	o->len = room ? 1 + below(room < g.maxop ? room : g.maxop) : g.bs;
	if (rnd() & 1 && o->len >= g.bs)
		o->len -= o->len % g.bs;
	if (o->f == o->g && overlap(o->off, o->off2, o->len))
		o->arg = 0; /* EINVAL expected: nothing to make equal */
	if (o->arg && (o->off >= s->size || o->off2 >= d->size))
		o->arg = 0;
}

static void pick_op(struct op *o, uint64_t n)
{
	struct rfile *r;

	memset(o, 0, sizeof(*o));
	o->n = n;
	if (g.check_every && n % g.check_every == g.check_every - 1) {
		o->kind = OP_CHECK;
		return;
	}
	o->kind = pick_kind();
	o->f = (int)below((uint64_t)g.nfiles);
	r = &g.files[o->f];
	switch (o->kind) {
	case OP_READ:
		o->off = pick_off(r->size + g.bs);
		o->len = 1 + below(g.maxop);
		break;
	case OP_MREAD:
		if (!r->size) {
			o->kind = OP_READ;
			o->len = 1 + below(g.maxop);
			break;
		}
		o->off = pick_off(r->size);
		o->len = 1 + below(g.maxop);
		if (o->len > r->size - o->off)
			o->len = r->size - o->off;
		break;
	case OP_WRITE:
	case OP_MWRITE:
	case OP_FALLOC:
		o->off = pick_off_near(g.maxlen, r->size);
		o->len = pick_len(o->off);
		o->arg = o->kind == OP_FALLOC ? (int)below(NFALLOC) : (int)(rnd() & 1);
		break;
	case OP_TRUNC:
		o->off = pick_off_near(g.maxlen + 1, r->size + below(2 * g.bs));
		break;
	case OP_CFR:
		pick_cfr(o);
		break;
	case OP_DEDUPE:
		pick_dedupe(o);
		break;
	case OP_SEEK:
		o->off = pick_off(r->size + g.bs);
		break;
	case OP_DROP:
		o->arg = rnd() % 8 == 0;
		break;
	default:
		break;
	}
}

static int op_fits(const struct op *o);

/* --- replay ------------------------------------------------------------------------------- */

static int parse_op(const char *line, struct op *o)
{
	char name[32];
	int k;

	memset(o, 0, sizeof(*o));
	if (sscanf(line, "%" SCNu64 " %31s %d %" SCNu64 " %" SCNu64 " %d %" SCNu64 " %d", &o->n,
		   name, &o->f, &o->off, &o->len, &o->g, &o->off2, &o->arg) != 8)
		return -1;
	for (k = 0; k < OP_NKINDS; k++)
		if (!strcmp(name, op_names[k]))
			break;
	if (k == OP_NKINDS || o->f < 0 || o->f >= g.nfiles || o->g < 0 || o->g >= g.nfiles)
		return -1;
	o->kind = (enum op_kind)k;
	return op_fits(o) ? 0 : -1;
}

/* Are O's ranges within the model (as the ops made here always are)? */
static int op_fits(const struct op *o)
{
	switch (o->kind) {
	case OP_READ:
		return o->len <= g.maxlen + g.maxop;
	case OP_MREAD:
	case OP_WRITE:
	case OP_MWRITE:
	case OP_FALLOC:
		return o->len <= g.maxlen && o->off <= g.maxlen - o->len &&
		       (o->kind != OP_FALLOC || (o->arg >= 0 && o->arg < NFALLOC));
	case OP_TRUNC:
		return o->off <= g.maxlen;
	case OP_CFR: /* the source's offset may be past its end */
		return o->len <= g.maxlen && o->off2 <= g.maxlen - o->len;
	case OP_DEDUPE: /* past the ends is EINVAL; only making equal writes */
		return !o->arg || (o->len <= g.maxlen && o->off <= g.maxlen - o->len &&
				   o->off2 <= g.maxlen - o->len);
	default:
		return 1;
	}
}

/* Reads the header of a log: "# rfsx seed S files N maxlen L maxop M". */
static FILE *open_replay(void)
{
	FILE *in = fopen(g.replay_path, "r");
	char line[512];

	if (!in) {
		fprintf(stderr, "rfsx: %s: %s\n", g.replay_path, strerror(errno));
		exit(1);
	}
	if (!fgets(line, sizeof(line), in) ||
	    sscanf(line, "# rfsx seed %" SCNu64 " files %d maxlen %" SCNu64 " maxop %" SCNu64,
		   &g.seed, &g.nfiles, &g.maxlen, &g.maxop) != 4 ||
	    g.nfiles < 1 || g.nfiles > 64 || !g.maxlen || !g.maxop) {
		fprintf(stderr, "rfsx: %s: not an rfsx op log (bad first line)\n", g.replay_path);
		exit(1);
	}
	return in;
}

static void replay(FILE *in)
{
	char line[512];
	unsigned lineno = 1;
	struct op o;

	while (fgets(line, sizeof(line), in)) {
		lineno++;
		if (line[0] == '#' || line[0] == '\n')
			continue;
		if (parse_op(line, &o)) {
			fprintf(stderr, "rfsx: %s:%u: not an op of this log: %s", g.replay_path,
				lineno, line);
			exit(1);
		}
		run_op(&o);
	}
	fclose(in);
}

/* --- main --------------------------------------------------------------------------------- */

static void usage(void)
{
	fprintf(stderr,
		"usage: rfsx [-S seed] [-N ops] [-l maxlen] [-m maxop] [-n files] [-x kinds]\n"
		"            [-c check_every] [-L shown] [-o log] [-q] DIR\n"
		"       rfsx -r LOG [-o log] [-L shown] [-q] DIR\n"
		"kinds (-x, comma separated):");
	for (int k = 0; k < OP_NKINDS; k++)
		fprintf(stderr, " %s", op_names[k]);
	fputc('\n', stderr);
	exit(2);
}

static uint64_t parse_num(const char *s)
{
	char *end;
	uint64_t v;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || end == s)
		usage();
	switch (*end) {
	case 'k':
	case 'K':
		v <<= 10, end++;
		break;
	case 'm':
	case 'M':
		v <<= 20, end++;
		break;
	}
	if (*end)
		usage();
	return v;
}

static void disable_kinds(char *list)
{
	char *tok, *save = NULL;
	int k;

	for (tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		for (k = 0; k < OP_NKINDS; k++)
			if (!strcmp(tok, op_names[k]))
				break;
		if (k == OP_NKINDS) {
			fprintf(stderr, "rfsx: -x: no op kind '%s'\n", tok);
			usage();
		}
		g.disabled[k] = 1;
	}
}

static void parse_args(int argc, char **argv)
{
	int c;

	g.seed = 1;
	g.nops = 10000;
	g.maxlen = 1 << 20;
	g.maxop = 64 << 10;
	g.nfiles = 4;
	g.check_every = 500;
	g.ring_len = 40;
	g.log_path = "rfsx.log";
	while ((c = getopt(argc, argv, "S:N:l:m:n:x:c:L:o:r:q")) != -1) {
		switch (c) {
		case 'S':
			g.seed = parse_num(optarg);
			break;
		case 'N':
			g.nops = parse_num(optarg);
			break;
		case 'l':
			g.maxlen = parse_num(optarg);
			break;
		case 'm':
			g.maxop = parse_num(optarg);
			break;
		case 'n':
			g.nfiles = (int)parse_num(optarg);
			break;
		case 'x':
			disable_kinds(optarg);
			break;
		case 'c':
			g.check_every = parse_num(optarg);
			break;
		case 'L':
			g.ring_len = (int)parse_num(optarg);
			break;
		case 'o':
			g.log_path = optarg;
			break;
		case 'r':
			g.replay_path = optarg;
			break;
		case 'q':
			g.quiet = 1;
			break;
		default:
			usage();
		}
	}
	if (optind != argc - 1 || g.nfiles < 1 || g.nfiles > 64 || g.maxlen < 4096 ||
	    g.maxlen > (1ull << 32) || !g.maxop || g.ring_len < 1)
		usage();
	g.dir = argv[optind];
}

/* The filesystem's block size (the dedupe's alignment): from the mount's
 * extent ioctl; without it (not reflinkfs) there is no dedupe either. */
static void find_block_size(void)
{
	static struct rfs_ioc_extents x;

	if (ioctl(g.files[0].fd, RFS_IOC_GET_EXTENTS, &x) == 0 && x.block_size) {
		g.bs = x.block_size;
		return;
	}
	if (!g.disabled[OP_DEDUPE] && !g.quiet)
		fprintf(stderr, "rfsx: no RFS_IOC_GET_EXTENTS (%s): no dedupes\n", strerror(errno));
	g.disabled[OP_DEDUPE] = 1;
	g.bs = 4096;
}

static void setup(void)
{
	int f;

	g.page = sysconf(_SC_PAGESIZE);
	g.rng = g.seed * 0x9e3779b97f4a7c15ull + 0x2545f4914f6cdd1dull;
	g.files = calloc((size_t)g.nfiles, sizeof(*g.files));
	g.ring = calloc((size_t)g.ring_len, sizeof(*g.ring));
	g.buf = malloc(g.maxlen + g.maxop);
	if (!g.files || !g.ring || !g.buf) {
		fprintf(stderr, "rfsx: out of memory\n");
		exit(1);
	}
	for (f = 0; f < g.nfiles; f++) {
		struct rfile *r = &g.files[f];
		r->model = calloc(1, g.maxlen);
		if (!r->model || asprintf(&r->path, "%s/rfsx.%d", g.dir, f) < 0) {
			fprintf(stderr, "rfsx: out of memory\n");
			exit(1);
		}
		open_file(f, O_CREAT | O_TRUNC);
	}
	find_block_size();
	if (g.log_path) {
		g.log = fopen(g.log_path, "w");
		if (!g.log) {
			fprintf(stderr, "rfsx: %s: %s\n", g.log_path, strerror(errno));
			exit(1);
		}
		fprintf(g.log,
			"# rfsx seed %" PRIu64 " files %d maxlen %" PRIu64 " maxop %" PRIu64
			" block %u\n",
			g.seed, g.nfiles, g.maxlen, g.maxop, g.bs);
	}
}

int main(int argc, char **argv)
{
	FILE *in = NULL;
	uint64_t n, total = 0;
	int k, f;

	parse_args(argc, argv);
	if (g.replay_path) {
		in = open_replay();
		if (!strcmp(g.log_path, g.replay_path))
			g.log_path = NULL; /* do not overwrite what we replay */
	}
	setup();
	if (in) {
		replay(in);
	} else {
		for (n = 0; n < g.nops; n++) {
			struct op o;
			pick_op(&o, n);
			run_op(&o);
		}
	}
	for (f = 0; f < g.nfiles; f++) {
		check_file(f);
		close_file(f);
	}
	finish_log();
	if (g.log)
		fclose(g.log);
	for (k = 0; k < OP_NKINDS; k++)
		total += g.counts[k];
	if (!g.quiet) {
		printf("rfsx: seed %" PRIu64 ": %" PRIu64 " ops on %d files passed (", g.seed,
		       total, g.nfiles);
		for (k = 0; k < OP_NKINDS; k++)
			printf("%s%s %" PRIu64, k ? ", " : "", op_names[k], g.counts[k]);
		printf(")\n");
	}
	return 0;
}
