/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * ops_dir.c - namespace operations: lookup, forget, create nodes, unlink,
 * rmdir, link, rename, readdir.
 */
#include <dirent.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <string.h>

#include "bmap.h"
#include "dir.h"
#include "file.h"
#include "ops_common.h"
#include "util.h"

#define RFS_LINK_MAX 65000u

static uint8_t dtype(uint32_t mode)
{
	return (uint8_t)((mode & S_IFMT) >> 12);
}

static int check_name(const char *name)
{
	return dir_name_valid(name, strlen(name));
}

/* Reads PARENT and checks it is a directory. */
static int read_dir_locked(struct rfs_mount *m, rfs_ino_t ino, struct rfs_inode *dir)
{
	int ret = read_inode_locked(m, ino, dir);

	if (!ret && !S_ISDIR(dir->mode))
		ret = -ENOTDIR;
	return ret;
}

/* "No such name", cached by the kernel as a negative dentry: every name is
 * created through the kernel, which drops the negative entry when it does,
 * so the kernel can answer repeated misses (PATH searches, the lookup
 * before each create) itself. */
static void reply_negative_entry(fuse_req_t req, struct rfs_mount *m)
{
	struct fuse_entry_param e;

	memset(&e, 0, sizeof(e));
	e.entry_timeout = m->timeout;
	fuse_reply_entry(req, &e);
}

static void rfs_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct rfs_mount *m = req_mount(req);
	struct rfs_inode dir, inode;
	rfs_ino_t ino;
	uint8_t ftype;
	int ret = check_name(name);

	if (ret == -EINVAL && (!strcmp(name, ".") || !strcmp(name, "..")))
		ret = 0;
	if (ret)
		return reply_error(req, m, ret, "lookup", parent);
	pthread_mutex_lock(&m->lock);
	ret = read_dir_locked(m, parent, &dir);
	if (!ret && !strcmp(name, "."))
		ino = parent;
	else if (!ret && !strcmp(name, ".."))
		ino = dir.parent;
	else if (!ret)
		ret = dir_lookup(m->fs, parent, name, strlen(name), &ino, &ftype, NULL);
	if (!ret)
		ret = read_inode_locked(m, ino, &inode);
	pthread_mutex_unlock(&m->lock);
	if (ret == -ENOENT)
		return reply_negative_entry(req, m);
	if (ret)
		return reply_error(req, m, ret, "lookup", parent);
	reply_entry(req, m, &inode);
}

static void forget_one(struct rfs_mount *m, fuse_ino_t ino, uint64_t n)
{
	if (itab_forget(m, ino, n) == 2)
		free_orphan(m, ino);
}

static void rfs_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	forget_one(req_mount(req), ino, nlookup);
	fuse_reply_none(req);
}

static void rfs_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
	size_t i;

	for (i = 0; i < count; i++)
		forget_one(req_mount(req), forgets[i].ino, forgets[i].nlookup);
	fuse_reply_none(req);
}

/* --- making nodes -------------------------------------------------------- */

/* Ownership of a new inode: the caller's, but the group of a set-group-ID
 * directory, whose bit new directories inherit. */
static void init_owner(fuse_req_t req, const struct rfs_inode *dir, struct rfs_inode *inode)
{
	struct rfs_cred c;

	req_cred(req, &c);
	inode->uid = c.uid;
	inode->gid = c.gid;
	if (dir->mode & S_ISGID) {
		inode->gid = dir->gid;
		if (S_ISDIR(inode->mode))
			inode->mode |= S_ISGID;
	}
}

