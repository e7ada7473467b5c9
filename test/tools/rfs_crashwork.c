/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * rfs_crashwork - the workload and the checker of the crash harness
 * (test/integration/crash.sh).
 *
 *   rfs_crashwork run MNT LOG OUTDIR SEED NOPS
 *   rfs_crashwork check MNT OUTDIR END
 *
 * `run` drives a mount whose daemon logs its writes to LOG (mount option
 * writelog=LOG) with NOPS operations drawn from SEED: creates, writes,
 * appends, overwrites, truncates, fallocate (plain, KEEP_SIZE, PUNCH_HOLE,
 * ZERO_RANGE), clones by copy_file_range (block-aligned, so the daemon
 * shares extents) and writes into cloned files (CoW), renames of files
 * (also over an existing file) and of directories, unlinks, fsync and
 * fdatasync. It keeps a model of every file and writes OUTDIR/windows:
 * what a power cut must show, and between which log sizes.
 *
 * The rule (DESIGN.md, README "Durability"): fsync or fdatasync of any
 * file commits the whole journal and flushes the image. So once such a
 * call has returned (the log size then is START), a file whose content was
 * fsync'ed and not modified since must be there under its current name
 * with that content, and a name that was unlinked or renamed away must be
 * gone, until the next operation on that file or name begins (the log size
 * then is END). Lines of OUTDIR/windows:
 *
 *   C START END SIZE BLOB PATH    PATH holds exactly OUTDIR/BLOB
 *   A START END PATH              PATH does not exist
 *
 * END is "-" if nothing touched the file or name until the end.
 *
 * `check` is run on a mount of an image cut at log offset END: every
 * window with START <= END <= its end must hold; then the whole tree is
 * walked and every file read (no I/O error anywhere). It prints what is
 * wrong and exits 1 if anything is.
 */
#define _FILE_OFFSET_BITS 64
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <linux/falloc.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "rng.h"

#define EXIT_USAGE 16
#define MAX_FILES  24
#define NDIRS	   3
#define BS	   4096u
#define MAX_SIZE   (1u << 20) /* model files stay below 1 MiB */
#define NO_END	   UINT64_MAX

struct file {
	int live;
	char path[64];
	uint8_t *data;
	size_t size;
	int synced;	 /* fsync'ed since the last change of its data */
	long win;	 /* open content window, or -1 */
	long blob;	 /* window whose blob holds the current data, or -1 */
	unsigned cloned; /* shares blocks with another file (CoW on write) */
};

struct window {
	char kind; /* 'C' content, 'A' absent */
	char path[64];
	uint64_t start, end;
	size_t size;
	long blob;
};

struct gone {
	char path[64];
	long win; /* open absent window, or -1 */
};

static struct {
	const char *mnt, *log, *outdir;
	uint64_t rng;
	struct file f[MAX_FILES];
	struct window *w;
	size_t nw, capw;
	struct gone *g;
	size_t ng, capg;
	unsigned names;
	char dirs[NDIRS][16]; /* the subdirectories' current names */
	unsigned long ops[16];
	FILE *trace; /* OUTDIR/trace: each operation and the log size before it */
} W;

static const char *const op_names[] = {"create", "write", "append",    "truncate",
				       "falloc", "clone", "cowrite",   "rename",
				       "unlink", "fsync", "fdatasync", "rename_dir"};
enum {
	OP_CREATE,
	OP_WRITE,
	OP_APPEND,
	OP_TRUNCATE,
	OP_FALLOC,
	OP_CLONE,
	OP_COWRITE,
	OP_RENAME,
	OP_UNLINK,
	OP_FSYNC,
	OP_FDATASYNC,
	OP_RENAME_DIR,
	NR_OPS
};
/* how often each is drawn, out of the sum */
static const unsigned op_weight[NR_OPS] = {6, 10, 6, 3, 6, 5, 6, 4, 3, 7, 3, 1};

