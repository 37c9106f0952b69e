"""The eddy benchmark: K slot-machine events through the whole pipeline on moto.

Run by tools/bench after it has bootstrapped and built build-bench/ (release).
It measures; it asserts nothing about time. Method:

Phase 1, throughput and cost (the worker, not the producer). K events in the
EventBridge envelope shape are sent straight into the SQS queue first
(SendMessageBatch, 10 a call), then `eddy worker` starts. The clock runs from its
start until the queue is drained (every message deleted, so committed: eddy
deletes nothing before its effect is durable) and then until the outbox is empty
(every outbound event published). Each entity alternates InsertCoin and
PullHandle, entities taken in turn.
  - messages/s = K / (drained - started);
  - worker CPU per message = (utime + stime of the worker process, from
    /proc/<pid>/stat) at "published" / K, so it covers decoding, processing,
    commits, deletes and relaying; also given at "drained". With --workers N,
    N processes share the queue and their CPU is summed;
  - published after the drain: seconds from "drained" to "outbox empty";
  - the idle cost: CPU (the threads' schedstat, in ns) and AWS calls per
    second over --idle-seconds (60), starting --idle-settle (35) seconds after
    the outbox emptied (the relay's sweeps of empty shards slow down to
    EDDY_SWEEP_MAX first);
  - peak RSS = VmHWM from /proc/<pid>/status (with phase 2, of its fresh workers;
    phase 1's, the one with the backlog in hand, is printed beside it);
  - AWS calls per message by operation: the worker talks to moto through a
    counting proxy (this file, `proxy` command, in its own process) that counts
    each request's X-Amz-Target; the bench's own calls bypass it.
The bus has no rule for what eddy publishes in phase 1: moto delivers matched
events to their targets inside PutEvents, some 30 ms an entry, which would be
measured instead of eddy (AWS delivers after accepting). The rule to the
downstream queue comes with phase 2.

Phase 2, end-to-end latency. L more events (fresh entities, same count) go
through EventBridge PutEvents at a steady rate below phase 1's throughput. A rule
on the bus sends what eddy publishes to a downstream queue (with --bus v2, eddy
publishes to a Custom Event Bus instead, its calls counted as
eventsv2.PutEvents, and a FIFO subscriber added for phase 2 feeds a FIFO
downstream queue). For each accepted
PullHandle: latency = SentTimestamp of the first downstream message of the
transaction that recorded it (matched by the inbound record's _eid and the
published event's eddy.seq) - the time the bench called PutEvents. Phase 2 runs
on fresh workers, so their own EMF percentiles (processing, commit to publish,
written at exit) cover phase 2 alone; they are reported per worker and, with
several workers, for the fleet: their latency distributions (EMF histograms)
merged, as CloudWatch merges a service's tasks. With
--no-downstream phase 2 has no downstream rule either: no end-to-end figure,
but commit to publish without moto's delivery inside PutEvents.

Over HTTPS (--tls). The local AWS serves HTTPS (tools/local-aws start --tls) and
the worker talks to an haproxy that terminates TLS in front of the counting
proxy, so it keeps its connections alive as it would on AWS; the counting
proxy, the moto servers and the bench's own calls are as in a plain run. The
haproxy's statistics count the worker's side: new TLS connections, full
handshakes (new sessions) and resumed ones, given per 1,000 messages next to
the CPU per message. With --no-count the worker talks to the local AWS's own
haproxy, whose counts then include the bench's few calls too.

Plain against HTTPS (--compare N): N rounds of each, phase 1 only, interleaved
plain, TLS, TLS, plain, ... (each round a fresh local AWS), then the medians and
the ratio of the worker's CPU per message over HTTPS to over plain HTTP.
Two binaries (--compare N --baseline PATH): the same, with the baseline binary
and --eddy as the two sides (both plain, or both --tls), and the ratio of
--eddy's CPU per message to the baseline's; the backlog is the same each round.

Results are printed and written as JSON to .run/bench/result.json.
"""

import argparse
import http.client
import http.server
import json
import math
import os
import signal
import socket
import socketserver
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import parse_qs, urlparse

ROOT = Path(__file__).resolve().parent.parent
# EDDY_DRAIN_SECONDS of the workers: eddy's default, as the service runs it
DRAIN_S = 25
sys.path.insert(0, str(ROOT / "tools"))

SERVICES = {"AmazonSQS": "sqs", "DynamoDB_20120810": "dynamodb", "AWSEvents": "events",
            "AWSEventsV2": "eventsv2"}
HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "te",
               "upgrade", "content-length"}


# --- the counting proxy (its own process) ---------------------------------------


class Counter:
    def __init__(self):
        self.lock = threading.Lock()
        self.counts = {}
        self.connections = 0

    def connected(self):
        with self.lock:
            self.connections += 1

    def add(self, op):
        with self.lock:
            self.counts[op] = self.counts.get(op, 0) + 1

    def snapshot(self):
        with self.lock:
            return dict(self.counts)


def operation(headers, body, path="/"):
    if path.startswith("/service/"):  # Smithy RPC v2: /service/<S>/operation/<Op>
        parts = path.split("/")
        if len(parts) == 5 and parts[3] == "operation":
            return f"{SERVICES.get(parts[2], parts[2])}.{parts[4]}"
    target = headers.get("X-Amz-Target")
    if target:
        prefix, _, op = target.partition(".")
        return f"{SERVICES.get(prefix, prefix)}.{op}"
    action = parse_qs(body.decode("utf-8", "replace")).get("Action")
    return f"query.{action[0]}" if action else "other"


