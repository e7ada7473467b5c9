/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * posix.c - POSIX/Linux semantics of a mounted reflinkfs, through system
 * calls, compared with what Linux's own filesystems (ext4, xfs) return.
 *
 *   RFS_MNT=/mount/point [RFS_WRITEBACK=0|1] posix
 *
 * Every test works in a fresh directory of its own under $RFS_MNT. Tests
 * whose subject is permission checking run parts of themselves in a forked
 * child as uid/gid 65534 (and 65533, 65532): the mount needs -o allow_other.
 * RFS_WRITEBACK=1 (default) says the mount uses the kernel's write-back
 * cache: errors a write cannot know yet (EFBIG, ENOSPC) then surface at
 * fsync at the latest, as FUSE does; with 0 they must come from write.
 * RFS_LINK_MAX_TEST=0 skips the 65000 hard links of t_emlink;
 * RFS_RANDOM_OPS and RFS_TEST_SEED tune t_random_ops.
 *
 * With arguments it is run.sh's helper instead (see run_command):
 *   posix map FILE                        data segments by SEEK_DATA/HOLE
 *   posix bigdir DIR N create|check|remove|all
 *   posix subdirs DIR                     EMLINK at 65000 subdirectories
 *   posix frag FILE N write|check|free    a file of N one-block extents
 *   posix fill DIR | fillmeta DIR         fill to ENOSPC: data, then names
 *   posix symlinks DIR N make|check       long symlinks in fragmented space
 *   posix crashwriter DIR LOG             write and fsync until killed
 *   posix crashcheck DIR LOG              what was fsync'ed is intact
 *   posix acls DIR make|check             POSIX ACLs across a remount
 */
#include <check.h>
#include <dirent.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <linux/falloc.h>
#include <linux/posix_acl.h>
#include <linux/posix_acl_xattr.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "itest.h"

#define NOBODY	 65534
#define NOBODY2	 65533
#define NOBODY3	 65532
#define MAX_FILE ((off_t)1 << 60)

static const char *mnt;
static int writeback = 1;

/* --- helpers ---------------------------------------------------------------- */

static int all_zero(const uint8_t *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (p[i])
			return 0;
	return 1;
}

static void write_file(const char *path, const void *data, size_t len, mode_t mode)
{
	int fd = (int)SYS(open(path, O_CREAT | O_TRUNC | O_WRONLY, mode));
	ck_assert_int_eq(SYS(write(fd, data, len)), (long)len);
	SYS(close(fd));
}

static void touch(const char *path)
{
	SYS(close((int)SYS(open(path, O_CREAT | O_WRONLY, 0644))));
}

static struct stat st_of(const char *path)
{
	struct stat st;
	SYS(lstat(path, &st));
	return st;
}

static int ts_eq(struct timespec a, long sec, long nsec)
{
	return a.tv_sec == sec && a.tv_nsec == nsec;
}

static double ts_d(struct timespec t)
{
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static double now_d(void)
{
	struct timespec t;
	clock_gettime(CLOCK_REALTIME, &t);
	return ts_d(t);
}

/* Free blocks as statfs says, waiting up to 5 s for asynchronous releases
 * (FUSE sends RELEASE without waiting) to bring it to at least WANT. */
static unsigned long long bfree_wait(unsigned long long want)
{
	struct statfs sf;
	int i;

	for (i = 0; i < 100; i++) {
		SYS(statfs(".", &sf));
		if (sf.f_bfree >= want)
			break;
		usleep(50000);
	}
	return sf.f_bfree;
}

/* Runs FN(ARG) in a child as UID/GID with no supplementary groups;
 * returns its exit status (0: every check in FN passed). */
static int as_user(uid_t uid, gid_t gid, int (*fn)(void *), void *arg)
{
	pid_t pid = fork();
	int status;

	ck_assert_int_ne(pid, -1);
	if (pid == 0) {
		if (setgroups(0, NULL) || setresgid(gid, gid, gid) || setresuid(uid, uid, uid)) {
			perror("dropping privileges");
			_exit(99);
		}
		_exit(fn(arg));
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status), "child killed by signal %d", WTERMSIG(status));
	return WEXITSTATUS(status);
}

/* Checks inside a child (no Check there): report and fail with the line. */
#define CHK(cond)                                                                                  \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "%s:%d: child check failed: %s (errno %s)\n", __FILE__,    \
				__LINE__, #cond, strerrorname_np(errno));                          \
			return __LINE__;                                                           \
		}                                                                                  \
	} while (0)
#define CHK_FAILS(e, expr)                                                                         \
	do {                                                                                       \
		errno = 0;                                                                         \
		long _r = (long)(expr);                                                            \
		if (_r != -1 || errno != (e)) {                                                    \
			fprintf(stderr, "%s:%d: %s: expected %s, got %ld (%s)\n", __FILE__,        \
				__LINE__, #expr, strerrorname_np(e), _r,                           \
				_r == -1 ? strerrorname_np(errno) : "no error");                   \
			return __LINE__;                                                           \
		}                                                                                  \
	} while (0)

static char testdir[PATH_MAX];

/* Each test starts in a fresh directory (mode 0777) of its own. */
static void setup(void)
{
	snprintf(testdir, sizeof(testdir), "%s/t.XXXXXX", mnt);
	ck_assert_msg(mkdtemp(testdir) != NULL, "mkdtemp in %s: %s", mnt, strerror(errno));
	SYS(chmod(testdir, 0777));
	SYS(chdir(testdir));
	umask(022);
}

/* --- files: create, read, write ------------------------------------------------ */

START_TEST(t_create_read_write)
{
	static uint8_t a[1 << 20], b[1 << 20];
	struct stat st;
	int fd;

	fd = (int)SYS(open("f", O_CREAT | O_EXCL | O_RDWR, 0640));
	FAILS(EEXIST, open("f", O_CREAT | O_EXCL | O_RDWR, 0640));
	SYS(fstat(fd, &st));
	ck_assert(S_ISREG(st.st_mode));
	ck_assert_int_eq(st.st_mode & 07777, 0640);
	ck_assert_int_eq(st.st_nlink, 1);
	ck_assert_int_eq(st.st_size, 0);
	ck_assert_int_eq(st.st_uid, 0);
	ck_assert_int_eq(st.st_gid, 0);

	fill(a, sizeof(a), 1);
	ck_assert_int_eq(SYS(write(fd, a, 1000)), 1000);
	ck_assert_int_eq(SYS(write(fd, a + 1000, sizeof(a) - 1000)), sizeof(a) - 1000);
	SYS(fstat(fd, &st));
	ck_assert_int_eq(st.st_size, sizeof(a));
	ck_assert_int_eq(SYS(lseek(fd, 0, SEEK_CUR)), sizeof(a));
	ck_assert_int_eq(SYS(read(fd, b, 10)), 0); /* at EOF */
	pread_all(fd, b, sizeof(b), 0);
	ck_assert(memcmp(a, b, sizeof(a)) == 0);

	/* unaligned overwrite in the middle, read across it */
	memset(a + 4000, 0x5a, 10000);
	ck_assert_int_eq(SYS(pwrite(fd, a + 4000, 10000, 4000)), 10000);
	pread_all(fd, b, 20000, 1);
	ck_assert(memcmp(a + 1, b, 20000) == 0);
	ck_assert_int_eq(SYS(pread(fd, b, 100, sizeof(a) - 10)), 10);
	ck_assert_int_eq(SYS(pread(fd, b, 100, sizeof(a) + 100)), 0);
	SYS(fsync(fd));
	SYS(close(fd));

	/* reopened: still the same bytes */
	fd = (int)SYS(open("f", O_RDONLY));
	pread_all(fd, b, sizeof(b), 0);
	ck_assert(memcmp(a, b, sizeof(a)) == 0);
	FAILS(EBADF, write(fd, a, 1));
	SYS(close(fd));

	FAILS(ENOENT, open("nope", O_RDONLY));
	FAILS(ENOENT, open("nodir/f", O_CREAT | O_RDWR, 0644));
	FAILS(ENOTDIR, open("f/x", O_RDONLY));
	FAILS(ENOTDIR, open("f/x", O_CREAT | O_RDWR, 0644));
	FAILS(ENOTDIR, open("f", O_RDONLY | O_DIRECTORY));
	FAILS(EISDIR, open(".", O_WRONLY));
	FAILS(EISDIR, open(".", O_RDWR));
	SYS(close((int)SYS(open(".", O_RDONLY))));
}
END_TEST

START_TEST(t_append_trunc_excl)
{
	char buf[64];
	struct stat st;
	int fd;

	write_file("f", "hello", 5, 0644);
	fd = (int)SYS(open("f", O_WRONLY | O_APPEND));
	SYS(lseek(fd, 0, SEEK_SET));
	ck_assert_int_eq(SYS(write(fd, " world", 6)), 6);
	SYS(close(fd));
	fd = (int)SYS(open("f", O_RDONLY));
	ck_assert_int_eq(SYS(read(fd, buf, sizeof(buf))), 11);
	ck_assert(memcmp(buf, "hello world", 11) == 0);
	SYS(close(fd));

	/* O_TRUNC: size 0, blocks gone, mtime moves */
	SYS(utimensat(AT_FDCWD, "f", (struct timespec[]){{1, 0}, {1, 0}}, 0));
	fd = (int)SYS(open("f", O_WRONLY | O_TRUNC));
	SYS(fstat(fd, &st));
	ck_assert_int_eq(st.st_size, 0);
	ck_assert(st.st_mtim.tv_sec > 1);
	SYS(close(fd));
	fd = (int)SYS(open("f", O_RDONLY));
	SYS(fsync(fd));
	SYS(close(fd));
	st = st_of("f");
	ck_assert_int_eq(st.st_size, 0);
	ck_assert_int_eq(st.st_blocks, 0);

	/* O_TRUNC with O_RDONLY truncates too (Linux) */
	write_file("f", "data", 4, 0644);
	SYS(close((int)SYS(open("f", O_RDONLY | O_TRUNC))));
	ck_assert_int_eq(st_of("f").st_size, 0);

	/* O_CREAT without O_EXCL opens what is there */
	fd = (int)SYS(open("f", O_CREAT | O_RDWR, 0600));
	SYS(fstat(fd, &st));
	ck_assert_int_eq(st.st_mode & 07777, 0644);
	SYS(close(fd));

	/* openat relative to a directory descriptor */
	SYS(mkdir("d", 0755));
	int dfd = (int)SYS(open("d", O_RDONLY | O_DIRECTORY));
	fd = (int)SYS(openat(dfd, "g", O_CREAT | O_EXCL | O_WRONLY, 0600));
	SYS(write(fd, "x", 1));
	SYS(close(fd));
	FAILS(EEXIST, openat(dfd, "g", O_CREAT | O_EXCL | O_WRONLY, 0600));
	ck_assert_int_eq(st_of("d/g").st_size, 1);
	fd = (int)SYS(open("f", O_RDONLY));
	FAILS(ENOTDIR, openat(fd, "g", O_RDONLY));
	SYS(close(fd));
	SYS(close(dfd));
}
END_TEST

/* --- sizes, truncate, st_blocks ----------------------------------------------- */

START_TEST(t_truncate)
{
	static uint8_t a[3 * 4096], b[3 * 4096];
	struct stat st;
	int fd;

	fill(a, sizeof(a), 2);
	fd = (int)SYS(open("f", O_CREAT | O_RDWR, 0644));
	pwrite_all(fd, a, sizeof(a), 0);
	SYS(fsync(fd));
	SYS(fstat(fd, &st));
	ck_assert_int_eq(st.st_size, sizeof(a));
	ck_assert_int_eq(st.st_blocks, sizeof(a) / 512);
	ck_assert_int_eq(st.st_blksize, 4096);

	/* shrink to mid-block, then grow: the cut-off bytes read as zeros */
	SYS(ftruncate(fd, 5000));
	SYS(fstat(fd, &st));
	ck_assert_int_eq(st.st_size, 5000);
	SYS(ftruncate(fd, sizeof(a)));
	pread_all(fd, b, sizeof(b), 0);
	ck_assert(memcmp(a, b, 5000) == 0);
	ck_assert(all_zero(b + 5000, sizeof(b) - 5000));
	SYS(fsync(fd));
	SYS(fstat(fd, &st));
	ck_assert_int_eq(st.st_blocks, 2 * 4096 / 512); /* blocks 0-1 kept, 2 freed */

	/* truncate(2) by path, to 0 and back */
	SYS(truncate("f", 0));
	ck_assert_int_eq(st_of("f").st_size, 0);
	ck_assert_int_eq(st_of("f").st_blocks, 0);
	SYS(truncate("f", 1 << 30)); /* sparse */
	st = st_of("f");
	ck_assert_int_eq(st.st_size, 1 << 30);
	ck_assert_int_eq(st.st_blocks, 0);
	ck_assert_int_eq(SYS(pread(fd, b, 100, (1 << 30) - 50)), 50);
	ck_assert(all_zero(b, 50));

	FAILS(EINVAL, ftruncate(fd, -1));
	FAILS(EFBIG, ftruncate(fd, MAX_FILE + 1));
	FAILS(EISDIR, truncate(".", 0));
	FAILS(ENOENT, truncate("nope", 0));
	SYS(close(fd));
	fd = (int)SYS(open("f", O_RDONLY));
	FAILS(EINVAL, ftruncate(fd, 0)); /* not open for writing */
	SYS(close(fd));
}
END_TEST

START_TEST(t_efbig)
{
	static uint8_t buf[8192];
	int fd = (int)SYS(open("f", O_CREAT | O_RDWR, 0644));
	ssize_t n;

	fill(buf, sizeof(buf), 3);
	/* the largest file: 2^60 bytes; the last block is writable */
	ck_assert_int_eq(SYS(pwrite(fd, buf, 4096, MAX_FILE - 4096)), 4096);
	SYS(fsync(fd));
	ck_assert_int_eq(st_of("f").st_size, MAX_FILE);
	SYS(ftruncate(fd, MAX_FILE));
	FAILS(EFBIG, ftruncate(fd, MAX_FILE + 1));
	SYS(ftruncate(fd, 0));
	SYS(close(fd));

	/* the data of a write past the limit: with write-back caching the
	 * kernel takes it and the error comes at fsync */
	fd = (int)SYS(open("g", O_CREAT | O_RDWR, 0644));
	errno = 0;
	n = pwrite(fd, buf, 4096, MAX_FILE);
	if (writeback && n == 4096) {
		FAILS(EFBIG, fsync(fd));
	} else {
		ck_assert_msg(n == -1 && errno == EFBIG, "pwrite at 2^60: %zd %s", n,
			      strerror(errno));
		/* a write across the limit is cut short at it */
		ck_assert_int_eq(SYS(pwrite(fd, buf, 8192, MAX_FILE - 4096)), 4096);
		SYS(fsync(fd));
		ck_assert_int_eq(st_of("g").st_size, MAX_FILE);
	}
	SYS(close(fd));
}
END_TEST

/* --- holes: lseek SEEK_DATA / SEEK_HOLE ------------------------------------------- */

START_TEST(t_seek_data_hole)
{
	static uint8_t buf[8192];
	const off_t M = 1 << 20;
	int fd;

	fill(buf, sizeof(buf), 4);
	/* hole [0,1M), data [1M,1M+8K), hole [1M+8K, 3M), data [3M, 3M+4K), EOF */
	fd = (int)SYS(open("f", O_CREAT | O_RDWR, 0644));
	pwrite_all(fd, buf, 8192, M);
	pwrite_all(fd, buf, 4096, 3 * M);
	SYS(close(fd));

	fd = (int)SYS(open("f", O_RDONLY));
	ck_assert_int_eq(SYS(lseek(fd, 0, SEEK_DATA)), M);
	ck_assert_int_eq(SYS(lseek(fd, 0, SEEK_HOLE)), 0);
	ck_assert_int_eq(SYS(lseek(fd, M + 100, SEEK_DATA)), M + 100);
	ck_assert_int_eq(SYS(lseek(fd, M + 100, SEEK_HOLE)), M + 8192);
	ck_assert_int_eq(SYS(lseek(fd, M + 8192, SEEK_DATA)), 3 * M);
	ck_assert_int_eq(SYS(lseek(fd, 3 * M, SEEK_HOLE)), 3 * M + 4096); /* EOF */
	FAILS(ENXIO, lseek(fd, 3 * M + 4096, SEEK_DATA));
	FAILS(ENXIO, lseek(fd, 3 * M + 4096, SEEK_HOLE));
	FAILS(ENXIO, lseek(fd, 100 * M, SEEK_DATA));
	FAILS(ENXIO, lseek(fd, -1, SEEK_DATA));
	SYS(close(fd));

	/* a trailing hole: SEEK_DATA in it is ENXIO, SEEK_HOLE stays */
	SYS(truncate("f", 5 * M));
	fd = (int)SYS(open("f", O_RDONLY));
	FAILS(ENXIO, lseek(fd, 4 * M, SEEK_DATA));
	ck_assert_int_eq(SYS(lseek(fd, 4 * M, SEEK_HOLE)), 4 * M);
	SYS(close(fd));

	/* no hole: SEEK_HOLE gives EOF */
	write_file("g", buf, 5000, 0644);
	fd = (int)SYS(open("g", O_RDONLY));
	ck_assert_int_eq(SYS(lseek(fd, 0, SEEK_HOLE)), 5000);
	ck_assert_int_eq(SYS(lseek(fd, 4999, SEEK_DATA)), 4999);
	FAILS(ENXIO, lseek(fd, 5000, SEEK_DATA));
	SYS(close(fd));

	/* an empty file: everything is past EOF */
	touch("e");
	fd = (int)SYS(open("e", O_RDONLY));
	FAILS(ENXIO, lseek(fd, 0, SEEK_DATA));
	FAILS(ENXIO, lseek(fd, 0, SEEK_HOLE));
	SYS(close(fd));
}
END_TEST

