"""The formal record (issue 16, item 5): a stored report on a real SQLite central, with a real
annotated snapshot (the edge's own drawing on a real frame, stamp burnt in) and a real clip, as the
PDF route gives it. The PDF is rendered to PNG (pdfium) and checked as a reader would see it: one A4
page, the picture inside the page's margins whole (its aspect kept, the stamp strip intact), a QR
code that decodes to the clip's signed link, the header, plate and legal reference in the text, the
English version in English, and a long review history that still fits one page."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pypdfium2 as pdfium
import pytest
from fastapi.testclient import TestClient
from pypdf import PdfReader
from sqlalchemy import select

from central import evidence as evidence_files
from central.auth import create_user
from central.config import CentralConfig
from central.db import ReportRow, make_engine, make_session_factory, migrate, session_scope
from central.ingester import MessageProcessor
from central.web import create_app
from central.workflow import record
from contract.events import ViolationEvent, ViolationType
from contract.topics import event_topic, evidence_topic
from edge.data import data_dir
from edge.detections import TrackedObjects
from edge.evidence import annotated_snapshot
from edge.rules.base import Offender, Violation
from tests.conftest import CONSOLE_PASSWORD
from tests.services import make_event

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

T0 = datetime(2026, 11, 21, 7, 3, 5, tzinfo=UTC)
DPI = 150
MM = DPI / 25.4  # pixels per millimetre at DPI
PLATE = "29-B1 123.45"
FRAME = "vn_intersection_redlight_day_1113.jpg"
CLIP = "vn_motorbike_plate_handheld_61-B2_267.15.mp4"


class Center:
    def __init__(self, tmp_path: Path) -> None:
        url = f"sqlite:///{tmp_path / 'central.db'}"
        migrate(url)
        self.cfg = CentralConfig.model_validate(
            {"database_url": url, "evidence_dir": str(tmp_path / "ev"), "web": {"public_url": "http://c.test"}}
        )
        self.engine = make_engine(url)
        self.sessions = make_session_factory(self.engine)
        with session_scope(self.sessions) as s:
            create_user(s, "op", CONSOLE_PASSWORD, "operator", [])
        self.processor = MessageProcessor(
            self.sessions,
            dialect_name=self.engine.dialect.name,
            evidence_dir=self.cfg.evidence_dir,
            topic_prefix="ioc",
            config=self.cfg,
        )
        self.app = create_app(self.cfg, engine=self.engine)

    def evidence(self, data: bytes) -> str:
        sha = evidence_files.sha256_hex(data)
        assert self.processor.process(evidence_topic("ioc", "n", "c", sha), data).kind == "evidence_stored"
        return sha

    def event(self, event: ViolationEvent) -> int:
        out = self.processor.process(
            event_topic("ioc", event.node, event.camera, event.type.value), event.to_json().encode()
        )
        assert out.kind == "stored", out
        return out.report_id or 0

    def client(self) -> TestClient:
        c = TestClient(self.app)
        form = c.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
        assert token
        r = c.post(
            "/login",
            data={"username": "op", "password": CONSOLE_PASSWORD, "csrf_token": token.group(1)},
            follow_redirects=False,
        )
        assert r.status_code == 303
        c.headers["X-CSRF-Token"] = c.get("/api/me").json()["csrf"]
        return c


@pytest.fixture
def center(tmp_path: Path) -> Any:
    c = Center(tmp_path)
    yield c
    c.engine.dispose()


OFFENDER_BOX = (600.0, 380.0, 720.0, 560.0)


def _snapshot(camera: str = "cam-hue-01") -> tuple[bytes, np.ndarray]:
    """The edge's annotated snapshot of a real red-light frame: offender boxed, stamp burnt in."""
    frame = cv2.imread(str(data_dir() / "images" / FRAME))
    assert frame is not None
    h, w = frame.shape[:2]
    box = (w * 0.45, h * 0.5, w * 0.55, h * 0.75)
    violation = Violation(
        type=ViolationType("red_light"),
        started_at=0.0,
        ended_at=1.0,
        confidence=0.9,
        offenders=(Offender(track_id=5, class_name="motorcycle", box=box, confidence=0.88),),
    )
    empty = TrackedObjects(np.zeros((0, 4)), np.zeros(0), np.zeros(0, dtype=int), np.zeros(0, dtype=int))
    jpeg = annotated_snapshot(frame, violation, empty, camera, T0)
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    return jpeg, image


