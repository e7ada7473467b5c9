/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * test_dev.c - unit tests of lib/dev.c: file and RAM backends, the image
 * lock, and the write log.
 */
#include <check.h>
#include <dirent.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dev.h"
#include "testutil.h"
#include "util.h"

#define KiB (1024ull)
#define MiB (1024ull * KiB)
#define GiB (1024ull * MiB)
#define TiB (1024ull * GiB)

/* Every file a test makes lives in this directory, removed by main(). */
static char tmpdir[] = "/tmp/rfs_test_dev.XXXXXX";

static void tmp_path(char *out, size_t outlen, const char *name)
{
	snprintf(out, outlen, "%s/%s", tmpdir, name);
	unlink(out);
}

/* A path made by mkstemp (an existing empty file). */
static void tmp_mkstemp(char *out, size_t outlen)
{
	int fd;

	snprintf(out, outlen, "%s/img.XXXXXX", tmpdir);
	fd = mkstemp(out);
	ck_assert_int_ge(fd, 0);
	close(fd);
}

static void fill_pattern(uint8_t *p, size_t len, uint64_t seed)
{
	size_t i;

	for (i = 0; i < len; i++)
		p[i] = (uint8_t)((seed * 131 + i * 7 + (i >> 8)) ^ (seed >> 3));
}

static int count_open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	ck_assert_ptr_nonnull(d);
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

/* --- file backend ---------------------------------------------------- */

static void check_sparse_create(uint64_t size)
{
	char path[256];
	struct rfs_dev *dev = NULL;
	struct stat st;

	tmp_path(path, sizeof(path), "sparse.img");
	ck_assert_int_eq(dev_open_file(path, RFS_DEV_CREATE, size, &dev), 0);
	ck_assert_uint_eq(dev->size, size);
	ck_assert_int_ge(dev->fd, 0);
	ck_assert_ptr_null(dev->mem);
	ck_assert_int_eq(dev->readonly, 0);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert(S_ISREG(st.st_mode));
	ck_assert_uint_eq((uint64_t)st.st_size, size);
	ck_assert_uint_le((uint64_t)st.st_blocks * 512, 64 * KiB);
	dev_close(dev);
	unlink(path);
}

START_TEST(test_create_sparse)
{
	check_sparse_create(1 * MiB);
	check_sparse_create(3 * GiB + 4096);
}
END_TEST

START_TEST(test_create_extends_mkstemp_file)
{
	char path[256];
	struct rfs_dev *dev = NULL;
	struct stat st;

	tmp_mkstemp(path, sizeof(path));
	ck_assert_int_eq(dev_open_file(path, RFS_DEV_CREATE, 8 * MiB, &dev), 0);
	ck_assert_uint_eq(dev->size, 8 * MiB);
	ck_assert_int_eq(fstat(dev->fd, &st), 0);
	ck_assert_uint_eq((uint64_t)st.st_size, 8 * MiB);
	ck_assert_uint_le((uint64_t)st.st_blocks * 512, 64 * KiB);
	dev_close(dev);
	unlink(path);
}
END_TEST

/* The header promises "created or extended to SIZE": an existing larger
 * image must never be cut down (that would destroy its tail). */
START_TEST(test_create_never_shrinks)
{
	char path[256];
	struct rfs_dev *dev = NULL;
	uint8_t in[4096], out[4096];
	struct stat st;

	tmp_mkstemp(path, sizeof(path));
	ck_assert_int_eq(dev_open_file(path, RFS_DEV_CREATE, 4 * MiB, &dev), 0);
	fill_pattern(in, sizeof(in), 9);
	ck_assert_int_eq(dev_pwrite(dev, in, sizeof(in), 3 * MiB), 0);
	dev_close(dev);

	ck_assert_int_eq(dev_open_file(path, RFS_DEV_CREATE, 1 * MiB, &dev), 0);
	ck_assert_uint_eq(dev->size, 4 * MiB);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_uint_eq((uint64_t)st.st_size, 4 * MiB);
	ck_assert_int_eq(dev_pread(dev, out, sizeof(out), 3 * MiB), 0);
	ck_assert_mem_eq(in, out, sizeof(in));
	dev_close(dev);
	unlink(path);
}
END_TEST

