/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * rfs_difftest - differential namespace and attribute exerciser: the same
 * random system calls, as root and as two unprivileged users, on a
 * reference directory (a kernel filesystem such as ext4) and on a
 * reflinkfs mount; every result and the whole resulting tree must agree.
 *
 *   rfs_difftest [-S seed] [-N ops] [-v] REFDIR TESTDIR   run ops
 *   rfs_difftest -c REFDIR TESTDIR                         compare only
 *
 * The calls are those conformance suites (pjdfstest, xfstests' generic
 * group) probe: open with its flags, mkdir, rmdir, unlink, link, symlink,
 * rename and renameat2 flags, chmod, chown, truncate, utimensat, mknod,
 * user xattrs, POSIX ACLs, access, readlink, writes (which must clear
 * suid/sgid) and fallocate. The names come from a small set (a, b, c, d
 * up to three levels deep, plus names of 255 and 256 bytes, "." and
 * ".."), so calls collide with each other often.
 *
 * After every call both trees are walked: names, type, mode, nlink, uid,
 * gid, size (not of directories), rdev, contents of regular files, symlink
 * targets and user xattrs must be equal; and every object whose ctime or
 * mtime the reference changed must have changed in the test tree too, and
 * the other way round (the walk sleeps a clock tick first so that ext4's
 * coarse clock moves). Exit 0 when all agree, 1 on the first difference
 * (with the last calls), 2 on a usage error. Must run as root; the mount
 * needs allow_other so that the other users reach it.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "rng.h"

#define MAX_OBJS  512
#define MAX_DEPTH 4
#define HISTORY	  24
#define FILE_MAX  70000

struct obj {
	char path[PATH_MAX];
	struct stat st;
	uint32_t data_crc; /* contents of a file, target of a symlink */
	uint32_t xattr_crc;
};

struct tree {
	struct obj objs[MAX_OBJS];
	int n;
};

static uint64_t rng_state;
static int verbose;
static char history[HISTORY][512];
static unsigned nhistory;

static unsigned rnd(unsigned n)
{
	return n ? (unsigned)(rng_splitmix(&rng_state) % n) : 0;
}

static void note(const char *fmt, ...)
{
	va_list ap;
	char *line = history[nhistory++ % HISTORY];

	va_start(ap, fmt);
	vsnprintf(line, sizeof(history[0]), fmt, ap);
	va_end(ap);
	if (verbose)
		printf("%s\n", line);
}

static void dump_history(void)
{
	unsigned first = nhistory > HISTORY ? nhistory - HISTORY : 0;

	fprintf(stderr, "last calls:\n");
	for (unsigned i = first; i < nhistory; i++)
		fprintf(stderr, "  %s\n", history[i % HISTORY]);
}

/* ---- identities ---------------------------------------------------- */

struct ident {
	uid_t uid;
	gid_t gid;
	int ngroups;
	gid_t groups[2];
};

static const struct ident idents[] = {
	{0, 0, 0, {0}},
	{1000, 1000, 1, {1000}},
	{1001, 1001, 2, {1001, 1000}},
};

static void become(const struct ident *id)
{
	if (setgroups(id->ngroups, id->groups) || setegid(id->gid) || seteuid(id->uid)) {
		perror("become");
		exit(2);
	}
}

static void become_root(void)
{
	if (seteuid(0) || setegid(0) || setgroups(0, NULL)) {
		perror("become_root");
		exit(2);
	}
}

/* ---- random arguments ---------------------------------------------- */

static const char *const names[] = {"a", "b", "c", "d"};

static void rand_name(char *out, size_t size)
{
	unsigned r = rnd(100);

	if (r < 2) {
		memset(out, 'L', 255);
		out[255] = '\0';
	} else if (r < 3) {
		memset(out, 'M', 256);
		out[256] = '\0';
	} else if (r < 4) {
		snprintf(out, size, ".");
	} else if (r < 5) {
		snprintf(out, size, "..");
	} else {
		snprintf(out, size, "%s", names[rnd(4)]);
	}
}

/* A relative path of one to three names (deeper ones rarer). */
static void rand_path(char *out, size_t size)
{
	unsigned depth = 1 + (rnd(10) >= 4) + (rnd(10) >= 7);
	size_t len = 0;
	char name[300];

	out[0] = '\0';
	for (unsigned i = 0; i < depth; i++) {
		if (i + 1 < depth)
			snprintf(name, sizeof(name), "%s", names[rnd(4)]);
		else
			rand_name(name, sizeof(name));
		len += snprintf(out + len, size - len, "%s%s", i ? "/" : "", name);
	}
}

