/* SPDX-License-Identifier: GPL-2.0 */
/*
 * softena datapath: the per-packet half of the device, called from Python
 * once per NAPI batch with the GIL released.
 *
 * The interface is deliberately narrow, in the spirit of libxdp's xsk.h:
 * create a device, attach each queue pair to its two ports, poll, wait.
 * Counters live in plain structs that Python reads in place.
 *
 * Every declaration between the CDEF markers, with those of sn_rss.h, is
 * also fed to cffi as the runtime module softena.datapath._native, so it
 * must stay within what cffi's parser accepts (no macros with expressions).
 * Routines exported only for tests are in sn_vectors.h, another module.
 */
#ifndef SOFTENA_DP_H
#define SOFTENA_DP_H

#include <stdint.h>
#include <stddef.h>

#include "sn_rss.h"

/* CDEF-BEGIN */
#define SN_MAX_QUEUES		64
/* Most wire frames one GSO frame may become (the host tap's gso_max_segs,
 * a NIC's tso_max_segs): bounds the Tx ring space one frame can take. */
#define SN_TSO_MAX_SEGS		256

#define SN_WIRE_XSK		1
#define SN_WIRE_TAP		2

/* Per-queue counters, named after the netdev family's qstats attributes. */
struct sn_qstats {
	uint64_t rx_packets;
	uint64_t rx_bytes;
	uint64_t rx_alloc_fail;
	uint64_t rx_hw_drops;
	uint64_t rx_hw_drop_overruns;
	uint64_t rx_csum_unnecessary;
	uint64_t rx_csum_none;
	uint64_t rx_csum_bad;
	uint64_t rx_hw_gro_packets;
	uint64_t rx_hw_gro_bytes;
	uint64_t rx_hw_gro_wire_packets;
	uint64_t rx_hw_gro_wire_bytes;
	uint64_t tx_packets;
	uint64_t tx_bytes;
	uint64_t tx_hw_drops;
	uint64_t tx_hw_drop_errors;
	uint64_t tx_csum_none;
	uint64_t tx_needs_csum;
	uint64_t tx_hw_gso_packets;
	uint64_t tx_hw_gso_bytes;
	uint64_t tx_hw_gso_wire_packets;
	uint64_t tx_hw_gso_wire_bytes;
	uint64_t tx_stop;
	uint64_t tx_wake;
	/* Low-latency queue: frames whose first bytes went with the descriptor */
	uint64_t tx_llq_push;
	uint64_t tx_llq_push_bytes;
	/* softena's own: where Rx work went, and how the worker spent time */
	uint64_t rx_wire_packets;	/* frames taken off the wire queue */
	uint64_t rx_steered_out;	/* handed to another queue by RSS */
	uint64_t rx_steered_in;		/* taken from other queues' handoff */
	uint64_t rx_arfs_steered;	/* whose queue the host's flow table chose (aRFS) */
	uint64_t rx_filtered;		/* not for us: other MAC, unjoined group */
	uint64_t rx_wire_missed;	/* never taken: left in the wire queue's Rx ring
					 * when it went, or (in the device base) found it
					 * without a socket; also in rx_hw_drops */
	uint64_t napi_polls;
	uint64_t napi_busy_polls;
	uint64_t napi_sleeps;
	uint64_t napi_wakeups;
	/* health: what the device reports as corrupt rings */
	uint64_t tx_bad_req_id;		/* a completion for no frame of ours */
	uint64_t rx_bad_req_id;		/* an Rx descriptor outside the UMEM or a frame */
	/* AF_XDP ring wakeups, the ENA driver's names (ena_ethtool.c): found
	 * the ring's need_wakeup flag set (Tx ring: before a kick; fill ring:
	 * after a refill), and wakeup syscalls issued for it (sendto, recvfrom) */
	uint64_t tx_xsk_need_wakeup_set;
	uint64_t tx_xsk_wakeup_request;
	uint64_t rx_xsk_need_wakeup_set;
	uint64_t rx_xsk_wakeup_request;
	/* softena's own: the wire's XDP RX metadata (bpf/softena_meta.h).
	 * Counted on the wire queue that took the frame: */
	uint64_t rx_wire_hash;		/* frames that carried the wire's RX hash */
	uint64_t rx_wire_hash_reused;	/* ... which RSS used instead of its own Toeplitz */
	uint64_t rx_hw_tstamp;		/* frames with a nonzero hardware (driver) timestamp */
	uint64_t rx_xdp_tstamp_backwards;	/* XDP stamps older than the last one on this queue */
	uint64_t rx_vlan_tag_restored;	/* stripped 802.1Q/802.1ad tags put back in the frame */
	/* Counted on the queue that delivered the frame: wire arrival (XDP's
	 * stamp) to the tap write, one per frame handed to the host (a GRO
	 * frame: its first segment's arrival). Bucket i holds latencies in
	 * (2^(i-1), 2^i] us, bucket 0 those up to 1 us, bucket 17 those above
	 * 65536 us: a histogram with log2 microsecond bounds. */
	uint64_t rx_latency_us[18];
	uint64_t rx_latency_sum_ns;
};
#define SN_LATENCY_BUCKETS	18

