/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fsck_fuzz.h - the fuzz target's entry points, shared by the libFuzzer
 * build and the replay driver.
 */
#ifndef RFS_FSCK_FUZZ_H
#define RFS_FSCK_FUZZ_H

#include <stddef.h>
#include <stdint.h>

#include "crc.h"
#include "format.h"

#define FUZZ_MAX_META 256

/* A base image and where its metadata is. */
struct fuzz_image {
	uint8_t *bytes;
	fsblock_t meta[FUZZ_MAX_META];
	unsigned nmeta;
	fsblock_t log_start, log_end; /* [ , ) journal log blocks among meta */
};

enum { FUZZ_PLAIN, FUZZ_JOURNALED, FUZZ_IMAGES };

struct fuzz_base {
	struct fuzz_image img[FUZZ_IMAGES];
	uint32_t bsize, uuid_seed;
	int work_fd;   /* memfd fsck runs on */
	char work[64]; /* its path */
};

extern struct fuzz_base fuzz_base;

/* Exit codes of each fsck run (-1: not run). */
struct fuzz_result {
	int check, repair, after;
};

/* Makes the base image once (stdout goes to /dev/null unless
 * $FSCK_FUZZ_VERBOSE is set). */
void fuzz_setup(void);
/* Runs one input; -1 if fsck broke a rule (see fsck_fuzz.c). */
int fuzz_one(const uint8_t *data, size_t size, struct fuzz_result *r);
/* fsck.reflinkfs OPT on the work image; its exit code. */
int fuzz_fsck(const char *opt);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