/*
 * The reference tree as the last walk saw it: half the paths name
 * something that exists, a fifth a new name in an existing directory.
 */
static const struct tree *known;

static void rand_live_path(char *out, size_t size, int create)
{
	unsigned r = rnd(10);
	const char *base;
	char name[300];

	if (!known || known->n < 2 || r >= 8) {
		rand_path(out, size);
		return;
	}
	base = known->objs[1 + rnd((unsigned)known->n - 1)].path + 2; /* skip "./" */
	if (r < (create ? 2u : 6u)) {
		snprintf(out, size, "%s", base);
		return;
	}
	rand_name(name, sizeof(name));
	snprintf(out, size, "%s/%s", base, name);
}

/* Mostly an existing regular file, for the calls on file data. */
static void rand_file_path(char *out, size_t size)
{
	unsigned nfiles = 0, pick;

	for (int i = 1; known && i < known->n; i++)
		nfiles += S_ISREG(known->objs[i].st.st_mode);
	if (!nfiles || rnd(10) >= 7) {
		rand_live_path(out, size, 0);
		return;
	}
	pick = rnd(nfiles);
	for (int i = 1; i < known->n; i++)
		if (S_ISREG(known->objs[i].st.st_mode) && pick-- == 0) {
			snprintf(out, size, "%s", known->objs[i].path + 2);
			return;
		}
}

static mode_t rand_mode(void)
{
	static const mode_t common[] = {0755, 0644,  0700,  0777,  0600, 0555,
					0711, 01777, 02775, 04755, 0};
	unsigned r = rnd(3);

	if (r == 0)
		return rnd(010000);
	return common[rnd(sizeof(common) / sizeof(common[0]))];
}

static uid_t rand_owner(void)
{
	static const int ids[] = {-1, 0, 1000, 1001, 1002};

	return (uid_t)ids[rnd(5)];
}

/* ---- POSIX ACL xattr values (the kernel's posix_acl_xattr format) --- */

#define ACL_VERSION   2
#define ACL_USER_OBJ  0x01
#define ACL_USER      0x02
#define ACL_GROUP_OBJ 0x04
#define ACL_GROUP     0x08
#define ACL_MASK      0x10
#define ACL_OTHER     0x20

static size_t acl_put(unsigned char *p, unsigned tag, unsigned perm, uint32_t id)
{
	p[0] = tag & 0xff;
	p[1] = tag >> 8;
	p[2] = perm & 0xff;
	p[3] = perm >> 8;
	memcpy(p + 4, &id, 4);
	return 8;
}

/* A valid ACL (in order, mask when named entries exist), or rarely not. */
static size_t rand_acl(unsigned char *buf)
{
	size_t len = 4;
	int named = rnd(2);

	buf[0] = ACL_VERSION;
	buf[1] = buf[2] = buf[3] = 0;
	len += acl_put(buf + len, ACL_USER_OBJ, rnd(8), (uint32_t)-1);
	if (named)
		len += acl_put(buf + len, ACL_USER, rnd(8), 1000 + rnd(2));
	len += acl_put(buf + len, ACL_GROUP_OBJ, rnd(8), (uint32_t)-1);
	if (named)
		len += acl_put(buf + len, ACL_GROUP, rnd(8), 1000 + rnd(2));
	if (named || rnd(4) == 0)
		len += acl_put(buf + len, ACL_MASK, rnd(8), (uint32_t)-1);
	len += acl_put(buf + len, ACL_OTHER, rnd(8), (uint32_t)-1);
	if (rnd(20) == 0)
		len -= 8; /* no ACL_OTHER: invalid */
	return len;
}

/* ---- the calls ----------------------------------------------------- */

enum call {
	C_OPEN,
	C_MKDIR,
	C_RMDIR,
	C_UNLINK,
	C_LINK,
	C_SYMLINK,
	C_RENAME,
	C_CHMOD,
	C_CHOWN,
	C_TRUNCATE,
	C_UTIMENS,
	C_MKNOD,
	C_SETXATTR,
	C_REMOVEXATTR,
	C_SETACL,
	C_ACCESS,
	C_READLINK,
	C_WRITE,
	C_FALLOCATE,
	C_COPY,
	C_NCALLS
};

