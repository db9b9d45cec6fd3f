"""Free-text search over reports (issue 17, item 3): accent- and case-insensitive Vietnamese.

Each report keeps `search_text`: its address, ward, camera (id and configured name), zone (id and
name) and plate, folded to unaccented lower case words ("Phường Cầu Giấy" -> "phuong cau giay").
A query is folded the same way and every word must occur in it as a substring, so "cau giay",
"CẦU GIẤY" and "giay" all find "Phường Cầu Giấy". On PostgreSQL a trigram GIN index on the column
(migration 0008) serves the `LIKE '%word%'`; elsewhere it is a scan, fine at SQLite's sizes.

The text is written when a report is made or grows (central.grouping) and by migration 0008 for the
reports that existed before it.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable
from typing import Any

import yaml
from sqlalchemy import ColumnElement, and_
from sqlalchemy.orm import Session

from central.db import ReportRow

MAX_QUERY_WORDS = 8  # a pasted paragraph is not a search; the rest is ignored
# The C loader where PyYAML has it: grouping parses a scene per camera on every ingest batch.
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_NON_WORD = re.compile(r"[^0-9a-z]+")


def _strip(c: str) -> str:
    base = "".join(x for x in unicodedata.normalize("NFD", c) if not unicodedata.combining(x))
    return base.lower()


# Every Latin letter with marks (Vietnamese is in Latin-1, Extended-A/B and Extended Additional)
# mapped once to its bare lower-case base, combining marks to nothing: fold is one str.translate,
# ~10x faster than normalising each text (grouping folds every new report's fields).
_FOLD = {cp: _strip(chr(cp)) for cp in range(0x80, 0x2000)}
_FOLD.update({ord("đ"): "d", ord("Đ"): "d"})


def fold(text: str | None) -> str:
    """Unaccented lower case, words of letters and digits joined by single spaces.

    Each letter loses its marks ("ầ" -> "a"; NFD splits it into base + circumflex + grave and the
    marks are dropped). "đ" is a letter of its own, not a mark, so it maps to "d" explicitly.
    Punctuation becomes a word break, so no LIKE wildcard ('%', '_') can survive into a pattern.
    """
    if not text:
        return ""
    return _NON_WORD.sub(" ", text.translate(_FOLD).lower()).strip()


def query_words(q: str | None) -> list[str]:
    """The folded words of a query (at most MAX_QUERY_WORDS, duplicates dropped, order kept)."""
    return list(dict.fromkeys(fold(q).split()))[:MAX_QUERY_WORDS]


def matches(q: str | None) -> ColumnElement[bool] | None:
    """The WHERE clause of a free-text query (None: nothing to filter on)."""
    words = query_words(q)
    if not words:
        return None
    return and_(*(ReportRow.search_text.like(f"%{w}%") for w in words))


def report_text(report: ReportRow, camera_name: str | None = None, zone_name: str | None = None) -> str:
    """What a report is found by, folded. The plate goes in twice: as read ("29 b1 123 45": its
    parts are words) and normalised ("29b112345": a plate typed without separators)."""
    parts: list[str | None] = [
        report.address,
        report.ward,
        report.district,
        report.camera,
        camera_name,
        report.zone_id,
        zone_name,
        report.plate,
        report.plate_norm,
    ]
    words = " ".join(fold(p) for p in parts if p)
    return " ".join(words.split())


def scene_names(s: Session, cameras: Iterable[tuple[str, str]]) -> dict[tuple[str, str], tuple[str | None, dict[str, str]]]:
    """(node, camera) -> (the camera's configured name, {zone id: zone name}) from the camera's
    newest scene version central holds (edge scene sync); cameras central has no scene for are absent."""
    from central.services.scenes import newest_yaml

    wanted = set(cameras)
    if not wanted:
        return {}
    rows = newest_yaml(s, {c for _, c in wanted})
    return {(n, c): _parse_names(text) for n, c, text in rows if (n, c) in wanted}


@functools.lru_cache(maxsize=1024)  # by the YAML text: a scene is parsed once, not on every ingest batch
def _parse_names(text: str) -> tuple[str | None, dict[str, str]]:
    try:
        # Validated by edge.config when it was stored; only plain YAML data is read here.
        doc: Any = yaml.load(text, Loader=_Loader) or {}
    except yaml.YAMLError:
        return None, {}
    if not isinstance(doc, dict):
        return None, {}
    cam = doc.get("camera") or {}
    zones = (doc.get("scene") or {}).get("zones") or []
    zone_names = {str(z["id"]): str(z["name"]) for z in zones if isinstance(z, dict) and z.get("id") and z.get("name")}
    name = cam.get("name") if isinstance(cam, dict) else None
    return (str(name) if name else None), zone_names


def fill(s: Session, reports: Iterable[ReportRow]) -> None:
    """(Re)write the search text of these reports (new ones, or grown ones whose plate may have changed)."""
    reports = list(reports)
    if not reports:
        return
    names = scene_names(s, {(r.node, r.camera) for r in reports})
    for r in reports:
        camera_name, zones = names.get((r.node, r.camera), (None, {}))
        r.search_text = report_text(r, camera_name, zones.get(r.zone_id or ""))
