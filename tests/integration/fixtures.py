"""Fixtures the integration and fault tests share: the real engine and images, the playbooks."""
import pytest

from helpers import BUSYBOX, DEBIAN, DOCKER, Playbooks, sh


@pytest.fixture(scope="session", autouse=True)
def engine_and_images():
    """The integration tests need the real engine and the project's images (setup.sh makes both)."""
    proc = sh(DOCKER, "info", check=False)
    assert proc.returncode == 0, "no Docker engine answers: run ./setup.sh first\n" + proc.stdout
    for image in (DEBIAN, BUSYBOX):
        assert sh(DOCKER, "image", "inspect", image, check=False).returncode == 0, \
            "image %s missing: run scripts/build-images.sh" % image


@pytest.fixture
def playbooks(tmp_path):
    return Playbooks(tmp_path)
