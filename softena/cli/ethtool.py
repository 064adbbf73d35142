"""softena ethtool: ethtool's own command line and output, answered by the device.

The kernel cannot carry ethtool requests to a user-space device, so this
takes ethtool's arguments, asks the device process and prints what ethtool
would print. One table, OPTIONS, says for every option which operation it
sends (named as ethtool netlink names it), which argument words it takes,
their types and the device-side argument each fills, and the lines it
prints; one parser (to_request) and one printer (render) work from it, as
ynl's ethtool front end works from the family spec (args_to_req, print_field).
"""

from __future__ import annotations

import argparse
import string
from dataclasses import dataclass
from typing import Any, Callable

from softena.cli.output import examples, print_json
from softena.control import ctlsock
from softena.device.rss import FLOW_TYPES, RXH_IP_DST, RXH_IP_SRC, RXH_L4_B_0_1, RXH_L4_B_2_3
from softena.errors import SoftenaError, UsageError

FLOW_NAMES = {"tcp4": "TCP over IPV4", "udp4": "UDP over IPV4", "ip4": "IPV4",
              "tcp6": "TCP over IPV6", "udp6": "UDP over IPV6", "ip6": "IPV6"}
# ethtool -N field letters the device hashes on, and how ethtool -n names them.
HASH_FIELDS = (("s", RXH_IP_SRC, "IP SA"), ("d", RXH_IP_DST, "IP DA"),
               ("f", RXH_L4_B_0_1, "L4 bytes 0 & 1 [TCP/UDP src port]"),
               ("n", RXH_L4_B_2_3, "L4 bytes 2 & 3 [TCP/UDP dst port]"))


# ---- argument types: how ethtool spells a value on its command line -----------

def _u32(word: str, what: str, dev: str) -> int:
    try:
        return int(word, 0)
    except ValueError:
        raise UsageError(f"ethtool: invalid value '{word}' for {what}") from None


def _bool(word: str, what: str, dev: str) -> bool:
    if word not in ("on", "off"):
        raise UsageError(f"ethtool: invalid value '{word}' for {what}: on or off")
    return word == "on"


def _hex(word: str, what: str, dev: str) -> str:
    digits = word.replace(":", "")
    try:
        bytes.fromhex(digits)
    except ValueError:
        raise UsageError(f"ethtool: invalid value '{word}' for {what}: hex bytes, e.g. 6d:5a:56") from None
    return digits


def _flow(word: str, what: str, dev: str) -> str:
    if word not in FLOW_TYPES:
        raise SoftenaError(f"{dev}: unsupported flow type {word}: one of {'|'.join(FLOW_TYPES)}")
    return word


def _rxh(word: str, what: str, dev: str) -> int:
    letters = {letter: bit for letter, bit, _ in HASH_FIELDS}
    bad = set(word) - set(letters)
    if bad:
        raise SoftenaError(f"{dev}: the device hashes on s, d, f and n only, not {''.join(sorted(bad))}")
    return sum(letters[c] for c in set(word))


def _present(word: str, what: str, dev: str) -> bool:
    """A flag's value: it was given (a flag takes no word, so this is never called)."""
    return True


@dataclass(frozen=True)
class Type:
    """How a value is written (for usage lines) and parsed. COUNT: words it
    takes, 1; 0 for a flag; -1 for all the numbers that follow."""

    placeholder: str
    parse: Callable[[str, str, str], Any] = _present
    count: int = 1


TYPES = {
    "u32": Type("N", _u32),
    "bool": Type("on|off", _bool),
    "hex": Type("HEX", _hex),
    "str": Type("NAME", lambda word, what, dev: word),
    "flow": Type("|".join(FLOW_TYPES), _flow),
    "rxh": Type("sdfn", _rxh),
    "u32-list": Type("N...", _u32, count=-1),
    "flag": Type("", count=0),
}


@dataclass(frozen=True)
class Arg:
    """One argument word of an option and the typed values after it.

    WORD None takes any word: each becomes a key of a dict under the value's
    device argument (-K FEATURE on|off). LOCAL arguments choose what to print
    and are not sent (-n rx-flow-hash FLOW: rss-get answers every flow).
    """

    word: str | None
    values: tuple[tuple[str, str], ...]  # (device-side argument, type name)
    required: bool = False
    local: bool = False

    def usage(self) -> str:
        words = [self.word or "FEATURE"] + [TYPES[t].placeholder for _, t in self.values]
        return " ".join(w for w in words if w)


