# -*- coding: utf-8 -*-
# Copyright: testbed.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Converge one physical host's slice of an experiment, and tear it down.

One call handles the whole slice (design, step 5): it reads the actual state once (node
containers by label, kernel links by name prefix), compares it with the plan, and acts only
on the difference, nodes in a thread pool.  Every action is reported as an operation; in
check mode the same walk records what it would do.  The host keeps a record per experiment
(decision 4), written before the first object exists, so teardown also cleans a half-failed
swap-in.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib
import fcntl
import json
import os
import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from ansible_collections.testbed.containers.plugins.module_utils import augment, control, defaults, engine, files, firewall, names
from ansible_collections.testbed.containers.plugins.module_utils import images, netlink, preflight, resources, services, shaping
from ansible_collections.testbed.containers.plugins.module_utils.planned import hosts_file, root_keys, slice_of, start_waves

DEFAULT_STATE_DIR = "/var/lib/testbed"
# seconds a wave of start commands waits for the one before it to start (depends_on)
START_ORDER_TIMEOUT = 30
RECORD_VERSION = 1


class SliceError(Exception):
    pass


class LockTimeout(SliceError):
    pass


LOCK_POLL_SECONDS = 0.2


def lock_holder(path):
    """Who holds (or last held) the lock at ``path``: the holder writes itself into the file."""
    try:
        with open(path) as f:
            holder = json.loads(f.read() or "{}")
    except (IOError, OSError, ValueError):
        return "an unknown process"
    if not isinstance(holder, dict) or "pid" not in holder:
        return "an unknown process"
    return "%s of %s, pid %s on %s, for %d s" % (
        holder.get("what", "a run"), holder.get("experiment", "?"), holder["pid"], holder.get("host", "?"),
        max(0, time.time() - holder.get("since", time.time())))


@contextlib.contextmanager
def file_lock(path, timeout=None, what=None, experiment=None):
    """An exclusive flock on ``path``: one converge or teardown per experiment (or host) at a time.

    The lock belongs to the process, not to its controller: a module whose ansible-playbook was
    killed keeps it until it finishes (Ansible's workers outlive their parent), so a second run
    waits for that one instead of working beside it.  ``timeout`` (seconds): give up then,
    naming the holder.  Yields the seconds waited (and who was waited for, if anyone).
    """
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        waited = {"seconds": 0.0, "holder": None}
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except (BlockingIOError, PermissionError):
            waited["holder"] = lock_holder(path)
            start = time.time()
            if timeout is None:
                fcntl.flock(fd, fcntl.LOCK_EX)
            else:
                while True:
                    try:
                        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                        break
                    except (BlockingIOError, PermissionError):
                        if time.time() - start >= timeout:
                            raise LockTimeout("%s is locked by %s; gave up after %d s (testbed_lock_timeout): wait "
                                              "for it to finish, or stop that process" % (
                                                  experiment or path, lock_holder(path), timeout))
                        time.sleep(LOCK_POLL_SECONDS)
            waited["seconds"] = time.time() - start
        if what:
            import platform
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps({"pid": os.getpid(), "host": platform.node(), "what": what,
                                      "experiment": experiment, "since": time.time()}).encode("utf-8"), 0)
        yield waited
    finally:
        os.close(fd)


class Paths:
    """Where the host keeps an experiment's record and per-node files."""

    def __init__(self, state_dir, project, name):
        self.root = os.path.join(state_dir, "experiments", project, name)
        self.record = os.path.join(self.root, "record.json")
        self.lock = os.path.join(state_dir, "locks", "%s.%s.lock" % (project, name))

    def node_dir(self, node):
        return os.path.join(self.root, "nodes", node)

    def hosts(self, node):
        return os.path.join(self.node_dir(node), "hosts")

    @property
    def ports(self):
        """NIC -> {lan, up, shaped}: the host's NICs on the experiment's LANs, as they were before
        (teardown gives them back so)."""
        return os.path.join(self.root, "ports.json")

    @property
    def volumes(self):
        """volume -> keep, for the named volumes of the experiment's nodes on this host (teardown
        reads it: a volume's keep may change after the volume was made with its label)."""
        return os.path.join(self.root, "volumes.json")


def read_record(paths):
    return files.read_json(paths.record)


def write_record(paths, record):
    files.write_json(paths.record, record)


def write_in_place(path, text, dry_run=False):
    """Rewrite a bind-mounted file keeping its inode (a rename would detach the mount)."""
    try:
        with open(path) as f:
            if f.read() == text:
                return False
    except (IOError, OSError):
        if dry_run:
            return True
        os.makedirs(os.path.dirname(path), exist_ok=True)
    if dry_run:
        return True
    with open(path, "a+") as f:
        f.seek(0)
        f.truncate()
        f.write(text)
    return True


def complete_plan(plan):
    """A plan recorded by a version before plan version 2 (the host agent runs from records)
    with the identities that version left to the host: kernel_prefix, aliases, IFB names."""
    if plan.get("version", 1) >= 2:
        return plan
    plan = json.loads(json.dumps(plan))
    project, name = plan["project"], plan["name"]
    plan["kernel_prefix"] = plan.pop("prefix", None) or names.kernel_prefix(project, name)
    for lan_name, lan in plan["lans"].items():
        lan["alias"] = names.alias(project, name, lan_name)
        if lan.get("vxlan") or lan.get("vlan"):
            lan["tunnel_alias"] = names.alias(project, name, lan_name, "vlan" if lan.get("vlan") else "tunnel")
    for node_name, node in plan["nodes"].items():
        for iface in node["interfaces"]:
            iface.setdefault("ifb", names.ifb_name(iface["veth"]))
            iface.setdefault("alias", names.alias(project, name, iface["lan"], node_name))
    plan["version"] = 2
    return plan


# the phases a swap-in reports its seconds by (the final summary): stage -> phase
PHASES = {"stage_images": "images", "stage_intent": "networks", "stage_allocation": "networks",
          "stage_networks": "networks", "stage_node_files": "nodes", "stage_nodes": "nodes",
          "stage_shaping": "shaping", "stage_control_plane": "control", "stage_ready": "control",
          "stage_storage": "nodes", "stage_stale_volumes": "nodes", "stage_ports": "networks"}
