#!/usr/bin/python3
"""The README's "Producing records" examples, run verbatim against a real Kafka.

    readme_examples_test.py SOURCE_DIR BIN_DIR        # ctest -L docs (about 1 minute)

README.md's section "Producing records" has a ```sh block (a broker, ingest, records with
kcat and `streamtrain produce`, the store, the dead-letter topic) and a ```python block
(one record with confluent-kafka to localhost:29092). This test extracts both and runs
them as written, so that they cannot go stale:

- in a private network and mount namespace (unshare --net --mount, as root; skipped
  otherwise) with a private /tmp, so the README's fixed paths (/tmp/bootstrap, /tmp/store)
  and port (29092) are its own;
- with build/bin first on PATH and Debian's python3 (which has confluent_kafka) next;
- the sh block under `bash -e`, with a trap that stops its background jobs (the broker and
  ingest) when the script ends; then the Python example, while they still run.

Then it checks the effects: the store holds every record the examples produce (the kcat
one, `streamtrain produce --limit N`'s, the Python one) and nothing else, and the README's
own command for the dead-letter topic prints the rejected record's reason headers.

The extraction fails loudly when the section or its blocks change shape (a block missing,
added, or without the commands this test relies on), so the test never tests nothing:
update the expectations below together with the README.
"""

import json
import os
import re
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from private_network import (Failure, Service, enter_private_network,  # noqa: E402
                             setup_private_network, wait_until)

SECTION = "## Producing records"
# Each block must contain these (regular expressions, one per line of the block at least).
SH_SHAPE = [r"^streamtrain broker .*--port 29092 .*--bootstrap-file /tmp/bootstrap .*&",
            r"^streamtrain-ingest .*--store /tmp/store .*&",
            r"kcat -P -b \$B -t records",
            r"^echo '.*' \| kcat -P -b \$B -t records",
            r"^streamtrain produce .*--limit (\d+)",
            r"^streamtrain inspect store /tmp/store --json",
            r"^kcat -C -b \$B -t records\.dlq -e"]
PY_SHAPE = [r"^from confluent_kafka import Producer", r'"bootstrap\.servers": "localhost:29092"',
            r'^producer\.produce\("records", ', r"^producer\.flush\(\)"]


def log(text):
    print("readme examples: " + text, flush=True)


def extract(readme):
    """(sh block, python block) of the section, failing when their shape changed."""
    with open(readme) as f:
        text = f.read()
    start = text.find("\n" + SECTION + "\n")
    if start < 0:
        raise Failure("README.md has no section '%s'" % SECTION)
    end = text.find("\n## ", start + 1)
    section = text[start:end if end > 0 else len(text)]
    blocks = re.findall(r"^```(\w*)\n(.*?)^```$", section, re.M | re.S)
    kinds = [kind for kind, _ in blocks]
    if kinds != ["sh", "python"]:
        raise Failure("'%s' has the blocks %s; this test runs one sh, then one python block: "
                      "update tests/docs/readme_examples_test.py with the README" %
                      (SECTION, kinds))
    sh, python = blocks[0][1], blocks[1][1]
    for name, block, shape in (("sh", sh, SH_SHAPE), ("python", python, PY_SHAPE)):
        for pattern in shape:
            if not re.search(pattern, block, re.M):
                raise Failure("the %s block of '%s' has no line matching %s:\n%s" %
                              (name, SECTION, pattern, block))
    # One good record and one bad one with kcat: the good one is counted in the store.
    if len(re.findall(r"\| kcat -P", sh)) != 2:
        raise Failure("the sh block of '%s' should produce two records with kcat, a good one "
                      "and a bad one:\n%s" % (SECTION, sh))
    return sh, python


def write_script(work, sh, python, ready, release):
    """The sh block as written, run under bash -e; its background jobs are stopped when the
    script ends, however it ends. After it, the Python example; then the script waits until
    the checks are done (they need the broker and ingest running)."""
    with open(os.path.join(work, "example.py"), "w") as f:
        f.write(python)
    path = os.path.join(work, "readme.sh")
    with open(path, "w") as f:
        f.write("set -e\n"
                "trap 'status=$?; kill $(jobs -p) 2>/dev/null || true; wait; exit $status' EXIT\n"
                "echo '==== the sh block of README.md'\n"
                + sh +
                "echo '==== the python block of README.md'\n"
                "timeout 120 python3 %s/example.py\n"
                "echo \"B=$B\" > %s\n"
                "read -r _ < %s\n" % (work, ready, release))
    return path


