"""Least privilege: every thread of a running device holds exactly the capabilities its wire needs,
and with only those it still resets, changes queues and rings, follows its link and passes traffic."""

from __future__ import annotations

import os
import pathlib
import re

from conftest import device_log, device_status, run, wait_for

from softena.control import privilege

UNIT = pathlib.Path(__file__).resolve().parents[2] / "deploy" / "softena@.service"


def capability_sets(pid: int) -> dict[str, set[int]]:
    """Each set (CapEff, CapPrm, ...) of every thread of PID, as the distinct masks seen."""
    sets: dict[str, set[int]] = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        for which in ("CapEff", "CapPrm", "CapBnd", "CapInh", "CapAmb"):
            sets.setdefault(which, set()).add(privilege.current(which, f"{pid}/task/{tid}"))
    return sets


def expected(bits: int) -> dict[str, set[int]]:
    return {"CapEff": {bits}, "CapPrm": {bits}, "CapBnd": {bits}, "CapInh": {0}, "CapAmb": {0}}


def test_a_lab_device_keeps_six_capabilities_in_every_thread_and_still_does_everything(softena_up) -> None:
    dev = softena_up("sft0", "--queues", "2")
    # cap_sys_nice: the default --host-napi affine places the tap's NAPI threads, also on -L.
    kept = privilege.runtime_caps(xsk=True, lab=True, affine=True)
    assert sorted(kept) == ["cap_bpf", "cap_ipc_lock", "cap_net_admin", "cap_net_raw", "cap_sys_admin",
                            "cap_sys_nice"]
    bits = privilege.mask(kept)
    assert capability_sets(dev.pid) == expected(bits)
    lines = [ln for ln in device_log("sft0").splitlines() if "capabilities kept:" in ln]
    assert len(lines) == 1 and all(name in lines[0] for name in kept), lines

    run(["softena", "reset", "sft0"], check=True)
    run(["softena", "ethtool", "-L", "sft0", "combined", "1"], check=True)
    run(["softena", "ethtool", "-G", "sft0", "rx", "512", "tx", "512"], check=True)
    run(["ip", "link", "set", "sft0", "down"], check=True)
    run(["ip", "link", "set", "sft0", "up"], check=True)
    run(["softena", "ethtool", "-L", "sft0", "combined", "2"], check=True)
    wait_for(lambda: run(["ping", "-c", "1", "-W", "1", dev.peer_v4]).returncode == 0, within=10,
             what="ping after the changes")
    assert run(["ping", "-c", "20", "-i", "0.02", "-W", "2", dev.peer_v4]).returncode == 0
    status = device_status("sft0")
    assert (status["pid"], status["queues"]) == (dev.pid, 2)
    # The threads made since (new workers, request threads) inherited the same sets.
    assert capability_sets(dev.pid) == expected(bits)
    assert "err" not in "".join(ln[:3] for ln in device_log("sft0").splitlines() if ln.startswith("<3>"))


def test_a_tap_wire_of_its_own_keeps_cap_net_admin_and_what_its_steering_program_needs(softena_up) -> None:
    dev = softena_up("sft0", "--queues", "2", "--wire", "tap:sft0t", "--host-napi", "inline")
    assert capability_sets(dev.pid) == expected(privilege.mask(["cap_net_admin", "cap_bpf", "cap_perfmon"]))
    assert dev.status["wire-steering"] == "by RSS, tun steering on sft0t"  # what cap_bpf and cap_perfmon are for
    run(["softena", "ethtool", "-L", "sft0", "combined", "1"], check=True)
    run(["softena", "reset", "sft0"], check=True)
    assert device_status("sft0")["queues"] == 1


def test_the_systemd_units_bounding_set_is_what_bring_up_needs() -> None:
    match = re.search(r"^CapabilityBoundingSet=(.*)$", UNIT.read_text(), re.MULTILINE)
    assert match, f"{UNIT} has no CapabilityBoundingSet"
    assert sorted(match.group(1).lower().split()) == sorted(privilege.BRINGUP_CAPS)


def test_without_steering_a_tap_wire_keeps_cap_net_admin_alone(softena_up) -> None:
    dev = softena_up("sft0", "--queues", "2", "--wire", "tap:sft0t", "--no-steering", "--host-napi", "inline")
    assert capability_sets(dev.pid) == expected(privilege.mask(["cap_net_admin"]))
