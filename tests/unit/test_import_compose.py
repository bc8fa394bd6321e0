# -*- coding: utf-8 -*-
# Copyright: testbed.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The docker-compose importer: services as nodes, networks as LANs with their static addresses,
env files, volumes, interpolation, and a note with its line for every construct that is not
carried over as it is written.

Fixtures are in tests/unit/import_sources/compose/; small cases are written inline to
tmp_path.  Documents that use the node keys the model is gaining (binds, ports, user, ...) are
validated in the tests marked ``needs_new_model``, which run once model.py has them.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import textwrap

import pytest

from ansible_collections.testbed.containers.plugins.module_utils import importers, model
from ansible_collections.testbed.containers.plugins.module_utils.importers import compose

from .import_helpers import NEW_NODE_KEYS, Sources, levels, line_of, needs_new_model, only

SOURCES = Sources(compose, "compose", "compose.yaml")
fixture, convert_file, failing_file = SOURCES.fixture, SOURCES.convert_file, SOURCES.failing_file
write, convert_text, failing_text = SOURCES.write, SOURCES.convert_text, SOURCES.failing_text


def strip_new_keys(doc):
    """The document without the keys the model is gaining, for model.validate today."""
    for node in doc["nodes"].values():
        for key in NEW_NODE_KEYS:
            node.pop(key, None)
    return doc


# ---------------------------------------------------------------------------------------------
# two networks with static addresses


def test_services_become_nodes_and_networks_lans_with_static_addresses():
    text, doc, notes = convert_file("two-networks/compose.yaml")
    assert doc["name"] == "two-networks"   # the compose file's directory
    assert list(doc["nodes"]) == ["proxy", "app", "db"]
    assert doc["lans"] == {
        "frontend": {"members": [{"node": "proxy", "ip": "172.28.1.10"}, {"node": "app", "ip": "172.28.1.20"}],
                     "subnet": "172.28.1.0/24"},
        "backend": {"members": [{"node": "app", "ip": "172.28.2.20"}, "db"], "subnet": "172.28.2.0/24"},
    }
    assert "default" not in doc["lans"]   # every service names its networks
    assert doc["routing"] == "none"
    assert only(notes, "info", "routing: none: compose routes nothing between networks").line == line_of(text, "services:")
    assert levels(notes, "warning") == [] and levels(notes, "error") == []


def test_service_settings_are_carried_over():
    _text, doc, _notes = convert_file("two-networks/compose.yaml")
    proxy, app, db = doc["nodes"]["proxy"], doc["nodes"]["app"], doc["nodes"]["db"]
    assert proxy["image"] == "nginx:1.25"        # ${NGINX_TAG:-1.25}: the default
    assert app["image"] == "python:3.12-slim"    # ${PYTHON_TAG} from .env
    assert app["command"] == ["python", "-m", "http.server", "8000"]
    assert app["workdir"] == "/srv/app" and app["user"] == "1000:1000"
    assert (app["cpus"], app["memory"]) == (0.5, "512m")        # deploy.resources.limits
    assert (db["cpus"], db["memory"]) == (1.5, "1g")            # cpus, mem_limit
    assert (proxy["restart"], app["restart"], db["restart"]) == ("always", "on-failure", "no")
    assert proxy["ports"] == ["8080:80", "127.0.0.1:8443:443/tcp"]
    base = os.path.join(SOURCES.dir, "two-networks")
    assert proxy["binds"] == [os.path.join(base, "nginx.conf") + ":/etc/nginx/nginx.conf:ro",
                              os.path.join(base, "static") + ":/usr/share/nginx/html:ro"]
    assert app["binds"] == [os.path.join(base, "src") + ":/srv/app"]


def test_env_file_then_environment_over_it():
    _text, doc, _notes = convert_file("two-networks/compose.yaml")
    # app.env: APP_MODE=development, GREETING="hello world" # a comment, TOKEN='$literal'
    assert doc["nodes"]["app"]["env"] == {"APP_MODE": "production", "GREETING": "hello world", "TOKEN": "$literal",
                                          "DB_HOST": "db"}
    assert doc["nodes"]["db"]["env"] == {"POSTGRES_PASSWORD": "example", "POSTGRES_DB": "app"}