/* Stores a symlink target inline, or in data blocks if it is long. */
static int store_symlink(struct rfs_mount *m, struct rfs_inode *inode, const char *target)
{
	size_t len = strlen(target), bs = m->fs->sb.bsize, nblk = (len + bs - 1) / bs;
	struct rfs_seg segs[8];
	uint64_t planned = 0;
	unsigned n, i;
	uint8_t *buf;
	int ret;

	inode->size = len;
	if (len <= RFS_INLINE_MAX) {
		inode->inline_type = RFS_INLINE_SYMLINK;
		inode->inline_len = (uint16_t)len;
		memcpy(inode->inline_data, target, len);
		return 0;
	}
	/* all of it or nothing: a short plan would leave a cut target */
	if (m->fs->sb.free_blocks < file_data_reserve(m->fs) + nblk)
		return -ENOSPC;
	ret = file_plan_write(m->fs, inode, 0, nblk, segs, 8, &n);
	for (i = 0; !ret && i < n; i++)
		planned += segs[i].len;
	if (!ret && planned < nblk)
		ret = -ENOSPC;
	if (ret)
		return ret;
	buf = calloc(1, nblk * bs);
	if (!buf)
		return -ENOMEM;
	memcpy(buf, target, len);
	for (i = 0; i < n && !ret; i++)
		ret = dev_pwrite(m->fs->dev, buf + segs[i].off * bs, segs[i].len * bs,
				 segs[i].pblk << m->fs->sb.block_log);
	free(buf);
	return ret;
}

/* Inserts INODE, the ACLs it inherits, then its name: if the name cannot
 * be added (no block for a split), nothing is left behind, not even in the
 * committed transaction. */
static int insert_node(struct rfs_mount *m, fuse_ino_t parent, const char *name,
		       struct rfs_inode *inode, const struct acl_new *acl)
{
	int ret = inode_insert(m->fs, inode);

	if (ret)
		return ret;
	ret = acl_new_store(m, inode->ino, acl);
	if (!ret && (ret = dir_add(m->fs, parent, name, strlen(name), inode->ino,
				   dtype(inode->mode), NULL)))
		acl_new_remove(m, inode->ino, acl);
	if (ret)
		inode_delete(m->fs, inode->ino);
	return ret;
}

static int make_node_locked(fuse_req_t req, struct rfs_mount *m, fuse_ino_t parent,
			    const char *name, const struct node_args *a, struct acl_new *acl,
			    struct rfs_inode *inode)
{
	struct rfs_inode dir;
	uint32_t mode = a->mode;
	rfs_ino_t old;
	uint8_t ftype;
	int ret = read_dir_locked(m, parent, &dir);

	if (!ret)
		ret = dir_lookup(m->fs, parent, name, strlen(name), &old, &ftype, NULL);
	if (ret != -ENOENT)
		return ret ? ret : -EEXIST;
	if (S_ISDIR(a->mode) && dir.nlink >= RFS_LINK_MAX)
		return -EMLINK;
	ret = check_meta_space(m);
	if (!ret) /* the parent's default ACL, or the umask */
		ret = acl_new_locked(req, m, parent, &mode, acl);
	if (ret)
		return ret;
	inode_init_new(m->fs, inode, mode, 0, 0);
	init_owner(req, &dir, inode);
	inode->rdev = a->rdev;
	inode->parent = parent;
	if (S_ISDIR(a->mode)) {
		inode->nlink = 2;
		dir.nlink++;
	}
	ret = a->symlink ? store_symlink(m, inode, a->symlink) : 0;
	if (!ret)
		ret = insert_node(m, parent, name, inode, acl);
	if (ret && inode->nblocks) { /* a long symlink's blocks */
		fileoff_t next;
		file_free_range(m->fs, inode, 0, RFS_MAX_FILE_BLOCKS, &next);
	}
	if (ret)
		return ret;
	inode_touch(&dir, 1);
	return inode_write(m->fs, &dir);
}

/* Makes a node, in one transaction with the ACLs it inherits. A default ACL
 * that grew while the handle was taken (-EAGAIN) costs another try with
 * the credits it needs. */