# A project directory the slice makes: every node's users may write it, none remove another's files
PROJECT_DIR_MODE = 0o1777


class Progress:
    """What a converge has done so far, in ``progress.json`` beside the record: the swap-in reads
    it while the slice module runs (experiment_progress) to print progress per host."""

    WRITE_EVERY = 0.5  # seconds between writes while nodes converge

    def __init__(self, path, nodes, enabled=True):
        self.path, self.enabled = path, enabled
        self.data = {"nodes": nodes, "created": 0, "started": 0, "plumbed": 0, "phase": "starting",
                     "started_at": time.time()}
        self._lock = threading.Lock()
        self._written = 0.0

    def phase(self, name):
        with self._lock:
            self.data["phase"] = name
            self._write(force=True)

    def count(self, what):
        with self._lock:
            self.data[what] += 1
            self._write()

    def _write(self, force=False):
        if not self.enabled or (not force and time.time() - self._written < self.WRITE_EVERY):
            return
        self._written = time.time()
        self.data["elapsed"] = round(self._written - self.data["started_at"], 1)
        try:
            files.atomic_write(self.path, json.dumps(self.data), durable=False)
        except (IOError, OSError):
            pass  # progress is for people: a full disk is reported by the record, not here


def read_progress(state_dir, project, name):
    return files.read_json(os.path.join(Paths(state_dir, project, name).root, "progress.json"))


class Run:
    """What the stages of one converge find and hand on: the engine client, image ids, the
    allocations, the experiment's containers and links on the host, bridges, node results."""

    def __init__(self, cli):
        self.cli = cli
        self.image_ids, self.images, self.allocations, self.actual = {}, {}, {}, {}
        self.host_links, self.bridges, self.results = {}, {}, {}
        # the host record as the previous converge left it, and the names of every link on the host
        self.previous, self.link_names = {}, set()


