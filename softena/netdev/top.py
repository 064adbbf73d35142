"""`softena top`'s numbers: per-queue rates from two reads of a device's netdev family.

A read asks the device, over its control socket (reads never wait behind a
change), for qstats-get at queue and device scope, queue-get, napi-get and
page-pool-get, and asks the kernel (psutil) for the CPU time of each NAPI's
polling thread (the NAPI's `pid`). A frame is the difference of two reads
over the time between them.

The columns are declared once, in COLUMNS, by the spec attribute each shows
and how, the way ynl prints from its spec rather than from code per field:

- "id":    the value as read: what the row is (queue id, worker thread);
- "rate":  the counter's difference over the interval, per second (shown times SCALE);
- "ratio": the counter's difference over the difference of another counter
           (wire packets per GRO frame);
- "gauge": the value as read (page pool inflight), never summed;
- "cpu":   the share of one CPU the thread the attribute names used;
- "pctl":  a percentile of the Rx latency histogram (wire arrival to tap
           write) over the interval, in microseconds, from the datapath's
           log2 buckets (source "latency": not a netdev attribute, read
           from the device's stats).

Each column is checked against the spec's kinds at import. Counters that go
back (a queue rebuilt by ethtool -L or a reset) restart their row's rates
for one interval instead of showing negative ones.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import psutil

from softena.control import ctlsock
from softena.control.state import DeviceState, pid_alive, socket_path
from softena.datapath import latency
from softena.errors import SoftenaError
from softena.netdev.spec import ATTR_SETS

READ_TIMEOUT = 2.0  # a device slower than this to answer a read is shown as not answering


@dataclass(frozen=True)
class Column:
    """One column of the view: a spec attribute (ATTR of attribute set SOURCE) and how it is shown."""

    title: str
    source: str  # qstats, napi, page-pool
    attr: str
    how: str  # id, rate, ratio, gauge, cpu
    per: str | None = None  # ratio: the counter ATTR is counted per
    scale: float = 1.0  # the table shows a rate times SCALE (bytes/s as Mbit/s); JSON and frames do not
    digits: int = 0
    sort_descending: bool | None = None  # a sort key of the view, and its natural direction
    usual: bool = False  # shown without --all

    @property
    def key(self) -> str:
        """The column's name in JSON: the spec attribute, with its unit where it has one (rates are
        per second of the counter's own unit, not scaled as the table shows them)."""
        if self.how == "rate":
            return f"{self.attr}-per-s"
        if self.how == "ratio":
            return f"{self.attr}-per-{self.per}"
        if self.how == "cpu":
            return "cpu-percent"
        if self.how == "pctl":
            return f"rx-latency-{self.attr}-us"
        return self.attr

    @property
    def doc(self) -> str:
        if self.source == "latency":
            return f"{self.attr} of the Rx latency, XDP arrival to tap write, over the interval (us)"
        return ATTR_SETS[self.source][self.attr].doc


# usual: the columns shown without --all, what an operator watches on a NIC and no more than fits
# 80 columns with their names whole (every sort key among them): traffic each way in packets and
# bits, what the device dropped, the tail of the Rx latency, and the worker's CPU share, the sign of
# a queue near its limit. The rest (worker thread, checksum errors, GRO/GSO, the median latency, page
# pool inflight) say why, not whether: --all and -j have them.
COLUMNS = (
    Column("queue", "qstats", "queue-id", "id", sort_descending=False, usual=True),
    Column("tid", "napi", "pid", "id"),
    Column("rx pps", "qstats", "rx-packets", "rate", sort_descending=True, usual=True),
    Column("rx Mbit/s", "qstats", "rx-bytes", "rate", scale=8e-6, digits=1, usual=True),
    Column("tx pps", "qstats", "tx-packets", "rate", sort_descending=True, usual=True),
    Column("tx Mbit/s", "qstats", "tx-bytes", "rate", scale=8e-6, digits=1, usual=True),
    Column("rx drop/s", "qstats", "rx-hw-drops", "rate", usual=True),
    Column("tx drop/s", "qstats", "tx-hw-drops", "rate", usual=True),
    Column("csum-bad/s", "qstats", "rx-csum-bad", "rate"),
    Column("gro/s", "qstats", "rx-hw-gro-packets", "rate"),
    Column("wire/gro", "qstats", "rx-hw-gro-wire-packets", "ratio", per="rx-hw-gro-packets", digits=1),
    Column("gso/s", "qstats", "tx-hw-gso-packets", "rate"),
    Column("wire/gso", "qstats", "tx-hw-gso-wire-packets", "ratio", per="tx-hw-gso-packets", digits=1),
    Column("lat p50us", "latency", "p50", "pctl", digits=1),
    Column("lat p99us", "latency", "p99", "pctl", digits=1, sort_descending=True, usual=True),
    Column("inflight", "page-pool", "inflight", "gauge"),
    Column("CPU %", "napi", "pid", "cpu", digits=1, sort_descending=True, usual=True),
)