static void die(const char *what, const char *path)
{
	fprintf(stderr, "rfs_crashwork: %s %s: %s\n", what, path, strerror(errno));
	exit(1);
}

static uint64_t rnd(void)
{
	return rng_splitmix(&W.rng);
}

static size_t below(size_t n)
{
	return n ? (size_t)(rnd() % n) : 0;
}

static void fill_random(uint8_t *p, size_t len)
{
	uint64_t x = rnd() | 1;

	for (size_t i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		p[i] = (uint8_t)(x >> 24);
	}
}

static uint64_t log_size(void)
{
	struct stat st;

	if (stat(W.log, &st) < 0)
		die("stat", W.log);
	return (uint64_t)st.st_size;
}

static void full_path(char *buf, size_t len, const char *rel)
{
	snprintf(buf, len, "%s/%s", W.mnt, rel);
}

static void trace(const char *fmt, ...)
{
	va_list ap;

	fprintf(W.trace, "%" PRIu64 " ", log_size());
	va_start(ap, fmt);
	vfprintf(W.trace, fmt, ap);
	va_end(ap);
	fputc('\n', W.trace);
}

/* --- windows ------------------------------------------------------------------ */

static long add_window(char kind, const char *path, uint64_t start)
{
	struct window *w;

	if (W.nw == W.capw) {
		W.capw = W.capw ? 2 * W.capw : 256;
		W.w = realloc(W.w, W.capw * sizeof(*W.w));
		if (!W.w)
			die("realloc", "windows");
	}
	w = &W.w[W.nw];
	memset(w, 0, sizeof(*w));
	w->kind = kind;
	snprintf(w->path, sizeof(w->path), "%s", path);
	w->start = start;
	w->end = NO_END;
	w->blob = -1;
	return (long)W.nw++;
}

static void save_blob(struct file *f, long win)
{
	char p[4096];
	FILE *out;

	snprintf(p, sizeof(p), "%s/blob.%ld", W.outdir, win);
	out = fopen(p, "w");
	if (!out || (f->size && fwrite(f->data, 1, f->size, out) != f->size) || fclose(out))
		die("writing", p);
	f->blob = win;
}

static void open_content_window(struct file *f, uint64_t start)
{
	long win = add_window('C', f->path, start);

	if (f->blob < 0)
		save_blob(f, win);
	W.w[win].size = f->size;
	W.w[win].blob = f->blob;
	f->win = win;
}

static void close_window(long *win, uint64_t end)
{
	if (*win >= 0)
		W.w[*win].end = end;
	*win = -1;
}

/* A file's data or name is about to change: its window ends here. */
static void touch_file(struct file *f, int data, uint64_t now)
{
	close_window(&f->win, now);
	if (data) {
		f->synced = 0;
		f->blob = -1;
	}
}

/* PATH is about to be used again: its absent window ends. */
static void reuse_path(const char *path, uint64_t now)
{
	for (size_t i = 0; i < W.ng; i++)
		if (!strcmp(W.g[i].path, path)) {
			close_window(&W.g[i].win, now);
			W.g[i] = W.g[--W.ng];
			return;
		}
}

static void add_gone(const char *path)
{
	if (W.ng == W.capg) {
		W.capg = W.capg ? 2 * W.capg : 64;
		W.g = realloc(W.g, W.capg * sizeof(*W.g));
		if (!W.g)
			die("realloc", "names");
	}
	snprintf(W.g[W.ng].path, sizeof(W.g[W.ng].path), "%s", path);
	W.g[W.ng++].win = -1;
}

/* An fsync returned with the log at START: everything done before it is
 * durable (one journal, committed whole). */
static void all_durable(uint64_t start)
{
	for (int i = 0; i < MAX_FILES; i++)
		if (W.f[i].live && W.f[i].synced && W.f[i].win < 0)
			open_content_window(&W.f[i], start);
	for (size_t i = 0; i < W.ng; i++)
		if (W.g[i].win < 0)
			W.g[i].win = add_window('A', W.g[i].path, start);
}

