"""The device's ethtool interface: what `softena ethtool` asks the device process.

One method per ethtool operation, as a driver's ethtool_ops: gets read the
device model, sets go through the admin queue so the device validates them
and refuses with its reason, leaving everything as it was.
"""

from __future__ import annotations

from typing import Any, Callable

from softena import __version__
from softena.device.admin import AdminError, Feature, Opcode
from softena.device.model import LLQ_HEADER_SIZES, Settings
from softena.device.rss import FLOW_TYPES, INDIR_SIZE, default_indir
from softena.errors import SoftenaError

# ethtool -k names of the device's features, and the settings behind them.
FEATURES = {
    "rx-checksumming": "rx_csum",
    "tx-checksumming": "tx_csum",
    "tcp-segmentation-offload": "tso",
    "rx-gro-hw": "hw_gro",
    "receive-hashing": "rxhash",
}
# ethtool -K accepts these short names too; gro and lro name the device's coalescing.
FEATURE_ALIASES = {"rx": "rx-checksumming", "tx": "tx-checksumming", "tso": "tcp-segmentation-offload",
                   "gro": "rx-gro-hw", "lro": "rx-gro-hw", "large-receive-offload": "rx-gro-hw",
                   "rxhash": "receive-hashing"}


def _round_down_pow2(n: int) -> int:
    return 1 << (n.bit_length() - 1) if n > 0 else 0