class Slice:
    """The part of ``plan`` placed on ``host``."""

    def __init__(self, plan, host, state_dir=DEFAULT_STATE_DIR, dry_run=False, workers=8, control_settings=None,
                 public_address=None, registry=None, lock_timeout=None, client=None, iproute=None):
        plan = complete_plan(plan)
        # the engine client and the host's netlink handle, made by these (injected: unit tests
        # run the stages against fakes)
        self._client = client or engine.client
        self._iproute = iproute or netlink.IPRoute
        self.plan, self.host, self.dry_run, self.workers = plan, host, dry_run, workers
        self.lock_timeout = lock_timeout
        self.warnings = []
        # node -> the reason it is not running (the engine's words): reported, not raised, so the
        # rest of the slice converges and the table shows every node
        self.dead = {}
        # the testbed registry ({registry: HOST:PORT, credentials: {username, password}}): images
        # this host lacks are pulled from it
        self.registry = registry
        self.project, self.name = plan["project"], plan["name"]
        self.state_dir = state_dir
        self.paths = Paths(state_dir, self.project, self.name)
        self.nodes = slice_of(plan, host)
        self.lans = [n for n, lan in plan["lans"].items() if host in lan["hosts"]]
        self.control = control.settings(control_settings)
        self.public_address = public_address or host
        self.owner = names.firewall_comment(self.project, self.name)
        self.ops = []
        self.timings = {}  # seconds per phase of the last converge (PHASES)
        self.progress = Progress(os.path.join(self.paths.root, "progress.json"), len(self.nodes), enabled=not dry_run)
        self._ops_lock = threading.Lock()
        self._local = threading.local()
        self._unchanged = {}  # nodes the previous converge left as planned (stage_nodes)

    def _op(self, text):
        with self._ops_lock:
            self.ops.append(text)

    def _ops(self, ops):
        for op in ops:
            self._op(op)

    def _host_ipr(self):
        if getattr(self._local, "ipr", None) is None:
            self._local.ipr = self._iproute()
        return self._local.ipr

    def _lock(self, what):
        return file_lock(self.paths.lock, self.lock_timeout, what, "experiment %s/%s" % (self.project, self.name))

    def _note_wait(self, waited):
        if waited["holder"]:
            self.warnings.append("waited %.0f s for the lock of experiment %s/%s held by %s"
                                 % (waited["seconds"], self.project, self.name, waited["holder"]))

    def converge(self):
        """Converge the slice: its named stages in order (netlab's way), each taking what the
        earlier ones found (``run``) and recording its operations; check mode runs the same
        stages, whose leaf functions only describe what they would do."""
        with self._lock("swap-in") as waited:
            self._note_wait(waited)
            run = Run(self._client(pool_size=max(self.workers * 2, 10)))
            for stage in (self.stage_images, self.stage_intent, self.stage_allocation, self.stage_networks,
                          self.stage_ports, self.stage_node_files, self.stage_storage, self.stage_nodes, self.stage_stale_volumes,
                          self.stage_shaping, self.stage_control_plane, self.stage_ready):
                started = time.time()
                phase = PHASES.get(stage.__name__, stage.__name__)
                self.progress.phase(phase)
                stage(run)
                self.timings[phase] = round(self.timings.get(phase, 0.0) + time.time() - started, 3)
            record = self.stage_record(run)
            self.progress.phase("done")
            return record

    def stage_images(self, run):
        """Pull what the host lacks from the registry, augment each distinct (image, level) once."""
        try:
            run.images, run.image_ids, ops = images.converge_images(run.cli, self.plan, self.nodes, self.registry,
                                                                    self.dry_run)
        except images.ImageError as exc:
            raise SliceError("host %s: %s" % (self.host, exc))
        self._ops(ops)

    def stage_intent(self, run):
        """The record says what is being converged before the first object exists (decision 4)."""
        record = read_record(self.paths) or {}
        run.previous = dict(record)
        if not self.dry_run:
            record.update(self._record_head(), state="converging")
            write_record(self.paths, record)

    def stage_allocation(self, run):
        """Control addresses, exec addresses and SSH ports (under the host lock); nodes no longer
        in the plan removed."""
        run.allocations = self._allocate(run.cli)
        run.actual = engine.list_nodes(run.cli, self.project, self.name)
        self._remove_stale_nodes(run.actual)

    def stage_networks(self, run):
        """Stale links removed; each LAN's bridge and its tunnel to the other hosts."""
        with self._iproute() as ipr:
            every = netlink.links(ipr)
            run.host_links = dict((n, i) for n, i in every.items() if n.startswith(self.plan["kernel_prefix"]))
            self._remove_stale_links(ipr, run.host_links)
            created = len(self.ops)
            run.bridges = self._ensure_bridges(ipr, run.host_links)
            if len(self.ops) != created:
                every = netlink.links(ipr)
                run.host_links = dict((n, i) for n, i in every.items() if n.startswith(self.plan["kernel_prefix"]))
            run.link_names = set(every)

    def my_ports(self):
        """NIC -> (lan, planned port) of this host's NICs on the experiment's LANs."""
        return dict((port["interface"], (lan, port)) for lan in self.lans
                    for port in self.plan["lans"][lan].get("ports") or () if port["host"] == self.host)

    def stage_ports(self, run):
        """This host's NICs on the experiment's LANs (mixed mode): each a port of its LAN's bridge
        and up; a NIC no longer planned is given back as it was (ports.json)."""
        wanted, known = self.my_ports(), files.read_json(self.paths.ports) or {}
        if not wanted and not known:
            return
        with self._iproute() as ipr:
            for nic in sorted(set(known) - set(wanted)):
                self._ops(release_port(ipr, nic, known[nic], self.dry_run))
                known.pop(nic)
            for nic, (lan, port) in sorted(wanted.items()):
                bridge = run.bridges.get(lan)
                if port.get("stack"):
                    self._ops(netlink.ensure_stack(ipr, port, self.dry_run))
                found = netlink.host_nic(ipr, nic)
                if found is None and port.get("stack") and self.dry_run:  # check mode: the pair is not made
                    self._op("attach %s to LAN %s" % (nic, lan))
                    continue
                if found is None:
                    raise SliceError("lans.%s: host %s has no interface %s: name one of its NICs (ip link shows them)"
                                     % (lan, self.host, nic))
                if found["addresses"]:
                    raise SliceError("lans.%s: %s of host %s carries %s: a NIC that joins a LAN's bridge gives up its "
                                     "addresses (the host would lose them); use a NIC without an address"
                                     % (lan, nic, self.host, ", ".join(found["addresses"])))
                master, up = found["master"], found["up"]
                if master and master != bridge:
                    raise SliceError("lans.%s: %s of host %s is a port of another bridge (index %d): detach it first"
                                     % (lan, nic, self.host, master))
                if nic not in known:
                    known[nic] = {"lan": lan, "up": up, "shaped": False}
                shaped = bool(port.get("to_node") or port.get("from_node"))
                known[nic].update(lan=lan, ifb=port["ifb"], shaped=known[nic]["shaped"] or shaped)
                if bridge is None:  # check mode, bridge not made yet
                    self._op("attach %s to LAN %s" % (nic, lan))
                elif master != bridge or not up:
                    self._op("attach %s to LAN %s" % (nic, lan))
                    if not self.dry_run:
                        ipr.link("set", index=found["index"], master=bridge, state="up")
        if not self.dry_run:
            files.write_json(self.paths.ports, known)

    def stage_node_files(self, _run):
        """Each node's /etc/hosts and the keys of its exec-style SSH."""
        keys = "".join(k + "\n" for k in root_keys(self.plan))
        for node in self.nodes:
            if write_in_place(self.paths.hosts(node), hosts_file(self.plan, node), self.dry_run):
                self._op("write %s hosts file" % node)
            if write_in_place(control.keys_path(self.control, self.plan["nodes"][node]["container"]), keys,
                              self.dry_run):
                self._op("write %s authorized_keys" % node)

    def wanted_volumes(self):
        """volume -> (node, its planned volume), of this host's nodes."""
        return dict((v["volume"], (node, v)) for node in self.nodes for v in self.plan["nodes"][node].get("volumes") or ())

    def stage_storage(self, run):
        """The project's shared directory on this host, and the nodes' named volumes (labelled as
        the experiment's, made before the containers that mount them)."""
        project = (self.plan.get("storage") or {}).get("project")
        if project and self.nodes:
            source = project["sources"][self.host]
            if not os.path.isdir(source):
                self._op("make project directory %s" % source)
                if not self.dry_run:
                    try:
                        os.makedirs(source)
                        os.chmod(source, PROJECT_DIR_MODE)
                    except OSError as exc:
                        raise SliceError("cannot make the project directory %s on host %s (%s): make it there, or set "
                                         "testbed_project_root to a writable directory" % (source, self.host, exc))
        run.volumes = engine.list_volumes(run.cli, self.project, self.name)
        wanted = self.wanted_volumes()
        for volume, (node, spec) in sorted(wanted.items()):
            if volume not in run.volumes:
                self._op("make volume %s (node %s, %s)" % (volume, node, spec["target"]))
                if not self.dry_run:
                    engine.create_volume(run.cli, volume, engine.volume_labels(self.project, self.name, node, spec))
        keeps = dict((volume, spec["keep"]) for volume, (_node, spec) in wanted.items())
        if keeps != (files.read_json(self.paths.volumes) or {}) and not self.dry_run and (keeps or run.volumes):
            files.write_json(self.paths.volumes, keeps)

    def stage_stale_volumes(self, run):
        """Named volumes of the experiment no node here mounts any more (removed from the file, or
        their node gone): removed, unless made with keep."""
        wanted = self.wanted_volumes()
        for volume, labels in sorted(run.volumes.items()):
            if volume in wanted or labels.get(names.LABEL_KEEP) == "true":
                continue
            self._op("remove volume %s (no longer in the experiment)" % volume)
            if not self.dry_run and not engine.remove_volume(run.cli, volume):
                self.warnings.append("volume %s is still in use by a container: left in place" % volume)

    def stage_nodes(self, run):
        """Every node created or recreated, started and plumbed, in a thread pool; a node that
        cannot start is dead (with the engine's reason), the others go on."""
        run.results = {}
        self._unchanged = self._unchanged_nodes(run)
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            # in start order: a wave starts once the nodes it depends_on have started and are plumbed
            for wave in start_waves(self.plan, self.nodes):
                futures = dict((node, pool.submit(self._converge_node, run.cli, node, run.actual.get(node),
                                                  run.images, run.image_ids, run.bridges, run.host_links,
                                                  run.allocations[node]))
                               for node in wave)
                for node, fut in futures.items():
                    try:
                        run.results[node] = fut.result()
                    except Exception as exc:  # reported as dead, after every node had its go
                        self.dead[node] = engine.describe_error(exc)

    def _unchanged_nodes(self, run):
        """node -> its result of the previous converge, for the nodes that converge left exactly as
        planned now: the converge finished, the planned node is the same, its control veth exists
        and each host-side end sits on its LAN's bridge with its alias, state and MTU (one link
        dump for the host, no netns entry). ``_converge_node`` still checks the container and its
        process are the same ones; then it skips plumbing that node (a no-change re-run)."""
        prev = run.previous or {}
        if prev.get("state") not in ("ready", "degraded") or self.dry_run:
            return {}
        prev_nodes, prev_plan = prev.get("nodes") or {}, (prev.get("plan") or {}).get("nodes") or {}
        unchanged = {}
        for node in self.nodes:
            rec, planned = prev_nodes.get(node), self.plan["nodes"][node]
            if not rec or not rec.get("pid") or not rec.get("control_veth") or prev_plan.get(node) != planned \
                    or rec["control_veth"] not in run.link_names:
                continue
            for iface in planned["interfaces"]:
                link = run.host_links.get(iface["veth"])
                if link is None or link["master"] != run.bridges.get(iface["lan"]) or link["alias"] != iface["alias"] \
                        or link["up"] == bool(iface.get("down")) or (iface.get("mtu") and link["mtu"] != iface["mtu"]):
                    break
            else:
                unchanged[node] = rec
        return unchanged

    def stage_shaping(self, run):
        self._ensure_shaping(run.results)

    def stage_control_plane(self, run):
        self._ensure_control_plane(run.results)

    def stage_ready(self, run):
        self._mark_ready(run.results)

    def stage_record(self, run):
        record = self._record_head()
        record.update(state="degraded" if self.dead else "ready", nodes=run.results, dead=self.dead,
                      updated=time.time())
        if not self.dry_run:
            write_record(self.paths, record)
        return record

    def _allocate(self, cli):
        """Control network, then each node's control address, exec address and SSH port."""
        details = dict((node, {"container": self.plan["nodes"][node]["container"],
                               "keys_file": control.keys_path(self.control, self.plan["nodes"][node]["container"]),
                               "record": self.paths.record, "own_sshd": self.own_sshd(node)})
                       for node in self.nodes)
        with file_lock(control.host_lock_path(self.control)):
            ops, subnet = engine.ensure_control_network(cli, self.control["control_subnet"], self.dry_run)
            self._ops(ops)
            state = control.load_state(self.control)
            if self.nodes or state.get("control_interface"):
                with self._iproute() as ipr:
                    try:
                        self._ops(control.ensure_control_interface(ipr, state, self.control, self.dry_run))
                    except control.ControlError as exc:
                        raise SliceError("host %s: %s" % (self.host, exc))
            control.release(state, self.project, self.name, keep=self.nodes)
            allocations = control.allocate(state, self.project, self.name, details, self.control, subnet)
            if not self.dry_run:
                control.save_state(self.control, state)
        return allocations

    def _ensure_shaping(self, results):
        """tc on the host end of every attachment of the nodes that are up (one qdisc dump)."""
        attachments = []
        for node in self.nodes:
            if node not in results or "pid" not in results[node]:
                continue
            for iface in self.plan["nodes"][node]["interfaces"]:
                attachments.append({"veth": iface["veth"], "to_node": iface.get("to_node"),
                                    "from_node": iface.get("from_node"), "alias": iface["alias"],
                                    "ifb": iface["ifb"]})
        for nic, (_lan, port) in sorted(self.my_ports().items()):
            if port.get("to_node") or port.get("from_node"):  # an unshaped NIC keeps its own qdiscs
                attachments.append({"veth": nic, "to_node": port.get("to_node"), "from_node": port.get("from_node"),
                                    "alias": port["alias"], "ifb": port["ifb"]})
        if not attachments:
            return
        with self._iproute() as ipr:
            self._ops(shaping.apply_many(ipr, attachments, self.dry_run))

    def _ensure_control_plane(self, results):
        """Firewall rules (LANs, SSH ports, anti-spoofing), exec addresses and the exec sshd."""
        desired = {names.LAN_CHAIN: firewall.lan_rules([self.plan["lans"][lan]["bridge"] for lan in self.lans])}
        for node, result in sorted(results.items()):
            alloc = dict(result["allocation"], exec_port=self.control["exec_port"])
            for chain, rules in control.node_rules(alloc, result.get("control_veth"), result.get("control_mac"),
                                                   own_sshd=self.own_sshd(node)).items():
                desired.setdefault(chain, []).extend(rules)
        with file_lock(control.host_lock_path(self.control)):
            state = control.load_state(self.control)
            hairpin = any(entry.get("own_sshd") for entry in state["nodes"].values())
            if hairpin:
                self._ops(control.ensure_hairpin(self.dry_run))
            self._ops(firewall.ensure_rules(self.owner, desired, self.dry_run))
            self._ops(firewall.ensure_rules(control.HOST_OWNER, control.host_rules(self.control, hairpin),
                                            self.dry_run))
            with self._iproute() as ipr:
                self._ops(control.ensure_exec_addresses(ipr, state, self.control, self.dry_run))
            self._ops(control.ensure_sshd(state, self.control, self.dry_run))

    def own_sshd(self, node):
        """Does the node run its own SSH server (level ``full``)? Else SSH is exec style."""
        return self.plan["nodes"][node]["augment"] == "full"

    def ssh_command(self, node, allocation):
        """How a person reaches the node: as the experiment's first user on ``full`` nodes."""
        users = self.plan.get("users") or []
        user = users[0]["name"] if self.own_sshd(node) and users else "root"
        return "ssh -p %d %s@%s" % (allocation["port"], user, self.public_address)

    def _record_head(self):
        return {"version": RECORD_VERSION, "project": self.project, "name": self.name, "host": self.host,
                "plan": self.plan, "public_address": self.public_address}

    def reconverge(self, nodes):
        """Re-plumb ``nodes`` after their containers started again (the host agent's job).

        Same steps as converge for those nodes (interfaces, addresses, routes, shaping, ready
        marker), then the experiment's firewall rules, which name every node's control veth.
        Creates and removes no container.
        """
        with self._lock("re-plumbing by the host agent"):
            cli = self._client()
            actual = engine.list_nodes(cli, self.project, self.name)
            state = control.load_state(self.control)
            with self._iproute() as ipr:
                host_links = netlink.owned_links(ipr, self.plan["kernel_prefix"])
            bridges = dict((lan, host_links[self.plan["lans"][lan]["bridge"]]["index"]) for lan in self.lans
                           if self.plan["lans"][lan]["bridge"] in host_links)
            results = {}

            def inspect(node, replumb):
                alloc = state["nodes"].get(control.node_key(self.project, self.name, node))
                ctr = actual.get(node)
                pid = engine.container_pid(ctr) if ctr is not None and alloc else None
                if pid is None:
                    return
                if replumb:
                    control_veth, control_mac = self.plumb(node, pid, bridges, host_links)
                else:
                    control_veth, control_mac = self.control_interface(pid)
                results[node] = {"allocation": alloc, "pid": pid, "control_veth": control_veth,
                                 "control_mac": control_mac}

            # the started nodes first: when they are current (the slice module started and
            # plumbed them itself), nothing else is looked at
            for node in self.nodes:
                if node in nodes:
                    inspect(node, True)
            if not self.ops and self._already_current(results, nodes):
                return []
            for node in self.nodes:
                if node not in nodes:
                    inspect(node, False)
            self._ensure_shaping(dict((n, r) for n, r in results.items() if n in nodes))
            self._ensure_control_plane(results)
            self._mark_ready(dict((n, r) for n, r in results.items() if n in nodes))
            return self.ops

    def _already_current(self, results, nodes):
        """Plumbing found nothing to do: are the anti-spoofing rules on the nodes' current
        control veths and their ready markers there? Then nothing else can be stale."""
        rules = " ".join(" ".join(args) for args in
                         firewall.owned_rules(names.SPOOF_CHAIN[0], names.SPOOF_CHAIN[1], self.owner).values())
        for node in nodes:
            result = results.get(node)
            if result is None:
                continue
            if result["control_veth"] and (result["control_veth"] + " ") not in rules + " ":
                return False
            if self.plan["nodes"][node]["augment"] != "none" and not augment.is_ready(result["pid"]):
                return False
        return True

    def _mark_ready(self, results):
        """Let start commands run: only once the whole slice is plumbed, shaped and firewalled,
        so a start command finds its peers reachable (decision 11); in start order (depends_on):
        a wave's start commands once the previous wave's have started."""
        waves = start_waves(self.plan, [n for n in self.nodes if n in results])
        for i, wave in enumerate(waves):
            marked = []
            for node in sorted(wave):
                result = results[node]
                if result.get("pid") and self.plan["nodes"][node]["augment"] != "none" and not self.dry_run \
                        and augment.mark_ready(result["pid"]):
                    self._op("%s: interfaces ready, start command may run" % node)
                    marked.append(node)
            if i + 1 < len(waves):
                self._wait_started(dict((n, results[n]["pid"]) for n in marked))

    def _wait_started(self, pids, timeout=START_ORDER_TIMEOUT):
        """Until the supervisors of ``pids`` (node -> pid) have started their start commands."""
        deadline = time.time() + timeout
        for node, pid in sorted(pids.items()):
            while time.time() < deadline:
                try:
                    if augment.read_status(pid).get("start_state") not in (None, "waiting"):
                        break
                except (augment.AugmentError, OSError):  # gone or not augmented: nothing to wait for
                    break
                time.sleep(0.05)
            else:
                self.warnings.append("the start command of %s had not started after %d s: the nodes that depend on "
                                     "it start theirs anyway" % (node, timeout))
                return

    def control_interface(self, pid):
        """Host-side name and MAC of a node's eth0."""
        with netlink.node_netns(pid) as ns:
            eth0 = netlink.links(ns).get("eth0")
        return self._host_end(eth0)

    def _host_end(self, eth0):
        """(host-side name, MAC) of a node's eth0 (its veth peer on dockercnet), or (None, None)."""
        if eth0 is None or not eth0["link"]:
            return None, None
        peer = self._host_ipr().get_links(eth0["link"])
        return (netlink.attr(peer[0], "IFLA_IFNAME") if peer else None), eth0["mac"]

    def _remove_stale_nodes(self, actual):
        stale = [n for n in actual if n not in self.nodes]
        for node in sorted(stale, key=str):
            self._op("remove node %s (container %s)" % (node, actual[node].name))
            if not self.dry_run:
                engine.remove_container(actual.pop(node))
                shutil.rmtree(self.paths.node_dir(node), ignore_errors=True)

    def _remove_stale_links(self, ipr, host_links):
        wanted = set(self.plan["lans"][lan]["bridge"] for lan in self.lans)
        wanted.update(self.plan["lans"][lan]["vxlan"] for lan in self.lans if self.plan["lans"][lan].get("vxlan"))
        wanted.update(self.plan["lans"][lan]["vlan"] for lan in self.lans if self.plan["lans"][lan].get("vlan"))
        for node in self.nodes:
            for iface in self.plan["nodes"][node]["interfaces"]:
                wanted.add(iface["veth"])
                if iface.get("from_node"):
                    wanted.add(iface["ifb"])
        wanted.update(port["ifb"] for _lan, port in self.my_ports().values() if port.get("from_node"))
        for _lan, port in self.my_ports().values():
            if port.get("stack"):  # the veth pair to the host's own stack is ours
                wanted.update((port["stack"], port["interface"]))
        owner = names.alias_prefix(self.project, self.name)
        for link_name, info in sorted(host_links.items()):
            if link_name in wanted:
                continue
            if not info["alias"].startswith(owner):
                raise SliceError("interface %s has our name prefix but belongs to %r: refusing to touch it"
                                 % (link_name, info["alias"]))
            self._op("remove %s %s (%s)" % (info["kind"] or "link", link_name, info["alias"]))
            if not self.dry_run:
                netlink.delete_link(ipr, link_name)
                host_links.pop(link_name)

    def _ensure_bridges(self, ipr, host_links):
        indexes = {}
        for lan in self.lans:
            spec = self.plan["lans"][lan]
            self._ops(netlink.ensure_bridge(ipr, spec["bridge"], spec["alias"], host_links, self.dry_run))
            found = ipr.link_lookup(ifname=spec["bridge"])
            indexes[lan] = found[0] if found else None  # None: not yet made (check mode)
            if spec.get("vlan"):
                self._ops(netlink.ensure_vlan(ipr, spec["vlan"], spec["vid"], self.plan["trunks"][self.host],
                                              indexes[lan], spec["tunnel_alias"], host_links, self.dry_run))
            elif spec.get("vxlan"):
                remotes = [self.plan["tunnels"][h] for h in spec["hosts"] if h != self.host]
                self._ops(netlink.ensure_vxlan(ipr, spec["vxlan"], spec["vni"], self.plan["tunnels"][self.host],
                                               remotes, indexes[lan], spec["tunnel_alias"], host_links,
                                               self.dry_run))
        return indexes

    def _converge_node(self, cli, node_name, ctr, images, image_ids, bridges, host_links, allocation):
        node = self.plan["nodes"][node_name]
        ref = images[(node["image"], node["augment"])]
        kwargs, digest = engine.container_spec(self.plan, node_name, image_ids[ref], self.paths.hosts(node_name),
                                               allocation["address"], ref)
        accounts_changed = False
        for bind in node.get("binds") or ():
            if not os.path.exists(bind["source"]):
                raise SliceError("bind source %s does not exist on host %s: create it there, or change the node's "
                                 "binds" % (bind["source"], self.host))
            real = os.path.realpath(bind["source"])
            if defaults.host_only(real):
                raise SliceError("bind source %s leads to %s on host %s, which is the host's own: a node may bind "
                                 "only its experiment's files" % (bind["source"], real, self.host))
        if node["augment"] != "none":
            node_dir = os.path.join(self.paths.node_dir(node_name), "testbed")
            if augment.write_start_command(node_dir, node.get("start"), self.dry_run):
                self._op("write %s start command" % node_name)
            if augment.write_app_overrides(node_dir, node, self.dry_run):
                self._op("write %s entrypoint, user and workdir" % node_name)
            if node["augment"] == "full":
                accounts_changed = services.write_accounts(node_dir, self.plan.get("users") or [],
                                                           self.plan.get("ssh_keys", []), self.dry_run)
                if accounts_changed:
                    self._op("write %s accounts and keys" % node_name)
                if services.ensure_host_key(node_dir, augment.dropbear_path(), self.dry_run):
                    self._op("make %s SSH host key" % node_name)
            kwargs = augment.merge_kwargs(kwargs, augment.runtime_kwargs(node_dir, app_restart=node.get("restart")))
        result = {"container_name": node["container"], "allocation": allocation,
                  "control_address": allocation["address"], "ssh_port": allocation["port"],
                  "ssh": self.ssh_command(node_name, allocation)}
        if ctr is not None:
            # its settings hash decides a recreate; its limits (from the engine) change in place
            verdict, detail = engine.in_place_changes(ctr, node, digest, engine.node_settings(
                self.plan, node_name, image_ids[ref], self.paths.hosts(node_name), allocation["address"]))
            if verdict == "recreate":
                self._op("recreate node %s (%s)" % (node_name, detail))
                if not self.dry_run:
                    engine.remove_container(ctr)
                ctr = None
            elif detail:
                self._op("update node %s limits (%s)" % (node_name, engine.describe_changes(detail)))
                if not self.dry_run:
                    warnings, refused = engine.update_limits(cli, ctr.id, detail)
                    self.warnings.extend("node %s: %s" % (node_name, warning) for warning in warnings)
                    for field, error in refused:
                        self.warnings.append(engine.refusal_words(node_name, field, detail, error))
        if ctr is None:
            self._op("create node %s" % node_name)
            if self.dry_run:
                return result
            ctr = cli.containers.create(**kwargs)
            self.progress.count("created")
        pid = engine.container_pid(ctr) if ctr.status == "running" else None
        if pid is None:
            self._op("start node %s" % node_name)
            if self.dry_run:
                return dict(result, container=ctr.id)
            cli.api.start(ctr.id)
            self.progress.count("started")
            pid = engine.container_pid(ctr)
        elif accounts_changed and not self.dry_run:
            # a running node reads its accounts at start: have it create the new ones now
            engine.exec_run(cli, ctr.id, [augment.TB + "/bin/sh", augment.TB + "/services/sshd", "--accounts"])
        if pid is None:
            raise SliceError("its main process exited at start: %s (docker logs %s)"
                             % (engine.exit_reason(ctr), node["container"]))
        same = (self._unchanged or {}).get(node_name)
        if same and same.get("container") == ctr.id and same.get("pid") == pid and not accounts_changed:
            control_veth, control_mac = same["control_veth"], same.get("control_mac")
        else:
            control_veth, control_mac = self.plumb(node_name, pid, bridges, host_links)
        self.progress.count("plumbed")
        return dict(result, container=ctr.id, pid=pid, control_veth=control_veth, control_mac=control_mac)

    def plumb(self, node_name, pid, bridges, host_links):
        """Interfaces, addresses and routes of one running node; idempotent.

        Returns the host-side name and the MAC of the node's control interface (eth0).
        """
        node = self.plan["nodes"][node_name]
        host = self._host_ipr()
        with netlink.node_netns(pid) as ns:
            ns_links = netlink.links(ns)
            for iface in node["interfaces"]:
                for op in netlink.plumb_interface(host, ns, pid, iface, bridges[iface["lan"]], iface["alias"], host_links,
                                                  ns_links, self.dry_run):
                    self._op("%s: %s" % (node_name, op))
            wanted = set(i["ifname"] for i in node["interfaces"])
            for op in netlink.remove_stray_interfaces(ns, wanted, ns_links, self.dry_run):
                self._op("%s: %s" % (node_name, op))
            for op in netlink.ensure_routes(ns, node["routes"], self.dry_run):
                self._op("%s: %s" % (node_name, op))
            eth0 = ns_links.get("eth0")
        return self._host_end(eth0)


