/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * reflinkfs - the FUSE daemon.
 *
 *   reflinkfs [-f] [-d] [-o OPTS] IMAGE MOUNTPOINT
 *
 * Also run by mount.fuse3 for `mount -t fuse.reflinkfs IMAGE MNT` and
 * fstab lines, which pass IMAGE MOUNTPOINT -o OPTS. Opens and locks the
 * image (a second mount is refused), replays the journal, frees orphans,
 * mounts, serves requests on a multithreaded loop, and at unmount or
 * SIGTERM commits, checkpoints and marks the filesystem clean before the
 * lock is released.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "journal.h"
#include "rfs_fuse.h"
#include "util.h"

#define EXIT_USAGE 16

static const char *prog = "reflinkfs";

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: %s [-f] [-d] [-o OPTIONS] IMAGE MOUNTPOINT\n"
		"Mount the reflinkfs filesystem in IMAGE (a file or block device) at MOUNTPOINT.\n"
		"\n"
		"  -f                 stay in the foreground, log to stderr\n"
		"  -d                 debug: foreground, and log every FUSE request\n"
		"  -o OPTIONS         comma-separated mount options:\n"
		"       ro, rw            read-only / read-write (default rw)\n"
		"       commit=SECONDS    journal commit interval (default 5; 0 = only on sync)\n"
		"       cache_size=SIZE   metadata cache (default 64M)\n"
		"       writeback_cache, no_writeback_cache   kernel write-back caching (default "
		"on)\n"
		"       allow_other       let other users use the mount\n"
		"       writelog=PATH     testing: append every write and flush of the image to\n"
		"                         PATH (write log, docs/FORMAT.md), from before journal "
		"replay\n"
		"       and the usual VFS options: noatime, nosuid, nodev, noexec, sync, ...\n"
		"  -h, --help         show this help;  -V, --version  show the version\n"
		"\n"
		"Unmount with `umount MOUNTPOINT` or `fusermount3 -u MOUNTPOINT`.\n",
		prog);
}

/* Options handled by mount(8) or fstab alone: accepted and dropped. */
static int fstab_only(const char *o)
{
	static const char *const names[] = {"defaults", "nofail", "auto",  "noauto", "user",
					    "users",	"nouser", "owner", "group",  "_netdev"};
	size_t i;

	if (!strncmp(o, "x-", 2) || !strncmp(o, "comment=", 8))
		return 1;
	for (i = 0; i < RFS_ARRAY_SIZE(names); i++)
		if (!strcmp(o, names[i]))
			return 1;
	return 0;
}

/* VFS options libfuse passes to the kernel. */
static int vfs_option(const char *o)
{
	static const char *const names[] = {"suid",	     "nosuid",
					    "dev",	     "nodev",
					    "exec",	     "noexec",
					    "async",	     "sync",
					    "dirsync",	     "atime",
					    "noatime",	     "diratime",
					    "nodiratime",    "relatime",
					    "norelatime",    "strictatime",
					    "nostrictatime", "lazytime",
					    "nolazytime",    "allow_root",
					    "auto_unmount",  "default_permissions"};
	size_t i;

	for (i = 0; i < RFS_ARRAY_SIZE(names); i++)
		if (!strcmp(o, names[i]))
			return 1;
	return 0;
}

static int parse_one_option(struct rfs_opts *o, const char *opt, char *pass, size_t passlen)
{
	if (!strcmp(opt, "ro"))
		o->readonly = 1;
	else if (!strcmp(opt, "rw"))
		o->readonly = 0;
	else if (!strncmp(opt, "commit=", 7)) {
		char *end;
		unsigned long v = strtoul(opt + 7, &end, 10);
		if (*end || !opt[7] || v > 86400)
			return -EINVAL;
		o->commit_interval = (unsigned)v;
	} else if (!strncmp(opt, "cache_size=", 11)) {
		if (cli_parse_size(opt + 11, &o->cache_size) || o->cache_size < (1u << 20))
			return -EINVAL;
	} else if (!strcmp(opt, "writeback_cache")) {
		o->writeback = 1;
	} else if (!strcmp(opt, "no_writeback_cache") || !strcmp(opt, "nowriteback_cache")) {
		o->writeback = 0;
	} else if (!strcmp(opt, "allow_other")) {
		o->allow_other = 1;
	} else if (!strncmp(opt, "writelog=", 9)) {
		if (!opt[9])
			return -EINVAL;
		free(o->writelog);
		o->writelog = strdup(opt + 9);
		if (!o->writelog)
			return -ENOMEM;
	} else if (vfs_option(opt)) {
		if (strlen(pass) + strlen(opt) + 2 > passlen)
			return -E2BIG;
		strcat(pass, ",");
		strcat(pass, opt);
	} else if (!fstab_only(opt)) {
		return -ENOENT;
	}
	return 0;
}

