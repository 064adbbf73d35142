// SPDX-License-Identifier: GPL-2.0
/*
 * The Internet checksum's arithmetic (RFC 1071), on every frame of the hot
 * path: Tx fills the checksums of what TSO cuts, Rx verifies what it
 * delivers. Written by hand because no user-space library sums fast enough
 * (the kernel's csum_partial() and its copy variants are not exported).
 *
 * Two loops: a portable one, and on x86-64 an AVX2 one, which sums 64 bytes
 * a round and, in the copy variant, stores what it has just loaded, so a
 * checksummed copy reads the data once. One is picked at load from the CPU's
 * features, as the kernel's alternatives patch in the best csum routine.
 */
#include <string.h>

#include "sn_csum.h"

/* Fold a 32-bit partial sum into 16 bits (end-around carries), uncomplemented. */
static inline uint32_t fold16(uint32_t sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	return (sum & 0xffff) + (sum >> 16);
}

/* Fold a 64-bit accumulator of 32-bit words into a 32-bit partial sum. */
static inline uint32_t fold64(uint64_t acc)
{
	acc = (acc & 0xffffffffu) + (acc >> 32);
	acc = (acc & 0xffffffffu) + (acc >> 32);
	return (uint32_t)acc;
}

/*
 * The portable loop. Sums 32-bit words in memory order; the fold makes it
 * 16-bit. 32 bytes a round into four accumulators, so the adds do not wait
 * on each other: each 64-bit word goes in as its two 32-bit halves, which no
 * frame's length can make a 64-bit accumulator overflow. ACC may carry a
 * sum already (the SIMD loops hand their tail over here).
 */
static uint32_t csum_scalar(const uint8_t *data, size_t len, uint64_t acc)
{
	uint64_t a1 = 0, a2 = 0, a3 = 0;
	uint32_t w;

	while (len >= 32) {
		uint64_t q[4];

		memcpy(q, data, 32);
		acc += (q[0] & 0xffffffffu) + (q[0] >> 32);
		a1 += (q[1] & 0xffffffffu) + (q[1] >> 32);
		a2 += (q[2] & 0xffffffffu) + (q[2] >> 32);
		a3 += (q[3] & 0xffffffffu) + (q[3] >> 32);
		data += 32;
		len -= 32;
	}
	acc += a1 + a2 + a3;
	while (len >= 4) {
		memcpy(&w, data, 4);
		acc += w;
		data += 4;
		len -= 4;
	}
	if (len >= 2) {
		uint16_t h;

		memcpy(&h, data, 2);
		acc += h;
		data += 2;
		len -= 2;
	}
	if (len) {
		uint8_t last[2] = { data[0], 0 };
		uint16_t h;

		memcpy(&h, last, 2);
		acc += h;
	}
	return fold64(acc);
}

static uint32_t partial_scalar(const uint8_t *data, size_t len, uint32_t sum)
{
	return csum_scalar(data, len, sum);
}

static uint32_t copy_scalar(uint8_t *dst, const uint8_t *src, size_t len, uint32_t sum)
{
	memcpy(dst, src, len);
	return csum_scalar(dst, len, sum);
}

#if defined(__x86_64__)
#include <immintrin.h>

/*
 * AVX2: each 32-bit lane is widened into a 64-bit one by interleaving with
 * zeros, and added there; a lane takes two words per 64 bytes, so even a
 * 64 KiB frame leaves it far from overflow. COPY: store what was loaded.
 */