/* Holes seen through a descriptor that is still writing (write-back: the
 * daemon has not been sent the data yet). */
START_TEST(t_seek_while_writing)
{
	static uint8_t buf[4096];
	const off_t M = 1 << 20;
	off_t h;
	int fd;

	fill(buf, sizeof(buf), 5);
	fd = (int)SYS(open("f", O_CREAT | O_RDWR, 0644));
	pwrite_all(fd, buf, 4096, M);
	ck_assert_int_eq(SYS(lseek(fd, 0, SEEK_END)), M + 4096);
	ck_assert_int_eq(SYS(lseek(fd, 0, SEEK_DATA)) <= M, 1);
	h = SYS(lseek(fd, 0, SEEK_HOLE));
	ck_assert_msg(h == 0 || h == M + 4096, "SEEK_HOLE from 0: %lld", (long long)h);
	ck_assert_int_eq(SYS(lseek(fd, M, SEEK_DATA)), M);
	ck_assert_int_eq(SYS(lseek(fd, M, SEEK_HOLE)), M + 4096);
	FAILS(ENXIO, lseek(fd, M + 4096, SEEK_DATA));
	SYS(fsync(fd));
	ck_assert_int_eq(SYS(lseek(fd, M, SEEK_HOLE)), M + 4096);
	SYS(close(fd));
}
END_TEST

/* --- fallocate ------------------------------------------------------------------ */

START_TEST(t_fallocate)
{
	static uint8_t a[16384], b[16384];
	struct statfs sf;
	struct stat st;
	int fd;

	fd = (int)SYS(open("f", O_CREAT | O_RDWR, 0644));
	/* mode 0: allocates and extends; reads zeros */
	SYS(fallocate(fd, 0, 0, 1 << 20));
	SYS(fstat(fd, &st));
	ck_assert_int_eq(st.st_size, 1 << 20);
	ck_assert_int_eq(st.st_blocks, (1 << 20) / 512);
	pread_all(fd, b, sizeof(b), 4096);
	ck_assert(all_zero(b, sizeof(b)));
	/* KEEP_SIZE: blocks past EOF, size unchanged */
	SYS(fallocate(fd, FALLOC_FL_KEEP_SIZE, 1 << 20, 1 << 20));
	SYS(fstat(fd, &st));
	ck_assert_int_eq(st.st_size, 1 << 20);
	ck_assert_int_eq(st.st_blocks, (2 << 20) / 512);

	/* punch: zeros, blocks freed, size unchanged; partial blocks zeroed */
	fill(a, sizeof(a), 6);
	pwrite_all(fd, a, sizeof(a), 0);
	SYS(fsync(fd));
	SYS(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 100, 12300));
	pread_all(fd, b, sizeof(b), 0);
	ck_assert(memcmp(a, b, 100) == 0);
	ck_assert(all_zero(b + 100, 12300));
	ck_assert(memcmp(a + 12400, b + 12400, sizeof(a) - 12400) == 0);
	SYS(fstat(fd, &st));
	ck_assert_int_eq(st.st_size, 1 << 20);
	ck_assert_int_eq(st.st_blocks, (2 << 20) / 512 - 2 * 8); /* blocks 1, 2 freed */
	SYS(close(fd));
	fd = (int)SYS(open("f", O_RDWR));
	ck_assert_int_eq(SYS(lseek(fd, 4096, SEEK_HOLE)), 4096);
	ck_assert_int_eq(SYS(lseek(fd, 4096, SEEK_DATA)), 12288);

	/* zero range: zeros, size grows without KEEP_SIZE */
	pwrite_all(fd, a, sizeof(a), 0);
	SYS(fallocate(fd, FALLOC_FL_ZERO_RANGE, 10, 5000));
	pread_all(fd, b, sizeof(b), 0);
	ck_assert(memcmp(a, b, 10) == 0);
	ck_assert(all_zero(b + 10, 5000));
	ck_assert(memcmp(a + 5010, b + 5010, sizeof(a) - 5010) == 0);
	SYS(fallocate(fd, FALLOC_FL_ZERO_RANGE, (3 << 20) - 10, 20));
	SYS(fstat(fd, &st));
	ck_assert_int_eq(st.st_size, (3 << 20) + 10);

	/* unsupported modes: EOPNOTSUPP, never EINVAL */
	FAILS(EOPNOTSUPP, fallocate(fd, FALLOC_FL_COLLAPSE_RANGE, 0, 4096));
	FAILS(EOPNOTSUPP, fallocate(fd, FALLOC_FL_INSERT_RANGE, 0, 4096));
	FAILS(EOPNOTSUPP, fallocate(fd, FALLOC_FL_PUNCH_HOLE, 0, 4096)); /* needs KEEP_SIZE */
	FAILS(EINVAL, fallocate(fd, 0, 0, 0));
	FAILS(EINVAL, fallocate(fd, 0, -1, 4096));
	FAILS(EFBIG, fallocate(fd, 0, MAX_FILE, 4096));
	SYS(close(fd));
	fd = (int)SYS(open("f", O_RDONLY));
	FAILS(EBADF, fallocate(fd, 0, 0, 4096));
	SYS(close(fd));

	/* more than the free space: ENOSPC, and nothing lost */
	SYS(statfs(".", &sf));
	fd = (int)SYS(open("huge", O_CREAT | O_RDWR, 0644));
	FAILS(ENOSPC, fallocate(fd, 0, 0, (off_t)(sf.f_bfree + 1000) * sf.f_bsize));
	SYS(close(fd));
	SYS(unlink("huge"));
	bfree_wait(sf.f_bfree);
}
END_TEST

/* --- names: ENAMETOOLONG, ENOENT, ENOTDIR, EEXIST ---------------------------------- */

START_TEST(t_name_limits)
{
	char n255[256], n256[257], path[600];
	struct stat st;

	memset(n255, 'a', 255);
	n255[255] = '\0';
	memset(n256, 'b', 256);
	n256[256] = '\0';
	touch(n255);
	SYS(stat(n255, &st));
	SYS(mkdir("d", 0755));
	snprintf(path, sizeof(path), "d/%s", n255);
	SYS(rename(n255, path));
	SYS(stat(path, &st));

	/* the kernel passes FUSE names up to 1024 bytes: the daemon checks */
	touch("f");
	FAILS(ENAMETOOLONG, open(n256, O_CREAT | O_RDWR, 0644));
	FAILS(ENAMETOOLONG, open(n256, O_RDONLY));
	FAILS(ENAMETOOLONG, stat(n256, &st));
	FAILS(ENAMETOOLONG, mkdir(n256, 0755));
	FAILS(ENAMETOOLONG, mknod(n256, S_IFIFO | 0644, 0));
	FAILS(ENAMETOOLONG, symlink("f", n256));
	FAILS(ENAMETOOLONG, link("f", n256));
	FAILS(ENAMETOOLONG, rename("f", n256));
	FAILS(ENAMETOOLONG, unlink(n256));
	FAILS(ENAMETOOLONG, rmdir(n256));
	snprintf(path, sizeof(path), "d/%s/x", n256);
	FAILS(ENAMETOOLONG, open(path, O_RDONLY));
	ck_assert_int_eq(SYS(access("f", F_OK)), 0);

	FAILS(ENOENT, stat("nope", &st));
	FAILS(ENOENT, stat("nope/x", &st));
	FAILS(ENOTDIR, stat("f/x", &st));
	FAILS(ENOTDIR, mkdir("f/x", 0755));
	FAILS(EEXIST, mkdir("f", 0755));
	FAILS(EEXIST, mkdir("d", 0755));
	FAILS(EEXIST, mknod("f", S_IFIFO | 0644, 0));
	FAILS(EEXIST, symlink("x", "f"));
	FAILS(EEXIST, link("f", "d"));
	FAILS(ENOENT, unlink("nope"));
	FAILS(ENOENT, rmdir("nope"));
	FAILS(ENOENT, rename("nope", "x"));
	FAILS(ENOENT, link("nope", "x"));
	FAILS(ENOENT, mkdir("nope/x", 0755));
	FAILS(ENOTDIR, rename("f/x", "y"));
}
END_TEST

/* --- directories ----------------------------------------------------------------- */

START_TEST(t_mkdir_rmdir)
{
	struct stat st, dst;

	SYS(mkdir("a", 0750));
	st = st_of("a");
	ck_assert(S_ISDIR(st.st_mode));
	ck_assert_int_eq(st.st_mode & 07777, 0750);
	ck_assert_int_eq(st.st_nlink, 2);
	SYS(mkdir("a/b", 0755));
	SYS(mkdir("a/c", 0755));
	touch("a/f");
	ck_assert_int_eq(st_of("a").st_nlink, 4); /* 2 + two subdirectories */
	ck_assert_int_eq(st_of(".").st_nlink, 3);
	/* ".." names the parent */
	ck_assert_int_eq(st_of("a/b/..").st_ino, st_of("a").st_ino);
	SYS(stat("..", &dst));
	ck_assert_int_eq(st_of("a/..").st_ino, st_of(".").st_ino);

	FAILS(ENOTEMPTY, rmdir("a"));
	FAILS(ENOTDIR, rmdir("a/f"));
	FAILS(EISDIR, unlink("a/b"));
	FAILS(EINVAL, rmdir("a/b/."));
	FAILS(ENOTEMPTY, rmdir("a/b/.."));
	SYS(rmdir("a/b"));
	ck_assert_int_eq(st_of("a").st_nlink, 3);
	FAILS(ENOENT, rmdir("a/b"));
	SYS(unlink("a/f"));
	SYS(rmdir("a/c"));
	ck_assert_int_eq(st_of("a").st_nlink, 2);
	SYS(rmdir("a"));
	ck_assert_int_eq(st_of(".").st_nlink, 2);

	/* a removed working directory: nothing can be made in it */
	SYS(mkdir("gone", 0755));
	SYS(chdir("gone"));
	SYS(rmdir("../gone"));
	FAILS(ENOENT, open("x", O_CREAT | O_RDWR, 0644));
	FAILS(ENOENT, mkdir("x", 0755));
	{
		int cfd = (int)SYS(open(".", O_RDONLY));
		SYS(fstat(cfd, &st));
		ck_assert_int_eq(st.st_nlink, 0);
		SYS(close(cfd));
	}
	SYS(chdir(testdir));

	/* parent times move on create and remove */
	SYS(utimensat(AT_FDCWD, ".", (struct timespec[]){{1, 0}, {1, 0}}, 0));
	touch("n");
	st = st_of(".");
	ck_assert(st.st_mtim.tv_sec > 1 && st.st_ctim.tv_sec > 1);
	SYS(utimensat(AT_FDCWD, ".", (struct timespec[]){{1, 0}, {1, 0}}, 0));
	SYS(unlink("n"));
	ck_assert(st_of(".").st_mtim.tv_sec > 1);
}
END_TEST

/* --- unlink of open files --------------------------------------------------------- */

START_TEST(t_unlink_open)
{
	static uint8_t a[1 << 20], b[1 << 20];
	struct statfs sf;
	struct stat st;
	unsigned long long before;
	int fd, fd2;

	SYS(statfs(".", &sf));
	before = sf.f_bfree;
	fill(a, sizeof(a), 7);
	fd = (int)SYS(open("f", O_CREAT | O_RDWR, 0644));
	pwrite_all(fd, a, sizeof(a), 0);
	SYS(fsync(fd));
	fd2 = (int)SYS(open("f", O_RDONLY));
	SYS(unlink("f"));
	FAILS(ENOENT, stat("f", &st));
	SYS(fstat(fd, &st));
	ck_assert_int_eq(st.st_nlink, 0);
	ck_assert_int_eq(st.st_size, sizeof(a));
	/* still readable and writable through the descriptors */
	pread_all(fd2, b, sizeof(b), 0);
	ck_assert(memcmp(a, b, sizeof(a)) == 0);
	fill(a, 8192, 8);
	pwrite_all(fd, a, 8192, sizeof(a));
	SYS(fsync(fd));
	SYS(fstat(fd, &st));
	ck_assert_int_eq(st.st_size, sizeof(a) + 8192);
	pread_all(fd2, b, 8192, sizeof(a));
	ck_assert(memcmp(a, b, 8192) == 0);
	SYS(ftruncate(fd, 100));
	SYS(fchmod(fd, 0600));
	SYS(fstat(fd2, &st));
	ck_assert_int_eq(st.st_size, 100);
	ck_assert_int_eq(st.st_mode & 07777, 0600);
	/* a new file may take the name meanwhile */
	touch("f");
	ck_assert_int_ne(st_of("f").st_ino, st.st_ino);
	SYS(close(fd));
	SYS(close(fd2));
	SYS(unlink("f"));
	/* the space comes back once the last descriptor is gone */
	ck_assert_uint_ge(bfree_wait(before), before);

	/* replaced by rename while open */
	fill(a, sizeof(a), 9);
	write_file("g", a, sizeof(a), 0644);
	fd = (int)SYS(open("g", O_RDONLY));
	touch("h");
	SYS(rename("h", "g"));
	pread_all(fd, b, sizeof(b), 0);
	ck_assert(memcmp(a, b, sizeof(a)) == 0);
	SYS(fstat(fd, &st));
	ck_assert_int_eq(st.st_nlink, 0);
	SYS(close(fd));
	ck_assert_int_eq(st_of("g").st_size, 0);
}
END_TEST

/* --- hard links, symlinks, special files ---------------------------------------------- */

START_TEST(t_link)
{
	struct stat st;
	char buf[16];
	int fd;

	write_file("f", "data", 4, 0644);
	SYS(mkdir("d", 0755));
	SYS(utimensat(AT_FDCWD, "f", (struct timespec[]){{1, 0}, {1, 0}}, 0));
	SYS(link("f", "d/g"));
	st = st_of("f");
	ck_assert_int_eq(st.st_nlink, 2);
	ck_assert(st.st_ctim.tv_sec > 1); /* ctime moves with the link count */
	ck_assert_int_eq(st_of("d/g").st_ino, st.st_ino);
	ck_assert_int_eq(st_of("d").st_nlink, 2); /* files do not count */
	SYS(link("d/g", "h"));
	ck_assert_int_eq(st_of("f").st_nlink, 3);
	fd = (int)SYS(open("h", O_RDONLY));
	ck_assert_int_eq(SYS(read(fd, buf, sizeof(buf))), 4);
	SYS(close(fd));

	FAILS(EEXIST, link("f", "h"));
	FAILS(EPERM, link("d", "d2")); /* directories */
	FAILS(ENOENT, link("nope", "x"));
	FAILS(ENOENT, link("f", "nope/x"));
	FAILS(ENOTDIR, link("f", "h/x"));

	SYS(utimensat(AT_FDCWD, "f", (struct timespec[]){{1, 0}, {1, 0}}, 0));
	SYS(unlink("f"));
	st = st_of("h");
	ck_assert_int_eq(st.st_nlink, 2);
	ck_assert(st.st_ctim.tv_sec > 1);
	SYS(unlink("d/g"));
	ck_assert_int_eq(st_of("h").st_nlink, 1);

	/* a symlink can be hard-linked too */
	SYS(symlink("h", "s"));
	SYS(link("s", "s2"));
	ck_assert(S_ISLNK(st_of("s2").st_mode));
	ck_assert_int_eq(st_of("s").st_nlink, 2);
}
END_TEST

/* EMLINK: 65000 links to a file (ext4's limit); set RFS_LINK_MAX_TEST=0 to skip. */
START_TEST(t_emlink)
{
	const char *e = getenv("RFS_LINK_MAX_TEST");
	char name[32];
	unsigned i;

	if (e && !strcmp(e, "0"))
		return;
	touch("f");
	for (i = 1; i < 65000; i++) {
		snprintf(name, sizeof(name), "l%u", i);
		if (link("f", name) != 0)
			break;
	}
	ck_assert_int_eq(i, 65000);
	ck_assert_int_eq(st_of("f").st_nlink, 65000);
	FAILS(EMLINK, link("f", "one-too-many"));
	for (i = 1; i < 65000; i++) {
		snprintf(name, sizeof(name), "l%u", i);
		SYS(unlink(name));
	}
	ck_assert_int_eq(st_of("f").st_nlink, 1);
}
END_TEST

