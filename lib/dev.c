/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * dev.c - device backends (file / block device, RAM) and the write log.
 */
#include "dev.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

/* --- file and block device backend --------------------------------- */

static int file_pread(struct rfs_dev *dev, void *buf, size_t len, uint64_t off)
{
	uint8_t *p = buf;

	while (len > 0) {
		ssize_t n = pread(dev->fd, p, len, (off_t)off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0) /* past the end of a file: reads as zeros */
			return memset(p, 0, len), 0;
		p += n;
		off += (uint64_t)n;
		len -= (size_t)n;
	}
	return 0;
}

static int file_pwrite(struct rfs_dev *dev, const void *buf, size_t len, uint64_t off)
{
	const uint8_t *p = buf;

	while (len > 0) {
		ssize_t n = pwrite(dev->fd, p, len, (off_t)off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0) /* no progress: never spin */
			return -EIO;
		p += n;
		off += (uint64_t)n;
		len -= (size_t)n;
	}
	return 0;
}

static int file_flush(struct rfs_dev *dev)
{
	return fdatasync(dev->fd) < 0 ? -errno : 0;
}

static void file_close(struct rfs_dev *dev)
{
	close(dev->fd); /* drops the flock */
}

static const struct rfs_dev_ops file_ops = {
	.pread = file_pread,
	.pwrite = file_pwrite,
	.flush = file_flush,
	.close = file_close,
};

static struct rfs_dev *dev_alloc(void)
{
	struct rfs_dev *dev = calloc(1, sizeof(*dev));
	if (!dev)
		return NULL;
	dev->fd = -1;
	dev->wlog_fd = -1;
	pthread_mutex_init(&dev->wlog_lock, NULL);
	return dev;
}

static int file_size(int fd, uint64_t *size)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return -errno;
	if (S_ISBLK(st.st_mode))
		return ioctl(fd, BLKGETSIZE64, size) < 0 ? -errno : 0;
	if (!S_ISREG(st.st_mode))
		return -ENODEV;
	*size = (uint64_t)st.st_size;
	return 0;
}

static int file_lock(int fd, unsigned flags)
{
	int op = (flags & RFS_DEV_RDONLY) ? LOCK_SH : LOCK_EX;

	if (flags & RFS_DEV_NOLOCK)
		return 0;
	if (flock(fd, op | LOCK_NB) < 0)
		return errno == EWOULDBLOCK ? -EBUSY : -errno;
	return 0;
}

int dev_open_file(const char *path, unsigned flags, uint64_t size, struct rfs_dev **out)
{
	int oflags = (flags & RFS_DEV_RDONLY) ? O_RDONLY : O_RDWR;
	struct rfs_dev *dev;
	int ret;

	if (flags & RFS_DEV_CREATE)
		oflags |= O_CREAT;
	dev = dev_alloc();
	if (!dev)
		return -ENOMEM;
	dev->fd = open(path, oflags | O_CLOEXEC, 0644);
	if (dev->fd < 0) {
		ret = -errno;
		goto fail;
	}
	ret = file_lock(dev->fd, flags);
	if (ret)
		goto fail;
	if ((flags & RFS_DEV_CREATE) && size > 0) {
		/* Extend only: cutting an existing larger image would destroy it. */
		struct stat st;
		if (fstat(dev->fd, &st) == 0 && S_ISREG(st.st_mode) &&
		    (uint64_t)st.st_size < size && ftruncate(dev->fd, (off_t)size) < 0) {
			ret = -errno;
			goto fail;
		}
	}
	ret = file_size(dev->fd, &dev->size);
	if (ret)
		goto fail;
	dev->ops = &file_ops;
	dev->readonly = !!(flags & RFS_DEV_RDONLY);
	*out = dev;
	return 0;
fail:
	if (dev->fd >= 0)
		close(dev->fd);
	free(dev);
	return ret;
}

int dev_resize(struct rfs_dev *dev, uint64_t size)
{
	struct stat st;

	if (dev->fd < 0 || fstat(dev->fd, &st) < 0 || !S_ISREG(st.st_mode))
		return -ENOTTY;
	if (ftruncate(dev->fd, (off_t)size) < 0)
		return -errno;
	dev->size = size;
	return 0;
}

/* --- RAM backend ---------------------------------------------------- */

static int mem_pread(struct rfs_dev *dev, void *buf, size_t len, uint64_t off)
{
	memcpy(buf, dev->mem + off, len);
	return 0;
}

static int mem_pwrite(struct rfs_dev *dev, const void *buf, size_t len, uint64_t off)
{
	memcpy(dev->mem + off, buf, len);
	return 0;
}

