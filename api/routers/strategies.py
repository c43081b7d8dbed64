"""Strategies: CRUD with full-replacement PUT, fork, share, filters, base models.

Visibility: another user's private strategy is 404 (its existence does not leak); a strategy the caller
can read but does not own (a template, someone's public strategy) is 403 on any change.
"""

from __future__ import annotations

from typing import Any

from fastapi import Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from api.deps import IdPath, PageDep, PlatformDep, Reader, SessionUser, dispatch, resource_router
from api.public.base import answers
from api.public.strategies import BaseModelPublic
from api.schemas import StrategyCreate, StrategyFork, StrategyPublic, StrategyUpdate
from commands import messages as m
from commands.bus import CommandResult
from domain.base_models import BASE_MODELS
from domain.errors import NotFound
from domain.strategies import Strategy
from infra.bootstrap import Platform
from projections.strategies import StrategyFilters, get_strategy_doc, list_strategy_docs

router = resource_router("/api/strategies", ["strategies"])


def _body(b: StrategyCreate) -> m.StrategyBody:
    return m.StrategyBody(b.name, b.description, b.base_model, b.entry_rules, b.exit_rules, b.params, b.is_active)


def _from_store(platform: Platform, strategy_id: int) -> dict[str, Any]:
    """The strategy as its events say, for a write response when the read model is still behind
    (read-your-writes timed out): the client never sees 404 for what it just wrote."""
    found = platform.store.load_with_times(Strategy, Strategy.uuid_for(strategy_id))
    if found is None or found[0].deleted:
        raise NotFound(f"Strategy {strategy_id} not found")
    s, created_at, updated_at = found
    return {
        "id": s.strategy_id, "owner_id": s.owner_id, "name": s.name, "description": s.description,
        "base_model": s.spec.base_model, "entry_rules": s.spec.entry_rules, "exit_rules": s.spec.exit_rules,
        "params": s.spec.params, "is_active": s.is_active, "is_template": s.is_template, "is_public": s.is_public,
        "forked_from": s.forked_from, "created_at": created_at, "updated_at": updated_at,
    }


def _written(platform: Platform, result: CommandResult, strategy_id: int, account_id: int,
             status_code: int = 200) -> Any:
    if result.caught_up:
        return _readable(platform, strategy_id, account_id, status_code)
    return _from_store(platform, strategy_id)


def _readable(platform: Platform, strategy_id: int, account_id: int, status_code: int = 200) -> Response:
    """The read model's ready document (the same bytes the list serves), without decoding it."""
    with platform.db.read() as conn:
        row = get_strategy_doc(conn, strategy_id)
    if row is None or not (row.is_template or row.is_public or row.owner_id == account_id):
        raise NotFound(f"Strategy {strategy_id} not found")
    return Response(row.doc, status_code=status_code, media_type="application/json")


@router.get("/base-models", **answers(list[BaseModelPublic]),
            summary="Base models with their parameter schemas and defaults")
def base_models(user: Reader) -> list[dict[str, Any]]:
    """Each base model a strategy builds on: its parameters (type, default, range) and its default rules."""
    return [model.describe() for model in BASE_MODELS.values()]


@router.get("", response_model=list[StrategyPublic], summary="Strategies you can see: yours, templates, shared ones",
            responses={200: {"headers": {"X-Total-Count": {"description": "rows matching the filters"}}}})
def list_(
    user: Reader, page: PageDep, response: Response, platform: PlatformDep,
    is_active: bool | None = None, is_template: bool | None = None, is_public: bool | None = None,
    base_model: str | None = Query(default=None, max_length=64), q: str | None = Query(default=None, max_length=200),
) -> Response:
    """Filtered by flags, base model and a name search `q`."""
    filters = StrategyFilters(is_active, is_template, is_public, base_model, q)
    with platform.db.read() as conn:
        body, total = list_strategy_docs(conn, user.account_id, filters, page.limit, page.offset)
    return Response(body, media_type="application/json", headers={"X-Total-Count": str(total)})


@router.post("", response_model=StrategyPublic, status_code=201, summary="Create a strategy")
def create(body: StrategyCreate, request: Request, user: SessionUser, platform: PlatformDep) -> Any:
    """Rules and parameters are checked against the base model (a bad spec is a 422); omitted rules take the
    base model's defaults."""
    result = dispatch(request, platform, m.CreateStrategy(user.account_id, _body(body)), user)
    return _written(platform, result, result.value, user.account_id, 201)


@router.get("/{strategy_id}", response_model=StrategyPublic, summary="One strategy")
def get(strategy_id: IdPath, user: Reader, platform: PlatformDep) -> Response:
    """Yours, a template or a shared one; another user's private strategy is a 404."""
    return _readable(platform, strategy_id, user.account_id)


@router.put("/{strategy_id}", response_model=StrategyPublic, summary="Replace a strategy (full body)")
def replace(strategy_id: IdPath, body: StrategyUpdate, request: Request, user: SessionUser,
            platform: PlatformDep) -> Any:
    """Every field is required; a GET document may be PUT back (its read-only fields are ignored). A template
    or another user's shared strategy is a 403."""
    result = dispatch(request, platform, m.UpdateStrategy(user.account_id, strategy_id, _body(body)), user)
    return _written(platform, result, strategy_id, user.account_id)


@router.delete("/{strategy_id}", status_code=204, summary="Delete a strategy")
def delete(strategy_id: IdPath, request: Request, user: SessionUser, platform: PlatformDep) -> Response:
    """A strategy that active or paused portfolios use is a 409."""
    dispatch(request, platform, m.DeleteStrategy(user.account_id, strategy_id), user)
    return Response(status_code=204)


@router.post("/{strategy_id}/fork", response_model=StrategyPublic, status_code=201,
             summary="Copy a strategy you can see into your own")
def fork(strategy_id: IdPath, request: Request, user: SessionUser, platform: PlatformDep,
         body: StrategyFork | None = None) -> Any:
    """Optional body `{"name"}`; the copy records `forked_from`."""
    result = dispatch(request, platform, m.ForkStrategy(user.account_id, strategy_id, body.name if body else None),
                      user)
    return _written(platform, result, result.value, user.account_id, 201)


class ShareBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    is_public: bool = Field(strict=True)


@router.post("/{strategy_id}/share", response_model=StrategyPublic,
             summary="Set is_public with {\"is_public\": true|false} (idempotent); without a body, toggle it")
def share(strategy_id: IdPath, request: Request, user: SessionUser, platform: PlatformDep,
          body: ShareBody | None = None) -> Any:
    """A shared strategy is visible (read-only) to every user."""
    cmd = m.ToggleShareStrategy(user.account_id, strategy_id, None if body is None else body.is_public)
    result = dispatch(request, platform, cmd, user)
    return _written(platform, result, strategy_id, user.account_id)