START_TEST(test_open_missing_fails)
{
	char path[256];
	struct rfs_dev *dev = NULL;

	tmp_path(path, sizeof(path), "missing.img");
	ck_assert_int_eq(dev_open_file(path, 0, 0, &dev), -ENOENT);
	ck_assert_ptr_null(dev);
	ck_assert_int_eq(dev_open_file(path, RFS_DEV_RDONLY, 0, &dev), -ENOENT);
	ck_assert_int_eq(access(path, F_OK), -1);
	/* A directory is not a device. */
	ck_assert_int_lt(dev_open_file(tmpdir, RFS_DEV_RDONLY, 0, &dev), 0);
	ck_assert_ptr_null(dev);
}
END_TEST

static void roundtrip_at(struct rfs_dev *dev, uint64_t off, size_t len, uint64_t seed)
{
	uint8_t *in = malloc(len), *out = malloc(len);

	ck_assert_ptr_nonnull(in);
	ck_assert_ptr_nonnull(out);
	fill_pattern(in, len, seed);
	memset(out, 0xee, len);
	ck_assert_int_eq(dev_pwrite(dev, in, len, off), 0);
	ck_assert_int_eq(dev_pread(dev, out, len, off), 0);
	ck_assert_mem_eq(in, out, len);
	free(in);
	free(out);
}

static void check_pattern_at(struct rfs_dev *dev, uint64_t off, size_t len, uint64_t seed)
{
	uint8_t *in = malloc(len), *out = malloc(len);

	ck_assert_ptr_nonnull(in);
	ck_assert_ptr_nonnull(out);
	fill_pattern(in, len, seed);
	ck_assert_int_eq(dev_pread(dev, out, len, off), 0);
	ck_assert_mem_eq(in, out, len);
	free(in);
	free(out);
}

START_TEST(test_sparse_1tib_large_offsets)
{
	const uint64_t size = 1 * TiB;
	char path[256];
	struct rfs_dev *dev = NULL;
	uint8_t zero[8192], out[8192];
	struct stat st;

	tmp_path(path, sizeof(path), "big.img");
	ck_assert_int_eq(dev_open_file(path, RFS_DEV_CREATE, size, &dev), 0);
	ck_assert_uint_eq(dev->size, size);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_uint_eq((uint64_t)st.st_size, size);
	ck_assert_uint_le((uint64_t)st.st_blocks * 512, 64 * KiB);

	roundtrip_at(dev, size - 4096, 4096, 1);	/* the very last block */
	roundtrip_at(dev, 512 * GiB + 12345, 10000, 2); /* unaligned, crosses blocks */
	roundtrip_at(dev, 5 * GiB - 3, 7, 3);		/* crosses the 4 GiB + 1 GiB mark */
	roundtrip_at(dev, size - 1, 1, 4);		/* the very last byte */

	/* Untouched regions read as zeros. */
	memset(zero, 0, sizeof(zero));
	ck_assert_int_eq(dev_pread(dev, out, sizeof(out), 700 * GiB), 0);
	ck_assert_mem_eq(out, zero, sizeof(out));
	ck_assert_uint_eq(dev->nr_writes, 4);
	ck_assert_int_eq(dev_flush(dev), 0);
	ck_assert_uint_eq(dev->nr_flushes, 1);
	dev_close(dev);

	/* Still sparse; reopened without CREATE it keeps size and data. */
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_uint_le((uint64_t)st.st_blocks * 512, 256 * KiB);
	ck_assert_int_eq(dev_open_file(path, 0, 0, &dev), 0);
	ck_assert_uint_eq(dev->size, size);
	check_pattern_at(dev, size - 4096, 4095, 1); /* its last byte was rewritten */
	check_pattern_at(dev, size - 1, 1, 4);
	check_pattern_at(dev, 512 * GiB + 12345, 10000, 2);
	check_pattern_at(dev, 5 * GiB - 3, 7, 3);
	dev_close(dev);
	unlink(path);
}
END_TEST

