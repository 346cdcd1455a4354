"""docker-compose.yml's services as native processes (tests/compose/compose_native_test.py).

ComposeStack reads the parsed compose file and starts, for each service, the process its
image would run, in the order its depends_on conditions allow:

- streamtrain:local (the Dockerfile): BIN_DIR/<entrypoint> with its `command` and
  `environment`; the image's /usr/local/bin is BIN_DIR. A trainer rank of a training group
  (STREAMTRAIN_WORLD_SIZE > 1) binds its Gloo endpoint to its service's address
  (STREAMTRAIN_BIND_ADDRESS): in Docker that is the default, the address the container's
  hostname resolves to.
- the apache/kafka service with KAFKA_PROCESS_ROLES: `streamtrain broker --port P` with the
  service's KAFKA_* settings other than the node's identity and listeners; any other
  apache/kafka service (kafka-init): its entrypoint, KAFKA_BIN=kafka/bin for /opt/kafka/bin.
- prom/prometheus: Debian's prometheus with the image's default arguments.
- anything else (Grafana) is not run.

Paths a service mounts are mapped in its argv and environment: a bind mount of the
repository to the repository's file, a named volume to WORK/volumes/<name>. Health checks
run natively with `localhost` meaning the service itself. Every deviation from what the
file says is printed as an override.

    stack = ComposeStack(src, bin_dir, work, compose, addresses, 9092, properties, overrides)
    stack.start_all(timeout=240)    # raises Failure, with the log, when a service dies
    stack.stop_all()                # SIGTERM in reverse order, like docker-compose down
"""

import os
import re
import subprocess
import time

from private_network import Failure, Service

# The services built from the Dockerfile: their executables are BIN_DIR's.
STREAMTRAIN_IMAGE = "streamtrain:local"
# KAFKA_* settings that describe the node itself: `streamtrain broker` sets these.
NODE_SETTINGS = {"NODE_ID", "PROCESS_ROLES", "CONTROLLER_QUORUM_VOTERS",
                 "CONTROLLER_LISTENER_NAMES", "LISTENERS", "ADVERTISED_LISTENERS",
                 "LISTENER_SECURITY_PROTOCOL_MAP", "INTER_BROKER_LISTENER_NAME", "LOG_DIRS"}


def log(text):
    print("compose native: " + text, flush=True)


def seconds(text, default):
    """'10s', '5m' or '1m30s' in seconds."""
    total = 0
    for number, unit in re.findall(r"(\d+)(ms|s|m|h)", str(text or "")):
        total += int(number) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[unit]
    return total or default


def depends_on(service):
    """{dependency: condition} of a service."""
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):
        return {name: "service_started" for name in deps}
    return {name: (spec or {}).get("condition", "service_started")
            for name, spec in deps.items()}


def container_ports(service):
    """The ports a service serves in its container: `expose` and the container side of
    `ports`."""
    ports = {int(p) for p in service.get("expose", [])}
    for mapping in service.get("ports", []):
        ports.add(int(str(mapping).split(":")[-1].split("/")[0]))
    return ports


def served_ports(service):
    """container_ports() and the ports a streamtrain service is told to listen on."""
    env = service.get("environment") or {}
    keys = ("STREAMTRAIN_METRICS_PORT", "STREAMTRAIN_HTTP_PORT")
    return container_ports(service) | {int(env[k]) for k in keys if k in env}


def parse_listeners(text):
    """'PLAINTEXT://:9092,EXTERNAL://localhost:29092' -> {name: (host, port)}."""
    listeners = {}
    for item in filter(None, (s.strip() for s in str(text).split(","))):
        m = re.fullmatch(r"([A-Za-z0-9_]+)://([^:]*):(\d+)", item)
        if not m:
            raise Failure("kafka: cannot parse listener '%s'" % item)
        listeners[m.group(1)] = (m.group(2), int(m.group(3)))
    return listeners


