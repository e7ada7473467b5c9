/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * usage.c - the usage command: how much space a set of files occupies
 * when some of their blocks are shared (btrfs filesystem du, for us).
 *
 * Total is every byte of data the files map; Exclusive the bytes in
 * blocks nothing else maps; Set shared the shared blocks, each counted
 * once however many files (in or out of the set) map it. Counting once
 * takes the physical ranges of every shared extent seen: an interval set,
 * sorted and merged whenever it fills up, so memory follows the number of
 * distinct shared ranges rather than the number of files or blocks.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "ctl.h"

/* --- an interval set of physical ranges ---------------------------------------- */

struct ival {
	dev_t dev; /* physical offsets are per filesystem */
	uint64_t start, end;
};

struct ival_set {
	struct ival *v;
	size_t n, cap;
};

static int ival_cmp(const void *pa, const void *pb)
{
	const struct ival *a = pa, *b = pb;

	if (a->dev != b->dev)
		return a->dev < b->dev ? -1 : 1;
	if (a->start != b->start)
		return a->start < b->start ? -1 : 1;
	return 0;
}

/* Sorts, then merges overlapping and touching ranges in place. */
static void ival_merge(struct ival_set *s)
{
	size_t i, out = 0;

	if (s->n < 2)
		return;
	qsort(s->v, s->n, sizeof(*s->v), ival_cmp);
	for (i = 1; i < s->n; i++) {
		struct ival *last = &s->v[out];

		if (s->v[i].dev == last->dev && s->v[i].start <= last->end) {
			if (s->v[i].end > last->end)
				last->end = s->v[i].end;
		} else {
			s->v[++out] = s->v[i];
		}
	}
	s->n = out + 1;
}

/* Makes room for one more: merge first, grow only if that freed too little. */
static int ival_room(struct ival_set *s)
{
	struct ival *v;
	size_t cap;

	if (s->n < s->cap)
		return 0;
	ival_merge(s);
	if (s->n < s->cap / 2)
		return 0;
	cap = s->cap ? s->cap * 2 : 1024;
	v = realloc(s->v, cap * sizeof(*v));
	if (!v)
		return -ENOMEM;
	s->v = v;
	s->cap = cap;
	return 0;
}

static int ival_add(struct ival_set *s, dev_t dev, uint64_t start, uint64_t len)
{
	int ret = ival_room(s);

	if (!ret)
		s->v[s->n++] = (struct ival){dev, start, start + len};
	return ret;
}

/* Adds every range of FROM to TO (FROM merged first: fewer to copy). */
static int ival_add_set(struct ival_set *to, struct ival_set *from)
{
	size_t i;
	int ret = 0;

	ival_merge(from);
	for (i = 0; !ret && i < from->n; i++)
		ret = ival_add(to, from->v[i].dev, from->v[i].start,
			       from->v[i].end - from->v[i].start);
	return ret;
}

static uint64_t ival_bytes(struct ival_set *s)
{
	uint64_t bytes = 0;
	size_t i;

	ival_merge(s);
	for (i = 0; i < s->n; i++)
		bytes += s->v[i].end - s->v[i].start;
	return bytes;
}

/* --- the inodes already counted ------------------------------------------------ */

/* An open-addressing hash set of (dev, ino), each with the index of the
 * PATH argument that counted it last: a hard link met again in the same
 * PATH is skipped; one met under an earlier PATH counts for this PATH but
 * not again in the grand total. */
struct ino_slot {
	dev_t dev;
	ino_t ino;
	int path; /* -1: empty */
};

struct ino_set {
	struct ino_slot *v;
	size_t n, cap; /* cap: a power of two */
};

static size_t ino_hash(dev_t dev, ino_t ino, size_t cap)
{
	uint64_t h = ((uint64_t)ino ^ ((uint64_t)dev << 32)) * 0x9e3779b97f4a7c15ull;

	return (size_t)(h >> 20) & (cap - 1);
}

static struct ino_slot *ino_slot(struct ino_slot *v, size_t cap, dev_t dev, ino_t ino)
{
	size_t i = ino_hash(dev, ino, cap);

