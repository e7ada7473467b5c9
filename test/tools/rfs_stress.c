/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * rfs_stress - several processes doing random metadata and data operations
 * on one mount at once (in the manner of fsstress), for a bounded time.
 *
 *   rfs_stress [-p procs] [-t seconds] [-N ops] [-S seed] [-m MODELDIR] [-P] DIR
 *   rfs_stress -w DIR      walk DIR: stat, read, readlink, xattrs of all
 *
 * The workers share a small namespace under DIR (directories d0..d3 nested
 * up to three deep, files f0..f7), so they collide all the time: create,
 * unlink, rename (plain, RENAME_NOREPLACE, RENAME_EXCHANGE, across
 * directories), mkdir, rmdir, hard and symbolic links, writes, truncates,
 * fallocate (allocate, punch, zero), copy_file_range (clones when
 * aligned), xattrs, fsync, readdir, stat and reads. Errors that a race
 * explains (ENOENT, EEXIST, ENOTEMPTY, ...) are expected; any other
 * (EIO, ESTALE, ENOSPC, ENOTCONN, ...) fails the run with the op. Each
 * worker stops after -N ops or -t seconds, whichever comes first; the
 * seed fixes each worker's sequence of ops, not how they interleave.
 *
 * Each worker also owns two files, DIR/pN.a and DIR/pN.b, which only it
 * touches, with an in-memory model: writes, truncates, punches and clones
 * between them, every read checked. At the end it fsyncs them and, with
 * -m, writes the models to MODELDIR/pN.a and pN.b, to compare after a
 * remount, and logs its private ops to MODELDIR/pN.ops; -P does nothing
 * but private ops. Exit 0 if every worker passed, 1 otherwise, 2 on usage.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>
#include "rng.h"

#define MAX_FILE  (1u << 20) /* shared files stay below this */
#define PRIV_SIZE (1u << 20) /* the private files' model */
#define BS	  4096u
#define RING	  16

static const char *top;
static const char *model_dir;
static int worker_id;
static uint64_t rng;
static uint64_t op_count;
static uint8_t *buf;
static char ring[RING][600];
static FILE *priv_log; /* MODELDIR/pN.ops: every private op */
static int private_only;
static uint64_t max_ops; /* per worker; 0: until the time is up */

static uint64_t rnd(void)
{
	return rng_xorshift(&rng);
}

