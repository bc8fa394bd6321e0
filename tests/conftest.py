"""Make the collection importable as ansible_collections.testbed.containers from the checkout."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import checkout  # noqa: E402  pylint: disable=wrong-import-position

ROOT = checkout.importable()
