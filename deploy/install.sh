#!/usr/bin/env bash
# Install softena and everything it needs on a fresh Debian/Ubuntu machine, as root.
#   deploy/install.sh          the tools, libraries and softena itself, its systemd unit
#                              softena@.service and /etc/softena/ena0.toml (kept if present)
#   deploy/install.sh --test   also what the test suite needs (pytest, scapy, prometheus with promtool,
#                              tmux, systemd, kubernetes-validate, promql-parser) and the bench's
#                              user-mode peers (passt for pasta, slirp4netns)
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
    echo "install.sh: run as root (apt-get and /run/softena need it)" >&2
    exit 1
fi

# bcc compiles against /lib/modules/$(uname -r)/build. The running kernel's own
# headers package if Debian has one; else Debian's newest headers for this
# architecture, linked there (-amd64 as build, -common as source): bcc needs
# them only for its helpers, the probes take struct layouts from the kernel's BTF.
trace_headers() {
    local release arch dir ver
    release="$(uname -r)"
    dir="/lib/modules/$release"
    [ -d "$dir/build/include" ] && return 0
    if apt-cache show "linux-headers-$release" >/dev/null 2>&1; then
        apt-get install -y -qq --no-install-recommends "linux-headers-$release" >/dev/null
        return 0
    fi
    arch="$(dpkg --print-architecture)"
    apt-get install -y -qq --no-install-recommends "linux-headers-$arch" >/dev/null
    ver="$(find /usr/src -maxdepth 1 -name "linux-headers-*-$arch" -printf '%f\n' | sort -V | tail -n 1)"
    ver="${ver#linux-headers-}"
    ver="${ver%-"$arch"}"
    if [ -z "$ver" ]; then
        echo "install.sh: no linux-headers-*-$arch under /usr/src after installing linux-headers-$arch" >&2
        exit 1
    fi
    mkdir -p "$dir"
    ln -sfn "/usr/src/linux-headers-$ver-$arch" "$dir/build"
    ln -sfn "/usr/src/linux-headers-$ver-common" "$dir/source"
}

extras=""
[ "${1:-}" = "--test" ] && extras="[test]"

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# iproute2/ethtool: the lab wire; clang+libbpf/libxdp: the XDP program and the
# AF_XDP datapath; iperf3/ping: traffic; bpftool: the tests inspect programs;
# man-db (with groff) and bash-completion: `man softena` and <TAB>.
apt-get install -y -qq --no-install-recommends \
    iproute2 ethtool iperf3 iputils-ping bpftool man-db bash-completion \
    clang llvm gcc libc6-dev libbpf-dev libxdp-dev pkg-config >/dev/null
# softena trace: bcc (Debian's python3-bpfcc; the PyPI package named bcc is
# another thing, so it is not a pip dependency), kernel headers for bcc to
# compile against, and tracefs for the tracepoints' formats.
apt-get install -y -qq --no-install-recommends python3-bpfcc >/dev/null
trace_headers
mountpoint -q /sys/kernel/tracing || mount -t tracefs nodev /sys/kernel/tracing ||
    echo "install.sh: tracefs did not mount at /sys/kernel/tracing; softena trace needs it" >&2
# The metrics test reads the device's endpoint back through a real Prometheus;
# its own on loopback: the package's service, where one starts, would listen
# on every address, so it stays off. The top test drives the live view in a tmux.
# bench/compare.py (CI's smoke too) runs pasta and slirp4netns as the user-mode peers.
# The service test checks the unit with systemd-analyze verify (package systemd).
# bench/instructions.py (and its test) counts the datapath's instructions with valgrind.
if [ -n "$extras" ]; then
    apt-get install -y -qq --no-install-recommends prometheus tmux passt slirp4netns systemd valgrind >/dev/null
    # tests/fuzz builds fuzz/ with clang's libFuzzer and sanitizers, whose
    # runtimes Debian ships apart from clang (libclang-rt-N-dev, N clang's).
    rt="libclang-rt-$(clang -dumpversion | cut -d. -f1)-dev"
    if apt-cache show "$rt" >/dev/null 2>&1; then
        apt-get install -y -qq --no-install-recommends "$rt" >/dev/null
    fi
    if [ -d /run/systemd/system ]; then
        systemctl disable --now prometheus >/dev/null 2>&1 || true
    fi
fi

# Editable: the C datapath is compiled in place, so the checkout is the install.
# On a distribution Python, pip needs leave to install beside apt's packages.
# A stamp of what pip built from (the extras, the interpreter, the build files
# and the C and BPF sources) lets a rerun on an unchanged checkout skip pip,
# which would rebuild and rewrite everything.
stamp_file=.install-stamp
stamp="$( (echo "${extras}"; python3 -VV; cat pyproject.toml setup.py softena/datapath/build_native.py \
    softena/datapath/native/*.[ch] bpf/*.[ch]) | sha256sum | cut -d' ' -f1)"
# The checks run from / so that they see what is installed, not this checkout
# (python3 -c puts the current directory first on sys.path).
checkout="$(pwd)"
installed() { (cd / && python3 -c "$1") 2>/dev/null; }
if [ "$(cat "$stamp_file" 2>/dev/null)" != "$stamp" ] ||
   ! installed 'import softena.datapath._native, softena.datapath._vectors' ||
   [ "$(installed 'import softena, os; print(os.path.dirname(os.path.dirname(softena.__file__)))')" != "$checkout" ]; then
    PIP_BREAK_SYSTEM_PACKAGES=1 python3 -m pip install -q --disable-pip-version-check -e ".${extras}"
    echo "$stamp" > "$stamp_file"
fi

# A stable path for systemd units and for shells whose PATH lacks pip's bin.
bin="$(python3 -c 'import shutil; print(shutil.which("softena") or "")')"
if [ -n "$bin" ] && [ "$bin" != /usr/local/bin/softena ] && [ "$(readlink /usr/local/bin/softena)" != "$bin" ]; then
    ln -sfn "$bin" /usr/local/bin/softena
fi

# The service: the unit where systemd looks, replaced only when it changed; the
# example device's config only where none is, so a rerun keeps the admin's edits.
install -d -m 0755 /etc/softena /etc/systemd/system
if ! cmp -s deploy/softena@.service /etc/systemd/system/softena@.service; then
    install -m 0644 deploy/softena@.service /etc/systemd/system/softena@.service
    if [ -d /run/systemd/system ]; then
        systemctl daemon-reload
    fi
fi
if [ ! -e /etc/softena/ena0.toml ]; then
    install -m 0644 deploy/ena0.toml /etc/softena/ena0.toml
fi

# The man page and the bash completion, generated from the parsers that --help
# prints; install -C leaves a file that is already the same untouched, so a
# second run changes nothing.
install_generated() {  # MODULE DEST
    local tmp
    tmp="$(mktemp)"
    python3 -m "$1" >"$tmp"
    install -C -D -m 0644 "$tmp" "$2"
    rm -f "$tmp"
}
install_generated softena.cli.manpage /usr/local/share/man/man8/softena.8
install_generated softena.cli.completion /usr/share/bash-completion/completions/softena

# The installed command must run from anywhere; a failure here fails the install.
(cd / && softena --help >/dev/null)
echo "softena installed: $(command -v softena)"
