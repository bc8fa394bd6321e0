# -*- coding: utf-8 -*-
# Copyright: testbed.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Docker engine, through the Docker SDK for Python: node containers and the control network."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import calendar
import hashlib
import json
import re
import time

try:
    import docker
    from docker.errors import APIError, ImageNotFound, NotFound
    HAS_DOCKER = True
except ImportError:  # pragma: no cover - reported by the modules
    docker = None
    APIError = ImageNotFound = NotFound = Exception
    HAS_DOCKER = False

from ansible_collections.testbed.containers.plugins.module_utils import defaults, names, resources

# Bump when the container spec changes meaning, so nodes converge to the new spec.  Version 3:
# the resource limits left the settings hash (a change of them is a docker update, not a recreate).
SPEC_VERSION = 3
# The hash before version 3 (cpus and memory always in it, pids when not the default): a node made
# with it is current when its hash, made again with the limits the engine shows for the node
# (legacy_digests), matches; its limits then converge in place like any other node's.  Only while
# SPEC_VERSION is 3: a later bump recreates those nodes as it recreates every other.
LEGACY_SPEC_VERSION, LIMITS_SPLIT_VERSION = 2, 3
# A node's resource limits, in the order the operations name them
LIMIT_FIELDS = ("cpus", "memory", "pids", "cpu_shares", "blkio_weight")
# ... and their names in the engine's HostConfig and update request (cpus in nano CPUs)
ENGINE_LIMITS = {"cpus": "NanoCpus", "memory": "Memory", "pids": "PidsLimit", "cpu_shares": "CpuShares",
                 "blkio_weight": "BlkioWeight"}
NODE_CAPS = ["NET_ADMIN", "NET_RAW"]
CONTROL_SUBNET_LABEL = "testbed.control-subnet"


class EngineError(Exception):
    pass


def client(pool_size=16):
    try:
        cli = docker.from_env(timeout=300, max_pool_size=pool_size)
        cli.ping()
    except Exception as exc:
        raise EngineError("cannot reach the Docker engine (%s): is dockerd running on this host?" % exc)
    return cli


def ensure_control_network(cli, subnet, dry_run=False):
    """The host's ``dockercnet`` bridge network; inter-node traffic on it off (enable_icc=false).

    Returns (operations, the network's subnet): an existing network keeps its subnet.
    """
    try:
        net = cli.networks.get(names.CONTROL_NETWORK)
        subnet = (net.attrs.get("Labels") or {}).get(CONTROL_SUBNET_LABEL)
        if not subnet:
            # Static control addresses need a network created with a configured subnet.
            raise EngineError("the Docker network %s was not made by this version of testbed.containers: remove "
                              "it (docker network rm %s) once no container uses it, and run again"
                              % ((names.CONTROL_NETWORK,) * 2))
        return [], subnet
    except NotFound:
        pass
    if not dry_run:
        ipam = docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(subnet=subnet)])
        try:
            cli.networks.create(names.CONTROL_NETWORK, driver="bridge", ipam=ipam, labels={"testbed.owner": "testbed", CONTROL_SUBNET_LABEL: subnet},
                                options={"com.docker.network.bridge.enable_icc": "false",
                                         "com.docker.network.bridge.name": names.CONTROL_NETWORK})
        except APIError as exc:
            raise EngineError("cannot create the control network %s on %s: %s; choose another "
                              "testbed_control_subnet" % (names.CONTROL_NETWORK, subnet, exc.explanation or exc))
    return ["create control network %s (%s)" % (names.CONTROL_NETWORK, subnet)], subnet


def experiment_filters(project, name):
    return {"label": ["%s=%s" % (names.LABEL_PROJECT, project), "%s=%s" % (names.LABEL_EXPERIMENT, name)]}


class NodeContainer:
    """A node's container as one list call shows it (no inspect per container)."""

    def __init__(self, cli, summary):
        self.cli, self.id = cli, summary["Id"]
        self.labels = summary.get("Labels") or {}
        self.name = summary["Names"][0].lstrip("/") if summary.get("Names") else self.id[:12]
        self.status = summary.get("State")
        self._full = None

    def full(self):
        if self._full is None:
            self._full = self.cli.containers.get(self.id)
        return self._full


def list_nodes(cli, project, name):
    """node name -> NodeContainer (running or not) of the experiment on this host; one API call."""
    found = {}
    for summary in cli.api.containers(all=True, filters=experiment_filters(project, name)):
        ctr = NodeContainer(cli, summary)
        found[ctr.labels.get(names.LABEL_NODE)] = ctr
    return found


