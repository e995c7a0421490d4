"""What the HTTP benchmarks share (tests/bench/serve/run.py, tests/bench/router/run.py): server
processes started and stopped as process groups, wrk runs parsed into req/s, p50/p99 and
failures, free ports and the load average recorded beside each figure."""
import os
import re
import signal
import socket
import subprocess
import time
import urllib.request

UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}
# A plain GET for wrk (its default), as a script so every run takes the same arguments.
GET_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "get.lua")
POST_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "serve", "post.lua")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def load_average():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def http_ok(url, body=None):
    """True when `url` answers 200 (a POST of `body` when given)."""
    try:
        request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=2) as response:
            return response.status == 200
    except Exception:  # not up yet
        return False


class Server:
    """One server process, in its own process group (stopped as a group: MLServer forks workers),
    its output in `log_dir`/<name>.log."""

    def __init__(self, name, argv, port, env=None, cwd=None, log_dir="."):
        self.name, self.port = name, port
        self.log_path = os.path.join(log_dir, re.sub(r"[^a-z0-9]+", "-", name.lower()) + ".log")
        self.log = open(self.log_path, "ab")
        self.process = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT, env=env, cwd=cwd,
                                        start_new_session=True)

    def wait_until(self, ready, timeout=180):
        """Waits until `ready()` is true; raises if the process exits or `timeout` passes."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited ({self.process.returncode}); see {self.log_path}")
            if ready():
                return
            time.sleep(0.3)
        raise RuntimeError(f"{self.name} not ready after {timeout} s; see {self.log_path}")

    def stop(self):
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=30)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self.log.close()


def run_wrk(url, connections, seconds, script=GET_SCRIPT, body_file=None):
    """One wrk run (keep-alive, up to 2 threads): {"rps", "p50", "p99" (ms), "failed"} where failed
    counts non-2xx/3xx answers and socket errors. `script` reads the POST body from $BODY."""
    threads = min(2, connections)
    env = dict(os.environ, BODY=body_file) if body_file else None
    out = subprocess.run(["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", script, url],
                         capture_output=True, text=True, env=env, check=True).stdout
    result = {"rps": float(re.search(r"Requests/sec:\s+([0-9.]+)", out).group(1))}
    for percentile, key in (("50", "p50"), ("99", "p99")):
        m = re.search(rf"^\s+{percentile}(?:\.000)?%\s+([0-9.]+)(us|ms|s)\s*$", out, re.M)
        result[key] = float(m.group(1)) * UNITS[m.group(2)]
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    result["failed"] = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    result["failed"] += sum(int(x) for x in m.groups()) if m else 0
    return result
