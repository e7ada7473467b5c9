/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * extents.c - walking a file's extent list (RFS_IOC_GET_EXTENTS), and the
 * extents command that prints it.
 *
 * The daemon answers at most RFS_IOC_EXTENTS_MAX extents a call and says
 * where to ask again. The file may change between calls, so an extent
 * that starts before what we already reported is clipped, never reported
 * twice: totals stay sums of disjoint ranges.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "ctl.h"

int not_reflinkfs(int err)
{
	/* ENOTTY: the VFS, another filesystem, or a FUSE server without
	 * ioctls; ENOSYS and EOPNOTSUPP: FUSE servers that say so */
	return err == ENOTTY || err == ENOSYS || err == EOPNOTSUPP;
}

static int walk_fetch(struct ext_walk *w, uint64_t start)
{
	memset(&w->x, 0, sizeof(w->x));
	w->x.start = start;
	w->i = 0;
	if (ioctl(w->fd, RFS_IOC_GET_EXTENTS, &w->x))
		return -errno;
	if (w->x.count > RFS_IOC_EXTENTS_MAX || !w->x.block_size)
		return -EPROTO; /* not our daemon's answer */
	return 0;
}

int ext_walk_start(struct ext_walk *w, int fd, uint64_t from)
{
	w->fd = fd;
	w->pos = from;
	return walk_fetch(w, from);
}

/* Clips E to start at W->pos; 0 if nothing of it is left. */
static int clip_reported(const struct ext_walk *w, struct rfs_ioc_extent *e)
{
	uint64_t cut;

	if (e->logical + e->length <= w->pos)
		return 0;
	cut = e->logical < w->pos ? w->pos - e->logical : 0;
	e->logical += cut;
	e->physical += cut;
	e->length -= cut;
	return 1;
}

int ext_walk_next(struct ext_walk *w, struct rfs_ioc_extent *e)
{
	for (;;) {
		uint64_t start = w->x.start;
		int ret;

		while (w->i < w->x.count) {
			*e = w->x.ext[w->i++];
			if (clip_reported(w, e)) {
				w->pos = e->logical + e->length;
				return 1;
			}
		}
		if (w->x.done)
			return 0;
		if (w->x.next <= start)
			return -EPROTO; /* no progress: asking again would loop */
		ret = walk_fetch(w, w->x.next);
		if (ret)
			return ret;
	}
}

int fd_block_size(int fd, uint32_t *bs)
{
	struct ext_walk w;
	int ret = ext_walk_start(&w, fd, 0);

	if (!ret)
		*bs = w.x.block_size;
	return ret;
}

int unshared_bytes(int fd, uint64_t from, uint64_t to, uint64_t *bytes)
{
	struct rfs_ioc_extent e;
	struct ext_walk w;
	int ret = ext_walk_start(&w, fd, from);

	*bytes = 0;
	while (!ret) {
		ret = ext_walk_next(&w, &e);
		if (ret <= 0 || e.logical >= to)
			break;
		if (!(e.flags & RFS_IOC_EXTENT_SHARED))
			*bytes +=
				(e.logical + e.length < to ? e.logical + e.length : to) - e.logical;
		ret = 0;
	}
	return ret < 0 ? ret : 0;
}

/* --- the extents command ------------------------------------------------------- */

struct ext_totals {
	uint64_t extents, shared, exclusive;
};

static const char *flag_words(uint32_t flags)
{
	if (flags & RFS_IOC_EXTENT_SHARED)
		return flags & RFS_IOC_EXTENT_UNWRITTEN ? "shared,unwritten" : "shared";
	return flags & RFS_IOC_EXTENT_UNWRITTEN ? "exclusive,unwritten" : "exclusive";
}

static void print_extent(const struct rfs_ioc_extent *e, uint32_t unit, struct ext_totals *t)
{
	printf("%16" PRIu64 " %16" PRIu64 " %16" PRIu64 "  %s\n", e->logical / unit,
	       e->physical / unit, e->length / unit, flag_words(e->flags));
	t->extents++;
	if (e->flags & RFS_IOC_EXTENT_SHARED)
		t->shared += e->length;
	else
		t->exclusive += e->length;
}

static const char *units(uint64_t n, uint32_t unit)
{
	if (unit == 1)
		return n == 1 ? "byte" : "bytes";
	return n == 1 ? "block" : "blocks";
}

static void print_totals(const struct ext_totals *t, uint32_t unit)
{
	uint64_t shared = t->shared / unit, excl = t->exclusive / unit;

	printf("total: %" PRIu64 " extent%s, %" PRIu64 " %s shared, %" PRIu64 " %s exclusive\n",
	       t->extents, t->extents == 1 ? "" : "s", shared, units(shared, unit), excl,
	       units(excl, unit));
}

/* Prints FD's extents; 0, or EXIT_FAIL after a message. */
static int list_extents(int fd, const char *path, int blocks)
{
	struct ext_totals t = {0, 0, 0};
	struct rfs_ioc_extent e;
	struct ext_walk w;
	uint32_t unit;
	int ret = ext_walk_start(&w, fd, 0);

	if (not_reflinkfs(-ret))
		return fail("%s: not on a reflinkfs mount", path);
	if (ret)
		return fail("%s: cannot list extents: %s", path, strerror(-ret));
	unit = blocks ? w.x.block_size : 1;
	if (blocks)
		printf("%s (in blocks of %u bytes):\n", path, unit);
	else
		printf("%s:\n", path);
	printf("%16s %16s %16s  %s\n", "logical", "physical", "length", "flags");
	while ((ret = ext_walk_next(&w, &e)) == 1)
		print_extent(&e, unit, &t);
	if (ret < 0)
		return fail("%s: cannot list extents: %s", path, strerror(-ret));
	print_totals(&t, unit);
	return 0;
}

static int show_file(const char *path, int blocks)
{
	struct stat st;
	int fd = open_regular(path, O_RDONLY, &st);
	int ret = EXIT_FAIL;

	if (fd < 0)
		return EXIT_FAIL;
	if (flush_to_daemon(fd, path) == 0)
		ret = list_extents(fd, path, blocks);
	close(fd);
	return ret;
}

int cmd_extents(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"blocks", no_argument, NULL, 'b'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int c, i, blocks = 0, status = 0;

	while ((c = getopt_long(argc, argv, "bh", longopts, NULL)) != -1) {
		switch (c) {
		case 'b':
			blocks = 1;
			break;
		case 'h':
			print_help();
			return 0;
		default:
			return usage_hint();
		}
	}
	if (optind >= argc)
		return usage_error("extents: no FILE given");
	for (i = optind; i < argc; i++) {
		if (i > optind)
			putchar('\n');
		if (show_file(argv[i], blocks))
			status = EXIT_FAIL;
		fflush(stdout); /* keep the listing and errors in order */
	}
	return status;
}