int rfs_make_node(fuse_req_t req, fuse_ino_t parent, const char *name, const struct node_args *a,
		  struct rfs_inode *inode)
{
	struct rfs_mount *m = req_mount(req);
	struct rfs_handle *h;
	struct acl_new acl;
	int tries = 0, ret = check_name(name);

	if (!ret && a->symlink && strlen(a->symlink) >= 4096)
		ret = -ENAMETOOLONG;
	if (ret)
		return ret;
	acl_new_init(m, parent, a->mode, &acl);
	do {
		ret = op_begin(m, RFS_META_CREDITS + acl_new_credits(m, &acl), &h);
		if (ret)
			break;
		ret = make_node_locked(req, m, parent, name, a, &acl, inode);
		if (a->symlink && !ret && inode->inline_type != RFS_INLINE_SYMLINK)
			txn_set_ordered(h);
		ret = op_end(m, h, ret);
	} while (ret == -EAGAIN || (!tries++ && retry_after_commit(m, ret)));
	acl_new_done(&acl);
	return ret;
}

static void reply_new_node(fuse_req_t req, fuse_ino_t parent, const char *name,
			   const struct node_args *a, const char *op)
{
	struct rfs_inode inode;
	int ret = rfs_make_node(req, parent, name, a, &inode);

	if (ret)
		return reply_error(req, req_mount(req), ret, op, parent);
	reply_entry(req, req_mount(req), &inode);
}

static void rfs_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
	struct node_args a = {mode, rdev, NULL};

	if (!inode_mode_valid(mode) || S_ISDIR(mode) || S_ISLNK(mode))
		return (void)fuse_reply_err(req, EINVAL);
	reply_new_node(req, parent, name, &a, "mknod");
}

static void rfs_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	struct node_args a = {S_IFDIR | (mode & 07777), 0, NULL};

	reply_new_node(req, parent, name, &a, "mkdir");
}

static void rfs_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
	struct node_args a = {S_IFLNK | 0777, 0, link};

	reply_new_node(req, parent, name, &a, "symlink");
}

static void rfs_readlink(fuse_req_t req, fuse_ino_t ino)
{
	struct rfs_mount *m = req_mount(req);
	uint32_t log = m->fs->sb.block_log;
	struct rfs_inode inode;
	struct rfs_seg segs[8];
	char *buf = NULL;
	unsigned n = 0, i;
	int ret;

	pthread_mutex_lock(&m->lock);
	ret = read_inode_locked(m, ino, &inode);
	if (!ret && !S_ISLNK(inode.mode))
		ret = -EINVAL;
	if (!ret && (inode.size >= 4096 ||
		     (inode.inline_type == RFS_INLINE_SYMLINK && inode.inline_len != inode.size)))
		ret = -EUCLEAN;
	/* a long target may lie in several extents */
	if (!ret && inode.inline_type != RFS_INLINE_SYMLINK)
		ret = file_plan_read(m->fs, ino, 0, (inode.size + m->fs->sb.bsize - 1) >> log, segs,
				     8, &n);
	pthread_mutex_unlock(&m->lock);
	if (!ret)
		buf = calloc(1, ((inode.size >> log) + 1) << log);
	if (!ret && !buf)
		ret = -ENOMEM;
	if (!ret && inode.inline_type == RFS_INLINE_SYMLINK)
		memcpy(buf, inode.inline_data, inode.inline_len);
	for (i = 0; !ret && inode.inline_type != RFS_INLINE_SYMLINK && i < n; i++)
		if (segs[i].pblk) /* a hole reads as zeros */
			ret = dev_pread(m->fs->dev, buf + (segs[i].off << log), segs[i].len << log,
					segs[i].pblk << log);
	if (ret) {
		free(buf);
		return reply_error(req, m, ret, "readlink", ino);
	}
	buf[inode.size] = '\0';
	fuse_reply_readlink(req, buf);
	free(buf);
}

/* --- removing names -------------------------------------------------------- */

