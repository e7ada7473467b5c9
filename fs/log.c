/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * log.c - where the daemon's messages go: its own (rfs_log, from lib/ and
 * fs/) and libfuse's (fuse_log).
 *
 * With -f or -d the daemon is in the foreground, and everything goes to
 * stderr. In the background (mount(8), fstab) stderr becomes /dev/null
 * once the mount is up, so messages go to syslog (facility daemon); until
 * then errors also go to stderr, so that whoever ran mount sees why it
 * failed. -d also shows debug messages and every FUSE request.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>

#include "rfs_fuse.h"
#include "util.h"

static int log_foreground = 1; /* stderr only */
static int log_detached;       /* background, and stderr is gone */

static int syslog_priority(enum rfs_log_level level)
{
	static const int prio[] = {LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG};
	return prio[level];
}

/* The one place the daemon's messages are written. */
static void daemon_log(enum rfs_log_level level, const char *msg)
{
	if (!log_foreground)
		syslog(syslog_priority(level), "%s", msg);
	if (log_foreground || (!log_detached && level <= RFS_LOG_WARN))
		fprintf(stderr, "reflinkfs: %s\n", msg);
}

/* libfuse's messages: by level into ours (their text ends in a newline). */
static void fuse_log_sink(enum fuse_log_level level, const char *fmt, va_list ap)
{
	enum rfs_log_level ours = level <= FUSE_LOG_ERR	      ? RFS_LOG_ERR
				  : level == FUSE_LOG_WARNING ? RFS_LOG_WARN
				  : level <= FUSE_LOG_INFO    ? RFS_LOG_INFO
							      : RFS_LOG_DEBUG;
	char msg[1024];
	size_t len;

	if (level == FUSE_LOG_DEBUG && log_foreground) {
		vfprintf(stderr, fmt, ap); /* -d's request trace, unchanged */
		return;
	}
	vsnprintf(msg, sizeof(msg), fmt, ap);
	len = strlen(msg);
	while (len && msg[len - 1] == '\n')
		msg[--len] = '\0';
	rfs_log(ours, "%s", msg);
}

void rfs_log_start(const char *prog, int foreground, int debug)
{
	log_foreground = foreground;
	if (!foreground)
		openlog(prog, LOG_PID, LOG_DAEMON);
	rfs_log_set_level(debug ? RFS_LOG_DEBUG : RFS_LOG_INFO);
	rfs_log_set_sink(daemon_log);
	fuse_set_log_func(fuse_log_sink);
}

void rfs_log_detached(void)
{
	log_detached = 1;
}