def test_depends_on_is_the_start_order_and_interpolation_notes():
    text, doc, notes = convert_file("two-networks/compose.yaml")
    # depends_on is the nodes' start order; a condition other than service_started is noted
    assert doc["nodes"]["proxy"]["depends_on"] == ["app"]
    assert doc["nodes"]["app"]["depends_on"] == ["db"]
    assert "depends_on" not in doc["nodes"]["db"]
    note = only(notes, "info", "depends_on db of service app: condition service_healthy is taken as service_started")
    assert note.line == line_of(text, "db:", 2) or note.line > line_of(text, "depends_on:", 2)
    assert not [n for n in notes if "proxy" in n.message and "depends_on" in n.message]
    assert only(notes, "info", "variable NGINX_TAG is not set in .env: its default is used").line == \
        line_of(text, "NGINX_TAG")
    assert only(notes, "info", "variables of the file are interpolated from").line is None


def test_two_networks_document_validates_without_the_new_keys():
    _text, doc, _notes = convert_file("two-networks/compose.yaml")
    exp = model.validate(strip_new_keys(doc))
    assert exp["routing"] == "none"
    assert [str(ip) for _n, ip in exp["lans"]["frontend"]["members"]] == ["172.28.1.10", "172.28.1.20"]


@needs_new_model
def test_two_networks_document_validates():
    _text, doc, _notes = convert_file("two-networks/compose.yaml")
    exp = model.validate(doc)
    assert exp["nodes"]["app"]["workdir"] == "/srv/app"


def test_project_name_precedence(tmp_path):
    source = "name: My_Project\nservices:\n  a:\n    image: alpine:3\n"
    _text, doc, _notes = convert_text(tmp_path, source, {"name": "given"})
    assert doc["name"] == "given"                       # -p before name:
    _text, doc, notes = convert_text(tmp_path, source, {"project": "proj"})
    assert (doc["name"], doc["project"]) == ("my-project", "proj")
    assert only(notes, "info", "project 'My_Project' is the experiment 'my-project' here").line == 1
    sub = tmp_path / "Web_App"
    sub.mkdir()
    _text, doc, notes = convert_text(sub, "services:\n  a:\n    image: alpine:3\n")
    assert doc["name"] == "web-app"
    assert only(notes, "info", "named 'web-app' after the compose file's directory").line is None


# ---------------------------------------------------------------------------------------------
# build, env files, volumes


def test_build_is_an_error_naming_the_service():
    text, notes = failing_file("build/compose.yml")
    api = only(notes, "error", "service api is built from source (build:): build the image first (docker compose build)")
    assert api.line == line_of(text, "build: ./api")
    worker = only(notes, "error", "service worker is built from source (build:)")
    assert worker.line == line_of(text, "build:", 2)
    assert "keep image: example/worker:dev" in worker.message
    assert len(levels(notes, "error")) == 2   # cache is fine


def test_missing_env_file_is_an_error_with_its_line(tmp_path):
    (tmp_path / "present.env").write_text("A=1\nB\n")
    text, notes = failing_text(tmp_path, """\
        services:
          a:
            image: alpine:3
            env_file:
              - present.env
              - missing.env
              - path: optional.env
                required: false
        """)
    assert only(notes, "error", "env_file missing.env of service a does not exist").line == line_of(text, "- missing.env")
    assert only(notes, "info", "env_file optional.env of service a does not exist and is not required").line == \
        line_of(text, "optional.env")
    assert only(notes, "warning", "env_file present.env line 2: B has no value").line == line_of(text, "present.env")


