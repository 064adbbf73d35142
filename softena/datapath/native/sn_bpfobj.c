// SPDX-License-Identifier: GPL-2.0
/*
 * The libbpf sequence softena's BPF objects go through: open the object
 * file, find the one program wanted, load it alone (the object holds
 * programs for other attach points or modes, which this kernel may refuse);
 * or load them all, for an object whose programs work together.
 */
#include <errno.h>
#include <stdio.h>

#include "sn_bpfobj.h"

/* "cannot load the XDP program softena_wire_rx of /x/softena_xdp.bpf.o:
 * Invalid argument": what, which, and libbpf's reason (it knows its own
 * error codes as well as errno's). */
static void load_err(char *err, size_t errlen, const char *doing, const char *what,
		     const char *prog_name, const char *obj_path, int e)
{
	char why[128];

	if (!err || !errlen)
		return;
	libbpf_strerror(e, why, sizeof(why));
	if (prog_name)
		snprintf(err, errlen, "%s the %s program %s of %s: %s", doing, what,
			 prog_name, obj_path, why);
	else
		snprintf(err, errlen, "%s the %s object %s: %s", doing, what, obj_path, why);
}

/*
 * Open OBJ_PATH and load its program PROG_NAME alone (NULL: all of them, and
 * *PROG is NULL); PREP (may be NULL)
 * sets what the program needs before the load. WHAT names the object in
 * errors ("XDP", "steering"). On success *OBJ is the caller's to close
 * (the fds it takes of program and maps outlive it) and *PROG its program;
 * on failure nothing is left open, ERR says why, and -errno comes back.
 */
int sn_bpf_load_one(const char *obj_path, const char *prog_name, const char *what,
		    sn_bpf_prep_fn prep, void *arg, struct bpf_object **obj,
		    struct bpf_program **prog, char *err, size_t errlen)
{
	struct bpf_program *p, *use;
	struct bpf_object *o;
	int e;

	o = bpf_object__open_file(obj_path, NULL);
	if (!o) {
		e = errno;
		load_err(err, errlen, "cannot open", what, NULL, obj_path, e);
		return -e;
	}
	use = prog_name ? bpf_object__find_program_by_name(o, prog_name) : NULL;
	if (prog_name && !use) {
		bpf_object__close(o);
		load_err(err, errlen, "cannot find", what, prog_name, obj_path, ENOENT);
		return -ENOENT;
	}
	bpf_object__for_each_program(p, o)
		bpf_program__set_autoload(p, !prog_name || p == use);
	e = prep ? prep(o, use, arg) : 0;
	if (e) {
		load_err(err, errlen, "cannot prepare", what, prog_name, obj_path, -e);
		bpf_object__close(o);
		return e;
	}
	e = bpf_object__load(o);
	if (e) {
		load_err(err, errlen, "cannot load", what, prog_name, obj_path, -e);
		bpf_object__close(o);
		return e;
	}
	*obj = o;
	*prog = use;
	return 0;
}
