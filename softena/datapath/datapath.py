"""The device's datapath: the C queue pairs, owned and configured from Python."""

from __future__ import annotations

import errno
import os
import threading
import time
from dataclasses import dataclass, field

from softena.datapath import latency
from softena.datapath.native import error_buffer, error_text, ffi, lib, struct_to_dict
from softena.device.rss import FLOW_TYPES, RssConfig
from softena.errors import SoftenaError

# The datapath's limits and fault bits, for the rest of softena: only this
# package reaches the native module.
MAX_QUEUES = lib.SN_MAX_QUEUES  # queue pairs of one device, and the XSKMAP's size
TSO_MAX_SEGS = lib.SN_TSO_MAX_SEGS  # wire frames one GSO frame may become
FAULT_BITS = {
    "tx-completion-stall": lib.SN_FAULT_TX_CMPL_STALL,
    "rx-alloc-fail": lib.SN_FAULT_RX_ALLOC,
    "corrupt-rx": lib.SN_FAULT_CORRUPT_RX,
}

# Why the wire's RX hash does or does not stand in for the device's Toeplitz.
WIRE_RSS_REASONS = {
    lib.SN_RSS_REUSE_OK: "reused: the wire hashes with the device's function, key and fields",
    lib.SN_RSS_REUSE_NO_CONFIG: "not reused: the wire reports no RSS configuration",
    lib.SN_RSS_REUSE_HFUNC: "not reused: the wire's hash function is not Toeplitz",
    lib.SN_RSS_REUSE_KEY: "not reused: the wire's RSS key is not the device's",
    lib.SN_RSS_REUSE_FIELDS: "not reused: the wire hashes other fields than the device for every flow type",
}
_ARRAYS = {"rx_latency_us": latency.KEYS}
# The counters the health watchdog compares between its looks (softena.control.health).
HEALTH_COUNTERS = ("tx_bad_req_id", "rx_bad_req_id", "rx_alloc_fail", "rx_csum_bad", "napi_polls")
assert len(latency.KEYS) == lib.SN_LATENCY_BUCKETS

XSK_FRAME_SIZE = 4096
# A tap wire hands over whole GSO frames: 64 KiB plus headers, 4 KiB-rounded.
TAP_FRAME_SIZE = 69632


