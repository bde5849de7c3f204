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


def test_openimis_etl_scheme_maps_each_hex_pair_to_one_character():
    from mediator.mapping.uids import openimis_etl_uid, org_unit_uid, tracked_entity_uid

    assert openimis_etl_uid("00000000-0000-0000-0000-000000000000") == "A0000000000"
    assert openimis_etl_uid("FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF") == "BBBBBBBBBBB"
    # 0x10 -> 1*4 + 0//4 = 4 (then a letter first: 14 = E); 0x3f -> 3*4 + 15//4 = 15 = F
    assert openimis_etl_uid("103f0000-0000-0000-0000-000000000000") == "EF000000000"
    assert openimis_etl_uid("55c8cabb-e67d-405d-b7f4-5e4435cc2eff") == openimis_etl_uid(
        "55C8CABB-E67D-405D-B7F4-5E4435CC2EFF"
    )
    assert is_uid(openimis_etl_uid("john-doe"))
    key = "55c8cabb-e67d-405d-b7f4-5e4435cc2eff"
    assert org_unit_uid(key, "openimis-etl") == tracked_entity_uid(key, "openimis-etl") == openimis_etl_uid(key)
    assert org_unit_uid(key) != tracked_entity_uid(key)


def test_derived_uids_never_change_between_versions():
    """DHIS2 holds these: a different UID for the same record would be a second copy of it."""
    pinned = [
        ("trackedEntity", "55c8cabb-e67d-405d-b7f4-5e4435cc2eff", "pMFa5nPtmiN"),
        ("enrollment", "55c8cabb-e67d-405d-b7f4-5e4435cc2eff", "I7bMKrTwrtC"),
        ("orgUnit", "b2e5b0c1-3d57-408c-b7de-11511ce1cbcf", "gLbVQCEtzBh"),
        ("family", "1e055f4e-bd7c-4f60-85ba-b55295e9414f", "fEXujMmeWgf"),
        ("event", "x", "pS8A0kJkNit"),
    ]
    assert [derive_uid(kind, key) for kind, key, _ in pinned] == [uid for _, _, uid in pinned]


def test_derived_uids_are_the_low_digits_of_the_whole_hash():
    import hashlib
    import string

    def by_the_book(kind, key):
        number = int.from_bytes(hashlib.sha256(f"openimis\x1f{kind}\x1f{key}".encode()).digest(), "big")
        number, first = divmod(number, 52)
        chars = [string.ascii_letters[first]]
        for _ in range(10):
            number, rest = divmod(number, 62)
            chars.append((string.digits + string.ascii_letters)[rest])
        return "".join(chars)

    for i in range(2000):
        assert derive_uid("trackedEntity", f"key-{i}") == by_the_book("trackedEntity", f"key-{i}")
