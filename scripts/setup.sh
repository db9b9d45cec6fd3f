#!/usr/bin/env bash
# Idempotent set-up for a fresh Debian/Ubuntu machine: system packages (as root), then .venv.
# Re-running it only does what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

# The video stack (GStreamer + its Python bindings' build deps), the broker, ffmpeg tools,
# the GL/GLib libraries opencv-python links against, and PostgreSQL for the integration tests.
# The broker-cluster engines (RabbitMQ, the recommended one, and NATS) follow below.
APT_PACKAGES=(
  ffmpeg gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good
  gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly gstreamer1.0-libav gstreamer1.0-rtsp
  gir1.2-gstreamer-1.0 gir1.2-gst-plugins-base-1.0 gir1.2-gst-plugins-bad-1.0
  gir1.2-gst-rtsp-server-1.0 libgirepository1.0-dev libcairo2-dev pkg-config gcc
  mosquitto mosquitto-clients openssl libgl1 libglib2.0-0 postgresql postgresql-client
  chromium chromium-driver fonts-dejavu-core
)
# Broker clusters (docs/deploy.md): rabbitmq-server (3.10 on Debian 12: its MQTT plugin feeds
# replicated quorum queues; tests/faults/test_rabbitmq_cluster.py starts three nodes) and
# nats-server. Installed like the rest; where the package cannot be had, setup says so and goes on:
# only the broker-cluster tests need them, and they fail naming the missing server.
CLUSTER_PACKAGES=(rabbitmq-server nats-server)
if ! python3 -c "import ensurepip, venv" >/dev/null 2>&1; then APT_PACKAGES+=(python3-venv python3-dev); fi

missing=()
if command -v dpkg-query >/dev/null 2>&1; then
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
else
  echo "setup: this is not a Debian/Ubuntu system (no dpkg); install these by hand: ${APT_PACKAGES[*]}" >&2
fi
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "setup: missing Debian packages (run as root, or: sudo apt-get install ${missing[*]})" >&2
    exit 1
  fi
fi
if command -v dpkg-query >/dev/null 2>&1; then
  for p in "${CLUSTER_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" && continue
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
      echo "setup: $p is not installed and this is not root with apt-get: the broker-cluster tests need it (sudo apt-get install $p)" >&2
      continue
    fi
    [ -n "${apt_updated:-}" ] || { apt-get update -qq; apt_updated=1; }
    if ! apt-cache show "$p" >/dev/null 2>&1; then
      echo "setup: cannot install $p: no such package in this system's apt sources; the broker-cluster tests will fail until it is installed (docs/deploy.md)" >&2
      continue
    fi
    echo "setup: installing $p"
    # The package starts its own system service (rabbitmq-server: AMQP on 5672); the tests use nodes of their own.
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$p" >/dev/null; then
      echo "setup: apt-get install $p failed (see above); the broker-cluster tests will fail until it is installed" >&2
    fi
  done
  if dpkg-query -W -f='${Status}' rabbitmq-server 2>/dev/null | grep -q "install ok installed" \
     && [ ! -x /usr/lib/rabbitmq/bin/rabbitmq-server ]; then
    echo "setup: rabbitmq-server is installed but /usr/lib/rabbitmq/bin/rabbitmq-server is missing; set RABBITMQ_BIN for the tests" >&2
  fi
fi

# nginx in front of several console processes (`ioc-central web --workers N`, deploy/nginx/) and
# its test. Any of Debian's nginx packages gives the binary (nginx, nginx-light, nginx-full); the
# package's own service is not needed (the test starts nginx with its own config and prefix).
if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing nginx"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends nginx >/dev/null || {
      echo "setup: could not install nginx (apt-get install nginx failed); tests/integration/test_central_nginx.py will fail" >&2
      exit 1
    }
  else
    echo "setup: nginx is missing and this is not root: sudo apt-get install nginx" \
      "(tests/integration/test_central_nginx.py fails without it)" >&2
    exit 1
  fi
fi

PY=${PYTHON:-python3}
if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "setup: Python >= 3.11 is required (found $("$PY" --version 2>&1))" >&2
  exit 1
fi
[ -x .venv/bin/python ] || "$PY" -m venv .venv
# Reinstall only when the pinned requirements or the package metadata change. The pinned lock
# (requirements*.txt) is installed first; then the project itself, editable and without
# dependencies (pyproject.toml's ranges are for other installs), which puts the `ioc-edge` and
# `ioc-central` commands into .venv/bin and makes the packages importable without PYTHONPATH.
stamp=.venv/.requirements.sha256
want=$(cat requirements.txt requirements-dev.txt pyproject.toml | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ] || [ ! -x .venv/bin/ioc-edge ]; then
  echo "setup: installing Python requirements and the project into .venv"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -r requirements-dev.txt
  .venv/bin/python -m pip install -q --no-deps -e .
  echo "$want" > "$stamp"
fi
venv_py="$PWD/.venv/bin/python"
# From / on purpose: the packages must import as installed, not from the working directory.
(cd / && "$venv_py" -c "import gi; gi.require_version('Gst', '1.0'); gi.require_version('GstRtspServer', '1.0'); from gi.repository import Gst, GstRtspServer; import cv2, onnxruntime, paho.mqtt, edge.__main__, central.__main__") \
  || { echo "setup: the .venv cannot import the video stack or the project; see the messages above" >&2; exit 1; }
echo "setup: ok"
