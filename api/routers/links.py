"""Pages a person opens from an email, under `/link/...`: small server-rendered HTML that works with
JavaScript off (no script at all, so the web app's CSP holds).

Opening a link never changes anything by itself: the page shows what will happen and a button whose form
POSTs to the same origin. That is what makes an emailed link safe to click *and* keeps someone else's
link from silently signing this browser in to their account (login CSRF): the sign-in page names the
account, and the POST is refused unless the browser says it came from this site (`Sec-Fetch-Site` or
`Origin`).

- `GET /link/sign-in?email=&token=`: "Sign in as …" → `POST /link/sign-in` → session cookie, 303 to `/`. A
  link already used, replaced by a newer one or expired says so at once, with a link to ask for a new one.
- `GET /link/family-invite?group=&token=`: signed in, "Join …" → `POST /link/family-invite`; signed out,
  a form that emails a sign-in code, then a code form that signs in and comes back to the invitation.

Every answer is an HTML page, errors too: a link a mail client cut short (a missing or damaged parameter)
gets a page saying so, never FastAPI's JSON validation error.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from html import escape
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, HTTPException, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from pydantic import EmailStr
from starlette.concurrency import run_in_threadpool

from api.csrf import from_this_site
from api.deps import SESSION_COOKIE, Principal, current_principal, dispatch, set_session_cookie
from api.signin import client_ip, login
from commands import imports_messages as im
from commands import messages as m
from commands.handlers.auth import LoginResult, normalize_email
from domain.errors import DomainError
from infra.bootstrap import Platform
from projections.family import invitations_for

# The web app's policy (see docs/DESIGN.md); these pages need no script at all.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
       "connect-src 'self' ws: wss:; frame-ancestors 'none'; base-uri 'self'; form-action 'self'")
_STYLE = ("body{font-family:system-ui,sans-serif;max-width:34rem;margin:3rem auto;padding:0 1rem;line-height:1.5;"
          "color:#1b1f24;background:#fff}h1{font-size:1.4rem}label{display:block;margin:.8rem 0 .2rem}"
          "input{font-size:1rem;padding:.4rem;width:100%;box-sizing:border-box}"
          "button{font-size:1rem;padding:.5rem 1.2rem;margin-top:1rem;cursor:pointer}"
          ".note{color:#4a5560;font-size:.92rem}.error{color:#a4000f}")


def _page(title: str, body: str, status_code: int = 200) -> HTMLResponse:
    html = (f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{escape(title)} · TraderTape</title><style>{_STYLE}</style></head>"
            f"<body><main><h1>{escape(title)}</h1>\n{body}\n</main></body></html>\n")
    return HTMLResponse(html, status_code=status_code, headers={
        "Content-Security-Policy": CSP, "Cache-Control": "no-store",
        "Referrer-Policy": "no-referrer",  # the URL holds a one-time token
        "X-Content-Type-Options": "nosniff"})


def _hidden(**fields: object) -> str:
    return "".join(f'<input type="hidden" name="{escape(k)}" value="{escape(str(v))}">'
                   for k, v in fields.items() if v is not None)


_HOME = ("/", "Go to TraderTape")


def _error(detail: str, status_code: int, action: tuple[str, str] = _HOME) -> HTMLResponse:
    href, label = action
    return _page("That did not work", f'<p class="error" role="alert">{escape(detail)}</p>'
                 f'<p><a href="{escape(href)}">{escape(label)}</a></p>', status_code)


def _new_link(email: str | None = None) -> tuple[str, str]:
    """Where to ask for a new sign-in link or code: the sign-in page (the address filled in)."""
    return ("/signin?" + urlencode({"email": email}) if email else "/signin"), "Request a new sign-in link"


_DAMAGED = ("This link is incomplete or damaged (a mail client may have cut it short). Open it again from the "
            "email, making sure the whole address is used, or ask for a new one.")


class _HtmlErrorsRoute(APIRoute):
    """A request these pages cannot read (a missing or malformed parameter: a link cut short by a mail client)
    answers an HTML page saying so, not FastAPI's JSON validation error."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        sign_in = self.path == "/link/sign-in"

        async def html_errors(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError:
                return _error(_DAMAGED, 400, _new_link() if sign_in else _HOME)

        return html_errors


router = APIRouter(prefix="/link", include_in_schema=False, route_class=_HtmlErrorsRoute)


def _same_origin(request: Request, platform: Platform) -> bool:
    """A form POSTed from one of our own pages (not a cross-site form auto-submitted by another site): the
    CSRF rule's browser signals only (a signed-out browser's sign-in has no cookie for that rule to guard)."""
    return from_this_site(request.scope, platform.settings.public_base_url)


def _cross_site() -> HTMLResponse:
    return _error("This form must be sent from TraderTape's own page: open the link from your email again "
                  "and press the button there.", 403)


def _safe_next(target: str | None) -> str:
    """Only our own link pages are followed after sign-in (never an absolute URL: no open redirect)."""
    if target and target.startswith("/link/") and "//" not in target and "\\" not in target:
        return target
    return "/"


async def _principal(request: Request) -> Principal | None:
    if not request.cookies.get(SESSION_COOKIE):
        return None
    try:
        principal = await current_principal(request, Response())
    except HTTPException:
        return None
    return principal if principal.via == "session" else None


def _platform(request: Request) -> Platform:
    platform: Platform = request.app.state.platform
    return platform


# ------------------------------------------------------------------------------------------------- sign-in


_DEAD_LINK = ("This sign-in link has expired or was already used (each link works once, for 15 minutes, and "
              "a newer one replaces it). Ask for a new one.")


@router.get("/sign-in")
async def sign_in_page(request: Request, email: Annotated[EmailStr, Query()],
                       token: Annotated[str, Query(min_length=1, max_length=200)]) -> HTMLResponse:
    platform = _platform(request)
    address = normalize_email(str(email))
    now = platform.bus.deps.clock.now()
    live = await run_in_threadpool(platform.security.login_token_live, address, platform.token_hash(token), now)
    if not live:  # say so now, not after the button (nothing is used up by looking)
        return _error(_DEAD_LINK, 400, _new_link(address))
    return _page("Sign in to TraderTape", (
        f"<p>You are about to sign in as <strong>{escape(str(email))}</strong>.</p>"
        '<form method="post" action="/link/sign-in">'
        f"{_hidden(email=email, token=token)}"
        f'<button type="submit">Sign in as {escape(str(email))}</button></form>'
        '<p class="note">Only continue if you asked for this link yourself a moment ago. A link someone else '
        "sent you would sign this browser in to their account. The link works once and expires after "
        "15 minutes.</p>"))


@router.post("/sign-in")
async def sign_in(request: Request, email: Annotated[EmailStr, Form()],
                  token: Annotated[str | None, Form(max_length=200)] = None,
                  otp: Annotated[str | None, Form(max_length=12)] = None,
                  next_: Annotated[str | None, Form(alias="next", max_length=600)] = None) -> Response:
    platform = _platform(request)
    if not _same_origin(request, platform):
        return _cross_site()
    code = (otp or "").strip() or None
    cmd = m.VerifyLogin(str(email), token or None, code, client_ip(request))
    try:  # through the API's sign-in: a refusal is logged as a security event there
        result = await run_in_threadpool(login, request, platform, cmd, str(email), "otp" if code else "link")
    except DomainError as exc:
        return _error(exc.detail, exc.status_code, _retry(str(email), next_))
    signed_in: LoginResult = result.value
    redirect = RedirectResponse(_safe_next(next_), status_code=303)
    set_session_cookie(redirect, platform, signed_in.session_token, platform.settings.session_days * 86400)
    return redirect


def _retry(email: str, next_: str | None) -> tuple[str, str]:
    """After a refused sign-in or a code that could not be sent: back to the invitation page a code form came
    from (it asks for a new code), else the sign-in page."""
    target = _safe_next(next_)
    return (target, "Back to ask for a new code") if target != "/" else _new_link(normalize_email(email))


def _code_form(email: str, target: str, note: str = "") -> str:
    return (f"{note}"
            '<form method="post" action="/link/sign-in">'
            f"{_hidden(email=email, next=target)}"
            '<label for="otp">6-digit code from the email</label>'
            '<input id="otp" name="otp" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9]{6}" '
            'maxlength="6" required>'
            '<button type="submit">Sign in</button></form>')


@router.post("/sign-in-code")
async def send_code(request: Request, email: Annotated[EmailStr, Form()],
                    next_: Annotated[str | None, Form(alias="next", max_length=600)] = None) -> Response:
    """Email a sign-in code, then ask for it; after sign-in the browser returns to `next`."""
    platform = _platform(request)
    if not _same_origin(request, platform):
        return _cross_site()
    try:
        await run_in_threadpool(dispatch, request, platform, m.RequestLoginLink(str(email), client_ip(request)))
    except DomainError as exc:  # a rate limit, or the mail server not taking the email (503)
        return _error(exc.detail, exc.status_code, _retry(str(email), next_))
    return _page("Enter your code", _code_form(str(email), _safe_next(next_), (
        f"<p>If <strong>{escape(str(email))}</strong> can receive email, a 6-digit code is on its way "
        "(it expires in 15 minutes).</p>")))


# ------------------------------------------------------------------------------------------ family invite


def _invite_target(group: int, token: str) -> str:
    return "/link/family-invite?" + urlencode({"group": group, "token": token})


@router.get("/family-invite")
async def family_invite_page(request: Request, group: Annotated[int, Query(ge=1, le=2**63 - 1)],
                             token: Annotated[str, Query(min_length=1, max_length=200)]) -> HTMLResponse:
    principal = await _principal(request)
    if principal is None:
        return _page("Family group invitation", (
            "<p>You have been invited to a family group on TraderTape. Sign in with the email address the "
            "invitation was sent to, then accept it.</p>"
            '<form method="post" action="/link/sign-in-code">'
            f"{_hidden(next=_invite_target(group, token))}"
            '<label for="email">Your email address</label>'
            '<input id="email" name="email" type="email" autocomplete="email" required>'
            '<button type="submit">Email me a sign-in code</button></form>'))
    platform = _platform(request)

    def pending() -> list[dict[str, Any]]:
        with platform.db.read() as conn:
            return invitations_for(conn, principal.email.lower())

    name = next((i["group_name"] for i in await run_in_threadpool(pending) if i["group_id"] == group), None)
    what = f"the family group <strong>{escape(name)}</strong>" if name else "a family group"
    return _page("Family group invitation", (
        f"<p>You are signed in as <strong>{escape(principal.email)}</strong> and invited to join {what}.</p>"
        "<p>Members see each other's consolidated totals (invested, current value, P&amp;L, XIRR, top "
        "holdings), never individual trades.</p>"
        '<form method="post" action="/link/family-invite">'
        f"{_hidden(group=group, token=token)}"
        '<button type="submit">Join the group</button></form>'))


@router.post("/family-invite")
async def accept_family_invite(request: Request, group: Annotated[int, Form(ge=1, le=2**63 - 1)],
                               token: Annotated[str, Form(min_length=1, max_length=200)]) -> Response:
    platform = _platform(request)
    if not _same_origin(request, platform):
        return _cross_site()
    principal = await _principal(request)
    if principal is None:
        return RedirectResponse(_invite_target(group, token), status_code=303)
    cmd = im.AcceptFamilyInvitation(principal.account_id, principal.email, group, token)
    try:
        await run_in_threadpool(dispatch, request, platform, cmd, principal)
    except DomainError as exc:
        return _error(exc.detail, exc.status_code)
    return _page("You joined the family group", (
        "<p>The other members now see your consolidated totals, and you theirs.</p>"
        '<p><a href="/">Go to TraderTape</a></p>'))


# ----------------------------------------------------------------------- the old link in earlier emails


legacy = APIRouter(include_in_schema=False)


@legacy.get("/api/auth/verify-link")
async def old_sign_in_link(email: Annotated[EmailStr, Query()],
                           token: Annotated[str, Query(max_length=200)]) -> RedirectResponse:
    """Links in emails sent before `/link/sign-in` existed: show the confirm page (never sign in on a GET)."""
    return RedirectResponse("/link/sign-in?" + urlencode({"email": str(email), "token": token}), status_code=303)
