# -*- coding: utf-8 -*-
# Copyright: testbed.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The image pipeline: what each node of a slice runs, and how it gets to the host.

An image the host lacks is pulled from the testbed registry (design decision 8: hosts never
need a public registry; an image the host has is never pulled); each distinct (image, level)
is augmented once (decision 14), or pulled already augmented when another host made it and
pushed it (the same content tag everywhere).  The controller's images reach the registry
through ``push`` (module image_publish), a node's snapshot too (module node_snapshot).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import time

from ansible_collections.testbed.containers.plugins.module_utils import augment, engine


class ImageError(Exception):
    pass


class AugmentFailed(ImageError):
    """What stopped :func:`augment_images`, with the entries of the images done before (``images``)."""

    def __init__(self, message, images):
        super().__init__(message)
        self.images = images


def converge_images(cli, plan, nodes, registry=None, dry_run=False):
    """The images of ``nodes`` (of ``plan``) on this host: pulled, augmented.

    ``registry``: {registry: HOST:PORT, credentials: {username, password}} or None.  Returns
    ((image, level) -> the reference each node runs, reference -> image id, operations).
    """
    ops = []
    fetch_missing(cli, plan, nodes, registry, dry_run, ops)
    ids = engine.image_ids(cli, [plan["nodes"][n]["image"] for n in nodes])
    refs = augmented_refs(cli, plan, nodes, registry, dry_run, ops)
    ids.update(engine.image_ids(cli, [ref for ref in refs.values() if ref not in ids]))
    return refs, ids, ops


def fetch_missing(cli, plan, nodes, registry, dry_run, ops):
    """Pull from the testbed registry the images of ``nodes`` the host lacks, tagged as the plan
    names them."""
    if not registry:
        return
    wanted = sorted(set(plan["nodes"][n]["image"] for n in nodes))
    for ref in [r for r in wanted if not engine.has_image(cli, r)]:
        remote = remote_ref(ref, registry["registry"])
        ops.append("pull %s from the testbed registry (%s)" % (ref, remote))
        if dry_run:
            continue
        try:
            ensure_pulled(cli, remote, registry.get("credentials"))
        except ImageError as exc:
            raise ImageError("image %s is not on this host and the testbed registry could not provide it (%s): "
                             "build or load it on the controller, which publishes it, or on this host" % (ref, exc))
        repo, tag = split_ref(ref)
        cli.api.tag(remote, repo, tag)


def augmented_refs(cli, plan, nodes, registry, dry_run, ops):
    """(image, level) -> the image each node runs: augmented once per distinct image."""
    refs = {}
    for node in nodes:
        image, level = plan["nodes"][node]["image"], plan["nodes"][node]["augment"]
        if (image, level) in refs:
            continue
        if level == "none":
            refs[(image, level)] = image
        elif dry_run:
            planned = augment.plan_augmentation(cli, image, level)
            if planned["action"] == "build":
                ops.append("augment image %s (%s)" % (image, level))
            refs[(image, level)] = planned["ref"] if planned["action"] != "build" else image
        elif registry and _pull_augmented(cli, image, level, registry, ops):
            refs[(image, level)] = augment.plan_augmentation(cli, image, level)["ref"]
        else:
            ref, built = augment.augment_image(cli, image, level)
            if built:
                ops.append("augment image %s (%s) as %s" % (image, level, ref))
                if registry:
                    _push_augmented(cli, ref, registry, ops)
            refs[(image, level)] = ref
    return refs


def _pull_augmented(cli, image, level, registry, ops):
    """An augmented image another host made and pushed: pulled instead of augmenting again.
    False when this host must augment (or has it already)."""
    planned = augment.plan_augmentation(cli, image, level)
    if planned["action"] != "build":
        return False
    remote = remote_ref(planned["ref"], registry["registry"])
    try:
        ensure_pulled(cli, remote, registry.get("credentials"))
    except ImageError:
        return False  # not in the registry (yet): augment here
    repo, tag = split_ref(planned["ref"])
    cli.api.tag(remote, repo, tag)
    if augment.plan_augmentation(cli, image, level)["action"] != "cached":
        return False  # the registry's copy is not this content: augment here
    ops.append("pull augmented image %s (%s) from the testbed registry" % (image, level))
    return True


def _push_augmented(cli, ref, registry, ops):
    """Cache an augmented image in the testbed registry for the other hosts."""
    try:
        push(cli, ref, registry["registry"], registry.get("credentials"))
        ops.append("push augmented image %s to the testbed registry" % ref)
    except ImageError as exc:
        ops.append("augmented image %s not cached in the registry: %s" % (ref, exc))


def augment_images(images, level, tools_dir=None, dry_run=False, cli=None):
    """Module image_augment: each distinct image of ``images`` augmented at ``level`` on this host
    (built, or found by its content tag); level ``none`` leaves each as it is.

    Returns (changed, operations, result): result's ``images`` holds one entry per distinct image,
    in order, and ``refs`` maps each to the image to run.  Raises AugmentFailed."""
    entries, refs, ops = [], {}, []
    try:
        if cli is None and level != "none":
            cli = engine.client()
        for ref in images:
            if ref in refs:
                continue
            start = time.time()
            planned = {"action": "none", "ref": ref} if level == "none" else \
                augment.plan_augmentation(cli, ref, level, tools_dir)
            changed = planned["action"] == "build"
            if changed and not dry_run:
                augmented, changed = augment.augment_image(cli, ref, level, tools_dir)
            else:
                augmented = planned["ref"]
            if changed:
                ops.append("augment image %s (%s)" % (ref, level) + ("" if dry_run else " as %s" % augmented))
            refs[ref] = augmented
            entries.append({"image": ref, "augmented": augmented, "changed": changed,
                            "result": "built" if changed else planned["action"],
                            "seconds": round(time.time() - start, 3)})
    except (augment.AugmentError, engine.EngineError) as exc:
        raise AugmentFailed(str(exc), entries) from exc
    return bool(ops), ops, {"images": entries, "refs": refs}