static uint64_t below(uint64_t n)
{
	return n ? rnd() % n : 0;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Remembers what the current op is (shown if something fails). */
static void __attribute__((format(printf, 1, 2))) note(const char *fmt, ...)
{
	va_list ap;

	op_count++;
	va_start(ap, fmt);
	vsnprintf(ring[op_count % RING], sizeof(ring[0]), fmt, ap);
	va_end(ap);
}

static void __attribute__((format(printf, 1, 2), noreturn)) die(const char *fmt, ...)
{
	uint64_t i;
	va_list ap;

	fprintf(stderr, "rfs_stress: worker %d, op %" PRIu64 ": ", worker_id, op_count);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nits last ops:\n");
	if (priv_log)
		fflush(priv_log);
	for (i = op_count >= RING ? op_count - RING + 1 : 1; i <= op_count; i++)
		fprintf(stderr, "  %8" PRIu64 " %s\n", i, ring[i % RING]);
	exit(1);
}

/* One errno in an EXTRA set of expect(). */
#define ERR(e) (1ull << (e))

/*
 * EXDEV from rename and link on one mount: Linux 6.x answers so when a
 * racing rename or rmdir left a parent apart from the tree (tmpfs does
 * the same under this load), not the daemon.
 */
#define RACING_DIRS ERR(EXDEV)

/* A failed call: fine if a race explains errno (or it is in EXTRA). */
static void expect(int ret, const char *what, const char *path, uint64_t extra)
{
	int e = errno;

	if (ret >= 0)
		return;
	switch (e) {
	case ENOENT:
	case EEXIST:
	case ENOTEMPTY:
	case EISDIR:
	case ENOTDIR:
	case EINVAL:
	case EMLINK:
	case ELOOP:
	case ENODATA:
	case EBUSY:
		return;
	default:
		if (e < 64 && (extra & ERR(e)))
			return;
		die("%s %s: %s", what, path, strerror(e));
	}
}

/* --- the shared namespace ---------------------------------------------------- */

/* A random path under TOP: up to two directories, then a dir or file name. */
static void pick_path(char *p, size_t n, int want_dir)
{
	int depth = (int)below(3), i;
	size_t len = (size_t)snprintf(p, n, "%s", top);

	for (i = 0; i < depth; i++)
		len += (size_t)snprintf(p + len, n - len, "/d%d", (int)below(4));
	if (want_dir)
		snprintf(p + len, n - len, "/d%d", (int)below(4));
	else
		snprintf(p + len, n - len, "/f%d", (int)below(8));
}

static void random_path(char *p, size_t n)
{
	pick_path(p, n, rnd() % 3 == 0);
}

static void fill_random(uint8_t *b, size_t len)
{
	size_t i;
	uint64_t x = rnd();

	for (i = 0; i < len; i++) {
		if (i % 8 == 0)
			x = rnd();
		b[i] = (uint8_t)(x >> (8 * (i % 8)));
	}
}

static uint64_t pick_off(void)
{
	uint64_t off = below(MAX_FILE);

	return rnd() & 1 ? off & ~(uint64_t)(BS - 1) : off;
}

static uint64_t pick_len(uint64_t off, uint64_t max)
{
	uint64_t len = 1 + below(max);

	if (rnd() & 1 && len >= BS)
		len &= ~(uint64_t)(BS - 1);
	return off + len > MAX_FILE ? MAX_FILE - off : len;
}

static void op_create(void)
{
	char p[256];
	int fd;

	pick_path(p, sizeof(p), 0);
	note("create %s", p);
	fd = open(p, O_CREAT | O_WRONLY | (rnd() & 1 ? O_TRUNC : 0), 0644);
	expect(fd, "create", p, 0);
	if (fd < 0)
		return;
	size_t len = below(20000);
	fill_random(buf, len);
	expect((int)write(fd, buf, len), "write (create)", p, 0);
	close(fd);
}

static void op_unlink(void)
{
	char p[256];

	random_path(p, sizeof(p));
	note("unlink %s", p);
	expect(unlink(p), "unlink", p, ERR(EPERM));
}

static void op_rename(void)
{
	static const unsigned flags[] = {0, 0, RENAME_NOREPLACE, RENAME_EXCHANGE};
	unsigned fl = flags[below(4)];
	char a[256], b[256];

	random_path(a, sizeof(a));
	random_path(b, sizeof(b));
	note("rename %s -> %s flags %u", a, b, fl);
	expect(renameat2(AT_FDCWD, a, AT_FDCWD, b, fl), "rename", a, RACING_DIRS);
}

static void op_mkdir(void)
{
	char p[256];

	pick_path(p, sizeof(p), 1);
	note("mkdir %s", p);
	expect(mkdir(p, 0755), "mkdir", p, 0);
}

static void op_rmdir(void)
{
	char p[256];

	pick_path(p, sizeof(p), 1);
	note("rmdir %s", p);
	expect(rmdir(p), "rmdir", p, 0);
}

static void op_link(void)
{
	char a[256], b[256];

	pick_path(a, sizeof(a), 0);
	pick_path(b, sizeof(b), 0);
	note("link %s %s", a, b);
	/* EPERM: a is a directory now */
	expect(link(a, b), "link", a, ERR(EPERM) | RACING_DIRS);
}

static void op_symlink(void)
{
	char target[2100], p[256];
	size_t len = 1 + below(rnd() % 8 ? 60 : 2000), i;

	for (i = 0; i < len; i++)
		target[i] = "abcdefgh/."[below(10)];
	target[len] = 0;
	/* Never out of the tree: the workers open paths through these links
	 * with O_CREAT, and "/..." or ".." would create files elsewhere (once
	 * seen as an EXDEV from copy_file_range to a file on the host fs). */
	if (target[0] == '/')
		target[0] = 'a';
	for (i = 1; i < len; i++)
		if (target[i] == '.' && target[i - 1] == '.')
			target[i] = 'x';
	pick_path(p, sizeof(p), 0);
	note("symlink %s (%zu bytes)", p, len);
	expect(symlink(target, p), "symlink", p, 0);
}

static int open_path(char *p, size_t n, int flags, const char *what)
{
	int fd;

	pick_path(p, n, 0);
	fd = open(p, flags | O_NOFOLLOW);
	if (fd < 0)
		expect(fd, what, p, 0);
	return fd;
}

static void op_write(void)
{
	char p[256];
	int fd = open_path(p, sizeof(p), O_WRONLY, "open for write");
	uint64_t off = pick_off(), len;

	if (fd < 0)
		return;
	len = pick_len(off, 128 << 10);
	note("write %s [%" PRIu64 ", +%" PRIu64 ")", p, off, len);
	fill_random(buf, len);
	expect((int)pwrite(fd, buf, len, (off_t)off), "pwrite", p, 0);
	close(fd);
}

static void op_truncate(void)
{
	char p[256];
	uint64_t size = pick_off();

	pick_path(p, sizeof(p), 0);
	note("truncate %s %" PRIu64, p, size);
	expect(truncate(p, (off_t)size), "truncate", p, 0);
}

static void op_fallocate(void)
{
	static const int modes[] = {
		0, FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		FALLOC_FL_ZERO_RANGE, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE};
	char p[256];
	int fd = open_path(p, sizeof(p), O_WRONLY, "open for fallocate"), mode = modes[below(5)];
	uint64_t off = pick_off(), len;

	if (fd < 0)
		return;
	len = pick_len(off, 256 << 10);
	note("fallocate %s mode %#x [%" PRIu64 ", +%" PRIu64 ")", p, mode, off, len);
	expect(fallocate(fd, mode, (off_t)off, (off_t)len), "fallocate", p, 0);
	close(fd);
}

static void op_copy(void)
{
	char a[256], b[256];
	int in = open_path(a, sizeof(a), O_RDONLY, "open for copy"), out;
	uint64_t soff = pick_off(), doff, len;
	struct stat st;

	if (in < 0)
		return;
	out = open_path(b, sizeof(b), O_WRONLY, "open for copy");
	if (out >= 0 && !fstat(in, &st) && rnd() % 3 == 0) {
		soff = 0; /* a whole-file clone */
		doff = 0;
		len = (uint64_t)st.st_size;
		if (ftruncate(out, 0))
			expect(-1, "truncate before clone", b, 0);
	} else {
		doff = rnd() % 3 ? (pick_off() & ~(uint64_t)(BS - 1)) + soff % BS : pick_off();
		if (doff >= MAX_FILE)
			doff -= BS;
		len = pick_len(doff, 512 << 10);
	}
	if (out >= 0) {
		loff_t i = (loff_t)soff, o = (loff_t)doff;
		note("copy_file_range %s [%" PRIu64 ", +%" PRIu64 ") -> %s %" PRIu64, a, soff, len,
		     b, doff);
		ssize_t n = copy_file_range(in, &i, out, &o, len, 0);
		struct stat so;

		if (n < 0 && errno == EXDEV && !fstat(in, &st) && !fstat(out, &so))
			die("copy_file_range %s -> %s: EXDEV; source mode %o ino %ju dev %ju, "
			    "destination mode %o ino %ju dev %ju",
			    a, b, st.st_mode, (uintmax_t)st.st_ino, (uintmax_t)st.st_dev,
			    so.st_mode, (uintmax_t)so.st_ino, (uintmax_t)so.st_dev);
		expect((int)n, "copy_file_range", a, 0);
		close(out);
	}
	close(in);
}

static void op_xattr(void)
{
	char p[256], name[16], list[1024];
	size_t len = below(rnd() % 8 ? 200 : 3000);
	int what = (int)below(4);

	random_path(p, sizeof(p));
	snprintf(name, sizeof(name), "user.x%d", (int)below(4));
	note("xattr %d %s %s (%zu)", what, p, name, len);
	switch (what) {
	case 0:
		fill_random(buf, len);
		/* EPERM: user. xattrs on a symlink; E2BIG/ENOSPC are not expected */
		expect(lsetxattr(p, name, buf, len, 0), "setxattr", p, ERR(EPERM));
		break;
	case 1:
		expect((int)lgetxattr(p, name, buf, 4096), "getxattr", p, 0);
		break;
	case 2:
		expect(lremovexattr(p, name), "removexattr", p, ERR(EPERM));
		break;
	default:
		expect((int)llistxattr(p, list, sizeof(list)), "listxattr", p, 0);
	}
}

static void op_fsync(void)
{
	char p[256];
	int dir = rnd() % 3 == 0, fd;

	pick_path(p, sizeof(p), dir);
	note("fsync %s", p);
	fd = open(p, (dir ? O_RDONLY | O_DIRECTORY : O_WRONLY) | O_NOFOLLOW);
	expect(fd, "open for fsync", p, 0);
	if (fd < 0)
		return;
	expect(rnd() & 1 ? fsync(fd) : fdatasync(fd), "fsync", p, 0);
	close(fd);
}

static void op_readdir(void)
{
	char p[256];
	struct dirent *de;
	struct stat st;
	DIR *d;

	pick_path(p, sizeof(p), 1);
	if (rnd() % 4 == 0)
		snprintf(p, sizeof(p), "%s", top);
	note("readdir %s", p);
	d = opendir(p);
	if (!d) {
		expect(-1, "opendir", p, 0);
		return;
	}
	while ((errno = 0, de = readdir(d)))
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW))
			expect(-1, "fstatat", de->d_name, 0);
	expect(errno ? -1 : 0, "readdir", p, 0);
	closedir(d);
}