START_TEST(t_symlink)
{
	static char target[4096], buf[8192];
	struct stat st;
	size_t lens[] = {1, 60, 127, 128, 129, 1000, 4095};
	unsigned i;
	int fd;

	for (i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		char name[16];
		size_t j;

		for (j = 0; j < lens[i]; j++)
			target[j] = (char)('a' + (j * 7 + i) % 26);
		target[lens[i]] = '\0';
		snprintf(name, sizeof(name), "s%u", i);
		SYS(symlink(target, name));
		st = st_of(name);
		ck_assert(S_ISLNK(st.st_mode));
		ck_assert_int_eq(st.st_mode & 07777, 0777);
		ck_assert_int_eq(st.st_size, lens[i]);
		ck_assert_int_eq(SYS(readlink(name, buf, sizeof(buf))), lens[i]);
		ck_assert(memcmp(buf, target, lens[i]) == 0);
		ck_assert_int_eq(SYS(readlink(name, buf, 10)), lens[i] < 10 ? lens[i] : 10);
	}
	{
		static char longer[4097];
		memset(longer, 'x', 4096); /* PATH_MAX with its NUL: too long */
		FAILS(ENAMETOOLONG, symlink(longer, "toolong"));
	}

	/* following: relative, dangling, loops, O_NOFOLLOW */
	write_file("f", "abc", 3, 0644);
	SYS(symlink("f", "l"));
	ck_assert_int_eq(st_of("f").st_ino, ({
				 SYS(stat("l", &st));
				 st.st_ino;
			 }));
	SYS(symlink("missing", "dangling"));
	FAILS(ENOENT, stat("dangling", &st));
	fd = (int)SYS(open("dangling", O_CREAT | O_WRONLY, 0644)); /* creates the target */
	SYS(close(fd));
	SYS(stat("missing", &st));
	SYS(symlink("loop2", "loop1"));
	SYS(symlink("loop1", "loop2"));
	FAILS(ELOOP, stat("loop1", &st));
	FAILS(ELOOP, open("l", O_RDONLY | O_NOFOLLOW));
	FAILS(EINVAL, readlink("f", buf, sizeof(buf)));
	FAILS(ENOENT, readlink("nope", buf, sizeof(buf)));
	FAILS(EEXIST, symlink("x", "l"));
	SYS(unlink("l")); /* the link, not the target */
	SYS(stat("f", &st));
}
END_TEST

START_TEST(t_mknod)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct stat st;
	int fd, s, c;

	SYS(mknod("fifo", S_IFIFO | 0640, 0));
	st = st_of("fifo");
	ck_assert(S_ISFIFO(st.st_mode));
	ck_assert_int_eq(st.st_mode & 07777, 0640);
	SYS(mkfifo("fifo2", 0600));
	ck_assert(S_ISFIFO(st_of("fifo2").st_mode));
	/* a FIFO works as one */
	fd = (int)SYS(open("fifo", O_RDWR));
	ck_assert_int_eq(SYS(write(fd, "pipe", 4)), 4);
	{
		char b[8];
		ck_assert_int_eq(SYS(read(fd, b, sizeof(b))), 4);
	}
	SYS(close(fd));

	SYS(mknod("chr", S_IFCHR | 0600, makedev(1, 3)));
	st = st_of("chr");
	ck_assert(S_ISCHR(st.st_mode));
	ck_assert_int_eq(major(st.st_rdev), 1);
	ck_assert_int_eq(minor(st.st_rdev), 3);
	SYS(mknod("blk", S_IFBLK | 0600, makedev(259, 65537)));
	st = st_of("blk");
	ck_assert(S_ISBLK(st.st_mode));
	ck_assert_int_eq(major(st.st_rdev), 259);
	ck_assert_int_eq(minor(st.st_rdev), 65537);
	SYS(mknod("sock", S_IFSOCK | 0644, 0));
	ck_assert(S_ISSOCK(st_of("sock").st_mode));
	SYS(mknod("reg", S_IFREG | 0644, 0));
	ck_assert(S_ISREG(st_of("reg").st_mode));
	ck_assert_int_eq(st_of("reg").st_size, 0);
	FAILS(EEXIST, mknod("chr", S_IFCHR | 0600, makedev(1, 3)));

	/* a bound socket: bind creates it, connect finds it */
	ck_assert(strlen(testdir) + 7 <= sizeof(sa.sun_path));
	memcpy(sa.sun_path, testdir, strlen(testdir));
	memcpy(sa.sun_path + strlen(testdir), "/usock", 7);
	s = (int)SYS(socket(AF_UNIX, SOCK_STREAM, 0));
	SYS(bind(s, (struct sockaddr *)&sa, sizeof(sa)));
	SYS(listen(s, 1));
	ck_assert(S_ISSOCK(st_of("usock").st_mode));
	c = (int)SYS(socket(AF_UNIX, SOCK_STREAM, 0));
	SYS(connect(c, (struct sockaddr *)&sa, sizeof(sa)));
	SYS(close(c));
	SYS(close(s));
	FAILS(EADDRINUSE,
	      bind((int)SYS(socket(AF_UNIX, SOCK_STREAM, 0)), (struct sockaddr *)&sa, sizeof(sa)));

	/* special files are removed as files */
	SYS(unlink("fifo"));
	SYS(unlink("chr"));
	SYS(unlink("blk"));
	SYS(unlink("sock"));
	SYS(unlink("usock"));
}
END_TEST

/* --- rename ---------------------------------------------------------------------- */

START_TEST(t_rename)
{
	struct stat st;
	ino_t fi, di;

	write_file("f", "one", 3, 0644);
	fi = st_of("f").st_ino;
	SYS(rename("f", "g"));
	FAILS(ENOENT, stat("f", &st));
	ck_assert_int_eq(st_of("g").st_ino, fi);
	SYS(rename("g", "g")); /* the same name: nothing happens */
	ck_assert_int_eq(st_of("g").st_ino, fi);

	/* over an existing file: it is replaced (and freed) */
	write_file("h", "two", 3, 0644);
	SYS(rename("g", "h"));
	ck_assert_int_eq(st_of("h").st_ino, fi);
	FAILS(ENOENT, stat("g", &st));

	/* two names of one inode: both stay (POSIX) */
	SYS(link("h", "h2"));
	SYS(rename("h", "h2"));
	ck_assert_int_eq(st_of("h").st_nlink, 2);
	SYS(unlink("h2"));

	/* directories between parents: link counts and ".." follow */
	SYS(mkdir("p1", 0755));
	SYS(mkdir("p2", 0755));
	SYS(mkdir("p1/d", 0755));
	SYS(mkdir("p1/d/sub", 0755));
	di = st_of("p1/d").st_ino;
	ck_assert_int_eq(st_of("p1").st_nlink, 3);
	SYS(rename("p1/d", "p2/d"));
	ck_assert_int_eq(st_of("p1").st_nlink, 2);
	ck_assert_int_eq(st_of("p2").st_nlink, 3);
	ck_assert_int_eq(st_of("p2/d").st_ino, di);
	ck_assert_int_eq(st_of("p2/d/..").st_ino, st_of("p2").st_ino);
	ck_assert_int_eq(st_of("p2/d/sub/../..").st_ino, st_of("p2").st_ino);

	/* errors */
	FAILS(EINVAL, rename("p2/d", "p2/d/sub/x")); /* into itself */
	FAILS(EINVAL, rename("p2", "p2/d/sub/p2"));
	FAILS(ENOENT, rename("nope", "x"));
	FAILS(ENOENT, rename("h", "nope/x"));
	FAILS(ENOTDIR, rename("h", "h/x"));
	FAILS(ENOTDIR, rename("p2/d", "h")); /* a directory over a file */
	FAILS(EISDIR, rename("h", "p2/d"));  /* a file over a directory */
	SYS(mkdir("full", 0755));
	touch("full/x");
	SYS(mkdir("empty", 0755));
	FAILS(ENOTEMPTY, rename("empty", "full"));
	FAILS(ENOTEMPTY, rename("p2/d/sub", "p2")); /* onto its own ancestor */
	/* over an empty directory: replaced */
	di = st_of("full").st_ino;
	SYS(rename("full", "empty"));
	ck_assert_int_eq(st_of("empty").st_ino, di);
	FAILS(ENOENT, stat("full", &st));
	ck_assert_int_eq(st_of(".").st_nlink, 5); /* p1 p2 empty */
	SYS(mkdir("e2", 0755));
	SYS(mkdir("p1/e3", 0755));
	SYS(rename("e2", "p1/e3"));
	ck_assert_int_eq(st_of("p1").st_nlink, 3);
	ck_assert_int_eq(st_of(".").st_nlink, 5);
}
END_TEST

START_TEST(t_rename_flags)
{
	struct stat st;
	ino_t a, b;

	write_file("a", "A", 1, 0644);
	write_file("b", "B", 1, 0644);
	a = st_of("a").st_ino;
	b = st_of("b").st_ino;

	FAILS(EEXIST, renameat2(AT_FDCWD, "a", AT_FDCWD, "b", RENAME_NOREPLACE));
	SYS(renameat2(AT_FDCWD, "a", AT_FDCWD, "c", RENAME_NOREPLACE));
	SYS(renameat2(AT_FDCWD, "c", AT_FDCWD, "a", RENAME_NOREPLACE));
	ck_assert_int_eq(st_of("a").st_ino, a);

	SYS(renameat2(AT_FDCWD, "a", AT_FDCWD, "b", RENAME_EXCHANGE));
	ck_assert_int_eq(st_of("a").st_ino, b);
	ck_assert_int_eq(st_of("b").st_ino, a);
	FAILS(ENOENT, renameat2(AT_FDCWD, "a", AT_FDCWD, "nope", RENAME_EXCHANGE));
	FAILS(ENOENT, renameat2(AT_FDCWD, "nope", AT_FDCWD, "a", RENAME_EXCHANGE));
	FAILS(EINVAL, renameat2(AT_FDCWD, "a", AT_FDCWD, "b", RENAME_EXCHANGE | RENAME_NOREPLACE));
	FAILS(EINVAL, renameat2(AT_FDCWD, "a", AT_FDCWD, "b", 1u << 20));

	/* RENAME_WHITEOUT (overlayfs' upper layer): the old name becomes a
	 * character device 0:0 without permission bits, the caller's */
	FAILS(EINVAL, renameat2(AT_FDCWD, "a", AT_FDCWD, "b", RENAME_EXCHANGE | RENAME_WHITEOUT));
	SYS(renameat2(AT_FDCWD, "a", AT_FDCWD, "w", RENAME_WHITEOUT));
	ck_assert_int_eq(st_of("w").st_ino, b);
	st = st_of("a");
	ck_assert(S_ISCHR(st.st_mode));
	ck_assert_int_eq(st.st_mode & 07777, 0);
	ck_assert_int_eq(st.st_rdev, 0);
	ck_assert_int_eq(st.st_nlink, 1);
	ck_assert_int_eq(st.st_uid, 0);
	FAILS(EEXIST, renameat2(AT_FDCWD, "w", AT_FDCWD, "b", RENAME_WHITEOUT | RENAME_NOREPLACE));
	SYS(renameat2(AT_FDCWD, "w", AT_FDCWD, "b", RENAME_WHITEOUT)); /* over a file */
	ck_assert_int_eq(st_of("b").st_ino, b);
	ck_assert(S_ISCHR(st_of("w").st_mode));
	SYS(unlink("w"));
	SYS(unlink("a"));
	SYS(rename("b", "a"));
	write_file("b", "B", 1, 0644);
	b = st_of("b").st_ino;
	SYS(renameat2(AT_FDCWD, "a", AT_FDCWD, "b", RENAME_EXCHANGE));

	/* a file and a directory in different parents: link counts swap */
	SYS(mkdir("p1", 0755));
	SYS(mkdir("p2", 0755));
	SYS(mkdir("p1/d", 0755));
	touch("p1/d/inside");
	touch("p2/f");
	ck_assert_int_eq(st_of("p1").st_nlink, 3);
	ck_assert_int_eq(st_of("p2").st_nlink, 2);
	SYS(renameat2(AT_FDCWD, "p1/d", AT_FDCWD, "p2/f", RENAME_EXCHANGE));
	ck_assert(S_ISREG(st_of("p1/d").st_mode));
	ck_assert(S_ISDIR(st_of("p2/f").st_mode));
	SYS(stat("p2/f/inside", &st));
	ck_assert_int_eq(st_of("p1").st_nlink, 2);
	ck_assert_int_eq(st_of("p2").st_nlink, 3);
	ck_assert_int_eq(st_of("p2/f/..").st_ino, st_of("p2").st_ino);
	/* two directories */
	SYS(mkdir("p1/x", 0755));
	SYS(renameat2(AT_FDCWD, "p1/x", AT_FDCWD, "p2/f", RENAME_EXCHANGE));
	SYS(stat("p1/x/inside", &st));
	ck_assert_int_eq(st_of("p1/x/..").st_ino, st_of("p1").st_ino);
	ck_assert_int_eq(st_of("p2/f/..").st_ino, st_of("p2").st_ino);
	ck_assert_int_eq(st_of("p1").st_nlink, 3);
	ck_assert_int_eq(st_of("p2").st_nlink, 3);
	/* a directory with its own descendant: EINVAL */
	SYS(mkdir("p1/x/deep", 0755));
	FAILS(EINVAL, renameat2(AT_FDCWD, "p1/x", AT_FDCWD, "p1/x/deep", RENAME_EXCHANGE));
	FAILS(EINVAL, renameat2(AT_FDCWD, "p1/x/deep", AT_FDCWD, "p1/x", RENAME_EXCHANGE));
	/* NOREPLACE with a directory target */
	FAILS(EEXIST, renameat2(AT_FDCWD, "p1/d", AT_FDCWD, "p2/f", RENAME_NOREPLACE));
}
END_TEST

/* --- attributes ------------------------------------------------------------------- */

START_TEST(t_attrs)
{
	struct stat st, st2;
	struct timespec ts[2];
	double t0;

	touch("f");
	SYS(chmod("f", 04751));
	ck_assert_int_eq(st_of("f").st_mode & 07777, 04751);
	SYS(chmod("f", 0600));
	SYS(chown("f", 1234, 5678));
	st = st_of("f");
	ck_assert_int_eq(st.st_uid, 1234);
	ck_assert_int_eq(st.st_gid, 5678);
	SYS(chown("f", -1, 42));
	ck_assert_int_eq(st_of("f").st_uid, 1234);
	ck_assert_int_eq(st_of("f").st_gid, 42);
	SYS(lchown("f", 0, 0));
	FAILS(ENOENT, chmod("nope", 0644));

	/* nanoseconds are kept */
	ts[0] = (struct timespec){1000000000, 123456789};
	ts[1] = (struct timespec){1500000000, 987654321};
	SYS(utimensat(AT_FDCWD, "f", ts, 0));
	st = st_of("f");
	ck_assert(ts_eq(st.st_atim, 1000000000, 123456789));
	ck_assert(ts_eq(st.st_mtim, 1500000000, 987654321));
	/* UTIME_OMIT leaves one alone; UTIME_NOW takes the clock */
	t0 = now_d();
	ts[0] = (struct timespec){0, UTIME_OMIT};
	ts[1] = (struct timespec){0, UTIME_NOW};
	SYS(utimensat(AT_FDCWD, "f", ts, 0));
	st = st_of("f");
	ck_assert(ts_eq(st.st_atim, 1000000000, 123456789));
	ck_assert(ts_d(st.st_mtim) >= t0 - 1 && ts_d(st.st_mtim) <= now_d() + 1);
	ck_assert(ts_d(st.st_ctim) >= t0 - 1);
	ts[0] = (struct timespec){0, UTIME_NOW};
	ts[1] = (struct timespec){0, UTIME_OMIT};
	st2 = st;
	SYS(utimensat(AT_FDCWD, "f", ts, 0));
	st = st_of("f");
	ck_assert(ts_d(st.st_atim) >= t0 - 1);
	ck_assert(ts_eq(st.st_mtim, st2.st_mtim.tv_sec, st2.st_mtim.tv_nsec));
	SYS(utimensat(AT_FDCWD, "f", NULL, 0));
	/* pre-1970 and far-future times */
	ts[0] = (struct timespec){-1000, 5};
	ts[1] = (struct timespec){4102444800LL, 999999999};
	SYS(utimensat(AT_FDCWD, "f", ts, 0));
	st = st_of("f");
	ck_assert(ts_eq(st.st_atim, -1000, 5));
	ck_assert(ts_eq(st.st_mtim, 4102444800LL, 999999999));
	/* symlinks have their own times (AT_SYMLINK_NOFOLLOW) */
	SYS(symlink("f", "l"));
	ts[0] = (struct timespec){7, 7};
	ts[1] = (struct timespec){8, 8};
	SYS(utimensat(AT_FDCWD, "l", ts, AT_SYMLINK_NOFOLLOW));
	ck_assert(ts_eq(st_of("l").st_mtim, 8, 8));
	ck_assert(ts_eq(st_of("f").st_mtim, 4102444800LL, 999999999));

	/* ctime moves on chmod; mtime and ctime on write */
	SYS(utimensat(AT_FDCWD, "f", (struct timespec[]){{1, 0}, {1, 0}}, 0));
	st = st_of("f");
	t0 = now_d();
	SYS(chmod("f", 0644));
	st2 = st_of("f");
	ck_assert(ts_d(st2.st_ctim) >= t0 - 1);
	ck_assert_int_eq(st2.st_mtim.tv_sec, 1);
	write_file("f", "x", 1, 0644);
	st2 = st_of("f");
	ck_assert(ts_d(st2.st_mtim) >= t0 - 1);

	/* directories */
	SYS(mkdir("d", 0700));
	SYS(chmod("d", 01777));
	ck_assert_int_eq(st_of("d").st_mode & 07777, 01777);
	SYS(chown("d", 99, 98));
	ck_assert_int_eq(st_of("d").st_uid, 99);
}
END_TEST

