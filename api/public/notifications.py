"""Notifications and their preferences."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from api.public.base import OpenPublic, Public


class NotificationItem(OpenPublic):
    """One thing a notification tells (its keys depend on the kind: a signal, a fill, a job)."""

    symbol: str | None = None
    title: str | None = None
    text: str | None = None
    link: str | None = None


class DeliveryPublic(Public):
    channel: str = Field(description="email or telegram (in_app is the list itself)")
    status: Literal["pending", "sending", "sent", "failed", "skipped"] = Field(
        description="sending: a notifier is sending it now (pending again if it stops before the server took it)")
    attempts: int
    sent_at: str | None = Field(description="UTC ISO 8601")
    next_attempt_at: str | None = Field(description="while pending")
    error: str | None


class NotificationPublic(Public):
    id: int
    kind: str
    title: str
    items: list[NotificationItem]
    link: str | None = Field(description="where the web app shows it")
    occurred_at: str | None
    created_at: str = Field(description="UTC ISO 8601")
    read: bool
    deliveries: list[DeliveryPublic]


class UnreadPublic(Public):
    unread: int


class QuietHoursPublic(Public):
    start: str = Field(description="HH:MM, IST")
    end: str = Field(description="HH:MM, IST")


class PreferencesPublic(Public):
    kinds: dict[str, dict[str, bool]] = Field(description="kind -> channel -> on/off")
    quiet_hours: QuietHoursPublic | None
    labels: dict[str, str] = Field(description="kind -> its label")
    channels: list[str]
    timezone: Literal["Asia/Kolkata"]
