"""The device side of the ENA model: features, limits, IO queues, executed from the admin queue.

This is what firmware does on a real ENA: it validates every command against
its attributes and answers with a status and a reason. It knows nothing of
TAP, AF_XDP or sockets; applying a change to the datapath is the Backend's
job (the OS glue in softena.control).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Protocol

from softena.device.admin import Command, Completion, Feature, Opcode, Status
from softena.device.features import DeviceAttributes
from softena.device.rss import FLOW_TYPES, RssConfig

# The datapath's engines; ntuple (aRFS) is the host's flow table, apart from them.
ENGINE_OFFLOADS = ("tx_csum", "tso", "rx_csum", "rxhash", "hw_gro")
OFFLOADS = (*ENGINE_OFFLOADS, "ntuple")
OFF_BY_DEFAULT = ("ntuple",)  # as on a NIC: aRFS is asked for (ethtool -K ntuple on)
LLQ_HEADER_SIZES = (96, 224)


@dataclass
class Coalesce:
    """Interrupt moderation: how long a worker may defer after work arrives."""

    rx_usecs: int = 0
    tx_usecs: int = 0
    adaptive_rx: bool = False


@dataclass
class Settings:
    """The device's current configuration."""

    queues: int
    rx_ring: int = 1024
    tx_ring: int = 1024
    mtu: int = 1500
    offloads: dict[str, bool] = field(default_factory=lambda: {o: o not in OFF_BY_DEFAULT for o in OFFLOADS})
    rss: RssConfig = field(init=False)  # the default for QUEUES, set below
    coalesce: Coalesce = field(default_factory=Coalesce)
    llq_header: int = 96

    def __post_init__(self) -> None:
        self.rss = RssConfig(self.queues)


class Backend(Protocol):
    """What the OS glue does when the device accepts a change."""

    def apply_mtu(self, mtu: int) -> None: ...
    def apply_offloads(self, offloads: dict[str, bool]) -> None: ...
    def apply_rss(self, rss: RssConfig) -> None: ...
    def apply_coalesce(self, coalesce: Coalesce) -> None: ...
    def device_counters(self) -> dict[str, int]: ...
    def tx_ring_min(self, mtu: int) -> int: ...


class Refused(Exception):
    """A command the device refuses: a status and the reason, as an extack."""

    def __init__(self, status: Status, reason: str) -> None:
        super().__init__(reason)
        self.status = status