/* chown by root: set-user-ID always goes, set-group-ID with group execute */
START_TEST(t_chown_kills_suid)
{
	touch("a");
	SYS(chmod("a", 06755));
	SYS(chown("a", 1000, 1000));
	ck_assert_int_eq(st_of("a").st_mode & 07777, 0755);
	touch("b");
	SYS(chmod("b", 02644)); /* set-group-ID without group execute is kept */
	SYS(chown("b", 1000, 1000));
	ck_assert_int_eq(st_of("b").st_mode & 07777, 02644);
	touch("c");
	SYS(chmod("c", 04644));
	SYS(chown("c", 0, 0)); /* to the same owner: still cleared */
	ck_assert_int_eq(st_of("c").st_mode & 07777, 0644);
	SYS(mkdir("d", 0755));
	SYS(chmod("d", 06755)); /* not for directories */
	SYS(chown("d", 1000, 1000));
	ck_assert_int_eq(st_of("d").st_mode & 07777, 06755);
	/* a write by root (CAP_FSETID) keeps the bits */
	SYS(chown("a", 0, 0));
	SYS(chmod("a", 06755));
	write_file("a", "root", 4, 0);
	ck_assert_int_eq(st_of("a").st_mode & 07777, 06755);
}
END_TEST

START_TEST(t_statfs)
{
	static uint8_t buf[1 << 20];
	struct statfs sf, sf2;
	struct statvfs sv;
	int fd, i;

	SYS(statfs(".", &sf));
	ck_assert_int_eq(sf.f_bsize, 4096);
	ck_assert_int_eq(sf.f_namelen, 255);
	ck_assert(sf.f_blocks > 0 && sf.f_bfree <= sf.f_blocks && sf.f_bavail <= sf.f_bfree);
	ck_assert(sf.f_files > 0 && sf.f_ffree <= sf.f_files);
	SYS(statvfs(".", &sv));
	ck_assert_int_eq(sv.f_namemax, 255);
	ck_assert_int_eq(sv.f_frsize, 4096);

	fill(buf, sizeof(buf), 10);
	fd = (int)SYS(open("f", O_CREAT | O_RDWR, 0644));
	for (i = 0; i < 8; i++)
		pwrite_all(fd, buf, sizeof(buf), (off_t)i << 20);
	SYS(fsync(fd));
	SYS(statfs(".", &sf2));
	/* 8 MiB of data: 2048 blocks, plus a little metadata */
	ck_assert_msg(sf.f_bfree - sf2.f_bfree >= 2048 && sf.f_bfree - sf2.f_bfree < 2048 + 64,
		      "bfree %llu -> %llu", (unsigned long long)sf.f_bfree,
		      (unsigned long long)sf2.f_bfree);
	ck_assert(sf2.f_ffree < sf.f_ffree);
	SYS(close(fd));
	SYS(unlink("f"));
	ck_assert_uint_ge(bfree_wait(sf.f_bfree - 16), sf.f_bfree - 16);
}
END_TEST

/* --- readdir ------------------------------------------------------------------ */

#define NFILES 400

static int name_index(const char *n, char prefix)
{
	return n[0] == prefix ? atoi(n + 1) : -1;
}

START_TEST(t_readdir)
{
	static int seen[NFILES], seen_new[NFILES];
	char name[32];
	struct dirent *de;
	long pos;
	int i, count, dots = 0, after_pos[NFILES];
	DIR *d;

	SYS(mkdir("d", 0755));
	SYS(mkdir("d/sub", 0755));
	for (i = 0; i < NFILES; i++) {
		snprintf(name, sizeof(name), "d/f%d", i);
		touch(name);
	}
	/* one full listing: everything once, types right */
	d = opendir("d");
	ck_assert_ptr_nonnull(d);
	count = 0;
	while ((errno = 0, de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) {
			ck_assert_int_eq(de->d_type, DT_DIR);
			dots++;
			continue;
		}
		if (!strcmp(de->d_name, "sub")) {
			ck_assert_int_eq(de->d_type, DT_DIR);
			continue;
		}
		i = name_index(de->d_name, 'f');
		ck_assert(i >= 0 && i < NFILES);
		ck_assert_int_eq(de->d_type, DT_REG);
		ck_assert_int_eq(seen[i]++, 0);
		count++;
	}
	ck_assert_int_eq(errno, 0);
	ck_assert_int_eq(count, NFILES);
	ck_assert_int_eq(dots, 2);
	closedir(d);

	/* changes during a listing: entries present throughout come exactly
	 * once; telldir/seekdir positions stay valid */
	memset(seen, 0, sizeof(seen));
	memset(after_pos, 0, sizeof(after_pos));
	d = opendir("d");
	for (count = 0; count < 150 && (de = readdir(d));)
		if ((i = name_index(de->d_name, 'f')) >= 0) {
			seen[i]++;
			count++;
		}
	pos = telldir(d);
	/* remove every 4th original, add new ones */
	for (i = 0; i < NFILES; i += 4) {
		snprintf(name, sizeof(name), "d/f%d", i);
		SYS(unlink(name));
	}
	for (i = 0; i < NFILES; i++) {
		snprintf(name, sizeof(name), "d/n%d", i);
		touch(name);
	}
	while ((de = readdir(d))) {
		if ((i = name_index(de->d_name, 'f')) >= 0) {
			seen[i]++;
			after_pos[i] = 1;
		} else if ((i = name_index(de->d_name, 'n')) >= 0) {
			ck_assert_int_eq(seen_new[i]++, 0);
		}
	}
	for (i = 0; i < NFILES; i++) {
		if (i % 4)
			ck_assert_msg(seen[i] == 1, "f%d seen %d times", i, seen[i]);
		else
			ck_assert_msg(seen[i] <= 1, "removed f%d seen %d times", i, seen[i]);
	}
	/* back to the remembered position: the same survivors follow */
	seekdir(d, pos);
	memset(seen, 0, sizeof(seen));
	while ((de = readdir(d)))
		if ((i = name_index(de->d_name, 'f')) >= 0)
			seen[i]++;
	for (i = 0; i < NFILES; i++)
		if (i % 4)
			ck_assert_msg(seen[i] == after_pos[i], "f%d after seekdir: %d, before %d",
				      i, seen[i], after_pos[i]);
	/* rewinddir: the new entries are all there */
	rewinddir(d);
	memset(seen_new, 0, sizeof(seen_new));
	count = 0;
	while ((de = readdir(d)))
		if ((i = name_index(de->d_name, 'n')) >= 0) {
			seen_new[i]++;
			count++;
		}
	ck_assert_int_eq(count, NFILES);
	closedir(d);

	/* empty after removing everything: only . and .. */
	for (i = 0; i < NFILES; i++) {
		snprintf(name, sizeof(name), "d/n%d", i);
		SYS(unlink(name));
		if (i % 4) {
			snprintf(name, sizeof(name), "d/f%d", i);
			SYS(unlink(name));
		}
	}
	SYS(rmdir("d/sub"));
	d = opendir("d");
	count = 0;
	while ((de = readdir(d)))
		count++;
	ck_assert_int_eq(count, 2);
	closedir(d);
	SYS(rmdir("d"));
}
END_TEST

/* readdir with the stat attributes (readdirplus): ls -l style */
START_TEST(t_readdir_stat)
{
	static const char data[64] = "0123456789012345678901234567890123456789012345678";
	char name[32];
	struct dirent *de;
	struct stat st;
	int i, n = 0;
	DIR *d;

	SYS(mkdir("d", 0755));
	for (i = 0; i < 50; i++) {
		snprintf(name, sizeof(name), "d/%d", i);
		write_file(name, data, (size_t)i, 0600);
		SYS(chmod(name, 0600 + (mode_t)i % 8));
	}
	d = opendir("d");
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		SYS(fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW));
		ck_assert_int_eq(st.st_ino, de->d_ino);
		i = atoi(de->d_name);
		ck_assert_int_eq(st.st_size, i);
		ck_assert_int_eq(st.st_mode & 0777, 0600 + i % 8);
		n++;
	}
	closedir(d);
	ck_assert_int_eq(n, 50);
}
END_TEST

/* --- large I/O ----------------------------------------------------------------------- */

START_TEST(t_large_io)
{
	const size_t len = 24 << 20;
	uint8_t *a = malloc(len), *b = malloc(len);
	size_t off;
	int fd;

	ck_assert(a && b);
	fill(a, len, 11);
	fd = (int)SYS(open("f", O_CREAT | O_RDWR | O_TRUNC, 0644));
	/* writes of odd sizes */
	for (off = 0; off < len;) {
		size_t n = 1 + (off * 7919) % 300000;
		if (n > len - off)
			n = len - off;
		pwrite_all(fd, a + off, n, (off_t)off);
		off += n;
	}
	SYS(fsync(fd));
	SYS(close(fd));
	fd = (int)SYS(open("f", O_RDONLY));
	pread_all(fd, b, len, 0);
	ck_assert(memcmp(a, b, len) == 0);
	for (off = 1; off < len; off += 1234567) {
		size_t n = len - off < 70000 ? len - off : 70000;
		pread_all(fd, b, n, (off_t)off);
		ck_assert(memcmp(a + off, b, n) == 0);
	}
	SYS(close(fd));
	ck_assert_int_eq(st_of("f").st_blocks, len / 512);
	free(a);
	free(b);
}
END_TEST

/* ctime moves whenever the inode changes: link count included */
static struct timespec ctime_of(const char *path)
{
	return st_of(path).st_ctim;
}

static int ts_after(struct timespec a, struct timespec b)
{
	return a.tv_sec > b.tv_sec || (a.tv_sec == b.tv_sec && a.tv_nsec > b.tv_nsec);
}

#define CTIME_MOVES(path, op)                                                                      \
	do {                                                                                       \
		struct timespec _before = ctime_of(path);                                          \
		usleep(20000);                                                                     \
		op;                                                                                \
		ck_assert_msg(ts_after(ctime_of(path), _before), "ctime of %s after %s", path,     \
			      #op);                                                                \
	} while (0)

START_TEST(t_ctime)
{
	int fd;

	write_file("f", "data", 4, 0644);
	SYS(mkdir("d", 0755));
	CTIME_MOVES("f", SYS(link("f", "g")));
	CTIME_MOVES("f", SYS(unlink("g")));
	CTIME_MOVES("f", SYS(rename("f", "f2")); SYS(rename("f2", "f")));
	CTIME_MOVES("f", SYS(chmod("f", 0600)));
	CTIME_MOVES("f", SYS(truncate("f", 1)));
	CTIME_MOVES("f", write_file("f", "new data", 8, 0644));
	CTIME_MOVES("f", SYS(utimensat(AT_FDCWD, "f", NULL, 0)));
	/* the inode a rename replaces loses a link: its ctime moves */
	SYS(link("f", "keep"));
	touch("other");
	CTIME_MOVES("keep", SYS(rename("other", "f")));
	/* directories: entries added and removed */
	CTIME_MOVES("d", touch("d/x"));
	CTIME_MOVES("d", SYS(unlink("d/x")));
	CTIME_MOVES("d", SYS(mkdir("d/sub", 0755)));
	CTIME_MOVES("d", SYS(rename("d/sub", "sub")));
	fd = (int)SYS(open("keep", O_RDWR));
	CTIME_MOVES("keep", SYS(fchown(fd, 1, 1)));
	CTIME_MOVES("keep", SYS(fallocate(fd, 0, 0, 8192)));
	SYS(close(fd));
}
END_TEST

/* The times the kernel showed while the file was cached are the ones
 * stored: with write-back caching the kernel keeps mtime from the write
 * calls, and the daemon must not replace it by the time the pages reached
 * it. Dropping the kernel's caches makes the next stat ask the daemon. */
START_TEST(t_times_stored)
{
	static struct timespec seen[200];
	static uint8_t buf[8192];
	char name[32];
	int fd, i, bad = 0;

	fill(buf, sizeof(buf), 14);
	/* on close, the kernel sends the cached pages and then the times; the
	 * daemon's threads may take them in either order */
	for (i = 0; i < 200; i++) {
		snprintf(name, sizeof(name), "f%d", i);
		fd = (int)SYS(open(name, O_CREAT | O_WRONLY, 0644));
		pwrite_all(fd, buf, 100 + (size_t)i * 37, (off_t)i * 4096 + i);
		SYS(close(fd));
		seen[i] = st_of(name).st_mtim;
	}
	sync();
	drop_caches();
	usleep(100000);
	for (i = 0; i < 200; i++) {
		struct timespec t;
		snprintf(name, sizeof(name), "f%d", i);
		t = st_of(name).st_mtim;
		if (!ts_eq(t, seen[i].tv_sec, seen[i].tv_nsec) && bad++ < 5)
			fprintf(stderr, "%s: mtime %ld.%09ld seen, %ld.%09ld stored\n", name,
				(long)seen[i].tv_sec, seen[i].tv_nsec, (long)t.tv_sec, t.tv_nsec);
	}
	ck_assert_msg(bad == 0, "%d of 200 files have another mtime than the one seen", bad);
}
END_TEST

/* --- random operations against an in-memory model -------------------------------- */

static uint64_t rng_state;

static uint64_t rnd(uint64_t n)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return n ? rng_state % n : 0;
}

static void model_check(int fd, const uint8_t *model, size_t size, uint8_t *tmp, int op)
{
	struct stat st;

	SYS(fstat(fd, &st));
	ck_assert_msg((size_t)st.st_size == size, "op %d: size %lld, model %zu", op,
		      (long long)st.st_size, size);
	if (size)
		pread_all(fd, tmp, size, 0);
	if (memcmp(tmp, model, size) != 0) {
		size_t i = 0;
		while (tmp[i] == model[i])
			i++;
		ck_abort_msg("op %d: byte %zu is %u, model %u", op, i, tmp[i], model[i]);
	}
	ck_assert_int_eq(SYS(pread(fd, tmp, 10, (off_t)size)), 0);
}

/* pwrite, ftruncate, punch, zero range, preallocate at unaligned places:
 * the bytes must always be the model's (partial blocks zeroed right). */
START_TEST(t_random_ops)
{
	const size_t cap = 3 << 20;
	uint8_t *model = calloc(1, cap), *tmp = malloc(cap), *data = malloc(1 << 18);
	const char *seed = getenv("RFS_TEST_SEED"), *ops = getenv("RFS_RANDOM_OPS");
	int nops = ops ? atoi(ops) : 10000;
	size_t size = 0;
	int fd, op;

	ck_assert(model && tmp && data);
	rng_state = seed ? strtoull(seed, NULL, 0) : 0x5eed;
	if (!rng_state)
		rng_state = 1;
	fd = (int)SYS(open("f", O_CREAT | O_RDWR, 0644));
	for (op = 0; op < nops; op++) {
		size_t off = rnd(cap - (1 << 18)), len = 1 + rnd(rnd(4) ? 9000 : 1 << 18);
		switch (rnd(10)) {
		case 0:
		case 1:
		case 2:
		case 3: /* write */
			fill(data, len, (uint64_t)op);
			pwrite_all(fd, data, len, (off_t)off);
			memcpy(model + off, data, len);
			if (off + len > size)
				size = off + len;
			break;
		case 4: /* truncate, mostly near the end */
			off = rnd(2) ? (size > 20000 ? size - rnd(20000) : rnd(size + 1)) : off;
			SYS(ftruncate(fd, (off_t)off));
			if (off < size)
				memset(model + off, 0, size - off);
			size = off;
			break;
		case 5: /* punch */
			SYS(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off,
				      (off_t)len));
			if (off < size)
				memset(model + off, 0, (off + len < size ? off + len : size) - off);
			break;
		case 6: /* zero range, maybe growing */
			SYS(fallocate(fd,
				      rnd(2) ? FALLOC_FL_ZERO_RANGE
					     : FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE,
				      (off_t)off, (off_t)len));
			if (off < size)
				memset(model + off, 0, (off + len < size ? off + len : size) - off);
			{
				struct stat st;
				SYS(fstat(fd, &st));
				size = (size_t)st.st_size; /* KEEP_SIZE or not */
			}
			break;
		case 7: /* preallocate */
			SYS(fallocate(fd, rnd(2) ? 0 : FALLOC_FL_KEEP_SIZE, (off_t)off,
				      (off_t)len));
			{
				struct stat st;
				SYS(fstat(fd, &st));
				ck_assert((size_t)st.st_size >= size);
				size = (size_t)st.st_size;
			}
			break;
		case 8: /* read a piece */
			if (size) {
				off = rnd(size);
				len = rnd(size - off) + 1;
				pread_all(fd, tmp, len, (off_t)off);
				ck_assert_msg(memcmp(tmp, model + off, len) == 0,
					      "op %d: read [%zu, +%zu) differs", op, off, len);
			}
			break;
		default:
			if (rnd(20) == 0)
				SYS(fsync(fd));
			if (rnd(30) == 0) { /* reopen: nothing cached in the descriptor */
				SYS(close(fd));
				fd = (int)SYS(open("f", O_RDWR));
			}
			break;
		}
		if (op % 250 == 0)
			model_check(fd, model, size, tmp, op);
	}
	model_check(fd, model, size, tmp, op);
	SYS(close(fd));
	fd = (int)SYS(open("f", O_RDONLY));
	model_check(fd, model, size, tmp, op);
	/* where lseek says there is a hole, the model has zeros */
	for (off_t pos = 0; pos < (off_t)size;) {
		off_t d = lseek(fd, pos, SEEK_DATA), h;
		if (d < 0) {
			ck_assert_int_eq(errno, ENXIO);
			d = (off_t)size;
		}
		ck_assert(all_zero(model + pos, (size_t)(d - pos)));
		if (d >= (off_t)size)
			break;
		h = SYS(lseek(fd, d, SEEK_HOLE));
		ck_assert(h > d);
		pos = h;
	}
	SYS(close(fd));
	free(model);
	free(tmp);
	free(data);
}
END_TEST

