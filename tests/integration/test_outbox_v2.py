#!/usr/bin/env python3
"""Publishing to an EventBridge Custom Event Bus end to end: real `eddy worker`
processes with EDDY_EVENT_BUS an event-busv2 ARN, the local AWS's bus with a
FIFO subscriber feeding a FIFO queue, and kill -9 of the publisher.

  1. Worker A publishes while its outbox deletes all fail and a quarter of the
     bus's answers are lost after the bus took the entries (so eddy sends
     those again): everything arrives downstream once; then A is killed -9
     with every row still in the outbox.
  2. Worker B sweeps A's leftovers after the lease and the grace: every one
     was delivered already, the bus answers DEDUPLICATED and delivers
     nothing. Meanwhile B publishes a second batch, slowly, and is killed -9
     as soon as it has committed it all, with part of it unpublished.
  3. `eddy relay` sweeps B's leftovers (published now, or DEDUPLICATED when B
     got them out) and stops on SIGTERM once the outbox is empty; then worker
     C publishes a third batch and stops on SIGTERM.
The subscriber's queue must hold every outbound event the table recorded,
each exactly once, each entity's in (seq, idx) order. Without the
DeduplicationId the re-published rows of step 2 arrive twice (21 of 54 did
when it was left out).
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
SHARDS = 4
ROLE = "arn:aws:iam::123456789012:role/eddy-subscriber"


class World:
    def __init__(self):
        self.table = awsenv.create_table(ENV, unique_name("outbox-v2"))
        self.queue = awsenv.create_queue(ENV, unique_name("outbox-v2-q"))
        eb2 = ENV.client("eventbridgev2")
        self.bus = eb2.create_event_bus(Name=unique_name("custom"))["EventBusArn"]
        self.down = awsenv.create_queue(ENV, unique_name("subscriber"), fifo=True)
        eb2.create_subscriber(
            Name=unique_name("sub"), EventBusArn=self.bus, Type="FIFO",
            InvokeConfiguration={"RoleArn": ROLE, "TargetArn": self.down["arn"]},
            FilterConfiguration={"Filters": [{"Pattern": '{"source":["eddy.machine"]}',
                                              "Scope": "METADATA"}]})
        self.bus_proxy = FaultProxy(ENV.endpoint("eventbridgev2")).start()
        self.ddb_proxy = FaultProxy(ENV.endpoint("dynamodb")).start()
        self.arrived = []  # (id, entity, seq, idx) in arrival order

    def settings(self):
        return {"EDDY_EVENT_BUS": self.bus, "AWS_ENDPOINT_URL_EVENTBRIDGEV2": self.bus_proxy.url,
                "AWS_ENDPOINT_URL_DYNAMODB": self.ddb_proxy.url, "EDDY_OUTBOX_SHARDS": SHARDS,
                "EDDY_OUTBOX_GRACE": 1, "EDDY_SWEEP_MAX": 1, "EDDY_RELAY_POLL_MS": 200,
                "EDDY_LEASE_MS": 2000}

    def worker(self):
        return Worker(ENV, self.table, self.queue["url"], EDDY_RELAY="on", **self.settings())

    def relay(self):
        env = dict(os.environ)
        env.update(ENV.values)
        env.update({k: str(v) for k, v in self.settings().items()})
        env.update(EDDY_TABLE=self.table, EDDY_MACHINE="slotmachine", EDDY_METRICS="off")
        p = subprocess.Popen([str(wk.EDDY), "relay"], env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        awsenv.STARTED.append(p)
        return p

    def outbox_left(self):
        return sum(len(wk.items(ENV, self.table, f"#outbox/{s}")) for s in range(SHARDS))

    def outbound_ids(self, entities):
        ids = set()
        for e in entities:
            for it in wk.items(ENV, self.table, f"{wk.NS}/{e}"):
                sk = it["_sk"]["S"].split("/")
                if sk[0] == "OUTBOUND":
                    ids.add(f"{wk.NS}/{e}/{sk[1]}/{sk[2]}")
        return ids

    def receive(self):
        """Take what the subscriber delivered so far; return the distinct ids."""
        sqs = ENV.sqs()
        while True:
            got = sqs.receive_message(QueueUrl=self.down["url"], MaxNumberOfMessages=10,
                                      WaitTimeSeconds=0).get("Messages", [])
            if not got:
                break
            for m in got:
                meta = json.loads(m["Body"])["detail"]["eddy"]
                self.arrived.append((meta["id"], meta["entity"], meta["seq"], meta["idx"]))
            sqs.delete_message_batch(QueueUrl=self.down["url"], Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)])
        return {a[0] for a in self.arrived}

    def wait_delivered(self, want, what):
        wait_for(lambda: self.receive() >= want, 60, 0.2, what)

    def close(self):
        self.bus_proxy.stop()
        self.ddb_proxy.stop()


def check_once_in_order(arrived, want):
    ids = [a[0] for a in arrived]
    assert len(ids) == len(set(ids)), f"{len(ids) - len(set(ids))} events arrived twice"
    assert set(ids) == want, (len(set(ids)), len(want))
    last = {}
    for eid, entity, seq, idx in arrived:
        assert (seq, idx) > last.get(entity, (0, -1)), f"{eid} arrived after {last[entity]}"
        last[entity] = (seq, idx)


def test_once_and_in_order_through_kill9():
    w = World()
    entities = [f"v2-{i}" for i in range(6)]
    workers = []
    try:
        # 1. deletes fail, answers get lost: published, then killed with every row left
        w.ddb_proxy.set_rules([{"op": "BatchWriteItem", "action": "status", "status": 500,
                                "code": "InternalServerError"}])
        w.bus_proxy.set_rules([{"op": "POST", "action": "drop", "after": True, "rate": 0.25}])
        a = w.worker()
        workers.append(a)
        wk.send_all(ENV, w.queue["url"], wk.game_bodies(entities, 3))
        wk.wait_drained(ENV, w.queue["url"])
        first = w.outbound_ids(entities)
        w.wait_delivered(first, "the first batch delivered")
        a.kill()
        left = w.outbox_left()
        assert left == len(first), f"{left} rows left for {len(first)} events"

        # 2. the leftovers go out again (DEDUPLICATED); a second batch, killed mid-way
        w.ddb_proxy.set_rules([])
        w.bus_proxy.set_rules([{"op": "POST", "action": "delay", "ms": 150}])
        b = w.worker()
        workers.append(b)
        wk.send_all(ENV, w.queue["url"], wk.game_bodies(entities, 3))
        wk.wait_drained(ENV, w.queue["url"])
        b.kill()
        second = w.outbound_ids(entities) - first

        # 3. the rest swept by `eddy relay`, then a third batch through a live worker
        w.bus_proxy.set_rules([])
        r = w.relay()
        wait_for(lambda: w.outbox_left() == 0, 60, 0.2, "the leftovers swept")
        r.send_signal(signal.SIGTERM)
        assert r.wait(timeout=30) == 0
        w.wait_delivered(first | second, "the second batch delivered")
        c = w.worker()
        workers.append(c)
        wk.send_all(ENV, w.queue["url"], wk.game_bodies(entities, 2))
        wk.wait_drained(ENV, w.queue["url"])
        everything = w.outbound_ids(entities)
        w.wait_delivered(everything, "the third batch delivered")
        wait_for(lambda: w.outbox_left() == 0, 30, 0.2, "the outbox emptied")
        assert c.stop(signal.SIGTERM) == 0, c.logs()[-3000:]
        w.receive()
        check_once_in_order(w.arrived, everything)
        for e in entities:
            wk.check_entity(ENV, w.table, e)
        print(f"     {len(everything)} events, {left} rows re-published after the first "
              f"kill, {len(w.arrived)} delivered", flush=True)
    finally:
        for p in workers:
            wk.kill_quietly(p)
        w.close()


OutboxV2Test = awsenv.test_case("OutboxV2Test", [test_once_and_in_order_through_kill9])


if __name__ == "__main__":
    awsenv.main()
