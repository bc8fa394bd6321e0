# -*- coding: utf-8 -*-
# Copyright: testbed.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The containerlab importer: inheritance, links and bridges, addresses from exec, kinds, and a
note with its line for every construct that is not carried over as it is written.

Fixtures are in tests/unit/import_sources/clab/; small cases are written inline to tmp_path.
Documents that use the node and member keys the model is gaining (binds, labels, interface:
...) are validated in the tests marked ``needs_new_model``, which run once model.py has them.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

import pytest

from ansible_collections.testbed.containers.plugins.module_utils import importers, model
from ansible_collections.testbed.containers.plugins.module_utils.importers import clab

from .import_helpers import Sources, levels, line_of, needs_new_model, only

SOURCES = Sources(clab, "clab", "lab.clab.yml")
fixture, convert_file, failing_file = SOURCES.fixture, SOURCES.convert_file, SOURCES.failing_file
write, convert_text, failing_text = SOURCES.write, SOURCES.convert_text, SOURCES.failing_text


# ---------------------------------------------------------------------------------------------
# inheritance


def test_inheritance_single_values_most_specific_level_wins():
    _text, doc, _notes = convert_file("inheritance.clab.yml")
    nodes = doc["nodes"]
    assert list(nodes) == ["r1", "r2", "h1", "h2"]
    # image: node > group > kind (the defaults' image is never the most specific here)
    assert nodes["r1"]["image"] == "node/image:1"
    assert nodes["r2"]["image"] == "group/image:1"
    assert nodes["h1"]["image"] == "kind/image:1"
    # cmd from the group only
    assert nodes["r1"]["command"] == nodes["r2"]["command"] == "sleep infinity"
    assert "command" not in nodes["h1"]
    # user: defaults unless the node sets it
    assert nodes["r1"]["user"] == nodes["h1"]["user"] == "1000"
    assert nodes["h2"]["user"] == "root"


def test_inheritance_env_and_labels_merge_key_by_key():
    _text, doc, _notes = convert_file("inheritance.clab.yml")
    nodes = doc["nodes"]
    assert nodes["r1"]["env"] == {"LEVEL": "node", "FROM_DEFAULTS": "d", "FROM_KIND": "k", "FROM_GROUP": "g"}
    assert nodes["r2"]["env"] == {"LEVEL": "group", "FROM_DEFAULTS": "d", "FROM_KIND": "k", "FROM_GROUP": "g"}
    assert nodes["h1"]["env"] == {"LEVEL": "kind", "FROM_DEFAULTS": "d", "FROM_KIND": "k"}
    assert nodes["h1"]["labels"] == {"owner": "defaults", "tier": "kind"}
    assert nodes["h2"]["labels"] == {"owner": "h2", "tier": "kind"}


def test_inheritance_exec_concatenates_defaults_kind_group_node():
    _text, doc, _notes = convert_file("inheritance.clab.yml")
    nodes = doc["nodes"]
    assert nodes["r1"]["start"] == "echo defaults\necho kind\necho group\necho node"
    assert nodes["r2"]["start"] == "echo defaults\necho kind\necho group"
    assert nodes["h1"]["start"] == "echo defaults\necho kind"


def test_inheritance_binds_same_target_keeps_most_specific_and_resolves_relative_paths():
    _text, doc, _notes = convert_file("inheritance.clab.yml")
    # /shared is bound by defaults and by the kind: the kind's wins; containerlab sorts binds
    assert doc["nodes"]["h1"]["binds"] == [
        os.path.join(SOURCES.dir, "defaults-only") + ":/d:ro",
        os.path.join(SOURCES.dir, "shared-kind") + ":/shared",
    ]


def test_named_endpoints_keep_their_interfaces_brief_and_extended():
    _text, doc, _notes = convert_file("inheritance.clab.yml")
    assert doc["links"] == {
        "r1-r2": {"endpoints": [{"node": "r1", "interface": "eth3"}, {"node": "r2", "interface": "net0"}]},
        "h1-h2": {"endpoints": [{"node": "h1", "interface": "eth1"}, {"node": "h2", "interface": "e1-5"}]},
    }