_KINDS = {"id": ("id", "enum"), "rate": ("counter",), "ratio": ("counter",), "gauge": ("gauge",), "cpu": ("id",)}


def _check(columns: tuple[Column, ...]) -> None:
    for col in columns:
        if (col.source == "latency") != (col.how == "pctl"):
            raise ValueError(f"top column {col.title!r}: latency percentiles, and only they, come from the histogram")
        if col.how == "pctl":
            if col.attr not in {f"p{p}" for p in latency.PERCENTILES}:
                raise ValueError(f"top column {col.title!r}: no percentile {col.attr}")
            continue
        attrs = [col.attr] + ([col.per] if col.per else [])
        for name in attrs:
            kind = ATTR_SETS[col.source][name].kind  # KeyError names an attribute the spec lacks
            if kind not in _KINDS[col.how]:
                raise ValueError(f"top column {col.title!r}: {col.source} {name} is a {kind}, not for {col.how}")
        if (col.how == "ratio") != (col.per is not None):
            raise ValueError(f"top column {col.title!r}: a ratio, and only a ratio, names what it is per")


_check(COLUMNS)
SORT_COLUMNS = tuple(c for c in COLUMNS if c.sort_descending is not None)
USUAL_COLUMNS = tuple(c for c in COLUMNS if c.usual)
if not set(SORT_COLUMNS) <= set(USUAL_COLUMNS):
    raise ValueError("top: every sort key is a usual column (the keys sort what is on the screen)")


# ---- reads ---------------------------------------------------------------------------


@dataclass
class Row:
    """What one read found of one queue pair (or of the device): values by attribute set."""

    values: dict[str, dict] = field(default_factory=dict)  # source -> {attr: value}
    cpu_seconds: float | None = None  # user + system time of the thread (the whole process for the device)

    def get(self, source: str, attr: str):
        return self.values.get(source, {}).get(attr)


@dataclass
class Reading:
    """One read of one device."""

    dev: str
    at: float  # time.monotonic() of the counters' read
    pid: int | None = None
    queues: dict[int, Row] = field(default_factory=dict)
    device: Row | None = None
    pool_ids: frozenset = frozenset()
    error: str | None = None  # gone, not answering: the reason the rows are missing


Request = Callable[..., Any]  # ctlsock.request: the device's JSON answer


def _netdev(request: Request, dev: str, op: str, attrs: dict) -> list[dict]:
    answer = request(dev, "netdev", timeout=READ_TIMEOUT, op=op, attrs=attrs, dump=True)
    if "error" in answer:
        raise SoftenaError(f"{dev}: {op}: {answer['error'].get('message') or answer['error'].get('errno')}")
    return answer["reply"]


def _optional(request: Request, dev: str, op: str) -> list[dict]:
    try:
        return _netdev(request, dev, op, {})
    except SoftenaError:
        return []


