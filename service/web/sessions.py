"""/v1/sessions/{id}: a working session's receipts in the order they were registered.

Owner-scoped like every read: another key's session is simply empty, so ids cannot be probed.
"""

from __future__ import annotations

from flask import Blueprint, Response, g, jsonify, request

from service.usecases import receipts
from service.usecases.lineage import read_lineage
from service.web.auth import require_key
from service.web.context import current_services
from service.web.render import decode_cursor, encode_cursor, summary_json

bp = Blueprint("sessions", __name__, url_prefix="/v1/sessions")

DEFAULT_PAGE_SIZE = 100  # a session is an evening's iterations: most fit one page


@bp.get("/<session_id>")
@require_key
def get_session(session_id: str) -> Response:
    """The key's receipts in this session, oldest first, with parents; `next_cursor` pages."""
    session = read_lineage({"session": session_id}).session  # the registration's own check
    assert session is not None
    try:
        limit = int(request.args.get("limit", DEFAULT_PAGE_SIZE))
    except ValueError:
        limit = 0
    cursor = request.args.get("cursor")
    page = receipts.session_page(current_services(), g.api_key.id, session, limit=limit,
                                 after=decode_cursor(cursor) if cursor else None)
    return jsonify({"session": session,
                    "items": [summary_json(r) for r in page.items],
                    "next_cursor": encode_cursor(page.last_id)})
