"""The browser libraries central serves itself (map, charts, API docs) are the exact upstream files
named in central/static/vendor/SHA256SUMS (written by scripts/vendor-web-assets.sh from the npm
packages), and the Swagger UI integrity hashes in the docs page are those files' hashes."""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path

from central.web import docs

VENDOR = Path(__file__).resolve().parents[2] / "central" / "static" / "vendor"


def test_every_vendored_file_matches_its_recorded_hash_and_nothing_else_is_there() -> None:
    listed = {}
    for line in (VENDOR / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split(maxsplit=1)
        listed[name.removeprefix("./")] = digest
    present = {str(p.relative_to(VENDOR)) for p in VENDOR.rglob("*") if p.is_file() and p.name != "SHA256SUMS"}
    assert present == set(listed), present ^ set(listed)
    for name, digest in listed.items():
        assert hashlib.sha256((VENDOR / name).read_bytes()).hexdigest() == digest, name
    # Each library keeps its licence beside it.
    for lib in {n.split("/")[0] for n in listed}:
        assert [n for n in listed if n.startswith(f"{lib}/LICENSE")], lib


def test_swagger_integrity_hashes_are_those_of_the_served_files() -> None:
    for url, sri in ((docs.SWAGGER_JS, docs.SWAGGER_JS_SRI), (docs.SWAGGER_CSS, docs.SWAGGER_CSS_SRI)):
        assert url.startswith(f"/static/vendor/swagger-ui-{docs.SWAGGER_UI_VERSION}/")
        data = (VENDOR / url.removeprefix("/static/vendor/")).read_bytes()
        assert sri == "sha384-" + base64.b64encode(hashlib.sha384(data).digest()).decode()


def test_templates_load_vendored_libraries_only_from_this_origin() -> None:
    templates = Path(__file__).resolve().parents[2] / "central" / "templates"
    for page in templates.glob("*.html"):
        for src in re.findall(r'<(?:script|link)[^>]*(?:src|href)="([^"]+)"', page.read_text()):
            assert "://" not in src and not src.startswith("//"), (page.name, src)