# ---- printed lines: templates formatted against the reply ---------------------

@dataclass(frozen=True)
class Rows:
    """One TEMPLATE line per element of the reply's list or dict ATTR (None: the reply itself)."""

    attr: str | None
    template: str


@dataclass(frozen=True)
class Grid:
    """The list ATTR, PER_ROW cells a line, each line headed by its first index."""

    attr: str
    per_row: int
    head: str
    cell: str


Line = str | Rows | Grid


@dataclass(frozen=True)
class Option:
    """One ethtool option: the operation it sends, its arguments, what it prints.

    A set prints nothing on success, as ethtool; it needs at least one argument.
    """

    flag: str
    op: str
    args: tuple[Arg, ...] = ()
    show: tuple[Line, ...] = ()
    long: str = ""  # ethtool's long spelling, e.g. --statistics
    help: str = ""

    def usage(self) -> str:
        """The option's words after DEV, for --help and the man page."""
        words = [a.usage() if a.required else f"[{a.usage()}]" for a in self.args]
        return " ".join(["DEV", *words])


_CHANNELS = ("RX:\t\tn/a", "TX:\t\tn/a", "Other:\t\tn/a")
_RING_ROWS = ("RX Mini:\t\tn/a", "RX Jumbo:\t\tn/a")

OPTIONS: dict[str, Option] = {o.flag: o for o in (
    Option("-i", "drvinfo", long="--driver", help="driver information", show=(
        "driver: {driver}", "version: {version}", "firmware-version: {firmware-version}",
        "expansion-rom-version: ", "bus-info: {bus-info}", "supports-statistics: {supports-statistics:yesno}",
        "supports-test: no", "supports-eeprom-access: no", "supports-register-dump: no",
        "supports-priv-flags: no")),
    Option("-l", "channels-get", long="--show-channels", help="queue pairs (channels): maximum and current",
           show=(
        "Channel parameters for {dev}:", "Pre-set maximums:", *_CHANNELS, "Combined:\t{combined-max}",
        "Current hardware settings:", *_CHANNELS, "Combined:\t{combined-count}")),
    Option("-L", "channels-set", long="--set-channels", help="set the number of queue pairs",
           args=(Arg("combined", (("combined-count", "u32"),)),)),
    Option("-g", "rings-get", long="--show-ring", help="ring sizes and the LLQ push buffer: maximum and current",
           show=(
        "Ring parameters for {dev}:", "Pre-set maximums:", "RX:\t\t\t{rx-max}", *_RING_ROWS, "TX:\t\t\t{tx-max}",
        "TX push buff len:\t{tx-push-buf-len-max}",
        "Current hardware settings:", "RX:\t\t\t{rx}", *_RING_ROWS, "TX:\t\t\t{tx}",
        "TX push buff len:\t{tx-push-buf-len}")),
    Option("-G", "rings-set", long="--set-ring", help="set ring sizes, the LLQ push buffer",
           args=(Arg("rx", (("rx", "u32"),)), Arg("tx", (("tx", "u32"),)),
                 Arg("tx-push-buf-len", (("tx-push-buf-len", "u32"),)))),
    Option("-k", "features-get", long="--show-features", help="offload features and their state", show=(
        "Features for {dev}:", Rows("features", "{name}: {active:onoff}{fixed:fixed}"))),
    Option("-K", "features-set", long="--features", help="turn offload features on or off",
           args=(Arg(None, (("wanted", "bool"),)),)),
    Option("-x", "rss-get", long="--show-rxfh", help="RSS indirection table, hash key and function", show=(
        "RX flow hash indirection table for {dev} with {rings} RX ring(s):", Grid("indir", 8, "{:5}: ", "{:6}"),
        "RSS hash key:", "{hkey:colonhex}", "RSS hash function:",
        "    toeplitz: {hfunc:is-toeplitz}", "    xor: {hfunc:is-xor}", "    crc32: {hfunc:is-crc32}")),
    Option("-X", "rss-set", long="--rxfh", help="set the RSS indirection table, hash key or function",
           args=(Arg("equal", (("equal", "u32"),)), Arg("weight", (("weight", "u32-list"),)),
                 Arg("default", (("default", "flag"),)), Arg("hkey", (("hkey", "hex"),)),
                 Arg("hfunc", (("hfunc", "str"),)))),
    Option("-n", "rss-get", long="--show-nfc", help="the fields a flow type is hashed on",
           args=(Arg("rx-flow-hash", (("flow", "flow"),), required=True, local=True),), show=(
        "{flow:flowname} flows use these fields for computing Hash flow key:", "{flow-hash.$flow:rxh}")),
    Option("-N", "rss-set", long="--config-nfc", help="set the fields a flow type is hashed on",
           args=(Arg("rx-flow-hash", (("flow", "flow"), ("fields", "rxh")), required=True),)),
    Option("-c", "coalesce-get", long="--show-coalesce", help="interrupt coalescing", show=(
        "Coalesce parameters for {dev}:", "Adaptive RX: {use-adaptive-rx:onoff}  TX: n/a", "",
        "rx-usecs: {rx-usecs}", "", "tx-usecs: {tx-usecs}")),
    Option("-C", "coalesce-set", long="--coalesce", help="set interrupt coalescing",
           args=(Arg("rx-usecs", (("rx-usecs", "u32"),)), Arg("tx-usecs", (("tx-usecs", "u32"),)),
                 Arg("adaptive-rx", (("use-adaptive-rx", "bool"),)))),
    Option("-S", "gstats", long="--statistics", help="device and per-queue statistics",
           show=("NIC statistics:", Rows(None, "     {key}: {value}"))),
)}

