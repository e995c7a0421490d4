#!/usr/bin/env python3
"""A real Kubernetes control plane on loopback, for mlscale's integration tests.

Subcommands:
  binaries [--extra kwok helm]   find or build the binaries; print where they are
  up --dir D [--profiling]        start etcd, kube-apiserver, kube-controller-manager and
                                  kube-scheduler; write D/cluster.json and D/admin.kubeconfig.
                                  --profiling serves the API server's /debug/pprof (to the
                                  admin: benchmarks take its CPU profile; off by default).
                                  The API server writes an audit log (Metadata level, every
                                  request: cluster.json "auditLog") and reaches node agents'
                                  log endpoints with a client certificate from the cluster's CA
                                  (agents serve with cluster.json "kubeletServingCert"/"Key")
  down --dir D                    stop everything started by `up --dir D`; no process is left
  kubeconfig --dir D --namespace NS --service-account SA --out F
                                  write a kubeconfig that authenticates as that service account
  restart --dir D --component C   stop and start one component (e.g. kube-apiserver)
  compact --dir D                 compact etcd at its current revision (watchers then get 410)
  run --dir D -- CMD ...          up, run CMD with KUBECONFIG set, down
  go-binary --module-dir M        build the binary of the Go module in folder M (once, cached
                                  like the control plane's); print its path

Binaries come from TEST_ASSET_<NAME> (e.g. TEST_ASSET_KUBE_APISERVER), then KUBEBUILDER_ASSETS,
then PATH (when the version there is the pinned one), then a cache (~/.cache/mlscale/bin, or $MLSCALE_CACHE/bin) where they are built
from the pinned Go modules in tests/cluster/modules/ the first time, keyed by version.

`up` leaves a supervisor process behind that owns every component: each component dies with
it (PR_SET_PDEATHSIG), and `down` stops the supervisor, which stops the components in
reverse order. Ports are free ones picked at start, so two clusters never collide.
"""

import argparse
import base64
import ctypes
import fcntl
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
MODULES = os.path.join(HERE, "modules")
CACHE = os.path.join(os.environ.get("MLSCALE_CACHE", os.path.expanduser("~/.cache/mlscale")), "bin")

# name -> (module folder, Go package, env var of the envtest convention)
BINARIES = {
    "etcd": ("controlplane", "go.etcd.io/etcd/server/v3", "TEST_ASSET_ETCD"),
    "kube-apiserver": ("controlplane", "k8s.io/kubernetes/cmd/kube-apiserver", "TEST_ASSET_KUBE_APISERVER"),
    "kube-controller-manager": ("controlplane", "k8s.io/kubernetes/cmd/kube-controller-manager",
                                "TEST_ASSET_KUBE_CONTROLLER_MANAGER"),
    "kube-scheduler": ("controlplane", "k8s.io/kubernetes/cmd/kube-scheduler", "TEST_ASSET_KUBE_SCHEDULER"),
    "kubectl": ("controlplane", "k8s.io/kubernetes/cmd/kubectl", "TEST_ASSET_KUBECTL"),
    "kwok": ("kwok", "sigs.k8s.io/kwok/cmd/kwok", "TEST_ASSET_KWOK"),
    "helm": ("helm", "helm.sh/helm/v3/cmd/helm", "TEST_ASSET_HELM"),
}
# The components `up` runs, in start order, and the control-plane binaries (they plus kubectl).
COMPONENTS = ["etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"]
CONTROL_PLANE = COMPONENTS + ["kubectl"]
# Version stamps, so `kubectl version` and /version report the release, not v0.0.0-master.
VERSION_LDFLAGS = {
    "controlplane": ["k8s.io/component-base/version", "k8s.io/client-go/pkg/version"],
}
SERVICE_CIDR = "10.0.0.0/24"
PR_SET_PDEATHSIG = 1


def log(message):
    print(f"testcluster: {message}", file=sys.stderr, flush=True)


class ClusterError(Exception):
    """A failure with a message that says what to do."""


# ---------------------------------------------------------------------------- binaries

def module_key(module, with_sources=False):
    """The cache key of a module (a folder under modules/, or any Go module folder): its pinned
    versions (go.mod + go.sum) and, with_sources, its own .go files too."""
    digest = hashlib.sha256()
    folder = os.path.join(MODULES, module)
    names = ["go.mod", "go.sum"]
    if with_sources:
        names += sorted(n for n in os.listdir(folder) if n.endswith(".go"))
    for name in names:
        with open(os.path.join(folder, name), "rb") as f:
            digest.update(f.read())
    return digest.hexdigest()[:12]