static void check_out_of_range(struct rfs_dev *dev)
{
	const uint64_t size = dev->size;
	uint64_t writes = dev->nr_writes;
	uint8_t buf[64], guard[64];

	memset(buf, 0xab, sizeof(buf));
	memset(guard, 0xab, sizeof(guard));
	ck_assert_int_lt(dev_pread(dev, buf, 1, size), 0);
	ck_assert_int_lt(dev_pread(dev, buf, 2, size - 1), 0);
	ck_assert_int_lt(dev_pread(dev, buf, sizeof(buf), size + 4096), 0);
	ck_assert_int_lt(dev_pread(dev, buf, 1, UINT64_MAX), 0);
	ck_assert_int_lt(dev_pread(dev, buf, 16, UINT64_MAX - 8), 0);
	ck_assert_int_lt(dev_pread(dev, buf, SIZE_MAX, 1), 0);
	ck_assert_int_lt(dev_pread(dev, buf, SIZE_MAX, 0), 0);
	ck_assert_mem_eq(buf, guard, sizeof(buf)); /* failed reads wrote nothing */

	ck_assert_int_lt(dev_pwrite(dev, buf, 1, size), 0);
	ck_assert_int_lt(dev_pwrite(dev, buf, 2, size - 1), 0);
	ck_assert_int_lt(dev_pwrite(dev, buf, 1, UINT64_MAX), 0);
	ck_assert_int_lt(dev_pwrite(dev, buf, 16, UINT64_MAX - 8), 0);
	ck_assert_int_lt(dev_pwrite(dev, buf, SIZE_MAX, 1), 0);
	ck_assert_uint_eq(dev->nr_writes, writes);

	/* The edges themselves are fine. */
	ck_assert_int_eq(dev_pwrite(dev, buf, 1, size - 1), 0);
	ck_assert_int_eq(dev_pread(dev, buf, 1, size - 1), 0);
	ck_assert_int_eq(dev_pread(dev, buf, 0, size), 0);
	ck_assert_uint_eq(dev->size, size);
}

START_TEST(test_out_of_range_file)
{
	char path[256];
	struct rfs_dev *dev = NULL;
	struct stat st;

	tmp_mkstemp(path, sizeof(path));
	ck_assert_int_eq(dev_open_file(path, RFS_DEV_CREATE, 64 * KiB, &dev), 0);
	check_out_of_range(dev);
	dev_close(dev);
	/* A refused write never extended the file. */
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_uint_eq((uint64_t)st.st_size, 64 * KiB);
	unlink(path);
}
END_TEST

START_TEST(test_out_of_range_mem)
{
	struct rfs_dev *dev = NULL;

	ck_assert_int_eq(dev_open_mem(64 * KiB, &dev), 0);
	check_out_of_range(dev);
	dev_close(dev);
}
END_TEST

START_TEST(test_readonly_refuses_writes)
{
	char path[256];
	struct rfs_dev *dev = NULL;
	uint8_t in[4096], out[4096];

	tmp_mkstemp(path, sizeof(path));
	ck_assert_int_eq(dev_open_file(path, RFS_DEV_CREATE, 1 * MiB, &dev), 0);
	fill_pattern(in, sizeof(in), 5);
	ck_assert_int_eq(dev_pwrite(dev, in, sizeof(in), 8192), 0);
	dev_close(dev);

	ck_assert_int_eq(dev_open_file(path, RFS_DEV_RDONLY, 0, &dev), 0);
	ck_assert_int_eq(dev->readonly, 1);
	ck_assert_uint_eq(dev->size, 1 * MiB);
	memset(out, 0, sizeof(out));
	ck_assert_int_eq(dev_pwrite(dev, out, sizeof(out), 8192), -EROFS);
	ck_assert_int_eq(dev_pwrite(dev, out, 1, 0), -EROFS);
	ck_assert_uint_eq(dev->nr_writes, 0);
	ck_assert_int_eq(dev_pread(dev, out, sizeof(out), 8192), 0);
	ck_assert_mem_eq(in, out, sizeof(in));
	ck_assert_int_eq(dev_flush(dev), 0);
	dev_close(dev);
	unlink(path);
}
END_TEST

/* --- the image lock -------------------------------------------------- */

/* Exit status of a child that tries to open PATH: 0 opened, 1 -EBUSY,
 * 2 any other error. */
static int child_try_open(const char *path, unsigned flags)
{
	int status;
	pid_t pid = fork();

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct rfs_dev *dev = NULL;
		int ret = dev_open_file(path, flags, 0, &dev);
		if (!ret)
			dev_close(dev);
		_exit(ret == 0 ? 0 : ret == -EBUSY ? 1 : 2);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status));
	return WEXITSTATUS(status);
}

