"""GET /docs: Swagger UI over the OpenAPI file the service serves, in one self-contained page.

The assets come from the `swagger-ui-py` distribution (its `swagger_ui/static`
folder, Swagger UI 5, which reads OpenAPI 3.1) and are inlined into the page,
so it needs no CDN, no network beyond this service, and one route. The page
is built on the first request and kept.
"""

from __future__ import annotations

import importlib.resources
import re

from servicekit.handlers import JsonHandler

_page: bytes | None = None


def build_page() -> bytes:
    static = importlib.resources.files("swagger_ui") / "static"
    css = (static / "swagger-ui.css").read_text(encoding="utf-8")
    # Inside a script element only "</script" ends it early; in a JS string "<\/" means
    # "</" (the bundle has no such regex literal, where it would not).
    script = re.sub(r"</(script)", r"<\\/\1",
                    (static / "swagger-ui-bundle.js").read_text(encoding="utf-8"), flags=re.I)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>orders and invoices: API</title>
<style>{css}</style></head>
<body><div id="swagger-ui"></div>
<script>{script}</script>
<script>
window.ui = SwaggerUIBundle({{url: "/openapi.yaml", dom_id: "#swagger-ui", deepLinking: true,
                             presets: [SwaggerUIBundle.presets.apis]}});
</script></body></html>
""".encode()


class DocsHandler(JsonHandler):
    route = "/docs"

    def get(self) -> None:
        global _page
        if _page is None:
            _page = build_page()
        self.set_header("Content-Type", "text/html; charset=UTF-8")
        self.set_header("Cache-Control", "max-age=3600")
        self.finish(_page)
