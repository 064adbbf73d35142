"""softena.8, from the parsers that --help prints: `python3 -m softena.cli.manpage > softena.8`.

Written here rather than with argparse-manpage: that one leaves out each
command's epilog (where the examples are) and sets usage lines as filled
text. This walks whatever commands build_parser() has, nested ones too, so
a new command is in the page without a change here.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator

from softena import __version__

WIDTH = 72  # usage lines are wrapped here, not at the terminal's width: the page is the same everywhere

FILES = (
    ("/run/softena/DEV.json", "what a running device created (its pid, links, namespaces), for softena down "
                              "and for cleaning up after a crash"),
    ("/run/softena/DEV.sock", "the device's control socket: status, stats, ethtool, reset, fault"),
    ("/run/softena/DEV.log", "the device process's log"),
    ("/etc/softena/*.toml", "device configurations, for softena up --config"),
)

EXIT_STATUS = (
    ("0", "success"),
    ("1", "an error: the device refused, is not there, or the system could not do what was asked"),
    ("2", "a usage error: an unknown option, a missing or malformed argument"),
)

SEE_ALSO = r"\fBip\fR(8), \fBethtool\fR(8), \fBynl\fR (tools/net/ynl in the Linux sources), \fBtop\fR(1)"


def roff(text: str) -> str:
    """TEXT escaped for a roff text line: backslashes, hyphens as minus signs, no control character first."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    return "\\&" + text if text[:1] in (".", "'") else text


def commands(parser: argparse.ArgumentParser, prefix: str = "") -> Iterator[tuple[str, str, argparse.ArgumentParser]]:
    """(name, one-line help, parser) of every command under PARSER, depth first (fault, fault inject, ...)."""
    for action in parser._actions:  # argparse keeps its subcommands here and nowhere public
        if not isinstance(action, argparse._SubParsersAction):
            continue
        helps = {a.dest: a.help for a in action._choices_actions}
        for name, sub in action.choices.items():
            if helps.get(name) == argparse.SUPPRESS:
                continue
            full = f"{prefix}{name}"
            yield full, helps.get(name) or "", sub
            yield from commands(sub, f"{full} ")


def _usage(parser: argparse.ArgumentParser) -> list[str]:
    formatter = argparse.HelpFormatter(parser.prog, width=WIDTH)
    formatter.add_usage(parser.usage, parser._actions, parser._mutually_exclusive_groups, prefix="")
    return [line for line in formatter.format_help().splitlines() if line.strip()]


def _options(parser: argparse.ArgumentParser) -> list[str]:
    """.TP paragraphs for the options and arguments, as --help lists them (less -h and hidden ones)."""
    formatter = argparse.HelpFormatter(parser.prog, width=WIDTH)
    out = []
    for action in parser._actions:
        if action.help == argparse.SUPPRESS or isinstance(action, (argparse._HelpAction,
                                                                   argparse._SubParsersAction)):
            continue
        out += [".TP", f"\\fB{roff(formatter._format_action_invocation(action))}\\fR"]
        out.append(roff(" ".join(formatter._expand_help(action).split())) if action.help else "")
    return out


def _examples(epilog: str | None) -> list[str]:
    """The epilog's example lines (output.examples wrote them), set as they would be typed."""
    lines = (epilog or "").splitlines()
    if not lines or lines[0] != "examples:":
        return [".PP", roff(" ".join(lines))] if lines else []
    return [".PP", "Examples:", ".RS 4", ".nf", *(roff(line.strip()) for line in lines[1:]), ".fi", ".RE"]


def _nofill(lines: list[str]) -> list[str]:
    return [".nf", *map(roff, lines), ".fi"]


def _paragraphs(text: str | None) -> list[str]:
    """Description text: its blank-line paragraphs, each refilled by roff."""
    out = []
    for para in (text or "").split("\n\n"):
        if para.strip():
            out += [".PP", roff(" ".join(para.split()))]
    return out


def manpage(parser: argparse.ArgumentParser | None = None) -> str:
    """The whole page, softena(8), in man(7) markup."""
    if parser is None:
        from softena.cli.main import build_parser

        parser = build_parser()
    name, _, summary = (parser.description or "softena").partition(": ")
    out = [f'.TH SOFTENA 8 "" "softena {__version__}" "System Administration"',
           ".SH NAME", f"softena \\- {roff(summary or name)}",
           ".SH SYNOPSIS", *_nofill(_usage(parser)),
           ".SH DESCRIPTION",
           "A software network adapter: one Linux process that behaves like an ENA\\-style multiqueue NIC. "
           "The host sees an ordinary interface (a multiqueue TAP); behind it, one worker thread per queue "
           "pair moves frames through a C datapath to a wire driven with AF_XDP.",
           ".PP",
           "Each command has its own options, given anywhere on its command line, as "
           "\\fBip\\fR(8) users type them; \\fBsoftena\\fR \\fICOMMAND\\fR \\fB\\-\\-help\\fR prints them "
           "with examples. Commands that print take \\fB\\-j\\fR (JSON) and \\fB\\-p\\fR (indented JSON), "
           "after the command or before it, as \\fBip \\-j \\-p\\fR.",
           ".SH OPTIONS", *_options(parser),
           ".SH COMMANDS"]
    for full, help_text, sub in commands(parser):
        out += [".SS " + roff(f"softena {full}")]
        if help_text:
            out.append(roff(help_text + "."))
        out += [".PP", *_nofill(_usage(sub)), *_paragraphs(sub.description)]
        options = _options(sub)
        if options:
            out += [".PP", "Options:", ".RS 4", *options, ".RE"]
        out += _examples(sub.epilog)
    out.append(".SH EXIT STATUS")
    for code, meaning in EXIT_STATUS:
        out += [".TP", f"\\fB{code}\\fR", roff(meaning)]
    out.append(".SH FILES")
    for path, meaning in FILES:
        out += [".TP", f"\\fI{roff(path)}\\fR", roff(meaning)]
    out += [".SH SEE ALSO", SEE_ALSO]
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    sys.stdout.write(manpage())
