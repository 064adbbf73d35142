"""`softena up --config FILE`: keys, types and values checked with file, line and key named; the command
line over the file; --print-config as TOML that reads back the same. Only --print-config runs: nothing is
brought up here (tests/e2e/test_config_systemd.py does that)."""

from __future__ import annotations

import json
import pathlib
import re

import pytest
from conftest import run

from softena.cli.main import build_parser
from softena.cli.upconfig import key_lines, tomllib
from softena.control.config import DeviceConfig, WireSpec
from softena.errors import SoftenaError

EXAMPLE = pathlib.Path(__file__).resolve().parents[2] / "deploy" / "ena0.toml"


def print_config(*args: str) -> str:
    return run(["softena", "up", *args, "--print-config"], check=True).stdout


def write(tmp_path: pathlib.Path, text: str) -> str:
    path = tmp_path / "sft1.toml"
    path.write_text(text)
    return str(path)


def up_keys() -> list[str]:
    """The file keys, as the up parser defines them."""
    return [opt.key for opt in build_parser().parse_args(["up"]).up_options.options]


@pytest.mark.parametrize("text, line, words", [
    ("# queues\nqueus = 2\n", 2, "unknown key 'queus' (did you mean 'queues'?)"),
    ("mtu = 1500\nqueues = \"two\"\n", 2, "queues: expected an integer, not a string"),
    ("no-metrics = 1\n", 1, "no-metrics: expected true or false, not an integer"),
    ("wire = \"lab\"\n\nmtu = 99999\n", 3, "mtu: Invalid MTU setting. new_mtu: 99999"),
    ("busy-poll = -1\n", 1, "busy-poll: invalid --busy-poll -1"),
    ("queues = 4\nmax-queues = 2\n", 2, "max-queues: invalid queue count 4: the device supports 1..2"),
    ("metrics-address = \"localhost\"\n", 1, "metrics-address: invalid --metrics-address 'localhost'"),
    ("no-metrics = true\nmetrics-port = 9500\n", 2, "metrics-port: not allowed with no-metrics"),
    ("mtu = 1500\n[lab]\nkind = \"veth\"\n", 2, "unknown table 'lab'"),
    ("mtu = 1500\n[wire]\nkind = \"lab\"\n", 2, "wire: expected a string, not a table"),
    ("mtu = 1500\nqueues = \n", 2, "queues: Invalid value"),
])
def test_a_bad_file_names_file_line_and_key_in_one_line_and_exits_1(tmp_path, text, line, words) -> None:
    path = write(tmp_path, text)
    proc = run(["softena", "up", "sft1", "--config", path, "--print-config"])
    assert proc.returncode == 1 and not proc.stdout, proc
    assert proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith(f"softena: {path}:{line}:"), proc.stderr
    assert words in proc.stderr, proc.stderr


def test_a_missing_file_is_named() -> None:
    proc = run(["softena", "up", "sft1", "--config", "/nonexistent/sft1.toml", "--print-config"])
    assert proc.returncode == 1
    assert proc.stderr == "softena: cannot read /nonexistent/sft1.toml: No such file or directory\n"


def test_the_command_line_overrides_the_file_and_the_file_the_defaults(tmp_path) -> None:
    path = write(tmp_path, 'name = "sftfile"\nmtu = 9000\nqueues = 1\nbusy-poll = 20\nno-metrics = true\n')
    merged = tomllib.loads(print_config("sft2", "--config", path, "--mtu", "1400", "--metrics-port", "9500"))
    assert merged["name"] == "sft2" and merged["mtu"] == 1400 and merged["metrics-port"] == 9500
    assert merged["no-metrics"] is False  # --metrics-port on the command line overrules the file's no-metrics
    assert merged["queues"] == 1 and merged["busy-poll"] == 20  # from the file
    assert merged["tx-timeout"] == 5.0 and merged["wire"] == "lab"  # defaults
    # A value given on the command line wins even when it is the default.
    assert tomllib.loads(print_config("--config", path, "--mtu", "1500"))["mtu"] == 1500


