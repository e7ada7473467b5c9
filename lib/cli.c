/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "cli.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "dev.h"

int cli_parse_size(const char *s, uint64_t *out)
{
	static const char units[] = "KMGTPE";
	unsigned long long v;
	const char *u;
	char *end;
	int shift = 0;

	if (!s || !isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return -EINVAL;
	if (*end) {
		u = strchr(units, toupper((unsigned char)*end));
		if (!u)
			return -EINVAL;
		shift = 10 * (int)(u - units + 1);
		end++;
		if (strcasecmp(end, "") && strcasecmp(end, "b") && strcasecmp(end, "ib"))
			return -EINVAL;
	}
	if (shift && v > (~0ull >> shift))
		return -EINVAL;
	*out = (uint64_t)v << shift;
	return 0;
}

const char *cli_human_size(uint64_t bytes, char *buf, size_t len)
{
	static const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
	double v = (double)bytes;
	unsigned i = 0;

	while (v >= 1024 && i + 1 < sizeof(units) / sizeof(units[0])) {
		v /= 1024;
		i++;
	}
	if (i == 0)
		snprintf(buf, len, "%llu B", (unsigned long long)bytes);
	else
		snprintf(buf, len, "%.1f %s", v, units[i]);
	return buf;
}

void cli_print_version(const char *prog)
{
	printf("%s (reflinkfs) %s\n", prog, RFS_VERSION);
}

/* Undoes mountinfo's octal escapes (\040 for a space) in place. */
static void unescape_mountinfo(char *s)
{
	char *out = s;

	while (*s) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
		    s[3] >= '0' && s[3] <= '7') {
			*out++ = (char)((s[1] - '0') << 6 | (s[2] - '0') << 3 | (s[3] - '0'));
			s += 4;
		} else {
			*out++ = *s++;
		}
	}
	*out = '\0';
}

int cli_image_mounted(const char *image)
{
	char want[4096], line[8192], type[256], source[4096];
	FILE *f;
	int found = 0;

	if (!realpath(image, want))
		return 0;
	f = fopen("/proc/self/mountinfo", "r");
	if (!f)
		return 0;
	while (!found && fgets(line, sizeof(line), f)) {
		const char *rest = strstr(line, " - "); /* after the optional fields */
		if (!rest || sscanf(rest, " - %255s %4095s", type, source) != 2)
			continue;
		unescape_mountinfo(source);
		found = !strcmp(type, "fuse.reflinkfs") && !strcmp(source, want);
	}
	fclose(f);
	return found;
}

/* Does process PID, named "reflinkfs", have the file WANT (a real path) open? */
static int daemon_has_open(const char *pid, const char *want)
{
	char path[300], target[4096], comm[32] = "";
	struct dirent *d;
	FILE *f;
	DIR *fds;
	int found = 0;

	snprintf(path, sizeof(path), "/proc/%s/comm", pid);
	f = fopen(path, "r");
	if (!f)
		return 0;
	if (!fgets(comm, sizeof(comm), f))
		comm[0] = '\0';
	fclose(f);
	if (strcmp(comm, "reflinkfs\n"))
		return 0;
	snprintf(path, sizeof(path), "/proc/%s/fd", pid);
	fds = opendir(path);
	if (!fds)
		return 0;
	while (!found && (d = readdir(fds))) {
		ssize_t n = readlinkat(dirfd(fds), d->d_name, target, sizeof(target) - 1);
		if (n > 0) {
			target[n] = '\0';
			found = !strcmp(target, want);
		}
	}
	closedir(fds);
	return found;
}

/* Is IMAGE held by a reflinkfs daemon (one we may look at)? */
static int daemon_holds(const char *image)
{
	char want[4096];
	struct dirent *d;
	DIR *proc;
	int found = 0;

	if (!realpath(image, want))
		return 0;
	proc = opendir("/proc");
	if (!proc)
		return 0;
	while (!found && (d = readdir(proc)))
		if (isdigit((unsigned char)d->d_name[0]))
			found = daemon_has_open(d->d_name, want);
	closedir(proc);
	return found;
}

int cli_open_image(const char *prog, const char *image, unsigned flags, uint64_t size,
		   unsigned wait_seconds, struct rfs_dev **dev)
{
	const struct timespec tick = {0, 100 * 1000 * 1000};
	unsigned ticks;
	int ret = dev_open_file(image, flags, size, dev);

	for (ticks = 0; ret == -EBUSY && ticks < wait_seconds * 10u; ticks++) {
		if (cli_image_mounted(image))
			return -EBUSY;
		if (!daemon_holds(image)) /* another program, or a daemon that just let go */
			return dev_open_file(image, flags, size, dev);
		if (ticks == 10)
			fprintf(stderr,
				"%s: %s is unmounted but its reflinkfs daemon is still writing: "
				"waiting for it\n",
				prog, image);
		nanosleep(&tick, NULL);
		ret = dev_open_file(image, flags, size, dev);
	}
	return ret;
}