def make_handler(upstream, counter):
    up = urlparse(upstream)
    local = threading.local()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # The reply goes out as two writes (headers, then body). With Nagle's
        # algorithm the body waited for the client's delayed ACK of the
        # headers: some 45 ms added to every call, which a client making one
        # call at a time (a hot entity's publisher) measured instead of itself.
        disable_nagle_algorithm = True

        def log_message(self, *args):
            pass

        def setup(self):
            super().setup()
            counter.connected()

        def upstream_conn(self, fresh=False):
            if fresh or getattr(local, "conn", None) is None:
                local.conn = http.client.HTTPConnection(up.hostname, up.port, timeout=120)
            return local.conn

        def forward(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            if self.path == "/__eddy_bench_counts":
                data = json.dumps(counter.snapshot()).encode()
                return self.reply(200, [("Content-Type", "application/json")], data)
            if self.path == "/__eddy_bench_connections":
                data = json.dumps(counter.connections).encode()
                return self.reply(200, [("Content-Type", "application/json")], data)
            counter.add(operation(self.headers, body, self.path))
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_HEADERS}
            for attempt in (0, 1):
                conn = self.upstream_conn(fresh=attempt == 1)
                try:
                    conn.request(self.command, self.path, body=body, headers=headers)
                    resp = conn.getresponse()
                    data = resp.read()
                    break
                except (OSError, http.client.HTTPException):
                    conn.close()
                    local.conn = None
                    if attempt == 1:
                        return self.reply(502, [], b"bench proxy: upstream failed")
            out = [(k, v) for k, v in resp.getheaders() if k.lower() not in HOP_HEADERS]
            return self.reply(resp.status, out, data)

        def reply(self, status, headers, data):
            try:
                self.send_response(status)
                for k, v in headers:
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except OSError:
                self.close_connection = True

        do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = forward

    return Handler


class ThreadingServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    request_queue_size = 256  # the worker opens many connections at once

    def handle_error(self, request, client_address):
        # A client that went away: haproxy (--tls) drops idle connections to
        # its servers with a reset, every few seconds.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


def cmd_proxy(opts):
    """Serve one counting proxy per upstream; write their ports to opts.ports_file."""
    counter = Counter()
    servers = []
    for upstream in opts.upstream:
        srv = ThreadingServer(("127.0.0.1", 0), make_handler(upstream, counter))
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        servers.append(srv)
    ports = [s.server_address[1] for s in servers]
    tmp = Path(opts.ports_file + ".tmp")
    tmp.write_text(json.dumps(ports))
    tmp.rename(opts.ports_file)
    signal.sigwait([signal.SIGTERM, signal.SIGINT])
    return 0


class Proxy:
    """The counting proxy as a child process."""

    def __init__(self, run_dir, upstreams):
        self.ports_file = run_dir / "proxy.ports"
        self.ports_file.unlink(missing_ok=True)
        signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGTERM, signal.SIGINT])
        try:
            self.proc = subprocess.Popen(
                [sys.executable, __file__, "proxy", "--ports-file", str(self.ports_file),
                 *sum((["--upstream", u] for u in upstreams), [])],
                stdin=subprocess.DEVNULL, start_new_session=True)
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGTERM, signal.SIGINT])
        deadline = time.monotonic() + 20
        while not self.ports_file.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the counting proxy did not start")
            time.sleep(0.05)
        self.ports = json.loads(self.ports_file.read_text())
        self.urls = [f"http://127.0.0.1:{p}" for p in self.ports]

    def ask(self, path):
        conn = http.client.HTTPConnection("127.0.0.1", self.ports[0], timeout=10)
        try:
            conn.request("GET", path)
            return json.loads(conn.getresponse().read())
        finally:
            conn.close()

    def counts(self):
        return self.ask("/__eddy_bench_counts")

    def connections(self):
        """Connections accepted so far (the bench's own questions included)."""
        return self.ask("/__eddy_bench_connections")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class TlsFront:
    """haproxy terminating TLS in front of the counting proxy (started the way
    tools/local-aws starts its own), with the run's certificate: the worker
    speaks HTTPS with keep-alive as on AWS, and the haproxy's statistics count
    its connections and handshakes."""

    def __init__(self, state_dir, upstream_ports, bundle, ca_file):
        import localaws

        self.dir = state_dir
        state_dir.mkdir(parents=True, exist_ok=True)
        localaws.stop_dir(state_dir)
        self.proc, ports = localaws.start_tls_proxy(
            state_dir, dict(zip(localaws.SERVERS, upstream_ports)), False, bundle)
        self.urls = [f"https://127.0.0.1:{ports[name]}" for name in localaws.SERVERS]
        ctx = ssl.create_default_context(cafile=ca_file)
        deadline = time.monotonic() + 20
        for port in ports.values():  # ready once a handshake succeeds
            while True:
                try:
                    with ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), 1),
                                         server_hostname="127.0.0.1"):
                        break
                except OSError:
                    if self.proc.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError("the TLS front (haproxy) did not start")
                    time.sleep(0.05)

    def stop(self):
        import localaws

        localaws.stop_dir(self.dir)


def tls_counts(stats_dir):
    import localaws

    return localaws.tls_stats(stats_dir) if stats_dir else None


def per_thousand(before, after, k):
    return {key: round((after[key] - before[key]) * 1000 / k, 2) for key in before
            if key not in ("open", "endpoints")}


# --- measuring the worker -------------------------------------------------------


