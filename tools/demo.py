"""The eddy demo: slot-machine events through the whole pipeline on a local AWS.

Run by tools/demo after it has bootstrapped and built. Steps:
  1. start moto on 127.0.0.1 (tools/local-aws) in .run/demo;
  2. create the data resources of deploy/cloudformation.yaml through
     CloudFormation on moto (DeployService=false): table, queue, DLQ, bus, rule,
     queue policy; then a downstream queue and a rule on the bus that catch the
     published GameResult/Payout events (source eddy.machine). With --bus v2,
     eddy publishes to an EventBridge Custom Event Bus instead (the local AWS's
     eventbridgev2 API), whose FIFO subscriber feeds a FIFO downstream queue;
  3. start `eddy worker` with the relay and the slot machine;
  4. send InsertCoin/PullHandle events for several machines and users through
     EventBridge PutEvents (10 a call), with a few duplicates (the same envelope id
     twice, straight into SQS), a few refused pulls (no coin) and one poison
     message (not JSON, straight into SQS);
  5. wait until everything is processed and published, then show the machines'
     states, the events received downstream, the DLQ and the worker's metrics;
  6. stop the worker with SIGTERM (it must exit 0) and moto.

Every check is exact and independent of delivery order (a standard SQS queue may
reorder): each event sent is recorded exactly once, duplicates are not applied
again, each accepted pull is one game, every game is published once downstream.
With --bus v2 the downstream must also get each game exactly once (no copies)
and each machine's events in (seq, idx) order.
Exit status 0 only when all hold. Nothing here talks to anything but 127.0.0.1.
"""

import argparse
import json
import os
import random
import shlex
import signal
import subprocess
import sys
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import localaws  # noqa: E402  (tools/localaws.py)

STACK = "eddy-demo"
NAMESPACE = "machine"  # the slot machine's namespace
SOURCE_IN = "demo.players"
SOURCE_OUT = "eddy.machine"  # eddy's default Source: eddy.<namespace>
USERS = ("alice", "bob", "carol", "dave", "erin", "frank")
PAYOUT = 4  # the slot machine's payout
DRAIN_S = 10
# DeployService=false: the data resources only. The service's parameters have no
# default and must be given, though nothing uses them then.
DATA_ONLY = {"DeployService": "false", "Image": "eddy:local",
             "Subnets": "subnet-00000000000000000", "SecurityGroups": "sg-00000000000000000"}


class DemoError(Exception):
    """Something went wrong; the message is meant for the person running the demo."""


def say(text=""):
    print(text, flush=True)


T0 = time.monotonic()


def step(text):
    say(f"== [{time.monotonic() - T0:5.1f} s] {text}")


# --- the local AWS ------------------------------------------------------------


class LocalAws:
    """moto through tools/local-aws, with boto3 clients for it."""

    def __init__(self, run_dir, tls=False):
        self.run_dir = run_dir
        self.tls = tls  # HTTPS with the run's CA (tools/local-aws start --tls)
        self.env = {}
        self.started = False

    def tool(self, *args, capture=True):
        cmd = [sys.executable, str(ROOT / "tools" / "localaws.py"), *args,
               "--dir", str(self.run_dir)]
        proc = subprocess.run(cmd, capture_output=capture, text=True, check=False)
        if proc.returncode != 0:
            raise DemoError(f"tools/local-aws {args[0]} failed:\n{proc.stderr}")
        return proc.stdout

    def start(self):
        self.tool("stop")  # a moto left behind by an earlier --keep run
        self.tool("start", *(["--tls"] if self.tls else []))
        self.started = True
        self.env = localaws.read_env_file(self.run_dir / "env")

    def stop(self):
        if self.started:
            self.tool("stop")
            self.started = False

    def client(self, service):
        import boto3
        from botocore.config import Config

        endpoint = self.env.get(f"AWS_ENDPOINT_URL_{service.upper()}",
                                self.env["AWS_ENDPOINT_URL"])
        return boto3.session.Session().client(
            service, region_name=self.env["AWS_REGION"], endpoint_url=endpoint,
            aws_access_key_id=self.env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=self.env["AWS_SECRET_ACCESS_KEY"],
            verify=self.env.get("AWS_CA_BUNDLE", True),
            config=Config(retries={"max_attempts": 5, "mode": "standard"}))


