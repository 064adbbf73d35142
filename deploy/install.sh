#!/usr/bin/env bash
# Install softena and everything it needs on a fresh Debian/Ubuntu machine, as root.
#   deploy/install.sh          the tools, libraries and softena itself
#   deploy/install.sh --test   also what the test suite needs (pytest, scapy, prometheus, tmux) and the
#                              bench's user-mode peers (passt for pasta, slirp4netns)
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
    echo "install.sh: run as root (apt-get and /run/softena need it)" >&2
    exit 1
fi

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
# The metrics test reads the device's endpoint back through a real Prometheus;
# its own on loopback: the package's service, where one starts, would listen
# on every address, so it stays off. The top test drives the live view in a tmux.
# bench/compare.py (CI's smoke too) runs pasta and slirp4netns as the user-mode peers.
if [ -n "$extras" ]; then
    apt-get install -y -qq --no-install-recommends prometheus tmux passt slirp4netns >/dev/null
    if [ -d /run/systemd/system ]; then
        systemctl disable --now prometheus >/dev/null 2>&1 || true
    fi
fi

# Editable: the C datapath is compiled in place, so the checkout is the install.
# On a distribution Python, pip needs leave to install beside apt's packages.
PIP_BREAK_SYSTEM_PACKAGES=1 python3 -m pip install -q --disable-pip-version-check -e ".${extras}"

# A stable path for systemd units and for shells whose PATH lacks pip's bin.
bin="$(python3 -c 'import shutil; print(shutil.which("softena") or "")')"
if [ -n "$bin" ] && [ "$bin" != /usr/local/bin/softena ]; then
    ln -sf "$bin" /usr/local/bin/softena
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

echo "softena installed: $(softena --help >/dev/null && command -v softena)"