class Fleet:
    """N `eddy worker` processes sharing the queue (--workers), measured together."""

    def __init__(self, eddy, run_dir, aws_env, settings, n, name="worker"):
        import demo

        self.workers = [demo.Worker(eddy, run_dir, aws_env, settings,
                                    name=name if n == 1 else f"{name}{i}") for i in range(n)]
        self.log_path = self.workers[0].log_path

    def start(self):
        for w in self.workers:
            w.start()
        self.started_at = min(w.started_at for w in self.workers)

    def pids(self):
        return [w.proc.pid for w in self.workers]

    def check_alive(self):
        for w in self.workers:
            w.check_alive()

    def stop(self):
        """SIGTERM to every worker at once, then wait for their drains:
        returns (the worst exit status, seconds until the last exited)."""
        t0 = time.monotonic()
        for w in self.workers:
            if w.proc.poll() is None:
                w.proc.send_signal(signal.SIGTERM)
        rcs = []
        for w in self.workers:
            try:
                rcs.append(w.proc.wait(timeout=DRAIN_S + 10))
            except subprocess.TimeoutExpired:
                self.kill()
                raise RuntimeError(f"worker did not exit {DRAIN_S + 10} s after SIGTERM "
                                   f"(log {w.log_path})") from None
        return max(rc or 0 for rc in rcs), time.monotonic() - t0

    def kill(self):
        for w in self.workers:
            w.kill()

    def emf_lines(self):
        return [line for w in self.workers for line in w.emf_lines()]


def sched_ns(pid):
    """CPU time of the process's threads in ns (/proc/<pid>/task/*/schedstat):
    precise enough for an idle window, where /proc's 10 ms ticks are not."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            pass
    return total


def fleet_cpu(fleet):
    """utime, stime summed over the fleet's processes."""
    parts = [cpu_seconds(pid) for pid in fleet.pids()]
    return sum(p[0] for p in parts), sum(p[1] for p in parts)


