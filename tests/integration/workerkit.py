"""Shared pieces of the worker's integration tests (test_worker*.py).

Runs the real `eddy` binary (EDDY_BUILD_ROOT/eddy) against the local AWS,
builds EventBridge-shaped message bodies for the slot machine, reads the
table back, and replays an entity's recorded inbound events through a
Python port of the slot machine (same generator, seeded from the event id)
to check that the stored state is exactly the sequential result of the
events it records. The worker runs with its outbox relay on; outbox_rows()
tells what it left unpublished.
"""

import json
import os
import signal
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import awsenv

BUILD_ROOT = Path(os.environ.get("EDDY_BUILD_ROOT", awsenv.SOURCE_ROOT / "build"))
EDDY = BUILD_ROOT / "eddy"
NS = "machine"  # the slot machine's namespace
MASK = (1 << 64) - 1


def body(entity, typ, event_id=None, user="u1"):
    """An EventBridge envelope as the rule delivers it to the queue."""
    return json.dumps({
        "version": "0", "id": event_id or str(uuid.uuid4()), "detail-type": typ,
        "source": "test.slots", "account": "123456789012", "time": "2026-01-01T00:00:00Z",
        "region": "us-east-1", "resources": [], "detail": {"id": entity, "userId": user}})


def game_bodies(entities, games):
    """InsertCoin then PullHandle, `games` times per entity, interleaved."""
    out = []
    for g in range(games):
        for e in entities:
            out.append(body(e, "InsertCoin"))
            out.append(body(e, "PullHandle"))
    return out


def send_all(env, queue_url, bodies, fifo_group=None):
    sqs = env.sqs()
    for i in range(0, len(bodies), 10):
        entries = []
        for j, b in enumerate(bodies[i:i + 10]):
            e = {"Id": str(j), "MessageBody": b}
            if fifo_group:
                e["MessageGroupId"] = fifo_group(b)
                e["MessageDeduplicationId"] = uuid.uuid4().hex
            entries.append(e)
        res = sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)
        assert not res.get("Failed"), res.get("Failed")


