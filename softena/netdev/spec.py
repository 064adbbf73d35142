"""The netdev generic netlink family as softena publishes it: one table.

Names, types and numeric ids follow the kernel's netdev family
(Documentation/netlink/specs/netdev.yaml, include/uapi/linux/netdev.h).
Like ynl, everything else is driven by this table: the netlink codec that
talks to the kernel, the answers softena gives for its own devices, the
pretty and JSON printers, the Prometheus metric names and the columns of
`softena top`. An attribute's `kind` says how it may be used:

- "id": identifies an object (ifindex, queue id, napi id), never summed;
- "counter": only grows; device scope = base + live queues; a metric `_total`;
- "gauge": a value at this moment (inflight), never summed into totals;
- "config": a setting (napi-set), shown and set, not a measurement;
- "flags"/"enum": a bit set or a named value, printed by name.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Attr:
    """One attribute of an attribute set."""

    name: str
    id: int
    type: str  # u32, u64, uint, nest, pad
    kind: str = "id"  # id, counter, gauge, config, flags, enum
    enum: str | None = None  # the definition naming its values (flags/enum kinds)
    doc: str = ""
    nested: str | None = None  # the attribute set inside a nest
    multi: bool = False  # may repeat in one message (a list of values)


@dataclass(frozen=True)
class AttrSet:
    name: str
    attrs: tuple[Attr, ...]

    def __getitem__(self, name: str) -> Attr:
        for attr in self.attrs:
            if attr.name == name:
                return attr
        raise KeyError(f"attribute set {self.name} has no attribute {name}")

    def by_id(self, attr_id: int) -> Attr | None:
        return next((a for a in self.attrs if a.id == attr_id), None)

    def of_kind(self, *kinds: str) -> tuple[Attr, ...]:
        return tuple(a for a in self.attrs if a.kind in kinds)


@dataclass(frozen=True)
class Op:
    """One operation: its command id, attribute set, and what it takes."""

    name: str
    id: int
    attr_set: str
    do: bool = False
    dump: bool = False
    request: tuple[str, ...] = ()  # attributes a request may carry
    group: str | None = None  # multicast group, for notifications
    admin: bool = False  # needs CAP_NET_ADMIN


@dataclass(frozen=True)
class Family:
    name: str
    version: int
    definitions: dict[str, tuple[str, ...]]  # flag/enum name -> value names by bit/value
    attr_sets: dict[str, AttrSet]
    ops: tuple[Op, ...]
    groups: tuple[str, ...] = field(default=())

    def op(self, name: str) -> Op:
        for op in self.ops:
            if op.name == name:
                return op
        raise KeyError(name)

    def op_by_id(self, op_id: int) -> Op | None:
        return next((o for o in self.ops if o.id == op_id and not o.name.endswith("-ntf")), None) or \
            next((o for o in self.ops if o.id == op_id), None)


U32, U64, UINT, NEST, PAD = "u32", "u64", "uint", "nest", "pad"

# Definitions: flag sets by bit position, enums by value.
DEFINITIONS = {
    "xdp-act": ("basic", "redirect", "ndo-xmit", "xsk-zerocopy", "hw-offload", "rx-sg", "ndo-xmit-sg"),
    "xdp-rx-metadata": ("timestamp", "hash", "vlan-tag"),
    "xsk-flags": ("tx-timestamp", "tx-checksum", "tx-launch-time-fifo"),
    "queue-type": ("rx", "tx"),
    "qstats-scope": ("queue",),
    "napi-threaded": ("disabled", "enabled"),
}

_QSTATS_COUNTERS = (
    ("rx-packets", 8, "wire packets received and passed to the stack"),
    ("rx-bytes", 9, "bytes of rx-packets"),
    ("tx-packets", 10, "wire packets sent"),
    ("tx-bytes", 11, "bytes of tx-packets"),
    ("rx-alloc-fail", 12, "buffer allocation failures on the Rx path"),
    ("rx-hw-drops", 13, "packets that entered the device and never left it"),
    ("rx-hw-drop-overruns", 14, "drops for a transient lack of buffers or descriptors"),
    ("rx-csum-complete", 15, "packets marked CHECKSUM_COMPLETE"),
    ("rx-csum-unnecessary", 16, "packets marked CHECKSUM_UNNECESSARY"),
    ("rx-csum-none", 17, "packets the device did not checksum"),
    ("rx-csum-bad", 18, "packets with a bad checksum, delivered anyway"),
    ("rx-hw-gro-packets", 19, "packets coalesced by hardware GRO"),
    ("rx-hw-gro-bytes", 20, "bytes of rx-hw-gro-packets"),
    ("rx-hw-gro-wire-packets", 21, "wire packets coalesced into rx-hw-gro-packets"),
    ("rx-hw-gro-wire-bytes", 22, "bytes of rx-hw-gro-wire-packets"),
    ("rx-hw-drop-ratelimits", 23, "drops for exceeding the Rx rate limit"),
    ("tx-hw-drops", 24, "packets that arrived at the device and never left it"),
    ("tx-hw-drop-errors", 25, "packets dropped as invalid or malformed"),
    ("tx-csum-none", 26, "packets that needed no checksum from the device"),
    ("tx-needs-csum", 27, "packets, GSO wire packets included, the device checksummed"),
    ("tx-hw-gso-packets", 28, "packets the device segmented"),
    ("tx-hw-gso-bytes", 29, "bytes of tx-hw-gso-packets"),
    ("tx-hw-gso-wire-packets", 30, "wire packets made from tx-hw-gso-packets"),
    ("tx-hw-gso-wire-bytes", 31, "bytes of tx-hw-gso-wire-packets"),
    ("tx-hw-drop-ratelimits", 32, "drops for exceeding the Tx rate limit"),
    ("tx-stop", 33, "times the queue stopped taking packets because it was full"),
    ("tx-wake", 34, "times the queue started taking packets again"),
)

_PP_STATS_COUNTERS = (
    ("alloc-fast", 8, "allocations from the pool's cache"),
    ("alloc-slow", 9, "allocations that refilled from the slow path"),
    ("alloc-slow-high-order", 10, "slow-path allocations of high order"),
    ("alloc-empty", 11, "allocations that found the pool empty"),
    ("alloc-refill", 12, "allocations that refilled the cache from the ring"),
    ("alloc-waive", 13, "pages taken from the ring but waived (NUMA)"),
    ("recycle-cached", 14, "pages recycled into the cache"),
    ("recycle-cache-full", 15, "recycles that found the cache full"),
    ("recycle-ring", 16, "pages recycled into the ring"),
    ("recycle-ring-full", 17, "recycles that found the ring full"),
    ("recycle-released-refcnt", 18, "pages released because of elevated refcount"),
)

# Docs of the attributes a request must carry are the kernel's own (netdev.yaml):
# a missing one comes back as extack miss-type, and ynl prints its doc beside it.
ATTR_SETS = {
    "dev": AttrSet("dev", (
        Attr("ifindex", 1, U32, doc="netdev ifindex"),
        Attr("pad", 2, PAD),
        Attr("xdp-features", 3, U64, "flags", "xdp-act", "XDP features the device offers"),
        Attr("xdp-zc-max-segs", 4, U32, "config", doc="fragments a zero-copy frame may have"),
        Attr("xdp-rx-metadata-features", 5, U64, "flags", "xdp-rx-metadata", "RX metadata the device offers"),
        Attr("xsk-features", 6, U64, "flags", "xsk-flags", "AF_XDP features the device offers"),
    )),
    "io-uring-provider-info": AttrSet("io-uring-provider-info", ()),
    "page-pool": AttrSet("page-pool", (
        Attr("id", 1, UINT, doc="Unique ID of a Page Pool instance."),
        Attr("ifindex", 2, U32),
        Attr("napi-id", 3, UINT),
        Attr("inflight", 4, UINT, "gauge", doc="pages allocated from the pool and not yet returned"),
        Attr("inflight-mem", 5, UINT, "gauge", doc="bytes of the inflight pages"),
        Attr("detach-time", 6, UINT, "gauge", doc="CLOCK_BOOTTIME seconds when the driver detached the pool"),
        Attr("dmabuf", 7, U32),
        Attr("io-uring", 8, NEST, nested="io-uring-provider-info"),
    )),
    "page-pool-info": AttrSet("page-pool-info", (Attr("id", 1, UINT), Attr("ifindex", 2, U32))),
    "page-pool-stats": AttrSet("page-pool-stats", (
        Attr("info", 1, NEST, doc="Page pool identifying information.", nested="page-pool-info"),
        *(Attr(name, i, UINT, "counter", doc=doc) for name, i, doc in _PP_STATS_COUNTERS),
    )),
    "napi": AttrSet("napi", (
        Attr("ifindex", 1, U32),
        Attr("id", 2, U32, doc="ID of the NAPI instance."),
        Attr("irq", 3, U32, doc="the queue pair's interrupt vector"),
        Attr("pid", 4, U32, doc="the polling thread"),
        Attr("defer-hard-irqs", 5, U32, "config", doc="empty polls before the interrupt is re-armed"),
        Attr("gro-flush-timeout", 6, UINT, "config", doc="ns coalesced frames may wait before going up"),
        Attr("irq-suspend-timeout", 7, UINT, "config", doc="ns the interrupt stays suspended while polls find work"),
        Attr("threaded", 8, U32, "enum", "napi-threaded", "polled by a thread of its own"),
    )),
    "xsk-info": AttrSet("xsk-info", ()),
    "queue": AttrSet("queue", (
        Attr("id", 1, U32, doc="Queue index; most queue types are indexed like a C array, with indexes starting "
                               "at 0 and ending at queue count - 1. Queue indexes are scoped to an interface and "
                               "queue type."),
        Attr("ifindex", 2, U32, doc="ifindex of the netdevice to which the queue belongs."),
        Attr("type", 3, U32, "enum", "queue-type",
             "Queue type as rx, tx. Each queue type defines a separate ID space. XDP TX queues allocated in the "
             "kernel are not linked to NAPIs and thus not listed. AF_XDP queues will have more information set "
             "in the xsk attribute."),
        Attr("napi-id", 4, U32),
        Attr("dmabuf", 5, U32),
        Attr("io-uring", 6, NEST, nested="io-uring-provider-info"),
        Attr("xsk", 7, NEST, nested="xsk-info"),
    )),
    "qstats": AttrSet("qstats", (
        Attr("ifindex", 1, U32),
        Attr("queue-type", 2, U32, "enum", "queue-type"),
        Attr("queue-id", 3, U32),
        Attr("scope", 4, UINT, "flags", "qstats-scope"),
        *(Attr(name, i, UINT, "counter", doc=doc) for name, i, doc in _QSTATS_COUNTERS),
    )),
    "queue-id": AttrSet("queue-id", (Attr("id", 1, U32), Attr("type", 3, U32, "enum", "queue-type"))),
    "dmabuf": AttrSet("dmabuf", (
        Attr("ifindex", 1, U32, doc="netdev ifindex to bind the dmabuf to."),
        Attr("queues", 2, NEST, nested="queue-id", multi=True),
        Attr("fd", 3, U32, doc="dmabuf file descriptor to bind."),
        Attr("id", 4, U32),
    )),
}


def nested_set(attr: Attr) -> AttrSet:
    """The attribute set inside nest ATTR."""
    if attr.nested is None:
        raise KeyError(f"attribute {attr.name} is no nest")
    return ATTR_SETS[attr.nested]


OPS = (
    Op("dev-get", 1, "dev", do=True, dump=True, request=("ifindex",)),
    Op("dev-add-ntf", 2, "dev", group="mgmt"),
    Op("dev-del-ntf", 3, "dev", group="mgmt"),
    Op("dev-change-ntf", 4, "dev", group="mgmt"),
    Op("page-pool-get", 5, "page-pool", do=True, dump=True, request=("id", "ifindex")),
    Op("page-pool-add-ntf", 6, "page-pool", group="page-pool"),
    Op("page-pool-del-ntf", 7, "page-pool", group="page-pool"),
    Op("page-pool-change-ntf", 8, "page-pool", group="page-pool"),
    Op("page-pool-stats-get", 9, "page-pool-stats", do=True, dump=True, request=("info",)),
    Op("queue-get", 10, "queue", do=True, dump=True, request=("ifindex", "type", "id")),
    Op("napi-get", 11, "napi", do=True, dump=True, request=("ifindex", "id")),
    Op("qstats-get", 12, "qstats", dump=True, request=("ifindex", "scope")),
    # dmabuf binding: no softena device takes one (it has no device memory), the kernel answers
    Op("bind-rx", 13, "dmabuf", do=True, request=("ifindex", "fd", "queues"), admin=True),
    Op("napi-set", 14, "napi", do=True, admin=True,
       request=("id", "defer-hard-irqs", "gro-flush-timeout", "irq-suspend-timeout", "threaded")),
    Op("bind-tx", 15, "dmabuf", do=True, request=("ifindex", "fd")),
)

NETDEV = Family("netdev", 1, DEFINITIONS, ATTR_SETS, OPS, groups=("mgmt", "page-pool"))


def counters(attr_set: str) -> tuple[str, ...]:
    """Names of the counters of an attribute set, in spec order."""
    return tuple(a.name for a in ATTR_SETS[attr_set].of_kind("counter"))