def test_env_file_formats(tmp_path):
    (tmp_path / "a.env").write_text(textwrap.dedent("""\
        # comment
        export PLAIN=value # comment
        NOSPACE=value#kept
        DOUBLE="line\\nnext \\"quoted\\""
        SINGLE='it\\'s $literal'
        EMPTY=
        MULTI="first
        second"
        """))
    (tmp_path / "raw.env").write_text("RAW='quoted $x'\n")
    _text, doc, notes = convert_text(tmp_path, """\
        services:
          a:
            image: alpine:3
            env_file:
              - a.env
              - {path: raw.env, format: raw}
        """)
    assert doc["nodes"]["a"]["env"] == {"PLAIN": "value", "NOSPACE": "value#kept", "DOUBLE": 'line\nnext "quoted"',
                                        "SINGLE": "it's $literal", "EMPTY": "", "MULTI": "first\nsecond",
                                        "RAW": "'quoted $x'"}
    assert levels(notes, "warning") == []


def test_environment_list_and_mapping_and_unset_variables(tmp_path):
    text, doc, notes = convert_text(tmp_path, """\
        services:
          a:
            image: alpine:3
            environment:
              - MODE=prod
              - EQUALS=a=b
              - FROM_SHELL
          b:
            image: alpine:3
            environment:
              DEBUG: true
              COUNT: 3
              UNSET:
        """)
    assert doc["nodes"]["a"]["env"] == {"MODE": "prod", "EQUALS": "a=b"}
    assert doc["nodes"]["b"]["env"] == {"DEBUG": "true", "COUNT": "3"}
    assert only(notes, "warning", "environment variable FROM_SHELL of service a has no value").line == \
        line_of(text, "- FROM_SHELL")
    assert only(notes, "warning", "environment variable UNSET of service b has no value").line == line_of(text, "UNSET:")


def test_volumes_short_and_long_syntax(tmp_path):
    text, doc, notes = convert_text(tmp_path, """\
        services:
          a:
            image: alpine:3
            volumes:
              - ./conf:/etc/app:ro
              - /var/log/app:/logs:rw,z
              - ../shared:/shared
              - data:/var/lib/data
              - /cache
              - type: bind
                source: ./long
                target: /long
              - type: volume
                source: data
                target: /other
              - type: tmpfs
                target: /scratch
        volumes:
          data:
        """)
    assert doc["nodes"]["a"]["binds"] == [
        os.path.join(str(tmp_path), "conf") + ":/etc/app:ro",
        "/var/log/app:/logs",
        os.path.normpath(os.path.join(str(tmp_path), "..", "shared")) + ":/shared",
        os.path.join(str(tmp_path), "long") + ":/long",
    ]
    assert only(notes, "warning", "named volume data of service a (at /var/lib/data) is not carried over yet").line == \
        line_of(text, "- data:/var/lib/data")
    assert only(notes, "warning", "named volume data of service a (at /other) is not carried over yet").line == \
        line_of(text, "- type: volume")
    assert only(notes, "warning", "anonymous volume /cache of service a is not carried over").line == \
        line_of(text, "- /cache")
    assert only(notes, "warning", "tmpfs mount of service a (at /scratch) is not carried over").line == \
        line_of(text, "- type: tmpfs")
    assert only(notes, "warning", "volume mode z of service a is not carried over").line == line_of(text, "rw,z")
    assert only(notes, "info", "named volume data is not created").line == line_of(text, "  data:")


# ---------------------------------------------------------------------------------------------
# unsupported constructs: each message and line