static int remove_name_locked(struct rfs_mount *m, fuse_ino_t parent, const char *name, int rmdir,
			      rfs_ino_t *victim, int *free_now)
{
	struct rfs_inode dir, inode;
	uint8_t ftype;
	int ret = read_dir_locked(m, parent, &dir);

	if (!ret)
		ret = dir_lookup(m->fs, parent, name, strlen(name), victim, &ftype, NULL);
	if (!ret)
		ret = read_inode_locked(m, *victim, &inode);
	if (!ret && rmdir && !S_ISDIR(inode.mode))
		ret = -ENOTDIR;
	if (!ret && !rmdir && S_ISDIR(inode.mode))
		ret = -EISDIR;
	if (!ret && rmdir) {
		ret = dir_is_empty(m->fs, *victim);
		ret = ret == 1 ? 0 : ret == 0 ? -ENOTEMPTY : ret;
	}
	if (ret)
		return ret;
	if (rmdir) {
		inode.nlink = 0;
		dir.nlink--;
	} else {
		inode.nlink--;
	}
	/* the one step that may need a block comes before the name goes */
	if (inode.nlink == 0)
		ret = orphan_add(m->fs, *victim);
	if (!ret)
		ret = dir_remove(m->fs, parent, name, strlen(name), victim);
	if (ret)
		return ret;
	inode_touch(&dir, 1);
	ret = inode_write(m->fs, &dir);
	return ret ? ret : drop_inode_if_unused(m, &inode, free_now);
}

static void remove_name(fuse_req_t req, fuse_ino_t parent, const char *name, int rmdir)
{
	struct rfs_mount *m = req_mount(req);
	struct rfs_handle *h;
	rfs_ino_t victim = 0;
	int free_now = 0, tries = 0, ret = check_name(name);

	do {
		if (!ret)
			ret = op_begin(m, RFS_META_CREDITS, &h);
		if (!ret)
			ret = op_end(
				m, h,
				remove_name_locked(m, parent, name, rmdir, &victim, &free_now));
	} while (!tries++ && retry_after_commit(m, ret) && !(ret = 0));
	if (!ret && free_now)
		ret = free_orphan(m, victim);
	reply_error(req, m, ret, rmdir ? "rmdir" : "unlink", parent);
}

static void rfs_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	remove_name(req, parent, name, 0);
}

static void rfs_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	remove_name(req, parent, name, 1);
}

static int link_locked(struct rfs_mount *m, fuse_ino_t ino, fuse_ino_t newparent, const char *name,
		       struct rfs_inode *inode)
{
	struct rfs_inode dir;
	rfs_ino_t old;
	uint8_t ftype;
	int ret = read_dir_locked(m, newparent, &dir);

	if (!ret)
		ret = read_inode_locked(m, ino, inode);
	if (!ret && S_ISDIR(inode->mode))
		ret = -EPERM;
	if (!ret && inode->nlink >= RFS_LINK_MAX)
		ret = -EMLINK;
	if (!ret && inode->nlink == 0)
		ret = -ENOENT;
	if (!ret)
		ret = dir_lookup(m->fs, newparent, name, strlen(name), &old, &ftype, NULL);
	if (ret != -ENOENT)
		return ret ? ret : -EEXIST;
	ret = check_meta_space(m);
	if (!ret)
		ret = dir_add(m->fs, newparent, name, strlen(name), ino, dtype(inode->mode), NULL);
	inode->nlink++;
	inode_touch(inode, 0);
	inode_touch(&dir, 1);
	if (!ret)
		ret = inode_write(m->fs, inode);
	return ret ? ret : inode_write(m->fs, &dir);
}

