# roiclass for GPU hosts.
# onnxruntime-gpu 1.31 is built against CUDA 13.0 and cuDNN 9: the base image matches.
#   docker build -t roiclass .
#   docker run --gpus all -p 50051:50051 -p 8002:8002 roiclass
ARG CUDA_IMAGE=nvidia/cuda:13.0.0-cudnn-runtime-ubuntu24.04

FROM ${CUDA_IMAGE} AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-dev python3-venv gcc g++ \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml setup.py README.md ./
COPY protos protos
COPY server server
COPY client client
COPY geo geo
COPY ext ext
COPY models models
RUN python3 -m venv /opt/build-venv \
    && /opt/build-venv/bin/pip install --no-cache-dir build \
    && /opt/build-venv/bin/python -m build --wheel --outdir /wheels .

FROM ${CUDA_IMAGE}
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv libgomp1 \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /wheels /wheels
# The http extra (aiohttp): `--http-port` (the REST API; deploy/kserve serves on it).
RUN python3 -m venv /opt/roiclass \
    && /opt/roiclass/bin/pip install --no-cache-dir "$(echo /wheels/roiclass-*.whl)[http]" "onnxruntime-gpu==1.31.1" \
    && rm -rf /wheels
RUN useradd --create-home --uid 10001 roiclass
USER 10001
ENV PATH=/opt/roiclass/bin:$PATH
EXPOSE 50051 8002
HEALTHCHECK --interval=10s --timeout=5s --start-period=120s --retries=3 \
    CMD ["roiclass", "health", "--server", "127.0.0.1:50051", "--timeout", "4"]
# The built-in EfficientNet-Lite0 model is inside the wheel; mount a model
# repository and add `--models /models` to serve your own. /metrics defaults to
# loopback; in the container it must face the published port. TLS and tokens:
# README "Security" (add --tls-cert/--tls-key, --auth-tokens to CMD).
ENTRYPOINT ["roiclass", "serve", "--host", "0.0.0.0", "--port", "50051", "--metrics-port", "8002", "--metrics-host", "0.0.0.0"]
CMD ["--devices", "auto", "--instances-per-device", "2"]