/* --- the model ------------------------------------------------------------------ */

static void model_resize(struct file *f, size_t size)
{
	uint8_t *p = realloc(f->data, size ? size : 1);

	if (!p)
		die("realloc", f->path);
	if (size > f->size)
		memset(p + f->size, 0, size - f->size);
	f->data = p;
	f->size = size;
}

static void model_write(struct file *f, size_t off, const uint8_t *buf, size_t len)
{
	if (off + len > f->size)
		model_resize(f, off + len);
	memcpy(f->data + off, buf, len);
}

static struct file *pick_live(void)
{
	int n = 0, i;

	for (i = 0; i < MAX_FILES; i++)
		n += W.f[i].live;
	if (!n)
		return NULL;
	n = (int)below((size_t)n);
	for (i = 0; i < MAX_FILES; i++)
		if (W.f[i].live && !n--)
			return &W.f[i];
	return NULL;
}

static struct file *pick_free(void)
{
	for (int i = 0; i < MAX_FILES; i++)
		if (!W.f[i].live)
			return &W.f[i];
	return NULL;
}

static void new_name(char *buf, size_t len)
{
	size_t d = below(NDIRS + 1);

	if (d == NDIRS)
		snprintf(buf, len, "f%u", W.names++);
	else
		snprintf(buf, len, "%s/f%u", W.dirs[d], W.names++);
}

static int open_file(const struct file *f, int flags)
{
	char p[4096];
	int fd;

	full_path(p, sizeof(p), f->path);
	fd = open(p, flags | O_CLOEXEC, 0644);
	if (fd < 0)
		die("open", p);
	return fd;
}

static void pwrite_all(int fd, const uint8_t *buf, size_t len, size_t off, const char *path)
{
	while (len) {
		ssize_t n = pwrite(fd, buf, len, (off_t)off);
		if (n <= 0)
			die("pwrite", path);
		buf += n;
		len -= (size_t)n;
		off += (size_t)n;
	}
}

/* Writes LEN random bytes at OFF, in the file and the model. */
static void write_range(struct file *f, size_t off, size_t len)
{
	uint8_t *buf = malloc(len ? len : 1);
	int fd;

	if (!buf)
		die("malloc", f->path);
	fill_random(buf, len);
	trace("write %s %zu %zu", f->path, off, len);
	touch_file(f, 1, log_size());
	fd = open_file(f, O_WRONLY);
	pwrite_all(fd, buf, len, off, f->path);
	close(fd);
	model_write(f, off, buf, len);
	free(buf);
}

/* --- operations ----------------------------------------------------------------- */

static struct file *op_create(void)
{
	struct file *f = pick_free();
	int fd;

	if (!f)
		return NULL;
	memset(f, 0, sizeof(*f));
	new_name(f->path, sizeof(f->path));
	f->win = f->blob = -1;
	trace("create %s", f->path);
	reuse_path(f->path, log_size());
	fd = open_file(f, O_WRONLY | O_CREAT | O_EXCL);
	close(fd);
	f->live = 1;
	write_range(f, 0, below(256 << 10));
	return f;
}

static void op_write(struct file *f, int append)
{
	size_t off = append ? f->size : below(f->size + (64 << 10));
	size_t len = 1 + below(rnd() & 1 ? BS : 128 << 10);

	if (off + len > MAX_SIZE)
		return;
	write_range(f, off, len);
}

static void op_truncate(struct file *f)
{
	size_t size = below(f->size + (128 << 10));
	char p[4096];

	full_path(p, sizeof(p), f->path);
	trace("truncate %s %zu", f->path, size);
	touch_file(f, 1, log_size());
	if (truncate(p, (off_t)size) < 0)
		die("truncate", p);
	model_resize(f, size);
}

