"""An independent Toeplitz RSS model, to predict which queue a flow lands on."""

from __future__ import annotations

import ipaddress

MS_KEY = bytes.fromhex("6d5a56da255b0ec24167253d43a38fb0d0ca2bcbae7b30b477cb2da38030f20c6a42b73bbeac01fa")


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
