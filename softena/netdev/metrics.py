"""A device's Prometheus endpoint: names and types from the netdev spec table.

The collector reads what the netdev family publishes (qstats, page pools,
page-pool-stats, napi) and the device's own health, admin-queue and AENQ
counters, at scrape time; it owns nothing and changes nothing. A spec
attribute of kind "counter" becomes `softena_<object>_<name>_total`, a
"gauge" or "config" a gauge, with the attribute's doc as its help; labels
are device, queue and type, never a queue number inside a name.

Each scrape is a handful of counter reads (one locked pass over the C
structs each, the workers never stop) plus formatting; the server thread
answers one scrape at a time.
"""

from __future__ import annotations

import socket
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import make_wsgi_app
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, InfoMetricFamily
from prometheus_client.registry import Collector, CollectorRegistry

from softena import __version__
from softena.datapath import latency
from softena.errors import SoftenaError
from softena.netdev.family import napi_slot
from softena.netdev.spec import ATTR_SETS, Attr
from softena.threads import NamedThread, Readable

PREFIX = "softena"
# Prometheus wants base units in the name; the spec gives ns and bytes: (unit, scale to it).
UNITS = {"inflight-mem": ("bytes", 1), "gro-flush-timeout": ("seconds", 1e-9),
         "irq-suspend-timeout": ("seconds", 1e-9)}


def metric_name(obj: str, name: str) -> str:
    """softena_<object>_<name>, dashes as underscores; a counter family adds _total itself."""
    return f"{PREFIX}_{obj}_{name}".replace("-", "_")


def _family(obj: str, attr: Attr, labels: list[str]):
    """The metric family of one spec attribute: a counter for kind counter, a gauge otherwise."""
    if attr.kind == "counter":
        return CounterMetricFamily(metric_name(obj, attr.name), attr.doc or attr.name, labels=labels)
    unit, scale = UNITS.get(attr.name, ("", 1))
    doc = attr.doc or attr.name
    return GaugeMetricFamily(metric_name(obj, attr.name), f"{doc}; here in {unit}" if scale != 1 else doc,
                             labels=labels, unit=unit)


def _from_spec(obj: str, attr_set: str, kinds: tuple[str, ...], labels: list[str], rows):
    """One family per attribute of KINDS in ATTR_SET, with a sample per (label values, object) of ROWS.

    An attribute no object carries (a counter the datapath does not count)
    yields no family, rather than a series of zeros that would claim it."""
    rows = list(rows)
    for attr in ATTR_SETS[attr_set].of_kind(*kinds):
        scale = UNITS.get(attr.name, ("", 1))[1]
        family = _family(obj, attr, labels)
        for values, obj_attrs in rows:
            if attr.name in obj_attrs:
                family.add_metric(values, obj_attrs[attr.name] * scale)
        if family.samples:
            yield family


def _counters(name: str, doc: str, labels: list[str], samples):
    family = CounterMetricFamily(name, doc, labels=labels)
    for values, value in samples:
        family.add_metric(values, value)
    return family


class DeviceCollector(Collector):
    """Every metric of one device, read afresh at each scrape."""

    def __init__(self, device) -> None:
        self.device = device

    def collect(self):
        d = self.device
        dev = d.name
        netdev = d.netdev
        reading = d.read_counters()  # one locked pass: every series below is of the same moment
        # Per-queue series are the kernel's queue scope: each counts from its
        # queue's creation and goes when the queue does (a reset, -L, -G),
        # which Prometheus sees as an ordinary counter reset, so
        # sum(rate(...)) over queues stays true. Device scope (base + live
        # queues, never going back) is a family of its own without the queue
        # label: published inside this family as a queue="retired" series,
        # the base would jump by what a queue had counted the moment it
        # retired, and sum(rate()) would count those packets twice.
        yield from _from_spec("qstats", "qstats", ("counter",), ["device", "queue", "type"],
                              (([dev, str(q["queue-id"]), q["queue-type"]], q)
                               for q in netdev.qstats(per_queue=True, reading=reading)))
        yield from _from_spec("device_qstats", "qstats", ("counter",), ["device"],
                              (([dev], q) for q in netdev.qstats(per_queue=False, reading=reading)))

        yield from _latency(dev, reading)

        pools = netdev.page_pools(reading)
        queue_of = {p["id"]: str(netdev.page_pool_queue(p["id"])) for p in pools}
        yield from _from_spec("page_pool", "page-pool", ("gauge",), ["device", "queue"],
                              (([dev, queue_of[p["id"]]], p) for p in pools))
        yield from _from_spec("page_pool", "page-pool-stats", ("counter",), ["device", "queue"],
                              (([dev, queue_of[s["info"]["id"]]], s) for s in netdev.page_pool_stats(reading)))
        yield from _from_spec("napi", "napi", ("config",), ["device", "queue"],
                              (([dev, str(napi_slot(n["id"])[1])], n) for n in netdev.napis()))

        stats = d.stats()
        yield from _from_spec("device_page_pool", "page-pool-stats", ("counter",), ["device"],
                              [([dev], reading.pool_totals)])
        health = stats["health"]
        reasons = health.pop("reasons")
        # Names are ena_ethtool.c's; total_resets counts resets that completed,
        # the reasons count each reset as it begins (a failed one included).
        for key, value in health.items():
            yield _counters(f"{PREFIX}_health_{key}_total", f"{key} of ethtool -S (the ENA driver's name)",
                            ["device"], [([dev], value)])
        yield _counters(f"{PREFIX}_health_resets_total", "device resets begun, by ENA reset reason",
                        ["device", "reason"], (([dev, reason], n) for reason, n in reasons.items()))
        for key, value in stats["admin-queue"].items():
            yield _counters(f"{PREFIX}_admin_queue_{key}_total", f"ena_admin_q_{key} of ethtool -S",
                            ["device"], [([dev], value)])
        yield _counters(f"{PREFIX}_aenq_events_total", "asynchronous event notifications, by AENQ group",
                        ["device", "group"], (([dev, group], n) for group, n in stats["aenq"].items()))

        yield InfoMetricFamily(f"{PREFIX}_device", "what the device is: its wire and how it is attached",
                               value={"device": dev, "ifindex": str(d.ifindex), "slot": str(d.slot),
                                      "wire": d.config.wire.describe(), "wire_ifname": d.wire_ifname or "",
                                      "wire_mode": d.xdp_mode, "version": __version__})
        yield _gauge(f"{PREFIX}_device_queues", "queue pairs configured (ethtool -L combined)", dev,
                     d.settings.queues)
        yield _gauge(f"{PREFIX}_device_link_up", "1 while the wire's link is up", dev, int(stats["link"] == "up"))
        yield from _region(dev, stats["region"])