def pinned_version(module, path):
    """The version that modules/<module>/go.mod requires of module path `path`."""
    with open(os.path.join(MODULES, module, "go.mod")) as f:
        for line in f:
            words = line.split()
            if len(words) >= 2 and words[0] == path:
                return words[1]
            if len(words) >= 3 and words[0] == "require" and words[1] == path:
                return words[2]
    raise ClusterError(f"modules/{module}/go.mod does not require {path}")


def go_version(go):
    """The version tuple of that go command (e.g. (1, 26, 8)), or None if it does not run."""
    try:
        output = subprocess.run([go, "env", "GOVERSION"], capture_output=True, text=True, timeout=60,
                                env=dict(os.environ, GOTOOLCHAIN="local")).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.match(r"go(\d+)\.(\d+)(?:\.(\d+))?", output.strip())
    return tuple(int(x or 0) for x in match.groups()) if match else None


def go_command(module_dir):
    """The go command that can build the module in module_dir: go on PATH when it is at least the
    version that module's go.mod asks for, else the toolchain scripts/deps.sh installs into
    ~/.cache/mlscale/go (Debian bookworm's go is 1.19, too old for the pinned modules)."""
    with open(os.path.join(module_dir, "go.mod")) as f:
        match = re.search(r"^go (\d+)\.(\d+)(?:\.(\d+))?\s*$", f.read(), re.MULTILINE)
    needed = tuple(int(x or 0) for x in match.groups()) if match else (0, 0, 0)
    candidates = [shutil.which("go"), os.path.join(os.path.dirname(CACHE), "go", "bin", "go")]
    found = []
    for go in candidates:
        version = go_version(go) if go and os.access(go, os.X_OK) else None
        if version is not None and version >= needed:
            return go
        if version is not None:
            found.append(f"{go} is go{'.'.join(map(str, version))}")
    raise ClusterError(f"{os.path.join(module_dir, 'go.mod')} needs go {'.'.join(map(str, needed))} or newer "
                       f"({'; '.join(found) or 'no go found'}): run scripts/deps.sh (it installs one into "
                       f"{os.path.join(os.path.dirname(CACHE), 'go')}), or set KUBEBUILDER_ASSETS")


def build_module(module, names, out_dir, packages=None):
    """Builds the named binaries of one module into out_dir (atomically, under a lock).
    `packages` maps each name to its Go package (default: BINARIES)."""
    packages = packages or {name: BINARIES[name][1] for name in names}
    os.makedirs(os.path.dirname(out_dir), exist_ok=True)
    lock_path = out_dir + ".lock"
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if all(os.path.exists(os.path.join(out_dir, n)) for n in names):
            return
        go = go_command(os.path.join(MODULES, module))
        staging = tempfile.mkdtemp(prefix=os.path.basename(out_dir) + ".", dir=os.path.dirname(out_dir))
        ldflags = ["-s", "-w"]
        if module in VERSION_LDFLAGS:
            version = pinned_version(module, "k8s.io/kubernetes")
            major, minor = version.lstrip("v").split(".")[:2]
            for package in VERSION_LDFLAGS[module]:
                ldflags += [f"-X={package}.gitVersion={version}", f"-X={package}.gitMajor={major}",
                            f"-X={package}.gitMinor={minor}", f"-X={package}.gitTreeState=clean"]
        started = time.time()
        log(f"building {', '.join(names)} from pinned Go modules ({os.path.join('modules', module)}); "
            "this happens once per machine")
        # GOTOOLCHAIN=local: build with the go chosen above, never a toolchain fetched behind our back.
        env = dict(os.environ, CGO_ENABLED="0", GOFLAGS="-mod=readonly -buildvcs=false", GOTOOLCHAIN="local")
        for name in names:
            package = packages[name]
            command = [go, "build", "-trimpath", "-ldflags", " ".join(ldflags),
                       "-o", os.path.join(staging, name), package]
            result = subprocess.run(command, cwd=os.path.join(MODULES, module), env=env)
            if result.returncode != 0:
                shutil.rmtree(staging, ignore_errors=True)
                raise ClusterError(f"building {name} failed (exit {result.returncode})")
        os.makedirs(out_dir, exist_ok=True)
        for name in names:
            os.replace(os.path.join(staging, name), os.path.join(out_dir, name))
        shutil.rmtree(staging, ignore_errors=True)
        log(f"built {', '.join(names)} in {time.time() - started:.0f} s into {out_dir}")