static const unsigned call_weights[C_NCALLS] = {
	[C_OPEN] = 14,	 [C_MKDIR] = 10,   [C_RMDIR] = 5,    [C_UNLINK] = 6,	  [C_LINK] = 6,
	[C_SYMLINK] = 5, [C_RENAME] = 12,  [C_CHMOD] = 8,    [C_CHOWN] = 6,	  [C_TRUNCATE] = 5,
	[C_UTIMENS] = 5, [C_MKNOD] = 3,	   [C_SETXATTR] = 4, [C_REMOVEXATTR] = 2, [C_SETACL] = 4,
	[C_ACCESS] = 4,	 [C_READLINK] = 2, [C_WRITE] = 8,    [C_FALLOCATE] = 3,	  [C_COPY] = 5,
};

/* Every random choice of one call, drawn once and applied to both trees. */
struct args {
	enum call call;
	const struct ident *id;
	mode_t umask;
	char p1[PATH_MAX], p2[PATH_MAX];
	int flags;
	mode_t mode;
	uid_t uid;
	gid_t gid;
	off_t off, len;
	struct timespec ts[2];
	unsigned char val[64];
	size_t vlen;
	char target[PATH_MAX];
};

static int ret_of(int r)
{
	return r < 0 ? -errno : r;
}

static void fill(char *buf, size_t len, unsigned seed)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = (char)('A' + (seed + i * 7) % 26);
}

/*
 * Opens for the calls: never blocks on a fifo (O_NONBLOCK), and does not
 * open device nodes, which a nodev mount refuses whatever the filesystem.
 */
static int open_obj(int dirfd, const char *path, int flags, mode_t mode)
{
	struct stat st;

	if (!fstatat(dirfd, path, &st, 0) && (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode))) {
		errno = ENODEV;
		return -1;
	}
	return openat(dirfd, path, flags | O_NONBLOCK, mode);
}

static int do_write(int dirfd, const struct args *a)
{
	char buf[8192];
	int fd = open_obj(dirfd, a->p1, a->flags, 0);
	ssize_t n;

	if (fd < 0)
		return -errno;
	fill(buf, (size_t)a->len, (unsigned)a->off);
	n = pwrite(fd, buf, (size_t)a->len, a->off);
	n = n < 0 ? -errno : n;
	close(fd);
	return (int)n;
}

static int do_open(int dirfd, const struct args *a)
{
	int fd = open_obj(dirfd, a->p1, a->flags, a->mode);

	if (fd < 0)
		return -errno;
	close(fd);
	return 0;
}

static int do_fallocate(int dirfd, const struct args *a)
{
	int fd = open_obj(dirfd, a->p1, O_WRONLY, 0);
	int r;

	if (fd < 0)
		return -errno;
	r = ret_of(fallocate(fd, a->flags, a->off, a->len));
	close(fd);
	return r;
}

/* copy_file_range from P1 at OFF to P2 at OFF2 (in TS[0].tv_sec). */
static int do_copy(int dirfd, const struct args *a)
{
	int in = open_obj(dirfd, a->p1, O_RDONLY, 0), out, r;
	loff_t off_in = a->off, off_out = a->ts[0].tv_sec;

	if (in < 0)
		return -errno;
	out = open_obj(dirfd, a->p2, a->flags, 0);
	if (out < 0) {
		r = -errno;
		close(in);
		return r;
	}
	r = (int)copy_file_range(in, &off_in, out, &off_out, (size_t)a->len, 0);
	r = r < 0 ? -errno : r;
	close(in);
	close(out);
	return r;
}

static int do_readlink(int dirfd, const struct args *a)
{
	char buf[PATH_MAX];
	ssize_t n = readlinkat(dirfd, a->p1, buf, sizeof(buf));

	if (n < 0)
		return -errno;
	return (int)(crc32(0, (const Bytef *)buf, (uInt)n) & 0x7fffffff);
}

