# syntax=docker/dockerfile:1
# Central: ingester, field reports, web console (no GStreamer: the lock without PyGObject).
# Build from the repository root:   docker build -f deploy/central.Dockerfile -t ioc-central .
# compose.yaml beside this file runs it with Mosquitto and PostgreSQL.
FROM python:3.11-slim-bookworm
# libgl1/libglib2.0-0: OpenCV (the public images' blurring runs the head and plate models);
# fonts-dejavu-core: the PDF record's Vietnamese text (central/record_pdf.py).
RUN apt-get update \
 && apt-get install -y --no-install-recommends libgl1 libglib2.0-0 fonts-dejavu-core \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --home-dir /var/lib/ioc-central --shell /usr/sbin/nologin ioc \
 && mkdir -p /var/lib/ioc-central /data && chown ioc:ioc /var/lib/ioc-central
RUN python -m venv /opt/ioc
ENV PATH=/opt/ioc/bin:$PATH
COPY requirements.txt /src/requirements.txt
RUN grep -v '^PyGObject' /src/requirements.txt > /src/requirements-central.txt \
 && pip install --no-cache-dir -r /src/requirements-central.txt
COPY pyproject.toml README.md LICENSE NOTICE /src/
COPY contract /src/contract
COPY edge /src/edge
COPY pipelines /src/pipelines
COPY models /src/models
COPY central /src/central
COPY configs /src/configs
RUN pip install --no-cache-dir --no-deps /src && rm -rf /src && ioc-central --version
# Weights (head/plate models for blurring) come from the data volume, never from the image.
ENV EDGE_DATA_DIR=/data \
    CENTRAL_STATE_DIR=/var/lib/ioc-central \
    PYTHONUNBUFFERED=1
VOLUME ["/data", "/var/lib/ioc-central"]
EXPOSE 8080
USER ioc
WORKDIR /var/lib/ioc-central
ENTRYPOINT ["ioc-central"]
CMD ["--config", "/etc/ioc/central.yaml", "run"]
