"""An independent Toeplitz RSS model, to predict which queue a flow lands on."""

from __future__ import annotations

import ipaddress

MS_KEY = bytes.fromhex("6d5a56da255b0ec24167253d43a38fb0d0ca2bcbae7b30b477cb2da38030f20c6a42b73bbeac01fa")

# "Verifying the RSS Hash Calculation": destination, destination port, source,
# source port, hash of the addresses only, hash with the TCP ports.
IPV4_VECTORS = [
    ("161.142.100.80", 1766, "66.9.149.187", 2794, 0x323E8FC2, 0x51CCC178),
    ("65.69.140.83", 4739, "199.92.111.2", 14230, 0xD718262A, 0xC626B0EA),
    ("12.22.207.184", 38024, "24.19.198.95", 12898, 0xD2D0A5DE, 0x5C2B394A),
    ("209.142.163.6", 2217, "38.27.205.30", 48228, 0x82989176, 0xAFC7327F),
    ("202.188.127.2", 1303, "153.39.163.191", 44251, 0x5D1809C5, 0x10E828A2),
]
IPV6_VECTORS = [
    ("3ffe:2501:200:3::1", 1766, "3ffe:2501:200:1fff::7", 2794, 0x2CC18CD5, 0x40207D3D),
    ("ff02::1", 4739, "3ffe:501:8::260:97ff:fe40:efab", 14230, 0x0F0C461C, 0xDDE51BBF),
    ("fe80::200:f8ff:fe21:67cf", 38024, "3ffe:1900:4545:3:200:f8ff:fe21:67cf", 44251,
     0x4B61E985, 0x02D1FEEF),
]


def toeplitz(key: bytes, data: bytes) -> int:
    """The Toeplitz hash as Microsoft's RSS specification states it, bit by bit."""
    key_bits = int.from_bytes(key, "big")
    key_len = len(key) * 8
    result = 0
    for i in range(len(data) * 8):
        if data[i // 8] & (0x80 >> (i % 8)):
            result ^= (key_bits >> (key_len - 32 - i)) & 0xFFFFFFFF
    return result


def flow_queue(src: str, dst: str, sport: int, dport: int, num_queues: int, key: bytes = MS_KEY) -> int:
    """The queue of a TCP/UDP flow under the default table (entry i -> i mod n)."""
    data = (ipaddress.ip_address(src).packed + ipaddress.ip_address(dst).packed
            + sport.to_bytes(2, "big") + dport.to_bytes(2, "big"))
    return toeplitz(key, data) % 128 % num_queues


# Where the next spreading_port_base() search starts. Each call moves past the
# ports it gave: a test's client connections stay in TIME_WAIT for a minute,
# and the next test binding the same --cport would fail with EADDRINUSE.
_next_port = 40000


def spreading_port_base(peer: str, host: str, server_port: int, queues: int) -> int:
    """A client port base whose 4 flows cover every queue, as the default RSS
    maps them; never one an earlier call in this process gave."""
    global _next_port
    for base in range(_next_port, _next_port + 1000):
        hit = {flow_queue(peer, host, server_port, base + i, queues) for i in range(4)}
        if hit == set(range(queues)):
            _next_port = base + 4
            return base
    raise AssertionError("no port base spreads 4 flows")