def release_port(ipr, nic, known, dry_run=False):
    """Give a host's NIC back as it was before it joined a LAN: its shaping removed (when it was
    shaped), out of the bridge, down again if it was down."""
    found = ipr.link_lookup(ifname=nic)
    if not found:
        return []
    ops = []
    if known.get("shaped"):
        ops.extend(shaping.apply(ipr, nic, None, None, dry_run=dry_run, ifb=known.get("ifb")))
    link = ipr.get_links(found[0])[0]
    if netlink.attr(link, "IFLA_MASTER"):
        ops.append("detach %s from LAN %s" % (nic, known.get("lan")))
        if not dry_run:
            ipr.link("set", index=found[0], master=0)
    if not known.get("up", True) and link["flags"] & 1:
        ops.append("set %s down (as it was)" % nic)
        if not dry_run:
            ipr.link("set", index=found[0], state="down")
    return ops


def remove_volumes(cli, paths, project, name, dry_run=False):
    """The experiment's named volumes, except those to keep (keep: true in the file of the last
    swap-in, else the volume's label)."""
    keeps = files.read_json(paths.volumes) or {}
    ops = []
    for volume, labels in sorted(engine.list_volumes(cli, project, name).items()):
        if keeps.get(volume, labels.get(names.LABEL_KEEP) == "true"):
            ops.append("keep volume %s (keep: true)" % volume)
            continue
        ops.append("remove volume %s" % volume)
        if not dry_run and not engine.remove_volume(cli, volume):
            raise SliceError("volume %s is still in use by a container: remove that container, then tear down again"
                             % volume)
    return ops


