// SPDX-License-Identifier: GPL-2.0
/*
 * The datapath's per-frame work, one case per function, for counting its
 * instructions under callgrind (bench/instructions.py): the Tx offload
 * engine (sn_pkt.c) cutting a 64 KiB TSO frame at MTU 1500 and, in 4 KiB
 * pieces as a multi-buffer UMEM takes it, at MTU 9000; Tx checksum offload
 * of one 1514-byte frame; the Rx checksum check and mark of one wire frame;
 * and receive coalescing (sn_hw_gro.c) of 45 wire segments into one frame.
 *
 * Each case_*() does one frame's work and is what callgrind collects
 * (--toggle-collect=case_NAME); main() sets up, calls it N times, and
 * checks what came out with the fuzzers' reference parser (fuzz/ref.h), so
 * a count is never that of an error path.
 *
 * usage: icount CASE N      (CASE: tso1500 tso9000 csum1500 rxcsum gro45)
 * prints "CASE FRAMES_OUT BYTES_IN" and exits 0, or says what was wrong
 * and exits 1 (2 on bad usage).
 */
#include <linux/virtio_net.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sn_hw_gro.h"
#include "sn_pkt.h"
#include "ref.h"

#define HLEN		66		/* Ethernet 14, IPv4 20, TCP 32 (timestamps), as Linux sends */
#define MSS		1448		/* at MTU 1500 */
#define MSS_9000	8948
#define PAYLOAD		65000
#define FRAME_LEN	(HLEN + PAYLOAD)
#define SEGS_1500	((PAYLOAD + MSS - 1) / MSS)
#define OUT_MAX		(SN_TSO_MAX_SEGS + 1)
#define OUT_SIZE	9300
#define CHUNK		4096

static uint8_t frame[FRAME_LEN];		/* the host's TSO frame */
static struct virtio_net_hdr_v1 tso_vh, jumbo_vh, csum_vh;	/* a host at MTU 1500, at 9000 */
static uint8_t out[OUT_MAX][OUT_SIZE];		/* the wire's buffers */
static uint32_t out_len[OUT_MAX];
static int out_n;
static struct sn_tx_result res;

static uint8_t region[SEGS_1500 * 2048];	/* wire frames as a UMEM holds them */
static struct sn_desc descs[SEGS_1500];
static uint8_t csum_frame[1514];		/* a host's frame for Tx checksum offload */
static uint8_t rx_frame[1514], rx_saved[1514];	/* a wire frame, and its pristine copy */
static struct virtio_net_hdr_v1 rx_vh;
static struct sn_hw_gro gro;
static int delivered, delivered_segs;

static uint8_t *sink_alloc(void *ctx, size_t need)
{
	(void)ctx;
	if (out_n >= OUT_MAX || need > OUT_SIZE)
		return NULL;
	return out[out_n];
}

/* Piece K of the buffer in hand: CHUNK bytes of it, where a multi-buffer
 * wire would have a UMEM frame of its own. */
static uint8_t *sink_piece(void *ctx, uint32_t k)
{
	(void)ctx;
	return out[out_n] + (size_t)k * CHUNK;
}

static void sink_commit(void *ctx, uint8_t *buf, uint32_t len)
{
	(void)ctx;
	(void)buf;
	out_len[out_n++] = len;
}

static const struct sn_tx_sink whole = { .alloc = sink_alloc, .commit = sink_commit };
static const struct sn_tx_sink pieces = {
	.alloc = sink_alloc, .commit = sink_commit,
	.alloc_pieces = sink_alloc, .piece = sink_piece, .chunk = CHUNK,
};

/* Each case is what callgrind collects by its name: never inlined or cloned. */
#define CASE	__attribute__((noipa)) void

static void deliver(void *ctx, const struct sn_hw_gro_frame *f)
{
	(void)ctx;
	delivered++;
	delivered_segs = f->nsegs;
}

CASE case_tso1500(void)
{
	out_n = 0;
	sn_tx_process(&tso_vh, frame, FRAME_LEN, 1500, 1, 1, &whole, &res);
}

CASE case_tso9000(void)
{
	out_n = 0;
	sn_tx_process(&jumbo_vh, frame, FRAME_LEN, 9000, 1, 1, &pieces, &res);
}

CASE case_csum1500(void)
{
	out_n = 0;
	sn_tx_process(&csum_vh, csum_frame, sizeof(csum_frame), 1500, 1, 1, &whole, &res);
}

CASE case_rxcsum(void)
{
	sn_rx_csum_check_mark(&rx_vh, rx_frame, sizeof(rx_frame), NULL);
}

CASE case_gro45(void)
{
	int i;

	for (i = 0; i < SEGS_1500; i++)
		sn_hw_gro_receive(&gro, &descs[i]);
	sn_hw_gro_flush_all(&gro);
}

/* A TCP/IPv4 frame of LEN bytes as a host stack hands it to a device:
 * lengths right, IP checksum done, the TCP checksum field seeded with the
 * pseudo-header's sum for CHECKSUM_PARTIAL. */
