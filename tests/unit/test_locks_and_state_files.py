"""The experiment lock names its holder and gives up after a timeout; state files are replaced
whole or not at all."""
import json
import os
import subprocess
import sys
import time

import pytest

from ansible_collections.testbed.containers.plugins.module_utils import files
from ansible_collections.testbed.containers.plugins.module_utils.slice import LockTimeout, file_lock

TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HOLD = ("import sys, time; sys.path.insert(0, %r); import checkout; checkout.importable()\n"
        "from ansible_collections.testbed.containers.plugins.module_utils.slice import file_lock\n"
        "with file_lock(sys.argv[1], None, 'swap-in', 'experiment p/n'):\n"
        "    print('held', flush=True); time.sleep(float(sys.argv[2]))\n" % TESTS)


def hold(path, seconds):
    proc = subprocess.Popen([sys.executable, "-c", HOLD, path, str(seconds)], stdout=subprocess.PIPE,
                            universal_newlines=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_second_run_gives_up_after_the_timeout_naming_the_holder(tmp_path):
    path = str(tmp_path / "locks" / "p.n.lock")
    proc = hold(path, 30)
    try:
        start = time.time()
        with pytest.raises(LockTimeout) as info:
            with file_lock(path, 1, "teardown", "experiment p/n"):
                pass
        assert 1 <= time.time() - start < 5
        message = str(info.value)
        assert message.startswith("experiment p/n is locked by swap-in of experiment p/n, pid %d on " % proc.pid)
        assert "gave up after 1 s (testbed_lock_timeout)" in message
    finally:
        proc.kill()
        proc.wait()


def test_a_second_run_waits_for_the_holder_and_says_whom_it_waited_for(tmp_path):
    path = str(tmp_path / "p.n.lock")
    proc = hold(path, 1)
    with file_lock(path, 30, "teardown", "experiment p/n") as waited:
        assert waited["seconds"] >= 0.5
        assert waited["holder"].startswith("swap-in of experiment p/n, pid %d" % proc.pid)
        with open(path) as f:
            assert json.load(f)["what"] == "teardown"  # now it is ours
    proc.wait()


def test_a_lock_held_by_a_killed_process_is_free_at_once(tmp_path):
    path = str(tmp_path / "p.n.lock")
    proc = hold(path, 30)
    proc.kill()
    proc.wait()
    with file_lock(path, 1) as waited:
        assert waited["holder"] is None


def test_a_failed_write_keeps_the_previous_version_and_leaves_no_temporary_file(tmp_path):
    path = str(tmp_path / "record.json")
    files.write_json(path, {"v": 1})
    with pytest.raises(files.StateWriteError) as info:
        files.atomic_write(path + "/x", "text")  # a file where a directory should be
    assert "cannot write" in str(info.value) and "the previous version is kept" in str(info.value)
    with pytest.raises(UnicodeEncodeError):
        files.atomic_write(path, "v\udc80")  # fails halfway through writing
    assert files.read_json(path) == {"v": 1}
    assert sorted(os.listdir(str(tmp_path))) == ["record.json"]