def test_lab_name_routing_and_info_notes():
    text, doc, notes = convert_file("inheritance.clab.yml")
    assert doc["name"] == "inherit-lab"
    assert only(notes, "info", "lab 'inherit_lab' is the experiment 'inherit-lab' here").line == line_of(text, "name:")
    assert doc["routing"] == "none"
    assert only(notes, "info", "routing: none: containerlab configures no routes").line == line_of(text, "topology:")
    assert levels(notes, "warning") == [] and levels(notes, "error") == []
    only(notes, "info", "link r1-r2 has no address in the source: its subnet is allocated from the pool")


def test_options_name_project_and_routing():
    _text, doc, _notes = convert_file("inheritance.clab.yml", {"name": "given", "project": "proj", "routing": "static"})
    assert (doc["name"], doc["project"], doc["routing"]) == ("given", "proj", "static")


def test_kind_from_group_and_group_from_kind(tmp_path):
    _text, doc, notes = convert_text(tmp_path, """\
        name: g
        topology:
          defaults:
            kind: nokia_srlinux
          kinds:
            linux:
              group: servers
          groups:
            clients:
              kind: linux
              image: alpine:3
            servers:
              image: debian:12
          nodes:
            c1:
              group: clients
            s1:
              kind: linux
        """)
    # c1: the kind comes from its group (over defaults.kind); s1: the group comes from its kind
    assert doc["nodes"]["c1"]["image"] == "alpine:3"
    assert doc["nodes"]["s1"]["image"] == "debian:12"
    assert levels(notes, "error") == []


# ---------------------------------------------------------------------------------------------
# bridges and addresses


def test_bridge_nodes_become_lans_of_their_endpoints():
    text, doc, notes = convert_file("bridge.clab.yml")
    assert sorted(doc["nodes"]) == ["client1", "client2", "router", "server"]  # the bridges are no nodes
    assert doc["lans"] == {
        "br-lan": {"members": [{"node": "client1", "interface": "eth1", "ip": "192.168.10.11"},
                               {"node": "client2", "interface": "eth1", "ip": "192.168.10.12"},
                               {"node": "router", "interface": "eth1", "ip": "192.168.10.1"}],
                   "subnet": "192.168.10.0/24"},
        "ovs0": {"members": [{"node": "client2", "interface": "eth2", "ip": "192.168.20.12"},
                             {"node": "server", "interface": "eth1", "ip": "192.168.20.2"}],
                 "subnet": "192.168.20.0/24"},
    }
    assert "links" not in doc
    note = only(notes, "info", "bridge br-lan (a Linux bridge of the host in containerlab) is the LAN br-lan here")
    assert note.line == line_of(text, "br-lan:")
    assert "client1:eth1, client2:eth1, router:eth1" in note.message
    assert only(notes, "info", "bridge ovs0 (an Open vSwitch bridge").line == line_of(text, "ovs0:")


def test_exec_addresses_are_extracted_and_their_lines_dropped():
    text, doc, notes = convert_file("bridge.clab.yml")
    nodes = doc["nodes"]
    assert nodes["client1"]["start"] == "ip link set eth1 up"
    assert "start" not in nodes["client2"]   # both lines were addresses
    # the -6 address is not ours: kept as it is
    assert nodes["server"]["start"] == "ip -6 addr add 2001:db8::2/64 dev eth1"
    for form, address in (("ip addr add 192.168.10.11/24", "192.168.10.11"),
                          ("ip address add 192.168.10.12/24", "192.168.10.12"),
                          ("ip -4 addr add 192.168.20.12/24", "192.168.20.12"),
                          ("ip a add 192.168.10.1/24", "192.168.10.1")):
        note = only(notes, "info", "address %s of " % address)
        assert note.line == line_of(text, form)
        assert "is dropped from the start command (the address exists by then)" in note.message


def test_exec_forwarding_sysctl_becomes_forwarding():
    text, doc, notes = convert_file("bridge.clab.yml")
    router = doc["nodes"]["router"]
    assert router["forwarding"] is True
    assert router["start"] == "ip route add 10.99.0.0/16 via 192.168.10.254"   # routes are kept
    note = only(notes, "info", "exec sysctl net.ipv4.ip_forward=1 is forwarding: true here")
    assert note.line == line_of(text, "sysctl -w")
    assert "forwarding" not in doc["nodes"]["client1"]


def test_bridge_document_validates_with_the_old_keys_after_dropping_interfaces():
    _text, doc, _notes = convert_file("bridge.clab.yml")
    for lan in doc["lans"].values():
        for member in lan["members"]:
            del member["interface"]
    model.validate(doc)


