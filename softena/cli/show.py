"""softena status / stats: what the devices are doing, as tables or JSON."""

from __future__ import annotations

import argparse
import itertools
from typing import Any

from rich.console import Console
from rich.table import Table

from softena.cli.output import add_json_options, emit_json, examples, print_table, table, wants_json
from softena.control import ctlsock
from softena.control.state import DeviceState, denied, list_devices, pid_alive
from softena.datapath import latency
from softena.errors import SoftenaError

# Columns of the default stats table, chosen to fit 80 columns with their
# names whole; --all shows every counter (wide), -j every counter as JSON.
STATS_COLUMNS = ("rx-packets", "rx-bytes", "tx-packets", "tx-bytes", "rx-hw-drops", "tx-hw-drops")


def register(sub: argparse._SubParsersAction) -> None:
    status = sub.add_parser("status", help="list devices: queues, CPUs, wire and its mode", epilog=examples(
        "softena status", "softena status -j -p      # also lab addresses, slots, metrics"))
    add_json_options(status)
    status.set_defaults(func=cmd_status)

    stats = sub.add_parser("stats", help="per-queue counters of a device", epilog=examples(
        "softena stats ena0            # the usual counters, 80 columns",
        "softena stats --all ena0      # every counter, wide",
        "softena stats -j ena0 | jq '.device[\"rx-packets\"]'"))
    stats.add_argument("name", nargs="?", default="ena0", metavar="DEV", help="the device (default ena0)")
    add_json_options(stats)
    stats.add_argument("-a", "--all", action="store_true", help="every counter, not the usual columns (wide)")
    stats.set_defaults(func=cmd_stats)


def cpu_list(cpus: list[int]) -> str:
    """CPUs as the kernel's cpulist format writes them: 0-3,6."""
    runs = []
    for _, group in itertools.groupby(enumerate(sorted(cpus)), lambda ic: ic[1] - ic[0]):
        ids = [c for _, c in group]
        runs.append(str(ids[0]) if len(ids) == 1 else f"{ids[0]}-{ids[-1]}")
    return ",".join(runs)


def cmd_status(args: argparse.Namespace) -> int:
    rows: list[dict[str, Any]] = []
    for name in list_devices():
        state = DeviceState.load(name)
        if state is None:
            if denied(name):  # not root, and not in the device's read group
                rows.append({"dev": name, "state": "permission denied"})
            continue
        if not pid_alive(state.pid):
            rows.append({"dev": name, "state": "crashed (run softena down to clear)", "pid": state.pid})
            continue
        try:
            rows.append({"state": "up", **ctlsock.request(name, "status")})
        except SoftenaError as exc:
            rows.append({"dev": name, "state": f"not answering: {exc}", "pid": state.pid})
    if wants_json(args):
        emit_json(args, rows)
        return 0
    if not rows:
        print("no softena devices")
        return 0
    devices = table("softena devices", STATUS_COLUMNS)
    for r in rows:
        devices.add_row(r["dev"], r["state"], str(r.get("pid", "")), str(r.get("queues", "")),
                        cpu_list(r.get("cpus", [])), f"{r.get('wire', '')} {r.get('wire-ifname') or ''}".strip(),
                        r.get("wire-mode", ""), str(r.get("mtu", "")))
    for col in devices.columns[1:]:
        col.justify = "left"
    console = Console()
    print_table(console, devices)
    for r in rows:
        host_napi = r.get("host-napi", "affine")
        if host_napi == "inline":
            console.print(f"{r['dev']}: the host receives inside the workers' writes, not in the tap's NAPI threads")
        elif host_napi != "affine":
            console.print(f"{r['dev']}: the host receives in the tap's NAPI ({host_napi}), "
                          f"not in threads bound to the workers' CPUs")
        lab_peer = r.get("lab")
        if lab_peer:
            now = "moderated now" if lab_peer.get("peer-moderated") else "not moderated now"
            console.print(f"{r['dev']}: lab peer {lab_peer['netns']} ({lab_peer['peer'][0]}) receives "
                          f"{lab_peer.get('peer-receive')}, {now}")
        if r.get("wire-steering", "not on this wire") != "not on this wire":
            console.print(f"{r['dev']}: wire Rx queue steering {r['wire-steering']}")
        if "wire-rx-metadata" in r:
            offered = r["wire-rx-metadata"]
            offered = (", ".join(offered) or "none") if isinstance(offered, list) else offered
            used = ", ".join(r.get("wire-rx-metadata-used", [])) or "none (generic XDP: arrival stamp only)"
            console.print(f"{r['dev']}: wire {r.get('wire-ifname')} RX metadata offered: {offered}; used: {used}; "
                          f"RX hash {r.get('wire-hash')}")
    return 0