class EthtoolOps:
    """ethtool operations of one device; `handle` is the control socket's entry."""

    def __init__(self, device) -> None:
        self.device = device
        self._ops: dict[str, Callable[..., Any]] = {
            "drvinfo": self.get_drvinfo,
            "get-channels": self.get_channels, "set-channels": self.set_channels,
            "get-rings": self.get_rings, "set-rings": self.set_rings,
            "get-features": self.get_features, "set-features": self.set_features,
            "get-rxfh": self.get_rxfh, "set-rxfh": self.set_rxfh,
            "get-rxnfc": self.get_rxnfc, "set-rxnfc": self.set_rxnfc,
            "get-coalesce": self.get_coalesce, "set-coalesce": self.set_coalesce,
            "get-stats": self.get_stats,
        }

    def handle(self, request: dict) -> Any:
        op = self._ops.get(request.get("op"))
        if op is None:
            raise SoftenaError(f"unknown ethtool operation {request.get('op')!r}")
        try:
            return op(**request.get("args", {}))
        except AdminError as exc:
            raise SoftenaError(str(exc)) from exc

    @property
    def settings(self) -> Settings:
        return self.device.settings

    def _submit(self, feature: Feature, **args: Any) -> Any:
        return self.device.admin.submit(Opcode.SET_FEATURE, feature, **args)

    # ---- -i ---------------------------------------------------------------

    def get_drvinfo(self) -> dict:
        return {"driver": "softena", "version": __version__, "firmware-version": "softena-ena-model",
                "bus-info": f"softena:{self.device.name}", "supports-statistics": True}

    # ---- -l / -L ----------------------------------------------------------

    def get_channels(self) -> dict:
        return {"combined-max": self._max_channels(), "combined-count": self.settings.queues}

    def _max_channels(self) -> int:
        limit = self.device.attrs.max_queues
        wire = self.device.config.wire
        if wire.kind == "xsk" and not wire.lab:  # an interface we cannot resize
            limit = min(limit, self.device.wire_queue_count())
        return limit

    def set_channels(self, combined: int) -> None:
        limit = self._max_channels()
        if not 1 <= combined <= limit:
            raise SoftenaError(f"{self.device.name}: requested channel count {combined} exceeds maximum {limit}"
                               if combined > limit else f"{self.device.name}: at least one channel is needed")
        rss = self.settings.rss
        if rss.indir != default_indir(rss.num_queues) and max(rss.indir) >= combined:
            raise SoftenaError(f"{self.device.name}: requested channel counts are too low for the existing "
                               "indirection table (ethtool -X equal N first)")
        if combined == self.settings.queues:
            return
        if rss.indir == default_indir(rss.num_queues):
            rss.indir = default_indir(combined)  # an untouched table follows the queues
        rss.num_queues = combined
        self.device.reconfigure_queues(combined, self.settings.rx_ring, self.settings.tx_ring)

    # ---- -g / -G ----------------------------------------------------------

    def get_rings(self) -> dict:
        a = self.device.attrs
        return {"rx-max": a.max_ring_size, "tx-max": a.max_ring_size, "rx": self.settings.rx_ring,
                "tx": self.settings.tx_ring, "tx-push-buf-len": self.settings.llq_header or None,
                "tx-push-buf-len-max": max(LLQ_HEADER_SIZES) if a.llq_supported else None}

    def set_rings(self, rx: int | None = None, tx: int | None = None, tx_push_buf_len: int | None = None) -> None:
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
        old_llq = st.llq_header
        if tx_push_buf_len is not None:
            self._submit(Feature.LLQ, header_size=tx_push_buf_len)
        new_rx, new_tx = sizes.get("rx", st.rx_ring), sizes.get("tx", st.tx_ring)
        # As on ENA, a new LLQ entry size takes new IO queues.
        if (new_rx, new_tx) != (st.rx_ring, st.tx_ring) or st.llq_header != old_llq:
            self.device.reconfigure_queues(st.queues, new_rx, new_tx)

    # ---- -k / -K ----------------------------------------------------------

    def get_features(self) -> dict:
        return {name: self.settings.offloads[key] for name, key in FEATURES.items()}

    def set_features(self, features: dict[str, bool]) -> dict:
        changes = {}
        for name, on in features.items():
            name = FEATURE_ALIASES.get(name, name)
            if name not in FEATURES:
                raise SoftenaError(f"{self.device.name}: feature {name} does not exist or cannot be changed")
            changes[FEATURES[name]] = bool(on)
        merged = {**self.settings.offloads, **changes}
        if not merged["tx_csum"] and merged["tso"]:
            merged["tso"] = False  # as the kernel does: TSO needs Tx checksumming
        self._submit(Feature.STATELESS_OFFLOAD_CONFIG, offloads=merged)
        return self.get_features()

    # ---- -x / -X, -n / -N ---------------------------------------------------

    def get_rxfh(self) -> dict:
        rss = self.settings.rss
        return {"rings": self.settings.queues, "indir": rss.indir, "key": rss.key.hex(), "hfunc": "toeplitz"}

    def set_rxfh(self, equal: int | None = None, weight: list[int] | None = None,
                 key: str | None = None, hfunc: str | None = None, default: bool = False) -> None:
        n = self.settings.queues
        table = None
        if default:
            table = default_indir(n)
        elif equal is not None:
            if not 1 <= equal <= n:
                raise SoftenaError(f"{self.device.name}: equal {equal} needs 1..{n} rings")
            table = default_indir(equal)
        elif weight is not None:
            table = _table_from_weights(self.device.name, weight, n)
        if key is not None or hfunc is not None:
            self._submit(Feature.RSS_HASH_FUNCTION, key=key, function=hfunc or "toeplitz")
        if table is not None:
            self._submit(Feature.RSS_INDIRECTION_TABLE_CONFIG, indir=table)

    def get_rxnfc(self, flow: str) -> dict:
        if flow not in FLOW_TYPES:
            raise SoftenaError(f"{self.device.name}: unsupported flow type {flow}")
        return {"flow": flow, "fields": self.settings.rss.fields[flow]}

    def set_rxnfc(self, flow: str, fields: int) -> None:
        self._submit(Feature.RSS_HASH_INPUT, flow=flow, fields=fields)

    # ---- -c / -C ----------------------------------------------------------

    def get_coalesce(self) -> dict:
        c = self.settings.coalesce
        return {"rx-usecs": c.rx_usecs, "tx-usecs": c.tx_usecs, "adaptive-rx": c.adaptive_rx}

    def set_coalesce(self, **changes: Any) -> None:
        self._submit(Feature.INTERRUPT_MODERATION, **{k.replace("-", "_"): v for k, v in changes.items()})

    # ---- -S ---------------------------------------------------------------

    def get_stats(self) -> dict[str, int]:
        """ENA-style names (ethtool -S on an ENA interface), from the same counters."""
        stats = self.device.stats()
        out: dict[str, int] = {}
        for name, value in stats["admin-queue"].items():
            out[f"ena_admin_q_{name}"] = value
        for name, value in stats["aenq"].items():
            out[f"aenq_{name}"] = value
        health = stats["health"]
        for name in ("total_resets", "reset_fail", "wd_expired", "missing_tx_cmpl"):
            out[name] = health.get(name, 0)
        for reason, count in health.get("reasons", {}).items():
            out[f"reset_reason_{reason.lower()}"] = count
        for q in stats["queues"]:
            i = q["queue-id"]
            out.update({
                f"queue_{i}_tx_cnt": q["tx-packets"], f"queue_{i}_tx_bytes": q["tx-bytes"],
                f"queue_{i}_tx_queue_stop": q["tx-stop"], f"queue_{i}_tx_queue_wakeup": q["tx-wake"],
                f"queue_{i}_tx_tso_packets": q["tx-hw-gso-packets"],
                f"queue_{i}_tx_tso_segments": q["tx-hw-gso-wire-packets"],
                f"queue_{i}_tx_csum_offload": q["tx-needs-csum"],
                f"queue_{i}_tx_llq_push": q["tx-llq-push"], f"queue_{i}_tx_llq_push_bytes": q["tx-llq-push-bytes"],
                f"queue_{i}_tx_napi_comp": q["napi-sleeps"], f"queue_{i}_tx_tx_poll": q["napi-polls"],
                f"queue_{i}_tx_dropped": q["tx-hw-drops"] + q["tx-hw-drop-errors"],
                f"queue_{i}_rx_cnt": q["rx-packets"], f"queue_{i}_rx_bytes": q["rx-bytes"],
                f"queue_{i}_rx_csum_good": q["rx-csum-unnecessary"], f"queue_{i}_rx_csum_bad": q["rx-csum-bad"],
                f"queue_{i}_rx_csum_unchecked": q["rx-csum-none"],
                f"queue_{i}_rx_page_alloc_fail": q["rx-alloc-fail"],
                f"queue_{i}_rx_lro_packets": q["rx-hw-gro-packets"],
                f"queue_{i}_rx_lro_segments": q["rx-hw-gro-wire-packets"],
                f"queue_{i}_rx_dropped": q["rx-hw-drops"],
                f"queue_{i}_rx_steered_in": q["rx-steered-in"], f"queue_{i}_rx_steered_out": q["rx-steered-out"],
                f"queue_{i}_rx_napi_wakeups": q["napi-wakeups"],
            })
        return out


def _table_from_weights(dev: str, weights: list[int], rings: int) -> list[int]:
    """ethtool's weight spreading: entries proportional to each ring's weight."""
    if len(weights) > rings or not any(weights) or min(weights) < 0:
        raise SoftenaError(f"{dev}: weights must be {rings} or fewer non-negative numbers, not all zero")
    total, table, acc = sum(weights), [], 0
    for ring, w in enumerate(weights):
        acc += w
        while len(table) < acc * INDIR_SIZE // total:
            table.append(ring)
    return table