def test_two_subnets_on_one_link_is_an_error_with_the_line(tmp_path):
    text, notes = failing_text(tmp_path, """\
        name: mismatch
        topology:
          kinds:
            linux: {image: alpine:3}
          nodes:
            a:
              kind: linux
              exec:
                - ip addr add 10.0.0.1/24 dev eth1
            b:
              kind: linux
              exec:
                - ip addr add 10.0.1.2/24 dev eth1
          links:
            - endpoints: ["a:eth1", "b:eth1"]
        """)
    note = only(notes, "error", "b:eth1 has 10.0.1.2/24, in another subnet than a:eth1's 10.0.0.1/24")
    assert note.line == line_of(text, "10.0.1.2/24")
    assert "(line %d)" % line_of(text, "10.0.0.1/24") in note.message


def test_addresses_that_cannot_be_a_members_stay_in_the_start_command(tmp_path):
    text, doc, notes = convert_text(tmp_path, """\
        name: keep
        topology:
          nodes:
            a:
              kind: linux
              image: alpine:3
              exec:
                - ip addr add 10.0.0.0/31 dev eth1
                - ip addr add 10.5.0.1/24 dev eth2
                - ip addr add 10.6.0.1/24 dev eth2
                - ip addr add 10.7.0.1/24 dev eth1 label eth1:x
                - ip addr add 192.0.2.1/32 dev lo
                - ip addr add 172.16.0.5/24 dev eth0
            b:
              kind: linux
              image: alpine:3
          links:
            - endpoints: ["a:eth1", "b:eth1"]
            - endpoints: ["a:eth2", "b:eth2"]
        """)
    start = doc["nodes"]["a"]["start"].split("\n")
    assert start == ["ip addr add 10.0.0.0/31 dev eth1", "ip addr add 10.6.0.1/24 dev eth2",
                     "ip addr add 10.7.0.1/24 dev eth1 label eth1:x", "ip addr add 192.0.2.1/32 dev lo",
                     "ip addr add 172.16.0.5/24 dev eth0"]
    assert doc["links"]["a-b"] == {"endpoints": [{"node": "a", "interface": "eth1"}, {"node": "b", "interface": "eth1"}]}
    assert doc["links"]["a-b-2"]["subnet"] == "10.5.0.0/24"
    assert only(notes, "warning", "10.0.0.0/31 is not an address of a /30 or larger subnet").line == \
        line_of(text, "10.0.0.0/31")
    assert only(notes, "info", "adds a second address to a:eth2").line == line_of(text, "10.6.0.1/24")
    assert only(notes, "info", "options other than dev and brd (label eth1:x)").line == line_of(text, "label eth1:x")
    assert only(notes, "info", "lo is not one of node a's links").line == line_of(text, "192.0.2.1/32")
    assert only(notes, "warning", "configures eth0, which is the node's control interface here").line == \
        line_of(text, "dev eth0")
    note = only(notes, "info", "link a-b-2: b:eth2 has no address in the source: it gets an address of 10.5.0.0/24")
    assert note.line == line_of(text, '"a:eth2"')


def test_link_ipv4_fields_are_addresses_with_a_warning_for_linux(tmp_path):
    text, doc, notes = convert_text(tmp_path, """\
        name: ipv4
        topology:
          nodes:
            a: {kind: linux, image: alpine:3}
            b: {kind: linux, image: alpine:3}
          links:
            - endpoints: ["a:eth1", "b:eth1"]
              ipv4: ["192.168.0.1/24", "192.168.0.2/24"]
            - type: veth
              endpoints:
                - node: a
                  interface: eth2
                  ipv4: 192.168.2.1/24
                  mac: aa:c1:ab:00:00:01
                - node: b
                  interface: eth2
        """)
    assert doc["links"]["a-b"] == {"endpoints": [{"node": "a", "interface": "eth1", "ip": "192.168.0.1"},
                                                 {"node": "b", "interface": "eth1", "ip": "192.168.0.2"}],
                                   "subnet": "192.168.0.0/24"}
    assert doc["links"]["a-b-2"]["endpoints"][0] == {"node": "a", "interface": "eth2", "ip": "192.168.2.1"}
    note = only(notes, "warning", "ipv4 192.168.0.1/24 of a:eth1: containerlab sets link addresses only on some")
    assert note.line == line_of(text, "ipv4: [")
    assert only(notes, "warning", "ipv4 192.168.2.1/24 of a:eth2").line == line_of(text, "ipv4: 192.168.2.1/24")
    assert only(notes, "warning", "mac aa:c1:ab:00:00:01 of a:eth2 is not carried over").line == line_of(text, "mac:")