static int mem_flush(struct rfs_dev *dev)
{
	(void)dev;
	return 0;
}

static void mem_close(struct rfs_dev *dev)
{
	free(dev->mem);
}

static const struct rfs_dev_ops mem_ops = {
	.pread = mem_pread,
	.pwrite = mem_pwrite,
	.flush = mem_flush,
	.close = mem_close,
};

int dev_open_mem(uint64_t size, struct rfs_dev **out)
{
	struct rfs_dev *dev = dev_alloc();

	if (!dev)
		return -ENOMEM;
	dev->mem = calloc(1, size);
	if (!dev->mem) {
		free(dev);
		return -ENOMEM;
	}
	dev->size = size;
	dev->ops = &mem_ops;
	*out = dev;
	return 0;
}

/* --- overlay backend -------------------------------------------------- */

struct rfs_overlay {
	struct rfs_dev *base;
	uint32_t gran;
	uint64_t *keys; /* block index + 1; 0 = empty slot */
	uint8_t **data;
	size_t cap, n;
};

static size_t ov_slot(const struct rfs_overlay *o, uint64_t key)
{
	return (size_t)((key * 0x9e3779b97f4a7c15ull) >> 13) & (o->cap - 1);
}

static uint8_t **ov_find(struct rfs_overlay *o, uint64_t idx, int create)
{
	uint64_t key = idx + 1;
	size_t s;

	if (create && (o->n + 1) * 2 > o->cap) {
		struct rfs_overlay big = *o;
		size_t i;
		big.cap = o->cap ? o->cap * 2 : 256;
		big.keys = calloc(big.cap, sizeof(*big.keys));
		big.data = calloc(big.cap, sizeof(*big.data));
		if (!big.keys || !big.data) {
			free(big.keys);
			free(big.data);
			return NULL;
		}
		big.n = 0;
		for (i = 0; i < o->cap; i++) {
			if (!o->keys[i])
				continue;
			s = ov_slot(&big, o->keys[i]);
			while (big.keys[s])
				s = (s + 1) & (big.cap - 1);
			big.keys[s] = o->keys[i];
			big.data[s] = o->data[i];
			big.n++;
		}
		free(o->keys);
		free(o->data);
		*o = big;
	}
	if (!o->cap)
		return NULL;
	for (s = ov_slot(o, key); o->keys[s]; s = (s + 1) & (o->cap - 1))
		if (o->keys[s] == key)
			return &o->data[s];
	if (!create)
		return NULL;
	o->keys[s] = key;
	o->n++;
	return &o->data[s];
}

static int overlay_pread(struct rfs_dev *dev, void *buf, size_t len, uint64_t off)
{
	struct rfs_overlay *o = dev->overlay;
	uint8_t *p = buf;

	while (len > 0) {
		uint64_t idx = off / o->gran, in = off % o->gran;
		size_t n = (size_t)RFS_MIN((uint64_t)len, o->gran - in);
		uint8_t **blk = ov_find(o, idx, 0);
		int ret = blk ? (memcpy(p, *blk + in, n), 0) : dev_pread(o->base, p, n, off);
		if (ret)
			return ret;
		p += n;
		off += n;
		len -= n;
	}
	return 0;
}

static int overlay_pwrite(struct rfs_dev *dev, const void *buf, size_t len, uint64_t off)
{
	struct rfs_overlay *o = dev->overlay;
	const uint8_t *p = buf;

	if (off % o->gran || len % o->gran)
		return -EINVAL;
	for (; len > 0; p += o->gran, off += o->gran, len -= o->gran) {
		uint8_t **blk = ov_find(o, off / o->gran, 1);
		if (!blk)
			return -ENOMEM;
		if (!*blk && !(*blk = malloc(o->gran)))
			return -ENOMEM;
		memcpy(*blk, p, o->gran);
	}
	return 0;
}

static int overlay_flush(struct rfs_dev *dev)
{
	(void)dev;
	return 0;
}

static void overlay_close(struct rfs_dev *dev)
{
	struct rfs_overlay *o = dev->overlay;
	size_t i;

	for (i = 0; i < o->cap; i++)
		free(o->data[i]);
	free(o->keys);
	free(o->data);
	dev_close(o->base);
	free(o);
}

static const struct rfs_dev_ops overlay_ops = {
	.pread = overlay_pread,
	.pwrite = overlay_pwrite,
	.flush = overlay_flush,
	.close = overlay_close,
};