def release_control(project, name, cfg, dry_run=False):
    """Give back the experiment's ports and addresses; stop the exec sshd when no node is left."""
    state = control.load_state(cfg)
    gone = control.release(state, project, name)
    ops = ["release SSH port and control address of %s" % key for key in gone]
    if dry_run:
        return ops
    with netlink.IPRoute() as ipr:
        if not state["nodes"]:  # the last node of the host: the control LAN's NIC back as it was
            detached = control.release_control_interface(ipr, state)
            ops.extend(detached)
            gone = gone or detached
        if gone:
            control.save_state(cfg, state)
        ops.extend(control.ensure_exec_addresses(ipr, state, cfg))
    if state["nodes"]:
        ops.extend(control.ensure_sshd(state, cfg))
    else:
        ops.extend(control.stop_sshd(cfg))
        ops.extend(firewall.remove_rules(control.HOST_OWNER))
    return ops


def teardown(project, name, state_dir=DEFAULT_STATE_DIR, dry_run=False, workers=8, control_settings=None,
             lock_timeout=None):
    """Remove everything the experiment owns on this host: found by label, name prefix and comment."""
    paths = Paths(state_dir, project, name)
    ops = []
    with file_lock(paths.lock, lock_timeout, "teardown", "experiment %s/%s" % (project, name)):
        cli = engine.client(pool_size=workers * 2)
        doomed = sorted(engine.list_nodes(cli, project, name).items(), key=lambda kv: str(kv[0]))
        ops.extend("remove node %s (container %s)" % (node, ctr.name) for node, ctr in doomed)
        if not dry_run:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                list(pool.map(engine.remove_container, [ctr for _node, ctr in doomed]))
        ops.extend(remove_volumes(cli, paths, project, name, dry_run))
        owner = names.alias_prefix(project, name)
        with netlink.IPRoute() as ipr:
            for nic, known in sorted((files.read_json(paths.ports) or {}).items()):
                ops.extend(release_port(ipr, nic, known, dry_run))
            for link_name, info in sorted(netlink.owned_links(ipr, names.kernel_prefix(project, name)).items()):
                if not info["alias"].startswith(owner):
                    raise SliceError("interface %s has this experiment's name prefix but belongs to %r: "
                                     "refusing to remove it" % (link_name, info["alias"]))
                if dry_run or netlink.delete_link(ipr, link_name):
                    ops.append("remove %s %s (%s)" % (info["kind"] or "link", link_name, info["alias"]))
        ops.extend(preflight.sweep_probes(dry_run))  # a swap-in killed in its preflight left them
        cfg = control.settings(control_settings)
        with file_lock(control.host_lock_path(cfg)):
            ops.extend(firewall.remove_rules(names.firewall_comment(project, name), dry_run))
            ops.extend(release_control(project, name, cfg, dry_run))
        if os.path.exists(paths.root):
            ops.append("remove state %s" % paths.root)
            if not dry_run:
                shutil.rmtree(paths.root)
                _remove_empty_parents(paths.root, state_dir)
    # The lock file stays: unlinking it would let a waiting converge hold a lock on a deleted file.
    return ops


