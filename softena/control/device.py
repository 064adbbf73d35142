"""One softena device: bring-up, running state and teardown, in order.

This is the OS glue of the driver (ena_netdev.c's role): it creates the
ports, the datapath and the workers, and takes them down in reverse order,
also when bring-up fails half-way.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import socket
import threading
import time
from typing import Callable, TypeVar

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from softena.control.cleanup import clear_leftovers, remove_kernel_objects
from softena.control.config import XSK_MAX_MTU, DeviceConfig, check_environment
from softena.control.faults import DeviceFaults
from softena.control.health import HealthMonitor
from softena.control.hostwatch import HostLinkState, HostLinkWatcher, joined_groups, read_dev_mcast
from softena.control.qstats import DeviceReading, StatsBase
from softena.control.state import DeviceState, free_index, remove_files
from softena.control.timer import DeviceTimer
from softena.datapath import latency
from softena.datapath.datapath import (
    TAP_FRAME_SIZE,
    TSO_MAX_SEGS,
    XSK_FRAME_SIZE,
    Arfs,
    Datapath,
    DatapathConfig,
    release_free_memory,
    tx_ring_min,
)
from softena.datapath.worker import NapiConfig, QueueWorker, cpu_for_queue
from softena.device.admin import AdminError, AdminQueue, Feature, Opcode
from softena.device.aenq import Aenq, Event, Group
from softena.device.health import HealthStats, ResetReason
from softena.device.model import ENGINE_OFFLOADS, EnaDevice, Settings
from softena.device.rss import RssConfig
from softena.errors import SoftenaError
from softena.log import log
from softena.netdev import genl, notify
from softena.netdev.family import NapiSettings, NetdevFamily
from softena.ports import hostnapi, lab, rfs, steer, tap, xsk
from softena.ports.link import WireLink, queues_in_use
from softena.ports.peerdim import PeerDim

# Devices one machine runs at once: each takes a slot of NAPI ids below the kernel's MIN_NAPI_ID.
MAX_DEVICES = 32


def device_mac(name: str) -> str:
    """A stable, locally administered unicast MAC derived from the device name."""
    digest = hashlib.sha256(name.encode()).digest()
    return ":".join(f"{b:02x}" for b in (0x02, 0x5e, *digest[:4]))


def engine_offloads(offloads: dict[str, bool]) -> dict[str, bool]:
    """The offloads the datapath's engines take (Datapath.set_offloads)."""
    return {name: offloads[name] for name in ENGINE_OFFLOADS}


def link_exists(name: str) -> bool:
    with IPRoute() as ipr:
        return bool(ipr.link_lookup(ifname=name))


_T = TypeVar("_T")


def _set_up(part: _T | None, what: str) -> _T:
    """PART of a device, which start() sets up before any code that uses it runs."""
    if part is None:
        raise SoftenaError(f"{what} is not set up (the device is not started)")
    return part


