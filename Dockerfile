# The mlscale image: the trainer (mlscale-train), the in-pod launcher (mlscale-launch), the
# model server (mlscale-serve, for InferenceService pods: `mlscale-serve --model-repository
# /mnt/models`, port 8080) and the CLI (mlscale), on Debian bookworm, running as a non-root user.
#
#   docker build -t mlscale/mlscale:dev .                      # CPU backend
#   docker build --build-arg GPU=ON -t mlscale/mlscale:dev-gpu .  # + cuBLAS/NCCL backend
#
# Worker pods run `mlscale-launch` (rendezvous mode by default); MPI-mode workers also run
# sshd, which is why openssh is in the image.
ARG DEBIAN=bookworm

FROM debian:${DEBIAN} AS build
ARG GPU=OFF
WORKDIR /src
COPY scripts/deps.sh scripts/deps.sh
RUN scripts/deps.sh $([ "$GPU" = ON ] && echo --gpu-toolchain)
COPY . .
RUN cmake -S . -B /build -G Ninja -DCMAKE_BUILD_TYPE=Release -DMLSCALE_BUILD_TESTS=OFF \
      -DMLSCALE_BUILD_BENCHMARKS=OFF -DMLSCALE_GPU=${GPU} \
 && cmake --build /build \
 && cmake --install /build --prefix /opt/mlscale \
 && if [ "$GPU" = ON ]; then \
      cp -a /root/.cache/mlscale/cuda-*/lib/python3*/site-packages/nvidia/cu13/lib/libcudart.so.* \
            /root/.cache/mlscale/cuda-*/lib/python3*/site-packages/nvidia/cu13/lib/libcublas*.so.* \
            /root/.cache/mlscale/cuda-*/lib/python3*/site-packages/nvidia/nccl/lib/libnccl.so.* \
            /opt/mlscale/lib/; \
    fi

FROM debian:${DEBIAN}-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends libcpprest2.10 libyaml-cpp0.7 libspdlog1.10 libfmt9 \
      libboost-system1.74.0 libboost-program-options1.74.0 libopenmpi3 openmpi-bin libnlopt-cxx0 libsimdjson14 \
      libgomp1 libssl3 openssh-server openssh-client ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --uid 65532 --user-group --home-dir /home/mlscale --create-home --shell /bin/bash mlscale
COPY --from=build /opt/mlscale /opt/mlscale
ENV PATH=/opt/mlscale/bin:${PATH} \
    LD_LIBRARY_PATH=/opt/mlscale/lib \
    MLSCALE_DATA_DIR=/opt/mlscale/share/mlscale/data
USER 65532:65532
WORKDIR /home/mlscale
ENTRYPOINT ["mlscale-launch"]
