"""The API docs page (`/api/docs`): Swagger UI at a pinned version with Subresource Integrity.

FastAPI's own page loads `swagger-ui-dist@5` (whatever 5.x the CDN serves today) with no integrity
check (issue 18, defect 10): a compromised CDN or package release would run its script on the
console's origin. Here the script and style are one exact release, the browser refuses any other
bytes (`integrity`), the page's CSP allows those two URLs only, and the start-up script carries the
response's nonce instead of 'unsafe-inline'. The hashes are of the files in the npm package
swagger-ui-dist 5.35.0 (the bytes jsDelivr serves for that version): to move to another release,
`npm pack swagger-ui-dist@X` and `openssl dgst -sha384 -binary FILE | base64` each file.
"""

from __future__ import annotations

import html
import json

from fastapi import Request
from fastapi.responses import HTMLResponse

from central.web.headers import nonce_of

SWAGGER_UI_VERSION = "5.35.0"
_BASE = f"https://cdn.jsdelivr.net/npm/swagger-ui-dist@{SWAGGER_UI_VERSION}"
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
<link rel="stylesheet" href="{SWAGGER_CSS}" integrity="{SWAGGER_CSS_SRI}" crossorigin="anonymous">
</head><body><div id="swagger-ui"></div>
<script src="{SWAGGER_JS}" integrity="{SWAGGER_JS_SRI}" crossorigin="anonymous"></script>
<script nonce="{nonce}">
SwaggerUIBundle({{url: {openapi_url}, dom_id: "#swagger-ui", layout: "BaseLayout", deepLinking: true,
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset]}});
</script></body></html>""",
        headers={"Cache-Control": "no-cache"},
    )
