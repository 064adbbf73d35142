/* SPDX-License-Identifier: GPL-2.0 */
/* Small helpers every part of the datapath may use; they depend on nothing. */
#ifndef SN_UTIL_H
#define SN_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* Fill a caller's error buffer: FMT has one %s, for strerror(E). */
static inline void sn_set_err(char *err, size_t len, const char *fmt, int e)
{
	if (err && len)
		snprintf(err, len, fmt, strerror(e));
}

static inline uint64_t sn_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000 + (uint64_t)ts.tv_nsec;
}

static inline struct timespec sn_ns_to_timespec(uint64_t ns)
{
	return (struct timespec){ (time_t)(ns / 1000000000), (long)(ns % 1000000000) };
}

static inline int sn_is_pow2(uint32_t v)
{
	return v && !(v & (v - 1));
}

static inline uint32_t sn_roundup_pow2(uint32_t v)
{
	uint32_t p = 1;

	while (p < v)
		p <<= 1;
	return p;
}

#endif
