"""The netdev codec against the spec table and the running kernel: what is encoded decodes back,
errors keep what ynl shows, and real kernel dumps decode without a softena device."""

from __future__ import annotations

import socket
import struct

import pytest
from pyroute2.netlink import NETLINK_GENERIC

from softena.netdev import genl
from softena.netdev.printer import format_error
from softena.netdev.spec import ATTR_SETS, NETDEV


def sample(attr, big: bool):
    """A value for ATTR as ynl gives it: enum names, flag sets, nests, numbers."""
    if attr.type == "nest":
        return {a.name: sample(a, big) for a in ATTR_SETS[attr.nested].attrs if a.type != "pad"}
    if attr.enum:
        names = NETDEV.definitions[attr.enum]
        return set(names) if attr.kind == "flags" else names[-1]
    if attr.type == "u32":
        return 0xFFFF_FFFE
    if attr.type == "uint" and big:
        return (1 << 40) + attr.id  # needs the 8-byte form
    return 7 * attr.id


def round_trip(set_name: str, values: dict) -> tuple[dict, bytes]:
    cls = genl.MESSAGES[set_name]
    msg = cls()
    msg["cmd"] = 1
    msg["version"] = 1
    msg["attrs"] = genl.encode_attrs(ATTR_SETS[set_name], values)
    msg.encode()
    data = bytes(msg.data)
    back = cls(data)
    back.decode()
    return genl.decode_attrs(ATTR_SETS[set_name], back), data


@pytest.mark.parametrize("set_name", [name for name, s in ATTR_SETS.items() if s.attrs])
@pytest.mark.parametrize("big", [False, True], ids=["small", "big"])
def test_every_attribute_of_every_set_decodes_to_what_was_encoded(set_name: str, big: bool) -> None:
    values = {a.name: sample(a, big) for a in ATTR_SETS[set_name].attrs if a.type != "pad"}
    for attr in ATTR_SETS[set_name].attrs:
        if attr.multi:
            values[attr.name] = [values[attr.name], values[attr.name]]
    decoded, _ = round_trip(set_name, values)
    assert decoded == values
    assert list(decoded) == list(values)  # in the order they were put


def test_uint_takes_four_bytes_when_the_value_fits_and_eight_when_not() -> None:
    _, small = round_trip("qstats", {"rx-packets": 5})
    _, big = round_trip("qstats", {"rx-packets": 1 << 33})
    # genl header 20 bytes, then one attribute: length 8 (4-byte payload) or 12
    assert struct.unpack_from("HH", small, 20) == (8, 8)
    assert struct.unpack_from("HH", big, 20) == (12, 8)


def test_an_unknown_attribute_is_refused_with_ynls_words() -> None:
    with pytest.raises(genl.SpecError, match="Space 'napi' has no attribute 'bogus'"):
        genl.encode_attrs(ATTR_SETS["napi"], {"bogus": 1})


def test_an_unknown_enum_name_is_refused_with_the_names_it_takes() -> None:
    with pytest.raises(genl.SpecError, match="'both' is not one of queue-type: rx, tx"):
        genl.encode_attrs(ATTR_SETS["queue"], {"type": "both"})


def test_flags_are_taken_as_one_name_or_a_list_and_numbers_pass_through() -> None:
    attrs = ATTR_SETS["qstats"]
    assert genl.encode_attrs(attrs, {"scope": "queue"}) == [["scope", 1]]
    assert genl.encode_attrs(attrs, {"scope": ["queue"]}) == [["scope", 1]]
    assert genl.encode_attrs(attrs, {"scope": 1, "ifindex": 3}) == [["scope", 1], ["ifindex", 3]]


def test_a_bad_attribute_offset_becomes_ynls_dotted_path() -> None:
    _, data = round_trip("page-pool-stats", {"info": {"id": 3, "ifindex": 9}})
    # 16 bytes of netlink header, 4 of genl: the nest starts at 20, its first member at 24
    op = NETDEV.op("page-pool-stats-get")
    assert genl._extack_path(data, ATTR_SETS[op.attr_set], 20, 20) == ".info"
    assert genl._extack_path(data, ATTR_SETS[op.attr_set], 20, 24) == ".info.id"
    assert genl._extack_path(data, ATTR_SETS[op.attr_set], 20, 32) == ".info.ifindex"
    assert genl._extack_path(data, ATTR_SETS[op.attr_set], 20, 21) is None


