"""Command handlers, registered in one dict."""

from __future__ import annotations

from commands import messages as m
from commands.bus import Handler
from commands.handlers import auth, backtests, portfolios, risk, strategies

HANDLERS: dict[type, Handler] = {
    m.RequestLoginLink: auth.request_login_link,
    m.VerifyLogin: auth.verify_login,
    m.PasswordLogin: auth.password_login,
    m.SetPassword: auth.set_password,
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
    m.CreateRiskRule: risk.create_risk_rule,
    m.UpdateRiskRule: risk.update_risk_rule,
    m.DeleteRiskRule: risk.delete_risk_rule,
}
