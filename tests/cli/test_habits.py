"""The command line's habits, iproute2's and ethtool's: exit status 0/1/2, --help with examples on every
command, a man page and a bash completion generated from the same parsers. No device is needed."""

from __future__ import annotations

import json
import os
import pathlib
import re
import shutil
import subprocess
import sys

import pytest

from softena.cli.main import build_parser
from softena.cli.manpage import commands

ROOT = pathlib.Path(__file__).resolve().parents[2]
# The subprocesses run this tree's softena, wherever pytest was started.
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "80"}

COMMANDS = [full for full, _, _ in commands(build_parser())]
TOP_LEVEL = [c for c in COMMANDS if " " not in c]

# A call of each command that fails for a reason the user can act on (exit 1), on a device that is not there.
ERRORS = {
    "up": ["up", "sft9", "--queues", "0"],
    "down": ["down", "sft9"],
    "stats": ["stats", "sft9"],
    "ethtool": ["ethtool", "-S", "sft9"],
    "reset": ["reset", "sft9"],
    "fault": ["fault", "list", "sft9"],
    "ynl": ["ynl", "--family", "netdev", "--do", "dev-get", "--json", "{not json"],
    "top": ["top", "--once", "sft9"],
    "trace": ["trace", "sft9"],
}
CANNOT_FAIL = {"status"}  # it lists what there is, and nothing there is an answer too


def softena(*args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "softena", *args], capture_output=True, text=True, env=ENV,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def python_module(module: str) -> str:
    return subprocess.run([sys.executable, "-m", module], capture_output=True, text=True, env=ENV, timeout=60,
                          check=True).stdout


@pytest.mark.parametrize("command", COMMANDS)
def test_help_exits_0_with_examples(command: str) -> None:
    proc = softena(*command.split(), "--help")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"usage: softena {command}"), proc.stdout
    examples = proc.stdout.split("\nexamples:\n")
    assert len(examples) == 2, f"softena {command} --help has no examples"
    lines = examples[1].splitlines()
    assert lines and all(line.startswith(f"  softena {command.split()[0]}") for line in lines), lines
    assert max(map(len, proc.stdout.splitlines())) <= 80


@pytest.mark.parametrize("command", COMMANDS)
def test_an_unknown_option_is_a_usage_error_exit_2(command: str) -> None:
    proc = softena(*command.split(), "--no-such-option")
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert proc.stdout == "" and "Traceback" not in proc.stderr and proc.stderr.strip(), proc.stderr


@pytest.mark.parametrize("args", [["ethtool", "-Q", "sft9"], ["ethtool"], ["ethtool", "-S"],
                                  ["ethtool", "-L", "sft9", "combined", "two"], ["stats", "--queues", "1"],
                                  ["fault", "inject", "no-such-fault"], ["top", "-j", "--iterations", "2"], []])
def test_malformed_command_lines_exit_2(args: list[str]) -> None:
    proc = softena(*args)
    assert proc.returncode == 2 and proc.stdout == "", (proc.returncode, proc.stdout, proc.stderr)


def test_every_command_has_a_failing_call_here() -> None:
    missing = set(TOP_LEVEL) - set(ERRORS) - CANNOT_FAIL
    assert not missing, f"add a call that fails with exit status 1 to ERRORS for: {', '.join(sorted(missing))}"


@pytest.mark.parametrize("command", sorted(ERRORS))
def test_an_error_exits_1_with_one_line(command: str) -> None:
    proc = softena(*ERRORS[command])
    assert proc.returncode == 1, (proc.returncode, proc.stdout, proc.stderr)
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr, proc.stderr


def test_success_exits_0_and_json_is_ip_shaped() -> None:
    # status answers with or without devices; -j is one line, -p indents, before or after the command.
    one_line = softena("status", "-j")
    assert one_line.returncode == 0 and len(one_line.stdout.splitlines()) == 1, one_line.stdout
    before = softena("-j", "status")
    assert before.returncode == 0 and len(before.stdout.splitlines()) == 1, before.stdout
    assert isinstance(json.loads(one_line.stdout), list) and isinstance(json.loads(before.stdout), list)
    pretty = softena("-p", "status")
    assert pretty.returncode == 0 and isinstance(json.loads(pretty.stdout), list), pretty.stdout
    assert pretty.stdout == "[]\n" or pretty.stdout.startswith("[\n  {"), pretty.stdout
    assert softena("-V").stdout.startswith("softena ")


# ---- the man page ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def manpage(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    path = tmp_path_factory.mktemp("man") / "softena.8"
    path.write_text(python_module("softena.cli.manpage"))
    return path


