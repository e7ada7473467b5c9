/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * reflink.c - clones on a mounted reflinkfs: copy_file_range shares
 * blocks, writes into shared blocks never change another file, space is
 * counted once, and freeing drops one reference.
 *
 *   RFS_MNT=/mount/point reflink                 the Check suite
 *   reflink crashwriter DIR LOG                  clone, overwrite, fsync
 *                                                until killed
 *   reflink crashcheck DIR LOG                   what LOG says was fsync'ed
 *                                                is intact
 *
 * Space checks allow a few blocks of slack for tree nodes (statfs counts
 * every block; a clone of megabytes must cost only metadata).
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/falloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "itest.h"
#include "rfs_ioctl.h"

#define BS	  4096
#define SLACK	  16 /* blocks of metadata an operation may cost */
#define BASE_SIZE ((4 << 20) + 777)

static const char *mnt;
static char testdir[PATH_MAX];

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static uint8_t *slurp(const char *path, size_t *len)
{
	struct stat st;
	int fd = (int)SYS(open(path, O_RDONLY));
	uint8_t *buf;
	size_t got = 0;

	SYS(fstat(fd, &st));
	buf = malloc((size_t)st.st_size + 1);
	ck_assert_ptr_nonnull(buf);
	while (got < (size_t)st.st_size) {
		ssize_t n = pread(fd, buf + got, (size_t)st.st_size - got, (off_t)got);
		ck_assert_msg(n > 0, "read %s: %s", path, n < 0 ? strerror(errno) : "short");
		got += (size_t)n;
	}
	SYS(close(fd));
	*len = got;
	return buf;
}

/* PATH holds exactly MODEL (LEN bytes). */
static void check_content(const char *path, const uint8_t *model, size_t len)
{
	size_t got, i;
	uint8_t *buf = slurp(path, &got);

	ck_assert_msg(got == len, "%s: size %zu, expected %zu", path, got, len);
	for (i = 0; i < len && buf[i] == model[i]; i++)
		;
	ck_assert_msg(i == len, "%s: byte %zu is %u, expected %u", path, i, buf[i], model[i]);
	free(buf);
}

static void write_file(const char *path, const uint8_t *data, size_t len)
{
	int fd = (int)SYS(open(path, O_CREAT | O_TRUNC | O_WRONLY, 0644));
	pwrite_all(fd, data, len, 0);
	SYS(fsync(fd));
	SYS(close(fd));
}

/* copy_file_range of the whole of SRC into DST (created), in a loop. */
static void clone_file(const char *src, const char *dst)
{
	int in = (int)SYS(open(src, O_RDONLY));
	int out = (int)SYS(open(dst, O_CREAT | O_TRUNC | O_WRONLY, 0644));
	ssize_t n;

	while ((n = copy_file_range(in, NULL, out, NULL, SIZE_MAX >> 2, 0)) > 0)
		;
	ck_assert_msg(n == 0, "copy_file_range %s -> %s: %s", src, dst, strerror(errno));
	SYS(close(in));
	SYS(close(out));
}

static unsigned long long bfree(void)
{
	struct statfs sf;

	SYS(statfs(".", &sf));
	return sf.f_bfree;
}

/* Free blocks once asynchronous releases (FUSE sends RELEASE without
 * waiting; unused CoW staging goes then) have settled near WANT. */
static unsigned long long bfree_settled(unsigned long long want)
{
	unsigned long long f = bfree();
	int i;

	for (i = 0; i < 100 && f + SLACK < want; i++) {
		usleep(50000);
		f = bfree();
	}
	return f;
}