STATUS_COLUMNS = ("device", "state", "pid", "queues", "CPUs", "wire", "mode", "MTU")


def latency_table(name: str, stats: dict) -> Table:
    """Per-queue Rx latency percentiles (wire arrival to tap write), interpolated in the log2 buckets."""
    keys = [f"p{p}" for p in latency.PERCENTILES] + ["mean"]
    # Titled short: rich wraps a title at its table's width.
    out = table(f"{name} Rx latency (us, wire to tap)", ("queue", "frames", *keys))
    lat = stats.get("rx-latency", {})
    for q in lat.get("queues", []):
        out.add_row(str(q["queue-id"]), str(q["frames"]), *(_us(q[k]) for k in keys))
    if "device" in lat:
        out.add_row("device", str(lat["device"]["frames"]), *(_us(lat["device"][k]) for k in keys), style="bold")
    return out


# Counters first, then the pool at the moment of reading (gauges: never summed).
POOL_COLUMNS = ("alloc-fast", "alloc-refill", "alloc-slow", "recycle-cached", "recycle-cache-full",
                "recycle-ring", "recycle-ring-full", "inflight", "cached", "ring", "lent")
POOL_GAUGES = ("inflight", "cached", "ring", "lent")
# Without --all: where pages come from and go back to, and what the stack holds, in 80 columns.
POOL_USUAL = ("alloc-fast", "alloc-slow", "recycle-cached", "recycle-ring", "inflight", "ring")


def page_pool_table(name: str, stats: dict, columns: tuple[str, ...] = POOL_COLUMNS) -> Table:
    """Each Rx queue's page pool: allocations and recycles as page_pool counts them, and what it holds."""
    region = stats.get("region") or {}
    title = f"{name} page pools"
    if region:
        title += f" ({region['frames-free']} of {region['frames']} UMEM frames free)"
    out = table(title, ("queue", *columns))
    for p in stats.get("page-pools", []):
        out.add_row(str(p["queue-id"]), *(str(p.get(c, 0)) for c in columns))
    base = stats.get("page-pool-base", {})
    if any(base.values()):
        out.add_row("retired", *("" if c in POOL_GAUGES else str(base.get(c, 0)) for c in columns), style="dim")
    device = stats.get("page-pool-device", {})
    out.add_row("device", *("" if c in POOL_GAUGES else str(device.get(c, 0)) for c in columns), style="bold")
    return out


def _us(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def cmd_stats(args: argparse.Namespace) -> int:
    stats = ctlsock.request(args.name, "stats")
    if wants_json(args):
        emit_json(args, stats)
        return 0
    queues = stats["queues"]
    columns = [k for k in queues[0] if k != "queue-id"] if args.all else list(STATS_COLUMNS)
    counters = table(f"{args.name} queue statistics", ("queue", *columns))
    for q in queues:
        counters.add_row(str(q["queue-id"]), *(str(q[c]) for c in columns))
    # Device scope as netdev_stat_ops give it: what retired queues left + live queues.
    base, device = stats["base"], stats["device"]
    if any(base.get(c) for c in columns):
        counters.add_row("retired", *(str(base.get(c, 0)) for c in columns), style="dim")
    counters.add_row("device", *(str(device.get(c, 0)) for c in columns), style="bold")
    console = Console()  # print_table widens it for a table that needs more (--all)
    for t in (counters, latency_table(args.name, stats),
              page_pool_table(args.name, stats, POOL_COLUMNS if args.all else POOL_USUAL)):
        print_table(console, t)
        console.print()  # a blank line ends each table, as ip -s ends each device
    health, admin = stats.get("health", {}), stats.get("admin-queue", {})
    resets = ", ".join(f"{k}={v}" for k, v in health.get("reasons", {}).items() if v) or "none"
    console.print(f"health: total_resets {health.get('total_resets', 0)}, reset_fail {health.get('reset_fail', 0)}, "
                  f"wd_expired {health.get('wd_expired', 0)}, missing_tx_cmpl {health.get('missing_tx_cmpl', 0)}; "
                  f"reasons: {resets}")
    console.print("admin queue: " + ", ".join(f"{k} {v}" for k, v in admin.items()))
    basic = ctlsock.request(args.name, "device-stats")
    console.print("device (GET_STATS, wire packets): " + ", ".join(f"{k} {v}" for k, v in basic.items()))
    if stats.get("faults"):
        console.print("faults in force: " + ", ".join(f["kind"] for f in stats["faults"]))
    return 0
