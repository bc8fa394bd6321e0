"""Project storage over NFS (module_utils/storage.py): validation with field names, the exports line,
the fstab edit, /proc/mounts parsing, the kernel check, and converge on files in a temporary
directory with the commands recorded (this machine's kernel has no nfsd nor nfs: the role's
refusal here is tested on the real kernel in tests/integration/test_nfs_storage_role.py)."""
import os

import pytest

from ansible_collections.testbed.containers.plugins.module_utils import storage

EXPORT = "/var/lib/testbed/projects"
WITH_NFS = "nodev\tsysfs\nnodev\tnfsd\nnodev\tnfs\nnodev\tnfs4\n\text4\n"
WITHOUT_NFS = "nodev\tsysfs\nnodev\tproc\n\text4\n"


class Commands(object):
    """Records each command and answers rc 0 (or what ``fail`` says for a command's first word)."""

    def __init__(self, fail=None, on_modprobe=None):
        self.calls = []
        self.fail = fail or {}
        self.on_modprobe = on_modprobe

    def __call__(self, argv):
        self.calls.append(list(argv))
        if argv[0] == "modprobe" and self.on_modprobe:
            self.on_modprobe()
        if argv[0] in self.fail:
            return self.fail[argv[0]]
        return 0, ""


@pytest.fixture
def host(tmp_path):
    files = {"exports_file": str(tmp_path / "exports.d" / "testbed.exports"), "fstab": str(tmp_path / "fstab"),
             "mounts": str(tmp_path / "mounts"), "filesystems": str(tmp_path / "filesystems")}
    (tmp_path / "fstab").write_text("UUID=abc / ext4 errors=remount-ro 0 1\n# my own comment\n")
    (tmp_path / "mounts").write_text("/dev/sda1 / ext4 rw 0 0\nproc /proc proc rw 0 0\n")
    (tmp_path / "filesystems").write_text(WITH_NFS)
    files["tmp"] = tmp_path
    return files


def _files(host):
    return {k: v for k, v in host.items() if k != "tmp"}


def test_settings_are_checked_with_the_field_and_the_fix():
    assert storage.validate("server", EXPORT, clients=["10.0.0.2", "10.0.0.0/24", "pc3.lab", "*.lab", "fd00::2"]) == []
    problems = storage.validate("server", "relative/dir", clients=["10.0.0.2", "a b", "pc(rw)"],
                                export_options=["rw", "bad option"])
    assert any(p.startswith("export (testbed_storage_export) must be an absolute") for p in problems)
    assert any(p.startswith("clients[1] (testbed_storage_clients)") for p in problems)
    assert any(p.startswith("clients[2] (testbed_storage_clients)") for p in problems)
    assert any(p.startswith("export_options[1] (testbed_storage_export_options)") for p in problems)
    assert len(problems) == 4
    problems = storage.validate("client", EXPORT, root="/", server="10.0.0.1/24", mount_options=["hard", "x y"])
    assert [p.split(" ")[0] for p in problems] == ["root", "server", "mount_options[1]"]
    assert storage.validate("client", EXPORT, root="/srv/p,roj", server="pc1")[0].startswith("root (testbed_project_root)")
    assert storage.validate("client", EXPORT, root=EXPORT, server="fd00::1") == []
    assert storage.validate("both", EXPORT) == ["role must be server or client, got 'both'"]


def test_the_exports_line_names_each_client_once_in_order():
    text = storage.exports_text(EXPORT, ["10.0.0.3", "10.0.0.2", "10.0.0.3"], ["rw", "sync"])
    assert text.splitlines()[1] == "%s 10.0.0.2(rw,sync) 10.0.0.3(rw,sync)" % EXPORT
    assert text.startswith("# Written by testbed.containers")
    assert storage.exports_text(EXPORT, []) == ""


