"""Starts SecantusDB (a MongoDB wire-protocol server from PyPI) so that OpenHIM core 4.0.5 can use it.

The core's old MongoDB driver and mongoose 4 speak a few dialect features SecantusDB does not: the command is
rewritten before SecantusDB dispatches it.
- `findandmodify` in lower case is renamed `findAndModify`;
- the `$pushAll` update operator (gone since MongoDB 3.6) becomes `$push` with `$each`;
- a bare regular expression as a filter value becomes `{"$regex": ..., "$options": ...}`, which SecantusDB
  matches correctly on indexed fields (the core looks users up by a case-insensitive email regex).
Test service only: SecantusDB is a GPL beta and is never shipped with the mediator.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping
from typing import Any

import secantus.commands
import secantus.server
from bson.regex import Regex
from secantus.cli import main as secantus_main

_FLAG_LETTERS = ((re.IGNORECASE, "i"), (re.MULTILINE, "m"), (re.DOTALL, "s"), (re.VERBOSE, "x"))


def _options(flags: Any) -> str:
    if isinstance(flags, str):
        return flags
    return "".join(letter for bit, letter in _FLAG_LETTERS if flags & bit)


def fix_filter(query: Any) -> Any:
    if not isinstance(query, Mapping):
        return query
    fixed: dict[str, Any] = {}
    for key, value in query.items():
        if key in ("$and", "$or", "$nor") and isinstance(value, list):
            fixed[key] = [fix_filter(part) for part in value]
        elif not key.startswith("$") and isinstance(value, Regex):
            fixed[key] = {"$regex": value.pattern, "$options": _options(value.flags)}
        else:
            fixed[key] = value
    return fixed


def fix_update(update: Any) -> Any:
    if not isinstance(update, Mapping) or "$pushAll" not in update:
        return update
    fixed = {k: v for k, v in update.items() if k != "$pushAll"}
    push = dict(fixed.get("$push") or {})
    push.update({field: {"$each": list(values)} for field, values in update["$pushAll"].items()})
    fixed["$push"] = push
    return fixed


def rewrite(command: Mapping[str, Any]) -> Mapping[str, Any]:
    if not command:
        return command
    name = next(iter(command))
    doc = dict(command)
    if name == "findandmodify":
        doc = {"findAndModify": doc.pop(name), **doc}
        name = "findAndModify"
    if name in ("find", "count", "distinct", "countDocuments"):
        for key in ("filter", "query"):
            if key in doc:
                doc[key] = fix_filter(doc[key])
    elif name == "findAndModify":
        doc["query"] = fix_filter(doc.get("query"))
        if "update" in doc:
            doc["update"] = fix_update(doc["update"])
    elif name == "update" and isinstance(doc.get("updates"), list):
        doc["updates"] = [
            {**s, "q": fix_filter(s.get("q")), "u": fix_update(s.get("u"))} if isinstance(s, Mapping) else s
            for s in doc["updates"]
        ]
    elif name == "delete" and isinstance(doc.get("deletes"), list):
        doc["deletes"] = [{**s, "q": fix_filter(s.get("q"))} if isinstance(s, Mapping) else s for s in doc["deletes"]]
    elif name == "aggregate" and isinstance(doc.get("pipeline"), list):
        doc["pipeline"] = [
            {"$match": fix_filter(stage["$match"])}
            if isinstance(stage, Mapping) and list(stage) == ["$match"]
            else stage
            for stage in doc["pipeline"]
        ]
    return doc


_dispatch = secantus.commands.dispatch


def dispatch(command: Mapping[str, Any], ctx: Any) -> Any:
    return _dispatch(rewrite(command), ctx)


secantus.commands.dispatch = dispatch
secantus.server.dispatch = dispatch

if __name__ == "__main__":
    raise SystemExit(secantus_main(sys.argv[1:]))
