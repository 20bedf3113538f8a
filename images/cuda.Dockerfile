# kaic step image, CUDA (NVIDIA GPUs; NCCL for distributed training). Build from the repository root:
#   docker build -f images/cuda.Dockerfile -t ghcr.io/kaic-dev/kaic-cuda:0.1.0 .
# The base carries the CUDA runtime; PyPI's torch 2.13.0 wheel for Linux is the CUDA build and brings
# its own NCCL and cuDNN. The node needs an NVIDIA driver that supports the CUDA version of the base.
ARG CUDA_IMAGE=nvidia/cuda:12.9.1-cudnn-runtime-ubuntu24.04

FROM ${CUDA_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3.12 python3.12-venv \
 && rm -rf /var/lib/apt/lists/*
RUN python3.12 -m venv /opt/kaic
WORKDIR /src
RUN /opt/kaic/bin/pip install torch==2.13.0
COPY requirements.lock pyproject.toml README.md ./
COPY kaic ./kaic
COPY steps ./steps
COPY pipelines ./pipelines
COPY datasets ./datasets
# kaic and its pinned dependencies (requirements.lock: the versions the tests ran with). No TensorFlow here:
# the train step's TF variant is skipped with that reason in this image (it runs in the CPU image).
RUN /opt/kaic/bin/pip install -c requirements.lock . \
 && cp -r datasets /opt/kaic/datasets

FROM ${CUDA_IMAGE}
LABEL org.opencontainers.image.title="kaic-cuda" \
      org.opencontainers.image.description="Kubernetes AI Conformance step image (CUDA)" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV DEBIAN_FRONTEND=noninteractive
# Runtime only: the interpreter, no compilers or headers.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3.12 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --gid 10001 kaic \
 && useradd --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin kaic
COPY --from=build /opt/kaic /opt/kaic
ENV PATH=/opt/kaic/bin:$PATH \
    KAIC_HOME=/tmp/kaic \
    KAIC_DATASETS=/opt/kaic/datasets \
    PYTHONUNBUFFERED=1 \
    NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility
USER 10001:10001
WORKDIR /tmp
ENTRYPOINT ["kaic"]
CMD ["--help"]
