/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * clone.c - the clone and dedupe commands.
 *
 * A clone is copy_file_range: the daemon shares every whole block of the
 * range, and a partial last block when the range runs to the source's end
 * and reaches the destination's end; anything else it copies. So we check
 * first that the range is one it shares (and do nothing when it is not),
 * and afterwards that the extent list says the destination's blocks are
 * shared: a silent copy (another filesystem, an image without reflink) is
 * reported, not passed off as a clone.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "ctl.h"

/* One copy_file_range at a time: a multiple of every block size, so that
 * each call ends on a block boundary (a call ending mid-block would have
 * that block copied, not shared), and below the daemon's ~4 GiB cap. */
#define CLONE_CHUNK (1ull << 30)
/* One dedupe ioctl at a time: the daemon compares the bytes under both
 * files' locks, so a chunk bounds how long other I/O on them waits. */
#define DEDUPE_CHUNK (16ull << 20)

/* A range of SRC and where it goes in DST. */
struct range {
	uint64_t src_off, dst_off, len;
};

/* An open source and destination. */
struct pair {
	const char *src, *dst; /* paths, for messages */
	int sfd, dfd;
	struct stat sst, dst_st;
	uint32_t bs;
};

static int same_inode(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino;
}

static int ranges_overlap(const struct range *r)
{
	return r->src_off < r->dst_off + r->len && r->dst_off < r->src_off + r->len;
}

/* SRC is on a reflinkfs mount (its extent list answers): 0, and the block size. */
static int check_reflinkfs(struct pair *p)
{
	int ret = fd_block_size(p->sfd, &p->bs);

	if (not_reflinkfs(-ret))
		return fail("%s is not on a reflinkfs mount: it cannot share blocks", p->src);
	if (ret)
		return fail("%s: cannot read its extent list: %s", p->src, strerror(-ret));
	return 0;
}

static int check_same_mount(const char *src, const struct stat *sst, const char *dst,
			    const struct stat *dst_st)
{
	if (sst->st_dev != dst_st->st_dev)
		return fail("%s is not on the same reflinkfs mount as %s: blocks are shared only "
			    "within one mount",
			    dst, src);
	return 0;
}

/*
 * Can this filesystem share blocks at all? An image made without the
 * reflink feature copies on copy_file_range, which we would only notice
 * after copying everything; a dedupe of nothing (SRC's first 0 bytes onto
 * themselves) says EOPNOTSUPP there and does nothing elsewhere. Other
 * answers (no permission to dedupe SRC) leave the check to the end.
 */
static int check_can_share(const struct pair *p)
{
	struct rfs_ioc_dedupe d = {.dst_ino = p->sst.st_ino};

	if (ioctl(p->sfd, RFS_IOC_DEDUPE, &d) && errno == EOPNOTSUPP)
		return fail("%s: this reflinkfs filesystem cannot share blocks (made without "
			    "the reflink feature)",
			    p->src);
	return 0;
}

