#!/usr/bin/env python3
"""A fault-injecting HTTP proxy for eddy's tests: sits in front of the local AWS
(moto), forwards every request, and breaks chosen ones on purpose.

Point a client's endpoint (AWS_ENDPOINT_URL_EVENTBRIDGE, ..._SQS, ...) at the
proxy; it forwards to --upstream and applies rules per operation (the part of
X-Amz-Target after the dot: PutEvents, ReceiveMessage, Query, ...; "*" for all).

Rules are JSON objects; any of them may carry a "name", the label its faults
get in the journal and in counts() (default: the action).
  {"op": "PutEvents", "action": "fail_entries",
   "match": {"field": "Detail", "regex": "\\"seq\\":3\\b"},
   "each": 2, "times": 0, "code": "InternalFailure", "message": "..."}
      PutEvents entries whose field matches the regex come back with ErrorCode
      and ErrorMessage (FailedEntryCount counts them) and are NOT forwarded, so
      they are not delivered. "each": every distinct entry (by Detail) fails its
      first N tries (0: always); "times": at most N failures in all (0: no cap).
  {"op": "*", "action": "status", "status": 500, "code": "InternalException",
   "rate": 0.3, "times": 0}
      answer with that HTTP status and an AWS JSON error body (plus the
      x-amzn-query-error header SQS sends), without forwarding; "rate" is the
      share of matching calls (default 1), "times" caps how many (0: no cap).
      status 400 with code ThrottlingException is throttling.
  {"op": "...", "action": "drop", "rate": 0.1, "after": false}
      close the connection unanswered: before forwarding (the call never
      happened) or, with "after", once upstream has answered (it happened, the
      reply is lost)
  {"op": "...", "action": "delay", "ms": 200}    forward after a delay
A call-level rule (status, drop, delay) with "match": {"body": regex} applies
only to calls whose request body matches.
A call gets at most one of status/drop/delay: one random draw per call, each
rule taking a slice of it as wide as its rate, so the rates of rules on the
same op add up. random_faults(share) is the mix the worker tests use.

Control (same port, paths under /_proxy/):
  GET  /_proxy/journal   every call: op, what happened, "t" (time.monotonic() when
                         it was answered), PutEvents entries with
                         {"detail", "detail_type", "trace_header", "failed"} in
                         order
  POST /_proxy/rules     body: a JSON list of rules, replacing the current ones
  POST /_proxy/reset     clear rules and journal

Command line:
  faultproxy.py --upstream URL [--port N] [--port-file F] [--rule JSON]... [--seed N]
prints "faultproxy listening on http://127.0.0.1:PORT" once ready. From Python:
  proxy = FaultProxy(upstream, rules, seed).start(); proxy.url; proxy.journal();
  proxy.counts(); proxy.set_rules(rules); proxy.refuse(); proxy.accept(); proxy.stop().
proxy.refuse() closes the listening socket and every open connection, so calls
fail with "connection refused" (the service is down); proxy.accept() listens on
the same port again.

Loopback only; SigV4 is not re-signed, so rewriting a PutEvents body works with
an upstream that does not verify signatures (the plain local AWS).
"""

import argparse
import collections
import http.client
import json
import random
import re
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse

HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
              "trailers", "transfer-encoding", "upgrade", "content-length"}


class Rule:
    def __init__(self, spec):
        self.spec = dict(spec)
        self.op = spec.get("op", "*")
        self.action = spec["action"]
        self.name = spec.get("name", self.action)
        if self.action not in ("fail_entries", "status", "drop", "delay"):
            raise ValueError(f"unknown action {self.action!r}")
        match = spec.get("match") or {}
        self.field = match.get("field", "Detail")
        self.regex = re.compile(match["regex"]) if "regex" in match else None
        self.body = re.compile(match["body"]) if "body" in match else None
        self.each = int(spec.get("each", 0))
        self.times = int(spec.get("times", 0))
        self.rate = float(spec.get("rate", 1.0))
        self.hits = 0
        self.per_entry = {}

    def applies(self, op):
        return self.op in ("*", op)

    def spent(self):
        return self.times and self.hits >= self.times

    def fails_entry(self, entry):
        if self.spent():
            return False
        value = str(entry.get(self.field, ""))
        if self.regex and not self.regex.search(value):
            return False
        key = entry.get("Detail", "")
        seen = self.per_entry.get(key, 0)
        if self.each and seen >= self.each:
            return False
        self.per_entry[key] = seen + 1
        self.hits += 1
        return True


