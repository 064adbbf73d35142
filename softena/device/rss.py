"""RSS configuration: hash key, indirection table and hashed fields per flow type."""

from __future__ import annotations

from dataclasses import dataclass, field

# The key of Microsoft's RSS verification suite, the common NIC default, so a
# flow's queue can be predicted with any Toeplitz calculator.
DEFAULT_KEY = bytes.fromhex(
    "6d5a56da255b0ec24167253d43a38fb0d0ca2bcbae7b30b477cb2da38030f20c6a42b73bbeac01fa"
)
INDIR_SIZE = 128

# ethtool's RXH_* bits and flow types (ethtool -N DEV rx-flow-hash FLOW sdfn).
RXH_IP_SRC, RXH_IP_DST, RXH_L4_B_0_1, RXH_L4_B_2_3 = 16, 32, 64, 128
FLOW_TYPES = ("tcp4", "udp4", "ip4", "tcp6", "udp6", "ip6")
_FOUR_TUPLE = RXH_IP_SRC | RXH_IP_DST | RXH_L4_B_0_1 | RXH_L4_B_2_3
_TWO_TUPLE = RXH_IP_SRC | RXH_IP_DST
DEFAULT_FIELDS = {"tcp4": _FOUR_TUPLE, "udp4": _FOUR_TUPLE, "ip4": _TWO_TUPLE,
                  "tcp6": _FOUR_TUPLE, "udp6": _FOUR_TUPLE, "ip6": _TWO_TUPLE}


def default_indir(num_queues: int) -> list[int]:
    """The even spread of ethtool_rxfh_indir_default(): entry i -> i mod n."""
    return [i % num_queues for i in range(INDIR_SIZE)]


@dataclass
class RssConfig:
    """What `ethtool -x` shows: key, indirection table, fields."""

    num_queues: int
    key: bytes = DEFAULT_KEY
    indir: list[int] = field(default_factory=list)
    fields: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_FIELDS))

    def __post_init__(self) -> None:
        if not self.indir:
            self.indir = default_indir(self.num_queues)
