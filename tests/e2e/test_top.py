"""softena top: a row per queue with rates from two reads, worker CPU, a device total, keys that
sort and quit; counters that go back restart a row, a device that goes is shown as gone."""

from __future__ import annotations

import io
import os
import re
import shlex
import subprocess
import time

import pytest
from conftest import run, wait_for
from iperf import free_port, iperf3_running
from rich.console import Console

from softena.cli import top as top_cli
from softena.errors import SoftenaError
from softena.netdev import top
from softena.netdev.top import COLUMNS, USUAL_COLUMNS, Column, Reading, Row

TITLES = [c.title for c in COLUMNS]
USUAL = [c.title for c in USUAL_COLUMNS]


# ---- the numbers, without a device -------------------------------------------------------------


def reading(at: float, qstats: dict[int, dict], tid: int = 100, cpu: float = 1.0, generation: int = 1) -> Reading:
    queues = {q: Row({"qstats": {"queue-id": q, **c}, "napi": {"pid": tid + q}, "page-pool": {"inflight": 7}},
                     cpu_seconds=cpu) for q, c in qstats.items()}
    total = {k: sum(c.get(k, 0) for c in qstats.values()) for k in {k for c in qstats.values() for k in c}}
    return Reading("sft9", at, pid=42, queues=queues, device=Row({"qstats": total, "napi": {"pid": 42}}, cpu),
                   pool_ids=frozenset(generation << 6 | q for q in qstats))


def cells(row) -> dict:
    return dict(zip(TITLES, row.cells))


def test_columns_name_spec_attributes_of_the_kind_their_rendering_needs() -> None:
    assert {c.how for c in COLUMNS} == {"id", "rate", "ratio", "gauge", "cpu", "pctl"}
    with pytest.raises(ValueError, match="is a gauge, not for rate"):
        top._check((Column("x", "page-pool", "inflight", "rate"),))
    with pytest.raises(KeyError):
        top._check((Column("x", "qstats", "rx-frobs", "rate"),))


def test_rates_ratios_and_cpu_are_differences_over_the_measured_interval() -> None:
    before = reading(10.0, {0: {"rx-packets": 1000, "rx-bytes": 0, "rx-hw-gro-packets": 10,
                                "rx-hw-gro-wire-packets": 40}}, cpu=1.0)
    after = reading(12.0, {0: {"rx-packets": 3000, "rx-bytes": 2_500_000, "rx-hw-gro-packets": 30,
                               "rx-hw-gro-wire-packets": 130}}, cpu=1.5)
    f = top.frame(before, after)
    row = cells(f.rows[0])
    assert f.interval == 2.0
    assert row["rx pps"] == 1000 and row["rx Mbit/s"] == 1_250_000 and row["gro/s"] == 10  # bytes/s ...
    assert top_cli._fmt(COLUMNS[TITLES.index("rx Mbit/s")], row["rx Mbit/s"]) == "10.0"  # ... shown as Mbit/s
    assert row["wire/gro"] == 4.5 and row["inflight"] == 7 and row["CPU %"] == 25.0
    assert cells(f.total)["queue"] == "device" and cells(f.total)["rx pps"] == 1000


def test_json_has_every_column_by_its_spec_name_and_unit() -> None:
    before = reading(10.0, {0: {"rx-packets": 1000, "rx-bytes": 0}, 1: {"rx-packets": 0, "rx-bytes": 0}})
    after = reading(12.0, {0: {"rx-packets": 3000, "rx-bytes": 2_500_000}, 1: {"rx-packets": 0, "rx-bytes": 0}})
    out = top.as_json(top.frame(before, after))
    assert out["dev"] == "sft9" and out["state"] == "up" and out["interval-s"] == 2.0
    assert [q["queue-id"] for q in out["queues"]] == [0, 1]
    zero = out["queues"][0]
    assert set(zero) == {c.key for c in COLUMNS} | {"restarted"}
    assert zero["rx-packets-per-s"] == 1000 and zero["rx-bytes-per-s"] == 1_250_000 and zero["pid"] == 100
    assert zero["cpu-percent"] == 0.0 and zero["tx-packets-per-s"] is None  # not counted: not known, not 0
    assert "queue-id" not in out["device"] and out["device"]["rx-bytes-per-s"] == 1_250_000