static void op_stat_read(void)
{
	char p[256];
	struct stat st;
	int fd;

	random_path(p, sizeof(p));
	note("stat/read %s", p);
	if (lstat(p, &st)) {
		expect(-1, "lstat", p, 0);
		return;
	}
	if (!S_ISREG(st.st_mode))
		return;
	fd = open(p, O_RDONLY | O_NOFOLLOW);
	expect(fd, "open for read", p, 0);
	if (fd < 0)
		return;
	expect((int)pread(fd, buf, 1 << 20, (off_t)below(MAX_FILE)), "pread", p, 0);
	close(fd);
}

/* --- the private, modelled files --------------------------------------------- */

static struct priv {
	char path[256];
	int fd;
	uint8_t *model;
	uint64_t size;
} pv[2];

static void priv_open(void)
{
	int i;

	for (i = 0; i < 2; i++) {
		snprintf(pv[i].path, sizeof(pv[i].path), "%s/p%d.%c", top, worker_id, 'a' + i);
		pv[i].fd = open(pv[i].path, O_RDWR | O_CREAT | O_TRUNC, 0644);
		pv[i].model = calloc(1, PRIV_SIZE);
		if (pv[i].fd < 0 || !pv[i].model)
			die("open %s: %s", pv[i].path, strerror(errno));
		pv[i].size = 0;
	}
}

