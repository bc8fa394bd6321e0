"""The augmentation image zoo: images of every kind, built offline from the project's images.

Used by tests/integration/test_augment.py and bench/augment.py.  Every image is built with
``docker build`` FROM testbed/busybox:latest, testbed/debian:bookworm or scratch (nothing is
pulled; the nginx image installs Debian's package with apt inside the build).  An image whose
``testbed.zoo-recipe`` label matches its recipe is not rebuilt.
"""
import hashlib
import os
import shutil
import subprocess
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
DOCKER = "/usr/bin/docker"
BUSYBOX = "testbed/busybox:latest"
DEBIAN = "testbed/debian:bookworm"
HOST_BUSYBOX = "/bin/busybox"
ZOO_REPO = "testbed-zoo"
RECIPE_LABEL = "testbed.zoo-recipe"

ENTRYPOINT_SH = b"""#!/bin/sh
# the image's own entrypoint script: records its arguments, then serves them
echo "entrypoint args: $*"
mkdir -p /tmp/www
echo "args=$*" > /tmp/www/index.html
exec httpd -f -p "$2" -h /tmp/www
"""

DISTROLESS_PASSWD = b"root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n" \
                    b"nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"
DISTROLESS_GROUP = b"root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n"


def _hello_binary():
    """tests/integration/zoo/hello.c, compiled statically (once per source)."""
    src = os.path.join(HERE, "zoo", "hello.c")
    with open(src, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()[:12]
    out = os.path.join(tempfile.gettempdir(), "testbed-zoo-hello-%s" % digest)
    if not os.path.exists(out):
        subprocess.run(["gcc", "-static", "-Os", "-s", "-o", out + ".tmp", src], check=True)
        os.rename(out + ".tmp", out)
    with open(out, "rb") as f:
        return f.read()


def _host_busybox():
    with open(HOST_BUSYBOX, "rb") as f:
        return f.read()


# name -> (Dockerfile, {path in context: bytes or callable returning bytes (mode 0755)})
IMAGES = {
    "scratch-static": ("""FROM scratch
COPY busybox /opt/app/busybox
COPY index.html /www/index.html
ENTRYPOINT ["/opt/app/busybox", "httpd", "-f", "-p", "8080", "-h", "/www"]
""", {"busybox": _host_busybox, "index.html": b"zoo scratch-static\n"}),
    "busybox-entrypoint": ("""FROM %s
COPY entrypoint.sh /entrypoint.sh
ENTRYPOINT ["/entrypoint.sh"]
CMD ["serve", "8081"]
""" % BUSYBOX, {"entrypoint.sh": ENTRYPOINT_SH}),
    "debian-nginx": ("""FROM %s
RUN apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nginx \\
    >/dev/null && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin
RUN echo "zoo debian-nginx" > /var/www/html/index.html
EXPOSE 80
STOPSIGNAL SIGQUIT
CMD ["nginx", "-g", "daemon off;"]
""" % DEBIAN, {}),
    "user-workdir-env": ("""FROM %s
RUN groupadd -g 2345 extra && useradd -m -u 1234 -U alice && usermod -aG extra alice
USER alice
WORKDIR /home/alice/work
ENV GREETING="hello world" ZOO_KIND=user-workdir-env
CMD ["sleep", "1000000"]
""" % DEBIAN, {}),
    "numeric-user": ("""FROM %s
WORKDIR /data/sub
USER 4321:4321
ENV ZOO_KIND=numeric-user
CMD ["sleep", "1000000"]
""" % BUSYBOX, {}),
    "shell-form": ("""FROM %s
ENV WHO=world
CMD echo "hello $WHO" > /tmp/greeting; sleep 1000000
""" % BUSYBOX, {}),
    "exits-at-once": ("""FROM %s
CMD ["sh", "-c", "echo bye; exit 3"]
""" % BUSYBOX, {}),
    "distroless": ("""FROM scratch
COPY passwd /etc/passwd
COPY group /etc/group
COPY hello /hello
USER nonroot
WORKDIR /home/nonroot
ENV APP_MODE=distroless
ENTRYPOINT ["/hello"]
CMD ["--greet", "world"]
""", {"passwd": DISTROLESS_PASSWD, "group": DISTROLESS_GROUP, "hello": _hello_binary}),
    "no-command": ("""FROM scratch
COPY data.txt /data.txt
""", {"data.txt": b"only data\n"}),
    "signals": ("""FROM %s
CMD ["sh", "-c", "trap 'echo got-hup >> /tmp/signals' HUP; trap 'echo got-term >> /tmp/signals; exit 0' TERM; \
echo waiting; while :; do sleep 0.1; done"]
""" % BUSYBOX, {}),
}


def zoo_tag(name):
    return "%s/%s:latest" % (ZOO_REPO, name)


def sh(*args, check=True, timeout=600, env=None):
    proc = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True,
                          timeout=timeout, env=env, check=False)
    if check and proc.returncode != 0:
        raise AssertionError("%s failed (%d):\n%s" % (" ".join(args), proc.returncode, proc.stdout))
    return proc


def _image_id(ref):
    proc = sh(DOCKER, "image", "inspect", "-f", "{{.Id}}", ref, check=False)
    return proc.stdout.strip() if proc.returncode == 0 else None


def build_image(name):
    """Build zoo image NAME (skipped when its recipe label matches); returns (tag, seconds)."""
    dockerfile, files = IMAGES[name]
    contents = dict((path, data() if callable(data) else data) for path, data in files.items())
    digest = hashlib.sha256(dockerfile.encode("utf-8"))
    for base in (BUSYBOX, DEBIAN):
        if base in dockerfile:
            digest.update((_image_id(base) or "missing").encode("utf-8"))
    for path in sorted(contents):
        digest.update(path.encode("utf-8") + b"\0" + hashlib.sha256(contents[path]).digest())
    recipe = digest.hexdigest()
    tag = zoo_tag(name)
    current = sh(DOCKER, "image", "inspect", "-f", '{{index .Config.Labels "%s"}}' % RECIPE_LABEL, tag,
                 check=False).stdout.strip()
    if current == recipe:
        return tag, 0.0
    start = time.time()
    ctx = tempfile.mkdtemp(prefix="testbed-zoo-")
    try:
        with open(os.path.join(ctx, "Dockerfile"), "w") as f:
            f.write(dockerfile)
        for path, data in contents.items():
            full = os.path.join(ctx, path)
            with open(full, "wb") as f:
                f.write(data)
            os.chmod(full, 0o755)
        env = dict(os.environ, DOCKER_BUILDKIT="0")
        sh(DOCKER, "build", "-q", "--label", "%s=%s" % (RECIPE_LABEL, recipe), "-t", tag, ctx, env=env)
    finally:
        shutil.rmtree(ctx, ignore_errors=True)
    return tag, time.time() - start


def build_all():
    return dict((name, build_image(name)[0]) for name in IMAGES)
