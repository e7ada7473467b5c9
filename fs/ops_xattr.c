/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * ops_xattr.c - extended attributes: user., trusted. and security.
 * namespaces (the kernel checks who may use which before asking us), and
 * POSIX ACLs under their system.* names. Other system.* names get
 * EOPNOTSUPP, as do ACLs if the kernel cannot enforce them.
 *
 * The kernel asks for security.capability before every write (libfuse
 * 3.14 cannot negotiate HANDLE_KILLPRIV_V2), and for an inode's ACL when
 * someone other than its owner needs permission; the inode table remembers
 * whether an inode has any attribute at all so that the common answer,
 * ENODATA, costs no tree lookup.
 *
 * POSIX ACLs. With FUSE_CAP_POSIX_ACL the kernel reads ACLs through
 * GETXATTR, caches them and checks permissions against them itself. Before
 * SETXATTR or REMOVEXATTR of an ACL reaches us it has checked that the
 * caller owns the inode, that the ACL is valid, and that a default ACL is
 * set only on a directory (fs/posix_acl.c, set_posix_acl); it re-encodes
 * the ACL, so we get the format below. The rest of what ext4 does is ours
 * (fs/fuse/acl.c: "Fuse userspace is responsible for updating access
 * permissions in the inode"):
 *  - setting an access ACL sets the mode's permission bits from it, and
 *    stores no ACL if the mode says it all (posix_acl_update_mode);
 *    removing one leaves the mode as it is;
 *  - chmod: the kernel does not rewrite the ACL for FUSE (fuse_setattr
 *    only forgets its cached copy). The mode is authoritative for the
 *    ACL's owner, group-class (the mask, or the owning group without one)
 *    and other entries: we stamp them from the mode whenever we hand an
 *    access ACL out, which gives what posix_acl_chmod would have written,
 *    without a second write on chmod (setattr never looks at ACLs);
 *  - a new inode inherits its parent's default ACL (posix_acl_create) in
 *    the transaction that creates it (ops_dir.c); without one the umask
 *    applies, which we ask the kernel to leave to us (DONT_MASK: it would
 *    otherwise mask the mode before a default ACL could replace the umask).
 *
 * Format (what the kernel hands over and takes back, stored as is): a
 * struct posix_acl_xattr_header (le32 version 2), then 8-byte entries
 * struct posix_acl_xattr_entry (le16 tag, le16 perm, le32 id).
 */
#include <errno.h>
#include <linux/posix_acl.h>
#include <linux/posix_acl_xattr.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>

#include "ops_common.h"
#include "util.h"
#include "xattr.h"

#define ACL_ACCESS  "system.posix_acl_access"
#define ACL_DEFAULT "system.posix_acl_default"
#define ACL_HDR	    sizeof(struct posix_acl_xattr_header)
#define ACL_ENT	    sizeof(struct posix_acl_xattr_entry)
#define ACL_RWX	    (ACL_READ | ACL_WRITE | ACL_EXECUTE)

/* Negotiated at init, before any other request; one mount per process. */
static int acl_on;

/* ACL_TYPE_ACCESS or ACL_TYPE_DEFAULT for an ACL's name (ACLs on), else 0. */
static int acl_type(const char *name)
{
	if (!acl_on)
		return 0;
	if (!strcmp(name, ACL_ACCESS))
		return ACL_TYPE_ACCESS;
	return strcmp(name, ACL_DEFAULT) ? 0 : ACL_TYPE_DEFAULT;
}

static int namespace_ok(const char *name)
{
	return !strncmp(name, "user.", 5) || !strncmp(name, "trusted.", 8) ||
	       !strncmp(name, "security.", 9) || acl_type(name);
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

/* --- ACLs in the kernel's format ------------------------------------------ */

struct acl_e {
	uint16_t tag, perm;
	uint32_t id;
};

/* Entry I; byte by byte, as a value from a request may be unaligned. */
static struct acl_e acl_get(const void *acl, size_t i)
{
	struct posix_acl_xattr_entry x;

	memcpy(&x, (const uint8_t *)acl + ACL_HDR + i * ACL_ENT, ACL_ENT);
	return (struct acl_e){le16toh(x.e_tag), le16toh(x.e_perm), le32toh(x.e_id)};
}

static void acl_set_perm(void *acl, size_t i, uint16_t perm)
{
	uint16_t le = htole16(perm);

	memcpy((uint8_t *)acl + ACL_HDR + i * ACL_ENT +
		       offsetof(struct posix_acl_xattr_entry, e_perm),
	       &le, sizeof(le));
}

/* The order check of posix_acl_valid, one entry at a time: the state after
 * E (the section that may come next; 0 after others), or -1. */
static int acl_step(int state, const struct acl_e *e, int *needs_mask)
{
	switch (e->tag) {
	case ACL_USER_OBJ:
		return state == ACL_USER_OBJ ? ACL_USER : -1;
	case ACL_USER:
	case ACL_GROUP: /* inside their own section, with a real id */
		*needs_mask = 1;
		return state == e->tag && e->id != (uint32_t)ACL_UNDEFINED_ID ? state : -1;
	case ACL_GROUP_OBJ:
		return state == ACL_USER ? ACL_GROUP : -1;
	case ACL_MASK:
		return state == ACL_GROUP ? ACL_OTHER : -1;
	case ACL_OTHER:
		return state == ACL_OTHER || (state == ACL_GROUP && !*needs_mask) ? 0 : -1;
	}
	return -1;
}

/*
 * The number of entries of VALUE (SIZE bytes) if it is an ACL in the
 * kernel's format that posix_acl_valid accepts, else -EINVAL: the owner,
 * named users, the owning group, named groups, the mask (required with
 * named entries), others, in this order; permissions within rwx. An empty
 * ACL (0 entries, which the kernel treats as a removal) is 0.
 */
static int acl_check(const void *value, size_t size)
{
	struct posix_acl_xattr_header h;
	int state = ACL_USER_OBJ, needs_mask = 0;
	size_t i, n;

	if (size < ACL_HDR || size > RFS_XATTR_SIZE_MAX || (size - ACL_HDR) % ACL_ENT)
		return -EINVAL;
	memcpy(&h, value, ACL_HDR);
	if (le32toh(h.a_version) != POSIX_ACL_XATTR_VERSION)
		return -EINVAL;
	n = (size - ACL_HDR) / ACL_ENT;
	for (i = 0; i < n && state >= 0; i++) {
		struct acl_e e = acl_get(value, i);
		state = e.perm & ~ACL_RWX ? -1 : acl_step(state, &e, &needs_mask);
	}
	return n == 0 ? 0 : state == 0 ? (int)n : -EINVAL;
}

/* The permission bits ACL (N valid entries) gives, and whether it says more
 * than a mode can: named entries or a mask (posix_acl_equiv_mode). */
static int acl_equiv_mode(const void *acl, size_t n, uint32_t *perms)
{
	uint32_t mode = 0;
	int not_equiv = 0;
	size_t i;

	for (i = 0; i < n; i++) {
		struct acl_e e = acl_get(acl, i);

		if (e.tag == ACL_USER_OBJ)
			mode |= (uint32_t)e.perm << 6;
		else if (e.tag == ACL_GROUP_OBJ)
			mode |= (uint32_t)e.perm << 3;
		else if (e.tag == ACL_OTHER)
			mode |= e.perm;
		else if (e.tag == ACL_MASK) /* comes after the owning group */
			mode = (mode & ~070u) | (uint32_t)e.perm << 3;
		not_equiv |= e.tag == ACL_MASK || e.tag == ACL_USER || e.tag == ACL_GROUP;
	}
	*perms = mode;
	return not_equiv;
}

/* Index of the entry that the mode's group bits stand for: the mask, or the
 * owning group if there is no mask. */
static size_t acl_group_class(const void *acl, size_t n)
{
	size_t i, group = 0;

	for (i = 0; i < n; i++) {
		uint16_t tag = acl_get(acl, i).tag;
		if (tag == ACL_MASK)
			return i;
		if (tag == ACL_GROUP_OBJ)
			group = i;
	}
	return group;
}

/* Stamps MODE's owner, group-class and other bits into ACL (N valid
 * entries): what posix_acl_chmod writes. */
static void acl_chmod(void *acl, size_t n, uint32_t mode)
{
	size_t i;

	for (i = 0; i < n; i++) {
		uint16_t tag = acl_get(acl, i).tag;
		if (tag == ACL_USER_OBJ)
			acl_set_perm(acl, i, (mode >> 6) & ACL_RWX);
		else if (tag == ACL_OTHER)
			acl_set_perm(acl, i, mode & ACL_RWX);
	}
	if (n)
		acl_set_perm(acl, acl_group_class(acl, n), (mode >> 3) & ACL_RWX);
}

/*
 * A new inode's access ACL from a copy of the parent's default ACL (N valid
 * entries) and the create mode, each masking the other as posix_acl_create
 * does: the owner, group-class and other entries lose what *MODE does not
 * grant, *MODE's bits lose what they do not. Named entries stay as they
 * are (the mask limits them). Returns whether the ACL says more than the
 * mode (else the inode needs none).
 */
static int acl_create_masq(void *acl, size_t n, uint32_t *mode)
{
	uint32_t m = *mode;
	size_t i, g = acl_group_class(acl, n);
	int not_equiv = 0;

	for (i = 0; i < n; i++) {
		struct acl_e e = acl_get(acl, i);
		int shift = e.tag == ACL_USER_OBJ ? 6 : i == g ? 3 : 0;
		uint16_t perm;

		not_equiv |= e.tag == ACL_MASK || e.tag == ACL_USER || e.tag == ACL_GROUP;
		if (e.tag != ACL_USER_OBJ && e.tag != ACL_OTHER && i != g)
			continue;
		perm = e.perm & ((m >> shift) & ACL_RWX);
		acl_set_perm(acl, i, perm);
		m = (m & ~((uint32_t)ACL_RWX << shift)) | (uint32_t)perm << shift;
	}
	*mode = m;
	return not_equiv;
}

/* --- get ------------------------------------------------------------------------- */

/* An access ACL as we hand it out: the mode's bits in its owner,
 * group-class and other entries (see the top of the file). */
static int acl_stamp_locked(struct rfs_mount *m, fuse_ino_t ino, void *acl, size_t len)
{
	struct rfs_inode inode;
	int n = acl_check(acl, len), ret;

	if (n < 0)
		return -EUCLEAN; /* we store only valid ACLs */
	ret = read_inode_locked(m, ino, &inode);
	if (!ret)
		acl_chmod(acl, (size_t)n, inode.mode);
	return ret;
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
	if (!ret && size && acl_type(name) == ACL_TYPE_ACCESS)
		ret = acl_stamp_locked(m, ino, buf, len);
	pthread_mutex_unlock(&m->lock);
	if (ret)
		reply_error(req, m, ret, "getxattr", ino);
	else if (size == 0)
		fuse_reply_xattr(req, len);
	else
		fuse_reply_buf(req, buf, len);
	free(buf);
}

/* --- set, remove ------------------------------------------------------------------- */

/* Journal credits of setting NAME of INO to SIZE bytes, or removing it:
 * replacing or removing a value also frees the old one's records. */
static uint32_t change_credits(struct rfs_mount *m, fuse_ino_t ino, const char *name, size_t size)
{
	size_t old = 0;

	pthread_mutex_lock(&m->lock);
	xattr_get(m->fs, ino, name, NULL, 0, &old);
	pthread_mutex_unlock(&m->lock);
	return xattr_credits(m->fs, RFS_MAX(size, old)) + RFS_META_CREDITS;
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

/* The caller's groups, supplementary ones included (malloc'ed; *N of
 * them). Falls back to the primary group alone if they cannot be had. */
static gid_t *caller_groups(fuse_req_t req, int *n)
{
	gid_t *groups = NULL;
	int cap = 32, got;

	for (;;) {
		gid_t *more = realloc(groups, (size_t)cap * sizeof(*groups));
		if (!more)
			break;
		groups = more;
		got = fuse_req_getgroups(req, cap, groups);
		if (got <= cap) {
			*n = got < 0 ? 0 : got;
			return groups;
		}
		cap = got;
	}
	free(groups);
	*n = 0;
	return NULL;
}

/* Whether GID is the caller's primary group or one of GROUPS[0..N). */
static int caller_in(fuse_req_t req, const gid_t *groups, int n, gid_t gid)
{
	int i;

	if (fuse_req_ctx(req)->gid == gid)
		return 1;
	for (i = 0; i < n; i++)
		if (groups[i] == gid)
			return 1;
	return 0;
}

/* Whether the caller is in group GID or root (taken for CAP_FSETID, which
 * FUSE does not tell us): in_group_or_capable, which decides whether
 * setting an access ACL keeps set-group-ID. The kernel's own verdict
 * (FUSE_SETXATTR_ACL_KILL_SGID) needs SETXATTR_EXT, which libfuse 3.14
 * cannot negotiate. */
int in_group_or_root(fuse_req_t req, gid_t gid)
{
	int n, found;
	gid_t *groups;

	if (fuse_req_ctx(req)->uid == 0 || fuse_req_ctx(req)->gid == gid)
		return 1;
	groups = caller_groups(req, &n);
	found = caller_in(req, groups, n, gid);
	free(groups);
	return found;
}

/*
 * posix_acl_permission for MAY_WRITE by someone other than the owner: a
 * named-user entry for the caller, else the group class (the owning group
 * and named groups the caller is in; one granting entry is enough, a
 * matching one that grants nothing denies), else others. The mode stands
 * for the owner, mask (or owning group without a mask) and other entries,
 * as for every ACL we hand out (acl_stamp_locked).
 */
static int acl_permits_write(fuse_req_t req, const struct rfs_inode *inode, const void *acl,
			     size_t n)
{
	uint32_t group_class = (inode->mode >> 3) & 7, mask = 7, uid = fuse_req_ctx(req)->uid;
	int ngroups, found = 0, granted = 0, has_mask = 0;
	gid_t *groups;
	size_t i;

	for (i = 0; i < n; i++)
		has_mask |= acl_get(acl, i).tag == ACL_MASK;
	if (has_mask)
		mask = group_class;
	for (i = 0; i < n; i++) {
		struct acl_e e = acl_get(acl, i);
		if (e.tag == ACL_USER && e.id == uid)
			return !!(e.perm & mask & ACL_WRITE);
	}
	groups = caller_groups(req, &ngroups);
	for (i = 0; i < n && !granted; i++) {
		struct acl_e e = acl_get(acl, i);
		uint32_t perm = has_mask ? e.perm : group_class; /* no mask: the mode's */

		if (e.tag == ACL_GROUP_OBJ && caller_in(req, groups, ngroups, inode->gid))
			found = 1, granted = !!(perm & ACL_WRITE);
		else if (e.tag == ACL_GROUP && caller_in(req, groups, ngroups, e.id))
			found = 1, granted = !!(e.perm & ACL_WRITE);
	}
	free(groups);
	if (found)
		return granted && (mask & ACL_WRITE);
	return !!(inode->mode & S_IWOTH);
}

/* Reads INODE's access ACL (malloc'ed into *ACL; 0 entries and NULL if it
 * has none or ACLs are off); the number of entries or an error. */
static int access_acl_read(struct rfs_mount *m, rfs_ino_t ino, void **acl)
{
	size_t len = 0;
	int ret;

	*acl = NULL;
	if (!acl_on)
		return 0;
	pthread_mutex_lock(&m->lock);
	ret = xattr_get(m->fs, ino, ACL_ACCESS, NULL, 0, &len);
	if (!ret && !(*acl = malloc(len)))
		ret = -ENOMEM;
	if (!ret)
		ret = xattr_get(m->fs, ino, ACL_ACCESS, *acl, len, &len);
	pthread_mutex_unlock(&m->lock);
	if (!ret)
		ret = acl_check(*acl, len);
	if (ret <= 0) {
		free(*acl);
		*acl = NULL;
	}
	return ret == -ENODATA ? 0 : ret;
}

int may_write_inode(fuse_req_t req, struct rfs_mount *m, const struct rfs_inode *inode)
{
	const struct fuse_ctx *c = fuse_req_ctx(req);
	void *acl;
	int n, ok;

	if (c->uid == 0)
		return 1;
	if (c->uid == inode->uid)
		return !!(inode->mode & S_IWUSR);
	n = access_acl_read(m, inode->ino, &acl);
	if (n < 0)
		return n;
	if (n > 0)
		ok = acl_permits_write(req, inode, acl, (size_t)n);
	else if (in_group_or_root(req, inode->gid))
		ok = !!(inode->mode & S_IWGRP);
	else
		ok = !!(inode->mode & S_IWOTH);
	free(acl);
	return ok;
}

/* Sets INODE's permission bits from the access ACL (N valid entries) and
 * clears set-group-ID as chmod would (posix_acl_update_mode). Returns
 * whether the ACL must be stored: it says more than the mode. */
static int acl_update_mode(fuse_req_t req, struct rfs_inode *inode, const void *acl, size_t n)
{
	uint32_t perms;
	int not_equiv = acl_equiv_mode(acl, n, &perms);

	inode->mode = (inode->mode & ~0777u) | perms;
	if ((inode->mode & S_ISGID) && !in_group_or_root(req, inode->gid))
		inode->mode &= ~(uint32_t)S_ISGID;
	return not_equiv;
}

/* Sets ACL NAME of INO to ACL (N valid entries), or removes it (ACL NULL).
 * Removing an ACL that is not there is no error, as on ext4 and XFS. */
static int set_acl_locked(fuse_req_t req, struct rfs_mount *m, fuse_ino_t ino, const char *name,
			  const void *acl, size_t n)
{
	struct rfs_inode inode;
	uint32_t mode;
	int ret = read_inode_locked(m, ino, &inode);

	if (ret)
		return ret;
	if (acl_type(name) == ACL_TYPE_DEFAULT && !S_ISDIR(inode.mode))
		return acl ? -EACCES : 0;
	mode = inode.mode;
	if (acl && acl_type(name) == ACL_TYPE_ACCESS && !acl_update_mode(req, &inode, acl, n))
		acl = NULL; /* the mode says it all */
	ret = acl ? xattr_set(m->fs, ino, name, acl, ACL_HDR + n * ACL_ENT, 0)
		  : xattr_remove(m->fs, ino, name);
	if (ret == -ENODATA && inode.mode == mode)
		return 0; /* nothing changed */
	if (ret && ret != -ENODATA)
		return ret;
	inode_touch(&inode, 0);
	note_xattrs(m, ino, acl ? 1 : -1);
	return inode_write(m->fs, &inode);
}

/* Sets or removes an ACL (VALUE NULL). An empty ACL removes it, as in the
 * kernel. */
static void change_acl(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
		       size_t size)
{
	struct rfs_mount *m = req_mount(req);
	struct rfs_handle *h;
	int n = value ? acl_check(value, size) : 0, ret;

	if (n < 0)
		return reply_error(req, m, n, "setxattr", ino);
	if (n == 0) {
		value = NULL;
		size = 0;
	}
	ret = op_begin(m, change_credits(m, ino, name, size), &h);
	if (!ret)
		ret = op_end(m, h, set_acl_locked(req, m, ino, name, value, (size_t)n));
	reply_error(req, m, ret, value ? "setxattr" : "removexattr", ino);
}

static void change_xattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
			 size_t size, int flags)
{
	struct rfs_mount *m = req_mount(req);
	struct rfs_handle *h;
	int ret;

	if (!namespace_ok(name))
		return (void)fuse_reply_err(req, ENOTSUP);
	if (flags & ~(XATTR_CREATE | XATTR_REPLACE))
		return (void)fuse_reply_err(req, EINVAL);
	if (acl_type(name))
		return change_acl(req, ino, name, value, size);
	ret = op_begin(m, change_credits(m, ino, name, size), &h);
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

/* --- inheritance: the ACLs of a new inode (ops_common.h) ------------------------------ */

void rfs_acl_init(struct fuse_conn_info *conn)
{
	const unsigned want = FUSE_CAP_POSIX_ACL | FUSE_CAP_DONT_MASK;

	acl_on = (conn->capable & want) == want;
	if (acl_on)
		conn->want |= want;
}

/* *LEN: the size of PARENT's default ACL, 0 if none. Remembers a parent
 * with no attribute at all, so that the next create in it looks nothing
 * up. */
static int default_acl_size_locked(struct rfs_mount *m, rfs_ino_t parent, size_t *len)
{
	int ret;

	*len = 0;
	if (!acl_on || known_xattrs(m, parent) == 0)
		return 0;
	ret = xattr_get(m->fs, parent, ACL_DEFAULT, NULL, 0, len);
	if (ret == -ENODATA && known_xattrs(m, parent) < 0)
		note_xattrs(m, parent, has_any_locked(m, parent) == 1);
	return ret == -ENODATA ? 0 : ret;
}

void acl_new_init(struct rfs_mount *m, rfs_ino_t parent, uint32_t mode, struct acl_new *a)
{
	memset(a, 0, sizeof(*a));
	if (!acl_on || S_ISLNK(mode) || known_xattrs(m, parent) == 0)
		return;
	pthread_mutex_lock(&m->lock);
	if (default_acl_size_locked(m, parent, &a->budget))
		a->budget = 0; /* acl_new_locked meets the error */
	pthread_mutex_unlock(&m->lock);
}

uint32_t acl_new_credits(const struct rfs_mount *m, const struct acl_new *a)
{
	/* the access ACL is no larger than the default one; a directory
	 * gets both */
	return a->budget ? 2 * xattr_credits(m->fs, a->budget) : 0;
}

/* A's ACLs from DEF, PARENT's default ACL (LEN bytes, taken over), and
 * the create *MODE. */
static int inherit(void *def, size_t len, uint32_t *mode, struct acl_new *a)
{
	void *acc = malloc(len);
	int n = acc ? acl_check(def, len) : -ENOMEM;

	if (n == 0)
		n = -EUCLEAN; /* we store only valid, non-empty ACLs */
	if (n > 0) {
		memcpy(acc, def, len);
		if (acl_create_masq(acc, (size_t)n, mode)) {
			a->access = acc;
			a->access_len = len;
			acc = NULL;
		}
		if (S_ISDIR(*mode)) {
			a->deflt = def;
			a->deflt_len = len;
			def = NULL;
		}
	}
	free(def);
	free(acc);
	return n < 0 ? n : 0;
}

/* One lookup of PARENT's default ACL into a buffer of A's budget: its
 * value in *DEF (malloc'ed) and size in *LEN (0: none); -EAGAIN with the
 * budget raised if it has grown past it. */
static int default_acl_read_locked(struct rfs_mount *m, rfs_ino_t parent, struct acl_new *a,
				   void **def, size_t *len)
{
	int ret;

	*def = NULL;
	*len = 0;
	if (!acl_on || known_xattrs(m, parent) == 0)
		return 0;
	if (a->budget && !(*def = malloc(a->budget)))
		return -ENOMEM;
	ret = xattr_get(m->fs, parent, ACL_DEFAULT, *def, a->budget, len);
	if (ret == -ENODATA) {
		*len = 0;
		ret = 0;
	}
	if (!ret && *len > a->budget)
		ret = -ERANGE; /* a->budget 0 asked the size only */
	if (ret == -ERANGE) {
		a->budget = *len;
		ret = -EAGAIN;
	}
	if (ret || *len == 0) {
		free(*def);
		*def = NULL;
	}
	return ret;
}

int acl_new_locked(fuse_req_t req, struct rfs_mount *m, rfs_ino_t parent, uint32_t *mode,
		   struct acl_new *a)
{
	size_t len;
	void *def;
	int ret;

	acl_new_done(a);
	if (S_ISLNK(*mode))
		return 0; /* 0777, and no ACL */
	ret = default_acl_read_locked(m, parent, a, &def, &len);
	if (ret)
		return ret;
	if (len == 0) {
		*mode &= ~(uint32_t)(fuse_req_ctx(req)->umask & 0777);
		return 0;
	}
	return inherit(def, len, mode, a);
}

int acl_new_store(struct rfs_mount *m, rfs_ino_t ino, const struct acl_new *a)
{
	int ret = 0;

	if (a->access)
		ret = xattr_set(m->fs, ino, ACL_ACCESS, a->access, a->access_len, RFS_XATTR_CREATE);
	if (!ret && a->deflt) {
		ret = xattr_set(m->fs, ino, ACL_DEFAULT, a->deflt, a->deflt_len, RFS_XATTR_CREATE);
		if (ret && a->access)
			xattr_remove(m->fs, ino, ACL_ACCESS);
	}
	return ret;
}

void acl_new_remove(struct rfs_mount *m, rfs_ino_t ino, const struct acl_new *a)
{
	if (a->access)
		xattr_remove(m->fs, ino, ACL_ACCESS);
	if (a->deflt)
		xattr_remove(m->fs, ino, ACL_DEFAULT);
}

void acl_new_done(struct acl_new *a)
{
	free(a->access);
	free(a->deflt);
	a->access = a->deflt = NULL;
	a->access_len = a->deflt_len = 0;
}

void rfs_ops_xattr(struct fuse_lowlevel_ops *ops)
{
	ops->getxattr = rfs_getxattr;
	ops->setxattr = rfs_setxattr;
	ops->listxattr = rfs_listxattr;
	ops->removexattr = rfs_removexattr;
}
