# -*- coding: utf-8 -*-
# Copyright: testbed.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Events applied on one host (playbooks/event.yml and run-events.yml, docs/operate.md).

``events.resolve`` turns an event into each host's actions (pure); ``apply`` does this host's:
a link taken down or up on the host end of its attachments' veths, a node stopped, started or
restarted through the engine (a started node is re-plumbed at once, as the host agent would),
shaping changed in place with the same tc code as a swap-in, a command run in a node.  What a
link or shaping event changes is written into the host's record of the slice first, under the
experiment's lock, so the host agent re-plumbing a restarted node keeps it (a link stays down,
the new shaping stays); a swap-in of the experiment file brings back what the file says.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import time

from ansible_collections.testbed.containers.plugins.module_utils import augment, engine, events, netlink, shaping
from ansible_collections.testbed.containers.plugins.module_utils import slice as slice_mod

OUTPUT_LIMIT = 20000  # characters of an exec's output kept (its end)
STOP_TIMEOUT = 5      # seconds a stopped node has to exit before the engine kills it


class EventFailed(Exception):
    pass


def wait_until(not_before):
    """Sleep until the epoch time ``not_before`` (None: now)."""
    if not_before:
        delay = not_before - time.time()
        if delay > 0:
            time.sleep(delay)


class HostEvents:
    """Applies this host's actions of one event to its slice of the experiment."""

    def __init__(self, plan, host, state_dir=slice_mod.DEFAULT_STATE_DIR, control_settings=None, lock_timeout=None,
                 dry_run=False, stop_timeout=STOP_TIMEOUT):
        self.plan, self.host, self.state_dir = plan, host, state_dir
        self.control_settings, self.lock_timeout, self.dry_run = control_settings, lock_timeout, dry_run
        self.stop_timeout = stop_timeout
        self.paths = slice_mod.Paths(state_dir, plan["project"], plan["name"])
        self.ops, self.output, self.rc = [], None, None

    def apply(self, actions, not_before=None):
        """Wait for ``not_before``, then do ``actions``; returns the epoch time they started."""
        for action in actions:
            if action["op"] not in ("link", "node", "shape", "exec"):
                raise EventFailed("unknown action %r" % action["op"])
        if self.dry_run:
            for action in actions:
                self.ops.append("would " + describe_action(action))
            return time.time()
        record = slice_mod.read_record(self.paths)
        if record is None:
            raise EventFailed("host %s has no record of experiment %s/%s under %s: swap it in first"
                              % (self.host, self.plan["project"], self.plan["name"], self.state_dir))
        wait_until(not_before)
        started = time.time()
        for action in actions:
            getattr(self, "_" + action["op"])(action)
        return started

    def result(self, actions, not_before=None):
        """apply, as module experiment_event returns it: changed, host, operations, when the
        actions started, how late (with ``not_before``), an exec's exit code and output."""
        started = self.apply(actions, not_before)
        result = dict(changed=bool(self.ops) and not self.dry_run, host=self.host, operations=self.ops,
                      applied_at=started)
        if not_before:
            result["late"] = round(max(0.0, started - not_before), 3)
        if self.rc is not None:
            result.update(rc=self.rc, output=self.output)
        return result

    def _lock(self, what):
        return slice_mod.file_lock(self.paths.lock, self.lock_timeout, what,
                                   "experiment %s/%s" % (self.plan["project"], self.plan["name"]))

    def _remember(self, action):
        """Write what the action changes into the host's record of the slice (under the lock)."""
        record = slice_mod.read_record(self.paths)
        record["plan"] = events.apply_to_plan(record["plan"], {self.host: [action]})
        slice_mod.write_record(self.paths, record)

    def _link(self, action):
        up = action["state"] == "up"
        with self._lock("link event"):
            self._remember(action)
            with netlink.IPRoute() as ipr:
                for item in action["attachments"]:
                    found = ipr.link_lookup(ifname=item["veth"])
                    if not found:
                        raise EventFailed("%s on %s has no interface %s on host %s: is the node running? "
                                          "(status.yml)" % (item["node"], item["lan"], item["veth"], self.host))
                    ipr.link("set", index=found[0], state="up" if up else "down")
                    verb = "bring up" if up else "take down"
                    self.ops.append("%s %s (%s on %s)" % (verb, item["veth"], item["node"], item["lan"]))

    def _shape(self, action):
        with self._lock("shaping event"):
            self._remember(action)
            with netlink.IPRoute() as ipr:
                try:
                    ops = shaping.apply_many(ipr, action["attachments"])
                except shaping.ShapingError as exc:
                    raise EventFailed("host %s: %s" % (self.host, exc))
            self.ops.extend(ops or ["shaping of %s already so" % ", ".join(
                "%s on %s" % (a["node"], a["lan"]) for a in action["attachments"])])

    def _container(self, cli, action):
        found = engine.list_nodes(cli, self.plan["project"], self.plan["name"]).get(action["node"])
        if found is None:
            raise EventFailed("node %s has no container on host %s (swapped out?)" % (action["node"], self.host))
        return found

    def _node(self, action):
        cli = engine.client()
        ctr = self._container(cli, action)
        node, what = action["node"], action["action"]
        if ctr.status != "running" and what == "restart":
            what = "start"  # the engine's restart of a stopped container is a start
        if what == "stop":
            cli.api.stop(ctr.id, timeout=self.stop_timeout)
            self.ops.append("stop node %s" % node)
            return
        if what == "start":
            cli.api.start(ctr.id)
        else:
            cli.api.restart(ctr.id, timeout=self.stop_timeout)
        self.ops.append("%s node %s" % (what, node))
        # re-plumbed now, as the host agent would a moment later (it then finds nothing to do)
        record = slice_mod.read_record(self.paths)
        replumb = slice_mod.Slice(record["plan"], record["host"], self.state_dir, control_settings=self.control_settings,
                                  public_address=record.get("public_address"), lock_timeout=self.lock_timeout)
        for _attempt in range(50):
            if engine.container_pid(cli.containers.get(ctr.id)) is not None:
                break
            time.sleep(0.1)
        else:
            raise EventFailed("node %s did not start: %s" % (node, engine.exit_reason(cli.containers.get(ctr.id))))
        self.ops.extend(replumb.reconverge([node]))

    def _exec(self, action):
        cli = engine.client()
        ctr = self._container(cli, action)
        shell = augment.TB + "/bin/sh" if action.get("augment", "none") != "none" else "/bin/sh"
        try:
            self.rc, output = engine.exec_run(cli, ctr.id, [shell, "-c", action["command"]])
        except engine.APIError as exc:
            raise EventFailed("exec in node %s: %s" % (action["node"], engine.describe_error(exc)))
        self.output = output[-OUTPUT_LIMIT:]
        self.ops.append("exec in node %s: exit %s" % (action["node"], self.rc))


def describe_action(action):
    if action["op"] == "link":
        return "take %s %s" % (action["state"], ", ".join("%s:%s" % (a["node"], a["lan"]) for a in action["attachments"]))
    if action["op"] == "shape":
        return "shape %s" % ", ".join("%s:%s" % (a["node"], a["lan"]) for a in action["attachments"])
    if action["op"] == "node":
        return "%s node %s" % (action["action"], action["node"])
    return "exec in node %s: %s" % (action["node"], action["command"])
