"""Helpers for the Python tests that run the real executables on fixed, well-known ports.

The compose file and the README name fixed ports (Kafka on 9092 or 29092, ingest on 9101,
...). On a shared machine those may be taken, or a second test run may want them too. So
these tests run in a private network namespace and a private mount namespace
(`unshare --net --mount`, as root): their own loopback device, on which every port is free,
and, where asked, their own /tmp and /etc/hosts. Nothing they start can be reached from, or
collide with, the rest of the machine, and the namespace disappears with its last process.

    enter_private_network(["/path/test.py", ...])   # re-executes the test inside; 77 if not root
    setup_private_network(hosts={"kafka": "127.0.0.1", "ingest": "127.0.1.2"}, hosts_dir=work)
    broker = Service("broker", ["streamtrain", "broker", "--port", "9092"], log_dir=...)
    wait_until(lambda: os.path.exists(bootstrap), 180, "the broker to start", [broker])
"""

import ctypes
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

# Exit code that ctest reports as skipped (SKIP_RETURN_CODE 77).
SKIP = 77
_MARKER = "STREAMTRAIN_PRIVATE_NETWORK"
_PR_SET_PDEATHSIG = 1


def enter_private_network(argv):
    """Re-executes this Python program with `argv` in a private network and mount namespace.

    Returns only when already inside one. Exits 77 (skipped) where that is not possible.
    """
    if os.environ.get(_MARKER) == "1":
        return
    if os.geteuid() != 0:
        print("SKIPPED: needs root for unshare --net --mount (a private network namespace)")
        sys.exit(SKIP)
    env = dict(os.environ, **{_MARKER: "1"})
    sys.stdout.flush()
    os.execvpe("unshare", ["unshare", "--net", "--mount", "--", sys.executable] + argv, env)


def setup_private_network(hosts=None, hosts_dir=None, private_tmp=False, keep=()):
    """Inside the namespaces: brings loopback up; optionally gives this namespace a fresh
    /tmp (tmpfs), and an /etc/hosts (written into `hosts_dir`) that maps `hosts`
    (name -> 127.x.y.z), localhost and this machine's name. The directories in `keep` (a
    checkout or build under /tmp, say) stay reachable at the same paths in the fresh /tmp."""
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    # unshare --mount already makes the mounts private; say so anyway, so nothing mounted
    # here can propagate back to the machine.
    subprocess.run(["mount", "--make-rprivate", "/"], check=True)
    if private_tmp:
        under_tmp = [p for p in keep if p == "/tmp" or p.startswith("/tmp/")]
        if "/tmp" in under_tmp:
            raise RuntimeError("cannot keep /tmp itself when replacing it")
        # Park each kept directory outside /tmp, mount the fresh /tmp, and bind it back.
        # The parking mounts live in this namespace only; /run holds just empty mount points.
        parked = []
        for i, path in enumerate(under_tmp):
            spot = "/run/streamtrain-keep-%d-%d" % (os.getpid(), i)
            os.makedirs(spot)
            subprocess.run(["mount", "--bind", path, spot], check=True)
            parked.append((path, spot))
        subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=1777,size=2g", "tmpfs", "/tmp"],
                       check=True)
        for path, spot in parked:
            os.makedirs(path, exist_ok=True)
            subprocess.run(["mount", "--bind", spot, path], check=True)
            subprocess.run(["umount", spot], check=True)
            os.rmdir(spot)
    if hosts is not None:
        path = os.path.join(hosts_dir, "hosts")
        lines = ["127.0.0.1 localhost %s" % os.uname().nodename, "::1 localhost ip6-localhost"]
        lines += ["%s %s" % (address, name) for name, address in hosts.items()]
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
        subprocess.run(["mount", "--bind", path, "/etc/hosts"], check=True)


def _die_with_parent():
    # A crashed or killed test leaves nothing behind: children get SIGKILL when it dies.
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


class Service:
    """A child process with its output in LOG_DIR/NAME.log, stopped like `docker stop`."""

    def __init__(self, name, argv, log_dir, env=None, cwd=None):
        self.name = name
        self.argv = argv
        self.log = os.path.join(log_dir, name + ".log")
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env,
                cwd=cwd, preexec_fn=_die_with_parent)

    def exited(self):
        return self.proc.poll() is not None

    def wait(self, timeout):
        """The exit status, or None when still running after `timeout` seconds."""
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, grace=60):
        """SIGTERM, then SIGKILL after `grace` seconds. Returns the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            if self.wait(grace) is None:
                self.proc.kill()
        return self.proc.wait()

    def tail(self, lines=30):
        try:
            with open(self.log, errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return ""


class Failure(Exception):
    pass


def wait_until(condition, timeout, what, watch=()):
    """Polls `condition` until it returns a true value (returned) or `timeout` seconds pass.

    Fails at once, with its log, when a Service of `watch` exits meanwhile.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        for service in watch:
            if service.exited():
                raise Failure("%s exited with status %s while waiting for %s; its log:\n%s" %
                              (service.name, service.proc.returncode, what, service.tail()))
        if time.monotonic() > deadline:
            raise Failure("timed out after %ds waiting for %s" % (timeout, what))
        time.sleep(0.2)  # polling another process's progress


def http_get(url, timeout=5):
    """(status, body) of a GET, or (None, error text) when nothing answered."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode("utf-8", "replace")
    except (urllib.error.URLError, OSError) as e:
        return None, str(e)


def metric(text, name, labels=None):
    """The sum of the samples of `name` (with `labels` among theirs) in a Prometheus text
    exposition, or None when there is none."""
    total = None
    for line in text.splitlines():
        if not line.startswith(name) or line.startswith("#"):
            continue
        series, _, value = line.rpartition(" ")
        metric_name, _, label_text = series.partition("{")
        if metric_name != name:
            continue
        if labels and any('%s="%s"' % kv not in label_text for kv in labels.items()):
            continue
        total = (total or 0.0) + float(value)
    return total