def check_effects(env, bootstrap, expected, produced, dlq_command, script):
    """The store holds exactly the records the examples produce; the README's dead-letter
    command prints the rejected record's reason."""

    def store_records():
        out = subprocess.run(["streamtrain", "inspect", "store", "/tmp/store", "--json"],
                             env=env, capture_output=True, text=True)
        return json.loads(out.stdout)["records"] if out.returncode == 0 else -1

    wait_until(lambda: store_records() >= expected, 90, "%d records in /tmp/store" % expected,
               [script])
    records = store_records()
    log("/tmp/store holds %d records (%d produced, kcat's and Python's)" % (records, produced))
    if records != expected:
        raise Failure("/tmp/store holds %d records, expected %d" % (records, expected))

    def dead_letter_headers():
        out = subprocess.run(["bash", "-c", dlq_command], env=dict(env, B=bootstrap),
                             capture_output=True, text=True, timeout=60)
        return out.stdout if "streamtrain.reject.reason=" in out.stdout else None

    headers = wait_until(dead_letter_headers, 60, "the rejected record on records.dlq", [script])
    log("`%s` prints: %s" % (dlq_command, headers.strip()))
    if headers.strip().count("\n") != 0:
        raise Failure("expected one rejected record on records.dlq, got:\n%s" % headers)
    with open(script.log, errors="replace") as f:
        if "streamtrain.reject.reason=" not in f.read():
            log("note: the block's own dead-letter command ran before ingest rejected the record")


def main():
    if len(sys.argv) != 3:
        print(__doc__)
        return 2
    src, bin_dir = (os.path.abspath(p) for p in sys.argv[1:])
    try:
        sh, python = extract(os.path.join(src, "README.md"))
        if subprocess.run(["/usr/bin/python3", "-c", "import confluent_kafka"]).returncode != 0:
            raise Failure("Debian's python3 has no confluent_kafka (python3-confluent-kafka)")
    except Failure as e:
        log("FAILED: %s" % e)
        return 1
    enter_private_network([os.path.abspath(__file__), src, bin_dir])
    # A checkout under /tmp (a CI clone) stays where it is in the test's own /tmp.
    setup_private_network(private_tmp=True, keep=[src, bin_dir])
    started = time.monotonic()

    produced = int(re.search(SH_SHAPE[4], sh, re.M).group(1))
    expected = produced + 1 + 1  # `streamtrain produce`, kcat's good record, Python's record
    dlq_command = next(line for line in sh.splitlines() if re.match(SH_SHAPE[6], line))
    dlq_command = dlq_command.split("  #")[0].strip()
    work = "/tmp/readme-test"
    os.makedirs(work)
    ready, release = os.path.join(work, "ready"), os.path.join(work, "release")
    os.mkfifo(release)
    env = {"PATH": "%s:/usr/bin:/bin" % bin_dir, "HOME": os.environ.get("HOME", "/root"),
           "LANG": "C.UTF-8"}
    for key in ("JAVA_HOME", "STREAMTRAIN_KAFKA_HOME", "XDG_CACHE_HOME"):
        if key in os.environ:
            env[key] = os.environ[key]
    script = Service("readme", ["bash", "-e", write_script(work, sh, python, ready, release)],
                     work, env=env, cwd=work)
    ok = False
    try:
        wait_until(lambda: os.path.exists(ready), 240, "the README's examples to run", [script])
        with open(ready) as f:
            bootstrap = f.read().strip().split("=", 1)[1]
        log("the sh and python blocks ran (bootstrap %s)" % bootstrap)
        check_effects(env, bootstrap, expected, produced, dlq_command, script)
        ok = True
    except Failure as e:
        log("FAILED: %s" % e)
    finally:
        # Lets the script end; its trap stops the broker and ingest.
        fd = os.open(release, os.O_RDWR | os.O_NONBLOCK)
        os.write(fd, b"done\n")
        os.close(fd)
        status = script.wait(120)
        if status is None:
            script.stop(grace=30)
        if ok and status != 0:
            log("FAILED: the script exited with %s" % status)
            ok = False
        if not ok:
            print("---- the script's output (%s):\n%s" % (script.log, script.tail(40)), flush=True)
    if ok:
        log("PASSED in %.0f s" % (time.monotonic() - started))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