/* Asserts A is within SLACK blocks of B. */
#define NEAR(a, b)                                                                                 \
	ck_assert_msg((a) + SLACK >= (b) && (b) + SLACK >= (a), "%s = %llu, %s = %llu", #a,        \
		      (unsigned long long)(a), #b, (unsigned long long)(b))

static void setup(void)
{
	snprintf(testdir, sizeof(testdir), "%s/r.XXXXXX", mnt);
	ck_assert_msg(mkdtemp(testdir) != NULL, "mkdtemp in %s: %s", mnt, strerror(errno));
	SYS(chdir(testdir));
}

static uint8_t *make_base(const char *path, size_t len, uint64_t seed)
{
	uint8_t *b = malloc(len);

	ck_assert_ptr_nonnull(b);
	fill(b, len, seed);
	write_file(path, b, len);
	return b;
}

/* --- tests ------------------------------------------------------------------- */

/* A clone costs no data blocks and reads back equal, after a remount of
 * the page cache too; the source is unchanged. */
START_TEST(t_clone_whole)
{
	uint8_t *a = make_base("a", BASE_SIZE, 1);
	unsigned long long before = bfree();

	clone_file("a", "b");
	NEAR(bfree(), before);
	drop_caches();
	check_content("b", a, BASE_SIZE);
	check_content("a", a, BASE_SIZE);
	ck_assert_int_eq(system("cp a c && cp --reflink=auto a d"), 0);
	NEAR(bfree(), before);
	check_content("c", a, BASE_SIZE);
	check_content("d", a, BASE_SIZE);
	free(a);
}
END_TEST

/* Overwrites of either side at every alignment around blocks: the other
 * side never changes. */
START_TEST(t_overwrite_alignments)
{
	static const long offs[] = {
		0, 1, 4095, 4096, 4097, 8191, 65535, 131172, BASE_SIZE - 5000, BASE_SIZE - 1};
	static const long lens[] = {1, 4096, 5000, 70000};
	uint8_t *a = make_base("a", BASE_SIZE, 2), *b = malloc(BASE_SIZE + 70000);
	uint8_t data[70000];
	size_t i, j;
	int side;

	ck_assert_ptr_nonnull(b);
	for (side = 0; side < 2; side++)
		for (i = 0; i < sizeof(offs) / sizeof(offs[0]); i++)
			for (j = 0; j < sizeof(lens) / sizeof(lens[0]); j++) {
				const char *w = side ? "a" : "b", *o = side ? "b" : "a";
				size_t end = (size_t)(offs[i] + lens[j]);
				size_t size = end > BASE_SIZE ? end : BASE_SIZE;
				int fd;

				write_file("a", a, BASE_SIZE);
				clone_file("a", "b");
				memcpy(b, a, BASE_SIZE);
				fill(data, (size_t)lens[j], 100 + i * 10 + j);
				fd = (int)SYS(open(w, O_WRONLY));
				pwrite_all(fd, data, (size_t)lens[j], offs[i]);
				SYS(fsync(fd));
				SYS(close(fd));
				memcpy(b + offs[i], data, (size_t)lens[j]);
				if (j == 0 && i % 3 == 0)
					drop_caches();
				check_content(w, b, size);
				check_content(o, a, BASE_SIZE);
			}
	free(a);
	free(b);
}
END_TEST

/* Clones of clones, each overwritten somewhere else: every one keeps its
 * own content; unlinking them in any order frees exactly what is no
 * longer referenced. */
START_TEST(t_chain)
{
	enum { N = 6 };
	uint8_t *m[N];
	uint8_t data[20000];
	unsigned long long base_free, before;
	char name[16], prev[16];
	int i, k, fd;

	m[0] = make_base("c0", BASE_SIZE, 3);
	base_free = bfree();
	for (i = 1; i < N; i++) {
		snprintf(prev, sizeof(prev), "c%d", i - 1);
		snprintf(name, sizeof(name), "c%d", i);
		clone_file(prev, name);
		m[i] = malloc(BASE_SIZE);
		memcpy(m[i], m[i - 1], BASE_SIZE);
		fill(data, sizeof(data), 200 + i);
		fd = (int)SYS(open(name, O_WRONLY));
		pwrite_all(fd, data, sizeof(data), i * 300000 + i);
		SYS(close(fd));
		memcpy(m[i] + i * 300000 + i, data, sizeof(data));
	}
	for (i = 0; i < N; i++) {
		snprintf(name, sizeof(name), "c%d", i);
		check_content(name, m[i], BASE_SIZE);
	}
	/* each clone owns about 6 blocks of its own */
	NEAR(bfree_settled(base_free - (N - 1) * 6), base_free - (N - 1) * 6);
	for (k = 0; k < N; k++) {
		i = (int[]){3, 0, 5, 1, 4, 2}[k]; /* not the chain's order */
		snprintf(name, sizeof(name), "c%d", i);
		before = bfree();
		SYS(unlink(name));
		free(m[i]);
		m[i] = NULL;
		if (k < N - 1) { /* shared blocks stay until the last one goes */
			ck_assert(bfree_settled(before) <= before + 6 + SLACK);
		}
		for (int j = 0; j < N; j++)
			if (m[j]) {
				snprintf(name, sizeof(name), "c%d", j);
				check_content(name, m[j], BASE_SIZE);
			}
	}
	NEAR(bfree_settled(base_free + BASE_SIZE / BS), base_free + BASE_SIZE / BS + 1);
}
END_TEST

/* Truncate, punch and zero-range on one of two clones drop its references
 * only; the other keeps every byte; the space comes back when both go. */
START_TEST(t_truncate_punch)
{
	uint8_t *a = make_base("a", BASE_SIZE, 4), *b = malloc(BASE_SIZE);
	unsigned long long start = bfree() + BASE_SIZE / BS + 1;
	int fd;

	ck_assert_ptr_nonnull(b);
	clone_file("a", "b");
	memcpy(b, a, BASE_SIZE);
	fd = (int)SYS(open("b", O_RDWR));
	SYS(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 5000, 300000));
	memset(b + 5000, 0, 300000);
	SYS(fallocate(fd, FALLOC_FL_ZERO_RANGE, 1000000, 123457));
	memset(b + 1000000, 0, 123457);
	SYS(ftruncate(fd, 2000001));
	SYS(close(fd));
	check_content("a", a, BASE_SIZE);
	check_content("b", b, 2000001);
	/* growing again shows zeros past the old end, not a's data */
	SYS(truncate("b", 3000000));
	memset(b + 2000001, 0, 3000000 - 2000001);
	drop_caches();
	check_content("b", b, 3000000);
	check_content("a", a, BASE_SIZE);
	SYS(truncate("a", 1));
	check_content("b", b, 3000000);
	SYS(unlink("a"));
	SYS(unlink("b"));
	NEAR(bfree_settled(start), start);
	free(a);
	free(b);
}
END_TEST

