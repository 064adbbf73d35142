"""`softena up --config FILE`: the same options in a TOML file, the command line over it.

The file's keys are the long option names of `softena up` without the
dashes in front (`busy-poll = 50`, `no-metrics = true`) and `name` for the
device; the schema is read off the `up` parser, so an option added there is
a key here with nothing else to change. Values are checked as the command
line's are, and an error names the file, the line and the key.
"""

from __future__ import annotations

import argparse
import difflib
import json
import math
import re
import sys
from dataclasses import dataclass
from typing import Any, Callable

from softena.errors import SoftenaError

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the same parser, before it joined the standard library
    import tomli as tomllib

# Options that say how to run this command, not what device to make.
NOT_IN_FILE = {"help", "config", "print_config", "json", "pretty", "foreground", "notify_fd"}

# A key at the start of a line: bare, "quoted" or 'literal', then '=' or a dotted part.
_KEY = re.compile(r"""\s*(?:"((?:[^"\\]|\\.)*)"|'([^']*)'|([A-Za-z0-9_-]+))\s*[=.]""")
_TABLE = re.compile(r"""\s*\[\[?\s*(?:"((?:[^"\\]|\\.)*)"|'([^']*)'|([A-Za-z0-9_-]+))""")
_TOML_POSITION = re.compile(r"\s*\(at line (\d+), column (\d+)\)$")


@dataclass(frozen=True)
class Option:
    """One `softena up` option as a file key."""

    key: str  # the long option without '--', or the positional's name
    action: argparse.Action
    default: Any  # the real default, applied after the file and the command line

    @property
    def dest(self) -> str:
        return self.action.dest

    def convert(self, value: Any) -> Any:
        """VALUE as the command line would have given it, or a SoftenaError saying what was expected."""
        if isinstance(self.action, argparse._StoreTrueAction):
            if isinstance(value, bool):
                return value
            raise SoftenaError(f"expected true or false, not {_kind(value)}")
        if self.action.type is int:
            if isinstance(value, int) and not isinstance(value, bool):
                return value
            raise SoftenaError(f"expected an integer, not {_kind(value)}")
        if self.action.type is float:
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return float(value)
            raise SoftenaError(f"expected a number, not {_kind(value)}")
        # A string option takes an integer as well: `llq = 96` and `cpus = 3` mean what they say.
        if isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool)):
            return str(value)
        raise SoftenaError(f"expected a string, not {_kind(value)}")


def _kind(value: Any) -> str:
    """How TOML calls the type of VALUE."""
    names = {bool: "a boolean", int: "an integer", float: "a float", str: "a string", list: "an array",
             dict: "a table"}
    return names.get(type(value), "a date or time")


@dataclass
class Setting:
    """A value from the file and where it stood."""

    value: Any
    line: int


