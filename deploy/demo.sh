#!/usr/bin/env bash
# The demo: bring up ena0 with its lab peer, push iperf3 through it both
# ways, print the device's counters, and take it down again (also on error).
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_RUN="${SECONDS_PER_RUN:-5}"

softena up ena0
server=""
cleanup() {
    [ -n "$server" ] && kill "$server" 2>/dev/null
    softena down ena0 >/dev/null || true
}
trap cleanup EXIT

lab() { softena status --json | python3 -c "import json,sys; print([d for d in json.load(sys.stdin) if d['dev'] == 'ena0'][0]['lab']['peer'][$1])"; }
peer="$(lab 0)"
peer6="$(lab 1)"
ip netns exec ena0-peer iperf3 -s -p 5201 >/dev/null 2>&1 &
server=$!
for _ in $(seq 50); do
    ip netns exec ena0-peer ss -Hltn 'sport = :5201' | grep -q . && break
    sleep 0.1
done

# One iperf3 run against the server; a few tries, since the server refuses
# ("the server is busy") until it has finished with the previous test.
run_iperf3() {
    local out attempt
    for attempt in 1 2 3 4 5; do
        if out="$(iperf3 -c "$peer" -t "$SECONDS_PER_RUN" "$@" 2>&1)"; then
            tail -3 <<<"$out"
            return 0
        fi
        grep -q "server is busy" <<<"$out" || break
        sleep 0.5
    done
    echo "$out" >&2
    return 1
}

softena status
echo "== iperf3 host -> peer ($peer), ${SECONDS_PER_RUN} s"
run_iperf3
echo "== iperf3 peer -> host (-R), ${SECONDS_PER_RUN} s"
run_iperf3 -R
echo "== ping v4 and v6"
ping -c 3 -i 0.2 "$peer" | tail -2
ping -c 3 -i 0.2 "$peer6" | tail -2
ip -s link show ena0
softena stats ena0
echo "== softena ynl --family netdev --dump qstats-get --json '{\"ifindex\": ...}' (queue scope)"
ifindex="$(cat /sys/class/net/ena0/ifindex)"
softena ynl --family netdev --dump qstats-get --json "{\"ifindex\": $ifindex, \"scope\": \"queue\"}"
echo "== softena ynl --family netdev --dump napi-get --json '{\"ifindex\": ...}'"
softena ynl --family netdev --dump napi-get --json "{\"ifindex\": $ifindex}"