static void priv_set(struct priv *f, const uint8_t *data, uint64_t off, uint64_t len)
{
	if (!len)
		return;
	memcpy(f->model + off, data, len);
	if (off + len > f->size)
		f->size = off + len;
}

static void priv_check(struct priv *f, uint64_t off, uint64_t len)
{
	uint64_t want = off >= f->size ? 0 : f->size - off, i;
	ssize_t n;

	if (want > len)
		want = len;
	n = pread(f->fd, buf, len, (off_t)off);
	if (n < 0 || (uint64_t)n != want)
		die("read %s [%" PRIu64 ", +%" PRIu64 "): %zd of %" PRIu64 " bytes (%s)", f->path,
		    off, len, n, want, n < 0 ? strerror(errno) : "short");
	for (i = 0; i < want; i++)
		if (buf[i] != f->model[off + i])
			die("read %s: byte %" PRIu64 " is %02x, the model says %02x", f->path,
			    off + i, buf[i], f->model[off + i]);
}

/* Notes a private op, and logs it to MODELDIR/pN.ops. */
#define pnote(...)                                                                                 \
	do {                                                                                       \
		note(__VA_ARGS__);                                                                 \
		if (priv_log)                                                                      \
			fprintf(priv_log, "%" PRIu64 " %s\n", op_count, ring[op_count % RING]);    \
	} while (0)

