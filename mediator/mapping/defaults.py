"""Default DHIS2 UIDs: those of openIMIS's own DHIS2 metadata package, so existing setups keep working."""

PERSON_TRACKED_ENTITY_TYPE = "EoBGArVCQ69"
INSUREE_PROGRAM = "IR5BiEXrBD7"

# Tracked entity attributes of the Family/Insuree program, by the insuree field they carry.
INSUREE_ATTRIBUTES: dict[str, str] = {
    "insuree_id": "e9fOa40sDwR",
    "insurance_number": "g54R38QNwEi",
    "family_id": "DvT0LSMDW2f",
    "birth_date": "woZmnhwGvu6",
    "gender": "QtkHTKL4EsU",
    "education": "pWV8uthRZVY",
    "profession": "zy5Br9ZEDLY",
    "marital_status": "vncvDog0YwP",
    "is_head": "siOTMqr9kw6",
    "poverty": "WeLouCfrfoF",
    "family_type": "QnAQO4Kd4I3",
    "first_service_point": "GZ6zgXS25VH",
    "identification_type": "jOnARr3GARW",
    "identification_number": "MFPEijajdy7",
    "first_name": "vYdz8EjQJe0",
    "last_name": "BRGgPOilUtC",
    "phone": "r9hJ7SJbVvx",
}

# Option sets by the field they code, with their UID and the openIMIS codes (DHIS2 option codes = openIMIS codes).
OPTION_SETS: dict[str, tuple[str, str, dict[str, str]]] = {
    "gender": ("GUdoValVQSh", "Gender", {"M": "Male", "F": "Female", "O": "Other"}),
    "education": (
        "EiSeDNXxNjB",
        "Education",
        {
            "1": "Nursery",
            "2": "Primary school",
            "3": "Secondary school",
            "4": "University",
            "5": "Postgraduate studies",
            "6": "PhD",
            "7": "Other",
        },
    ),
    "profession": (
        "Sd4u2gQx36n",
        "Profession",
        {"1": "Housewife", "2": "Employee", "3": "Self employed", "4": "Other"},
    ),
    "marital_status": (
        "bjbFRSo3N6h",
        "Marital status",
        {"M": "Married", "S": "Single", "D": "Divorced", "W": "Widowed", "N": "Not specified"},
    ),
    "identification_type": (
        "b1sDbWRxXa8",
        "Identification type",
        {"D": "Driver's licence", "N": "National ID", "P": "Passport", "V": "Voter card"},
    ),
    "family_type": (
        "iyfsslkBi1G",
        "Family/Group type",
        {
            "C": "Council",
            "G": "Organization",
            "H": "Household",
            "O": "Other",
            "P": "Priests",
            "S": "Students",
            "T": "Teachers",
        },
    ),
    "yes_no": ("HG0oUNFDDYo", "Yes/No", {"true": "Yes", "false": "No"}),
}
