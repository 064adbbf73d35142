/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The Internet checksum's arithmetic (RFC 1071): one's-complement sums of
 * bytes, kept in memory byte order, as 32-bit partial sums the caller folds.
 */
#ifndef SN_CSUM_H
#define SN_CSUM_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

/* The partial sum of LEN bytes at DATA, added to SUM. */
uint32_t sn_csum_partial(const uint8_t *data, size_t len, uint32_t sum);
/* Copy LEN bytes from SRC to DST and return their partial sum added to SUM:
 * one pass over the data instead of a copy and a sum (the kernel's
 * csum_partial_copy_nocheck()). */
uint32_t sn_csum_copy(uint8_t *dst, const uint8_t *src, size_t len, uint32_t sum);
/* Copy N buffers one after another into DST; return the partial sum of the
 * whole, each buffer counted at its place (odd offsets included). */
uint32_t sn_csum_gather(uint8_t *dst, const struct iovec *iov, unsigned int n);
/* The 16-bit checksum of a partial sum: folded and complemented. */
uint16_t sn_csum_fold(uint32_t sum);

/* Pick the summing loop: SIMD (AVX2) when the CPU has it and SIMD is set,
 * else the portable one. Chosen once at load; tests call it to run both.
 * Returns whether the SIMD loop is now in use. */
int sn_csum_select(int simd);

/* One's-complement addition of two partial sums (end-around carry). */
static inline uint32_t sn_csum_add(uint32_t a, uint32_t b)
{
	a += b;
	return a + (a < b);
}

/* One's-complement subtraction: the sum of what is left when B's bytes are
 * taken out of A's (both summed from an even offset). */
static inline uint32_t sn_csum_sub(uint32_t a, uint32_t b)
{
	return sn_csum_add(a, ~b);
}

#endif