int dev_open_overlay(struct rfs_dev *base, uint32_t gran, struct rfs_dev **out)
{
	struct rfs_dev *dev = dev_alloc();
	struct rfs_overlay *o = calloc(1, sizeof(*o));

	if (!dev || !o || gran == 0) {
		free(dev);
		free(o);
		return gran ? -ENOMEM : -EINVAL;
	}
	o->base = base;
	o->gran = gran;
	dev->overlay = o;
	dev->size = base->size;
	dev->ops = &overlay_ops;
	*out = dev;
	return 0;
}

/* --- common entry points -------------------------------------------- */

void dev_close(struct rfs_dev *dev)
{
	if (!dev)
		return;
	dev->ops->close(dev);
	if (dev->wlog_fd >= 0)
		close(dev->wlog_fd);
	pthread_mutex_destroy(&dev->wlog_lock);
	free(dev);
}

static int dev_check_range(struct rfs_dev *dev, size_t len, uint64_t off)
{
	if (off > dev->size || len > dev->size - off)
		return -ENOSPC;
	return 0;
}

int dev_pread(struct rfs_dev *dev, void *buf, size_t len, uint64_t off)
{
	int ret = dev_check_range(dev, len, off);
	return ret ? -EIO : dev->ops->pread(dev, buf, len, off);
}

static int write_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Appends one record (a write is split into records whose length fits
 * the le32 len field). Called with wlog_lock held. */
static int wlog_append(struct rfs_dev *dev, uint32_t kind, const void *buf, size_t len,
		       uint64_t off)
{
	const uint8_t *p = buf;
	int ret;

	do {
		size_t n = RFS_MIN(len, (size_t)1 << 30);
		struct rfs_wlog_rec rec = {
			.kind = htole32(kind), .len = htole32((uint32_t)n), .off = htole64(off)};

		ret = write_all(dev->wlog_fd, &rec, sizeof(rec));
		if (ret || !n)
			break;
		ret = write_all(dev->wlog_fd, p, n);
		p += n;
		off += n;
		len -= n;
	} while (!ret && len > 0);
	return ret;
}

/* While logging, the device I/O and its record are one step under
 * wlog_lock, so the log lists writes and flushes in the order they hit the
 * device: replaying it rebuilds exactly what is there. */
int dev_pwrite(struct rfs_dev *dev, const void *buf, size_t len, uint64_t off)
{
	int logging, ret;

	if (dev->readonly)
		return -EROFS;
	ret = dev_check_range(dev, len, off);
	if (ret)
		return ret;
	logging = __atomic_load_n(&dev->wlog_fd, __ATOMIC_ACQUIRE) >= 0;
	if (logging)
		pthread_mutex_lock(&dev->wlog_lock);
	ret = dev->ops->pwrite(dev, buf, len, off);
	if (!ret) {
		__atomic_add_fetch(&dev->nr_writes, 1, __ATOMIC_RELAXED);
		if (logging)
			ret = wlog_append(dev, RFS_WLOG_WRITE, buf, len, off);
	}
	if (logging)
		pthread_mutex_unlock(&dev->wlog_lock);
	return ret;
}

void dev_prefetch(struct rfs_dev *dev, uint64_t off, size_t len)
{
	while (dev->overlay)
		dev = dev->overlay->base;
	if (dev->fd >= 0 && off < dev->size)
		(void)posix_fadvise(dev->fd, (off_t)off, (off_t)len, POSIX_FADV_WILLNEED);
}

int dev_flush(struct rfs_dev *dev)
{
	int logging, ret;

	if (dev->readonly)
		return 0;
	logging = __atomic_load_n(&dev->wlog_fd, __ATOMIC_ACQUIRE) >= 0;
	if (logging)
		pthread_mutex_lock(&dev->wlog_lock);
	ret = dev->ops->flush(dev);
	if (!ret) {
		__atomic_add_fetch(&dev->nr_flushes, 1, __ATOMIC_RELAXED);
		if (logging)
			ret = wlog_append(dev, RFS_WLOG_FLUSH, NULL, 0, 0);
	}
	if (logging)
		pthread_mutex_unlock(&dev->wlog_lock);
	return ret;
}

int dev_writelog_start(struct rfs_dev *dev, const char *path)
{
	struct rfs_wlog_header hdr = {.magic = htole64(RFS_WLOG_MAGIC),
				      .dev_size = htole64(dev->size)};
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
	int ret;

	if (fd < 0)
		return -errno;
	ret = write_all(fd, &hdr, sizeof(hdr));
	if (ret) {
		close(fd);
		return ret;
	}
	/* Restarting switches logs: the old one is closed, not leaked. */
	pthread_mutex_lock(&dev->wlog_lock);
	if (dev->wlog_fd >= 0)
		close(dev->wlog_fd);
	__atomic_store_n(&dev->wlog_fd, fd, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&dev->wlog_lock);
	return 0;
}
