/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * rfs_wlogcut - rebuilds an image as a power cut would have left it, from
 * the image when logging started and the device's write log (lib/dev.h,
 * docs/FORMAT.md §13).
 *
 *   rfs_wlogcut info LOG
 *   rfs_wlogcut plan LOG COUNT SEED
 *   rfs_wlogcut make BASE LOG OUT K KEEPSEED
 *
 * A cut keeps the first K records of the log, as far as a disk must: every
 * write before the last flush among them is kept; the writes after that
 * flush were never flushed, so a disk may have done any subset of them,
 * and only parts of each (KEEPSEED 0: all of them; otherwise each 4 KiB
 * piece of them, aligned on the device, is kept or dropped by a coin drawn
 * from KEEPSEED, in log order). `make` writes that image to OUT.
 *
 * `plan` picks COUNT cuts from SEED and prints one per line:
 * "K KEEPSEED END", END being the log offset just past record K-1 (what a
 * workload saw as the log's size when that record had been appended). The
 * cuts are the end of the log, about half at flushes (all flushes if they
 * fit, else an even spread of them) and the rest at random records with a
 * random subset of the unflushed writes. `info` prints the record, write
 * and flush counts and the log size.
 *
 * Exit status: 0 done, 1 failed (the message says why), 16 usage.
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dev.h"
#include "util.h"
#include "rng.h"

#define EXIT_USAGE 16
#define SECTOR	   4096u /* what a disk writes whole, or not at all */

struct wlog {
	const char *path;
	const uint8_t *map;
	size_t size;
	uint64_t dev_size;
	size_t nrec;
	uint64_t *rec_off; /* offset of each record's head in the log */
};

struct rec {
	uint32_t kind, len;
	uint64_t off;
	const uint8_t *data;
};

static void usage(FILE *f)
{
	fprintf(f, "Usage: rfs_wlogcut info LOG\n"
		   "       rfs_wlogcut plan LOG COUNT SEED\n"
		   "       rfs_wlogcut make BASE LOG OUT K KEEPSEED\n");
}

static struct rec rec_at(const struct wlog *w, size_t i)
{
	struct rfs_wlog_rec head;
	struct rec r;

	memcpy(&head, w->map + w->rec_off[i], sizeof(head));
	r.kind = le32toh(head.kind);
	r.len = le32toh(head.len);
	r.off = le64toh(head.off);
	r.data = w->map + w->rec_off[i] + sizeof(head);
	return r;
}

/* Checks one record head at POS; returns its total length or 0. */
static size_t check_rec(const struct wlog *w, uint64_t pos)
{
	struct rfs_wlog_rec head;
	uint32_t kind, len;
	uint64_t off;

	if (w->size - pos < sizeof(head))
		return 0;
	memcpy(&head, w->map + pos, sizeof(head));
	kind = le32toh(head.kind);
	len = le32toh(head.len);
	off = le64toh(head.off);
	if (kind == RFS_WLOG_FLUSH)
		return len == 0 ? sizeof(head) : 0;
	if (kind != RFS_WLOG_WRITE || w->size - pos - sizeof(head) < len)
		return 0;
	if (off > w->dev_size || len > w->dev_size - off)
		return 0;
	return sizeof(head) + len;
}

static int index_records(struct wlog *w)
{
	uint64_t pos = sizeof(struct rfs_wlog_header);
	size_t cap = 1024;

	w->rec_off = malloc(cap * sizeof(*w->rec_off));
	if (!w->rec_off)
		return -ENOMEM;
	while (pos < w->size) {
		size_t n = check_rec(w, pos);
		if (!n) {
			fprintf(stderr, "rfs_wlogcut: %s: bad or truncated record at offset %llu\n",
				w->path, (unsigned long long)pos);
			return -EINVAL;
		}
		if (w->nrec == cap) {
			uint64_t *p = realloc(w->rec_off, 2 * cap * sizeof(*p));
			if (!p)
				return -ENOMEM;
			w->rec_off = p;
			cap *= 2;
		}
		w->rec_off[w->nrec++] = pos;
		pos += n;
	}
	return 0;
}

static int wlog_open(const char *path, struct wlog *w)
{
	struct rfs_wlog_header hdr;
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	memset(w, 0, sizeof(*w));
	w->path = path;
	if (fd < 0 || fstat(fd, &st) < 0) {
		fprintf(stderr, "rfs_wlogcut: %s: %s\n", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	w->size = (size_t)st.st_size;
	if (w->size < sizeof(hdr)) {
		fprintf(stderr, "rfs_wlogcut: %s: too short for a write log\n", path);
		close(fd);
		return -1;
	}
	w->map = mmap(NULL, w->size, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (w->map == MAP_FAILED) {
		fprintf(stderr, "rfs_wlogcut: %s: mmap: %s\n", path, strerror(errno));
		return -1;
	}
	memcpy(&hdr, w->map, sizeof(hdr));
	if (le64toh(hdr.magic) != RFS_WLOG_MAGIC) {
		fprintf(stderr, "rfs_wlogcut: %s: not a write log (bad magic)\n", path);
		return -1;
	}
	w->dev_size = le64toh(hdr.dev_size);
	return index_records(w) ? -1 : 0;
}

static uint64_t end_of(const struct wlog *w, size_t k)
{
	return k < w->nrec ? w->rec_off[k] : w->size;
}

static int do_info(const struct wlog *w)
{
	size_t i, flushes = 0;

	for (i = 0; i < w->nrec; i++)
		flushes += rec_at(w, i).kind == RFS_WLOG_FLUSH;
	printf("records %zu writes %zu flushes %zu size %zu dev_size %llu\n", w->nrec,
	       w->nrec - flushes, flushes, w->size, (unsigned long long)w->dev_size);
	return 0;
}

static void print_cut(const struct wlog *w, size_t k, uint64_t keepseed)
{
	printf("%zu %llu %llu\n", k, (unsigned long long)keepseed,
	       (unsigned long long)end_of(w, k));
}

static int do_plan(const struct wlog *w, unsigned long count, uint64_t seed)
{
	size_t *flush_k = malloc((w->nrec + 1) * sizeof(*flush_k));
	size_t i, nflush = 0;
	unsigned long nf, n;

	if (!flush_k)
		return 1;
	for (i = 0; i < w->nrec; i++)
		if (rec_at(w, i).kind == RFS_WLOG_FLUSH)
			flush_k[nflush++] = i + 1;
	if (!count || !w->nrec) {
		free(flush_k);
		return 0;
	}
	print_cut(w, w->nrec, 0);
	count--;
	nf = count / 2 < nflush ? count / 2 : nflush;
	/* an even spread of the flushes, starting at a random one */
	for (n = 0; n < nf; n++) {
		size_t j = (size_t)(((uint64_t)n * nflush) / nf);
		print_cut(w, flush_k[j], 0);
	}
	for (n = nf; n < count; n++) {
		size_t k = 1 + (size_t)(rng_splitmix(&seed) % w->nrec);
		uint64_t keep = rng_splitmix(&seed) | 1; /* never 0 (keep all) */
		print_cut(w, k, keep);
	}
	free(flush_k);
	return 0;
}

/* Copies BASE's data (not its holes) to OUT, sized to the device. */
static int copy_base(const char *base, int out, uint64_t dev_size)
{
	int in = open(base, O_RDONLY | O_CLOEXEC);
	struct stat st;
	off_t data, hole = 0;

	if (in < 0 || fstat(in, &st) < 0) {
		fprintf(stderr, "rfs_wlogcut: %s: %s\n", base, strerror(errno));
		goto fail;
	}
	if ((uint64_t)st.st_size != dev_size) {
		fprintf(stderr, "rfs_wlogcut: %s: size %llu, but the log's device had %llu bytes\n",
			base, (unsigned long long)st.st_size, (unsigned long long)dev_size);
		goto fail;
	}
	if (ftruncate(out, (off_t)dev_size) < 0)
		goto fail_out;
	while ((data = lseek(in, hole, SEEK_DATA)) >= 0) {
		hole = lseek(in, data, SEEK_HOLE);
		if (hole < 0)
			goto fail_out;
		for (off_t src = data, dst = data; src < hole;)
			if (copy_file_range(in, &src, out, &dst, (size_t)(hole - src), 0) <= 0)
				goto fail_out;
	}
	if (errno != ENXIO)
		goto fail_out;
	close(in);
	return 0;
fail_out:
	fprintf(stderr, "rfs_wlogcut: copying %s: %s\n", base, strerror(errno));
fail:
	if (in >= 0)
		close(in);
	return -1;
}

static int pwrite_all(int fd, const uint8_t *p, size_t len, uint64_t off)
{
	while (len) {
		ssize_t n = pwrite(fd, p, len, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

/* An unflushed write: each SECTOR-aligned piece kept or not, by coin. */
static int apply_torn(int out, const struct rec *r, uint64_t *keepseed)
{
	uint64_t off = r->off, end = r->off + r->len;

	while (off < end) {
		uint64_t next = RFS_MIN(end, (off / SECTOR + 1) * SECTOR);
		if ((rng_splitmix(keepseed) & 1) &&
		    pwrite_all(out, r->data + (off - r->off), next - off, off))
			return -1;
		off = next;
	}
	return 0;
}

/* Applies the first K records to OUT as the header comment says. */
static int apply_cut(const struct wlog *w, int out, size_t k, uint64_t keepseed)
{
	size_t i, last_flush = 0; /* records before it are all kept */
	int ret = 0;

	for (i = 0; i < k; i++)
		if (rec_at(w, i).kind == RFS_WLOG_FLUSH)
			last_flush = i + 1;
	for (i = 0; i < k && !ret; i++) {
		struct rec r = rec_at(w, i);
		if (r.kind != RFS_WLOG_WRITE)
			continue;
		if (i >= last_flush && keepseed)
			ret = apply_torn(out, &r, &keepseed);
		else
			ret = pwrite_all(out, r.data, r.len, r.off);
	}
	if (ret)
		perror("rfs_wlogcut: writing the cut image");
	return ret;
}

static int do_make(const char *base, const struct wlog *w, const char *outp, size_t k,
		   uint64_t keepseed)
{
	int out;

	if (k > w->nrec) {
		fprintf(stderr, "rfs_wlogcut: %s: cut %zu past its %zu records\n", w->path, k,
			w->nrec);
		return 1;
	}
	out = open(outp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (out < 0) {
		fprintf(stderr, "rfs_wlogcut: %s: %s\n", outp, strerror(errno));
		return 1;
	}
	if (copy_base(base, out, w->dev_size) || apply_cut(w, out, k, keepseed)) {
		close(out);
		return 1;
	}
	if (close(out) < 0) {
		fprintf(stderr, "rfs_wlogcut: %s: %s\n", outp, strerror(errno));
		return 1;
	}
	return 0;
}

static int parse_u64(const char *s, uint64_t *v)
{
	char *end;

	errno = 0;
	*v = strtoull(s, &end, 0);
	return errno || !*s || *end || *s == '-' ? -1 : 0;
}

int main(int argc, char **argv)
{
	uint64_t a, b;
	struct wlog w;
	int ret;

	if (argc == 3 && !strcmp(argv[1], "info")) {
		if (wlog_open(argv[2], &w))
			return 1;
		ret = do_info(&w);
	} else if (argc == 5 && !strcmp(argv[1], "plan")) {
		if (parse_u64(argv[3], &a) || parse_u64(argv[4], &b)) {
			usage(stderr);
			return EXIT_USAGE;
		}
		if (wlog_open(argv[2], &w))
			return 1;
		ret = do_plan(&w, (unsigned long)a, b);
	} else if (argc == 7 && !strcmp(argv[1], "make")) {
		if (parse_u64(argv[5], &a) || parse_u64(argv[6], &b)) {
			usage(stderr);
			return EXIT_USAGE;
		}
		if (wlog_open(argv[3], &w))
			return 1;
		ret = do_make(argv[2], &w, argv[4], (size_t)a, b);
	} else {
		usage(argc == 2 && !strcmp(argv[1], "--help") ? stdout : stderr);
		return argc == 2 && !strcmp(argv[1], "--help") ? 0 : EXIT_USAGE;
	}
	free(w.rec_off);
	munmap((void *)w.map, w.size);
	return ret;
}
