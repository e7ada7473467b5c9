/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * progress.c - the -C progress bar and progress lines (see progress.h).
 */
#include "progress.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fsck.h"

#define BAR_WIDTH 40

/* How much of the whole check each pass is, in 1/1000: the trees (pass 2)
 * and the block accounting (pass 3) read and sort the most. */
static const unsigned pass_start[] = {0, 0, 20, 600, 900, 1000};

int fsck_progress_parse(struct fsck_progress *p, const char *arg)
{
	char *end;
	long fd;

	errno = 0;
	fd = strtol(arg, &end, 10);
	if (errno || end == arg || *end || fd > 1024 || fd < -1024)
		return -1;
	p->fd = (int)fd;
	if (fd == 0)
		p->mode = isatty(STDOUT_FILENO) ? PROGRESS_BAR : PROGRESS_NONE;
	else
		p->mode = fd > 0 ? PROGRESS_FD : PROGRESS_NONE;
	return 0;
}

static unsigned permille(uint64_t done, uint64_t total)
{
	if (!total || done >= total)
		return 1000;
	return (unsigned)(done * 1000 / total);
}

static void draw_bar(struct fsck_ctx *ctx, unsigned whole)
{
	char bar[BAR_WIDTH + 1];
	unsigned i, filled = whole * BAR_WIDTH / 1000;

	for (i = 0; i < BAR_WIDTH; i++)
		bar[i] = i < filled ? '=' : ' ';
	bar[BAR_WIDTH] = '\0';
	printf("\r%s: |%s| %5.1f%%", ctx->image, bar, whole / 10.0);
	fflush(stdout);
	ctx->progress.drawn = 1;
}

void fsck_progress(struct fsck_ctx *ctx, unsigned pass, uint64_t done, uint64_t total)
{
	struct fsck_progress *p = &ctx->progress;
	unsigned part, whole;

	if (p->mode == PROGRESS_NONE || pass < 1 || pass > 4)
		return; /* called per claim: nothing more when there is no display */
	part = permille(done, total);
	if (p->mode == PROGRESS_FD) {
		if (pass == p->pass && part == p->last)
			return;
		p->pass = pass;
		p->last = part;
		dprintf(p->fd, "%u %llu %llu %s\n", pass, (unsigned long long)done,
			(unsigned long long)total, ctx->image);
		return;
	}
	whole = pass_start[pass] + (pass_start[pass + 1] - pass_start[pass]) * part / 1000;
	if (p->drawn && whole == p->last)
		return;
	p->last = whole;
	draw_bar(ctx, whole);
}

void fsck_progress_clear(struct fsck_ctx *ctx)
{
	if (!ctx->progress.drawn)
		return;
	printf("\r%*s\r", (int)(BAR_WIDTH + 12) + (int)strlen(ctx->image), "");
	fflush(stdout);
	ctx->progress.drawn = 0;
}
