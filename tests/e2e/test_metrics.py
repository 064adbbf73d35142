"""The Prometheus endpoint, read back through a real Prometheus server: names from the spec table,
values that agree with the device's own answer, device totals that never go back, a port that
is there while the device is and only then."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request

import pytest
from conftest import Snapshot, run, wait_for
from iperf import free_port, iperf3

from softena.control import ctlsock
from softena.control.config import METRICS_PORT_BASE
from softena.netdev.metrics import metric_name
from softena.netdev.spec import counters

PROMETHEUS = "/usr/bin/prometheus"
needs_prometheus = pytest.mark.skipif(not os.access(PROMETHEUS, os.X_OK),
                                      reason=f"{PROMETHEUS} missing: deploy/install.sh --test installs Debian's "
                                             "prometheus")


class Prometheus:
    """A Prometheus server on loopback scraping TARGET every second, with storage in a temp dir."""

    def __init__(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="softena-prometheus-")
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self.log = open(os.path.join(self.dir, "prometheus.log"), "w+")

    def start(self, target: str) -> None:
        config = os.path.join(self.dir, "prometheus.yml")
        with open(config, "w") as f:
            json.dump({"global": {"scrape_interval": "1s", "scrape_timeout": "1s"},  # JSON is YAML
                       "scrape_configs": [{"job_name": "softena", "static_configs": [{"targets": [target]}]}]}, f)
        self.proc = subprocess.Popen([PROMETHEUS, f"--config.file={config}",
                                      f"--storage.tsdb.path={os.path.join(self.dir, 'data')}",
                                      f"--web.listen-address=127.0.0.1:{self.port}"],
                                     stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log)
        self.wait_ready()

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def api(self, path: str, **params) -> dict:
        url = f"http://127.0.0.1:{self.port}/api/v1/{path}?{urllib.parse.urlencode(params)}"
        with urllib.request.urlopen(url, timeout=5) as reply:
            answer = json.load(reply)
        assert answer["status"] == "success", answer
        return answer["data"]

    def query(self, promql: str) -> list[dict]:
        return self.api("query", query=promql)["result"]

    def value(self, promql: str) -> float | None:
        """The one value of an instant query, None when it has none."""
        result = self.query(promql)
        assert len(result) <= 1, result
        return float(result[0]["value"][1]) if result else None

    def by_labels(self, promql: str, *labels: str) -> dict[tuple, float]:
        return {tuple(r["metric"][k] for k in labels): float(r["value"][1]) for r in self.query(promql)}

    def wait_ready(self) -> None:
        def ready() -> bool:
            assert self.proc.poll() is None, f"prometheus exited: {self.output()}"
            try:
                return self.value('up{job="softena"}') == 1
            except OSError:
                return False
        wait_for(ready, within=30, what="prometheus scraping the device")

    def wait_scrape_after(self, moment: float, what: str = "a scrape") -> None:
        """Wait until Prometheus holds a sample of the device from a scrape begun after MOMENT (epoch s)."""
        wait_for(lambda: (self.value('timestamp(softena_device_queues{device="sft0"})') or 0) > moment,
                 within=10, what=what)

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read()[-2000:]


@pytest.fixture
def prometheus():
    """Factory: a Prometheus server scraping a target; stopped and its directory removed whatever happens."""
    servers: list[Prometheus] = []

    def start(target: str) -> Prometheus:
        server = Prometheus()
        servers.append(server)
        server.start(target)
        return server

    yield start
    for server in servers:
        server.close()


def qstats_by_queue() -> dict[tuple[str, str], dict]:
    reply = ctlsock.request("sft0", "netdev", op="qstats-get", attrs={"scope": ["queue"]}, dump=True)["reply"]
    return {(str(e["queue-id"]), e["queue-type"]): e for e in reply}


def port_open(address: str) -> bool:
    host, _, port = address.rpartition(":")
    with socket.socket() as s:
        s.settimeout(2)
        return s.connect_ex((host, int(port))) == 0


def thread_names(pid: int) -> set[str]:
    names = set()
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{tid}/comm") as f:
            names.add(f.read().strip())
    return names


@needs_prometheus
def test_prometheus_reads_the_same_qstats_the_device_answers_after_traffic(softena_up, prometheus) -> None:
    dev = softena_up("sft0", "--queues", "2")
    assert dev.status["metrics"] == f"127.0.0.1:{METRICS_PORT_BASE + dev.status['slot']}"
    assert "sft0-metrics" in thread_names(dev.pid)
    prom = prometheus(dev.status["metrics"])

    iperf3(dev.netns, dev.peer_v4, "-P", "2", port=free_port(), duration=3)
    prom.wait_scrape_after(time.time() + 1, "two scrapes after the traffic")

    # Stray neighbour or router frames may tick a counter at any time: a
    # scrape begun between two equal reads of the device saw what they saw.
    for _ in range(10):
        before = qstats_by_queue()
        prom.wait_scrape_after(time.time())
        scraped = {name: prom.by_labels(f'{metric_name("qstats", name)}_total{{device="sft0"}}', "queue", "type")
                   for name in counters("qstats")}
        summed = prom.value('sum(softena_qstats_rx_packets_total{device="sft0"})')
        after = qstats_by_queue()
        if before == after:
            break
    else:
        pytest.fail("the device's qstats never held still for one scrape")
    assert sum(e.get("rx-packets", 0) for e in after.values()) > 1000, "too little traffic to tell"
    assert summed == sum(e.get("rx-packets", 0) for e in after.values())
    for name, series in scraped.items():
        published = {key: e[name] for key, e in after.items() if name in e}
        assert series == {key: float(v) for key, v in published.items()}, name
    assert {key for s in scraped.values() for key in s} == {("0", "rx"), ("1", "rx"), ("0", "tx"), ("1", "tx")}


@needs_prometheus
def test_metric_names_come_from_the_spec_with_no_queue_number_in_any(softena_up, prometheus) -> None:
    dev = softena_up("sft0", "--queues", "2")
    prom = prometheus(dev.status["metrics"])
    names = {n for n in prom.api("label/__name__/values") if n.startswith("softena_")}
    assert not [n for n in names if re.search(r"\d", n)], names
    published = set(qstats_by_queue()[("0", "rx")]) | set(qstats_by_queue()[("0", "tx")])
    assert {f"{metric_name('qstats', c)}_total" for c in counters("qstats") if c in published} == \
        {n for n in names if n.startswith("softena_qstats_")}
    assert {"softena_health_resets_total", "softena_health_total_resets_total", "softena_aenq_events_total",
            "softena_admin_queue_submitted_cmd_total", "softena_page_pool_inflight",
            "softena_page_pool_inflight_mem_bytes", "softena_page_pool_alloc_fast_total",
            "softena_napi_defer_hard_irqs", "softena_device_info", "softena_rx_latency_seconds_bucket",
            "softena_device_rx_latency_seconds_count"} <= names
    # Prometheus asks for OpenMetrics, where a family is named without _total or _info.
    metadata = prom.api("metadata")
    histogram = re.compile(r"_(bucket|sum|count)$")
    for name in names:
        family = next(n for n in (name, name.removesuffix("_total"), name.removesuffix("_info"),
                                  histogram.sub("", name)) if n in metadata)
        kind = metadata[family][0]["type"]
        expected = "counter" if name.endswith("_total") else "info" if name.endswith("_info") else \
            "histogram" if family != name and histogram.search(name) else "gauge"
        assert kind in (expected, "gauge" if expected == "info" else expected), (name, kind)
    assert prom.value('softena_device_info{device="sft0",wire="lab veth (AF_XDP)"}') == 1
    assert prom.value('sum(softena_aenq_events_total{device="sft0",group="keep_alive"})') >= 1


@needs_prometheus
def test_device_totals_never_go_back_when_queues_retire(softena_up, prometheus) -> None:
    dev = softena_up("sft0", "--queues", "2")
    prom = prometheus(dev.status["metrics"])
    iperf3(dev.netns, dev.peer_v4, "-R", "-P", "2", port=free_port(), duration=2)
    prom.wait_scrape_after(time.time())
    run(["softena", "ethtool", "-L", "sft0", "combined", "1"], check=True)
    prom.wait_scrape_after(time.time() + 1, "two scrapes after -L")
    device = 'softena_device_qstats_rx_packets_total{device="sft0"}'
    assert prom.value(f"resets({device}[1m])") == 0, "the device total went back"
    assert prom.value(device) > prom.value('sum(softena_qstats_rx_packets_total{device="sft0"})'), \
        "the device total keeps what queue 1 counted"
    assert prom.by_labels('softena_qstats_rx_packets_total{device="sft0"}', "queue").keys() == {("0",)}


def test_no_metrics_leaves_the_port_closed(softena_up) -> None:
    dev = softena_up("sft0", "--queues", "1", "--no-metrics")
    assert dev.status["metrics"] is None
    assert not port_open(f"127.0.0.1:{METRICS_PORT_BASE + dev.status['slot']}")
    assert "sft0-metrics" not in thread_names(dev.pid)


def test_a_chosen_port_serves_while_the_device_is_up_and_closes_at_down(softena_up) -> None:
    port = free_port()
    dev = softena_up("sft0", "--queues", "1", "--metrics-port", str(port))
    assert dev.status["metrics"] == f"127.0.0.1:{port}"
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
        assert 'softena_device_queues{device="sft0"} 1.0' in reply.read().decode()
    run(["softena", "down", "sft0"], check=True)
    assert not port_open(f"127.0.0.1:{port}")


def test_a_taken_port_fails_the_bring_up_in_one_line_and_leaves_nothing() -> None:
    before = Snapshot.take()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        up = run(["softena", "up", "sft0", "--queues", "1", "--metrics-port", str(port)])
        if up.returncode == 0:
            run(["softena", "down", "sft0"])
    assert up.returncode == 1
    assert up.stderr == f"softena: sft0: metrics port 127.0.0.1:{port}: address already in use; " \
                        "choose another with --metrics-port N, or --no-metrics\n"
    assert Snapshot.take() == before
    assert not run(["pgrep", "-f", "^softena: sft0"]).stdout


def test_region_gauges_are_the_frames_softena_stats_shows(softena_up) -> None:
    dev = softena_up("sft0", "--queues", "2")
    # The free count moves with any stray frame: a scrape between two equal reads saw what they saw.
    for _ in range(10):
        before = dev.stats()["region"]
        with urllib.request.urlopen(f"http://{dev.status['metrics']}/metrics", timeout=5) as reply:
            text = reply.read().decode()
        after = dev.stats()["region"]
        if before == after:
            break
    else:
        pytest.fail("the region's free frames never held still for one scrape")
    assert f'softena_region_frames{{device="sft0"}} {float(after["frames"])}' in text
    assert f'softena_region_frames_free{{device="sft0"}} {float(after["frames-free"])}' in text
    # Two queues' Rx rings are filled from the region at bring-up: some frames are held, not all.
    assert 0 < after["frames-free"] < after["frames"]