@dataclass
class DatapathConfig:
    """Sizes of the region, pools and rings."""

    num_queues: int
    wire_kind: str  # "xsk" or "tap"
    wire_mtu: int
    rx_ring_size: int = 1024
    tx_ring_size: int = 1024
    multi_buffer: bool = False  # AF_XDP with XDP_USE_SG: frames across UMEM frames
    llq_header: int = 0  # LLQ push buffer per Tx frame (96 or 224), 0 off

    def native(self):
        cfg = ffi.new("struct sn_dev_config *")
        cfg.num_queues = self.num_queues
        cfg.wire_mtu = self.wire_mtu
        cfg.rx_ring_size = self.rx_ring_size
        cfg.tx_ring_size = self.tx_ring_size
        cfg.multi_buffer = self.multi_buffer
        cfg.llq_header = self.llq_header if self.wire_kind == "xsk" else 0
        # Every ring full, and as much again in the host's hands or in flight.
        cfg.frames_per_queue = 2 * (self.rx_ring_size + self.tx_ring_size)
        if self.wire_kind == "xsk":
            cfg.wire_kind = lib.SN_WIRE_XSK
            cfg.frame_size = XSK_FRAME_SIZE
        else:
            cfg.wire_kind = lib.SN_WIRE_TAP
            cfg.frame_size = TAP_FRAME_SIZE
            # Tap-wire frames are 68 KiB and only Rx holds them (Tx writes
            # straight through): a quarter of the Rx ring keeps the pool at
            # 17 MiB a queue by default.
            cfg.frames_per_queue = max(256, self.rx_ring_size // 4)
        return cfg


def release_free_memory() -> None:
    """Hand the heap's free pages back to the kernel; once a rebuild freed
    the old datapath and workers (see sn_heap_trim)."""
    lib.sn_heap_trim()


def tx_ring_min(wire_kind: str, mtu: int) -> int:
    """The smallest Tx ring the datapath accepts at wire MTU (a tap wire has no Tx ring)."""
    return lib.sn_tx_ring_min(mtu) if wire_kind == "xsk" else 0


def rss_native(rss: RssConfig, ffi=ffi):
    """A struct sn_rss_config for the datapath, or for the test vectors module's FFI."""
    cfg = ffi.new("struct sn_rss_config *")
    ffi.memmove(cfg.key, rss.key, len(rss.key))
    for i, q in enumerate(rss.indir):
        cfg.indir[i] = q
    for i, flow in enumerate(FLOW_TYPES):
        cfg.fields[i] = rss.fields[flow]
    return cfg


@dataclass(frozen=True)
class Arfs:
    """Accelerated RFS as the device runs it (bpf/softena_rfs.h): on or off
    (ethtool -K ntuple), the flow hash's seed, and the CPU of each queue's worker."""

    enabled: bool
    seed: int
    queue_cpus: tuple[int, ...]


def arfs_native(arfs: Arfs):
    """A struct sn_arfs_config for the datapath and the steering map."""
    cfg = ffi.new("struct sn_arfs_config *")
    cfg.enabled, cfg.seed, cfg.num_queues = int(arfs.enabled), arfs.seed, len(arfs.queue_cpus)
    for q, cpu in enumerate(arfs.queue_cpus):
        cfg.queue_cpu[q] = cpu
    return cfg


@dataclass
class QueueReading:
    """One queue's numbers, read in one pass: counters count from the queue's
    creation and only grow; gauges are the state at the moment of reading."""

    qid: int
    counters: dict[str, int] = field(default_factory=dict)
    gauges: dict[str, int] = field(default_factory=dict)
    pool: dict[str, int] = field(default_factory=dict)
    pool_gauges: dict[str, int] = field(default_factory=dict)


class Datapath:
    """One struct sn_dev: queue pairs, page pools and cross-queue rings.

    The admin thread, the control socket and the netlink watcher all reach
    the C device; the lock keeps them off a handle that close() freed.
    """

    def __init__(self, config: DatapathConfig) -> None:
        err = error_buffer()
        self.config = config
        dev = lib.sn_dev_create(config.native(), err, len(err))
        if dev == ffi.NULL:
            raise SoftenaError(f"datapath: {error_text(err)}")
        self._dev = dev
        self._lock = threading.Lock()
        self.wire_rss: dict = {"error": "not read"}
        self.wire_rss_reason = WIRE_RSS_REASONS[lib.SN_RSS_REUSE_NO_CONFIG]

    @property
    def handle(self):
        """The sn_dev pointer, for the workers' batch calls."""
        return self._dev

    def attach_xsk(self, qid: int, host_fd: int, ifname: str, xskmap_fd: int, timeout: float = 3.0) -> None:
        """Give queue QID its tap fd and an AF_XDP socket on IFNAME queue QID.

        A socket closed moments ago (a rebuild) keeps its queue busy until the
        kernel's deferred release runs: EBUSY is retried for a while.
        """
        deadline = time.monotonic() + timeout
        while True:
            err = error_buffer()
            rc = lib.sn_queue_attach_xsk(self._dev, qid, host_fd, ifname.encode(), xskmap_fd, err, len(err))
            if rc == 0:
                return
            if rc != -errno.EBUSY or time.monotonic() > deadline:
                raise SoftenaError(f"{ifname}: queue {qid}: {error_text(err)}")
            time.sleep(0.05)

    def attach_tap(self, qid: int, host_fd: int, wire_fd: int) -> None:
        """Give queue QID its host tap fd and its wire tap fd."""
        err = error_buffer()
        if lib.sn_queue_attach_tap(self._dev, qid, host_fd, wire_fd, err, len(err)):
            raise SoftenaError(f"queue {qid}: {error_text(err)}")

    def zerocopy(self, qid: int) -> bool:
        """Whether queue QID's socket runs in zero-copy mode."""
        return lib.sn_queue_xsk_zerocopy(self._dev, qid) == 1

    def _call(self, fn, *args):
        with self._lock:
            if self._dev is not None:
                return fn(self._dev, *args)
            return None

    def set_rss(self, rss: RssConfig) -> None:
        """Load key, table and fields into the datapath (the wire hash's reuse follows)."""
        self._call(lib.sn_dev_set_rss, rss_native(rss))
        self._wire_rss_verdict()

    def set_arfs(self, table_fd: int, arfs: Arfs) -> None:
        """Steer flows the host reads to their reader's CPU by the flow table in
        TABLE_FD (-1: none, and RSS alone decides), mapped once per datapath."""
        r = self._call(lib.sn_dev_set_arfs, table_fd, arfs_native(arfs))
        if r:
            raise SoftenaError(f"cannot map the host's flow table: {os.strerror(-r)}")

    def read_wire_rss(self, ifname: str) -> None:
        """Ask the wire interface's driver for its RSS (ETHTOOL_GRSSH and
        ETHTOOL_GRXFH, as `ethtool -x` and `ethtool -n rx-flow-hash`), so its
        RX hash steers frames only where it equals the device's own."""
        wire = ffi.new("struct sn_rss_wire *")
        lib.sn_wire_rss_read(ifname.encode(), wire)
        self._wire = wire
        if wire.error:
            # The kernel's name: errorcode calls 95 ENOTSUP, ethtool's drivers return EOPNOTSUPP.
            name = "EOPNOTSUPP" if wire.error == errno.EOPNOTSUPP else errno.errorcode.get(wire.error, wire.error)
            self.wire_rss = {"error": f"{name}: {os.strerror(wire.error)}"}
        else:
            self.wire_rss = {"hfunc": wire.hfunc, "key": bytes(wire.key)[:wire.key_size].hex(),
                             "fields": dict(zip(FLOW_TYPES, list(wire.fields)))}
        self._wire_rss_verdict()

    def _wire_rss_verdict(self) -> None:
        wire = getattr(self, "_wire", None)
        if wire is not None:
            with self._lock:
                if self._dev is not None:
                    self.wire_rss_reason = WIRE_RSS_REASONS[lib.sn_dev_set_wire_rss(self._dev, wire)]

    def set_offloads(self, tx_csum: bool, tso: bool, rx_csum: bool, rxhash: bool, hw_gro: bool) -> None:
        """Switch the offload engines."""
        self._call(lib.sn_dev_set_offloads, ffi.new("struct sn_offloads *", (tx_csum, tso, rx_csum, rxhash, hw_gro)))

    def set_rx_mode(self, mac: bytes, promisc: bool, allmulti: bool, groups: list[bytes]) -> None:
        """The MAC filter: our address, the joined multicast groups, or everything."""
        mode = ffi.new("struct sn_rx_mode *")
        ffi.memmove(mode.mac, mac, 6)
        mode.promisc, mode.allmulti, mode.mc_count = promisc, allmulti, len(groups)
        for i, group in enumerate(groups[:lib.SN_MC_FILTER_SIZE]):
            ffi.memmove(mode.mc[i], group, 6)
        self._call(lib.sn_dev_set_rx_mode, mode)

    def set_faults(self, qid: int, faults: int) -> None:
        """Make queue QID misbehave (FAULT_BITS values or'ed), or stop it (0)."""
        self._call(lib.sn_queue_set_faults, qid, faults)

    @staticmethod
    def napi_native(settings):
        """A struct sn_napi_config of napi-set SETTINGS; SoftenaError when a value does not fit."""
        limits = {"defer_hard_irqs": 0x7FFFFFFF, "gro_flush_timeout": 2**64 - 1, "irq_suspend_timeout": 2**64 - 1}
        for name, top in limits.items():
            value = getattr(settings, name)
            if not 0 <= value <= top:
                raise SoftenaError(f"{name.replace('_', '-')} {value} out of range 0..{top}")
        cfg = ffi.new("struct sn_napi_config *")
        cfg.defer_hard_irqs = settings.defer_hard_irqs
        cfg.gro_flush_timeout_ns = settings.gro_flush_timeout
        cfg.irq_suspend_timeout_ns = settings.irq_suspend_timeout
        return cfg

    def set_napi(self, qid: int, settings) -> None:
        """Give queue QID its napi-set SETTINGS (defer_hard_irqs, gro_flush_timeout
        and irq_suspend_timeout in ns), which its worker reads at every poll and wait.

        Kept in the C queue rather than passed with each call: the poll needs
        gro-flush-timeout (how long GRO may hold) as much as the wait does, and a
        struct set on change keeps the two batch calls as narrow as they are.
        SETTINGS is read under the lock, so of two racing calls the last one
        carries the newest values.
        """
        with self._lock:
            if self._dev is not None:
                lib.sn_queue_set_napi(self._dev, qid, self.napi_native(settings))

    def set_mtu(self, mtu: int) -> None:
        """The wire's MTU: the TSO target and the Tx ring reservation follow."""
        self._call(lib.sn_dev_set_mtu, mtu)

    def read(self) -> list[QueueReading]:
        """Every queue's counters and gauges in one pass; [] once closed,
        so a reader racing a rebuild sees no queues rather than freed memory."""
        with self._lock:
            if self._dev is None:
                return []
            # Gauges are values of a moment, kept apart from the counters,
            # which only grow: only counters are ever summed into totals.
            gauges, pool_gauges = ffi.new("struct sn_qgauges *"), ffi.new("struct sn_pp_gauges *")
            pool = ffi.new("struct sn_pp_stats *")
            readings = []
            for qid in range(self.config.num_queues):
                lib.sn_queue_gauges(self._dev, qid, gauges)
                lib.sn_queue_pp_read(self._dev, qid, pool, pool_gauges)
                readings.append(QueueReading(
                    qid,
                    counters=struct_to_dict(lib.sn_queue_stats(self._dev, qid), "struct sn_qstats", _ARRAYS),
                    gauges=struct_to_dict(gauges, "struct sn_qgauges"),
                    pool=struct_to_dict(pool, "struct sn_pp_stats"),
                    pool_gauges=struct_to_dict(pool_gauges, "struct sn_pp_gauges")))
            return readings

    def read_health(self) -> list[QueueReading]:
        """Per queue, only what the watchdog looks at: HEALTH_COUNTERS and the
        gauges. A fraction of read()'s cost, paid once a second by an idle device."""
        with self._lock:
            if self._dev is None:
                return []
            gauges = ffi.new("struct sn_qgauges *")
            readings = []
            for qid in range(self.config.num_queues):
                stats = lib.sn_queue_stats(self._dev, qid)
                lib.sn_queue_gauges(self._dev, qid, gauges)
                readings.append(QueueReading(
                    qid, counters={name.replace("_", "-"): int(getattr(stats, name)) for name in HEALTH_COUNTERS},
                    gauges=struct_to_dict(gauges, "struct sn_qgauges")))
            return readings

    def region(self) -> dict[str, int]:
        """The UMEM's frames: how many, and how many no page pool holds (0 once closed)."""
        cfg = self.config.native()
        return {"frames": cfg.frames_per_queue * cfg.num_queues, "frame-size": cfg.frame_size,
                "frames-free": self._call(lib.sn_dev_frames_free) or 0}

    def detach_pools(self) -> None:
        """The page pools stop allocating and take their detach time; workers must have stopped."""
        self._call(lib.sn_dev_detach)

    def drain(self, timeout: float = 0.2) -> int:
        """Take every lent frame back: Tx completions (for up to TIMEOUT), Rx
        frames up to the host, then the wire closed with what it held. Returns
        the frames that never came back (0 unless the device lost some)."""
        return self._call(lib.sn_dev_drain, int(timeout * 1000)) or 0

    def set_poll(self, napi) -> None:
        """How every worker polls and sleeps (a worker.NapiConfig)."""
        self._call(lib.sn_dev_set_poll, napi.native())

    def run(self, qid: int) -> None:
        """Queue QID's NAPI loop, for its worker thread: returns after stop_queue(QID).
        Not under the lock: close() waits for the workers, which have returned."""
        lib.sn_napi_run(self._dev, qid)

    def stop_queue(self, qid: int) -> None:
        """End queue QID's loop and wake it to see that."""
        self._call(lib.sn_queue_stop, qid)

    def kick(self, qid: int) -> None:
        """Wake worker QID out of its sleep."""
        self._call(lib.sn_queue_kick, qid)

    def close(self) -> None:
        """Free queues, sockets and the region; workers must have stopped."""
        with self._lock:
            if self._dev is not None:
                lib.sn_dev_destroy(self._dev)
                self._dev = None