__attribute__((target("avx2")))
static inline uint32_t csum_avx2(uint8_t *dst, const uint8_t *src, size_t len,
				 uint32_t sum, int copy)
{
	const __m256i zero = _mm256_setzero_si256();
	__m256i s0 = zero, s1 = zero;
	uint64_t lane[4];

	while (len >= 64) {
		__m256i v = _mm256_loadu_si256((const void *)src);
		__m256i w = _mm256_loadu_si256((const void *)(src + 32));

		if (copy) {
			_mm256_storeu_si256((void *)dst, v);
			_mm256_storeu_si256((void *)(dst + 32), w);
			dst += 64;
		}
		s0 = _mm256_add_epi64(s0, _mm256_unpacklo_epi32(v, zero));
		s1 = _mm256_add_epi64(s1, _mm256_unpackhi_epi32(v, zero));
		s0 = _mm256_add_epi64(s0, _mm256_unpacklo_epi32(w, zero));
		s1 = _mm256_add_epi64(s1, _mm256_unpackhi_epi32(w, zero));
		src += 64;
		len -= 64;
	}
	_mm256_storeu_si256((void *)lane, _mm256_add_epi64(s0, s1));
	/* Clean upper halves before SSE code runs (the tail, memcpy, the
	 * caller): GCC leaves this out before the tail call, and dirty ones
	 * made every later SSE instruction wait (1448-byte runs fell below
	 * the portable loop's speed). */
	_mm256_zeroupper();
	if (copy)
		memcpy(dst, src, len);
	return csum_scalar(src, len, (uint64_t)sum + lane[0] + lane[1] + lane[2] + lane[3]);
}

__attribute__((target("avx2")))
static uint32_t partial_avx2(const uint8_t *data, size_t len, uint32_t sum)
{
	return csum_avx2(NULL, data, len, sum, 0);
}

__attribute__((target("avx2")))
static uint32_t copy_avx2(uint8_t *dst, const uint8_t *src, size_t len, uint32_t sum)
{
	return csum_avx2(dst, src, len, sum, 1);
}

static int cpu_has_simd(void)
{
	__builtin_cpu_init();
	return __builtin_cpu_supports("avx2");
}
#else
#define partial_avx2	partial_scalar
#define copy_avx2	copy_scalar

static int cpu_has_simd(void)
{
	return 0;
}
#endif

static uint32_t (*csum_partial_fn)(const uint8_t *, size_t, uint32_t) = partial_scalar;
static uint32_t (*csum_copy_fn)(uint8_t *, const uint8_t *, size_t, uint32_t) = copy_scalar;

int sn_csum_select(int simd)
{
	simd = simd && cpu_has_simd();
	csum_partial_fn = simd ? partial_avx2 : partial_scalar;
	csum_copy_fn = simd ? copy_avx2 : copy_scalar;
	return simd;
}

/* At load, before any worker runs: the pointers never change under one. */
__attribute__((constructor))
static void csum_pick(void)
{
	sn_csum_select(1);
}

/* Below this many bytes (headers, the pseudo-header) the SIMD loop's setup
 * and reduction cost more than the portable loop takes. */
#define SIMD_MIN_LEN	64

uint32_t sn_csum_partial(const uint8_t *data, size_t len, uint32_t sum)
{
	if (len < SIMD_MIN_LEN)
		return csum_scalar(data, len, sum);
	return csum_partial_fn(data, len, sum);
}

uint32_t sn_csum_copy(uint8_t *dst, const uint8_t *src, size_t len, uint32_t sum)
{
	if (len < SIMD_MIN_LEN)
		return copy_scalar(dst, src, len, sum);
	return csum_copy_fn(dst, src, len, sum);
}

/* A sum of bytes that start at an odd offset of the whole: each of its
 * 16-bit words straddles the whole's, so its folded sum is byte-swapped
 * (RFC 1071 2(B), the kernel's csum_block_add()). */
static uint32_t csum_at_odd_offset(uint32_t sum)
{
	sum = fold16(sum);
	return ((sum & 0xff) << 8) | (sum >> 8);
}

uint32_t sn_csum_gather(uint8_t *dst, const struct iovec *iov, unsigned int n)
{
	uint32_t sum = 0;
	size_t off = 0;
	unsigned int i;

	for (i = 0; i < n; i++) {
		uint32_t s = sn_csum_copy(dst + off, iov[i].iov_base, iov[i].iov_len, 0);

		sum = sn_csum_add(sum, off & 1 ? csum_at_odd_offset(s) : s);
		off += iov[i].iov_len;
	}
	return sum;
}

uint16_t sn_csum_fold(uint32_t sum)
{
	return (uint16_t)~fold16(sum);
}