def test_man_page_is_clean_roff(manpage: pathlib.Path) -> None:
    groff = subprocess.run(["groff", "-man", "-ww", "-z", str(manpage)], capture_output=True, text=True, timeout=30)
    assert groff.returncode == 0 and groff.stderr == "", groff.stderr


def test_man_page_has_every_command_its_examples_and_fits_80_columns(manpage: pathlib.Path) -> None:
    env = {**os.environ, "MANWIDTH": "80", "LC_ALL": "C.UTF-8", "MAN_KEEP_FORMATTING": "0"}
    proc = subprocess.run(["man", "--warnings", "-l", str(manpage)], capture_output=True, text=True, env=env,
                          timeout=30)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    text = re.sub(r".\x08", "", proc.stdout)  # overstrike bold, should man still set it
    long_lines = [line for line in text.splitlines() if len(line) > 80]
    assert not long_lines, long_lines
    for section in ("NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "COMMANDS", "EXIT STATUS", "FILES", "SEE ALSO"):
        assert re.search(rf"^{section}$", text, re.M), section
    headings = re.findall(r"^   softena (.+)$", text, re.M)
    assert headings == COMMANDS
    for full, _, sub in commands(build_parser()):
        for example in (sub.epilog or "").splitlines()[1:]:
            assert example.strip() in text, (full, example)
    assert "/run/softena/" in text and "ethtool(8)" in text and "ip(8)" in text


# ---- the bash completion -----------------------------------------------------------------


@pytest.fixture(scope="module")
def completion(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    path = tmp_path_factory.mktemp("completion") / "softena"
    path.write_text(python_module("softena.cli.completion"))
    return path


def complete(script: pathlib.Path, *words: str) -> list[str]:
    """What <TAB> offers after WORDS (the last one being completed), from the completion function in a real bash."""
    assert shutil.which("bash")
    line = " ".join(words)
    driver = (f'source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMP_LINE="{line}"; '
              'COMP_POINT=${#COMP_LINE}; _shtab_softena; printf "%s\\n" "${COMPREPLY[@]}"')
    proc = subprocess.run(["bash", "-c", driver, "bash", str(script), *words], capture_output=True, text=True,
                          timeout=30, check=True)
    return [w for w in proc.stdout.splitlines() if w]


def test_completion_offers_commands_and_options(completion: pathlib.Path) -> None:
    assert sorted(complete(completion, "softena", "st")) == ["stats", "status"]
    assert set(complete(completion, "softena", "")) >= set(TOP_LEVEL)
    assert "--queues" in complete(completion, "softena", "up", "--")
    assert complete(completion, "softena", "up", "--qu") == ["--queues"]
    assert set(complete(completion, "softena", "stats", "-")) >= {"-j", "--json", "-p", "--pretty", "--all"}
    assert set(complete(completion, "softena", "ethtool", "-")) >= {"-S", "-L", "-G", "-K", "--statistics"}
    assert "qstats-get" in complete(completion, "softena", "ynl", "--family", "netdev", "--dump", "")
    assert "wire-down" in complete(completion, "softena", "fault", "inject", "")


# ---- installing them ---------------------------------------------------------------------


def test_install_sh_writes_them_once_and_a_second_run_changes_nothing(tmp_path: pathlib.Path) -> None:
    # install.sh's own function, run twice into a scratch tree: the second run leaves every file as it was.
    script = (ROOT / "deploy" / "install.sh").read_text()
    function = re.search(r"^install_generated\(\) \{.*?^\}$", script, re.M | re.S)
    assert function, "install.sh has no install_generated()"
    calls = re.findall(r"^install_generated (\S+) (\S+)$", script, re.M)
    assert dict(calls) == {"softena.cli.manpage": "/usr/local/share/man/man8/softena.8",
                           "softena.cli.completion": "/usr/share/bash-completion/completions/softena"}
    runs = "; ".join(f'install_generated {module} "$1"{dest}' for module, dest in calls)
    driver = f'set -euo pipefail; {function.group(0)}\n{runs}'

    def install() -> dict[str, tuple[int, int, str]]:
        subprocess.run(["bash", "-c", driver, "bash", str(tmp_path)], env=ENV, check=True, timeout=120)
        return {dest: ((st := os.stat(f"{tmp_path}{dest}")).st_ino, st.st_mtime_ns, oct(st.st_mode & 0o777))
                for _, dest in calls}

    first = install()
    assert all(mode == "0o644" for _, _, mode in first.values()), first
    assert pathlib.Path(f"{tmp_path}/usr/local/share/man/man8/softena.8").read_text().startswith(".TH SOFTENA 8")
    assert install() == first
