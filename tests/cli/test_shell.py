"""The process shell of `eddy worker` and `eddy relay` (src/cli/shell.h), without
AWS: both run against an endpoint that accepts connections and never answers, so
their drain cannot finish, and both must
  - exit 1 at once on a second SIGTERM, saying so;
  - exit 1 when EDDY_DRAIN_SECONDS runs out, saying so.
At debug level the worker traces its consumer's moves (new -> starting ->
draining).

Runs the eddy binary of the build (EDDY_BUILD_ROOT/eddy).
"""

import os
import signal
import socket
import subprocess
import time
import unittest
from pathlib import Path

EDDY = str(Path(os.environ["EDDY_BUILD_ROOT"]) / "eddy")


class Shell(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # Listening, never accepting: the kernel completes the handshake and
        # every request waits for an answer that does not come.
        cls.silent = socket.socket()
        cls.silent.bind(("127.0.0.1", 0))
        cls.silent.listen(64)
        port = cls.silent.getsockname()[1]
        cls.env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "AWS_REGION": "us-east-1",
                   "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "secret",
                   "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "AWS_MAX_ATTEMPTS": "1",
                   "AWS_EC2_METADATA_DISABLED": "true", "EDDY_MACHINE": "slotmachine",
                   "EDDY_TABLE": "t", "EDDY_EVENT_BUS": "b", "EDDY_LOG_FORMAT": "text",
                   "EDDY_METRICS": "off",
                   "EDDY_QUEUE_URL": f"http://127.0.0.1:{port}/123456789012/q"}

    @classmethod
    def tearDownClass(cls):
        cls.silent.close()

    def start(self, command, **env):
        e = dict(self.env)
        e.update(env)
        p = subprocess.Popen([EDDY, command], env=e, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
        self.addCleanup(lambda: p.poll() is None and p.kill())
        time.sleep(0.5)  # let it start and send its first request
        self.assertIsNone(p.poll(), "exited before the signal")
        return p

    def check_second_signal(self, command):
        p = self.start(command, EDDY_DRAIN_SECONDS="600")
        p.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        self.assertIsNone(p.poll(), "the first signal ended the process: nothing held it")
        p.send_signal(signal.SIGTERM)
        _, err = p.communicate(timeout=30)
        self.assertEqual(p.returncode, 1, err)
        self.assertIn("second signal", err)

    def check_drain_budget(self, command):
        p = self.start(command, EDDY_DRAIN_SECONDS="1")
        p.send_signal(signal.SIGTERM)
        _, err = p.communicate(timeout=30)
        self.assertEqual(p.returncode, 1, err)
        self.assertIn("EDDY_DRAIN_SECONDS", err)

    def test_worker_traces_its_state(self):
        # At debug level each move of the consumer's state is traced
        # (base/state.h): started, then draining on the signal.
        p = self.start("worker", EDDY_DRAIN_SECONDS="1", EDDY_LOG_LEVEL="debug")
        p.send_signal(signal.SIGTERM)
        _, err = p.communicate(timeout=30)
        url = self.env["EDDY_QUEUE_URL"]
        self.assertIn(f"consumer {url}: new -> starting", err)
        self.assertIn(f"consumer {url}: starting -> draining", err)

    def test_worker_second_signal(self):
        self.check_second_signal("worker")

    def test_relay_second_signal(self):
        self.check_second_signal("relay")

    def test_worker_drain_budget(self):
        self.check_drain_budget("worker")

    def test_relay_drain_budget(self):
        self.check_drain_budget("relay")


if __name__ == "__main__":
    unittest.main(verbosity=2)