static void rfs_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
	struct rfs_mount *m = req_mount(req);
	struct rfs_inode inode;
	struct rfs_handle *h;
	int tries = 0, ret = check_name(newname);

	do {
		if (!ret)
			ret = op_begin(m, RFS_META_CREDITS, &h);
		if (!ret)
			ret = op_end(m, h, link_locked(m, ino, newparent, newname, &inode));
	} while (!tries++ && retry_after_commit(m, ret) && !(ret = 0));
	if (ret)
		return reply_error(req, m, ret, "link", ino);
	reply_entry(req, m, &inode);
}

/* --- rename ------------------------------------------------------------------ */

struct rename_op {
	fuse_req_t req;
	fuse_ino_t sp, dp;   /* source and destination parents */
	const char *sn, *dn; /* names */
	unsigned flags;
	struct rfs_inode sdir, ddir, src, dst;
	struct rfs_inode whiteout; /* RENAME_WHITEOUT: left at the old name */
	struct acl_new acl;	   /* the ACLs the whiteout inherits */
	int has_dst, free_now;
};

/* EINVAL if directory SRC is DIR or one of its ancestors. */
static int check_not_ancestor(struct rfs_mount *m, rfs_ino_t src, rfs_ino_t dir)
{
	struct rfs_inode cur;
	unsigned steps;
	int ret;

	for (steps = 0; steps < (1u << 24); steps++) {
		if (dir == src)
			return -EINVAL;
		if (dir == RFS_ROOT_INO)
			return 0;
		ret = read_inode_locked(m, dir, &cur);
		if (ret)
			return ret;
		dir = cur.parent;
	}
	return -EUCLEAN; /* a parent loop */
}

static int rename_check(struct rfs_mount *m, struct rename_op *r)
{
	uint8_t ft;
	rfs_ino_t ino;
	int ret;

	ret = dir_lookup(m->fs, r->sp, r->sn, strlen(r->sn), &ino, &ft, NULL);
	if (!ret)
		ret = read_inode_locked(m, ino, &r->src);
	if (ret)
		return ret;
	ret = dir_lookup(m->fs, r->dp, r->dn, strlen(r->dn), &ino, &ft, NULL);
	if (ret && ret != -ENOENT)
		return ret;
	r->has_dst = !ret;
	if (r->has_dst && (r->flags & RENAME_NOREPLACE))
		return -EEXIST;
	if (!r->has_dst && (r->flags & RENAME_EXCHANGE))
		return -ENOENT;
	if (r->has_dst && (ret = read_inode_locked(m, ino, &r->dst)))
		return ret;
	if (S_ISDIR(r->src.mode) && r->sp != r->dp &&
	    (ret = check_not_ancestor(m, r->src.ino, r->dp)))
		return ret;
	if (r->has_dst && (r->flags & RENAME_EXCHANGE) && S_ISDIR(r->dst.mode) && r->sp != r->dp)
		return check_not_ancestor(m, r->dst.ino, r->sp);
	if (!r->has_dst || (r->flags & RENAME_EXCHANGE))
		return 0;
	if (S_ISDIR(r->dst.mode) && !S_ISDIR(r->src.mode))
		return -EISDIR;
	if (!S_ISDIR(r->dst.mode) && S_ISDIR(r->src.mode))
		return -ENOTDIR;
	if (S_ISDIR(r->dst.mode)) {
		ret = dir_is_empty(m->fs, r->dst.ino);
		return ret == 1 ? 0 : ret == 0 ? -ENOTEMPTY : ret;
	}
	return 0;
}

/* Moves directory D (named from one parent to the other) between parents'
 * link counts; FROM and TO may be the same inode. */
static void move_dir_links(struct rfs_inode *d, struct rfs_inode *from, struct rfs_inode *to)
{
	if (!S_ISDIR(d->mode) || from->ino == to->ino)
		return;
	from->nlink--;
	to->nlink++;
	d->parent = to->ino;
}

/* RENAME_WHITEOUT's new inode (as ext4's): a character device 0:0 with
 * no permission bits, owned as a new node of the source directory and
 * with the ACLs it would inherit. */
