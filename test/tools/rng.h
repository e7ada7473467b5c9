/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * rng.h - the two small generators of the tests and tools, written once so
 * that a seed means the same sequence everywhere it is printed.
 */
#ifndef RFS_TEST_RNG_H
#define RFS_TEST_RNG_H

#include <stdint.h>

/* xorshift64*: state must not be 0. */
static inline uint64_t rng_xorshift(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545f4914f6cdd1dull;
}

/* splitmix64: any state, including 0. */
static inline uint64_t rng_splitmix(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

#endif
