"""The live broker's data as Kite gives it (proxied, cached ~30 s): Kite's own shapes, so open objects whose
common fields are typed (Kite's API documents the rest)."""

from __future__ import annotations

from pydantic import Field

from api.public.base import Number, OpenObject, OpenPublic, Public


class KiteRowPublic(OpenPublic):
    """A Kite holding or position."""

    tradingsymbol: str | None = None
    exchange: str | None = None
    isin: str | None = None
    product: str | None = None
    quantity: Number | None = None
    average_price: Number | None = None
    last_price: Number | None = None
    pnl: Number | None = None


class KitePositionsPublic(OpenPublic):
    net: list[KiteRowPublic] = Field(default_factory=list)
    day: list[KiteRowPublic] = Field(default_factory=list)


class KiteOrderPublic(OpenPublic):
    order_id: str | None = None
    status: str | None = None
    tradingsymbol: str | None = None
    exchange: str | None = None
    transaction_type: str | None = None
    quantity: Number | None = None
    price: Number | None = None


class KiteMarginsPublic(OpenPublic):
    equity: OpenObject | None = Field(default=None, description="Kite's equity segment: net, available, utilised")
    commodity: OpenObject | None = None


class LoginUrlPublic(Public):
    login_url: str = Field(description="open it in the browser; Kite redirects to the callback")


class KiteLoginReceived(Public):
    detail: str
    status: str = Field(description="pending: the agent exchanges the request token")