def cpu_seconds(pid):
    """utime + stime of the process (all its threads), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / ticks, int(fields[12]) / ticks  # utime, stime


def peak_rss_kib(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return None


def percentile(values, q):
    if not values:
        return None
    s = sorted(values)
    return s[min(len(s) - 1, max(0, int(round(q * len(s) + 0.5)) - 1))]


# --- the run -------------------------------------------------------------------


def envelope(detail_type, detail):
    from demo import envelope as demo_envelope

    return json.dumps(demo_envelope(detail_type, detail))


def event_plan(entities, count):
    """(entity, type, detail) in order: entities in turn, each alternating coin/pull."""
    coin = {e: False for e in entities}
    plan = []
    for i in range(count):
        e = entities[i % len(entities)]
        if coin[e]:
            plan.append((e, "PullHandle", {"id": e, "userId": f"user-{i % 7}"}))
        else:
            plan.append((e, "InsertCoin", {"id": e}))
        coin[e] = not coin[e]
    return plan


def preload(sqs, queue, plan):
    for i in range(0, len(plan), 10):
        entries = [{"Id": str(j), "MessageBody": envelope(t, d)}
                   for j, (_e, t, d) in enumerate(plan[i:i + 10])]
        res = sqs.send_message_batch(QueueUrl=queue, Entries=entries)
        if res.get("Failed"):
            raise RuntimeError(f"SendMessageBatch failed: {res['Failed']}")


def outbox_empty(ddb, table, shards):
    for shard in range(shards):
        got = ddb.query(TableName=table, ConsistentRead=True, Limit=1,
                        KeyConditionExpression="#pk = :pk",
                        ExpressionAttributeNames={"#pk": "_pk"},
                        ExpressionAttributeValues={":pk": {"S": f"#outbox/{shard}"}})
        if got.get("Items"):
            return False
    return True


def queue_drained(sqs, url):
    """A predicate for wait_until: the queue holds nothing any more.

    The local AWS counts a queue's messages by scanning all of them, under the
    lock that every SQS and EventBridge call of the workers waits for. Asked
    every 50 ms, the count took a tenth of that process's CPU during a backlog;
    it is asked every 250 ms until under 500 messages remain (about a second of
    work), then every 50 ms, so the drain time stays as exact."""
    import demo

    def drained():
        left = demo.queue_backlog(sqs, url)
        if left > 500:
            time.sleep(0.2)
        return left == 0

    return drained


def wait_until(pred, timeout_s, worker, what, interval_s=0.05):
    deadline = time.monotonic() + timeout_s
    while not pred():
        worker.check_alive()
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: not reached in {timeout_s:.0f} s "
                               f"(worker log {worker.log_path})")
        time.sleep(interval_s)
    return time.monotonic()


def phase_throughput(opts, aws, out, worker, proxy, result, stats_dir):
    import demo

    sqs, ddb = aws.client("sqs"), aws.client("dynamodb")
    entities = [f"b-{i:04d}" for i in range(opts.entities)]
    plan = event_plan(entities, opts.events)
    t0 = time.monotonic()
    preload(sqs, out["QueueUrl"], plan)
    demo.say(f"   preloaded {len(plan)} messages in {time.monotonic() - t0:.1f} s")
    tls_before = tls_counts(stats_dir)
    conns_before = proxy.connections() if proxy else None
    worker.start()
    started = worker.started_at
    timeout = 300 + opts.events / 5
    drained = wait_until(queue_drained(sqs, out["QueueUrl"]), timeout,
                         worker, "queue drained")
    cpu_drained = fleet_cpu(worker)
    calls_drained = proxy.counts() if proxy else {}
    published = wait_until(lambda: outbox_empty(ddb, out["TableName"], 8), timeout, worker,
                           "outbox empty", interval_s=0.1)
    cpu_published = fleet_cpu(worker)
    calls = proxy.counts() if proxy else {}
    tls_after = tls_counts(stats_dir)
    conns_after = proxy.connections() if proxy else None
    # The worker's fixed cost per second (long polls, lease renewals, relay
    # sweeps, timers) is paid whatever the load; against a slow moto it swamps
    # the per-message cost. Measure it over an idle window, once the sweeps of
    # the empty shards have slowed down to EDDY_SWEEP_MAX (the settle time;
    # not in --compare rounds), and report the cost net of it as well.
    if not opts.compare:
        time.sleep(opts.idle_settle)
    ns_settled = sum(sched_ns(pid) for pid in worker.pids())
    calls_settled = proxy.counts() if proxy else {}
    idle_s = 5.0 if opts.compare else float(opts.idle_seconds)
    time.sleep(idle_s)
    cpu_idle = (sum(sched_ns(pid) for pid in worker.pids()) - ns_settled) / 1e9
    calls_idle = proxy.counts() if proxy else {}
    idle_calls = {op: n - calls_settled.get(op, 0) for op, n in calls_idle.items()}
    run_s = published - started
    k = opts.events
    net_cpu = sum(cpu_published) - cpu_idle / idle_s * run_s
    net_calls = {op: n - idle_calls.get(op, 0) / idle_s * run_s for op, n in calls.items()}
    result["throughput"] = {
        "workers": opts.workers,
        "idle_window_s": [opts.idle_settle, idle_s],
        "idle_cpu_us_per_s": round(cpu_idle * 1e6 / idle_s, 1),
        "idle_aws_calls_per_s": {op: round(n / idle_s, 3) for op, n in sorted(idle_calls.items())},
        "seconds_from_drained_to_published": round(published - drained, 3),
        "cpu_us_per_message_net_of_idle": round(net_cpu * 1e6 / k, 1),
        "aws_calls_per_message_net_of_idle": {
            op: round(max(n, 0) / k, 4) for op, n in sorted(net_calls.items())},
        "messages": k,
        "seconds_to_drained": round(drained - started, 3),
        "seconds_to_published": round(published - started, 3),
        "messages_per_s": round(k / (drained - started), 1),
        "cpu_us_per_message": round(sum(cpu_published) * 1e6 / k, 1),
        "cpu_us_per_message_user_sys": [round(c * 1e6 / k, 1) for c in cpu_published],
        "cpu_us_per_message_at_drained": round(sum(cpu_drained) * 1e6 / k, 1),
        "aws_calls_per_message": {op: round(n / k, 4) for op, n in sorted(calls.items())},
        "aws_calls_per_message_total": round(sum(calls.values()) / k, 4) if calls else None,
        "aws_calls_at_drained": calls_drained,
        "aws_calls": calls,
    }
    if tls_before is not None:
        # counted by the haproxy the worker talks to, from the worker's start
        # until all was published
        result["throughput"]["tls_per_1000_messages"] = per_thousand(tls_before, tls_after, k)
        result["throughput"]["tls_connections_open_when_published"] = tls_after["open"]
        result["throughput"]["tls_by_endpoint_when_published"] = tls_after["endpoints"]
        result["throughput"]["tls_counted_by"] = (
            "the TLS front in front of the counting proxy" if proxy else
            "the local AWS's TLS proxy (the bench's own calls included)")
    elif conns_before is not None:
        # the worker's connections to the counting proxy (the bench's two
        # questions to it included)
        result["throughput"]["connections_per_1000_messages"] = round(
            max(conns_after - conns_before - 2, 0) * 1000 / k, 2)
    return calls


def phase_latency(opts, aws, out, downstream_url, rate, result):
    import demo

    sqs, events = aws.client("sqs"), aws.client("events")
    if downstream_url:
        sqs.purge_queue(QueueUrl=downstream_url)
    count = opts.latency_events
    # at least four events a machine, so each gets coins and pulls to measure
    entities = [f"lat-{i:04d}" for i in range(max(1, min(opts.entities, count // 4)))]
    plan = event_plan(entities, count)
    sent_at = {}  # event id -> unix time of the PutEvents call
    interval = 10.0 / rate
    next_t = time.monotonic()
    for i in range(0, len(plan), 10):
        entries = [{"Source": demo.SOURCE_IN, "DetailType": t, "Detail": json.dumps(d),
                    "EventBusName": out["EventBusName"]} for _e, t, d in plan[i:i + 10]]
        now = time.time()
        res = events.put_events(Entries=entries)
        for entry in res["Entries"]:
            if "EventId" in entry:
                sent_at[entry["EventId"]] = now
        next_t += interval
        time.sleep(max(0.0, next_t - time.monotonic()))
    return entities, sent_at


def collect_latency(aws, out, downstream_url, entities, sent_at, result):
    import demo

    sqs, ddb = aws.client("sqs"), aws.client("dynamodb")
    first = {}  # (entity, seq) -> earliest SentTimestamp (ms)
    while True:
        got = sqs.receive_message(QueueUrl=downstream_url, MaxNumberOfMessages=10,
                                  WaitTimeSeconds=1, AttributeNames=["SentTimestamp"]
                                  ).get("Messages", [])
        if not got:
            break
        for m in got:
            meta = demo.eddy_meta(json.loads(m["Body"]))
            key = (meta.get("entity"), int(meta.get("seq", -1)))
            ts = int(m["Attributes"]["SentTimestamp"])
            first[key] = min(ts, first.get(key, ts))
        sqs.delete_message_batch(QueueUrl=downstream_url, Entries=[
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)])
    lat = []
    for e in entities:
        for r in demo.inbound_records(ddb, out["TableName"], e):
            if r.get("_typ") != "PullHandle" or r.get("_rejected"):
                continue
            ts = first.get((e, int(r["_seq"])))
            t0 = sent_at.get(r.get("_eid"))
            if ts is not None and t0 is not None:
                lat.append(ts - t0 * 1000.0)
    result["latency"] = {
        "events": len(sent_at),
        "samples": len(lat),
        "end_to_end_ms_p50": round(percentile(lat, 0.50), 1) if lat else None,
        "end_to_end_ms_p99": round(percentile(lat, 0.99), 1) if lat else None,
        "end_to_end_ms_max": round(max(lat), 1) if lat else None,
    }


def distribution_percentile(bins, q):
    """The q-th percentile of merged EMF distributions ({value: count}): the
    first value whose running count reaches ceil(q * total), as CloudWatch
    reads a percentile statistic over a fleet's tasks."""
    total = sum(bins.values())
    rank, seen = max(1, math.ceil(q * total)), 0
    for value in sorted(bins):
        seen += bins[value]
        if seen >= rank:
            return value
    return None