static void host_frame(uint8_t *f, size_t len)
{
	static const uint8_t hdr[HLEN] = {
		0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x08, 0x00,
		0x45, 0, 0, 0, 0x12, 0x34, 0x40, 0, 64, 6, 0, 0,
		198, 18, 0, 1, 198, 18, 0, 2,
		0xc3, 0x50, 0x14, 0x51, 0, 0, 0x10, 0, 0, 0, 0, 0,
		0x80, 0x18, 0x01, 0xf5, 0, 0, 0, 0,
		1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2,
	};
	struct ref_frame r;
	size_t i;
	uint32_t c;

	memcpy(f, hdr, HLEN);
	for (i = HLEN; i < len; i++)
		f[i] = (uint8_t)(i * 131 + 7);
	f[16] = (uint8_t)((len - 14) >> 8);
	f[17] = (uint8_t)(len - 14);
	ref_fix(f, len);
	ref_parse(f, len, &r);
	c = ref_pseudo(f, &r, len - HLEN + 32);
	c = (c & 0xffff) + (c >> 16);
	c = (c & 0xffff) + (c >> 16);
	f[r.l4 + 16] = (uint8_t)(c >> 8);
	f[r.l4 + 17] = (uint8_t)c;
}

static void check_wire(const char *what, int want)
{
	int i;

	CHECK(out_n == want && (int)res.wire_frames == want, "%s: %d wire frames, %u counted, want %d",
	      what, out_n, res.wire_frames, want);
	for (i = 0; i < out_n; i++)
		CHECK(ref_csum_ok(out[i], out_len[i]), "%s: wire frame %d (%u bytes) does not verify",
		      what, i, out_len[i]);
}

int main(int argc, char **argv)
{
	const char *name = argc == 3 ? argv[1] : "";
	long n = argc == 3 ? atol(argv[2]) : 0, i;
	int segs_9000 = (PAYLOAD + MSS_9000 - 1) / MSS_9000;

	if (n < 1 || n > 1000000) {
		fprintf(stderr, "usage: icount tso1500|tso9000|csum1500|rxcsum|gro45 N (1..1000000)\n");
		return 2;
	}
	host_frame(frame, FRAME_LEN);
	tso_vh = (struct virtio_net_hdr_v1){
		.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM, .gso_type = VIRTIO_NET_HDR_GSO_TCPV4,
		.hdr_len = HLEN, .gso_size = MSS, .csum_start = 34, .csum_offset = 16,
	};
	jumbo_vh = tso_vh;
	jumbo_vh.gso_size = MSS_9000;
	csum_vh = tso_vh;
	csum_vh.gso_type = VIRTIO_NET_HDR_GSO_NONE;
	csum_vh.gso_size = 0;

	/* The wire's side: the 45 segments of the frame, as they arrive. */
	case_tso1500();
	check_wire("setup", SEGS_1500);
	for (i = 0; i < SEGS_1500; i++) {
		memcpy(region + i * 2048, out[i], out_len[i]);
		descs[i] = (struct sn_desc){ .addr = (uint64_t)i * 2048, .len = out_len[i] };
	}
	memcpy(rx_saved, out[0], sizeof(rx_saved));	/* the first segment, checksums complete */
	host_frame(csum_frame, sizeof(csum_frame));
	sn_hw_gro_init(&gro, region, deliver, NULL);

	if (!strcmp(name, "tso1500")) {
		for (i = 0; i < n; i++)
			case_tso1500();
		check_wire(name, SEGS_1500);
		printf("%s %d %d\n", name, out_n, FRAME_LEN);
	} else if (!strcmp(name, "tso9000")) {
		for (i = 0; i < n; i++)
			case_tso9000();
		check_wire(name, segs_9000);
		printf("%s %d %d\n", name, out_n, FRAME_LEN);
	} else if (!strcmp(name, "csum1500")) {
		for (i = 0; i < n; i++)
			case_csum1500();
		check_wire(name, 1);
		printf("%s 1 %zu\n", name, sizeof(csum_frame));
	} else if (!strcmp(name, "rxcsum")) {
		for (i = 0; i < n; i++) {
			memcpy(rx_frame, rx_saved, sizeof(rx_frame));
			memset(&rx_vh, 0, sizeof(rx_vh));
			case_rxcsum();
		}
		CHECK(rx_vh.flags == VIRTIO_NET_HDR_F_NEEDS_CSUM, "rxcsum: a good frame was not marked verified");
		printf("%s 1 %zu\n", name, sizeof(rx_frame));
	} else if (!strcmp(name, "gro45")) {
		for (i = 0; i < n; i++)
			case_gro45();
		CHECK(delivered == n && delivered_segs == SEGS_1500, "gro45: %d frames of %d segments, want %ld of %d",
		      delivered, delivered_segs, n, SEGS_1500);
		printf("%s 1 %d\n", name, FRAME_LEN);
	} else {
		fprintf(stderr, "icount: unknown case %s\n", name);
		return 2;
	}
	return 0;
}
