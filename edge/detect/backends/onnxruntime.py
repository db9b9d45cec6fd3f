"""ONNX Runtime backend: execution providers in the config's order (default TensorRT, CUDA,
OpenVINO, CPU), those this onnxruntime build lacks skipped; one intra-op thread by default."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort

from edge.detect.base import BackendSpec, DetectorError, register_backend

# The default preference; a config's `detector.providers` replaces it. Each is used only if this
# onnxruntime build has it (`onnxruntime-gpu` for TensorRT/CUDA, `onnxruntime-openvino` for OpenVINO).
PROVIDER_ORDER = (
    "TensorrtExecutionProvider",
    "CUDAExecutionProvider",
    "OpenVINOExecutionProvider",
    "CPUExecutionProvider",
)
# Every provider name onnxruntime knows (built into this package or not): a config naming another is a typo.
KNOWN_PROVIDERS = tuple(ort.get_all_providers())


def _short(provider: str) -> str:
    return provider.removesuffix("ExecutionProvider")


def choose_providers(wanted: list[str] | None, available: list[str] | None = None) -> tuple[list[str], str]:
    """The execution providers to ask ONNX Runtime for, best first, and one line saying why.

    `wanted` is the config's order (default PROVIDER_ORDER: TensorRT, CUDA, OpenVINO, CPU); those this
    onnxruntime build does not have are dropped. The first one left runs the model; the others stay
    in the list as ORT's fallbacks for nodes the first cannot run.
    """
    available = list(ort.get_available_providers() if available is None else available)
    order = list(wanted or PROVIDER_ORDER)
    picked = [p for p in order if p in available]
    if not picked:
        raise DetectorError(
            f"none of the execution providers {order} is available in this onnxruntime build (have {available})"
        )
    missing = [p for p in order if p not in available]
    why = f"{_short(picked[0])} (order {' > '.join(_short(p) for p in order)}"
    if missing:
        why += f"; not in this onnxruntime build: {', '.join(_short(p) for p in missing)}"
    if len(picked) > 1:
        why += f"; fallback for unsupported nodes: {', '.join(_short(p) for p in picked[1:])}"
    return picked, why + f"; available: {', '.join(_short(p) for p in available)})"


class OrtEngine:
    def __init__(
        self, model_path: Path, *, threads: int = 1, providers: list[str] | None = None, precision: str = "auto"
    ) -> None:
        if precision not in ("auto", "fp32"):
            # The model file fixes ORT's arithmetic (an INT8 variant is its own file): no switch here.
            raise DetectorError(
                f"detector.precision {precision!r}: onnxruntime runs the model's own precision (auto/fp32); "
                "bf16 needs backend openvino"
            )
        opts = ort.SessionOptions()
        # One thread per inference worker uses a small box's cores best (platform notes).
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        picked, why = choose_providers(providers)
        self.session = ort.InferenceSession(str(model_path), sess_options=opts, providers=picked)
        got = self.session.get_providers()
        if got[0] != picked[0]:  # e.g. CUDA in the build but no usable GPU/driver: ORT fell back silently
            why = f"{_short(got[0])}: {_short(picked[0])} failed to start (see onnxruntime's warning); wanted {why}"
        self.why = why
        self.device = got[0]
        self.metadata = dict(self.session.get_modelmeta().custom_metadata_map)
        inp = self.session.get_inputs()[0]
        self.input_name = inp.name
        self.input_shape = tuple(inp.shape)

    def run(self, blob: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: blob})[0]


register_backend(
    BackendSpec(
        key="onnxruntime",
        open=OrtEngine,
        description="ONNX Runtime with execution providers (TensorRT, CUDA, OpenVINO, CPU)",
        module=__name__,
    )
)
