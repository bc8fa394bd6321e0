"""The host role's kernel settings: validation, minimum vs exact semantics, the sysctl.d file."""
import pytest

from ansible_collections.testbed.containers.plugins.module_utils import preflight


def reader(values):
    return lambda key: values[key] + "\n"


def test_numbers_are_minimums_a_larger_value_is_kept():
    current = {"fs.inotify.max_user_instances": "128", "kernel.pid_max": "4194304", "net.ipv4.ip_forward": "0"}
    changes = preflight.sysctl_changes({"fs.inotify.max_user_instances": 8192, "kernel.pid_max": 65536,
                                        "net.ipv4.ip_forward": 1}, reader(current))
    assert changes == [("fs.inotify.max_user_instances", "128", "8192"), ("net.ipv4.ip_forward", "0", "1")]


def test_strings_are_exact_values_compared_word_by_word():
    current = {"net.ipv4.ip_local_port_range": "32768\t60999"}
    assert preflight.sysctl_changes({"net.ipv4.ip_local_port_range": "32768 60999"}, reader(current)) == []
    assert preflight.sysctl_changes({"net.ipv4.ip_local_port_range": "1024  65535"}, reader(current)) == [
        ("net.ipv4.ip_local_port_range", "32768\t60999", "1024 65535")]


def test_a_non_number_current_value_is_replaced():
    assert preflight.sysctl_changes({"a.b": 3}, reader({"a.b": "x y"})) == [("a.b", "x y", "3")]


def test_errors_name_the_key_and_the_fix():
    errors = preflight.sysctl_errors({"net/ipv4/ip_forward": 1, "kernel.pid_max": -1, "fs.x": True,
                                      "net.core.somaxconn": 4096, "a.b": [1], "c.d": " "})
    assert len(errors) == 5
    assert "'net/ipv4/ip_forward' is not a sysctl key such as net.ipv4.ip_forward" in errors[0]
    assert errors[1].startswith("settings.kernel.pid_max: must be a number >= 0")
    assert errors[2].startswith("settings.fs.x: ")
    assert errors[3].startswith("settings.a.b: ")
    assert errors[4].startswith("settings.c.d: ")


def test_path_and_persistent_file():
    assert preflight.sysctl_path("net.ipv4.conf.all.forwarding", "/p") == "/p/net/ipv4/conf/all/forwarding"
    text = preflight.sysctl_file_text({"kernel.pid_max": 4194304, "net.ipv4.ip_local_port_range": "1024   65535"})
    assert text.endswith("kernel.pid_max = 4194304\nnet.ipv4.ip_local_port_range = 1024 65535\n")
    assert text.startswith("# testbed.containers")


def test_missing_defaults_are_skipped_and_the_users_own_are_errors():
    settings = {"kernel.pid_max": 4194304, "net.ipv4.neigh.default.gc_thresh1": 1024, "net.core.x": 1}
    have = {preflight.sysctl_path("kernel.pid_max")}
    errors, skipped = preflight.sysctl_missing(settings, ["net.ipv4.neigh.default.gc_thresh1", "kernel.pid_max"],
                                               "h1", exists=lambda path: path in have)
    assert skipped == ["net.ipv4.neigh.default.gc_thresh1"]
    assert errors == ["settings.net.core.x: h1 has no such kernel setting (/proc/sys/net/core/x is missing): "
                      "remove it from the settings"]
    assert preflight.sysctl_missing(settings, [], "h1", exists=lambda path: True) == ([], [])


def converge(settings, tmp_path, values, **kw):
    """preflight.converge_sysctls with ``values`` as the kernel's settings; returns its result and what it wrote."""
    written = {}
    kw.setdefault("read", lambda key: values[key] + "\n")
    kw.setdefault("write", written.__setitem__)
    return preflight.converge_sysctls(settings, kw.pop("optional", []), str(tmp_path / "60-testbed.conf"), "h1",
                                      **kw), written


def test_converge_raises_what_is_low_writes_the_file_and_skips_a_missing_default(tmp_path):
    values = {"kernel.pid_max": "32768", "fs.inotify.max_user_instances": "8192"}
    settings = {"kernel.pid_max": 4194304, "fs.inotify.max_user_instances": 128, "net.nope.gc_thresh1": 1024}
    warnings = []
    (changed, ops, result), written = converge(settings, tmp_path, values, optional=["net.nope.gc_thresh1"],
                                               diff=True, warn=warnings.append)
    persist = str(tmp_path / "60-testbed.conf")
    assert changed and written == {"kernel.pid_max": "4194304"}
    assert ops == ["set kernel.pid_max to 4194304 (was 32768)", "write %s" % persist]
    assert result == {"raised": {"kernel.pid_max": {"before": "32768", "after": "4194304"}}, "persisted": True,
                      "skipped": ["net.nope.gc_thresh1"],
                      "diff": {"before": "kernel.pid_max = 32768\n", "after": "kernel.pid_max = 4194304\n"}}
    assert warnings == ["h1 lacks the kernel setting(s) net.nope.gc_thresh1 (a host that is itself a container?): "
                        "skipped; set testbed_host_sysctls to silence this"]
    with open(persist) as f:
        assert "kernel.pid_max = 4194304" in f.read()
    values["kernel.pid_max"] = "4194304"
    (changed, ops, result), written = converge(settings, tmp_path, values, optional=["net.nope.gc_thresh1"])
    assert (changed, ops, written, "diff" in result) == (False, [], {}, False)


def test_converge_in_check_mode_writes_nothing(tmp_path):
    (changed, ops, result), written = converge({"kernel.pid_max": 4194304}, tmp_path, {"kernel.pid_max": "1"},
                                               dry_run=True)
    assert changed and len(ops) == 2 and result["persisted"] and written == {}
    assert list(tmp_path.iterdir()) == []


def test_converge_fails_before_writing_on_a_missing_key_and_names_a_failed_write(tmp_path):
    with pytest.raises(ValueError, match="settings.net.nope.x: h1 has no such kernel setting"):
        converge({"kernel.pid_max": 4194304, "net.nope.x": 1}, tmp_path, {"kernel.pid_max": "1"})

    def refuse(key, value):
        raise OSError(13, "Permission denied")

    with pytest.raises(preflight.SysctlError, match="settings.kernel.pid_max: cannot set it to 4194304 on h1") as err:
        converge({"kernel.pid_max": 4194304}, tmp_path, {"kernel.pid_max": "1"}, write=refuse)
    assert err.value.raised == {"kernel.pid_max": {"before": "1", "after": "4194304"}}
    assert list(tmp_path.iterdir()) == []