def has_image(cli, ref):
    try:
        cli.images.get(ref)
        return True
    except ImageNotFound:
        return False


def image_ids(cli, images):
    """image reference -> image id; raises naming every image the host lacks."""
    ids, missing = {}, []
    for ref in sorted(set(images)):
        try:
            ids[ref] = cli.images.get(ref).id
        except ImageNotFound:
            missing.append(ref)
    if missing:
        raise EngineError("image(s) not found on this host: %s; build or load them first "
                          "(scripts/build-images.sh builds the project's own)" % ", ".join(missing))
    return ids


def node_settings(plan, node_name, image_id, hosts_path, control_address=None):
    """What a node's container is made with that only a recreate changes (its hash is the
    ``testbed.config-hash`` label): not its resource limits (limit_changes) nor its LAN
    membership, addresses and routes, which converge in place."""
    node = plan["nodes"][node_name]
    hashed = {
        "image": node["image"], "image_id": image_id, "command": node["command"], "forwarding": node["forwarding"],
        "env": node["env"], "hosts": hosts_path, "control_address": control_address,
    }
    if node.get("restart"):  # only when set: nodes without it keep their hash across versions
        hashed["restart"] = node["restart"]
    for key in defaults.CONTAINER_KEYS:  # likewise: only the ones the node sets
        if key in node and key not in defaults.LIMIT_KEYS:
            hashed[key] = node[key]
    if node.get("volumes"):  # likewise; keep is not a setting of the container
        hashed["volumes"] = [[v["volume"], v["target"], v["read_only"]] for v in node["volumes"]]
    project = project_mount(plan, node_name)
    if project:
        hashed["project_dir"] = project
    return hashed


def project_mount(plan, node_name):
    """(host directory, node path) of the project's shared directory in a node, or None."""
    project = (plan.get("storage") or {}).get("project")
    if not project:
        return None
    return [project["sources"][plan["nodes"][node_name]["host"]], project["path"]]


def _digest(hashed):
    return hashlib.sha256(json.dumps(hashed, sort_keys=True).encode("utf-8")).hexdigest()[:16]


