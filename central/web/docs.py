"""The API docs page (`/api/docs`): Swagger UI at a pinned version, served by central itself.

FastAPI's own page loads `swagger-ui-dist@5` from a CDN (whatever 5.x it serves today, no integrity
check: issue 18, defect 10) and is blank on an operations-center network without Internet (issue 17).
Here the script and style are one exact release vendored under central/static/vendor (by
scripts/vendor-web-assets.sh, checked against SHA256SUMS by a test), the browser still refuses any
other bytes (`integrity`: the hashes are of the npm package swagger-ui-dist 5.35.0), and the start-up
script carries the response's nonce instead of 'unsafe-inline'. To move to another release: change
the version in that script and here, run it, and `openssl dgst -sha384 -binary FILE | base64` each file.
"""

from __future__ import annotations

import html
import json

from fastapi import Request
from fastapi.responses import HTMLResponse

from central.web.headers import nonce_of

SWAGGER_UI_VERSION = "5.35.0"
_BASE = f"/static/vendor/swagger-ui-{SWAGGER_UI_VERSION}"
SWAGGER_JS = f"{_BASE}/swagger-ui-bundle.js"
SWAGGER_CSS = f"{_BASE}/swagger-ui.css"
SWAGGER_JS_SRI = "sha384-gjRm0bEPMeTmMh5jT2cHccIwCUZSTd8YC+j0d0sXw0MdGEfScduGpSyF3ZSSLkX9"
SWAGGER_CSS_SRI = "sha384-WlYgdmXYOOBWL5apwjDEZwN+U3HmXSSu5R6V5aGxEcf7z+KuRNwBhoxKVN1i3D5I"


def docs_page(request: Request) -> HTMLResponse:
    nonce = html.escape(nonce_of(request.state), quote=True)
    title = html.escape(request.app.title)
    openapi_url = json.dumps(request.app.openapi_url)
    return HTMLResponse(
        f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title} - API</title>
<link rel="stylesheet" href="{SWAGGER_CSS}" integrity="{SWAGGER_CSS_SRI}">
</head><body><div id="swagger-ui"></div>
<script src="{SWAGGER_JS}" integrity="{SWAGGER_JS_SRI}"></script>
<script nonce="{nonce}">
SwaggerUIBundle({{url: {openapi_url}, dom_id: "#swagger-ui", layout: "BaseLayout", deepLinking: true,
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset]}});
</script></body></html>""",
        headers={"Cache-Control": "no-cache"},
    )
