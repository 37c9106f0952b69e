#!/usr/bin/env python3
"""The outbox relay against the local AWS (moto): `eddy relay` processes publish
outbox entries to a bus whose rule delivers them to a queue.

Outbox entries are made by tests/relay/relay_tool (`items`), which builds them
with eddy's own record builder, exactly as the processor commits them. Covers:
order and exact counts; entries failed by the fault proxy (only those resent,
order kept); three processes sharing 8 shards and a kill -9 (shards move within
two lease periods, nothing lost); SIGTERM publishing what the relay holds and
giving the leases back; publish on commit measured against sweeps only; events/s
of one relay. The worker's publish on commit: tests/integration/test_outbox.py.
"""

import json
import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import awsenv
from awsenv import unique_name, wait_for
from faultproxy import FaultProxy

BUILD = Path(os.environ.get("EDDY_BUILD_ROOT", awsenv.SOURCE_ROOT / "build"))
TOOL = BUILD / "tests" / "relay" / "relay_tool"
EDDY = BUILD / "eddy"
SHARDS = 8
LOGS = Path(tempfile.mkdtemp(prefix="eddy-relay-test-"))
class World:
    """A table, a queue and a bus whose rule sends "Happened" to the queue."""

    def __init__(self):
        self.env = awsenv.Env.current()
        self.table = awsenv.create_table(self.env, unique_name("relay"))
        self.queue = awsenv.create_queue(self.env, unique_name("relayq"))
        self.bus = awsenv.create_bus_to_queue(self.env, unique_name("relaybus"), self.queue,
                                              ["Happened"])["bus"]
        self.ddb = self.env.dynamodb()
        self.procs = []
        self.received = []  # parsed message bodies, in arrival order

    def write(self, prefix, entities, events):
        """Commit entities x events outbox entries; return their event ids."""
        out = subprocess.run(
            [str(TOOL), "items", "--shards", str(SHARDS), "--ns", "slot", "--prefix", prefix,
             "--entities", str(entities), "--events", str(events)],
            capture_output=True, text=True, check=True).stdout
        items = [json.loads(line) for line in out.splitlines()]
        for i in range(0, len(items), 25):
            self.ddb.batch_write_item(RequestItems={
                self.table: [{"PutRequest": {"Item": it}} for it in items[i:i + 25]]})
        # the stable id the relay publishes in detail.eddy.id
        return {"{}/{}/{}/{}".format(it["_namespace"]["S"], it["_id"]["S"], it["_seq"]["N"],
                                     it["_idx"]["N"]) for it in items}

    def relay(self, lease_ms=2000, poll_ms=200, extra=None, name="relay"):
        env = dict(os.environ)
        env.update(self.env.values)
        env.update(EDDY_TABLE=self.table, EDDY_EVENT_BUS=self.bus, EDDY_MACHINE="slotmachine",
                   EDDY_NAMESPACE="slot", EDDY_OUTBOX_SHARDS=str(SHARDS),
                   EDDY_LEASE_MS=str(lease_ms), EDDY_RELAY_POLL_MS=str(poll_ms),
                   EDDY_METRICS="off", EDDY_LOG_LEVEL="info", EDDY_DRAIN_SECONDS="20",
                   EDDY_OUTBOX_GRACE="0")  # these rows are nobody's: sweep them at once
        env.update(extra or {})
        log = open(LOGS / f"{self.table}-{name}-{len(self.procs)}.log", "w")
        p = subprocess.Popen([str(EDDY), "relay"], env=env, stdout=subprocess.DEVNULL,
                             stderr=log)
        self.procs.append(p)
        awsenv.STARTED.append(p)
        return p

    def stop_all(self):
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        codes = [p.wait(timeout=30) for p in self.procs]
        return codes

    def receive(self, want, timeout_s=120):
        # Generous: it returns as soon as all arrived, and the local AWS delivers
        # through the rule slowly when other tests load it. Nothing here is timed.
        deadline = time.monotonic() + timeout_s
        while len(self.received) < want and time.monotonic() < deadline:
            bodies = awsenv.receive_all(self.env, self.queue["url"], want - len(self.received),
                                        timeout_s=1)
            self.received += [json.loads(b) for b in bodies]
        return self.received

    def outbox_left(self):
        n = 0
        for shard in range(SHARDS):
            n += self.ddb.query(TableName=self.table, KeyConditionExpression="#p = :p",
                                ExpressionAttributeNames={"#p": "_pk"},
                                ExpressionAttributeValues={":p": {"S": f"#outbox/{shard}"}},
                                ConsistentRead=True)["Count"]
        return n

    def leases(self):
        """{sk: (owner, expires)} of the #lease partition."""
        items = self.ddb.query(TableName=self.table, KeyConditionExpression="#p = :p",
                               ExpressionAttributeNames={"#p": "_pk"},
                               ExpressionAttributeValues={":p": {"S": "#lease"}},
                               ConsistentRead=True)["Items"]
        return {it["_sk"]["S"]: (it["owner"]["S"], int(it["expires"]["N"])) for it in items}

    def shard_owners(self):
        now = time.time() * 1000
        return {int(sk.split("/")[1]): owner for sk, (owner, exp) in self.leases().items()
                if sk.startswith("outbox/") and exp > now}


