/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * cli.h - helpers shared by the command-line front ends.
 */
#ifndef RFS_CLI_H
#define RFS_CLI_H

#include <stddef.h>
#include <stdint.h>

/* Parses "4096", "4k", "512M", "1G", "1T", "2TiB", "10MB" (binary units).
 * -EINVAL for anything else or an overflow. */
int cli_parse_size(const char *s, uint64_t *out);
/* "1.0 TiB"-style rendering of BYTES into BUF. */
const char *cli_human_size(uint64_t bytes, char *buf, size_t len);
/* "PROG (reflinkfs) VERSION" on stdout: every program's --version. The
 * version is the project's, from CMakeLists.txt. */
void cli_print_version(const char *prog);

#endif