/* A queue's state at the moment of reading, never summed: what the Tx
 * completion watchdog reads. */
struct sn_qgauges {
	uint64_t tx_inflight;		/* descriptors posted, not completed */
	uint64_t tx_cmpl_stamp_ns;	/* CLOCK_MONOTONIC of the last completion progress */
	uint64_t tx_oldest_slot;	/* Tx ring index of the oldest descriptor in flight */
	uint64_t rx_xdp_tstamp_ns;	/* the last XDP arrival stamp this wire queue took; 0 none */
};

/* Per-queue page pool counters, named after the page-pool-stats attributes
 * and counted with the kernel page_pool's meanings (sn_pool.c): an
 * allocation comes from the cache (fast), or from the cache refilled from
 * the ring (refill), or found the ring empty too (empty) and took the slow
 * path to the region's free list (slow). A frame comes back into the cache
 * (cached; cache-full when it had no room) or the ring (ring; ring-full
 * when it had none, and the frame went back to the free list). */
struct sn_pp_stats {
	uint64_t alloc_fast;
	uint64_t alloc_slow;
	uint64_t alloc_empty;
	uint64_t alloc_refill;
	uint64_t recycle_cached;
	uint64_t recycle_cache_full;
	uint64_t recycle_ring;
	uint64_t recycle_ring_full;
};

/* A page pool at the moment of reading. */
struct sn_pp_gauges {
	uint64_t inflight;		/* frames taken from the free list and not given back */
	uint64_t cached;		/* of which in the cache */
	uint64_t ring;			/* of which waiting in the ring */
	uint64_t lent;			/* of which the wire holds: its fill and Rx
					 * rings, Tx in flight, what its kernel side
					 * set aside (a copy-mode receive that found
					 * the Rx ring full keeps its frame) */
	uint64_t detach_time;		/* CLOCK_BOOTTIME seconds of the detach; 0 attached */
};

struct sn_dev_config {
	uint32_t num_queues;
	uint32_t wire_kind;		/* SN_WIRE_XSK or SN_WIRE_TAP */
	uint32_t frame_size;		/* UMEM chunk; a power of two */
	uint32_t frames_per_queue;	/* page pool size of each queue */
	uint32_t rx_ring_size;		/* xsk rx and fill rings, handoff rings */
	uint32_t tx_ring_size;		/* xsk tx and completion rings */
	uint32_t wire_mtu;		/* L3 MTU of the wire: TSO target */
	uint32_t multi_buffer;		/* bind AF_XDP with XDP_USE_SG: jumbo frames */
	uint32_t llq_header;		/* LLQ: bytes pushed inline per Tx frame, 0 off */
};

struct sn_offloads {
	uint8_t tx_csum;		/* complete CHECKSUM_PARTIAL on Tx */
	uint8_t tso;			/* segment GSO frames on Tx */
	uint8_t rx_csum;		/* validate checksums on Rx */
	uint8_t rxhash;			/* RSS spreads Rx (off: stay on wire queue) */
	uint8_t hw_gro;			/* coalesce TCP segments on Rx (hardware GRO) */
};

