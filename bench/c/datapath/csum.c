// SPDX-License-Identifier: GPL-2.0
/*
 * The datapath's checksum loops (softena/datapath/native/sn_csum.c, built
 * in with it) against each other and against memcpy, on runs of the lengths
 * the datapath sums: a TSO segment's payload at MTU 1500 and 9000, a jumbo
 * frame, a 64 KiB GSO frame. Hot cache: the loops' own speed, what a frame
 * just read or written by the worker sees.
 *
 * usage: csum SECONDS_PER_CASE
 * prints one line per length: "LEN portable simd memcpy memcpy+portable
 * fused_copy" in GB/s, and "simd -" when the CPU has no AVX2.
 */
#define PROG "csum"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../bench_util.h"	/* now_s() */
#include "sn_csum.h"

#define MAX_LEN	65536

static uint8_t src[MAX_LEN + 64], dst[MAX_LEN + 64];
static volatile uint32_t sink;

enum op { SUM, COPY, COPY_THEN_SUM, FUSED };

/* GB/s of OP over LEN-byte runs for about SECONDS. */
static double rate(enum op op, size_t len, double seconds)
{
	double start = now_s(), t;
	uint64_t bytes = 0;
	int i;

	do {
		for (i = 0; i < 256; i++) {
			switch (op) {
			case SUM:
				sink += sn_csum_partial(src, len, 0);
				break;
			case COPY:
				memcpy(dst, src, len);
				sink += dst[len - 1];
				break;
			case COPY_THEN_SUM:
				memcpy(dst, src, len);
				sink += sn_csum_partial(dst, len, 0);
				break;
			case FUSED:
				sink += sn_csum_copy(dst, src, len, 0);
				break;
			}
		}
		bytes += 256 * (uint64_t)len;
		t = now_s() - start;
	} while (t < seconds);
	return bytes / t / 1e9;
}

int main(int argc, char **argv)
{
	static const size_t lens[] = { 1448, 8948, 9000, 65000 };
	double seconds = argc > 1 ? atof(argv[1]) : 0.2;
	unsigned int i;
	int simd;

	if (seconds <= 0 || seconds > 10) {
		fprintf(stderr, PROG ": seconds per case must be in (0, 10]\n");
		return 2;
	}
	for (i = 0; i < sizeof(src); i++)
		src[i] = (uint8_t)(i * 131 + 7);
	simd = sn_csum_select(1);
	for (i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		size_t len = lens[i];
		double simd_sum = 0, fused = 0, portable, copy, copy_then_sum;

		if (simd) {
			simd_sum = rate(SUM, len, seconds);
			fused = rate(FUSED, len, seconds);
		}
		sn_csum_select(0);
		portable = rate(SUM, len, seconds);
		copy = rate(COPY, len, seconds);
		copy_then_sum = rate(COPY_THEN_SUM, len, seconds);
		if (!simd)
			fused = rate(FUSED, len, seconds);
		sn_csum_select(1);
		printf("%zu %.2f ", len, portable);
		if (simd)
			printf("%.2f", simd_sum);
		else
			printf("-");
		printf(" %.2f %.2f %.2f\n", copy, copy_then_sum, fused);
	}
	return 0;
}