/* A punch or zero-range from inside a clone to past its end, whose size
 * is not a multiple of the block size: the partial last block, shared with
 * the source, is zeroed in the clone only (found by the crash harness,
 * seed 2: the zeroing wrote in place into the shared block). */
START_TEST(t_zero_past_end)
{
	static const int modes[] = {FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE,
				    FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE};
	const size_t size = 10 * BS + 2674;

	for (unsigned i = 0; i < 2; i++) {
		uint8_t *a = make_base("a", size, 9 + i), *b = malloc(size);
		int fd;

		ck_assert_ptr_nonnull(b);
		clone_file("a", "b");
		memcpy(b, a, size);
		fd = (int)SYS(open("b", O_RDWR));
		SYS(fallocate(fd, modes[i], 2 * BS + 100, 20 * BS));
		memset(b + 2 * BS + 100, 0, size - 2 * BS - 100);
		SYS(close(fd));
		drop_caches();
		check_content("a", a, size);
		check_content("b", b, size);
		SYS(unlink("a"));
		SYS(unlink("b"));
		free(a);
		free(b);
	}
}
END_TEST

/* A punch or zero-range that runs past the end of a file whose partial
 * last block is shared: that block is unshared before it is zeroed, the
 * clone keeps its data (found by rfsx/rfs_stress). */