def kafka_problems(kafka_name, env, published, advertised_ok):
    """What makes the kafka service's environment an invalid single-node KRaft setup."""
    problems = []
    if any("ZOOKEEPER" in key for key in env):
        problems.append("ZooKeeper settings: Kafka 4.x runs only in KRaft mode")
    if set(env.get("KAFKA_PROCESS_ROLES", "").split(",")) != {"broker", "controller"}:
        problems.append("KAFKA_PROCESS_ROLES is not broker,controller")
    if not re.fullmatch(r"[A-Za-z0-9_-]{22}", env.get("CLUSTER_ID", "")):
        problems.append("CLUSTER_ID is not a 22-character base64 UUID")
    listeners = parse_listeners(env.get("KAFKA_LISTENERS", ""))
    advertised = parse_listeners(env.get("KAFKA_ADVERTISED_LISTENERS", ""))
    protocol_map = env.get("KAFKA_LISTENER_SECURITY_PROTOCOL_MAP", "")
    protocols = dict(kv.split(":") for kv in protocol_map.split(",") if ":" in kv)
    controllers = env.get("KAFKA_CONTROLLER_LISTENER_NAMES", "").split(",")
    problems += ["listener %s has no security protocol" % n
                 for n in listeners if n not in protocols]
    for name in controllers:
        if name not in listeners:
            problems.append("controller listener %s is not in KAFKA_LISTENERS" % name)
        if name in advertised:
            problems.append("controller listener %s is advertised to clients" % name)
    for name, (_, port) in advertised.items():
        if listeners.get(name, (None, None))[1] != port:
            problems.append("advertised listener %s:%d has no such listener" % (name, port))
    if env.get("KAFKA_INTER_BROKER_LISTENER_NAME") not in advertised:
        problems.append("KAFKA_INTER_BROKER_LISTENER_NAME is not an advertised listener")
    voters = env.get("KAFKA_CONTROLLER_QUORUM_VOTERS", "").split(",")
    this_node = "%s@%s:%s" % (env.get("KAFKA_NODE_ID"), kafka_name,
                              listeners.get(controllers[0], (None, None))[1])
    if voters != [this_node]:
        problems.append("KAFKA_CONTROLLER_QUORUM_VOTERS %s is not this node's controller "
                        "listener %s" % (voters, this_node))
    for key, value in env.items():
        if re.search(r"(REPLICATION_FACTOR|MIN_ISR|MIN_INSYNC_REPLICAS)$", key) and value != "1":
            problems.append("%s=%s on a single node" % (key, value))
    for name, (host, port) in advertised.items():
        if host == "localhost" and published.get(port) != port:
            problems.append("listener %s advertises localhost:%d, not published" % (name, port))
    return problems + advertised_ok(advertised)


def check_kafka_service(services, kafka_name):
    """Checks that the kafka service is a valid single-node KRaft setup for Kafka 4.x and
    that every client's bootstrap address is one of its advertised listeners. Returns
    (client port, the service's other settings as server.properties entries)."""
    kafka = services[kafka_name]
    env = {k: str(v) for k, v in (kafka.get("environment") or {}).items()}
    published = {int(str(p).split(":")[0]): int(str(p).split(":")[-1])
                 for p in kafka.get("ports", [])}
    clients = set()
    for service in services.values():
        for key, value in (service.get("environment") or {}).items():
            if key in ("STREAMTRAIN_BROKERS", "BOOTSTRAP_SERVER"):
                clients.update(str(value).split(","))

    def advertised_ok(advertised):
        have = {"%s:%d" % hp for hp in advertised.values()}
        return ["clients use %s, which kafka does not advertise (%s)" % (a, ", ".join(sorted(have)))
                for a in sorted(clients) if a not in have]

    problems = kafka_problems(kafka_name, env, published, advertised_ok)
    if problems:
        raise Failure("the kafka service's environment:\n  " + "\n  ".join(problems))
    ports = {int(a.rsplit(":", 1)[1]) for a in clients}
    if len(ports) != 1:
        raise Failure("clients use several Kafka ports: %s" % sorted(clients))

    properties = []
    for key, value in sorted(env.items()):
        if not key.startswith("KAFKA_") or key[len("KAFKA_"):] in NODE_SETTINGS:
            continue
        # The image's rule: KAFKA_A_B -> a.b, '__' -> '_', '___' -> '-'.
        name = key[len("KAFKA_"):].lower().replace("___", "-").replace("__", "\0")
        properties.append("%s=%s" % (name.replace("_", ".").replace("\0", "_"), value))
    return ports.pop(), properties