def path_binary(name):
    """A binary of that name on PATH, if its version suits: the pinned Kubernetes minor
    release (kubectl within one minor), etcd 3.5 or newer."""
    path = shutil.which(name)
    if path is None or name in ("kwok", "helm"):
        return path
    command = [path, "version", "--client"] if name == "kubectl" else [path, "--version"]
    try:
        output = subprocess.run(command, capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r"v?(\d+)\.(\d+)\.\d+", output)
    if not match:
        return None
    found = (int(match.group(1)), int(match.group(2)))
    if name == "etcd":
        return path if found >= (3, 5) else None
    pinned = tuple(int(x) for x in pinned_version("controlplane", "k8s.io/kubernetes").lstrip("v").split(".")[:2])
    allowed_skew = 1 if name == "kubectl" else 0
    return path if found[0] == pinned[0] and abs(found[1] - pinned[1]) <= allowed_skew else None


def find_binaries(names):
    """Returns {name: path}, building what no other source provides."""
    found, to_build = {}, {}
    assets = os.environ.get("KUBEBUILDER_ASSETS", "")
    for name in names:
        module, _, env_var = BINARIES[name]
        candidates = [os.environ.get(env_var, "")]
        if assets:
            candidates.append(os.path.join(assets, name))
        candidates.append(path_binary(name) or "")
        cached = os.path.join(CACHE, f"{module}-{module_key(module)}", name)
        candidates.append(cached)
        path = next((c for c in candidates if c and os.access(c, os.X_OK)), None)
        if path:
            found[name] = path
        else:
            to_build.setdefault(module, []).append(name)
    for module, module_names in to_build.items():
        out_dir = os.path.join(CACHE, f"{module}-{module_key(module)}")
        build_module(module, module_names, out_dir)
        for name in module_names:
            found[name] = os.path.join(out_dir, name)
    return found


# ---------------------------------------------------------------------------- PKI

def openssl(*args, cwd):
    result = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        raise ClusterError(f"openssl {' '.join(args[:2])} failed: {result.stderr.strip()}")


def make_pki(pki):
    """A CA, the apiserver's serving cert, client certs and the service-account key pair."""
    os.makedirs(pki, exist_ok=True)
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt",
            "-days", "7", "-subj", "/CN=mlscale-test-ca", cwd=pki)
    sans = ("subjectAltName=IP:127.0.0.1,IP:10.0.0.1,DNS:localhost,DNS:kubernetes,"
            "DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local")
    certs = {
        "apiserver": ("/CN=kube-apiserver", sans + "\nextendedKeyUsage=serverAuth"),
        "admin": ("/O=system:masters/CN=mlscale-test-admin", "extendedKeyUsage=clientAuth"),
        "controller-manager": ("/CN=system:kube-controller-manager", "extendedKeyUsage=clientAuth"),
        "scheduler": ("/CN=system:kube-scheduler", "extendedKeyUsage=clientAuth"),
        # What the API server shows the node agents' log endpoints (`kubectl logs`), and the
        # agents' serving certificate: every agent listens on 127.0.0.1 (its InternalIP).
        "apiserver-kubelet-client": ("/CN=kube-apiserver-kubelet-client", "extendedKeyUsage=clientAuth"),
        "kubelet-serving": ("/CN=mlscale-test-node",
                            "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth"),
    }
    for name, (subject, extensions) in certs.items():
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
                "-subj", subject, cwd=pki)
        with open(os.path.join(pki, f"{name}.ext"), "w") as f:
            f.write(extensions + "\n")
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                "-CAcreateserial", "-out", f"{name}.crt", "-days", "7", "-extfile", f"{name}.ext", cwd=pki)
    openssl("genrsa", "-out", "sa.key", "2048", cwd=pki)
    openssl("rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub", cwd=pki)


# Every request at Metadata level (who, verb, resource, response code; no bodies), so a test
# can list what a service account did and what it was denied (tests/common/audit_log.h).
AUDIT_POLICY = """apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
- level: Metadata
"""