static void op_falloc(struct file *f)
{
	static const int modes[] = {
		0, FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		FALLOC_FL_ZERO_RANGE, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE};
	int mode = modes[below(5)];
	size_t off = below(f->size + (64 << 10)), len = 1 + below(256 << 10);
	int fd;

	if (off + len > MAX_SIZE)
		return;
	trace("fallocate %s mode %#x %zu %zu", f->path, mode, off, len);
	touch_file(f, 1, log_size());
	fd = open_file(f, O_WRONLY);
	if (fallocate(fd, mode, (off_t)off, (off_t)len) < 0)
		die("fallocate", f->path);
	close(fd);
	if (mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE) && off < f->size)
		memset(f->data + off, 0, (off + len < f->size ? off + len : f->size) - off);
	if (!(mode & FALLOC_FL_KEEP_SIZE) && off + len > f->size)
		model_resize(f, off + len);
}

/* copy_file_range of block-aligned ranges (whole blocks, or up to the
 * source's end): the daemon shares the blocks. Into a new file or at a
 * block offset of an existing one. */
static void op_clone(void)
{
	struct file *src = pick_live(), *dst = rnd() & 1 ? pick_live() : NULL;
	size_t soff, doff, len;
	loff_t si, di;
	int in, out;

	if (!src || src == dst)
		return;
	if (!dst && !(dst = op_create()))
		return;
	soff = below(src->size / BS + 1) * BS;
	len = src->size - soff;
	if (len > BS && rnd() & 1)
		len = (1 + below(len / BS)) * BS;
	doff = below(dst->size / BS + 1) * BS;
	if (doff + len > MAX_SIZE || !len)
		return;
	trace("clone %s %zu -> %s %zu len %zu", src->path, soff, dst->path, doff, len);
	touch_file(dst, 1, log_size());
	in = open_file(src, O_RDONLY);
	out = open_file(dst, O_WRONLY);
	si = (loff_t)soff;
	di = (loff_t)doff;
	for (size_t done = 0; done < len;) {
		ssize_t n = copy_file_range(in, &si, out, &di, len - done, 0);
		if (n <= 0)
			die("copy_file_range to", dst->path);
		done += (size_t)n;
	}
	close(in);
	close(out);
	{
		uint8_t *copy = malloc(len);
		if (!copy)
			die("malloc", "clone");
		memcpy(copy, src->data + soff, len);
		model_write(dst, doff, copy, len);
		free(copy);
	}
	src->cloned = dst->cloned = 1;
}

/* A write into a file that shares blocks: copy-on-write. */
static void op_cowrite(void)
{
	struct file *f = NULL;

	for (int tries = 0; tries < 8 && !f; tries++) {
		struct file *c = pick_live();
		if (c && c->cloned && c->size)
			f = c;
	}
	if (!f)
		return;
	size_t off = below(f->size / BS) * BS + (rnd() & 1 ? below(BS) : 0);
	size_t len = 1 + below(rnd() & 1 ? BS : 64 << 10);
	if (off + len > MAX_SIZE)
		return;
	write_range(f, off, len);
}

static void op_rename(struct file *f)
{
	struct file *victim = rnd() & 1 ? pick_live() : NULL;
	char to[64], a[4096], b[4096];
	uint64_t now = log_size();

	if (victim == f)
		return;
	if (victim)
		snprintf(to, sizeof(to), "%s", victim->path);
	else
		new_name(to, sizeof(to));
	full_path(a, sizeof(a), f->path);
	full_path(b, sizeof(b), to);
	trace("rename %s -> %s", f->path, to);
	touch_file(f, 0, now);
	if (victim) {
		touch_file(victim, 1, now);
		victim->live = 0;
		free(victim->data);
		victim->data = NULL;
	} else {
		reuse_path(to, now);
	}
	if (rename(a, b) < 0)
		die("rename", a);
	add_gone(f->path);
	snprintf(f->path, sizeof(f->path), "%s", to);
}

