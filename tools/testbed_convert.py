"""Convert an Emulab/DETER NS file, a containerlab topology or a docker-compose project into a
testbed.containers experiment file and print it (or write it with -o).

    tools/testbed-convert FILE [-o OUT.yml] [--format ns|clab|compose] [--strict]
                               [--name NAME] [--project P] [--default-image IMAGE]
                               [--os-image OS=IMAGE ...] [--kind-image KIND=IMAGE ...]

Notes (what was not carried over as written, with file and line) go to stderr and, as comments,
into the output. Exit status: 0 converted, 1 errors (nothing written), 2 bad usage.
It runs from a checkout or an installed collection (it finds the collection beside itself)."""
import argparse
import os
import sys

HERE = os.path.dirname(os.path.realpath(__file__))
ROOT = os.path.dirname(HERE)


def importable():
    """Make this checkout (or installed collection) importable as ansible_collections.testbed.containers."""
    parts = ROOT.split(os.sep)
    if len(parts) >= 3 and parts[-3] == "ansible_collections":
        sys.path.insert(0, os.sep.join(parts[:-3]))
        return
    sys.path.insert(0, os.path.join(ROOT, "tests"))
    import checkout  # the checkout's tests/checkout.py links it under .collections
    checkout.importable()


def pairs(values, what):
    result = {}
    for value in values or ():
        key, sep, image = value.partition("=")
        if not sep or not key or not image:
            raise SystemExit("--%s takes NAME=IMAGE, got %r" % (what, value))
        result[key] = image
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source")
    parser.add_argument("-o", "--output")
    parser.add_argument("--format", choices=["ns", "clab", "compose", "native"])
    parser.add_argument("--strict", action="store_true", help="warnings are errors")
    parser.add_argument("--name")
    parser.add_argument("--project")
    parser.add_argument("--default-image")
    parser.add_argument("--os-image", action="append", help="OS=IMAGE (NS tb-set-node-os)")
    parser.add_argument("--kind-image", action="append", help="KIND=IMAGE (containerlab kinds)")
    args = parser.parse_args(argv)
    importable()
    from ansible_collections.testbed.containers.plugins.module_utils import files, importers
    options = {"strict": args.strict}
    for key in ("name", "project", "default_image"):
        if getattr(args, key):
            options[key] = getattr(args, key)
    if args.os_image:
        options["os_images"] = pairs(args.os_image, "os-image")
    if args.kind_image:
        options["kind_images"] = pairs(args.kind_image, "kind-image")
    try:
        fmt, doc, notes = importers.load(args.source, args.format, options)
    except importers.ImportFailed as exc:
        for note in exc.notes:
            print(note, file=sys.stderr)
        return 1
    except (IOError, OSError, ValueError) as exc:
        print("%s: %s" % (args.source, exc), file=sys.stderr)
        return 1
    for note in notes:
        print(note, file=sys.stderr)
    text = importers.render_yaml(doc, notes, args.source, fmt)
    if args.output:
        files.atomic_write(args.output, text, durable=False)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
