"""Analytics over the imported trades and the model portfolios' fills, and the family view built from it.
Amounts in INR, percentages in percent; a value the data cannot give (no mark, no closed trade) is null."""

from __future__ import annotations

from pydantic import Field

from api.public.base import Number, Public


class HoldingsPart(Public):
    invested: Number
    current_value: Number
    unrealized_pnl: Number
    holdings: int
    unmarked: list[str] = Field(description="symbols with no real price (left out of the values)")


class UnmatchedSell(Public):
    symbol: str
    trade_id: str | None
    sell_date: str
    quantity: Number


class UnmatchedSells(Public):
    """Imported sells FIFO could not match (more sold than held): no P&L, reported instead of dropped."""

    count: int
    quantity: Number
    sells: list[UnmatchedSell]


class SummaryPublic(Public):
    invested: Number
    current_value: Number
    realized_pnl: Number
    unrealized_pnl: Number
    charges: Number
    net_realized_pnl: Number
    ledger_charges: Number
    xirr: Number | None = Field(description="annualised, percent")
    xirr_as_of: str | None
    xirr_reason: str | None = Field(description="why there is no rate: no_flows, one_sign, no_root")
    win_rate: Number | None
    closed_trades: int
    trades: int
    avg_holding_days: Number | None
    equity: HoldingsPart
    mutual_funds: HoldingsPart
    source: str
    unmatched_sells: UnmatchedSells


class PnlRowPublic(Public):
    """One group: `symbol`, `month` (YYYY-MM), `year` or `strategy`, by `group_by`."""

    symbol: str | None = None
    month: str | None = None
    year: str | None = None
    strategy: str | None = None
    trades: int
    wins: int
    losses: int
    win_rate: Number | None
    quantity: Number
    buy_value: Number
    sell_value: Number
    realized_pnl: Number
    charges: Number
    net_pnl: Number


class JournalRowPublic(Public):
    trade_id: str | None
    order_id: str | None
    source: str = Field(description="imported, paper or live")
    portfolio_id: int | None
    strategy: str | None
    symbol: str
    exchange: str | None
    isin: str | None
    side: str
    quantity: Number
    price: Number
    value: Number
    charges: Number | None
    trade_date: str
    executed_at: str | None
    realized_pnl: Number | None = Field(description="sells: FIFO P&L before charges")
    net_pnl: Number | None
    holding_days: Number | None


class LotPublic(Public):
    buy_date: str
    quantity: Number
    price: Number
    holding_days: int | None


class HoldingPublic(Public):
    asset_class: str = Field(description="equity or mutual_fund")
    symbol: str = Field(description="mutual funds: the scheme")
    exchange: str | None = None
    isin: str | None
    folio: str | None = None
    amc: str | None = None
    quantity: Number
    avg_cost: Number | None
    invested: Number | None
    last_price: Number | None
    mark_date: str | None
    mark_source: str | None
    marked: bool = Field(description="false: no real price for it (never a synthetic one); not in the totals")
    current_value: Number | None
    unrealized_pnl: Number | None
    unrealized_pct: Number | None
    lots: list[LotPublic] = Field(description="open FIFO lots (equity)")


class CorporateActionPublic(Public):
    symbol: str
    ex_date: str
    kind: str
    ratio_new: Number
    ratio_old: Number
    recorded: bool = Field(description="false: the same action was recorded before")


# ---------------------------------------------------------------------------------------------- family


class FamilyMemberPublic(Public):
    account_id: int
    email: str
    role: str = Field(description="owner or member")
    joined_at: str | None


class InvitationSummary(Public):
    id: int
    email: str
    expires_at: str | None


class FamilyGroupPublic(Public):
    id: int
    name: str
    owner_id: int
    role: str = Field(description="yours in the group")
    created_at: str | None
    members: list[FamilyMemberPublic]
    pending_invitations: list[InvitationSummary] = Field(description="shown to the owner")


class InvitedPublic(Public):
    invitation_id: int
    group_id: int
    email: str
    status: str
    expires_at: str | None
    email_sent: bool


class InvitationPublic(Public):
    id: int
    group_id: int
    group_name: str
    status: str
    created_at: str | None
    expires_at: str | None


class MemberTotals(Public):
    account_id: int
    email: str
    role: str
    joined_at: str | None = None
    invested: Number
    current_value: Number
    realized_pnl: Number
    unrealized_pnl: Number
    xirr: Number | None
    equity: HoldingsPart
    mutual_funds: HoldingsPart


class PartTotals(Public):
    invested: Number
    current_value: Number
    unrealized_pnl: Number


class FamilyTotals(Public):
    invested: Number
    current_value: Number
    realized_pnl: Number
    unrealized_pnl: Number
    equity: PartTotals
    mutual_funds: PartTotals
    xirr: Number | None


class TopHolding(Public):
    asset_class: str
    symbol: str
    isin: str | None
    quantity: Number
    invested: Number
    current_value: Number
    members: int = Field(description="how many members hold it")


class ConsolidatedPublic(Public):
    group_id: int
    name: str
    members: list[MemberTotals]
    total: FamilyTotals
    top_holdings: list[TopHolding]