static int insert_whiteout(struct rfs_mount *m, struct rename_op *r)
{
	uint32_t mode = S_IFCHR;
	int ret = acl_new_locked(r->req, m, r->sp, &mode, &r->acl);

	if (ret)
		return ret;
	inode_init_new(m->fs, &r->whiteout, mode, 0, 0);
	init_owner(r->req, &r->sdir, &r->whiteout);
	r->whiteout.rdev = 0;
	r->whiteout.parent = r->sp;
	ret = inode_insert(m->fs, &r->whiteout);
	if (!ret && (ret = acl_new_store(m, r->whiteout.ino, &r->acl)))
		inode_delete(m->fs, r->whiteout.ino);
	return ret;
}

static void remove_whiteout(struct rfs_mount *m, struct rename_op *r)
{
	acl_new_remove(m, r->whiteout.ino, &r->acl);
	inode_delete(m->fs, r->whiteout.ino);
}

/* Changes the names so that the steps that may need a block (a whiteout
 * inode, adding a name, or the replaced inode's orphan entry) come first:
 * failing for space, they leave everything as it was. Replacing an
 * existing name rewrites its entry in place, and so does leaving a
 * whiteout at the old name. */
static int rename_entries(struct rfs_mount *m, struct rename_op *r)
{
	rfs_ino_t x;
	int ret;

	if (r->flags & RENAME_EXCHANGE) {
		ret = dir_replace(m->fs, r->dp, r->dn, strlen(r->dn), r->src.ino,
				  dtype(r->src.mode));
		return ret ? ret
			   : dir_replace(m->fs, r->sp, r->sn, strlen(r->sn), r->dst.ino,
					 dtype(r->dst.mode));
	}
	if ((r->flags & RENAME_WHITEOUT) && (ret = insert_whiteout(m, r)))
		return ret;
	if (r->has_dst) {
		ret = 0;
		if (S_ISDIR(r->dst.mode) || r->dst.nlink <= 1) /* it loses its last name */
			ret = orphan_add(m->fs, r->dst.ino);
		if (!ret)
			ret = dir_replace(m->fs, r->dp, r->dn, strlen(r->dn), r->src.ino,
					  dtype(r->src.mode));
	} else {
		ret = dir_add(m->fs, r->dp, r->dn, strlen(r->dn), r->src.ino, dtype(r->src.mode),
			      NULL);
	}
	if (ret && (r->flags & RENAME_WHITEOUT))
		remove_whiteout(m, r);
	if (ret)
		return ret;
	if (r->flags & RENAME_WHITEOUT)
		return dir_replace(m->fs, r->sp, r->sn, strlen(r->sn), r->whiteout.ino, DT_CHR);
	return dir_remove(m->fs, r->sp, r->sn, strlen(r->sn), &x);
}

static int rename_write(struct rfs_mount *m, struct rename_op *r)
{
	struct rfs_inode *dd = r->sp == r->dp ? &r->sdir : &r->ddir;
	int ret;

	move_dir_links(&r->src, &r->sdir, dd);
	if (r->has_dst && (r->flags & RENAME_EXCHANGE)) {
		move_dir_links(&r->dst, dd, &r->sdir);
	} else if (r->has_dst) {
		if (S_ISDIR(r->dst.mode)) {
			r->dst.nlink = 0;
			dd->nlink--;
		} else {
			r->dst.nlink--;
		}
	}
	inode_touch(&r->src, 0);
	inode_touch(&r->sdir, 1);
	inode_touch(dd, 1);
	ret = inode_write(m->fs, &r->src);
	if (!ret)
		ret = inode_write(m->fs, &r->sdir);
	if (!ret && dd != &r->sdir)
		ret = inode_write(m->fs, dd);
	if (!ret && r->has_dst && (r->flags & RENAME_EXCHANGE)) {
		inode_touch(&r->dst, 0);
		ret = inode_write(m->fs, &r->dst);
	} else if (!ret && r->has_dst) {
		ret = drop_inode_if_unused(m, &r->dst, &r->free_now);
	}
	return ret;
}