def read(dev: str, request: Request = ctlsock.request) -> Reading:
    """One read of DEV: its netdev objects and its threads' CPU times. Never raises for a device that went."""
    state = DeviceState.load(dev)
    if state is None or not pid_alive(state.pid):
        return Reading(dev, time.monotonic(), error="gone")
    try:
        at = time.monotonic()
        per_queue = _netdev(request, dev, "qstats-get", {"scope": ["queue"]})
        device = _netdev(request, dev, "qstats-get", {})
    except SoftenaError as exc:
        gone = not pid_alive(state.pid) or not os.path.exists(socket_path(dev))  # `softena down` removes it first
        return Reading(dev, time.monotonic(), state.pid, error="gone" if gone else f"not answering: {exc}")
    # What these add (thread, inflight) may be missing for one read while queues are rebuilt: the counters stand.
    queues, napis, pools = (_optional(request, dev, op) for op in ("queue-get", "napi-get", "page-pool-get"))
    reading = Reading(dev, at, state.pid, device=Row({"qstats": device[0] if device else {}}))
    for entry in per_queue:
        row = reading.queues.setdefault(entry["queue-id"], Row({"qstats": {}}))
        row.values["qstats"].update(entry)
    qid_of_napi = {q["napi-id"]: q["id"] for q in queues if q.get("type") == "rx" and "napi-id" in q}
    for source, objs in (("napi", napis), ("page-pool", pools)):
        for obj in objs:
            qid = qid_of_napi.get(obj["id"] if source == "napi" else obj.get("napi-id"))
            if qid in reading.queues:
                reading.queues[qid].values[source] = obj
    reading.pool_ids = frozenset(p["id"] for p in pools)
    _read_latency(request, reading)
    _read_cpu(reading)
    return reading


def _read_latency(request: Request, reading: Reading) -> None:
    """Each queue's latency buckets, and the device's, from the device's stats (none: no column values)."""
    try:
        stats = request(reading.dev, "stats", timeout=READ_TIMEOUT)
    except SoftenaError:
        return
    keys = (*latency.KEYS, latency.SUM_KEY)
    for q in stats.get("queues", []):
        if q["queue-id"] in reading.queues:
            reading.queues[q["queue-id"]].values["latency"] = {k: q.get(k, 0) for k in keys}
    if reading.device is not None:
        reading.device.values["latency"] = {k: stats.get("device", {}).get(k, 0) for k in keys}


def _read_cpu(reading: Reading) -> None:
    """CPU seconds of every worker (by the NAPI's pid) and of the whole process."""
    try:
        proc = psutil.Process(reading.pid)
        threads = {t.id: t.user_time + t.system_time for t in proc.threads()}
        times = proc.cpu_times()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return
    for row in reading.queues.values():
        row.cpu_seconds = threads.get(row.get("napi", "pid"))
    if reading.device is not None:
        reading.device.values["napi"] = {"pid": reading.pid}
        reading.device.cpu_seconds = times.user + times.system


# ---- frames: the difference of two reads ----------------------------------------------


@dataclass
class FrameRow:
    label: str  # the queue id, or "device"
    cells: list  # one value (or None: not known this interval) per column
    restarted: bool = False  # counters went back: rates start again from this read


@dataclass
class Frame:
    """What the view shows of one device for one interval."""

    dev: str
    state: str  # up, gone, not answering: ...
    interval: float | None
    rows: list[FrameRow]
    total: FrameRow | None
    event: str | None = None  # what changed under the view: a reset, a queue count change


def _went_back(prev: Row, cur: Row) -> bool:
    old, new = prev.values.get("qstats", {}), cur.values.get("qstats", {})
    counters = {a.name for a in ATTR_SETS["qstats"].of_kind("counter")}
    return any(new.get(k, v) < v for k, v in old.items() if k in counters)


def cell(col: Column, prev: Row | None, cur: Row, dt: float | None):
    """COLUMN's value for a row read as PREV then CUR, DT seconds apart; None where it cannot be known."""
    value = cur.get(col.source, col.attr)
    if col.how in ("id", "gauge"):
        return value
    if col.how == "pctl":
        now, before = cur.values.get("latency"), prev.values.get("latency") if prev else None
        if not now or not before or not dt:
            return None
        counted = latency.delta(now, before)
        return latency.percentile(counted, float(col.attr[1:])) if min(counted.values()) >= 0 else None
    if prev is None or not dt or value is None:
        return None
    if col.how == "cpu":
        same_thread = prev.get(col.source, col.attr) == value
        if not same_thread or cur.cpu_seconds is None or prev.cpu_seconds is None:
            return None
        return max(0.0, cur.cpu_seconds - prev.cpu_seconds) / dt * 100
    before = prev.get(col.source, col.attr)
    if before is None or value < before:
        return None
    if col.how == "rate":
        return (value - before) / dt  # per second of the counter's unit: SCALE is the view's
    if col.per is None:  # a column "per frame" names its frames
        return None
    frames = (cur.get(col.source, col.per) or 0) - (prev.get(col.source, col.per) or 0)
    return (value - before) / frames if frames > 0 else None


