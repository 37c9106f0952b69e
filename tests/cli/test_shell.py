"""The process shell of `eddy worker` and `eddy relay` (src/cli/shell.h), without
AWS. Both commands, each test the same for both:
  - one SIGTERM or SIGINT: the drain runs, the last metric line is written,
    exit 0 (against an endpoint that refuses connections: nothing to wait for);
  - a second signal (SIGTERM or SIGINT) during a drain that cannot finish
    (an endpoint that accepts connections and never answers): exit 1 at once,
    saying so;
  - EDDY_DRAIN_SECONDS running out during such a drain: exit 1, saying so.
The worker also drains and exits 3 on a fatal error (a queue that does not
exist).
At debug level the worker traces its consumer's moves (new -> starting ->
draining).

Runs the eddy binary of the build (EDDY_BUILD_ROOT/eddy). About ten seconds.
"""

import http.server
import json
import os
import signal
import socket
import subprocess
import threading
import time
import unittest
from pathlib import Path

EDDY = str(Path(os.environ["EDDY_BUILD_ROOT"]) / "eddy")
COMMANDS = ("worker", "relay")
SIGNAL_TEXT = {signal.SIGTERM: "Terminated", signal.SIGINT: "Interrupt"}


def endpoint_env(port):
    return {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
            "EDDY_QUEUE_URL": f"http://127.0.0.1:{port}/123456789012/q"}


class Shell(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # Listening, never accepting: the kernel completes the handshake and
        # every request waits for an answer that does not come.
        cls.silent = socket.socket()
        cls.silent.bind(("127.0.0.1", 0))
        cls.silent.listen(64)
        # Bound, not listening: every connection is refused at once (and the
        # port stays ours while the tests run).
        cls.refusing = socket.socket()
        cls.refusing.bind(("127.0.0.1", 0))
        cls.env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "AWS_REGION": "us-east-1",
                   "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "secret",
                   "AWS_MAX_ATTEMPTS": "1", "AWS_EC2_METADATA_DISABLED": "true",
                   "EDDY_MACHINE": "slotmachine", "EDDY_TABLE": "t", "EDDY_EVENT_BUS": "b",
                   "EDDY_LOG_FORMAT": "text", "EDDY_METRICS": "off"}

    @classmethod
    def tearDownClass(cls):
        cls.silent.close()
        cls.refusing.close()

    def start(self, command, answering=False, **env):
        """eddy <command> against the silent endpoint, or the refusing one."""
        e = dict(self.env)
        e.update(endpoint_env((self.refusing if answering else self.silent).getsockname()[1]))
        e.update(env)
        p = subprocess.Popen([EDDY, command], env=e, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        self.addCleanup(lambda: p.poll() is None and p.kill())
        time.sleep(0.5)  # let it start and send its first request
        self.assertIsNone(p.poll(), "exited before the signal")
        return p

    def test_one_signal_drains_and_exits_0(self):
        for command in COMMANDS:
            for sig in SIGNAL_TEXT:
                with self.subTest(command=command, signal=sig.name):
                    p = self.start(command, answering=True, EDDY_METRICS="emf",
                                   EDDY_METRICS_INTERVAL="3600")
                    p.send_signal(sig)
                    out, err = p.communicate(timeout=30)
                    self.assertEqual(p.returncode, 0, err)
                    self.assertIn(f"{command}: {SIGNAL_TEXT[sig]}: draining", err)
                    lines = out.splitlines()
                    self.assertEqual(len(lines), 1, out)  # the last metric line, at exit
                    self.assertIn("_aws", json.loads(lines[0]))

    def test_second_signal_exits_1(self):
        for command in COMMANDS:
            for first, second in ((signal.SIGTERM, signal.SIGTERM),
                                  (signal.SIGINT, signal.SIGTERM),
                                  (signal.SIGTERM, signal.SIGINT)):
                with self.subTest(command=command, first=first.name, second=second.name):
                    p = self.start(command, EDDY_DRAIN_SECONDS="600")
                    p.send_signal(first)
                    time.sleep(0.3)
                    self.assertIsNone(p.poll(),
                                      "the first signal ended the process: nothing held it")
                    p.send_signal(second)
                    _, err = p.communicate(timeout=30)
                    self.assertEqual(p.returncode, 1, err)
                    self.assertIn(f"second signal ({SIGNAL_TEXT[second]}): exiting now", err)

    def test_drain_budget_exits_1(self):
        for command in COMMANDS:
            with self.subTest(command=command):
                p = self.start(command, EDDY_DRAIN_SECONDS="1")
                p.send_signal(signal.SIGTERM)
                _, err = p.communicate(timeout=30)
                self.assertEqual(p.returncode, 1, err)
                self.assertIn(f"{command}: drain did not finish within 1 s "
                              "(EDDY_DRAIN_SECONDS)", err)

    def test_worker_fatal_error_drains_and_exits_3(self):
        # A queue that does not exist is no reason to wait: the worker drains
        # through the shell (eddy_shell_fail) and exits 3.
        class Refuse(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                body = json.dumps({"__type": "com.amazonaws.sqs#QueueDoesNotExist",
                                   "message": "The specified queue does not exist."}).encode()
                self.send_response(400)
                self.send_header("Content-Type", "application/x-amz-json-1.0")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Refuse)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self.addCleanup(server.server_close)
        self.addCleanup(server.shutdown)
        e = dict(self.env)
        e.update(endpoint_env(server.server_address[1]))
        p = subprocess.run([EDDY, "worker"], env=e, capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 3, p.stderr)
        self.assertIn("worker: cannot consume the queue: draining", p.stderr)
        self.assertIn("QueueDoesNotExist", p.stderr)

    def test_worker_traces_its_state(self):
        # At debug level each move of the consumer's state is traced
        # (base/state.h): started, then draining on the signal.
        p = self.start("worker", EDDY_DRAIN_SECONDS="1", EDDY_LOG_LEVEL="debug")
        p.send_signal(signal.SIGTERM)
        _, err = p.communicate(timeout=30)
        url = endpoint_env(self.silent.getsockname()[1])["EDDY_QUEUE_URL"]
        self.assertIn(f"consumer {url}: new -> starting", err)
        self.assertIn(f"consumer {url}: starting -> draining", err)


if __name__ == "__main__":
    unittest.main(verbosity=2)