/* Which frames the device accepts: ndo_set_rx_mode's view. */
#define SN_MC_FILTER_SIZE	32
#define SN_LLQ_ENTRY_SIZE	256	/* descriptor + up to 224 bytes of header */
struct sn_rx_mode {
	uint8_t mac[6];
	uint8_t promisc;
	uint8_t allmulti;
	uint32_t mc_count;		/* above SN_MC_FILTER_SIZE: all multicast */
	uint8_t mc[32][6];
};

/* A queue pair's NAPI settings (netdev napi-set, the kernel's napi_config):
 * how long its worker keeps polling before it re-arms its interrupt (sleeps
 * in poll()), and how long hardware GRO may hold a session across polls.
 * 0 everywhere: poll, flush, sleep as soon as a poll finds nothing. */
struct sn_napi_config {
	uint32_t defer_hard_irqs;	/* empty polls before the interrupt is re-armed */
	uint32_t reserved;
	uint64_t gro_flush_timeout_ns;	/* bound of the deferral; hold for GRO sessions */
	uint64_t irq_suspend_timeout_ns;	/* no sleep this long while polls find work */
};

/* How the workers poll and sleep (ethtool -C, softena up --busy-poll): one
 * set per device, each field read with one load at every turn of a loop. */
struct sn_poll_config {
	uint32_t budget;		/* frames per direction per poll */
	uint32_t busy_poll_us;		/* spin this long for work before sleeping */
	uint32_t sleep_timeout_ms;	/* longest sleep: the idle trim runs after one */
	uint32_t rx_usecs;		/* interrupt moderation after a wire wake-up */
	uint32_t tx_usecs;		/* ... after a host wake-up */
	uint32_t adaptive_rx;		/* moderate Rx only while polls fill a quarter of their budget */
};

/* Faults a queue can be told to commit (softena fault inject). */
#define SN_FAULT_TX_CMPL_STALL	1	/* completions are not reaped */
#define SN_FAULT_RX_ALLOC	2	/* the fill ring gets no buffers */
#define SN_FAULT_CORRUPT_RX	4	/* a byte of each received frame flips */

struct sn_dev;

struct sn_dev *sn_dev_create(const struct sn_dev_config *cfg,
			     char *err, size_t errlen);
void sn_dev_destroy(struct sn_dev *dev);
void sn_dev_set_rss(struct sn_dev *dev, const struct sn_rss_config *rss);
void sn_dev_set_offloads(struct sn_dev *dev, const struct sn_offloads *off);
void sn_dev_set_rx_mode(struct sn_dev *dev, const struct sn_rx_mode *mode);
void sn_dev_set_mtu(struct sn_dev *dev, uint32_t mtu);
/* The wire's RSS: whether its hash may stand in for the device's
 * (SN_RSS_REUSE_*), kept in step with sn_dev_set_rss(). */
int sn_dev_set_wire_rss(struct sn_dev *dev, const struct sn_rss_wire *wire);
/* Read IFNAME's RSS with the ethtool ioctls; always fills WIRE (error set
 * to the errno when the driver does not tell). Returns WIRE->error. */
int sn_wire_rss_read(const char *ifname, struct sn_rss_wire *wire);
/* The smallest AF_XDP Tx ring a wire MTU allows: two TSO frames' worth. */
uint32_t sn_tx_ring_min(uint32_t mtu);

/* Accelerated RFS for the host (bpf/softena_rfs.h): whether it is on, the
 * flow hash's seed, and the CPU each queue's worker runs on. */
struct sn_arfs_config {
	uint32_t enabled;		/* ethtool -K ntuple */
	uint32_t seed;
	uint32_t num_queues;
	uint32_t queue_cpu[64];		/* SN_MAX_QUEUES */
};
/* Load and attach the wire program (bpf/softena_xdp.bpf.c): its link fd,
 * its XSKMAP's and its rx_missed map's. */
int sn_xdp_load(const char *obj_path, int ifindex, int native,
		int *link_fd, int *xskmap_fd, int *missed_fd, char *err, size_t errlen);
/* Frames the wire program found no socket for, summed over queues and
 * CPUs; negative errno when the map cannot be read. */
int64_t sn_xdp_missed(int missed_fd);
/* Load PROG_NAME of the steering object (bpf/softena_steer.bpf.c), reading
 * the flow table in RFS_TABLE_FD (-1: an empty one of its own): its
 * program and map fds. */
