"""Which detector engine (backend + precision) a node runs when its config says `backend: auto`.

The verdicts come from the model-agreement harness (models/backends.yaml, written by
`benchmarks/model_agreement.py --backends ... --write`): for a model file (by sha256), each engine's
events lost against ONNX Runtime FP32 on the same set, and its ms per frame over the reference's in
the same run. `choose` is pure: given those verdicts and what this machine has, it takes the fastest
engine that is kept on a firm set (at least MIN_EVENTS reference events, at most 2% lost) and that
the machine can run, else ONNX Runtime as it always ran, and says why in one line.
`capabilities()` and `verdicts_for()` are the two small I/O steps around it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MIN_EVENTS = 100  # below this, "0 lost" bounds the loss rate too loosely to switch engines (issue 20)
FALLBACK = ("onnxruntime", "auto")
GPU_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider")


@dataclass(frozen=True)
class Capabilities:
    """What this machine can run: the openvino package, BF16 / INT8 matrix units (AMX, AVX-512 BF16,
    VNNI), the INT8 IRs built for this model file, and GPU providers in this onnxruntime build."""

    openvino: bool = False
    bf16: bool = False
    int8: bool = False
    int8_built: frozenset[str] = frozenset()
    gpu_providers: tuple[str, ...] = ()


@dataclass(frozen=True)
class Verdict:
    engine: str  # backend:precision, e.g. openvino:bf16
    kept: bool
    fp32_events: int
    events_lost: int
    speed: float | None  # ms per frame / the reference's, same run (lower is faster)
    reference: bool = False

    @property
    def backend(self) -> str:
        return self.engine.partition(":")[0]

    @property
    def precision(self) -> str:
        return self.engine.partition(":")[2] or "auto"


@dataclass(frozen=True)
class Choice:
    backend: str
    precision: str
    why: str
    rejected: tuple[str, ...] = field(default_factory=tuple)  # engine: reason, for the log


def unsupported(v: Verdict, caps: Capabilities) -> str | None:
    """Why this machine cannot run the engine (None: it can)."""
    if v.backend == "openvino":
        if not caps.openvino:
            return "openvino not installed (pip install 'ioc-edge[openvino]')"
        if v.precision == "bf16" and not caps.bf16:
            return "the CPU has no BF16 units (AMX / AVX-512 BF16)"
        if v.precision.startswith("int8"):
            if not caps.int8:
                return "the CPU has no INT8 dot-product units (VNNI / AMX-INT8)"
            if v.precision not in caps.int8_built:
                return "its INT8 IR is not built here (python -m models build-openvino-int8)"
    return None


def choose(
    verdicts: Iterable[Verdict] | None,
    caps: Capabilities,
    *,
    precision: str = "auto",
    min_events: int = MIN_EVENTS,
    model: str = "the model",
) -> Choice:
    """The engine `backend: auto` runs. `precision` other than auto keeps only engines of it."""
    if caps.gpu_providers:
        # The CPU verdicts say nothing about a GPU; ONNX Runtime picks TensorRT > CUDA itself.
        short = ", ".join(p.removesuffix("ExecutionProvider") for p in caps.gpu_providers)
        return Choice("onnxruntime", precision, f"onnxruntime: this onnxruntime build has GPU providers ({short})")
    if verdicts is None:
        return Choice(*FALLBACK, f"onnxruntime: no engine agreement measured for {model} (models/backends.yaml)")
    rejected: list[str] = []
    candidates: list[tuple[float, Verdict]] = []
    for v in verdicts:
        if v.reference:
            continue
        if precision != "auto" and v.precision != precision:
            continue
        if v.fp32_events == 0:
            rejected.append(f"{v.engine}: agreement not measured")
        elif not v.kept:
            rejected.append(f"{v.engine}: rejected (lost {v.events_lost} of {v.fp32_events} events)")
        elif v.fp32_events < min_events:
            rejected.append(f"{v.engine}: not firm ({v.fp32_events} reference events < {min_events})")
        elif v.speed is None or v.speed >= 1.0:
            rejected.append(f"{v.engine}: not faster than the reference")
        elif (reason := unsupported(v, caps)) is not None:
            rejected.append(f"{v.engine}: {reason}")
        else:
            candidates.append((v.speed, v))
    if not candidates and precision not in ("auto", "fp32"):
        # Only openvino runs bf16 / int8: let it open (and say what is missing) rather than ignore the pin.
        return Choice("openvino", precision, f"openvino:{precision}: pinned by detector.precision", tuple(rejected))
    if not candidates:
        why = "onnxruntime: no kept engine faster than it runs here"
        return Choice(*FALLBACK, why + (f" ({'; '.join(rejected)})" if rejected else ""), tuple(rejected))
    speed, best = min(candidates, key=lambda c: c[0])
    why = (
        f"{best.engine}: fastest kept engine this machine runs ({1 / speed:.2f}x ONNX Runtime FP32 in the same "
        f"run; lost {best.events_lost} of {best.fp32_events} events)"
    )
    if rejected:
        why += f"; passed over: {'; '.join(rejected)}"
    return Choice(best.backend, best.precision, why, tuple(rejected))


# ------------------------------------------------------------------------------------ the I/O around it


def parse_verdicts(data: Mapping[str, Any] | None, sha256: str) -> list[Verdict] | None:
    """The verdicts models/backends.yaml holds for the model file with this sha256 (None: none)."""
    for entry in ((data or {}).get("models") or {}).values():
        if entry.get("sha256") == sha256:
            return [
                Verdict(
                    engine=name,
                    kept=bool(e.get("kept")),
                    fp32_events=int(e.get("fp32_events") or 0),
                    events_lost=int(e.get("events_lost") or 0),
                    speed=e.get("speed"),
                    reference=bool(e.get("reference")),
                )
                for name, e in (entry.get("engines") or {}).items()
            ]
    return None


def verdicts_for(model_path: Path, path: Path | None = None) -> list[Verdict] | None:
    import yaml

    from contract.paths import file_sha256
    from models.agreement import BACKENDS_PATH

    path = path or BACKENDS_PATH
    if not path.is_file():
        return None
    return parse_verdicts(yaml.safe_load(path.read_text(encoding="utf-8")), file_sha256(model_path))


def _cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="ascii", errors="replace")
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def capabilities(model_path: Path) -> Capabilities:
    """What this machine has, probed (openvino's CPU capabilities, /proc/cpuinfo, onnxruntime's providers)."""
    import onnxruntime as ort

    from edge.detect.backends import openvino as ovb

    gpu = tuple(p for p in GPU_PROVIDERS if p in ort.get_available_providers())
    if not ovb.available():
        return Capabilities(gpu_providers=gpu)
    flags = _cpu_flags()
    built = frozenset(v for v in ovb.INT8_VARIANTS if ovb.int8_ir_ready(model_path, v))
    int8 = bool(flags & {"avx512_vnni", "avx_vnni", "amx_int8"})
    return Capabilities(openvino=True, bf16=ovb.cpu_has_bf16(), int8=int8, int8_built=built, gpu_providers=gpu)


def choose_for(model_path: Path, precision: str = "auto") -> Choice:
    return choose(verdicts_for(model_path), capabilities(model_path), precision=precision, model=model_path.name)