def test_duplicate_address_on_a_bridge_is_an_error(tmp_path):
    text, notes = failing_text(tmp_path, """\
        name: dup
        topology:
          nodes:
            sw: {kind: bridge}
            a: {kind: linux, image: alpine:3, exec: ["ip addr add 10.0.0.1/24 dev eth1"]}
            b: {kind: linux, image: alpine:3, exec: ["ip addr add 10.0.0.1/24 dev eth1"]}
          links:
            - endpoints: ["a:eth1", "sw:p1"]
            - endpoints: ["b:eth1", "sw:p2"]
        """)
    note = only(notes, "error", "LAN sw: address 10.0.0.1 of b:eth1 is also a:eth1's")
    assert note.line == line_of(text, "b: {kind")


def test_node_on_a_bridge_twice_and_bridge_to_bridge_are_errors(tmp_path):
    text, notes = failing_text(tmp_path, """\
        name: twice
        topology:
          nodes:
            sw: {kind: bridge}
            sw2: {kind: bridge}
            a: {kind: linux, image: alpine:3}
          links:
            - endpoints: ["a:eth1", "sw:p1"]
            - endpoints: ["a:eth2", "sw:p2"]
            - endpoints: ["sw:p3", "sw2:p1"]
        """)
    assert only(notes, "error", "node a is attached to bridge sw twice (eth1 and eth2)").line == line_of(text, '"a:eth2"')
    assert only(notes, "error", "a link between bridges sw and sw2").line == line_of(text, '"sw:p3"')


# ---------------------------------------------------------------------------------------------
# kinds


def test_vendor_kinds_are_errors_naming_node_and_kind():
    text, notes = failing_file("vendor.clab.yml")
    srl = only(notes, "error", "node srl is of kind nokia_srlinux (a network operating system, not a Linux container)")
    assert srl.line == line_of(text, "kind: nokia_srlinux")
    assert "kind_images" in srl.message
    assert only(notes, "error", "node ceos is of kind arista_ceos").line == line_of(text, "kind: arista_ceos")
    assert len(levels(notes, "error")) == 2
    assert only(notes, "warning", "startup-config of node srl is not carried over").line == line_of(text, "startup-config")


def test_kind_images_maps_vendor_kinds_with_an_info_note():
    options = {"kind_images": {"nokia_srlinux": "frrouting/frr:v8.4.1", "arista_ceos": "frrouting/frr:v8.4.1"}}
    text, doc, notes = convert_file("vendor.clab.yml", options)
    assert doc["nodes"]["srl"] == {"image": "frrouting/frr:v8.4.1"}
    assert doc["nodes"]["ceos"] == {"image": "frrouting/frr:v8.4.1"}
    assert doc["nodes"]["client"] == {"image": "alpine:3"}
    note = only(notes, "info", "node srl of kind nokia_srlinux runs image frrouting/frr:v8.4.1 (kind_images) as a "
                               "Linux node instead of ghcr.io/nokia/srlinux")
    assert note.line == line_of(text, "kind: nokia_srlinux")
    assert doc["links"]["srl-ceos"]["endpoints"] == [{"node": "srl", "interface": "e1-1"},
                                                     {"node": "ceos", "interface": "eth1"}]


def test_missing_kind_is_an_error(tmp_path):
    text, notes = failing_text(tmp_path, """\
        name: nokind
        topology:
          nodes:
            a:
              image: alpine:3
        """)
    note = only(notes, "error", "node a has no kind: containerlab needs one (kind: linux, or topology.defaults.kind)")
    assert note.line == line_of(text, "    a:")  # the node's key


