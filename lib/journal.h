/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * journal.h - the metadata log region.
 *
 * The region [sb.journal_start, +journal_blocks) begins with a journal
 * superblock; the ring of transactions follows it. This module so far
 * formats and verifies the journal superblock; transactions and the
 * three-pass recovery are the journal issue's work.
 */
#ifndef RFS_JOURNAL_H
#define RFS_JOURNAL_H

#include "fs.h"

extern const struct rfs_buf_ops rfs_journal_sb_buf_ops;

/* Writes an empty journal superblock (mkfs). */
int journal_format(struct rfs_fs *fs);

/* Reads the journal superblock; *EMPTY is set if the log holds nothing to
 * replay (start == 0). */
int journal_sb_read(struct rfs_fs *fs, int *empty, char *why, size_t whylen);

#endif
