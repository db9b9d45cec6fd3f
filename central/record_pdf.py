"""One report as a formal record on ONE A4 page (fpdf2 with a Unicode TTF font; the core PDF fonts
have no Vietnamese letters), Vietnamese by default, English on request.

The layout follows a Vietnamese administrative document (national header, issuing body and number on
the left, title, body, signatures) but says what it is: a camera's record for an authorised officer
to verify, not a penalty decision (docs/domain.md: the officer reviews the evidence, then a notice
goes out). The picture is the crossing composite when the report has one, else the annotated
snapshot, scaled to the space left with its aspect kept, so the burnt-in camera/time stamps stay
whole. The page is laid out top-down with a fixed budget for what follows the picture (link and QR
code to the clip, the last review entries, the signature block): long fields are cut to two lines
and a long review history to its last entries, so nothing ever runs off the page.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

import segno
from fpdf import FPDF
from fpdf.enums import MethodReturnValue
from PIL import Image

from central.logs import kv
from central.reports import ACTION_TEXT, OBJECT_TEXT, STATUS_TEXT, ReportTemplates, default_templates, format_local

log = logging.getLogger("central.export")

Lang = Literal["vi", "en"]

# Serif first (Vietnamese official documents are set in a serif face); each pair is regular + bold.
FONT_CANDIDATES = (
    ("/usr/share/fonts/truetype/dejavu/DejaVuSerif.ttf", "/usr/share/fonts/truetype/dejavu/DejaVuSerif-Bold.ttf"),
    ("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"),
    (
        "/usr/share/fonts/truetype/noto/NotoSerif-Regular.ttf",
        "/usr/share/fonts/truetype/noto/NotoSerif-Bold.ttf",
    ),
    (
        "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
        "/usr/share/fonts/truetype/liberation/LiberationSans-Bold.ttf",
    ),
)

# Page geometry (mm). A4 portrait.
PAGE_W, PAGE_H = 210.0, 297.0
MARGIN_X, MARGIN_TOP, MARGIN_BOTTOM = 15.0, 12.0, 12.0
BODY_W = PAGE_W - 2 * MARGIN_X
LABEL_W = 40.0
QR_SIZE = 27.0
SIGNATURE_H = 31.0
HISTORY_LINE_H = 3.7
HISTORY_MAX = 6  # entries printed; older ones are counted, not printed
PICTURE_MAX_H = 110.0
PICTURE_MIN_H = 55.0  # below this the history gives up lines first

TEXT: dict[str, dict[Lang, str]] = {
    "nation": {"vi": "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM", "en": "SOCIALIST REPUBLIC OF VIETNAM"},
    "motto": {"vi": "Độc lập - Tự do - Hạnh phúc", "en": "Independence - Freedom - Happiness"},
    "number": {"vi": "Số", "en": "No."},
    "title": {"vi": "PHIẾU GHI NHẬN HÀNH VI CÓ DẤU HIỆU VI PHẠM", "en": "CAMERA RECORD OF A SUSPECTED VIOLATION"},
    "subtitle": {
        "vi": "Do hệ thống camera tự động lập để cán bộ có thẩm quyền xác minh; không phải quyết định xử phạt.",
        "en": "Made automatically by the camera system for an authorised officer to verify; not a penalty decision.",
    },
    "violation": {"vi": "Hành vi", "en": "Violation"},
    "legal": {"vi": "Căn cứ tham chiếu", "en": "Legal reference"},
    "legal_none": {
        "vi": "chưa cấu hình cho loại này (cán bộ xác minh xác định)",
        "en": "not configured for this type (the verifying officer determines it)",
    },
    "place": {"vi": "Địa điểm", "en": "Place"},
    "time": {"vi": "Thời gian", "en": "Time"},
    "times_seen": {"vi": "lần ghi nhận", "en": "sightings"},
    "plate": {"vi": "Biển số", "en": "Plate"},
    "unreadable": {"vi": "không đọc được", "en": "unreadable"},
    "vehicle": {"vi": "phương tiện", "en": "vehicle"},
    "confidence": {"vi": "Độ tin cậy", "en": "Confidence"},
    "model": {"vi": "mô hình", "en": "model"},
    "status": {"vi": "Trạng thái", "en": "Status"},
    "deadline": {"vi": "hạn xử lý", "en": "deadline"},
    "overdue": {"vi": "QUÁ HẠN", "en": "OVERDUE"},
    "agency": {"vi": "Đơn vị xử lý", "en": "Handled by"},
    "picture_unreadable": {"vi": "[Ảnh không đọc được]", "en": "[picture unreadable]"},
    "no_picture": {"vi": "[Chưa có ảnh]", "en": "[no picture yet]"},
    "clip": {"vi": "Đoạn video (liên kết có chữ ký)", "en": "Video clip (signed link)"},
    "no_clip": {
        "vi": "Đoạn video chưa về trung tâm; trang phản ánh",
        "en": "Clip not at the center yet; the report page",
    },
    "report_page": {"vi": "Trang phản ánh", "en": "Report page"},
    "history": {"vi": "Lịch sử xử lý (giờ địa phương)", "en": "Review history (local time)"},
    "history_more": {
        "vi": "… {n} mục trước không in (xem trang phản ánh)",
        "en": "… {n} earlier entries not printed (see the report page)",
    },
    "history_none": {"vi": "chưa có", "en": "none yet"},
    "maker": {"vi": "NGƯỜI LẬP", "en": "RECORDED BY"},
    "maker_camera": {"vi": "Hệ thống camera (tự động)", "en": "Camera system (automatic)"},
    "confirmed_by": {"vi": "Xác nhận trên hệ thống", "en": "Confirmed in the system"},
    "officer": {"vi": "CÁN BỘ XÁC MINH", "en": "REVIEWING OFFICER"},
    "sign": {"vi": "(Ký, ghi rõ họ tên)", "en": "(signature and full name)"},
    "name": {"vi": "Họ tên", "en": "Name"},
    "date": {"vi": "Ngày", "en": "Date"},
}


def _action_words(action: str, lang: Lang) -> str:
    """The audit trail's action in the console's words (central.reports.ACTION_TEXT, one table for
    page, JSON and PDF), lower-cased to sit inside the record's sentences ("op, xác nhận")."""
    words = ACTION_TEXT.get(action, {}).get(lang, action)
    return words[:1].lower() + words[1:]


