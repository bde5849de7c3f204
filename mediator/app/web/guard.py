"""What is checked of a channel request before its body is read: the OpenHIM headers the journal keeps, the body's
media type and coding; and a body reader that turns a body cut short or badly chunked into a refusal."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import IO, Any

from werkzeug.datastructures import Headers
from werkzeug.exceptions import HTTPException

from mediator.errors import MediatorError

# The journal's columns hold them: an OpenHIM transaction id is a 24-hex MongoDB id.
# A transaction id is visible ASCII; a client id is whatever the core's admin typed, as HTTP carries it (Latin-1).
OPENHIM_HEADERS = {
    "X-OpenHIM-TransactionID": (64, re.compile(r"[\x21-\x7e]+"), "visible ASCII characters"),
    "X-OpenHIM-ClientID": (128, re.compile(r"[\x20-\x7e\xa0-\xff]+"), "printable characters"),
}
MEDIA_TYPES = ("application/fhir+json", "application/json", "application/json+fhir")


class Refused(MediatorError):
    """A request refused before its body is read: the HTTP status, the header or part named, and why."""

    openhim_status = "Completed"
    fhir_code = "invalid"

    def __init__(self, status: int, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.http_status = status
        self.field = field
        self.message = message

    def issue(self, severity: str = "error") -> dict[str, Any]:
        return {"severity": severity, "code": self.fhir_code, "diagnostics": str(self), "expression": [self.field]}


@dataclass(frozen=True)
class Origin:
    openhim_id: str | None
    client_id: str | None


def origin(headers: Headers) -> Origin:
    """The OpenHIM transaction and client the request names, as the journal keeps them."""
    values: dict[str, str | None] = {}
    for name, (limit, allowed, what) in OPENHIM_HEADERS.items():
        value = headers.get(name)
        if value is not None and not (len(value) <= limit and allowed.fullmatch(value)):
            raise Refused(400, name, f"must be 1 to {limit} {what}")
        values[name] = value
    return Origin(values["X-OpenHIM-TransactionID"], values["X-OpenHIM-ClientID"])


def check_body_headers(headers: Headers) -> None:
    """The body must be FHIR JSON in UTF-8, sent as it is (no Content-Encoding); a body without a Content-Type is
    read as JSON (scripts send none), one with another type is refused."""
    media, _, params = (headers.get("Content-Type") or MEDIA_TYPES[1]).partition(";")
    media = media.strip().lower()
    if media not in MEDIA_TYPES:
        shown = media if len(media) <= 64 and media.isprintable() else "this media type"
        raise Refused(415, "Content-Type", f"{shown or 'none'} is not taken: send {MEDIA_TYPES[0]} or {MEDIA_TYPES[1]}")
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset" and value.strip().strip('"').lower() not in ("utf-8", "utf8"):
            raise Refused(415, "Content-Type", "the body must be UTF-8 (charset=utf-8)")
    coding = (headers.get("Content-Encoding") or "identity").strip().lower()
    if coding != "identity":
        shown = coding if len(coding) <= 32 and coding.isprintable() else "this coding"
        raise Refused(415, "Content-Encoding", f"{shown} is not taken: send the body as it is")


class BodyReader:
    """The request body as the intake reads it: whatever stops it being read whole is the request's fault (a
    client that hung up, a chunk size that is no number), refused with 400; too slow (408) and too large (413) stay."""

    def __init__(self, stream: IO[bytes], expected: int | None) -> None:
        self.stream = stream
        self.expected = expected
        self.size = 0

    def read(self, size: int) -> bytes:
        try:
            chunk = self.stream.read(size)
        except HTTPException as exc:
            if exc.code in (408, 413):  # too slow or too large: the server's own answers
                raise
            raise Refused(400, "body", "the body could not be read whole (the client stopped sending)") from None
        except Exception:  # the server's own parse errors (chunked coding), not this process's
            raise Refused(400, "body", "the body could not be read whole (bad chunked transfer coding)") from None
        self.size += len(chunk)
        if not chunk and self.expected is not None and self.size != self.expected:
            raise Refused(400, "Content-Length", f"the body has {self.size} bytes, Content-Length says {self.expected}")
        return chunk