UNSUPPORTED = [
    ("info", "version is obsolete in the compose specification and ignored", "version:"),
    ("info", "extension x-common is ignored", "x-common:"),
    ("error", "privileged of service a: a privileged container reaches beyond the node", "privileged:"),
    ("warning", "healthcheck of service a is not carried over: a health check is not run here", "healthcheck:"),
    ("warning", "logging of service a is not carried over", "logging:"),
    ("warning", "container_name of service a is not carried over: the testbed names containers (the node is a)",
     "container_name:"),
    ("warning", "hostname a.example of service a is not carried over: the node's host name is a", "hostname:"),
    ("info", "extension x-note of service a is ignored", "x-note:"),
    ("error", "network_mode host of service b: the node's network namespace is the testbed's", "network_mode:"),
    ("warning", "stop_grace_period of service b is not carried over", "stop_grace_period:"),
    ("warning", "tty of service b is not carried over", "tty:"),
    ("warning", "stdin_open of service b is not carried over", "stdin_open:"),
    ("error", "pid: host of service c shares a process namespace", "pid: host"),
    ("error", "ipc: host of service c shares an IPC namespace", "ipc: host"),
    ("warning", "extends of service c is not carried over: the extended service's keys are not merged in", "extends:"),
    ("warning", "profiles of service c is not carried over", "profiles:"),
    ("error", "devices of service d: host devices cannot be given to nodes on a shared testbed", "devices:"),
    ("warning", "secrets of service d is not carried over", "secrets: [token]"),
    ("warning", "configs of service d is not carried over", "configs: [settings]"),
    ("warning", "unknown key frobnicate of service d is not carried over", "frobnicate:"),
    ("warning", "aliases db-alias of service e on network lan are not carried over: the node is e (and e-lan)",
     "aliases:"),
    ("warning", "port 9000-9005:9000-9005 of service e: a port range is not published here", "9000-9005"),
    ("warning", "port 3000 of service e: a container port without a host port", '"3000"'),
    ("warning", "named volume data of service e (at /var/lib/data) is not carried over yet", "- data:"),
    ("warning", "driver of network lan is not carried over", "driver: macvlan"),
    ("warning", "internal of network lan is not carried over", "internal:"),
    ("warning", "external of network lan is not carried over", "external:"),
    ("info", "named volume data is not created", "  data:"),
    ("warning", "top-level secrets are not carried over", "secrets:", 2),   # after the service's secrets:
    ("warning", "top-level configs are not carried over", "configs:", 2),
]


@pytest.mark.parametrize("case", UNSUPPORTED, ids=[u[1][:40] for u in UNSUPPORTED])
def test_unsupported_construct_message_and_line(case):
    level, fragment, needle = case[:3]
    nth = case[3] if len(case) > 3 else 1
    text, notes = failing_file("unsupported/docker-compose.yml")
    assert only(notes, level, fragment).line == line_of(text, needle, nth)


def test_unsupported_reports_nothing_else():
    _text, notes = failing_file("unsupported/docker-compose.yml")
    for level in ("warning", "error"):
        assert len(levels(notes, level)) == len([u for u in UNSUPPORTED if u[0] == level]), level


def test_more_isolation_changes_are_errors(tmp_path):
    text, notes = failing_text(tmp_path, """\
        services:
          a:
            image: alpine:3
            security_opt: [seccomp=unconfined]
            userns_mode: host
            cap_add: [SYS_ADMIN, NET_ADMIN]
            deploy:
              replicas: 3
          b:
            image: alpine:3
            ipc: "service:a"
            sysctls:
              - kernel.panic=1
            privileged: false
        """)
    assert only(notes, "error", "security_opt of service a: security options change the node's isolation").line == \
        line_of(text, "security_opt")
    assert only(notes, "error", "userns_mode of service a").line == line_of(text, "userns_mode")
    assert only(notes, "error", "cap_add SYS_ADMIN reaches beyond the node").line == line_of(text, "cap_add")
    assert only(notes, "error", "deploy.replicas: 3 of service a: one service is one node here").line == \
        line_of(text, "replicas")
    assert only(notes, "error", "ipc: service:a of service b shares an IPC namespace").line == line_of(text, "ipc:")
    assert only(notes, "error", "sysctl kernel.panic is not a sysctl of the node's own namespaces").line == \
        line_of(text, "kernel.panic")
    assert len(levels(notes, "error")) == 6   # privileged: false is fine


def test_yaml_syntax_error_names_the_line(tmp_path):
    text, notes = failing_text(tmp_path, """\
        services:
          web:
            image: nginx
            ports:
              - "80:80"
             - "81:81"
        """)
    assert [(n.level, n.line) for n in notes] == [("error", line_of(text, '"81:81"'))]
    assert notes[0].message.startswith("not valid YAML: ")


