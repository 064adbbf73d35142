"""The device's ethtool interface: what `softena ethtool` asks the device process.

One method per ethtool operation, as a driver's ethtool_ops, named as ethtool
netlink names the operation (channels-get, rss-set, ...): gets read the
device model, sets go through the admin queue so the device validates them
and refuses with its reason, and a set that fails half-way puts back what
it changed.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Callable

from softena import __version__
from softena.control.ethtool_stats import ena_stats
from softena.device.admin import AdminError, Feature, Opcode
from softena.device.model import LLQ_HEADER_SIZES, Settings
from softena.device.rss import FLOW_TYPES, INDIR_SIZE, default_indir
from softena.errors import SoftenaError
from softena.log import log
from softena.ports import tap


@dataclass(frozen=True)
class FeatureDef:
    """One line of `ethtool -k`: its name, the names -K also takes, and what is behind it.

    OFFLOAD: the device's offload (Settings.offloads), changed through the
    admin queue. KERNEL: a feature the host kernel itself implements on the
    tap netdev (GRO is software in the host stack, whatever the device does),
    read and changed with SIOCETHTOOL as `ethtool -K` would. Neither: a
    feature the device does not have, shown off [fixed].
    """

    name: str
    aliases: tuple[str, ...] = ()
    offload: str | None = None
    kernel: str | None = None


# In ethtool -k's order: its legacy names first, then the kernel's feature bits.
FEATURES = (
    FeatureDef("rx-checksumming", ("rx", "rx-checksum"), offload="rx_csum"),
    FeatureDef("tx-checksumming", ("tx",), offload="tx_csum"),
    FeatureDef("tcp-segmentation-offload", ("tso", "tx-tcp-segmentation"), offload="tso"),
    FeatureDef("generic-receive-offload", ("gro", "rx-gro"), kernel="rx-gro"),
    # softena's coalescing follows tcp_gro_receive's rules, so the frames it
    # builds can be resegmented: that is hardware GRO (rx-gro-hw), not LRO.
    FeatureDef("large-receive-offload", ("lro", "rx-lro")),
    # aRFS: the kernel turns it on with NETIF_F_NTUPLE; softena has no -N rules besides.
    FeatureDef("ntuple-filters", ("ntuple", "rx-ntuple-filter"), offload="ntuple"),
    FeatureDef("receive-hashing", ("rxhash", "rx-hashing"), offload="rxhash"),
    FeatureDef("rx-gro-hw", (), offload="hw_gro"),
)
_FEATURE_NAMES = {alias: f for f in FEATURES for alias in (f.name, *f.aliases)}


def _round_down_pow2(n: int) -> int:
    return 1 << (n.bit_length() - 1) if n > 0 else 0


class EthtoolOps:
    """ethtool operations of one device; `handle` is the control socket's entry."""

    def __init__(self, device) -> None:
        self.device = device
        self._ops: dict[str, Callable[..., Any]] = {
            # ETHTOOL_GDRVINFO: ethtool netlink has no operation for it.
            "drvinfo": self.drvinfo,
            "channels-get": self.channels_get, "channels-set": self.channels_set,
            "rings-get": self.rings_get, "rings-set": self.rings_set,
            "features-get": self.features_get, "features-set": self.features_set,
            # -x/-X and -n/-N both: since Linux 6.16 the flow hash fields travel
            # in rss-get/rss-set (ETHTOOL_A_RSS_FLOW_HASH) beside the table and key.
            "rss-get": self.rss_get, "rss-set": self.rss_set,
            "coalesce-get": self.coalesce_get, "coalesce-set": self.coalesce_set,
            # ethtool -S is the ETHTOOL_GSTRINGS + ETHTOOL_GSTATS ioctl pair (netlink's
            # stats-get carries only the standard groups): one request, names with values.
            "gstats": self.gstats,
        }

    def handle(self, request: dict) -> Any:
        name = request.get("op")
        op = self._ops.get(name) if isinstance(name, str) else None
        if op is None:
            raise SoftenaError(f"unknown ethtool operation {request.get('op')!r}")
        args = {k.replace("-", "_"): v for k, v in request.get("args", {}).items()}
        try:
            inspect.signature(op).bind(**args)
        except TypeError as exc:
            raise SoftenaError(f"{self.device.name}: malformed {request.get('op')} request: {exc}") from exc
        try:
            return op(**args)
        except AdminError as exc:
            raise SoftenaError(str(exc)) from exc

    @property
    def settings(self) -> Settings:
        return self.device.settings

    def _submit(self, feature: Feature, **args: Any) -> Any:
        return self.device.admin.submit(Opcode.SET_FEATURE, feature, **args)

    # ---- -i ---------------------------------------------------------------

    def drvinfo(self) -> dict:
        return {"driver": "softena", "version": __version__, "firmware-version": "softena-ena-model",
                "bus-info": f"softena:{self.device.name}", "supports-statistics": True}

    # ---- -l / -L ----------------------------------------------------------

    def channels_get(self) -> dict:
        return {"combined-max": self._max_channels(), "combined-count": self.settings.queues}

    def _max_channels(self) -> int:
        limit = self.device.attrs.max_queues
        wire = self.device.config.wire
        if wire.kind == "xsk" and not wire.lab:  # an interface we cannot resize
            limit = min(limit, self.device.wire_queue_count())
        return limit

    def channels_set(self, combined_count: int) -> None:
        """New queue pairs; an untouched indirection table follows them.

        The device checks every table against its active queues, so a
        smaller table goes first when shrinking and last when growing; a
        failure anywhere puts the old table back through the admin queue and
        leaves queues and rings as they were.
        """
        n, st, name = combined_count, self.settings, self.device.name
        limit = self._max_channels()
        if not 1 <= n <= limit:
            raise SoftenaError(f"{name}: requested channel count {n} exceeds maximum {limit}"
                               if n > limit else f"{name}: at least one channel is needed")
        old_queues, old_table = st.queues, list(st.rss.indir)
        untouched = old_table == default_indir(old_queues)
        if not untouched and max(old_table) >= n:
            raise SoftenaError(f"{name}: requested channel counts are too low for the existing "
                               "indirection table (ethtool -X equal N first)")
        if n == old_queues:
            return
        new_table = default_indir(n) if untouched else None
        try:
            if new_table and n < old_queues:
                self._submit(Feature.RSS_INDIRECTION_TABLE_CONFIG, indir=new_table)
            self.device.reconfigure_queues(n, st.rx_ring, st.tx_ring)
            if new_table and n > old_queues:
                self._submit(Feature.RSS_INDIRECTION_TABLE_CONFIG, indir=new_table)
        except (SoftenaError, AdminError) as exc:
            self._restore_channels(old_queues, old_table)
            raise SoftenaError(f"{name}: cannot change to {n} channels, {old_queues} kept: {exc}") from exc

    def _restore_channels(self, queues: int, table: list[int]) -> None:
        """Back to QUEUES and TABLE after a failed -L. reconfigure_queues has
        restored the queue count itself unless the failure came after it."""
        st = self.settings
        try:
            if st.rss.indir != table:  # valid: the old table fits the queues now active
                self._submit(Feature.RSS_INDIRECTION_TABLE_CONFIG, indir=table)
            if st.queues != queues:
                self.device.reconfigure_queues(queues, st.rx_ring, st.tx_ring)
        except (SoftenaError, AdminError) as exc:
            log(self.device.name, "err", f"cannot restore {queues} channels and their indirection table: {exc}")

    # ---- -g / -G ----------------------------------------------------------

    def rings_get(self) -> dict:
        a = self.device.attrs
        return {"rx-max": a.max_ring_size, "tx-max": a.max_ring_size, "rx": self.settings.rx_ring,
                "tx": self.settings.tx_ring, "tx-push-buf-len": self.settings.llq_header or None,
                "tx-push-buf-len-max": max(LLQ_HEADER_SIZES) if a.llq_supported else None}

    def rings_set(self, rx: int | None = None, tx: int | None = None, tx_push_buf_len: int | None = None) -> None:
        a, st = self.device.attrs, self.settings
        sizes = {}
        for name, value in (("rx", rx), ("tx", tx)):
            if value is None:
                continue
            if value > a.max_ring_size:
                raise SoftenaError(f"{self.device.name}: requested {name} ring size {value} exceeds maximum "
                                   f"{a.max_ring_size}")
            # As ena(4): clamp to the minimum, round down to a power of two.
            sizes[name] = _round_down_pow2(max(value, a.min_ring_size))
        need, new_tx = self.device.tx_ring_min(st.mtu), sizes.get("tx", st.tx_ring)
        if new_tx < need:
            raise SoftenaError(f"{self.device.name}: requested tx ring size {new_tx} is below {need}, "
                               f"what two TSO frames take at MTU {st.mtu}")
        old_llq = st.llq_header
        if tx_push_buf_len is not None:
            self._submit(Feature.LLQ, header_size=tx_push_buf_len)
        new_rx, new_tx = sizes.get("rx", st.rx_ring), sizes.get("tx", st.tx_ring)
        # As on ENA, a new LLQ entry size takes new IO queues.
        if (new_rx, new_tx) != (st.rx_ring, st.tx_ring) or st.llq_header != old_llq:
            try:
                self.device.reconfigure_queues(st.queues, new_rx, new_tx)
            except SoftenaError:
                if st.llq_header != old_llq:
                    self._submit(Feature.LLQ, header_size=old_llq)
                raise

    # ---- -k / -K ----------------------------------------------------------

    def features_get(self) -> dict:
        rows = []
        for f in FEATURES:
            if f.offload is not None:
                active, fixed = self.settings.offloads[f.offload], False
            elif f.kernel is not None:
                active, changeable = tap.kernel_feature(self.device.name, f.kernel)
                fixed = not changeable
            else:
                active, fixed = False, True
            rows.append({"name": f.name, "active": active, "fixed": fixed})
        return {"features": rows}

    def features_set(self, wanted: dict[str, bool]) -> None:
        """Device offloads through the admin queue, the host's own features in
        the kernel; a fixed feature asked to change refuses the whole request."""
        name = self.device.name
        offloads, kernel = {}, {}
        for word, on in wanted.items():
            f = _FEATURE_NAMES.get(word)
            if f is None:
                raise SoftenaError(f"{name}: feature {word} does not exist or cannot be changed")
            if f.offload is not None:
                offloads[f.offload] = bool(on)
            elif f.kernel is not None:
                kernel[f.kernel] = bool(on)
            elif on:  # ethtool: "Could not change any device features", rx-lro: off [requested on]
                raise SoftenaError(f"{name}: Could not change any device features: {f.name} is off [fixed]")
        old = dict(self.settings.offloads)
        if offloads:
            merged = {**old, **offloads}
            if not merged["tx_csum"] and merged["tso"]:
                merged["tso"] = False  # as the kernel does: TSO needs Tx checksumming
            self._submit(Feature.STATELESS_OFFLOAD_CONFIG, offloads=merged)
        try:
            for feature, on in kernel.items():
                tap.set_kernel_feature(name, feature, on)
        except SoftenaError:
            if offloads:
                self._submit(Feature.STATELESS_OFFLOAD_CONFIG, offloads=old)
            raise

    # ---- -x / -X, -n / -N ---------------------------------------------------

    def rss_get(self) -> dict:
        rss = self.settings.rss
        return {"rings": self.settings.queues, "indir": rss.indir, "hkey": rss.key.hex(), "hfunc": "toeplitz",
                "flow-hash": dict(rss.fields)}

    def rss_set(self, equal: int | None = None, weight: list[int] | None = None, default: bool = False,
                hkey: str | None = None, hfunc: str | None = None,
                flow: str | None = None, fields: int | None = None) -> None:
        n, name = self.settings.queues, self.device.name
        table = None
        if default:
            table = default_indir(n)
        elif equal is not None:
            if not 1 <= equal <= n:
                raise SoftenaError(f"{name}: equal {equal} needs 1..{n} rings")
            table = default_indir(equal)
        elif weight is not None:
            table = _table_from_weights(name, weight, n)
        if flow is not None and flow not in FLOW_TYPES:
            raise SoftenaError(f"{name}: unsupported flow type {flow}")
        if hkey is not None or hfunc is not None:
            self._submit(Feature.RSS_HASH_FUNCTION, key=hkey, function=hfunc or "toeplitz")
        if table is not None:
            self._submit(Feature.RSS_INDIRECTION_TABLE_CONFIG, indir=table)
        if flow is not None and fields is not None:
            self._submit(Feature.RSS_HASH_INPUT, flow=flow, fields=fields)

    # ---- -c / -C ----------------------------------------------------------

    def coalesce_get(self) -> dict:
        c = self.settings.coalesce
        return {"rx-usecs": c.rx_usecs, "tx-usecs": c.tx_usecs, "use-adaptive-rx": c.adaptive_rx}

    def coalesce_set(self, rx_usecs: int | None = None, tx_usecs: int | None = None,
                     use_adaptive_rx: bool | None = None) -> None:
        changes = {"rx_usecs": rx_usecs, "tx_usecs": tx_usecs, "adaptive_rx": use_adaptive_rx}
        self._submit(Feature.INTERRUPT_MODERATION, **{k: v for k, v in changes.items() if v is not None})

    # ---- -S ---------------------------------------------------------------

    def gstats(self) -> dict[str, int]:
        """The ENA driver's names (ethtool -S on an ENA interface), from the device's counters."""
        return ena_stats(self.device.stats())


def _table_from_weights(dev: str, weights: list[int], rings: int) -> list[int]:
    """ethtool's weight spreading: entries proportional to each ring's weight."""
    if len(weights) > rings or not any(weights) or min(weights) < 0:
        raise SoftenaError(f"{dev}: weights must be {rings} or fewer non-negative numbers, not all zero")
    total, acc = sum(weights), 0
    table: list[int] = []
    for ring, w in enumerate(weights):
        acc += w
        while len(table) < acc * INDIR_SIZE // total:
            table.append(ring)
    return table
