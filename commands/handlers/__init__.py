"""Command handlers, registered in one dict."""

from __future__ import annotations

from commands import imports_messages as im
from commands import messages as m
from commands.bus import Handler
from commands.handlers import agent, auth, backtests, hooks, portfolios, research, risk, strategies, telegram, ticks
from commands.handlers import family as family_handlers
from commands.handlers import imports as import_handlers
from commands.handlers import watchlist as watchlist_handlers

HANDLERS: dict[type, Handler] = {
    m.RequestLoginLink: auth.request_login_link,
    m.VerifyLogin: auth.verify_login,
    m.PasswordLogin: auth.password_login,
    m.SetPassword: auth.set_password,
    m.RequestPasswordCode: auth.request_password_code,
    m.ResetPassword: auth.reset_password,
    m.RevokeSessions: auth.revoke_sessions,
    m.Logout: auth.logout,
    m.IssueAgentKey: auth.issue_agent_key,
    m.RevokeAgentKey: auth.revoke_agent_key,
    m.GrantAdmin: auth.grant_admin,
    m.CreateStrategy: strategies.create_strategy,
    m.UpdateStrategy: strategies.update_strategy,
    m.DeleteStrategy: strategies.delete_strategy,
    m.ForkStrategy: strategies.fork_strategy,
    m.ToggleShareStrategy: strategies.toggle_share_strategy,
    m.SeedTemplates: strategies.seed_templates,
    m.RecordBacktestRun: backtests.record_backtest_run,
    m.DeleteBacktestRun: backtests.delete_backtest_run,
    m.DeployPortfolio: portfolios.deploy_portfolio,
    m.ChangePortfolioStatus: portfolios.change_portfolio_status,
    m.RunPortfolioDay: portfolios.run_portfolio_day,
    m.CheckDailyLoss: portfolios.check_daily_loss,
    m.DecideSignal: portfolios.decide_signal,
    m.PlaceCart: portfolios.place_cart,
    m.ClosePosition: portfolios.close_position,
    m.ApplyTicks: ticks.apply_ticks,
    m.CreateRiskRule: risk.create_risk_rule,
    m.UpdateRiskRule: risk.update_risk_rule,
    m.DeleteRiskRule: risk.delete_risk_rule,
    m.SetWatchlist: watchlist_handlers.set_watchlist,
    im.ImportTradebook: import_handlers.import_tradebook,
    im.ImportLedger: import_handlers.import_ledger,
    im.ImportCas: import_handlers.import_cas,
    im.RecordCorporateAction: import_handlers.record_corporate_action,
    im.CreateFamilyGroup: family_handlers.create_family_group,
    im.InviteFamilyMember: family_handlers.invite_family_member,
    im.AcceptFamilyInvitation: family_handlers.accept_family_invitation,
    im.LeaveFamilyGroup: family_handlers.leave_family_group,
    im.RemoveFamilyMember: family_handlers.remove_family_member,
}
HANDLERS.update(agent.HANDLERS)  # broker connection and agent results (commands.agent_messages)
HANDLERS.update(hooks.HANDLERS)  # inbound alert hooks (commands.hooks_messages)
HANDLERS.update(research.HANDLERS)  # research jobs (commands.research_messages)
HANDLERS.update(telegram.HANDLERS)  # the Telegram link and its buttons (commands.telegram_messages)
