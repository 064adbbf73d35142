"""`ethtool -S` of a softena device: the ENA Linux driver's statistics, from one table.

Like ena_ethtool.c's ENA_STAT_*_ENTRY tables, each entry names a statistic
and where its value comes from; the layout is the driver's: global
statistics, then for each queue its Tx entries (queue_N_tx_*) and Rx
entries (queue_N_rx_*), then the admin queue's (ena_admin_q_*).

Global names and their order are the amzn-drivers ENA driver's (the
superset: mainline has tx_timeout, suspend, resume, wd_expired,
interface_up/down, admin_q_pause and reset_fail only); queue entries follow
mainline's order. A statistic softena cannot count for what the driver
means by it is left out, not printed as 0: tx_timeout (the kernel's netdev
watchdog never watches a tap), suspend/resume, admin_q_pause,
dma_mapping_err, linearize, doorbells, prepare_ctx_err, llq_buffer_copy (the
driver's bounce copy of a non-linear header; every softena push is a plain
copy, counted as tx-llq-push in `softena stats`), missed_tx (softena counts
missing completions device-wide only), rx_copybreak_pkt, refil_partial,
skb_alloc_fail, bad_desc_num, empty_rx_ring, the xdp_* verdicts (no XDP
program runs on the host side), the ENI allowance counters, and the reset
reasons softena never finds by itself (bad_rx_desc_num, invalid_state,
os_netdev_wd, ...: `softena stats --json` counts every reset by reason).
Counters ENA has no name for (steering, filtering, page pools, AENQ, the
wire's RX metadata and the Rx latency histogram) are in
`softena stats`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EnaStat:
    """One ethtool -S statistic: its ENA name and its source.

    scope "global": SOURCE is (section, key) of the device's stats;
    "tx"/"rx": SOURCE is a qstats counter of each live queue, printed as
    queue_N_tx_NAME / queue_N_rx_NAME; "admin": a counter of the admin queue,
    printed as ena_admin_q_NAME.
    """

    name: str
    scope: str
    source: str | tuple[str, str]


ENA_STATS: tuple[EnaStat, ...] = (
    # ena_stats_global_strings
    EnaStat("total_resets", "global", ("health", "total_resets")),
    EnaStat("reset_fail", "global", ("health", "reset_fail")),
    EnaStat("wd_expired", "global", ("health", "wd_expired")),  # keep-alive watchdog expiries
    # Invalid req_ids seen in completions (Tx) and Rx descriptors; each one triggers a reset.
    EnaStat("bad_tx_req_id", "global", ("health", "bad_tx_req_id")),
    EnaStat("bad_rx_req_id", "global", ("health", "bad_rx_req_id")),
    EnaStat("missing_intr", "global", ("health", "missing_intr")),  # a queue found no longer polled
    EnaStat("missing_tx_cmpl", "global", ("health", "missing_tx_cmpl")),  # Tx descriptors past the Tx timeout
    EnaStat("admin_to", "global", ("health", "admin_to")),  # admin commands that did not complete in time
    EnaStat("interface_down", "global", ("health", "interface_down")),
    EnaStat("interface_up", "global", ("health", "interface_up")),
    # ena_stats_tx_strings
    EnaStat("cnt", "tx", "tx-packets"),
    EnaStat("bytes", "tx", "tx-bytes"),
    EnaStat("queue_stop", "tx", "tx-stop"),
    EnaStat("queue_wakeup", "tx", "tx-wake"),
    # A worker is its queue pair's NAPI: it completes when it stops polling and
    # waits for its interrupt (an eventfd or the ports), and in ena_io_poll an
    # interrupt unmask follows every completion, so both count the same event.
    EnaStat("napi_comp", "tx", "napi-sleeps"),
    EnaStat("tx_poll", "tx", "napi-polls"),  # ENA counts every ena_io_poll on the Tx ring
    EnaStat("bad_req_id", "tx", "tx-bad-req-id"),
    EnaStat("unmask_interrupt", "tx", "napi-sleeps"),
    # AF_XDP (amzn-drivers, ENA_AF_XDP_SUPPORT): the ENA driver counts its own xsk
    # rings; softena's wire is an xsk, so these count the wire socket's Tx ring:
    # its need_wakeup flag found set, and the sendto() wakeups issued for it.
    EnaStat("xsk_need_wakeup_set", "tx", "tx-xsk-need-wakeup-set"),
    EnaStat("xsk_wakeup_request", "tx", "tx-xsk-wakeup-request"),
    # ena_stats_rx_strings
    EnaStat("cnt", "rx", "rx-packets"),
    EnaStat("bytes", "rx", "rx-bytes"),
    EnaStat("csum_good", "rx", "rx-csum-unnecessary"),  # the device checked the L4 checksum: good
    EnaStat("csum_bad", "rx", "rx-csum-bad"),
    EnaStat("page_alloc_fail", "rx", "rx-alloc-fail"),  # a refill found no free frame in the page pool
    EnaStat("bad_req_id", "rx", "rx-bad-req-id"),
    EnaStat("csum_unchecked", "rx", "rx-csum-none"),  # passed up without a checksum verdict
    # The wire socket's fill ring: need_wakeup found set, recvfrom() wakeups issued.
    EnaStat("xsk_need_wakeup_set", "rx", "rx-xsk-need-wakeup-set"),
    EnaStat("xsk_wakeup_request", "rx", "rx-xsk-wakeup-request"),
    # ena_stats_ena_com_strings
    EnaStat("aborted_cmd", "admin", ("admin-queue", "aborted_cmd")),
    EnaStat("submitted_cmd", "admin", ("admin-queue", "submitted_cmd")),
    EnaStat("completed_cmd", "admin", ("admin-queue", "completed_cmd")),
    EnaStat("out_of_space", "admin", ("admin-queue", "out_of_space")),
    EnaStat("no_completion", "admin", ("admin-queue", "no_completion")),
)


def _by_scope(scope: str) -> list[EnaStat]:
    return [s for s in ENA_STATS if s.scope == scope]


def _section_key(stat: EnaStat) -> tuple[str, str]:
    """A device-wide statistic's source: its section of Device.stats() and its key there."""
    assert isinstance(stat.source, tuple), f"{stat.name}: a per-queue source has no section"
    return stat.source


def ena_stats(stats: dict) -> dict[str, int]:
    """ethtool -S names and values, in the driver's order, from Device.stats().

    An entry whose source the device does not report is left out.
    """
    out: dict[str, int] = {}
    for s in _by_scope("global"):
        section, key = _section_key(s)
        if key in stats.get(section, {}):
            out[s.name] = stats[section][key]
    for q in stats.get("queues", []):
        for direction in ("tx", "rx"):
            for s in _by_scope(direction):
                if s.source in q:
                    out[f"queue_{q['queue-id']}_{direction}_{s.name}"] = q[s.source]
    for s in _by_scope("admin"):
        section, key = _section_key(s)
        if key in stats.get(section, {}):
            out[f"ena_admin_q_{s.name}"] = stats[section][key]
    return out