_REVIEW_ACTIONS = {"confirm", "reject", "resolve", "forward", "reopen"}


def _fonts() -> tuple[str, str]:
    for regular, bold in FONT_CANDIDATES:
        if Path(regular).is_file():
            return regular, bold if Path(bold).is_file() else regular
    raise RuntimeError("no Unicode TTF font found (install Debian fonts-dejavu-core)")


class _Record(FPDF):
    def __init__(self) -> None:
        super().__init__(format="A4", unit="mm")
        # Layout decides every height itself; an automatic break would make a second page.
        self.set_auto_page_break(False)
        self.set_margins(MARGIN_X, MARGIN_TOP, MARGIN_X)
        regular, bold = _fonts()
        self.add_font("body", "", regular)
        self.add_font("body", "B", bold)

    def lines(self, w: float, text: str) -> list[str]:
        out = self.multi_cell(w, 4, text, dry_run=True, output=MethodReturnValue.LINES)
        assert isinstance(out, list)  # what output=LINES returns
        return [str(line) for line in out]

    def clipped(self, w: float, text: str, max_lines: int) -> str:
        """`text` cut (with "…") so it wraps to at most `max_lines` lines of width `w`."""
        return self.clipped_head(w, text, "", max_lines)

    def clipped_head(self, w: float, head: str, tail: str, max_lines: int) -> str:
        """`head + tail` in at most `max_lines` lines, cutting `head` (with "…"), never `tail`."""
        if len(self.lines(w, head + tail)) <= max_lines:
            return head + tail
        n = _longest(len(head), lambda k: len(self.lines(w, head[:k] + "…" + tail)) <= max_lines)
        return head[:n].rstrip(" ,") + "…" + tail

    def one_line(self, w: float, text: str) -> str:
        if self.get_string_width(text) <= w:
            return text
        return text[: _longest(len(text), lambda k: self.get_string_width(text[:k] + "…") <= w)] + "…"


