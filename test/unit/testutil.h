/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * testutil.h - helpers shared by the Check unit tests.
 *
 * Randomised tests take their seed from $RFS_TEST_SEED (default: a fixed
 * per-test value, never the clock) and print it, so any failure replays.
 */
#ifndef RFS_TESTUTIL_H
#define RFS_TESTUTIL_H

#include <check.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdint.h>

#include "btree.h"
#include "fs.h"
#include "util.h"

/* ck_assert() logs every pass: hot paths call into Check only on failure. */
#define REQUIRE(cond, ...)                                                                         \
	do {                                                                                       \
		if (!(cond))                                                                       \
			ck_abort_msg(__VA_ARGS__);                                                 \
	} while (0)
#define REQUIRE_INT(got, want)                                                                     \
	do {                                                                                       \
		long long got_ = (got), want_ = (want);                                            \
		if (got_ != want_)                                                                 \
			ck_abort_msg("%s == %lld, expected %lld", #got, got_, want_);              \
	} while (0)
#define REQUIRE_U64(got, want)                                                                     \
	do {                                                                                       \
		uint64_t got_ = (got), want_ = (want);                                             \
		if (got_ != want_)                                                                 \
			ck_abort_msg("%s == %" PRIu64 ", expected %" PRIu64, #got, got_, want_);   \
	} while (0)

struct rfs_rng {
	uint64_t s;
};

/* Seeds from $RFS_TEST_SEED if set, else DEFAULT_SEED; prints the seed
 * with NAME so a failing run can be replayed. */
void rng_init(struct rfs_rng *r, const char *name, uint64_t default_seed);
uint64_t rng_next(struct rfs_rng *r);
/* Uniform in [0, n). */
uint64_t rng_below(struct rfs_rng *r, uint64_t n);

struct Suite;

/* Runs SUITE with CK_ENV verbosity (CK_VERBOSITY; default normal) and
 * returns main's exit status. */
int test_run_suite(struct Suite *suite);

/* Creates the directory TMPDIR (a mkdtemp template, filled in place), runs
 * SUITE with CK_ENV verbosity, then removes TMPDIR and the files in it.
 * Returns main's exit status. */
int test_run_in_tmpdir(struct Suite *suite, char *tmpdir);

/* Scales iteration counts: $RFS_TEST_SCALE (default 1) multiplies N. */
uint64_t test_scale(uint64_t n);

/* A log sink for the library that prints and counts errors: whatever the
 * library logs as an error must not go unnoticed. */
extern unsigned test_log_errors;
void test_log_count(enum rfs_log_level level, const char *msg);

/* Formats DEV (1 << BLOCK_LOG byte blocks, a JBYTES journal, the 16-byte
 * UUID) and opens it (DEV consumed) with FLAGS and a CACHE-byte cache. */
struct rfs_fs *test_fs_format(struct rfs_dev *dev, unsigned block_log, uint64_t jbytes,
			      const char *uuid, unsigned flags, size_t cache);
/* Opens a byte copy of FS's RAM device as it is now (unsynced blocks are
 * not in it: what a crash would leave) with FLAGS. */
struct rfs_fs *test_fs_copy(struct rfs_fs *fs, unsigned flags, size_t cache);
/* btree_check's report callback: prints the problem. */
void test_report_problem(void *arg, const struct rfs_btree *t, fsblock_t blkno, const char *msg);

#endif