START_TEST(test_lock_exclusive_same_process)
{
	char path[256];
	struct rfs_dev *a = NULL, *b = NULL;

	tmp_mkstemp(path, sizeof(path));
	ck_assert_int_eq(dev_open_file(path, RFS_DEV_CREATE, 1 * MiB, &a), 0);
	ck_assert_int_eq(dev_open_file(path, 0, 0, &b), -EBUSY);
	ck_assert_ptr_null(b);
	ck_assert_int_eq(dev_open_file(path, RFS_DEV_CREATE, 1 * MiB, &b), -EBUSY);
	ck_assert_ptr_null(b);
	/* The test escape hatch still opens. */
	ck_assert_int_eq(dev_open_file(path, RFS_DEV_NOLOCK, 0, &b), 0);
	dev_close(b);
	b = NULL;
	dev_close(a);
	ck_assert_int_eq(dev_open_file(path, 0, 0, &b), 0);
	ck_assert_uint_eq(b->size, 1 * MiB);
	dev_close(b);
	unlink(path);
}
END_TEST

START_TEST(test_lock_across_fork)
{
	char path[256];
	struct rfs_dev *a = NULL;

	tmp_mkstemp(path, sizeof(path));
	ck_assert_int_eq(dev_open_file(path, RFS_DEV_CREATE, 1 * MiB, &a), 0);
	ck_assert_int_eq(child_try_open(path, 0), 1);
	ck_assert_int_eq(child_try_open(path, RFS_DEV_RDONLY), 1);
	ck_assert_int_eq(child_try_open(path, RFS_DEV_NOLOCK), 0);
	dev_close(a);
	ck_assert_int_eq(child_try_open(path, 0), 0);
	ck_assert_int_eq(child_try_open(path, RFS_DEV_RDONLY), 0);
	unlink(path);
}
END_TEST

/* The child holds the lock; the parent is refused until the child exits. */
START_TEST(test_lock_held_by_child)
{
	char path[256], c;
	int ready[2], go[2], status;
	struct rfs_dev *dev = NULL;
	pid_t pid;

	tmp_mkstemp(path, sizeof(path));
	ck_assert_int_eq(pipe(ready), 0);
	ck_assert_int_eq(pipe(go), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct rfs_dev *d = NULL;
		char r = dev_open_file(path, RFS_DEV_CREATE, 1 * MiB, &d) ? 'E' : 'R';
		if (write(ready[1], &r, 1) != 1 || read(go[0], &r, 1) != 1)
			_exit(3);
		dev_close(d);
		_exit(0);
	}
	ck_assert_int_eq(read(ready[0], &c, 1), 1);
	ck_assert_int_eq(c, 'R');
	ck_assert_int_eq(dev_open_file(path, 0, 0, &dev), -EBUSY);
	ck_assert_int_eq(dev_open_file(path, RFS_DEV_RDONLY, 0, &dev), -EBUSY);
	ck_assert_int_eq(write(go[1], "g", 1), 1);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	ck_assert_int_eq(dev_open_file(path, 0, 0, &dev), 0);
	ck_assert_uint_eq(dev->size, 1 * MiB);
	dev_close(dev);
	close(ready[0]);
	close(ready[1]);
	close(go[0]);
	close(go[1]);
	unlink(path);
}
END_TEST

START_TEST(test_lock_shared)
{
	char path[256];
	struct rfs_dev *w = NULL, *r1 = NULL, *r2 = NULL;

	tmp_mkstemp(path, sizeof(path));
	ck_assert_int_eq(dev_open_file(path, RFS_DEV_CREATE, 1 * MiB, &w), 0);
	/* A reader is refused while a writer holds the image. */
	ck_assert_int_eq(dev_open_file(path, RFS_DEV_RDONLY, 0, &r1), -EBUSY);
	ck_assert_ptr_null(r1);
	dev_close(w);
	w = NULL;
	/* Readers share; a writer is refused while any reader holds it. */
	ck_assert_int_eq(dev_open_file(path, RFS_DEV_RDONLY, 0, &r1), 0);
	ck_assert_int_eq(dev_open_file(path, RFS_DEV_RDONLY, 0, &r2), 0);
	ck_assert_int_eq(child_try_open(path, RFS_DEV_RDONLY), 0);
	ck_assert_int_eq(dev_open_file(path, 0, 0, &w), -EBUSY);
	ck_assert_int_eq(child_try_open(path, 0), 1);
	dev_close(r1);
	ck_assert_int_eq(dev_open_file(path, 0, 0, &w), -EBUSY);
	dev_close(r2);
	ck_assert_int_eq(dev_open_file(path, 0, 0, &w), 0);
	dev_close(w);
	unlink(path);
}
END_TEST