static int rename_locked(struct rfs_mount *m, struct rename_op *r)
{
	int ret = read_dir_locked(m, r->sp, &r->sdir);

	if (!ret && r->dp != r->sp)
		ret = read_dir_locked(m, r->dp, &r->ddir);
	if (!ret)
		ret = rename_check(m, r);
	if (ret)
		return ret;
	if (r->has_dst && r->src.ino == r->dst.ino)
		return 0; /* two names of one inode: nothing to do */
	ret = check_meta_space(m);
	if (!ret)
		ret = rename_entries(m, r);
	return ret ? ret : rename_write(m, r);
}

static void rfs_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		       const char *newname, unsigned int flags)
{
	struct rfs_mount *m = req_mount(req);
	struct rename_op r = {.req = req,
			      .sp = parent,
			      .dp = newparent,
			      .sn = name,
			      .dn = newname,
			      .flags = flags};
	const unsigned known = RENAME_NOREPLACE | RENAME_EXCHANGE | RENAME_WHITEOUT;
	struct rfs_handle *h;
	int tries = 0, ret = check_name(name);

	if (!ret)
		ret = check_name(newname);
	if (!ret && (flags & ~known))
		ret = -EINVAL;
	if (!ret && (flags & RENAME_EXCHANGE) && (flags & (RENAME_NOREPLACE | RENAME_WHITEOUT)))
		ret = -EINVAL;
	if (flags & RENAME_WHITEOUT)
		acl_new_init(m, parent, S_IFCHR, &r.acl);
	do {
		uint32_t credits = 2 * RFS_META_CREDITS;

		if (flags & RENAME_WHITEOUT) /* one inode more, and its ACLs */
			credits += RFS_META_CREDITS + acl_new_credits(m, &r.acl);
		if (!ret)
			ret = op_begin(m, credits, &h);
		if (!ret)
			ret = op_end(m, h, rename_locked(m, &r));
		if (ret == -EAGAIN) /* a default ACL grew: more credits */
			ret = 0;
		else if (tries++ || !retry_after_commit(m, ret))
			break;
		else
			ret = 0;
	} while (1);
	if (flags & RENAME_WHITEOUT)
		acl_new_done(&r.acl);
	if (!ret && r.free_now)
		ret = free_orphan(m, r.dst.ino);
	reply_error(req, m, ret, "rename", parent);
}

/* --- readdir --------------------------------------------------------------------- */

struct rd_state {
	fuse_req_t req;
	struct rfs_mount *m;
	char *buf;
	size_t size, pos;
	int plus;
	rfs_ino_t *refs; /* readdirplus: lookups to take before the reply */
	size_t nrefs;
};

static int rd_add(struct rd_state *s, const char *name, rfs_ino_t ino, uint32_t mode, off_t next,
		  const struct rfs_inode *inode)
{
	size_t need;

	if (s->plus) {
		struct fuse_entry_param e;
		memset(&e, 0, sizeof(e));
		e.attr.st_ino = ino;
		e.attr.st_mode = mode;
		if (inode) {
			e.ino = ino;
			e.generation = inode->generation;
			e.attr_timeout = e.entry_timeout = s->m->timeout;
			rfs_fill_stat(s->m, inode, &e.attr);
		}
		need = fuse_add_direntry_plus(s->req, s->buf + s->pos, s->size - s->pos, name, &e,
					      next);
	} else {
		struct stat st = {.st_ino = ino, .st_mode = mode};
		need = fuse_add_direntry(s->req, s->buf + s->pos, s->size - s->pos, name, &st,
					 next);
	}
	if (need > s->size - s->pos)
		return 1; /* full */
	s->pos += need;
	if (s->plus && inode)
		s->refs[s->nrefs++] = ino;
	return 0;
}