def _frame_row(label: str, prev: Row | None, cur: Row, dt: float | None, columns: tuple[Column, ...]) -> FrameRow:
    restarted = False
    if prev is not None and _went_back(prev, cur):
        prev, restarted = _keep_thread(prev), True
    cells = [label if col.how == "id" and col.attr == "queue-id" else cell(col, prev, cur, dt) for col in columns]
    return FrameRow(label, cells, restarted)


def _keep_thread(prev: Row) -> Row:
    """PREV with only what a restart keeps: the thread and its CPU time (a worker outlives its counters)."""
    return Row({"napi": prev.values.get("napi", {})}, prev.cpu_seconds)


def settled(reading: Reading) -> bool:
    """Whether READING caught the device with its queues and pools in place, not half-way through a rebuild."""
    return reading.error is None and bool(reading.pool_ids) and len(reading.pool_ids) == len(reading.queues)


def change(since: Reading | None, cur: Reading) -> str | None:
    """What happened to the device between a settled read SINCE and CUR: a reset, a queue count change."""
    if since is None or cur.error or not settled(cur):
        return None
    if since.pid != cur.pid:
        return f"process restarted (pid {since.pid} -> {cur.pid})"
    if since.pool_ids != cur.pool_ids:  # the pool ids carry the generation of the device's pools
        before, after = len(since.queues), len(cur.queues)
        return "reset: queues rebuilt" if before == after else f"queues changed: {before} -> {after}"
    return None


def frame(prev: Reading | None, cur: Reading, columns: tuple[Column, ...] = COLUMNS,
          since: Reading | None = None) -> Frame:
    """The frame between two reads of one device; PREV None (or a failed read) gives rows without rates.

    SINCE is the last settled read, what a reset or queue change is told against (PREV by default:
    a read half-way through a rebuild has no pools to compare)."""
    if cur.error:
        return Frame(cur.dev, cur.error, None, [], None)
    usable = prev if prev is not None and prev.error is None and prev.pid == cur.pid else None
    dt = cur.at - usable.at if usable is not None else None
    event = change(since or prev, cur)
    rows = []
    for qid in sorted(cur.queues):
        before = usable.queues.get(qid) if usable is not None else None
        rows.append(_frame_row(str(qid), before, cur.queues[qid], dt, columns))
    total = (_frame_row("device", usable.device if usable is not None else None, cur.device, dt, columns)
             if cur.device else None)
    return Frame(cur.dev, "up", dt, rows, total, event)


def sort_rows(rows: list[FrameRow], col: Column, reverse: bool, columns: tuple[Column, ...] = COLUMNS) -> list:
    """ROWS ordered by COL in its natural direction (flipped by REVERSE); unknown values last, queue id breaks ties."""
    i = columns.index(col)
    descending = col.sort_descending != reverse
    qid = columns.index(next(c for c in columns if c.attr == "queue-id"))

    def key(row: FrameRow):
        value = row.cells[i]
        if col.attr == "queue-id":
            value = int(value)
        return value is None, -value if (descending and value is not None) else value, int(row.cells[qid])

    return sorted(rows, key=key)


def as_json(f: Frame, columns: tuple[Column, ...] = COLUMNS) -> dict:
    """FRAME as numbers, as ip -j -s gives them: each queue's row and the device's, every column by its
    JSON key (null: not known this interval)."""

    def row(r: FrameRow, device: bool) -> dict:
        out: dict = {}
        for col, value in zip(columns, r.cells):
            if col.attr == "queue-id":
                if device:
                    continue
                value = int(value)
            out[col.key] = value
        out["restarted"] = r.restarted
        return out

    return {"dev": f.dev, "state": f.state, "interval-s": f.interval, "event": f.event,
            "queues": [row(r, False) for r in f.rows], "device": row(f.total, True) if f.total else None}
