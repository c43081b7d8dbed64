"""Notifications: the in-app list (newest first, read/unread), marking one read, and the preferences
(each kind on or off per channel, quiet hours in IST). The notifier (streams/notifier.py) records and
sends them; the live push to open pages rides the tick WebSocket (`notification` messages, api/routers/ws.py)."""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import Query, Response
from pydantic import BaseModel, ConfigDict, Field, StrictBool, model_validator

from api.deps import IdPath, PageDep, PlatformDep, Reader, SessionUser, resource_router
from api.public.base import answers
from api.public.notifications import NotificationPublic, PreferencesPublic, UnreadPublic
from domain.errors import NotFound
from domain.notifications import CHANNELS, KINDS, normalize_preferences
from projections.notifications import (
    get_notification,
    get_preferences,
    list_notifications,
    mark_read,
    save_preferences,
    unread_count,
)

router = resource_router("/api/notifications", ["notifications"])


@router.get("", **answers(list[NotificationPublic]), summary="Your notifications, newest first")
def notifications(user: Reader, platform: PlatformDep, response: Response, page: PageDep,
                  unread: Annotated[bool | None, Query(description="true: only unread; false: only read")] = None,
                  ) -> list[dict[str, Any]]:
    """Each notification with its items and, per channel, its delivery (`pending`, `sent`, `failed`,
    `skipped`; attempts, the next attempt, the last error). `X-Total-Count` counts them all and
    `X-Unread-Count` the unread ones (the bell)."""
    with platform.db.read() as conn:
        rows, total = list_notifications(conn, user.account_id, unread, page.limit, page.offset)
        response.headers["X-Unread-Count"] = str(unread_count(conn, user.account_id))
    response.headers["X-Total-Count"] = str(total)
    return rows


@router.get("/unread-count", **answers(UnreadPublic), summary="How many notifications are unread (the bell)")
def unread(user: Reader, platform: PlatformDep) -> dict[str, int]:
    """The count the bell shows (the same as the list's `X-Unread-Count`)."""
    with platform.db.read() as conn:
        return {"unread": unread_count(conn, user.account_id)}


@router.post("/{notification_id}/read", **answers(NotificationPublic), summary="Mark a notification read")
def read(notification_id: IdPath, user: SessionUser, platform: PlatformDep) -> dict[str, Any]:
    """Answers the notification, now `read`; marking it again changes nothing."""
    with platform.db.write() as conn:
        if not mark_read(conn, user.account_id, notification_id, time.time()):
            raise NotFound(f"Notification {notification_id} not found")
    with platform.db.read() as conn:
        found = get_notification(conn, user.account_id, notification_id)
    assert found is not None
    return found


class QuietHours(BaseModel):
    model_config = ConfigDict(extra="forbid")

    start: str = Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$", description="HH:MM, IST")
    end: str = Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$", description="HH:MM, IST")


class PreferencesBody(BaseModel):
    """The whole preferences document (a PUT replaces it): every kind with every channel."""

    model_config = ConfigDict(extra="forbid")

    kinds: dict[str, dict[str, StrictBool]] = Field(
        max_length=len(KINDS),
        description=f"kind -> channel -> on/off, every kind ({', '.join(KINDS)}) with every channel "
                    f"({', '.join(CHANNELS)})")
    quiet_hours: QuietHours | None = Field(description="null: none. Email and Telegram wait until they end; "
                                                       "the in-app list does not")

    @model_validator(mode="after")
    def _whole(self) -> PreferencesBody:
        missing = [k for k in KINDS if k not in self.kinds or any(c not in self.kinds[k] for c in CHANNELS)]
        unknown = [k for k in self.kinds if k not in KINDS]
        if unknown:
            raise ValueError(f"unknown notification kind; known: {', '.join(KINDS)}")
        for k, chans in self.kinds.items():
            extra = [c for c in chans if c not in CHANNELS]
            if extra:
                raise ValueError(f"unknown channel in {k}; known: {', '.join(CHANNELS)}")
        if missing:
            raise ValueError(f"kinds.{missing[0]} must name every channel ({', '.join(CHANNELS)}): "
                             "a PUT replaces the whole document")
        return self


def _preferences_answer(prefs: dict[str, Any]) -> dict[str, Any]:
    return {**prefs, "labels": {k: v.label for k, v in KINDS.items()}, "channels": list(CHANNELS),
            "timezone": "Asia/Kolkata"}


@router.get("/preferences", **answers(PreferencesPublic), summary="What you are told, and where")
def preferences(user: Reader, platform: PlatformDep) -> dict[str, Any]:
    """Every kind with every channel on or off, the quiet hours (IST) and each kind's label."""
    with platform.db.read() as conn:
        return _preferences_answer(get_preferences(conn, user.account_id))


@router.put("/preferences", **answers(PreferencesPublic), summary="Replace your notification preferences")
def put_preferences(body: PreferencesBody, user: SessionUser, platform: PlatformDep) -> dict[str, Any]:
    """A PUT replaces the whole document: every kind must name every channel (else a 422)."""
    prefs = normalize_preferences(body.model_dump())
    with platform.db.write() as conn:
        save_preferences(conn, user.account_id, prefs)
    return _preferences_answer(prefs)
