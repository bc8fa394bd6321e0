"""The host role's kernel settings: validation, minimum vs exact semantics, the sysctl.d file."""
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
