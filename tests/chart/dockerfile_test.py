#!/usr/bin/env python3
"""The Dockerfile without a container engine (there is none on our machines): hadolint,
what it COPYs exists, its build stage runs CI's dependency script and CMake configure, its
CUDA version is the one scripts/deps.sh pins, and each runtime stage installs the Debian
package of every shared library the programs it ships link (read with ldd from this
build).

    MLSCALE_OPERATOR_BINARY=... MLSCALE_WORKER_BINARIES=a:b:c dockerfile_test.py SOURCE_DIR [unittest args]
"""
import os
import re
import shlex
import subprocess
import sys
import unittest

SOURCE = sys.argv[1]
DOCKERFILE = os.path.join(SOURCE, "Dockerfile")


def read(path):
    with open(path) as f:
        return f.read()


def instructions():
    """(stage, instruction, argument text) for each instruction, continuation lines joined."""
    stage, joined, out = None, "", []
    for raw in read(DOCKERFILE).splitlines():
        line = raw.strip()
        if not joined and (not line or line.startswith("#")):
            continue
        joined += (" " if joined else "") + line.rstrip("\\").strip()
        if line.endswith("\\"):
            continue
        word, _, rest = joined.partition(" ")
        if word.upper() == "FROM":
            stage = rest.split(" AS ")[-1].strip() if " AS " in rest else rest
        out.append((stage, word.upper(), rest))
        joined = ""
    return out


def run_text(stage):
    return " && ".join(rest for s, word, rest in instructions() if s == stage and word == "RUN")


def apt_packages(stage):
    """The packages a stage's `apt-get install` names."""
    packages = []
    for command in re.findall(r"apt-get install ([^&;]*)", run_text(stage)):
        packages += [w for w in shlex.split(command) if not w.startswith("-")]
    return packages


def linked_packages(binary):
    """The Debian packages that provide the shared libraries `binary` links."""
    libraries = re.findall(r"=> (/\S+)", subprocess.run(["ldd", binary], capture_output=True, text=True, check=True).stdout)
    owners = subprocess.run(["dpkg", "-S"] + [os.path.realpath(l) for l in libraries], capture_output=True, text=True).stdout
    return {line.split(":")[0] for line in owners.splitlines() if line}


def closure(packages):
    """The packages `packages` pull in (Depends and PreDepends, recursively), themselves included."""
    out = subprocess.run(["apt-cache", "depends", "--recurse", "--important"] + packages,
                         capture_output=True, text=True).stdout
    return {line.strip().split(":")[0] for line in out.splitlines() if line and not line.startswith(" ")} | set(packages)


class Dockerfile(unittest.TestCase):
    def test_hadolint_is_clean(self):
        hadolint = subprocess.run([os.path.join(SOURCE, "tests/chart/setup-hadolint.sh")],
                                  capture_output=True, text=True, check=True).stdout.strip()
        lint = subprocess.run([hadolint, "--no-color", DOCKERFILE], capture_output=True, text=True)
        self.assertEqual(lint.returncode, 0, lint.stdout + lint.stderr)

    def test_every_copied_path_exists(self):
        copies = [rest for _, word, rest in instructions() if word == "COPY" and not rest.startswith("--from")]
        self.assertTrue(copies)
        for rest in copies:
            for source in shlex.split(rest)[:-1]:
                self.assertTrue(os.path.exists(os.path.join(SOURCE, source)), f"COPY {source}: no such path")

    def test_build_stage_runs_what_ci_runs(self):
        build = run_text("build")
        self.assertIn('scripts/deps.sh --gpu-toolchain; else scripts/deps.sh', build)
        ci = read(os.path.join(SOURCE, "scripts/test.sh"))
        # scripts/test.sh --ci configures with -G Ninja, -DMLSCALE_WERROR=ON and -DMLSCALE_GPU=ON.
        self.assertRegex(ci, r"cmake -S \. -B build -G Ninja -DMLSCALE_WERROR=")
        self.assertIn("cmake -S . -B build -G Ninja -DMLSCALE_WERROR=ON -DMLSCALE_GPU=${GPU}", build)
        self.assertIn("cmake --install build --prefix /opt/mlscale", build)

    def test_cuda_version_is_the_one_deps_pins(self):
        pinned = re.search(r"^CUDA_VERSION=(\S+)$", read(os.path.join(SOURCE, "scripts/deps.sh")), re.M).group(1)
        args = [rest for s, word, rest in instructions() if s == "build" and word == "ARG" and rest.startswith("CUDA_VERSION=")]
        self.assertEqual(args, [f"CUDA_VERSION={pinned}"])

    def test_images_and_user(self):
        stages = {s for s, word, _ in instructions() if word == "FROM"}
        self.assertEqual(stages, {"build", "operator", "worker"})
        for stage in ("operator", "worker"):
            users = [rest for s, word, rest in instructions() if s == stage and word == "USER"]
            self.assertEqual(users, ["65532:65532"], stage)
        # The chart's and the examples' names.
        text = read(DOCKERFILE)
        self.assertIn("-t mlscale/operator:0.1.0", text)
        self.assertIn("-t mlscale/worker:0.1.0", text)
        values = read(os.path.join(SOURCE, "charts/mlscale/values.yaml"))
        self.assertIn("repository: mlscale/operator", values)

    def check_stage_links(self, stage, variable):
        binaries = [b for b in os.environ.get(variable, "").split(":") if b]
        self.assertTrue(binaries, f"${variable} names no programs")
        have = closure(apt_packages(stage))
        for binary in binaries:
            self.assertTrue(os.path.exists(binary), f"{binary} is not built")
            missing = linked_packages(binary) - have
            self.assertFalse(missing, f"{stage} image lacks packages {sorted(missing)} that {binary} links")

    def test_operator_image_has_what_the_operator_links(self):
        self.check_stage_links("operator", "MLSCALE_OPERATOR_BINARY")

    def test_worker_image_has_what_its_programs_link(self):
        self.check_stage_links("worker", "MLSCALE_WORKER_BINARIES")


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0]] + sys.argv[2:])