/* --- mmap, O_DIRECT, fsync of directories ----------------------------------------- */

START_TEST(t_mmap)
{
	const size_t len = 1 << 20;
	static uint8_t a[1 << 20], b[1 << 20];
	uint8_t *p;
	int fd;

	fill(a, len, 12);
	fd = (int)SYS(open("f", O_CREAT | O_RDWR, 0644));
	SYS(ftruncate(fd, (off_t)len));
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	ck_assert(p != MAP_FAILED);
	memcpy(p, a, len);
	SYS(msync(p, len, MS_SYNC));
	pread_all(fd, b, len, 0);
	ck_assert(memcmp(a, b, len) == 0);
	/* a write through the descriptor shows in the mapping */
	pwrite_all(fd, "written", 7, 4096);
	ck_assert(memcmp(p + 4096, "written", 7) == 0);
	SYS(munmap(p, len));
	SYS(close(fd));
	fd = (int)SYS(open("f", O_RDONLY));
	pread_all(fd, b, len, 0);
	memcpy(a + 4096, "written", 7);
	ck_assert(memcmp(a, b, len) == 0);
	SYS(close(fd));
	ck_assert_int_eq(st_of("f").st_blocks, len / 512);
}
END_TEST

START_TEST(t_odirect)
{
	uint8_t *a, *b;
	const size_t len = 1 << 20;
	int fd;

	ck_assert(posix_memalign((void **)&a, 4096, len) == 0);
	ck_assert(posix_memalign((void **)&b, 4096, len) == 0);
	fill(a, len, 13);
	fd = open("f", O_CREAT | O_RDWR | O_DIRECT, 0644);
	if (fd < 0 && errno == EINVAL)
		return; /* no direct I/O here */
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(SYS(pwrite(fd, a, len, 0)), len);
	ck_assert_int_eq(SYS(pwrite(fd, a, 4096, 8 << 20)), 4096);
	ck_assert_int_eq(SYS(pread(fd, b, len, 0)), len);
	ck_assert(memcmp(a, b, len) == 0);
	SYS(close(fd));
	ck_assert_int_eq(st_of("f").st_size, (8 << 20) + 4096);
	fd = (int)SYS(open("f", O_RDONLY));
	pread_all(fd, b, 4096, 8 << 20);
	ck_assert(memcmp(a, b, 4096) == 0);
	ck_assert_int_eq(SYS(lseek(fd, len, SEEK_DATA)), 8 << 20);
	SYS(close(fd));
	free(a);
	free(b);
}
END_TEST

START_TEST(t_fsync_dir)
{
	int fd;

	SYS(mkdir("d", 0755));
	touch("d/f");
	fd = (int)SYS(open("d", O_RDONLY | O_DIRECTORY));
	SYS(fsync(fd));
	SYS(fdatasync(fd));
	SYS(close(fd));
	fd = (int)SYS(open("d/f", O_RDONLY));
	SYS(fsync(fd)); /* a read-only descriptor may fsync */
	SYS(fdatasync(fd));
	/* syncfs also reports write-back errors of the filesystem no one has
	 * seen yet (errseq): under write-back caching, t_efbig leaves one */
	if (syncfs(fd) != 0 && writeback)
		SYS(syncfs(fd));
	SYS(close(fd));
}
END_TEST

/* --- threads: namespace and data operations at once -------------------------------- */

#define NTHREADS 8

static void *thread_body(void *arg)
{
	long t = (long)arg;
	uint8_t buf[20000], back[20000];
	char a[64], b[64];
	int i;

	for (i = 0; i < 150; i++) {
		int fd;

		snprintf(a, sizeof(a), "shared/t%ld-%d", t, i);
		snprintf(b, sizeof(b), "shared/r%ld-%d", t, i);
		fill(buf, sizeof(buf), (uint64_t)(t * 1000 + i));
		fd = open(a, O_CREAT | O_EXCL | O_RDWR, 0644);
		if (fd < 0)
			return (void *)"create";
		if (pwrite(fd, buf, sizeof(buf), 0) != sizeof(buf))
			return (void *)"write";
		if (close(fd))
			return (void *)"close";
		if (rename(a, b))
			return (void *)"rename";
		if (i % 3 == 0 && link(b, a))
			return (void *)"link";
		fd = open(b, O_RDONLY);
		if (fd < 0 || pread(fd, back, sizeof(back), 0) != sizeof(back) ||
		    memcmp(buf, back, sizeof(buf)) || close(fd))
			return (void *)"read back";
		if (i % 2 && unlink(b))
			return (void *)"unlink";
		if (i % 5 == 0) {
			snprintf(a, sizeof(a), "shared/d%ld-%d", t, i);
			if (mkdir(a, 0755) || rmdir(a))
				return (void *)"mkdir/rmdir";
		}
	}
	return NULL;
}

static int shared_fd;

static void *thread_shared(void *arg)
{
	long t = (long)arg;
	uint8_t buf[4096];
	int i;

	for (i = 0; i < 64; i++) {
		fill(buf, sizeof(buf), (uint64_t)(t * 64 + i));
		if (pwrite(shared_fd, buf, sizeof(buf), (off_t)((i * NTHREADS + t) * 4096)) !=
		    sizeof(buf))
			return (void *)"shared write";
	}
	return NULL;
}

START_TEST(t_threads)
{
	pthread_t th[2 * NTHREADS];
	uint8_t buf[4096], back[4096];
	struct dirent *de;
	long t;
	int n = 0, i;
	DIR *d;

	SYS(mkdir("shared", 0755));
	shared_fd = (int)SYS(open("big", O_CREAT | O_RDWR, 0644));
	for (t = 0; t < NTHREADS; t++) {
		ck_assert_int_eq(pthread_create(&th[t], NULL, thread_body, (void *)t), 0);
		ck_assert_int_eq(pthread_create(&th[NTHREADS + t], NULL, thread_shared, (void *)t),
				 0);
	}
	for (t = 0; t < 2 * NTHREADS; t++) {
		void *r;
		pthread_join(th[t], &r);
		ck_assert_msg(r == NULL, "thread %ld: %s failed: %s", t, (char *)r,
			      strerror(errno));
	}
	SYS(fsync(shared_fd));
	for (t = 0; t < NTHREADS; t++)
		for (i = 0; i < 64; i++) {
			fill(buf, sizeof(buf), (uint64_t)(t * 64 + i));
			pread_all(shared_fd, back, sizeof(back),
				  (off_t)((i * NTHREADS + t) * 4096));
			ck_assert(memcmp(buf, back, sizeof(buf)) == 0);
		}
	SYS(close(shared_fd));
	d = opendir("shared");
	while ((de = readdir(d)))
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	/* per thread: 75 r-names kept, 50 t-links (i % 3 == 0) */
	ck_assert_int_eq(n, NTHREADS * (75 + 50));
}
END_TEST

/* --- permissions, as another user --------------------------------------------------- */

static int child_sticky_nobody(void *arg)
{
	(void)arg;
	CHK(close(open("sd/mine", O_CREAT | O_WRONLY, 0644)) == 0);
	CHK(mkdir("sd/mydir", 0755) == 0);
	return 0;
}

static int child_sticky_other(void *arg)
{
	(void)arg;
	CHK_FAILS(EPERM, unlink("sd/mine"));
	CHK_FAILS(EPERM, rename("sd/mine", "sd/stolen"));
	CHK_FAILS(EPERM, rmdir("sd/mydir"));
	CHK_FAILS(EPERM, unlink("sd/roots"));
	CHK(close(open("sd/other", O_CREAT | O_WRONLY, 0644)) == 0);
	CHK(rename("sd/other", "sd/other2") == 0);
	CHK(unlink("sd/other2") == 0);
	/* replacing someone else's file by rename is refused too */
	CHK(close(open("sd/tmp", O_CREAT | O_WRONLY, 0644)) == 0);
	CHK_FAILS(EPERM, rename("sd/tmp", "sd/mine"));
	return 0;
}

static int child_sticky_owner(void *arg)
{
	(void)arg;
	CHK(unlink("sd/mine") == 0);
	CHK(rmdir("sd/mydir") == 0);
	return 0;
}

START_TEST(t_perm_sticky)
{
	SYS(mkdir("sd", 0777));
	SYS(chmod("sd", 01777));
	touch("sd/roots");
	ck_assert_int_eq(as_user(NOBODY, NOBODY, child_sticky_nobody, NULL), 0);
	ck_assert_int_eq(st_of("sd/mine").st_uid, NOBODY);
	ck_assert_int_eq(st_of("sd/mine").st_gid, NOBODY);
	ck_assert_int_eq(as_user(NOBODY2, NOBODY2, child_sticky_other, NULL), 0);
	ck_assert_int_eq(as_user(NOBODY, NOBODY, child_sticky_owner, NULL), 0);
	SYS(unlink("sd/tmp")); /* root may */
	SYS(unlink("sd/roots"));
}
END_TEST

static int child_write(void *arg)
{
	int fd = open((const char *)arg, O_WRONLY);
	CHK(fd >= 0);
	CHK(write(fd, "xyz", 3) == 3);
	CHK(close(fd) == 0);
	return 0;
}

static int child_truncate(void *arg)
{
	CHK(truncate((const char *)arg, 1) == 0);
	return 0;
}

static int child_fallocate(void *arg)
{
	int fd = open((const char *)arg, O_WRONLY);
	CHK(fd >= 0);
	CHK(fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, 8192) == 0);
	CHK(close(fd) == 0);
	return 0;
}

START_TEST(t_perm_write_kills_suid)
{
	touch("f");
	SYS(chmod("f", 06777));
	ck_assert_int_eq(as_user(NOBODY, NOBODY, child_write, "f"), 0);
	ck_assert_int_eq(st_of("f").st_mode & 07777, 0777);
	ck_assert_int_eq(st_of("f").st_size, 3);
	/* set-user-ID alone */
	SYS(chmod("f", 04666));
	ck_assert_int_eq(as_user(NOBODY, NOBODY, child_write, "f"), 0);
	ck_assert_int_eq(st_of("f").st_mode & 07777, 0666);
	/* truncate too */
	SYS(chmod("f", 06777));
	ck_assert_int_eq(as_user(NOBODY, NOBODY, child_truncate, "f"), 0);
	ck_assert_int_eq(st_of("f").st_mode & 07777, 0777);
	ck_assert_int_eq(st_of("f").st_size, 1);
	/* the owner's own write, too (no CAP_FSETID) */
	touch("g");
	SYS(chown("g", NOBODY, NOBODY));
	SYS(chmod("g", 04755));
	ck_assert_int_eq(as_user(NOBODY, NOBODY, child_write, "g"), 0);
	ck_assert_int_eq(st_of("g").st_mode & 07777, 0755);
	/* set-group-ID without group exec (a locking mark): a writer in the
	 * file's group keeps it, one outside takes it off (since Linux 6.2,
	 * setattr_should_drop_sgid), by write, truncate or fallocate alike */
	SYS(chown("g", 0, NOBODY));
	SYS(chmod("g", 02666));
	ck_assert_int_eq(as_user(NOBODY, NOBODY, child_write, "g"), 0);
	ck_assert_int_eq(st_of("g").st_mode & 07777, 02666);
	SYS(chown("g", 0, 0));
	SYS(chmod("g", 02666));
	ck_assert_int_eq(as_user(NOBODY, NOBODY, child_write, "g"), 0);
	ck_assert_int_eq(st_of("g").st_mode & 07777, 0666);
	SYS(chmod("g", 02666));
	ck_assert_int_eq(as_user(NOBODY, NOBODY, child_truncate, "g"), 0);
	ck_assert_int_eq(st_of("g").st_mode & 07777, 0666);
	SYS(chmod("g", 02666));
	ck_assert_int_eq(as_user(NOBODY, NOBODY, child_fallocate, "g"), 0);
	ck_assert_int_eq(st_of("g").st_mode & 07777, 0666);
}
END_TEST

static int child_chown(void *arg)
{
	(void)arg;
	/* the owner may change the group to one of its own, and not the owner */
	CHK(chown("mine", -1, NOBODY) == 0);
	CHK_FAILS(EPERM, chown("mine", 0, -1));
	CHK_FAILS(EPERM, chown("mine", -1, 0));
	CHK_FAILS(EPERM, chown("roots", NOBODY, -1));
	CHK_FAILS(EPERM, chmod("roots", 0777));
	CHK(chmod("mine", 04755) == 0);
	CHK(chown("mine", NOBODY, NOBODY) == 0); /* clears set-user-ID */
	return 0;
}

START_TEST(t_perm_chown)
{
	touch("mine");
	SYS(chown("mine", NOBODY, 0));
	touch("roots");
	ck_assert_int_eq(as_user(NOBODY, NOBODY, child_chown, NULL), 0);
	ck_assert_int_eq(st_of("mine").st_gid, NOBODY);
	ck_assert_int_eq(st_of("mine").st_mode & 07777, 0755);
}
END_TEST

static int child_mode0(void *arg)
{
	struct stat st;
	int fd = open("m0", O_CREAT | O_EXCL | O_RDWR, 0);

	(void)arg;
	CHK(fd >= 0);
	CHK(ftruncate(fd, 12345) == 0);
	CHK(write(fd, "abc", 3) == 3);
	CHK(fstat(fd, &st) == 0 && st.st_size == 12345 && (st.st_mode & 07777) == 0);
	CHK(close(fd) == 0);
	/* by name, it is not accessible */
	CHK_FAILS(EACCES, open("m0", O_RDONLY));
	CHK_FAILS(EACCES, open("m0", O_WRONLY));
	CHK_FAILS(EACCES, truncate("m0", 0));
	return 0;
}

START_TEST(t_perm_create_mode0)
{
	ck_assert_int_eq(as_user(NOBODY, NOBODY, child_mode0, NULL), 0);
	ck_assert_int_eq(st_of("m0").st_size, 12345);
}
END_TEST

static int child_open_perms(void *arg)
{
	char buf[8];
	int fd;

	(void)arg;
	CHK_FAILS(EACCES, open("secret", O_RDONLY));
	CHK_FAILS(EACCES, open("ro", O_WRONLY));
	CHK_FAILS(EACCES, open("ro", O_RDWR | O_TRUNC));
	CHK((fd = open("ro", O_RDONLY)) >= 0 && read(fd, buf, 8) == 2 && close(fd) == 0);
	CHK((fd = open("wo", O_WRONLY)) >= 0 && write(fd, "w", 1) == 1 && close(fd) == 0);
	CHK_FAILS(EACCES, open("wo", O_RDONLY));
	CHK_FAILS(EACCES, open("closed/x", O_RDONLY)); /* no search permission */
	CHK_FAILS(EACCES, open("noexec-dir/new", O_CREAT | O_WRONLY, 0644));
	CHK_FAILS(EACCES, mkdir("ro-dir/new", 0755));
	CHK_FAILS(EACCES, unlink("ro-dir/f"));
	CHK(access("ro", R_OK) == 0);
	CHK_FAILS(EACCES, access("ro", W_OK));
	/* execute-only: exec works without read permission */
	pid_t pid = fork();
	if (pid == 0) {
		execl("./xonly", "xonly", (char *)NULL);
		_exit(127);
	}
	int status;
	CHK(waitpid(pid, &status, 0) == pid);
	CHK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	CHK_FAILS(EACCES, open("xonly", O_RDONLY));
	CHK_FAILS(EACCES, execl("./noexec", "noexec", (char *)NULL));
	return 0;
}

START_TEST(t_perm_open)
{
	static uint8_t exe[4 << 20];
	int in, n;

	write_file("secret", "s", 1, 0600);
	write_file("ro", "ro", 2, 0644);
	write_file("wo", "", 0, 0622);
	SYS(chmod("wo", 0622));
	SYS(mkdir("closed", 0700));
	touch("closed/x");
	SYS(mkdir("noexec-dir", 0766));
	SYS(chmod("noexec-dir", 0766));
	SYS(mkdir("ro-dir", 0755));
	touch("ro-dir/f");
	in = (int)SYS(open("/bin/true", O_RDONLY));
	n = (int)SYS(read(in, exe, sizeof(exe)));
	SYS(close(in));
	write_file("xonly", exe, (size_t)n, 0711);
	SYS(chmod("xonly", 0711));
	write_file("noexec", exe, (size_t)n, 0644);
	ck_assert_int_eq(as_user(NOBODY, NOBODY, child_open_perms, NULL), 0);
	ck_assert_int_eq(st_of("wo").st_size, 1);
}
END_TEST