def worker_metrics(fleet, result, phase):
    """Counters summed over the fleet; each worker's percentiles over its life
    (one EMF line at exit: the interval is an hour); and the fleet's, from
    the latency distributions of every worker's lines merged."""
    totals, per_worker, merged = {}, [], {}
    for w in fleet.workers:
        lines = w.emf_lines()
        for line in lines:
            for d in line["_aws"]["CloudWatchMetrics"]:
                for m in d["Metrics"]:
                    name, value = m["Name"], line.get(m["Name"])
                    if isinstance(value, dict):  # a distribution: Values and Counts
                        bins = merged.setdefault(name, {})
                        for v, c in zip(value["Values"], value["Counts"]):
                            bins[v] = bins.get(v, 0) + c
                    elif not name.endswith(("_p50", "_p99")) and value is not None:
                        totals[name] = totals.get(name, 0) + value
        last = lines[-1] if lines else {}
        per_worker.append({k: v for k, v in last.items() if k.endswith(("_p50", "_p99"))})
    fleet_pct = {f"{name}_{p}": distribution_percentile(bins, q)
                 for name, bins in sorted(merged.items())
                 for p, q in (("p50", 0.50), ("p99", 0.99))}
    result.setdefault("worker_metrics", {})[phase] = {
        "totals": totals, "percentiles_ms_per_worker": per_worker,
        "percentiles_ms_fleet": fleet_pct}


def run(opts, run_dir, result, tls, eddy=None):
    import demo
    import localaws

    aws = demo.LocalAws(run_dir, tls=tls)
    proxy = worker = front = None
    result["tls"] = tls
    try:
        demo.step(f"local AWS (moto{', HTTPS' if tls else ''}) and the template's data resources")
        aws.start()
        out = demo.deploy(aws, stack="eddy-bench")
        publish_to = out["EventBusName"]
        if opts.bus == "v2":  # a Custom Event Bus; its subscriber comes with phase 2
            publish_to = aws.client("eventbridgev2").create_event_bus(
                Name="eddy-bench-custom")["EventBusArn"]
        worker_env = dict(aws.env)
        stats_dir = run_dir if tls else None  # whose TLS statistics count the worker
        if not opts.no_count:
            if tls:  # the proxy talks plain HTTP to moto, behind the TLS front
                plain = localaws.plain_endpoints(run_dir)
                upstreams = [plain["main"], plain["dynamodb"]]
            else:
                upstreams = [aws.env["AWS_ENDPOINT_URL"], aws.env["AWS_ENDPOINT_URL_DYNAMODB"]]
            proxy = Proxy(run_dir, upstreams)
            urls = proxy.urls
            if tls:
                front = TlsFront(run_dir / "tls-front", proxy.ports,
                                 run_dir / "server-bundle.pem", aws.env["AWS_CA_BUNDLE"])
                urls = front.urls
                stats_dir = front.dir
            worker_env["AWS_ENDPOINT_URL"], worker_env["AWS_ENDPOINT_URL_DYNAMODB"] = urls
        settings = {
            "EDDY_MACHINE": "slotmachine", "EDDY_TABLE": out["TableName"],
            "EDDY_QUEUE_URL": out["QueueUrl"], "EDDY_DLQ_URL": out["DeadLetterQueueUrl"],
            "EDDY_EVENT_BUS": publish_to, "EDDY_METRICS_INTERVAL": "3600",
            # the default drain (25 s): a long poll out at a stop has time to
            # return, and what it brought is released (README, "Shutdown")
            "EDDY_LOG_LEVEL": "warn", "EDDY_DRAIN_SECONDS": str(DRAIN_S),
            # A message whose receive reply is lost (a dropped connection) comes
            # back after the visibility timeout; a short one keeps such a loss
            # from holding the clock up.
            "EDDY_VISIBILITY_TIMEOUT": "10",
            # as the image runs it (deploy/Dockerfile): GnuTLS, loaded by
            # libcurl but unused, not initialised
            "GNUTLS_NO_IMPLICIT_INIT": "1",
        }
        if opts.coalesce is not None:
            settings["EDDY_COALESCE_MAX"] = str(opts.coalesce)
        if opts.no_cache:
            settings["EDDY_CACHE_ENTITIES"] = "0"
        if opts.max_inflight is not None:
            settings["EDDY_MAX_INFLIGHT"] = str(opts.max_inflight)
        eddy = eddy or opts.eddy
        result["eddy"] = str(eddy)
        worker = Fleet(eddy, run_dir, worker_env, settings, opts.workers)
        result["settings"] = settings

        demo.step(f"phase 1: {opts.events} messages preloaded into SQS, then the worker")
        phase_throughput(opts, aws, out, worker, proxy, result, stats_dir)
        show_throughput(result["throughput"])
        rss_after_1 = max(peak_rss_kib(pid) for pid in worker.pids())

        if opts.latency_events:
            # fresh workers, so that their metrics (commit to publish) cover
            # phase 2 alone
            worker.stop()
            worker_metrics(worker, result, "phase_1")
            worker = Fleet(eddy, run_dir, worker_env, settings, opts.workers,
                           name="worker-phase2")
            worker.start()
            if opts.no_downstream:
                downstream_url = None
            elif opts.bus == "v2":
                downstream_url = demo.add_custom_subscriber(aws, publish_to,
                                                            "eddy-bench-downstream")
            else:
                downstream_url = demo.add_downstream(aws, out["EventBusName"],
                                                     "eddy-bench-downstream")
            rate = opts.latency_rate or max(
                20.0, min(500.0, result["throughput"]["messages_per_s"] * 0.5))
            demo.step(f"phase 2: {opts.latency_events} events through PutEvents at {rate:.0f}/s")
            entities, sent_at = phase_latency(opts, aws, out, downstream_url, rate, result)
            sqs, ddb = aws.client("sqs"), aws.client("dynamodb")
            timeout = 300 + opts.latency_events / 5
            wait_until(queue_drained(sqs, out["QueueUrl"]), timeout, worker,
                       "phase 2 drained")
            wait_until(lambda: outbox_empty(ddb, out["TableName"], 8), timeout, worker,
                       "phase 2 published", interval_s=0.2)
            if downstream_url:
                collect_latency(aws, out, downstream_url, entities, sent_at, result)
                result["latency"]["rate_per_s"] = rate
                show_latency(result["latency"])

        result["peak_rss_kib"] = max(peak_rss_kib(pid) for pid in worker.pids())
        result["peak_rss_kib_after_phase_1"] = rss_after_1
        rc, took = worker.stop()
        result["worker_exit"] = {"status": rc, "drain_seconds": round(took, 2)}
        worker_metrics(worker, result, "phase_2" if opts.latency_events else "phase_1")
    finally:
        if worker:
            worker.kill()
        if front:
            front.stop()
        if proxy:
            proxy.stop()
        aws.stop()


