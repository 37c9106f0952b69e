#!/usr/bin/env python3
"""Publish on commit, sweeps for leftovers and dead entries, end to end: real
`eddy worker` and `eddy relay` processes against the local AWS, PutEvents going
through the fault proxy, whose journal tells what was published and in which
call. The bus has no rule: what counts is what PutEvents accepted.

  - kill -9 between commit and publish: the sweep of another process publishes
    the leftovers after the grace, each once, in (seq, idx) order per entity;
  - an entry refused for good is moved to the dead letters and its entity's
    next entries flow; `eddy outbox list|stats|retry|drop` see and handle it;
  - an entity with 2,000 entries waiting does not hold back a shard-mate: the
    mate leaves with the first sweep, behind at most one page of the other;
  - three workers each publish their own commits at once (sweeps could not:
    their grace and interval are a minute).
Short grace, sweep and lease settings keep each test to seconds.
"""

import json
import os
import signal
import subprocess

import awsenv
import workerkit as wk
from awsenv import unique_name, wait_for
from faultproxy import FaultProxy
from workerkit import Worker

ENV = awsenv.Env.current()
TOOL = wk.BUILD_ROOT / "tests" / "relay" / "relay_tool"
SHARDS = 8


def fnv1a32(text):
    h = 0x811C9DC5
    for b in text.encode():
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    return h


def shard_of(pk):
    return fnv1a32(pk) % SHARDS