def _store_report(center: Center, *, composite: bytes | None = None, **event: Any) -> tuple[int, np.ndarray]:
    snap, snap_img = _snapshot()
    clip = (data_dir() / "videos" / CLIP).read_bytes()
    evidence = [
        {"kind": "snapshot", "media_type": "image/jpeg", "sha256": center.evidence(snap), "size": len(snap)},
        {"kind": "clip", "media_type": "video/mp4", "sha256": center.evidence(clip), "size": len(clip)},
    ]
    if composite is not None:
        evidence.insert(
            0,
            {
                "kind": "composite",
                "media_type": "image/jpeg",
                "sha256": center.evidence(composite),
                "size": len(composite),
            },
        )
    obj = {"class_name": "motorcycle", "track_id": 5, "box": OFFENDER_BOX, "confidence": 0.88, "plate": PLATE}
    stored = make_event(
        type="red_light",
        camera="cam-hue-01",
        objects=[obj],
        zone={"id": "stop-line-1", "kind": "stop_line"},
        details={"red_seconds": 3},
        evidence=evidence,
        started_at=T0,
        ended_at=T0 + timedelta(seconds=4),
        **event,
    )
    return center.event(stored), snap_img


def _render(pdf: bytes) -> np.ndarray:
    page = pdfium.PdfDocument(pdf)[0]
    return cv2.cvtColor(np.asarray(page.render(scale=DPI / 72).to_pil().convert("RGB")), cv2.COLOR_RGB2BGR)


