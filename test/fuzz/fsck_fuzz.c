/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fsck_fuzz.c - fsck.reflinkfs on damaged metadata, as a libFuzzer target.
 *
 * A base image is made once: 1 MiB of 1 KiB blocks (mkfs, then the small
 * namespace of test/tools/names_tree.h and a clone with CoW staging; its regular files keep their
 * data forks inline, in the inode records, which patches to the inode tree's leaves hit, and
 * the extent tree holds the CoW fork). Its metadata blocks are
 * listed: the superblock and backups, the free list block, the journal's first blocks, every node
 * of every tree. An input is a list of patches, each
 *
 *   u8 block (index into that list, modulo its length)
 *   u8 flags (bit 0: recompute the block's checksum afterwards, so that
 *             the damage reaches the code behind the checksum)
 *   u16 offset in the block (little-endian, modulo the block size)
 *   u8 length (modulo 33), then that many bytes written there
 *
 * preceded by one byte of mode (bit 0: also repair; bit 1: start from the
 * journaled base, a crash image with a committed transaction in its log,
 * see make_journaled()). Each input runs
 * fsck -n on a copy of the base with the patches applied (in a memfd: no
 * disk I/O); with bit 0, fsck -y, and if that says all was fixed (exit 0
 * or 1), fsck -fn must find the image clean. Anything else (a crash, a
 * sanitizer report, an exit code fsck must not give, an unclean image after
 * a repair that said it fixed everything) aborts.
 *
 * The same entry point runs under the normal gcc + ASan build through
 * fsck_fuzz_replay.c (saved inputs, and seeded random damage for CI).
 *
 * An input means something only against this base image: a change to it
 * (names_tree.c, add_clone(), the geometry) must keep the saved inputs in
 * test/fuzz/corpus/ hitting what they hit. FSCK_FUZZ_VERBOSE=1 prints
 * the metadata block list, to re-aim an input's block byte;
 * FSCK_FUZZ_SAVE=PATH saves the damaged image of the (last) input run.
 */
#include "fsck_fuzz.h"

#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <dirent.h>

#include "alloc.h"
#include "bmap.h"
#include "dev.h"
#include "dir.h"
#include "fs.h"
#include "fs_create.h"
#include "fsck.h"
#include "journal.h"
#include "names_tree.h"
#include "refcount.h"
#include "util.h"

#define IMAGE_BYTES  (1u << 20)
#define BLOCK_LOG    10
#define JOURNAL_SCAN 16 /* journal blocks offered: its superblock and the first log blocks */

struct fuzz_base fuzz_base;

static __attribute__((noreturn)) void die(const char *what, int err)
{
	fprintf(stderr, "fsck_fuzz: %s: %s\n", what, strerror(err < 0 ? -err : err));
	abort();
}

static int memfd_path(const char *name, char *path, size_t len)
{
	int fd = memfd_create(name, 0);

	if (fd < 0 || ftruncate(fd, IMAGE_BYTES) < 0)
		die("memfd", errno);
	snprintf(path, len, "/proc/self/fd/%d", fd);
	return fd;
}

/* h: a clone of f's first extent (count 2 in the refcount tree, both
 * flagged), with one block staged in its CoW fork, so that the refcount
 * and staging checks have records to read. */
static int add_clone(struct rfs_fs *fs, struct names_tree *t)
{
	struct rfs_extent e, staged = {.off = 0, .len = 1};
	struct rfs_inode h;
	extlen_t got;
	int ret = bmap_find(fs, t->f.ino, RFS_FORK_DATA, 0, &e);

	if (ret)
		return ret;
	inode_init_new(fs, &h, S_IFREG | 0644, 0, 0);
	h.flags = t->f.flags = RFS_IFLAG_REFLINK;
	h.nblocks = e.len;
	h.size = (uint64_t)e.len << fs->sb.block_log;
	ret = inode_insert(fs, &h);
	if (!ret)
		ret = inode_write(fs, &t->f);
	if (!ret)
		ret = dir_add(fs, RFS_ROOT_INO, "h", 1, h.ino, DT_REG, NULL);
	if (!ret)
		ret = bmap_map(fs, h.ino, RFS_FORK_DATA, &e);
	if (!ret)
		ret = refc_increment(fs, e.pblk, e.len);
	if (!ret)
		ret = alloc_extent(fs, 0, 1, 1, &staged.pblk, &got);
	if (!ret)
		ret = bmap_map(fs, h.ino, RFS_FORK_COW, &staged);
	return ret ? ret : refc_cow_add(fs, staged.pblk, 1, h.ino);
}

