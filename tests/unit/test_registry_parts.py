"""The registry's pure parts: settings checks, generated files, htpasswd, certificates, references."""
import ast
import datetime
import inspect
import ipaddress
import subprocess

import pytest

from ansible_collections.testbed.containers.plugins.module_utils import images, pki, registry, trust
from ansible_collections.testbed.containers.plugins.modules import registry as module

x509 = pytest.importorskip("cryptography.x509")


def settings(**kw):
    kw.setdefault("service", "supervisor")
    kw.setdefault("password", "secret")
    return registry.Settings(**kw)


@pytest.mark.parametrize("address", ["127.0.0.1", "127.9.9.9", "::1"])
def test_loopback_addresses_are_refused_with_the_reason(address):
    with pytest.raises(registry.RegistryError, match="loopback.*insecure"):
        settings(address=address)


@pytest.mark.parametrize("kw, message", [
    ({"address": "0.0.0.0"}, "single listen address"),
    ({"address": "registry.example"}, "not an IP address"),
    ({"interface": "a-much-too-long-name"}, "longer than 15"),
    ({"port": 0}, "out of range"),
    ({"username": "a:b"}, "must not contain"),
    ({"password": "x" * 73}, "72 bytes"),
    ({"ca_cert": "/ca.crt"}, "go together"),
    ({"tls_cert": "/s.crt", "tls_key": "/s.key"}, "needs ca_cert"),
    ({"service": "runit"}, "auto, systemd or supervisor"),
    ({"bcrypt_cost": 3}, "between 4 and 31"),
])
def test_bad_settings_say_what_is_wrong(kw, message):
    with pytest.raises(registry.RegistryError, match=message):
        settings(**kw)


def test_registry_names_and_ipv6_brackets():
    assert settings().registry == "198.18.255.1:5443"
    assert settings(address="fd00::5", port=5000).registry == "[fd00::5]:5000"


def test_config_listens_on_one_address_with_tls_and_htpasswd():
    s = settings(address="198.18.255.7", port=5001, config_dir="/c", storage_dir="/s")
    text = registry.render_config(s)
    assert 'addr: "198.18.255.7:5001"' in text
    assert 'certificate: "/c/tls/server.crt"' in text and 'key: "/c/tls/server.key"' in text
    assert "htpasswd:" in text and 'path: "/c/htpasswd"' in text
    assert 'rootdirectory: "/s"' in text


def test_supervisor_script_is_valid_sh_and_drops_privileges():
    s = settings(config_dir="/c", log_dir="/l", name="reg")
    script = registry.render_supervisor(s)
    assert subprocess.run(["sh", "-n"], input=script.encode(), check=False).returncode == 0
    assert "setpriv --reuid='docker-registry'" in script
    assert "'/usr/bin/docker-registry' serve '/c/config.yml'" in script
    assert "setpriv" not in registry.render_supervisor(settings(user="root"))


def test_systemd_unit_recreates_the_interface():
    unit = registry.render_unit(settings(interface="tbreg0", address="198.18.255.1"))
    assert "ExecStartPre=+-/usr/sbin/ip address add 198.18.255.1/32 dev tbreg0" in unit
    assert "Restart=always" in unit and "User=docker-registry" in unit
    assert "ExecStartPre" not in registry.render_unit(settings(interface=""))


def test_htpasswd_matches_user_password_and_cost():
    pytest.importorskip("bcrypt")
    line = pki.htpasswd_line("testbed", "pw", cost=4)
    assert line.startswith("testbed:$2b$04$") and line.endswith("\n")
    assert pki.htpasswd_matches(line, "testbed", "pw", cost=4)
    assert not pki.htpasswd_matches(line, "testbed", "pw", cost=5)
    assert not pki.htpasswd_matches(line, "testbed", "other")
    assert not pki.htpasswd_matches(line, "admin", "pw")
    assert not pki.htpasswd_matches(line + line, "testbed", "pw")
    assert not pki.htpasswd_matches("testbed:{SHA}abc\n", "testbed", "pw")