def _region(dev: str, region: dict | None):
    """The UMEM every page pool draws from: a pool's inflight has no size of
    its own to be near, the region's free frames are what runs out."""
    if not region:  # between a reset's teardown and the new datapath
        return
    yield _gauge(f"{PREFIX}_region_frames", "UMEM frames of the device's region, shared by its page pools", dev,
                 region["frames"])
    yield _gauge(f"{PREFIX}_region_frames_free", "UMEM frames no page pool holds (the slow path's free list)", dev,
                 region["frames-free"])


def _latency(dev: str, reading):
    """Wire arrival (XDP's stamp) to the tap write, from the datapath's log2
    microsecond buckets: per queue (the queue that delivered), and device
    scope with what retired queues counted."""
    doc = "Rx latency from the wire's XDP program to the host tap write, per frame handed to the host"
    # Not a qstats attribute (those names come from the spec): a family of its own.
    per_queue = HistogramMetricFamily(f"{PREFIX}_rx_latency_seconds", doc, labels=["device", "queue"])
    for r in reading.queues:
        per_queue.add_metric([dev, str(r.qid)], latency.cumulative(r.counters),
                             r.counters.get(latency.SUM_KEY, 0) / 1e9)
    yield per_queue
    device = HistogramMetricFamily(f"{PREFIX}_device_rx_latency_seconds", doc, labels=["device"])
    totals = reading.queue_totals
    device.add_metric([dev], latency.cumulative(totals), totals.get(latency.SUM_KEY, 0) / 1e9)
    yield device


def _gauge(name: str, doc: str, dev: str, value: float) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, doc, labels=["device"])
    family.add_metric([dev], value)
    return family


class _QuietHandler(WSGIRequestHandler):
    """One scrape per connection, no access log; a client that stalls is dropped."""

    timeout = 10

    def log_message(self, *args) -> None:
        pass


class _WSGIServer6(WSGIServer):
    """The same server on an IPv6 address (--metrics-address 2001:db8::1)."""

    address_family = socket.AF_INET6


class MetricsServer:
    """http://HOST:PORT/metrics for DEVICE, served by the thread softena/<dev>-metrics.

    Scrapes are served one at a time: each takes about a millisecond, and
    a second thread would only let many scrapers cost the datapath's CPUs more.
    """

    def __init__(self, device, host: str, port: int) -> None:
        registry = CollectorRegistry()
        registry.register(DeviceCollector(device))
        # Compression buys nothing on loopback and costs CPU at every scrape.
        app = make_wsgi_app(registry, disable_compression=True)
        try:
            self.httpd = make_server(host, port, app, _WSGIServer6 if ":" in host else WSGIServer, _QuietHandler)
        except OSError as exc:
            reason = (exc.strerror or str(exc)).lower()  # an OSError raised with a message has no strerror
            raise SoftenaError(f"{device.name}: metrics port {host}:{port}: {reason}; "
                               "choose another with --metrics-port N, or --no-metrics") from exc
        self.httpd.timeout = 1.0  # handle_request() never waits long for a connection that went away
        self.address = f"[{host}]:{self.httpd.server_port}" if ":" in host else f"{host}:{self.httpd.server_port}"
        self.thread_name = f"softena/{device.name}-metrics"
        self.thread: NamedThread | None = None
        self._readable = Readable(self.httpd.fileno())
        self.start()

    def start(self) -> None:
        """Serve from a new thread: also how the last resort restarts a dead one (the socket survives it)."""
        self.thread = NamedThread(name=self.thread_name, target=self._serve)
        self.thread.start()

    def _serve(self) -> None:
        """serve_forever() without its polls twice a second: asleep in poll()
        on the port and a wake pipe until a scrape comes or close() is called."""
        while self._readable.wait():
            self.httpd.handle_request()

    def close(self) -> None:
        """Stop serving, close the port and wait for the thread."""
        self._readable.wake()
        if self.thread is not None and self.thread.is_alive():
            self.thread.join(timeout=5)
        self.httpd.server_close()
        self._readable.close()