class ComposeStack:
    """The compose services as native processes. One thread drives it."""

    def __init__(self, src, bin_dir, work, compose, addresses, broker_port, broker_properties,
                 overrides):
        """`addresses`: service -> its loopback address (the broker's is 127.0.0.1).
        `overrides`: service -> {VARIABLE: (value, why)} added to its environment."""
        self.src, self.bin, self.work = src, bin_dir, work
        self.services = compose["services"]
        self.addresses = addresses
        self.kafka = next(n for n, a in addresses.items() if a == "127.0.0.1")
        self.broker_port, self.broker_properties = broker_port, broker_properties
        self.overrides = overrides
        self.running = {}  # name -> Service, in start order
        self.not_run = []
        self.healthy = set()
        self.last_probe = {}
        self.last_health_output = {}
        self.bootstrap_file = os.path.join(work, "bootstrap")
        os.makedirs(os.path.join(work, "logs"))

    def mounts(self, name):
        """Container path -> host path for the service's volumes and its image's tools."""
        mapping = {}
        for volume in self.services[name].get("volumes", []):
            source, target = str(volume).split(":")[:2]
            if source.startswith(".") or source.startswith("/"):
                mapping[target] = os.path.normpath(os.path.join(self.src, source))
            else:
                mapping[target] = os.path.join(self.work, "volumes", source)
                os.makedirs(mapping[target], exist_ok=True)
        if self.services[name].get("image", "").startswith("apache/kafka:"):
            mapping.setdefault("/opt/kafka/bin", os.path.join(self.src, "kafka", "bin"))
        return mapping

    def map_path(self, value, mapping):
        """`value` with a container path of `mapping` at its start replaced."""
        for target in sorted(mapping, key=len, reverse=True):
            if value == target or value.startswith(target + "/"):
                return mapping[target] + value[len(target):]
        return value

    def base_env(self):
        """What the images' environment has that matters: PATH with the executables."""
        env = {"PATH": self.bin + ":/usr/local/bin:/usr/bin:/bin",
               "HOME": os.environ.get("HOME", "/root"), "LANG": "C.UTF-8"}
        for key in ("JAVA_HOME", "STREAMTRAIN_KAFKA_HOME", "XDG_CACHE_HOME"):
            if key in os.environ:
                env[key] = os.environ[key]
        return env

    def override(self, name, env, key, value, why):
        env[key] = value
        log("override: %s: %s=%s (%s)" % (name, key, value, why))

    def command(self, name):
        """(argv, env) of the native process standing for the service, or None (not run)."""
        service = self.services[name]
        image = service.get("image", "")
        mapping = self.mounts(name)
        env = self.base_env()
        for key, value in (service.get("environment") or {}).items():
            text = str(value).lower() if isinstance(value, bool) else str(value)
            env[key] = self.map_path(text, mapping)
        argv = [self.map_path(str(a), mapping) for a in
                list(service.get("entrypoint") or []) + list(service.get("command") or [])]
        for key, (value, why) in self.overrides.get(name, {}).items():
            self.override(name, env, key, value, why)
        if image == STREAMTRAIN_IMAGE:
            if os.path.exists(os.path.join(self.bin, argv[0])):
                argv[0] = os.path.join(self.bin, argv[0])
            # Docker gives each container an address of its own; here each service has a
            # loopback address of its own, which it binds when another uses the same port.
            shared = [other for other in self.services if other != name and
                      container_ports(self.services[other]) & container_ports(service)]
            if shared:
                self.override(name, env, "STREAMTRAIN_BIND_ADDRESS", self.addresses[name],
                              "%s serves the same container port" % ", ".join(shared))
            elif int(env.get("STREAMTRAIN_WORLD_SIZE", 1)) > 1 and \
                    "STREAMTRAIN_BIND_ADDRESS" not in env:
                self.override(name, env, "STREAMTRAIN_BIND_ADDRESS", self.addresses[name],
                              "a training rank's Gloo endpoint; Docker: the container's "
                              "address, which its hostname resolves to")
            return argv, env
        if image.startswith("apache/kafka:") and name == self.kafka:
            data = mapping.get("/var/lib/kafka/data", os.path.join(self.work, "kafka-data"))
            argv = [os.path.join(self.bin, "streamtrain"), "broker",
                    "--port", str(self.broker_port), "--data-dir", data,
                    "--bootstrap-file", self.bootstrap_file,
                    # Only a placeholder: creating the project's topics is kafka-init's job.
                    "--topics", "compose-test.placeholder"]
            for p in self.broker_properties:
                argv += ["--broker-property", p]
            return argv, self.base_env()
        if image.startswith("apache/kafka:"):
            self.override(name, env, "KAFKA_BIN", mapping["/opt/kafka/bin"],
                          "the image's /opt/kafka/bin")
            return argv, env
        if image.startswith("prom/prometheus:"):
            # The prom/prometheus image's default arguments, then the service's.
            config = self.map_path("/etc/prometheus/prometheus.yml", mapping)
            data = self.map_path("/prometheus", mapping)
            return (["prometheus", "--config.file=" + config, "--storage.tsdb.path=" + data,
                     "--web.listen-address=0.0.0.0:9090"] + argv, env)
        return None

    def healthcheck(self, name):
        """The service's healthcheck as a native command: `localhost` is the service."""
        test = (self.services[name].get("healthcheck") or {}).get("test")
        if not test:
            return None
        argv = ["sh", "-c", " ".join(test[1:])] if test[0] == "CMD-SHELL" else list(test[1:])
        argv = [re.sub(r"\blocalhost\b", name, a) for a in argv]
        mapping = self.mounts(name)
        for target in sorted(mapping, key=len, reverse=True):
            argv = [a.replace(target + "/", mapping[target] + "/") for a in argv]
        return argv

    def probe(self, name):
        """Runs the service's healthcheck (at most every 2 s); True once it passed."""
        if name in self.healthy:
            return True
        if name == self.kafka and not os.path.exists(self.bootstrap_file):
            return False  # the broker is still starting: no JVM needed to ask it
        if time.monotonic() - self.last_probe.get(name, 0) < 2:
            return False
        self.last_probe[name] = time.monotonic()
        check = self.healthcheck(name)
        timeout = 3 * seconds((self.services[name].get("healthcheck") or {}).get("timeout"), 30)
        try:
            result = subprocess.run(check, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                    env=self.base_env(), timeout=timeout, text=True)
            ok = result.returncode == 0
            self.last_health_output[name] = "exit %d: %s" % (result.returncode,
                                                             result.stdout[-2000:])
        except subprocess.TimeoutExpired:
            ok = False
            self.last_health_output[name] = "timed out after %d s" % timeout
        if ok:
            self.healthy.add(name)
            log("%s is healthy (its healthcheck: %s)" % (name, " ".join(check)))
        return ok

    def ready_to_start(self, name):
        for dep, condition in depends_on(self.services[name]).items():
            if dep in self.not_run:
                continue
            if dep not in self.running:
                return False
            if condition == "service_healthy" and not self.probe(dep):
                return False
            if condition == "service_completed_successfully":
                status = self.running[dep].proc.poll()
                if status is None:
                    return False
                if status != 0:
                    raise Failure("%s exited with %d; its log:\n%s" %
                                  (dep, status, self.running[dep].tail()))
        return True

    def check_alive(self):
        """Fails when a service that should keep running has exited (`restart: on-failure`:
        exited with an error)."""
        for name, service in self.running.items():
            restart = self.services[name].get("restart", "no")
            if restart == "on-failure" and service.exited() and service.proc.returncode == 0:
                continue
            if service.exited() and restart != "no":
                raise Failure("%s exited with %s; its log:\n%s" %
                              (name, service.proc.returncode, service.tail()))

    def unhealthy(self):
        """Why the running services with a healthcheck that never passed are unhealthy."""
        lines = ["\n%s's healthcheck (%s): %s" % (n, " ".join(self.healthcheck(n)),
                                                  self.last_health_output.get(n, "never ran"))
                 for n in self.running if self.healthcheck(n) and n not in self.healthy]
        return "".join(lines)

    def start_all(self, timeout):
        """Starts every service once its dependencies allow; returns the ones not run."""
        pending = [n for n in self.services if n not in self.running]
        deadline = time.monotonic() + timeout
        while pending:
            for name in list(pending):
                if not self.ready_to_start(name):
                    continue
                pending.remove(name)
                command = self.command(name)
                if command is None:
                    self.not_run.append(name)
                    continue
                argv, env = command
                log("starting %s: %s" % (name, " ".join(argv)))
                self.running[name] = Service(name, argv, os.path.join(self.work, "logs"),
                                             env=env, cwd=self.work)
            self.check_alive()
            if time.monotonic() > deadline:
                raise Failure("timed out starting %s%s" % (", ".join(pending), self.unhealthy()))
            time.sleep(0.2)  # polling the services' progress
        return self.not_run

    def stop(self, name):
        """SIGTERM, with the service's stop_grace_period; its exit status."""
        grace = seconds(self.services[name].get("stop_grace_period"), 10)
        return self.running[name].stop(grace=grace)

    def stop_all(self):
        """Stops every service in reverse start order; {name: exit status}."""
        return {name: self.stop(name) for name in reversed(list(self.running))}