def test_a_terminal_narrower_than_the_columns_wraps_them_to_a_second_band_with_names_whole() -> None:
    f = top.frame(reading(0.0, {0: {"rx-packets": 0}, 1: {"rx-packets": 0}}),
                  reading(1.0, {0: {"rx-packets": 1_234_567}, 1: {"rx-packets": 5}}))
    for columns, width in ((USUAL_COLUMNS, 80), (USUAL_COLUMNS, 44), (COLUMNS, 80)):
        view = top_cli.View("sft9", columns)
        view.frames = [f]
        console = Console(width=width, record=True, file=io.StringIO(), color_system=None)
        console.print(top_cli.render(view, utf8=True, width=width))
        screen = console.export_text()
        assert max(map(len, screen.splitlines())) <= width, screen
        headers = [re.sub(r" [▲▼]", "", line).split() for line in screen.splitlines() if line.startswith("queue")]
        # Each band is led by the queue; after it, every column's name once, whole, in order.
        assert [w for h in headers for w in h[1:]] == " ".join(c.title for c in columns[1:]).split(), screen
        assert (len(headers) == 1) == (columns is USUAL_COLUMNS and width == 80), screen
        assert "1,234,567" in screen


def test_latency_percentiles_are_of_the_frames_of_the_interval_only() -> None:
    before, after = reading(1.0, {0: {"rx-packets": 10}}), reading(2.0, {0: {"rx-packets": 110}})
    # Before: 10 frames at up to 1 ms; during the interval: 100 frames in (8, 16] us.
    before.queues[0].values["latency"] = {"rx-latency-to-1024us": 10}
    after.queues[0].values["latency"] = {"rx-latency-to-1024us": 10, "rx-latency-to-16us": 100}
    row = cells(top.frame(before, after).rows[0])
    assert row["lat p50us"] == 12.0 and row["lat p99us"] == pytest.approx(15.92)
    assert cells(top.frame(None, after).rows[0])["lat p50us"] is None
    with pytest.raises(ValueError, match="no percentile p42"):
        top._check((Column("x", "latency", "p42", "pctl"),))


def test_counters_that_go_back_restart_the_row_instead_of_a_negative_rate() -> None:
    before = reading(1.0, {0: {"rx-packets": 500}, 1: {"rx-packets": 900}})
    rebuilt = reading(2.0, {0: {"rx-packets": 600}, 1: {"rx-packets": 20}}, generation=2)
    f = top.frame(before, rebuilt)
    zero, one = (cells(r) for r in f.rows)
    assert zero["rx pps"] == 100 and not f.rows[0].restarted
    assert one["rx pps"] is None and f.rows[1].restarted
    assert one["CPU %"] == 0.0, "the worker's CPU share does not depend on its counters"
    assert f.event == "reset: queues rebuilt"


def test_a_queue_change_is_told_against_the_last_read_with_every_pool_in_place() -> None:
    before = reading(1.0, {0: {"rx-packets": 5}, 1: {"rx-packets": 5}})
    halfway = Reading("sft9", 2.0, pid=42, device=before.device)
    after = reading(3.0, {0: {"rx-packets": 1}}, generation=2)
    assert not top.settled(halfway) and top.frame(before, halfway).event is None
    assert top.frame(halfway, after, since=before).event == "queues changed: 2 -> 1"


def test_a_new_worker_thread_restarts_only_the_cpu_share() -> None:
    f = top.frame(reading(1.0, {0: {"rx-packets": 5}}, tid=100), reading(2.0, {0: {"rx-packets": 6}}, tid=200))
    assert cells(f.rows[0])["CPU %"] is None and cells(f.rows[0])["rx pps"] == 1


