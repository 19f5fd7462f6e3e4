# syntax=docker/dockerfile:1
# Two images from one build. The proxy image (target `proxy`, weft_api.mesh.PROXY_IMAGE)
# holds the proxy's dependencies only, the base install of pyproject.toml: what every
# meshed pod pays for (docs/benchmarks.md, "Proxy weight"). It runs the injected proxy
# (`python -m weft_proxy`, its default) and proxy-init (`python -m weft_proxy.init`).
# The control-plane image (the default, last target; weft_api.mesh.CONTROL_PLANE_IMAGE)
# adds the `control-plane` extra: `weft_operator`, `weft_webhooks` and `weft_viz` as their
# Deployments' args, and the proxy too.
#
#   docker build --target proxy -t ghcr.io/weft-dev/weft-proxy:dev .
#   docker build -t ghcr.io/weft-dev/weft:dev .
#
# Not built on Weft's own build machines (no container engine there): see README.md.

# --- build: the weft wheel and the wheels of its dependencies ---------------------------
FROM python:3.11-slim AS build
# A C compiler for mypyc's output: setup.py compiles the proxy's request path into the
# wheel (docs/architecture.md, "Compiled modules"); the runtime needs no compiler.
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml setup.py README.md ./
COPY api api
COPY resources resources
COPY operator operator
COPY dataplane dataplane
COPY webhooks webhooks
COPY cli cli
COPY localcluster localcluster
# `weft viz install` runs the dashboard (`python -m weft_viz`) from the control-plane image.
COPY viz viz
# cli/weft_cli/crds links here: the wheel carries the CRDs for `weft install`.
COPY crds crds
RUN pip wheel --no-cache-dir --wheel-dir /wheels '.[control-plane]'

# --- runtime, common to both -----------------------------------------------------------
FROM python:3.11-slim AS runtime
# iptables for proxy-init, which programs the pod's network namespace as root.
RUN apt-get update \
    && apt-get install -y --no-install-recommends iptables \
    && rm -rf /var/lib/apt/lists/*
# Everything but proxy-init runs as this user. Its uid is the proxy's (weft_api.mesh
# PROXY_UID): proxy-init's rules let that uid's traffic out without redirecting it.
RUN useradd --uid 2102 --user-group --no-create-home --shell /usr/sbin/nologin weft
ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
# inbound, outbound, admin (/metrics, /live, /ready), tap
EXPOSE 4143 4140 4191 4190
ENTRYPOINT ["python", "-m"]
CMD ["weft_proxy"]

# --- the proxy: weft without extras (no grpcio, kopf, kubernetes-asyncio, pydantic) ----
FROM runtime AS proxy
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-cache-dir --no-index --find-links=/wheels weft
USER 2102:2102

# --- the control plane: operator, webhooks, CLI (and the proxy) -----------------------
FROM runtime AS control-plane
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-cache-dir --no-index --find-links=/wheels 'weft[control-plane]'
USER 2102:2102