def test_print_config_reads_back_as_the_same_config(tmp_path) -> None:
    path = write(tmp_path, 'queues = 2\ncpus = "0"\nllq = 224\nkeep-alive-timeout = 3\nmax-mtu = 4000\n')
    first = print_config("sft3", "--config", path, "--wire", "tap", "--metrics-address", "127.0.0.2")
    again = print_config("--config", write(tmp_path, first))
    assert again == first
    values = tomllib.loads(first)
    assert values["llq"] == "224" and values["keep-alive-timeout"] == 3.0 and values["metrics-address"] == "127.0.0.2"
    # Unset options are named in comments; as JSON they are null.
    assert "# metrics-port: not set" in first
    as_json = json.loads(print_config("--config", path, "sft3", "--wire", "tap", "--metrics-address", "127.0.0.2",
                                      "-j"))
    assert list(as_json) == up_keys()
    assert {k: v for k, v in as_json.items() if v is not None} == values


def test_the_example_config_names_every_key_and_holds_the_defaults() -> None:
    text = EXAMPLE.read_text()
    named = set(re.findall(r"^#?([a-z-]+) = ", text, re.MULTILINE))
    assert named == set(up_keys())
    assert print_config("--config", str(EXAMPLE)) == print_config()


def test_key_lines_finds_top_level_keys_and_tables_not_text_in_strings() -> None:
    text = ('# mtu = 1\n\nmtu = 1500\n"wire" = """\nqueues = 3\n"""\n'
            "'llq'='96'\nbusy-poll.x = 1\n[ table ]\nqueues = 2\n[[more]]\n")
    assert key_lines(text) == {"mtu": 3, "wire": 4, "llq": 7, "busy-poll": 8, "table": 9, "more": 11}


def test_host_napi_defaults_to_auto() -> None:
    assert tomllib.loads(print_config())["host-napi"] == "auto"


def test_peer_napi_defaults_to_auto() -> None:
    assert tomllib.loads(print_config())["peer-napi"] == "auto"


@pytest.mark.parametrize(("mode", "wire", "resolved"), [
    ("auto", "lab", "adaptive"), ("auto", "tap", "inline"), ("auto", "xdp:eth1", "inline"),
    ("auto", "tap:tap7", "inline"), ("inline", "lab", "inline"), ("coalesced", "lab", "coalesced"),
    ("threaded", "tap", "threaded")])
def test_peer_napi_auto_moderates_the_veth_wires_peer_only(mode: str, wire: str, resolved: str) -> None:
    """A tap wire carries TSO frames whole: its peer has nothing to merge."""
    assert DeviceConfig(wire=WireSpec.parse(wire), peer_napi=mode).peer_napi == resolved


@pytest.mark.parametrize("mode", ["adaptive", "coalesced"])
@pytest.mark.parametrize(("wire", "message"), [
    ("tap", "--peer-napi {mode}: a veth wire's mode; a tap wire carries TSO frames whole"),
    ("xdp:eth1", "--peer-napi {mode}: only a lab wire has a peer of ours")])
def test_peer_napi_moderation_only_on_the_lab_veth_wire(mode: str, wire: str, message: str) -> None:
    config = DeviceConfig(wire=WireSpec.parse(wire), peer_napi=mode)
    with pytest.raises(SoftenaError, match=re.escape(message.format(mode=mode))):
        config.validate()


@pytest.mark.parametrize(("mode", "busy_poll", "resolved"), [
    ("auto", 0, "affine"), ("auto", 50, "inline"), ("inline", 0, "inline"), ("affine", 50, "affine"),
    ("threaded", 0, "threaded")])
def test_host_napi_auto_is_affine_unless_the_workers_busy_poll(mode: str, busy_poll: int, resolved: str) -> None:
    """An affine NAPI thread runs only when its worker sleeps, which a busy-polling worker seldom does."""
    assert DeviceConfig(busy_poll_us=busy_poll, host_napi=mode).host_napi == resolved