def show_throughput(t):
    import demo

    demo.say(f"   messages/s                 {t['messages_per_s']}  "
             f"(drained in {t['seconds_to_drained']} s, all published at {t['seconds_to_published']} s, "
             f"{t['seconds_from_drained_to_published']} s after the drain; {t['workers']} worker(s))")
    demo.say(f"   worker CPU per message     {t['cpu_us_per_message']} us "
             f"(user {t['cpu_us_per_message_user_sys'][0]}, sys {t['cpu_us_per_message_user_sys'][1]}; "
             f"{t['cpu_us_per_message_at_drained']} us when drained)")
    demo.say(f"   worker idle cost           {t['idle_cpu_us_per_s']} us CPU/s, "
             f"{sum(t['idle_aws_calls_per_s'].values()):.2f} AWS calls/s (polls, leases, relay; "
             f"{t['idle_window_s'][1]} s, {t['idle_window_s'][0]} s after the outbox emptied)")
    for op, n in t["idle_aws_calls_per_s"].items():
        demo.say(f"     {op:<38} {n:>8}/s")
    demo.say(f"   net of the idle cost       {t['cpu_us_per_message_net_of_idle']} us CPU per message, "
             f"{sum(t['aws_calls_per_message_net_of_idle'].values()):.3f} AWS calls per message")
    for op, n in t["aws_calls_per_message_net_of_idle"].items():
        demo.say(f"     {op:<38} {n:>8}")
    if "tls_per_1000_messages" in t:
        c = t["tls_per_1000_messages"]
        demo.say(f"   TLS per 1,000 messages     {c['connections']} new connections, "
                 f"{c['full_handshakes']} full and {c['resumed_handshakes']} resumed handshakes, "
                 f"{c['failed_handshakes']} failed (counted by {t['tls_counted_by']}); "
                 f"{t['tls_connections_open_when_published']} open at the end")
    elif "connections_per_1000_messages" in t:
        demo.say(f"   new connections            {t['connections_per_1000_messages']} "
                 f"per 1,000 messages (counted by the counting proxy)")
    if t["aws_calls"]:
        demo.say(f"   AWS calls per message      {t['aws_calls_per_message_total']}")
        for op, n in t["aws_calls_per_message"].items():
            demo.say(f"     {op:<38} {n:>8}  ({t['aws_calls'][op]} calls)")


def show_latency(lat):
    import demo

    demo.say(f"   end to end (PutEvents -> published downstream), {lat['samples']} pulls: "
             f"p50 {lat['end_to_end_ms_p50']} ms, p99 {lat['end_to_end_ms_p99']} ms, "
             f"max {lat['end_to_end_ms_max']} ms")


def median(values):
    s = sorted(values)
    n = len(s)
    return (s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2) if s else None


def rounded(v):
    """A median (the mean of two rounds' figures) as a figure is printed."""
    return round(v, 4) if isinstance(v, float) else v


def compare_sides(opts):
    """The two sides of --compare: plain HTTP against HTTPS with one binary, or
    (--baseline) the baseline binary against --eddy, both plain or both --tls."""
    if opts.baseline:
        return [{"name": "baseline", "eddy": opts.baseline, "tls": opts.tls},
                {"name": "eddy", "eddy": opts.eddy, "tls": opts.tls}]
    return [{"name": "plain", "eddy": opts.eddy, "tls": False},
            {"name": "tls", "eddy": opts.eddy, "tls": True}]


ROUND_KEYS = ("cpu_us_per_message", "cpu_us_per_message_net_of_idle", "messages_per_s",
              "aws_calls_per_message", "peak_rss_kib")


