/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * progress.h - e2fsck's -C for fsck.reflinkfs.
 *
 *   -C 0    a bar on stdout, drawn only when stdout is a terminal
 *   -C N    "PASS DONE TOTAL IMAGE" lines on file descriptor N (N > 0), as
 *           e2fsck writes them for fsck(8) and front ends
 *   -C -N   nothing (fsck(8) passes this while another check owns the bar)
 *
 * The passes call fsck_progress() from their main loops; it returns at
 * once when there is nothing to show, and draws at most once per 0.1%.
 */
#ifndef RFS_FSCK_PROGRESS_H
#define RFS_FSCK_PROGRESS_H

#include <stdint.h>

struct fsck_ctx;

struct fsck_progress {
	int mode;      /* PROGRESS_NONE, PROGRESS_BAR or PROGRESS_FD */
	int fd;	       /* PROGRESS_FD: where the lines go */
	int drawn;     /* the bar is on the screen */
	unsigned last; /* last shown, in 1/1000 of the whole check (bar) or the pass */
	unsigned pass; /* last pass shown */
};

enum { PROGRESS_NONE, PROGRESS_BAR, PROGRESS_FD };

/* Parses -C's argument into P; -1 if it is not a number. */
int fsck_progress_parse(struct fsck_progress *p, const char *arg);
/* DONE of TOTAL steps of pass PASS (1 to 4) are done. */
void fsck_progress(struct fsck_ctx *ctx, unsigned pass, uint64_t done, uint64_t total);
/* Takes the bar off the screen before other output (a problem, the summary). */
void fsck_progress_clear(struct fsck_ctx *ctx);

#endif
