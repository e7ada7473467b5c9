/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * crc.h - metadata block checksums: zlib crc32 seeded with crc32(uuid).
 *
 * The crc covers the whole block with the header's crc field read as zero,
 * so a block is self-contained: fsck can verify any block on its own.
 */
#ifndef RFS_CRC_H
#define RFS_CRC_H

#include <stddef.h>
#include <stdint.h>

uint32_t rfs_crc_seed(const uint8_t uuid[16]);
/* Plain zlib crc32 continuing from CRC (for log tags and chains). */
uint32_t rfs_crc32(uint32_t crc, const void *buf, size_t len);
uint32_t rfs_block_crc(uint32_t seed, const void *block, size_t size);
void rfs_block_set_crc(uint32_t seed, void *block, size_t size);
/* 0 if the stored crc matches, -EBADMSG if not. */
int rfs_block_check_crc(uint32_t seed, const void *block, size_t size);

#endif
