#!/usr/bin/python3
"""docker-compose.yml run without Docker: every service of the file as a native process.

    compose_native_test.py SOURCE_DIR BIN_DIR        # ctest -L compose (about 80 s)

There is no Docker engine on the development machines, so this test reads docker-compose.yml
and starts what each service would run, the way compose would start it:

- In a private network and mount namespace (unshare --net --mount, as root; skipped
  otherwise), where an /etc/hosts maps every service name to a loopback address of its own
  (kafka 127.0.0.1, the others 127.0.1.N). The compose file's fixed ports (9092, 9101,
  9102, 8080, 9090) are free there and collide with nothing on the machine.
- The streamtrain services run build/bin/<entrypoint> with their `command`, their
  `environment` as written (STREAMTRAIN_* included) and a PATH like the image's. Paths the
  service mounts are mapped: a bind mount of the repository (./kafka, ./dashboards/...) to
  the repository's files, a named volume to a directory of the test (shared by the services
  that mount it, as the store is by ingest and the trainer).
- kafka (apache/kafka) is replaced by the project's broker, `streamtrain broker --port P`,
  P being the port of the listener the clients' STREAMTRAIN_BROKERS names (kafka:9092),
  with the service's other KAFKA_* settings as --broker-property (auto.create.topics.enable
  false, replication factors 1, ...). Its environment is checked for a valid KRaft setup
  first (roles, listeners, quorum voters, cluster id, no ZooKeeper).
- kafka-init runs kafka/create-topics.sh as its entrypoint says, with KAFKA_BIN=kafka/bin
  (the project's wrappers of the Kafka tools) standing for the image's /opt/kafka/bin; the
  broker starts with only a placeholder topic, so the script really creates the topics.
- prometheus runs Debian's prometheus with the mounted dashboards/prometheus.yml, as the
  prom/prometheus image would. Grafana is not run: its datasource URL is checked.
- depends_on is honoured: service_healthy waits for the service's healthcheck command, run
  natively with `localhost` meaning the service itself, /opt/kafka/bin mapped to kafka/bin.

Replica-1 and replica-2 both serve container port 8080. Docker gives each container its own
address; here each service has its own loopback address too, and a service whose container
port another service also uses gets STREAMTRAIN_BIND_ADDRESS=<its address> added to its
environment (the replica's --bind-address), so both bind 8080 and `replica-1:8080` and
`replica-2:8080` (the Prometheus targets) reach the right one.

The trainers may form a data-parallel training group (STREAMTRAIN_WORLD_SIZE > 1,
docs/distributed.md): one trainer service per rank, each with its own ingest and store, the
ingests in one consumer group. A rank's Gloo endpoint binds the address its hostname resolves
to, which in Docker is the container's own; here each rank gets
STREAMTRAIN_BIND_ADDRESS=<its service's address> (the trainer's --bind-address) instead.

Other overrides, to keep the test bounded: the producer streams STREAMTRAIN_LIMIT records
(default 1200, env STREAMTRAIN_COMPOSE_RECORDS; compose streams all 60,000), and the
trainer's initial model takes STREAMTRAIN_INITIAL_RECORDS=400 (compose: 10,000; in a group
rank 0 trains it on its store). The test prints every override.

Then it checks that the pipeline works: the producer exits 0, the ingests' /metrics count
every record stored (in a group: split between the ingests, each storing some; a record
stored by two ingests after a rebalance is allowed and reported), the trainer (all ranks
together) trains on all the others and publishes, every healthcheck passes, Prometheus
scrapes every target of dashboards/prometheus.yml (each a compose service and a port it
serves) and answers at Grafana's datasource URL; the trainer stopped (SIGTERM, as
`docker-compose stop` does) leaves a checkpoint whose version and digest every replica's
/v1/model reaches. In a group, SIGTERM to rank 0 stops every rank at the same iteration: each
exits 0 with a checkpoint of that iteration holding the same parameter digest. What only
Docker can show is listed as unverified at the end.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
here = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [here, os.path.join(here, "..", "support")]
from compose_stack import (STREAMTRAIN_IMAGE, ComposeStack, check_kafka_service,  # noqa: E402
                           log, served_ports)
from private_network import (Failure, enter_private_network, http_get, metric,  # noqa: E402
                             setup_private_network, wait_until)

RECORDS = int(os.environ.get("STREAMTRAIN_COMPOSE_RECORDS", "1200"))
INITIAL_RECORDS = 400
UNVERIFIED = [
    "building the images: the Dockerfile's build and runtime stages (the compose test only "
    "checks that the runtime stage installs the libraries the executables link)",
    "the apache/kafka image's own start-up: KAFKA_* turned into server.properties, the "
    "storage formatted with CLUSTER_ID, the EXTERNAL listener on host port 29092 (the "
    "listeners are checked for consistency, the other settings run on `streamtrain broker`)",
    "the healthcheck commands inside the images (curl, /opt/kafka/bin): they ran natively",
    "Docker's networking, DNS and published host ports (8081, 8082, 9101, ...), restart "
    "policies, stop_grace_period, `pid: service:ingest`, the volumes' ownership (uid 10001)",
    "Grafana itself (not run; its datasource URL was checked against Prometheus)",
]


def kafka_version(src):
    with open(os.path.join(src, "kafka", "pom.xml")) as f:
        return re.search(r"<kafka.version>(.*)</kafka.version>", f.read()).group(1)


def world_size(services, name):
    return int(env_of(services, name).get("STREAMTRAIN_WORLD_SIZE", 1))


def roles(services):
    """{role: [service]} for the streamtrain services: ingest, trainer, replica, producer.
    The trainers are in rank order (rank 0, the one that publishes, first)."""
    found = {"ingest": [], "trainer": [], "replica": [], "producer": []}
    for name, service in services.items():
        if service.get("image") != STREAMTRAIN_IMAGE:
            continue
        argv = list(service.get("entrypoint") or []) + list(service.get("command") or [])
        role = "producer" if argv[:2] == ["streamtrain", "produce"] else argv[0].split("-")[-1]
        if role in found:
            found[role].append(name)
    if len(found["producer"]) != 1:
        raise Failure("expected one producer service, found %s" % found["producer"])
    if not found["replica"]:
        raise Failure("found no replica service")
    trainers = found["trainer"]
    if not trainers:
        raise Failure("found no trainer service")
    w = world_size(services, trainers[0])
    ranks = sorted((int(env_of(services, n).get("STREAMTRAIN_RANK", 0)), n) for n in trainers)
    if [r for r, _ in ranks] != list(range(w)) or \
            any(world_size(services, n) != w for n in trainers):
        raise Failure("the trainers %s are not the ranks 0..%d of one group of %d (ranks %s, "
                      "world sizes %s)" % (trainers, w - 1, w, [r for r, _ in ranks],
                                           [world_size(services, n) for n in trainers]))
    found["trainer"] = [n for _, n in ranks]
    if w > 1:
        # Each rank reads its own store, written by its own ingest; the ingests share one
        # consumer group, so that Kafka splits the records between them.
        stores = [stack_volume(services, n, "STREAMTRAIN_STORE") for n in found["trainer"]]
        ingest_stores = sorted(stack_volume(services, n, "STREAMTRAIN_STORE")
                               for n in found["ingest"])
        groups = {env_of(services, n).get("STREAMTRAIN_GROUP") for n in found["ingest"]}
        if sorted(stores) != ingest_stores or len(set(stores)) != w or len(groups) != 1:
            raise Failure("a group of %d ranks needs one ingest per rank, each rank's store "
                          "its own and written by its ingest, the ingests in one consumer "
                          "group: rank stores %s, ingest stores %s, consumer groups %s" %
                          (w, stores, ingest_stores, sorted(map(str, groups))))
        rendezvous = env_of(services, found["trainer"][0]).get("STREAMTRAIN_RENDEZVOUS", "")
        if any(env_of(services, n).get("STREAMTRAIN_RENDEZVOUS") != rendezvous
               for n in found["trainer"]) or \
                rendezvous.rsplit(":", 1)[0] != found["trainer"][0]:
            raise Failure("every rank's STREAMTRAIN_RENDEZVOUS must name rank 0's service "
                          "(%s), found %s" % (found["trainer"][0], rendezvous))
    elif len(found["ingest"]) != 1 or len(trainers) != 1:
        raise Failure("expected one ingest and one trainer service, found %s and %s" %
                      (found["ingest"], trainers))
    return found


def stack_volume(services, name, variable):
    """The named volume a service mounts at the path its environment `variable` names."""
    path = env_of(services, name).get(variable, "")
    for volume in services[name].get("volumes", []):
        source, target = str(volume).split(":")[:2]
        if path == target or path.startswith(target + "/"):
            return source + path[len(target):]
    return None


def env_of(services, name):
    return services[name].get("environment") or {}


def url(name, port, path):
    return "http://%s:%d%s" % (name, port, path)


def check_topics(stack, services):
    """kafka-init created every topic of its TOPICS_FILE with its partitions."""
    init = [n for n in services
            if "create-topics.sh" in " ".join(map(str, services[n].get("entrypoint") or []))]
    if len(init) != 1:
        raise Failure("expected one service running kafka/create-topics.sh, found %s" % init)
    env = env_of(services, init[0])
    topics_file = stack.map_path(env["TOPICS_FILE"], stack.mounts(init[0]))
    wanted = {}
    with open(topics_file) as f:
        for line in f:
            fields = line.split()
            if fields and not fields[0].startswith("#"):
                wanted[fields[0]] = int(fields[1])
    listing = subprocess.run(["kcat", "-L", "-J", "-b", env["BOOTSTRAP_SERVER"]],
                             capture_output=True, text=True, timeout=60, check=True)
    have = {t["topic"]: len(t["partitions"]) for t in json.loads(listing.stdout)["topics"]}
    wrong = {t: (p, have.get(t)) for t, p in wanted.items() if have.get(t) != p}
    if not wanted or wrong:
        raise Failure("topics after %s (wanted, have): %s" %
                      (init[0], wrong or "none in %s" % topics_file))
    log("%s created %s" % (init[0], ", ".join("%s (%d partitions)" % kv for kv in wanted.items())))


def check_pipeline(stack, services, role):
    """Records stored, the trainer trained and published, health checks and Prometheus, and
    every replica at the stopped trainer's version and digest. Returns (version, digest)."""
    running = stack.running
    trainer, producer = role["trainer"][0], role["producer"][0]
    ranks = role["trainer"]  # [trainer] when it trains alone
    trigger = int(env_of(services, trainer).get("STREAMTRAIN_TRIGGER", 8))
    always_on = [running[n] for n in role["ingest"] + ranks + role["replica"]]
    check_topics(stack, services)

    status = wait_until(lambda: running[producer].proc.poll() is not None and
                        [running[producer].proc.returncode], 120, "the producer to finish",
                        always_on)[0]
    if status != 0:
        raise Failure("%s exited with %d; its log:\n%s" % (producer, status,
                                                           running[producer].tail()))

    def metrics_of(name):
        port = int(env_of(services, name)["STREAMTRAIN_METRICS_PORT"])
        code, body = http_get(url(name, port, "/metrics"))
        return body if code == 200 else ""

    def ingest_sum(name):
        return sum(metric(metrics_of(n), name) or 0 for n in role["ingest"])

    stored_total = "streamtrain_ingest_records_stored_total"
    lag = "streamtrain_ingest_consumer_lag_messages"
    wait_until(lambda: ingest_sum(stored_total) >= RECORDS and
               all(metric(metrics_of(n), lag) == 0 for n in role["ingest"]), 90,
               "ingest to store %d records" % RECORDS, always_on)
    stored = {n: int(metric(metrics_of(n), stored_total) or 0) for n in role["ingest"]}
    rejected = ingest_sum("streamtrain_ingest_records_rejected_total")
    log("ingest stored %s records, rejected %d" % (
        ", ".join("%d (%s)" % (v, n) for n, v in stored.items()), rejected))
    total = sum(stored.values())
    if len(ranks) == 1 and total != RECORDS or total < RECORDS or rejected != 0:
        raise Failure("ingest stored %d and rejected %d of %d records" %
                      (total, rejected, RECORDS))
    if total > RECORDS:
        # Only possible across ingests: a partition moved (a rebalance) before its last
        # offsets were committed, and the new owner stored them again (docs/distributed.md).
        log("%d records stored by two ingests (a rebalance moved a partition before its "
            "offsets were committed: at least once across ranks)" % (total - RECORDS))
    if len(ranks) > 1 and min(stored.values()) == 0:
        raise Failure("an ingest of the group stored nothing: %s" % stored)

    if len(ranks) == 1:
        streamed = (RECORDS - INITIAL_RECORDS) // trigger * trigger
        most = streamed
    else:
        # Weighted aggregation: the group iterates while its ranks together have t new
        # records, so fewer than t remain untrained at the end. Rank 0's initial model took
        # INITIAL_RECORDS of its store; every other rank streams its whole store.
        most = total - INITIAL_RECORDS
        streamed = most - (trigger - 1)

    def trained():
        return sum(metric(metrics_of(n), "streamtrain_trainer_records_trained_total") or 0
                   for n in ranks)

    wait_until(lambda: trained() >= streamed, 120,
               "the trainer%s to train on %d streamed records" % (
                   "s" if len(ranks) > 1 else "", streamed), always_on)
    if len(ranks) > 1:
        contributed = {n: metric(metrics_of(n), "streamtrain_trainer_records_trained_total")
                       for n in ranks}
        log("the group trained on %d streamed records: %s" % (trained(), ", ".join(
            "%d (%s)" % (v, n) for n, v in contributed.items())))
    body = metrics_of(trainer)
    published = metric(body, "streamtrain_deltas_published_total") or 0
    log("trainer: version %d, %d deltas and %d snapshots published" % (
        metric(body, "streamtrain_trainer_model_version") or 0, published,
        metric(body, "streamtrain_snapshots_published_total") or 0))
    # A single trainer iterates every t records; a group's iteration trains t to W t of
    # them, and rank 0 publishes one delta per global iteration.
    iterations = streamed // trigger if len(ranks) == 1 else \
        metric(body, "streamtrain_trainer_iterations_total") or 0
    if published < iterations or iterations == 0:
        raise Failure("the trainer published %d deltas for %d iterations" %
                      (published, iterations))

    # Every healthcheck passes once the trainer has published (the replicas' needs a model).
    for name in running:
        if stack.healthcheck(name):
            wait_until(lambda: stack.probe(name), 60, "%s's healthcheck to pass" % name, always_on)

    check_prometheus(stack, services, always_on)

    # `docker-compose stop trainer`: SIGTERM writes a checkpoint; every replica must reach
    # its version with the same digest. In a group every rank stops at the same iteration.
    status = stack.stop(trainer)
    if status != 0:
        raise Failure("the trainer exited with %d on SIGTERM; its log:\n%s" %
                      (status, running[trainer].tail()))
    checkpoints = {}
    for name in ranks:
        if name != trainer:
            status = running[name].wait(timeout=60)
            if status != 0:
                raise Failure("%s exited with %s when rank 0 stopped (expected 0: the group "
                              "stops together); its log:\n%s" % (name, status,
                                                                running[name].tail()))
        checkpoints[name] = inspect_checkpoint(stack, services, name, len(ranks) > 1)
    checkpoint = checkpoints[trainer]
    version, digest = checkpoint["version"], checkpoint["digest"]
    log("trainer checkpoint: version %d, digest %s, %d streamed records trained" % (
        version, digest, checkpoint["records_trained"]))
    if not streamed <= checkpoint["records_trained"] <= most:
        raise Failure("the checkpoint holds %d streamed records trained, expected %s" % (
            checkpoint["records_trained"],
            streamed if streamed == most else "%d to %d" % (streamed, most)))
    for name in ranks[1:]:
        other = checkpoints[name]
        log("%s checkpoint: iteration %d, parameter digest %s, %d group records trained" % (
            name, other["iterations"], other["parameters_digest"], other["records_trained"]))
        for key in ("iterations", "records_trained", "parameters_digest"):
            if other[key] != checkpoint[key]:
                raise Failure("%s's checkpoint has %s %s, rank 0's %s" %
                              (name, key, other[key], checkpoint[key]))
    for name in role["replica"]:
        port = int(env_of(services, name)["STREAMTRAIN_HTTP_PORT"])

        def served():
            code, body = http_get(url(name, port, "/v1/model"))
            model = json.loads(body) if code == 200 else {}
            return model if model.get("version") == version else None

        model = wait_until(served, 60, "%s to serve version %d" % (name, version), [running[name]])
        log("%s serves version %d, digest %s" % (name, model["version"], model["digest"]))
        if model["digest"] != digest:
            raise Failure("%s serves digest %s at version %d, the trainer %s" %
                          (name, model["digest"], version, digest))
    return version, digest


