"""sn_toeplitz against Microsoft's published RSS verification vectors."""

from __future__ import annotations

import random
import socket
import struct

import pytest

from softena.datapath.native import ffi, lib

MS_KEY = bytes.fromhex(
    "6d5a56da255b0ec24167253d43a38fb0d0ca2bcbae7b30b477cb2da38030f20c6a42b73bbeac01fa"
)

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

IDS4 = [f"{v[2]}->{v[0]}" for v in IPV4_VECTORS]
IDS6 = [f"{v[2]}->{v[0]}" for v in IPV6_VECTORS]


def toeplitz(data: bytes, key: bytes = MS_KEY) -> int:
    """Call the C Toeplitz hash on Python bytes."""
    return lib.sn_toeplitz(key, len(key), data, len(data))


def hash_input(family: int, dst: str, dport: int, src: str, sport: int, ports: bool) -> bytes:
    """The specification's input: source address, destination address, then ports."""
    data = socket.inet_pton(family, src) + socket.inet_pton(family, dst)
    if ports:
        data += struct.pack("!HH", sport, dport)
    return data


@pytest.mark.parametrize("dst,dport,src,sport,hash_ip,hash_tcp", IPV4_VECTORS, ids=IDS4)
def test_toeplitz_matches_microsoft_ipv4_address_hashes(
    dst: str, dport: int, src: str, sport: int, hash_ip: int, hash_tcp: int
) -> None:
    """The IPv4-only column of the table comes out for each address pair."""
    assert toeplitz(hash_input(socket.AF_INET, dst, dport, src, sport, False)) == hash_ip


@pytest.mark.parametrize("dst,dport,src,sport,hash_ip,hash_tcp", IPV4_VECTORS, ids=IDS4)
def test_toeplitz_matches_microsoft_ipv4_tcp_hashes(
    dst: str, dport: int, src: str, sport: int, hash_ip: int, hash_tcp: int
) -> None:
    """The IPv4-with-TCP column comes out when the ports are appended."""
    assert toeplitz(hash_input(socket.AF_INET, dst, dport, src, sport, True)) == hash_tcp


@pytest.mark.parametrize("dst,dport,src,sport,hash_ip,hash_tcp", IPV6_VECTORS, ids=IDS6)
def test_toeplitz_matches_microsoft_ipv6_address_hashes(
    dst: str, dport: int, src: str, sport: int, hash_ip: int, hash_tcp: int
) -> None:
    """The IPv6-only column of the table comes out for each address pair."""
    assert toeplitz(hash_input(socket.AF_INET6, dst, dport, src, sport, False)) == hash_ip


@pytest.mark.parametrize("dst,dport,src,sport,hash_ip,hash_tcp", IPV6_VECTORS, ids=IDS6)
def test_toeplitz_matches_microsoft_ipv6_tcp_hashes(
    dst: str, dport: int, src: str, sport: int, hash_ip: int, hash_tcp: int
) -> None:
    """The IPv6-with-TCP column comes out when the ports are appended."""
    assert toeplitz(hash_input(socket.AF_INET6, dst, dport, src, sport, True)) == hash_tcp


def test_toeplitz_of_empty_input_is_zero() -> None:
    """No input bits select no key windows."""
    assert toeplitz(b"") == 0


@pytest.mark.parametrize("bit", [0, 1, 7, 8, 31, 32, 63, 64, 100, 255, 287])
def test_toeplitz_of_a_single_set_bit_is_the_key_window_at_that_bit(bit: int) -> None:
    """Input bit i (MSB first) contributes the 32 key bits starting at key bit i."""
    data = bytearray(36)
    data[bit // 8] = 0x80 >> (bit % 8)
    key_bits = int.from_bytes(MS_KEY, "big")
    expected = (key_bits >> (len(MS_KEY) * 8 - 32 - bit)) & 0xFFFFFFFF
    assert toeplitz(bytes(data)) == expected


def test_toeplitz_is_linear_over_xor_of_inputs() -> None:
    """hash(a ^ b) == hash(a) ^ hash(b) for random inputs of every RSS input length."""
    rng = random.Random(1071)
    for length in (8, 12, 32, 36):
        for _ in range(20):
            a = rng.randbytes(length)
            b = rng.randbytes(length)
            both = bytes(x ^ y for x, y in zip(a, b))
            assert toeplitz(both) == toeplitz(a) ^ toeplitz(b)


def test_toeplitz_ignores_key_bytes_beyond_the_input_window() -> None:
    """A 4-byte input only reaches the first 63 key bits, so later key bytes do not matter."""
    other_key = MS_KEY[:8] + bytes(b ^ 0xFF for b in MS_KEY[8:])
    data = bytes.fromhex("a18e6450")
    assert toeplitz(data, other_key) == toeplitz(data)


def test_toeplitz_accepts_a_cffi_buffer_as_well_as_bytes() -> None:
    """The hash is the same whether the input lives in a cffi array or a bytes object."""
    dst, dport, src, sport, _, hash_tcp = IPV4_VECTORS[0]
    data = hash_input(socket.AF_INET, dst, dport, src, sport, True)
    buf = ffi.new("uint8_t[]", data)
    key = ffi.new("uint8_t[]", MS_KEY)
    assert lib.sn_toeplitz(key, len(MS_KEY), buf, len(data)) == hash_tcp