START_TEST(t_punch_past_end_shared)
{
	static const int modes[] = {FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
				    FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE,
				    FALLOC_FL_ZERO_RANGE};
	const size_t size = 3 * BS + 100;
	unsigned i;

	for (i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		uint8_t *a = make_base("a", size, 40 + i);
		size_t end = modes[i] & FALLOC_FL_KEEP_SIZE ? size : 9 * BS;
		int fd;

		clone_file("a", "b"); /* the last, partial block shared too */
		fd = (int)SYS(open("a", O_RDWR));
		SYS(fallocate(fd, modes[i], BS, 8 * BS));
		SYS(close(fd));
		check_content("b", a, size);
		memset(a + BS, 0, size - BS);
		a = realloc(a, end);
		ck_assert_ptr_nonnull(a);
		if (end > size)
			memset(a + size, 0, end - size);
		check_content("a", a, end);
		drop_caches();
		check_content("a", a, end);
		free(a);
		a = malloc(size);
		ck_assert_ptr_nonnull(a);
		fill(a, size, 40 + i);
		check_content("b", a, size);
		SYS(unlink("a"));
		SYS(unlink("b"));
		free(a);
	}
}
END_TEST

/* A truncate down over more CoW staging extents than one step frees (CoW
 * overwrites of a clone, still open, leave them): the data blocks under the
 * staging are freed too, so growing the file again reads zeros, not the
 * overwrites (found by rfsx, seed 131). */
START_TEST(t_truncate_past_staging)
{
	const size_t size = 24 * 64 * BS;
	uint8_t *a = make_base("a", size, 51), *zero = calloc(1, size), one = 0x5a;
	int fd, i;

	ck_assert_ptr_nonnull(zero);
	clone_file("a", "b");
	fd = (int)SYS(open("b", O_RDWR));
	for (i = 1; i < 24; i++) /* a CoW write each 64 blocks: 23 staging extents */
		ck_assert_int_eq(SYS(pwrite(fd, &one, 1, (off_t)i * 64 * BS + 7)), 1);
	SYS(fsync(fd));
	SYS(ftruncate(fd, BS));
	SYS(ftruncate(fd, (off_t)size));
	SYS(fsync(fd));
	drop_caches();
	memcpy(zero, a, BS);
	check_content("b", zero, size);
	SYS(close(fd));
	check_content("a", a, size);
	SYS(unlink("a"));
	SYS(unlink("b"));
	free(a);
	free(zero);
}
END_TEST

/* copy_file_range of ranges: inside one file, between files at the same
 * and at different alignments, past the source's end, over holes. */
