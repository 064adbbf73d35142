"""softena status / stats: what the devices are doing, as tables or JSON."""

from __future__ import annotations

import argparse
import json

from rich.console import Console
from rich.table import Table

from softena.control import ctlsock
from softena.control.state import DeviceState, denied, list_devices, pid_alive
from softena.datapath import latency
from softena.errors import SoftenaError

# Columns of the default stats table; --all and --json show every counter.
STATS_COLUMNS = ("rx-packets", "rx-bytes", "tx-packets", "tx-bytes", "rx-hw-drops", "tx-hw-drops",
                 "rx-csum-unnecessary", "rx-csum-bad", "tx-hw-gso-packets", "tx-hw-gso-wire-packets",
                 "rx-steered-out", "rx-steered-in")


def register(sub: argparse._SubParsersAction) -> None:
    status = sub.add_parser("status", help="list devices: queues, CPUs, wire and its mode")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.set_defaults(func=cmd_status)

    stats = sub.add_parser("stats", help="per-queue counters of a device")
    stats.add_argument("name", nargs="?", default="ena0")
    stats.add_argument("--json", action="store_true", help="machine-readable output")
    stats.add_argument("--all", action="store_true", help="every counter, not the usual columns")
    stats.set_defaults(func=cmd_stats)


def cmd_status(args: argparse.Namespace) -> int:
    rows = []
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
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print("no softena devices")
        return 0
    table = Table(title="softena devices")
    for col in ("device", "state", "pid", "queues", "CPUs", "wire", "mode", "MTU"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["dev"], r["state"], str(r.get("pid", "")), str(r.get("queues", "")),
                      ",".join(map(str, r.get("cpus", []))),
                      f"{r.get('wire', '')} {r.get('wire-ifname') or ''}".strip(),
                      r.get("wire-mode", ""), str(r.get("mtu", "")))
    console = Console()
    console.print(table)
    for r in rows:
        if "wire-rx-metadata" in r:
            offered = r["wire-rx-metadata"]
            offered = (", ".join(offered) or "none") if isinstance(offered, list) else offered
            used = ", ".join(r.get("wire-rx-metadata-used", [])) or "none (generic XDP: arrival stamp only)"
            console.print(f"{r['dev']}: wire {r.get('wire-ifname')} RX metadata offered: {offered}; used: {used}; "
                          f"RX hash {r.get('wire-hash')}")
    return 0


def latency_table(name: str, stats: dict) -> Table:
    """Per-queue Rx latency percentiles (wire arrival to tap write), interpolated in the log2 buckets."""
    table = Table(title=f"{name} Rx latency, XDP arrival to tap write (us)")
    keys = [f"p{p}" for p in latency.PERCENTILES] + ["mean"]
    for col in ("queue", "frames", *keys):
        table.add_column(col, justify="right")
    lat = stats.get("rx-latency", {})
    for q in lat.get("queues", []):
        table.add_row(str(q["queue-id"]), str(q["frames"]), *(_us(q[k]) for k in keys))
    if "device" in lat:
        table.add_row("device", str(lat["device"]["frames"]), *(_us(lat["device"][k]) for k in keys), style="bold")
    return table


# Counters first, then the pool at the moment of reading (gauges: never summed).
POOL_COLUMNS = ("alloc-fast", "alloc-refill", "alloc-slow", "recycle-cached", "recycle-cache-full",
                "recycle-ring", "recycle-ring-full", "inflight", "cached", "ring")
POOL_GAUGES = ("inflight", "cached", "ring")


def page_pool_table(name: str, stats: dict) -> Table:
    """Each Rx queue's page pool: allocations and recycles as page_pool counts them, and what it holds."""
    region = stats.get("region") or {}
    title = f"{name} page pools"
    if region:
        title += f" ({region['frames-free']} of {region['frames']} UMEM frames free)"
    table = Table(title=title)
    table.add_column("queue")
    for col in POOL_COLUMNS:
        table.add_column(col, justify="right")
    for p in stats.get("page-pools", []):
        table.add_row(str(p["queue-id"]), *(str(p.get(c, 0)) for c in POOL_COLUMNS))
    base = stats.get("page-pool-base", {})
    if any(base.values()):
        table.add_row("retired", *("" if c in POOL_GAUGES else str(base.get(c, 0)) for c in POOL_COLUMNS),
                      style="dim")
    device = stats.get("page-pool-device", {})
    table.add_row("device", *("" if c in POOL_GAUGES else str(device.get(c, 0)) for c in POOL_COLUMNS),
                  style="bold")
    return table


def _us(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def cmd_stats(args: argparse.Namespace) -> int:
    stats = ctlsock.request(args.name, "stats")
    if args.json:
        print(json.dumps(stats, indent=2))
        return 0
    queues = stats["queues"]
    columns = [k for k in queues[0] if k != "queue-id"] if args.all else list(STATS_COLUMNS)
    table = Table(title=f"{args.name} queue statistics")
    table.add_column("queue")
    for col in columns:
        table.add_column(col, justify="right")
    for q in queues:
        table.add_row(str(q["queue-id"]), *(str(q[c]) for c in columns))
    # Device scope as netdev_stat_ops give it: what retired queues left + live queues.
    base, device = stats["base"], stats["device"]
    if any(base.get(c) for c in columns):
        table.add_row("retired", *(str(base.get(c, 0)) for c in columns), style="dim")
    table.add_row("device", *(str(device.get(c, 0)) for c in columns), style="bold")
    console = Console(width=max(120, 14 * (len(columns) + 1)))
    console.print(table)
    console.print(latency_table(args.name, stats))
    console.print(page_pool_table(args.name, stats))
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