def _picture_box(page: np.ndarray) -> tuple[int, int, int, int]:
    """The largest solid block of ink on the page: the picture (text and the QR code are smaller)."""
    ink = (cv2.cvtColor(page, cv2.COLOR_BGR2GRAY) < 245).astype(np.uint8)
    ink = cv2.morphologyEx(ink, cv2.MORPH_CLOSE, np.ones((3, 3), np.uint8))
    contours, _ = cv2.findContours(ink, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    x, y, w, h = cv2.boundingRect(max(contours, key=cv2.contourArea))
    return x, y, w, h


def _similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Normalised cross-correlation of two grey pictures of the same size."""
    a = cv2.cvtColor(a, cv2.COLOR_BGR2GRAY).astype(np.float32)
    b = cv2.cvtColor(b, cv2.COLOR_BGR2GRAY).astype(np.float32)
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).sum() / (np.sqrt((a * a).sum() * (b * b).sum()) + 1e-6))


def _check_page(pdf: bytes, picture: np.ndarray, tmp_path: Path, name: str) -> tuple[np.ndarray, str]:
    reader = PdfReader(io.BytesIO(pdf))
    assert len(reader.pages) == 1, "the record is one page"
    w_pt, h_pt = float(reader.pages[0].mediabox.width), float(reader.pages[0].mediabox.height)
    assert (round(w_pt / 72 * 25.4), round(h_pt / 72 * 25.4)) == (210, 297), "A4 portrait"
    page = _render(pdf)
    cv2.imwrite(str(tmp_path / f"{name}.png"), page)
    ph, pw = page.shape[:2]
    x, y, w, h = _picture_box(page)
    # Inside the page with its margins (10 mm at least on every side), and big enough to read.
    assert x >= 10 * MM and y >= 10 * MM and x + w <= pw - 10 * MM and y + h <= ph - 10 * MM, (x, y, w, h)
    # As large as the page allows: the body's full width, or the height left to it.
    assert w >= 170 * MM or h >= 80 * MM, f"the picture is {w / MM:.0f} x {h / MM:.0f} mm"
    # Its aspect kept: not stretched, not cropped.
    src_h, src_w = picture.shape[:2]
    assert w / h == pytest.approx(src_w / src_h, rel=0.03)
    # The whole picture is there, the burnt-in stamp strip at its bottom too: the rendered block
    # matches the stored picture scaled to it, and so does its bottom-left stamp strip alone.
    shown = page[y : y + h, x : x + w]
    scaled = cv2.resize(picture, (w, h), interpolation=cv2.INTER_AREA)
    assert _similarity(shown, scaled) > 0.9
    strip = slice(int(h * 0.93), h), slice(0, int(w * 0.6))
    assert _similarity(shown[strip], scaled[strip]) > 0.8, "the camera/time stamp is intact"
    text = reader.pages[0].extract_text()
    return page, text


def _qr_link(page: np.ndarray) -> str:
    """The text of the page's QR code. OpenCV's classic detector now and then locks onto a false
    finder pattern in the rest of a busy page (the picture, the printed times): then the ArUco-based
    detector, then each on the page at twice the size, read it. Still "" when there is no QR."""
    grey = cv2.cvtColor(page, cv2.COLOR_BGR2GRAY)
    for image in (grey, cv2.resize(grey, None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST)):
        for detector in (cv2.QRCodeDetector(), cv2.QRCodeDetectorAruco()):
            data, _, _ = detector.detectAndDecode(image)
            if data:
                return str(data)
    return ""


def test_one_page_record_in_vietnamese_with_snapshot_qr_and_legal_reference(center: Center, tmp_path: Path) -> None:
    rid, snap = _store_report(center)
    c = center.client()
    assert c.post(f"/api/reports/{rid}/confirm").status_code == 200
    view = c.get(f"/reports/{rid}.json").json()
    r = c.get(f"/reports/{rid}.pdf")
    assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
    page, text = _check_page(r.content, snap, tmp_path, "vi")
    flat = " ".join(text.split())
    for want in (
        "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM",
        "Độc lập - Tự do - Hạnh phúc",
        "PHIẾU GHI NHẬN HÀNH VI CÓ DẤU HIỆU VI PHẠM",
        "không phải quyết định xử phạt",
        f"Số: {rid}/2026",
        "Vượt đèn đỏ",
        PLATE,
        "Điểm c khoản 7 Điều 7",
        "Nghị định 168/2024/NĐ-CP",
        "Phường Vĩnh Ninh",
        "14:03:05 ngày 21/11/2026 (UTC+07:00)",  # local time, the configured zone
        "CÁN BỘ XÁC MINH",
        "Lịch sử xử lý",
        "xác nhận",
        view["agency"]["vi"].upper(),
    ):
        assert want in flat, (want, flat)
    assert "DISTRICT" not in flat.upper()
    # The QR code holds the clip's signed link (its token carries its issue time, so it is compared
    # by path), the same link is printed, and it opens the clip for someone with no session.
    clip_url = view["clip_url"]
    assert clip_url and clip_url.startswith("http://c.test/evidence/") and "?t=" in clip_url
    link = _qr_link(page)
    assert link.split("?")[0] == clip_url.split("?")[0] and "?t=" in link, (link, clip_url)
    assert link in "".join(text.split()), "the link is printed next to the code"
    clip = TestClient(center.app).get(link.removeprefix("http://c.test"))
    assert clip.status_code == 200 and clip.content == (data_dir() / "videos" / CLIP).read_bytes()


def test_the_composite_leads_when_the_report_has_one(center: Center, tmp_path: Path) -> None:
    """A three-moment composite (here made of three real frames side by side, the edge's layout)
    is the picture of the record, the snapshot is not."""
    frame = cv2.imread(str(data_dir() / "images" / FRAME))
    h, w = frame.shape[:2]
    panels = [cv2.resize(frame[:, int(w * a) : int(w * (a + 0.5))], (480, 360)) for a in (0.0, 0.25, 0.5)]
    strip = np.hstack(panels)
    cv2.rectangle(strip, (0, 330), (1440, 360), (30, 30, 30), -1)
    cv2.putText(
        strip,
        "cam-hue-01 2026-11-21 14:03:05 (UTC+7) red 3s",
        (6, 352),
        cv2.FONT_HERSHEY_SIMPLEX,
        0.7,
        (255, 255, 255),
        1,
        cv2.LINE_AA,
    )
    ok, buf = cv2.imencode(".jpg", strip, [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    rid, _ = _store_report(center, composite=buf.tobytes())
    r = center.client().get(f"/reports/{rid}.pdf")
    composite = cv2.imdecode(np.frombuffer(buf.tobytes(), np.uint8), cv2.IMREAD_COLOR)
    _, text = _check_page(r.content, composite, tmp_path, "composite")
    assert "Ảnh ghép diễn biến vi phạm" in text


def test_english_version_and_a_long_history_still_one_page(center: Center, tmp_path: Path) -> None:
    """English on request; a history of 40 entries and a 400-character address still make one page;
    a camera config that still names an abolished district keeps it out of the address."""
    address = "Ngõ 12 ngách 34 hẻm 56, " * 16 + "Lý Thường Kiệt"
    location = {"ward": "Phường Hàng Bài", "district": "Quận Hoàn Kiếm", "address": address}
    rid, snap = _store_report(center, location=location)
    c = center.client()
    with session_scope(center.sessions) as s:
        report = s.scalars(select(ReportRow).where(ReportRow.id == rid)).one()
        for i in range(40):  # an incident that has been handled for weeks
            record(
                s,
                report,
                actor="op",
                action="note",
                note=f"checked again on site, visit {i} " + "x" * 80,
                at=T0 + timedelta(hours=i),
            )
    r = c.get(f"/reports/{rid}.pdf", params={"lang": "en"})
    assert r.status_code == 200
    page, text = _check_page(r.content, snap, tmp_path, "en")
    flat = " ".join(text.split())
    for want in (
        "SOCIALIST REPUBLIC OF VIETNAM",
        "CAMERA RECORD OF A SUSPECTED VIOLATION",
        "not a penalty decision",
        "Running a red light",
        "Art. 7(7)(c)",
        PLATE,
        "REVIEWING OFFICER",
        "earlier entries not printed",
        "visit 39",  # the newest entry is printed
    ):
        assert want in flat, (want, flat)
    assert "PHIẾU GHI NHẬN" not in flat and "visit 0 " not in flat
    place = next(line for line in text.splitlines() if line.startswith("Place:"))
    assert "Ngõ 12" in place and "Quận Hoàn Kiếm" not in place, place
    assert "Phường Hàng Bài" in flat and "…" in flat  # the long address cut to its two lines
    assert _qr_link(page).startswith("http://c.test/evidence/")
    assert c.get(f"/reports/{rid}.pdf", params={"lang": "fr"}).status_code == 422


def test_unreadable_plate_says_so(center: Center, tmp_path: Path) -> None:
    snap, snap_img = _snapshot("cam-le-loi-01")  # make_event's camera
    sha = center.evidence(snap)
    event = make_event(
        type="red_light",
        objects=[{"class_name": "motorcycle", "track_id": 5, "box": OFFENDER_BOX, "confidence": 0.88}],
        evidence=[{"kind": "snapshot", "media_type": "image/jpeg", "sha256": sha, "size": len(snap)}],
        details={},
    )
    rid = center.event(event)
    r = center.client().get(f"/reports/{rid}.pdf")
    page, text = _check_page(r.content, snap_img, tmp_path, "noplate")
    assert "không đọc được" in text
    assert _qr_link(page).endswith(f"/reports/{rid}"), "no clip yet: the QR opens the report page"


def test_legal_reference_is_configured_per_type_and_old_files_still_load(tmp_path: Path) -> None:
    from central.reports import default_templates, load_templates

    assert default_templates().for_type("no_helmet").legal_reference is not None
    old = tmp_path / "old.yaml"  # a deployer's file from before the key existed
    old.write_text("illegal_stopping:\n  title: {vi: Đỗ xe sai chỗ, en: Bad parking}\n", encoding="utf-8")
    assert load_templates(old).for_type("illegal_stopping").title.vi == "Đỗ xe sai chỗ"
    assert load_templates(old).for_type("illegal_stopping").legal_reference is None
    own = tmp_path / "own.yaml"
    own.write_text(
        "littering:\n  legal_reference: {vi: Quyết định 12/2025/QĐ-UBND Điều 5, en: Decision 12/2025 Art. 5}\n",
        encoding="utf-8",
    )
    templates = load_templates(own)
    ref = templates.for_type("littering").legal_reference
    assert ref is not None and ref.vi.startswith("Quyết định 12/2025") and ref.en == "Decision 12/2025 Art. 5"
    assert templates.for_type("littering").title.en == "Littering or illegal dumping"  # the rule's text kept