	while (v[i].path >= 0 && !(v[i].dev == dev && v[i].ino == ino))
		i = (i + 1) & (cap - 1);
	return &v[i];
}

static int ino_grow(struct ino_set *s)
{
	size_t cap = s->cap ? s->cap * 2 : 4096, i;
	struct ino_slot *v = malloc(cap * sizeof(*v));

	if (!v)
		return -ENOMEM;
	for (i = 0; i < cap; i++)
		v[i].path = -1;
	for (i = 0; i < s->cap; i++)
		if (s->v[i].path >= 0)
			*ino_slot(v, cap, s->v[i].dev, s->v[i].ino) = s->v[i];
	free(s->v);
	s->v = v;
	s->cap = cap;
	return 0;
}

/* Records that PATH counts (DEV, INO); *LAST: the PATH that did before, or -1. */
static int ino_mark(struct ino_set *s, dev_t dev, ino_t ino, int path, int *last)
{
	struct ino_slot *slot;

	if (2 * (s->n + 1) > s->cap && ino_grow(s))
		return -ENOMEM;
	slot = ino_slot(s->v, s->cap, dev, ino);
	*last = slot->path;
	if (slot->path < 0)
		s->n++;
	*slot = (struct ino_slot){dev, ino, path};
	return 0;
}

/* --- walking the paths ----------------------------------------------------------- */

struct usage_sum {
	uint64_t total, exclusive;
	struct ival_set shared;
};

struct usage_ctx {
	struct usage_sum path, all; /* this PATH; all of them, each inode once */
	struct ino_set inodes;
	int path_idx, npaths;
	int status;	  /* EXIT_FAIL once anything failed */
	int foreign;	  /* this PATH is not on reflinkfs: stop it */
	const char *root; /* this PATH */
	int progress;	  /* stderr is a terminal */
	int no_sync;	  /* --no-sync: count what the daemon has, unflushed */
	uint64_t files, bytes;
	struct timespec shown;
};

static struct usage_ctx *cur; /* nftw passes no context */

static void show_progress(struct usage_ctx *c, int final)
{
	struct timespec now;
	char b[32];

	if (!c->progress)
		return;
	if (final) {
		fputs("\r\033[K", stderr);
		return;
	}
	clock_gettime(CLOCK_MONOTONIC, &now);
	if ((now.tv_sec - c->shown.tv_sec) * 1000000000L + (now.tv_nsec - c->shown.tv_nsec) <
	    100000000L)
		return;
	c->shown = now;
	fprintf(stderr, "\r\033[K%s: %" PRIu64 " files, %s", c->root, c->files,
		cli_human_size(c->bytes, b, sizeof(b)));
}

/* Adds one extent to this PATH, and to the grand total when ALSO_ALL. */
static int count_extent(struct usage_ctx *c, dev_t dev, const struct rfs_ioc_extent *e,
			int also_all)
{
	int shared = !!(e->flags & RFS_IOC_EXTENT_SHARED);

	c->path.total += e->length;
	c->bytes += e->length;
	if (also_all)
		c->all.total += e->length;
	if (shared) /* the grand total takes this PATH's set when it is done */
		return ival_add(&c->path.shared, dev, e->physical, e->length);
	c->path.exclusive += e->length;
	if (also_all)
		c->all.exclusive += e->length;
	return 0;
}

static int count_extents(struct usage_ctx *c, int fd, const char *path, dev_t dev, int also_all)
{
	struct rfs_ioc_extent e;
	struct ext_walk w;
	int ret = ext_walk_start(&w, fd, 0);

	while (!ret && (ret = ext_walk_next(&w, &e)) == 1)
		ret = count_extent(c, dev, &e, also_all);
	if (ret < 0 && not_reflinkfs(-ret)) {
		c->foreign = 1;
		return fail("%s is not on a reflinkfs mount", c->root);
	}
	if (ret < 0)
		return fail("%s: cannot list extents: %s", path, strerror(-ret));
	return 0;
}

/* Should this file count (again)? 0 skip, 1 count for this PATH only, 2
 * count for the grand total too; -1 out of memory. Only inodes that may
 * be met twice are remembered: hard links, or any file once several
 * PATHs may overlap. */