def test_no_services_is_an_error(tmp_path):
    _text, notes = failing_text(tmp_path, "networks:\n  a: {}\n")
    assert only(notes, "error", "services must be a mapping of at least one service").line == 1
    _text, notes = failing_text(tmp_path, "services:\n  a:\n    command: sleep 1\n")
    assert only(notes, "error", "service a has no image: give it one (image:)").line == 2


# ---------------------------------------------------------------------------------------------
# networks


def test_default_network_only_when_used(tmp_path):
    text, doc, notes = convert_text(tmp_path, """\
        services:
          a:
            image: alpine:3
          b:
            image: alpine:3
            networks: [back]
          c:
            image: alpine:3
            networks:
              back:
              default:
        networks:
          back:
          unused:
        """)
    assert doc["lans"] == {"back": {"members": ["b", "c"]}, "default": {"members": ["a", "c"]}}
    assert only(notes, "info", "network unused has no service: no LAN").line == line_of(text, "unused:")
    assert only(notes, "info", "services that name no network are on compose's default network").line is None
    model.validate(doc)
    _text, doc, _notes = convert_text(tmp_path, "services:\n  a:\n    image: alpine:3\n    networks: [n]\n"
                                                "networks:\n  n:\n")
    assert doc["lans"] == {"n": {"members": ["a"]}}   # one member: still a LAN
    model.validate(doc)


def test_default_network_takes_its_settings_from_networks(tmp_path):
    _text, doc, _notes = convert_text(tmp_path, """\
        services:
          a:
            image: alpine:3
        networks:
          default:
            ipam:
              config:
                - subnet: 10.20.0.0/16
        """)
    assert doc["lans"] == {"default": {"members": ["a"], "subnet": "10.20.0.0/16"}}


def test_static_address_errors(tmp_path):
    text, notes = failing_text(tmp_path, """\
        services:
          a:
            image: alpine:3
            networks:
              nosubnet:
                ipv4_address: 10.0.0.5
              lan:
                ipv4_address: 10.9.9.9
          b:
            image: alpine:3
            networks:
              lan:
                ipv4_address: 10.1.0.0
          c:
            image: alpine:3
            networks:
              lan:
                ipv4_address: 10.1.0.7
              missing: {}
          d:
            image: alpine:3
            networks:
              lan:
                ipv4_address: 10.1.0.7
                interface_name: eth0
        networks:
          nosubnet:
          lan:
            ipam:
              config:
                - subnet: 10.1.0.0/24
                  gateway: 10.1.0.1
                - subnet: 2001:db8::/64
        """)
    assert only(notes, "error", "ipv4_address 10.0.0.5 of service a needs a subnet of network nosubnet").line == \
        line_of(text, "10.0.0.5")
    assert only(notes, "error", "ipv4_address 10.9.9.9 of service a is outside the subnet 10.1.0.0/24").line == \
        line_of(text, "10.9.9.9")
    assert only(notes, "error", "ipv4_address 10.1.0.0 of service b is the network or broadcast address").line == \
        line_of(text, "ipv4_address: 10.1.0.0")
    assert only(notes, "error", "service c joins network missing, which networks: does not define").line == \
        line_of(text, "missing:")
    assert only(notes, "error", "ipv4_address 10.1.0.7 of service d is also c's on network lan").line == \
        line_of(text, "10.1.0.7", 2)
    assert only(notes, "error", "interface_name eth0 of service d: eth0 is the node's control interface").line == \
        line_of(text, "interface_name")
    assert only(notes, "warning", "gateway 10.1.0.1 of network lan is not carried over").line == line_of(text, "gateway")
    assert only(notes, "warning", "IPv6 subnet 2001:db8::/64 of network lan is not carried over").line == \
        line_of(text, "2001:db8::/64")