def deploy(aws, stack=STACK):
    """The template's data resources through CloudFormation; returns its outputs."""
    template = (ROOT / "deploy" / "cloudformation.yaml").read_text()
    try:
        out = localaws.deploy_stack(aws.env, template, stack, DATA_ONLY)
    except (localaws.LocalAwsError, ClientError) as err:
        raise DemoError(str(err)) from err
    for key in ("TableName", "QueueUrl", "DeadLetterQueueUrl", "EventBusName"):
        if key not in out:
            raise DemoError(f"the stack has no output {key}: {sorted(out)}")
    return out


def add_downstream(aws, bus, name):
    """A queue and a rule on the bus catching what eddy publishes; returns the URL."""
    sqs, events = aws.client("sqs"), aws.client("events")
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]
    pattern = {"source": [SOURCE_OUT], "detail-type": ["GameResult", "Payout"]}
    events.put_rule(Name=name, EventBusName=bus, EventPattern=json.dumps(pattern))
    events.put_targets(Rule=name, EventBusName=bus, Targets=[{"Id": "downstream", "Arn": arn}])
    return url


def add_custom_bus(aws, name):
    """A Custom Event Bus and a FIFO subscriber feeding a FIFO queue with what
    eddy publishes; returns (bus ARN, downstream queue URL)."""
    bus = aws.client("eventbridgev2").create_event_bus(Name=name)["EventBusArn"]
    return bus, add_custom_subscriber(aws, bus, name)


