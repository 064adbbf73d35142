// SPDX-License-Identifier: GPL-2.0
/*
 * The lab wire's steering programs (bpf/softena_steer.bpf.c): loaded, the tcx
 * one linked to an interface inside another network namespace (the tun one
 * is handed to the tap with TUNSETSTEERINGEBPF), and fed the device's RSS
 * through their map.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdlib.h>
#include <unistd.h>
#include <net/if.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "sn_bpfobj.h"
#include "softena_dp.h"
#include "softena_steer.h"
#include "sn_util.h"

/* Linux 6.6's tcx attach point; Debian 12's uapi headers predate it. */
#define SN_BPF_TCX_EGRESS	47

/*
 * link_create resolves the ifindex in the calling thread's network
 * namespace: enter NETNS_PATH's for that call alone. setns() moves this
 * thread only, and it comes back before anything else runs in it.
 */
static int link_in_netns(int prog_fd, const char *netns_path, const char *ifname,
			 char *err, size_t errlen)
{
	int home, ns, ifindex, fd, e = 0;

	home = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (home < 0) {
		e = errno;
		sn_set_err(err, errlen, "cannot open this thread's network namespace: %s", e);
		return -e;
	}
	ns = open(netns_path, O_RDONLY | O_CLOEXEC);
	if (ns < 0 || setns(ns, CLONE_NEWNET)) {
		e = errno;
		sn_set_err(err, errlen, "cannot enter the peer's network namespace: %s", e);
		if (ns >= 0)
			close(ns);
		close(home);
		return -e;
	}
	ifindex = (int)if_nametoindex(ifname);
	fd = ifindex ? bpf_link_create(prog_fd, ifindex, SN_BPF_TCX_EGRESS, NULL) : -1;
	if (fd < 0) {
		e = errno;
		sn_set_err(err, errlen, ifindex ? "cannot attach the steering program (tcx): %s"
					      : "no peer interface to steer on: %s", e);
	}
	if (setns(home, CLONE_NEWNET))
		abort();	/* this thread would go on in the wrong namespace */
	close(ns);
	close(home);
	return fd < 0 ? -e : fd;
}

/* The steering object reads the recorder's flow table, not one of its own. */
static int steer_share_table(struct bpf_object *obj, struct bpf_program *prog, void *arg)
{
	return bpf_map__reuse_fd(bpf_object__find_map_by_name(obj, "rfs_table"), *(int *)arg);
}

int sn_steer_load(const char *obj_path, const char *prog_name, int rfs_table_fd,
		  int *prog_fd, int *map_fd, char *err, size_t errlen)
{
	struct bpf_object *obj;
	struct bpf_program *use;
	int e;

	e = sn_bpf_load_one(obj_path, prog_name, "steering",
			    rfs_table_fd >= 0 ? steer_share_table : NULL, &rfs_table_fd,
			    &obj, &use, err, errlen);
	if (e)
		return e;
	*prog_fd = dup(bpf_program__fd(use));
	*map_fd = dup(bpf_map__fd(bpf_object__find_map_by_name(obj, "steer_map")));
	bpf_object__close(obj);
	return 0;
}

int sn_steer_link_tcx(int prog_fd, const char *netns_path, const char *ifname,
		      char *err, size_t errlen)
{
	/* A link: the kernel detaches the program when its last fd closes,
	 * so a crashed softena leaves nothing on the peer. */
	return link_in_netns(prog_fd, netns_path, ifname, err, errlen);
}

int sn_steer_update(int map_fd, const struct sn_rss_config *rss, uint32_t num_queues,
		    int enabled, const struct sn_arfs_config *arfs)
{
	struct softena_steer *st = malloc(sizeof(*st));
	uint32_t key = 0;
	int r;

	if (!st)
		return -ENOMEM;
	sn_rss_steer_fill(rss, num_queues, enabled, st);
	if (arfs)
		sn_rfs_steer_fill(arfs, &st->rfs);
	/* One update; a frame hashed meanwhile with half the old table only
	 * lands where the datapath hands it on. */
	r = bpf_map_update_elem(map_fd, &key, st, BPF_ANY) ? -errno : 0;
	free(st);
	return r;
}
