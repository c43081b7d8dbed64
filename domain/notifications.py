"""Notifications, the pure part: what can be notified, the user's preferences (each kind on or off per
channel, quiet hours in IST) and how a notification reads as text and HTML (Indian money, IST times,
links into the web app).

The notifier (streams/notifier.py) records notifications from the event stream and the channels send
them; nothing here does I/O.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any

from domain.errors import DomainError
from domain.market_hours import IST
from domain.money import format_inr, format_number, format_price

# Every channel a preference can name. A channel the server has not configured (Telegram without a bot
# token, an account that has not linked a chat) simply sends nothing.
CHANNELS: tuple[str, ...] = ("in_app", "email", "telegram")


@dataclass(frozen=True)
class Kind:
    label: str
    defaults: tuple[str, ...]  # the channels on by default
    link: str  # where the web app shows it


KINDS: dict[str, Kind] = {
    "signal_pending": Kind("Signals waiting for your approval", ("in_app", "email", "telegram"), "/approvals"),
    "signal_expiring": Kind("Reminder before a pending signal expires", ("in_app", "email", "telegram"), "/approvals"),
    "cart_placed": Kind("Cart placed, and items refused", ("in_app", "email", "telegram"), "/approvals"),
    "fill_entry": Kind("Entry fills", ("in_app", "email", "telegram"), "/positions"),
    "fill_exit": Kind("Exit fills (stop, target, trailing, manual)", ("in_app", "email", "telegram"), "/positions"),
    "risk_breach": Kind("Risk rule breaches", ("in_app", "email", "telegram"), "/risk"),
    "kill_switch": Kind("Kill switch engaged automatically", ("in_app", "email", "telegram"), "/risk"),
    "agent_offline": Kind("Agent offline during market hours", ("in_app", "email", "telegram"), "/broker"),
    "kite_session": Kind("Kite session expiring or ended", ("in_app", "email", "telegram"), "/broker"),
    "import_finished": Kind("Import finished", ("in_app", "email"), "/imports"),
    "research_finished": Kind("Long research job finished", ("in_app", "email"), "/backtests"),
    "daily_digest": Kind("Daily digest after the close", ("in_app", "email"), "/"),
}

# ----------------------------------------------------------------------------------------- preferences


def default_preferences() -> dict[str, Any]:
    return {"kinds": {k: {c: c in kind.defaults for c in CHANNELS} for k, kind in KINDS.items()},
            "quiet_hours": None}


def _hhmm(value: Any, field: str) -> str:
    if not isinstance(value, str):
        raise DomainError(f"quiet_hours.{field} must be a time \"HH:MM\" (IST)")
    try:
        t = time.fromisoformat(value)
    except ValueError:
        raise DomainError(f"quiet_hours.{field} must be a time \"HH:MM\" (IST)") from None
    return t.strftime("%H:%M")


def normalize_preferences(doc: dict[str, Any]) -> dict[str, Any]:
    """A full preferences document from a (possibly partial) one: unknown kinds or channels are a
    DomainError naming them; kinds and channels left out keep their defaults."""
    out = default_preferences()
    kinds = doc.get("kinds", {})
    if not isinstance(kinds, dict):
        raise DomainError("kinds must be an object: {kind: {channel: true|false}}")
    for name, channels in kinds.items():
        if name not in KINDS:
            raise DomainError(f"Unknown notification kind; known: {', '.join(KINDS)}")
        if not isinstance(channels, dict):
            raise DomainError(f"kinds.{name} must be an object: {{channel: true|false}}")
        for channel, on in channels.items():
            if channel not in CHANNELS:
                raise DomainError(f"Unknown channel in kinds.{name}; known: {', '.join(CHANNELS)}")
            if not isinstance(on, bool):
                raise DomainError(f"kinds.{name}.{channel} must be true or false")
            out["kinds"][name][channel] = on
    quiet = doc.get("quiet_hours")
    if quiet is not None:
        if not isinstance(quiet, dict) or set(quiet) - {"start", "end"}:
            raise DomainError("quiet_hours must be null or {\"start\": \"HH:MM\", \"end\": \"HH:MM\"} (IST)")
        start, end = _hhmm(quiet.get("start"), "start"), _hhmm(quiet.get("end"), "end")
        if start == end:
            raise DomainError("quiet_hours.start and quiet_hours.end must differ")
        out["quiet_hours"] = {"start": start, "end": end}
    return out


def channel_on(prefs: dict[str, Any], kind: str, channel: str) -> bool:
    return bool(prefs.get("kinds", {}).get(kind, {}).get(channel, False))


def quiet_until(prefs: dict[str, Any], now: datetime) -> datetime | None:
    """When the quiet hours around `now` end (UTC), or None when `now` is outside them. The window is
    in IST and may wrap midnight (22:00-07:00). The in-app list ignores quiet hours; pushed channels
    (email, Telegram) wait until the end."""
    quiet = prefs.get("quiet_hours")
    if not quiet:
        return None
    local = now.astimezone(IST)
    start, end = time.fromisoformat(quiet["start"]), time.fromisoformat(quiet["end"])
    t = local.time()
    inside = (start <= t < end) if start < end else (t >= start or t < end)
    if not inside:
        return None
    day = local.date() if (start < end or t < end) else local.date() + timedelta(days=1)
    return datetime.combine(day, end, IST).astimezone(UTC)


# ------------------------------------------------------------------------------------------- rendering


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str
    link: str  # absolute URL into the web app


def ist(iso: str | None) -> str:
    """'2026-03-02T10:00:00+00:00' -> '2 Mar 2026, 15:30 IST'."""
    if not iso:
        return "\u2013"
    try:
        dt = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return iso
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    local = dt.astimezone(IST)
    return f"{local.day} {local:%b %Y, %H:%M} IST"


EXIT_LABELS = {"stop_loss": "stop loss", "target": "target", "trailing_stop": "trailing stop",
               "manual": "manual close", "max_hold": "held the maximum days", "exit_rule": "exit rule"}


def _item_line(kind: str, item: dict[str, Any]) -> str:
    """One line of a notification's list, plain text."""
    sym = item.get("symbol") or "?"
    pf = f" ({item['portfolio']})" if item.get("portfolio") else ""
    if kind == "signal_pending":
        qty = item.get("quantity")
        price = format_price(item.get("limit_price") or item.get("reference_price"))
        return f"BUY {qty} {sym} at \u20b9{price}{pf}, expires {ist(item.get('expires_at'))}"
    if kind == "signal_expiring":
        return f"{sym}{pf} expires {ist(item.get('expires_at'))}"
    if kind == "cart_placed":
        if item.get("refused"):
            return f"refused: {sym}{pf} \u2014 {item.get('reason', '')}"
        return f"placed: {item.get('order_type', 'order')} BUY {item.get('quantity')} {sym}{pf}"
    if kind == "fill_entry":
        return (f"bought {item.get('quantity')} {sym} at \u20b9{format_price(item.get('price'))}{pf}; "
                f"stop \u20b9{format_price(item.get('stop_loss'))}, target \u20b9{format_price(item.get('target'))}")
    if kind == "fill_exit":
        reason = EXIT_LABELS.get(str(item.get("reason")), str(item.get("reason") or "exit"))
        return (f"sold {item.get('quantity') or ''} {sym} at \u20b9{format_price(item.get('price'))} ({reason}){pf}; "
                f"P&L {format_inr(item.get('pnl'), sign=True)}").replace("sold  ", "sold ")
    if kind == "risk_breach":
        return f"{item.get('message', '')}{pf}"
    if kind == "kill_switch":
        return (f"day's loss {format_inr(item.get('loss'))} passed the limit {format_inr(item.get('limit'))}: "
                "new entries are blocked and placed entries cancelled")
    if kind == "import_finished":
        return (f"{item.get('import_kind', '')} import #{item.get('batch_id')}: "
                f"{format_number(item.get('imported'), 0)} rows imported, "
                f"{format_number(item.get('rejected'), 0)} rejected, "
                f"{format_number(item.get('duplicates'), 0)} duplicates")
    if kind == "daily_digest":
        return str(item.get("line", ""))
    return str(item.get("text") or item.get("message") or "")