static int run_call(int dirfd, const struct args *a)
{
	switch (a->call) {
	case C_OPEN:
		return do_open(dirfd, a);
	case C_MKDIR:
		return ret_of(mkdirat(dirfd, a->p1, a->mode));
	case C_RMDIR:
		return ret_of(unlinkat(dirfd, a->p1, AT_REMOVEDIR));
	case C_UNLINK:
		return ret_of(unlinkat(dirfd, a->p1, 0));
	case C_LINK:
		return ret_of(linkat(dirfd, a->p1, dirfd, a->p2, a->flags));
	case C_SYMLINK:
		return ret_of(symlinkat(a->target, dirfd, a->p1));
	case C_RENAME:
		return ret_of(renameat2(dirfd, a->p1, dirfd, a->p2, (unsigned)a->flags));
	case C_CHMOD:
		return ret_of(fchmodat(dirfd, a->p1, a->mode, 0));
	case C_CHOWN:
		return ret_of(fchownat(dirfd, a->p1, a->uid, a->gid, a->flags));
	case C_TRUNCATE: {
		int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY);
		char path[PATH_MAX + 32];
		int r;

		/* truncate(2) by path, relative to the tree */
		snprintf(path, sizeof(path), "/proc/self/fd/%d/%s", fd, a->p1);
		r = ret_of(truncate(path, a->off));
		close(fd);
		return r;
	}
	case C_UTIMENS:
		return ret_of(utimensat(dirfd, a->p1, a->ts, a->flags));
	case C_MKNOD:
		return ret_of(mknodat(dirfd, a->p1, a->mode, a->flags ? makedev(1, 3) : 0));
	case C_SETXATTR:
	case C_SETACL:
	case C_REMOVEXATTR:
	case C_ACCESS: {
		int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY);
		char path[PATH_MAX + 32];
		int r;

		snprintf(path, sizeof(path), "/proc/self/fd/%d/%s", fd, a->p1);
		if (a->call == C_ACCESS)
			r = ret_of(faccessat(AT_FDCWD, path, a->flags, AT_EACCESS));
		else if (a->call == C_REMOVEXATTR)
			r = ret_of(lremovexattr(path, a->target));
		else
			r = ret_of(lsetxattr(path, a->target, a->val, a->vlen, a->flags));
		close(fd);
		return r;
	}
	case C_READLINK:
		return do_readlink(dirfd, a);
	case C_WRITE:
		return do_write(dirfd, a);
	case C_FALLOCATE:
		return do_fallocate(dirfd, a);
	case C_COPY:
		return do_copy(dirfd, a);
	case C_NCALLS:
		break;
	}
	return -EINVAL;
}

static enum call rand_call(void)
{
	unsigned total = 0, r;

	for (int i = 0; i < C_NCALLS; i++)
		total += call_weights[i];
	r = rnd(total);
	for (int i = 0; i < C_NCALLS; i++) {
		if (r < call_weights[i])
			return (enum call)i;
		r -= call_weights[i];
	}
	return C_OPEN;
}

static void rand_times(struct timespec ts[2])
{
	for (int i = 0; i < 2; i++) {
		unsigned r = rnd(4);

		ts[i].tv_sec = 1000000000 + rnd(100000000);
		ts[i].tv_nsec = rnd(1000000000);
		if (r == 0)
			ts[i].tv_nsec = UTIME_NOW;
		else if (r == 1)
			ts[i].tv_nsec = UTIME_OMIT;
	}
}