static int count_how(struct usage_ctx *c, const struct stat *st)
{
	int last;

	if (st->st_nlink < 2 && c->npaths < 2)
		return 2;
	if (ino_mark(&c->inodes, st->st_dev, st->st_ino, c->path_idx, &last))
		return -1;
	if (last == c->path_idx)
		return 0;
	return last < 0 ? 2 : 1;
}

static int count_file(struct usage_ctx *c, const char *path, const struct stat *st)
{
	int how = count_how(c, st), fd, ret = EXIT_FAIL;

	if (how < 0)
		return fail("out of memory");
	if (!how)
		return 0;
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return fail("%s: %s", path, strerror(errno));
	if (c->no_sync || flush_to_daemon(fd, path) == 0)
		ret = count_extents(c, fd, path, st->st_dev, how == 2);
	close(fd);
	c->files++;
	show_progress(c, 0);
	return ret;
}

static int visit(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)ftw;
	switch (type) {
	case FTW_F:
		if (S_ISREG(st->st_mode) && count_file(cur, path, st))
			cur->status = EXIT_FAIL;
		break;
	case FTW_DNR:
		cur->status = fail("%s: cannot read the directory: %s", path, strerror(errno));
		break;
	case FTW_NS:
		cur->status = fail("%s: cannot stat it: %s", path, strerror(errno));
		break;
	}
	return cur->foreign; /* non-zero stops the walk */
}

/* --- the command ------------------------------------------------------------------ */

static void print_row(const char *total, const char *excl, const char *shared, const char *name)
{
	printf("%12s %12s %12s  %s\n", total, excl, shared, name);
}

static const char *amount(uint64_t bytes, int raw, char *buf, size_t len)
{
	if (raw) {
		snprintf(buf, len, "%" PRIu64, bytes);
		return buf;
	}
	return cli_human_size(bytes, buf, len);
}

static void print_sum(struct usage_sum *s, const char *name, int raw)
{
	char t[32], e[32], sh[32];

	print_row(amount(s->total, raw, t, sizeof(t)), amount(s->exclusive, raw, e, sizeof(e)),
		  amount(ival_bytes(&s->shared), raw, sh, sizeof(sh)), name);
}

/* Walks one PATH (nftw: no symlinks followed, no mounts crossed); prints
 * its line unless it could not be measured. */
static void usage_path(struct usage_ctx *c, const char *path, int raw)
{
	int ret;

	c->root = path;
	c->foreign = 0;
	c->path.total = c->path.exclusive = 0;
	c->path.shared.n = 0;
	clock_gettime(CLOCK_MONOTONIC, &c->shown); /* quick walks show nothing */
	ret = nftw(path, visit, 64, FTW_PHYS | FTW_MOUNT);
	show_progress(c, 1);
	if (ret < 0) {
		c->status = fail("%s: %s", path, strerror(errno));
		return;
	}
	if (c->foreign)
		return;
	if (ival_add_set(&c->all.shared, &c->path.shared)) {
		c->status = fail("out of memory");
		return;
	}
	print_sum(&c->path, path, raw);
	fflush(stdout);
}

int cmd_usage(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"raw", no_argument, NULL, 'r'},
		{"no-sync", no_argument, NULL, 'n'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct usage_ctx c;
	int ch, raw = 0, no_sync = 0;

	while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'r':
			raw = 1;
			break;
		case 'n':
			no_sync = 1;
			break;
		case 'h':
			print_help();
			return 0;
		default:
			return usage_hint();
		}
	}
	if (optind >= argc)
		return usage_error("usage: no PATH given");
	memset(&c, 0, sizeof(c));
	c.npaths = argc - optind;
	c.no_sync = no_sync;
	c.progress = isatty(STDERR_FILENO);
	cur = &c;
	print_row("Total", "Exclusive", "Set shared", "Path");
	for (c.path_idx = 0; c.path_idx < c.npaths; c.path_idx++)
		usage_path(&c, argv[optind + c.path_idx], raw);
	if (c.npaths > 1)
		print_sum(&c.all, "total", raw);
	free(c.path.shared.v);
	free(c.all.shared.v);
	free(c.inodes.v);
	return c.status;
}
