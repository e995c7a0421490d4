# mlscale's two images, from one build stage that runs what CI runs (scripts/deps.sh, then
# the CMake configure of scripts/test.sh --ci), on Debian bookworm like CI:
#
#   docker build --target operator -t mlscale/operator:0.1.0 .
#   docker build --target worker   -t mlscale/worker:0.1.0 .                  # CPU backend
#   docker build --target worker   --build-arg GPU=ON -t mlscale/worker:0.1.0-gpu .
#
# - operator: mlscale-operator alone on debian:bookworm-slim with the shared libraries it
#   links (NLopt: the sweep controller's Bayesian search; nothing else: no compilers), user 65532.
#   The chart (charts/mlscale) runs it with a read-only root filesystem.
# - worker: what worker pods run: mlscale-launch (the entrypoint), mlscale-train,
#   mlscale-serve (InferenceService predictors), mlscale-router (InferenceService routers,
#   when the build has it), the mlscale CLI, Open MPI and sshd (spec.launcher: mpi), user
#   65532. With GPU=ON the trainer has the cuBLAS/NCCL backend and the image carries the
#   CUDA runtime, cuBLAS and NCCL of the NVIDIA wheels it was compiled against (the
#   driver comes from the node, through the NVIDIA container toolkit).
#
# CUDA_VERSION is the version of NVIDIA's CUDA wheels: scripts/deps.sh pins them (with the
# cuBLAS and NCCL that go with it) and the build stops when the two disagree, so an image
# never claims a CUDA it was not compiled with.
ARG DEBIAN=bookworm

FROM debian:${DEBIAN} AS build
ARG GPU=OFF
ARG CUDA_VERSION=13.5.37
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
WORKDIR /src
COPY scripts/deps.sh scripts/deps.sh
# deps.sh reads the Go version the test control plane's modules need (the images do not use
# Go; bookworm's is older, so deps.sh fetches a newer one, as on any fresh machine).
COPY tests/cluster/modules/ tests/cluster/modules/
RUN grep -qx "CUDA_VERSION=${CUDA_VERSION}" scripts/deps.sh \
      || { echo "scripts/deps.sh pins $(grep '^CUDA_VERSION=' scripts/deps.sh), not CUDA_VERSION=${CUDA_VERSION}" >&2; exit 1; } \
 && if [ "$GPU" = ON ]; then scripts/deps.sh --gpu-toolchain; else scripts/deps.sh; fi
COPY . .
# scripts/test.sh --ci's configure; only the installed programs are built.
RUN cmake -S . -B build -G Ninja -DMLSCALE_WERROR=ON -DMLSCALE_GPU=${GPU} \
      -DMLSCALE_BUILD_TESTS=OFF -DMLSCALE_BUILD_BENCHMARKS=OFF \
 && cmake --build build \
 && cmake --install build --prefix /opt/mlscale \
 && mkdir -p /opt/mlscale/lib \
 && if [ "$GPU" = ON ]; then \
      wheels=(/root/.cache/mlscale/cuda-"${CUDA_VERSION}"/lib/python3*/site-packages/nvidia); \
      cp -a "${wheels[0]}"/cu13/lib/libcudart.so.* "${wheels[0]}"/cu13/lib/libcublas*.so.* \
            "${wheels[0]}"/nccl/lib/libnccl.so.* /opt/mlscale/lib/; \
    fi

FROM debian:${DEBIAN}-slim AS operator
# Packages are named by their ABI (libboost-system1.74.0, libfmt9), not pinned to a Debian
# revision, which a point release replaces.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends libcpprest2.10 libyaml-cpp0.7 libspdlog1.10 libfmt9 \
      libboost-program-options1.74.0 libnlopt0 libssl3 ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /opt/mlscale/bin/mlscale-operator /usr/local/bin/mlscale-operator
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/mlscale-operator"]

FROM debian:${DEBIAN}-slim AS worker
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends libcpprest2.10 libyaml-cpp0.7 libspdlog1.10 libfmt9 \
      libboost-system1.74.0 libboost-program-options1.74.0 libopenmpi3 openmpi-bin libnlopt0 libnlopt-cxx0 \
      libsimdjson14 libgomp1 libdnnl2 zlib1g libssl3 openssh-server openssh-client ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --uid 65532 --user-group --home-dir /home/mlscale --create-home --shell /bin/bash mlscale
COPY --from=build /opt/mlscale /opt/mlscale
ENV PATH=/opt/mlscale/bin:${PATH} \
    LD_LIBRARY_PATH=/opt/mlscale/lib \
    MLSCALE_DATA_DIR=/opt/mlscale/share/mlscale/data
USER 65532:65532
WORKDIR /home/mlscale
ENTRYPOINT ["mlscale-launch"]
