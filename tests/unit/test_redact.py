from mediator.answer.redact import REDACTED, redact, redact_message, uids_in

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
