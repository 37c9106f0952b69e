"""The container image: built from deploy/Dockerfile and run against the local AWS.

A private Docker engine (containerkit.py) builds the image from the Dockerfile as
it is (base images made from Debian's packages when missing), then runs
`eddy worker` in a container (--network host) against the data resources of
deploy/cloudformation.yaml on the local AWS, with the demo's events
(tools/demo.py: coins and pulls for five machines, duplicates, refused pulls,
one poison message). It waits for the image's HEALTHCHECK to report healthy,
checks every event applied once, every game published once and the poison
message in the DLQ, then `docker stop` must end the container with exit 0
within the task definition's stop timeout.

When no Docker engine can be started (no docker.io, not root, dockerd fails)
the test says why and exits 77: meson reports it as SKIP, and tools/test counts
a SKIP as a failure (tools/test --no-container leaves this suite out instead).
"""

import json
import os
import random
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(os.environ.get("EDDY_SOURCE_ROOT", Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(ROOT / "tests" / "integration"))
sys.path.insert(0, str(ROOT / "tools"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import awsenv  # noqa: E402
import containerkit  # noqa: E402
import demo  # noqa: E402  (tools/demo.py: the events and the checks)

IMAGE = "eddy:test"
STOP_TIMEOUT_S = 30  # the task definition's StopTimeout
DRAIN_S = 10


def say(text):
    print(text, flush=True)


class Aws:
    """What tools/demo.py's helpers expect of the local AWS: env and client()."""

    def __init__(self, env):
        self.env = env.values
        self.client = env.client


class ContainerWorker:
    """`eddy worker` in a container, shaped like demo.Worker for demo's checks."""

    def __init__(self, engine, aws_env, settings):
        self.engine = engine
        self.name = f"eddy-test-{uuid.uuid4().hex[:8]}"
        self.env = {**aws_env, **settings}
        self.log_path = f"docker logs {self.name}"
        self.metrics_path = self.log_path
        self.id = None

    def start(self):
        args = ["run", "--detach", "--name", self.name, "--network", "host",
                "--stop-timeout", str(STOP_TIMEOUT_S)]
        for k, v in sorted(self.env.items()):
            args += ["--env", f"{k}={v}"]
        self.id = self.engine.docker(*args, IMAGE, "worker").stdout.decode().strip()

    def state(self):
        info = self.engine.inspect(self.name)
        return info["State"] if info else {}

    def check_alive(self):
        st = self.state()
        if not st.get("Running"):
            raise demo.DemoError(f"the container stopped (exit {st.get('ExitCode')}):\n"
                                 f"{self.log_tail()}")

    def output(self, which):
        proc = self.engine.docker("logs", self.name, check=False)
        return (proc.stdout if which == "stdout" else proc.stderr).decode(errors="replace")

    def log_tail(self, n=15):
        return "\n".join(self.output("stderr").splitlines()[-n:])

    def emf_lines(self):
        lines = []
        for line in self.output("stdout").splitlines():
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            if isinstance(obj, dict) and "_aws" in obj:
                lines.append(obj)
        return lines

    def remove(self):
        self.engine.docker("rm", "--force", self.name, check=False)


def wait_healthy(worker, timeout_s):
    """Until the image's HEALTHCHECK says healthy; returns the seconds waited."""
    t0 = time.monotonic()
    while True:
        worker.check_alive()
        health = worker.state().get("Health") or {}
        if health.get("Status") == "healthy":
            return time.monotonic() - t0
        if health.get("Status") == "unhealthy" or time.monotonic() - t0 > timeout_s:
            log = (health.get("Log") or [{}])[-1]
            raise AssertionError(f"health {health.get('Status')!r} after "
                                 f"{time.monotonic() - t0:.0f} s; last check: {log}")
        time.sleep(0.5)


def build(engine):
    t0 = time.monotonic()
    made = engine.ensure_base_images(containerkit.base_images(ROOT / "deploy" / "Dockerfile"))
    if made:
        say(f"   made the base images {', '.join(made)} in {time.monotonic() - t0:.1f} s")
    t1 = time.monotonic()
    proc = engine.docker("build", "--network", "host", "--file", str(ROOT / "deploy" / "Dockerfile"),
                         "--tag", IMAGE, str(ROOT), check=False)
    if proc.returncode != 0:
        out = (proc.stdout + proc.stderr).decode(errors="replace")
        raise AssertionError(f"docker build failed:\n{out[-4000:]}")
    image = engine.inspect(IMAGE)
    base = engine.inspect(containerkit.base_images(ROOT / "deploy" / "Dockerfile")[-1])
    say(f"   docker build {time.monotonic() - t1:.1f} s; image {image['Size'] / 1e6:.1f} MB, "
        f"the runtime stage adds {(image['Size'] - base['Size']) / 1e6:.1f} MB to its base")
    assert image["Config"]["User"] == "10001", image["Config"]["User"]
    assert image["Config"]["Healthcheck"]["Test"][-1] == "healthcheck", image["Config"]


def run(engine, env):
    aws = Aws(env)
    stack = awsenv.unique_name("eddy-container")
    out = demo.deploy(aws, stack)
    downstream_url = demo.add_downstream(aws, out["EventBusName"], f"{stack}-downstream")
    settings = {
        "EDDY_MACHINE": "slotmachine", "EDDY_TABLE": out["TableName"],
        "EDDY_QUEUE_URL": out["QueueUrl"], "EDDY_DLQ_URL": out["DeadLetterQueueUrl"],
        "EDDY_EVENT_BUS": out["EventBusName"], "EDDY_METRICS_INTERVAL": "5",
        "EDDY_DRAIN_SECONDS": str(DRAIN_S),
    }
    worker = ContainerWorker(engine, env.values, settings)
    worker.start()
    try:
        check_run(worker, aws, out, downstream_url)
    finally:
        if worker.state().get("Running"):
            say(worker.log_tail())
        worker.remove()


def check_run(worker, aws, out, downstream_url):
    rng = random.Random(7)
    machines = [f"slot-{i + 1}" for i in range(5)]
    plan = demo.plan_events(machines, 200, rng, refusals=2, duplicates=3)
    poison = "this is not JSON {" + uuid.uuid4().hex
    demo.send_events(aws, out, plan, poison)
    downstream = demo.Downstream(aws.client("sqs"), downstream_url)
    records, states, _ = demo.wait_processed(aws, out, machines, len(plan), downstream, worker,
                                             timeout_s=90)
    waited = wait_healthy(worker, timeout_s=60)
    say(f"   healthy ({waited:.1f} s after everything was processed)")
    problems = []
    demo.check_machines(machines, states, demo.tally(records, machines), plan, downstream,
                        problems)
    demo.show_dlq(aws, out, poison, problems)
    if not worker.emf_lines():
        problems.append("the container wrote no metric line on stdout")
    t0 = time.monotonic()
    worker.engine.docker("stop", "--time", str(STOP_TIMEOUT_S), worker.name,
                         timeout=STOP_TIMEOUT_S + 30)
    took = time.monotonic() - t0
    st = worker.state()
    say(f"   docker stop: exit {st.get('ExitCode')} after {took:.1f} s")
    if st.get("ExitCode") != 0 or st.get("OOMKilled"):
        problems.append(f"exit {st.get('ExitCode')} after docker stop:\n{worker.log_tail()}")
    if took >= STOP_TIMEOUT_S:
        problems.append(f"docker stop took {took:.1f} s, the stop timeout is {STOP_TIMEOUT_S} s")
    assert not problems, "\n".join(problems)


def main():
    env = awsenv.Env.current()
    engine = containerkit.Engine(ROOT, log=say)
    t0 = time.monotonic()
    try:
        engine.start()
    except containerkit.NoEngine as err:
        say(f"SKIP: no Docker engine could be started: {err}")
        return 77
    say(f"   dockerd up in {time.monotonic() - t0:.1f} s (data in {engine.data})")
    built = []

    def test_image_builds():
        build(engine)
        built.append(IMAGE)

    def test_worker_in_container():
        assert built, "no image to run"
        run(engine, env)

    try:
        awsenv.run_tests([test_image_builds, test_worker_in_container])
    finally:
        engine.stop()


if __name__ == "__main__":
    sys.exit(main())
