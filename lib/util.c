/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "util.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

uint64_t rfs_get_le64(const void *p)
{
	uint64_t v;
	memcpy(&v, p, sizeof(v));
	return le64toh(v);
}

void rfs_put_le64(void *p, uint64_t v)
{
	v = htole64(v);
	memcpy(p, &v, sizeof(v));
}

static enum rfs_log_level log_max = RFS_LOG_INFO;
static void (*log_sink)(enum rfs_log_level, const char *);

void rfs_log_set_level(enum rfs_log_level max)
{
	log_max = max;
}

void rfs_log_set_sink(void (*sink)(enum rfs_log_level, const char *msg))
{
	log_sink = sink;
}

void rfs_log(enum rfs_log_level level, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	if (level > log_max)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (log_sink)
		log_sink(level, msg);
	else
		fprintf(stderr, "reflinkfs: %s\n", msg);
}
