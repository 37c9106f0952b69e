"""A private Docker engine for the container test, and base images without a registry.

The engine is Debian's dockerd (package docker.io), started for the test with
its data in the checkout's .run/docker/data, so images and build layers stay
cached from one run to the next, and its sockets in a short folder under /tmp
(a unix socket path has a 108-byte limit). It runs with --bridge=none and no
iptables rules: containers use --network host and reach the local AWS on
127.0.0.1. One test at a time uses the data folder (a lock file); the engine
is stopped when the test ends.

No image registry is reachable here, so the base images the Dockerfile names
(`FROM debian:12`, `FROM debian:bookworm-slim`) are made from Debian's
packages when the engine does not have them: `debootstrap --variant=minbase
bookworm`, with the apt settings of the official images (no caches kept in
layers, compressed indexes, no translations; the slim tag also leaves out
documentation, manual pages and locales), then `docker import` under each
name. The Dockerfile stays as a user with a registry writes it.
"""

import fcntl
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path


class NoEngine(Exception):
    """No Docker engine could be started here; the message says why."""


# The apt settings of the official Debian images (debuerreotype), so that a
# Dockerfile's `apt-get install` layers come out the size they would on a
# registry's debian image.
APT_CONF = {
    "docker-clean": (
        'DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb '
        '/var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };\n'
        'APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb '
        '/var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };\n'
        'Dir::Cache::pkgcache "";\nDir::Cache::srcpkgcache "";\n'),
    "docker-gzip-indexes": 'Acquire::GzipIndexes "true";\n',
    "docker-no-languages": 'Acquire::Languages "none";\n',
    "docker-autoremove-suggests": 'Apt::AutoRemove::SuggestsImportant "false";\n',
}
SLIM_DPKG = """path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
"""
SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"


def base_images(dockerfile):
    """The images a Dockerfile's FROM lines name, without its own stage names."""
    names, stages = [], set()
    for line in Path(dockerfile).read_text().splitlines():
        m = re.match(r"\s*FROM\s+(?:--\S+\s+)*(\S+)(?:\s+AS\s+(\S+))?", line, re.I)
        if not m:
            continue
        if m.group(1) not in stages and m.group(1) not in names:
            names.append(m.group(1))
        if m.group(2):
            stages.add(m.group(2))
    return names


def unmount_under(folder):
    """Unmount what is mounted below folder, deepest first."""
    prefix = str(folder).rstrip("/") + "/"
    with open("/proc/self/mounts") as f:
        points = [line.split()[1] for line in f if line.split()[1].startswith(prefix)]
    for point in sorted(points, key=len, reverse=True):
        subprocess.run(["umount", point], capture_output=True, check=False)


