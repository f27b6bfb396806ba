"""The application's /api/v1 routes, introspected: method, path, the permissions each requires (from
its ``require_<perm>`` dependencies, made by ``patron.web.deps.require``) and whether it needs any
authenticated caller. Used by the authorisation matrix and the OpenAPI tests."""

from __future__ import annotations

import enum
import inspect
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts

from patron.auth import ROLE_PERMISSIONS, Perm, Role
from patron.web.deps import get_principal

API = "/api/v1"
# Deliberately public routes (method, path): nothing else may answer without credentials.
PUBLIC: frozenset[tuple[str, str]] = frozenset({("GET", f"{API}/health")})
PERMISSION_DEPENDENCIES = {f"require_{p.value.replace(':', '_')}": p for p in Perm}


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    perms: frozenset[Perm]  # all required; empty = any authenticated caller
    authenticated: bool
    path_params: tuple[tuple[str, Any], ...]

    @property
    def label(self) -> str:
        return f"{self.method} {self.path}"

    def allows(self, role: Role) -> bool:
        return self.perms <= ROLE_PERMISSIONS[role]

    def url(self) -> str:
        path = self.path
        for name, annotation in self.path_params:
            path = path.replace("{" + name + "}", _sample_value(annotation))
        return path


def _sample_value(annotation: Any) -> str:
    if inspect.isclass(annotation) and issubclass(annotation, enum.Enum):
        return str(next(iter(annotation)).value)
    if annotation is int:
        return "1"
    return str(uuid.uuid4())


def _walk(dependant: Dependant) -> Iterator[Dependant]:
    for dep in dependant.dependencies:
        yield dep
        yield from _walk(dep)


def collect_endpoints(app: FastAPI) -> list[Endpoint]:
    endpoints = []
    for context in iter_route_contexts(app.routes):
        if not isinstance(context.original_route, APIRoute) or not str(context.path).startswith(API):
            continue
        dependant: Dependant = context.dependant
        calls = [d.call for d in _walk(dependant) if d.call is not None]
        names = {getattr(c, "__name__", "") for c in calls}
        perms = frozenset(PERMISSION_DEPENDENCIES[n] for n in names if n in PERMISSION_DEPENDENCIES)
        unknown = {n for n in names if n.startswith("require_") and n not in PERMISSION_DEPENDENCIES}
        assert not unknown, f"{context.path}: unknown permission dependencies {unknown}"
        authenticated = bool(perms) or get_principal in calls
        params = tuple((f.name, f.field_info.annotation) for f in dependant.path_params)
        for method in sorted(context.methods or ()):
            if method in {"HEAD", "OPTIONS"}:
                continue
            endpoints.append(Endpoint(method, str(context.path), perms, authenticated, params))
    return endpoints