def _remove_empty_parents(path, stop):
    parent = os.path.dirname(path)
    while parent.startswith(stop) and parent != stop:
        try:
            os.rmdir(parent)
        except OSError:
            return
        parent = os.path.dirname(parent)


LOG_TAIL_LINES = 10
BOOT_POLL_SECONDS = 0.25
# a node the engine restarted (its restart policy) is booted only once its run lasted this long
RESTART_SETTLE_SECONDS = 3


def run(params, check_mode):
    """What module experiment_slice does with its parameters: converge the host's slice (and
    wait for its nodes to boot when ``boot_timeout`` is given) or tear it down. Returns
    (operations, the module's other results, warnings)."""
    workers = max(1, params["workers"])
    if params["state"] != "present":
        plan = params["plan"] or {}
        ops = teardown(params["project"] or plan.get("project"), params["name"] or plan.get("name"),
                       params["state_dir"], check_mode, workers, params["control"], params["lock_timeout"])
        return ops, {}, []
    slice_ = Slice(params["plan"], params["host"], params["state_dir"], check_mode, workers, params["control"],
                   params["public_address"], params["registry"], params["lock_timeout"])
    record = slice_.converge()
    extra = {"record": record, "dead": slice_.dead, "timings": slice_.timings}
    warnings = list(slice_.warnings) + ["node %s is dead: %s" % (node, reason)
                                        for node, reason in sorted(slice_.dead.items())]
    if params["boot_timeout"] is not None:
        nodes, waited = wait_booted(slice_.project, slice_.name, params["state_dir"],
                                    0 if check_mode else max(0, params["boot_timeout"]))
        extra["status"] = {"nodes": list(nodes.values()), "boot_waited": round(waited, 2)}
    return slice_.ops, extra, warnings