static int child_utime(void *arg)
{
	struct timespec ts[2] = {{5, 0}, {6, 0}};
	struct timespec now2[2] = {{0, UTIME_NOW}, {0, UTIME_NOW}};
	struct timespec omit_now[2] = {{0, UTIME_OMIT}, {0, UTIME_NOW}};

	(void)arg;
	/* write permission is enough to set both times to now */
	CHK(utimensat(AT_FDCWD, "rw", NULL, 0) == 0);
	CHK(utimensat(AT_FDCWD, "rw", now2, 0) == 0);
	/* but not to set other times, or one of them */
	CHK_FAILS(EPERM, utimensat(AT_FDCWD, "rw", ts, 0));
	CHK_FAILS(EPERM, utimensat(AT_FDCWD, "rw", omit_now, 0));
	CHK_FAILS(EACCES, utimensat(AT_FDCWD, "ro", NULL, 0));
	CHK_FAILS(EPERM, utimensat(AT_FDCWD, "ro", ts, 0));
	return 0;
}

START_TEST(t_perm_utime)
{
	double t0 = now_d();

	touch("rw");
	SYS(chmod("rw", 0666));
	touch("ro");
	SYS(utimensat(AT_FDCWD, "rw", (struct timespec[]){{1, 0}, {1, 0}}, 0));
	ck_assert_int_eq(as_user(NOBODY, NOBODY, child_utime, NULL), 0);
	ck_assert(ts_d(st_of("rw").st_mtim) >= t0 - 1);
	ck_assert(ts_d(st_of("rw").st_atim) >= t0 - 1);
}
END_TEST

static int child_setgid_dir(void *arg)
{
	struct stat st;

	(void)arg;
	CHK(close(open("sg/f", O_CREAT | O_WRONLY, 0644)) == 0);
	CHK(stat("sg/f", &st) == 0 && st.st_gid == 4321 && st.st_uid == NOBODY);
	CHK((st.st_mode & S_ISGID) == 0);
	CHK(mkdir("sg/sub", 0755) == 0);
	CHK(stat("sg/sub", &st) == 0 && st.st_gid == 4321 && (st.st_mode & S_ISGID));
	/* it goes on down */
	CHK(mkdir("sg/sub/deeper", 0700) == 0);
	CHK(stat("sg/sub/deeper", &st) == 0 && st.st_gid == 4321 && (st.st_mode & S_ISGID));
	CHK(close(open("sg/sub/g", O_CREAT | O_WRONLY, 0644)) == 0);
	CHK(stat("sg/sub/g", &st) == 0 && st.st_gid == 4321);
	CHK(mknod("sg/fifo", S_IFIFO | 0644, 0) == 0);
	CHK(stat("sg/fifo", &st) == 0 && st.st_gid == 4321);
	CHK(symlink("f", "sg/link") == 0);
	CHK(lstat("sg/link", &st) == 0 && st.st_gid == 4321);
	/* a set-group-ID file for a group we are not in: the bit is dropped */
	CHK(close(open("sg/sgidfile", O_CREAT | O_WRONLY, 02755)) == 0);
	CHK(stat("sg/sgidfile", &st) == 0 && (st.st_mode & 07777) == 0755);
	/* outside the directory: our own group */
	CHK(close(open("plain", O_CREAT | O_WRONLY, 0644)) == 0);
	CHK(stat("plain", &st) == 0 && st.st_gid == NOBODY);
	return 0;
}

START_TEST(t_perm_setgid_dir)
{
	SYS(mkdir("sg", 0777));
	SYS(chown("sg", 0, 4321));
	SYS(chmod("sg", 02777));
	ck_assert_int_eq(as_user(NOBODY, NOBODY, child_setgid_dir, NULL), 0);
	/* root's new directories inherit too */
	SYS(mkdir("sg/r", 0755));
	ck_assert_int_eq(st_of("sg/r").st_gid, 4321);
	ck_assert(st_of("sg/r").st_mode & S_ISGID);
}
END_TEST

/* --- POSIX ACLs ---------------------------------------------------------------- */

/* ACLs are set and read as setfacl and getfacl do, through the system.*
 * attributes in the kernel's format: a struct posix_acl_xattr_header
 * (version 2), then 8-byte entries (tag, permissions, id). */
#define ACL_A	 "system.posix_acl_access"
#define ACL_D	 "system.posix_acl_default"
#define ACL_NOID ((uint32_t)ACL_UNDEFINED_ID)
#define ACL_MAXN 32
#define ACL_BYTES                                                                                  \
	(sizeof(struct posix_acl_xattr_header) + ACL_MAXN * sizeof(struct posix_acl_xattr_entry))

struct acl_ent {
	uint16_t tag, perm;
	uint32_t id;
};

/* Entries as getfacl shows them: UO(6) is user::rw-, UN(65534, 6)
 * user:65534:rw-, and GO, GN, MK (the mask), OT (others). */
#define UO(p)                                                                                      \
	{                                                                                          \
		ACL_USER_OBJ, p, ACL_NOID                                                          \
	}
#define UN(id, p)                                                                                  \
	{                                                                                          \
		ACL_USER, p, id                                                                    \
	}
#define GO(p)                                                                                      \
	{                                                                                          \
		ACL_GROUP_OBJ, p, ACL_NOID                                                         \
	}
#define GN(id, p)                                                                                  \
	{                                                                                          \
		ACL_GROUP, p, id                                                                   \
	}
#define MK(p)                                                                                      \
	{                                                                                          \
		ACL_MASK, p, ACL_NOID                                                              \
	}
#define OT(p)                                                                                      \
	{                                                                                          \
		ACL_OTHER, p, ACL_NOID                                                             \
	}
/* ENTS(...): an array of entries and its length, as two arguments. */
#define ENTS(...)                                                                                  \
	((const struct acl_ent[]){__VA_ARGS__}),                                                   \
		(sizeof((const struct acl_ent[]){__VA_ARGS__}) / sizeof(struct acl_ent))

static size_t acl_encode(uint8_t *buf, const struct acl_ent *e, size_t n)
{
	struct posix_acl_xattr_header h = {htole32(POSIX_ACL_XATTR_VERSION)};
	size_t i;

	memcpy(buf, &h, sizeof(h));
	for (i = 0; i < n; i++) {
		struct posix_acl_xattr_entry x = {htole16(e[i].tag), htole16(e[i].perm),
						  htole32(e[i].id)};
		memcpy(buf + sizeof(h) + i * sizeof(x), &x, sizeof(x));
	}
	return sizeof(h) + n * sizeof(struct posix_acl_xattr_entry);
}

/* setxattr of ACL NAME of PATH to E (N entries): 0, or -1 with errno. */
static int acl_set(const char *path, const char *name, const struct acl_ent *e, size_t n)
{
	uint8_t buf[ACL_BYTES];

	return setxattr(path, name, buf, acl_encode(buf, e, n), 0);
}

/* Reads ACL NAME of PATH into E (ACL_MAXN entries): the number of entries,
 * -1 with errno, or -2 if it is not in the kernel's format. */
static int acl_read(const char *path, const char *name, struct acl_ent *e)
{
	uint8_t buf[ACL_BYTES];
	struct posix_acl_xattr_header h;
	ssize_t len = getxattr(path, name, buf, sizeof(buf));
	size_t i, n;

	if (len < 0)
		return -1;
	memcpy(&h, buf, sizeof(h));
	n = ((size_t)len - sizeof(h)) / sizeof(struct posix_acl_xattr_entry);
	if ((size_t)len < sizeof(h) || le32toh(h.a_version) != POSIX_ACL_XATTR_VERSION ||
	    sizeof(h) + n * sizeof(struct posix_acl_xattr_entry) != (size_t)len)
		return -2;
	for (i = 0; i < n; i++) {
		struct posix_acl_xattr_entry x;
		memcpy(&x, buf + sizeof(h) + i * sizeof(x), sizeof(x));
		e[i] = (struct acl_ent){le16toh(x.e_tag), le16toh(x.e_perm), le32toh(x.e_id)};
	}
	return (int)n;
}

static const char *acl_tag_name(uint16_t tag)
{
	switch (tag) {
	case ACL_USER_OBJ:
	case ACL_USER:
		return "u";
	case ACL_GROUP_OBJ:
	case ACL_GROUP:
		return "g";
	case ACL_MASK:
		return "m";
	case ACL_OTHER:
		return "o";
	}
	return "?";
}

/* "u::rw-,u:65534:rwx,..." into BUF. */
static const char *acl_text(const struct acl_ent *e, int n, char *buf, size_t size)
{
	size_t pos = 0;
	int i;

	buf[0] = '\0';
	for (i = 0; i < n && pos < size; i++) {
		char id[16] = "";

		if (e[i].tag == ACL_USER || e[i].tag == ACL_GROUP)
			snprintf(id, sizeof(id), "%u", e[i].id);
		pos += (size_t)snprintf(buf + pos, size - pos, "%s%s:%s:%c%c%c", i ? "," : "",
					acl_tag_name(e[i].tag), id, e[i].perm & 4 ? 'r' : '-',
					e[i].perm & 2 ? 'w' : '-', e[i].perm & 1 ? 'x' : '-');
	}
	return buf;
}

/* 0 if ACL NAME of PATH is exactly E (N entries), else 1 with the
 * difference in WHY. */
static int acl_differs(const char *path, const char *name, const struct acl_ent *e, size_t n,
		       char *why, size_t whylen)
{
	struct acl_ent got[ACL_MAXN];
	char a[512], b[512];
	int k = acl_read(path, name, got);

	if (k == (int)n && !memcmp(got, e, n * sizeof(*e)))
		return 0;
	if (k < 0)
		snprintf(why, whylen, "%s %s: %s", path, name,
			 k == -1 ? strerror(errno) : "not an ACL");
	else
		snprintf(why, whylen, "%s %s: %s, expected %s", path, name,
			 acl_text(got, k, a, sizeof(a)), acl_text(e, (int)n, b, sizeof(b)));
	return 1;
}

static void ck_acl(const char *path, const char *name, const struct acl_ent *e, size_t n)
{
	char why[1200];

	ck_assert_msg(!acl_differs(path, name, e, n, why, sizeof(why)), "%s", why);
}

static int mode_of(const char *path)
{
	return (int)(st_of(path).st_mode & 07777);
}

START_TEST(t_acl_access)
{
	char list[512];
	ssize_t len;

	write_file("f", "x", 1, 0644);
	/* none yet */
	FAILS(ENODATA, getxattr("f", ACL_A, NULL, 0));
	FAILS(ENODATA, getxattr("f", ACL_D, NULL, 0));
	SYS(acl_set("f", ACL_A, ENTS(UO(6), UN(NOBODY, 6), GO(4), GN(NOBODY2, 4), MK(6), OT(0))));
	ck_acl("f", ACL_A, ENTS(UO(6), UN(NOBODY, 6), GO(4), GN(NOBODY2, 4), MK(6), OT(0)));
	/* the mode's group bits show the mask */
	ck_assert_int_eq(mode_of("f"), 0660);
	ck_assert_int_eq(SYS(getxattr("f", ACL_A, NULL, 0)), 4 + 6 * 8);
	len = SYS(listxattr("f", list, sizeof(list)));
	ck_assert(memmem(list, (size_t)len, ACL_A, sizeof(ACL_A)) != NULL);
	/* replaced by one the mode can say: the mode changes, no ACL is kept */
	SYS(acl_set("f", ACL_A, ENTS(UO(7), GO(5), OT(1))));
	ck_assert_int_eq(mode_of("f"), 0751);
	FAILS(ENODATA, getxattr("f", ACL_A, NULL, 0));
	/* directories have them too, and the owning group stays as it was
	 * beside the mask */
	SYS(mkdir("d", 0755));
	SYS(acl_set("d", ACL_A, ENTS(UO(7), UN(NOBODY, 5), GO(7), MK(5), OT(0))));
	ck_assert_int_eq(mode_of("d"), 0750);
	ck_acl("d", ACL_A, ENTS(UO(7), UN(NOBODY, 5), GO(7), MK(5), OT(0)));
	FAILS(ENODATA, getxattr("d", ACL_D, NULL, 0));
}
END_TEST

START_TEST(t_acl_remove)
{
	char list[512];
	ssize_t len;
	uint8_t hdr[ACL_BYTES];

	touch("f");
	SYS(acl_set("f", ACL_A, ENTS(UO(6), UN(NOBODY, 6), GO(4), MK(6), OT(4))));
	SYS(removexattr("f", ACL_A));
	FAILS(ENODATA, getxattr("f", ACL_A, NULL, 0));
	len = SYS(listxattr("f", list, sizeof(list)));
	ck_assert(memmem(list, (size_t)len, ACL_A, sizeof(ACL_A)) == NULL);
	ck_assert_int_eq(mode_of("f"), 0664); /* the mode stays */
	/* removing what is not there is no error (ext4, XFS) */
	SYS(removexattr("f", ACL_A));
	SYS(removexattr("f", ACL_D));
	/* an empty ACL (the header alone) removes one too */
	SYS(acl_set("f", ACL_A, ENTS(UO(6), UN(NOBODY, 6), GO(4), MK(4), OT(4))));
	SYS(setxattr("f", ACL_A, hdr, acl_encode(hdr, NULL, 0), 0));
	FAILS(ENODATA, getxattr("f", ACL_A, NULL, 0));
	ck_assert_int_eq(mode_of("f"), 0644);
	/* a default ACL */
	SYS(mkdir("d", 0755));
	SYS(acl_set("d", ACL_D, ENTS(UO(7), GO(5), OT(5))));
	SYS(removexattr("d", ACL_D));
	FAILS(ENODATA, getxattr("d", ACL_D, NULL, 0));
	touch("d/f");
	FAILS(ENODATA, getxattr("d/f", ACL_A, NULL, 0));
}
END_TEST

static int child_acl_rw(void *arg)
{
	int fd = open((const char *)arg, O_RDWR);

	CHK(fd >= 0);
	CHK(write(fd, "w", 1) == 1);
	CHK(close(fd) == 0);
	return 0;
}

static int child_acl_ro(void *arg)
{
	int fd = open((const char *)arg, O_RDONLY);

	CHK(fd >= 0 && close(fd) == 0);
	CHK_FAILS(EACCES, open((const char *)arg, O_WRONLY));
	return 0;
}

static int child_acl_none(void *arg)
{
	CHK_FAILS(EACCES, open((const char *)arg, O_RDONLY));
	CHK_FAILS(EACCES, open((const char *)arg, O_WRONLY));
	return 0;
}

static int child_acl_dir(void *arg)
{
	int allowed = arg != NULL;

	if (allowed) {
		CHK(close(open("d/new", O_CREAT | O_WRONLY, 0644)) == 0);
		CHK(access("d/x", R_OK) == 0);
	} else {
		CHK_FAILS(EACCES, open("d/new", O_CREAT | O_WRONLY, 0644));
		CHK_FAILS(EACCES, access("d/x", R_OK));
	}
	return 0;
}

START_TEST(t_acl_perm)
{
	write_file("f", "data", 4, 0600);
	SYS(acl_set("f", ACL_A, ENTS(UO(6), UN(NOBODY, 6), GO(0), GN(NOBODY2, 4), MK(6), OT(0))));
	/* a named user may read and write, a named group read */
	ck_assert_int_eq(as_user(NOBODY, NOBODY, child_acl_rw, "f"), 0);
	ck_assert_int_eq(as_user(NOBODY2, NOBODY2, child_acl_ro, "f"), 0);
	/* someone with no entry of their own gets others' rights: none */
	ck_assert_int_eq(as_user(NOBODY3, NOBODY3, child_acl_none, "f"), 0);
	/* the mask (the mode's group bits) limits named entries */
	SYS(chmod("f", 0640));
	ck_assert_int_eq(as_user(NOBODY, NOBODY, child_acl_ro, "f"), 0);
	SYS(chmod("f", 0600));
	ck_assert_int_eq(as_user(NOBODY, NOBODY, child_acl_none, "f"), 0);
	ck_assert_int_eq(as_user(NOBODY2, NOBODY2, child_acl_none, "f"), 0);
	SYS(chmod("f", 0660));
	ck_assert_int_eq(as_user(NOBODY, NOBODY, child_acl_rw, "f"), 0);
	ck_assert_int_eq(st_of("f").st_size, 4);
	/* a directory: a named user may search and create, others not */
	SYS(mkdir("d", 0700));
	touch("d/x");
	SYS(chmod("d/x", 0644));
	SYS(acl_set("d", ACL_A, ENTS(UO(7), UN(NOBODY, 7), GO(0), MK(7), OT(0))));
	ck_assert_int_eq(as_user(NOBODY, NOBODY, child_acl_dir, "allowed"), 0);
	ck_assert_int_eq(as_user(NOBODY2, NOBODY2, child_acl_dir, NULL), 0);
	ck_assert_int_eq(st_of("d/new").st_uid, NOBODY);
}
END_TEST