def test_the_fstab_edit_touches_only_its_own_line():
    base = "UUID=abc / ext4 defaults 0 1\n# a comment\n"
    entry = storage.fstab_entry("10.0.0.1", EXPORT, "/proj")
    once = storage.fstab_update(base, entry)
    assert once == base + storage.FSTAB_MARK + "\n" + entry + "\n"
    assert entry == "10.0.0.1:%s /proj nfs4 rw,hard,vers=4,noatime,_netdev 0 0" % EXPORT
    assert storage.fstab_update(once, entry) == once
    moved = storage.fstab_update(once, storage.fstab_entry("10.0.0.9", EXPORT, "/proj"))
    assert "10.0.0.1:" not in moved and moved.count(storage.FSTAB_MARK) == 1
    assert storage.fstab_update(once) == base
    assert storage.fstab_entry("fd00::1", EXPORT, "/proj").startswith("[fd00::1]:%s " % EXPORT)


def test_mounts_are_parsed_with_their_escapes_and_the_last_one_wins():
    text = "a /srv/my\\040dir ext4 rw 0 0\n10.0.0.1:/x /proj nfs4 rw 0 0\nb /proj tmpfs rw 0 0\n"
    mounts = storage.parse_mounts(text)
    assert mounts[0][1] == "/srv/my dir"
    assert storage.mount_at(mounts, "/proj/") == ("b", "/proj", "tmpfs", "rw")
    assert storage.mount_at(mounts, "/nothing") is None


def test_the_kernel_check_names_what_is_missing_and_what_to_do():
    assert storage.kernel_missing("server", WITH_NFS) is None
    assert storage.kernel_missing("client", "nodev\tnfs4\n") is None
    server = storage.kernel_missing("server", WITHOUT_NFS)
    assert "no NFS server" in server and "CONFIG_NFSD" in server and "testbed_project_shared: true" in server
    assert "no NFS client" in storage.kernel_missing("client", "nodev\tnfsd\n")


def test_a_kernel_without_nfsd_is_refused_before_anything_is_written(host):
    with open(host["filesystems"], "w") as f:
        f.write(WITHOUT_NFS)
    run = Commands()
    with pytest.raises(storage.StorageError) as err:
        storage.converge("server", export=str(host["tmp"] / "projects"), clients=["10.0.0.2"], run=run, **_files(host))
    assert "no NFS server" in str(err.value)
    assert run.calls == [["modprobe", "nfsd"]]
    assert not os.path.exists(host["exports_file"]) and not (host["tmp"] / "projects").exists()


def test_modprobe_that_loads_the_module_lets_the_role_go_on(host):
    with open(host["filesystems"], "w") as f:
        f.write(WITHOUT_NFS)

    def load():
        with open(host["filesystems"], "a") as f:
            f.write("nodev\tnfs4\n")
    run = Commands(on_modprobe=load)
    changed, ops, _result = storage.converge("client", export=EXPORT, root=str(host["tmp"] / "proj"), server="10.0.0.1",
                                             run=run, check_only=True, **_files(host))
    assert (changed, ops) == (False, [])
    assert run.calls == [["modprobe", "nfs"]]


def test_the_server_exports_once_and_is_idempotent_and_withdraws(host):
    export = str(host["tmp"] / "projects")
    run = Commands()
    changed, ops, _result = storage.converge("server", export=export, clients=["10.0.0.3", "10.0.0.2"], run=run, **_files(host))
    assert changed and ops[0] == "create %s" % export
    assert ops[1].startswith("export %s to 10.0.0.2, 10.0.0.3" % export)
    assert "start the NFS server" in ops
    with open(host["exports_file"]) as f:
        assert "%s 10.0.0.2(rw,sync,no_subtree_check,no_root_squash) 10.0.0.3(" % export in f.read()
    assert run.calls[-1] == ["exportfs", "-ra"]
    nfsd = host["tmp"] / "nfsd"
    nfsd.mkdir()
    (nfsd / "threads").write_text("8\n")
    original = storage._start_server
    storage._start_server = lambda run, ops, dry_run: original(run, ops, dry_run, nfsd_dir=str(nfsd))
    try:
        run = Commands()
        assert storage.converge("server", export=export, clients=["10.0.0.2", "10.0.0.3"], run=run,
                                **_files(host))[:2] == (False, [])
        assert run.calls == []
        changed, ops, _result = storage.converge("server", export=export, clients=["10.0.0.2"], run=run, dry_run=True,
                                                 **_files(host))
        assert changed and ops == ["export %s to 10.0.0.2 (%s)" % (export, host["exports_file"])]
        assert run.calls == [] and "10.0.0.3" in open(host["exports_file"]).read()
    finally:
        storage._start_server = original
    changed, ops, _result = storage.converge("server", state="absent", export=export, run=run, **_files(host))
    assert changed and ops[0].startswith("remove %s" % host["exports_file"])
    assert not os.path.exists(host["exports_file"]) and os.path.isdir(export)
    assert storage.converge("server", state="absent", export=export, run=run, **_files(host))[:2] == (False, [])