def test_sorting_puts_busy_queues_first_and_unknown_values_last() -> None:
    f = top.frame(reading(0.0, {0: {"rx-packets": 0}, 1: {"rx-packets": 0}, 2: {}}),
                  reading(1.0, {0: {"rx-packets": 5}, 1: {"rx-packets": 50}, 2: {}}))
    rx = next(c for c in COLUMNS if c.title == "rx pps")
    assert [r.label for r in top.sort_rows(f.rows, rx, reverse=False)] == ["1", "0", "2"]
    assert [r.label for r in top.sort_rows(f.rows, rx, reverse=True)] == ["0", "1", "2"]


def test_a_device_that_is_not_there_is_a_frame_not_an_exception() -> None:
    assert top.frame(None, top.read("sft-nonesuch")).state == "gone"


def test_a_device_that_stops_answering_is_shown_so(monkeypatch) -> None:
    monkeypatch.setattr(top.DeviceState, "load", lambda dev: top.DeviceState(dev, os.getpid(), "lab"))
    monkeypatch.setattr(top, "pid_alive", lambda pid: True)
    monkeypatch.setattr(top, "socket_path", lambda dev: __file__)  # a socket that is there and does not answer

    def refuse(dev, cmd, **args):
        raise SoftenaError(f"{dev}: control socket: timed out")

    f = top.frame(None, top.read("sft9", request=refuse))
    assert f.state == "not answering: sft9: control socket: timed out" and f.rows == []


# ---- on a real device ----------------------------------------------------------------------------


def table_rows(screen: str) -> dict[str, dict[str, str]]:
    """The rows of the live view's table on SCREEN, by their first cell, as {title: cell}; none before
    its header, the usual columns' names, whole and in order, is on the screen."""
    rows, header = {}, False
    for line in screen.splitlines():
        words = re.sub(r" [▲▼]", "", line).split()
        if words == " ".join(USUAL).split():
            header = True
        elif header and len(words) == len(USUAL) and (words[0].isdigit() or words[0] == "device"):
            rows[words[0]] = dict(zip(USUAL, words))
    return rows


def number(text: str) -> float:
    return 0.0 if text == "-" else float(text.replace(",", ""))


def test_top_once_prints_a_plain_row_per_queue_and_the_device_total(softena_up) -> None:
    dev = softena_up("sft0", "--queues", "2")
    run(["ping", "-c", "5", "-i", "0.05", "-W", "2", dev.peer_v4], check=True)
    start = time.monotonic()
    out = run(["softena", "top", "--once", "--all", "--interval", "0.5", "sft0"], check=True, timeout=20).stdout
    assert time.monotonic() - start < 10
    assert "\x1b[" not in out, "plain text, no terminal escapes"
    lines = out.splitlines()
    assert lines[0].startswith("sft0: up, 2 queues, 0.5")
    assert lines[1].split() == " ".join(TITLES).split(), "--all: every column"
    rows = {cells[0]: cells for cells in map(str.split, lines) if len(cells) == len(COLUMNS)}
    assert set(rows) == {"0", "1", "device"}, out
    assert all(number(rows[q][TITLES.index("inflight")]) > 0 for q in ("0", "1")), "page pools in use"
    assert int(rows["device"][TITLES.index("tid")]) == dev.pid
    assert "queues that no longer exist" in out and "keys:" not in out