class Engine:
    """dockerd for one test: start() (or NoEngine), docker(...), stop()."""

    def __init__(self, root, log=print):
        self.data = Path(root) / ".run" / "docker"
        self.log = log
        self.proc = None
        self.lock = None
        self.sock_dir = None
        self.env = dict(os.environ)
        self.env.pop("DOCKER_CONTEXT", None)
        self.env["DOCKER_BUILDKIT"] = "0"  # the classic builder: no buildx plugin needed

    def start(self, timeout_s=60.0):
        dockerd = shutil.which("dockerd")
        if dockerd is None or shutil.which("docker") is None:
            raise NoEngine("dockerd or docker is not installed (Debian package docker.io; "
                           "tools/bootstrap installs it)")
        if os.geteuid() != 0:
            raise NoEngine("dockerd needs root, and this test does not run as root")
        self.data.mkdir(parents=True, exist_ok=True)
        self.lock = open(self.data / "lock", "w")
        fcntl.flock(self.lock, fcntl.LOCK_EX)  # one test at a time on this data folder
        self.sock_dir = Path(tempfile.mkdtemp(prefix="eddy-docker."))
        sock = self.sock_dir / "docker.sock"
        self.env["DOCKER_HOST"] = f"unix://{sock}"
        self.log_path = self.data / "dockerd.log"
        cmd = [dockerd, "--bridge=none", "--iptables=false", "--ip6tables=false",
               "--data-root", str(self.data / "data"), "--exec-root", str(self.sock_dir / "exec"),
               "--pidfile", str(self.sock_dir / "dockerd.pid"), "--host", f"unix://{sock}"]
        with open(self.log_path, "wb") as out:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                         start_new_session=True)
        deadline = time.monotonic() + timeout_s
        while True:
            if self.proc.poll() is not None:
                tail = self.log_tail()
                self.stop()
                raise NoEngine(f"dockerd exited with status {self.proc.returncode} "
                               f"(log: {self.log_path}):\n{tail}")
            if sock.exists() and self.docker("version", check=False).returncode == 0:
                return
            if time.monotonic() > deadline:
                tail = self.log_tail()
                self.stop()
                raise NoEngine(f"dockerd did not answer within {timeout_s:.0f} s "
                               f"(log: {self.log_path}):\n{tail}")
            time.sleep(0.2)

    def log_tail(self, n=15):
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def docker(self, *args, check=True, capture=True, input_data=None, timeout=600):
        proc = subprocess.run(["docker", *args], env=self.env, input=input_data,
                              capture_output=capture, check=False, timeout=timeout)
        if check and proc.returncode != 0:
            err = proc.stderr.decode(errors="replace") if capture else ""
            raise RuntimeError(f"docker {' '.join(args[:3])} exited {proc.returncode}: {err}")
        return proc

    def has_image(self, name):
        return self.docker("image", "inspect", name, check=False).returncode == 0

    def ensure_base_images(self, names):
        """Make each missing debian:* image from Debian's packages; returns what was made."""
        missing = [n for n in names if not self.has_image(n)]
        if not missing:
            return []
        for name in missing:
            if not name.startswith("debian:"):
                raise RuntimeError(f"base image {name} is missing and only debian:* images can "
                                   "be made without a registry")
        if shutil.which("debootstrap") is None:
            raise NoEngine("debootstrap is not installed (tools/bootstrap installs it)")
        with tempfile.TemporaryDirectory(prefix="eddy-rootfs.") as tmp:
            rootfs = Path(tmp) / "rootfs"
            self.log(f"   debootstrap --variant=minbase {SUITE} (for {', '.join(missing)})")
            proc = subprocess.run(["debootstrap", "--variant=minbase", SUITE, str(rootfs), MIRROR],
                                  capture_output=True, text=True, check=False)
            if proc.returncode != 0:
                raise RuntimeError(f"debootstrap failed:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
            for name, text in APT_CONF.items():
                (rootfs / "etc/apt/apt.conf.d" / name).write_text(text)
            for sub in ("var/cache/apt/archives", "var/lib/apt/lists"):
                for f in (rootfs / sub).glob("*"):
                    if f.is_file():
                        f.unlink()
            for name in sorted(missing, key=lambda n: "slim" in n):  # slim last
                slim = "slim" in name
                if slim:
                    (rootfs / "etc/dpkg/dpkg.cfg.d/docker").write_text(SLIM_DPKG)
                    for sub in ("usr/share/man", "usr/share/info", "usr/share/locale"):
                        shutil.rmtree(rootfs / sub, ignore_errors=True)
                        (rootfs / sub).mkdir()
                self.import_rootfs(rootfs, name)
        return missing

    def import_rootfs(self, rootfs, name):
        tar = subprocess.Popen(["tar", "-C", str(rootfs), "--numeric-owner", "-c", "."],
                               stdout=subprocess.PIPE)
        try:
            proc = subprocess.run(["docker", "import", "--change", 'CMD ["bash"]', "-", name],
                                  env=self.env, stdin=tar.stdout, capture_output=True,
                                  check=False)
        finally:
            tar.stdout.close()
            tar.wait()
        if proc.returncode != 0 or tar.returncode != 0:
            raise RuntimeError(f"docker import {name} failed: {proc.stderr.decode(errors='replace')}")

    def inspect(self, name):
        proc = self.docker("inspect", name, check=False)
        if proc.returncode != 0:
            return None
        return json.loads(proc.stdout)[0]

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        if self.sock_dir is not None:
            unmount_under(self.sock_dir)  # dockerd leaves its netns mount behind
            shutil.rmtree(self.sock_dir, ignore_errors=True)
            self.sock_dir = None
        if self.lock is not None:
            self.lock.close()
            self.lock = None


def _exit_on_term(signum, frame):
    raise SystemExit(128 + signum)


def prepare(root):
    """Make the base images ahead of the container test (tools/test runs this in the
    background while it compiles): debootstrap waits on the network and the disk, the
    compilers on the CPU, so the two overlap. The test takes the same lock, so it
    waits for this to finish and then finds the images made. Any failure is left for
    the test to meet and report."""
    signal.signal(signal.SIGTERM, _exit_on_term)  # tools/test stopping early: engine first
    engine = Engine(root)
    try:
        engine.start()
        made = engine.ensure_base_images(base_images(Path(root) / "deploy" / "Dockerfile"))
        print(f"base images made: {', '.join(made) or 'none needed'}")
    except (NoEngine, RuntimeError, OSError) as err:
        print(f"base images not made ahead: {err}")
    finally:
        engine.stop()


if __name__ == "__main__":
    import sys

    if len(sys.argv) != 3 or sys.argv[1] != "prepare":
        sys.exit("usage: containerkit.py prepare ROOT")
    prepare(sys.argv[2])