def test_a_failed_exportfs_says_what_was_done(host):
    run = Commands(fail={"exportfs": (1, "exportfs: /x does not support NFS export")})
    with pytest.raises(storage.StorageError) as err:
        storage.converge("server", export=str(host["tmp"] / "p"), clients=["10.0.0.2"], run=run, **_files(host))
    assert "re-exporting failed (exportfs -ra, rc 1): exportfs: /x does not support NFS export" in str(err.value)
    assert any(op.startswith("export ") for op in err.value.operations)


def test_the_client_mounts_keeps_fstab_and_unmounts(host):
    root = str(host["tmp"] / "proj")
    run = Commands()
    changed, ops, result = storage.converge("client", export=EXPORT, root=root, server="10.0.0.1", run=run,
                                            **_files(host))
    assert result["source"] == "10.0.0.1:%s" % EXPORT
    assert ops == ["keep the mount of 10.0.0.1:%s at %s in %s" % (EXPORT, root, host["fstab"]), "create %s" % root,
                   "mount 10.0.0.1:%s at %s" % (EXPORT, root)]
    assert run.calls == [["mount", "-t", "nfs4", "-o", "rw,hard,vers=4,noatime,_netdev", "10.0.0.1:%s" % EXPORT, root]]
    fstab = open(host["fstab"]).read()
    assert fstab.startswith("UUID=abc / ext4 errors=remount-ro 0 1\n# my own comment\n")
    assert fstab.endswith("%s\n10.0.0.1:%s %s nfs4 rw,hard,vers=4,noatime,_netdev 0 0\n" % (storage.FSTAB_MARK, EXPORT, root))
    with open(host["mounts"], "a") as f:
        f.write("10.0.0.1:%s %s nfs4 rw,relatime,vers=4.2 0 0\n" % (EXPORT, root))
    run = Commands()
    assert storage.converge("client", export=EXPORT, root=root, server="10.0.0.1", run=run, **_files(host))[:2] == (False, [])
    assert run.calls == []
    changed, ops, _result = storage.converge("client", state="absent", export=EXPORT, root=root, server="10.0.0.1", run=run,
                                             **_files(host))
    assert ops == ["unmount 10.0.0.1:%s from %s" % (EXPORT, root), "remove the project storage line from %s" % host["fstab"]]
    assert run.calls == [["umount", root]]
    assert open(host["fstab"]).read() == "UUID=abc / ext4 errors=remount-ro 0 1\n# my own comment\n"


def test_another_file_system_at_the_root_is_refused(host):
    root = str(host["tmp"] / "proj")
    with open(host["mounts"], "a") as f:
        f.write("ceph:/p %s ceph rw 0 0\n" % root)
    run = Commands()
    with pytest.raises(storage.StorageError) as err:
        storage.converge("client", export=EXPORT, root=root, server="10.0.0.1", run=run, **_files(host))
    assert "already has ceph:/p (ceph) mounted" in str(err.value)
    assert run.calls == [] and storage.FSTAB_MARK not in open(host["fstab"]).read()


def test_check_mode_changes_nothing(host):
    root = str(host["tmp"] / "proj")
    run = Commands()
    changed, ops, _result = storage.converge("client", export=EXPORT, root=root, server="pc1", run=run, dry_run=True,
                                             **_files(host))
    assert changed and len(ops) == 3 and run.calls == []
    assert not os.path.exists(root) and storage.FSTAB_MARK not in open(host["fstab"]).read()


def test_bad_settings_fail_before_the_kernel_is_asked(host):
    run = Commands()
    with pytest.raises(ValueError) as err:
        storage.converge("client", export=EXPORT, root="proj", server="pc1", run=run, **_files(host))
    assert "root (testbed_project_root) must be an absolute directory" in str(err.value)
    assert run.calls == []
