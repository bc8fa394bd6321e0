"""Makes this checkout importable as ``ansible_collections.testbed.containers`` (the link
.collections/ansible_collections/testbed/containers -> the checkout, which setup.sh makes too)
and puts extra folders on sys.path; for tests/conftest.py and the benchmarks in bench/."""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLLECTIONS = os.path.join(ROOT, ".collections")
LINK = os.path.join(COLLECTIONS, "ansible_collections", "testbed", "containers")


def importable(*folders):
    """Links the checkout (once) and puts .collections and ``folders`` (relative to the checkout)
    first on sys.path; returns the checkout's root."""
    if not os.path.islink(LINK):
        os.makedirs(os.path.dirname(LINK), exist_ok=True)
        os.symlink(ROOT, LINK)
    for path in (COLLECTIONS,) + tuple(os.path.join(ROOT, f) for f in folders):
        if path not in sys.path:
            sys.path.insert(0, path)
    return ROOT
