# -*- coding: utf-8 -*-
# Copyright: testbed.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Docker engine, through the Docker SDK for Python: node containers and the control network."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import json

try:
    import docker
    from docker.errors import APIError, ImageNotFound, NotFound
    HAS_DOCKER = True
except ImportError:  # pragma: no cover - reported by the modules
    docker = None
    APIError = ImageNotFound = NotFound = Exception
    HAS_DOCKER = False

from ansible_collections.testbed.containers.plugins.module_utils import defaults, names

# Bump when the container spec changes meaning, so nodes converge to the new spec.
SPEC_VERSION = 2
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


def container_spec(plan, node_name, image_id, hosts_path, control_address=None, image_ref=None):
    """The keyword arguments of containers.create for a node, and their hash (a label).

    A node is recreated only when this hash changes; LAN membership, addresses and routes are
    not part of it (they converge in place).
    """
    node = plan["nodes"][node_name]
    hashed = {
        "version": SPEC_VERSION, "image": node["image"], "image_id": image_id, "command": node["command"],
        "cpus": node["cpus"], "memory": node["memory"], "forwarding": node["forwarding"], "env": node["env"],
        "hosts": hosts_path, "control_address": control_address,
    }
    if node.get("restart"):  # only when set: nodes without it keep their hash across versions
        hashed["restart"] = node["restart"]
    if node.get("pids") and node["pids"] != defaults.NODE_PIDS:  # likewise: the default is not hashed
        hashed["pids"] = node["pids"]
    for key in defaults.CONTAINER_KEYS:  # likewise: only the ones the node sets
        if key in node:
            hashed[key] = node[key]
    digest = hashlib.sha256(json.dumps(hashed, sort_keys=True).encode("utf-8")).hexdigest()[:16]
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
    if node["cpus"]:
        kwargs["nano_cpus"] = int(node["cpus"] * 1e9)
    if node["memory"]:
        kwargs["mem_limit"] = node["memory"]
    kwargs["pids_limit"] = node.get("pids") or defaults.NODE_PIDS
    add_container_settings(kwargs, node)
    return kwargs, digest


def add_container_settings(kwargs, node):
    """The node's own container settings (model.NODE_KEYS beyond the testbed's): binds, added
    capabilities, sysctls, labels, published ports, and for a node that is not augmented its
    entrypoint, user and workdir (an augmented node's supervisor reads those from its node
    directory: augment.write_app_overrides)."""
    for bind in node.get("binds") or ():
        kwargs["mounts"].append(docker.types.Mount(bind["target"], bind["source"], type="bind",
                                                   read_only=bind["read_only"]))
    if node.get("cap_add"):
        kwargs["cap_add"] = list(kwargs["cap_add"]) + [c for c in node["cap_add"] if c not in kwargs["cap_add"]]
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
