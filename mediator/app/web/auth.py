"""Inbound authentication: the Basic credentials a channel's OpenHIM route sends, and the auditor's and metrics
reader's own."""

from __future__ import annotations

import base64
import binascii
import hmac

from mediator.config.settings import ChannelSettings


def basic_credentials(header: str | None) -> tuple[str, str] | None:
    if not header or not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    username, sep, password = decoded.partition(":")
    return (username, password) if sep else None


def _matches(given: tuple[str, str], username: str, password: str) -> bool:
    user_ok = hmac.compare_digest(given[0].encode(), username.encode())
    password_ok = hmac.compare_digest(given[1].encode(), password.encode())
    return user_ok and password_ok


def user_allows(username: str, password: str, header: str | None) -> bool:
    """True only for this user's own username and password (the auditor's, the metrics reader's; never a channel's),
    compared in constant time; never for a user without a password."""
    given = basic_credentials(header)
    return given is not None and bool(password) and _matches(given, username, password)


def channel_allows(channel: ChannelSettings, header: str | None) -> bool:
    """True only for this channel's own username and password, compared in constant time."""
    given = basic_credentials(header)
    return given is not None and bool(channel.password) and _matches(given, channel.username, channel.password)
