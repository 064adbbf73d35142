"""The report: one table of every case against its baseline and floor, then the detail sections.

Rows of the main table are dicts with: section, item (of issue 10), case,
test, value, unit, baseline, baseline_value, ratio, floor, kind
("ratio>=": ratio to the baseline at least FLOOR; "value<=": the value at
most FLOOR) and, optionally, fail_reason (a condition the floor also needs).
"""

from __future__ import annotations

import sys
from typing import Any, Sequence

MIB = 1 << 20


def verdict(row: dict) -> tuple[str, bool]:
    """(verdict, collapse): PASS/FAIL/NO DATA/NO BASE/-, and whether it is below half the floor."""
    floor, kind = row.get("floor"), row.get("kind")
    if floor is None:
        return "-", False
    if row.get("value") is None:
        return "NO DATA", True
    if kind == "ratio>=":
        if row.get("baseline_value") is None or row.get("ratio") is None:
            return "NO BASE", False
        ok = row["ratio"] >= floor and not row.get("fail_reason")
        # A collapse is below half the floor in every round (the best round decides), never one noisy run.
        return ("PASS" if ok else "FAIL"), max(row.get("round_ratios") or [row["ratio"]]) < floor / 2
    ok = row["value"] <= floor and not row.get("fail_reason")
    return ("PASS" if ok else "FAIL"), row["value"] > 2 * floor


def judge(rows: list[dict]) -> None:
    for r in rows:
        r["verdict"], r["collapse"] = verdict(r)


def _device_rx(row: dict) -> str:
    d = row.get("device_rx_latency") or {}
    return "-" if d.get("p50") is None else f"{d['p50']:.0f} / {d['p99']:.0f}"


def _ratio(row: dict) -> str:
    """Two decimals, three where two would hide which side of the floor it is on."""
    ratio, floor = row.get("ratio"), row.get("floor")
    if ratio is not None and floor is not None and abs(ratio - floor) < 0.005:
        return f"{ratio:.3f}"
    return _num(ratio)


def _rounds(row: dict) -> str:
    """The lowest and highest ratio of the rounds, so a reader sees how far the median is from a floor."""
    ratios = row.get("round_ratios") or []
    if len(ratios) < 2:
        return "-"
    return f"{min(ratios):.2f}-{max(ratios):.2f}"


def _rounds_met(row: dict) -> str:
    """For a failed ratio: in how many rounds it met its floor, when any did (an edge, not a clear miss)."""
    ratios, floor = row.get("round_ratios") or [], row.get("floor")
    met = sum(1 for x in ratios if floor is not None and x >= floor)
    return f" (met in {met} of {len(ratios)} rounds)" if met and row.get("kind") == "ratio>=" else ""


def _name(row: dict) -> str:
    base = f" vs {row['baseline']}" if row.get("baseline") and row["kind"] == "ratio>=" else ""
    return f"{row['case']} {row['test']}{base}"


def collapsed_cases(result: dict) -> set[str]:
    """The names of the cases a result found collapsed (below half a floor)."""
    return {_name(r) for r in result["rows"] if r.get("collapse")}


def _num(v: Any, spec: str = ".2f") -> str:
    return "n/a" if v is None else format(v, spec)


def _value(v: Any, unit: str) -> str:
    if v is None:
        return "n/a"
    if unit == "pps":
        return f"{v / 1e3:,.0f} kpps"
    if unit == "us":
        return f"{v:.1f} us"
    if unit == "%":
        return f"{v:.2f} %"
    if unit == "MiB":
        return f"{v:.0f} MiB"
    return f"{v:.2f} {unit}"


