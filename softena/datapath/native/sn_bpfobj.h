/* SPDX-License-Identifier: GPL-2.0 */
/* Loading one program of a BPF object file of bpf/ (sn_bpfobj.c). */
#ifndef SN_BPFOBJ_H
#define SN_BPFOBJ_H

#include <stddef.h>
#include <bpf/libbpf.h>

/* Called between open and load: the load-time settings of the program and
 * the object's maps; 0, or -errno to give up the load. */
typedef int (*sn_bpf_prep_fn)(struct bpf_object *obj, struct bpf_program *prog, void *arg);

int sn_bpf_load_one(const char *obj_path, const char *prog_name, const char *what,
		    sn_bpf_prep_fn prep, void *arg, struct bpf_object **obj,
		    struct bpf_program **prog, char *err, size_t errlen);

#endif
