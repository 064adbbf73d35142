// SPDX-License-Identifier: GPL-2.0
/*
 * Accelerated RFS for the host (bpf/softena_rfs.h): the recorder loaded,
 * attached while `ethtool -K ntuple` is on, told which host interface is
 * the device's; and the table of where each CPU's flows go, as the
 * steering programs and the datapath read it.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "sn_bpfobj.h"
#include "sn_util.h"
#include "softena_dp.h"
#include "softena_rfs.h"

int sn_rfs_load(const char *obj_path, int *prog_fd, int *udp_prog_fd, int *table_fd,
		int *conf_fd, char *err, size_t errlen)
{
	struct bpf_object *obj;
	struct bpf_program *none;
	int e;

	e = sn_bpf_load_one(obj_path, NULL, "RFS recorder", NULL, NULL, &obj, &none, err, errlen);
	if (e)
		return e;
	*prog_fd = dup(bpf_program__fd(bpf_object__find_program_by_name(obj, "softena_rfs_record")));
	*udp_prog_fd = dup(bpf_program__fd(bpf_object__find_program_by_name(obj,
									    "softena_rfs_record_udp")));
	*table_fd = dup(bpf_map__fd(bpf_object__find_map_by_name(obj, "rfs_table")));
	*conf_fd = dup(bpf_map__fd(bpf_object__find_map_by_name(obj, "rfs_conf")));
	bpf_object__close(obj);
	return 0;
}

int sn_rfs_attach(int prog_fd, char *err, size_t errlen)
{
	/* A tp_btf program takes its tracepoint from its load; the fd is
	 * the attachment, and the kernel detaches it when the last one closes. */
	int fd = bpf_raw_tracepoint_open(NULL, prog_fd);

	if (fd < 0) {
		int e = errno;

		sn_set_err(err, errlen, "cannot attach the RFS recorder: %s", e);
		return -e;
	}
	return fd;
}

int sn_rfs_configure(int conf_fd, uint32_t ifindex, uint32_t seed)
{
	struct softena_rfs_conf conf = { .ifindex = ifindex, .seed = seed };
	uint32_t key = 0;

	return bpf_map_update_elem(conf_fd, &key, &conf, BPF_ANY) ? -errno : 0;
}

void sn_rfs_steer_fill(const struct sn_arfs_config *cfg, struct softena_rfs_steer *st)
{
	uint32_t nq = cfg->num_queues < SOFTENA_RFS_QUEUES ? cfg->num_queues : SOFTENA_RFS_QUEUES;
	uint32_t q, n = 0, cpu;

	memset(st, 0, sizeof(*st));
	st->enabled = cfg->enabled && nq > 1;
	st->seed = cfg->seed;
	/* order[]: the queues grouped by CPU, each group in queue order. */
	for (cpu = 0; cpu < SOFTENA_RFS_CPUS; cpu++) {
		for (q = 0; q < nq; q++) {
			if (cfg->queue_cpu[q] != cpu)
				continue;
			if (!st->count[cpu])
				st->base[cpu] = (uint8_t)(n + 1);
			st->count[cpu]++;
			st->order[n++] = (uint8_t)q;
		}
	}
}