def compare(opts, run_dir, result):
    """Rounds of the two sides, interleaved ABBA (A, B, B, A, ...) so a drift in
    the machine's load falls on both alike; then the medians and the ratio B/A."""
    import demo

    sides = compare_sides(opts)
    rounds = []
    for i in range(opts.compare):
        for side in (sides if i % 2 == 0 else sides[::-1]):
            one = {}
            load = os.getloadavg()[0]
            run(opts, run_dir, one, side["tls"], side["eddy"])
            t = one["throughput"]
            rounds.append({
                "side": side["name"], "eddy": side["eddy"], "tls": side["tls"],
                "loadavg_1m_at_start": round(load, 2),
                "cpu_us_per_message": t["cpu_us_per_message"],
                "cpu_us_per_message_net_of_idle": t["cpu_us_per_message_net_of_idle"],
                "messages_per_s": t["messages_per_s"],
                "aws_calls_per_message": t["aws_calls_per_message_total"],
                "peak_rss_kib": peak_rss_or_none(one),
                "tls_per_1000_messages": t.get("tls_per_1000_messages"),
                "connections_per_1000_messages": t.get("connections_per_1000_messages"),
                # eddy's own count (metric "connections"), whole run
                "worker_connections": sum(wm["totals"].get("connections", 0)
                                          for wm in one.get("worker_metrics", {}).values()),
                "seconds_from_drained_to_published": t["seconds_from_drained_to_published"],
                # the fleet's: every worker's distribution merged
                "commit_to_publish_ms_p50": max(
                    (wm["percentiles_ms_fleet"].get("commit_to_publish_latency_p50") or 0
                     for wm in one.get("worker_metrics", {}).values()), default=None),
            })
    a, b = (s["name"] for s in sides)
    summary = {}
    for side in sides:
        mine = [r for r in rounds if r["side"] == side["name"]]
        summary[side["name"]] = {key: rounded(median([r[key] for r in mine if r[key] is not None]))
                                 for key in ROUND_KEYS}
        summary[side["name"]]["eddy"] = side["eddy"]
        tls_rounds = [r["tls_per_1000_messages"] for r in mine if r["tls_per_1000_messages"]]
        summary[side["name"]]["tls_per_1000_messages"] = {
            key: median([c[key] for c in tls_rounds]) for key in tls_rounds[0]
        } if tls_rounds else None
    summary["sides"] = [a, b]
    summary[f"cpu_ratio_{b}_to_{a}"] = round(
        summary[b]["cpu_us_per_message"] / summary[a]["cpu_us_per_message"], 3)
    summary["cpu_ratio_net_of_idle"] = round(
        summary[b]["cpu_us_per_message_net_of_idle"]
        / summary[a]["cpu_us_per_message_net_of_idle"], 3)
    result["rounds"] = rounds
    result["summary"] = summary
    Path(opts.out).parent.mkdir(parents=True, exist_ok=True)
    Path(opts.out).write_text(json.dumps(result, indent=2) + "\n")
    demo.step(f"{a} against {b}, {opts.compare} rounds each, interleaved")
    for side in sides:
        demo.say(f"   {side['name']:<8} {side['eddy']}{' over HTTPS' if side['tls'] else ''}")
    demo.say("   round  side      CPU us/msg  net of idle  msgs/s  calls/msg  RSS KiB  load  "
             "published s after drain  commit->publish p50 ms  "
             "TLS per 1,000 (connections, full, resumed)")
    for i, r in enumerate(rounds):
        c = r["tls_per_1000_messages"]
        tls_text = (f"{c['connections']}, {c['full_handshakes']}, {c['resumed_handshakes']}"
                    if c else "-")
        demo.say(f"   {i + 1:>5}  {r['side']:<8}  {r['cpu_us_per_message']:>10}"
                 f"  {r['cpu_us_per_message_net_of_idle']:>11}  {r['messages_per_s']:>6}"
                 f"  {r['aws_calls_per_message'] or '-':>9}  {r['peak_rss_kib']:>7}"
                 f"  {r['loadavg_1m_at_start']:>4}"
                 f"  {r['seconds_from_drained_to_published']:>23}"
                 f"  {r['commit_to_publish_ms_p50']:>22}  {tls_text}")
    demo.say(f"   medians: {a} {summary[a]['cpu_us_per_message']} us, "
             f"{b} {summary[b]['cpu_us_per_message']} us per message: "
             f"ratio {b}/{a} {summary[f'cpu_ratio_{b}_to_{a}']} "
             f"({summary['cpu_ratio_net_of_idle']} net of idle); calls per message "
             f"{summary[a]['aws_calls_per_message']} and {summary[b]['aws_calls_per_message']}; "
             f"peak RSS {summary[a]['peak_rss_kib']} and {summary[b]['peak_rss_kib']} KiB")
    demo.say(f"   written to {opts.out}")
    return 0


def peak_rss_or_none(one):
    return one.get("peak_rss_kib") or one.get("peak_rss_kib_after_phase_1")


