# syntax=docker/dockerfile:1
# One image for all of Weft: the operator, the admission webhooks, the proxy and
# proxy-init. It runs `python -m MODULE`: the proxy by default (what injected proxies
# run), `weft_operator` or `weft_webhooks` as their Deployments' args, and
# `weft_proxy.init` as the injected init container's command.
#
#   docker build -t ghcr.io/weft-dev/weft:dev .
#
# Not built on Weft's own build machines (no container engine there): see README.md.

# --- build: the weft wheel and the wheels of its dependencies ---------------------------
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY api api
COPY operator operator
COPY dataplane dataplane
COPY webhooks webhooks
COPY cli cli
COPY localcluster localcluster
# cli/weft_cli/crds links here: the wheel carries the CRDs for `weft install`.
COPY crds crds
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

# --- runtime ------------------------------------------------------------------------------
FROM python:3.11-slim
# iptables for proxy-init, which programs the pod's network namespace as root.
RUN apt-get update \
    && apt-get install -y --no-install-recommends iptables \
    && rm -rf /var/lib/apt/lists/*
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-cache-dir --no-index --find-links=/wheels weft
# Everything but proxy-init runs as this user. Its uid is the proxy's (weft_api.mesh
# PROXY_UID): proxy-init's rules let that uid's traffic out without redirecting it.
RUN useradd --uid 2102 --user-group --no-create-home --shell /usr/sbin/nologin weft
USER 2102:2102
ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
# inbound, outbound, admin (/metrics, /live, /ready), tap
EXPOSE 4143 4140 4191 4190
ENTRYPOINT ["python", "-m"]
CMD ["weft_proxy"]