def _title(kind: str, items: list[dict[str, Any]]) -> str:
    n = len(items)
    if kind == "signal_pending":
        return f"{n} signal{'s' if n != 1 else ''} waiting for your approval"
    if kind == "signal_expiring":
        return f"{n} pending signal{'s' if n != 1 else ''} expire{'s' if n == 1 else ''} soon"
    if kind == "cart_placed":
        refused = sum(1 for i in items if i.get("refused"))
        placed = n - refused
        if not placed:  # (a kill switch cancelling placed entries, a cart the rules refused whole)
            return f"{refused} order{'s' if refused != 1 else ''} refused or cancelled"
        return f"Cart placed: {placed} order{'s' if placed != 1 else ''}" + (f", {refused} refused" if refused else "")
    if kind == "fill_entry":
        return f"Entry filled: {items[0].get('symbol')}" if n == 1 else f"{n} entries filled"
    if kind == "fill_exit":
        return f"Exit filled: {items[0].get('symbol')}" if n == 1 else f"{n} exits filled"
    if kind == "risk_breach":
        return "Risk rule breached" if n == 1 else f"{n} risk rule breaches"
    if kind == "kill_switch":
        return "Kill switch engaged: daily loss limit reached"
    if kind == "import_finished":
        return "Import finished"
    if kind in ("agent_offline", "kite_session", "research_finished", "daily_digest"):
        return str(items[0].get("title") or KINDS[kind].label) if items else KINDS[kind].label
    return KINDS[kind].label if kind in KINDS else kind