static void rand_args(struct args *a)
{
	static const int open_extra[] = {O_CREAT,     O_EXCL,	  O_TRUNC,
					 O_DIRECTORY, O_NOFOLLOW, O_APPEND};
	static const int acc[] = {O_RDONLY, O_WRONLY, O_RDWR};
	static const int falloc_modes[] = {
		0,
		FALLOC_FL_KEEP_SIZE,
		FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		FALLOC_FL_ZERO_RANGE,
	};
	static const unsigned rename_flags[] = {
		0, 0, 0, RENAME_NOREPLACE, RENAME_EXCHANGE, RENAME_WHITEOUT};
	static const mode_t node_types[] = {S_IFIFO, S_IFCHR, S_IFREG, S_IFSOCK};
	static const mode_t umasks[] = {0, 022, 077, 002};

	memset(a, 0, sizeof(*a));
	a->call = rand_call();
	a->id = &idents[rnd(4) < 2 ? 0 : 1 + rnd(2)];
	a->umask = umasks[rnd(4)];
	rand_live_path(a->p1, sizeof(a->p1),
		       a->call == C_MKDIR || a->call == C_SYMLINK || a->call == C_MKNOD ||
			       a->call == C_OPEN);
	rand_live_path(a->p2, sizeof(a->p2), 1);
	if (a->call == C_WRITE || a->call == C_FALLOCATE || a->call == C_TRUNCATE ||
	    a->call == C_COPY)
		rand_file_path(a->p1, sizeof(a->p1));
	if (a->call == C_COPY)
		rand_file_path(a->p2, sizeof(a->p2));
	a->mode = rand_mode();
	if (a->call == C_MKDIR && rnd(2)) /* directories others may use */
		a->mode = (mode_t[]){0777, 01777, 02777, 03777}[rnd(4)];
	switch (a->call) {
	case C_OPEN:
		a->flags = acc[rnd(3)];
		for (unsigned i = 0; i < sizeof(open_extra) / sizeof(open_extra[0]); i++)
			if (rnd(i == 0 ? 2 : 5) == 0)
				a->flags |= open_extra[i];
		break;
	case C_LINK:
		a->flags = rnd(4) == 0 ? AT_SYMLINK_FOLLOW : 0;
		break;
	case C_SYMLINK:
		if (rnd(30) == 0) {
			memset(a->target, 't', PATH_MAX);
			a->target[PATH_MAX - 1] = '\0'; /* 4095 bytes: the most */
		} else {
			rand_path(a->target, sizeof(a->target));
		}
		break;
	case C_RENAME:
		a->flags = (int)rename_flags[rnd(6)];
		break;
	case C_CHOWN:
		a->uid = rand_owner();
		a->gid = rand_owner();
		a->flags = rnd(2) ? AT_SYMLINK_NOFOLLOW : 0;
		break;
	case C_TRUNCATE:
		a->off = rnd(3) ? rnd(FILE_MAX) : 0;
		break;
	case C_UTIMENS:
		rand_times(a->ts);
		if (rnd(5) == 0)
			a->flags = AT_SYMLINK_NOFOLLOW;
		break;
	case C_MKNOD:
		a->mode = (a->mode & 07777) | node_types[rnd(4)];
		a->flags = S_ISCHR(a->mode);
		break;
	case C_SETXATTR:
		snprintf(a->target, sizeof(a->target), "user.%c", 'x' + rnd(3));
		a->vlen = rnd(40);
		fill((char *)a->val, a->vlen, rnd(100));
		a->flags = (int)rnd(3); /* 0, XATTR_CREATE, XATTR_REPLACE */
		break;
	case C_REMOVEXATTR:
		snprintf(a->target, sizeof(a->target), "user.%c", 'x' + rnd(3));
		break;
	case C_SETACL:
		snprintf(a->target, sizeof(a->target), "system.posix_acl_%s",
			 rnd(2) ? "access" : "default");
		a->vlen = rand_acl(a->val);
		break;
	case C_ACCESS:
		a->flags = (int)rnd(8);
		break;
	case C_WRITE:
		a->flags = rnd(2) ? O_WRONLY : O_RDWR;
		if (rnd(4) == 0)
			a->flags |= O_APPEND;
		a->off = rnd(FILE_MAX);
		a->len = 1 + rnd(8192);
		break;
	case C_COPY:
		/* whole blocks (shared by a clone) or any bytes (copied) */
		a->flags = rnd(8) ? O_WRONLY : rnd(2) ? O_RDONLY : O_WRONLY | O_APPEND;
		a->off = rnd(2) ? rnd(FILE_MAX / 4096) * 4096 : rnd(FILE_MAX);
		a->ts[0].tv_sec = rnd(2) ? rnd(FILE_MAX / 4096) * 4096 : rnd(FILE_MAX);
		a->len = rnd(2) ? (1 + rnd(8)) * 4096 : 1 + rnd(40000);
		if (rnd(4) == 0)
			memcpy(a->p2, a->p1, sizeof(a->p2)); /* the same file */
		break;
	case C_FALLOCATE:
		a->flags = falloc_modes[rnd(4)];
		a->off = rnd(FILE_MAX);
		a->len = 1 + rnd(20000);
		break;
	default:
		break;
	}
}

static const char *const call_names[C_NCALLS] = {
	"open",	  "mkdir",  "rmdir",	"unlink",    "link",	  "symlink",	     "rename",
	"chmod",  "chown",  "truncate", "utimensat", "mknod",	  "setxattr",	     "removexattr",
	"setacl", "access", "readlink", "write",     "fallocate", "copy_file_range",
};

static void describe(const struct args *a, char *out, size_t size)
{
	snprintf(out, size,
		 "%s uid %u umask %03o p1 %.40s p2 %.40s flags %#x mode %#o uid/gid %d/%d off %jd "
		 "len %jd %.40s",
		 call_names[a->call], a->id->uid, a->umask, a->p1, a->p2, a->flags, a->mode,
		 (int)a->uid, (int)a->gid, (intmax_t)a->off, (intmax_t)a->len, a->target);
}

/* ---- walking and comparing ----------------------------------------- */