def test_default_image_for_a_linux_node_without_one(tmp_path):
    text, doc, notes = convert_text(tmp_path, """\
        name: noimage
        topology:
          nodes:
            a: {kind: linux}
            b: {kind: linux}
        """, {"default_image": "testbed/busybox:latest"})
    assert doc["nodes"] == {"a": {"image": "testbed/busybox:latest"}, "b": {"image": "testbed/busybox:latest"}}
    assert only(notes, "info", "node a has no image: it runs testbed/busybox:latest").line == line_of(text, "a: {")
    _text, doc, _notes = convert_text(tmp_path, "name: x\ntopology:\n  nodes:\n    a: {kind: linux}\n")
    assert doc["nodes"]["a"]["image"] == importers.DEFAULT_IMAGE
    model.validate(doc)


# ---------------------------------------------------------------------------------------------
# unsupported constructs: each message and line


UNSUPPORTED = [
    ("info", "prefix is not carried over: the testbed names the containers", "prefix:"),
    ("info", "management network lab_mgmt is the testbed's control network here", "network: lab_mgmt"),
    ("warning", "mgmt.ipv4-subnet 172.100.100.0/24 is not carried over: the control subnet is the testbed's",
     "ipv4-subnet:"),
    ("warning", "mgmt.ipv6-subnet is not carried over: the control network is IPv4", "ipv6-subnet:"),
    ("warning", "mgmt.mtu is not carried over", "mtu: 1400"),
    ("warning", "settings (containerlab's certificate authority) are not carried over", "settings:"),
    ("warning", "startup-config of node a is not carried over: startup configurations are a network OS setting",
     "startup-config:"),
    ("warning", "license of node a is not carried over", "license:"),
    ("warning", "type of node a is not carried over", "type: ixr-d2l"),
    ("warning", "mgmt-ipv4 of node a is not carried over: the testbed picks control (management) addresses itself",
     "mgmt-ipv4:"),
    ("warning", "dns of node a is not carried over", "dns:"),
    ("warning", "unknown node key favourite-colour of node a is not carried over", "favourite-colour:"),
    ("error", "node b is privileged: a privileged container reaches beyond the node", "privileged: true"),
    ("error", "network-mode host of node c: the node's network namespace is the testbed's", "network-mode: host"),
    ("error", "devices of node d: host devices cannot be given to nodes on a shared testbed", "devices:"),
    ("error", "pid-mode host of node e shares a process namespace", "pid-mode: host"),
    ("warning", "hostname f.example of node f is not carried over: the node's host name is f", "hostname:"),
    ("error", "endpoint host:a-eth1 connects the node to the containerlab host's own network namespace",
     '"host:a-eth1"'),
    ("error", "endpoint macvlan:enp0s3 connects the node to a host interface (macvlan)", '"macvlan:enp0s3"'),
    ("error", "interface eth0 of node c: eth0 is the node's control interface here", '"c:eth0"'),
    ("warning", "mtu 1500 of a link is not carried over", "mtu: 1500"),
    ("error", "a link of type vxlan tunnels a node's interface to a remote host", "type: vxlan"),
]


@pytest.mark.parametrize("level,fragment,needle", UNSUPPORTED, ids=[u[1][:40] for u in UNSUPPORTED])
def test_unsupported_construct_message_and_line(level, fragment, needle):
    text, notes = failing_file("unsupported.clab.yml")
    assert only(notes, level, fragment).line == line_of(text, needle)


def test_unsupported_reports_nothing_else():
    _text, notes = failing_file("unsupported.clab.yml")
    expected = [(level, fragment) for level, fragment, _n in UNSUPPORTED if level != "info"]
    reported = [n for n in notes if n.level != "info"]
    assert len(reported) == len(expected)


def test_inherited_construct_is_reported_once_at_its_level(tmp_path):
    text, notes = failing_text(tmp_path, """\
        name: inh
        topology:
          defaults:
            kind: linux
            image: alpine:3
            startup-config: common.cfg
          kinds:
            linux:
              privileged: true
          nodes:
            a: {}
            b: {}
        """)
    warnings = [n for n in notes if "startup-config" in n.message]
    assert [n.line for n in warnings] == [line_of(text, "startup-config")] * 2  # one per node, at the defaults' line
    assert "(inherited from defaults)" in warnings[0].message
    errors = levels(notes, "error")
    assert [n.line for n in errors] == [line_of(text, "privileged")] * 2
    assert errors[0].message.startswith("node a is privileged (inherited from kinds.linux)")


