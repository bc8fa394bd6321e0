"""Augmentation benchmark: seconds to augment each kind of image, cold and cached.

Run from the repository root, as root, with a Docker engine running:

    .venv/bin/python bench/augment.py [--repeat N] [--kinds a,b,...] [--levels basic,full]

For each image kind of the zoo (tests/integration/augment_zoo.py, built offline first) and
the project's base images it measures, N times (median shown):

- cold:    augment_image() with the builder's layer cache off: what a new base image costs;
- rebuild: augment_image() with the layer cache on, the tag absent: what re-tagging costs;
- cached:  augment_image() again: the content tag exists (a cache hit, nothing built).

It never touches the real augmented tags: the benchmark's own builds use a private
augmentation version, so their content tags are new, and they are removed at the end (also
on failure or Ctrl-C).
"""

from __future__ import absolute_import, division, print_function

import argparse
import os
import statistics
import sys
import time
import uuid

# tests/checkout.py links the checkout as ansible_collections.testbed.containers
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests"))
import checkout  # noqa: E402  pylint: disable=wrong-import-position

ROOT = checkout.importable("tests/integration")

import docker  # noqa: E402

import augment_zoo as zoo  # noqa: E402
from ansible_collections.testbed.containers.plugins.module_utils import augment  # noqa: E402


def remove(cli, ref):
    try:
        cli.images.remove(ref, force=True)
    except docker.errors.ImageNotFound:
        pass


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--kinds", help="comma-separated zoo kinds (default: all, plus the base images)")
    parser.add_argument("--levels", default="basic,full", help="comma-separated levels (default: basic,full)")
    args = parser.parse_args()
    levels = args.levels.split(",")

    os.system("bash %s >/dev/null" % os.path.join(ROOT, "scripts", "build-tools.sh"))
    cli = docker.from_env(timeout=600)
    kinds = args.kinds.split(",") if args.kinds else list(zoo.IMAGES) + ["busybox-base", "debian-base"]
    images = {}
    for kind in kinds:
        if kind == "busybox-base":
            images[kind] = zoo.BUSYBOX
        elif kind == "debian-base":
            images[kind] = zoo.DEBIAN
        else:
            tag, seconds = zoo.build_image(kind)
            images[kind] = tag
            if seconds:
                print("built zoo image %s in %.1f s" % (tag, seconds), file=sys.stderr)

    made = set()
    rows = []
    try:
        for level in levels:
            for kind, image in images.items():
                cold, rebuild, cached = [], [], []
                for run in range(args.repeat):
                    # a private version: new content tags, nothing shared is touched
                    augment.AUGMENT_VERSION = 1000000 + run * 1000000 + int(uuid.uuid4().int % 1000000)
                    start = time.time()
                    ref, changed = augment.augment_image(cli, image, level, nocache=True)
                    cold.append(time.time() - start)
                    made.add(ref)
                    assert changed, "the benchmark's build was a cache hit: %s" % ref
                    remove(cli, ref)
                    start = time.time()
                    ref2, changed = augment.augment_image(cli, image, level)
                    rebuild.append(time.time() - start)
                    assert changed and ref2 == ref
                    start = time.time()
                    ref3, changed = augment.augment_image(cli, image, level)
                    cached.append(time.time() - start)
                    assert not changed and ref3 == ref
                    remove(cli, ref)
                size = cli.images.get(image).attrs["Size"]
                rows.append((level, kind, size, statistics.median(cold), statistics.median(rebuild),
                             statistics.median(cached)))
    finally:
        for ref in made:
            remove(cli, ref)

    print("augmentation, median of %d runs (docker %s)" % (args.repeat, cli.version()["Version"]))
    print("| level | image kind | base size | cold s (no layer cache) | rebuild s (layer cache) | cached s (tag hit) |")
    print("| --- | --- | --- | --- | --- | --- |")
    for level, kind, size, c, r, h in rows:
        print("| %s | %s | %.1f MB | %.2f | %.2f | %.3f |" % (level, kind, size / 1e6, c, r, h))


if __name__ == "__main__":
    main()