static void make_base_image(const char *path)
{
	struct rfs_mkfs_opts opts = {
		.block_log = BLOCK_LOG, .journal_bytes = 64u << BLOCK_LOG, .have_uuid = 1};
	struct rfs_sb_info sb;
	struct names_tree t;
	struct rfs_dev *dev;
	struct rfs_fs *fs;
	char why[200];
	int ret;

	memcpy(opts.uuid, "fsck-fuzz-base!!", 16); /* the same image every run */
	ret = dev_open_file(path, 0, 0, &dev);
	if (!ret)
		ret = fs_create(dev, &opts, &sb, why, sizeof(why));
	if (ret)
		die("mkfs", ret);
	dev_close(dev);
	ret = dev_open_file(path, 0, 0, &dev);
	if (!ret)
		ret = fs_open(dev, RFS_FS_NOJOURNAL, 4u << 20, &fs, why, sizeof(why));
	if (!ret)
		ret = names_tree_build(fs, &t);
	if (!ret)
		ret = add_clone(fs, &t);
	if (ret || fs_close(fs))
		die("building the namespace", ret ? ret : EIO);
}

static void add_meta(struct fuzz_image *img, fsblock_t b)
{
	if (img->nmeta < FUZZ_MAX_META)
		img->meta[img->nmeta++] = b;
}

static void on_node(void *arg, const struct rfs_btree *t, fsblock_t blkno, unsigned level)
{
	(void)t, (void)level;
	add_meta(arg, blkno);
}

/* The metadata blocks of the image at PATH (after replaying its log, in
 * memory: the nodes a replay writes are listed where they end up). */
static void list_metadata(const char *path, struct fuzz_image *img)
{
	struct rfs_btree *trees[7];
	struct rfs_dev *dev;
	struct rfs_fs *fs;
	char why[200];
	unsigned i;
	int ret = dev_open_file(path, RFS_DEV_RDONLY, 0, &dev);

	if (!ret)
		ret = fs_open(dev, RFS_FS_RDONLY, 4u << 20, &fs, why, sizeof(why));
	if (ret)
		die("opening the base image", ret);
	add_meta(img, 0);
	add_meta(img, fs->sb.freelist_blkno);
	for (i = 0; i < JOURNAL_SCAN; i++)
		add_meta(img, fs->sb.journal_start + i);
	img->log_start = fs->sb.journal_start + 1;
	img->log_end = fs->sb.journal_start + JOURNAL_SCAN;
	for (i = 0; i < RFS_NR_BACKUPS; i++)
		add_meta(img, fs->sb.backup[i]);
	trees[0] = &fs->bno, trees[1] = &fs->cnt, trees[2] = &fs->inodes, trees[3] = &fs->dirs;
	trees[4] = &fs->bmap, trees[5] = &fs->xattrs, trees[6] = &fs->refc;
	for (i = 0; i < 7; i++) {
		struct rfs_btree_check chk = {.visit_node = on_node, .arg = img};
		btree_check(trees[i], &chk);
	}
	fuzz_base.bsize = fs->sb.bsize;
	fuzz_base.uuid_seed = rfs_crc_seed(fs->sb.uuid);
	fs_close(fs);
}

static void read_image(int fd, struct fuzz_image *img)
{
	img->bytes = malloc(IMAGE_BYTES);
	if (!img->bytes || pread(fd, img->bytes, IMAGE_BYTES, 0) != IMAGE_BYTES)
		die("reading a base image", errno);
}

/*
 * The plain base as a crash would leave it after one more file: mounted
 * with the journal, "j" made in a committed transaction whose blocks are
 * in the log only (no checkpoint). fsck replays it first, with -n in
 * memory, so damage to the log reaches recovery.
 */
static void make_journaled(int fd, const char *path)
{
	struct rfs_inode j;
	struct rfs_handle *h;
	struct rfs_dev *dev;
	struct rfs_fs *fs;
	char why[200];
	int ret = dev_open_file(path, 0, 0, &dev);

	if (!ret)
		ret = fs_open(dev, 0, 4u << 20, &fs, why, sizeof(why));
	if (!ret)
		ret = txn_start(fs, 64, &h);
	if (ret)
		die("mounting the base image", ret);
	inode_init_new(fs, &j, S_IFREG | 0644, 0, 0);
	ret = inode_insert(fs, &j);
	if (!ret)
		ret = dir_add(fs, RFS_ROOT_INO, "j", 1, j.ino, DT_REG, NULL);
	if (!ret)
		ret = txn_stop(h);
	if (!ret)
		ret = journal_commit(fs);
	if (ret)
		die("a journaled change", ret);
	read_image(fd, &fuzz_base.img[FUZZ_JOURNALED]); /* before close checkpoints */
	fs_close(fs);
	if (pwrite(fd, fuzz_base.img[FUZZ_JOURNALED].bytes, IMAGE_BYTES, 0) != IMAGE_BYTES)
		die("writing the journaled image", errno);
	list_metadata(path, &fuzz_base.img[FUZZ_JOURNALED]);
}

