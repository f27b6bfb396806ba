"""Segments: the list with counts and the segment builder (rule tree editor with a live count).

The builder (``static/segment-builder.js``) edits the rule tree in the browser, keeps the hidden
``rules`` field (JSON) current and asks ``POST /api/v1/segments/preview`` for the count as you edit
(with the session's ``X-CSRF-Token``). Without JavaScript the rules can be edited as JSON.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse

from patron.auth import Perm, Principal
from patron.core.errors import PatronError, ValidationFailed
from patron.core.i18n import N_, gettext_for
from patron.customers import (
    MATCH_ALL,
    SEGMENT_FIELD_KINDS,
    SEGMENT_OPS_BY_KIND,
    SEGMENT_TAG_OPS,
    SEGMENT_TRAIT_OPS,
    Segment,
    count_segment,
    create_segment,
    delete_segment,
    get_segment,
    list_segments,
    preview_segment,
    update_segment,
)
from patron.web.ui.base import (
    Allowed,
    ConsoleRoute,
    Form,
    UiSession,
    error_message,
    redirect,
    register_nav,
    render,
)

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)

register_nav("people", N_("Segments"), "/segments", Perm.SEGMENTS_READ, 30)

# What the builder offers: the rule language's customer fields (their kinds and operators come from
# patron.customers, the one definition), with labels (English msgids) and the display order.
FIELD_LABELS: dict[str, str] = {
    "country": N_("Country"),
    "language": N_("Language"),
    "time_zone": N_("Time zone"),
    "preferred_channel": N_("Preferred channel"),
    "email": N_("Email"),
    "phone": N_("Phone"),
    "given_name": N_("Given name"),
    "family_name": N_("Family name"),
    "referral_code": N_("Referral code"),
    "organisation_role": N_("Role in the organisation"),
    "birthday": N_("Birthday"),
    "birthday_month": N_("Birthday month"),
    "birthday_day": N_("Birthday day"),
    "created_at": N_("Customer since"),
    "is_test": N_("Test customer"),
}
FIELDS: dict[str, tuple[str, str]] = {
    name: (SEGMENT_FIELD_KINDS[name], label) for name, label in FIELD_LABELS.items()
}
OPERATORS: dict[str, str] = {
    "eq": N_("is"),
    "ne": N_("is not"),
    "in": N_("is one of"),
    "not_in": N_("is none of"),
    "contains": N_("contains"),
    "starts_with": N_("starts with"),
    "exists": N_("is set"),
    "not_exists": N_("is not set"),
    "gt": N_("is greater than"),
    "gte": N_("is at least"),
    "lt": N_("is less than"),
    "lte": N_("is at most"),
    "between": N_("is between"),
    "within_last_days": N_("within the last N days"),
    "older_than_days": N_("more than N days ago"),
    "has": N_("has tag"),
    "has_any": N_("has any of the tags"),
    "has_all": N_("has all of the tags"),
}


def _in_display_order(ops: Iterable[str]) -> list[str]:
    allowed = set(ops)
    return [op for op in OPERATORS if op in allowed]


OPS_BY_KIND: dict[str, list[str]] = {
    **{kind: _in_display_order(ops) for kind, ops in SEGMENT_OPS_BY_KIND.items()},
    "trait": _in_display_order(SEGMENT_TRAIT_OPS),
    "tag": list(SEGMENT_TAG_OPS),
}
PURPOSES: dict[str, str] = {
    "marketing": N_("Marketing"),
    "transactional": N_("Transactional"),
    "profiling": N_("Profiling"),
}
CHANNELS: dict[str, str] = {
    "email": N_("Email"),
    "sms": N_("SMS"),
    "zalo": N_("Zalo"),
    "line": N_("LINE"),
    "phone": N_("Phone"),
    "push": N_("Push"),
}
TEXTS: dict[str, str] = {
    "all": N_("All of these (AND)"),
    "any": N_("Any of these (OR)"),
    "none": N_("None of these (NOT)"),
    "add_condition": N_("Add condition"),
    "add_group": N_("Add group"),
    "remove": N_("Remove"),
    "field": N_("Customer field"),
    "tag": N_("Tag"),
    "trait": N_("Trait"),
    "consent": N_("Consent"),
    "trait_name": N_("Trait name"),
    "value": N_("Value"),
    "values_hint": N_("Separate values with commas"),
    "and": N_("and"),
    "days": N_("days"),
    "yes": N_("Yes"),
    "no": N_("No"),
    "matching": N_("matching customers"),
    "counting": N_("Counting…"),
    "incomplete": N_("Some conditions are incomplete; they are left out of the count."),
    "error": N_("The count could not be computed."),
    "purpose": N_("Purpose"),
    "channel": N_("Channel"),
    "consent_granted": N_("has consent for"),
}


def _builder_config(language: str) -> dict[str, Any]:
    tr = gettext_for(language)
    return {
        "fields": {name: {"kind": kind, "label": tr(label)} for name, (kind, label) in FIELDS.items()},
        "operators": {op: tr(label) for op, label in OPERATORS.items()},
        "opsByKind": OPS_BY_KIND,
        "purposes": {k: tr(v) for k, v in PURPOSES.items()},
        "channels": {k: tr(v) for k, v in CHANNELS.items()},
        "text": {k: tr(v) for k, v in TEXTS.items()},
        "previewUrl": "/api/v1/segments/preview",
    }


def _segments_page(request: Request, db: UiSession, viewer: Principal) -> HTMLResponse:
    q = request.query_params.get("q", "").strip()
    cursor = request.query_params.get("cursor") or None
    page = list_segments(db, q=q or None, cursor=cursor, limit=50)
    rows = [(segment, count_segment(db, segment)) for segment in page.items]
    return render(
        request,
        "segments/list.html",
        {
            "rows": rows,
            "q": q,
            "next_cursor": page.next_cursor,
            "cursor": cursor,
            "can_edit": viewer.can(Perm.SEGMENTS_WRITE),
        },
    )


@router.get("/segments", response_class=HTMLResponse)
def segments(
    request: Request, db: UiSession, viewer: Principal = Allowed(Perm.SEGMENTS_READ)
) -> HTMLResponse:
    return _segments_page(request, db, viewer)


def _builder_page(
    request: Request,
    db: UiSession,
    viewer: Principal,
    segment: Segment | None,
    *,
    values: dict[str, Any] | None = None,
    errors: dict[str, list[str]] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    if values is None:
        values = {
            "name": segment.name if segment else "",
            "description": segment.description if segment else "",
            "rules": json.dumps(segment.rules if segment else MATCH_ALL, ensure_ascii=False),
        }
    preview = None
    if not errors:
        try:
            preview = preview_segment(db, json.loads(values["rules"]), sample_size=10)
        except (PatronError, ValueError):
            preview = None
    return render(
        request,
        "segments/builder.html",
        {
            "segment": segment,
            "values": values,
            "errors": errors or {},
            "preview": preview,
            "config": _builder_config(request.state.language),
            "can_edit": viewer.can(Perm.SEGMENTS_WRITE),
        },
        status_code=status_code,
    )


@router.get("/segments/new", response_class=HTMLResponse)
def new_segment(
    request: Request, db: UiSession, viewer: Principal = Allowed(Perm.SEGMENTS_WRITE)
) -> HTMLResponse:
    return _builder_page(request, db, viewer, None)


@router.get("/segments/{segment_id}", response_class=HTMLResponse)
def segment_page(
    request: Request, segment_id: str, db: UiSession, viewer: Principal = Allowed(Perm.SEGMENTS_READ)
) -> HTMLResponse:
    return _builder_page(request, db, viewer, get_segment(db, segment_id))


def _rule_errors(exc: PatronError, language: str) -> dict[str, list[str]]:
    if isinstance(exc, ValidationFailed) and exc.code == "invalid_segment_rules":
        messages = []
        for err in exc.errors:
            where = " › ".join(str(p) for p in err.get("loc", []))
            messages.append(f"{where}: {err.get('msg', '')}" if where else str(err.get("msg", "")))
        return {"rules": messages}
    if isinstance(exc, ValidationFailed):
        out: dict[str, list[str]] = {}
        for err in exc.errors:
            loc = [p for p in err.get("loc", []) if isinstance(p, str)]
            out.setdefault(loc[-1] if loc else "", []).append(str(err.get("msg") or exc.detail))
        return out
    field = "name" if exc.code == "segment_name_taken" else ""
    return {field: [error_message(exc, language)]}


def _save(
    request: Request, db: UiSession, form: Form, viewer: Principal, segment: Segment | None
) -> Response:
    tr = gettext_for(request.state.language)
    values = {k: str(form.get(k) or "") for k in ("name", "description", "rules")}
    values["name"] = values["name"].strip()
    errors: dict[str, list[str]] = {}
    if not values["name"]:
        errors["name"] = [tr(N_("This field is required."))]
    try:
        rules = json.loads(values["rules"] or "null")
    except ValueError:
        rules = None
        errors["rules"] = [tr(N_("The rules are not valid JSON."))]
    if not errors:
        try:
            if segment is None:
                segment = create_segment(
                    db, name=values["name"], description=values["description"], rules=rules
                )
            else:
                update_segment(
                    db, segment, name=values["name"], description=values["description"], rules=rules
                )
            return redirect(f"/segments/{segment.id}?flash=saved")
        except PatronError as exc:
            db.rollback()
            if segment is not None:
                segment = get_segment(db, segment.id)
            errors = _rule_errors(exc, request.state.language)
    return _builder_page(request, db, viewer, segment, values=values, errors=errors, status_code=422)


@router.post("/segments", response_class=HTMLResponse)
def add_segment(
    request: Request, db: UiSession, form: Form, viewer: Principal = Allowed(Perm.SEGMENTS_WRITE)
) -> Response:
    return _save(request, db, form, viewer, None)


@router.post("/segments/{segment_id}", response_class=HTMLResponse)
def edit_segment(
    request: Request,
    segment_id: str,
    db: UiSession,
    form: Form,
    viewer: Principal = Allowed(Perm.SEGMENTS_WRITE),
) -> Response:
    return _save(request, db, form, viewer, get_segment(db, segment_id))


@router.post("/segments/{segment_id}/delete", response_class=HTMLResponse)
def remove_segment(
    request: Request,
    segment_id: str,
    db: UiSession,
    form: Form,
    viewer: Principal = Allowed(Perm.SEGMENTS_WRITE),
) -> Response:
    delete_segment(db, get_segment(db, segment_id))
    return redirect("/segments?flash=deleted")
