"""Fault tests drive the real playbooks like the integration tests: share their helpers."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "integration"))

from fixtures import engine_and_images, playbooks  # noqa: E402,F401  pylint: disable=wrong-import-position,unused-import