START_TEST(t_acl_chmod)
{
	touch("f");
	SYS(acl_set("f", ACL_A, ENTS(UO(7), UN(NOBODY, 7), GO(5), MK(7), OT(5))));
	ck_assert_int_eq(mode_of("f"), 0775);
	/* chmod rewrites the owner, mask and others entries */
	SYS(chmod("f", 0640));
	ck_acl("f", ACL_A, ENTS(UO(6), UN(NOBODY, 7), GO(5), MK(4), OT(0)));
	SYS(chmod("f", 0751));
	ck_acl("f", ACL_A, ENTS(UO(7), UN(NOBODY, 7), GO(5), MK(5), OT(1)));
	/* setting the ACL back after a chmod changes the mode again (xfstests
	 * generic/375: the ACL must not be left stale by the chmod) */
	SYS(chmod("f", 0600));
	SYS(acl_set("f", ACL_A, ENTS(UO(7), UN(NOBODY, 7), GO(5), MK(7), OT(5))));
	ck_assert_int_eq(mode_of("f"), 0775);
	/* set-user-ID and sticky bits stay out of the ACL */
	SYS(chmod("f", 04700));
	ck_acl("f", ACL_A, ENTS(UO(7), UN(NOBODY, 7), GO(5), MK(0), OT(0)));
	ck_assert_int_eq(mode_of("f"), 04700);
	/* a default ACL does not follow the mode */
	SYS(mkdir("d", 0755));
	SYS(acl_set("d", ACL_D, ENTS(UO(7), UN(NOBODY, 7), GO(5), MK(7), OT(5))));
	SYS(chmod("d", 0700));
	ck_acl("d", ACL_D, ENTS(UO(7), UN(NOBODY, 7), GO(5), MK(7), OT(5)));
	FAILS(ENODATA, getxattr("d", ACL_A, NULL, 0));
}
END_TEST

static int child_acl_inherit(void *arg)
{
	struct acl_ent e[ACL_MAXN];

	(void)arg;
	umask(0);
	CHK(close(open("d/sub/deeper/mine", O_CREAT | O_WRONLY, 0666)) == 0);
	CHK(acl_read("d/sub/deeper/mine", ACL_A, e) == 5);
	return 0;
}

START_TEST(t_acl_default)
{
	SYS(mkdir("d", 0755));
	SYS(acl_set("d", ACL_D, ENTS(UO(7), UN(NOBODY, 7), GO(5), MK(7), OT(5))));
	FAILS(ENODATA, getxattr("d", ACL_A, NULL, 0)); /* a default ACL only */
	umask(077);				       /* which a default ACL replaces */
	/* a file: the default ACL masked by the create mode, no default ACL */
	SYS(close((int)SYS(open("d/f", O_CREAT | O_WRONLY, 0640))));
	ck_assert_int_eq(mode_of("d/f"), 0640);
	ck_acl("d/f", ACL_A, ENTS(UO(6), UN(NOBODY, 7), GO(5), MK(4), OT(0)));
	FAILS(ENODATA, getxattr("d/f", ACL_D, NULL, 0));
	/* a directory: both, and on down */
	SYS(mkdir("d/sub", 0750));
	ck_assert_int_eq(mode_of("d/sub"), 0750);
	ck_acl("d/sub", ACL_A, ENTS(UO(7), UN(NOBODY, 7), GO(5), MK(5), OT(0)));
	ck_acl("d/sub", ACL_D, ENTS(UO(7), UN(NOBODY, 7), GO(5), MK(7), OT(5)));
	SYS(mkdir("d/sub/deeper", 0777));
	ck_assert_int_eq(mode_of("d/sub/deeper"), 0775);
	ck_acl("d/sub/deeper", ACL_A, ENTS(UO(7), UN(NOBODY, 7), GO(5), MK(7), OT(5)));
	ck_acl("d/sub/deeper", ACL_D, ENTS(UO(7), UN(NOBODY, 7), GO(5), MK(7), OT(5)));
	/* device nodes and fifos too; symlinks are 0777 with no ACL */
	SYS(mknod("d/fifo", S_IFIFO | 0666, 0));
	ck_assert_int_eq(mode_of("d/fifo"), 0664);
	ck_acl("d/fifo", ACL_A, ENTS(UO(6), UN(NOBODY, 7), GO(5), MK(6), OT(4)));
	SYS(symlink("f", "d/link"));
	ck_assert_int_eq(mode_of("d/link"), 0777);
	/* the named user can create in the subdirectory that allows it */
	ck_assert_int_eq(as_user(NOBODY, NOBODY, child_acl_inherit, NULL), 0);
	ck_assert_int_eq(mode_of("d/sub/deeper/mine"), 0664);
	/* a default ACL the mode can say: a new file gets no access ACL */
	SYS(mkdir("e", 0755));
	SYS(acl_set("e", ACL_D, ENTS(UO(7), GO(5), OT(0))));
	SYS(close((int)SYS(open("e/f", O_CREAT | O_WRONLY, 0666))));
	ck_assert_int_eq(mode_of("e/f"), 0640);
	FAILS(ENODATA, getxattr("e/f", ACL_A, NULL, 0));
	/* a default ACL is for directories only */
	FAILS(EACCES, acl_set("d/f", ACL_D, ENTS(UO(7), GO(5), OT(5))));
	umask(022);
}
END_TEST

START_TEST(t_acl_umask)
{
	/* no default ACL: the umask applies (the kernel leaves it to us) */
	umask(027);
	SYS(close((int)SYS(open("f", O_CREAT | O_WRONLY, 0666))));
	ck_assert_int_eq(mode_of("f"), 0640);
	SYS(mkdir("d", 0777));
	ck_assert_int_eq(mode_of("d"), 0750);
	SYS(mknod("p", S_IFIFO | 0666, 0));
	ck_assert_int_eq(mode_of("p"), 0640);
	umask(0);
	SYS(close((int)SYS(open("g", O_CREAT | O_WRONLY, 0666))));
	ck_assert_int_eq(mode_of("g"), 0666);
	SYS(mkdir("e", 0777));
	ck_assert_int_eq(mode_of("e"), 0777);
	umask(022);
	FAILS(ENODATA, getxattr("f", ACL_A, NULL, 0));
	FAILS(ENODATA, getxattr("d", ACL_D, NULL, 0));
}
END_TEST

START_TEST(t_acl_invalid)
{
	uint8_t buf[ACL_BYTES];
	size_t len;
	struct {
		const char *what;
		struct acl_ent e[8];
		size_t n;
	} bad[] = {
		{"no owner entry", {GO(4), OT(4)}, 2},
		{"no others entry", {UO(6), GO(4)}, 2},
		{"no owning group entry", {UO(6), OT(4)}, 2},
		{"out of order", {GO(4), UO(6), OT(4)}, 3},
		{"two owner entries", {UO(6), UO(6), GO(4), OT(4)}, 4},
		{"a named user without a mask", {UO(6), UN(NOBODY, 6), GO(4), OT(4)}, 4},
		{"a named user after the groups", {UO(6), GO(4), UN(NOBODY, 6), MK(6), OT(4)}, 5},
		{"a named user with no id", {UO(6), UN(ACL_NOID, 6), GO(4), MK(6), OT(4)}, 5},
		{"permissions beyond rwx", {UO(8), GO(4), OT(4)}, 3},
		{"an unknown tag", {UO(6), GO(4), {0x40, 4, ACL_NOID}, OT(4)}, 4},
		{"an entry after others", {UO(6), GO(4), OT(4), OT(4)}, 4},
	};
	size_t i;

	touch("f");
	SYS(mkdir("d", 0755));
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		errno = 0;
		ck_assert_msg(acl_set("f", ACL_A, bad[i].e, bad[i].n) == -1 && errno == EINVAL,
			      "%s: %s", bad[i].what, strerror(errno));
		ck_assert_msg(acl_set("d", ACL_D, bad[i].e, bad[i].n) == -1 && errno == EINVAL,
			      "%s (default): %s", bad[i].what, strerror(errno));
	}
	/* not the kernel's format: a cut entry; a version other than 2 is
	 * EOPNOTSUPP, as on ext4 */
	len = acl_encode(buf, ENTS(UO(6), GO(4), OT(4)));
	FAILS(EINVAL, setxattr("f", ACL_A, buf, len - 1, 0));
	FAILS(EINVAL, setxattr("f", ACL_A, buf, 3, 0));
	buf[0] = 1;
	FAILS(EOPNOTSUPP, setxattr("f", ACL_A, buf, len, 0));
	/* nothing changed */
	FAILS(ENODATA, getxattr("f", ACL_A, NULL, 0));
	FAILS(ENODATA, getxattr("d", ACL_D, NULL, 0));
	ck_assert_int_eq(mode_of("f"), 0644);
}
END_TEST

static int child_acl_sgid(void *arg)
{
	int owner = arg != NULL;

	if (!owner) { /* only the owner may set an ACL */
		CHK_FAILS(EPERM, acl_set("f", ACL_A, ENTS(UO(7), GO(7), OT(7))));
		return 0;
	}
	CHK(acl_set("f", ACL_A, ENTS(UO(7), UN(NOBODY2, 5), GO(7), MK(5), OT(0))) == 0);
	return 0;
}

START_TEST(t_acl_sgid)
{
	touch("f");
	SYS(chown("f", NOBODY, 4321));
	SYS(chmod("f", 02770));
	/* root keeps set-group-ID (CAP_FSETID) */
	SYS(acl_set("f", ACL_A, ENTS(UO(7), UN(NOBODY2, 7), GO(7), MK(7), OT(0))));
	ck_assert_int_eq(mode_of("f"), 02770);
	ck_assert_int_eq(as_user(NOBODY2, NOBODY2, child_acl_sgid, NULL), 0);
	/* the owner, outside group 4321, loses it, as with chmod */
	ck_assert_int_eq(as_user(NOBODY, NOBODY, child_acl_sgid, "owner"), 0);
	ck_assert_int_eq(mode_of("f"), 0750);
	ck_acl("f", ACL_A, ENTS(UO(7), UN(NOBODY2, 5), GO(7), MK(5), OT(0)));
}
END_TEST

/* --- main ---------------------------------------------------------------------- */

static Suite *posix_suite(void)
{
	const struct itest tests[] = {
#define T(x) ITEST(x)
		T(t_create_read_write),
		T(t_append_trunc_excl),
		T(t_truncate),
		T(t_efbig),
		T(t_seek_data_hole),
		T(t_seek_while_writing),
		T(t_fallocate),
		T(t_name_limits),
		T(t_mkdir_rmdir),
		T(t_unlink_open),
		T(t_link),
		T(t_emlink),
		T(t_symlink),
		T(t_mknod),
		T(t_rename),
		T(t_rename_flags),
		T(t_attrs),
		T(t_chown_kills_suid),
		T(t_statfs),
		T(t_readdir),
		T(t_readdir_stat),
		T(t_large_io),
		T(t_perm_sticky),
		T(t_perm_write_kills_suid),
		T(t_perm_chown),
		T(t_perm_create_mode0),
		T(t_perm_open),
		T(t_perm_utime),
		T(t_perm_setgid_dir),
		T(t_acl_access),
		T(t_acl_remove),
		T(t_acl_perm),
		T(t_acl_chmod),
		T(t_acl_default),
		T(t_acl_umask),
		T(t_acl_invalid),
		T(t_acl_sgid),
		T(t_random_ops),
		T(t_mmap),
		T(t_odirect),
		T(t_fsync_dir),
		T(t_threads),
		T(t_ctime),
		T(t_times_stored),
#undef T
	};

	return itest_suite("posix", tests, sizeof(tests) / sizeof(tests[0]), setup, 300);
}

/* --- helpers for run.sh: posix COMMAND ARGS ------------------------------------------ */