LONG = {o.long: o for o in OPTIONS.values()}
USAGE = "softena ethtool [-j|--json] [--pretty] OPTION DEV [ARGS...]"
# ethtool's own -p is --identify (blink the port's LED), so indented JSON is --pretty only here.
JSON_WORDS = ("-j", "--json", "--pretty")


# ---- the parser ---------------------------------------------------------------

def _usage(option: Option, dev: str) -> UsageError:
    return UsageError(f"{dev}: {option.flag} takes {', '.join(a.usage() for a in option.args)}")


def to_request(option: Option, dev: str, words: list[str]) -> tuple[dict, dict]:
    """Parse an option's words into (device arguments, local arguments), as ynl's args_to_req."""
    by_word = {a.word: a for a in option.args}
    sent: dict[str, Any] = {}
    local: dict[str, Any] = {}
    seen: set[str | None] = set()
    i = 0
    while i < len(words):
        key = words[i]
        arg = by_word.get(key) or by_word.get(None)
        if arg is None:
            raise _usage(option, dev) if option.args else UsageError(f"{dev}: {option.flag} takes no arguments")
        seen.add(arg.word)
        i += 1
        out = local if arg.local else sent
        for attr, type_name in arg.values:
            kind = TYPES[type_name]
            if kind.count == 0:
                value: Any = True
            elif kind.count < 0:
                value = []
                while i < len(words) and words[i].isdigit():
                    value.append(kind.parse(words[i], key, dev))
                    i += 1
            elif i >= len(words):
                raise UsageError(f"ethtool: missing value after '{key}'")
            else:
                value = kind.parse(words[i], key, dev)
                i += 1
            if arg.word is None:
                out.setdefault(attr, {})[key] = value
            else:
                out[attr] = value
    missing = [a for a in option.args if a.required and a.word not in seen]
    if missing or (option.args and not option.show and not seen):
        raise _usage(option, dev)
    return sent, local


# ---- the printer ---------------------------------------------------------------

class _Formatter(string.Formatter):
    """Fields are attribute names, dashed as netlink spells them; a dotted
    path looks into nested values, and $NAME there stands for NAME's value."""

    SPECS: dict[str, Callable[[Any], str]] = {
        "onoff": lambda v: "on" if v else "off",
        "yesno": lambda v: "yes" if v else "no",
        "fixed": lambda v: " [fixed]" if v else "",
        "colonhex": lambda v: ":".join(v[i:i + 2] for i in range(0, len(v), 2)),
        "flowname": lambda v: FLOW_NAMES[v],
        "rxh": lambda v: "\n".join([label for _, bit, label in HASH_FIELDS if v & bit] or ["None"]),
        **{f"is-{h}": (lambda h: lambda v: "on" if v == h else "off")(h) for h in ("toeplitz", "xor", "crc32")},
    }

    def get_field(self, field_name: str, args, kwargs) -> tuple[Any, str]:
        value: Any = kwargs
        for part in field_name.split("."):
            value = value[kwargs[part[1:]] if part.startswith("$") else part]
        return value, field_name

    def format_field(self, value: Any, spec: str) -> str:
        if spec in self.SPECS:
            return self.SPECS[spec](value)
        return "n/a" if value is None else format(value, spec)