def write_kubeconfig(path, server, ca_file, user):
    """user: {"client-certificate": ..., "client-key": ...} or {"token": ...}."""
    config = {
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "mlscale-test", "cluster": {"server": server, "certificate-authority": ca_file}}],
        "users": [{"name": "user", "user": user}],
        "contexts": [{"name": "mlscale-test", "context": {"cluster": "mlscale-test", "user": "user"}}],
        "current-context": "mlscale-test",
    }
    with open(path + ".tmp", "w") as f:
        json.dump(config, f, indent=2)  # JSON is YAML: kubectl and our client read it
    os.chmod(path + ".tmp", 0o600)
    os.replace(path + ".tmp", path)


# ---------------------------------------------------------------------------- components

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def component_commands(d, bins, ports, profiling=False):
    """The command line of each component, in start order. `profiling`: the API server serves
    /debug/pprof (to whoever RBAC lets read it: the admin)."""
    pki = os.path.join(d, "pki")
    server = f"https://127.0.0.1:{ports['apiserver']}"
    etcd_url = f"http://127.0.0.1:{ports['etcd']}"
    peer_url = f"http://127.0.0.1:{ports['etcd_peer']}"
    p = lambda name: os.path.join(pki, name)  # noqa: E731
    kc = lambda name: os.path.join(d, f"{name}.kubeconfig")  # noqa: E731
    return {
        "etcd": [bins["etcd"], "--name", "default", "--data-dir", os.path.join(d, "etcd"),
                 "--listen-client-urls", etcd_url, "--advertise-client-urls", etcd_url,
                 "--listen-peer-urls", peer_url, "--initial-advertise-peer-urls", peer_url,
                 "--initial-cluster", f"default={peer_url}", "--unsafe-no-fsync",
                 "--log-level", "warn"],
        "kube-apiserver": [
            bins["kube-apiserver"], "--etcd-servers", etcd_url,
            "--bind-address", "127.0.0.1", "--advertise-address", "127.0.0.1",
            "--secure-port", str(ports["apiserver"]),
            "--tls-cert-file", p("apiserver.crt"), "--tls-private-key-file", p("apiserver.key"),
            "--client-ca-file", p("ca.crt"), "--authorization-mode", "RBAC",
            "--service-account-issuer", "https://kubernetes.default.svc.cluster.local",
            "--service-account-key-file", p("sa.pub"), "--service-account-signing-key-file", p("sa.key"),
            "--service-cluster-ip-range", SERVICE_CIDR, "--allow-privileged=true",
            "--cert-dir", pki, f"--profiling={'true' if profiling else 'false'}", "--v=1",
            "--audit-policy-file", os.path.join(d, "audit-policy.yaml"),
            "--audit-log-path", os.path.join(d, "logs", "audit.log"), "--audit-log-maxsize=0",
            # kubectl logs: the node agents serve the kubelet's log endpoint on their InternalIP
            # with a certificate from this CA, and take this client certificate.
            "--kubelet-certificate-authority", p("ca.crt"),
            "--kubelet-client-certificate", p("apiserver-kubelet-client.crt"),
            "--kubelet-client-key", p("apiserver-kubelet-client.key"),
            "--kubelet-preferred-address-types", "InternalIP"],
        "kube-controller-manager": [
            bins["kube-controller-manager"], "--kubeconfig", kc("controller-manager"),
            "--authentication-kubeconfig", kc("controller-manager"),
            "--authorization-kubeconfig", kc("controller-manager"),
            "--bind-address", "127.0.0.1", "--secure-port", str(ports["controller_manager"]),
            "--leader-elect=false", "--use-service-account-credentials=true",
            "--service-account-private-key-file", p("sa.key"), "--root-ca-file", p("ca.crt"),
            "--cluster-signing-cert-file", p("ca.crt"), "--cluster-signing-key-file", p("ca.key"),
            "--service-cluster-ip-range", SERVICE_CIDR, "--profiling=false", "--v=1"],
        "kube-scheduler": [
            bins["kube-scheduler"], "--kubeconfig", kc("scheduler"),
            "--authentication-kubeconfig", kc("scheduler"), "--authorization-kubeconfig", kc("scheduler"),
            "--bind-address", "127.0.0.1", "--secure-port", str(ports["scheduler"]),
            "--leader-elect=false", "--profiling=false", "--v=1"],
    }