class Worker:
    """One `eddy worker` process; stdout (metrics) and stderr (logs) go to files."""

    def __init__(self, env, table, queue_url, **settings):
        self.dir = Path(tempfile.mkdtemp(prefix="eddy-worker-"))
        e = dict(os.environ)
        e.update(env.values)
        e.update({"EDDY_TABLE": table, "EDDY_QUEUE_URL": queue_url,
                  # few polls (the local SQS slows down badly under many), and
                  # short ones: a stop lets the polls out return first
                  "EDDY_MACHINE": "slotmachine", "EDDY_WAIT_SECONDS": "2", "EDDY_POLLERS": "2",
                  "EDDY_METRICS_INTERVAL": "1",
                  # the relay on, as in production: every commit is published
                  # (to the default bus unless a test names its own)
                  "EDDY_RELAY": "on", "EDDY_EVENT_BUS": "default",
                  "EDDY_HEALTH_FILE": str(self.dir / "health")})
        for k, v in settings.items():
            e[k] = str(v)
        self.env = e
        self.out = open(self.dir / "stdout", "wb")
        self.err = open(self.dir / "stderr", "wb")
        self.proc = subprocess.Popen([str(EDDY), "worker"], env=e, stdout=self.out,
                                     stderr=self.err)
        awsenv.STARTED.append(self.proc)

    def stop(self, sig=signal.SIGTERM, timeout=30):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            self.out.close()
            self.err.close()

    def kill(self):
        self.proc.kill()
        self.proc.wait()
        self.out.close()
        self.err.close()

    def logs(self):
        return (self.dir / "stderr").read_text(errors="replace")

    def metrics(self):
        """Totals of every EMF counter over the lines written so far."""
        totals = {}
        for line in (self.dir / "stdout").read_text().splitlines():
            try:
                m = json.loads(line)
            except ValueError:
                continue
            for k, v in m.items():
                if isinstance(v, (int, float)) and not k.endswith(("_p50", "_p99")):
                    totals[k] = totals.get(k, 0) + v
        return totals

    def cpu_seconds(self):
        """User + system CPU of the process so far (Linux /proc)."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        return (int(fields[11]) + int(fields[12])) / ticks


def items(env, table, pk):
    ddb = env.dynamodb()
    out, start = [], None
    while True:
        kw = {"TableName": table, "KeyConditionExpression": "#p = :p",
              "ExpressionAttributeNames": {"#p": "_pk"},
              "ExpressionAttributeValues": {":p": {"S": pk}}, "ConsistentRead": True}
        if start:
            kw["ExclusiveStartKey"] = start
        res = ddb.query(**kw)
        out += res["Items"]
        start = res.get("LastEvaluatedKey")
        if not start:
            return out


def state(env, table, entity):
    res = env.dynamodb().get_item(TableName=table, ConsistentRead=True,
                                  Key={"_pk": {"S": f"{NS}/{entity}"}, "_sk": {"S": "STATE"}})
    it = res.get("Item")
    if not it:
        return None
    return {"seq": int(it["_seq"]["N"]), "games": int(it["games"]["N"]),
            "balance": int(it["balance"]["N"]), "wins": int(it["wins"]["N"]),
            "losses": int(it["losses"]["N"]), "coin": it["isCoinInSlot"]["BOOL"]}


def inbound(env, table, entity):
    """The entity's inbound records, applied (INBOUND/) and refused (REJECTED/),
    in (seq, idx) order."""
    recs = [i for i in items(env, table, f"{NS}/{entity}")
            if i["_sk"]["S"].startswith(("INBOUND/", "REJECTED/"))]

    def key(i):
        parts = i["_sk"]["S"].split("/")
        return int(parts[1]), int(parts[2])
    return sorted(recs, key=key)


def outbox_rows(env, table, shards=8):
    """The outbox entries left in the table (published ones are deleted)."""
    return sum(len(items(env, table, f"#outbox/{n}")) for n in range(shards))


def queue_count(env, url):
    """Visible plus in-flight messages; a huge number while the service does
    not answer (the local AWS can be slow under load)."""
    try:
        a = env.sqs().get_queue_attributes(QueueUrl=url, AttributeNames=[
            "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    except Exception:  # noqa: BLE001  (a timeout or a 5xx: ask again later)
        return 1 << 30
    return int(a["ApproximateNumberOfMessages"]) + int(a["ApproximateNumberOfMessagesNotVisible"])


# ---- the slot machine, ported for the replay check ----

def _fnv1a64(data):
    h = 0xcbf29ce484222325
    for b in data:
        h = ((h ^ b) * 0x100000001b3) & MASK
    return h


class Rng:
    """eddy/rng.h: SplitMix64-seeded xoshiro256**, seeded from an event id."""

    def __init__(self, event_id):
        x = _fnv1a64(event_id.encode())
        self.s = []
        for _ in range(4):
            x = (x + 0x9e3779b97f4a7c15) & MASK
            z = x
            z = ((z ^ (z >> 30)) * 0xbf58476d1ce4e5b9) & MASK
            z = ((z ^ (z >> 27)) * 0x94d049bb133111eb) & MASK
            self.s.append(z ^ (z >> 31))

    @staticmethod
    def _rotl(x, k):
        return ((x << k) | (x >> (64 - k))) & MASK

    def next(self):
        s = self.s
        result = (self._rotl((s[1] * 5) & MASK, 7) * 9) & MASK
        t = (s[1] << 17) & MASK
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = self._rotl(s[3], 45)
        return result

    def float64(self):
        return (self.next() >> 11) * 2.0 ** -53


def replay(records):
    """Fold recorded inbound events through the slot machine; return the state
    and whether every record's _rejected matches what the machine says."""
    st = {"games": 0, "balance": 0, "wins": 0, "losses": 0, "coin": False}
    consistent = True
    for r in records:
        typ = r["_typ"]["S"]
        eid = r["_eid"]["S"]
        rejected = None
        if typ == "InsertCoin":
            if st["coin"]:
                rejected = "cannot insert coin"
            else:
                st["coin"] = True
        elif typ == "PullHandle":
            if not st["coin"]:
                rejected = "cannot pull handle"
            else:
                st["coin"] = False
                win = Rng(eid).float64() < 0.18
                st["games"] += 1
                if win:
                    st["wins"] += 1
                    st["balance"] -= 3
                else:
                    st["losses"] += 1
                    st["balance"] += 1
        else:
            rejected = "unknown"
        refused = r["_sk"]["S"].startswith("REJECTED/")
        if (rejected is not None) != ("_rejected" in r) or refused != ("_rejected" in r):
            consistent = False
    return st, consistent


def check_entity(env, table, entity):
    """The stored state equals the replay of its records; returns (state, records)."""
    recs = inbound(env, table, entity)
    want, consistent = replay(recs)
    got = state(env, table, entity)
    assert consistent, f"{entity}: a record's _rejected disagrees with the replay"
    assert got is not None, f"{entity}: no state"
    for k in want:
        assert got[k] == want[k], f"{entity}: {k} is {got[k]}, replay says {want[k]}"
    eids = [r["_eid"]["S"] for r in recs]
    assert len(eids) == len(set(eids)), f"{entity}: an event was applied twice"
    return got, recs


def wait_drained(env, url, timeout_s=60):
    awsenv.wait_for(lambda: queue_count(env, url) == 0, timeout_s=timeout_s, interval_s=0.2,
                    what="queue drained")


def stop_ok(worker, timeout=30):
    rc = worker.stop(timeout=timeout)
    assert rc == 0, f"worker exited {rc}; logs:\n{worker.logs()[-3000:]}"
    return rc


def kill_quietly(w):
    if w.proc.poll() is None:
        w.kill()


def now():
    return time.monotonic()