static int parse_options(struct rfs_opts *o, const char *list, char *pass, size_t passlen)
{
	char *copy = strdup(list), *save = NULL, *opt;
	int ret = 0;

	if (!copy)
		return -ENOMEM;
	for (opt = strtok_r(copy, ",", &save); opt && !ret; opt = strtok_r(NULL, ",", &save)) {
		ret = parse_one_option(o, opt, pass, passlen);
		if (ret)
			fprintf(stderr, "%s: %s mount option '%s'\n", prog,
				ret == -ENOENT ? "unknown" : "invalid", opt);
	}
	free(copy);
	return ret;
}

/* Returns -1 to go on, or an exit status. */
static int parse_args(int argc, char **argv, struct rfs_opts *o, char *pass, size_t passlen)
{
	static const struct option longopts[] = {
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	int c;

	o->commit_interval = 5;
	o->cache_size = RFS_DEFAULT_CACHE;
	o->writeback = 1;
	while ((c = getopt_long(argc, argv, "fdo:hV", longopts, NULL)) != -1) {
		switch (c) {
		case 'f':
			o->foreground = 1;
			break;
		case 'd':
			o->foreground = o->debug = 1;
			break;
		case 'o':
			if (parse_options(o, optarg, pass, passlen))
				return 1;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			cli_print_version(prog);
			printf("libfuse %s\n", fuse_pkgversion());
			return 0;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (argc - optind != 2) {
		fprintf(stderr, "%s: %s\n", prog,
			argc - optind < 2 ? "IMAGE and MOUNTPOINT needed" : "too many arguments");
		usage(stderr);
		return EXIT_USAGE;
	}
	o->image = argv[optind];
	o->mountpoint = argv[optind + 1];
	return -1;
}

static int open_filesystem(struct rfs_mount *m)
{
	unsigned flags = m->opts.readonly ? RFS_FS_RDONLY : 0;
	struct rfs_dev *dev;
	char why[256];
	/* after `umount`, the last daemon may still be writing: wait for it */
	int ret = cli_open_image(prog, m->opts.image, m->opts.readonly ? RFS_DEV_RDONLY : 0, 0,
				 CLI_WAIT_SECONDS, &dev);

	if (ret == -EBUSY) {
		rfs_log(RFS_LOG_ERR, "%s is in use (already mounted, or being checked)",
			m->opts.image);
		return 1;
	}
	if (ret) {
		rfs_log(RFS_LOG_ERR, "cannot open %s: %s", m->opts.image, strerror(-ret));
		return 1;
	}
	/* Before fs_open, so that the log holds the journal replay too: the
	 * image as it is now plus the log rebuild every later state. */
	if (m->opts.writelog) {
		ret = dev_writelog_start(dev, m->opts.writelog);
		if (ret) {
			rfs_log(RFS_LOG_ERR, "cannot start the write log %s: %s", m->opts.writelog,
				strerror(-ret));
			dev_close(dev);
			return 1;
		}
	}
	ret = fs_open(dev, flags, m->opts.cache_size, &m->fs, why, sizeof(why));
	if (ret) {
		rfs_log(RFS_LOG_ERR, "%s: %s", m->opts.image, why[0] ? why : strerror(-ret));
		return 1;
	}
	if (m->fs->recovery.needed)
		rfs_log(RFS_LOG_INFO, "%s: journal replayed (%llu transactions)", m->opts.image,
			(unsigned long long)m->fs->recovery.transactions);
	return 0;
}

/* The mount's source (fsname): the image's real path, so that mount(8),
 * df and fsck.reflinkfs (which looks for it in mountinfo) see an absolute
 * path; ',' and '\\' escaped for -o. */
static void source_option(const char *image, char *out, size_t len)
{
	char real[4096];
	const char *s = realpath(image, real) ? real : image;
	size_t n = 0;

	for (; *s && n + 2 < len; s++) {
		if (*s == ',' || *s == '\\')
			out[n++] = '\\';
		out[n++] = *s;
	}
	out[n] = '\0';
}

static struct fuse_session *make_session(struct rfs_mount *m, const char *argv0, const char *pass)
{
	struct fuse_lowlevel_ops ops;
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	struct fuse_session *se;
	char opts[8192], source[4096];

	rfs_ops_init(&ops);
	source_option(m->opts.image, source, sizeof(source));
	snprintf(opts, sizeof(opts), "default_permissions,fsname=%s,subtype=reflinkfs%s%s%s",
		 source, m->opts.allow_other ? ",allow_other" : "", m->opts.readonly ? ",ro" : "",
		 pass);
	if (fuse_opt_add_arg(&args, argv0) || fuse_opt_add_arg(&args, "-o") ||
	    fuse_opt_add_arg(&args, opts) || (m->opts.debug && fuse_opt_add_arg(&args, "-d")))
		return NULL;
	se = fuse_session_new(&args, &ops, sizeof(ops), m);
	fuse_opt_free_args(&args);
	return se;
}

static int serve(struct rfs_mount *m, const char *argv0, const char *pass)
{
	struct fuse_session *se = make_session(m, argv0, pass);
	struct fuse_loop_config *cfg;
	int ret = 1;

	if (!se)
		return 1;
	m->se = se;
	if (fuse_set_signal_handlers(se) != 0)
		goto out_destroy;
	if (fuse_session_mount(se, m->opts.mountpoint) != 0)
		goto out_signals;
	rfs_log(RFS_LOG_INFO, "%s mounted on %s%s", m->opts.image, m->opts.mountpoint,
		m->opts.readonly ? " (read-only)" : "");
	fuse_daemonize(m->opts.foreground);
	rfs_log_detached();
	/* Threads only after daemonizing: fork keeps none. */
	if (!m->opts.readonly)
		journal_start_timer(m->fs, m->opts.commit_interval);
	cfg = fuse_loop_cfg_create();
	if (cfg) {
		fuse_loop_cfg_set_max_threads(cfg, 16);
		/* negative: an error; positive: the signal (SIGTERM, SIGINT,
		 * SIGHUP) that asked for this orderly shutdown */
		ret = fuse_session_loop_mt(se, cfg) < 0 ? 1 : 0;
		fuse_loop_cfg_destroy(cfg);
	}
	fuse_session_unmount(se);
out_signals:
	fuse_remove_signal_handlers(se);
out_destroy:
	fuse_session_destroy(se);
	return ret;
}

/* Everything after the options: open, serve, close. */
static int run(struct rfs_mount *m, const char *argv0, const char *pass)
{
	int ret;

	rfs_log_start(prog, m->opts.foreground, m->opts.debug);
	rfs_log(RFS_LOG_DEBUG, "options: commit=%u cache_size=%llu%s%s%s%s",
		m->opts.commit_interval, (unsigned long long)m->opts.cache_size,
		m->opts.readonly ? " ro" : "", m->opts.writeback ? " writeback_cache" : "",
		m->opts.allow_other ? " allow_other" : "", pass);
	if (open_filesystem(m))
		return 1;
	/* Only this daemon changes the image, and every change reaches it
	 * through the kernel, which invalidates what it cached of the inodes
	 * and names involved: entries and attributes stay valid until then.
	 * (A day, as virtiofsd's cache=always.) */
	m->timeout = 86400.0;
	pthread_mutex_init(&m->lock, NULL);
	if (itab_init(m)) {
		fs_close(m->fs);
		return 1;
	}
	if (!m->opts.readonly && rfs_reclaim_orphans(m, 1))
		rfs_log(RFS_LOG_ERR, "could not free every orphaned inode");
	if (!m->opts.readonly && rfs_free_staging(m))
		rfs_log(RFS_LOG_ERR, "could not free the CoW staging left by a crash");
	ret = serve(m, argv0, pass);
	if (fs_close(m->fs)) {
		rfs_log(RFS_LOG_ERR, "%s: final sync failed: run fsck.reflinkfs", m->opts.image);
		ret = 1;
	} else if (!ret) {
		rfs_log(RFS_LOG_INFO, "%s unmounted, clean", m->opts.image);
	}
	itab_destroy(m);
	pthread_mutex_destroy(&m->lock);
	return ret;
}

int main(int argc, char **argv)
{
	struct rfs_mount m;
	char pass[1024] = "";
	int ret;

	memset(&m, 0, sizeof(m));
	ret = parse_args(argc, argv, &m.opts, pass, sizeof(pass));
	if (ret < 0)
		ret = run(&m, argv[0], pass);
	free(m.opts.writelog);
	return ret;
}
