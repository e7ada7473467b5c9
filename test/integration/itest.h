/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * itest.h - helpers of the Check programs that test a real mount (posix.c,
 * reflink.c): checked system calls, deterministic data, whole reads and
 * writes, dropping the page cache, and building a suite from a table.
 */
#ifndef RFS_ITEST_H
#define RFS_ITEST_H

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

/* EXPR must succeed (not -1); its value. */
#define SYS(expr)                                                                                  \
	({                                                                                         \
		errno = 0;                                                                         \
		long _r = (long)(expr);                                                            \
		ck_assert_msg(_r != -1, "%s: %s", #expr, strerror(errno));                         \
		_r;                                                                                \
	})

/* EXPR must fail with errno E. */
#define FAILS(e, expr)                                                                             \
	do {                                                                                       \
		errno = 0;                                                                         \
		long _r = (long)(expr);                                                            \
		int _e = errno;                                                                    \
		ck_assert_msg(_r == -1 && _e == (e), "%s: expected %s, got %ld (%s)", #expr,       \
			      strerrorname_np(e), _r,                                              \
			      _r == -1 ? strerrorname_np(_e) : "no error");                        \
	} while (0)

static inline void fill(uint8_t *buf, size_t len, uint64_t seed)
{
	uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;
	size_t i;

	for (i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		buf[i] = (uint8_t)x;
	}
}

static inline void pread_all(int fd, void *buf, size_t len, off_t off)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = pread(fd, (char *)buf + got, len - got, off + (off_t)got);
		ck_assert_msg(n > 0, "pread at %lld: %zd (%s)", (long long)(off + (off_t)got), n,
			      n < 0 ? strerror(errno) : "EOF");
		got += (size_t)n;
	}
}

static inline void pwrite_all(int fd, const void *buf, size_t len, off_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pwrite(fd, (const char *)buf + done, len - done, off + (off_t)done);
		ck_assert_msg(n > 0, "pwrite at %lld: %s", (long long)off, strerror(errno));
		done += (size_t)n;
	}
}

/* Makes the next reads come from the daemon, not the page cache. */
static inline void drop_caches(void)
{
	int fd = open("/proc/sys/vm/drop_caches", O_WRONLY);

	if (fd >= 0) {
		ck_assert_int_eq(write(fd, "3", 1), 1);
		close(fd);
	}
}

struct itest {
	const char *name; /* "t_..." */
	const TTest *fn;
};
#define ITEST(x)                                                                                   \
	{                                                                                          \
#x, x                                                                              \
	}

/* A test case per entry of TESTS, each with fixture SETUP and TIMEOUT. */
static inline Suite *itest_suite(const char *name, const struct itest *tests, size_t n,
				 void (*setup)(void), double timeout)
{
	Suite *s = suite_create(name);
	size_t i;

	for (i = 0; i < n; i++) {
		TCase *tc = tcase_create(tests[i].name + 2);
		tcase_add_checked_fixture(tc, setup, NULL);
		tcase_set_timeout(tc, timeout);
		_tcase_add_test(tc, tests[i].fn, 0, 0, 0, 1);
		suite_add_tcase(s, tc);
	}
	return s;
}

#endif