def add_custom_subscriber(aws, bus, name):
    """A FIFO subscriber on the Custom Event Bus feeding a FIFO queue with the
    published GameResult/Payout events (one group per machine); returns the URL."""
    sqs, eb2 = aws.client("sqs"), aws.client("eventbridgev2")
    url = sqs.create_queue(QueueName=f"{name}-downstream.fifo",
                           Attributes={"FifoQueue": "true"})["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]
    pattern = {"source": [SOURCE_OUT], "detail-type": ["GameResult", "Payout"]}
    eb2.create_subscriber(
        Name=f"{name}-downstream", EventBusArn=bus, Type="FIFO",
        InvokeConfiguration={"RoleArn": "arn:aws:iam::123456789012:role/demo-subscriber",
                             "TargetArn": arn},
        FilterConfiguration={"Filters": [{"Pattern": json.dumps(pattern),
                                          "Scope": "METADATA"}]})
    return url


# --- the worker ---------------------------------------------------------------


class Worker:
    """`eddy worker` as a child process: metrics (stdout) and logs (stderr) to files."""

    def __init__(self, eddy, run_dir, aws_env, settings, name="worker"):
        self.eddy = str(Path(eddy).resolve())
        self.metrics_path = run_dir / f"{name}.metrics.jsonl"
        self.log_path = run_dir / f"{name}.log"
        self.env = dict(os.environ)
        self.env.update(aws_env)
        self.env.update(settings)
        self.proc = None

    def start(self):
        self.started_at = time.monotonic()
        with open(self.metrics_path, "wb") as out, open(self.log_path, "wb") as err:
            self.proc = subprocess.Popen([self.eddy, "worker"], stdin=subprocess.DEVNULL,
                                         stdout=out, stderr=err, env=self.env)
        time.sleep(0.5)
        self.check_alive()

    def check_alive(self):
        if self.proc.poll() is not None:
            raise DemoError(f"eddy worker exited with status {self.proc.returncode}:\n"
                            f"{self.log_tail()}")

    def log_tail(self, n=15):
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(lines[-n:])

    def stop(self, timeout_s=DRAIN_S + 10):
        """SIGTERM, wait for the drain; returns (exit status, seconds)."""
        if self.proc is None or self.proc.poll() is not None:
            return (self.proc.returncode if self.proc else None), 0.0
        t0 = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise DemoError(f"eddy worker did not exit {timeout_s} s after SIGTERM") from None
        return rc, time.monotonic() - t0

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def emf_lines(self):
        lines = []
        try:
            text = self.metrics_path.read_text(errors="replace")
        except OSError:
            return lines
        for line in text.splitlines():
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            if isinstance(obj, dict) and "_aws" in obj:
                lines.append(obj)
        return lines


# --- the events ---------------------------------------------------------------


def envelope(detail_type, detail, event_id=None):
    """The JSON EventBridge puts into an SQS queue for one event."""
    return {
        "version": "0",
        "id": event_id or str(uuid.uuid4()),
        "detail-type": detail_type,
        "source": SOURCE_IN,
        "account": "123456789012",
        "time": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": "us-east-1",
        "resources": [],
        "detail": detail,
    }


def plan_events(machines, count, rng, refusals, duplicates):
    """The events to send, in order: dicts with machine, type, detail, how.

    Each machine alternates InsertCoin and PullHandle; `refusals` extra pulls
    without a coin are spread in, and `duplicates` events are marked to be sent
    straight into SQS twice with one envelope id (how = "dup"). The rest go
    through EventBridge (how = "put").
    """
    coin = {m: False for m in machines}
    refuse_at = set(rng.sample(range(count // 4, count), min(refusals, count // 2)))
    events = []
    for i in range(count):
        m = rng.choice(machines)
        empty = [x for x in machines if not coin[x]]
        if i in refuse_at and empty:  # a pull on a machine without a coin
            events.append(pull(rng.choice(empty), rng, refused=True))
            continue
        if coin[m]:
            events.append(pull(m, rng))
        else:
            events.append({"machine": m, "type": "InsertCoin", "detail": {"id": m}})
        coin[m] = not coin[m]
    for e in events:
        e["how"] = "put"
    plain = [i for i, e in enumerate(events) if i < len(events) * 3 // 4]
    for i in rng.sample(plain, min(duplicates, len(plain))):
        events[i]["how"] = "dup"
        events[i]["id"] = f"demo-duplicate-{i}"
    return events


def pull(machine, rng, refused=False):
    return {"machine": machine, "type": "PullHandle", "refused": refused,
            "detail": {"id": machine, "userId": rng.choice(USERS)}}


class Progress:
    """A one-line progress bar on a terminal, a few plain lines elsewhere."""

    def __init__(self, total, label):
        self.total, self.label = total, label
        self.tty = sys.stdout.isatty()
        self.last_pct = -1

    def update(self, done):
        pct = done * 100 // max(self.total, 1)
        if self.tty:
            width = 40
            fill = width * done // max(self.total, 1)
            bar = "#" * fill + "." * (width - fill)
            sys.stdout.write(f"\r   {self.label} [{bar}] {done}/{self.total}")
            sys.stdout.flush()
        elif pct // 25 != self.last_pct // 25 or done == self.total:
            say(f"   {self.label}: {done}/{self.total}")
        self.last_pct = pct

    def done(self):
        if self.tty:
            sys.stdout.write("\n")


def send_events(aws, out, events, poison_body):
    """Send the plan; returns the counts of what was sent."""
    events_client, sqs = aws.client("events"), aws.client("sqs")
    queue, bus = out["QueueUrl"], out["EventBusName"]
    bar = Progress(len(events), "sending")
    pending_dups = []  # (send after index, body)
    batch, sent, dup_copies, poison_at = [], 0, 0, len(events) // 2

    def flush():
        if not batch:
            return
        res = events_client.put_events(Entries=batch)
        if res.get("FailedEntryCount", 0):
            raise DemoError(f"PutEvents refused entries: {res['Entries']}")
        batch.clear()

    for i, e in enumerate(events):
        if e["how"] == "dup":
            flush()
            body = json.dumps(envelope(e["type"], e["detail"], e["id"]))
            sqs.send_message(QueueUrl=queue, MessageBody=body)
            pending_dups.append((i + 30, body))
        else:
            batch.append({"Source": SOURCE_IN, "DetailType": e["type"],
                          "Detail": json.dumps(e["detail"]), "EventBusName": bus})
            if len(batch) == 10:
                flush()
        if i == poison_at:
            sqs.send_message(QueueUrl=queue, MessageBody=poison_body)
        for after, body in [d for d in pending_dups if d[0] <= i]:
            sqs.send_message(QueueUrl=queue, MessageBody=body)  # the same envelope again
            pending_dups.remove((after, body))
            dup_copies += 1
        sent += 1
        bar.update(sent)
        time.sleep(0.004)  # a steady stream, so the flow is visible
    flush()
    for _after, body in pending_dups:
        sqs.send_message(QueueUrl=queue, MessageBody=body)
        dup_copies += 1
    bar.done()
    return {"events": len(events), "duplicate_copies": dup_copies, "poison": 1}


# --- reading the results ------------------------------------------------------


def plain_item(item):
    from boto3.dynamodb.types import TypeDeserializer

    des = TypeDeserializer()
    return {k: des.deserialize(v) for k, v in item.items()}


def queue_backlog(sqs, url):
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
             "ApproximateNumberOfMessagesDelayed"]
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    return sum(int(attrs.get(n, 0)) for n in names)


def inbound_records(ddb, table, machine):
    """The inbound records of one machine, applied (INBOUND/) and refused
    (REJECTED/, carrying _rejected), in (seq, idx) order."""
    out = []
    for prefix in ("INBOUND/", "REJECTED/"):
        pages = ddb.get_paginator("query").paginate(
            TableName=table, ConsistentRead=True,
            KeyConditionExpression="#pk = :pk AND begins_with(#sk, :pre)",
            ExpressionAttributeNames={"#pk": "_pk", "#sk": "_sk"},
            ExpressionAttributeValues={":pk": {"S": f"{NAMESPACE}/{machine}"},
                                       ":pre": {"S": prefix}})
        out += [plain_item(i) for p in pages for i in p.get("Items", [])]
    return sorted(out, key=lambda r: (int(r["_seq"]), int(r["_sk"].split("/")[2])))


def state_of(ddb, table, machine):
    item = ddb.get_item(TableName=table, ConsistentRead=True,
                        Key={"_pk": {"S": f"{NAMESPACE}/{machine}"}, "_sk": {"S": "STATE"}})
    return plain_item(item["Item"]) if "Item" in item else None


def eddy_meta(body):
    """The "eddy" member eddy adds to a published event's detail:
    {"entity", "namespace", "seq", "idx", "id" (stable "<ns>/<id>/<seq>/<idx>")}."""
    return (body.get("detail") or {}).get("eddy") or {}


class Downstream:
    """Collects what eddy published, from the downstream queue."""

    def __init__(self, sqs, url):
        self.sqs, self.url = sqs, url
        self.events = {}  # eddy id -> body
        self.copies = 0
        self.order = []  # (entity, seq, idx) in arrival order

    def drain(self):
        while True:
            got = self.sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=10,
                                           WaitTimeSeconds=0).get("Messages", [])
            if not got:
                return
            for m in got:
                self.take(json.loads(m["Body"]))
            self.sqs.delete_message_batch(QueueUrl=self.url, Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)])

    def take(self, body):
        meta = eddy_meta(body)
        key = meta.get("id") or body.get("id")
        self.copies += 1
        if key in self.events:
            return
        self.events[key] = body
        self.order.append((meta.get("entity"), meta.get("seq"), meta.get("idx")))

    def count(self, detail_type):
        return sum(1 for b in self.events.values() if b.get("detail-type") == detail_type)

    def per_machine(self, detail_type):
        counts = {}
        for b in self.events.values():
            if b.get("detail-type") == detail_type:
                m = b["detail"].get("machineId")
                counts[m] = counts.get(m, 0) + 1
        return counts

    def in_order(self):
        """True when each entity's (seq, idx) arrived ascending."""
        last = {}
        for entity, seq, idx in self.order:
            if seq is None:
                continue
            key = (int(seq), int(idx or 0))
            if entity in last and key < last[entity]:
                return False
            last[entity] = key
        return True


def dlq_messages(sqs, url):
    got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0,
                              VisibilityTimeout=0, MessageAttributeNames=["All"],
                              AttributeNames=["All"]).get("Messages", [])
    return got


