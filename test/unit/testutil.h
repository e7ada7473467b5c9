/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * testutil.h - helpers shared by the Check unit tests.
 *
 * Randomised tests take their seed from $RFS_TEST_SEED (default: a fixed
 * per-test value, never the clock) and print it, so any failure replays.
 */
#ifndef RFS_TESTUTIL_H
#define RFS_TESTUTIL_H

#include <stdint.h>

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

#endif
