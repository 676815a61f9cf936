"""A console page: a Jinja2 template rendered in the visitor's language with the console's
security headers, never cached (it shows live alarms).
"""

from __future__ import annotations

from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import Response
from fastapi.templating import Jinja2Templates

from gateway.console.access import language
from gateway.console.assets import SECURITY_HEADERS, asset_url
from gateway.console.catalogue import WORDS
from gateway.console.labels import LABELS, note_label
from gateway.console.summaries import said_in

TEMPLATES = Jinja2Templates(directory=Path(__file__).parent / "templates")
TEMPLATES.env.globals["asset_url"] = asset_url
TEMPLATES.env.globals.update(LABELS)  # categories, fields, tiers, history notes: zh/en


def render(
    request: Request, template: str, context: dict[str, Any], status_code: int = 200
) -> Response:
    """`template` with `w` (the words of the page's language) and `lang` in its context."""
    lang = context.get("lang") or language(request)
    zone: tzinfo = request.app.state.zone

    def local(at: datetime | None) -> str:
        """A time as people on duty read it: in the community's zone."""
        return "" if at is None else f"{at.astimezone(zone):%Y-%m-%d %H:%M:%S}"

    response = TEMPLATES.TemplateResponse(
        request,
        template,
        {
            "lang": lang,
            "w": WORDS[lang],
            "local": local,
            "said": said_in(request, lang),
            # a history note's UTC times in the community's zone, like every other time here
            "note_label": lambda note, lang: note_label(note, lang, zone),
            **context,
        },
        status_code=status_code,
    )
    response.headers.update(SECURITY_HEADERS)
    response.headers["Cache-Control"] = "no-store"
    return response
