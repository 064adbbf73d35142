"""softena ethtool: ethtool's own command line and output, answered by the device.

The kernel cannot carry ethtool requests to a user-space device, so this
takes ethtool's arguments (-i -l -L -g -G -k -K -x -X -n -N -c -C -S), asks
the device process, and prints what ethtool would print.
"""

from __future__ import annotations

import argparse
import json

from softena.control import ctlsock
from softena.device.rss import RXH_IP_DST, RXH_IP_SRC, RXH_L4_B_0_1, RXH_L4_B_2_3
from softena.errors import SoftenaError

FLOW_NAMES = {"tcp4": "TCP over IPV4", "udp4": "UDP over IPV4", "ip4": "IPV4",
              "tcp6": "TCP over IPV6", "udp6": "UDP over IPV6", "ip6": "IPV6"}
# ethtool -N field letters the device hashes on, and how ethtool -n names them.
HASH_FIELDS = (("s", RXH_IP_SRC, "IP SA"), ("d", RXH_IP_DST, "IP DA"),
               ("f", RXH_L4_B_0_1, "L4 bytes 0 & 1 [TCP/UDP src port]"),
               ("n", RXH_L4_B_2_3, "L4 bytes 2 & 3 [TCP/UDP dst port]"))


USAGE = "softena ethtool [--json] -i|-l|-L|-g|-G|-k|-K|-x|-X|-n|-N|-c|-C|-S DEV [ARGS...]"


def register(sub: argparse._SubParsersAction) -> None:
    # Listed for `softena --help` only: ethtool's own option letters would
    # confuse argparse, so main() hands `softena ethtool ...` to run() directly.
    sub.add_parser("ethtool", help="ethtool for softena devices (ethtool's arguments and output)",
                   usage=USAGE)


def run(argv: list[str]) -> int:
    """`softena ethtool ARGV`: parse as ethtool does and print as it prints."""
    as_json = "--json" in argv
    argv = [a for a in argv if a != "--json"]
    if len(argv) < 2 or argv[0] in ("-h", "--help"):
        print(f"usage: {USAGE}")
        return 0 if argv[:1] in (["-h"], ["--help"]) else 1
    option, dev, args = argv[0], argv[1], argv[2:]
    handler = OPTIONS.get(option)
    if handler is None:
        raise SoftenaError(f"ethtool: unsupported option {option}; use one of {' '.join(OPTIONS)}")
    result = handler(dev, args)
    if as_json and result is not None:
        print(json.dumps(result, indent=2))
    elif result is not None:
        print(PRINTERS[option](dev, result))
    return 0


def _ask(dev: str, op: str, **args) -> object:
    return ctlsock.request(dev, "ethtool", op=op, args=args)


def _pairs(args: list[str], dev: str) -> dict[str, str]:
    if len(args) % 2:
        raise SoftenaError(f"ethtool: missing value after '{args[-1]}'")
    return dict(zip(args[::2], args[1::2]))


def _int(value: str, what: str) -> int:
    try:
        return int(value, 0)
    except ValueError:
        raise SoftenaError(f"ethtool: invalid value '{value}' for {what}") from None


def _onoff(value: str, what: str) -> bool:
    if value not in ("on", "off"):
        raise SoftenaError(f"ethtool: invalid value '{value}' for {what}: on or off")
    return value == "on"


def _nz(v: object) -> str:
    return "n/a" if v is None else str(v)


# ---- handlers: one per option --------------------------------------------

def drvinfo(dev: str, args: list[str]):
    return _ask(dev, "drvinfo")


def get_channels(dev: str, args: list[str]):
    return _ask(dev, "get-channels")


def set_channels(dev: str, args: list[str]):
    pairs = _pairs(args, dev)
    if set(pairs) - {"combined"} or not pairs:
        raise SoftenaError(f"{dev}: only combined channels can be set (queue pairs): -L {dev} combined N")
    _ask(dev, "set-channels", combined=_int(pairs["combined"], "combined"))


def get_rings(dev: str, args: list[str]):
    return _ask(dev, "get-rings")


def set_rings(dev: str, args: list[str]):
    pairs = _pairs(args, dev)
    known = {"rx": "rx", "tx": "tx", "tx-push-buf-len": "tx_push_buf_len"}
    if not pairs or set(pairs) - set(known):
        raise SoftenaError(f"{dev}: -G takes rx N, tx N, tx-push-buf-len 96|224")
    _ask(dev, "set-rings", **{known[k]: _int(v, k) for k, v in pairs.items()})


def get_features(dev: str, args: list[str]):
    return _ask(dev, "get-features")


def set_features(dev: str, args: list[str]):
    pairs = _pairs(args, dev)
    if not pairs:
        raise SoftenaError(f"{dev}: -K needs FEATURE on|off")
    _ask(dev, "set-features", features={k: _onoff(v, k) for k, v in pairs.items()})


def get_rxfh(dev: str, args: list[str]):
    return _ask(dev, "get-rxfh")


def set_rxfh(dev: str, args: list[str]):
    req: dict = {}
    i = 0
    while i < len(args):
        word = args[i]
        if word == "equal" and i + 1 < len(args):
            req["equal"] = _int(args[i + 1], "equal")
            i += 2
        elif word == "weight":
            weights = []
            i += 1
            while i < len(args) and args[i].isdigit():
                weights.append(int(args[i]))
                i += 1
            req["weight"] = weights
        elif word == "hkey" and i + 1 < len(args):
            req["key"] = args[i + 1].replace(":", "")
            i += 2
        elif word == "hfunc" and i + 1 < len(args):
            req["hfunc"] = args[i + 1]
            i += 2
        elif word == "default":
            req["default"] = True
            i += 1
        else:
            raise SoftenaError(f"{dev}: -X takes equal N | weight W... | default, hkey HEX, hfunc toeplitz")
    if not req:
        raise SoftenaError(f"{dev}: -X needs equal N, weight W..., default, hkey or hfunc")
    _ask(dev, "set-rxfh", **req)


