"""The check every body passes before it is read: nesting, duplicate keys, lone surrogates, numbers."""

from __future__ import annotations

import pytest

from mediator.openimis import wellformed
from mediator.openimis.wellformed import MAX_DEPTH, NotWellFormed, check


def refusal(tmp_path, body: bytes):
    path = tmp_path / "body.json"
    path.write_bytes(body)
    with pytest.raises(NotWellFormed) as caught:
        check(path)
    return caught.value.problem


def checked(tmp_path, body: bytes):
    path = tmp_path / "body.json"
    path.write_bytes(body)
    return check(path)


def test_nesting_beyond_the_bound_is_refused_naming_the_entry_and_field(tmp_path):
    deep = b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1)
    problem = refusal(tmp_path, b'{"entry":[{},{"resource":{"extension":' + deep + b"}}]}")
    assert problem.record == "Bundle.entry[1]"
    assert problem.field.startswith("extension[0]")
    assert problem.message == f"nested deeper than {MAX_DEPTH} levels"


def test_nesting_up_to_the_bound_is_taken(tmp_path):
    inner = MAX_DEPTH - 1
    assert not checked(tmp_path, b'{"a":' + b"[" * inner + b"]" * inner + b"}").big_numbers


def test_a_key_given_twice_is_refused_naming_it(tmp_path):
    problem = refusal(tmp_path, b'{"entry":[{"resource":{"x":[1,{"id":1,"id":2}]}}]}')
    assert (problem.record, problem.field, problem.message) == (
        "Bundle.entry[0]",
        "x[1].id",
        "appears twice in the same object",
    )
    assert refusal(tmp_path, b'{"entry":[],"type":"collection","entry":[]}').field == "entry"


def test_the_same_key_in_sibling_objects_is_no_duplicate(tmp_path):
    checked(tmp_path, b'{"entry":[{"resource":{"id":"a"}},{"resource":{"id":"b"}}]}')


@pytest.mark.parametrize("escape", [rb"\ud800", rb"\udfff", rb"\ude00\ud83d", rb"\ud83d\ud83d\ude00", rb"\ud800x"])
def test_a_lone_surrogate_escape_is_refused(tmp_path, escape):
    problem = refusal(tmp_path, b'{"a":"' + escape + b'"}')
    assert "half of a surrogate pair" in problem.message


@pytest.mark.parametrize("text", [rb"\ud83d\ude00", rb"\\ud800", rb"\\\ud83d\ude00", rb"\u00e9"])
def test_pairs_and_escaped_backslashes_are_taken(tmp_path, text):
    checked(tmp_path, b'{"a":"' + text + b'"}')


@pytest.mark.parametrize("number", [b"1" + b"0" * 30, b"-1" + b"0" * 30, b"1e400", b"9223372036854775808"])
def test_numbers_beyond_the_fast_reader_are_valid_and_flagged(tmp_path, number):
    assert checked(tmp_path, b'{"a":' + number + b"}").big_numbers


@pytest.mark.parametrize("number", [b"9223372036854775807", b"1.5", b"-3", b"1e300"])
def test_ordinary_numbers_are_not_flagged(tmp_path, number):
    assert not checked(tmp_path, b'{"a":' + number + b"}").big_numbers


def test_a_number_of_thousands_of_digits_is_refused_by_name(tmp_path):
    assert "4300 digits" in refusal(tmp_path, b'{"a":1' + b"0" * 5000 + b"}").message


@pytest.mark.parametrize("body", [b"", b"{", b'{"a":1}x', b'{"a":"\xed\xa0\x80"}'])
def test_what_is_not_json_is_refused_without_quoting_it(tmp_path, body):
    problem = refusal(tmp_path, body)
    assert problem.message.startswith("not valid JSON (")


@pytest.mark.parametrize("number", [b"1e5000", b"1e100000000", b"-2.5E-99999999"])
def test_an_exponent_beyond_what_a_reader_can_turn_into_a_number_is_refused(tmp_path, number):
    problem = refusal(tmp_path, b'{"entry":[{"resource":{"meta":{"x":%s}}}]}' % number)
    assert (problem.record, problem.field) == ("Bundle.entry[0]", "meta.x")
    assert problem.message == "a number beyond 10^4300"


@pytest.mark.parametrize("at", range(4085, 4100))
def test_escapes_across_the_scanning_windows_are_read_as_one(tmp_path, monkeypatch, at):
    monkeypatch.setattr(wellformed, "WINDOW", 4096)
    head = b'{"a":"' + b"x" * (at - 6)
    checked(tmp_path, head + rb"\ud83d\ude00" + b"y" * 5000 + b'"}')
    assert "half of a surrogate pair" in refusal(tmp_path, head + rb"\ud83d" + b"y" * 5000 + b'"}').message
    assert "half of a surrogate pair" in refusal(tmp_path, head + rb"y\ude00" + b"y" * 5000 + b'"}').message
    checked(tmp_path, head + rb"\\ud800" + b"y" * 5000 + b'"}')  # an escaped backslash, then text
