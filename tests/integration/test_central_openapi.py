"""The console's OpenAPI lists a response schema for every JSON route, and what the routes return
matches it (FastAPI validates each response against its model: a drift is a 500, not a silent
change)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.datastructures import DefaultPlaceholder
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from central.config import CentralConfig
from central.db import make_engine, migrate
from central.web import create_app

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

UPLOAD = "/api/v1/evidence"  # central.uploads: the edge's upload API, answered with plain JSON receipts


@pytest.fixture
def app(sqlite_url: str, tmp_path: Path) -> Any:
    migrate(sqlite_url)
    cfg = CentralConfig.model_validate({"database_url": sqlite_url, "evidence_dir": str(tmp_path / "ev")})
    return create_app(cfg, engine=make_engine(sqlite_url))


def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def test_every_json_route_has_a_response_schema(app: Any) -> None:
    spec = TestClient(app).get("/api/openapi.json").json()
    json_routes = []
    for path, methods in spec["paths"].items():
        if path.startswith(UPLOAD):
            continue
        for method, op in methods.items():
            ok = op["responses"].get("200", {}).get("content", {})
            if "application/json" in ok:
                json_routes.append(f"{method.upper()} {path}")
                schema = ok["application/json"].get("schema", {})
                assert schema, f"{method.upper()} {path}: no response schema"
                resolved = schema if "anyOf" in schema else _resolve(spec, schema)
                assert resolved.get("properties") or resolved.get("anyOf"), f"{method.upper()} {path}: empty schema"
            # Errors are documented too: {"detail": ...}
            assert "404" in op["responses"], f"{method.upper()} {path}: no errors"
    assert set(json_routes) >= {
        "GET /api/me", "GET /api/reports", "GET /api/reports/{report_id}", "GET /reports/{ref}.json", "GET /api/queue",
        "POST /api/reports/{report_id}/{action}", "GET /api/alerts", "GET /api/health", "GET /healthz",
        "GET /public/reports", "GET /public/reports/{report_id}.json",
    }, json_routes
    # Every JSON route the app serves is in the schema with its model (none hidden from it).
    for route in app.routes:
        if isinstance(route, APIRoute) and route.include_in_schema and not route.path.startswith(UPLOAD):
            cls = route.response_class.value if isinstance(route.response_class, DefaultPlaceholder) else route.response_class
            media = getattr(cls, "media_type", None)
            if media == "application/json":
                assert route.response_model is not None, f"{route.path}: no response_model"


def test_schemas_name_the_fields_clients_read(app: Any) -> None:
    spec = TestClient(app).get("/api/openapi.json").json()
    schemas = spec["components"]["schemas"]
    report = schemas["ReportView"]["properties"]
    for field in ("id", "status", "title", "place", "time", "evidence", "deadline", "agency", "allowed_actions"):
        assert field in report, field
    assert "history" in schemas["ReportDetail"]["properties"]
    camera = schemas["CameraHealthView"]["properties"]
    for field in ("analysis_fps", "analysis_fps_target", "lag_ms_p50", "last_frame_at", "overloaded", "reconnects"):
        assert field in camera, field
    ops = spec["paths"]["/api/reports/{report_id}/{action}"]["post"]["responses"]["200"]["content"]
    refs = {s["$ref"].rsplit("/", 1)[-1] for s in ops["application/json"]["schema"]["anyOf"]}
    assert refs == {"ActionResult", "PublishResult"}
    assert spec["paths"]["/api/reports"]["get"]["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ReportList"
    }
