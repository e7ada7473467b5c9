/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * ops_xattr.c - extended attributes: user., trusted. and security.
 * namespaces (the kernel checks who may use which before asking us).
 * system.* (POSIX ACLs) is refused with EOPNOTSUPP until ACLs are
 * implemented, so that tools fall back as on a filesystem mounted noacl.
 *
 * The kernel asks for security.capability before every write (libfuse
 * 3.14 cannot negotiate HANDLE_KILLPRIV_V2); the inode table remembers
 * whether an inode has any attribute at all so that the common answer,
 * ENODATA, costs no tree lookup.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>

#include "ops_common.h"
#include "util.h"
#include "xattr.h"

static int namespace_ok(const char *name)
{
	return !strncmp(name, "user.", 5) || !strncmp(name, "trusted.", 8) ||
	       !strncmp(name, "security.", 9);
}

/* 0: none, 1: some, -1: unknown (look it up). */
static int known_xattrs(struct rfs_mount *m, fuse_ino_t ino)
{
	struct itab_entry *e = itab_get(m, ino);
	return e ? e->xattrs : -1;
}

static void note_xattrs(struct rfs_mount *m, fuse_ino_t ino, int any)
{
	struct itab_entry *e = itab_get(m, ino);

	if (e)
		e->xattrs = any;
}

static int has_any_locked(struct rfs_mount *m, fuse_ino_t ino)
{
	size_t len = 0;
	int ret = xattr_list(m->fs, ino, NULL, 0, &len);

	return ret ? ret : len > 0;
}

static void rfs_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	struct rfs_mount *m = req_mount(req);
	char *buf = NULL;
	size_t len = 0;
	int ret;

	if (!namespace_ok(name))
		return (void)fuse_reply_err(req, strncmp(name, "system.", 7) ? ENOTSUP : ENODATA);
	if (known_xattrs(m, ino) == 0)
		return (void)fuse_reply_err(req, ENODATA);
	if (size && !(buf = malloc(size)))
		return (void)fuse_reply_err(req, ENOMEM);
	pthread_mutex_lock(&m->lock);
	ret = xattr_get(m->fs, ino, name, buf, size, &len);
	if (ret == -ENODATA && known_xattrs(m, ino) < 0)
		note_xattrs(m, ino, has_any_locked(m, ino) == 1);
	pthread_mutex_unlock(&m->lock);
	if (ret)
		reply_error(req, m, ret, "getxattr", ino);
	else if (size == 0)
		fuse_reply_xattr(req, len);
	else
		fuse_reply_buf(req, buf, len);
	free(buf);
}

static int setxattr_locked(struct rfs_mount *m, fuse_ino_t ino, const char *name, const char *value,
			   size_t size, int flags)
{
	struct rfs_inode inode;
	int xflags = (flags & XATTR_CREATE ? RFS_XATTR_CREATE : 0) |
		     (flags & XATTR_REPLACE ? RFS_XATTR_REPLACE : 0);
	int ret = read_inode_locked(m, ino, &inode);

	if (!ret)
		ret = value ? xattr_set(m->fs, ino, name, value, size, xflags)
			    : xattr_remove(m->fs, ino, name);
	if (ret)
		return ret;
	inode_touch(&inode, 0);
	note_xattrs(m, ino, value ? 1 : -1);
	return inode_write(m->fs, &inode);
}

static void change_xattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
			 size_t size, int flags)
{
	struct rfs_mount *m = req_mount(req);
	struct rfs_handle *h;
	size_t old = 0;
	int ret;

	if (!namespace_ok(name))
		return (void)fuse_reply_err(req, ENOTSUP);
	if (flags & ~(XATTR_CREATE | XATTR_REPLACE))
		return (void)fuse_reply_err(req, EINVAL);
	/* Replacing or removing a value also frees the old one's records. */
	pthread_mutex_lock(&m->lock);
	xattr_get(m->fs, ino, name, NULL, 0, &old);
	pthread_mutex_unlock(&m->lock);
	ret = op_begin(m, xattr_credits(m->fs, RFS_MAX(size, old)) + RFS_META_CREDITS, &h);
	if (!ret)
		ret = op_end(m, h, setxattr_locked(m, ino, name, value, size, flags));
	reply_error(req, m, ret, value ? "setxattr" : "removexattr", ino);
}

static void rfs_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
			 size_t size, int flags)
{
	change_xattr(req, ino, name, value ? value : "", size, flags);
}

static void rfs_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	change_xattr(req, ino, name, NULL, 0, 0);
}

static void rfs_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	struct rfs_mount *m = req_mount(req);
	char *buf = NULL;
	size_t len = 0;
	int ret;

	if (size && !(buf = malloc(size)))
		return (void)fuse_reply_err(req, ENOMEM);
	pthread_mutex_lock(&m->lock);
	ret = xattr_list(m->fs, ino, buf, size, &len);
	pthread_mutex_unlock(&m->lock);
	if (ret)
		reply_error(req, m, ret, "listxattr", ino);
	else if (size == 0)
		fuse_reply_xattr(req, len);
	else
		fuse_reply_buf(req, buf, len);
	free(buf);
}

void rfs_ops_xattr(struct fuse_lowlevel_ops *ops)
{
	ops->getxattr = rfs_getxattr;
	ops->setxattr = rfs_setxattr;
	ops->listxattr = rfs_listxattr;
	ops->removexattr = rfs_removexattr;
}