def get_rxnfc(dev: str, args: list[str]):
    if len(args) != 2 or args[0] != "rx-flow-hash":
        raise SoftenaError(f"{dev}: -n takes rx-flow-hash tcp4|udp4|ip4|tcp6|udp6|ip6")
    return _ask(dev, "get-rxnfc", flow=args[1])


def set_rxnfc(dev: str, args: list[str]):
    if len(args) != 3 or args[0] != "rx-flow-hash":
        raise SoftenaError(f"{dev}: -N takes rx-flow-hash FLOW FIELDS, e.g. tcp4 sdfn")
    letters = {letter: bit for letter, bit, _ in HASH_FIELDS}
    bad = set(args[2]) - set(letters)
    if bad:
        raise SoftenaError(f"{dev}: the device hashes on s, d, f and n only, not {''.join(sorted(bad))}")
    _ask(dev, "set-rxnfc", flow=args[1], fields=sum(letters[c] for c in set(args[2])))


def get_coalesce(dev: str, args: list[str]):
    return _ask(dev, "get-coalesce")


def set_coalesce(dev: str, args: list[str]):
    pairs = _pairs(args, dev)
    known = {"rx-usecs", "tx-usecs", "adaptive-rx"}
    if not pairs or set(pairs) - known:
        raise SoftenaError(f"{dev}: -C takes rx-usecs N, tx-usecs N, adaptive-rx on|off")
    changes = {k: (_onoff(v, k) if k == "adaptive-rx" else _int(v, k)) for k, v in pairs.items()}
    _ask(dev, "set-coalesce", **changes)


def get_stats(dev: str, args: list[str]):
    return _ask(dev, "get-stats")


# ---- printers: ethtool's output shapes --------------------------------------

def print_drvinfo(dev: str, r: dict) -> str:
    return "\n".join([f"driver: {r['driver']}", f"version: {r['version']}",
                      f"firmware-version: {r['firmware-version']}", "expansion-rom-version: ",
                      f"bus-info: {r['bus-info']}", "supports-statistics: yes", "supports-test: no",
                      "supports-eeprom-access: no", "supports-register-dump: no", "supports-priv-flags: no"])


def print_channels(dev: str, r: dict) -> str:
    block = "RX:\t\tn/a\nTX:\t\tn/a\nOther:\t\tn/a\nCombined:\t{}"
    return (f"Channel parameters for {dev}:\nPre-set maximums:\n{block.format(r['combined-max'])}\n"
            f"Current hardware settings:\n{block.format(r['combined-count'])}")


def print_rings(dev: str, r: dict) -> str:
    def block(rx, tx):
        return f"RX:\t\t\t{rx}\nRX Mini:\t\tn/a\nRX Jumbo:\t\tn/a\nTX:\t\t\t{tx}"
    return (f"Ring parameters for {dev}:\nPre-set maximums:\n{block(r['rx-max'], r['tx-max'])}\n"
            f"TX push buff len:\t{_nz(r['tx-push-buf-len-max'])}\n"
            f"Current hardware settings:\n{block(r['rx'], r['tx'])}\n"
            f"TX push buff len:\t{_nz(r['tx-push-buf-len'])}")


def print_features(dev: str, r: dict) -> str:
    return "\n".join([f"Features for {dev}:"] + [f"{name}: {'on' if on else 'off'}" for name, on in r.items()])


def print_rxfh(dev: str, r: dict) -> str:
    lines = [f"RX flow hash indirection table for {dev} with {r['rings']} RX ring(s):"]
    table = r["indir"]
    for row in range(0, len(table), 8):
        lines.append(f"{row:5}: " + "".join(f"{q:6}" for q in table[row:row + 8]))
    key = bytes.fromhex(r["key"])
    lines += ["RSS hash key:", ":".join(f"{b:02x}" for b in key), "RSS hash function:",
              "    toeplitz: on", "    xor: off", "    crc32: off"]
    return "\n".join(lines)


def print_rxnfc(dev: str, r: dict) -> str:
    names = [label for _, bit, label in HASH_FIELDS if r["fields"] & bit]
    head = f"{FLOW_NAMES[r['flow']]} flows use these fields for computing Hash flow key:"
    return "\n".join([head] + (names or ["None"]))


def print_coalesce(dev: str, r: dict) -> str:
    return (f"Coalesce parameters for {dev}:\nAdaptive RX: {'on' if r['adaptive-rx'] else 'off'}  TX: n/a\n\n"
            f"rx-usecs: {r['rx-usecs']}\n\ntx-usecs: {r['tx-usecs']}")


def print_stats(dev: str, r: dict) -> str:
    return "\n".join(["NIC statistics:"] + [f"     {k}: {v}" for k, v in r.items()])


OPTIONS = {"-i": drvinfo, "-l": get_channels, "-L": set_channels, "-g": get_rings, "-G": set_rings,
           "-k": get_features, "-K": set_features, "-x": get_rxfh, "-X": set_rxfh, "-n": get_rxnfc,
           "-N": set_rxnfc, "-c": get_coalesce, "-C": set_coalesce, "-S": get_stats}
PRINTERS = {"-i": print_drvinfo, "-l": print_channels, "-g": print_rings, "-k": print_features,
            "-x": print_rxfh, "-n": print_rxnfc, "-c": print_coalesce, "-S": print_stats}
