from mediator.mapping.uids import derive_uid, is_uid, org_unit_uid


def test_uid_has_dhis2_format():
    for key in ["a", "55c8cabb-e67d-405d-b7f4-5e4435cc2eff", "john-doe", "é"]:
        assert is_uid(derive_uid("trackedEntity", key))


def test_same_record_gives_same_uid():
    assert derive_uid("trackedEntity", "k1") == derive_uid("trackedEntity", "k1")


def test_kind_and_key_change_the_uid():
    uids = {derive_uid("trackedEntity", "k1"), derive_uid("enrollment", "k1"), derive_uid("trackedEntity", "k2")}
    assert len(uids) == 3


def test_org_unit_uid_is_derived_from_location_key():
    assert org_unit_uid("loc") == derive_uid("orgUnit", "loc")
    assert org_unit_uid("loc") != org_unit_uid("loc2")


def test_is_uid_rejects_malformed_values():
    assert not is_uid("1abcdefghij")
    assert not is_uid("abcdefghij")
    assert not is_uid("abcdefghijk!")