class World:
    def __init__(self):
        self.table = awsenv.create_table(ENV, unique_name("outbox"))
        self.queue = awsenv.create_queue(ENV, unique_name("outbox-q"))
        self.bus = unique_name("outbox-bus")
        ENV.events().create_event_bus(Name=self.bus)
        self.ddb = ENV.dynamodb()
        self.proxies = []

    def proxy(self, rules=()):
        p = FaultProxy(ENV.endpoint("events"), list(rules)).start()
        self.proxies.append(p)
        return p

    def settings(self, proxy, **extra):
        s = {"EDDY_EVENT_BUS": self.bus, "EDDY_RELAY": "on",
             "AWS_ENDPOINT_URL_EVENTBRIDGE": proxy.url, "EDDY_OUTBOX_SHARDS": SHARDS,
             "EDDY_OUTBOX_GRACE": 1, "EDDY_SWEEP_MAX": 1, "EDDY_RELAY_POLL_MS": 200,
             "EDDY_LEASE_MS": 2000}
        s.update(extra)
        return s

    def worker(self, proxy, **extra):
        return Worker(ENV, self.table, self.queue["url"], **self.settings(proxy, **extra))

    def relay(self, proxy, **extra):
        env = dict(os.environ)
        env.update(ENV.values)
        env.update({k: str(v) for k, v in self.settings(proxy, **extra).items()})
        env.update(EDDY_TABLE=self.table, EDDY_MACHINE="slotmachine", EDDY_METRICS="off")
        p = subprocess.Popen([str(wk.EDDY), "relay"], env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        awsenv.STARTED.append(p)
        return p

    def rows(self, pk):
        return wk.items(ENV, self.table, pk)

    def outbox_left(self):
        return sum(len(self.rows(f"#outbox/{s}")) for s in range(SHARDS))

    def dead(self):
        return [it for s in range(SHARDS) for it in self.rows(f"#outbox-dead/{s}")]

    def outbound_ids(self, entities):
        """The stable ids of every outbound event the entities recorded."""
        ids = set()
        for e in entities:
            for it in wk.items(ENV, self.table, f"{wk.NS}/{e}"):
                sk = it["_sk"]["S"].split("/")
                if sk[0] == "OUTBOUND":
                    ids.add(f"{wk.NS}/{e}/{sk[1]}/{sk[2]}")
        return ids

    def outbox(self, *args, extra=None):
        env = dict(os.environ)
        env.update(ENV.values)
        env.update(EDDY_TABLE=self.table, EDDY_MACHINE="slotmachine",
                   EDDY_OUTBOX_SHARDS=str(SHARDS), EDDY_OUTBOX_GRACE="1")
        env.update(extra or {})
        out = subprocess.run([str(wk.EDDY), "outbox", *args], env=env, capture_output=True,
                             text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        return [json.loads(line) for line in out.stdout.splitlines()]

    def close(self):
        for p in self.proxies:
            p.stop()


def published(proxy):
    """(id, seq, idx, entity) of every entry PutEvents accepted, in call order,
    and the calls as lists of ids."""
    out, calls = [], []
    for c in proxy.journal():
        if c.get("op") != "PutEvents" or "entries" not in c:
            continue
        ids = []
        for e in c["entries"]:
            if e["failed"]:
                continue
            m = json.loads(e["detail"])["eddy"]
            out.append((m["id"], m["seq"], m["idx"], m["entity"]))
            ids.append(m["id"])
        calls.append(ids)
    return out, calls


def check_once_in_order(pub):
    ids = [p[0] for p in pub]
    assert len(ids) == len(set(ids)), f"published twice: {len(ids) - len(set(ids))}"
    last = {}
    for eid, seq, idx, entity in pub:
        assert (seq, idx) > last.get(entity, (0, -1)), f"{eid} after {last[entity]}"
        last[entity] = (seq, idx)
    return set(ids)


def test_kill9_between_commit_and_publish():
    w = World()
    down = w.proxy([{"op": "PutEvents", "action": "status", "status": 500,
                     "code": "InternalFailure"}])
    up = w.proxy()
    try:
        entities = [f"k9-{i}" for i in range(4)]
        first = w.worker(down, AWS_MAX_ATTEMPTS=1)
        wk.send_all(ENV, w.queue["url"], wk.game_bodies(entities, 3))
        wk.wait_drained(ENV, w.queue["url"])
        want = w.outbound_ids(entities)
        assert want and w.outbox_left() == len(want), (len(want), w.outbox_left())
        first.kill()  # committed, never published: its rows are leftovers
        assert not published(down)[0]
        r = w.relay(up)
        wait_for(lambda: w.outbox_left() == 0, 60, 0.2, "the leftovers swept")
        pub, _ = published(up)
        assert check_once_in_order(pub) == want
        r.send_signal(signal.SIGTERM)
        assert r.wait(timeout=30) == 0
        assert published(up)[0] == pub, "published again after the outbox emptied"
    finally:
        w.close()


def test_refused_entry_dead_lettered_entity_goes_on():
    w = World()
    # The first two entries of dl-0 and dl-1 sent are refused for good.
    p = w.proxy([{"op": "PutEvents", "action": "fail_entries", "times": 2,
                  "code": "ValidationException", "message": "refused on purpose",
                  "match": {"field": "Detail", "regex": r'"entity":"dl-[01]"'}}])
    try:
        entities = ["dl-0", "dl-1", "ok-0"]
        wrk = w.worker(p)
        wk.send_all(ENV, w.queue["url"], wk.game_bodies(entities, 3))
        wk.wait_drained(ENV, w.queue["url"])
        want = w.outbound_ids(entities)
        wait_for(lambda: w.outbox_left() == 0 and len(w.dead()) == 2, 30, 0.2,
                 "two entries dead, the rest published")
        pub, _ = published(p)
        got = check_once_in_order(pub)
        dead = {"{}/{}/{}/{}".format(d["_namespace"]["S"], d["_id"]["S"], d["_seq"]["N"],
                                     d["_idx"]["N"]): d for d in w.dead()}
        assert got | set(dead) == want and not got & set(dead), (len(got), len(dead), len(want))
        for eid, d in dead.items():
            assert "ValidationException" in d["error"]["S"] and d["attempts"]["N"] == "1", d
            entity = d["_id"]["S"]
            later = [q for q in pub if q[3] == entity and (q[1], q[2]) >
                     (int(d["_seq"]["N"]), int(d["_idx"]["N"]))]
            assert later, f"{entity}: nothing published after its dead entry"
        listed = [x for x in w.outbox("list") if x["state"] == "dead"]
        sks = {d["_sk"]["S"]: eid for eid, d in dead.items()}
        assert {x["sk"] for x in listed} == set(sks), listed
        stats = w.outbox("stats")
        assert stats[-1]["dead"] == 2 and stats[-1]["entries"] == 0, stats
        keep_sk, drop_sk = sorted(sks)
        keep = sks[keep_sk]
        assert w.outbox("drop", drop_sk) == [{"dropped": 1}]
        assert w.outbox("retry") == [{"retried": 1}]
        wait_for(lambda: keep in {q[0] for q in published(p)[0]}, 30, 0.2,
                 "the retried entry published by a sweep")
        wait_for(lambda: w.outbox_left() == 0, 30, 0.2, "outbox emptied")
        assert w.dead() == []
        wk.stop_ok(wrk)
        assert wrk.metrics().get("publish_dead") == 2, wrk.metrics()
    finally:
        w.close()


def test_backlog_does_not_hold_back_a_shard_mate():
    w = World()
    p = w.proxy()
    # DynamoDB through a proxy too, to count the sweeps' Queries
    dp = FaultProxy(ENV.endpoint("dynamodb"), []).start()
    w.proxies.append(dp)
    try:
        hog = "hog0"
        shard = shard_of(f"slot/{hog}")
        mate = next(f"m{i}" for i in range(200) if shard_of(f"slot/m{i}") == shard)

        def rows(prefix, entities, events):
            out = subprocess.run(
                [str(TOOL), "items", "--shards", str(SHARDS), "--ns", "slot", "--prefix",
                 prefix, "--entities", str(entities), "--events", str(events)],
                capture_output=True, text=True, check=True).stdout
            return [json.loads(line) for line in out.splitlines()]
        items = rows("hog", 1, 2000) + [it for it in rows("m", 200, 1)
                                        if it["_id"]["S"] == mate]
        for i in range(0, len(items), 25):
            w.ddb.batch_write_item(RequestItems={
                w.table: [{"PutRequest": {"Item": it}} for it in items[i:i + 25]]})
        # one lease tick, one sweep of each shard in the first seconds
        r = w.relay(p, EDDY_OUTBOX_GRACE=0, EDDY_LEASE_MS=30000, EDDY_SWEEP_MAX=60,
                    EDDY_RELAY_POLL_MS=5000, AWS_ENDPOINT_URL_DYNAMODB=dp.url)
        wait_for(lambda: any(q[3] == mate for q in published(p)[0]), 30, 0.1,
                 "the shard-mate published")
        r.kill()
        r.wait()
        pub, _ = published(p)
        # the first sweep of the shard takes a page (100 rows) of hog0 and goes
        # past it to the mate: at most that page of hog0 leaves before it ...
        at = [q[3] for q in pub].index(mate)
        assert at <= 100, f"{at} entries of {hog} published before {mate}"
        check_once_in_order(pub)
        # ... and it took that sweep's two Queries: with the lease's Query and
        # the first sweep of the 7 other shards, 10 (reading through hog0's
        # 2,000 rows would take 20 more)
        t_mate = next(c["t"] for c in p.journal() if c.get("op") == "PutEvents" and any(
            json.loads(e["detail"])["eddy"]["entity"] == mate and not e["failed"]
            for e in c.get("entries", [])))
        queries = sum(1 for c in dp.journal() if c.get("op") == "Query" and c["t"] < t_mate)
        assert queries <= 12, f"{queries} Queries before {mate} was published"
    finally:
        w.close()


def test_three_workers_publish_their_own_commits():
    w = World()
    # One proxy a worker, to see what each process published. Order is promised
    # within a process: an entity's events committed by two processes (a standard
    # queue spreads its messages) are published by each on its own.
    ps = [w.proxy() for _ in range(3)]
    # Sweeps can publish nothing here: grace and sweep interval are a minute.
    slow = {"EDDY_OUTBOX_GRACE": 60, "EDDY_SWEEP_MAX": 60, "EDDY_RELAY_POLL_MS": 60000}
    workers = [w.worker(p, **slow) for p in ps]

    def all_published():
        return [e for p in ps for e in published(p)[0]]

    try:
        entities = [f"tp-{i}" for i in range(24)]
        wk.send_all(ENV, w.queue["url"], wk.game_bodies(entities, 2))
        wk.wait_drained(ENV, w.queue["url"])
        want = w.outbound_ids(entities)
        wait_for(lambda: len(all_published()) >= len(want), 30, 0.2, "all published")
        for p in ps:
            check_once_in_order(published(p)[0])
        assert check_once_in_order(sorted(all_published(), key=lambda e: e[1:3])) == want
        wait_for(lambda: w.outbox_left() == 0, 30, 0.2, "outbox emptied")
    finally:
        for x in workers:
            wk.stop_ok(x)
        w.close()
    counts = [x.metrics().get("published", 0) for x in workers]
    processed = [x.metrics().get("processed", 0) for x in workers]
    assert sum(counts) == len(want), counts
    for c, n in zip(counts, processed):
        assert (c > 0) == (n > 0), (counts, processed)


OutboxTest = awsenv.test_case("OutboxTest", [
    test_kill9_between_commit_and_publish,
    test_refused_entry_dead_lettered_entity_goes_on,
    test_backlog_does_not_hold_back_a_shard_mate,
    test_three_workers_publish_their_own_commits,
])


if __name__ == "__main__":
    awsenv.main()