class EnaDevice:
    """Executes admin commands against the attributes and the current settings."""

    def __init__(self, name: str, attrs: DeviceAttributes, settings: Settings, backend: Backend) -> None:
        self.name = name
        self.attrs = attrs
        self.settings = settings
        self.backend = backend
        self.io_sqs: set[tuple[str, int]] = set()  # ("tx"|"rx", qid)
        self.io_cqs: set[int] = set()
        self._handlers: dict[tuple[Opcode, Feature | None], Callable[[dict], Any]] = {
            (Opcode.GET_FEATURE, Feature.DEVICE_ATTRIBUTES): lambda a: asdict(self.attrs),
            (Opcode.GET_FEATURE, Feature.MAX_QUEUES_NUM): self._max_queues,
            (Opcode.SET_FEATURE, Feature.MTU): self._set_mtu,
            (Opcode.SET_FEATURE, Feature.STATELESS_OFFLOAD_CONFIG): self._set_offloads,
            (Opcode.SET_FEATURE, Feature.RSS_HASH_FUNCTION): self._set_rss_key,
            (Opcode.SET_FEATURE, Feature.RSS_INDIRECTION_TABLE_CONFIG): self._set_rss_table,
            (Opcode.SET_FEATURE, Feature.RSS_HASH_INPUT): self._set_rss_input,
            (Opcode.SET_FEATURE, Feature.INTERRUPT_MODERATION): self._set_coalesce,
            (Opcode.SET_FEATURE, Feature.LLQ): self._set_llq,
            (Opcode.CREATE_CQ, None): self._create_cq,
            (Opcode.CREATE_SQ, None): self._create_sq,
            (Opcode.DESTROY_SQ, None): self._destroy_sq,
            (Opcode.DESTROY_CQ, None): self._destroy_cq,
            (Opcode.GET_STATS, None): self._get_stats,
        }

    def execute(self, cmd: Command) -> Completion:
        """The admin queue's executor."""
        handler = self._handlers.get((cmd.opcode, cmd.feature))
        if handler is None:
            return Completion(cmd.command_id, Status.UNSUPPORTED_OPCODE,
                              reason=f"{self.name}: unsupported command {cmd.opcode.name} {cmd.feature}")
        try:
            return Completion(cmd.command_id, Status.SUCCESS, handler(cmd.args))
        except Refused as exc:
            return Completion(cmd.command_id, exc.status, reason=str(exc))

    # ---- features -----------------------------------------------------------

    def _max_queues(self, _args: dict) -> dict:
        a = self.attrs
        return {"max_queues": a.max_queues, "max_rx_ring": a.max_ring_size, "max_tx_ring": a.max_ring_size,
                "min_ring": a.min_ring_size}

    def _set_mtu(self, args: dict) -> None:
        mtu = int(args["mtu"])
        if not self.attrs.min_mtu <= mtu <= self.attrs.max_mtu:
            raise Refused(Status.ILLEGAL_PARAMETER, f"Invalid MTU setting. new_mtu: {mtu}")
        need = self.backend.tx_ring_min(mtu)
        if self.settings.tx_ring < need:  # the next queue rebuild would fail
            raise Refused(Status.ILLEGAL_PARAMETER, f"Invalid MTU setting. new_mtu: {mtu} needs a Tx ring of "
                                                    f"{need} or more, the ring has {self.settings.tx_ring}")
        self.backend.apply_mtu(mtu)
        self.settings.mtu = mtu

    def _set_offloads(self, args: dict) -> None:
        new = {**self.settings.offloads, **args["offloads"]}
        unknown = set(new) - set(OFFLOADS)
        if unknown:
            raise Refused(Status.ILLEGAL_PARAMETER, f"{self.name}: unsupported offloads {sorted(unknown)}")
        self.backend.apply_offloads(new)
        self.settings.offloads = new

    def _set_rss_key(self, args: dict) -> None:
        key = bytes.fromhex(args["key"]) if args.get("key") is not None else self.settings.rss.key
        if args.get("function", "toeplitz") != "toeplitz":
            raise Refused(Status.ILLEGAL_PARAMETER, f"{self.name}: only the toeplitz hash function is supported")
        if len(key) != self.attrs.rss_key_size:
            raise Refused(Status.ILLEGAL_PARAMETER,
                          f"{self.name}: RSS hash key must be {self.attrs.rss_key_size} bytes, got {len(key)}")
        self._apply_rss(key=key)

    def _set_rss_table(self, args: dict) -> None:
        table = [int(q) for q in args["indir"]]
        if len(table) != self.attrs.rss_indir_size:
            raise Refused(Status.ILLEGAL_PARAMETER,
                          f"{self.name}: indirection table needs {self.attrs.rss_indir_size} entries")
        bad = [q for q in table if not 0 <= q < self.settings.queues]
        if bad:
            raise Refused(Status.ILLEGAL_PARAMETER,
                          f"{self.name}: indirection table points at queue {bad[0]}, "
                          f"but only {self.settings.queues} are active")
        self._apply_rss(indir=table)

    def _set_rss_input(self, args: dict) -> None:
        flow, fields = args["flow"], int(args["fields"])
        if flow not in FLOW_TYPES:
            raise Refused(Status.ILLEGAL_PARAMETER, f"{self.name}: unsupported flow type {flow}")
        self._apply_rss(fields={**self.settings.rss.fields, flow: fields})

    def _apply_rss(self, **changes: Any) -> None:
        rss = self.settings.rss
        new = RssConfig(self.settings.queues, key=changes.get("key", rss.key),
                        indir=changes.get("indir", list(rss.indir)), fields=changes.get("fields", dict(rss.fields)))
        self.backend.apply_rss(new)
        self.settings.rss = new

    def _set_coalesce(self, args: dict) -> None:
        new = Coalesce(**{**asdict(self.settings.coalesce), **args})
        for name in ("rx_usecs", "tx_usecs"):
            value = getattr(new, name)
            if not 0 <= value <= self.attrs.max_coalesce_usecs:
                raise Refused(Status.ILLEGAL_PARAMETER,
                              f"{self.name}: {name.replace('_', '-')} {value} out of range "
                              f"0..{self.attrs.max_coalesce_usecs}")
        self.backend.apply_coalesce(new)
        self.settings.coalesce = new

    def _set_llq(self, args: dict) -> None:
        size = int(args["header_size"])
        if not self.attrs.llq_supported:
            raise Refused(Status.UNSUPPORTED_OPCODE,
                          f"{self.name}: this device has no LLQ (a tap wire has no descriptors)")
        if size not in LLQ_HEADER_SIZES:
            raise Refused(Status.ILLEGAL_PARAMETER, f"{self.name}: tx-push-buf-len must be 96 or 224, got {size}")
        self.settings.llq_header = size

    # ---- statistics ---------------------------------------------------------

    def _get_stats(self, args: dict) -> dict[str, int]:
        """GET_STATS of type BASIC: what the device moved on the wire (struct ena_admin_basic_stats).

        The device counts wire frames: a GSO frame it segmented counts as its
        segments, a coalesced one as the frames that arrived.
        """
        if args.get("type", "basic") != "basic":
            raise Refused(Status.ILLEGAL_PARAMETER, f"{self.name}: only BASIC statistics are supported")
        c = self.backend.device_counters()
        return {
            "tx_bytes": c["tx-bytes"] - c["tx-hw-gso-bytes"] + c["tx-hw-gso-wire-bytes"],
            "tx_pkts": c["tx-packets"] - c["tx-hw-gso-packets"] + c["tx-hw-gso-wire-packets"],
            "rx_bytes": c["rx-bytes"] - c["rx-hw-gro-bytes"] + c["rx-hw-gro-wire-bytes"],
            "rx_pkts": c["rx-packets"] - c["rx-hw-gro-packets"] + c["rx-hw-gro-wire-packets"],
            "rx_drops": c["rx-hw-drops"],
            "tx_drops": c["tx-hw-drops"],  # malformed frames (tx-hw-drop-errors) are among them
            "rx_overruns": c["rx-hw-drop-overruns"],
        }

    # ---- IO queues ------------------------------------------------------------

    def _check_queue(self, qid: int, depth: int | None) -> None:
        if not 0 <= qid < self.attrs.max_queues:
            raise Refused(Status.ILLEGAL_PARAMETER,
                          f"{self.name}: queue {qid} beyond the device's {self.attrs.max_queues}")
        if depth is not None:
            a = self.attrs
            if not a.min_ring_size <= depth <= a.max_ring_size or depth & (depth - 1):
                raise Refused(Status.ILLEGAL_PARAMETER,
                              f"{self.name}: ring size {depth} must be a power of two in "
                              f"{a.min_ring_size}..{a.max_ring_size}")

    def _create_cq(self, args: dict) -> None:
        self._check_queue(args["qid"], args["depth"])
        self.io_cqs.add(args["qid"])

    def _create_sq(self, args: dict) -> None:
        self._check_queue(args["qid"], args["depth"])
        if args["qid"] not in self.io_cqs:
            raise Refused(Status.MALFORMED_REQUEST, f"{self.name}: SQ {args['qid']} created before its CQ")
        self.io_sqs.add((args["direction"], args["qid"]))

    def _destroy_sq(self, args: dict) -> None:
        self.io_sqs.discard((args["direction"], args["qid"]))

    def _destroy_cq(self, args: dict) -> None:
        self.io_cqs.discard(args["qid"])