_FMT = _Formatter()


def render(option: Option, dev: str, values: dict, reply: Any) -> str:
    """An option's printed lines for REPLY, as print_field prints a spec's attributes."""
    ns = {**values, **(reply if isinstance(reply, dict) else {}), "dev": dev}
    out: list[str] = []
    for line in option.show:
        if isinstance(line, Rows):
            items = reply if line.attr is None else ns[line.attr]
            rows = ({"key": k, "value": v} for k, v in items.items()) if isinstance(items, dict) else items
            out += [_FMT.format(line.template, **{**ns, **row}) for row in rows]
        elif isinstance(line, Grid):
            cells = ns[line.attr]
            out += [line.head.format(i) + "".join(line.cell.format(c) for c in cells[i:i + line.per_row])
                    for i in range(0, len(cells), line.per_row)]
        else:
            out.append(_FMT.format(line, **ns))
    return "\n".join(out)


# ---- the command --------------------------------------------------------------

DESCRIPTION = """ethtool's command line and output for softena devices: the kernel cannot
carry ethtool requests to a device in user space, so softena takes them and
the device answers. One option a call; a set prints nothing on success."""

EXAMPLES = examples(
    "softena ethtool -S ena0                     # statistics",
    "softena ethtool -j -S ena0                  # the same as JSON",
    "softena ethtool -L ena0 combined 2          # two queue pairs",
    "softena ethtool -G ena0 rx 512 tx 512",
    "softena ethtool -K ena0 rx-gro-hw off",
    "softena ethtool -X ena0 equal 2",
    "softena ethtool -N ena0 rx-flow-hash udp4 sdfn")


def describe(parser: argparse.ArgumentParser) -> None:
    """ethtool's options on PARSER, for --help, the man page and completion.

    run() parses the command line by hand, from OPTIONS, as ethtool does;
    this parser only tells what it accepts (argparse would take ethtool's
    `-S DEV` apart differently).
    """
    parser.description = DESCRIPTION
    parser.epilog = EXAMPLES
    parser.usage = USAGE
    parser.add_argument("-j", "--json", action="store_true", help="JSON output, as ethtool --json")
    parser.add_argument("--pretty", action="store_true", help="indented JSON (implies -j; -p is ethtool's --identify)")
    for o in OPTIONS.values():
        parser.add_argument(o.flag, o.long, metavar="DEV", dest=o.op + o.flag,
                            help=f"{o.help}; {o.flag} {o.usage()}" if o.args else o.help)


def register(sub: argparse._SubParsersAction) -> None:
    # main() hands `softena ethtool ...` to run(): ethtool's option letters
    # would confuse argparse. The parser here describes them.
    describe(sub.add_parser("ethtool", help="ethtool for softena devices (ethtool's arguments and output)",
                            formatter_class=argparse.RawDescriptionHelpFormatter))


def _help() -> str:
    parser = argparse.ArgumentParser(prog="softena ethtool", formatter_class=argparse.RawDescriptionHelpFormatter)
    describe(parser)
    return parser.format_help()


def run(argv: list[str], as_json: bool = False, pretty: bool = False) -> int:
    """`softena ethtool ARGV`: parse as ethtool does and print as it prints.

    AS_JSON, PRETTY: -j/-p given before `ethtool`, as `softena -j ethtool -S ena0`.
    """
    as_json = as_json or any(a in ("-j", "--json") for a in argv)
    pretty = pretty or "--pretty" in argv
    argv = [a for a in argv if a not in JSON_WORDS]
    if argv[:1] in (["-h"], ["--help"]):
        print(_help(), end="")
        return 0
    if not argv:
        raise UsageError(f"ethtool: an option and a device are needed\nusage: {USAGE}")
    flag = argv[0]
    option = OPTIONS.get(flag) or LONG.get(flag)
    if option is None:
        raise UsageError(f"ethtool: unsupported option {flag}; use one of {' '.join(OPTIONS)}")
    if len(argv) < 2:
        raise UsageError(f"ethtool: {flag} needs a device\nusage: softena ethtool {option.flag} {option.usage()}")
    dev, words = argv[1], argv[2:]
    sent, local = to_request(option, dev, words)
    reply = ctlsock.request(dev, "ethtool", op=option.op, args=sent)
    if (as_json or pretty) and reply is not None:
        print_json(reply, pretty)
    elif option.show:
        print(render(option, dev, {**sent, **local}, reply))
    return 0