@needs_new_model
def test_interface_name_becomes_the_members_interface(tmp_path):
    _text, doc, _notes = convert_text(tmp_path, """\
        services:
          a:
            image: alpine:3
            networks:
              lan:
                interface_name: data0
                ipv4_address: 10.1.0.10
        networks:
          lan:
            ipam:
              config:
                - subnet: 10.1.0.0/24
        """)
    assert doc["lans"]["lan"]["members"] == [{"node": "a", "ip": "10.1.0.10", "interface": "data0"}]
    model.validate(doc)


def test_renamed_services_and_networks(tmp_path):
    text, doc, notes = convert_text(tmp_path, """\
        services:
          Web_Server:
            image: nginx:1.25
            networks: [front_net]
        networks:
          front_net:
        """)
    assert doc["lans"] == {"front-net": {"members": ["web-server"]}}
    assert only(notes, "info", "service 'Web_Server' is named 'web-server' here").line == line_of(text, "Web_Server")
    assert only(notes, "info", "network 'front_net' is named 'front-net' here").line == line_of(text, "  front_net:")
    model.validate(doc)


# ---------------------------------------------------------------------------------------------
# ports, resources, restart, interpolation


def test_ports_short_and_long_syntax(tmp_path):
    text, doc, notes = convert_text(tmp_path, """\
        services:
          a:
            image: nginx:1.25
            ports:
              - 22:22
              - "0.0.0.0:80:80"
              - "[::1]:6001:6001"
              - "127.0.0.1::53/udp"
              - "5000/sctp"
              - target: 443
                published: "8443"
                host_ip: 127.0.0.1
                protocol: tcp
                mode: host
                name: https
              - target: 8080
                published: 9000-9010
              - target: 9090
        """)
    assert doc["nodes"]["a"]["ports"] == ["22:22", "80:80", "127.0.0.1:8443:443/tcp"]
    assert only(notes, "info", "port 22:22 is read as written (YAML reads it as the number 1342").line == \
        line_of(text, "- 22:22")
    assert only(notes, "warning", "an IPv6 host address is not published here").line == line_of(text, "[::1]")
    assert only(notes, "warning", "an empty host port (Docker picks a random one)").line == line_of(text, "127.0.0.1::53")
    assert only(notes, "warning", "protocol sctp is not published here").line == line_of(text, "sctp")
    assert only(notes, "warning", "port 9000-9010:8080 of service a: a port range").line == line_of(text, "- target: 8080")
    assert only(notes, "warning", "port 9090 of service a has no published port").line == line_of(text, "- target: 9090")


def test_resource_values_that_are_not_sizes_are_errors(tmp_path):
    text, notes = failing_text(tmp_path, """\
        services:
          a:
            image: alpine:3
            mem_limit: lots
            cpus: many
            pids_limit: some
        """)
    assert only(notes, "error", "memory 'lots' of service a is not a size (512m, 1g)").line == line_of(text, "mem_limit")
    assert only(notes, "error", "cpus 'many' of service a is not a number of CPUs").line == line_of(text, "cpus")
    assert only(notes, "error", "pids limit 'some' of service a is not a number").line == line_of(text, "pids_limit")


def test_resources_and_memory_units_converted(tmp_path):
    text, doc, notes = convert_text(tmp_path, """\
        services:
          a:
            image: alpine:3
            mem_limit: 1536m
            cpus: 2
            pids_limit: 200
          b:
            image: alpine:3
            mem_limit: 1.5gb
            deploy:
              resources:
                limits:
                  memory: 2g
                  pids: 100
                reservations:
                  memory: 1g
              placement:
                constraints: [node.role == manager]
          c:
            image: alpine:3
            mem_limit: 300000000
        """)
    a, b, c = doc["nodes"]["a"], doc["nodes"]["b"], doc["nodes"]["c"]
    assert (a["memory"], a["cpus"], a["pids"]) == ("1536m", 2, 200)
    assert (b["memory"], b["pids"]) == ("1536m", 100)    # mem_limit over deploy's, which differs: a warning
    assert c["memory"] == "300000000b"     # bytes that are no whole number of k
    assert only(notes, "warning", "deploy.resources.limits.memory of service b differs from mem_limit").line == \
        line_of(text, "memory: 2g")
    assert only(notes, "warning", "deploy.resources.reservations of service b is not carried over").line == \
        line_of(text, "reservations")
    assert only(notes, "warning", "deploy.placement of service b is not carried over").line == line_of(text, "placement")
    model.validate(doc)