class Device:
    """A running softena device and everything it owns."""

    def __init__(self, config: DeviceConfig, rfs_loaded: tuple[rfs.FlowRecorder | None, str] | None = None) -> None:
        """RFS_LOADED: rfs.try_load()'s answer from before the capabilities were
        dropped; None: start() loads the recorder itself."""
        self.config = config
        self._rfs_loaded = rfs_loaded
        self.name = config.name
        self.lab_names = lab.LabNames(config.name)
        # Descriptors carry headers only where there are descriptors: AF_XDP.
        self.attrs = dataclasses.replace(config.attrs, llq_supported=config.wire.kind == "xsk")
        self.multi_buffer = config.wire.kind == "xsk"  # until the kernel says otherwise
        self.settings = Settings(queues=config.queues, mtu=config.mtu,
                                 llq_header=config.llq_header if config.wire.kind == "xsk" else 0)
        self.model = EnaDevice(self.name, self.attrs, self.settings, backend=self)
        self.admin: AdminQueue | None = None
        self.aenq: Aenq | None = None
        self.link: WireLink | None = None
        self.timer: DeviceTimer | None = None
        self.peer_dim: PeerDim | None = None  # --peer-napi adaptive: the lab peer's moderation
        self.last_keep_alive = 0.0
        self.hostwatch: HostLinkWatcher | None = None
        self.faults = DeviceFaults(self)
        self.health: HealthMonitor | None = None
        self.health_stats = HealthStats()  # the device's, so no event before the watchdog starts is lost
        self.promisc = self.allmulti = False
        self._mc_groups: list[bytes] = []
        self._dev_mcast = b""  # /proc/net/dev_mcast at the last look
        self._rx_mode_lock = threading.Lock()
        # Serialises queue rebuilds (ethtool -L/-G, ip link up/down).
        self._io_lock = threading.RLock()
        # What datapaths rebuilt away had counted: totals never go back.
        self.stats_base = StatsBase()
        self.napi = NapiConfig(busy_poll_us=config.busy_poll_us)
        self.napi_settings = [NapiSettings() for _ in range(self.attrs.max_queues)]  # napi-set, per queue pair
        self.slot = 0
        self.pool_generation = 0  # bumped with each new set of page pools
        self.netdev = NetdevFamily(self)  # the published netdev-family view of this device
        self.state = DeviceState(config.name, os.getpid(), wire=config.wire.describe())
        self.host_fds: list[int] = []
        self.wire_fds: list[int] = []
        self.xdp: xsk.XdpAttachment | None = None
        self._xdp_lock = threading.Lock()  # readers of xdp.missed() vs. its detaching
        self.steering: steer.WireSteering | None = None  # the lab wire's RSS stage
        self.steering_note = "not on this wire"
        self.rfs: rfs.FlowRecorder | None = None  # aRFS: the host's flow table and its recorder
        self.rfs_note = "not loaded"
        self.datapath: Datapath | None = None
        self.workers: list[QueueWorker] = []
        self.ifindex = 0
        self.wire_ifname: str | None = None
        self.xdp_mode = "-"
        self.started_at = 0.0

    # What start() sets up, for the code that runs only once it has.

    @property
    def admin_queue(self) -> AdminQueue:
        """The admin queue, from _probe() on."""
        return _set_up(self.admin, f"{self.name}: admin queue")

    @property
    def events(self) -> Aenq:
        """The async event queue (AENQ), from _start_events() on."""
        return _set_up(self.aenq, f"{self.name}: event queue")

    @property
    def wire_name(self) -> str:
        """The wire's interface name, from _create_wire() on."""
        return _set_up(self.wire_ifname, f"{self.name}: wire")

    @property
    def xdp_attachment(self) -> xsk.XdpAttachment:
        """An AF_XDP wire's XDP program and XSKMAP, from _create_wire() on."""
        return _set_up(self.xdp, f"{self.name}: XDP attachment")

    # ---- bring-up ---------------------------------------------------------

    def start(self) -> None:
        """Bring the device up; on any failure, undo what was done and raise."""
        cfg = self.config
        cfg.validate()
        check_environment(cfg)
        clear_leftovers(self.name)
        if link_exists(self.name):
            raise SoftenaError(f"{self.name}: device name already taken")
        if cfg.wire.kind == "xsk":
            xsk.check_af_xdp()
            xsk.bpf_object_path()
        if cfg.wire.iface and cfg.wire.kind == "xsk" and not link_exists(cfg.wire.iface):
            raise SoftenaError(f"{self.name}: wire interface {cfg.wire.iface} does not exist")
        if cfg.wire.kind == "tap" and cfg.wire.iface and link_exists(cfg.wire.iface):
            raise SoftenaError(f"{self.name}: wire tap name {cfg.wire.iface} already taken")
        slot = free_index(self.name, "slot", MAX_DEVICES)
        if slot is None:
            raise SoftenaError(f"{self.name}: {MAX_DEVICES} softena devices are running already")
        self.slot = self.state.slot = slot
        self.state.save()
        try:
            self._probe()
            self._load_rfs()
            self._create_wire()
            self._create_host_port()
            self._start_io()
            # The wire's link comes up only now that every queue has its
            # socket: a frame the peer sent earlier would find none (missed).
            if cfg.wire.kind == "tap":
                tap.set_carrier(self.wire_fds[0], True)
            else:
                tap.set_link(self.wire_name, state="up")
            tap.set_carrier(self.host_fds[0], True)
            if cfg.wire.lab:
                lab.wait_reachable(self.lab_names)
            self._start_events()
        except (OSError, NetlinkError) as exc:
            self.stop()
            raise SoftenaError(f"{self.name}: bring-up failed: {exc}") from exc
        except BaseException:
            self.stop()
            raise
        self.started_at = time.monotonic()
        notify.publish("dev-add-ntf", self.netdev.dev())
        log(self.name, "info", f"up: {self.settings.queues} queue pairs on CPUs {self.cpu_list()}, "
                               f"wire {cfg.wire.describe()} ({self.xdp_mode})")

    def _probe(self) -> None:
        """Start the admin queue and read the device's attributes, as a driver's probe does."""
        self.admin = AdminQueue(self.name, self.model.execute,
                                stalled=lambda: self.faults.active("admin-timeout") is not None,
                                on_timeout=self._on_admin_timeout)
        attrs = self.admin.submit(Opcode.GET_FEATURE, Feature.DEVICE_ATTRIBUTES)
        limits = self.admin.submit(Opcode.GET_FEATURE, Feature.MAX_QUEUES_NUM)
        log(self.name, "debug", f"device attributes: {attrs}; queue limits: {limits}")

    def _on_admin_timeout(self, cmd) -> None:
        self.health_stats.admin_to += 1
        self._request_reset(ResetReason.ADMIN_TO)

    def _create_wire(self) -> None:
        cfg, names = self.config, self.lab_names
        if cfg.wire.lab:
            index = free_index(self.name, "lab_index", lab.MAX_LABS)
            if index is None:
                raise SoftenaError(f"{self.name}: all {lab.MAX_LABS} lab subnets are in use")
            names = self.lab_names = lab.LabNames(self.name, index)
            self.state.netns, self.state.lab_index = names.netns, names.index
            self.state.save()
            lab.create_netns(names)
        if cfg.wire.kind == "xsk":
            if cfg.wire.lab:
                self.state.links.append(names.wire)
                self.state.save()
                index = lab.create_veth(names, cfg.queues, self.attrs.max_queues, cfg.mtu)
                lab.configure_peer(names, receive=cfg.peer_napi)
                self.wire_ifname = names.wire
                self._attach_steering(lambda: steer.attach_veth(names.netns, lab.PEER_IFNAME, self._rfs_table()))
            else:
                self.wire_ifname = cfg.wire.iface
                with IPRoute() as ipr:
                    index = ipr.link_lookup(ifname=self.wire_name)[0]
            rxq = self.wire_queue_count()
            if rxq < cfg.queues:
                raise SoftenaError(f"{self.name}: wire {self.wire_name} has {rxq} rx queue(s); "
                                   f"{cfg.queues} queue pairs need as many")
            self.xdp = xsk.attach(self.wire_name, index)
            self.xdp_mode = self.xdp.mode
            return
        # A tap wire: our fds, the netdev in the peer namespace or on the host.
        self.wire_ifname = cfg.wire.iface or names.wire
        self.state.links.append(self.wire_name)
        self.state.save()
        self.wire_fds = tap.open_queues(self.wire_name, cfg.queues,
                                        tap.offload_flags(tx_csum=True, tso=True), napi=self._wire_tap_napi)
        self.xdp_mode = "tap, vnet headers"
        self._attach_steering(lambda: steer.attach_tap(self.wire_fds[0], self.wire_name, self._rfs_table()))
        tap.set_link(self.wire_name, mtu=cfg.mtu)
        if cfg.wire.lab:
            lab.move_to_peer(names, self.wire_name)
            lab.configure_peer(names, checksum_offload=True, receive=cfg.peer_napi)
        else:
            tap.set_link(self.wire_name, state="up")

    @property
    def _wire_tap_napi(self) -> bool:
        """A lab tap wire whose peer receives in NAPI threads takes our writes in NAPI polls (IFF_NAPI)."""
        return self.config.wire.lab and self.config.peer_napi == "threaded"

    def _attach_steering(self, attach: Callable[[], steer.WireSteering]) -> None:
        """The wire's RSS stage; without it (a kernel before tcx) the datapath hands frames over."""
        if not self.config.steering:
            self.steering_note = "off (--no-steering)"
            return
        try:
            self.steering = attach()
            self.steering_note = f"by RSS, {self.steering.where}"
        except SoftenaError as exc:
            self.steering_note = f"off: {exc}"
            log(self.name, "warning", f"wire steering off ({exc}): frames are handed between queues instead")

    def _load_rfs(self) -> None:
        """aRFS's recorder, before the steering programs that share its table; without
        it (a kernel without BTF) ntuple-filters cannot be turned on."""
        self.rfs, why = self._rfs_loaded or rfs.try_load()
        self._rfs_loaded = None  # the device owns it now, and stop() closes it
        if self.rfs is not None:
            self.rfs_note = "off (ethtool -K ntuple on)"
        else:
            self.rfs_note = f"unavailable: {why}"
            log(self.name, "warning", f"aRFS unavailable ({why}): ntuple-filters stays off")

    def _rfs_table(self) -> int:
        return self.rfs.table_fd if self.rfs is not None else -1

    def _sync_steering(self, rss: RssConfig, offloads: dict[str, bool]) -> None:
        """Give the datapath and the wire's RSS stage the device's aRFS, and the
        stage the device's RSS, queue count and rx hashing."""
        arfs = Arfs(offloads["ntuple"] and self.rfs is not None, self.rfs.seed if self.rfs else 0,
                    tuple(self.cpu_list()))
        if self.rfs is not None:
            self.rfs.set_attached(arfs.enabled)
            self.rfs_note = ("off (ethtool -K ntuple on)" if not arfs.enabled
                             else f"on, {len(set(arfs.queue_cpus))} CPUs" if len(arfs.queue_cpus) > 1
                             else "on, idle: one queue")
        dp = self.datapath
        if dp is not None:
            dp.set_arfs(self._rfs_table(), arfs)
        if self.steering is not None:
            self.steering.update(rss, self.settings.queues, offloads["rxhash"], arfs)

    def _create_host_port(self) -> None:
        cfg = self.config
        if cfg.host_napi == "affine":
            self.host_fds = hostnapi.open_queues(self.name, 0, cfg.queues, self._host_offloads(), self._cpu_of)
        else:
            self.host_fds = tap.open_queues(self.name, cfg.queues, self._host_offloads(), napi=self._host_napi)

        with IPRoute() as ipr:
            self.ifindex = ipr.link_lookup(ifname=self.name)[0]
            if self.rfs is not None:
                self.rfs.watch(self.ifindex)
            tap.set_carrier(self.host_fds[0], False)
            # Like a NIC's tso_max_segs: the host never hands over a frame
            # the Tx ring could not take whole.
            ipr.link("set", index=self.ifindex, address=device_mac(self.name), mtu=cfg.mtu,
                     gso_max_segs=TSO_MAX_SEGS)
            ipr.link("set", index=self.ifindex, state="up")
        if cfg.host_napi == "threaded":
            tap.set_threaded(self.name, True)
        if cfg.wire.lab:
            lab.address_host(self.lab_names)

    @property
    def _host_napi(self) -> bool:
        """--host-napi threaded or affine: the host takes our Rx in the tap's NAPI polls (IFF_NAPI), in threads."""
        return self.config.host_napi in ("threaded", "affine")

    def _cpu_of(self, qid: int) -> int:
        return cpu_for_queue(qid, self.config.cpus)

    def _host_offloads(self) -> int:
        off = self.settings.offloads
        return tap.offload_flags(off["tx_csum"], off["tso"])

    # ---- AENQ: link changes and keep-alive from the device ----------------

    def _start_events(self) -> None:
        def note(level: str) -> Callable[[Event], None]:
            return lambda ev: log(self.name, level, ev.data.get("message", ev.group.name))

        self.aenq = Aenq(self.name, {
            Group.LINK_CHANGE: self._on_link_change,
            Group.KEEP_ALIVE: self._on_keep_alive,
            Group.NOTIFICATION: note("notice"),
            Group.WARNING: note("warning"),
            Group.FATAL_ERROR: note("err"),
        })
        wire = self.config.wire

        def carrier(up: bool) -> None:
            self.events.post(Group.LINK_CHANGE, up=up)

        duties = [self._keep_alive, self._sync_rx_mode]
        if wire.kind == "tap" and wire.lab:  # our tap, as eth0 over there
            self.link = WireLink(self.name, lab.PEER_IFNAME, carrier, netns=self.lab_names.netns)
            duties.append(self._look_for_peer_netns)
        else:
            self.link = WireLink(self.name, self.wire_name, carrier)
        self.link.start()
        self.hostwatch = HostLinkWatcher(self.name, HostLinkState(self.settings.mtu, True, False, False),
                                         self._on_host_change, on_multicast=self._sync_rx_mode)
        self.hostwatch.start()
        self.timer = DeviceTimer(self.name, duties)
        self.timer.start()
        if self.config.peer_napi == "adaptive":
            self._start_peer_dim()
        self.last_keep_alive = time.monotonic()  # the watchdog is armed from the start
        self.health = HealthMonitor(self, self.config.thresholds, self.health_stats)
        self.health.start()

    def _start_peer_dim(self) -> None:
        """The lab peer's adaptive moderation; moderated always where the kernel cannot adapt it."""
        try:
            self.peer_dim = PeerDim(self.name, self.lab_names, self.wire_name)
        except SoftenaError as exc:
            log(self.name, "warning", f"lab peer: no adaptive moderation ({exc}): moderated always instead")
            lab.give_peer_coalesced_napi(self.lab_names)
            self.config.peer_napi = "coalesced"
            return
        self.peer_dim.start()

    def _keep_alive(self) -> None:
        if not self.faults.active("keep-alive-loss"):
            self.events.post(Group.KEEP_ALIVE)

    def _look_for_peer_netns(self) -> None:
        """The tap wire's far end lives in the lab's namespace, which our own
        sockets there keep alive: `ip netns del` takes only its name, and the
        name is what says that the peer host is gone."""
        if self.link is not None and not lab.ns_exists(self.lab_names.netns):
            self.link.peer_gone()

    def _on_link_change(self, event: Event) -> None:
        up = event.data["up"]
        tap.set_carrier(self.host_fds[0], up)
        log(self.name, "info", "link is UP" if up else "link is DOWN")

    def _on_keep_alive(self, event: Event) -> None:
        self.last_keep_alive = event.timestamp

    def _stop_events(self) -> None:
        if self.health is not None:
            self.health.stop()
            self.health = None
        if self.timer is not None:
            self.timer.stop()
            self.timer = None
        if self.peer_dim is not None:
            self.peer_dim.stop()
            self.peer_dim = None
        if self.hostwatch is not None:
            self.hostwatch.stop()
            self.hostwatch = None
        if self.link is not None:
            self.link.stop()
            self.link = None
        if self.aenq is not None:
            self.aenq.close()
            self.aenq = None

    # ---- what the host asks with `ip link set` -----------------------------

    def _on_host_change(self, old: HostLinkState, new: HostLinkState) -> None:
        if new.mtu != old.mtu and new.mtu != self.settings.mtu:
            self._change_mtu(new.mtu)
        if (new.promisc, new.allmulti) != (old.promisc, old.allmulti):
            self.promisc, self.allmulti = new.promisc, new.allmulti
            self._sync_rx_mode(force=True)
            log(self.name, "info", f"rx mode: promisc {'on' if new.promisc else 'off'}, "
                                   f"allmulti {'on' if new.allmulti else 'off'}")
        if new.up != old.up:
            with self._io_lock:
                if new.up and not self.workers:
                    self._start_io()
                    self.health_stats.interface_up += 1
                    log(self.name, "info", f"interface up: {self.settings.queues} queue pairs started")
                elif not new.up and self.workers:
                    self._stop_io()
                    self.health_stats.interface_down += 1
                    log(self.name, "info", "interface down: queues stopped")

    def _change_mtu(self, mtu: int) -> None:
        try:
            self.admin_queue.submit(Opcode.SET_FEATURE, Feature.MTU, mtu=mtu)
        except AdminError as exc:
            log(self.name, "err", str(exc))
            tap.set_link(self.name, mtu=self.settings.mtu)  # as an ndo_change_mtu refusal leaves it
            return
        log(self.name, "info", f"MTU {mtu}, wire follows")

    def _sync_rx_mode(self, force: bool = False) -> None:
        """Give the datapath the host's filter: our MAC, joined groups, promisc, allmulti.

        The device timer (groups joined below IP), the rtnetlink watcher
        (IP joins, and flags) both call this: the lock keeps one from pushing
        a filter older than the other's.
        """
        with self._rx_mode_lock:
            self._push_rx_mode(force)

    def _push_rx_mode(self, force: bool) -> None:
        dev_mcast = read_dev_mcast()
        if dev_mcast == self._dev_mcast and not force:
            return  # nothing joined or left anywhere since the last look
        self._dev_mcast = dev_mcast
        groups = joined_groups(self.ifindex, dev_mcast)
        if groups != self._mc_groups or force:
            self._mc_groups = groups
            dp = self.datapath  # read once: a rebuild may swap it meanwhile
            if dp is not None:
                dp.set_rx_mode(bytes.fromhex(device_mac(self.name).replace(":", "")),
                               self.promisc, self.allmulti, groups)

    # ---- IO queues: created through the admin queue, run by the workers ---

    def _start_io(self) -> None:
        """Create the IO queues, the datapath over them, and one worker each."""
        st, cfg = self.settings, self.config
        for qid in range(st.queues):
            self.admin_queue.submit(Opcode.CREATE_CQ, qid=qid, depth=st.rx_ring)
            self.admin_queue.submit(Opcode.CREATE_SQ, qid=qid, direction="tx", depth=st.tx_ring)
            self.admin_queue.submit(Opcode.CREATE_SQ, qid=qid, direction="rx", depth=st.rx_ring)
        self.datapath = self._attached_datapath()
        self.pool_generation += 1
        self.datapath.set_rss(st.rss)
        self.datapath.set_offloads(**engine_offloads(st.offloads))
        self.datapath.set_poll(self.napi)
        self._sync_steering(st.rss, st.offloads)
        self._sync_rx_mode(force=True)
        if cfg.wire.kind == "xsk":
            self.datapath.read_wire_rss(self.wire_name)
            copy = "zero-copy" if self.datapath.zerocopy(0) else "copy"
            self.xdp_mode = f"{self.xdp_attachment.mode}, {copy}"
        for qid in range(st.queues):
            worker = QueueWorker(self.datapath, self.name, qid, self._cpu_of(qid), self.napi,
                                 self.napi_settings[qid])
            self.workers.append(worker)
            worker.start()
        for worker in self.workers:
            if not worker.wait_started():
                raise SoftenaError(f"{self.name}: queue {worker.qid} worker did not start")
        for pool in self.netdev.page_pools():
            notify.publish("page-pool-add-ntf", pool)

    def _attached_datapath(self) -> Datapath:
        """A datapath with every queue attached to its ports.

        AF_XDP sockets ask for multi-buffer (XDP_USE_SG) so the wire takes
        jumbo frames; a kernel without it gets single-buffer sockets and a
        device whose MTU stops at what one UMEM frame holds.
        """
        st, cfg = self.settings, self.config
        dp = Datapath(DatapathConfig(st.queues, cfg.wire.kind, st.mtu, st.rx_ring, st.tx_ring,
                                     multi_buffer=self.multi_buffer, llq_header=st.llq_header))
        try:
            for qid in range(st.queues):
                if cfg.wire.kind == "xsk":
                    dp.attach_xsk(qid, self.host_fds[qid], self.wire_name, self.xdp_attachment.xskmap_fd)
                else:
                    dp.attach_tap(qid, self.host_fds[qid], self.wire_fds[qid])
        except SoftenaError as exc:
            dp.close()
            if not self.multi_buffer:
                raise
            self.multi_buffer = False
            self.attrs = self.model.attrs = dataclasses.replace(self.attrs,
                                                                max_mtu=min(self.attrs.max_mtu, XSK_MAX_MTU))
            log(self.name, "notice", f"AF_XDP multi-buffer unavailable ({exc}): MTU limited to {XSK_MAX_MTU}")
            if st.mtu > XSK_MAX_MTU:
                raise SoftenaError(f"Invalid MTU setting. new_mtu: {st.mtu}") from exc
            return self._attached_datapath()
        return dp

    def _stop_io(self) -> None:
        """Stop the workers, free the datapath, destroy the IO queues. Safe when half-built."""
        for worker in self.workers:
            worker.stop()
        for worker in self.workers:
            worker.join(timeout=5)
        self.workers = []
        if self.datapath is not None:
            self._destroy_pools(self.datapath)
            self.stats_base.retire(self.datapath)
            self.datapath = None
        if self.admin is not None:
            for direction, qid in sorted(self.model.io_sqs):
                self.admin.submit(Opcode.DESTROY_SQ, qid=qid, direction=direction)
            for qid in sorted(self.model.io_cqs):
                self.admin.submit(Opcode.DESTROY_CQ, qid=qid)
        release_free_memory()

    def _destroy_pools(self, dp: Datapath) -> None:
        """The kernel's page_pool_destroy(): a pool with frames still out is
        detached (detach-time set, page-pool-change-ntf) and lingers until they
        come back; then it is destroyed (page-pool-del-ntf)."""
        dp.detach_pools()
        for pool in self.netdev.page_pools():
            if pool["inflight"]:
                notify.publish("page-pool-change-ntf", pool)
        lost = dp.drain()
        if lost:
            log(self.name, "err", f"page_pool: {lost} frames lent out never came back")
        for pool in self.netdev.page_pools():
            notify.publish("page-pool-del-ntf", pool)

    # ---- health: resets and injected faults ---------------------------------

    def _request_reset(self, reason: ResetReason) -> None:
        if self.health is not None:
            self.health.request_reset(reason)

    def reset(self, reason: ResetReason = ResetReason.USER_TRIGGER) -> None:
        """Ask the watchdog thread for a device reset (softena reset)."""
        if self.health is None:
            raise SoftenaError(f"{self.name}: the device is not up")
        self.health.request_reset(reason)

    def rebuild_io(self) -> None:
        """A reset's work: queues, rings, pools and sockets go and come back;
        the host interface, its addresses and routes stay."""
        with self._io_lock:
            running = bool(self.workers) or self.datapath is not None
            self._stop_io()
            if running or self.hostwatch is None or self.hostwatch.state.up:
                self._start_io()

    def set_wire_up(self, up: bool) -> None:
        """Take the wire's link down or up, as pulling and plugging its cable."""
        state = "up" if up else "down"
        if self.config.wire.kind == "tap" and self.config.wire.lab:
            lab.set_peer_state(self.lab_names, state)
        else:
            tap.set_link(self.wire_name, state=state)

    @property
    def frame_size(self) -> int:
        """Bytes of one page pool frame."""
        return XSK_FRAME_SIZE if self.config.wire.kind == "xsk" else TAP_FRAME_SIZE

    def set_napi(self, qid: int, **changes: int) -> None:
        """napi-set on queue pair QID's worker; takes effect at its next poll.
        The settings stay with the queue index: a rebuilt worker takes them up."""
        cfg = self.napi_settings[qid]
        Datapath.napi_native(dataclasses.replace(cfg, **changes))  # refuses what the datapath cannot hold
        for key, value in changes.items():
            setattr(cfg, key, value)
        dp = self.datapath  # read once: a rebuild may swap it meanwhile
        if dp is not None:
            dp.set_napi(qid, cfg)
        log(self.name, "info", f"napi {qid}: " + ", ".join(f"{k.replace('_', '-')} {v}" for k, v in changes.items()))

    def read_counters(self) -> DeviceReading:
        """Live queues and device totals in one consistent read; never waits behind a rebuild."""
        with self._xdp_lock:
            if self.xdp is not None:
                self.stats_base.fold_wire_missed(self.xdp.missed())
        return self.stats_base.read(self.datapath)

    def reconfigure_queues(self, queues: int, rx_ring: int, tx_ring: int) -> None:
        """Change queue count or ring sizes live: the host interface, its
        addresses and routes stay; traffic pauses for the rebuild."""
        with self._io_lock:
            self._reconfigure_queues(queues, rx_ring, tx_ring)

    def _reconfigure_queues(self, queues: int, rx_ring: int, tx_ring: int) -> None:
        st = self.settings
        running = bool(self.workers)
        old = (st.queues, st.rx_ring, st.tx_ring)
        self._stop_io()
        try:
            self._resize_ports(queues)
            st.queues, st.rx_ring, st.tx_ring = queues, rx_ring, tx_ring
            if running:  # an interface set down gets its new queues when it comes up
                self._start_io()
        except (SoftenaError, AdminError, OSError) as exc:
            log(self.name, "err", f"reconfiguration failed ({exc}); restoring {old[0]} queues")
            self._stop_io()
            self._resize_ports(old[0])
            st.queues, st.rx_ring, st.tx_ring = old
            if running:
                self._start_io()
            raise SoftenaError(str(exc)) from exc

    def wire_queue_count(self) -> int:
        """Rx queues the wire interface has in use (sysfs lists the real ones)."""
        return queues_in_use(self.wire_name, "rx")

    def _resize_ports(self, queues: int) -> None:
        """Give the host tap and the wire QUEUES queues each."""
        if self.config.host_napi == "affine":
            hostnapi.resize_queues(self.name, self.host_fds, queues, self._host_offloads(), self._cpu_of)
        else:
            tap.resize_queues(self.name, self.host_fds, queues, self._host_offloads(), napi=self._host_napi)
        wire = self.config.wire
        if wire.kind == "tap":
            # A lab's tap wire is eth0 of the peer namespace by now.
            name, netns = (lab.PEER_IFNAME, self.lab_names.netns) if wire.lab else (self.wire_name, None)
            tap.resize_queues(name, self.wire_fds, queues, tap.offload_flags(tx_csum=True, tso=True), netns,
                              napi=self._wire_tap_napi)
        elif wire.lab:
            lab.set_veth_queues(self.lab_names, queues)

    # ---- Backend: what the device model applies ---------------------------

    def apply_offloads(self, offloads: dict[str, bool]) -> None:
        if offloads["ntuple"] and self.rfs is None:
            raise SoftenaError(f"{self.name}: cannot turn ntuple-filters (aRFS) on: {self.rfs_note}")
        for fd in self.host_fds:
            tap.set_offloads(fd, tap.offload_flags(offloads["tx_csum"], offloads["tso"]))
        dp = self.datapath  # read once: a rebuild may swap it meanwhile
        if dp is not None:
            dp.set_offloads(**engine_offloads(offloads))
        self._sync_steering(self.settings.rss, offloads)

    def apply_rss(self, rss: RssConfig) -> None:
        dp = self.datapath
        if dp is not None:
            dp.set_rss(rss)
        self._sync_steering(rss, self.settings.offloads)

    def apply_coalesce(self, coalesce) -> None:
        self.napi.rx_usecs = coalesce.rx_usecs
        self.napi.tx_usecs = coalesce.tx_usecs
        self.napi.adaptive_rx = coalesce.adaptive_rx
        dp = self.datapath
        if dp is not None:
            dp.set_poll(self.napi)

    def tx_ring_min(self, mtu: int) -> int:
        """The smallest Tx ring the datapath takes at MTU (model and ethtool -G check against it)."""
        return tx_ring_min(self.config.wire.kind, mtu)

    def device_counters(self) -> dict[str, int]:
        """Device-scope counters for the model's GET_STATS."""
        return self.read_counters().queue_totals

    def apply_mtu(self, mtu: int) -> None:
        """The wire follows the device's MTU; the datapath's TSO target too."""
        wire = self.config.wire
        if wire.lab and wire.kind == "xsk":
            lab.set_mtu(self.lab_names, self.wire_name, mtu)
        elif wire.lab:  # our tap is the peer's eth0
            lab.set_mtu(self.lab_names, None, mtu)
        else:
            tap.set_link(self.wire_name, mtu=mtu)
        dp = self.datapath
        if dp is not None:
            dp.set_mtu(mtu)

    # ---- teardown ---------------------------------------------------------

    def stop(self) -> None:
        """Take everything down in reverse order; safe on a partial bring-up.

        Every step runs even when one before it fails: a teardown that stops
        half-way is what leaves kernel objects behind.
        """
        if self.started_at:
            notify.publish("dev-del-ntf", self.netdev.dev())
        for step in (self._stop_events, self._carrier_off, self._stop_io, self._close_admin,
                     self._close_ports, lambda: remove_kernel_objects(self.state),
                     lambda: remove_files(self.name)):
            try:
                step()
            except Exception as exc:  # keep going; say what failed
                log(self.name, "err", f"teardown: {exc!r}")

    def _carrier_off(self) -> None:
        if self.host_fds:
            tap.set_carrier(self.host_fds[0], False)

    def _close_admin(self) -> None:
        if self.admin is not None:
            self.admin.close()
            self.admin = None

    def _close_ports(self) -> None:
        with self._xdp_lock:
            if self.xdp is not None:
                self.xdp.close()
                self.xdp = None
        if self.steering is not None:
            self.steering.close()
            self.steering = None
        if self.rfs is not None:
            self.rfs.close()
            self.rfs = None
        tap.close_all(self.host_fds + self.wire_fds)
        self.host_fds, self.wire_fds = [], []

    # ---- inspection -------------------------------------------------------

    def cpu_list(self) -> list[int]:
        return [self._cpu_of(q) for q in range(self.settings.queues)]

    def status(self) -> dict:
        """What `softena status` shows of this device."""
        return {
            "dev": self.name,
            "pid": os.getpid(),
            "ifindex": self.ifindex,
            "slot": self.slot,
            "queues": self.settings.queues,
            "cpus": self.cpu_list(),
            "threads": [w.name for w in self.workers],
            "wire": self.config.wire.describe(),
            "wire-ifname": self.wire_ifname,
            "wire-mode": self.xdp_mode,
            "wire-steering": self.steering_note,
            "arfs": self.rfs_note,
            "llq": self.settings.llq_header or "off",
            "mtu": self.config.mtu,
            "host-napi": self._host_napi_state(),
            "lab": {"netns": self.lab_names.netns, "host": [self.lab_names.host_v4, self.lab_names.host_v6],
                    "peer": [self.lab_names.peer_v4, self.lab_names.peer_v6],
                    "peer-receive": self.config.peer_napi,
                    "peer-moderated": self._peer_moderated()} if self.config.wire.lab else None,
            "uptime": round(time.monotonic() - self.started_at, 1),
            **self._wire_metadata(),
        }

    def _peer_moderated(self) -> bool:
        """Whether the lab peer's receive is moderated now: always when coalesced,
        while a stream lasts when adaptive."""
        if self.peer_dim is not None:
            return self.peer_dim.moderated
        return self.config.peer_napi == "coalesced"

    def _host_napi_state(self) -> str:
        """Where the host receives our Rx, as the kernel has it now: inline in
        the workers' writes, or in the tap's NAPI, threaded (bound to the
        workers' CPUs or not) or in softirq (the admin may have written
        /sys/class/net/DEV/threaded since, which makes new, unbound threads)."""
        if not self._host_napi:
            return "inline"
        if not tap.is_threaded(self.name):
            return "softirq"
        if self.config.host_napi == "affine" and hostnapi.placed(self.name, self.cpu_list()):
            return "affine"
        return "threaded"

    def _wire_metadata(self) -> dict:
        """What RX metadata the wire's driver offers the XDP program (the
        kernel's netdev dev-get of the wire: xdp-rx-metadata-features), and
        whether its RX hash steers frames in place of the device's Toeplitz."""
        if self.config.wire.kind != "xsk" or not self.wire_ifname:
            return {}
        try:
            with genl.NetdevGenl() as nl:
                dev = nl.do("dev-get", {"ifindex": socket.if_nametoindex(self.wire_ifname)})
            assert isinstance(dev, dict), "a do answers with one object"
            features: list[str] | str = sorted(dev.get("xdp-rx-metadata-features", ()))
        except (OSError, NetlinkError) as exc:
            features = f"unknown: {exc}"
        dp = self.datapath
        native = self.xdp_mode.startswith("native")
        return {"wire-rx-metadata": features,
                # Generic XDP cannot call the kfuncs: the program then stamps arrival only.
                "wire-rx-metadata-used": features if native and isinstance(features, list) else [],
                "wire-hash": dp.wire_rss_reason if dp is not None else None,
                "wire-rss": dp.wire_rss if dp is not None else None}

    def stats(self) -> dict:
        """Counters as `softena stats` prints them: live queues (each since its
        creation), the base retired queues left, and device totals = base + queues."""
        reading = self.read_counters()
        admin = vars(self.admin.stats) if self.admin else {}
        aenq = dict(self.aenq.counts) if self.aenq else {}
        health = self.health_stats.as_dict()
        return {"dev": self.name, "ifindex": self.ifindex,
                "queues": [{"queue-id": r.qid, **r.counters} for r in reading.queues],
                "queue-gauges": [{"queue-id": r.qid, **r.gauges} for r in reading.queues],
                "base": reading.queue_base, "device": reading.queue_totals,
                "rx-latency": {"queues": [{"queue-id": r.qid, **latency.summary(r.counters)} for r in reading.queues],
                               "device": latency.summary(reading.queue_totals)},
                "page-pools": [{"queue-id": r.qid, **r.pool, **r.pool_gauges} for r in reading.queues],
                "page-pool-base": reading.pool_base, "page-pool-device": reading.pool_totals,
                "region": self.datapath.region() if self.datapath else None,
                "admin-queue": admin, "aenq": aenq, "health": health, "faults": self.faults.listing(),
                "link": "up" if self.link and self.link.up else "down",
                "keep-alive-age": round(time.monotonic() - self.last_keep_alive, 2) if self.last_keep_alive else None}
