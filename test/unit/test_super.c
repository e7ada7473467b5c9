/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * test_super.c - unit tests of lib/super.c: restoring a damaged primary
 * superblock from a backup (what fsck does for SB_PRIMARY_BAD), and a
 * layout that puts a tree root among the static blocks refused.
 */
#include <check.h>
#include <errno.h>
#include <string.h>

#include "fs_create.h"
#include "super.h"
#include "testutil.h"

#define MiB (1024ull * 1024)

static struct rfs_dev *formatted(struct rfs_sb_info *sb)
{
	struct rfs_mkfs_opts opts = {.block_log = 10};
	struct rfs_dev *dev;
	char why[160];

	ck_assert_int_eq(dev_open_mem(2 * MiB, &dev), 0);
	ck_assert_msg(fs_create(dev, &opts, sb, why, sizeof(why)) == 0, "mkfs: %s", why);
	return dev;
}

START_TEST(primary_restored_from_backup)
{
	struct rfs_sb_info made, backup, now;
	uint8_t junk[64];
	fsblock_t at;
	char why[160];
	struct rfs_dev *dev = formatted(&made);

	memset(junk, 0x5a, sizeof(junk));
	ck_assert_int_eq(dev_pwrite(dev, junk, sizeof(junk), 100), 0);
	ck_assert_int_ne(sb_read_primary(dev, &now, why, sizeof(why)), 0);
	ck_assert_int_eq(sb_find_backup(dev, &backup, &at), 0);
	ck_assert_uint_eq(at, made.backup[0]);
	ck_assert_int_eq(sb_write_primary(dev, &backup, backup.last_tid), 0);
	ck_assert_msg(sb_read_primary(dev, &now, why, sizeof(why)) == 0, "primary: %s", why);
	ck_assert_uint_eq(now.block_count, made.block_count);
	ck_assert_uint_eq(now.roots[RFS_TREE_DIR].blkno, made.roots[RFS_TREE_DIR].blkno);
	ck_assert_uint_eq(now.next_ino, made.next_ino);
	ck_assert_mem_eq(now.uuid, made.uuid, sizeof(made.uuid));
	dev_close(dev);
}
END_TEST

START_TEST(backups_rewritten_after_damage)
{
	struct rfs_sb_info made, copy;
	uint8_t junk[64];
	char why[160];
	struct rfs_dev *dev = formatted(&made);
	uint64_t off = made.backup[1] << made.block_log;

	memset(junk, 0, sizeof(junk));
	ck_assert_int_eq(dev_pwrite(dev, junk, sizeof(junk), off), 0);
	ck_assert_int_ne(sb_read_at(dev, off, &copy, why, sizeof(why)), 0);
	ck_assert_int_eq(sb_write_backups(dev, &made, made.last_tid), 0);
	ck_assert_msg(sb_read_at(dev, off, &copy, why, sizeof(why)) == 0, "backup: %s", why);
	ck_assert_uint_eq(copy.free_blocks, made.free_blocks);
	dev_close(dev);
}
END_TEST

/* A copy whose journal would run over the trees (a checksummed but wrong
 * length) is refused, so that recovery never replays a log over them. */
START_TEST(root_inside_journal_refused)
{
	struct rfs_sb_info made, bad, now;
	char why[160];
	struct rfs_dev *dev = formatted(&made);

	bad = made;
	bad.journal_blocks = made.roots[RFS_TREE_INODE].blkno - made.journal_start + 1;
	ck_assert_int_eq(sb_write_primary(dev, &bad, bad.last_tid), 0);
	ck_assert_int_eq(sb_read_primary(dev, &now, why, sizeof(why)), -EUCLEAN);
	ck_assert_msg(strstr(why, "inside the static blocks") != NULL, "why: %s", why);
	bad.journal_blocks = made.journal_blocks;
	bad.roots[RFS_TREE_DIR].blkno = made.backup[0];
	ck_assert_int_eq(sb_write_primary(dev, &bad, bad.last_tid), 0);
	ck_assert_int_eq(sb_read_primary(dev, &now, why, sizeof(why)), -EUCLEAN);
	ck_assert_int_eq(sb_write_primary(dev, &made, made.last_tid), 0);
	ck_assert_msg(sb_read_primary(dev, &now, why, sizeof(why)) == 0, "primary: %s", why);
	dev_close(dev);
}
END_TEST

static Suite *super_suite(void)
{
	Suite *s = suite_create("super");
	TCase *tc = tcase_create("copies");

	tcase_add_test(tc, primary_restored_from_backup);
	tcase_add_test(tc, backups_rewritten_after_damage);
	tcase_add_test(tc, root_inside_journal_refused);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_run_suite(super_suite());
}