static double mono(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

#define DIE(...)                                                                                   \
	do {                                                                                       \
		fprintf(stderr, __VA_ARGS__);                                                      \
		fprintf(stderr, " (%s)\n", strerror(errno));                                       \
		return 1;                                                                          \
	} while (0)

/* map FILE: the data segments ("START END" per line) by SEEK_DATA/SEEK_HOLE */
static int cmd_map(const char *path)
{
	int fd = open(path, O_RDONLY);
	off_t pos = 0, d, h;

	if (fd < 0)
		DIE("open %s", path);
	for (;;) {
		d = lseek(fd, pos, SEEK_DATA);
		if (d < 0 && errno == ENXIO)
			break;
		if (d < 0)
			DIE("SEEK_DATA %lld", (long long)pos);
		h = lseek(fd, d, SEEK_HOLE);
		if (h <= d)
			DIE("SEEK_HOLE %lld gave %lld", (long long)d, (long long)h);
		printf("%lld %lld\n", (long long)d, (long long)h);
		pos = h;
	}
	close(fd);
	return 0;
}

/* bigdir DIR N [create|check|remove|all]: N entries in one directory */
static int cmd_bigdir(const char *dir, long n, const char *what)
{
	int all = !strcmp(what, "all");
	char name[PATH_MAX];
	struct stat st;
	struct dirent *de;
	double t;
	long i, count;
	DIR *d;

	if (all || !strcmp(what, "create")) {
		t = mono();
		if (mkdir(dir, 0755))
			DIE("mkdir %s", dir);
		for (i = 0; i < n; i++) {
			int fd;
			snprintf(name, sizeof(name), "%s/entry-%ld", dir, i);
			fd = open(name, O_CREAT | O_EXCL | O_WRONLY, 0644);
			if (fd < 0 || close(fd))
				DIE("create %s", name);
		}
		printf("bigdir: created %ld files in %.1f s\n", n, mono() - t);
	}
	if (all || !strcmp(what, "check")) {
		t = mono();
		for (i = 0; i < 2000; i++) {
			long k = (i * 7919L) % n;
			snprintf(name, sizeof(name), "%s/entry-%ld", dir, k);
			if (stat(name, &st) || !S_ISREG(st.st_mode) || st.st_size != 0)
				DIE("stat %s", name);
			snprintf(name, sizeof(name), "%s/missing-%ld", dir, k);
			if (stat(name, &st) == 0 || errno != ENOENT)
				DIE("stat %s should be ENOENT", name);
		}
		printf("bigdir: 2000 stats + 2000 misses in %.1f s\n", mono() - t);
		t = mono();
		d = opendir(dir);
		if (!d)
			DIE("opendir %s", dir);
		count = 0;
		while ((errno = 0, de = readdir(d)))
			if (de->d_name[0] != '.')
				count++;
		if (errno)
			DIE("readdir");
		closedir(d);
		printf("bigdir: readdir of %ld entries in %.1f s\n", count, mono() - t);
		if (count != n) {
			fprintf(stderr, "bigdir: readdir found %ld entries, expected %ld\n", count,
				n);
			return 1;
		}
		if (stat(dir, &st) || st.st_nlink != 2)
			DIE("stat %s (nlink %lu)", dir, (unsigned long)st.st_nlink);
	}
	if (all || !strcmp(what, "remove")) {
		t = mono();
		for (i = 0; i < n; i++) {
			snprintf(name, sizeof(name), "%s/entry-%ld", dir, i);
			if (unlink(name))
				DIE("unlink %s", name);
		}
		if (rmdir(dir))
			DIE("rmdir %s", dir);
		printf("bigdir: removed %ld files in %.1f s\n", n, mono() - t);
	}
	return 0;
}

/* frag FILE N [write|check|free]: a file of N one-block extents (data at
 * every other 4 KiB block) */
static int cmd_frag(const char *path, long n, const char *what)
{
	uint8_t buf[4096], back[4096];
	double t;
	long i;
	int fd;

	if (!strcmp(what, "write")) {
		t = mono();
		fd = open(path, O_CREAT | O_TRUNC | O_RDWR, 0644);
		if (fd < 0)
			DIE("open %s", path);
		for (i = 0; i < n; i++) {
			fill(buf, sizeof(buf), (uint64_t)i);
			if (pwrite(fd, buf, 4096, (off_t)i * 8192) != 4096)
				DIE("pwrite block %ld", i);
		}
		if (fsync(fd) || close(fd))
			DIE("fsync %s", path);
		printf("frag: wrote %ld separate blocks in %.1f s\n", n, mono() - t);
		return 0;
	}
	if (!strcmp(what, "check")) {
		struct stat st;
		off_t pos = 0, d, h;
		long segs = 0;

		t = mono();
		fd = open(path, O_RDONLY);
		if (fd < 0 || fstat(fd, &st))
			DIE("open %s", path);
		if (st.st_size != (off_t)(n - 1) * 8192 + 4096 || st.st_blocks != n * 8) {
			fprintf(stderr, "frag: size %lld blocks %lld\n", (long long)st.st_size,
				(long long)st.st_blocks);
			return 1;
		}
		for (i = 0; i < n; i++) {
			fill(buf, sizeof(buf), (uint64_t)i);
			if (pread(fd, back, 4096, (off_t)i * 8192) != 4096 ||
			    memcmp(buf, back, 4096))
				DIE("block %ld differs", i);
			if (i + 1 < n && (pread(fd, back, 4096, (off_t)i * 8192 + 4096) != 4096 ||
					  !all_zero(back, 4096)))
				DIE("hole after block %ld is not zeros", i);
		}
		printf("frag: read back in %.1f s\n", mono() - t);
		t = mono();
		while ((d = lseek(fd, pos, SEEK_DATA)) >= 0) {
			h = lseek(fd, d, SEEK_HOLE);
			if (d != (off_t)segs * 8192 || h != d + 4096)
				DIE("segment %ld is [%lld, %lld)", segs, (long long)d,
				    (long long)h);
			segs++;
			pos = h;
		}
		close(fd);
		printf("frag: %ld data segments by SEEK_DATA/SEEK_HOLE in %.1f s\n", segs,
		       mono() - t);
		return segs == n ? 0 : 1;
	}
	if (!strcmp(what, "free")) {
		t = mono();
		if (truncate(path, 0) || unlink(path))
			DIE("truncate/unlink %s", path);
		printf("frag: freed in %.1f s\n", mono() - t);
		return 0;
	}
	return 2;
}

/* fill DIR: writes 1 MiB chunks into files until ENOSPC comes (from write,
 * or under write-back caching from fsync or close); exit 0 only if the
 * error is ENOSPC. Prints how many bytes went in. */
static int cmd_fill(const char *dir)
{
	static uint8_t buf[1 << 20];
	char name[PATH_MAX];
	long long total = 0;
	int i, fd;

	fill(buf, sizeof(buf), 99);
	for (i = 0;; i++) {
		int j, err = 0;
		const char *where = "";

		snprintf(name, sizeof(name), "%s/fill-%d", dir, i);
		fd = open(name, O_CREAT | O_WRONLY, 0644);
		if (fd < 0) {
			err = errno;
			where = "open";
		}
		for (j = 0; !err && j < 8; j++) {
			ssize_t w = write(fd, buf, sizeof(buf));
			if (w < 0) {
				err = errno;
				where = "write";
			} else {
				total += w;
				if (w < (ssize_t)sizeof(buf)) {
					err = (errno = 0, write(fd, buf, 1) < 0 ? errno : EIO);
					where = "write after a short write";
				}
			}
		}
		if (!err && fsync(fd)) {
			err = errno;
			where = "fsync";
		}
		if (fd >= 0 && close(fd) && !err) {
			err = errno;
			where = "close";
		}
		if (err) {
			printf("fill: %s of %s failed with %s after %lld bytes\n", where, name,
			       strerrorname_np(err), total);
			return err == ENOSPC ? 0 : 1;
		}
		if (i > 100000) {
			fprintf(stderr, "fill: no ENOSPC\n");
			return 1;
		}
	}
}

static uint64_t crash_size(long i)
{
	return (uint64_t)((i * 7919) % 200000) + (i % 7 == 0 ? (1u << 20) + 5 : 0);
}

/* crashwriter DIR LOG: writes files until it fails (the daemon is killed);
 * appends "f I SIZE" to LOG once file DIR/fI is fsync'ed, "a LEN" once the
 * first LEN bytes of DIR/append are. Other files are written, renamed,
 * truncated and removed without fsync. */
static int cmd_crashwriter(const char *dir, const char *logpath)
{
	static uint8_t buf[(1 << 20) + 200000];
	char name[PATH_MAX], other[PATH_MAX];
	int logfd = open(logpath, O_CREAT | O_WRONLY | O_APPEND, 0644);
	int afd, ofd;
	uint64_t alen = 0;
	long i;

	if (logfd < 0)
		DIE("open %s", logpath);
	snprintf(name, sizeof(name), "%s/append", dir);
	afd = open(name, O_CREAT | O_WRONLY | O_APPEND, 0644);
	/* an unlinked file held open: an orphan for the mount after the crash */
	snprintf(name, sizeof(name), "%s/orphan", dir);
	ofd = open(name, O_CREAT | O_RDWR, 0644);
	if (afd < 0 || ofd < 0)
		DIE("open in %s", dir);
	fill(buf, 4 << 10, 1);
	for (i = 0; i < 1024; i++)
		if (write(ofd, buf, 4096) != 4096)
			return 0;
	if (fsync(ofd) || unlink(name))
		return 0;
	for (i = 0;; i++) {
		uint64_t size = crash_size(i);
		int fd;

		snprintf(name, sizeof(name), "%s/f%ld", dir, i);
		fill(buf, size, (uint64_t)i);
		fd = open(name, O_CREAT | O_TRUNC | O_WRONLY, 0644);
		if (fd < 0)
			return 0;
		for (uint64_t done = 0; done < size;) {
			size_t n = size - done < 65536 ? size - done : 65536;
			if (write(fd, buf + done, n) != (ssize_t)n)
				return 0;
			done += n;
		}
		if (i % 3 == 0) {
			if (fsync(fd))
				return 0;
			dprintf(logfd, "f %ld %llu\n", i, (unsigned long long)size);
		}
		if (close(fd))
			return 0;
		if (i % 3 == 1 && i > 10) { /* churn on files never fsync'ed */
			snprintf(other, sizeof(other), "%s/f%ld", dir, i - 9);
			if (i % 2)
				unlink(other);
			else
				truncate(other, 1000);
			snprintf(other, sizeof(other), "%s/r%ld", dir, i);
			rename(name, other);
		}
		fill(buf, 65536, 1000000 + alen / 65536);
		if (write(afd, buf, 65536) != 65536)
			return 0;
		alen += 65536;
		if (i % 8 == 0) {
			if (fsync(afd))
				return 0;
			dprintf(logfd, "a %llu\n", (unsigned long long)alen);
		}
	}
}

/* crashcheck DIR LOG: every fsync'ed file intact byte for byte */
static int cmd_crashcheck(const char *dir, const char *logpath)
{
	static uint8_t buf[(1 << 20) + 200000], back[(1 << 20) + 200000];
	FILE *log = fopen(logpath, "r");
	char line[128], name[PATH_MAX];
	unsigned long long v1, v2, alen = 0;
	long files = 0, bad = 0;
	struct stat st;

	if (!log)
		DIE("open %s", logpath);
	while (fgets(line, sizeof(line), log)) {
		if (sscanf(line, "f %llu %llu", &v1, &v2) == 2) {
			int fd;
			snprintf(name, sizeof(name), "%s/f%llu", dir, v1);
			fill(buf, v2, v1);
			fd = open(name, O_RDONLY);
			if (fd < 0 || fstat(fd, &st) || (uint64_t)st.st_size != v2 ||
			    pread(fd, back, v2, 0) != (ssize_t)v2 || memcmp(buf, back, v2)) {
				fprintf(stderr,
					"crashcheck: %s (fsync'ed, %llu bytes) is not intact\n",
					name, v2);
				bad++;
			}
			if (fd >= 0)
				close(fd);
			files++;
		} else if (sscanf(line, "a %llu", &v1) == 1 && line[0] == 'a') {
			alen = v1;
		}
	}
	fclose(log);
	if (alen) {
		int fd;
		snprintf(name, sizeof(name), "%s/append", dir);
		fd = open(name, O_RDONLY);
		if (fd < 0 || fstat(fd, &st) || (uint64_t)st.st_size < alen) {
			fprintf(stderr, "crashcheck: append is shorter than its fsync'ed %llu\n",
				alen);
			bad++;
		} else {
			for (uint64_t off = 0; off < alen; off += 65536) {
				fill(buf, 65536, 1000000 + off / 65536);
				if (pread(fd, back, 65536, (off_t)off) != 65536 ||
				    memcmp(buf, back, 65536)) {
					fprintf(stderr, "crashcheck: append differs at %llu\n",
						(unsigned long long)off);
					bad++;
					break;
				}
			}
		}
		if (fd >= 0)
			close(fd);
	}
	printf("crashcheck: %ld fsync'ed files and %llu fsync'ed append bytes checked, %ld bad\n",
	       files, alen, bad);
	return bad || !files ? 1 : 0;
}

/* fillmeta DIR: on a disk already full of data, makes empty files, then
 * directories, symlinks (short and long), hard links and renames until
 * each fails; every failure must be ENOSPC and every long symlink made
 * must read back whole. */
static int cmd_fillmeta(const char *dir)
{
	static char target[3001];
	const char *kinds[] = {"file", "dir", "symlink", "longsymlink", "link", "rename"};
	char name[PATH_MAX], other[PATH_MAX], buf[4096];
	long made[6] = {0}, k, i;
	int bad = 0;

	memset(target, 'x', 3000);
	for (k = 0; k < 6; k++) {
		for (i = 0; i < 1000000; i++) {
			int r;
			snprintf(name, sizeof(name), "%s/%s%ld", dir, kinds[k], i);
			switch (k) {
			case 0:
				r = open(name, O_CREAT | O_EXCL | O_WRONLY, 0644);
				if (r >= 0)
					r = close(r);
				break;
			case 1:
				r = mkdir(name, 0755);
				break;
			case 2:
				r = symlink("t", name);
				break;
			case 3:
				r = symlink(target, name);
				break;
			case 4:
				snprintf(other, sizeof(other), "%s/file0", dir);
				r = link(other, name);
				break;
			default:
				snprintf(other, sizeof(other), "%s/file%ld", dir, i);
				snprintf(name, sizeof(name),
					 "%s/a-much-longer-name-than-before-%ld", dir, i);
				r = rename(other, name);
				if (r && errno == ENOENT)
					errno = ENOSPC; /* ran out of files to rename: fine */
				break;
			}
			if (r < 0)
				break;
			made[k]++;
		}
		printf("fillmeta: %ld %s(s), then %s\n", made[k], kinds[k], strerrorname_np(errno));
		if (errno != ENOSPC)
			bad = 1;
	}
	for (i = 0; i < made[3]; i++) {
		snprintf(name, sizeof(name), "%s/longsymlink%ld", dir, i);
		if (readlink(name, buf, sizeof(buf)) != 3000 || memcmp(buf, target, 3000)) {
			fprintf(stderr, "fillmeta: %s does not read back\n", name);
			bad = 1;
		}
	}
	return bad;
}

/* symlinks DIR N: N symlinks with targets of 100 to 4000 bytes, made among
 * freed single blocks (so that long targets are fragmented on small block
 * sizes); check DIR N: they read back */
static void symlink_target(long i, char *t)
{
	size_t len = 100 + (size_t)(i * 397) % 3900, j;

	for (j = 0; j < len; j++)
		t[j] = (char)('!' + (i + (long)j * 13) % 90);
	t[len] = '\0';
}

static int cmd_symlinks(const char *dir, long n, const char *what)
{
	char name[PATH_MAX], t[4096], back[4096];
	long i;

	if (!strcmp(what, "make")) {
		long nblk;
		/* fill the disk with one-block files, then remove every other one */
		for (nblk = 0;; nblk++) {
			int fd, bad;
			snprintf(name, sizeof(name), "%s/blk%ld", dir, nblk);
			fd = open(name, O_CREAT | O_WRONLY, 0644);
			if (fd < 0)
				break;
			bad = write(fd, "x", 1) != 1;
			bad |= close(fd) != 0;
			if (bad) {
				unlink(name);
				break;
			}
		}
		if (errno != ENOSPC)
			DIE("filling %s with one-block files", dir);
		for (i = 0; i < nblk; i += 2) {
			snprintf(name, sizeof(name), "%s/blk%ld", dir, i);
			if (unlink(name))
				DIE("unlink %s", name);
		}
		for (i = 0; i < n; i++) {
			snprintf(name, sizeof(name), "%s/sym%ld", dir, i);
			symlink_target(i, t);
			if (symlink(t, name))
				DIE("symlink %s", name);
		}
	}
	for (i = 0; i < n; i++) {
		ssize_t len;
		snprintf(name, sizeof(name), "%s/sym%ld", dir, i);
		symlink_target(i, t);
		len = readlink(name, back, sizeof(back));
		if (len != (ssize_t)strlen(t) || memcmp(t, back, (size_t)len)) {
			fprintf(stderr, "symlinks: %s reads back %zd bytes, wrong\n", name, len);
			return 1;
		}
	}
	return 0;
}

/* subdirs DIR: DIR gets subdirectories until mkdir fails: that must be
 * EMLINK at 65000 links (2 + 64998 subdirectories, ext4's limit without
 * dir_nlink); then they are removed */
static int cmd_subdirs(const char *dir)
{
	char name[PATH_MAX];
	struct stat st;
	double t = mono();
	long i, n;

	if (mkdir(dir, 0755))
		DIE("mkdir %s", dir);
	for (n = 0; n < 100000; n++) {
		snprintf(name, sizeof(name), "%s/%ld", dir, n);
		if (mkdir(name, 0755))
			break;
	}
	if (errno != EMLINK || n != 64998 || stat(dir, &st) || st.st_nlink != 65000) {
		fprintf(stderr, "subdirs: %ld made, then %s; nlink %lu\n", n,
			strerrorname_np(errno), (unsigned long)st.st_nlink);
		return 1;
	}
	/* other entries are not limited */
	snprintf(name, sizeof(name), "%s/file", dir);
	if (close(open(name, O_CREAT | O_WRONLY, 0644)) || unlink(name))
		DIE("a file in %s", dir);
	printf("subdirs: %ld subdirectories, then EMLINK, in %.1f s\n", n, mono() - t);
	t = mono();
	for (i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "%s/%ld", dir, i);
		if (rmdir(name))
			DIE("rmdir %s", name);
	}
	if (stat(dir, &st) || st.st_nlink != 2 || rmdir(dir))
		DIE("%s after removing them all", dir);
	printf("subdirs: removed in %.1f s\n", mono() - t);
	return 0;
}

/* ACLs across a remount: make them, then check them after it. */
static int cmd_acls(const char *dir, const char *what)
{
	char p[PATH_MAX], why[1200];
	const char *names[] = {"d", "d/f", "d/sub", "f"};
	struct {
		const char *name;
		struct acl_ent e[8];
		size_t n;
		int mode;
	} want[] = {
		{ACL_D, {UO(7), UN(NOBODY, 7), GO(5), GN(NOBODY2, 5), MK(7), OT(5)}, 6, 0755},
		{ACL_A, {UO(6), UN(NOBODY, 7), GO(5), GN(NOBODY2, 5), MK(4), OT(0)}, 6, 0640},
		{ACL_A, {UO(7), UN(NOBODY, 7), GO(5), GN(NOBODY2, 5), MK(5), OT(0)}, 6, 0750},
		{ACL_A, {UO(6), UN(NOBODY2, 4), GO(4), MK(4), OT(0)}, 5, 0640},
	};
	const struct acl_ent f_set[] = {UO(6), UN(NOBODY2, 4), GO(4), MK(6), OT(0)};
	struct stat st;
	size_t i;

	if (!strcmp(what, "make")) {
		snprintf(p, sizeof(p), "%s/d", dir);
		if (mkdir(dir, 0755) || mkdir(p, 0755) || acl_set(p, ACL_D, want[0].e, want[0].n))
			DIE("acls: making %s", p);
		snprintf(p, sizeof(p), "%s/d/f", dir);
		if (close(open(p, O_CREAT | O_WRONLY, 0640)))
			DIE("acls: creating %s", p);
		snprintf(p, sizeof(p), "%s/d/sub", dir);
		if (mkdir(p, 0750))
			DIE("acls: creating %s", p);
		snprintf(p, sizeof(p), "%s/f", dir);
		if (close(open(p, O_CREAT | O_WRONLY, 0600)) || acl_set(p, ACL_A, f_set, 5) ||
		    chmod(p, 0640)) /* mask rw- to r-- */
			DIE("acls: setting %s", p);
	} else if (strcmp(what, "check")) {
		return 2;
	}
	for (i = 0; i < 4; i++) {
		snprintf(p, sizeof(p), "%s/%s", dir, names[i]);
		if (acl_differs(p, want[i].name, want[i].e, want[i].n, why, sizeof(why))) {
			fprintf(stderr, "acls: %s\n", why);
			return 1;
		}
		if (stat(p, &st) || (int)(st.st_mode & 07777) != want[i].mode)
			DIE("acls: %s: mode %o, expected %o", p, st.st_mode & 07777, want[i].mode);
	}
	snprintf(p, sizeof(p), "%s/d/sub", dir);
	if (acl_differs(p, ACL_D, want[0].e, want[0].n, why, sizeof(why))) {
		fprintf(stderr, "acls: %s\n", why);
		return 1;
	}
	return 0;
}

static int run_command(int argc, char **argv)
{
	const char *c = argv[1];

	if (!strcmp(c, "map") && argc == 3)
		return cmd_map(argv[2]);
	if (!strcmp(c, "bigdir") && argc == 5)
		return cmd_bigdir(argv[2], atol(argv[3]), argv[4]);
	if (!strcmp(c, "frag") && argc == 5)
		return cmd_frag(argv[2], atol(argv[3]), argv[4]);
	if (!strcmp(c, "fill") && argc == 3)
		return cmd_fill(argv[2]);
	if (!strcmp(c, "subdirs") && argc == 3)
		return cmd_subdirs(argv[2]);
	if (!strcmp(c, "fillmeta") && argc == 3)
		return cmd_fillmeta(argv[2]);
	if (!strcmp(c, "symlinks") && argc == 5)
		return cmd_symlinks(argv[2], atol(argv[3]), argv[4]);
	if (!strcmp(c, "crashwriter") && argc == 4)
		return cmd_crashwriter(argv[2], argv[3]);
	if (!strcmp(c, "crashcheck") && argc == 4)
		return cmd_crashcheck(argv[2], argv[3]);
	if (!strcmp(c, "acls") && argc == 4)
		return cmd_acls(argv[2], argv[3]);
	fprintf(stderr, "usage: posix [map FILE | bigdir DIR N create|check|remove|all |\n"
			"  frag FILE N write|check|free | fill DIR | fillmeta DIR |\n"
			"  symlinks DIR N make|check | subdirs DIR | crashwriter DIR LOG |\n"
			"  crashcheck DIR LOG | acls DIR make|check]\n");
	return 2;
}

int main(int argc, char **argv)
{
	const char *wb = getenv("RFS_WRITEBACK");
	SRunner *sr;
	int failed;

	if (argc > 1)
		return run_command(argc, argv);
	mnt = getenv("RFS_MNT");
	if (!mnt || !*mnt) {
		fprintf(stderr, "posix: set RFS_MNT to a mounted reflinkfs directory\n");
		return 2;
	}
	if (wb && !strcmp(wb, "0"))
		writeback = 0;
	sr = srunner_create(posix_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
