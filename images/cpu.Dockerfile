# kaic step image, CPU. Build from the repository root:
#   docker build -f images/cpu.Dockerfile -t ghcr.io/kaic-dev/kaic:0.1.0 .
# Every step of the conformance workflow runs `kaic step NAME ...` in this image.
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/kaic
WORKDIR /src
# The CPU build of torch first (from PyTorch's CPU index), on its own layer.
RUN /opt/kaic/bin/pip install --index-url https://download.pytorch.org/whl/cpu torch==2.13.0
COPY requirements.lock pyproject.toml README.md ./
COPY kaic ./kaic
COPY steps ./steps
COPY pipelines ./pipelines
COPY datasets ./datasets
# kaic and its pinned dependencies (requirements.lock: the versions the tests ran with), TensorFlow included.
RUN /opt/kaic/bin/pip install -c requirements.lock ".[tf]" \
 && cp -r datasets /opt/kaic/datasets

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="kaic" \
      org.opencontainers.image.description="Kubernetes AI Conformance step image (CPU)" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN groupadd --gid 10001 kaic && useradd --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin kaic
COPY --from=build /opt/kaic /opt/kaic
ENV PATH=/opt/kaic/bin:$PATH \
    KAIC_HOME=/tmp/kaic \
    KAIC_DATASETS=/opt/kaic/datasets \
    PYTHONUNBUFFERED=1
USER 10001:10001
WORKDIR /tmp
ENTRYPOINT ["kaic"]
CMD ["--help"]