START_TEST(test_close_releases_fds)
{
	char path[256];
	struct rfs_dev *dev = NULL;
	int before;

	tmp_mkstemp(path, sizeof(path));
	before = count_open_fds();
	ck_assert_int_eq(dev_open_file(path, RFS_DEV_CREATE, 1 * MiB, &dev), 0);
	ck_assert_int_eq(count_open_fds(), before + 1);
	dev_close(dev);
	ck_assert_int_eq(count_open_fds(), before);
	/* A refused open leaks nothing either. */
	ck_assert_int_eq(dev_open_file(path, 0, 0, &dev), 0);
	ck_assert_int_eq(dev_open_file(path, 0, 0, &(struct rfs_dev *){NULL}), -EBUSY);
	ck_assert_int_eq(count_open_fds(), before + 1);
	dev_close(dev);
	dev_close(NULL);
	unlink(path);
}
END_TEST

/* --- RAM backend ----------------------------------------------------- */

START_TEST(test_mem_basics)
{
	struct rfs_dev *dev = NULL;
	uint8_t *all, *zero, in[5000];

	ck_assert_int_eq(dev_open_mem(1 * MiB, &dev), 0);
	ck_assert_uint_eq(dev->size, 1 * MiB);
	ck_assert_int_eq(dev->fd, -1);
	ck_assert_ptr_nonnull(dev->mem);
	ck_assert_int_eq(dev->readonly, 0);
	ck_assert_int_eq(dev->wlog_fd, -1);

	all = malloc(1 * MiB);
	zero = calloc(1, 1 * MiB);
	ck_assert_ptr_nonnull(all);
	ck_assert_ptr_nonnull(zero);
	memset(all, 0xee, 1 * MiB);
	ck_assert_int_eq(dev_pread(dev, all, 1 * MiB, 0), 0);
	ck_assert_mem_eq(all, zero, 1 * MiB);

	roundtrip_at(dev, 0, 4096, 11);
	roundtrip_at(dev, 1 * MiB - 5000, 5000, 12);
	fill_pattern(in, sizeof(in), 12);
	ck_assert_mem_eq(dev->mem + 1 * MiB - 5000, in, sizeof(in));
	ck_assert_uint_eq(dev->nr_writes, 2);
	ck_assert_uint_eq(dev->nr_flushes, 0);
	ck_assert_int_eq(dev_flush(dev), 0);
	ck_assert_int_eq(dev_flush(dev), 0);
	ck_assert_uint_eq(dev->nr_flushes, 2);
	free(all);
	free(zero);
	dev_close(dev);
}
END_TEST

/* --- the write log --------------------------------------------------- */

struct wrec {
	uint32_t kind, len;
	uint64_t off;
	const uint8_t *data;
};

struct wlog {
	uint8_t *raw;
	uint64_t dev_size;
	size_t nrecs;
	struct wrec *recs;
};