def test_server_certificate_is_checked_for_san_issuer_and_key():
    ca, ca_key = pki.make_ca("test CA", 30 + pki.RENEW_DAYS)
    assert pki.ca_problem(ca, ca_key) is None
    cert, key = pki.make_server_cert(ca, ca_key, "198.18.255.1", ["registry.testbed"], 90)
    assert pki.server_cert_problem(cert, key, ca, "198.18.255.1", ["registry.testbed"]) is None
    parsed = x509.load_pem_x509_certificate(cert.encode())
    san = parsed.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("198.18.255.1")]
    # a server certificate never outlives its CA
    assert pki._not_after(parsed) <= pki._not_after(x509.load_pem_x509_certificate(ca.encode()))
    assert "lacks 198.18.255.2" in pki.server_cert_problem(cert, key, ca, "198.18.255.2", ["registry.testbed"])
    assert "lacks other.name" in pki.server_cert_problem(cert, key, ca, "198.18.255.1", ["other.name"])
    other_ca, other_key = pki.make_ca("other CA", 3650)
    assert pki.server_cert_problem(cert, key, other_ca, "198.18.255.1", []) == "not issued by the CA"
    stray_key = pki.make_server_cert(ca, ca_key, "198.18.255.1", [], 90)[1]
    assert "does not belong" in pki.server_cert_problem(cert, stray_key, ca, "198.18.255.1", [])
    assert "does not belong" in pki.ca_problem(ca, other_key)
    # close to expiry: renewed
    short, short_key = pki.make_server_cert(ca, ca_key, "198.18.255.1", [], pki.RENEW_DAYS - 1)
    assert "expires on" in pki.server_cert_problem(short, short_key, ca, "198.18.255.1", [])
    assert pki._now() < pki._not_after(x509.load_pem_x509_certificate(short.encode())) \
        < pki._now() + datetime.timedelta(days=pki.RENEW_DAYS)


def test_a_server_certificate_is_not_a_ca():
    ca, ca_key = pki.make_ca("test CA", 3650)
    cert = pki.make_server_cert(ca, ca_key, "198.18.255.1", [], 90)[0]
    assert pki.ca_problem(cert) == "not a CA certificate"


@pytest.mark.parametrize("local, remote", [
    ("testbed/busybox:latest", "R:1/testbed/busybox:latest"),
    ("testbed/busybox", "R:1/testbed/busybox:latest"),
    ("busybox:1.36", "R:1/busybox:1.36"),
    ("old.registry:5000/team/img:v2", "R:1/team/img:v2"),
    ("localhost/img:tb-0123abcd", "R:1/img:tb-0123abcd"),
])
def test_remote_reference_replaces_any_registry_part(local, remote):
    assert images.remote_ref(local, "R:1") == remote


def test_digest_references_cannot_be_pushed():
    with pytest.raises(images.ImageError, match="digest"):
        images.remote_ref("img@sha256:" + "0" * 64, "R:1")


def test_split_ref_keeps_the_registry_port():
    assert images.split_ref("198.18.255.1:5443/testbed/busybox") == ("198.18.255.1:5443/testbed/busybox", "latest")
    assert images.split_ref("198.18.255.1:5443/testbed/busybox:v1") == ("198.18.255.1:5443/testbed/busybox", "v1")


def test_login_entry_merges_into_an_existing_docker_config(tmp_path):
    path = str(tmp_path / "d" / "config.json")
    with open(str(tmp_path / "seed.json"), "w") as f:
        f.write("{}")
    ops, warnings = trust.ensure_login("R:1", "u", "p", path)
    assert ops and not warnings
    assert trust.ensure_login("R:1", "u", "p", path) == ([], [])
    trust.ensure_login("other:2", "v", "q", path)
    assert trust.remove_login("R:1", path)
    assert trust.remove_login("R:1", path) == []
    import json
    with open(path) as f:
        assert list(json.load(f)["auths"]) == ["other:2"]


def test_htpasswd_entry_is_kept_while_it_matches():
    pytest.importorskip("bcrypt")
    current = pki.htpasswd_line("testbed", "pw", cost=4)
    assert pki.htpasswd_entry(current, "testbed", "pw", 4) is current
    changed = pki.htpasswd_entry(current, "testbed", "other", 4)
    assert changed != current and pki.htpasswd_matches(changed, "testbed", "other", 4)
    assert pki.htpasswd_matches(pki.htpasswd_entry(None, "testbed", "pw", 4), "testbed", "pw", 4)