def title_of(kind: str, items: list[dict[str, Any]]) -> str:
    return _title(kind, items)


def lines_of(kind: str, items: list[dict[str, Any]]) -> list[str]:
    if kind == "daily_digest":  # one item holding the digest's lines
        return [str(line.get("line", "")) for i in items for line in i.get("lines", [])]
    return [_item_line(kind, i) for i in items]


def sections_of(kind: str, items: list[dict[str, Any]]) -> list[tuple[str | None, list[str]]]:
    """The lines in sections: (heading or None, lines). The digest's lines marked `heading` start one."""
    if kind != "daily_digest":
        return [(None, lines_of(kind, items))]
    out: list[tuple[str | None, list[str]]] = [(None, [])]
    for line in (x for i in items for x in i.get("lines", [])):
        if line.get("heading"):
            out.append((str(line.get("line", "")), []))
        else:
            out[-1][1].append(str(line.get("line", "")))
    return [s for s in out if s[0] is not None or s[1]]


def _text_sections(sections: list[tuple[str | None, list[str]]]) -> str:
    return "\n".join((f"{head}:\n" if head else "") + "".join(f"- {line}\n" for line in lines)
                     for head, lines in sections)


def _html_sections(sections: list[tuple[str | None, list[str]]], level: str = "h3") -> str:
    return "".join((f"<{level}>{html.escape(head)}</{level}>" if head else "")
                   + ("<ul>" + "".join(f"<li>{html.escape(line)}</li>" for line in lines) + "</ul>" if lines else "")
                   for head, lines in sections)


def render(kind: str, items: list[dict[str, Any]], link_path: str, base_url: str, when: str) -> Rendered:
    """The email of one notification (or several merged): subject, text part, HTML part, and the link."""
    link = base_url.rstrip("/") + (link_path if link_path.startswith("/") else "/" + link_path)
    title = _title(kind, items)
    sections = sections_of(kind, items)
    text = (f"{title}\n\n" + _text_sections(sections)
            + f"\nOpen TraderTape: {link}\n\n({ist(when)}. Change what you are told in Settings > Notifications: "
            + f"{base_url.rstrip('/')}/settings/notifications)\n")
    page = (f"<!doctype html><html><body style=\"font-family:sans-serif\"><h2>{html.escape(title)}</h2>"
            f"{_html_sections(sections)}<p><a href=\"{html.escape(link)}\">Open TraderTape</a></p>"
            f"<p style=\"color:#666;font-size:small\">{html.escape(ist(when))}. "
            f"<a href=\"{html.escape(base_url.rstrip('/'))}/settings/notifications\">Notification settings</a></p>"
            "</body></html>")
    return Rendered(f"TraderTape: {title}", text, page, link)


def possible_repeat(r: Rendered, first_sent: str | None) -> Rendered:
    """A message sent again because the notifier stopped after recording it sent but before the server
    confirmed it (it may or may not have arrived): marked as a possible repeat, like FIX's PossResend,
    rather than risk it never arriving."""
    note = (f"This may repeat a message sent at {ist(first_sent)}: TraderTape stopped before the server "
            "confirmed that one arrived.")
    page = r.html.replace("</h2>", f"</h2><p style=\"color:#666\"><em>{html.escape(note)}</em></p>", 1)
    return Rendered(f"[Possible repeat] {r.subject}", f"{note}\n\n{r.text}", page, r.link)


def render_many(parts: list[tuple[str, list[dict[str, Any]], str]], base_url: str, when: str) -> Rendered:
    """Several notifications in one message (a user's rate limit reached): a section per notification."""
    if len(parts) == 1:
        return render(parts[0][0], parts[0][1], parts[0][2], base_url, when)
    base = base_url.rstrip("/")
    title = f"{len(parts)} notifications"
    text_parts, html_parts = [], []
    for kind, items, path in parts:
        t = _title(kind, items)
        sections = sections_of(kind, items)
        text_parts.append(f"{t}\n" + _text_sections(sections) + f"{base}{path}\n")
        html_parts.append(f"<h3><a href=\"{html.escape(base + path)}\">{html.escape(t)}</a></h3>"
                          + _html_sections(sections, "h4"))
    text = f"{title}\n\n" + "\n".join(text_parts) + f"\n({ist(when)}. Settings: {base}/settings/notifications)\n"
    page = (f"<!doctype html><html><body style=\"font-family:sans-serif\"><h2>{html.escape(title)}</h2>"
            + "".join(html_parts) + f"<p><a href=\"{html.escape(base)}/notifications\">All notifications</a></p>"
            "</body></html>")
    return Rendered(f"TraderTape: {title}", text, page, f"{base}/notifications")