static uint32_t crc_file(int dirfd, const char *path)
{
	char buf[16384];
	int fd = openat(dirfd, path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
	uint32_t crc = 0;
	ssize_t n;

	if (fd < 0)
		return 0xdeadbeef;
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		crc = (uint32_t)crc32(crc, (const Bytef *)buf, (uInt)n);
	close(fd);
	return n < 0 ? 0xbadbad : crc;
}

static uint32_t crc_xattrs(int dirfd, const char *path)
{
	char list[4096], val[4096], full[PATH_MAX + 32];
	uint32_t crc = 0;
	ssize_t n;

	snprintf(full, sizeof(full), "/proc/self/fd/%d/%s", dirfd, path);
	n = llistxattr(full, list, sizeof(list));
	if (n < 0)
		return 0xbadbad;
	/* the list's order is the filesystem's own: combine order-free */
	for (char *name = list; name < list + n; name += strlen(name) + 1) {
		ssize_t v;
		uint32_t one;

		if (strncmp(name, "user.", 5) && strncmp(name, "system.posix_acl", 16))
			continue;
		v = lgetxattr(full, name, val, sizeof(val));
		one = (uint32_t)crc32(0, (const Bytef *)name, (uInt)strlen(name));
		if (v > 0)
			one = (uint32_t)crc32(one, (const Bytef *)val, (uInt)v);
		crc ^= one * 2654435761u;
	}
	return crc;
}

static int cmp_name(const void *x, const void *y)
{
	return strcmp(*(char *const *)x, *(char *const *)y);
}

static void walk(int rootfd, const char *dir, int depth, struct tree *t)
{
	char *ents[64];
	int nents = 0;
	int fd = openat(rootfd, dir, O_RDONLY | O_DIRECTORY);
	DIR *d;
	struct dirent *de;

	if (fd < 0)
		return;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return;
	}
	while ((de = readdir(d)) && nents < 64) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		ents[nents++] = strdup(de->d_name);
	}
	closedir(d);
	qsort(ents, (size_t)nents, sizeof(ents[0]), cmp_name);
	for (int i = 0; i < nents; i++) {
		struct obj *o;

		if (t->n == MAX_OBJS)
			break;
		o = &t->objs[t->n++];
		snprintf(o->path, sizeof(o->path), "%s/%s", dir, ents[i]);
		if (fstatat(rootfd, o->path, &o->st, AT_SYMLINK_NOFOLLOW)) {
			memset(&o->st, 0, sizeof(o->st));
			continue;
		}
		o->data_crc = 0;
		if (S_ISREG(o->st.st_mode))
			o->data_crc = crc_file(rootfd, o->path);
		else if (S_ISLNK(o->st.st_mode)) {
			char buf[PATH_MAX];
			ssize_t n = readlinkat(rootfd, o->path, buf, sizeof(buf));

			o->data_crc =
				n < 0 ? 0xbadbad : (uint32_t)crc32(0, (const Bytef *)buf, (uInt)n);
		}
		o->xattr_crc = crc_xattrs(rootfd, o->path);
		if (S_ISDIR(o->st.st_mode) && depth < MAX_DEPTH)
			walk(rootfd, o->path, depth + 1, t);
	}
	for (int i = 0; i < nents; i++)
		free(ents[i]);
}

static void snapshot(int rootfd, struct tree *t)
{
	struct obj *o = &t->objs[0];

	t->n = 1;
	snprintf(o->path, sizeof(o->path), ".");
	fstatat(rootfd, ".", &o->st, 0);
	o->data_crc = 0;
	o->xattr_crc = crc_xattrs(rootfd, ".");
	walk(rootfd, ".", 1, t);
}

static int differ(const char *what, const struct obj *r, const struct obj *t, long long rv,
		  long long tv)
{
	fprintf(stderr, "DIFFERENCE: %s: %s is %lld in the reference, %lld here\n", r->path, what,
		rv, tv);
	(void)t;
	return 1;
}

static int ts_changed(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec != b->tv_sec || a->tv_nsec != b->tv_nsec;
}

/* Time stamps of the same object (by inode) in the previous snapshot. */
static const struct obj *find_ino(const struct tree *t, ino_t ino)
{
	for (int i = 0; i < t->n; i++)
		if (t->objs[i].st.st_ino == ino)
			return &t->objs[i];
	return NULL;
}