static void op_unlink(struct file *f)
{
	char p[4096];

	full_path(p, sizeof(p), f->path);
	trace("unlink %s", f->path);
	touch_file(f, 1, log_size());
	if (unlink(p) < 0)
		die("unlink", p);
	add_gone(f->path);
	f->live = 0;
	free(f->data);
	f->data = NULL;
}

/* A subdirectory renamed: every file in it changes its path. */
static void op_rename_dir(void)
{
	size_t d = below(NDIRS), n;
	char to[16], a[4096], b[4096];
	uint64_t now = log_size();

	snprintf(to, sizeof(to), "dir%u", W.names++); /* never a d0..d2 */
	full_path(a, sizeof(a), W.dirs[d]);
	full_path(b, sizeof(b), to);
	trace("rename_dir %s -> %s", W.dirs[d], to);
	n = strlen(W.dirs[d]);
	for (int i = 0; i < MAX_FILES; i++) {
		struct file *f = &W.f[i];
		char moved[sizeof(f->path) + sizeof(to)];
		if (!f->live || strncmp(f->path, W.dirs[d], n) || f->path[n] != '/')
			continue;
		touch_file(f, 0, now);
		snprintf(moved, sizeof(moved), "%s%s", to, f->path + n);
		if (strlen(moved) >= sizeof(f->path))
			die("path too long:", moved);
		memcpy(f->path, moved, strlen(moved) + 1);
	}
	if (rename(a, b) < 0)
		die("rename", a);
	add_gone(W.dirs[d]);
	snprintf(W.dirs[d], sizeof(W.dirs[d]), "%s", to);
}

static void op_sync(struct file *f, int data_only)
{
	int fd = open_file(f, O_RDONLY);

	if ((data_only ? fdatasync(fd) : fsync(fd)) < 0)
		die(data_only ? "fdatasync" : "fsync", f->path);
	f->synced = 1;
	trace("%s %s returned", data_only ? "fdatasync" : "fsync", f->path);
	all_durable(log_size());
	close(fd);
}

static int draw_op(void)
{
	unsigned sum = 0, r;
	int i;

	for (i = 0; i < NR_OPS; i++)
		sum += op_weight[i];
	r = (unsigned)below(sum);
	for (i = 0; r >= op_weight[i]; i++)
		r -= op_weight[i];
	return i;
}

static void one_op(void)
{
	int op = draw_op();
	struct file *f = pick_live();

	if (!f && op != OP_CREATE && op != OP_CLONE)
		op = OP_CREATE;
	W.ops[op]++;
	switch (op) {
	case OP_CREATE:
		(void)op_create();
		break;
	case OP_WRITE:
	case OP_APPEND:
		op_write(f, op == OP_APPEND);
		break;
	case OP_TRUNCATE:
		op_truncate(f);
		break;
	case OP_FALLOC:
		op_falloc(f);
		break;
	case OP_CLONE:
		op_clone();
		break;
	case OP_COWRITE:
		op_cowrite();
		break;
	case OP_RENAME:
		op_rename(f);
		break;
	case OP_UNLINK:
		op_unlink(f);
		break;
	case OP_FSYNC:
	case OP_FDATASYNC:
		op_sync(f, op == OP_FDATASYNC);
		break;
	default:
		op_rename_dir();
		break;
	}
}

static void write_windows(void)
{
	char p[4096];
	FILE *out;

	snprintf(p, sizeof(p), "%s/windows", W.outdir);
	out = fopen(p, "w");
	if (!out)
		die("creating", p);
	for (size_t i = 0; i < W.nw; i++) {
		const struct window *w = &W.w[i];
		char end[32] = "-";
		if (w->end != NO_END)
			snprintf(end, sizeof(end), "%" PRIu64, w->end);
		if (w->kind == 'C')
			fprintf(out, "C %" PRIu64 " %s %zu blob.%ld %s\n", w->start, end, w->size,
				w->blob, w->path);
		else
			fprintf(out, "A %" PRIu64 " %s %s\n", w->start, end, w->path);
	}
	if (fclose(out))
		die("writing", p);
}