def test_special_endpoints_and_unknown_nodes(tmp_path):
    text, notes = failing_text(tmp_path, """\
        name: special
        topology:
          nodes:
            a: {kind: linux, image: alpine:3}
          links:
            - endpoints: ["a:eth1", "mgmt-net:a-eth1"]
            - endpoints: ["a:eth2", "ghost:eth1"]
            - endpoints: ["a:eth3", "a:eth4"]
            - endpoints: ["a:ethernet-1/1", "a:eth5"]
            - endpoints: ["a:eth6"]
            - type: macvlan
              endpoint: {node: a, interface: eth7}
              host-interface: enp0s3
        """)
    assert only(notes, "error", "endpoint mgmt-net:a-eth1 connects the node to the management network").line == \
        line_of(text, "mgmt-net")
    assert only(notes, "error", "endpoint ghost:eth1 names no node of topology.nodes").line == line_of(text, "ghost")
    assert only(notes, "error", "a link from node a to itself (eth3, eth4)").line == line_of(text, '"a:eth3"')
    assert only(notes, "error", "interface ethernet-1/1 of node a: not an interface name").line == \
        line_of(text, "ethernet-1/1")
    assert only(notes, "error", "a link needs exactly two endpoints").line == line_of(text, '"a:eth6"')
    assert only(notes, "error", "a link of type macvlan connects a node to a host interface").line == \
        line_of(text, "type: macvlan")


def test_interface_on_two_links_is_an_error(tmp_path):
    text, notes = failing_text(tmp_path, """\
        name: twice
        topology:
          nodes:
            a: {kind: linux, image: alpine:3}
            b: {kind: linux, image: alpine:3}
            c: {kind: linux, image: alpine:3}
          links:
            - endpoints: ["a:eth1", "b:eth1"]
            - endpoints: ["a:eth1", "c:eth1"]
        """)
    note = only(notes, "error", "interface eth1 of node a is on two links (also line %d)" % line_of(text, '"b:eth1"'))
    assert note.line == line_of(text, '"c:eth1"')


def test_yaml_syntax_error_names_the_line(tmp_path):
    text, notes = failing_text(tmp_path, """\
        name: bad
        topology:
          nodes:
            a:
              kind: linux
             image: alpine:3
        """)
    assert [(n.level, n.line) for n in notes] == [("error", line_of(text, "image: alpine"))]
    assert notes[0].message.startswith("not valid YAML: ")


def test_not_a_topology(tmp_path):
    _text, notes = failing_text(tmp_path, "- just\n- a list\n")
    assert [(n.level, n.line, n.message) for n in notes] == [
        ("error", 1, "the top level must be a mapping (a containerlab topology file), got list")]
    _text, notes = failing_text(tmp_path, "")
    assert notes[0].message == "the file is empty: a containerlab topology file is a YAML mapping"
    _text, notes = failing_text(tmp_path, "name: x\ntopology:\n  links: []\n")
    assert only(notes, "error", "topology.nodes must be a mapping of at least one node").line == 2


# ---------------------------------------------------------------------------------------------
# node settings


