/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fsck_fuzz_replay - the fuzz target without libFuzzer (any compiler, the
 * ASan build in CI).
 *
 *   fsck_fuzz_replay FILE|DIR...     runs each saved input (a directory:
 *                                    each file in it)
 *   fsck_fuzz_replay --random N SEED N images with 1 to 3 random byte
 *                                    changes in metadata blocks, always
 *                                    repaired too (mode bit set)
 *
 * Random damage: every change alters the bytes (XOR with a non-zero
 * value). Left with a stale checksum, the damage must be found (fsck -n
 * exits 4); with the checksum recomputed it may be harmless (a timestamp),
 * so 0 is allowed too. -y must then exit 1 or 4 (or 0 if harmless), and a
 * -y that says it fixed everything must leave a clean image (the rules of
 * fsck_fuzz.c). A failing case is saved as fsck_fuzz_fail-SEED-CASE in the
 * current directory, an input for the first form, and named with the seed.
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsck_fuzz.h"
#include "rng.h"

static int failures;

static void report(const char *name, const struct fuzz_result *r)
{
	fprintf(stderr, "FAIL %s: exit codes -n %d, -y %d, then -fn %d\n", name, r->check,
		r->repair, r->after);
	failures++;
}

static void run_file(const char *path)
{
	struct fuzz_result r;
	uint8_t *data;
	size_t size;
	FILE *f = fopen(path, "rb");
	long len;

	if (!f || fseek(f, 0, SEEK_END) || (len = ftell(f)) < 0 || fseek(f, 0, SEEK_SET)) {
		fprintf(stderr, "fsck_fuzz_replay: %s: %s\n", path, strerror(errno));
		exit(2);
	}
	size = (size_t)len;
	data = malloc(size + 1);
	if (!data || fread(data, 1, size, f) != size) {
		fprintf(stderr, "fsck_fuzz_replay: cannot read %s\n", path);
		exit(2);
	}
	fclose(f);
	if (fuzz_one(data, size, &r))
		report(path, &r);
	free(data);
}

static void run_path(const char *path)
{
	struct stat st;
	struct dirent **names;
	char sub[4096];
	int i, n;

	if (stat(path, &st) || !S_ISDIR(st.st_mode))
		return run_file(path);
	n = scandir(path, &names, NULL, alphasort); /* sorted: the same order each run */
	if (n < 0) {
		fprintf(stderr, "fsck_fuzz_replay: cannot read %s: %s\n", path, strerror(errno));
		exit(2);
	}
	for (i = 0; i < n; i++) {
		if (names[i]->d_name[0] != '.') {
			snprintf(sub, sizeof(sub), "%s/%s", path, names[i]->d_name);
			run_file(sub);
		}
		free(names[i]);
	}
	free(names);
}

/* One random input: mode byte, then 1-3 patches of 1-8 changed bytes. */
static size_t random_input(uint64_t *s, uint8_t *in, int *stale_crc)
{
	unsigned npatch = 1 + (unsigned)(rng_splitmix(s) % 3), p;
	int fix = (int)(rng_splitmix(s) & 1); /* one choice for all: a later patch's fix
					would cover an earlier one's stale crc */
	size_t pos = 0;

	in[pos++] = 1; /* repair too, on the plain base */
	*stale_crc = !fix;
	for (p = 0; p < npatch; p++) {
		unsigned idx, len = 1 + (unsigned)(rng_splitmix(s) % 8), i;
		uint32_t off = (uint32_t)(rng_splitmix(s) % fuzz_base.bsize);
		fsblock_t b;

		do { /* not the log's unused blocks: nothing reads them */
			idx = (unsigned)(rng_splitmix(s) % fuzz_base.img[FUZZ_PLAIN].nmeta);
			b = fuzz_base.img[FUZZ_PLAIN].meta[idx];
		} while (b >= fuzz_base.img[FUZZ_PLAIN].log_start &&
			 b < fuzz_base.img[FUZZ_PLAIN].log_end);
		if (off + len > fuzz_base.bsize)
			off = fuzz_base.bsize - len;
		in[pos++] = (uint8_t)idx;
		in[pos++] = (uint8_t)fix;
		in[pos++] = (uint8_t)off;
		in[pos++] = (uint8_t)(off >> 8);
		in[pos++] = (uint8_t)len;
		for (i = 0; i < len; i++)
			in[pos++] = fuzz_base.img[FUZZ_PLAIN].bytes[b * fuzz_base.bsize + off + i] ^
				    (uint8_t)(1 + rng_splitmix(s) % 255);
	}
	return pos;
}

static void save_failure(uint64_t seed, unsigned i, const uint8_t *in, size_t len)
{
	char name[64];
	FILE *f;

	snprintf(name, sizeof(name), "fsck_fuzz_fail-%" PRIu64 "-%u", seed, i);
	f = fopen(name, "wb");
	if (f && fwrite(in, 1, len, f) == len && !fclose(f))
		fprintf(stderr, "  saved as %s\n", name);
}

static void run_random(FILE *out, unsigned n, uint64_t seed)
{
	uint64_t s = seed, by_check[9] = {0}, by_repair[9] = {0};
	uint8_t in[1 + 3 * (5 + 8)];
	unsigned i;

	fuzz_setup();
	for (i = 0; i < n; i++) {
		struct fuzz_result r;
		int stale;
		size_t len = random_input(&s, in, &stale);
		int bad = fuzz_one(in, len, &r);
		char name[64];

		if (!bad && stale && r.check != 4)
			bad = 1; /* a bad checksum went unnoticed */
		if (!bad && (r.repair == 0) != (r.check == 0))
			bad = 1; /* -n and -y disagree on whether it is clean */
		if (bad) {
			snprintf(name, sizeof(name), "seed %" PRIu64 " case %u", seed, i);
			report(name, &r);
			save_failure(seed, i, in, len);
		}
		by_check[r.check >= 0 && r.check < 9 ? r.check : 8]++;
		by_repair[r.repair >= 0 && r.repair < 9 ? r.repair : 8]++;
	}
	fprintf(out,
		"fsck_fuzz_replay: seed %" PRIu64 ", %u images: -n exit 0/4/8: %" PRIu64 "/%" PRIu64
		"/%" PRIu64 "; -y exit 0/1/4/8: %" PRIu64 "/%" PRIu64 "/%" PRIu64 "/%" PRIu64
		"; %d failures\n",
		seed, n, by_check[0], by_check[4], by_check[8], by_repair[0], by_repair[1],
		by_repair[4], by_repair[8], failures);
}

int main(int argc, char **argv)
{
	FILE *out = fdopen(dup(1), "w"); /* fuzz_setup sends stdout to /dev/null */
	int i;

	if (argc == 4 && !strcmp(argv[1], "--random")) {
		run_random(out, (unsigned)strtoul(argv[2], NULL, 0), strtoull(argv[3], NULL, 0));
		return failures ? 1 : 0;
	}
	if (argc < 2) {
		fprintf(stderr, "usage: %s FILE|DIR... | %s --random N SEED\n", argv[0], argv[0]);
		return 16;
	}
	for (i = 1; i < argc; i++)
		run_path(argv[i]);
	fprintf(out, "fsck_fuzz_replay: %d failure(s)\n", failures);
	return failures ? 1 : 0;
}