static int rd_entry(void *arg, uint64_t cookie, rfs_ino_t ino, uint8_t ftype, const char *name,
		    size_t len)
{
	struct rd_state *s = arg;
	struct rfs_inode inode;
	char nm[RFS_NAME_MAX + 1];
	int ret;

	memcpy(nm, name, len);
	nm[len] = '\0';
	if (!s->plus)
		return rd_add(s, nm, ino, (uint32_t)ftype << 12, (off_t)cookie + 1, NULL);
	ret = read_inode_locked(s->m, ino, &inode);
	if (ret)
		return ret;
	return rd_add(s, nm, ino, inode.mode, (off_t)cookie + 1, &inode);
}

static int readdir_locked(struct rd_state *s, fuse_ino_t ino, off_t off)
{
	struct rfs_inode dir;
	int ret = read_dir_locked(s->m, ino, &dir);

	if (ret)
		return ret;
	if (off < 1 && rd_add(s, ".", ino, S_IFDIR, 1, NULL))
		return 0;
	if (off < 2 && rd_add(s, "..", dir.parent, S_IFDIR, 2, NULL))
		return 0;
	ret = dir_iterate(s->m->fs, ino, (uint64_t)RFS_MAX(off, 3), rd_entry, s);
	return ret == 1 ? 0 : ret;
}

static void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, int plus)
{
	struct rd_state s = {req, req_mount(req), NULL, size, 0, plus, NULL, 0};
	size_t i;
	int ret;

	s.buf = malloc(size);
	s.refs = malloc((size / 24 + 1) * sizeof(*s.refs));
	if (!s.buf || !s.refs) {
		free(s.buf);
		free(s.refs);
		return (void)fuse_reply_err(req, ENOMEM);
	}
	pthread_mutex_lock(&s.m->lock);
	ret = readdir_locked(&s, ino, off);
	pthread_mutex_unlock(&s.m->lock);
	if (ret && s.pos == 0) {
		reply_error(req, s.m, ret, "readdir", ino);
	} else {
		for (i = 0; i < s.nrefs; i++)
			itab_ref(s.m, s.refs[i], 1);
		if (fuse_reply_buf(req, s.buf, s.pos) != 0)
			for (i = 0; i < s.nrefs; i++)
				itab_forget(s.m, s.refs[i], 1);
	}
	free(s.buf);
	free(s.refs);
}

static void rfs_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			struct fuse_file_info *fi)
{
	(void)fi;
	do_readdir(req, ino, size, off, 0);
}

static void rfs_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			    struct fuse_file_info *fi)
{
	(void)fi;
	do_readdir(req, ino, size, off, 1);
}

static void rfs_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct rfs_mount *m = req_mount(req);
	struct rfs_inode dir;
	int ret;

	pthread_mutex_lock(&m->lock);
	ret = read_dir_locked(m, ino, &dir);
	pthread_mutex_unlock(&m->lock);
	if (ret)
		return reply_error(req, m, ret, "opendir", ino);
	fi->fh = 0;
	fuse_reply_open(req, fi);
}

/* The namespace half of the operations table (see ops_file.c). */
void rfs_ops_dir(struct fuse_lowlevel_ops *ops)
{
	ops->lookup = rfs_lookup;
	ops->forget = rfs_forget;
	ops->forget_multi = rfs_forget_multi;
	ops->mknod = rfs_mknod;
	ops->mkdir = rfs_mkdir;
	ops->symlink = rfs_symlink;
	ops->readlink = rfs_readlink;
	ops->unlink = rfs_unlink;
	ops->rmdir = rfs_rmdir;
	ops->link = rfs_link;
	ops->rename = rfs_rename;
	ops->opendir = rfs_opendir;
	ops->readdir = rfs_readdir;
	ops->readdirplus = rfs_readdirplus;
}