START_TEST(t_ranges)
{
	uint8_t *a = make_base("a", BASE_SIZE, 5), *m = calloc(1, 3 * BASE_SIZE);
	int in, out;
	size_t size;
	loff_t oi, oo;

	ck_assert_ptr_nonnull(m);
	/* within one file, aligned, to a non-overlapping place past the end */
	memcpy(m, a, BASE_SIZE);
	in = (int)SYS(open("a", O_RDWR));
	oi = 8192;
	oo = BASE_SIZE + 4096 - BASE_SIZE % 4096 + 8192;
	ck_assert_int_eq(SYS(copy_file_range(in, &oi, in, &oo, 1 << 20, 0)), 1 << 20);
	memcpy(m + (BASE_SIZE + 4096 - BASE_SIZE % 4096 + 8192), a + 8192, 1 << 20);
	size = BASE_SIZE + 4096 - BASE_SIZE % 4096 + 8192 + (1 << 20);
	check_content("a", m, size);
	/* overlapping ranges of one file: EINVAL */
	oi = 0;
	oo = 4096;
	errno = 0;
	ck_assert_int_eq(copy_file_range(in, &oi, in, &oo, 65536, 0), -1);
	ck_assert_int_eq(errno, EINVAL);
	SYS(close(in));
	/* between files, unaligned same-phase range (head and tail copied) */
	out = (int)SYS(open("b", O_CREAT | O_RDWR, 0644));
	in = (int)SYS(open("a", O_RDONLY));
	oi = 100;
	oo = 4096 * 3 + 100;
	ck_assert_int_eq(SYS(copy_file_range(in, &oi, out, &oo, 500000, 0)), 500000);
	/* different phase: copied */
	oi = 7;
	oo = 2000003;
	ck_assert_int_eq(SYS(copy_file_range(in, &oi, out, &oo, 300000, 0)), 300000);
	/* past the source's end: short */
	oi = (loff_t)size - 1000;
	oo = 3000000;
	ck_assert_int_eq(SYS(copy_file_range(in, &oi, out, &oo, 1 << 20, 0)), 1000);
	SYS(close(in));
	SYS(close(out));
	{
		uint8_t *ma = slurp("a", &size), *mb = calloc(1, 3001000);
		memcpy(mb + 4096 * 3 + 100, ma + 100, 500000);
		memcpy(mb + 2000003, ma + 7, 300000);
		memcpy(mb + 3000000, ma + size - 1000, 1000);
		check_content("b", mb, 3001000);
		free(ma);
		free(mb);
	}
	/* a hole in the source stays a hole */
	out = (int)SYS(open("h", O_CREAT | O_RDWR, 0644));
	SYS(ftruncate(out, 1 << 20));
	pwrite_all(out, a, 4096, 512 << 10);
	SYS(fsync(out));
	SYS(close(out));
	clone_file("h", "h2");
	in = (int)SYS(open("h2", O_RDONLY));
	ck_assert_int_eq(SYS(lseek(in, 0, SEEK_DATA)), 512 << 10);
	ck_assert_int_eq(SYS(lseek(in, 512 << 10, SEEK_HOLE)), (512 << 10) + 4096);
	SYS(close(in));
	free(a);
	free(m);
}
END_TEST