def table(title: str, head: Sequence[str], body: Sequence[Sequence[str]], right: set[int],
          use_rich: bool) -> None:
    """Print one aligned table (rich when asked and available)."""
    if use_rich:
        try:
            from rich.console import Console
            from rich.table import Table
        except ImportError:
            use_rich = False
    if use_rich:
        t = Table(title=title, title_justify="left")
        for i, h in enumerate(head):
            t.add_column(h, justify="right" if i in right else "left")
        for b in body:
            t.add_row(*b)
        Console().print(t)
        return
    widths = [max(len(h), *(len(b[i]) for b in body)) if body else len(h) for i, h in enumerate(head)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.rjust(w) if i in right else c.ljust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    print(title)
    print(line(head))
    print(line(["-" * w for w in widths]))
    for b in body:
        print(line(b))
    print()


def print_report(result: dict, use_rich: bool) -> None:
    cfg = result["config"]
    if not result["complete"]:
        print("INCOMPLETE RUN: the bench stopped early; the rows below hold what was measured.\n")
    print(f"softena bench ({'smoke' if cfg['smoke'] else 'full'}), {cfg['date']}: {cfg['cpu_model']}, "
          f"{cfg['cpus']} CPU(s), kernel {cfg['kernel']}, {cfg['queues']} queue(s), iperf3 {cfg['time']} s "
          f"x {cfg['repeat']} round(s), {cfg['elapsed_s']:.0f} s in all")
    if "tcp_congestion_control" in cfg:  # results saved before it was recorded lack it
        print(f"  host TCP: congestion control {cfg['tcp_congestion_control']}, "
              f"default qdisc {cfg['default_qdisc']}")
    if cfg.get("stolen_pct") is not None:  # likewise; None where /proc/stat has no steal column
        print(f"  hypervisor: {cfg['stolen_pct']:.1f}% of the CPUs' time stolen during the run "
              "(/proc/stat steal; per run in the throughput table)")
    if "iperf3" in cfg:  # likewise
        tool = cfg["iperf3"]
        streams = "a thread per -P stream" if tool["threads_per_stream"] else "every -P stream in one thread"
        print(f"  iperf3 {tool['version']} ({tool['path']}): {streams}")
    for name, desc in result.get("paths", {}).items():
        print(f"  {name:<20} {desc}")
    for line in result.get("notes", []):
        print(f"  note: {line}")
    print()

    rows = result["rows"]
    body: list[Sequence[str]] = []  # each table's rows, one after another
    for r in rows:
        floor = "-"
        if r.get("floor") is not None:
            floor = f">= {r['floor']:.2f}x" if r["kind"] == "ratio>=" else f"<= {_value(r['floor'], r['unit'])}"
        verdict_s = r["verdict"] + (f" ({r['fail_reason']})" if r.get("fail_reason") else "")
        body.append((r["item"], r["case"], r["test"], _value(r["value"], r["unit"]), r["baseline"] or "-",
                     _value(r.get("baseline_value"), r["unit"]) if r.get("baseline") else "-",
                     _ratio(r) if r["kind"] == "ratio>=" else "-", _rounds(r), floor, verdict_s))
    table("Every case against its baseline (same run) and its floor (issue 10 item); ratio: the median "
          "of the rounds' ratios, rounds: their range",
          ("#", "case", "test", "value", "baseline", "baseline value", "ratio", "rounds", "floor", "verdict"),
          body, {3, 5, 6, 7}, use_rich)

    tp = result.get("throughput", [])
    if tp:
        body = []
        for r in tp:
            per = r.get("cpu_s_per_gbit") or {}
            workers = " ".join(f"{k}={v:.3f}" for k, v in per.items() if k != "process" and v is not None)
            body.append((r["path"], r["test"], _num(r["gbps"]),
                         _num(r.get("device_cpu_pct"), ".0f") if "device_cpu_pct" in r else "-",
                         _num(per.get("process"), ".3f") if per else "-", workers or "-",
                         _num(r.get("stolen_pct"), ".1f")))
        table("Throughput (iperf3 TCP, median over rounds) and device cost: CPU seconds per Gbit carried; "
              "stolen: the share of the CPUs' time the hypervisor took during the runs",
              ("path", "test", "Gbit/s", "device CPU %", "CPU s/Gbit", "per worker (and host NAPI) CPU s/Gbit",
               "stolen %"), body, {2, 3, 4, 6}, use_rich)

    lat = result.get("latency", [])
    if lat:
        base = lat[0]
        body = []
        for r in lat:
            p, t = r["ping"], r["tcp_rr"]
            added = "-" if r is base else (f"{p['p50_us'] - base['ping']['p50_us']:+.1f} / "
                                           f"{t['p50_us'] - base['tcp_rr']['p50_us']:+.1f}")
            cpu = r.get("cpu", {}).get("process_pct")
            body.append((r["path"], r["mode"], f"{p['p50_us']:.1f}", f"{p['p99_us']:.1f}", f"{p['mean_us']:.1f}",
                         f"{t['p50_us']:.1f}", f"{t['p99_us']:.1f}", f"{t['mean_us']:.1f}", added,
                         _num(cpu, ".0f") if cpu is not None else "-", _device_rx(r)))
        table("Latency, round trip in microseconds (ping -i 0.001; TCP 1-byte request/response); device Rx: "
              "the device's own XDP-arrival-to-tap-write histogram during ping",
              ("path", "mode", "ping p50", "p99", "mean", "tcp_rr p50", "p99", "mean", "added p50 ping/rr",
               "device CPU %", "device Rx p50/p99"), body, set(range(2, 11)), use_rich)

    placed = result.get("placement", {})
    if placed.get("round_trips"):
        rts = placed["round_trips"]
        body = [(r["test"], r["placement"], f"{r['veth']['p50_us']:.1f}", f"{r['softena']['p50_us']:.1f}",
                 f"{r['softena']['p99_us']:.1f}", f"{r['softena']['p50_us'] - r['veth']['p50_us']:+.1f}")
                for r in rts]
        table(f"Round trips by placement, p50 in microseconds, every end pinned: W is CPU {rts[0]['worker_cpu']}, "
              "the worker of a 1-queue softena-xdp@1500 (default mode), O the other CPU",
              ("test", "placement", "veth", "softena", "softena p99", "added"), body, {2, 3, 4, 5}, use_rich)
    if placed.get("throughput"):
        tps = placed["throughput"]
        body = [(r["wire"], r["test"], f"{r['on_w']:.2f}", f"{r['on_o']:.2f}", f"{r['on_w'] / r['on_o']:.2f}")
                for r in tps]
        table(f"Single stream by placement, Gbit/s, the host's iperf3 pinned: W is CPU {tps[0]['worker_cpu']}, "
              "the worker of a 1-queue device at MTU 1500, O the other CPU",
              ("wire", "test", "host end on W", "on O", "W / O"), body, {2, 3, 4}, use_rich)

    if placed.get("arfs"):
        body = [(r["case"], r["unit"], *(f"{v:.2f}" if r["unit"] == "Gbit/s" else f"{v:.1f}" for v in r["values"]))
                for r in placed["arfs"]]
        table("--host-napi (default affine) and aRFS (ethtool -K ntuple): softena-xdp@1500, a queue per CPU; "
              "the peer's ends unpinned",
              ("case", "unit", "inline, aRFS off", "affine, aRFS off", "affine, aRFS on"), body, {2, 3, 4}, use_rich)

    sf = result.get("small_frames", [])
    if sf:
        body = []
        for r in sf:
            body.append((r["path"], f"{r['sent_pps']:,.0f}", f"{r['recv_pps']:,.0f}", f"{100 * r['loss']:.2f}",
                         "max" if not r["rate_limit"] else f"{r['rate_limit']:,.0f}", str(len(r["trials"])),
                         _num(r.get("worker_cores"), ".2f") if "worker_cores" in r else "-",
                         f"{r['pps_per_worker_core']:,.0f}" if r.get("pps_per_worker_core") else "-"))
        table("Small frames: 64-byte UDP frames (18-byte payload), one flow, best trial under 1% loss",
              ("path", "sent pps", "received pps", "loss %", "paced at", "trials", "worker cores",
               "pps per worker core"), body, {1, 2, 3, 4, 5, 6, 7}, use_rich)

    c = result.get("cost", {})
    if c.get("idle") or c.get("devices"):
        body = []
        idle = c.get("idle")
        if idle:
            body.append(("softena-xdp@1500 idle", f"{idle['seconds']:.0f} s",
                         f"{_num(idle['process_pct'])} % of a core", "-", "-"))
        for name, info in c.get("devices", {}).items():
            rss, umem = info.get("rss_bytes"), info.get("umem_bytes")
            body.append((name, "after its block", "-", f"{rss / MIB:.0f} MiB" if rss else "n/a",
                         f"{umem / MIB:.0f} MiB" if umem else "n/a"))
        table("Cost: idle CPU and resident memory (limit: UMEM + 64 MiB)",
              ("device", "when", "CPU", "RSS", "UMEM"), body, {2, 3, 4}, use_rich)

    judged = [r for r in rows if r.get("floor") is not None]
    failed = [r for r in judged if r["verdict"] != "PASS"]
    print(f"Floors: {len(judged) - len(failed)}/{len(judged)} PASS"
          + (f"; not passed: {'; '.join(_name(r) + ' ' + r['verdict'] + _rounds_met(r) for r in failed)}"
             if failed else ""))
    collapsed = [r for r in judged if r["collapse"]]
    if collapsed:
        print(f"COLLAPSE (below half a floor): {'; '.join(_name(r) for r in collapsed)}")
    errs = result.get("errors", [])
    if errs:
        print("\nErrors:")
        for e in errs:
            print(f"  {e}")
    sys.stdout.flush()