int sn_steer_load(const char *obj_path, const char *prog_name, int rfs_table_fd,
		  int *prog_fd, int *map_fd, char *err, size_t errlen);
/* Link the tcx program at IFNAME's egress inside the network namespace
 * NETNS_PATH: the link fd (closing it detaches), or -errno. */
int sn_steer_link_tcx(int prog_fd, const char *netns_path, const char *ifname,
		      char *err, size_t errlen);
/* Feed it the device's RSS over NUM_QUEUES queues and its aRFS (NULL: off);
 * ENABLED 0 stops steering. */
int sn_steer_update(int map_fd, const struct sn_rss_config *rss, uint32_t num_queues,
		    int enabled, const struct sn_arfs_config *arfs);
/* Load the RFS recorder (bpf/softena_rfs.bpf.c), unattached: its two
 * programs' (skb reads; connected UDP sockets' reads), flow table's and
 * settings map's fds. */
int sn_rfs_load(const char *obj_path, int *prog_fd, int *udp_prog_fd, int *table_fd,
		int *conf_fd, char *err, size_t errlen);
/* Attach a program of it: the fd that holds the attachment (closing it
 * detaches), or -errno. */
int sn_rfs_attach(int prog_fd, char *err, size_t errlen);
/* Record the flows the host reads from IFINDEX, hashed with SEED; 0 or -errno. */
int sn_rfs_configure(int conf_fd, uint32_t ifindex, uint32_t seed);
/* Steer Rx by the flow table in TABLE_FD (mapped here once; -1: none) as CFG says. */
int sn_dev_set_arfs(struct sn_dev *dev, int table_fd, const struct sn_arfs_config *cfg);
int sn_queue_attach_xsk(struct sn_dev *dev, uint32_t qid, int host_fd,
			const char *ifname, int xskmap_fd,
			char *err, size_t errlen);
int sn_queue_attach_tap(struct sn_dev *dev, uint32_t qid, int host_fd,
			int wire_fd, char *err, size_t errlen);
int sn_queue_xsk_zerocopy(struct sn_dev *dev, uint32_t qid);

/* A worker's life, called once from its thread without the GIL: poll,
 * sleep when there is no work, until sn_queue_stop(). */
int sn_napi_run(struct sn_dev *dev, uint32_t qid);
void sn_queue_stop(struct sn_dev *dev, uint32_t qid);
void sn_dev_set_poll(struct sn_dev *dev, const struct sn_poll_config *cfg);
void sn_queue_kick(struct sn_dev *dev, uint32_t qid);

void sn_queue_set_faults(struct sn_dev *dev, uint32_t qid, uint32_t faults);
void sn_queue_set_napi(struct sn_dev *dev, uint32_t qid, const struct sn_napi_config *napi);
struct sn_qstats *sn_queue_stats(struct sn_dev *dev, uint32_t qid);
/* Fill in the gauges (and the pool's counters) now; 0, or -1 for no such queue. */
int sn_queue_gauges(struct sn_dev *dev, uint32_t qid, struct sn_qgauges *g);
int sn_queue_pp_read(struct sn_dev *dev, uint32_t qid, struct sn_pp_stats *st,
		     struct sn_pp_gauges *g);

/* Teardown in the kernel's order, with the workers stopped: the pools stop
 * allocating (detach), then take back every frame they lent (drain: Tx
 * completions reaped, Rx frames delivered, the wire closed). The drain
 * returns the frames that never came back: 0 unless the device lost some. */
void sn_dev_detach(struct sn_dev *dev);
int sn_dev_drain(struct sn_dev *dev, int timeout_ms);
/* Frames of the region in no pool. */
uint32_t sn_dev_frames_free(struct sn_dev *dev);
/* Give the heap's free pages back to the kernel (malloc_trim), after a
 * datapath is freed: rebuilds must not grow the process. */
void sn_heap_trim(void);

/* CDEF-END */

/* Between the datapath's own files: the aRFS table of where each CPU's flows
 * go (bpf/softena_rfs.h), from CFG, for the datapath and the steering map. */
struct softena_rfs_steer;
void sn_rfs_steer_fill(const struct sn_arfs_config *cfg, struct softena_rfs_steer *st);

#endif
