"""sn_toeplitz against Microsoft's published RSS verification vectors."""

from __future__ import annotations

import random
import socket
import struct

import pytest
from rss_ref import IPV4_VECTORS, IPV6_VECTORS, MS_KEY

from softena.datapath.vectors import ffi, lib

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


@pytest.mark.parametrize("dst,dport,src,sport,hash_ip,hash_tcp", IPV4_VECTORS + IPV6_VECTORS, ids=IDS4 + IDS6)
def test_steering_table_gives_microsoft_hashes(
    dst: str, dport: int, src: str, sport: int, hash_ip: int, hash_tcp: int
) -> None:
    """The lab steering program's table form of Toeplitz yields the published hashes."""
    family = socket.AF_INET6 if ":" in dst else socket.AF_INET
    for ports, want in ((False, hash_ip), (True, hash_tcp)):
        data = hash_input(family, dst, dport, src, sport, ports)
        assert lib.sn_rss_steer_vector(MS_KEY, data, len(data)) == want


def test_steering_table_equals_toeplitz_for_random_keys_and_inputs() -> None:
    """Random keys and every RSS input length: table form == bitwise form."""
    rng = random.Random(2544)
    for _ in range(40):
        key = rng.randbytes(40)
        for n in (8, 10, 12, 32, 34, 36):
            data = rng.randbytes(n)
            assert lib.sn_rss_steer_vector(key, data, n) == toeplitz(data, key)
