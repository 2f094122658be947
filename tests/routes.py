"""The routes a running application serves, as (service, METHOD, /path/{id})."""

from __future__ import annotations

import re

from tornado.web import Application, RequestHandler

METHODS = ("GET", "POST", "PATCH", "PUT", "DELETE")


def served_routes(service: str, app: Application) -> set[tuple[str, str, str]]:
    routes = set()
    for rule in app.wildcard_router.rules:
        pattern = rule.matcher.regex.pattern.rstrip("$").replace("\\.", ".")
        path = re.sub(r"\([^)]*\)", "{id}", pattern)
        handler = rule.target
        for method in METHODS:
            if getattr(handler, method.lower()) is not getattr(RequestHandler, method.lower()):
                routes.add((service, method, path))
    return routes