def wait_booted(project, name, state_dir=DEFAULT_STATE_DIR, timeout=0, poll=BOOT_POLL_SECONDS, with_resources=True):
    """The status of the slice once every node is booted or dead, or ``timeout`` seconds passed
    (then the nodes still running are not booted: the report says so), with (``with_resources``)
    what each running node uses, read once at the end (add_resources).  Returns (report, seconds
    waited), the reading's pause not counted in them."""
    started = time.time()
    while True:
        report, pids = _read_status(project, name, state_dir)
        waiting = [n for n, entry in report.items() if entry["state"] == "running"]
        if not waiting or time.time() - started >= timeout:
            waited = time.time() - started
            if with_resources:
                add_resources(report, pids)
            return report, waited
        time.sleep(poll)


def status(project, name, state_dir=DEFAULT_STATE_DIR, with_resources=True):
    """Each node of this host's slice: dead, running (not yet plumbed) or booted, and with
    ``with_resources`` what the running ones use (add_resources)."""
    report, pids = _read_status(project, name, state_dir)
    if with_resources:
        add_resources(report, pids)
    return report


def add_resources(report, pids):
    """Each running node's ``resources``: CPU use (percent of one CPU, over resources.SAMPLE_SECONDS),
    memory use, the limits its cgroup has and its processes, from two cgroup readings of all
    nodes at once (``pids``: node -> the pid of its main process)."""
    for node, used in resources.sample(pids).items():
        report[node]["resources"] = used