static void op_private(void)
{
	struct priv *f = &pv[below(2)], *g = &pv[below(2)];
	uint64_t off = below(PRIV_SIZE), len, doff;
	loff_t i, o;
	ssize_t n;

	if (rnd() & 1)
		off &= ~(uint64_t)(BS - 1);
	len = 1 + below(PRIV_SIZE - off < (256 << 10) ? PRIV_SIZE - off : 256 << 10);
	switch (below(5)) {
	case 0:
		pnote("private write %s [%" PRIu64 ", +%" PRIu64 ")", f->path, off, len);
		fill_random(buf, len);
		if (pwrite(f->fd, buf, len, (off_t)off) != (ssize_t)len)
			die("pwrite %s: %s", f->path, strerror(errno));
		priv_set(f, buf, off, len);
		break;
	case 1:
		pnote("private truncate %s %" PRIu64, f->path, off);
		if (ftruncate(f->fd, (off_t)off))
			die("ftruncate %s: %s", f->path, strerror(errno));
		if (off < f->size)
			memset(f->model + off, 0, f->size - off);
		f->size = off;
		break;
	case 2:
		pnote("private punch %s [%" PRIu64 ", +%" PRIu64 ")", f->path, off, len);
		if (fallocate(f->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off,
			      (off_t)len))
			die("punch %s: %s", f->path, strerror(errno));
		if (off < f->size)
			memset(f->model + off, 0,
			       (off + len < f->size ? off + len : f->size) - off);
		break;
	case 3:
		if (f == g || !f->size)
			break;
		off = below(f->size) & ~(uint64_t)(BS - 1);
		doff = below(PRIV_SIZE / BS) * BS;
		len = f->size - off;
		if (doff + len > PRIV_SIZE)
			len = PRIV_SIZE - doff;
		o = (loff_t)doff;
		pnote("private clone %s [%" PRIu64 ", +%" PRIu64 ") -> %s %jd", f->path, off, len,
		      g->path, (intmax_t)o);
		i = (loff_t)off;
		n = copy_file_range(f->fd, &i, g->fd, &o, len, 0);
		if (n < 0 || (uint64_t)n != len)
			die("copy_file_range %s -> %s: %zd of %" PRIu64 " (%s)", f->path, g->path,
			    n, len, n < 0 ? strerror(errno) : "short");
		priv_set(g, f->model + off, doff, len);
		break;
	default:
		pnote("private read %s [%" PRIu64 ", +%" PRIu64 ")", f->path, off, len);
		priv_check(f, off, len);
	}
}

/* Checks both files whole, fsyncs them and saves the models. */
static void priv_finish(void)
{
	int i;

	for (i = 0; i < 2; i++) {
		struct priv *f = &pv[i];
		char out[512];
		FILE *m;

		note("private final check %s", f->path);
		priv_check(f, 0, PRIV_SIZE);
		if (fsync(f->fd) || close(f->fd))
			die("fsync %s: %s", f->path, strerror(errno));
		if (!model_dir)
			continue;
		snprintf(out, sizeof(out), "%s/p%d.%c", model_dir, worker_id, 'a' + i);
		m = fopen(out, "w");
		if (!m || fwrite(f->model, 1, f->size, m) != f->size || fclose(m))
			die("%s: %s", out, strerror(errno));
	}
}

/* --- workers ---------------------------------------------------------------------- */

static void (*const ops[])(void) = {
	op_create,    op_create,    op_unlink,	  op_rename,  op_rename,  op_mkdir,
	op_rmdir,     op_link,	    op_symlink,	  op_write,   op_write,	  op_truncate,
	op_fallocate, op_copy,	    op_copy,	  op_xattr,   op_xattr,	  op_fsync,
	op_readdir,   op_stat_read, op_stat_read, op_private, op_private, op_private,
};

static int worker(uint64_t seed, double seconds)
{
	double end = now() + seconds;

	rng = seed * 0x9e3779b97f4a7c15ull + 0x2545f4914f6cdd1dull;
	buf = malloc(PRIV_SIZE + 1);
	if (!buf)
		die("out of memory");
	priv_open();
	if (model_dir) {
		char path[512];
		snprintf(path, sizeof(path), "%s/p%d.ops", model_dir, worker_id);
		priv_log = fopen(path, "w");
		if (!priv_log)
			die("%s: %s", path, strerror(errno));
	}
	while (now() < end && (!max_ops || op_count < max_ops)) {
		if (private_only)
			op_private();
		else
			ops[below(sizeof(ops) / sizeof(ops[0]))]();
	}
	priv_finish();
	if (priv_log)
		fclose(priv_log);
	printf("rfs_stress: worker %d: %" PRIu64 " ops\n", worker_id, op_count);
	return 0;
}

/* --- walk --------------------------------------------------------------------------- */

static int walk_errors;
static uint64_t walk_files, walk_bytes;

static void walk_bad(const char *path, const char *what)
{
	fprintf(stderr, "rfs_stress: walk: %s %s: %s\n", what, path, strerror(errno));
	walk_errors++;
}