def legacy_digests(settings, host_config):
    """The version-2 hashes a node made before the limits left the hash would carry, given its
    ``settings`` (node_settings) and the limits its container has (``HostConfig`` of an
    inspect): one per way the file may have written its cpus (``1`` or ``1.0``)."""
    if SPEC_VERSION != LIMITS_SPLIT_VERSION:
        return []
    nano = host_config.get("NanoCpus") or 0
    forms = [None] if not nano else [nano / 1e9] + ([nano // 10 ** 9] if nano % 10 ** 9 == 0 else [])
    hashed = dict(settings, version=LEGACY_SPEC_VERSION, memory=host_config.get("Memory") or None)
    pids = host_config.get("PidsLimit")
    if pids and pids > 0 and pids != defaults.NODE_PIDS:
        hashed["pids"] = pids
    return [_digest(dict(hashed, cpus=cpus)) for cpus in forms]


def container_spec(plan, node_name, image_id, hosts_path, control_address=None, image_ref=None):
    """The keyword arguments of containers.create for a node, and the hash of its settings (a
    label, node_settings): a node is recreated only when that hash changes."""
    node = plan["nodes"][node_name]
    digest = _digest(dict(node_settings(plan, node_name, image_id, hosts_path, control_address),
                          version=SPEC_VERSION))
    labels = {
        names.LABEL_PROJECT: plan["project"],
        names.LABEL_EXPERIMENT: plan["name"],
        names.LABEL_NODE: node_name,
        names.LABEL_CONFIG: digest,
    }
    kwargs = {
        "image": image_ref or node["image"],
        "command": node["command"],
        "name": node["container"],
        "hostname": node_name,
        "labels": labels,
        "detach": True,
        "network": names.CONTROL_NETWORK,
        "cap_add": NODE_CAPS,
        "restart_policy": {"Name": "unless-stopped"},
        # mounts, not volumes: the SDK copies volumes into Config.Volumes, which a docker commit
        # of the node would bake into the image as VOLUME
        "mounts": [docker.types.Mount("/etc/hosts", hosts_path, type="bind", read_only=True)],
        "environment": node["env"] or None,
        "sysctls": {"net.ipv4.ip_forward": "1" if node["forwarding"] else "0"},
    }
    if control_address:
        kwargs["networking_config"] = {names.CONTROL_NETWORK: docker.types.EndpointConfig(
            "1.41", ipv4_address=control_address)}
    limits = node_limits(node)
    if limits["cpus"]:
        kwargs["nano_cpus"] = nano_cpus(limits["cpus"])
    if limits["memory"]:
        kwargs["mem_limit"] = limits["memory"]
    kwargs["pids_limit"] = limits["pids"]
    if limits["cpu_shares"]:
        kwargs["cpu_shares"] = limits["cpu_shares"]
    if limits["blkio_weight"]:
        kwargs["blkio_weight"] = limits["blkio_weight"]
    add_container_settings(kwargs, node)
    project = project_mount(plan, node_name)
    if project:
        kwargs["mounts"].append(docker.types.Mount(project[1], project[0], type="bind"))
    return kwargs, digest


# --- resource limits: changed in place (docker update) --------------------------------------
def nano_cpus(cpus):
    return int(round(cpus * 1e9))


def node_limits(node):
    """The limits a planned node asks (LIMIT_FIELDS; None: no limit, the engine's default)."""
    return {"cpus": node.get("cpus") or None, "memory": node.get("memory") or None,
            "pids": node.get("pids") or defaults.NODE_PIDS, "cpu_shares": node.get("cpu_shares") or None,
            "blkio_weight": node.get("blkio_weight") or None}


def applied_limits(host_config):
    """The limits a container has, from the ``HostConfig`` of its inspect (no label: a docker
    update changes the limits but cannot change labels)."""
    applied = dict((field, host_config.get(key) or None) for field, key in ENGINE_LIMITS.items())
    if applied["cpus"]:
        applied["cpus"] /= 1e9
    if applied["pids"] is not None and applied["pids"] < 0:  # -1: unlimited
        applied["pids"] = None
    return applied


def limit_changes(wanted, applied):
    """[(field, applied value, wanted value)] of the limits that differ (cpus compared in the
    engine's nano CPUs)."""
    changes = []
    for field in LIMIT_FIELDS:
        have, want = applied.get(field), wanted.get(field)
        if field == "cpus":
            same = (nano_cpus(have) if have else 0) == (nano_cpus(want) if want else 0)
        else:
            same = have == want
        if not same:
            changes.append((field, have, want))
    return changes


def update_bodies(changes):
    """[(field, body of the engine's container update)] making ``changes`` in place, one update
    per field so that a refusal names its field; None when one cannot be made in place: a limit
    removed (to the engine's update, 0 means "unchanged").  Memory takes the swap it gets at
    create (Docker's default: as much swap as memory)."""
    bodies = []
    for field, _have, want in changes:
        if want is None:
            return None
        body = {ENGINE_LIMITS[field]: nano_cpus(want) if field == "cpus" else want}
        if field == "memory":
            body["MemorySwap"] = 2 * want
        bodies.append((field, body))
    return bodies


def format_limit(field, value):
    """A limit for people: ``none``, ``0.5`` (cpus), ``256m`` (memory), ``4096``."""
    if value is None:
        return "none"
    if field == "cpus":
        return "%g" % value
    if field == "memory":
        return resources.format_bytes(value)
    return str(value)


def describe_changes(changes):
    """``cpus 0.5 -> 1, memory 256m -> 512m`` (the operation's words)."""
    return ", ".join("%s %s -> %s" % (field, format_limit(field, have), format_limit(field, want))
                     for field, have, want in changes)


def host_config(ctr):
    """The ``HostConfig`` of a node's container (one inspect, kept by NodeContainer)."""
    return ((ctr.full() if isinstance(ctr, NodeContainer) else ctr).attrs or {}).get("HostConfig") or {}


def in_place_changes(ctr, node, digest, settings):
    """How a node's existing container reaches the plan: ("recreate", why) when its settings
    hash differs (a version-2 hash counts as its own when only the limits differ:
    legacy_digests) or a limit it has must go; else ("update", the limit changes), with no
    change when it is current."""
    label = ctr.labels.get(names.LABEL_CONFIG)
    config = host_config(ctr) if label else {}
    if not label or (label != digest and label not in legacy_digests(settings, config)):
        return "recreate", "its settings changed"
    changes = limit_changes(node_limits(node), applied_limits(config))
    if update_bodies(changes) is None:
        removed = [c for c in changes if c[2] is None]
        return "recreate", "%s cannot be removed in place" % describe_changes(removed)
    return "update", changes


def refusal_words(node_name, field, changes, error):
    """The warning for a limit the engine refused to change in place (update_limits)."""
    change = describe_changes([c for c in changes if c[0] == field])
    hint = ": a limit below what the node uses now cannot be set; lower its use first, or remove the node and " \
        "swap in again" if field == "memory" else ""
    return "node %s: the engine refused to change %s in place (%s); the node keeps its current %s%s" % (
        node_name, change, error, field, hint)


def update_resources(cli, container_id, body):
    """POST /containers/ID/update with ``body`` (the SDK's update_container knows neither
    NanoCpus nor PidsLimit).  Returns the engine's warnings; EngineError in the engine's words."""
    url = "%s/v%s/containers/%s/update" % (cli.api.base_url, cli.api.api_version, container_id)
    try:
        res = cli.api.post(url, json=body, timeout=cli.api.timeout)
    except Exception as exc:  # the engine went away: say so in its words
        raise EngineError(str(exc))
    try:
        data = res.json()
    except ValueError:
        data = {}
    if res.status_code >= 400:
        raise EngineError(_runtime_words((data or {}).get("message") or res.text or res.status_code))
    return list((data or {}).get("Warnings") or [])


def update_limits(cli, container_id, changes):
    """Make the limit ``changes`` (in_place_changes) on a container, field by field.  Returns
    (warnings, refusals): the engine's warnings and [(field, the engine's error)] of the
    fields it refused (such as memory below what the node uses now); the other fields are
    changed."""
    warnings, refused = [], []
    for field, body in update_bodies(changes) or ():
        try:
            warnings.extend(update_resources(cli, container_id, body))
        except EngineError as exc:
            refused.append((field, str(exc)))
    return warnings, refused


def capabilities(node, testbed_caps):
    """(cap_add, cap_drop) of a node's container: Docker's default set, plus the testbed's
    ``testbed_caps`` and the node's cap_add, less its cap_drop but for what its augmentation
    level's services need (defaults.LEVEL_CAPS); ``ALL`` drops every other one."""
    drop, keep = node.get("cap_drop") or [], defaults.LEVEL_CAPS.get(node["augment"], ())
    add = [c for c in list(testbed_caps) + list(node.get("cap_add") or ()) if c not in drop]
    if "ALL" in drop:  # the testbed's own too: only what the node adds back and its level needs
        add = list(node.get("cap_add") or ()) + list(keep)
        return [c for i, c in enumerate(add) if c not in add[:i]], ["ALL"]
    return [c for i, c in enumerate(add) if c not in add[:i]], [
        c for c in drop if c in defaults.DOCKER_DEFAULT_CAPS and c not in keep and c not in add]


def add_container_settings(kwargs, node):
    """The node's own container settings (model.NODE_KEYS beyond the testbed's): binds, added
    capabilities, sysctls, labels, published ports, and for a node that is not augmented its
    entrypoint, user and workdir (an augmented node's supervisor reads those from its node
    directory: augment.write_app_overrides)."""
    for bind in node.get("binds") or ():
        kwargs["mounts"].append(docker.types.Mount(bind["target"], bind["source"], type="bind",
                                                   read_only=bind["read_only"]))
    for volume in node.get("volumes") or ():
        kwargs["mounts"].append(docker.types.Mount(volume["target"], volume["volume"], type="volume",
                                                   read_only=volume["read_only"]))
    kwargs["cap_add"], drop = capabilities(node, kwargs["cap_add"])
    if drop:
        kwargs["cap_drop"] = drop
    if node.get("sysctls"):
        kwargs["sysctls"] = dict(node["sysctls"], **kwargs["sysctls"])
    if node.get("labels"):
        kwargs["labels"] = dict(node["labels"], **kwargs["labels"])
    if node.get("ports"):
        kwargs["ports"] = {}
        for port in node["ports"]:
            binding = (port["host_ip"], port["host_port"]) if port["host_ip"] else port["host_port"]
            kwargs["ports"].setdefault("%d/%s" % (port["port"], port["protocol"]), []).append(binding)
    if node["augment"] == "none":
        if node.get("entrypoint") is not None:
            kwargs["entrypoint"] = node["entrypoint"] or [""]
        if node.get("user") is not None:
            kwargs["user"] = node["user"]
        if node.get("workdir") is not None:
            kwargs["working_dir"] = node["workdir"]


def volume_labels(project, name, node_name, volume):
    return {names.LABEL_PROJECT: project, names.LABEL_EXPERIMENT: name, names.LABEL_NODE: node_name,
            names.LABEL_VOLUME: volume["name"], names.LABEL_KEEP: "true" if volume["keep"] else "false"}


def list_volumes(cli, project, name):
    """The experiment's named volumes on this host: Docker volume name -> labels."""
    found = cli.api.volumes(filters={"label": ["%s=%s" % (names.LABEL_PROJECT, project),
                                               "%s=%s" % (names.LABEL_EXPERIMENT, name)]})
    return dict((v["Name"], v.get("Labels") or {}) for v in (found or {}).get("Volumes") or ())


def create_volume(cli, volume, labels):
    cli.api.create_volume(volume, labels=labels)


def remove_volume(cli, volume):
    """Remove a volume; False when a container still uses it (the engine refuses)."""
    try:
        cli.api.remove_volume(volume)
    except APIError as exc:  # NotFound (404) included: gone already
        status = getattr(exc, "status_code", None)
        if status == 409:
            return False
        if status != 404:
            raise
    return True


def remove_container(ctr):
    try:
        if isinstance(ctr, NodeContainer):
            ctr.cli.api.remove_container(ctr.id, force=True, v=True)
        else:
            ctr.remove(force=True, v=True)
    except NotFound:
        pass


def container_pid(ctr):
    """The pid of a running container (inspected now), or None."""
    if isinstance(ctr, NodeContainer):
        ctr = ctr.full()
    else:
        ctr.reload()
    state = ctr.attrs.get("State", {})
    # a node in the engine's restart loop is "running" with no process (pid 0): it is not up
    if not state.get("Running") or state.get("Restarting") or not state.get("Pid"):
        return None
    return state["Pid"]


def restarted_within(ctr, seconds, now=None):
    """Has the engine restarted this node (its restart policy) and its current run begun less than
    ``seconds`` ago? A node in a crash loop is up for moments between restarts: it is not booted
    until it stays up (the boot wait looks again, and sees it restarting or dead)."""
    attrs = (ctr.full() if isinstance(ctr, NodeContainer) else ctr).attrs
    if not attrs.get("RestartCount"):
        return False
    started = (attrs.get("State") or {}).get("StartedAt") or ""
    match = re.match(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?", started)
    if not match:
        return False
    when = calendar.timegm(time.strptime(match.group(1), "%Y-%m-%dT%H:%M:%S")) + float("0." + (match.group(2) or "0"))
    return (time.time() if now is None else now) - when < seconds


def exit_reason(ctr):
    """Why a node's container is not running, in the engine's words: its error (a command that
    cannot run), the OOM killer, or its main process's exit code."""
    if isinstance(ctr, NodeContainer):
        ctr = ctr.full()
    state = ctr.attrs.get("State", {})
    if state.get("Running") and not state.get("Restarting") and state.get("Pid"):
        return "running"
    parts = []
    if state.get("Restarting"):
        parts.append("keeps exiting (the engine restarted it %s times)" % ctr.attrs.get("RestartCount", "?"))
    if state.get("OOMKilled"):
        parts.append("killed by the OOM killer (memory limit too small?)")
    if state.get("Error"):
        parts.append(_runtime_words(state["Error"]))
    if state.get("Status") == "created":
        parts.append("never started")
    elif not state.get("OOMKilled"):
        parts.append("exited with code %s" % state.get("ExitCode"))
    return "; ".join(parts)


def log_tail(ctr, lines=10):
    """The last ``lines`` lines of a node's console (its main process's output), as text."""
    try:
        raw = (ctr.full() if isinstance(ctr, NodeContainer) else ctr).logs(tail=lines)
    except Exception as exc:  # a container removed meanwhile: say so instead of failing the status
        return "(no log: %s)" % exc
    return raw.decode("utf-8", "replace").rstrip("\n")


def _runtime_words(text):
    """The runtime's own reason without the layers that wrap it ("failed to create shim task:
    OCI runtime create failed: runc create failed: unable to start container process: ...")."""
    text = " ".join(str(text).split())
    marker = "unable to start container process: "
    if marker in text:
        text = text.split(marker, 1)[1]
    return text[:-len(": unknown")] if text.endswith(": unknown") else text


def describe_error(exc):
    """An engine error as one line (the engine's explanation, not the HTTP wrapping)."""
    explanation = getattr(exc, "explanation", None)
    text = explanation.decode("utf-8", "replace") if isinstance(explanation, bytes) else explanation
    return _runtime_words(text or exc)


def exec_run(cli, container_id, argv):
    """Run ``argv`` in a running container as root; returns (exit code, output)."""
    exec_id = cli.api.exec_create(container_id, argv, user="0")["Id"]
    output = cli.api.exec_start(exec_id)
    code = cli.api.exec_inspect(exec_id).get("ExitCode")
    return code, output.decode("utf-8", "replace") if isinstance(output, bytes) else output