/* Reads and checks the structure of the log at PATH. */
static void wlog_load(const char *path, struct wlog *l)
{
	struct rfs_wlog_header hdr;
	size_t cap = 64, pos;
	struct stat st;
	FILE *f = fopen(path, "rb");

	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(fstat(fileno(f), &st), 0);
	ck_assert_uint_ge((uint64_t)st.st_size, sizeof(hdr));
	l->raw = malloc((size_t)st.st_size + 1);
	ck_assert_ptr_nonnull(l->raw);
	ck_assert_uint_eq(fread(l->raw, 1, (size_t)st.st_size, f), (size_t)st.st_size);
	fclose(f);

	memcpy(&hdr, l->raw, sizeof(hdr));
	ck_assert_uint_eq(le64toh(hdr.magic), RFS_WLOG_MAGIC);
	ck_assert_mem_eq(l->raw, "RFSWLOG1", 8);
	l->dev_size = le64toh(hdr.dev_size);
	l->nrecs = 0;
	l->recs = malloc(cap * sizeof(*l->recs));
	ck_assert_ptr_nonnull(l->recs);
	for (pos = sizeof(hdr); pos < (size_t)st.st_size;) {
		struct rfs_wlog_rec rec;
		struct wrec *w;

		ck_assert_uint_le(pos + sizeof(rec), (size_t)st.st_size);
		memcpy(&rec, l->raw + pos, sizeof(rec));
		pos += sizeof(rec);
		if (l->nrecs == cap) {
			cap *= 2;
			l->recs = realloc(l->recs, cap * sizeof(*l->recs));
			ck_assert_ptr_nonnull(l->recs);
		}
		w = &l->recs[l->nrecs++];
		w->kind = le32toh(rec.kind);
		w->len = le32toh(rec.len);
		w->off = le64toh(rec.off);
		w->data = l->raw + pos;
		if (w->kind == RFS_WLOG_FLUSH) {
			ck_assert_uint_eq(w->len, 0);
			continue;
		}
		ck_assert_uint_eq(w->kind, RFS_WLOG_WRITE);
		ck_assert_uint_le(w->off + w->len, l->dev_size);
		ck_assert_uint_le(pos + w->len, (size_t)st.st_size);
		pos += w->len;
	}
	ck_assert_uint_eq(pos, (size_t)st.st_size);
}

static void wlog_free(struct wlog *l)
{
	free(l->raw);
	free(l->recs);
}

/* Applies the first N records of L to IMG (which the caller zeroed). */
static void wlog_replay(const struct wlog *l, size_t n, uint8_t *img)
{
	size_t i;

	for (i = 0; i < n && i < l->nrecs; i++)
		if (l->recs[i].kind == RFS_WLOG_WRITE)
			memcpy(img + l->recs[i].off, l->recs[i].data, l->recs[i].len);
}

static struct rfs_dev *open_backend(int file, uint64_t size)
{
	struct rfs_dev *dev = NULL;
	char path[256];

	if (!file) {
		ck_assert_int_eq(dev_open_mem(size, &dev), 0);
		return dev;
	}
	tmp_path(path, sizeof(path), "wlog_dev.img");
	ck_assert_int_eq(dev_open_file(path, RFS_DEV_CREATE, size, &dev), 0);
	return dev;
}

struct expect {
	uint32_t kind, len;
	uint64_t off;
	uint8_t *snap; /* device image at a flush */
};

