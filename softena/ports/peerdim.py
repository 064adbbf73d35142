"""--peer-napi adaptive: the lab peer moderates its receive by its load, as a NIC's DIM does.

A host's NIC driver of today (ENA, mlx5, ice; net/core/dim) moderates its
receive interrupts only while traffic is heavy: a bulk stream gets one
interrupt per many frames, a lone request is taken at once. The lab peer's
eth0 (a veth with GRO, so with a NAPI) can be moderated only statically
(gro_flush_timeout with napi_defer_hard_irqs, per NAPI with napi-set); the
static moderation of `--peer-napi coalesced` doubles one stream's
throughput and costs a ping 10-20 us, because the timer that the echo
request's poll arms fires inside the round trip.

So a thread of the device process stands in for the peer's DIM: every
SAMPLE_S it reads how many frames the wire carried to the peer (the host
end's tx_packets, one pread of sysfs), and a RateClassifier decides, with
hysteresis, whether the peer's NAPIs should be moderated; each change is a
napi-set on every NAPI of eth0, over a netdev netlink socket made in the
peer's namespace. A socket keeps its namespace alive, and `ip netns del`
must still take the veth and the carrier with it: so the socket is open
only while the peer is moderated, and then closed as soon as the
namespace's name is gone.

A NAPI that veth makes anew (eth0 down and up, a channel change) starts
with the device's values, unmoderated; while moderated, the thread looks
at the NAPIs once every VERIFY_S and sets those that differ.

Each wake-up costs this kind of guest 200-300 us of CPU, whatever the
thread then does. A wire that carried nothing since the last sample is
sampled every SILENT_SAMPLE_S: an idle device spends about 0.1% of a core
here, and a stream is moderated within 0.35 s of its start, within 0.1 s
when it starts on a wire already carrying something.

Where the kernel cannot napi-set (before Linux 6.13) the device moderates
the peer always instead (`--peer-napi coalesced`, by sysfs) and says so.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass

from pyroute2.netlink.exceptions import NetlinkError

from softena.errors import SoftenaError
from softena.log import log
from softena.netdev.genl import NetdevGenl
from softena.ports import lab
from softena.threads import NamedThread

SAMPLE_S = 0.1
SILENT_SAMPLE_S = 0.25  # after a sample with no frame at all: an idle device wakes less
# Frames a second to the peer. A 1500-byte stream of 600 Mbit/s is 50,000;
# a TCP request/response at this machine's round trip is 10,000-15,000 and a
# ping at 1 ms 1,000, which moderation would only delay.
BUSY_PPS = 50_000
IDLE_PPS = 20_000
IDLE_SAMPLES = 5  # half a second below IDLE_PPS ends it: a stream's pauses do not
VERIFY_S = 1.0


@dataclass(frozen=True)
class Moderation:
    """One NAPI's moderation, in napi-set's terms."""

    defer_hard_irqs: int
    gro_flush_timeout_ns: int

    def as_attrs(self) -> dict[str, int]:
        return {"defer-hard-irqs": self.defer_hard_irqs, "gro-flush-timeout": self.gro_flush_timeout_ns}


UNMODERATED = Moderation(0, 0)
MODERATED = Moderation(1, lab.PEER_RX_USECS * 1000)


class RateClassifier:
    """Whether to moderate, from frame rates sampled every SAMPLE_S: on at the
    first sample of BUSY_PPS or more, off after IDLE_SAMPLES in a row below
    IDLE_PPS. The gap between the two keeps a rate near one of them from
    switching the peer every sample."""

    def __init__(self) -> None:
        self.moderated = False
        self._quiet = 0

    def sample(self, pps: float) -> bool:
        """Take one sample; whether the peer should be moderated now."""
        if pps >= BUSY_PPS:
            self.moderated, self._quiet = True, 0
        elif self.moderated:
            self._quiet = self._quiet + 1 if pps < IDLE_PPS else 0
            if self._quiet >= IDLE_SAMPLES:
                self.moderated, self._quiet = False, 0
        return self.moderated


class PeerDim(NamedThread):
    """Moderates the lab peer's eth0 while the wire WIRE carries it a stream."""

    def __init__(self, dev: str, names: lab.LabNames, wire: str) -> None:
        super().__init__(name=f"softena/{dev}-peerdim")
        self.dev, self.netns = dev, names.netns
        self.classifier = RateClassifier()
        self._stopping = threading.Event()
        self._genl: NetdevGenl | None = None  # open while moderated
        self._moderated = False  # what the peer's NAPIs were last set to
        self._ifindex = lab.peer_ifindex(names)
        # Fail now, not at the first stream, if this kernel cannot napi-set: before
        # 6.13 napi-get has no defer-hard-irqs, so every NAPI differs and is set.
        try:
            with NetdevGenl(netns=self.netns) as genl:
                self._set(genl, UNMODERATED)
        except NetlinkError as exc:
            raise SoftenaError(f"napi-set on the lab peer's {lab.PEER_IFNAME}: {exc} "
                               "(per-NAPI moderation takes Linux 6.13)") from exc
        self._tx_packets = os.open(f"/sys/class/net/{wire}/statistics/tx_packets", os.O_RDONLY | os.O_CLOEXEC)

    @property
    def moderated(self) -> bool:
        """Whether the peer's NAPIs were last set moderated."""
        return self._moderated

    def run(self) -> None:
        try:
            self._sample_until_stopped()
        except OSError as exc:  # the wire's host end or the peer's namespace is gone
            log(self.dev, "warning", f"lab peer moderation stops: {exc}")
        self._close_socket()

    def _sample_until_stopped(self) -> None:
        last, at = self._read_tx_packets(), time.monotonic()
        verified, period = at, SAMPLE_S
        while not self._stopping.wait(period):
            count, now = self._read_tx_packets(), time.monotonic()
            period = SAMPLE_S if count != last or self.classifier.moderated else SILENT_SAMPLE_S
            was = self.classifier.moderated
            moderated = self.classifier.sample((count - last) / (now - at))
            last, at = count, now
            if moderated != was:
                if moderated:
                    self._genl = NetdevGenl(netns=self.netns)
                assert self._genl is not None
                self._apply(self._genl, MODERATED if moderated else UNMODERATED)
                self._moderated, verified = moderated, now
                if not moderated:
                    self._close_socket()
            elif moderated:
                assert self._genl is not None
                if not lab.ns_exists(self.netns):  # `ip netns del`: let it and its veth go
                    log(self.dev, "info", "lab peer namespace gone: its adaptive moderation stops")
                    return
                if now - verified >= VERIFY_S:
                    self._apply(self._genl, MODERATED)
                    verified = now

    def _read_tx_packets(self) -> int:
        return int(os.pread(self._tx_packets, 32, 0))

    def _set(self, genl: NetdevGenl, want: Moderation) -> None:
        """napi-set WANT on each of the peer eth0's NAPIs that has other values."""
        for napi in genl.dump("napi-get", {"ifindex": self._ifindex}):
            if (napi.get("defer-hard-irqs"), napi.get("gro-flush-timeout")) != \
                    (want.defer_hard_irqs, want.gro_flush_timeout_ns):
                genl.do("napi-set", {"id": napi["id"], **want.as_attrs()})

    def _apply(self, genl: NetdevGenl, want: Moderation) -> None:
        """_set(), a failure logged: the thread keeps sampling."""
        try:
            self._set(genl, want)
        except NetlinkError as exc:  # a NAPI that went between dump and set: the next look finds its successor
            log(self.dev, "warning", f"lab peer moderation: napi-set: {exc}")

    def stop(self) -> None:
        """Stop sampling and wait for the thread; the namespace may then go."""
        self._stopping.set()
        if self.is_alive():
            self.join(timeout=5)
        self._close_socket()
        if self._tx_packets >= 0:
            os.close(self._tx_packets)
            self._tx_packets = -1

    def _close_socket(self) -> None:
        genl, self._genl = self._genl, None
        if genl is not None:
            genl.close()