def test_node_settings_are_carried_over(tmp_path):
    (tmp_path / "node.env").write_text("FROM_FILE=1\nOVERRIDDEN=file\n")
    text, doc, notes = convert_text(tmp_path, """\
        name: settings
        topology:
          nodes:
            srv:
              kind: linux
              image: nginx:1.25
              cmd: nginx -g 'daemon off;'
              entrypoint: /docker-entrypoint.sh --verbose
              user: www-data
              cpu: 1.5
              memory: 1Gb
              restart-policy: unless-stopped
              env-files: [node.env]
              env:
                OVERRIDDEN: node
                COUNT: 3
                DEBUG: true
              cap-add: [NET_ADMIN, cap_sys_nice]
              sysctls:
                net.ipv4.ip_forward: 1
                net.core.somaxconn: 1024
              ports:
                - 8080:80
                - 127.0.0.1:5353:53/udp
                - 9000-9001:9000-9001
              binds:
                - /etc/ssl/certs:/etc/ssl/certs:ro
                - conf/nginx.conf:/etc/nginx/nginx.conf:ro,z
        """)
    srv = doc["nodes"]["srv"]
    assert srv["command"] == "nginx -g 'daemon off;'"
    assert srv["entrypoint"] == ["/docker-entrypoint.sh", "--verbose"]   # shell form, split as containerlab does
    assert srv["user"] == "www-data"
    assert srv["cpus"] == 1.5
    assert srv["memory"] == "1000000000b"   # containerlab's gb is 10^9 bytes
    assert only(notes, "info", "memory 1Gb of node srv is 1000000000b here").line == line_of(text, "memory:")
    assert srv["restart"] == "always"
    assert only(notes, "info", "restart-policy unless-stopped of node srv").line == line_of(text, "restart-policy")
    assert srv["env"] == {"FROM_FILE": "1", "OVERRIDDEN": "node", "COUNT": "3", "DEBUG": "true"}
    assert srv["cap_add"] == ["NET_ADMIN", "SYS_NICE"]
    assert srv["forwarding"] is True and srv["sysctls"] == {"net.core.somaxconn": "1024"}
    assert srv["ports"] == ["8080:80", "127.0.0.1:5353:53/udp"]
    assert only(notes, "warning", "port 9000-9001:9000-9001 of node srv: a port range is not published here").line == \
        line_of(text, "9000-9001")
    assert srv["binds"] == ["/etc/ssl/certs:/etc/ssl/certs:ro",
                            os.path.join(str(tmp_path), "conf", "nginx.conf") + ":/etc/nginx/nginx.conf:ro"]
    assert only(notes, "warning", "bind option z of node srv is not carried over").line == line_of(text, ",z")


def test_memory_in_binary_units_and_refused_capabilities(tmp_path):
    text, notes = failing_text(tmp_path, """\
        name: mem
        topology:
          nodes:
            a:
              kind: linux
              image: alpine:3
              memory: 512mib
              cap-add: [SYS_ADMIN]
              sysctls:
                kernel.panic: 1
              env:
                my.var: x
        """)
    assert only(notes, "error", "cap-add SYS_ADMIN reaches beyond the node").line == line_of(text, "SYS_ADMIN")
    assert only(notes, "error", "sysctl kernel.panic is not a sysctl of the node's own namespaces").line == \
        line_of(text, "kernel.panic")
    assert only(notes, "error", "environment variable name 'my.var' cannot be set here").line == line_of(text, "my.var")
    _text, doc, notes = convert_text(tmp_path, """\
        name: mem
        topology:
          nodes:
            a: {kind: linux, image: alpine:3, memory: 512mib}
        """)
    assert doc["nodes"]["a"]["memory"] == "512m"
    assert not [n for n in notes if "memory" in n.message]


def test_env_file_missing_is_an_error(tmp_path):
    text, notes = failing_text(tmp_path, """\
        name: envf
        topology:
          nodes:
            a:
              kind: linux
              image: alpine:3
              env-files:
                - missing.env
        """)
    note = only(notes, "error", "env-file missing.env of node a does not exist")
    assert note.line == line_of(text, "- missing.env")


def test_variables_are_expanded_as_containerlab_does(tmp_path):
    text, doc, notes = convert_text(tmp_path, """\
        name: vars
        topology:
          nodes:
            a:
              kind: linux
              image: alpine:${ALPINE_VERSION:=3}
              env:
                FROM_SHELL: ${UNSET_VARIABLE}
              exec:
                - ash -c 'echo $$HOME > /tmp/home'
                - echo __clabNodeName__ in __clabLabName__
        """)
    a = doc["nodes"]["a"]
    assert a["image"] == "alpine:3"
    assert only(notes, "info", "variable ALPINE_VERSION is not set in the environment").line == line_of(text, "image:")
    assert a["env"] == {"FROM_SHELL": ""}
    assert only(notes, "warning", "variable UNSET_VARIABLE is not set in the environment").line == \
        line_of(text, "FROM_SHELL")
    assert a["start"] == "ash -c 'echo $HOME > /tmp/home'\necho a in clab-vars"
    assert only(notes, "info", "containerlab's variables in").line == line_of(text, "__clabNodeName__")


