"""Insurance numbers the journal has seen, by a keyed pseudonym: a Coverage names its beneficiary by insurance
number, and when that Patient came in an earlier push (a pull reads resource type after resource type) this index
still says which insuree it is. The key is generated once and kept in the journal, so every instance on the journal
agrees and the numbers themselves are never stored."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError

from mediator.journal.models import InsureeNumber, JournalKey
from mediator.journal.store import Journal

KEY_NAME = "insurance-numbers"
_keys: dict[str, bytes] = {}  # by journal URL


def _key(journal: Journal) -> bytes:
    cached = _keys.get(str(journal.engine.url))
    if cached is not None:
        return cached
    with journal.sessions() as session:
        value = session.scalar(select(JournalKey.value).where(JournalKey.name == KEY_NAME))
    if value is None:
        try:
            with journal.sessions.begin() as session:
                session.add(JournalKey(name=KEY_NAME, value=secrets.token_hex(32)))
        except IntegrityError:
            pass  # another process made it first: theirs is the key
        with journal.sessions() as session:
            value = session.scalar(select(JournalKey.value).where(JournalKey.name == KEY_NAME))
    key = bytes.fromhex(str(value))
    _keys[str(journal.engine.url)] = key
    return key


def journal_secret(journal: Journal, purpose: str) -> bytes:
    """A secret of this journal's for `purpose`, the same in every process that shares the journal."""
    return hmac.new(_key(journal), purpose.encode(), hashlib.sha256).digest()


def pseudonyms(journal: Journal, numbers: Iterable[str]) -> dict[str, str]:
    """number -> its keyed pseudonym in this journal."""
    key = _key(journal)
    return {n: hmac.new(key, n.encode(), hashlib.sha256).hexdigest() for n in numbers}


def remember(session: Any, digests: Mapping[str, str]) -> None:
    """Record digest -> insuree key (the newest push wins: a number moves to the insuree's current version)."""
    if not digests:
        return
    now = datetime.now(UTC)
    rows = [{"digest": d, "patient_key": k, "updated_at": now} for d, k in digests.items()]
    make = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    statement = make(InsureeNumber)
    statement = statement.on_conflict_do_update(
        index_elements=["digest"],
        set_={"patient_key": statement.excluded.patient_key, "updated_at": statement.excluded.updated_at},
    )
    session.execute(statement, rows)


def insurees_by_number(journal: Journal, numbers: Iterable[str]) -> dict[str, str]:
    """number -> insuree key, for the numbers the journal has seen."""
    digests = pseudonyms(journal, set(numbers))
    if not digests:
        return {}
    number_of = {d: n for n, d in digests.items()}
    with journal.sessions() as session:
        rows = session.execute(
            select(InsureeNumber.digest, InsureeNumber.patient_key).where(InsureeNumber.digest.in_(list(number_of)))
        )
        return {number_of[d]: k for d, k in rows}