/* _i: 0 = RAM backend, 1 = file backend. */
START_TEST(test_writelog_replay)
{
	const uint64_t size = 256 * KiB;
	size_t nops = (size_t)test_scale(300), i, nexp = 0, nflush = 0;
	struct expect *exp = calloc(nops, sizeof(*exp));
	uint8_t *data = malloc(16384), *img = malloc(size), *now = malloc(size);
	struct rfs_dev *dev = open_backend(_i, size);
	struct rfs_rng rng;
	struct wlog l;
	char path[256];

	ck_assert_ptr_nonnull(exp);
	ck_assert_ptr_nonnull(data);
	ck_assert_ptr_nonnull(img);
	ck_assert_ptr_nonnull(now);
	rng_init(&rng, _i ? "test_writelog_replay(file)" : "test_writelog_replay(mem)", 0x5eed);

	/* Writes before the log starts are not in it. */
	fill_pattern(data, 4096, 77);
	ck_assert_int_eq(dev_pwrite(dev, data, 4096, 0), 0);
	memset(data, 0, 4096);
	ck_assert_int_eq(dev_pwrite(dev, data, 4096, 0), 0);

	tmp_path(path, sizeof(path), "replay.wlog");
	ck_assert_int_eq(dev_writelog_start(dev, path), 0);
	ck_assert_int_ge(dev->wlog_fd, 0);
	for (i = 0; i < nops; i++) {
		struct expect *e = &exp[nexp++];
		size_t j, len;

		if (rng_below(&rng, 100) < 15) {
			ck_assert_int_eq(dev_flush(dev), 0);
			e->kind = RFS_WLOG_FLUSH;
			e->snap = malloc(size);
			ck_assert_ptr_nonnull(e->snap);
			ck_assert_int_eq(dev_pread(dev, e->snap, size, 0), 0);
			nflush++;
			continue;
		}
		len = 1 + (size_t)rng_below(&rng, rng_below(&rng, 4) ? 4096 : 16384);
		e->kind = RFS_WLOG_WRITE;
		e->len = (uint32_t)len;
		e->off = rng_below(&rng, size - len + 1);
		for (j = 0; j < len; j++)
			data[j] = (uint8_t)rng_next(&rng);
		ck_assert_int_eq(dev_pwrite(dev, data, len, e->off), 0);
	}
	ck_assert_int_eq(dev_flush(dev), 0);
	ck_assert_uint_eq(dev->nr_flushes, nflush + 1);

	wlog_load(path, &l);
	ck_assert_uint_eq(l.dev_size, size);
	ck_assert_uint_eq(l.nrecs, nexp + 1);
	ck_assert_uint_eq(l.recs[nexp].kind, RFS_WLOG_FLUSH);
	for (i = 0; i < nexp; i++) {
		ck_assert_uint_eq(l.recs[i].kind, exp[i].kind);
		if (exp[i].kind == RFS_WLOG_WRITE) {
			ck_assert_uint_eq(l.recs[i].len, exp[i].len);
			ck_assert_uint_eq(l.recs[i].off, exp[i].off);
			continue;
		}
		/* Replaying up to this flush gives the image as it was then. */
		memset(img, 0, size);
		wlog_replay(&l, i, img);
		ck_assert_mem_eq(img, exp[i].snap, size);
	}
	memset(img, 0, size);
	wlog_replay(&l, l.nrecs, img);
	ck_assert_int_eq(dev_pread(dev, now, size, 0), 0);
	ck_assert_mem_eq(img, now, size);

	for (i = 0; i < nexp; i++)
		free(exp[i].snap);
	wlog_free(&l);
	free(exp);
	free(data);
	free(img);
	free(now);
	dev_close(dev);
}
END_TEST

/* A second dev_writelog_start switches to the new log without leaking the
 * old descriptor; dev_close closes the log. */
START_TEST(test_writelog_restart)
{
	struct rfs_dev *dev = NULL;
	char p1[256], p2[256];
	uint8_t b[100];
	struct wlog l1, l2;
	int before = count_open_fds();

	tmp_path(p1, sizeof(p1), "one.wlog");
	tmp_path(p2, sizeof(p2), "two.wlog");
	ck_assert_int_eq(dev_open_mem(64 * KiB, &dev), 0);
	ck_assert_int_eq(dev_writelog_start(dev, p1), 0);
	ck_assert_int_eq(count_open_fds(), before + 1);
	fill_pattern(b, sizeof(b), 1);
	ck_assert_int_eq(dev_pwrite(dev, b, sizeof(b), 10), 0);
	ck_assert_int_eq(dev_writelog_start(dev, p2), 0);
	ck_assert_int_eq(count_open_fds(), before + 1);
	ck_assert_int_eq(dev_pwrite(dev, b, 50, 1000), 0);
	ck_assert_int_eq(dev_flush(dev), 0);
	dev_close(dev);
	ck_assert_int_eq(count_open_fds(), before);

	wlog_load(p1, &l1);
	wlog_load(p2, &l2);
	ck_assert_uint_eq(l1.nrecs, 1);
	ck_assert_uint_eq(l1.recs[0].off, 10);
	ck_assert_uint_eq(l1.recs[0].len, 100);
	ck_assert_mem_eq(l1.recs[0].data, b, 100);
	ck_assert_uint_eq(l2.nrecs, 2);
	ck_assert_uint_eq(l2.recs[0].off, 1000);
	ck_assert_uint_eq(l2.recs[0].len, 50);
	ck_assert_uint_eq(l2.recs[1].kind, RFS_WLOG_FLUSH);
	wlog_free(&l1);
	wlog_free(&l2);
}
END_TEST

/* A gate in the backend: the armed write does its I/O, then blocks until
 * the test opens the gate. */