def tally(records, machines):
    """Per machine: coins and pulls recorded, accepted and refused."""
    out = {m: {"records": 0, "coins": 0, "coins_refused": 0, "pulls": 0,
               "pulls_refused": 0, "eids": []} for m in machines}
    for m, recs in records.items():
        t = out[m]
        for r in recs:
            t["records"] += 1
            t["eids"].append(r.get("_eid"))
            kind = "coins" if r.get("_typ") == "InsertCoin" else "pulls"
            t[kind] += 1
            if r.get("_rejected"):
                t[kind + "_refused"] += 1
    return out


def wait_processed(aws, out, machines, expected, downstream, worker, timeout_s):
    """Poll until the queue is empty, every event is recorded and every game published."""
    sqs, ddb = aws.client("sqs"), aws.client("dynamodb")
    deadline = time.monotonic() + timeout_s
    t0 = time.monotonic()
    while True:
        worker.check_alive()
        downstream.drain()
        if queue_backlog(sqs, out["QueueUrl"]) == 0:
            records = {m: inbound_records(ddb, out["TableName"], m) for m in machines}
            states = {m: state_of(ddb, out["TableName"], m) for m in machines}
            recorded = sum(len(r) for r in records.values())
            games = sum(int(s["games"]) for s in states.values() if s)
            wins = sum(int(s["wins"]) for s in states.values() if s)
            published = (downstream.count("GameResult"), downstream.count("Payout"))
            if recorded >= expected and published == (games, wins):
                return records, states, time.monotonic() - t0
        if time.monotonic() > deadline:
            raise DemoError(f"not everything was processed within {timeout_s} s "
                            f"(queue backlog {queue_backlog(sqs, out['QueueUrl'])}); "
                            f"worker log: {worker.log_path}")
        time.sleep(0.5)