def _longest(n: int, fits: Callable[[int], bool]) -> int:
    """The largest k in 0..n with fits(k), for a `fits` true up to some k and false after: a binary
    search, so a 500-character address costs a few layout passes, not hundreds."""
    lo, hi = 0, n
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if fits(mid):
            lo = mid
        else:
            hi = mid - 1
    return lo


def _local(iso: str | None, zone: ZoneInfo, lang: Lang) -> str:
    return format_local(datetime.fromisoformat(iso), zone, lang) if iso else ""


def _plate_text(view: dict[str, Any], lang: Lang) -> str:
    plate = view.get("plate")
    if isinstance(plate, dict):  # a richer plate (text + confidence) reads the same way
        plate = plate.get("text")
    if not plate:
        return TEXT["unreadable"][lang]
    conf = (view.get("plate_read") or {}).get("confidence")
    return f"{plate} ({TEXT['confidence'][lang].lower()} {conf:.0%})" if isinstance(conf, float) else str(plate)


# District-level units were abolished on 1 July 2025 (two-tier local government: province or
# centrally-run city, then ward/commune): a camera config that still names one keeps it as a label,
# the record does not print it as part of the address.
_DISTRICT_LEVEL = ("quận ", "huyện ", "thị xã ")


def _place(view: dict[str, Any], lang: Lang) -> tuple[str, str, str]:
    """The place as the record prints it, (address, ", ward/commune, province (camera)", province):
    the address is what gets cut when the line is too long, never the ward or the province."""
    place = view["place"]
    province = (place.get("district") or "").strip()
    if province.lower().startswith(_DISTRICT_LEVEL):
        province = ""
    address = (place.get("address") or "").strip()
    units = ", ".join(p.strip() for p in (place.get("ward"), province) if p and p.strip())
    if not address and not units:
        address = place["text"][lang]
    tail = (", " + units if address and units else units) + f" (camera {place['camera']})"
    return address, tail, province


def _picture(view: dict[str, Any]) -> dict[str, Any] | None:
    """The composite of the act when the report has one, else the annotated snapshot."""
    for kind in ("composite", "snapshot"):
        found = next((e for e in view["evidence"] if e["kind"] == kind and e["available"]), None)
        if found:
            return found
    return None


def _reviewer(history: list[dict[str, Any]]) -> dict[str, Any] | None:
    return next((h for h in reversed(history) if h["action"] in _REVIEW_ACTIONS and h["actor"] != "system"), None)