def test_bridge_settings_and_unused_sections_are_reported(tmp_path):
    text, doc, notes = convert_text(tmp_path, """\
        name: unused
        topology:
          kinds:
            nokia_srlinux: {image: ghcr.io/nokia/srlinux}
          groups:
            spines: {type: ixrd3}
          nodes:
            sw:
              kind: bridge
              exec: ["ip link set sw up"]
            a: {kind: linux, image: alpine:3}
          links:
            - endpoints: ["a:eth1", "sw:a1"]
        """)
    assert only(notes, "warning", "exec of bridge sw is not carried over: the bridge is the LAN sw here").line == \
        line_of(text, "exec:")
    assert only(notes, "info", "topology.kinds.nokia_srlinux is used by no node").line == line_of(text, "nokia_srlinux:")
    assert only(notes, "info", "topology.groups.spines is used by no node").line == line_of(text, "spines:")
    assert doc["lans"] == {"sw": {"members": [{"node": "a", "interface": "eth1"}]}}


def test_renamed_nodes_keep_their_links(tmp_path):
    text, doc, notes = convert_text(tmp_path, """\
        name: Rename
        topology:
          nodes:
            Router_1: {kind: linux, image: alpine:3}
            "2host": {kind: linux, image: alpine:3}
          links:
            - endpoints: ["Router_1:eth1", "2host:eth1"]
        """)
    assert list(doc["nodes"]) == ["router-1", "n2host"]
    assert doc["links"] == {"router-1-n2host": {"endpoints": [{"node": "router-1", "interface": "eth1"},
                                                              {"node": "n2host", "interface": "eth1"}]}}
    assert only(notes, "info", "node 'Router_1' is named 'router-1' here").line == line_of(text, "Router_1:")
    assert doc["name"] == "rename"


def test_loads_through_importers_load_and_strict():
    fmt, doc, notes = importers.load(os.path.join(SOURCES.dir, "bridge.clab.yml"))
    assert fmt == "clab" and doc["name"] == "lan-lab"
    assert notes and all(n.level == "info" for n in notes)
    vendor = os.path.join(SOURCES.dir, "vendor.clab.yml")
    options = {"kind_images": {"nokia_srlinux": "frrouting/frr:v8.4.1", "arista_ceos": "frrouting/frr:v8.4.1"}}
    _fmt, _doc, notes = importers.load(vendor, options=options)
    assert [n.level for n in notes].count("warning") == 1
    with pytest.raises(importers.ImportFailed) as exc:
        importers.load(vendor, options=dict(options, strict=True))
    assert "startup-config of node srl is not carried over" in str(exc.value)
    assert "(strict: warnings are errors)" in str(exc.value)


# ---------------------------------------------------------------------------------------------
# whole documents through the model (the new keys: binds, labels, user, member interfaces, ...)


@needs_new_model
@pytest.mark.parametrize("name,options", [
    ("inheritance.clab.yml", {}),
    ("bridge.clab.yml", {}),
    ("vendor.clab.yml", {"kind_images": {"nokia_srlinux": "frrouting/frr:v8.4.1", "arista_ceos": "frrouting/frr:v8.4.1"}}),
])
def test_converted_documents_validate(name, options):
    _text, doc, _notes = convert_file(name, options)
    exp = model.validate(doc)
    assert list(exp["nodes"]) == list(doc["nodes"])


@needs_new_model
def test_node_settings_document_validates(tmp_path):
    _text, doc, _notes = convert_text(tmp_path, """\
        name: settings
        topology:
          nodes:
            srv:
              kind: linux
              image: nginx:1.25
              entrypoint: /docker-entrypoint.sh
              user: www-data
              labels: {role: web}
              cap-add: [NET_ADMIN]
              sysctls: {net.core.somaxconn: 1024}
              ports: [8080:80]
              binds: [conf:/etc/nginx/conf.d:ro]
            cli: {kind: linux, image: alpine:3}
          links:
            - endpoints: ["srv:eth1", "cli:eth9"]
              ipv4: ["10.1.0.1/24", "10.1.0.2/24"]
        """)
    exp = model.validate(doc)
    assert exp["nodes"]["srv"]["user"] == "www-data"


def test_cmd_and_entrypoint_must_be_strings(tmp_path):
    text, notes = failing_text(tmp_path, """\
        name: cmd
        topology:
          nodes:
            a:
              kind: linux
              image: alpine:3
              cmd: [sleep, infinity]
              entrypoint: "/bin/sh -c 'unbalanced"
        """)
    assert only(notes, "error", "cmd of node a must be a string (containerlab's shell form)").line == line_of(text, "cmd:")
    assert only(notes, "error", "entrypoint of node a is not a valid shell-form command").line == \
        line_of(text, "entrypoint:")
