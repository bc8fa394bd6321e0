# -*- coding: utf-8 -*-
# Copyright: testbed.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Snapshots of a node: its container committed into an image (Emulab's "create an image" of a
node, DETER's node snapshot).

The image is the node's file system as it is now (``docker commit``, the container paused for
the commit), with the container's configuration (entrypoint, command, environment, user,
working directory) minus what belongs to the node rather than the image: the experiment's
labels (project, experiment, node, settings hash), the hostname.  It carries
``testbed.snapshot.of=PROJECT/NAME/NODE`` and the time.  (Docker merges the container's labels
into a commit's, so the node's labels are blanked, not removed.)  An augmented node's snapshot
gets the image's original ENTRYPOINT, USER and WORKDIR back (not the supervisor's) and its
``testbed.augment.*`` labels blanked: it is a plain image again (its /.testbed files stay, inert), so it
runs with ``augment: none`` and is augmented afresh at any level.  A node of any experiment may
then name it as its ``image:``; on several hosts the snapshot is pushed to the testbed registry,
from which the other hosts pull it.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re
import time

from ansible_collections.testbed.containers.plugins.module_utils import augment, engine, images, names

LABEL_OF = "testbed.snapshot.of"
LABEL_TIME = "testbed.snapshot.time"
# labels of the container, not of the image it came from
NODE_LABELS = (names.LABEL_PROJECT, names.LABEL_EXPERIMENT, names.LABEL_NODE, names.LABEL_CONFIG)
DEFAULT_PREFIX = "testbed-snapshot"
# Docker's reference grammar: [HOST[:PORT]/]PATH[:TAG], PATH components lower case
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_HOST = r"(?:[A-Za-z0-9.-]+(?::[0-9]+)?/)?"
REPOSITORY_RE = re.compile(r"^%s%s(?:/%s)*$" % (_HOST, _COMPONENT, _COMPONENT))
TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")


class SnapshotError(Exception):
    pass


def default_repository(project, name, node):
    """``testbed-snapshot/PROJECT-NAME-NODE``, made a valid repository name (lower case)."""
    path = re.sub(r"[^a-z0-9]+", "-", ("%s-%s-%s" % (project, name, node)).lower()).strip("-")
    return "%s/%s" % (DEFAULT_PREFIX, path or "node")


def image_and_tags(image, project, name, node, now=None):
    """(repository, [tags]) of the snapshot.  ``image`` ``REPO:TAG`` gives that tag only; ``REPO``
    or none (the default repository) gives a UTC time tag and ``latest``.  Raises SnapshotError
    naming the field for a reference Docker would refuse."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(now))
    if not image:
        return default_repository(project, name, node), [stamp, "latest"]
    if "@" in image:
        raise SnapshotError("image: %r is a digest reference; give REPOSITORY or REPOSITORY:TAG" % image)
    repo, sep, tag = image.rpartition(":")
    if not sep or "/" in tag:
        repo, tag = image, None
    if not REPOSITORY_RE.match(repo):
        raise SnapshotError("image: %r is not a valid repository name (lower-case letters, digits and . _ -, "
                            "components separated by /), for example %s" % (repo, default_repository(project, name, node)))
    if tag is not None and not TAG_RE.match(tag):
        raise SnapshotError("image: tag %r is not valid (letters, digits, _ . -; at most 128)" % tag)
    return repo, ([tag] if tag is not None else [stamp, "latest"])


def image_config(config, project, name, node, now=None):
    """The committed image's configuration: the container's, without the node's own labels and
    hostname, with the snapshot's labels; an augmented node's with the image's original
    entrypoint, user and working directory and without the augmentation's labels."""
    conf = dict((k, v) for k, v in (config or {}).items() if k not in ("Hostname", "Domainname", "Image"))
    if augment.is_augmented({"Config": conf}):
        orig = augment.original_config({"Config": conf})
        # [] not None: Docker fills a missing entrypoint (and an empty user) from the container's;
        # the user "" of an image (root) becomes "0:0", the same account
        conf["Entrypoint"] = orig["entrypoint"]
        conf["User"] = orig["user"] or "0:0"
        conf["WorkingDir"] = orig["workdir"]
    # Docker merges the container's labels into the commit's: a label can only be blanked
    labels = dict((k, "" if k in NODE_LABELS or k.startswith(augment.LABEL) else v)
                  for k, v in (conf.get("Labels") or {}).items())
    labels[LABEL_OF] = "%s/%s/%s" % (project, name, node)
    labels[LABEL_TIME] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))
    conf["Labels"] = labels
    return conf


def find_node(cli, project, name, node):
    """The node's container on this host; SnapshotError naming the nodes it has otherwise."""
    nodes = engine.list_nodes(cli, project, name)
    if node not in nodes:
        here = ", ".join(sorted(n for n in nodes if n)) or "none"
        raise SnapshotError("node: %s/%s has no node %r on this host (its nodes here: %s)" % (project, name, node, here))
    return nodes[node]


def left_out(attrs):
    """The node paths a commit does not capture: the node's volumes, binds and the project's
    directory (its mounts but the testbed's own /etc/hosts and /.testbed files)."""
    paths = []
    for mount in attrs.get("Mounts") or ():
        target = mount.get("Destination") or ""
        if target == "/etc/hosts" or target == "/.testbed" or target.startswith("/.testbed/"):
            continue
        paths.append(target)
    return sorted(paths)


def snapshot(cli, project, name, node, image=None, registry_address=None, credentials=None, dry_run=False):
    """Commits the node's container (paused while it runs); returns {image, repository, tags,
    container, id, size, pushed}; pushes every tag to ``registry_address`` when given."""
    now = time.time()
    repository, tags = image_and_tags(image, project, name, node, now)
    ctr = find_node(cli, project, name, node)
    result = {"image": "%s:%s" % (repository, tags[0]), "repository": repository, "tags": tags,
              "container": ctr.name, "pushed": []}
    if dry_run:
        return result
    attrs = cli.api.inspect_container(ctr.id)
    result["left_out"] = left_out(attrs)
    conf = image_config(attrs.get("Config"), project, name, node, now)
    try:
        committed = cli.api.commit(ctr.id, repository=repository, tag=tags[0], pause=ctr.status == "running", conf=conf,
                                   message="snapshot of %s/%s/%s" % (project, name, node), author="testbed.containers")
        image_id = committed["Id"]
        for tag in tags[1:]:
            cli.api.tag(image_id, repository, tag, force=True)
    except Exception as exc:
        raise SnapshotError("committing %s (node %s): %s" % (ctr.name, node, exc))
    result["id"] = image_id
    result["size"] = cli.api.inspect_image(image_id).get("Size")
    if registry_address:
        try:
            result["pushed"] = [images.push(cli, "%s:%s" % (repository, tag), registry_address, credentials)
                                for tag in tags]
        except images.ImageError as exc:
            raise SnapshotError("pushing the snapshot %s: %s" % (result["image"], exc))
    return result
