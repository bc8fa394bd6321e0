# -*- coding: utf-8 -*-
# Copyright: testbed.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""testbed: one short command per action on experiments, over the collection's playbooks.

    testbed up FILE                    swap FILE in, or modify it in place (playbooks/experiment.yml)
    testbed down FILE                  swap it out (teardown.yml)
    testbed status [FILE] [--json]     the node table, or the status document (status.yml)
    testbed ssh NODE [FILE] [-- SSH ARGS/COMMAND]   the node's ssh command from the status
    testbed list [--json]              the experiments on the inventory's hosts (list.yml)
    testbed capture NODE|all LAN [FILE] [--seconds N] [--count N] [--filter BPF] [--dest DIR]
    testbed event 'link lan0 down' [FILE]           apply one event now (event.yml)
    testbed graph [FILE] [--dest PREFIX] [--formats svg,png]   draw it (visualize.yml)
    testbed snapshot NODE [FILE] [--image REPO[:TAG]]          commit a node (snapshot.yml)
    testbed prepare                    prepare the inventory's hosts ahead of time (hosts.yml)
    testbed convert SOURCE [-o OUT] [--format ns|clab|compose] [--strict]   (tools/testbed-convert)

Every command but convert runs ansible-playbook, streaming its progress and table, and exits with
its exit status. Options, before or after the command: -i INVENTORY and -e VAR (repeatable,
passed through; -e VAR wins over the command's own variables), -v (repeatable), --dry-run
(print the ansible-playbook command line, run nothing); after `--`, arguments go to
ansible-playbook (to ssh for `testbed ssh`).

Run from a checkout, the repository's ansible.cfg applies (its inventory, collection path and
callbacks: ANSIBLE_CONFIG is set to it unless already set); run from an installed collection
(ansible_collections/testbed/containers/tools/), your own Ansible configuration does.
ansible-playbook is the one beside this Python, else the first on PATH. docs/operations.md.
"""

from __future__ import absolute_import, division, print_function

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.realpath(__file__))
ROOT = os.path.dirname(HERE)
# The default output stays short: skipped tasks are not shown (unless -v, or set otherwise).
QUIET_ENV = {"ANSIBLE_DISPLAY_SKIPPED_HOSTS": "false"}
DRY_RUN_FILE = "TMPDIR/%s"  # the document file in a --dry-run's command line
PIPE, STDERR = "pipe", "stderr"  # where run() sends ansible-playbook's output


class CliError(Exception):
    """A usage or lookup error: its message is printed, the exit status is 2 (usage) or 1."""

    def __init__(self, message, status=1):
        super(CliError, self).__init__(message)
        self.status = status


def installed(root=ROOT):
    """True when ``root`` is an installed collection (.../ansible_collections/testbed/containers)."""
    parts = os.path.normpath(root).split(os.sep)
    return len(parts) >= 3 and parts[-3] == "ansible_collections"


def playbook_path(name, root=ROOT, check=True):
    path = os.path.join(root, "playbooks", name + ".yml")
    if check and not os.path.isfile(path):
        raise CliError("%s: no such playbook in this collection (%s)" % (name + ".yml", root))
    return path


def find_ansible_playbook(executable=None, which=shutil.which):
    """ansible-playbook beside ``executable`` (this Python: the checkout's .venv), else on PATH."""
    beside = os.path.join(os.path.dirname(executable or sys.executable), "ansible-playbook")
    if os.path.isfile(beside) and os.access(beside, os.X_OK):
        return beside
    found = which("ansible-playbook")
    if not found:
        raise CliError("ansible-playbook not found beside %s nor on PATH: install ansible-core "
                       "(in a checkout, ./setup.sh makes .venv)" % (executable or sys.executable))
    return found


def environment(base, root=ROOT, verbose=0):
    """The variables ansible-playbook runs with: ``base`` plus what the command adds (returned
    apart too, for --dry-run). In a checkout ANSIBLE_CONFIG names the repository's ansible.cfg
    (its inventory, collections path and callbacks are what the playbooks are run with there);
    an installed collection uses the user's own configuration. Either way a variable the user
    set already is kept."""
    added = {}
    if not installed(root) and "ANSIBLE_CONFIG" not in base:
        added["ANSIBLE_CONFIG"] = os.path.join(root, "ansible.cfg")
    if not verbose:
        added.update((k, v) for k, v in QUIET_ENV.items() if k not in base)
    env = dict(base)
    env.update(added)
    return env, added


def command_line(ansible_playbook, playbook, variables, args):
    """The ansible-playbook argv: the command's own variables as one JSON extra var (any text,
    spaces and quotes included, arrives as it is), then the user's -i, -e, -v and arguments
    after `--`."""
    argv = [ansible_playbook, playbook]
    for inventory in args.inventory:
        argv += ["-i", inventory]
    if variables:
        argv += ["-e", json.dumps(variables, sort_keys=True)]
    for extra in args.extra_vars:
        argv += ["-e", extra]
    if args.verbose:
        argv.append("-" + "v" * args.verbose)
    return argv + list(args.rest)


def experiment_vars(args):
    """{'experiment': FILE as an absolute path} (relative to where the command runs), or {}."""
    if getattr(args, "file", None):
        return {"experiment": os.path.abspath(os.path.expanduser(args.file))}
    return {}


def read_document(path, what):
    """The JSON document a playbook wrote to ``path``."""
    try:
        with open(path) as f:
            return json.load(f)
    except (IOError, OSError) as exc:
        raise CliError("%s: the playbook wrote no %s document (%s)" % (path, what, exc.strerror or exc))
    except ValueError as exc:
        raise CliError("%s: the %s document is not JSON: %s" % (path, what, exc))


def ssh_command(document, node, extra=()):
    """The argv of the node's ssh command, as the status document (and table) shows it, with
    ``extra`` appended (ssh takes options after the destination too, then the command)."""
    nodes = dict((n.get("node"), n) for n in document.get("nodes", []))
    experiment = "%s/%s" % (document.get("project"), document.get("name"))
    if node not in nodes:
        raise CliError("node: %s has no node %r (its nodes: %s)" % (experiment, node, ", ".join(sorted(nodes)) or "none"))
    entry = nodes[node]
    command = entry.get("ssh")
    if not command or command == "-":
        raise CliError("node %s of %s has no ssh command (state %s): swap it in first (testbed up FILE)"
                       % (node, experiment, entry.get("state") or "unknown"))
    return shlex.split(command) + list(extra)


def run(argv, env, output=None):
    """Run ansible-playbook; its output streams to this stdout, or is returned (``output`` PIPE),
    or streams to stderr (``output`` STDERR). Returns (exit status, captured text or None); a
    death by a signal is 128 + the signal."""
    stdout = {PIPE: subprocess.PIPE, STDERR: 2}.get(output)
    proc = subprocess.Popen(argv, env=env, universal_newlines=True, stdout=stdout,
                            stderr=subprocess.STDOUT if output == PIPE else None)
    text = None
    try:
        text = proc.communicate()[0]
    except KeyboardInterrupt:
        proc.wait()  # ansible-playbook had the SIGINT too and stops by itself
    status = proc.returncode
    return (128 - status if status < 0 else status), text


# --- the commands: each returns (playbook, its variables, how its result is handled) ----------

def cmd_up(args):
    return "experiment", experiment_vars(args), None


def cmd_down(args):
    return "teardown", experiment_vars(args), None


def cmd_status(args):
    return "status", experiment_vars(args), "status" if args.json else None


def cmd_ssh(args):
    return "status", dict(experiment_vars(args), fail_on_dead=False), "ssh"


def cmd_list(args):
    return "list", {}, "list" if args.json else None


def cmd_capture(args):
    variables = dict(experiment_vars(args), node=args.node, lan=args.lan)
    for key in ("seconds", "count", "filter", "dest"):
        if getattr(args, key) is not None:
            variables[key] = getattr(args, key)
    return "capture", variables, None


def cmd_event(args):
    return "event", dict(experiment_vars(args), event=args.event), None


def cmd_graph(args):
    variables = experiment_vars(args)
    for key in ("dest", "formats"):
        if getattr(args, key) is not None:
            variables[key] = getattr(args, key)
    return "visualize", variables, None


def cmd_snapshot(args):
    variables = dict(experiment_vars(args), node=args.node)
    if args.image:
        variables["snapshot_image"] = args.image
    return "snapshot", variables, None


def cmd_prepare(args):
    return "hosts", {}, None


# the JSON documents of status.yml and list.yml: the variable that names the file each writes,
# and the file's name (in a temporary directory)
DOCUMENTS = {"status": ("status_file", "status.json"), "ssh": ("status_file", "status.json"),
             "list": ("list_file", "list.json")}


def add_options(parser, suffix):
    """-i, -e, -v and --dry-run, accepted before the command (suffix '') and after it."""
    parser.add_argument("-i", "--inventory", action="append", default=[] if not suffix else argparse.SUPPRESS,
                        dest="inventory" + suffix, metavar="INVENTORY", help="an inventory (repeatable)")
    parser.add_argument("-e", "--extra-vars", action="append", default=[] if not suffix else argparse.SUPPRESS,
                        dest="extra_vars" + suffix, metavar="VAR", help="passed to ansible-playbook (repeatable)")
    parser.add_argument("-v", "--verbose", action="count", default=0 if not suffix else argparse.SUPPRESS,
                        dest="verbose" + suffix, help="more of ansible-playbook's output (repeatable)")
    parser.add_argument("--dry-run", "--print", action="store_true", default=False if not suffix else argparse.SUPPRESS,
                        dest="dry_run" + suffix, help="print the ansible-playbook command line, run nothing")


def build_parser():
    parser = argparse.ArgumentParser(prog="testbed", description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n".join(__doc__.splitlines()[2:]))
    add_options(parser, "")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    def command(name, func, help_text):
        sub = commands.add_parser(name, help=help_text, description=help_text)
        add_options(sub, "_after")
        sub.set_defaults(func=func)
        return sub

    sub = command("up", cmd_up, "swap an experiment in, or modify it in place (playbooks/experiment.yml)")
    sub.add_argument("file", metavar="FILE", help="the experiment file (or an NS / containerlab / compose file)")
    sub = command("down", cmd_down, "swap an experiment out (playbooks/teardown.yml)")
    sub.add_argument("file", metavar="FILE")
    sub = command("status", cmd_status, "show each node of an experiment (playbooks/status.yml)")
    sub.add_argument("file", metavar="FILE", nargs="?", help="default: the collection's examples/demo.yml")
    sub.add_argument("--json", action="store_true", help="print only the status document (JSON) on stdout")
    sub = command("ssh", cmd_ssh, "ssh into a node, with the command its status shows")
    sub.add_argument("node", metavar="NODE")
    sub.add_argument("file", metavar="FILE", nargs="?")
    sub = command("list", cmd_list, "the experiments on the inventory's hosts (playbooks/list.yml)")
    sub.add_argument("--json", action="store_true", help="print only the list document (JSON) on stdout")
    sub = command("capture", cmd_capture, "capture a node's (or a LAN's) packets into a pcap (playbooks/capture.yml)")
    sub.add_argument("node", metavar="NODE", help="a node, or all (the LAN's bridge)")
    sub.add_argument("lan", metavar="LAN")
    sub.add_argument("file", metavar="FILE", nargs="?")
    sub.add_argument("--seconds", type=int)
    sub.add_argument("--count", type=int)
    sub.add_argument("--filter", help="a BPF filter, e.g. 'icmp'")
    sub.add_argument("--dest", help="the controller directory for the pcap (default: here)")
    sub = command("event", cmd_event, "apply one event now (playbooks/event.yml, docs/operate.md)")
    sub.add_argument("event", metavar="EVENT", help="one argument, e.g. 'link lan0 down'")
    sub.add_argument("file", metavar="FILE", nargs="?")
    sub = command("graph", cmd_graph, "draw the experiment's topology (playbooks/visualize.yml)")
    sub.add_argument("file", metavar="FILE", nargs="?")
    sub.add_argument("--dest", help="the pictures' path prefix (default: ./PROJECT-NAME)")
    sub.add_argument("--formats", help="e.g. svg,png,pdf")
    sub = command("snapshot", cmd_snapshot, "commit a node's container into an image (playbooks/snapshot.yml)")
    sub.add_argument("node", metavar="NODE")
    sub.add_argument("file", metavar="FILE", nargs="?")
    sub.add_argument("--image", help="REPO[:TAG] (default: testbed-snapshot/PROJECT-NAME-NODE)")
    command("prepare", cmd_prepare, "prepare the inventory's hosts ahead of any experiment (playbooks/hosts.yml)")
    sub = command("convert", None, "convert an NS file, a containerlab topology or a compose project (no Ansible)")
    sub.add_argument("source", metavar="SOURCE")
    sub.add_argument("-o", "--output", help="write it here (default: print it)")
    sub.add_argument("--format", choices=["ns", "clab", "compose", "native"])
    sub.add_argument("--strict", action="store_true", help="warnings are errors")
    return parser


def parse(argv):
    """The arguments, with the options given after the command merged into those before it and
    the arguments after the first `--` in ``rest``."""
    argv = list(argv)
    rest = []
    if "--" in argv:
        rest = argv[argv.index("--") + 1:]
        argv = argv[:argv.index("--")]
    args = build_parser().parse_args(argv)
    for key in ("inventory", "extra_vars"):
        setattr(args, key, getattr(args, key) + getattr(args, key + "_after", []))
    args.verbose += getattr(args, "verbose_after", 0)
    args.dry_run = args.dry_run or getattr(args, "dry_run_after", False)
    args.rest = rest
    return args


def converter():
    """tools/testbed_convert.py, beside this file."""
    if HERE not in sys.path:
        sys.path.insert(0, HERE)
    import testbed_convert  # pylint: disable=import-outside-toplevel
    return testbed_convert


def link_checkout(root=ROOT):
    """In a checkout, the link .collections/ansible_collections/testbed/containers -> the checkout
    that its ansible.cfg's collections_path finds the collection by (setup.sh makes it too)."""
    if not installed(root):
        converter().importable()


def convert(args, out):
    """testbed convert: tools/testbed_convert.py in this process (the converter is pure Python)."""
    argv = [args.source] + (["-o", args.output] if args.output else []) + (["--format", args.format] if args.format else []) \
        + (["--strict"] if args.strict else []) + list(args.rest)
    if args.dry_run:
        out.write(shlex.join([os.path.join(HERE, "testbed-convert")] + argv) + "\n")
        return 0
    return converter().main(argv)


def read_back(argv, env, path, what, verbose, err):
    """Run a playbook that writes a document to ``path``: (exit status, the document or None).
    ansible-playbook's output goes to ``err`` when it fails or writes nothing (with -v: to stderr
    as it runs), so that stdout holds the document alone."""
    status, text = run(argv, env, STDERR if verbose else PIPE)
    written = os.path.exists(path)
    if text and (status != 0 or not written):
        err.write(text)
    return (status, read_document(path, what)) if written else (status or 1, None)


def execute(args, ansible_playbook=None, environ=None, execvp=os.execvp, out=None, err=None):
    """Run the parsed command; returns the exit status (``testbed ssh`` ends in ``execvp``)."""
    out = out or sys.stdout
    err = err or sys.stderr
    if args.command == "convert":
        return convert(args, out)
    name, variables, document = args.func(args)
    ssh_extra = []
    if document == "ssh":
        ssh_extra, args.rest = args.rest, []
    env, added = environment(os.environ if environ is None else environ, verbose=args.verbose)
    executable = ansible_playbook or find_ansible_playbook()
    path = playbook_path(name, check=not args.dry_run)
    if document:
        variables = dict(variables, format="json")
    if args.dry_run:
        if document:
            variables[DOCUMENTS[document][0]] = DRY_RUN_FILE % DOCUMENTS[document][1]
        words = ["%s=%s" % (k, shlex.quote(v)) for k, v in sorted(added.items())]
        out.write(" ".join(words + [shlex.join(command_line(executable, path, variables, args))]) + "\n")
        if document == "ssh":
            out.write("# then: exec the ssh command of %s in that document%s\n"
                      % (args.node, " + " + shlex.join(ssh_extra) if ssh_extra else ""))
        return 0
    link_checkout()
    if not document:
        return run(command_line(executable, path, variables, args), env)[0]
    tmpdir = tempfile.mkdtemp(prefix="testbed-")
    try:
        variables[DOCUMENTS[document][0]] = os.path.join(tmpdir, DOCUMENTS[document][1])
        status, parsed = read_back(command_line(executable, path, variables, args), env,
                                   variables[DOCUMENTS[document][0]], DOCUMENTS[document][1][:-5], args.verbose, err)
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
    if parsed is None:
        return status
    if document != "ssh":
        out.write(json.dumps(parsed, indent=2, sort_keys=True) + "\n")
        return status
    # a failed host elsewhere (its output is above) does not keep us from this node
    command = ssh_command(parsed, args.node, ssh_extra)
    if args.verbose:
        err.write(shlex.join(command) + "\n")
    out.flush()
    err.flush()
    execvp(command[0], command)
    return 0  # only a test's execvp returns


def main(argv=None, **kwargs):
    args = parse(sys.argv[1:] if argv is None else argv)
    try:
        return execute(args, **kwargs)
    except CliError as exc:
        (kwargs.get("err") or sys.stderr).write("testbed %s: %s\n" % (args.command, exc))
        return exc.status
    except OSError as exc:  # ssh or ansible-playbook could not be started
        (kwargs.get("err") or sys.stderr).write("testbed %s: %s: %s\n" % (args.command, exc.filename or "", exc.strerror))
        return 127


if __name__ == "__main__":
    sys.exit(main())