def report_pdf(
    view: dict[str, Any],
    *,
    evidence_path: Callable[[str], Path | None],
    lang: Lang = "vi",
    templates: ReportTemplates | None = None,
) -> bytes:
    """The report `view` (central.services.views) as a one-page A4 record in `lang`."""
    tpl = (templates or default_templates()).for_type(view["type"]["code"])
    zone = ZoneInfo(view["time"]["time_zone"])
    pdf = _Record()
    pdf.add_page()
    title = view["title"][lang]
    pdf.set_title(f"#{view['id']} {title}")
    pdf.set_creator("ioc-central")

    # ---- national header (right) and the agency the report is routed to, with the number (left)
    created = datetime.fromisoformat(view["created_at"]).astimezone(zone)
    top = MARGIN_TOP
    left_w, right_x, right_w = 78.0, MARGIN_X + 80.0, BODY_W - 80.0
    pdf.set_xy(MARGIN_X, top)
    pdf.set_font("body", "B", 8.5)
    agency = view["agency"][lang] or view["agency"]["code"] or "IOC"
    pdf.multi_cell(left_w, 4, pdf.clipped(left_w, agency.upper(), 3), align="C", new_x="LMARGIN", new_y="NEXT")
    y = pdf.get_y() + 0.8
    pdf.line(MARGIN_X + left_w / 2 - 12, y, MARGIN_X + left_w / 2 + 12, y)
    pdf.set_xy(MARGIN_X, y + 1.2)
    pdf.set_font("body", "", 9)
    pdf.cell(left_w, 4.5, f"{TEXT['number'][lang]}: {view['id']}/{created:%Y}", align="C")
    left_bottom = pdf.get_y() + 4.5

    pdf.set_xy(right_x, top)
    pdf.set_font("body", "B", 9)
    pdf.cell(right_w, 4.5, TEXT["nation"][lang], align="C", new_x="LEFT", new_y="NEXT")
    pdf.set_font("body", "B", 9.5)
    motto = TEXT["motto"][lang]
    pdf.cell(right_w, 4.5, motto, align="C", new_x="LEFT", new_y="NEXT")
    half = pdf.get_string_width(motto) / 2
    y = pdf.get_y() + 0.3
    pdf.line(right_x + right_w / 2 - half, y, right_x + right_w / 2 + half, y)
    pdf.set_xy(right_x, y + 1.5)
    pdf.set_font("body", "", 9)
    address, place_tail, locality = _place(view, lang)
    if lang == "vi":
        dated = f"ngày {created:%d} tháng {created:%m} năm {created:%Y}"
        dated = f"{locality}, {dated}" if locality else dated[0].upper() + dated[1:]
    else:
        dated = f"{locality}, {created:%d %B %Y}" if locality else f"{created:%d %B %Y}"
    pdf.cell(right_w, 4.5, pdf.one_line(right_w, dated), align="C")
    y = max(left_bottom, pdf.get_y() + 4.5) + 4

    # ---- title
    pdf.set_xy(MARGIN_X, y)
    pdf.set_font("body", "B", 13)
    pdf.cell(BODY_W, 6.5, TEXT["title"][lang], align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("body", "", 8)
    pdf.cell(BODY_W, 4.5, TEXT["subtitle"][lang], align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)

    # ---- the facts
    first = view.get("first_seen")
    last = view.get("last_seen")
    start = _local(first["at"] if first else view["time"]["started_at"], zone, lang)
    end = _local(last["at"] if last else view["time"]["ended_at"], zone, lang)
    when = start if not end or end == start else f"{start} – {end}"
    if view.get("event_count", 1) > 1:
        when += f"; {view['event_count']} {TEXT['times_seen'][lang]}"
    vehicle = ""
    if view["objects"]:
        name = OBJECT_TEXT.get(view["objects"][0]["class_name"], {}).get(lang)
        if name:
            vehicle = f" ({TEXT['vehicle'][lang]}: {name.removeprefix('a ')})"
    model = view["event"]["model"]
    status = STATUS_TEXT.get(view["status"]["code"], {}).get(lang, view["status"]["code"])
    if view.get("deadline"):
        status += f"; {TEXT['deadline'][lang]} {view['deadline'][lang]}"
        if view.get("overdue"):
            status += f" ({TEXT['overdue'][lang]})"
    legal = tpl.legal_reference
    rows: list[tuple[str, str | tuple[str, str]]] = [
        (TEXT["violation"][lang], f"{title} — {view['category'][lang]}"),
        (TEXT["legal"][lang], getattr(legal, lang) if legal else TEXT["legal_none"][lang]),
        (TEXT["place"][lang], (address, place_tail)),
        (TEXT["time"][lang], when),
        (TEXT["plate"][lang], _plate_text(view, lang) + vehicle),
        (
            TEXT["confidence"][lang],
            f"{view['confidence']:.0%} ({TEXT['model'][lang]} {model['name']} {model['version']})",
        ),
        (TEXT["agency"][lang], view["agency"][lang] or "—"),
        (TEXT["status"][lang], status),
    ]
    value_w = BODY_W - LABEL_W
    for label, value in rows:
        y = pdf.get_y()
        pdf.set_font("body", "B", 8.5)
        pdf.set_xy(MARGIN_X, y)
        pdf.cell(LABEL_W, 4.6, label + ":")
        pdf.set_font("body", "", 9)
        pdf.set_xy(MARGIN_X + LABEL_W, y)
        if isinstance(value, tuple):
            text = pdf.clipped_head(value_w, value[0], value[1], 2)
        else:
            text = pdf.clipped(value_w, value, 3 if label == TEXT["legal"][lang] else 2)
        pdf.multi_cell(value_w, 4.6, text, align="L", new_x="LMARGIN", new_y="NEXT")
    facts_bottom = pdf.get_y() + 2

    # ---- budget for what follows the picture, from the bottom up
    history = list(view.get("history") or [])
    shown = min(len(history), HISTORY_MAX)

    def below_picture(n: int) -> float:
        more = 1 if len(history) > n else 0
        return 5.5 + QR_SIZE + 3 + 5 + max(n + more, 1) * HISTORY_LINE_H + 3 + SIGNATURE_H

    room = PAGE_H - MARGIN_BOTTOM - facts_bottom - below_picture(shown)
    while shown > 2 and room < PICTURE_MIN_H:
        shown -= 1
        room = PAGE_H - MARGIN_BOTTOM - facts_bottom - below_picture(shown)
    room = max(20.0, min(PICTURE_MAX_H, room))

    # ---- the picture, scaled to fit with its aspect kept (stamps whole)
    pic = _picture(view)
    pic_top = facts_bottom
    pic_h = 12.0
    path = evidence_path(pic["sha256"]) if pic else None
    pdf.set_font("body", "", 9)
    if pic is None or path is None:
        pdf.set_xy(MARGIN_X, pic_top)
        pdf.cell(BODY_W, pic_h, TEXT["no_picture"][lang], border=1, align="C")
    else:
        try:
            with Image.open(path) as im:
                iw, ih = im.size
            scale = min(BODY_W / iw, room / ih)
            w, pic_h = iw * scale, ih * scale
            pdf.image(str(path), x=MARGIN_X + (BODY_W - w) / 2, y=pic_top, w=w, h=pic_h)
        except Exception as e:  # noqa: BLE001  (PIL/fpdf raise many kinds for bytes that are not a picture)
            # Stored bytes that are not a decodable picture must not make this report's PDF fail for
            # ever: the PDF says so where the picture would be, and the fault is logged.
            log.warning(kv("evidence_unreadable", report=view["id"], sha256=pic["sha256"], error=type(e).__name__))
            pic_h = 12.0
            pdf.set_xy(MARGIN_X, pic_top)
            pdf.cell(BODY_W, pic_h, TEXT["picture_unreadable"][lang], border=1, align="C")
    pdf.set_xy(MARGIN_X, pic_top + pic_h + 1.2)
    pdf.set_font("body", "", 6.5)
    if pic is not None:
        caption = f"{pic['label'][lang]} · sha256 {pic['sha256']}"
        pdf.cell(BODY_W, 3.5, pdf.one_line(BODY_W, caption), align="C")
    y = pic_top + pic_h + 5.5

    # ---- link and QR code to the clip (the signed evidence link), else to the report page
    link = view.get("clip_url")
    link_label = TEXT["clip"][lang]
    if not link:
        link, link_label = view["links"]["html"], TEXT["no_clip"][lang]
    _qr(pdf, link, MARGIN_X, y, QR_SIZE)
    tx, tw = MARGIN_X + QR_SIZE + 4, BODY_W - QR_SIZE - 4
    pdf.set_xy(tx, y + 1)
    pdf.set_font("body", "B", 8.5)
    pdf.cell(tw, 4.2, link_label + ":", new_x="LEFT", new_y="NEXT")
    pdf.set_font("body", "", 7.5)
    pdf.multi_cell(tw, 3.6, pdf.clipped(tw, link, 3), align="L", link=link, new_x="LEFT", new_y="NEXT")
    clip = next((e for e in view["evidence"] if e["kind"] == "clip" and e["available"]), None)
    if clip and link == view.get("clip_url"):
        pdf.set_font("body", "", 6.5)
        pdf.cell(tw, 3.4, pdf.one_line(tw, f"sha256 {clip['sha256']}"), new_x="LEFT", new_y="NEXT")
    if link != view["links"]["html"]:
        pdf.set_font("body", "", 7.5)
        pdf.set_xy(tx, pdf.get_y() + 0.8)
        pdf.multi_cell(
            tw,
            3.6,
            pdf.clipped(tw, f"{TEXT['report_page'][lang]}: {view['links']['html']}", 2),
            align="L",
            new_x="LEFT",
            new_y="NEXT",
        )
    y += QR_SIZE + 3

    # ---- review history, newest last, in local time
    pdf.set_xy(MARGIN_X, y)
    pdf.set_font("body", "B", 8.5)
    pdf.cell(BODY_W, 5, TEXT["history"][lang] + ":", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("body", "", 7.5)
    if not history:
        pdf.cell(BODY_W, HISTORY_LINE_H, TEXT["history_none"][lang], new_x="LMARGIN", new_y="NEXT")
    if len(history) > shown:
        more = TEXT["history_more"][lang].format(n=len(history) - shown)
        pdf.cell(BODY_W, HISTORY_LINE_H, more, new_x="LMARGIN", new_y="NEXT")
    for h in history[len(history) - shown :]:
        pdf.cell(
            BODY_W, HISTORY_LINE_H, pdf.one_line(BODY_W, _history_line(h, zone, lang)), new_x="LMARGIN", new_y="NEXT"
        )

    # ---- signatures: the camera system made it; the reviewing officer signs it
    sig_top = PAGE_H - MARGIN_BOTTOM - SIGNATURE_H
    col = BODY_W / 2
    pdf.set_xy(MARGIN_X, sig_top)
    pdf.set_font("body", "B", 9)
    pdf.cell(col, 5, TEXT["maker"][lang], align="C", new_x="LEFT", new_y="NEXT")
    pdf.set_font("body", "", 8.5)
    pdf.cell(col, 4.5, f"{TEXT['maker_camera'][lang]}", align="C", new_x="LEFT", new_y="NEXT")
    pdf.cell(
        col,
        4.5,
        f"camera {view['place']['camera']} · node {view['place']['node']}",
        align="C",
        new_x="LEFT",
        new_y="NEXT",
    )
    reviewer = _reviewer(history)
    if reviewer:
        pdf.set_font("body", "", 7.5)
        pdf.cell(col, 4, f"{TEXT['confirmed_by'][lang]}:", align="C", new_x="LEFT", new_y="NEXT")
        done = f"{reviewer['actor']}, {_action_words(reviewer['action'], lang)}"
        pdf.cell(col, 4, pdf.one_line(col, f"{done}, {_local(reviewer['at'], zone, lang)}"), align="C")
    ox = MARGIN_X + col
    pdf.set_xy(ox, sig_top)
    pdf.set_font("body", "B", 9)
    pdf.cell(col, 5, TEXT["officer"][lang], align="C", new_x="LEFT", new_y="NEXT")
    pdf.set_font("body", "", 8)
    pdf.cell(col, 4, TEXT["sign"][lang], align="C", new_x="LEFT", new_y="NEXT")
    pdf.set_xy(ox + 8, sig_top + SIGNATURE_H - 9)
    pdf.set_font("body", "", 8.5)
    pdf.cell(col - 8, 4.5, f"{TEXT['name'][lang]}: " + "." * 44, new_x="LEFT", new_y="NEXT")
    pdf.cell(col - 8, 4.5, f"{TEXT['date'][lang]}: " + "...../...../.........")
    return bytes(pdf.output())


def _history_line(h: dict[str, Any], zone: ZoneInfo, lang: Lang) -> str:
    action = _action_words(h["action"], lang)
    change = ""
    if h.get("to_status"):
        to = STATUS_TEXT.get(h["to_status"], {}).get(lang, h["to_status"])
        frm = STATUS_TEXT.get(h["from_status"] or "", {}).get(lang, h["from_status"] or "")
        kept = h["from_status"] == h["to_status"]  # the creation entry, or an action that keeps the status
        change = f"  ({to})" if kept else (f"  {frm} → {to}" if frm else f"  → {to}")
    note = f"  «{h['note']}»" if h.get("note") else ""
    return f"{_local(h['at'], zone, lang)}  {h['actor']}: {action}{change}{note}"


def _qr(pdf: FPDF, data: str, x: float, y: float, size: float) -> None:
    """`data` as a QR code drawn in vectors (sharp at any print size), with its quiet zone."""
    qr = segno.make(data, error="m")
    rows = [list(r) for r in qr.matrix_iter(scale=1, border=4)]
    module = size / len(rows)
    pdf.set_fill_color(0, 0, 0)
    for r, row in enumerate(rows):
        c = 0
        while c < len(row):  # one rectangle per run of dark modules: a small, fast page
            if not row[c]:
                c += 1
                continue
            start = c
            while c < len(row) and row[c]:
                c += 1
            pdf.rect(x + start * module, y + r * module, (c - start) * module, module, style="F")