class UpOptions:
    """The schema of `softena up`'s file keys, read off its parser.

    Taking it moves each option's default out of the parser (argparse then
    leaves unset what the command line does not give), so a default can no
    longer hide a file's value; the defaults come back in after the merge.
    """

    def __init__(self, parser: argparse.ArgumentParser) -> None:
        self.options: list[Option] = []
        for action in parser._actions:
            if action.dest in NOT_IN_FILE or action.dest == argparse.SUPPRESS:
                continue
            longs = [s for s in action.option_strings if s.startswith("--")]
            key = longs[0][2:] if longs else action.dest
            self.options.append(Option(key, action, action.default))
            action.default = argparse.SUPPRESS
        self.by_key = {opt.key: opt for opt in self.options}
        # Options the parser takes one of at most (--metrics-port, --no-metrics).
        self.exclusive = [[a.dest for a in group._group_actions] for group in parser._mutually_exclusive_groups]

    def load(self, path: str) -> dict[str, Setting]:
        """FILE's settings by option dest, each checked for its key and type."""
        try:
            with open(path, "rb") as f:
                raw = f.read()
        except OSError as exc:
            raise SoftenaError(f"cannot read {path}: {exc.strerror}") from None
        text = raw.decode("utf-8", errors="replace")
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise self._syntax_error(path, text, str(exc)) from None
        lines = key_lines(text)
        settings: dict[str, Setting] = {}
        for key, value in data.items():
            line = lines.get(key, 0)
            opt = self.by_key.get(key)
            if opt is None:
                close = difflib.get_close_matches(key, self.by_key, n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                what = "table" if isinstance(value, dict) else "key"
                raise SoftenaError(f"{path}:{line}: unknown {what} '{key}'{hint}")
            try:
                settings[opt.dest] = Setting(opt.convert(value), line)
            except SoftenaError as exc:
                raise SoftenaError(f"{path}:{line}: {key}: {exc}") from None
        for group in self.exclusive:
            given = sorted((settings[d].line, d) for d in group if d in settings)
            if len(given) > 1:
                (_, first), (line, second) = given[:2]
                raise SoftenaError(f"{path}:{line}: {self._key(second)}: not allowed with {self._key(first)}")
        return settings

    def merge(self, args: argparse.Namespace, path: str | None,
              build: Callable[[argparse.Namespace], Any]) -> tuple[argparse.Namespace, Any]:
        """The defaults, FILE's settings over them, ARGS over those; and what BUILD makes of the result.

        BUILD (the DeviceConfig builder) is the one judge of values: it is
        run on the defaults with the file's settings added one at a time, so
        the first it refuses is the one its line is blamed for.
        """
        given = {opt.dest: getattr(args, opt.dest) for opt in self.options if hasattr(args, opt.dest)}
        settings = self.load(path) if path else {}
        for group in self.exclusive:  # --metrics-port on the command line overrules the file's no-metrics
            if any(d in given for d in group):
                for d in group:
                    settings.pop(d, None)
        merged = argparse.Namespace(**vars(args))
        for opt in self.options:
            setattr(merged, opt.dest, opt.default)
        for dest, setting in sorted(settings.items(), key=lambda item: item[1].line):
            setattr(merged, dest, setting.value)
            try:
                build(merged)
            except SoftenaError as exc:
                raise SoftenaError(f"{path}:{setting.line}: {self._key(dest)}: {exc}") from None
        for dest, value in given.items():
            setattr(merged, dest, value)
        return merged, build(merged)

    def dump(self, merged: argparse.Namespace, as_json: bool = False) -> str:
        """MERGED as a config file of the same keys (or as JSON): what --print-config shows."""
        values = {opt.key: getattr(merged, opt.dest) for opt in self.options}
        if as_json:
            return json.dumps(values, indent=2)
        out = ["# softena up: the file's settings with the command line's over them"]
        for key, value in values.items():
            # TOML has no null: an option left to its computed default is named in a comment.
            out.append(f"# {key}: not set" if value is None else f"{key} = {toml_value(value)}")
        return "\n".join(out)

    def _key(self, dest: str) -> str:
        return next(opt.key for opt in self.options if opt.dest == dest)

    @staticmethod
    def _syntax_error(path: str, text: str, message: str) -> SoftenaError:
        """tomllib's message with the position first, as FILE:LINE:COLUMN, and the line's key if it has one."""
        position = _TOML_POSITION.search(message)
        if not position:
            return SoftenaError(f"{path}: {message}")
        line, column = int(position[1]), int(position[2])
        lines = text.splitlines()
        key = _KEY.match(lines[line - 1]) if line <= len(lines) else None
        named = f" {next(g for g in key.groups() if g is not None)}:" if key else ""
        return SoftenaError(f"{path}:{line}:{column}:{named} {message[:position.start()]}")


def key_lines(text: str) -> dict[str, int]:
    """The line of each top-level key and table in TEXT, a file tomllib has parsed.

    tomllib gives values without positions, and the errors are to point at
    a line; the file is valid TOML, so a top-level key is a line that starts
    with the key before the first [table], where tables stand on their own
    lines. Lines inside a multi-line string are skipped.
    """
    found: dict[str, int] = {}
    in_string = False
    in_table = False
    for number, line in enumerate(text.splitlines(), 1):
        quotes = line.count('"""') + line.count("'''")
        if in_string:
            in_string = quotes % 2 == 0
            continue
        in_string = quotes % 2 == 1
        if table := _TABLE.match(line):
            in_table = True
            name = next(g for g in table.groups() if g is not None)
            found.setdefault(name, number)
        elif not in_table and (key := _KEY.match(line)):
            found.setdefault(next(g for g in key.groups() if g is not None), number)
    return found


def toml_value(value: Any) -> str:
    """VALUE in TOML: a JSON string is a TOML basic string, and finite numbers and booleans agree."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # inf, -inf, nan: TOML's spellings, where JSON has none
    return json.dumps(value)