static int compare_obj(const struct obj *r, const struct obj *t)
{
	if (strcmp(r->path, t->path)) {
		fprintf(stderr, "DIFFERENCE: the reference has %s where this tree has %s\n",
			r->path, t->path);
		return 1;
	}
	if ((r->st.st_mode & S_IFMT) != (t->st.st_mode & S_IFMT))
		return differ("type", r, t, r->st.st_mode & S_IFMT, t->st.st_mode & S_IFMT);
	if ((r->st.st_mode & 07777) != (t->st.st_mode & 07777))
		return differ("mode (octal shown as decimal)", r, t, r->st.st_mode & 07777,
			      t->st.st_mode & 07777);
	if (r->st.st_nlink != t->st.st_nlink)
		return differ("nlink", r, t, (long long)r->st.st_nlink, (long long)t->st.st_nlink);
	if (r->st.st_uid != t->st.st_uid)
		return differ("uid", r, t, r->st.st_uid, t->st.st_uid);
	if (r->st.st_gid != t->st.st_gid)
		return differ("gid", r, t, r->st.st_gid, t->st.st_gid);
	if (!S_ISDIR(r->st.st_mode) && r->st.st_size != t->st.st_size)
		return differ("size", r, t, (long long)r->st.st_size, (long long)t->st.st_size);
	if (r->st.st_rdev != t->st.st_rdev)
		return differ("rdev", r, t, (long long)r->st.st_rdev, (long long)t->st.st_rdev);
	if (r->data_crc != t->data_crc)
		return differ("crc of the contents", r, t, r->data_crc, t->data_crc);
	if (r->xattr_crc != t->xattr_crc)
		return differ("crc of the xattrs", r, t, r->xattr_crc, t->xattr_crc);
	return 0;
}

/* Did the call change ctime/mtime of the same objects in both trees? */
/*
 * A call that failed must change nothing here; ext4 sometimes stamps a
 * directory anyway (a rename with RENAME_WHITEOUT that fails after it made
 * its whiteout), so then only a change the reference did not make counts.
 */
static int call_failed;

static int times_differ(int rc, int tc)
{
	return rc != tc && !(call_failed && rc && !tc);
}

static int compare_times(enum call call, const struct obj *r, const struct obj *t,
			 const struct tree *rprev, const struct tree *tprev)
{
	const struct obj *ro = find_ino(rprev, r->st.st_ino);
	const struct obj *to = find_ino(tprev, t->st.st_ino);
	int rc, tc;

	if (!ro || !to)
		return 0; /* new in this call (or in one tree only: caught above) */
	/*
	 * truncate(2) to the same size: ext4 stamps the times, XFS does not
	 * (POSIX asks only when the size changes). Either is Linux.
	 */
	if (call == C_TRUNCATE && S_ISREG(r->st.st_mode) && ro->st.st_size == r->st.st_size)
		return 0;
	rc = ts_changed(&ro->st.st_ctim, &r->st.st_ctim);
	tc = ts_changed(&to->st.st_ctim, &t->st.st_ctim);
	if (times_differ(rc, tc))
		return differ("ctime changed by the call", r, t, rc, tc);
	rc = ts_changed(&ro->st.st_mtim, &r->st.st_mtim);
	tc = ts_changed(&to->st.st_mtim, &t->st.st_mtim);
	if (times_differ(rc, tc))
		return differ("mtime changed by the call", r, t, rc, tc);
	return 0;
}

static int compare_trees(enum call call, const struct tree *r, const struct tree *t,
			 const struct tree *rprev, const struct tree *tprev)
{
	int n = r->n < t->n ? r->n : t->n;

	for (int i = 0; i < n; i++) {
		if (compare_obj(&r->objs[i], &t->objs[i]))
			return 1;
		if (rprev && compare_times(call, &r->objs[i], &t->objs[i], rprev, tprev))
			return 1;
	}
	if (r->n != t->n) {
		const struct obj *extra = r->n > t->n ? &r->objs[n] : &t->objs[n];

		fprintf(stderr, "DIFFERENCE: %s exists only in the %s tree\n", extra->path,
			r->n > t->n ? "reference" : "test");
		return 1;
	}
	return 0;
}

/* ---- main ---------------------------------------------------------- */

static struct tree trees[4];
static unsigned long calls_made[C_NCALLS], calls_ok[C_NCALLS], tolerated;

static void print_counts(void)
{
	printf("calls (succeeded/made):");
	for (int i = 0; i < C_NCALLS; i++)
		printf(" %s %lu/%lu", call_names[i], calls_ok[i], calls_made[i]);
	printf("\ndifferences of the kernel's FUSE module tolerated: %lu\n", tolerated);
} /* ref, test, previous ref, previous test */

static void usage(void)
{
	fprintf(stderr, "usage: rfs_difftest [-S seed] [-N ops] [-v] REFDIR TESTDIR\n"
			"       rfs_difftest -c REFDIR TESTDIR\n");
	exit(2);
}

static int open_root(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY);

	if (fd < 0) {
		perror(path);
		exit(2);
	}
	return fd;
}