/* mmap writes into a clone go through CoW too. */
START_TEST(t_mmap)
{
	uint8_t *a = make_base("a", BASE_SIZE, 6), *m = malloc(BASE_SIZE), *p;
	int fd;

	clone_file("a", "b");
	memcpy(m, a, BASE_SIZE);
	fd = (int)SYS(open("b", O_RDWR));
	p = mmap(NULL, BASE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	ck_assert(p != MAP_FAILED);
	memset(p + 12345, 0xab, 100000);
	memset(m + 12345, 0xab, 100000);
	SYS(msync(p, BASE_SIZE, MS_SYNC));
	SYS(munmap(p, BASE_SIZE));
	SYS(close(fd));
	drop_caches();
	check_content("b", m, BASE_SIZE);
	check_content("a", a, BASE_SIZE);
	free(a);
	free(m);
}
END_TEST

/*
 * Makes F's [OFF, OFF+LEN) (block aligned, within both files) equal to G's
 * by writing G's bytes (so the model changes only by that write), then
 * dedupes: F must share those blocks and read the same.
 */
static void dedupe_equal(int fd, const char *gname, uint8_t **m, const size_t *size, int f, int g,
			 size_t off, size_t len)
{
	struct rfs_ioc_dedupe d = {0};
	struct stat st;
	int gfd;

	len &= ~(size_t)(BS - 1);
	if (off + len > size[f] || off + len > size[g] || !len)
		return;
	pwrite_all(fd, m[g] + off, len, (off_t)off);
	memcpy(m[f] + off, m[g] + off, len);
	gfd = (int)SYS(open(gname, O_RDONLY));
	SYS(fstat(fd, &st));
	d.dst_ino = st.st_ino;
	d.src_off = off;
	d.dst_off = off;
	d.len = len;
	/* the daemon compares what it has: write back what the kernel caches */
	SYS(fsync(fd));
	SYS(fsync(gfd));
	SYS(ioctl(gfd, RFS_IOC_DEDUPE, &d));
	ck_assert_msg(d.status == 0 && d.bytes == len,
		      "dedupe of equal ranges: status %d, %llu bytes", d.status,
		      (unsigned long long)d.bytes);
	SYS(close(gfd));
}

/* Random overwrites, truncates, punches and clones between three files,
 * against models (an fsx in small). */
START_TEST(t_random)
{
	enum { NF = 3, MAXS = 3 << 20 };
	const char *names[NF] = {"x", "y", "z"};
	uint8_t *m[NF];
	size_t size[NF];
	uint8_t *data = malloc(MAXS);
	uint64_t s = 12345;
	int i, op, ops = getenv("RFS_REFLINK_OPS") ? atoi(getenv("RFS_REFLINK_OPS")) : 1500;

	for (i = 0; i < NF; i++) {
		m[i] = calloc(1, MAXS);
		size[i] = 0;
		write_file(names[i], m[i], 0);
	}
	for (op = 0; op < ops; op++) {
		int f = (int)(rnd(&s) % NF), g = (int)(rnd(&s) % NF), kind = (int)(rnd(&s) % 11);
		size_t off = rnd(&s) % (MAXS / 2), len = 1 + rnd(&s) % (MAXS / 4);
		int fd = (int)SYS(open(names[f], O_RDWR));

		if (rnd(&s) % 2)
			off &= ~(size_t)(BS - 1);
		if (kind < 4) { /* write */
			fill(data, len, rnd(&s));
			pwrite_all(fd, data, len, (off_t)off);
			memcpy(m[f] + off, data, len);
			if (off + len > size[f])
				size[f] = off + len;
		} else if (kind < 7 && g != f) { /* clone a range of g into f */
			int in = (int)SYS(open(names[g], O_RDONLY));
			loff_t oi = (loff_t)(rnd(&s) % (MAXS / 2)) & ~(loff_t)(BS - 1), oo;
			ssize_t n;
			oo = (loff_t)off;
			n = copy_file_range(in, &oi, fd, &oo, len, 0);
			ck_assert_msg(n >= 0, "copy_file_range: %s", strerror(errno));
			if (n > 0) {
				memcpy(m[f] + off, m[g] + (oi - n), (size_t)n);
				if (off + (size_t)n > size[f])
					size[f] = off + (size_t)n;
			}
			SYS(close(in));
		} else if (kind < 8) { /* truncate */
			size_t ns = rnd(&s) % MAXS;
			SYS(ftruncate(fd, (off_t)ns));
			if (ns < size[f])
				memset(m[f] + ns, 0, size[f] - ns);
			size[f] = ns;
		} else if (kind == 10 && g != f) { /* dedupe a range made equal */
			dedupe_equal(fd, names[g], m, size, f, g, off & ~(size_t)(BS - 1), len);
		} else if (kind < 9) { /* punch */
			SYS(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off,
				      (off_t)len));
			if (off < size[f])
				memset(m[f] + off, 0,
				       (off + len > size[f] ? size[f] : off + len) - off);
		} else { /* fsync, sometimes with the cache dropped */
			SYS(fsync(fd));
			if (rnd(&s) % 4 == 0)
				drop_caches();
		}
		SYS(close(fd));
		if (op % 50 == 49 || op == ops - 1)
			for (i = 0; i < NF; i++)
				check_content(names[i], m[i], size[i]);
	}
	for (i = 0; i < NF; i++)
		free(m[i]);
	free(data);
}
END_TEST

/* --- crash helpers ---------------------------------------------------------------- */

/* The content of clone I: a clone of clone I-1 (odd I) or of the base,
 * with 8 writes of its own. */
static void expected_clone(uint8_t *out, int i)
{
	uint8_t data[9000];
	uint64_t s = 777 + (uint64_t)i;
	int k;

	if (i > 0 && (i & 1))
		expected_clone(out, i - 1);
	else
		fill(out, BASE_SIZE, 42);
	for (k = 0; k < 8; k++) {
		size_t off = rnd(&s) % (BASE_SIZE - sizeof(data));
		fill(data, sizeof(data), rnd(&s));
		memcpy(out + off, data, sizeof(data));
	}
}