static int do_run(unsigned long nops)
{
	char p[4096];
	unsigned long i;

	snprintf(p, sizeof(p), "%s/trace", W.outdir);
	W.trace = fopen(p, "w");
	if (!W.trace)
		die("creating", p);
	for (int d = 0; d < NDIRS; d++) {
		snprintf(W.dirs[d], sizeof(W.dirs[d]), "d%d", d);
		snprintf(p, sizeof(p), "%s/d%d", W.mnt, d);
		if (mkdir(p, 0755) < 0)
			die("mkdir", p);
	}
	for (i = 0; i < nops; i++)
		one_op();
	/* the end: everything fsync'ed, so the last cuts check it all */
	for (int k = 0; k < MAX_FILES; k++)
		if (W.f[k].live)
			op_sync(&W.f[k], 0);
	write_windows();
	if (fclose(W.trace))
		die("writing", "trace");
	printf("rfs_crashwork: %lu ops:", nops);
	for (i = 0; i < NR_OPS; i++)
		printf(" %s %lu", op_names[i], W.ops[i]);
	printf("; %zu windows, log %" PRIu64 " bytes\n", W.nw, log_size());
	for (i = 0; i < MAX_FILES; i++)
		free(W.f[i].data);
	free(W.w);
	free(W.g);
	return 0;
}

/* --- the checker ---------------------------------------------------------------- */

static int failures;

static void fail(const char *fmt, const char *path, const char *detail)
{
	fprintf(stderr, "rfs_crashwork: ");
	fprintf(stderr, fmt, path, detail);
	fputc('\n', stderr);
	failures++;
}

static uint8_t *read_blob(const char *name, size_t size)
{
	char p[4096];
	uint8_t *buf = malloc(size ? size : 1);
	FILE *in;

	snprintf(p, sizeof(p), "%s/%s", W.outdir, name);
	in = fopen(p, "r");
	if (!buf || !in || (size && fread(buf, 1, size, in) != size))
		die("reading", p);
	fclose(in);
	return buf;
}

static void check_content(const char *rel, size_t size, const char *blob)
{
	char p[4096], why[128];
	uint8_t *want = read_blob(blob, size), *got = malloc(size + 1);
	struct stat st;
	size_t have = 0;
	int fd;

	full_path(p, sizeof(p), rel);
	fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0) {
		fail("%s: fsync'ed file: %s", rel, strerror(errno));
		goto out;
	}
	if ((uint64_t)st.st_size != size) {
		snprintf(why, sizeof(why), "size %lld, fsync'ed %zu", (long long)st.st_size, size);
		fail("%s: %s", rel, why);
		goto out;
	}
	while (have < size + 1) {
		ssize_t n = pread(fd, got + have, size + 1 - have, (off_t)have);
		if (n < 0) {
			fail("%s: read: %s", rel, strerror(errno));
			goto out;
		}
		if (!n)
			break;
		have += (size_t)n;
	}
	if (have != size) {
		snprintf(why, sizeof(why), "read %zu bytes of %zu", have, size);
		fail("%s: %s", rel, why);
	} else {
		for (size_t i = 0; i < size; i++)
			if (got[i] != want[i]) {
				snprintf(why, sizeof(why),
					 "byte %zu is 0x%02x, fsync'ed 0x%02x (%s)", i, got[i],
					 want[i], blob);
				fail("%s: %s", rel, why);
				break;
			}
	}
out:
	if (fd >= 0)
		close(fd);
	free(want);
	free(got);
}