def test_restart_policies(tmp_path):
    text, doc, notes = convert_text(tmp_path, """\
        services:
          a: {image: alpine:3, restart: always}
          b: {image: alpine:3, restart: unless-stopped}
          c: {image: alpine:3, restart: "on-failure:5"}
          d: {image: alpine:3, restart: no}
          e:
            image: alpine:3
            deploy:
              restart_policy:
                condition: on-failure
                max_attempts: 3
        """)
    assert [doc["nodes"][n].get("restart") for n in "abcde"] == ["always", "always", "on-failure", "no", "on-failure"]
    assert only(notes, "info", "restart on-failure:5 of service c: the supervisor restarts the application with a "
                               "back-off and no retry limit").line == line_of(text, "on-failure:5")
    assert only(notes, "warning", "deploy.restart_policy.max_attempts of service e is not carried over").line == \
        line_of(text, "max_attempts")
    model.validate(doc)


def test_interpolation_from_dotenv(tmp_path):
    (tmp_path / ".env").write_text("TAG=1.25\nEMPTY=\n")
    text, doc, notes = convert_text(tmp_path, """\
        services:
          a:
            image: nginx:${TAG}
            command: echo $$HOME ${EMPTY:-fallback} ${EMPTY-kept} ${TAG:+set} $UNSET_ONE
        """)
    assert doc["nodes"]["a"]["image"] == "nginx:1.25"
    assert doc["nodes"]["a"]["command"] == "echo $HOME fallback  set "
    assert only(notes, "warning", "variable UNSET_ONE is not set in .env: it is blank here").line == \
        line_of(text, "command:")
    text, notes = failing_text(tmp_path, """\
        services:
          a:
            image: nginx:${REQUIRED:?set REQUIRED in .env}
        """)
    assert only(notes, "error", "required variable REQUIRED is not set: set REQUIRED in .env").line == \
        line_of(text, "image:")


def test_labels_sysctls_cap_add_forms(tmp_path):
    text, doc, notes = convert_text(tmp_path, """\
        services:
          a:
            image: alpine:3
            labels:
              - com.example.role=web
              - testbed.mine=x
            sysctls:
              - net.ipv4.ip_forward=1
              - net.core.somaxconn=1024
            cap_add: [cap_net_admin, NET_RAW]
            entrypoint: /bin/sh -c 'exec "$$@"' --
          b:
            image: alpine:3
            labels:
              com.example.role: db
            sysctls:
              net.ipv4.tcp_syncookies: 0
            entrypoint: []
            hostname: b
        """)
    a, b = doc["nodes"]["a"], doc["nodes"]["b"]
    assert a["labels"] == {"com.example.role": "web"}
    assert only(notes, "warning", "label testbed.mine is not carried over").line == line_of(text, "testbed.mine")
    assert a["forwarding"] is True and a["sysctls"] == {"net.core.somaxconn": "1024"}
    assert only(notes, "info", "sysctl net.ipv4.ip_forward=1 is forwarding: true here").line == \
        line_of(text, "ip_forward")
    assert a["cap_add"] == ["NET_ADMIN", "NET_RAW"]
    assert a["entrypoint"] == ["/bin/sh", "-c", 'exec "$@"', "--"]
    assert b == {"image": "alpine:3", "labels": {"com.example.role": "db"},
                 "sysctls": {"net.ipv4.tcp_syncookies": "0"}, "entrypoint": []}
    assert not [n for n in notes if "hostname" in n.message]   # equal to the node's name


def test_duplicate_keys_are_reported(tmp_path):
    text, _doc, notes = convert_text(tmp_path, """\
        services:
          a:
            image: alpine:3
            image: alpine:3.19
        """)
    assert only(notes, "warning", "services.a.image is written twice in one mapping").line == line_of(text, "3.19")


