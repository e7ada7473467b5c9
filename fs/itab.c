/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * itab.c - the table of inodes the kernel holds: lookup counts, open
 * counts, and each inode's I/O lock. An inode whose last name is removed is
 * freed only once it leaves this table (lookup and open counts both zero);
 * until then it sits on the persistent orphan list.
 */
#include <errno.h>
#include <stdlib.h>

#include "rfs_fuse.h"

static size_t slot(const struct rfs_mount *m, rfs_ino_t ino)
{
	return (size_t)((ino * 0x9e3779b97f4a7c15ull) >> 24) & (m->itab_size - 1);
}

int itab_init(struct rfs_mount *m)
{
	m->itab_size = 1u << 16;
	m->itab = calloc(m->itab_size, sizeof(*m->itab));
	pthread_mutex_init(&m->itab_lock, NULL);
	return m->itab ? 0 : -ENOMEM;
}

void itab_destroy(struct rfs_mount *m)
{
	size_t i;

	for (i = 0; i < m->itab_size; i++) {
		struct itab_entry *e = m->itab[i], *next;
		for (; e; e = next) {
			next = e->next;
			pthread_rwlock_destroy(&e->io);
			free(e);
		}
	}
	free(m->itab);
	pthread_mutex_destroy(&m->itab_lock);
}

static struct itab_entry *find_locked(struct rfs_mount *m, rfs_ino_t ino)
{
	struct itab_entry *e = m->itab[slot(m, ino)];

	while (e && e->ino != ino)
		e = e->next;
	return e;
}

struct itab_entry *itab_ref(struct rfs_mount *m, rfs_ino_t ino, uint64_t n)
{
	struct itab_entry *e;

	pthread_mutex_lock(&m->itab_lock);
	e = find_locked(m, ino);
	if (!e) {
		e = calloc(1, sizeof(*e));
		if (!e) {
			pthread_mutex_unlock(&m->itab_lock);
			return NULL;
		}
		e->ino = ino;
		e->xattrs = -1;
		pthread_rwlock_init(&e->io, NULL);
		e->next = m->itab[slot(m, ino)];
		m->itab[slot(m, ino)] = e;
	}
	e->nlookup += n;
	pthread_mutex_unlock(&m->itab_lock);
	return e;
}

struct itab_entry *itab_get(struct rfs_mount *m, rfs_ino_t ino)
{
	struct itab_entry *e;

	pthread_mutex_lock(&m->itab_lock);
	e = find_locked(m, ino);
	pthread_mutex_unlock(&m->itab_lock);
	return e;
}

/* Unlinks and frees E if nothing holds it. itab_lock held. */
static int release_if_idle_locked(struct rfs_mount *m, struct itab_entry *e)
{
	struct itab_entry **pp;
	int unlinked = e->unlinked;

	if (e->nlookup || e->nopen)
		return 0;
	for (pp = &m->itab[slot(m, e->ino)]; *pp != e; pp = &(*pp)->next)
		;
	*pp = e->next;
	pthread_rwlock_destroy(&e->io);
	free(e);
	return unlinked ? 2 : 1;
}

int itab_forget(struct rfs_mount *m, rfs_ino_t ino, uint64_t n)
{
	struct itab_entry *e;
	int gone = 0;

	pthread_mutex_lock(&m->itab_lock);
	e = find_locked(m, ino);
	if (e) {
		e->nlookup -= n < e->nlookup ? n : e->nlookup;
		gone = release_if_idle_locked(m, e);
	}
	pthread_mutex_unlock(&m->itab_lock);
	return gone;
}

void itab_open(struct rfs_mount *m, struct itab_entry *e, int writer)
{
	pthread_mutex_lock(&m->itab_lock);
	e->nopen++;
	if (writer)
		e->nwrite++;
	pthread_mutex_unlock(&m->itab_lock);
}

int itab_close(struct rfs_mount *m, struct itab_entry *e, int writer)
{
	int gone;

	pthread_mutex_lock(&m->itab_lock);
	e->nopen--;
	if (writer)
		e->nwrite--;
	gone = release_if_idle_locked(m, e);
	pthread_mutex_unlock(&m->itab_lock);
	return gone;
}

int itab_mark_unlinked(struct rfs_mount *m, rfs_ino_t ino)
{
	struct itab_entry *e;
	int busy;

	pthread_mutex_lock(&m->itab_lock);
	e = find_locked(m, ino);
	busy = e && (e->nlookup || e->nopen);
	if (busy)
		e->unlinked = 1;
	pthread_mutex_unlock(&m->itab_lock);
	return busy;
}
