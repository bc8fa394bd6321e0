"""Make the collection importable as ansible_collections.testbed.containers from the checkout."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import checkout  # noqa: E402  pylint: disable=wrong-import-position

ROOT = checkout.importable()


def pytest_configure(config):
    """Print the slowest tests of every run (CI time is a budget: this shows where it goes)."""
    if getattr(config.option, "durations", None) is None:
        config.option.durations = 30
        config.option.durations_min = 5.0
