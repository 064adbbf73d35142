"""softena's answers to the netdev family, computed from one device's model and counters.

This runs in the device process and reads; it owns nothing. Each operation
returns objects as plain dicts keyed by the spec's attribute names (enum and
flag values by name), in the order the kernel fills them, so the same
printer serves the kernel's answers and ours.

Identifiers that must not collide with the kernel's:
- NAPI ids: the kernel hands out ids from MIN_NAPI_ID = NR_CPUS + 1 upwards;
  values at or below NR_CPUS mean "a CPU", never a NAPI instance (see
  napi_hash_add and sk_rx_queue/XPS). softena's NAPI ids are taken from
  that reserved range, so no kernel NAPI can ever carry one of them.
- page pool ids: the kernel allocates them cyclically from 1 within 32 bits;
  softena's live at 0xF0000000 and above, a range the kernel reaches only
  after 4 billion page pool creations.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from softena.control.qstats import DeviceReading
from softena.netdev.spec import ATTR_SETS

NAPI_IDS_PER_DEVICE = 64  # the datapath's queue limit
PAGE_POOL_ID_BASE = 0xF0000000
# A page pool id's low bits name its queue (MAX_QUEUES = 64 fits in them).
PAGE_POOL_QID_BITS = 6


def kernel_max_cpus() -> int:
    """NR_CPUS of the running kernel: /sys/devices/system/cpu/kernel_max is NR_CPUS - 1."""
    try:
        with open("/sys/devices/system/cpu/kernel_max") as f:
            return int(f.read()) + 1
    except (OSError, ValueError):
        return 64  # the smallest NR_CPUS a distribution kernel ships with


def napi_id(slot: int, qid: int) -> int:
    """The NAPI id of queue pair QID of the device in SLOT: 1..NR_CPUS, never a kernel NAPI id."""
    nid = 1 + slot * NAPI_IDS_PER_DEVICE + qid
    if nid > kernel_max_cpus():
        raise ValueError(f"no NAPI id left below MIN_NAPI_ID for device slot {slot}")
    return nid


def napi_slot(nid: int) -> tuple[int, int] | None:
    """(slot, qid) of a softena NAPI id, or None for a kernel one."""
    if not 1 <= nid <= kernel_max_cpus():
        return None
    return (nid - 1) // NAPI_IDS_PER_DEVICE, (nid - 1) % NAPI_IDS_PER_DEVICE


def is_softena_page_pool(pool_id: int) -> bool:
    return pool_id >= PAGE_POOL_ID_BASE


# Where each qstats counter of a queue comes from. The datapath counts the
# host's view (a GSO or coalesced frame is one packet, as `ip -s link`
# counts the tap); qstats count wire packets, so the two are converted here.
def wire_qstats(c: dict[str, int]) -> dict[str, int]:
    """The qstats counters of one queue (or the device), in the spec's meanings.

    Ordered as the kernel fills them (every rx counter, then every tx one);
    counters the datapath does not count are left out, not sent as 0.
    """
    wire = {
        "rx-packets": c["rx-packets"] - c["rx-hw-gro-packets"] + c["rx-hw-gro-wire-packets"],
        "rx-bytes": c["rx-bytes"] - c["rx-hw-gro-bytes"] + c["rx-hw-gro-wire-bytes"],
        "tx-packets": c["tx-packets"] - c["tx-hw-gso-packets"] + c["tx-hw-gso-wire-packets"],
        "tx-bytes": c["tx-bytes"] - c["tx-hw-gso-bytes"] + c["tx-hw-gso-wire-bytes"],
    }
    names = [a.name for a in ATTR_SETS["qstats"].of_kind("counter")]
    ordered = [n for n in names if n.startswith("rx-")] + [n for n in names if n.startswith("tx-")]
    return {n: wire[n] if n in wire else c[n] for n in ordered if n in wire or n in c}


def split_by_direction(q: dict[str, int]) -> tuple[dict[str, int], dict[str, int]]:
    """Rx and Tx counters of one queue pair, for the rx and tx queue entries."""
    return ({k: v for k, v in q.items() if k.startswith("rx-")},
            {k: v for k, v in q.items() if k.startswith("tx-")})


@dataclass
class NapiSettings:
    """What napi-set changes on one queue pair's worker (the kernel's napi_config)."""

    defer_hard_irqs: int = 0
    gro_flush_timeout: int = 0  # ns
    irq_suspend_timeout: int = 0  # ns


def boottime_s() -> int:
    return int(time.clock_gettime(time.CLOCK_BOOTTIME))


class NetdevError(Exception):
    """An answer the kernel would give as an errno with an extack message."""

    def __init__(self, errno_name: str, message: str, bad_attr: str | None = None) -> None:
        super().__init__(message)
        self.errno_name = errno_name
        self.bad_attr = bad_attr

    def as_reply(self) -> dict:
        return {"errno": self.errno_name, "message": str(self), "bad-attr": self.bad_attr}


class NetdevFamily:
    """The netdev family's operations for one device.

    DEVICE provides: name, ifindex, slot (a small number unique among running
    devices), settings.queues, workers (each with .qid and .tid),
    read_counters(), napi_settings (one NapiSettings per queue pair),
    pool_generation (bumped whenever the pools are rebuilt) and
    frame_size (bytes of one pool frame).
    """

    def __init__(self, device) -> None:
        self.device = device

    # ---- objects -----------------------------------------------------------

    def dev(self) -> dict:
        # softena's host port runs no XDP program and has no AF_XDP zero-copy:
        # it offers none of these, and says so rather than echo the tap's. No
        # RX metadata either: an XDP program on ena0 would run as tun's, and tun
        # implements none of the metadata kfuncs (no xdp_metadata_ops). What the
        # wire offers softena's own program is in `softena status`.
        return {"ifindex": self.device.ifindex, "xdp-features": [], "xdp-rx-metadata-features": [],
                "xsk-features": []}

    def napi_ids(self) -> list[int]:
        return [napi_id(self.device.slot, q) for q in range(self.device.settings.queues)]

    def queues(self) -> list[dict]:
        d = self.device
        ids = self.napi_ids() if d.workers else []
        out = []
        for qtype in ("rx", "tx"):
            for qid in range(d.settings.queues):
                entry = {"id": qid, "type": qtype, "ifindex": d.ifindex}
                if ids:  # a stopped device's queues have no NAPI serving them
                    entry["napi-id"] = ids[qid]
                out.append(entry)
        return out

    def napis(self) -> list[dict]:
        d = self.device
        out = []
        for worker in list(d.workers):
            cfg = d.napi_settings[worker.qid]
            # In the order netdev_nl_napi_fill_one() fills them.
            out.append({"id": napi_id(d.slot, worker.qid), "ifindex": d.ifindex,
                        "irq": worker.qid + 1,  # MSI-X vector 0 is the admin queue's, as on ENA
                        "threaded": "enabled", "pid": worker.tid,
                        "defer-hard-irqs": cfg.defer_hard_irqs,
                        "irq-suspend-timeout": cfg.irq_suspend_timeout,
                        "gro-flush-timeout": cfg.gro_flush_timeout})
        return out

    def qstats(self, per_queue: bool, reading: DeviceReading | None = None) -> list[dict]:
        """Device or queue scope; READING: one taken for several answers, so they agree."""
        d = self.device
        reading = reading or d.read_counters()
        if not per_queue:
            return [{"ifindex": d.ifindex, **wire_qstats(reading.queue_totals)}] if reading.queue_totals else []
        out = []
        for qtype in ("rx", "tx"):
            for r in reading.queues:
                rx, tx = split_by_direction(wire_qstats(r.counters))
                out.append({"ifindex": d.ifindex, "queue-type": qtype, "queue-id": r.qid,
                            **(rx if qtype == "rx" else tx)})
        return out

    def page_pool_id(self, qid: int) -> int:
        d = self.device
        return PAGE_POOL_ID_BASE + (d.slot << 20) + ((d.pool_generation & 0x3FFF) << PAGE_POOL_QID_BITS) + qid

    @staticmethod
    def page_pool_queue(pool_id: int) -> int:
        """The queue a page pool id was given for (its low bits, see page_pool_id)."""
        return pool_id & ((1 << PAGE_POOL_QID_BITS) - 1)

    def page_pools(self, reading: DeviceReading | None = None) -> list[dict]:
        d = self.device
        ids = self.napi_ids()
        out = []
        for r in (reading or d.read_counters()).queues:
            g = r.pool_gauges
            pool = {"id": self.page_pool_id(r.qid), "ifindex": d.ifindex}
            # A detached pool has left its NAPI instance, and says when.
            if g["detach-time"]:
                pool["detach-time"] = g["detach-time"]
            else:
                pool["napi-id"] = ids[r.qid]
            pool.update({"inflight": g["inflight"], "inflight-mem": g["inflight"] * d.frame_size})
            out.append(pool)
        return out

    def page_pool_stats(self, reading: DeviceReading | None = None) -> list[dict]:
        d = self.device
        out = []
        for r in (reading or d.read_counters()).queues:
            out.append({"info": {"id": self.page_pool_id(r.qid), "ifindex": d.ifindex}, **r.pool})
        return out

    # ---- operations ----------------------------------------------------------

    def handle(self, op: str, attrs: dict, dump: bool) -> list[dict] | dict | None:
        """One request, as the kernel's netdev-genl.c answers it."""
        handler = {
            "dev-get": self._dev_get, "queue-get": self._queue_get, "napi-get": self._napi_get,
            "qstats-get": self._qstats_get, "page-pool-get": self._page_pool_get,
            "page-pool-stats-get": self._page_pool_stats_get, "napi-set": self._napi_set,
        }.get(op)
        if handler is None:
            raise NetdevError("EOPNOTSUPP", f"operation {op} is not supported")
        return handler(attrs, dump)

    def _ours(self, attrs: dict, key: str = "ifindex") -> bool:
        return key not in attrs or attrs[key] == self.device.ifindex

    def _dev_get(self, attrs: dict, dump: bool):
        if dump:
            return [self.dev()]
        _require(attrs, "ifindex")
        return self.dev()

    def _queue_get(self, attrs: dict, dump: bool):
        queues = self.queues() if self._ours(attrs) else []
        if dump:
            return queues
        _require(attrs, "ifindex", "type", "id")
        for q in queues:
            if q["id"] == attrs["id"] and q["type"] == attrs["type"]:
                return q
        raise NetdevError("EINVAL", "rx queue out of range" if attrs["type"] == "rx" else "tx queue out of range",
                          "id")

    def _napi_get(self, attrs: dict, dump: bool):
        napis = self.napis() if self._ours(attrs) else []
        return napis if dump else _one(napis, attrs, "napi id")

    def _qstats_get(self, attrs: dict, dump: bool):
        scope = attrs.get("scope", [])
        if isinstance(scope, str):
            scope = [scope]
        if set(scope) - {"queue"}:
            raise NetdevError("EINVAL", f"unknown scope {scope}", "scope")
        return self.qstats(per_queue="queue" in scope) if self._ours(attrs) else []

    def _page_pool_get(self, attrs: dict, dump: bool):
        pools = self.page_pools()
        return pools if dump else _one(pools, attrs, "page pool")

    def _page_pool_stats_get(self, attrs: dict, dump: bool):
        stats = self.page_pool_stats()
        if dump:
            return stats
        info = attrs.get("info") or {}
        if "id" not in info:
            raise NetdevError("EINVAL", "missing page pool id", "info")
        for s in stats:
            if s["info"]["id"] == info["id"]:
                return s
        raise NetdevError("ENOENT", f"page pool {info['id']} not found", "info")

    def _napi_set(self, attrs: dict, dump: bool):
        _require(attrs, "id")
        slot_qid = napi_slot(attrs["id"])
        if slot_qid is None or slot_qid[0] != self.device.slot or slot_qid[1] >= self.device.settings.queues:
            raise NetdevError("ENOENT", f"napi id {attrs['id']} not found", "id")
        if attrs.get("threaded", "enabled") != "enabled":
            raise NetdevError("EOPNOTSUPP", "softena polls each queue pair from a thread of its own", "threaded")
        changes = {k.replace("-", "_"): int(v) for k, v in attrs.items()
                   if k in ("defer-hard-irqs", "gro-flush-timeout", "irq-suspend-timeout")}
        limits = {"defer_hard_irqs": 0x7FFFFFFF}  # the kernel's policy: S32_MAX; the timeouts are u64 ns
        for key, value in changes.items():
            if not 0 <= value <= limits.get(key, 0xFFFFFFFFFFFFFFFF):
                raise NetdevError("ERANGE", f"{key.replace('_', '-')} out of range", key.replace("_", "-"))
        self.device.set_napi(slot_qid[1], **changes)
        return None


def _one(objects: list[dict], attrs: dict, what: str) -> dict:
    """The object a do request names by its id, or the kernel's ENOENT."""
    _require(attrs, "id")
    for obj in objects:
        if obj["id"] == attrs["id"]:
            return obj
    raise NetdevError("ENOENT", f"{what} {attrs['id']} not found", "id")


def _require(attrs: dict, *names: str) -> None:
    for name in names:
        if name not in attrs:
            raise NetdevError("EINVAL", f"missing attribute {name}", name)