class State:
    def __init__(self, upstream, rules, seed):
        self.upstream = urlparse(upstream)
        self.lock = threading.Lock()
        self.rng = random.Random(seed)
        self.rules = [Rule(r) for r in rules]
        self.journal = []
        self.conns = set()  # open client connections, closed by refuse()

    def set_rules(self, rules):
        with self.lock:
            self.rules = [Rule(r) for r in rules]

    def reset(self):
        with self.lock:
            self.rules = []
            self.journal = []

    def call_action(self, op, body):
        """The call-level rule this call gets, if any. One draw per call keeps a
        seeded run's choices the same however many rules there are."""
        with self.lock:
            draw, edge = self.rng.random(), 0.0
            for rule in self.rules:
                if rule.action == "fail_entries" or not rule.applies(op) or rule.spent():
                    continue
                if rule.body and not rule.body.search(body.decode(errors="replace")):
                    continue
                edge += rule.rate
                if draw < edge:
                    rule.hits += 1
                    return rule
        return None

    def split_entries(self, entries):
        """Which PutEvents entries to fail (a list of rules or None per entry)."""
        with self.lock:
            out = []
            for entry in entries:
                chosen = None
                for rule in self.rules:
                    if rule.action == "fail_entries" and rule.applies("PutEvents") \
                            and rule.fails_entry(entry):
                        chosen = rule
                        break
                out.append(chosen)
            return out

    def record(self, item):
        item["t"] = time.monotonic()
        with self.lock:
            self.journal.append(item)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "faultproxy"

    def log_message(self, fmt, *args):  # quiet: tests read the journal instead
        pass

    def state(self):
        return self.server.state

    def upstream(self):
        conn = getattr(self, "_upstream", None)
        if conn is None:
            up = self.state().upstream
            conn = http.client.HTTPConnection(up.hostname, up.port or 80, timeout=60)
            self._upstream = conn
        return conn

    def send(self, status, body, headers=()):
        self.send_response(status)
        for name, value in headers:
            if name.lower() not in HOP_BY_HOP:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def send_json(self, status, obj):
        self.send(status, json.dumps(obj).encode(), [("Content-Type", "application/json")])

    def forward(self, body):
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        headers["Content-Length"] = str(len(body))
        for attempt in (1, 2):
            conn = self.upstream()
            try:
                conn.request(self.command, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                return resp.status, resp.getheaders(), resp.read()
            except (http.client.HTTPException, OSError):
                conn.close()
                self._upstream = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def control(self):
        st = self.state()
        if self.command == "GET" and self.path == "/_proxy/journal":
            with st.lock:
                self.send_json(200, {"calls": list(st.journal)})
        elif self.command == "POST" and self.path == "/_proxy/rules":
            st.set_rules(json.loads(self.body or b"[]"))
            self.send_json(200, {"ok": True})
        elif self.command == "POST" and self.path == "/_proxy/reset":
            st.reset()
            self.send_json(200, {"ok": True})
        else:
            self.send_json(404, {"error": "unknown control path"})

    def handle_one(self):
        length = int(self.headers.get("Content-Length") or 0)
        self.body = self.rfile.read(length) if length else b""
        if self.path.startswith("/_proxy/"):
            self.control()
            return
        target = self.headers.get("X-Amz-Target", "")
        op = target.split(".", 1)[1] if "." in target else target or self.command
        rule = self.state().call_action(op, self.body)
        if rule is not None and self.call_fault(op, rule):
            return
        if op == "PutEvents":
            self.put_events()
            return
        status, headers, data = self.forward(self.body)
        self.state().record({"op": op, "status": status})
        self.send(status, data, headers)

    def call_fault(self, op, rule):
        """Apply a call-level rule; True when the call was answered (or dropped)."""
        self.state().record({"op": op, "fault": rule.name, "status": rule.spec.get("status")})
        if rule.action == "delay":
            time.sleep(float(rule.spec.get("ms", 100)) / 1000)
            return False
        if rule.action == "drop":
            if rule.spec.get("after"):
                self.forward(self.body)
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return True
        code = rule.spec.get("code", "InternalException")
        status = int(rule.spec.get("status", 500))
        body = {"__type": code, "message": rule.spec.get("message", "injected fault")}
        # SQS names the error in this header as well, and clients read it first.
        side = "Receiver" if status >= 500 else "Sender"
        self.send(status, json.dumps(body).encode(), [
            ("Content-Type", self.headers.get("Content-Type", "application/x-amz-json-1.1")),
            ("x-amzn-query-error", f"{code};{side}")])
        return True

    def put_events(self):
        req = json.loads(self.body)
        entries = req.get("Entries", [])
        fails = self.state().split_entries(entries)
        keep = [e for e, f in zip(entries, fails) if f is None]
        upstream_results = []
        headers = [("Content-Type", "application/x-amz-json-1.1")]
        status = 200
        if keep:
            body = json.dumps(dict(req, Entries=keep)).encode()
            status, headers, data = self.forward(body)
            if status != 200:
                self.state().record({"op": "PutEvents", "status": status})
                self.send(status, data, headers)
                return
            upstream_results = json.loads(data).get("Entries", [])
        results, failed, it = [], 0, iter(upstream_results)
        journal = []
        for entry, rule in zip(entries, fails):
            if rule is None:
                res = next(it, {"ErrorCode": "InternalFailure", "ErrorMessage": "missing"})
            else:
                res = {"ErrorCode": rule.spec.get("code", "InternalFailure"),
                       "ErrorMessage": rule.spec.get("message", "injected entry failure")}
            failed += "ErrorCode" in res
            results.append(res)
            journal.append({"detail": entry.get("Detail"), "detail_type": entry.get("DetailType"),
                            "trace_header": entry.get("TraceHeader"),
                            "failed": "ErrorCode" in res})
        self.state().record({"op": "PutEvents", "status": status, "entries": journal})
        self.send(200, json.dumps({"FailedEntryCount": failed, "Entries": results}).encode(),
                  [(k, v) for k, v in headers if k.lower() == "content-type"] or
                  [("Content-Type", "application/x-amz-json-1.1")])

    def do_POST(self):
        self.handle_one()

    def do_GET(self):
        self.handle_one()


def random_faults(share):
    """Rules failing `share` of all calls, in four equal parts: a 500
    InternalFailure, a 400 ThrottlingException, the connection dropped before
    forwarding, and dropped after it."""
    part = share / 4
    return [
        {"name": "500", "action": "status", "status": 500, "code": "InternalFailure",
         "message": "injected", "rate": part},
        {"name": "throttle", "action": "status", "status": 400, "code": "ThrottlingException",
         "message": "Rate exceeded (injected)", "rate": part},
        {"name": "drop_before", "action": "drop", "rate": part},
        {"name": "drop_after", "action": "drop", "after": True, "rate": part},
    ]


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64  # a worker opens many connections at once

    def process_request(self, request, client_address):
        with self.state.lock:
            self.state.conns.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request):
        with self.state.lock:
            self.state.conns.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request, client_address):
        # A client hanging up mid-reply (a worker stopped during a long poll)
        # is ordinary here; anything else is worth the traceback.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class FaultProxy:
    """The proxy in a background thread (for Python tests)."""

    def __init__(self, upstream, rules=(), seed=0, port=0):
        self.server = Server(("127.0.0.1", port), Handler)
        self.server.state = State(upstream, rules, seed)
        self.thread = None
        self.down = None  # the closed server while refusing
        self._port = self.port

    @property
    def port(self):
        return self.server.server_address[1] if self.server else self._port

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def start(self):
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def set_rules(self, rules):
        (self.server or self.down).state.set_rules(rules)

    def refuse(self):
        """Down: stop listening and cut every open connection, so that each
        call fails with a refused (or reset) connection until accept()."""
        state = self.server.state
        self.server.shutdown()
        self.server.server_close()
        with state.lock:
            conns = list(state.conns)
            state.conns.clear()
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.down = self.server
        self.server = None

    def accept(self):
        """Up again, on the same port."""
        state = self.down.state
        self.server = Server(("127.0.0.1", self._port), Handler)
        self.server.state = state
        self.down = None
        return self.start()

    def journal(self):
        state = (self.server or self.down).state
        with state.lock:
            return list(state.journal)

    def counts(self):
        """Journal entries by what happened: a fault's name, or "forwarded"."""
        return collections.Counter(c.get("fault", "forwarded") for c in self.journal())

    def stop(self):
        if self.server:
            self.server.shutdown()
            self.server.server_close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--upstream", required=True, help="URL of the service to forward to")
    ap.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: any free one)")
    ap.add_argument("--port-file", help="write the port here once listening")
    ap.add_argument("--rule", action="append", default=[], help="a rule as JSON (repeatable)")
    ap.add_argument("--seed", type=int, default=0, help="seed for rate-based rules")
    args = ap.parse_args()
    if urlparse(args.upstream).hostname not in ("127.0.0.1", "localhost", "::1"):
        sys.exit("faultproxy: the upstream must be on this machine")
    proxy = FaultProxy(args.upstream, [json.loads(r) for r in args.rule], args.seed, args.port)
    if args.port_file:
        with open(args.port_file, "w") as f:
            f.write(f"{proxy.port}\n")
    print(f"faultproxy listening on {proxy.url}", flush=True)
    try:
        proxy.server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