# --- the report ---------------------------------------------------------------


def table(headers, rows):
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows)]
    line = "  ".join(f"{{:>{w}}}" for w in widths)
    say("   " + line.format(*headers))
    say("   " + "  ".join("-" * w for w in widths))
    for r in rows:
        say("   " + line.format(*[str(x) for x in r]))


def check_machines(machines, states, tallies, plan, downstream, problems):
    """Show the machines' table; add every inconsistency to problems."""
    sent = {m: {"coins": 0, "pulls": 0} for m in machines}
    for e in plan:
        sent[e["machine"]]["coins" if e["type"] == "InsertCoin" else "pulls"] += 1
    results, payouts = downstream.per_machine("GameResult"), 0
    rows = []
    for m in machines:
        s, t = states[m] or {}, tallies[m]
        games, wins, losses = int(s.get("games", 0)), int(s.get("wins", 0)), int(s.get("losses", 0))
        balance = int(s.get("balance", 0))
        rows.append([m, balance, games, wins, losses, "yes" if s.get("isCoinInSlot") else "no",
                     t["pulls_refused"] + t["coins_refused"], results.get(m, 0), int(s.get("_seq", 0))])
        checks = [
            (t["coins"] == sent[m]["coins"], f"{t['coins']} InsertCoin recorded, {sent[m]['coins']} sent"),
            (t["pulls"] == sent[m]["pulls"], f"{t['pulls']} PullHandle recorded, {sent[m]['pulls']} sent"),
            (len(set(t["eids"])) == len(t["eids"]), "an event id recorded twice"),
            (games == t["pulls"] - t["pulls_refused"], f"{games} games but "
             f"{t['pulls'] - t['pulls_refused']} accepted pulls"),
            (games == wins + losses, f"games {games} != wins {wins} + losses {losses}"),
            (balance == losses - (PAYOUT - 1) * wins, f"balance {balance} does not follow "
             f"from {wins} wins and {losses} losses"),
            (results.get(m, 0) == games, f"{results.get(m, 0)} GameResult published, {games} games"),
        ]
        problems += [f"{m}: {text}" for ok, text in checks if not ok]
        payouts += wins
    table(["machine", "balance", "games", "wins", "losses", "coin in", "refused",
           "GameResult", "_seq"], rows)
    if downstream.count("Payout") != payouts:
        problems.append(f"{downstream.count('Payout')} Payout published, {payouts} wins")