def _read_status(project, name, state_dir, workers=8):
    """(node -> status entry, node -> pid of the running ones).

    A node's interfaces are read from the host side, in one link dump for the whole slice (not a
    netns entry per node): an interface is there when its host end is, with its peer in another
    namespace (a veth's two ends live and die together, and a node's namespace takes its ends
    with it when it goes). The running nodes' processes are inspected ``workers`` at a time."""
    paths = Paths(state_dir, project, name)
    record = read_record(paths)
    if record is None:
        return {}, {}
    plan = record["plan"]
    cli = engine.client()
    actual = engine.list_nodes(cli, project, name)
    mine = slice_of(plan, record["host"])
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        found = dict(zip(mine, pool.map(lambda n: engine.container_pid(actual[n]) if n in actual else None, mine)))
    host_links = {}
    if any(pid is not None for pid in found.values()):
        with netlink.IPRoute() as ipr:
            host_links = netlink.owned_links(ipr, plan["kernel_prefix"])
    report, pids = {}, {}
    for node_name in mine:
        node = plan["nodes"][node_name]
        ctr, pid = actual.get(node_name), found[node_name]
        entry = {"node": node_name, "host": record["host"], "container": node["container"],
                 "addresses": ["%s/%d" % (i["address"], i["prefixlen"]) for i in node["interfaces"]],
                 "interfaces": dict((i["ifname"], i["lan"]) for i in node["interfaces"])}
        if pid is None:
            entry["state"] = "dead"
            entry["reason"] = engine.exit_reason(ctr) if ctr is not None else \
                (record.get("dead") or {}).get(node_name, "no container")
            if ctr is not None:
                entry["log"] = engine.log_tail(ctr, LOG_TAIL_LINES)
        else:
            plumbed = all(netlink.attached(host_links.get(i["veth"])) for i in node["interfaces"])
            if node.get("augment", "none") != "none":
                try:
                    st = augment.read_status(pid)
                except augment.AugmentError:
                    st = {}
                plumbed = plumbed and st.get("ready") == "yes"
                entry["start"] = st.get("start_state", "unknown")
                if st.get("start_exit") is not None:
                    entry["start_exit"] = st.get("start_exit")
                entry["app"] = st.get("app", "unknown")
                if node.get("augment") == "full":
                    entry["sshd"] = st.get("service_sshd", "unknown")  # running | exited:N
            if plumbed and engine.restarted_within(ctr, RESTART_SETTLE_SECONDS):
                plumbed = False  # up for a moment between the engine's restarts: look again
            entry["state"] = "booted" if plumbed else "running"
            entry["container_id"] = ctr.id
            pids[node_name] = pid
        recorded = (record.get("nodes") or {}).get(node_name) or {}
        for key in ("ssh", "control_address", "ssh_port"):
            if key in recorded:
                entry[key] = recorded[key]
        report[node_name] = entry
    return report, pids
