#!/usr/bin/python3
"""The training group of a compose file (docs/distributed.md), for tests/compose/compose_test.sh.

    training_group_check.py CONFIG_YML      # `docker-compose config` output

The trainer services with STREAMTRAIN_WORLD_SIZE must be the ranks 0..W-1 of one group, each
naming rank 0's service and a port it exposes as STREAMTRAIN_RENDEZVOUS, with `restart:
on-failure` (a graceful group stop exits 0 and stays stopped; a failed rank exits 1 and is
restarted), a checkpoint volume and a store volume of its own, each store written by an ingest
of its own, the ingests in one consumer group. Prints one line per problem and exits 1 when
there is any; prints the number of ranks and exits 0 otherwise.
"""

import sys

import yaml


def main():
    services = yaml.safe_load(open(sys.argv[1]))["services"]

    def env(name):
        return {k: str(v) for k, v in (services[name].get("environment") or {}).items()}

    def volume_at(name, path):
        for v in services[name].get("volumes", []):
            source, target = ((v["source"], v["target"]) if isinstance(v, dict)
                              else str(v).split(":")[:2])
            if path == target or path.startswith(target + "/"):
                return source
        return None

    ranks = [n for n in services if "STREAMTRAIN_WORLD_SIZE" in env(n)]
    problems = []
    if ranks:
        sizes = {int(env(n)["STREAMTRAIN_WORLD_SIZE"]) for n in ranks}
        by_rank = {int(env(n).get("STREAMTRAIN_RANK", 0)): n for n in ranks}
        w = max(sizes)
        if len(sizes) != 1 or sorted(by_rank) != list(range(w)) or len(by_rank) != len(ranks):
            problems.append("trainer ranks %s are not the ranks 0..%d of one group of %d" % (
                sorted((env(n).get("STREAMTRAIN_RANK"), n) for n in ranks), w - 1, w))
        zero = by_rank.get(0)
        exposed = [str(p) for p in services.get(zero, {}).get("expose", [])]
        for n in ranks:
            rendezvous = env(n).get("STREAMTRAIN_RENDEZVOUS", "")
            host, _, port = rendezvous.rpartition(":")
            if host != zero or port not in exposed:
                problems.append("%s: STREAMTRAIN_RENDEZVOUS %r is not rank 0's service (%s) and "
                                "a port it exposes %s" % (n, rendezvous, zero, exposed))
            if services[n].get("restart") != "on-failure":
                problems.append("%s: restart %s, expected on-failure" %
                                (n, services[n].get("restart")))
        for variable in ("STREAMTRAIN_CHECKPOINT_DIR", "STREAMTRAIN_STORE"):
            volumes = [volume_at(n, env(n).get(variable, "")) for n in ranks]
            if None in volumes or len(set(volumes)) != len(volumes):
                problems.append("%s: each rank needs a volume of its own, found %s" %
                                (variable, volumes))
        ingests = [n for n, s in services.items()
                   if (s.get("entrypoint") or [None])[0] == "streamtrain-ingest"]
        ingest_stores = sorted(str(volume_at(n, env(n).get("STREAMTRAIN_STORE", "")))
                               for n in ingests)
        rank_stores = sorted(str(volume_at(n, env(n).get("STREAMTRAIN_STORE", ""))) for n in ranks)
        if ingest_stores != rank_stores:
            problems.append("each rank's store needs an ingest of its own: the ingests write %s, "
                            "the ranks read %s" % (ingest_stores, rank_stores))
        if len({env(n).get("STREAMTRAIN_GROUP") for n in ingests}) != 1:
            problems.append("the ingests %s are not in one consumer group" % ingests)
    for p in problems:
        print(p)
    if not problems:
        print("%d ranks" % len(ranks))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
