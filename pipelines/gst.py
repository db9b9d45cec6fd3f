"""GStreamer decode pipeline descriptions per platform, and a one-time GStreamer init.

A pipeline is a description of elements: hardware decode is a different element, not a
different program (the DeepStream idea). Every description ends in the same appsink, from
which the caller pulls raw YUV (I420 or NV12) and converts to BGR with cv2 itself: GStreamer's
`videoconvert` to BGR costs about twice as much per frame (see docs/platform-notes).
"""

from __future__ import annotations

import threading
from typing import Any

PLATFORMS: tuple[str, ...] = ("cpu", "vaapi", "vaapi-legacy", "jetson")

APPSINK = "appsink name=sink sync=false max-buffers=2 drop=true emit-signals=false"
# Compressed access units for the clip buffer, handed out by the new-sample signal on the
# streaming thread (never dropped: a clip with a hole would not decode past it).
PACKET_BRANCH = (
    "t. ! queue ! appsink name=packets sync=false emit-signals=true"
)

# Raw format each platform hands to the appsink. NV12 is what VA-API decoders produce natively;
# cv2 converts NV12 as cheaply as I420, so there is no point in a GPU->CPU format shuffle.
OUTPUT_FORMAT: dict[str, str] = {"cpu": "I420", "vaapi": "NV12", "vaapi-legacy": "NV12", "jetson": "I420"}

_init_lock = threading.Lock()
_initialised = False


def gst_init() -> tuple[Any, Any]:
    """Import and initialise GStreamer once per process; returns the (Gst, GstApp) modules.

    GstApp must be imported explicitly, or appsink has no `try_pull_sample` from Python.
    """
    global _initialised
    import gi

    gi.require_version("Gst", "1.0")
    gi.require_version("GstApp", "1.0")
    from gi.repository import Gst, GstApp

    with _init_lock:
        if not _initialised:
            Gst.init(None)
            _initialised = True
    return Gst, GstApp


def _quote(value: str) -> str:
    """Quote a property value for gst_parse_launch (URLs may hold '!', spaces or '=')."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def h264_decode_chain(platform: str = "cpu", decoder_threads: int | None = None) -> str:
    """Elements from parsed H.264 to raw video in system memory (without source or sink)."""
    if platform == "cpu":
        # max-threads=1 suits an edge box with one decode thread per camera; None = libav's default.
        threads = f" max-threads={int(decoder_threads)}" if decoder_threads else ""
        # videoconvert is passthrough for the usual 4:2:0 8-bit stream; it only acts (and only
        # then costs) when a camera sends another chroma format, so negotiation never fails.
        return f"avdec_h264{threads} ! videoconvert ! video/x-raw,format=I420"
    if platform == "vaapi":
        # vah264dec (gst-plugins-bad 'va', GStreamer >= 1.20) downloads NV12 to system memory itself.
        return "vah264dec ! video/x-raw,format=NV12"
    if platform == "vaapi-legacy":
        return "vaapih264dec ! video/x-raw,format=NV12"
    if platform == "jetson":
        # nvv4l2decoder writes NVMM buffers; nvvidconv copies them out to system-memory I420.
        return "nvv4l2decoder ! nvvidconv ! video/x-raw,format=I420"
    raise ValueError(f"unknown decode platform {platform!r}; expected one of {', '.join(PLATFORMS)}")


def rtsp_decode_pipeline(
    url: str,
    platform: str = "cpu",
    latency_ms: int = 200,
    tcp: bool = True,
    decoder_threads: int | None = None,
    packets: bool = False,
) -> str:
    """rtspsrc -> depay -> parse (named 'parse') -> platform decoder -> raw I420/NV12 -> appsink 'sink'.

    packets=True splits the parsed stream with a tee (a queue, i.e. a thread, per branch): the
    decode branch as above, never dropping compressed data, and an appsink 'packets' that
    receives byte-stream access units with SPS/PPS in front of every keyframe (config-interval=-1),
    each one a self-contained start for a clip.

    tcp=True asks for RTP interleaved over the RTSP connection: no UDP port ranges to open on the
    edge firewall and no packet loss on a busy LAN (at the cost of head-of-line delay).
    """
    protocols = "tcp" if tcp else "udp"
    src = f"rtspsrc location={_quote(url)} latency={int(latency_ms)} protocols={protocols}"
    # The parser is named so a source can hold back frames until the first keyframe (a client
    # joining a live stream mid-GOP would otherwise decode grey smears from missing references).
    decode = f"{h264_decode_chain(platform, decoder_threads)} ! {APPSINK}"
    if not packets:
        return f"{src} ! rtph264depay ! h264parse name=parse ! {decode}"
    return (
        f"{src} ! rtph264depay ! h264parse name=parse config-interval=-1"
        " ! video/x-h264,stream-format=byte-stream,alignment=au ! tee name=t"
        f" t. ! queue ! {decode} {PACKET_BRANCH}"
    )