/* copy_file_range until R is done; the daemon shares what R allows. */
static int copy_range(const struct pair *p, const struct range *r)
{
	uint64_t done = 0;

	while (done < r->len) {
		uint64_t want = r->len - done < CLONE_CHUNK ? r->len - done : CLONE_CHUNK;
		loff_t soff = (loff_t)(r->src_off + done), doff = (loff_t)(r->dst_off + done);
		ssize_t n = copy_file_range(p->sfd, &soff, p->dfd, &doff, want, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return fail("cannot clone %s to %s: %s", p->src, p->dst, strerror(errno));
		if (n == 0)
			return fail("cannot clone %s to %s: %s ended early (changed meanwhile?)",
				    p->src, p->dst, p->src);
		done += (uint64_t)n;
	}
	return 0;
}

/* Every block of DST the clone of R wrote must be shared. */
static int verify_shared(const struct pair *p, const struct range *r)
{
	uint64_t end = r->dst_off + r->len, unshared;
	int ret;

	end = (end + p->bs - 1) / p->bs * p->bs; /* a partial last block is shared whole */
	ret = unshared_bytes(p->dfd, r->dst_off, end, &unshared);
	if (ret)
		return fail("%s: cannot read its extent list: %s", p->dst, strerror(-ret));
	if (unshared)
		return fail("%s: %" PRIu64 " of the %" PRIu64
			    " bytes cloned are not shared: the filesystem copied them instead",
			    p->dst, unshared < r->len ? unshared : r->len, r->len);
	return 0;
}

static int clone_and_verify(const struct pair *p, const struct range *r, int verbose)
{
	int ret = copy_range(p, r);

	if (!ret)
		ret = verify_shared(p, r);
	if (!ret && verbose)
		printf("'%s' -> '%s': %" PRIu64 " bytes shared\n", p->src, p->dst, r->len);
	return ret;
}

static void close_pair(struct pair *p)
{
	if (p->sfd >= 0)
		close(p->sfd);
	if (p->dfd >= 0 && close(p->dfd))
		fail("%s: %s", p->dst, strerror(errno)); /* too late to change the status */
}

/* --- clone SRC DST --------------------------------------------------------------- */

/* DST, or DST/basename(SRC) when DST is a directory (as cp does); malloc'ed. */
static char *dst_path(const char *src, const char *dst)
{
	char *copy = strdup(src), *out = NULL;
	struct stat st;

	if (!copy)
		return NULL;
	if (stat(dst, &st) == 0 && S_ISDIR(st.st_mode)) {
		if (asprintf(&out, "%s/%s", dst, basename(copy)) < 0)
			out = NULL;
	} else {
		out = strdup(dst);
	}
	free(copy);
	return out;
}

/* Before creating or truncating DST: is it a file we may replace, on SRC's mount? */
static int check_dst_path(const struct pair *p)
{
	struct stat st;
	char *dir;
	int ret;

	if (stat(p->dst, &st) == 0) {
		if (!S_ISREG(st.st_mode))
			return fail("%s: not a regular file", p->dst);
		if (same_inode(&st, &p->sst))
			return fail("%s and %s are the same file", p->src, p->dst);
		return check_same_mount(p->src, &p->sst, p->dst, &st);
	}
	if (errno != ENOENT)
		return fail("%s: %s", p->dst, strerror(errno));
	dir = strdup(p->dst);
	if (!dir)
		return fail("out of memory");
	if (stat(dirname(dir), &st))
		ret = fail("%s: %s", p->dst, strerror(errno));
	else
		ret = check_same_mount(p->src, &p->sst, p->dst, &st);
	free(dir);
	return ret;
}

/* Opens DST (created with SRC's permissions less the umask, as cp does),
 * checks again what check_dst_path did (DST may have changed), and only
 * then empties it: never SRC's data. */
static int open_dst_empty(struct pair *p)
{
	p->dfd = open(p->dst, O_WRONLY | O_CREAT | O_CLOEXEC, p->sst.st_mode & 0777);
	if (p->dfd < 0)
		return fail("%s: %s", p->dst, strerror(errno));
	if (fstat(p->dfd, &p->dst_st))
		return fail("%s: %s", p->dst, strerror(errno));
	if (!S_ISREG(p->dst_st.st_mode))
		return fail("%s: not a regular file", p->dst);
	if (same_inode(&p->dst_st, &p->sst))
		return fail("%s and %s are the same file", p->src, p->dst);
	if (check_same_mount(p->src, &p->sst, p->dst, &p->dst_st))
		return EXIT_FAIL;
	if (ftruncate(p->dfd, 0))
		return fail("%s: cannot truncate it: %s", p->dst, strerror(errno));
	return 0;
}

static int clone_file(const char *src, const char *dst, int verbose)
{
	struct pair p = {.src = src, .sfd = -1, .dfd = -1};
	char *path = NULL;
	int ret = EXIT_FAIL;

	p.sfd = open_regular(src, O_RDONLY, &p.sst);
	if (p.sfd < 0)
		return EXIT_FAIL;
	path = dst_path(src, dst);
	p.dst = path;
	if (!path)
		ret = fail("out of memory");
	else if (!check_reflinkfs(&p) && !check_dst_path(&p) && !check_can_share(&p) &&
		 !open_dst_empty(&p))
		ret = clone_and_verify(&p, &(struct range){0, 0, (uint64_t)p.sst.st_size}, verbose);
	close_pair(&p);
	free(path);
	return ret;
}

/* --- ranges: clone SRC DST SRC_OFF DST_OFF LEN, dedupe with a range ---------------- */

enum range_kind { RANGE_CLONE, RANGE_DEDUPE };

static int parse_range(char **args, struct range *r)
{
	int ret = parse_bytes("SRC_OFF", args[0], &r->src_off);

	if (!ret)
		ret = parse_bytes("DST_OFF", args[1], &r->dst_off);
	if (!ret)
		ret = parse_bytes("LEN", args[2], &r->len);
	return ret;
}

static int check_alignment(const struct pair *p, const struct range *r)
{
	if (r->src_off % p->bs)
		return fail("SRC_OFF %" PRIu64 " is not a multiple of the block size (%u): "
			    "nothing done",
			    r->src_off, p->bs);
	if (r->dst_off % p->bs)
		return fail("DST_OFF %" PRIu64 " is not a multiple of the block size (%u): "
			    "nothing done",
			    r->dst_off, p->bs);
	return 0;
}

/* May the last block of R be partial? The daemon shares one only where
 * its bytes past the end are zeros in both files: for a clone, the range
 * ends at SRC's end and reaches DST's; a dedupe compares only what both
 * have, so it must end at both ends. */
static int partial_tail_ok(const struct pair *p, const struct range *r, enum range_kind kind)
{
	uint64_t ssize = (uint64_t)p->sst.st_size, dsize = (uint64_t)p->dst_st.st_size;

	if (r->src_off + r->len != ssize)
		return 0;
	return kind == RANGE_CLONE ? r->dst_off + r->len >= dsize : r->dst_off + r->len == dsize;
}

/* Resolves LEN 0 (to SRC's end) and checks that the daemon would share
 * all of R: 0, or EXIT_FAIL after saying why. */
static int check_range(const struct pair *p, struct range *r, enum range_kind kind)
{
	uint64_t ssize = (uint64_t)p->sst.st_size, dsize = (uint64_t)p->dst_st.st_size;

	if (check_alignment(p, r))
		return EXIT_FAIL;
	if (r->src_off > ssize)
		return fail("SRC_OFF %" PRIu64 " is past the end of %s (%" PRIu64
			    " bytes): nothing done",
			    r->src_off, p->src, ssize);
	if (!r->len)
		r->len = ssize - r->src_off;
	if (r->len > ssize - r->src_off)
		return fail("the range runs past the end of %s (%" PRIu64 " bytes): nothing done",
			    p->src, ssize);
	if (kind == RANGE_DEDUPE && (r->dst_off > dsize || r->len > dsize - r->dst_off))
		return fail("the range runs past the end of %s (%" PRIu64 " bytes): nothing done",
			    p->dst, dsize);
	if (r->len % p->bs && !partial_tail_ok(p, r, kind))
		return fail("LEN %" PRIu64 " is not a multiple of the block size (%u), and the "
			    "range does not end at %s: its last block cannot be shared; "
			    "nothing done",
			    r->len, p->bs,
			    kind == RANGE_CLONE ? "SRC's end and reach DST's end" : "both ends");
	if (same_inode(&p->sst, &p->dst_st) && r->len && ranges_overlap(r))
		return fail("the ranges overlap in the same file: nothing done");
	return 0;
}

/* Opens both files of a range operation and checks that they are on one
 * reflinkfs mount; flushes both, so that their sizes and bytes are the
 * daemon's too. DST_FLAGS: how to open DST. */
static int open_pair(struct pair *p, int dst_flags)
{
	p->sfd = open_regular(p->src, O_RDONLY, &p->sst);
	if (p->sfd < 0)
		return EXIT_FAIL;
	p->dfd = open_regular(p->dst, dst_flags, &p->dst_st);
	if (p->dfd < 0)
		return EXIT_FAIL;
	if (check_reflinkfs(p) || check_same_mount(p->src, &p->sst, p->dst, &p->dst_st))
		return EXIT_FAIL;
	if (flush_to_daemon(p->sfd, p->src) || flush_to_daemon(p->dfd, p->dst))
		return EXIT_FAIL;
	if (fstat(p->sfd, &p->sst) || fstat(p->dfd, &p->dst_st))
		return fail("%s: %s", p->src, strerror(errno));
	return 0;
}

static int clone_range(const char *src, const char *dst, char **args, int verbose)
{
	struct pair p = {.src = src, .dst = dst, .sfd = -1, .dfd = -1};
	struct range r;
	int ret = parse_range(args, &r);

	if (ret)
		return ret;
	ret = open_pair(&p, O_WRONLY);
	if (!ret)
		ret = check_range(&p, &r, RANGE_CLONE);
	if (!ret)
		ret = check_can_share(&p);
	if (!ret && r.len)
		ret = clone_and_verify(&p, &r, verbose);
	close_pair(&p);
	return ret;
}

int cmd_clone(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"verbose", no_argument, NULL, 'v'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int c, verbose = 0;

	while ((c = getopt_long(argc, argv, "vh", longopts, NULL)) != -1) {
		switch (c) {
		case 'v':
			verbose = 1;
			break;
		case 'h':
			print_help();
			return 0;
		default:
			return usage_hint();
		}
	}
	if (argc - optind == 2)
		return clone_file(argv[optind], argv[optind + 1], verbose);
	if (argc - optind == 5)
		return clone_range(argv[optind], argv[optind + 1], argv + optind + 2, verbose);
	return usage_error("clone: give SRC DST, or SRC DST SRC_OFF DST_OFF LEN");
}

/* --- dedupe ------------------------------------------------------------------------ */

/* One chunk: adds to *SHARED, or to *DIFFERS when the bytes differ. */
static int dedupe_chunk(const struct pair *p, uint64_t soff, uint64_t doff, uint64_t len,
			uint64_t *shared, uint64_t *differs)
{
	struct rfs_ioc_dedupe d = {
		.dst_ino = p->dst_st.st_ino, .src_off = soff, .dst_off = doff, .len = len};

	if (ioctl(p->sfd, RFS_IOC_DEDUPE, &d) == 0) {
		if (d.status == RFS_DEDUPE_DIFFERS)
			*differs += len;
		else
			*shared += d.bytes;
		return 0;
	}
	if (errno == EOPNOTSUPP)
		return fail("%s: this reflinkfs filesystem cannot share blocks (made without "
			    "the reflink feature)",
			    p->src);
	return fail("cannot dedupe %s and %s: %s", p->src, p->dst, strerror(errno));
}

static int dedupe_range(const struct pair *p, const struct range *r)
{
	uint64_t done = 0, shared = 0, differs = 0;
	int ret = 0;

	while (!ret && done < r->len) {
		uint64_t n = r->len - done < DEDUPE_CHUNK ? r->len - done : DEDUPE_CHUNK;

		ret = dedupe_chunk(p, r->src_off + done, r->dst_off + done, n, &shared, &differs);
		done += n;
	}
	if (ret)
		return ret;
	if (differs) {
		printf("%s and %s: contents differ; %" PRIu64 " of %" PRIu64
		       " bytes deduplicated\n",
		       p->src, p->dst, shared, r->len);
		return EXIT_DIFFERS;
	}
	printf("%s and %s: %" PRIu64 " bytes deduplicated\n", p->src, p->dst, shared);
	return 0;
}

/* Whole files: only files of one size can be equal. */
static int whole_files(const struct pair *p, struct range *r)
{
	uint64_t ssize = (uint64_t)p->sst.st_size, dsize = (uint64_t)p->dst_st.st_size;

	if (ssize != dsize) {
		printf("%s and %s: contents differ (sizes %" PRIu64 " and %" PRIu64
		       " bytes); nothing deduplicated\n",
		       p->src, p->dst, ssize, dsize);
		return EXIT_DIFFERS;
	}
	*r = (struct range){0, 0, ssize};
	if (same_inode(&p->sst, &p->dst_st) && ssize)
		return fail("%s and %s are the same file", p->src, p->dst);
	return 0;
}

int cmd_dedupe(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct pair p = {.sfd = -1, .dfd = -1};
	struct range r;
	int c, ret;

	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		if (c != 'h')
			return usage_hint();
		print_help();
		return 0;
	}
	if (argc - optind != 2 && argc - optind != 5)
		return usage_error("dedupe: give SRC DST, or SRC DST SRC_OFF DST_OFF LEN");
	if (argc - optind == 5 && (ret = parse_range(argv + optind + 2, &r)))
		return ret;
	p.src = argv[optind];
	p.dst = argv[optind + 1];
	/* the daemon finds DST by inode number among open files: hold it open */
	ret = open_pair(&p, O_RDONLY);
	if (!ret)
		ret = argc - optind == 2 ? whole_files(&p, &r) : check_range(&p, &r, RANGE_DEDUPE);
	if (!ret)
		ret = dedupe_range(&p, &r);
	close_pair(&p);
	return ret;
}
