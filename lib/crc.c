/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "crc.h"

#include <zlib.h>

#include "util.h"

uint32_t rfs_crc_seed(const uint8_t uuid[16])
{
	return (uint32_t)crc32(0, uuid, 16);
}

uint32_t rfs_crc32(uint32_t crc, const void *buf, size_t len)
{
	return (uint32_t)crc32(crc, buf, (uInt)len);
}

uint32_t rfs_block_crc(uint32_t seed, const void *block, size_t size)
{
	static const uint8_t zero[4];
	const uint8_t *p = block;
	uLong crc = seed;

	crc = crc32(crc, p, RFS_BLKHDR_CRC_OFF);
	crc = crc32(crc, zero, sizeof(zero));
	crc = crc32(crc, p + RFS_BLKHDR_CRC_OFF + 4, (uInt)(size - RFS_BLKHDR_CRC_OFF - 4));
	return (uint32_t)crc;
}

void rfs_block_set_crc(uint32_t seed, void *block, size_t size)
{
	struct rfs_blkhdr *h = block;
	h->crc = le32_make(rfs_block_crc(seed, block, size));
}

int rfs_block_check_crc(uint32_t seed, const void *block, size_t size)
{
	const struct rfs_blkhdr *h = block;
	return le32_get(h->crc) == rfs_block_crc(seed, block, size) ? 0 : -EBADMSG;
}