def meta(body):
    assert body["detail-type"] == "Happened", body
    assert body["source"] == "eddy.slot", body
    return body["detail"]["eddy"]


def check_order(bodies):
    """Each entity's seq ascends in arrival order (duplicates dropped by event id)."""
    seen, last = set(), {}
    for b in bodies:
        m = meta(b)
        if m["id"] in seen:
            continue
        seen.add(m["id"])
        assert m["seq"] > last.get(m["entity"], 0), \
            f"{m['entity']}: seq {m['seq']} after {last[m['entity']]}"
        last[m["entity"]] = m["seq"]
    return seen


def test_order_counts_and_sigterm_release():
    w = World()
    want = w.write("o", entities=20, events=5)
    p = w.relay()
    bodies = w.receive(len(want))
    ids = check_order(bodies)
    assert ids == want, f"{len(want - ids)} missing, {len(ids - want)} unexpected"
    assert len(bodies) == len(want), f"{len(bodies)} delivered for {len(want)} entries"
    wait_for(lambda: w.outbox_left() == 0, 60, 0.2, "outbox emptied")
    assert w.shard_owners(), "no leases held while running"
    p.send_signal(signal.SIGTERM)
    assert p.wait(timeout=30) == 0
    assert w.leases() == {}, f"leases left after SIGTERM: {w.leases()}"
    time.sleep(1)
    assert w.receive(len(want) + 1, timeout_s=1) == bodies, "a duplicate was delivered"


def test_fault_proxy_failed_entries_only_resent():
    w = World()
    proxy = FaultProxy(w.env.endpoint("events"), [
        {"op": "PutEvents", "action": "fail_entries", "each": 2,
         "match": {"field": "Detail", "regex": r'"entity":"f[0-4]","namespace":"slot","seq":[24],'}},
    ]).start()
    try:
        want = w.write("f", entities=10, events=5)
        w.relay(extra={"AWS_ENDPOINT_URL_EVENTBRIDGE": proxy.url})
        bodies = w.receive(len(want))
        ids = check_order(bodies)
        assert ids == want and len(bodies) == len(want), (len(ids), len(bodies), len(want))
        def sent_by_id():
            tries = {}
            for call in proxy.journal():
                for e in call.get("entries", []):
                    m = json.loads(e["detail"])["eddy"]
                    tries.setdefault(m["id"], []).append(e["failed"])
            return tries

        # The proxy writes a call into its journal after the local AWS answered
        # it, and that delivers to the queue first: an event can be received
        # before its call is in the journal.
        wait_for(lambda: set(want) <= set(sent_by_id()), 10, 0.1, "every entry in the journal")
        tries = sent_by_id()
        chosen = {i for i in want if i.split("/")[1] in {f"f{k}" for k in range(5)}
                  and int(i.split("/")[2]) in (2, 4)}
        assert len(chosen) == 10
        for eid in want:
            expect = [True, True, False] if eid in chosen else [False]
            assert tries[eid] == expect, f"{eid}: sent {tries[eid]}, expected {expect}"
        assert w.stop_all() == [0]
    finally:
        proxy.stop()