static void check_absent(const char *rel)
{
	char p[4096];
	struct stat st;

	full_path(p, sizeof(p), rel);
	if (lstat(p, &st) == 0)
		fail("%s: %s", rel, "exists, but was unlinked or renamed away before an fsync");
	else if (errno != ENOENT)
		fail("%s: lstat: %s", rel, strerror(errno));
}

static int in_window(const char *start, const char *end, uint64_t cut)
{
	return strtoull(start, NULL, 10) <= cut &&
	       (!strcmp(end, "-") || cut <= strtoull(end, NULL, 10));
}

static unsigned long n_content, n_absent, n_scanned;

static void check_windows(uint64_t cut)
{
	char p[4096], line[512];
	FILE *in;

	snprintf(p, sizeof(p), "%s/windows", W.outdir);
	in = fopen(p, "r");
	if (!in)
		die("opening", p);
	while (fgets(line, sizeof(line), in)) {
		char *save = NULL, *kind = strtok_r(line, " \n", &save);
		char *start = strtok_r(NULL, " \n", &save), *end = strtok_r(NULL, " \n", &save);
		if (!kind || !start || !end)
			continue;
		if (!in_window(start, end, cut))
			continue;
		if (kind[0] == 'C') {
			char *size = strtok_r(NULL, " \n", &save),
			     *blob = strtok_r(NULL, " \n", &save);
			char *path = strtok_r(NULL, "\n", &save);
			check_content(path, strtoull(size, NULL, 10), blob);
			n_content++;
		} else {
			check_absent(strtok_r(NULL, "\n", &save));
			n_absent++;
		}
	}
	fclose(in);
}

static int scan_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	static uint8_t buf[1 << 16];
	int fd;

	(void)st, (void)ftw;
	n_scanned++;
	if (type == FTW_DNR || type == FTW_NS) {
		fail("%s: %s", path, "cannot be read or stat'ed");
		return 0;
	}
	if (type != FTW_F || !S_ISREG(st->st_mode))
		return 0;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		fail("%s: open: %s", path, strerror(errno));
		return 0;
	}
	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n < 0)
			fail("%s: read: %s", path, strerror(errno));
		if (n <= 0)
			break;
	}
	close(fd);
	return 0;
}

static int do_check(uint64_t cut)
{
	check_windows(cut);
	errno = 0;
	if (nftw(W.mnt, scan_one, 16, FTW_PHYS) < 0)
		fail("%s: walking the tree: %s", W.mnt, strerror(errno));
	printf("rfs_crashwork: cut at %" PRIu64 ": %lu fsync'ed files, %lu removed names, %lu "
	       "entries scanned, %d failures\n",
	       cut, n_content, n_absent, n_scanned, failures);
	return failures ? 1 : 0;
}

static void usage(FILE *f)
{
	fprintf(f, "Usage: rfs_crashwork run MNT LOG OUTDIR SEED NOPS\n"
		   "       rfs_crashwork check MNT OUTDIR END\n");
}

int main(int argc, char **argv)
{
	char *end1 = NULL, *end2 = NULL;

	memset(&W, 0, sizeof(W));
	if (argc == 7 && !strcmp(argv[1], "run")) {
		unsigned long long seed = strtoull(argv[5], &end1, 0);
		unsigned long nops = strtoul(argv[6], &end2, 0);
		if (*end1 || *end2 || !*argv[5] || !*argv[6]) {
			usage(stderr);
			return EXIT_USAGE;
		}
		W.mnt = argv[2];
		W.log = argv[3];
		W.outdir = argv[4];
		W.rng = seed;
		return do_run(nops);
	}
	if (argc == 5 && !strcmp(argv[1], "check")) {
		unsigned long long cut = strtoull(argv[4], &end1, 0);
		if (*end1 || !*argv[4]) {
			usage(stderr);
			return EXIT_USAGE;
		}
		W.mnt = argv[2];
		W.outdir = argv[3];
		return do_check(cut);
	}
	usage(stderr);
	return EXIT_USAGE;
}