def test_loads_through_importers_load():
    fmt, doc, _notes = importers.load(os.path.join(SOURCES.dir, "two-networks", "compose.yaml"))
    assert fmt == "compose" and doc["name"] == "two-networks"
    with pytest.raises(importers.ImportFailed) as exc:
        importers.load(os.path.join(SOURCES.dir, "unsupported", "docker-compose.yml"))
    assert "privileged of service a" in str(exc.value)
    assert "healthcheck" not in str(exc.value)   # the exception's text lists the errors


def test_zero_limits_mean_no_limit(tmp_path):
    text, doc, notes = convert_text(tmp_path, """\
        services:
          a:
            image: alpine:3
            cpus: 0
            pids_limit: -1
        """)
    assert doc["nodes"]["a"] == {"image": "alpine:3"}
    assert only(notes, "info", "cpus 0 of service a (no limit) is not carried over").line == line_of(text, "cpus")
    assert only(notes, "info", "pids limit -1 of service a (unlimited) is not carried over").line == \
        line_of(text, "pids_limit")


def test_depends_on_a_missing_service_is_an_error_naming_its_line(tmp_path):
    text = "services:\n  a:\n    image: busybox\n    depends_on: [nosuch]\n"
    _text, notes = failing_text(tmp_path, text)
    note = only(notes, "error", "depends_on of service a names 'nosuch', which is not a service of this project")
    assert note.line == 4


def test_cpu_shares_and_the_blkio_weight_are_the_nodes_weights(tmp_path):
    text, doc, notes = convert_text(tmp_path, """\
        services:
          a:
            image: alpine:3
            cpu_shares: 512
            blkio_config:
              weight: 300
              device_read_bps:
                - {path: /dev/sda, rate: 1mb}
          b:
            image: alpine:3
            cpu_shares: 0
        """)
    a, b = doc["nodes"]["a"], doc["nodes"]["b"]
    assert (a["cpu_shares"], a["blkio_weight"]) == (512, 300) and "cpu_shares" not in b
    assert only(notes, "warning", "blkio_config.device_read_bps of service a is not carried over").line == \
        line_of(text, "device_read_bps")
    assert only(notes, "info", "cpu_shares 0 of service b (Docker's default weight)").line == line_of(text, "cpu_shares: 0")


def test_weights_outside_dockers_range_are_errors(tmp_path):
    text, notes = failing_text(tmp_path, """\
        services:
          a:
            image: alpine:3
            cpu_shares: 1
            blkio_config:
              weight: high
        """)
    assert only(notes, "error", "cpu_shares 1 of service a is outside Docker's range 2-262144").line == \
        line_of(text, "cpu_shares")
    assert only(notes, "error", "blkio_config.weight 'high' of service a is not a whole number").line == \
        line_of(text, "weight")


def test_cap_drop_is_carried_over_and_the_levels_needs_are_kept(tmp_path):
    text, doc, notes = convert_text(tmp_path, """\
        services:
          a:
            image: alpine:3
            cap_drop: [ALL]
            cap_add: [NET_BIND_SERVICE]
          b:
            image: alpine:3
            cap_drop: [cap_mknod, NET_BIND_SERVICE, SYS_ADMIN]
            cap_add: [NET_BIND_SERVICE]
        """)
    a, b = doc["nodes"]["a"], doc["nodes"]["b"]
    assert a["cap_drop"] == ["ALL"] and a["cap_add"] == ["NET_BIND_SERVICE"]
    assert only(notes, "info", "cap_drop ALL: the node keeps KILL, SETGID, SETUID").line == line_of(text, "[ALL]")
    assert b["cap_drop"] == ["MKNOD"]
    assert only(notes, "info", "cap_drop NET_BIND_SERVICE is in cap_add too").line == line_of(text, "cap_mknod")
    assert only(notes, "warning", "cap_drop SYS_ADMIN is not a capability of a node").line == line_of(text, "cap_mknod")
    model.validate(doc)  # and it is a valid experiment