def error_message(code: int, tlvs: bytes, nl_type: int = 2, flags: int = 0x300) -> bytes:
    body = struct.pack("i", -code) + (struct.pack("IHHII", 36, 20, 5, 1, 0) if nl_type == 2 else b"") + tlvs
    return struct.pack("IHHII", 16 + len(body), nl_type, flags, 1, 0) + body


def tlv(atype: int, payload: bytes) -> bytes:
    return struct.pack("HH", 4 + len(payload), atype) + payload + b"\0" * (-len(payload) % 4)


def parsed_error(data: bytes) -> genl.NlError:
    (msg,) = genl._Marshal().parse(data)
    return msg["header"]["error"]


def test_a_capped_error_keeps_its_length_flags_message_offset_and_policy() -> None:
    policy = tlv(1, struct.pack("I", 4)) + tlv(5, struct.pack("Q", 0x7FFFFFFF))
    err = parsed_error(error_message(34, tlv(1, b"integer out of range\0") + tlv(2, struct.pack("I", 24))
                                     + tlv(4, policy)))
    assert (err.code, err.nl_type, err.nl_flags) == (34, 2, 0x300)
    assert err.nl_len == 16 + 4 + 16 + 4 + 24 + 8 + 4 + 20
    assert err.extack == {"msg": "integer out of range", "bad-attr-offs": 24,
                          "policy": {"type": "u32", "max-value": 0x7FFFFFFF}}


def test_a_missing_attribute_is_named_with_the_kernels_doc_as_ynl_does() -> None:
    err = parsed_error(error_message(22, tlv(5, struct.pack("I", 2))))
    genl._finish_extack(err, NETDEV.op("napi-get"), b"")
    assert err.extack == {"miss-type": "id", "miss-type-doc": "ID of the NAPI instance."}


def test_a_failed_dump_is_a_done_message_and_printed_as_one() -> None:
    err = parsed_error(error_message(19, tlv(2, struct.pack("I", 20)), nl_type=3, flags=0x202))
    genl._finish_extack(err, NETDEV.op("qstats-get"), b"\0" * 20 + tlv(1, struct.pack("I", 99)))
    assert format_error(err.code, err.nl_len, err.nl_flags, err.extack, err.nl_type) == (
        "Netlink error: No such device\n"
        "nl_len = 28 (12) nl_flags = 0x202 nl_type = 3\n"
        "\terror: -19\n"
        "\textack: {'bad-attr': '.ifindex'}")


# ---- the running kernel ---------------------------------------------------------------------


def netlink_available() -> bool:
    try:
        socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_GENERIC).close()
    except OSError:
        return False
    return True


kernel = pytest.mark.skipif(not netlink_available(), reason="no generic netlink here")


@kernel
def test_the_kernel_dump_of_lo_decodes_with_the_tables_ids() -> None:
    with genl.NetdevGenl() as nl:
        devs = nl.dump("dev-get", {})
        lo = nl.do("dev-get", {"ifindex": 1})
        queues = [q for q in nl.dump("queue-get", {}) if q["ifindex"] == 1]
    assert devs[0] == lo
    assert lo["ifindex"] == 1 and lo["xdp-features"] == set() and lo["xsk-features"] == set()
    assert queues == [{"id": 0, "type": "rx", "ifindex": 1}, {"id": 0, "type": "tx", "ifindex": 1}]


@kernel
def test_the_kernels_errors_carry_the_extack_ynl_prints() -> None:
    with genl.NetdevGenl() as nl:
        with pytest.raises(genl.NlError) as missing:
            nl.do("napi-get", {"id": 999999})
        with pytest.raises(genl.NlError) as no_dev:
            nl.do("dev-get", {"ifindex": 0x7FFFFFF0})
    assert (missing.value.code, missing.value.nl_len, missing.value.nl_flags) == (2, 44, 0x300)
    assert missing.value.extack == {"bad-attr": ".id"}
    assert (no_dev.value.code, no_dev.value.nl_len, no_dev.value.nl_flags, no_dev.value.extack) == (19, 36, 0x100, None)


@kernel
def test_the_kernel_knows_every_operation_of_the_table_by_its_id() -> None:
    """CTRL_CMD_GETFAMILY lists the family's ops by id: the table's do/dump ops are all there."""
    with genl.NetdevGenl() as nl:
        reply = nl.sock.discovery(NETDEV.name)
    kernel_ops = {op.get_attr("CTRL_ATTR_OP_ID") for op in reply.get_attr("CTRL_ATTR_OPS")}
    ours = {op.id for op in NETDEV.ops if op.group is None and op.name != "page-pool-stats-get"}
    assert ours <= kernel_ops  # page-pool-stats-get is there only with CONFIG_PAGE_POOL_STATS