static void walk_xattrs(const char *path)
{
	char list[4096], val[8192];
	ssize_t n = llistxattr(path, list, sizeof(list)), i;

	if (n < 0)
		return walk_bad(path, "listxattr");
	for (i = 0; i < n; i += (ssize_t)strlen(list + i) + 1)
		if (lgetxattr(path, list + i, val, sizeof(val)) < 0)
			walk_bad(path, list + i);
}

static void walk_read(const char *path, const struct stat *st)
{
	int fd = open(path, O_RDONLY | O_NOFOLLOW);
	uint64_t total = 0;
	ssize_t n;

	if (fd < 0)
		return walk_bad(path, "open");
	while ((n = read(fd, buf, 1 << 20)) > 0)
		total += (uint64_t)n;
	if (n < 0)
		walk_bad(path, "read");
	else if (total != (uint64_t)st->st_size) {
		fprintf(stderr, "rfs_stress: walk: %s: read %" PRIu64 " bytes, st_size %jd\n", path,
			total, (intmax_t)st->st_size);
		walk_errors++;
	}
	close(fd);
	walk_bytes += total;
}

static int walk_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	char target[8192];

	(void)ftw;
	walk_files++;
	if (type == FTW_NS || type == FTW_DNR) {
		walk_bad(path, type == FTW_NS ? "stat" : "opendir");
		return 0;
	}
	if (type == FTW_SL) {
		if (readlink(path, target, sizeof(target)) < 0)
			walk_bad(path, "readlink");
		return 0;
	}
	walk_xattrs(path);
	if (S_ISREG(st->st_mode))
		walk_read(path, st);
	return 0;
}

static int walk(const char *dir)
{
	buf = malloc(1 << 20);
	if (!buf || nftw(dir, walk_one, 32, FTW_PHYS))
		walk_bad(dir, "walk");
	printf("rfs_stress: walked %" PRIu64 " entries, read %" PRIu64 " bytes, %d errors\n",
	       walk_files, walk_bytes, walk_errors);
	return walk_errors ? 1 : 0;
}

/* --- main ------------------------------------------------------------------------------ */

static void usage(void)
{
	fprintf(stderr,
		"usage: rfs_stress [-p procs] [-t seconds] [-N ops] [-S seed] [-m MODELDIR] [-P] "
		"DIR\n"
		"       rfs_stress -w DIR\n");
	exit(2);
}

int main(int argc, char **argv)
{
	int procs = 4, c, i, failed = 0, walk_mode = 0;
	uint64_t seed = 1;
	double seconds = 10;
	pid_t *pids;

	while ((c = getopt(argc, argv, "p:t:N:S:m:wP")) != -1) {
		switch (c) {
		case 'p':
			procs = atoi(optarg);
			break;
		case 't':
			seconds = atof(optarg);
			break;
		case 'N':
			max_ops = strtoull(optarg, NULL, 0);
			break;
		case 'S':
			seed = strtoull(optarg, NULL, 0);
			break;
		case 'm':
			model_dir = optarg;
			break;
		case 'w':
			walk_mode = 1;
			break;
		case 'P':
			private_only = 1;
			break;
		default:
			usage();
		}
	}
	if (optind != argc - 1 || procs < 1 || procs > 64 || seconds <= 0)
		usage();
	top = argv[optind];
	if (walk_mode)
		return walk(top);
	pids = calloc((size_t)procs, sizeof(*pids));
	if (!pids)
		return 1;
	printf("rfs_stress: %d workers, %.0f s, seed %" PRIu64 "\n", procs, seconds, seed);
	fflush(stdout);
	for (i = 0; i < procs; i++) {
		pids[i] = fork();
		if (pids[i] == 0) {
			worker_id = i;
			exit(worker(seed * 1000 + (uint64_t)i, seconds));
		}
		if (pids[i] < 0) {
			perror("rfs_stress: fork");
			failed = 1;
			break;
		}
	}
	for (i = 0; i < procs && pids[i] > 0; i++) {
		int st;
		if (waitpid(pids[i], &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st)) {
			fprintf(stderr, "rfs_stress: worker %d failed (seed %" PRIu64 ")\n", i,
				seed);
			failed = 1;
		}
	}
	free(pids);
	return failed;
}