/* Sleeps past one tick of the kernel's coarse clock, which ext4 stamps
 * times with (4 ms at HZ=250, 10 ms at HZ=100), and a millisecond more. */
static void tick(void)
{
	static struct timespec ts;

	if (!ts.tv_nsec && !ts.tv_sec) {
		if (clock_getres(CLOCK_REALTIME_COARSE, &ts) || ts.tv_sec)
			ts = (struct timespec){0, 10 * 1000 * 1000};
		ts.tv_nsec += 1000 * 1000;
	}
	nanosleep(&ts, NULL);
}

/*
 * Differences that the kernel's FUSE module makes, whatever the daemon
 * answers. chown(-1, -1) by someone who does not own a set-group-ID file
 * without group exec and is not in its group: the VFS would drop the bit
 * (setattr_should_drop_sgid) and so checks ownership (EPERM on ext4), but
 * fuse_setattr keeps the older rule, keeps the bit and sends only a ctime.
 */
static int fuse_kernel_difference(const struct args *a, int rr, int tr)
{
	return a->call == C_CHOWN && a->uid == (uid_t)-1 && a->gid == (gid_t)-1 &&
	       a->id->uid != 0 && rr == -EPERM && tr == 0;
}

static int run(int reffd, int testfd, unsigned long ops)
{
	struct tree *ref = &trees[0], *test = &trees[1], *rprev = &trees[2], *tprev = &trees[3];
	struct args a;
	char desc[512];

	snapshot(reffd, rprev);
	snapshot(testfd, tprev);
	for (unsigned long i = 0; i < ops; i++) {
		int rr, tr;

		known = rprev;
		rand_args(&a);
		describe(&a, desc, sizeof(desc));
		tick();
		umask(a.umask);
		become(a.id);
		rr = run_call(reffd, &a);
		tr = run_call(testfd, &a);
		become_root();
		note("%lu: %s -> %d / %d", i, desc, rr, tr);
		if (fuse_kernel_difference(&a, rr, tr)) {
			tolerated++;
			snapshot(reffd, rprev); /* this call's times are not compared */
			snapshot(testfd, tprev);
			continue;
		}
		calls_made[a.call]++;
		calls_ok[a.call] += rr >= 0;
		call_failed = rr < 0;
		if (rr != tr) {
			fprintf(stderr,
				"DIFFERENCE: call %lu returned %d (%s) in the reference, %d (%s) "
				"here\n",
				i, rr, rr < 0 ? strerror(-rr) : "ok", tr,
				tr < 0 ? strerror(-tr) : "ok");
			dump_history();
			return 1;
		}
		snapshot(reffd, ref);
		snapshot(testfd, test);
		if (compare_trees(a.call, ref, test, rprev, tprev)) {
			dump_history();
			return 1;
		}
		struct tree *swap = rprev;
		rprev = ref;
		ref = swap;
		swap = tprev;
		tprev = test;
		test = swap;
	}
	return 0;
}

int main(int argc, char **argv)
{
	unsigned long ops = 2000, seed = 1;
	int compare_only = 0, opt, reffd, testfd, rc;

	while ((opt = getopt(argc, argv, "S:N:vc")) != -1) {
		switch (opt) {
		case 'S':
			seed = strtoul(optarg, NULL, 0);
			break;
		case 'N':
			ops = strtoul(optarg, NULL, 0);
			break;
		case 'v':
			verbose = 1;
			break;
		case 'c':
			compare_only = 1;
			break;
		default:
			usage();
		}
	}
	if (argc - optind != 2)
		usage();
	if (geteuid() != 0) {
		fprintf(stderr, "rfs_difftest: must run as root (it switches users)\n");
		return 2;
	}
	rng_state = seed;
	reffd = open_root(argv[optind]);
	testfd = open_root(argv[optind + 1]);
	if (compare_only) {
		snapshot(reffd, &trees[0]);
		snapshot(testfd, &trees[1]);
		rc = compare_trees(C_NCALLS, &trees[0], &trees[1], NULL, NULL);
	} else {
		/* both roots start alike: world-writable, owned by root */
		if (fchmod(reffd, 0777) || fchmod(testfd, 0777) || fchown(reffd, 0, 0) ||
		    fchown(testfd, 0, 0)) {
			perror("rfs_difftest: preparing the roots");
			return 2;
		}
		rc = run(reffd, testfd, ops);
		print_counts();
	}
	if (rc == 0)
		printf("rfs_difftest: %s: the trees agree\n",
		       compare_only ? "compare" : "all calls");
	return rc ? 1 : 0;
}
