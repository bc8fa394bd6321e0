"""The stamp of a passed preflight: the digest the host role compares (filter preflight_key) and
the line the host keeps (preflight.write_stamp), which the role's shell probe must read back equal."""
import os
import subprocess

from ansible_collections.testbed.containers.plugins.filter import preflight_key as key_filter
from ansible_collections.testbed.containers.plugins.module_utils import preflight

INPUTS = [["bridge", "veth"], {"lan0": {"subnet": "10.10.0.0/24"}}, {}, "localhost", "/usr/bin/python3"]


def test_the_key_is_stable_and_changes_with_every_input_and_with_the_code():
    key = key_filter.preflight_key(INPUTS)
    assert len(key) == 64 and key == key_filter.preflight_key([list(x) if isinstance(x, list) else x for x in INPUTS])
    for i, other in enumerate((["bridge", "veth", "netem"], {"lan0": {"subnet": "10.11.0.0/24"}},
                               {"host_dir": "/srv/tb"}, "pc2", "/opt/testbed/venv/bin/python")):
        changed = list(INPUTS)
        changed[i] = other
        assert key_filter.preflight_key(changed) != key, i
    saved = list(key_filter._CODE)
    try:
        key_filter._CODE[:] = ["another version of the code"]
        assert key_filter.preflight_key(INPUTS) != key
    finally:
        key_filter._CODE[:] = saved


def test_the_stamp_reads_back_as_the_probe_compares_it_and_clear_removes_it(tmp_path):
    key = key_filter.preflight_key(INPUTS)
    preflight.write_stamp(str(tmp_path), key, dry_run=True)
    assert not os.listdir(str(tmp_path))
    preflight.write_stamp(str(tmp_path), None)
    assert not os.listdir(str(tmp_path))
    preflight.write_stamp(str(tmp_path), key)
    # the role's probe: "$(cat stamp)" = "$(cat boot_id) KEY"
    probe = subprocess.run(["sh", "-c", '[ "$(cat "$1/preflight.stamp")" = "$(cat %s) $2" ] && echo yes'
                            % preflight.BOOT_ID, "probe", str(tmp_path), key],
                           stdout=subprocess.PIPE, universal_newlines=True, check=False)
    assert probe.stdout.strip() == "yes"
    preflight.clear_stamp(str(tmp_path))
    preflight.clear_stamp(str(tmp_path))  # nothing to remove: no error
    assert not os.listdir(str(tmp_path))