static int crash_writer(const char *dir, const char *log)
{
	static uint8_t buf[BASE_SIZE]; /* it dies by a write error: nothing to free */
	char src[PATH_MAX], dst[PATH_MAX];
	FILE *lf = fopen(log, "w");
	int i, fd;

	if (!lf)
		return 1;
	snprintf(src, sizeof(src), "%s/base", dir);
	fill(buf, BASE_SIZE, 42);
	fd = open(src, O_CREAT | O_TRUNC | O_WRONLY, 0644);
	if (fd < 0 || pwrite(fd, buf, BASE_SIZE, 0) != BASE_SIZE || fsync(fd))
		return 1;
	close(fd);
	for (i = 0;; i++) {
		uint8_t data[9000];
		uint64_t s = 777 + (uint64_t)i;
		int in, out, k;
		ssize_t n;

		if (i > 0 && (i & 1))
			snprintf(src, sizeof(src), "%s/c%d", dir, i - 1);
		else
			snprintf(src, sizeof(src), "%s/base", dir);
		snprintf(dst, sizeof(dst), "%s/c%d", dir, i);
		in = open(src, O_RDONLY);
		out = open(dst, O_CREAT | O_TRUNC | O_RDWR, 0644);
		if (in < 0 || out < 0)
			return 1;
		while ((n = copy_file_range(in, NULL, out, NULL, 1 << 30, 0)) > 0)
			;
		for (k = 0; k < 8 && n == 0; k++) {
			size_t off = rnd(&s) % (BASE_SIZE - sizeof(data));
			fill(data, sizeof(data), rnd(&s));
			if (pwrite(out, data, sizeof(data), (off_t)off) != sizeof(data))
				n = -1;
		}
		if (n != 0 || fsync(out))
			return 1;
		close(in);
		close(out);
		fprintf(lf, "%d\n", i);
		fflush(lf);
		fsync(fileno(lf));
	}
}

static int crash_check(const char *dir, const char *log)
{
	uint8_t *want = malloc(BASE_SIZE), *got = malloc(BASE_SIZE + 1);
	FILE *lf = fopen(log, "r");
	char path[PATH_MAX];
	int i, bad = 0, n = 0;

	if (!want || !got || !lf)
		return 2;
	while (fscanf(lf, "%d", &i) == 1) {
		int fd;
		snprintf(path, sizeof(path), "%s/c%d", dir, i);
		expected_clone(want, i);
		fd = open(path, O_RDONLY);
		if (fd < 0 || pread(fd, got, BASE_SIZE + 1, 0) != BASE_SIZE ||
		    memcmp(got, want, BASE_SIZE)) {
			fprintf(stderr, "%s: not what was fsync'ed\n", path);
			bad++;
		}
		if (fd >= 0)
			close(fd);
		n++;
	}
	printf("   %d fsync'ed clones checked\n", n);
	fclose(lf);
	free(want);
	free(got);
	return bad ? 1 : 0;
}

/* --- main ---------------------------------------------------------------------- */

static Suite *reflink_suite(void)
{
	const struct itest tests[] = {
		ITEST(t_clone_whole),
		ITEST(t_overwrite_alignments),
		ITEST(t_chain),
		ITEST(t_truncate_punch),
		ITEST(t_ranges),
		ITEST(t_mmap),
		ITEST(t_random),
		ITEST(t_zero_past_end),
		ITEST(t_punch_past_end_shared),
		ITEST(t_truncate_past_staging),
	};

	return itest_suite("reflink", tests, sizeof(tests) / sizeof(tests[0]), setup, 600);
}

int main(int argc, char **argv)
{
	SRunner *sr;
	int failed;

	if (argc == 4 && !strcmp(argv[1], "crashwriter"))
		return crash_writer(argv[2], argv[3]);
	if (argc == 4 && !strcmp(argv[1], "crashcheck"))
		return crash_check(argv[2], argv[3]);
	mnt = getenv("RFS_MNT");
	if (argc > 1 || !mnt || !*mnt) {
		fprintf(stderr, "usage: RFS_MNT=DIR reflink | reflink crashwriter|crashcheck DIR "
				"LOG\n");
		return 2;
	}
	sr = srunner_create(reflink_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
