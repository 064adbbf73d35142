"""Page pools over the UMEM, counted as the kernel's page_pool counts: cache for the owner's
returns, the ring for other workers', the slow path to the region's free list; and the
kernel's lifecycle when queues are rebuilt: detach, drain, destroy, with nothing lost.
The suite runs every device with SOFTENA_DEBUG_PAGE_POOL=1 (conftest.py)."""

from __future__ import annotations

import time

from conftest import run, wait_for
from iperf import iperf3, iperf3_running

from softena.control import ctlsock
from softena.netdev.notify import Subscription

COUNTERS = ("alloc-fast", "alloc-slow", "alloc-empty", "alloc-refill",
            "recycle-cached", "recycle-cache-full", "recycle-ring", "recycle-ring-full")


def moved(before: dict, after: dict) -> dict[str, int]:
    """How far each pool counter moved between two stats readings, summed over the queues."""
    return {k: sum(a[k] - b[k] for a, b in zip(after["page-pools"], before["page-pools"])) for k in COUNTERS}


def steered(stats: dict) -> int:
    return sum(q["rx-steered-out"] for q in stats["queues"])


# A copy-mode AF_XDP receive that finds the socket's Rx ring full keeps the frame it took
# from the fill ring (xp_free() into the kernel's pool) for the socket's next receive: the
# wire may hold one frame beyond its fill ring until then.
SET_ASIDE = 1


def settle(dev, fill_ring: int) -> dict:
    """Wait for every pool to hold only what its wire holds: its fill ring, and at most a
    frame the kernel set aside. The idle trim gives back the cache and the ring after a
    second without work. Returns the stats read then, in one piece (a stray frame, a
    neighbour solicitation, may wake a worker right after)."""
    seen: dict = {}

    def idle() -> bool:
        seen.update(dev.stats())
        return all(p["inflight"] == p["lent"] and fill_ring <= p["lent"] <= fill_ring + SET_ASIDE
                   for p in seen["page-pools"])

    # A second idle per trim; a loaded machine (CI) can stretch that several times.
    try:
        wait_for(idle, within=30, what=f"pools back to what the wire holds, their {fill_ring}-frame fill rings")
    except AssertionError as e:
        # What each pool held, to tell a pool that never trims from one short of frames
        held = [{k: p.get(k) for k in ("queue-id", "inflight", "cached", "ring", "lent")}
                for p in seen["page-pools"]]
        raise AssertionError(f"{e}: {held}") from None
    return dict(seen)


def conserved(dev) -> bool:
    """Every frame of the region is in the free list or counted inflight by one pool:
    at a moment when no worker moved a frame between the two readings."""
    def balance() -> bool:
        stats = dev.stats()
        region = stats["region"]
        return region["frames-free"] + sum(p["inflight"] for p in stats["page-pools"]) == region["frames"]

    wait_for(balance, within=3, what="every UMEM frame free or inflight in one pool")
    return True


def traffic(dev, *args: str) -> None:
    for direction in ((), ("-R",)):
        iperf3(dev.netns, dev.peer_v4, *args, *direction, duration=2)


def test_one_queue_recycles_into_its_cache_and_its_ring_takes_only_the_overflow(softena_up) -> None:
    dev = softena_up("sft0", "--queues", "1")
    before = settle(dev, 1024)
    traffic(dev)
    d = moved(before, settle(dev, 1024))
    assert d["recycle-cached"] > 10000 and d["alloc-fast"] > 10000, d
    # No other worker returns frames: each ring recycle is a frame the full cache turned away.
    assert d["recycle-ring"] + d["recycle-ring-full"] == d["recycle-cache-full"], d
    assert conserved(dev)


def test_rss_across_queues_returns_the_steered_frames_through_the_ring(softena_up) -> None:
    # Without the wire's RSS stage, about half the frames land on the wrong worker.
    dev = softena_up("sft0", "--queues", "2", "--no-steering")
    before = settle(dev, 1024)
    traffic(dev, "-P", "4")
    after = settle(dev, 1024)
    d = moved(before, after)
    handed_off = steered(after) - steered(before)
    assert handed_off > 0, "RSS steered no frame to the other queue"
    # Every frame handed to the other worker comes back to its pool through the ring,
    # besides what full caches sent there; nothing else crosses.
    assert d["recycle-ring"] + d["recycle-ring-full"] - d["recycle-cache-full"] == handed_off, d
    assert conserved(dev)


def test_a_small_ring_sends_allocations_to_the_slow_path(softena_up) -> None:
    dev = softena_up("sft0", "--queues", "2")
    run(["softena", "ethtool", "-G", "sft0", "rx", "256"], check=True)
    before = settle(dev, 256)
    traffic(dev, "-P", "4")
    d = moved(before, settle(dev, 256))
    assert d["alloc-empty"] > 0 and d["alloc-slow"] > 0, d
    assert d["alloc-slow"] <= d["alloc-empty"], "the slow path is taken only after the ring was found empty"
    assert conserved(dev)


def test_idle_pools_return_to_their_baseline_after_traffic(softena_up) -> None:
    dev = softena_up("sft0", "--queues", "2")
    baseline = [p["inflight"] for p in settle(dev, 1024)["page-pools"]]
    assert conserved(dev)
    traffic(dev, "-P", "2")
    after = [p["inflight"] for p in settle(dev, 1024)["page-pools"]]
    assert all(abs(a - b) <= SET_ASIDE for a, b in zip(after, baseline)), (baseline, after)
    assert conserved(dev)


def test_a_ring_size_change_under_load_detaches_drains_and_destroys_the_old_pools(softena_up) -> None:
    dev = softena_up("sft0", "--queues", "2")
    old = {p["id"] for p in ctlsock.request("sft0", "netdev", op="page-pool-get", attrs={}, dump=True)["reply"]}
    got: list[dict] = []
    with Subscription(["page-pool"]) as sub, \
            iperf3_running(dev.netns, dev.peer_v4, "-P", "2", duration=4) as result:
        time.sleep(1.5)
        run(["softena", "ethtool", "-G", "sft0", "rx", "512"], check=True)
        wait_for(lambda: got.extend(sub.read_ready()) or len(got) >= 6, within=10, what="six notifications")
    names = [(m["name"], m["msg"]["id"]) for m in got]
    boottime = time.clock_gettime(time.CLOCK_BOOTTIME)
    for pool_id in old:
        change = next(m["msg"] for m in got if m["name"] == "page-pool-change-ntf" and m["msg"]["id"] == pool_id)
        delete = next(m["msg"] for m in got if m["name"] == "page-pool-del-ntf" and m["msg"]["id"] == pool_id)
        assert 0 < boottime - change["detach-time"] < 30 and "napi-id" not in change
        assert change["inflight"] > 0, "a detached pool lingers while frames are out"
        assert delete["inflight"] == 0 and delete["detach-time"] == change["detach-time"]
        assert names.index(("page-pool-change-ntf", pool_id)) < names.index(("page-pool-del-ntf", pool_id))
    added = [m["msg"] for m in got if m["name"] == "page-pool-add-ntf"]
    assert len(added) == 2 and not {a["id"] for a in added} & old and all("napi-id" in a for a in added)
    assert result["end"]["sum_received"]["bytes"] > 0, "the streams lived through the rebuild"
    settle(dev, 512)
    assert conserved(dev)