def show_downstream(downstream, problems, custom_bus=False):
    say(f"   GameResult: {downstream.count('GameResult')}   Payout: {downstream.count('Payout')}"
        f"   (messages received: {downstream.copies}, distinct: {len(downstream.events)})")
    ordered = downstream.in_order()
    say(f"   per-machine order of eddy.seq/idx as received: {'ascending' if ordered else 'NOT ascending'}")
    if custom_bus:  # exactly once and in order is what the Custom Event Bus promises
        if downstream.copies != len(downstream.events):
            problems.append(f"the Custom Event Bus delivered {downstream.copies} messages "
                            f"for {len(downstream.events)} events")
        if not ordered:
            problems.append("the Custom Event Bus delivered a machine's events out of order")
    sample = next((b for b in downstream.events.values() if b.get("detail-type") == "Payout"),
                  next(iter(downstream.events.values()), None))
    if sample:
        say(f"   one of them: {json.dumps({k: sample[k] for k in ('source', 'detail-type', 'detail')})}")


def show_dlq(aws, out, poison_body, problems):
    msgs = dlq_messages(aws.client("sqs"), out["DeadLetterQueueUrl"])
    for m in msgs:
        reason = (m.get("MessageAttributes", {}).get("eddy-error") or {}).get("StringValue")
        say(f"   body {m['Body'][:60]!r}  eddy-error: {reason!r}")
        if m["Body"] == poison_body and not reason:
            problems.append("the poison message in the DLQ has no eddy-error attribute")
    if len(msgs) != 1 or msgs[0]["Body"] != poison_body:
        problems.append(f"the DLQ holds {len(msgs)} messages, expected the one poison message")


