"""Shaping benchmark: seconds to shape N attachments (both directions, IFB for the upstream),
to re-apply unchanged, to change the rate in place, and to remove the shaping.

Run as root: .venv/bin/python bench/shaping.py [--links 200]
It creates a throwaway network namespace and N veth pairs (host ends named tbbshNNNNN), and
removes them all at the end, also on failure.
"""
import argparse
import os
import subprocess
import sys
import time

# tests/checkout.py links the checkout as ansible_collections.testbed.containers
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests"))
import checkout  # noqa: E402  pylint: disable=wrong-import-position

ROOT = checkout.importable()

from pyroute2 import IPRoute  # noqa: E402  pylint: disable=wrong-import-position

from ansible_collections.testbed.containers.plugins.module_utils import shaping  # noqa: E402  pylint: disable=wrong-import-position

NETNS = "tbbench-shaping"


def veths(count):
    return ["tbbsh%05d" % i for i in range(count)]


def setup(ipr, count):
    subprocess.run(["ip", "netns", "add", NETNS], check=True)
    fd = os.open("/var/run/netns/%s" % NETNS, os.O_RDONLY)
    try:
        for i, name in enumerate(veths(count)):
            ipr.link("add", ifname=name, kind="veth", peer={"ifname": "p%d" % i, "net_ns_fd": fd})
            ipr.link("set", index=ipr.link_lookup(ifname=name)[0], state="up")
    finally:
        os.close(fd)


def cleanup(ipr, count):
    for name in veths(count) + [shaping.ifb_name(v) for v in veths(count)]:
        idx = ipr.link_lookup(ifname=name)
        if idx:
            ipr.link("del", index=idx[0])
    subprocess.run(["ip", "netns", "del", NETNS], check=False, stderr=subprocess.DEVNULL)


def attachments(count, rate):
    shape = {"rate_bps": rate}
    return [{"veth": v, "to_node": shape, "from_node": shape, "alias": "testbed:bench/shaping/%s" % v}
            for v in veths(count)]


def timed(label, func, results):
    start = time.monotonic()
    ops = func()
    results.append((label, time.monotonic() - start, len(ops)))
    return ops


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("--links", type=int, default=200, help="attachments to shape (default 200)")
    args = parser.parse_args()
    results = []
    with IPRoute() as ipr:
        cleanup(ipr, args.links)
        try:
            setup(ipr, args.links)
            timed("apply 10mbit both ways", lambda: shaping.apply_many(ipr, attachments(args.links, 10 ** 7)), results)
            ops = timed("re-apply unchanged", lambda: shaping.apply_many(ipr, attachments(args.links, 10 ** 7)),
                        results)
            assert ops == [], ops[:3]
            timed("change to 50mbit in place", lambda: shaping.apply_many(ipr, attachments(args.links, 5 * 10 ** 7)),
                  results)
            timed("remove shaping", lambda: shaping.apply_many(
                ipr, [{"veth": v, "to_node": None, "from_node": None} for v in veths(args.links)]), results)
        finally:
            cleanup(ipr, args.links)
    print("%-28s %9s %12s %6s" % ("step (%d attachments)" % args.links, "seconds", "ms/attach", "ops"))
    for label, seconds, ops in results:
        print("%-28s %9.2f %12.1f %6d" % (label, seconds, 1000.0 * seconds / args.links, ops))


if __name__ == "__main__":
    main()