def https_ok(url, d, verify_server, timeout=2.0):
    """True when url answers 200 to the admin client certificate. The controller-manager and
    the scheduler serve self-signed certificates, so only the apiserver's is verified."""
    context = ssl.create_default_context(cafile=os.path.join(d, "pki", "ca.crt"))
    context.load_cert_chain(os.path.join(d, "pki", "admin.crt"), os.path.join(d, "pki", "admin.key"))
    if not verify_server:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    try:
        with urllib.request.urlopen(url, timeout=timeout, context=context) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError, ssl.SSLError):
        return False


def etcd_post(d, path, body):
    state = load_state(d)
    request = urllib.request.Request(f"http://127.0.0.1:{state['ports']['etcd']}{path}",
                                     data=json.dumps(body).encode(), method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def readiness_url(name, ports):
    return {
        "etcd": f"http://127.0.0.1:{ports['etcd']}/health",
        "kube-apiserver": f"https://127.0.0.1:{ports['apiserver']}/readyz",
        "kube-controller-manager": f"https://127.0.0.1:{ports['controller_manager']}/healthz",
        "kube-scheduler": f"https://127.0.0.1:{ports['scheduler']}/healthz",
    }[name]


def is_ready(d, name, ports):
    url = readiness_url(name, ports)
    if url.startswith("http://"):
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return response.status == 200
        except (urllib.error.URLError, OSError):
            return False
    return https_ok(url, d, verify_server=(name == "kube-apiserver"))


def die_with_parent():
    """Run in the child before exec: SIGKILL it when the supervisor dies, however it dies."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


class Supervisor:
    """Owns the component processes of one cluster; runs detached from `up`."""

    def __init__(self, d, commands, ports):
        self.d, self.commands, self.ports = d, commands, ports
        self.processes = {}

    def start(self, name, deadline_seconds=120):
        log_file = open(os.path.join(self.d, "logs", f"{name}.log"), "ab")
        self.processes[name] = subprocess.Popen(self.commands[name], stdout=log_file, stderr=subprocess.STDOUT,
                                                stdin=subprocess.DEVNULL, preexec_fn=die_with_parent)
        log_file.close()
        deadline = time.time() + deadline_seconds
        while time.time() < deadline:
            if self.processes[name].poll() is not None:
                raise ClusterError(f"{name} exited with {self.processes[name].returncode}; "
                                   f"see {self.d}/logs/{name}.log")
            if is_ready(self.d, name, self.ports):
                return
            time.sleep(0.2)
        raise ClusterError(f"{name} not ready after {deadline_seconds} s; see {self.d}/logs/{name}.log")

    def stop(self, name, grace_seconds=15):
        process = self.processes.pop(name, None)
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(grace_seconds)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def stop_all(self):
        for name in reversed(list(self.processes)):
            self.stop(name)

    def serve(self, control_path):
        """Answers control requests ("restart NAME", "stop NAME", "start NAME") until SIGTERM."""
        stopping = []
        signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
        signal.signal(signal.SIGINT, lambda *_: stopping.append(True))
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(control_path)
        server.listen(4)
        server.settimeout(0.5)
        while not stopping:
            for name, process in list(self.processes.items()):
                if process.poll() is not None:
                    log(f"{name} exited unexpectedly with {process.returncode}")
                    self.processes.pop(name)
            try:
                connection, _ = server.accept()
            except (socket.timeout, InterruptedError):
                continue
            with connection:
                connection.settimeout(200)
                request = connection.recv(1024).decode().split()
                try:
                    verb, name = request
                    if name not in self.commands:
                        raise ClusterError(f"no component {name}")
                    if verb in ("stop", "restart"):
                        self.stop(name)
                    if verb in ("start", "restart"):
                        self.start(name)
                    connection.sendall(b"ok\n")
                except (ValueError, ClusterError) as error:
                    connection.sendall(f"error: {error}\n".encode())
        server.close()
        self.stop_all()


# ---------------------------------------------------------------------------- subcommands

def load_state(d):
    path = os.path.join(d, "cluster.json")
    if not os.path.exists(path):
        raise ClusterError(f"no cluster in {d} (no cluster.json); run `up --dir {d}` first")
    with open(path) as f:
        return json.load(f)


def kubectl(d, *args, input_text=None, check=True):
    state = load_state(d)
    result = subprocess.run([os.path.join(state["binDir"], "kubectl"), "--kubeconfig", state["adminKubeconfig"],
                             *args], input=input_text, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise ClusterError(f"kubectl {' '.join(args)}: {result.stderr.strip()}")
    return result.stdout


def wait_for(description, predicate, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.25)
    raise ClusterError(f"timed out after {timeout} s waiting for {description}")


def command_up(args):
    d = os.path.abspath(args.dir)
    if os.path.exists(os.path.join(d, "supervisor.pid")):
        command_down(args)  # a leftover from an interrupted run
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(os.path.join(d, "logs"))
    started = time.time()
    bins = find_binaries(CONTROL_PLANE)
    make_pki(os.path.join(d, "pki"))
    ports = {name: free_port() for name in ("etcd", "etcd_peer", "apiserver", "controller_manager", "scheduler")}
    server = f"https://127.0.0.1:{ports['apiserver']}"
    ca_file = os.path.join(d, "pki", "ca.crt")
    for name in ("admin", "controller-manager", "scheduler"):
        write_kubeconfig(os.path.join(d, f"{name}.kubeconfig"), server, ca_file,
                         {"client-certificate": os.path.join(d, "pki", f"{name}.crt"),
                          "client-key": os.path.join(d, "pki", f"{name}.key")})
    with open(os.path.join(d, "audit-policy.yaml"), "w") as f:
        f.write(AUDIT_POLICY)
    state = {"server": server, "adminKubeconfig": os.path.join(d, "admin.kubeconfig"), "caFile": ca_file,
             "binDir": os.path.dirname(bins["kubectl"]), "binaries": bins, "ports": ports,
             "auditLog": os.path.join(d, "logs", "audit.log"),
             "kubeletServingCert": os.path.join(d, "pki", "kubelet-serving.crt"),
             "kubeletServingKey": os.path.join(d, "pki", "kubelet-serving.key")}
    commands = component_commands(d, bins, ports, profiling=getattr(args, "profiling", False))
    with open(os.path.join(d, "cluster.json"), "w") as f:
        json.dump(state, f, indent=2)

    ready_read, ready_write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the supervisor: detach, start components, report, serve
        os.close(ready_read)
        os.setsid()
        null = os.open(os.devnull, os.O_RDWR)
        os.dup2(null, 0)
        supervisor_log = os.open(os.path.join(d, "logs", "supervisor.log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        os.dup2(supervisor_log, 1)
        os.dup2(supervisor_log, 2)
        supervisor = Supervisor(d, commands, ports)
        try:
            for name in commands:
                supervisor.start(name)
            # Controllers work once the service-account controller made the default SA.
            wait_for("the default service account", lambda: kubectl(
                d, "get", "serviceaccount", "default", "-n", "default", check=False).strip() != "", 60)
            os.write(ready_write, b"ok")
        except Exception as error:  # report any failure to `up`, then clean up
            os.write(ready_write, f"error: {error}".encode())
            supervisor.stop_all()
            os._exit(1)
        os.close(ready_write)
        supervisor.serve(os.path.join(d, "control.sock"))
        os._exit(0)

    os.close(ready_write)
    with open(os.path.join(d, "supervisor.pid"), "w") as f:
        f.write(str(pid))
    report = b""
    while chunk := os.read(ready_read, 4096):
        report += chunk
    if report != b"ok":
        os.waitpid(pid, 0)
        os.remove(os.path.join(d, "supervisor.pid"))
        raise ClusterError(report.decode() or "the supervisor died before the cluster was up")
    log(f"control plane up in {time.time() - started:.1f} s at {server}; KUBECONFIG={state['adminKubeconfig']}")
    print(state["adminKubeconfig"])


def process_alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


def command_down(args):
    d = os.path.abspath(args.dir)
    pid_path = os.path.join(d, "supervisor.pid")
    if not os.path.exists(pid_path):
        log(f"nothing to stop in {d}")
        return
    with open(pid_path) as f:
        pid = int(f.read())
    if process_alive(pid):
        os.kill(pid, signal.SIGTERM)
        deadline = time.time() + 60
        while process_alive(pid) and time.time() < deadline:
            time.sleep(0.1)
        if process_alive(pid):
            log("supervisor did not stop in 60 s; killing its process group")
            os.killpg(pid, signal.SIGKILL)
    try:  # no component may outlive the cluster: kill anything left in the session
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    os.remove(pid_path)
    shutil.rmtree(os.path.join(d, "etcd"), ignore_errors=True)
    log(f"control plane in {d} stopped")


def command_kubeconfig(args):
    d = os.path.abspath(args.dir)
    state = load_state(d)
    ns, sa = args.namespace, args.service_account
    manifest = json.dumps({"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}},
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": sa, "namespace": ns}}]})
    kubectl(d, "apply", "-f", "-", input_text=manifest)
    token = kubectl(d, "create", "token", sa, "-n", ns, f"--duration={args.duration}").strip()
    write_kubeconfig(os.path.abspath(args.out), state["server"], state["caFile"], {"token": token})
    print(os.path.abspath(args.out))


def command_restart(args):
    d = os.path.abspath(args.dir)
    load_state(d)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(os.path.join(d, "control.sock"))
        s.sendall(f"{args.verb} {args.component}".encode())
        answer = s.makefile().readline().strip()
    if answer != "ok":
        raise ClusterError(f"{args.verb} {args.component}: {answer}")


def command_compact(args):
    d = os.path.abspath(args.dir)
    key = base64.b64encode(b"/registry").decode()
    revision = int(etcd_post(d, "/v3/kv/range", {"key": key, "limit": 1})["header"]["revision"])
    etcd_post(d, "/v3/kv/compaction", {"revision": revision, "physical": True})
    print(revision)


def command_run(args):
    command_up(args)
    try:
        env = dict(os.environ, KUBECONFIG=load_state(os.path.abspath(args.dir))["adminKubeconfig"])
        return subprocess.run(args.command, env=env).returncode
    finally:
        command_down(args)


def command_binaries(args):
    bins = find_binaries(CONTROL_PLANE + list(args.extra))
    for name, path in bins.items():
        print(f"{name}\t{path}")


def command_go_binary(args):
    """Builds (once, cached by go.mod + go.sum) the binary of a Go module outside modules/, e.g. a
    test's own replay program, and prints its path."""
    module_dir = os.path.abspath(args.module_dir)
    name = args.name or os.path.basename(module_dir)
    out_dir = os.path.join(CACHE, f"{name}-{module_key(module_dir, with_sources=True)}")
    build_module(module_dir, [name], out_dir, packages={name: args.package})
    print(os.path.join(out_dir, name))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="subcommand", required=True)
    p = sub.add_parser("binaries")
    p.add_argument("--extra", nargs="*", default=[], choices=["kwok", "helm"])
    p.set_defaults(func=command_binaries)
    for name, func in (("up", command_up), ("down", command_down), ("compact", command_compact)):
        p = sub.add_parser(name)
        p.add_argument("--dir", required=True)
        if name == "up":
            p.add_argument("--profiling", action="store_true", help="serve the API server's /debug/pprof")
        p.set_defaults(func=func)
    p = sub.add_parser("kubeconfig")
    p.add_argument("--dir", required=True)
    p.add_argument("--namespace", required=True)
    p.add_argument("--service-account", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--duration", default="2h")
    p.set_defaults(func=command_kubeconfig)
    for verb in ("restart", "stop", "start"):
        p = sub.add_parser(verb)
        p.add_argument("--dir", required=True)
        p.add_argument("--component", required=True, choices=COMPONENTS)
        p.set_defaults(func=command_restart, verb=verb)
    p = sub.add_parser("go-binary", help="build a Go module's binary into the cache; print its path")
    p.add_argument("--module-dir", required=True, help="the folder holding go.mod and go.sum")
    p.add_argument("--package", default=".", help="the package to build, relative to the module")
    p.add_argument("--name", help="the binary's name (default: the folder's name)")
    p.set_defaults(func=command_go_binary)
    p = sub.add_parser("run")
    p.add_argument("--dir", required=True)
    p.add_argument("command", nargs=argparse.REMAINDER)
    p.set_defaults(func=command_run)
    args = parser.parse_args()
    if args.subcommand == "run" and args.command[:1] == ["--"]:
        args.command = args.command[1:]
    try:
        result = args.func(args)
    except ClusterError as error:
        log(f"error: {error}")
        return 1
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())