def show_metrics(worker, counts, problems):
    lines = worker.emf_lines()
    if not lines:
        problems.append(f"the worker wrote no metric line ({worker.metrics_path})")
        return
    names = [m["Name"] for d in lines[-1]["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]]
    # counters only: not the percentiles, nor the latency distributions (objects)
    totals = {n: sum(line.get(n, 0) for line in lines) for n in names
              if not n.endswith(("_p50", "_p99")) and not isinstance(lines[-1].get(n), dict)}
    say("   totals over " + f"{len(lines)} EMF lines: " +
        ", ".join(f"{k} {v:g}" for k, v in totals.items()))
    with_latency = [ln for ln in lines if any(k.endswith("_p50") for k in ln)]
    if with_latency:
        last = with_latency[-1]
        say("   latest percentiles (ms): " + ", ".join(
            f"{k} {v:g}" for k, v in last.items() if k.endswith(("_p50", "_p99"))))
    busy = [ln for ln in lines if any(ln.get(n) for n in totals)] or lines
    say(f"   last line with counts: {json.dumps(busy[-1], separators=(',', ':'))}")
    if "duplicates" in totals and totals["duplicates"] < counts["duplicate_copies"]:
        problems.append(f"metrics count {totals['duplicates']:g} duplicates, "
                        f"{counts['duplicate_copies']} were sent")
    if "poison" in totals and totals["poison"] != counts["poison"]:
        problems.append(f"metrics count {totals['poison']:g} poison, {counts['poison']} sent")


def show_eddy_get(eddy, env, machine):
    proc = subprocess.run([eddy, "get", machine], capture_output=True, text=True,
                          env=env, check=False, timeout=30)
    if proc.returncode == 0:
        say(f"   $ eddy get {machine}")
        for line in proc.stdout.strip().splitlines():
            say(f"   {line}")


# --- main -------------------------------------------------------------------


def parse_args(argv):
    p = argparse.ArgumentParser(prog="tools/demo", description=__doc__.split("\n")[0])
    p.add_argument("--eddy", default=str(ROOT / "build" / "eddy"), help="the eddy binary")
    p.add_argument("--machines", type=int, default=5, help="slot machines (5)")
    p.add_argument("--events", type=int, default=200, help="events sent (200)")
    p.add_argument("--keep", action="store_true", help="leave moto running at the end")
    p.add_argument("--seed", type=int, default=1, help="seed of the event plan (1)")
    p.add_argument("--bus", choices=("classic", "v2"), default="classic",
                   help="publish to the stack's bus (classic) or to an EventBridge Custom "
                        "Event Bus with a FIFO subscriber (v2)")
    p.add_argument("--run-dir", default=str(ROOT / ".run" / "demo"),
                   help="files of the run: moto, logs, metrics (.run/demo)")
    opts = p.parse_args(argv)
    if opts.machines < 1 or opts.events < 10:
        p.error("--machines must be at least 1 and --events at least 10")
    return opts


def run(opts, aws, run_dir):
    step("local AWS (moto on 127.0.0.1)")
    aws.start()
    say(f"   {aws.env['AWS_ENDPOINT_URL']} (DynamoDB {aws.env['AWS_ENDPOINT_URL_DYNAMODB']})")

    step("deploy/cloudformation.yaml through CloudFormation (DeployService=false)")
    out = deploy(aws)
    for k in ("TableName", "QueueUrl", "DeadLetterQueueUrl", "EventBusName"):
        say(f"   {k:<19} {out[k]}")
    publish_to = out["EventBusName"]
    if opts.bus == "v2":
        publish_to, downstream_url = add_custom_bus(aws, f"{STACK}-custom")
        say(f"   Custom Event Bus    {publish_to}")
        say(f"   downstream queue    {downstream_url} (FIFO subscriber: source {SOURCE_OUT}, "
            "GameResult|Payout, one group per machine)")
    else:
        downstream_url = add_downstream(aws, out["EventBusName"], f"{STACK}-downstream")
        say(f"   downstream queue    {downstream_url} (rule: source {SOURCE_OUT}, "
            "GameResult|Payout)")

    step("eddy worker (slot machine, relay on)")
    settings = {
        "EDDY_MACHINE": "slotmachine", "EDDY_TABLE": out["TableName"],
        "EDDY_QUEUE_URL": out["QueueUrl"], "EDDY_DLQ_URL": out["DeadLetterQueueUrl"],
        "EDDY_EVENT_BUS": publish_to, "EDDY_METRICS_INTERVAL": "5",
        "EDDY_DRAIN_SECONDS": str(DRAIN_S), "EDDY_HEALTH_FILE": str(run_dir / "health"),
    }
    worker = Worker(opts.eddy, run_dir, aws.env, settings)
    worker.start()
    say(f"   pid {worker.proc.pid}; logs {worker.log_path}, metrics {worker.metrics_path}")
    try:
        return finish(opts, aws, out, downstream_url, worker)
    finally:
        worker.kill()


def finish(opts, aws, out, downstream_url, worker):
    rng = random.Random(opts.seed)
    machines = [f"slot-{i + 1}" for i in range(opts.machines)]
    refusals = max(2, opts.events // 80)
    dups = max(2, min(5, opts.events // 80))
    plan = plan_events(machines, opts.events, rng, refusals, dups)
    poison = "this is not JSON {" + uuid.uuid4().hex
    step(f"sending {len(plan)} events for {len(machines)} machines through EventBridge "
         f"({dups} duplicated, {sum(1 for e in plan if e.get('refused'))} refused pulls, 1 poison)")
    t0 = time.monotonic()
    counts = send_events(aws, out, plan, poison)
    say(f"   sent in {time.monotonic() - t0:.1f} s")

    step("waiting until everything is processed and published")
    downstream = Downstream(aws.client("sqs"), downstream_url)
    records, states, waited = wait_processed(aws, out, machines, len(plan), downstream, worker,
                                             timeout_s=60 + len(plan) // 10)
    say(f"   done {waited:.1f} s after the last event was sent")
    health = subprocess.run([worker.eddy, "healthcheck"], env=worker.env, capture_output=True,
                            check=False)

    problems = []
    step("machines (state items in DynamoDB)")
    tallies = tally(records, machines)
    check_machines(machines, states, tallies, plan, downstream, problems)
    refused = sum(t["pulls_refused"] + t["coins_refused"] for t in tallies.values())
    planned = sum(1 for e in plan if e.get("refused"))
    say(f"   {sum(t['records'] for t in tallies.values())} inbound records for {len(plan)} events "
        f"sent; {refused} refused and recorded with _rejected")
    say(f"   ({planned} pulls were sent without a coin on purpose"
        + ("; the other refusals are events that overtook each other: a standard SQS queue "
           "does not keep order, a FIFO queue does)" if refused > planned else ")"))
    show_eddy_get(worker.eddy, worker.env, machines[0])
    step(f"published downstream (source {SOURCE_OUT})")
    show_downstream(downstream, problems, custom_bus=opts.bus == "v2")
    step("dead-letter queue")
    show_dlq(aws, out, poison, problems)
    say(f"   eddy healthcheck: exit {health.returncode}")
    if health.returncode != 0:
        problems.append(f"eddy healthcheck exited {health.returncode} while the worker ran")

    step("stopping the worker (SIGTERM)")
    rc, took = worker.stop()
    say(f"   exit status {rc} after {took:.1f} s")
    if rc != 0:
        problems.append(f"eddy worker exited {rc} after SIGTERM:\n{worker.log_tail()}")
    step("worker metrics (CloudWatch EMF on stdout)")
    show_metrics(worker, counts, problems)
    return problems


def main(argv=None):
    opts = parse_args(sys.argv[1:] if argv is None else argv)
    run_dir = Path(opts.run_dir).resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    aws = LocalAws(run_dir)
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    status = 1
    try:
        problems = run(opts, aws, run_dir)
        step("result")
        if problems:
            for p in problems:
                say(f"   FAIL {p}")
        else:
            say("   every event applied once, every game published once, poison in the DLQ, "
                "clean exit")
            status = 0
    except (DemoError, ClientError, BotoCoreError) as err:
        say(f"\ndemo: {err}")
    except KeyboardInterrupt:
        say("\ndemo: interrupted")
    finally:
        if opts.keep and aws.started:
            say(f"   moto left running; its environment: source {shlex.quote(str(run_dir / 'env'))}; "
                f"stop it with tools/local-aws stop --dir {shlex.quote(str(run_dir))}")
        else:
            aws.stop()
    return status


if __name__ == "__main__":
    sys.exit(main())