def inspect_checkpoint(stack, services, name, group):
    """`streamtrain inspect checkpoint --json` of a trainer service's checkpoint directory
    (a group rank's newest iteration-N directory in it)."""
    checkpoint_dir = stack.map_path(env_of(services, name)["STREAMTRAIN_CHECKPOINT_DIR"],
                                    stack.mounts(name))
    if group:
        complete = sorted(d for d in os.listdir(checkpoint_dir) if d.startswith("iteration-")
                          and os.path.exists(os.path.join(checkpoint_dir, d, "group.json")))
        if not complete:
            raise Failure("%s wrote no group checkpoint in %s" % (name, checkpoint_dir))
        checkpoint_dir = os.path.join(checkpoint_dir, complete[-1])
    inspected = subprocess.run([os.path.join(stack.bin, "streamtrain"), "inspect", "checkpoint",
                                checkpoint_dir, "--json"], capture_output=True, text=True,
                               check=True)
    return json.loads(inspected.stdout)


def check_prometheus(stack, services, watch):
    """Every scrape target of the mounted prometheus.yml is a compose service and a port it
    serves, and Prometheus scrapes each one successfully; Grafana's datasource URL reaches
    Prometheus."""
    import yaml

    prometheus = [n for n in stack.running
                  if services[n].get("image", "").startswith("prom/prometheus:")]
    if len(prometheus) != 1:
        raise Failure("expected one prometheus service, found %s" % prometheus)
    name = prometheus[0]
    config_path = stack.map_path("/etc/prometheus/prometheus.yml", stack.mounts(name))
    with open(config_path) as f:
        config = yaml.safe_load(f)
    expected = {}
    for job in config["scrape_configs"]:
        for static in job.get("static_configs", []):
            for target in static["targets"]:
                host, port = target.rsplit(":", 1)
                service = name if host == "localhost" else host
                if service not in services or int(port) not in served_ports(services[service]):
                    raise Failure("prometheus.yml: target %s of job %s is no port of a compose "
                                  "service" % (target, job["job_name"]))
                expected[target] = job["job_name"]

    def targets_up():
        code, body = http_get(url(name, 9090, "/api/v1/targets"))
        if code != 200:
            return None
        health = {t["labels"]["instance"]: t["health"]
                  for t in json.loads(body)["data"]["activeTargets"]}
        return health if all(health.get(t) == "up" for t in expected) else None

    health = wait_until(targets_up, 60, "Prometheus to scrape every target of %s" % config_path,
                        watch + [stack.running[name]])
    log("prometheus scrapes %s: all up" %
        ", ".join("%s (%s)" % (t, j) for t, j in sorted(expected.items())))
    unexpected = sorted(set(health) - set(expected))
    if unexpected:
        raise Failure("prometheus scrapes unexpected targets %s" % unexpected)

    for grafana in (n for n in services if services[n].get("image", "").startswith("grafana/")):
        for volume in services[grafana].get("volumes", []):
            source, target = str(volume).split(":")[:2]
            if target != "/etc/grafana/provisioning":
                continue
            folder = os.path.join(stack.src, source, "datasources")
            for file in sorted(os.listdir(folder)):
                with open(os.path.join(folder, file)) as f:
                    datasources = yaml.safe_load(f).get("datasources", [])
                for datasource in datasources:
                    base = datasource["url"].rstrip("/")
                    code, body = http_get(base + "/api/v1/query?query=up")
                    if code != 200 or json.loads(body)["status"] != "success":
                        raise Failure("%s's datasource %s does not answer: %s %s" %
                                      (grafana, base, code, body[:200]))
                    log("%s's datasource %s answers (%d series of `up`)" % (
                        grafana, base, len(json.loads(body)["data"]["result"])))


