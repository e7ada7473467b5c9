/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * util.h - small helpers shared by every layer: little-endian field access,
 * error names, logging.
 *
 * Error convention: functions in lib/ return 0 or a negative errno.
 * -EUCLEAN means "structure is corrupt", -EBADMSG means "checksum failed".
 */
#ifndef RFS_UTIL_H
#define RFS_UTIL_H

#include <endian.h>
#include <errno.h>
#include <stdint.h>

#include "format.h"

#define RFS_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define RFS_MIN(a, b)	  ((a) < (b) ? (a) : (b))
#define RFS_MAX(a, b)	  ((a) > (b) ? (a) : (b))

static inline uint16_t le16_get(rfs_le16_t v)
{
	return le16toh(v);
}
static inline uint32_t le32_get(rfs_le32_t v)
{
	return le32toh(v);
}
static inline uint64_t le64_get(rfs_le64_t v)
{
	return le64toh(v);
}
static inline rfs_le16_t le16_make(uint16_t v)
{
	return htole16(v);
}
static inline rfs_le32_t le32_make(uint32_t v)
{
	return htole32(v);
}
static inline rfs_le64_t le64_make(uint64_t v)
{
	return htole64(v);
}

/* Unaligned little-endian access for fields inside packed record bytes. */
uint64_t rfs_get_le64(const void *p);
void rfs_put_le64(void *p, uint64_t v);

/* Log levels for rfs_log(). The default sink is stderr; the daemon may
 * redirect it (syslog) with rfs_log_set_sink(). */
enum rfs_log_level { RFS_LOG_ERR, RFS_LOG_WARN, RFS_LOG_INFO, RFS_LOG_DEBUG };

void rfs_log(enum rfs_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void rfs_log_set_level(enum rfs_log_level max);
void rfs_log_set_sink(void (*sink)(enum rfs_log_level, const char *msg));

#endif /* RFS_UTIL_H */