def test_check_mode_plans_a_new_ca_and_server_certificate_and_writes_nothing(tmp_path):
    s = settings(config_dir=str(tmp_path / "c"))
    ops, ca_pem = pki.ensure_tls(s, 0, dry_run=True)
    assert ops == ["create CA %s (new)" % s.ca_cert, "issue server certificate %s" % s.tls_cert]
    assert ca_pem is None and not (tmp_path / "c").exists()


def test_trust_in_check_mode_names_the_ca_file_and_writes_nothing(tmp_path):
    certs = str(tmp_path / "certs.d")
    assert trust.ensure_trust("R:1", "PEM", certs, dry_run=True) == [
        "create %s/R:1" % certs, "install the registry CA as %s/R:1/ca.crt" % certs]
    assert not (tmp_path / "certs.d").exists()
    assert trust.remove_trust("R:1", certs, dry_run=True) == []


def test_registry_trust_in_check_mode_lists_the_ca_and_the_login_it_would_write(tmp_path):
    certs, config = str(tmp_path / "certs.d"), str(tmp_path / "docker" / "config.json")
    changed, ops, result = trust.converge("R:1", certs_dir=certs, docker_config=config, password="p", dry_run=True)
    assert changed and ops == ["install the registry CA as %s/R:1/ca.crt" % certs, "log in to R:1 in %s" % config]
    assert result == {"operations": ops, "ca_path": "%s/R:1/ca.crt" % certs, "docker_config": config}
    assert list(tmp_path.iterdir()) == []


def test_registry_trust_needs_the_ca_and_a_password_to_log_in():
    with pytest.raises(ValueError, match="ca_cert is required with state=present"):
        trust.converge("R:1", password="p")
    with pytest.raises(ValueError, match="password is required with login or verify"):
        trust.converge("R:1", ca_cert="PEM", login=False)


def test_a_failed_check_names_the_registry_and_keeps_the_operations_done(tmp_path, monkeypatch):
    monkeypatch.setattr(trust, "ensure_trust", lambda registry, ca, certs_dir, dry_run: ["install the CA"])
    monkeypatch.setattr(trust, "verify_access", lambda registry, ca, username, password: "answered 500")
    config = str(tmp_path / "config.json")
    with open(config, "w") as f:
        f.write('{"credsStore": "desktop"}')
    warnings = []
    with pytest.raises(trust.TrustError, match="^registry R:1: answered 500$") as err:
        trust.converge("R:1", ca_cert="PEM", docker_config=config, password="p", warn=warnings.append)
    assert err.value.operations == ["install the CA", "log in to R:1 in %s" % config]
    assert warnings == []  # warnings are for a success
    monkeypatch.setattr(trust, "verify_access", lambda registry, ca, username, password: None)
    assert trust.converge("R:1", ca_cert="PEM", docker_config=config, password="p", warn=warnings.append)[1] == [
        "install the CA"]
    assert warnings and "credential helper" in warnings[0]


def test_registry_trust_absent_on_a_clean_host_changes_nothing(tmp_path):
    assert trust.converge("R:1", state="absent", certs_dir=str(tmp_path), docker_config=str(tmp_path / "c.json"))[:2] \
        == (False, [])


def module_options():
    """The registry module's options, read from its argument_spec (the module is not run)."""
    tree = ast.parse(inspect.getsource(module))
    spec = next(k for k in ast.walk(tree) if isinstance(k, ast.keyword) and k.arg == "argument_spec")
    return [k.arg for k in spec.value.keywords]


def test_every_module_option_is_a_setting_so_main_only_hands_them_on():
    accepted = set(inspect.signature(registry.Settings).parameters) | {"state", "prefix"}
    options = module_options()
    assert "password" in options and "prefix" in options
    assert set(options) <= accepted


def test_the_module_work_refuses_bad_settings_before_doing_anything(tmp_path):
    params = dict((name, None) for name in module_options())
    params.update(state="present", name="r", address="198.18.255.1", prefix=32, interface="tbreg0", port=70000,
                  interface_kind="auto", config_dir=str(tmp_path / "c"), storage_dir=str(tmp_path / "s"),
                  password="secret", bcrypt_cost=pki.DEFAULT_BCRYPT_COST, ca_days=10, cert_days=10, service="supervisor")
    with pytest.raises(registry.RegistryError, match="port 70000 is out of range"):
        registry.run(params, dry_run=True)
    assert not (tmp_path / "c").exists()
    assert registry.missing_libraries(False, None) == []