def publish(cli, refs, registry, credentials=None, dry_run=False):
    """Push the images ``refs`` this engine has to ``registry``; returns (pushed, already there,
    missing here), the first two as remote references."""
    pushed, current, missing = [], [], []
    for ref in sorted(set(refs)):
        if not engine.has_image(cli, ref):
            missing.append(ref)
            continue
        remote = remote_ref(ref, registry)
        if is_pushed(cli, ref, registry, credentials):
            current.append(remote)
            continue
        if not dry_run:
            push(cli, ref, registry, credentials)
        pushed.append(remote)
    return pushed, current, missing


def split_ref(ref):
    """(repository, tag) of ``ref``; the tag defaults to ``latest``. Digest references are refused."""
    if "@" in ref:
        raise ImageError("%s: a digest reference cannot be tagged or pushed; use a tag" % ref)
    name, sep, tag = ref.rpartition(":")
    if not sep or "/" in tag:
        return ref, "latest"
    return name, tag


def _strip_registry(repo):
    first, sep, rest = repo.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return rest
    return repo


def remote_ref(local_ref, registry):
    """The reference of ``local_ref`` in ``registry``: ``REGISTRY/REPO:TAG`` (any registry part replaced)."""
    repo, tag = split_ref(local_ref)
    return "%s/%s:%s" % (registry, _strip_registry(repo), tag)


def _auth(credentials):
    if not credentials:
        return None
    if isinstance(credentials, (tuple, list)):
        credentials = {"username": credentials[0], "password": credentials[1]}
    return {"username": credentials["username"], "password": credentials["password"]}


def _stream_errors(stream):
    last = None
    for chunk in stream:
        if isinstance(chunk, dict):
            if chunk.get("error") or chunk.get("errorDetail"):
                return chunk.get("error") or (chunk.get("errorDetail") or {}).get("message") or str(chunk)
            last = chunk
    return None


def is_pushed(client, local_ref, registry, credentials=None):
    """True when the registry's manifest for the remote reference is the one the local image was
    pushed or pulled as (so a push would transfer nothing)."""
    ref = remote_ref(local_ref, registry)
    try:
        image = client.images.get(local_ref)
        data = client.images.get_registry_data(ref, auth_config=_auth(credentials))
    except Exception:
        return False
    repo = split_ref(ref)[0]
    return "%s@%s" % (repo, data.id) in (image.attrs.get("RepoDigests") or [])


def push(client, local_ref, registry, credentials=None):
    """Push the local image ``local_ref`` to ``registry`` (``HOST:PORT``) and return its remote reference.

    ``credentials``: {"username", "password"} (or a pair); None uses the engine client's stored login.
    Nothing is sent when the registry already holds this exact image under that reference.
    """
    ref = remote_ref(local_ref, registry)
    repo, tag = split_ref(ref)
    try:
        client.images.get(local_ref)
    except Exception as exc:
        raise ImageError("cannot push %s: no such local image (%s)" % (local_ref, exc))
    if is_pushed(client, local_ref, registry, credentials):
        return ref
    client.api.tag(local_ref, repo, tag)
    try:
        error = _stream_errors(client.api.push(repo, tag=tag, auth_config=_auth(credentials), stream=True,
                                               decode=True))
    except Exception as exc:
        raise ImageError("pushing %s as %s: %s" % (local_ref, ref, exc))
    if error:
        raise ImageError("pushing %s as %s: %s" % (local_ref, ref, error))
    return ref


def ensure_pulled(client, remote_ref, credentials=None):
    """Pull ``remote_ref`` unless the image is already on this engine; True when it pulled."""
    try:
        client.images.get(remote_ref)
        return False
    except Exception as exc:
        if type(exc).__name__ not in ("ImageNotFound", "NotFound"):
            raise ImageError("inspecting %s: %s" % (remote_ref, exc))
    repo, tag = split_ref(remote_ref)
    try:
        error = _stream_errors(client.api.pull(repo, tag=tag, auth_config=_auth(credentials), stream=True,
                                               decode=True))
    except Exception as exc:
        raise ImageError("pulling %s: %s" % (remote_ref, exc))
    if error:
        raise ImageError("pulling %s: %s" % (remote_ref, error))
    return True


# The argument spec of the ``registry`` option (doc fragment testbed.containers.common.registry)
# of the modules that pull from or push to the testbed registry.
OPTION_SPEC = dict(type="dict", options=dict(
    registry=dict(type="str", required=True),
    ca_cert=dict(type="str"),
    credentials=dict(type="dict", options=dict(
        username=dict(type="str", default="testbed"),
        password=dict(type="str", required=True, no_log=True),
    )),
))
