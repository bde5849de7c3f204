import json

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from mediator.answer.redact import REDACTED, redact, redact_message, redacted_json, uids_in

PAYLOAD = {
    "trackedEntities": [
        {
            "trackedEntity": "Aaaaaaaaaa1",
            "attributes": [
                {"attribute": "Bbbbbbbbbb1", "value": "Christopher"},
                {"attribute": "Cccccccccc1", "value": None},
            ],
        }
    ]
}


def test_values_are_hidden_but_structure_and_nulls_stay():
    out = redact(PAYLOAD, uids_in(PAYLOAD))
    attrs = out["trackedEntities"][0]["attributes"]
    assert attrs[0] == {"attribute": "Bbbbbbbbbb1", "value": REDACTED}
    assert attrs[1]["value"] is None
    assert out["trackedEntities"][0]["trackedEntity"] == "Aaaaaaaaaa1"


def test_uids_of_a_payload_leave_out_values_even_when_they_look_like_uids():
    assert uids_in(PAYLOAD) == {"Aaaaaaaaaa1", "Bbbbbbbbbb1", "Cccccccccc1"}


def test_messages_keep_the_mediators_uids_but_lose_other_quoted_values():
    known = uids_in(PAYLOAD)
    text = "Non-unique attribute value `Christopher` for attribute `Bbbbbbbbbb1`"
    assert redact_message(text, known) == f"Non-unique attribute value `{REDACTED}` for attribute `Bbbbbbbbbb1`"
    assert redact({"message": text}, known)["message"] == redact_message(text, known)


KEYS = st.sampled_from(["value", "storedBy", "message", "description", "attribute", "id", "x`y", 'a"b', "ü"])
TEXT = st.text(alphabet=st.sampled_from('ab `"\\\n\u00e9\u2028Z9'), max_size=12) | st.sampled_from(
    ["Aaaaaaaaaa1", "`Aaaaaaaaaa1`", "value `Christopher` for `Bbbbbbbbbb1`", "x\\`y`"]
)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | TEXT
)
PAYLOADS = st.recursive(
    SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=4), max_leaves=25
)


@settings(max_examples=400, deadline=None)
@given(PAYLOADS)
def test_redacting_the_json_text_gives_what_redacting_the_payload_gives(payload):
    walked = redact(payload, uids_in(payload))
    expected = "" if payload is None else walked if isinstance(walked, str) else orjson.dumps(walked).decode()
    assert redacted_json(payload, lambda: uids_in(payload)) == expected


def test_integers_past_64_bits_are_redacted_the_slow_way():
    payload = {"value": "secret", "count": 2**70, "message": "`x`"}
    assert json.loads(redacted_json(payload, set)) == {"value": REDACTED, "count": 2**70, "message": f"`{REDACTED}`"}
