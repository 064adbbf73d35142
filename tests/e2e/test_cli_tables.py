"""What the commands print for a real device fits an 80-column terminal with every column's name whole,
--all gives the wide form, -j/-p give ip-shaped JSON, and <TAB> offers the device."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import time

import pytest
from conftest import run
from iperf import free_port, iperf3_running

from softena.cli import show
from softena.netdev.top import COLUMNS, USUAL_COLUMNS

ROOT = pathlib.Path(__file__).resolve().parents[2]
NARROW = {**os.environ, "COLUMNS": "80"}


def softena(*args: str) -> str:
    proc = subprocess.run(["softena", *args], capture_output=True, text=True, env=NARROW, timeout=30,
                          stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def section(out: str, title: str) -> list[list[str]]:
    """The table titled TITLE, a list of words per line: its column names first, then its rows."""
    lines = out.splitlines()
    at = next(i for i, line in enumerate(lines) if line.strip().startswith(title))
    end = next((i for i in range(at + 1, len(lines)) if not lines[i].strip()), len(lines))
    return [line.split() for line in lines[at + 1:end]]


def header(out: str, title: str) -> list[str]:
    """The column names under the table titled TITLE, word by word."""
    return section(out, title)[0]


def assert_fits(out: str) -> None:
    wide = [line for line in out.splitlines() if len(line) > 80]
    assert not wide, "\n".join(wide)


def test_tables_fit_80_columns_with_whole_names_and_all_is_wide(softena_up) -> None:
    dev = softena_up("sft0", "--queues", "2", "--no-metrics")
    run(["ping", "-c", "5", "-i", "0.05", "-W", "2", dev.peer_v4], check=True, timeout=10)

    stats = softena("stats", dev.name)
    assert_fits(stats)
    assert header(stats, f"{dev.name} queue statistics") == ["queue", *show.STATS_COLUMNS]
    assert header(stats, f"{dev.name} page pools") == ["queue", *show.POOL_USUAL]
    assert header(stats, f"{dev.name} Rx latency") == ["queue", "frames", "p50", "p90", "p99", "mean"]
    rows = {cells[0]: cells[1:] for cells in section(stats, f"{dev.name} queue statistics")[1:]}
    # No "retired" row: nothing was retired, and the wire's link rose only
    # once the sockets were there, so no frame of the peer's was missed.
    assert set(rows) == {"0", "1", "device"}, rows
    assert all(len(cells) == len(show.STATS_COLUMNS) and all(c.isdigit() for c in cells) for cells in rows.values())
    assert int(rows["device"][0]) >= 5  # rx-packets: the five echo replies at least

    wide = softena("stats", "--all", dev.name)
    counters = [k for k in json.loads(softena("stats", "-j", dev.name))["queues"][0] if k != "queue-id"]
    assert len(counters) > len(show.STATS_COLUMNS)
    assert header(wide, f"{dev.name} queue statistics") == ["queue", *counters]  # none cut, none folded
    assert header(wide, f"{dev.name} page pools") == ["queue", *show.POOL_COLUMNS]

    status = softena("status")
    assert_fits(status)
    assert header(status, "softena devices") == list(show.STATUS_COLUMNS)
    assert any(line.split()[:2] == [dev.name, "up"] for line in status.splitlines()), status

    faults = softena("fault", "list", dev.name)
    assert_fits(faults)
    assert faults == f"{dev.name}: no faults in force\n"
    # -x is left out: it prints the 40-byte RSS key on one line of 119 characters, as ethtool itself does.
    for view in ("-S", "-l", "-g", "-k", "-c"):
        assert_fits(softena("ethtool", view, dev.name))


def words(columns) -> list[str]:
    """Column names as a line of them splits into words (some names have a space)."""
    return " ".join(c.title for c in columns).split()


def test_top_fits_80_columns_with_whole_names_and_all_is_wide(softena_up) -> None:
    dev = softena_up("sft0", "--queues", "2", "--no-metrics")
    run(["ping", "-c", "5", "-i", "0.05", "-W", "2", dev.peer_v4], check=True, timeout=10)

    usual = softena("top", "--once", "--interval", "0.3", dev.name)
    assert_fits(usual)
    table = section(usual, f"{dev.name}: up, 2 queues")
    assert table[0] == words(USUAL_COLUMNS)
    rows = {cells[0]: cells for cells in table[1:]}
    assert set(rows) == {"0", "1", "device"} and all(len(r) == len(USUAL_COLUMNS) for r in rows.values()), rows

    wide = softena("top", "--once", "--all", "--interval", "0.3", dev.name)
    lines = wide.splitlines()
    assert lines[1].split() == words(COLUMNS) and len(lines[1]) > 80, lines[1]  # none cut, none folded
    table = section(wide, f"{dev.name}: up, 2 queues")
    assert {cells[0] for cells in table[1:]} == {"0", "1", "device"}
    assert all(len(cells) == len(COLUMNS) for cells in table[1:]), table


UDP_BITS, UDP_LEN = 16_000_000, 1000  # 2,000 datagrams a second each way: a rate the lab keeps without loss


def test_top_json_gives_the_rates_of_the_traffic_iperf3_measured(softena_up) -> None:
    dev = softena_up("sft0", "--queues", "2", "--no-metrics")
    udp = ("-u", "-b", str(UDP_BITS), "-l", str(UDP_LEN))
    # One stream each way, the sample taken in their middle: tx is the host's to the peer, rx the peer's.
    with iperf3_running(dev.netns, dev.peer_v4, *udp, duration=5, port=free_port()) as sent, \
            iperf3_running(dev.netns, dev.peer_v4, *udp, "-R", duration=5, port=free_port()) as received:
        time.sleep(1.5)
        sample = json.loads(softena("top", "-j", "--interval", "1", dev.name))
    rates = {"tx": sent["end"]["sum"], "rx": received["end"]["sum"]}
    [top] = sample
    assert top["dev"] == dev.name and top["state"] == "up" and top["interval-s"] == pytest.approx(1, abs=0.2)
    device, queues = top["device"], top["queues"]
    assert [q["queue-id"] for q in queues] == [0, 1]
    for way, iperf in rates.items():
        pps = iperf["packets"] / iperf["seconds"]  # what iperf3 counted, over its whole run
        assert pps > 0.9 * UDP_BITS / 8 / UDP_LEN, (way, iperf)
        assert 0.6 * pps < device[f"{way}-packets-per-s"] < 1.4 * pps, (way, device, pps)
        # Each datagram on the wire carries 42 bytes of Ethernet, IP and UDP headers that iperf3 does not count.
        assert 0.6 * iperf["bits_per_second"] < device[f"{way}-bytes-per-s"] * 8 < 1.5 * iperf["bits_per_second"]
        # The queues add up to the device, but for the packets that pass between the two scopes' requests
        # (tens of ms on a busy machine); a queue left out would be most or none of one flow's packets.
        assert sum(q[f"{way}-packets-per-s"] for q in queues) == pytest.approx(device[f"{way}-packets-per-s"],
                                                                                rel=0.1)
    assert device["cpu-percent"] > 0 and device["rx-latency-p99-us"] > 0, device
    assert device["rx-hw-drops-per-s"] == 0 and device["tx-hw-drops-per-s"] == 0, device


def test_json_is_one_line_and_pretty_indents_before_or_after_the_command(softena_up) -> None:
    dev = softena_up("sft0", "--queues", "1", "--no-metrics")
    for args in (["stats", "-j", dev.name], ["-j", "stats", dev.name], ["ethtool", "-j", "-S", dev.name],
                 ["-j", "ethtool", "-l", dev.name], ["fault", "list", "--json", dev.name],
                 ["top", "-j", "--interval", "0.2", dev.name], ["-j", "top", "--interval", "0.2", dev.name]):
        out = softena(*args)
        assert len(out.splitlines()) == 1, args
        json.loads(out)
    for args in (["stats", "-p", dev.name], ["-p", "stats", dev.name], ["ethtool", "--pretty", "-S", dev.name],
                 ["status", "--pretty"], ["fault", "list", "-j", "-p", dev.name],
                 ["top", "-p", "--interval", "0.2", dev.name]):
        out = softena(*args)
        assert out.startswith(("{\n  ", "[\n  ", "[]")), args
        json.loads(out)
    assert json.loads(softena("stats", "-p", dev.name))["device"].keys() == \
        json.loads(softena("stats", "--json", dev.name))["device"].keys()


def test_completion_offers_the_running_device(softena_up, tmp_path: pathlib.Path) -> None:
    dev = softena_up("sft0", "--queues", "1", "--no-metrics")
    script = tmp_path / "softena"
    script.write_text(subprocess.run(["python3", "-m", "softena.cli.completion"], capture_output=True, text=True,
                                     check=True, timeout=60).stdout)
    for words in (["softena", "stats", "sft"], ["softena", "ethtool", "-S", "sft"], ["softena", "down", "sft"]):
        line = " ".join(words)
        driver = (f'source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMP_LINE="{line}"; '
                  'COMP_POINT=${#COMP_LINE}; _shtab_softena; printf "%s\\n" "${COMPREPLY[@]}"')
        offered = run(["bash", "-c", driver, "bash", str(script), *words], check=True).stdout.split()
        assert dev.name in offered, (words, offered)
