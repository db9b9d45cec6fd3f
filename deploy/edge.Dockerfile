# syntax=docker/dockerfile:1
# The edge node: decode (GStreamer), detect, track, rules, evidence, outbox, MQTT.
# Build from the repository root:   docker build -f deploy/edge.Dockerfile -t ioc-edge .
# Run (weights and videos are a volume at EDGE_DATA_DIR, never in the image; state in /var/lib/ioc-edge):
#   docker run -v /srv/ioc/data:/data:ro -v ioc-edge-state:/var/lib/ioc-edge \
#     -v /etc/ioc/node.yaml:/etc/ioc/node.yaml:ro ioc-edge run --config /etc/ioc/node.yaml

# --- build: the pinned lock into a venv (PyGObject compiles against GObject introspection) ---------
FROM python:3.11-slim-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends libgirepository1.0-dev libcairo2-dev pkg-config gcc \
 && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/ioc
ENV PATH=/opt/ioc/bin:$PATH
COPY requirements.txt /src/requirements.txt
RUN pip install --no-cache-dir -r /src/requirements.txt
COPY pyproject.toml README.md LICENSE NOTICE /src/
COPY contract /src/contract
COPY edge /src/edge
COPY pipelines /src/pipelines
COPY models /src/models
COPY central /src/central
COPY configs /src/configs
RUN pip install --no-cache-dir --no-deps /src && ioc-edge --version

# --- run: the GStreamer stack of scripts/setup.sh (runtime packages only) ---------------------------
FROM python:3.11-slim-bookworm
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad \
      gstreamer1.0-plugins-ugly gstreamer1.0-libav gstreamer1.0-rtsp \
      gir1.2-gstreamer-1.0 gir1.2-gst-plugins-base-1.0 gir1.2-gst-plugins-bad-1.0 gir1.2-gst-rtsp-server-1.0 \
      libgirepository-1.0-1 libcairo2 libcairo-gobject2 libgl1 libglib2.0-0 \
      fonts-dejavu-core \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --home-dir /var/lib/ioc-edge --shell /usr/sbin/nologin ioc \
 && mkdir -p /var/lib/ioc-edge /data && chown ioc:ioc /var/lib/ioc-edge
COPY --from=build /opt/ioc /opt/ioc
ENV PATH=/opt/ioc/bin:$PATH \
    EDGE_DATA_DIR=/data \
    EDGE_STATE_DIR=/var/lib/ioc-edge \
    EDGE_MODEL_CACHE=/var/lib/ioc-edge/models \
    PYTHONUNBUFFERED=1
RUN python -c "import gi; gi.require_version('Gst', '1.0'); from gi.repository import Gst; import cv2, onnxruntime, edge.__main__"
VOLUME ["/data", "/var/lib/ioc-edge"]
USER ioc
WORKDIR /var/lib/ioc-edge
ENTRYPOINT ["ioc-edge"]
CMD ["--help"]