def parse_args(argv):
    if argv and argv[0] == "proxy":
        p = argparse.ArgumentParser(prog="tools/bench.py proxy")
        p.add_argument("cmd")
        p.add_argument("--upstream", action="append", required=True)
        p.add_argument("--ports-file", required=True)
        return p.parse_args(argv)
    p = argparse.ArgumentParser(prog="tools/bench", description=__doc__.split("\n")[0])
    p.add_argument("--eddy", default=str(ROOT / "build-bench" / "eddy"))
    p.add_argument("--events", type=int, default=10000, help="K, messages of phase 1 (10000)")
    p.add_argument("--entities", type=int, default=100, help="machines, spread (100)")
    p.add_argument("--hot", type=int, metavar="N", help="N hot machines (same as --entities N)")
    p.add_argument("--coalesce", type=int, help="EDDY_COALESCE_MAX (default: eddy's)")
    p.add_argument("--no-cache", action="store_true", help="EDDY_CACHE_ENTITIES=0")
    p.add_argument("--max-inflight", type=int,
                   help="EDDY_MAX_INFLIGHT (default: eddy's); peak RSS with many messages in hand")
    p.add_argument("--latency-events", type=int, help="events of phase 2 (default K/5, "
                   "at most 2000; 0 skips it)")
    p.add_argument("--latency-rate", type=float,
                   help="events/s of phase 2 (default: half of phase 1's rate, 20..500)")
    p.add_argument("--no-downstream", action="store_true",
                   help="phase 2 without the rule to the downstream queue: no end-to-end "
                   "latency, but PutEvents as cheap as in phase 1 (the workers' commit to "
                   "publish percentiles without moto's delivery in them)")
    p.add_argument("--workers", type=int, default=1,
                   help="worker processes sharing the queue (1); CPU is their sum")
    p.add_argument("--idle-settle", type=float, default=35.0,
                   help="seconds between the outbox emptying and the idle window (35)")
    p.add_argument("--idle-seconds", type=float, default=60.0,
                   help="length of the idle window (60)")
    p.add_argument("--no-count", action="store_true",
                   help="no counting proxy: the worker talks to moto directly")
    p.add_argument("--tls", action="store_true",
                   help="HTTPS with keep-alive (local AWS --tls); reports TLS connections "
                   "and handshakes per 1,000 messages")
    p.add_argument("--compare", type=int, metavar="N",
                   help="N rounds each of plain HTTP and HTTPS (or, with --baseline, of two "
                   "binaries), interleaved, phase 1 only; reports the ratio of CPU per message")
    p.add_argument("--baseline", metavar="PATH",
                   help="with --compare: the eddy binary to compare --eddy against (e.g. the "
                   "main branch's); both run plain HTTP, or both --tls")
    p.add_argument("--bus", choices=("classic", "v2"), default="classic",
                   help="publish to the stack's bus (classic) or to an EventBridge Custom Event "
                   "Bus with a FIFO subscriber (v2)")
    p.add_argument("--out", default=str(ROOT / ".run" / "bench" / "result.json"))
    opts = p.parse_args(argv)
    opts.cmd = "bench"
    if opts.hot:
        opts.entities = opts.hot
    if opts.baseline and opts.compare is None:
        p.error("--baseline goes with --compare N")
    if opts.compare is not None:
        if opts.compare < 1 or (opts.tls and not opts.baseline):
            p.error("--compare wants N >= 1, and without --baseline runs both plain and "
                    "--tls rounds itself")
        if opts.baseline:
            opts.baseline = str(Path(opts.baseline).resolve())
            if not os.access(opts.baseline, os.X_OK):
                p.error(f"--baseline {opts.baseline}: not an executable")
        opts.latency_events = 0
    if opts.latency_events is None:
        opts.latency_events = min(2000, max(100, opts.events // 5))
    opts.latency_events -= opts.latency_events % 10
    if opts.events < 10 or opts.entities < 1 or opts.workers < 1:
        p.error("--events must be at least 10, --entities and --workers at least 1")
    if opts.idle_seconds < 1 or opts.idle_settle < 0:
        p.error("--idle-seconds must be at least 1 (the idle cost is per second of it), "
                "--idle-settle at least 0")
    return opts


def main(argv=None):
    opts = parse_args(sys.argv[1:] if argv is None else argv)
    if opts.cmd == "proxy":
        return cmd_proxy(opts)
    import demo

    run_dir = ROOT / ".run" / "bench"
    run_dir.mkdir(parents=True, exist_ok=True)
    result = {
        "tool": "tools/bench",
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "events": opts.events, "entities": opts.entities,
        "layout": "hot" if opts.hot else "spread",
        "coalesce_max": opts.coalesce, "cache": not opts.no_cache, "workers": opts.workers,
        "max_inflight": opts.max_inflight,
        "counting_proxy": not opts.no_count, "bus": opts.bus,
        "cpus": os.cpu_count(),
        "loadavg_at_start": os.getloadavg(),
        "method": __doc__.split("\n\n", 1)[1].strip(),
    }
    try:
        if opts.compare:
            return compare(opts, run_dir, result)
        run(opts, run_dir, result, opts.tls)
    except (RuntimeError, demo.DemoError) as err:
        demo.say(f"bench: {err}")
        return 1
    except KeyboardInterrupt:
        demo.say("bench: interrupted")
        return 1
    Path(opts.out).parent.mkdir(parents=True, exist_ok=True)
    Path(opts.out).write_text(json.dumps(result, indent=2) + "\n")
    demo.step("result")
    # With phase 2 the figure is that of its fresh workers; the backlog (and
    # --max-inflight's messages in hand) was phase 1's.
    phase_1 = (f" (phase 2's fresh workers; phase 1's, with the backlog in hand: "
               f"{result['peak_rss_kib_after_phase_1']} KiB)" if opts.latency_events else "")
    demo.say(f"   peak RSS {result['peak_rss_kib']} KiB{phase_1}; worker exit "
             f"{result['worker_exit']['status']} after {result['worker_exit']['drain_seconds']} s")
    for phase, wm in result["worker_metrics"].items():
        demo.say(f"   {phase}: workers' own metrics: {json.dumps(wm['totals'])}")
        for i, pw in enumerate(wm["percentiles_ms_per_worker"]):
            demo.say(f"   {phase}: worker {i} percentiles (its whole life, ms): {json.dumps(pw)}")
        if len(wm["percentiles_ms_per_worker"]) > 1:
            demo.say(f"   {phase}: the fleet's percentiles (every worker's distributions merged, "
                     f"ms): {json.dumps(wm['percentiles_ms_fleet'])}")
    demo.say(f"   written to {opts.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
