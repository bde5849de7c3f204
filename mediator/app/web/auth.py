"""Per-channel inbound authentication: the Basic credentials the channel's OpenHIM route sends."""

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


def channel_allows(channel: ChannelSettings, header: str | None) -> bool:
    """True only for this channel's own username and password, compared in constant time."""
    given = basic_credentials(header)
    if given is None or not channel.password:
        return False
    user_ok = hmac.compare_digest(given[0].encode(), channel.username.encode())
    password_ok = hmac.compare_digest(given[1].encode(), channel.password.encode())
    return user_ok and password_ok