def test_three_relays_kill9_moves_shards():
    lease_ms = 4000
    w = World()
    for k in range(3):  # moto's DynamoDB runs one call at a time: poll gently
        w.relay(lease_ms=lease_ms, poll_ms=2000, name=f"share{k}")
    wait_for(lambda: len(w.shard_owners()) == SHARDS
             and len(set(w.shard_owners().values())) == 3
             and max(list(w.shard_owners().values()).count(o)
                     for o in set(w.shard_owners().values())) <= 3,
             20, 0.2, "8 shards shared by 3 relays")
    want = w.write("k", entities=16, events=5)
    owners = w.shard_owners()
    victim = next(p for p in w.procs if any(f"-{p.pid}-" in o for o in owners.values()))
    victim_shards = {s for s, o in owners.items() if f"-{victim.pid}-" in o}
    assert victim_shards, f"relay {victim.pid} holds no shard: {owners}"
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    killed_ms = time.time() * 1000
    want |= w.write("l", entities=16, events=5)
    wait_for(lambda: all(f"-{victim.pid}-" not in o for o in w.shard_owners().values())
             and len(w.shard_owners()) == SHARDS, 6 * lease_ms / 1000, 0.25,
             "the dead relay's shards taken over")
    # When each was taken: a lease item's expires is its write time + lease_ms
    # (read from the table, so the test's own polling delay does not count).
    leases = w.leases()
    taken_ms = max(leases[f"outbox/{s}"][1] - lease_ms for s in victim_shards)
    moved_s = (taken_ms - killed_ms) / 1000
    print(f"     shards {sorted(victim_shards)} taken over {moved_s:.2f} s after kill -9 "
          f"(lease {lease_ms} ms)", flush=True)
    assert moved_s <= 2 * lease_ms / 1000, f"took {moved_s:.2f} s"
    wait_for(lambda: w.outbox_left() == 0, 90, 0.5, "outbox emptied")
    bodies = w.receive(len(want))
    ids = check_order(bodies)
    assert ids == want, f"{len(want - ids)} not delivered: {sorted(want - ids)[:5]}"
    codes = w.stop_all()
    assert codes[1:] == [0, 0], codes
    leftover = {sk: v for sk, v in w.leases().items() if f"-{victim.pid}-" not in v[0]}
    assert leftover == {}, f"live relays left leases: {leftover}"


def test_sigterm_finishes_batch_in_hand():
    w = World()
    proxy = FaultProxy(w.env.endpoint("events"), [
        {"op": "PutEvents", "action": "delay", "ms": 1500, "times": 1}]).start()
    try:
        want = w.write("s", entities=1, events=3)
        p = w.relay(extra={"AWS_ENDPOINT_URL_EVENTBRIDGE": proxy.url})
        wait_for(lambda: any(c.get("fault") == "delay" for c in proxy.journal()), 15, 0.05,
                 "a PutEvents call in flight")
        p.send_signal(signal.SIGTERM)
        assert p.wait(timeout=30) == 0
        # what the relay held is published, in order, and deleted; no sweep
        # starts after the signal
        calls = [c for c in proxy.journal() if c["op"] == "PutEvents" and "entries" in c]
        sent = [json.loads(e["detail"])["eddy"]["id"] for c in calls for e in c["entries"]]
        assert sorted(sent) == sorted(want), (sent, want)
        bodies = w.receive(len(sent))
        assert [meta(b)["id"] for b in bodies] == sent
        assert w.outbox_left() == 0
        assert w.leases() == {}, w.leases()
    finally:
        proxy.stop()


def run_tool(*args):
    out = subprocess.run([str(TOOL), *args], capture_output=True, text=True, timeout=120,
                         env={**os.environ, **awsenv.Env.current().values})
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_fast_path_latency_and_throughput():
    # A bus without rules: moto's delivery to SQS costs it ~30 ms an entry, which
    # would be measured instead of the relay.
    w = World()
    bus = unique_name("benchbus")
    w.env.events().create_event_bus(Name=bus)
    common = ["--table", w.table, "--bus", bus, "--shards", str(SHARDS), "--ns", "slot"]
    # A 3 s poll, so that a poll can hardly be what publishes on the fast path.
    fast = run_tool("latency", *common, "--mode", "fast", "--count", "40", "--poll-ms", "3000")
    poll = run_tool("latency", *common, "--mode", "poll", "--count", "8", "--poll-ms", "3000")
    tput = run_tool("throughput", *common, "--count", "1000")
    print(f"     commit-to-publish fast path: p50 {fast['p50_ms']} ms, p99 {fast['p99_ms']} ms; "
          f"poll only (3000 ms): p50 {poll['p50_ms']} ms, p99 {poll['p99_ms']} ms; "
          f"one relay: {tput['events_per_s']} events/s ({tput['n']} in {tput['seconds']} s, "
          f"{tput['put_calls']} PutEvents calls)", flush=True)
    # The one comparison kept: without publish on commit both would wait for a sweep.
    assert fast["p50_ms"] < poll["p50_ms"], (fast, poll)
    assert tput["n"] == 1000 and tput["deleted"] == 1000


RelayTest = awsenv.test_case("RelayTest", [
    test_order_counts_and_sigterm_release,
    test_fault_proxy_failed_entries_only_resent,
    test_three_relays_kill9_moves_shards,
    test_sigterm_finishes_batch_in_hand,
    test_fast_path_latency_and_throughput,
])


if __name__ == "__main__":
    print(f"relay logs in {LOGS}", flush=True)
    awsenv.main()
