/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "testutil.h"

#include <check.h>
#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fs_create.h"
#include "../tools/rng.h"

void rng_init(struct rfs_rng *r, const char *name, uint64_t default_seed)
{
	const char *env = getenv("RFS_TEST_SEED");
	uint64_t seed = env ? strtoull(env, NULL, 0) : default_seed;

	printf("%s: seed %" PRIu64 " (set RFS_TEST_SEED to replay)\n", name, seed);
	fflush(stdout);
	r->s = seed ? seed : 0x9e3779b97f4a7c15ull;
}

uint64_t rng_next(struct rfs_rng *r)
{
	return rng_xorshift(&r->s);
}

uint64_t rng_below(struct rfs_rng *r, uint64_t n)
{
	return n ? rng_next(r) % n : 0;
}

uint64_t test_scale(uint64_t n)
{
	const char *env = getenv("RFS_TEST_SCALE");
	double f = env ? strtod(env, NULL) : 1.0;
	uint64_t v = (uint64_t)((double)n * f);
	return v ? v : 1;
}

static int rm_tmpdir(const char *tmpdir)
{
	DIR *d = opendir(tmpdir);
	struct dirent *e;
	char path[512];

	if (!d)
		return -1;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", tmpdir, e->d_name);
		unlink(path);
	}
	closedir(d);
	return rmdir(tmpdir);
}

int test_run_suite(Suite *suite)
{
	SRunner *sr = srunner_create(suite);
	int failed;

	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}

int test_run_in_tmpdir(Suite *suite, char *tmpdir)
{
	int ret;

	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 1;
	}
	ret = test_run_suite(suite);
	rm_tmpdir(tmpdir);
	return ret;
}

unsigned test_log_errors;

void test_log_count(enum rfs_log_level level, const char *msg)
{
	if (level == RFS_LOG_ERR)
		test_log_errors++;
	fprintf(stderr, "reflinkfs: %s\n", msg);
}

struct rfs_fs *test_fs_format(struct rfs_dev *dev, unsigned block_log, uint64_t jbytes,
			      const char *uuid, unsigned flags, size_t cache)
{
	struct rfs_mkfs_opts o = {.block_log = block_log, .journal_bytes = jbytes};
	struct rfs_sb_info sb;
	struct rfs_fs *fs;
	char why[256] = "";
	int ret;

	o.have_uuid = 1;
	memcpy(o.uuid, uuid, sizeof(o.uuid));
	ret = fs_create(dev, &o, &sb, why, sizeof(why));
	REQUIRE(ret == 0, "fs_create: %d %s", ret, why);
	ret = fs_open(dev, flags, cache, &fs, why, sizeof(why));
	REQUIRE(ret == 0, "fs_open: %d %s", ret, why);
	return fs;
}

struct rfs_fs *test_fs_copy(struct rfs_fs *fs, unsigned flags, size_t cache)
{
	struct rfs_dev *dev;
	struct rfs_fs *copy;
	char why[256] = "";
	int ret;

	REQUIRE(fs->dev->mem != NULL, "not a RAM device");
	REQUIRE_INT(dev_open_mem(fs->dev->size, &dev), 0);
	memcpy(dev->mem, fs->dev->mem, fs->dev->size);
	ret = fs_open(dev, flags, cache, &copy, why, sizeof(why));
	REQUIRE(ret == 0, "fs_open of the copy: %d %s", ret, why);
	return copy;
}

void test_report_problem(void *arg, const struct rfs_btree *t, fsblock_t blkno, const char *msg)
{
	(void)arg;
	(void)t;
	fprintf(stderr, "btree_check: block %" PRIu64 ": %s\n", blkno, msg);
}