static struct {
	pthread_mutex_t m;
	pthread_cond_t cv;
	const struct rfs_dev_ops *orig;
	struct rfs_dev_ops ops;
	int armed, blocked, open;
} gate = {.m = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static int gate_pwrite(struct rfs_dev *dev, const void *buf, size_t len, uint64_t off)
{
	int ret = gate.orig->pwrite(dev, buf, len, off);

	pthread_mutex_lock(&gate.m);
	if (gate.armed) {
		gate.armed = 0;
		gate.blocked = 1;
		pthread_cond_broadcast(&gate.cv);
		while (!gate.open)
			pthread_cond_wait(&gate.cv, &gate.m);
	}
	pthread_mutex_unlock(&gate.m);
	return ret;
}

static void gate_install(struct rfs_dev *dev)
{
	gate.orig = dev->ops;
	gate.ops = *dev->ops;
	gate.ops.pwrite = gate_pwrite;
	gate.armed = 1;
	gate.blocked = gate.open = 0;
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

struct writer {
	struct rfs_dev *dev;
	uint8_t byte;
	int ret;
};

static void *writer_main(void *arg)
{
	struct writer *w = arg;
	uint8_t b[4096];

	memset(b, w->byte, sizeof(b));
	w->ret = dev_pwrite(w->dev, b, sizeof(b), 0);
	return NULL;
}

/* Two threads write the same range: the log must list the writes in the
 * order they reached the device, or replay gives another image. */
START_TEST(test_writelog_concurrent_order)
{
	const uint64_t size = 64 * KiB;
	struct rfs_dev *dev = NULL;
	struct writer a = {.byte = 'A'}, b = {.byte = 'B'};
	uint8_t *img = calloc(1, size), *now = malloc(size);
	pthread_t ta, tb;
	struct wlog l;
	char path[256];

	ck_assert_ptr_nonnull(img);
	ck_assert_ptr_nonnull(now);
	tmp_path(path, sizeof(path), "race.wlog");
	ck_assert_int_eq(dev_open_mem(size, &dev), 0);
	ck_assert_int_eq(dev_writelog_start(dev, path), 0);
	gate_install(dev);
	a.dev = b.dev = dev;
	ck_assert_int_eq(pthread_create(&ta, NULL, writer_main, &a), 0);
	gate_wait_blocked(); /* A's bytes are on the device, not yet logged */
	ck_assert_int_eq(pthread_create(&tb, NULL, writer_main, &b), 0);
	usleep(100 * 1000); /* B either finishes or waits for A */
	gate_open();
	ck_assert_int_eq(pthread_join(ta, NULL), 0);
	ck_assert_int_eq(pthread_join(tb, NULL), 0);
	ck_assert_int_eq(a.ret, 0);
	ck_assert_int_eq(b.ret, 0);

	wlog_load(path, &l);
	ck_assert_uint_eq(l.nrecs, 2);
	wlog_replay(&l, l.nrecs, img);
	ck_assert_int_eq(dev_pread(dev, now, size, 0), 0);
	ck_assert_mem_eq(img, now, size);
	wlog_free(&l);
	free(img);
	free(now);
	dev_close(dev);
}
END_TEST

/* --- runner ---------------------------------------------------------- */

static Suite *dev_suite(void)
{
	Suite *s = suite_create("dev");
	TCase *tc = tcase_create("file");

	tcase_add_test(tc, test_create_sparse);
	tcase_add_test(tc, test_create_extends_mkstemp_file);
	tcase_add_test(tc, test_create_never_shrinks);
	tcase_add_test(tc, test_open_missing_fails);
	tcase_add_test(tc, test_sparse_1tib_large_offsets);
	tcase_add_test(tc, test_out_of_range_file);
	tcase_add_test(tc, test_readonly_refuses_writes);
	tcase_add_test(tc, test_close_releases_fds);
	suite_add_tcase(s, tc);

	tc = tcase_create("lock");
	tcase_add_test(tc, test_lock_exclusive_same_process);
	tcase_add_test(tc, test_lock_across_fork);
	tcase_add_test(tc, test_lock_held_by_child);
	tcase_add_test(tc, test_lock_shared);
	suite_add_tcase(s, tc);

	tc = tcase_create("mem");
	tcase_add_test(tc, test_mem_basics);
	tcase_add_test(tc, test_out_of_range_mem);
	suite_add_tcase(s, tc);

	tc = tcase_create("writelog");
	tcase_add_loop_test(tc, test_writelog_replay, 0, 2);
	tcase_add_test(tc, test_writelog_restart);
	tcase_add_test(tc, test_writelog_concurrent_order);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_run_in_tmpdir(dev_suite(), tmpdir);
}