static void print_metadata(void)
{
	unsigned i, k;

	for (k = 0; k < FUZZ_IMAGES; k++) {
		const struct fuzz_image *img = &fuzz_base.img[k];
		fprintf(stderr, "fsck_fuzz: %s base, %u metadata blocks:",
			k == FUZZ_PLAIN ? "plain" : "journaled", img->nmeta);
		for (i = 0; i < img->nmeta; i++)
			fprintf(stderr, " %u:%" PRIu64, i, img->meta[i]);
		fprintf(stderr, "\n");
	}
}

void fuzz_setup(void)
{
	char path[64];
	int fd;

	if (fuzz_base.img[FUZZ_PLAIN].bytes)
		return;
	if (!getenv("FSCK_FUZZ_VERBOSE") && !freopen("/dev/null", "w", stdout))
		die("stdout", errno);
	rfs_log_set_level(RFS_LOG_ERR); /* as fsck sets it */
	fd = memfd_path("fsck-fuzz-base", path, sizeof(path));
	make_base_image(path);
	list_metadata(path, &fuzz_base.img[FUZZ_PLAIN]);
	read_image(fd, &fuzz_base.img[FUZZ_PLAIN]);
	make_journaled(fd, path);
	close(fd);
	fuzz_base.work_fd = memfd_path("fsck-fuzz-work", fuzz_base.work, sizeof(fuzz_base.work));
	if (getenv("FSCK_FUZZ_VERBOSE")) /* which input byte picks which block */
		print_metadata();
}

/* FSCK_FUZZ_SAVE=PATH keeps a copy of the damaged image, to look at it
 * with the real fsck.reflinkfs (-v) when an input fails. */
static void save_image(const uint8_t *img)
{
	const char *path = getenv("FSCK_FUZZ_SAVE");
	FILE *f;

	if (!path)
		return;
	f = fopen(path, "wb");
	if (!f || fwrite(img, 1, IMAGE_BYTES, f) != IMAGE_BYTES || fclose(f))
		die(path, errno);
}

/* Writes base IMG with DATA's patches applied into the work memfd. */
static void build_image(const struct fuzz_image *base, const uint8_t *data, size_t size)
{
	static uint8_t *img;
	uint32_t bsize = fuzz_base.bsize;
	size_t pos = 0;

	if (!img && !(img = malloc(IMAGE_BYTES)))
		die("malloc", ENOMEM);
	memcpy(img, base->bytes, IMAGE_BYTES);
	while (pos + 5 <= size) {
		fsblock_t b = base->meta[data[pos] % base->nmeta];
		int fix_crc = data[pos + 1] & 1;
		uint32_t off = (data[pos + 2] | (uint32_t)data[pos + 3] << 8) % bsize;
		size_t len = data[pos + 4] % 33, i;
		uint8_t *block = img + (b << BLOCK_LOG);

		pos += 5;
		for (i = 0; i < len && pos < size && off + i < bsize; i++)
			block[off + i] = data[pos++];
		if (fix_crc)
			rfs_block_set_crc(fuzz_base.uuid_seed, block, bsize);
	}
	if (pwrite(fuzz_base.work_fd, img, IMAGE_BYTES, 0) != IMAGE_BYTES)
		die("writing the work image", errno);
	save_image(img);
}

int fuzz_fsck(const char *opt)
{
	char prog[] = "fsck.reflinkfs", o[8];
	char *argv[] = {prog, o, fuzz_base.work, NULL};

	snprintf(o, sizeof(o), "%s", opt);
	optind = 0; /* getopt starts afresh */
	return fsck_main(3, argv);
}

int fuzz_one(const uint8_t *data, size_t size, struct fuzz_result *r)
{
	int journaled = size && (data[0] & 2);

	fuzz_setup();
	build_image(&fuzz_base.img[journaled ? FUZZ_JOURNALED : FUZZ_PLAIN], size ? data + 1 : data,
		    size ? size - 1 : 0);
	memset(r, 0, sizeof(*r));
	r->check = fuzz_fsck("-n");
	r->repair = r->after = -1;
	if (r->check != 0 && r->check != 4 && r->check != 8)
		return -1;
	if (!size || !(data[0] & 1))
		return 0;
	r->repair = fuzz_fsck("-y");
	if (r->repair != 0 && r->repair != 1 && r->repair != 4 && r->repair != 8)
		return -1;
	if (r->repair > 1)
		return 0;
	r->after = fuzz_fsck("-fn");
	return r->after == 0 ? 0 : -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_result r;

	if (fuzz_one(data, size, &r)) {
		fprintf(stderr, "fsck_fuzz: exit codes -n %d, -y %d, then -fn %d\n", r.check,
			r.repair, r.after);
		abort();
	}
	return 0;
}
