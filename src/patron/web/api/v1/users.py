"""Staff users and API tokens."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, status
from pydantic import BaseModel, ConfigDict, Field

from patron.auth import (
    Perm,
    Principal,
    Role,
    create_token,
    create_user,
    get_user,
    list_tokens,
    list_users,
    revoke_token,
    update_user,
)
from patron.web.deps import CurrentPrincipal, DbSession, Requires
from patron.web.problems import problem_responses
from patron.web.routing import PatronRoute

router = APIRouter(route_class=PatronRoute, tags=["users"], responses=problem_responses(401, 403, 422))


class UserRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    email: str
    name: str
    role: Role
    language: str
    time_zone: str
    is_active: bool
    created_at: datetime
    last_login_at: datetime | None


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: str = Field(max_length=320)
    password: str = Field(min_length=10, max_length=200)
    role: Role
    name: str = Field(default="", max_length=200)
    language: str = Field(default="en", pattern="^(en|vi|hu|th)$")


class UserUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Role | None = None
    name: str | None = Field(default=None, max_length=200)
    is_active: bool | None = None
    language: str | None = Field(default=None, pattern="^(en|vi|hu|th)$")


class UserPage(BaseModel):
    items: list[UserRead]
    next_cursor: str | None = None


class TokenCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    role: Role | None = None
    expires_at: datetime | None = None
    user_id: str | None = None


class TokenRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    user_id: str
    name: str
    role: Role
    prefix: str
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None
    created_at: datetime


class TokenCreated(TokenRead):
    token: str = Field(description="The secret; shown once")


class TokenPage(BaseModel):
    items: list[TokenRead]
    next_cursor: str | None = None


@router.get("/users", response_model=UserPage)
def list_users_endpoint(db: DbSession, _: Principal = Requires(Perm.USERS_READ)) -> UserPage:
    return UserPage(items=[UserRead.model_validate(u) for u in list_users(db)])


@router.post(
    "/users", response_model=UserRead, status_code=status.HTTP_201_CREATED, responses=problem_responses(409)
)
def create_user_endpoint(
    body: UserCreate, db: DbSession, me: Principal = Requires(Perm.USERS_WRITE)
) -> UserRead:
    user = create_user(
        db,
        email=body.email,
        password=body.password,
        role=body.role,
        name=body.name,
        language=body.language,
        granted_by=me,
    )
    return UserRead.model_validate(user)


@router.get("/users/me", response_model=UserRead)
def me_endpoint(db: DbSession, me: CurrentPrincipal) -> UserRead:
    return UserRead.model_validate(get_user(db, me.user_id))


@router.get("/users/{user_id}", response_model=UserRead, responses=problem_responses(404))
def get_user_endpoint(user_id: str, db: DbSession, _: Principal = Requires(Perm.USERS_READ)) -> UserRead:
    return UserRead.model_validate(get_user(db, user_id))


@router.patch("/users/{user_id}", response_model=UserRead, responses=problem_responses(404, 409))
def update_user_endpoint(
    user_id: str, body: UserUpdate, db: DbSession, me: Principal = Requires(Perm.USERS_WRITE)
) -> UserRead:
    user = get_user(db, user_id)
    update_user(
        db, user, role=body.role, name=body.name, is_active=body.is_active, language=body.language, actor=me
    )
    return UserRead.model_validate(user)


@router.get("/tokens", response_model=TokenPage)
def list_tokens_endpoint(db: DbSession, me: CurrentPrincipal) -> TokenPage:
    user_id = None if me.can(Perm.USERS_READ) else me.user_id
    return TokenPage(items=[TokenRead.model_validate(t) for t in list_tokens(db, user_id=user_id)])


@router.post(
    "/tokens",
    response_model=TokenCreated,
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(404),
)
def create_token_endpoint(
    body: TokenCreate, db: DbSession, me: Principal = Requires(Perm.TOKENS_WRITE)
) -> TokenCreated:
    user = get_user(db, body.user_id or me.user_id)
    token, secret = create_token(
        db, user=user, name=body.name, role=body.role, expires_at=body.expires_at, granted_by=me
    )
    return TokenCreated(**TokenRead.model_validate(token).model_dump(), token=secret)


@router.delete("/tokens/{token_id}", status_code=status.HTTP_204_NO_CONTENT, responses=problem_responses(404))
def revoke_token_endpoint(token_id: str, db: DbSession, me: Principal = Requires(Perm.TOKENS_WRITE)) -> None:
    revoke_token(db, token_id, actor=me)