def main():
    if len(sys.argv) != 3:
        print(__doc__)
        return 2
    src, bin_dir = (os.path.abspath(p) for p in sys.argv[1:])
    enter_private_network([os.path.abspath(__file__), src, bin_dir])
    import yaml

    started = time.monotonic()
    with open(os.path.join(src, "docker-compose.yml")) as f:
        compose = yaml.safe_load(f)
    services = compose["services"]
    kafka = [n for n, s in services.items() if "KAFKA_PROCESS_ROLES" in env_of(services, n)]
    try:
        if len(kafka) != 1:
            raise Failure("expected one Kafka node among the services, found %s" % kafka)
        broker_port, broker_properties = check_kafka_service(services, kafka[0])
        role = roles(services)
    except Failure as e:
        log("FAILED: %s" % e)
        return 1
    log("kafka: a valid single-node KRaft setup; clients use port %d; its settings %s" % (
        broker_port, " ".join(broker_properties)))
    overrides = {
        role["producer"][0]: {"STREAMTRAIN_LIMIT": (str(RECORDS), "compose streams 60,000")},
    }
    for name in role["trainer"]:
        overrides[name] = {"STREAMTRAIN_INITIAL_RECORDS": (str(INITIAL_RECORDS), "compose: %s" % (
            env_of(services, name).get("STREAMTRAIN_INITIAL_RECORDS")))}

    # Each service its own loopback address; the broker's is the one `streamtrain broker`
    # listens on.
    addresses = {kafka[0]: "127.0.0.1"}
    for i, name in enumerate(n for n in services if n != kafka[0]):
        addresses[name] = "127.0.1.%d" % (i + 2)
    work = tempfile.mkdtemp(prefix="streamtrain-compose-native-")
    setup_private_network(hosts=addresses, hosts_dir=work)
    log("private network: %s" % ", ".join("%s=%s" % kv for kv in addresses.items()))

    stack = ComposeStack(src, bin_dir, work, compose, addresses, broker_port, broker_properties,
                         overrides)
    ok = False
    try:
        for name in stack.start_all(timeout=240):
            log("not run: %s (%s)" % (name, services[name].get("image")))
        version, digest = check_pipeline(stack, services, role)
        statuses = stack.stop_all()
        bad = {n: s for n, s in statuses.items() if s != 0}
        if bad:
            raise Failure("exit statuses on SIGTERM: %s" % bad)
        ok = True
        log("PASSED in %.0f s: Apache Kafka %s stand-in, %d records, %s and %d replicas at "
            "version %d, digest %s" % (
                time.monotonic() - started, kafka_version(src), RECORDS,
                "trainer" if len(role["trainer"]) == 1 else
                "a training group of %d ranks" % len(role["trainer"]),
                len(role["replica"]), version, digest))
        for line in UNVERIFIED:
            log("unverified without Docker: " + line)
    except Failure as e:
        log("FAILED: %s" % e)
        for name, service in stack.running.items():
            print("---- %s (%s)\n%s" % (name, service.log, service.tail(15)), flush=True)
    finally:
        for service in stack.running.values():
            service.stop(grace=20)
        if ok:
            shutil.rmtree(work, ignore_errors=True)
        else:
            log("kept %s" % work)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