def test_top_names_a_queue_change_and_a_device_that_went_and_keeps_running(softena_up) -> None:
    dev = softena_up("sft0", "--queues", "2")
    view = subprocess.Popen(["softena", "top", "--interval", "0.5", "--iterations", "10", dev.name],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(1.2)
        run(["softena", "ethtool", "-L", dev.name, "combined", "1"], check=True, timeout=30)
        time.sleep(1.2)
        run(["softena", "down", dev.name], check=True, timeout=30)
        out, err = view.communicate(timeout=15)
    finally:
        view.kill()
        view.wait(timeout=5)
    assert view.returncode == 0 and "Traceback" not in err, err
    frames = [line for line in out.splitlines() if line.startswith("sft0:")]
    assert len(frames) == 10, out
    assert any("1 queue," in f and "(queues changed: 2 -> 1 at" in f for f in frames), frames
    assert frames[-1].startswith("sft0: gone ("), frames


class Tmux:
    """A tmux server of the test's own, with one detached 80x50 session; killed at the end."""

    def __init__(self, tmp_path, command: str) -> None:
        conf = tmp_path / "tmux.conf"
        conf.write_text("set -g remain-on-exit on\nset -g history-limit 0\n")
        # a socket in the test's own directory: tmux leaves its socket file behind when the server ends
        self.base = ["tmux", "-u", "-S", str(tmp_path / "tmux.sock"), "-f", str(conf)]
        # the shell records the exit status: tmux 3.3 marks a pane dead when its pty closes and
        # may never show #{pane_dead_status} (a fast exit, or a signal, leaves it empty)
        self.status_file = tmp_path / "exit-status"
        self.tmux("new-session", "-d", "-s", "top", "-x", "80", "-y", "50",
                  f"{command}; echo $? > {shlex.quote(str(self.status_file))}")

    def tmux(self, *args: str) -> str:
        proc = subprocess.run([*self.base, *args], capture_output=True, text=True, timeout=10,
                              env={**os.environ, "LC_ALL": "C.UTF-8"})
        if proc.returncode:
            raise AssertionError(f"tmux {' '.join(args)}: {proc.stderr.strip()}")
        return proc.stdout

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", "top")

    def keys(self, keys: str) -> None:
        self.tmux("send-keys", "-t", "top", keys)

    def exit_status(self) -> int | None:
        """The command's exit status as its shell saw it (128+N for signal N), or None while it runs."""
        try:
            return int(self.status_file.read_text())
        except (FileNotFoundError, ValueError):  # not yet, or written but not yet complete
            return None

    def kill(self) -> None:
        subprocess.run([*self.base, "kill-server"], capture_output=True, timeout=10)


def test_top_in_an_80_column_terminal_shows_traffic_and_worker_cpu_and_obeys_its_keys(softena_up, tmp_path) -> None:
    dev = softena_up("sft0", "--queues", "2")
    term = Tmux(tmp_path, "softena top sft0")
    try:
        wait_for(lambda: {"0", "1", "device"} <= set(table_rows(term.screen())), within=5, what="a row per queue")
        busy: dict = {}

        def busy_rows() -> bool:
            rows = table_rows(term.screen())
            queues = [r for q, r in rows.items() if q.isdigit()]
            if any(number(r["rx pps"]) > 0 and number(r["rx Mbit/s"]) > 0 for r in queues) \
                    and any(number(r["CPU %"]) > 0 for r in queues):
                busy.update(rows)
                return True
            return False

        with iperf3_running(dev.netns, dev.peer_v4, "-R", duration=5, port=free_port()):
            wait_for(busy_rows, within=8, what="rx traffic and worker CPU in the view")
        assert set(busy) == {"0", "1", "device"}, busy
        assert number(busy["device"]["rx pps"]) > 0

        assert "sort: queue ▲" in term.screen()
        term.keys("s")
        wait_for(lambda: "sort: rx pps ▼" in term.screen(), within=2, what="the sort indicator on rx pps")
        assert "rx pps ▼" in next(line for line in term.screen().splitlines() if "rx Mbit/s" in line)
        term.keys("r")
        wait_for(lambda: "sort: rx pps ▲" in term.screen(), within=2, what="the sort reversed")

        term.keys("q")
        took = wait_for(lambda: term.exit_status() is not None, within=2, what="softena top ending on q")
        assert term.exit_status() == 0, f"exit status {term.exit_status()} after {took:.2f} s"
    finally:
        term.kill()
