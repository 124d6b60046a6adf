"""CSV import of tokens: good rows in, every bad row reported with its line and reasons."""

from __future__ import annotations

import datetime as dt
import io

import pytest

from apps.core.errors import ApplicationError
from apps.customers.models import Token, TokenType, WhitelistType
from apps.customers.services import RowError, token_import_csv
from apps.tenants.models import Tenant
from tests.customers.factories import ContractFactory, DriverFactory, TokenFactory

HEADER = "uid,type,contract_id,issuer,group_id,valid,whitelist,language,expires_at,driver_email,contract_number\n"


def csv_file(text: str) -> io.BytesIO:
    return io.BytesIO(text.encode())


def test_good_rows_are_imported_with_their_fields_and_links(tenant_a: Tenant) -> None:
    driver = DriverFactory(tenant=tenant_a, email="Dana@Example.com")
    contract = ContractFactory(tenant=tenant_a, number="FLEET-7")
    text = HEADER + (
        "04AA01,RFID,DEVLTC00000001,Voltnet,G1,true,ALWAYS,de,2027-01-31T23:59:59+01:00,dana@example.com,\n"
        "app-7f3a,app_user,DEVLTC00000002,Voltnet,,no,never,,,,FLEET-7\n"
    )

    report = token_import_csv(tenant=tenant_a, file=csv_file(text))

    assert (report.rows, report.created, report.errors) == (2, 2, [])
    rfid = Token.objects.get(uid="04AA01")
    assert (rfid.type, rfid.contract_id, rfid.issuer, rfid.group_id, rfid.valid, rfid.whitelist, rfid.language) == (
        TokenType.RFID,
        "DEVLTC00000001",
        "Voltnet",
        "G1",
        True,
        WhitelistType.ALWAYS,
        "de",
    )
    assert rfid.expires_at == dt.datetime(2027, 1, 31, 22, 59, 59, tzinfo=dt.UTC)
    assert (rfid.tenant, rfid.driver, rfid.business_contract) == (tenant_a, driver, None)
    app = Token.objects.get(uid="app-7f3a")
    assert (app.type, app.valid, app.whitelist, app.expires_at) == (TokenType.APP_USER, False, "NEVER", None)
    assert (app.business_contract, app.business_customer) == (contract, contract.business_customer)


def test_each_bad_row_is_reported_with_line_and_reasons(tenant_a: Tenant, tenant_b: Tenant) -> None:
    TokenFactory(tenant=tenant_a, uid="EXISTS")
    TokenFactory(tenant=tenant_b, uid="OTHER-TENANT")  # other tenants' uids are no duplicates
    DriverFactory(tenant=tenant_b, email="b@example.com")  # nor are their drivers ours
    text = (
        HEADER
        + "GOOD1,,,,,,,,,,\n"  # line 2
        + ",RFID,,,,,,,,,\n"  # line 3: no uid
        + "BAD-ENUM,NFC,,,,,SOMETIMES,,,,\n"  # line 4
        + "BAD-DATE,,,,,,,,31.01.2027,,\n"  # line 5
        + "NAIVE-DATE,,,,,,,,2027-01-31T10:00:00,,\n"  # line 6
        + "\n"  # line 7: blank, skipped
        + "good1,,,,,,,,,,\n"  # line 8: same uid as line 2, other case
        + "exists,,,,,,,,,,\n"  # line 9: stored already
        + "BAD-FLAG,,,,,perhaps,,deu,,,\n"  # line 10
        + "NO-DRIVER,,,,,,,,,b@example.com,\n"  # line 11
        + "NO-CONTRACT,,,,,,,,,,NOPE\n"  # line 12
        + "SHORT,RFID\n"  # line 13
        + '"MULTI\nLINE",,,,,,,,,,\n'  # lines 14-15: one row (quoted newline), bad uid
        + "OTHER-TENANT,,,,,,,,,,\n"  # line 16
        + "X" * 37
        + ",,,,,,,,,,\n"  # line 17: uid too long
    )

    report = token_import_csv(tenant=tenant_a, file=csv_file(text))

    assert report.rows == 14
    assert report.created == 2
    assert sorted(Token.objects.filter(tenant=tenant_a).values_list("uid", flat=True)) == [
        "EXISTS",
        "GOOD1",
        "OTHER-TENANT",
    ]
    assert report.errors == [
        RowError(3, "", ("uid: required.",)),
        RowError(
            4,
            "BAD-ENUM",
            (
                "type: 'NFC' is not one of AD_HOC_USER, APP_USER, OTHER, RFID.",
                "whitelist: 'SOMETIMES' is not one of ALLOWED, ALLOWED_OFFLINE, ALWAYS, NEVER.",
            ),
        ),
        RowError(5, "BAD-DATE", ("expires_at: '31.01.2027' is not an ISO 8601 date-time.",)),
        RowError(6, "NAIVE-DATE", ("expires_at: needs a UTC offset, e.g. 2027-01-31T23:59:59+01:00 or ...Z.",)),
        RowError(8, "good1", ("uid: duplicate of line 2 in this file.",)),
        RowError(9, "exists", ("uid: a token with this uid exists already.",)),
        RowError(
            10,
            "BAD-FLAG",
            (
                "valid: 'perhaps' is not true or false.",
                "language: Use an ISO 639-1 language code such as de.",
                "language: Ensure this value has at most 2 characters (it has 3).",
            ),
        ),
        RowError(11, "NO-DRIVER", ("driver_email: no driver with e-mail 'b@example.com'.",)),
        RowError(12, "NO-CONTRACT", ("contract_number: no contract 'NOPE'.",)),
        RowError(13, "SHORT", ("Expected 11 fields, found 2.",)),
        RowError(
            14, "MULTI\nLINE", ("uid: Use printable ASCII characters without spaces (OCPI CiString, OCPP idTag).",)
        ),
        RowError(17, "X" * 37, ("uid: Ensure this value has at most 36 characters (it has 37).",)),
    ]


def test_rerun_imports_nothing_twice(tenant_a: Tenant) -> None:
    text = HEADER + "T1,,,,,,,,,,\nT2,,,,,,,,,,\n"
    token_import_csv(tenant=tenant_a, file=csv_file(text))
    before = list(Token.objects.order_by("pk").values())

    again = token_import_csv(tenant=tenant_a, file=csv_file(text.lower()))

    assert (again.rows, again.created) == (2, 0)
    assert [e.reasons for e in again.errors] == [("uid: a token with this uid exists already.",)] * 2
    assert list(Token.objects.order_by("pk").values()) == before


def test_totally_bad_file_changes_nothing(tenant_a: Tenant) -> None:
    TokenFactory(tenant=tenant_a, uid="KEEP")
    before = list(Token.objects.order_by("pk").values())
    text = HEADER + " ,RFID,,,,,,,,,\nKEEP,,,,,,,,,,\nZ,WRONG,,,,,,,,,\n,,,,,,,,,,\n"  # last: empty, skipped

    report = token_import_csv(tenant=tenant_a, file=csv_file(text))

    assert (report.rows, report.created, [e.line for e in report.errors]) == (3, 0, [2, 3, 4])
    assert list(Token.objects.order_by("pk").values()) == before


@pytest.mark.parametrize(
    ("content", "code", "message"),
    [
        (b"", "bad_file", "The file is empty."),
        (b"id,type\nA,RFID\n", "bad_header", "Unknown column 'id'. Missing column 'uid'."),
        (b"uid,uid\nA,B\n", "bad_header", "Column 'uid' appears twice."),
    ],
)
def test_unusable_files_are_refused_whole(tenant_a: Tenant, content: bytes, code: str, message: str) -> None:
    with pytest.raises(ApplicationError) as refused:
        token_import_csv(tenant=tenant_a, file=io.BytesIO(content))

    assert refused.value.code == code
    assert refused.value.message.startswith(message)
    assert Token.objects.count() == 0


def test_a_file_that_breaks_midway_rolls_everything_back(tenant_a: Tenant) -> None:
    good = "".join(f"OK{n},,,,,,,,,,\n" for n in range(30)).encode()
    content = HEADER.encode() + good + b"BROKEN\xff\xfe,,,,,,,,,,\n"

    with pytest.raises(ApplicationError) as refused:
        token_import_csv(tenant=tenant_a, file=io.BytesIO(content), chunk_size=10)

    assert refused.value.code == "bad_file"
    assert Token.objects.count() == 0


def test_bom_crlf_and_header_case_are_tolerated(tenant_a: Tenant) -> None:
    content = "\ufeffUID , Type\r\nA1,rfid\r\nA2,OTHER\r\n".encode()

    report = token_import_csv(tenant=tenant_a, file=io.BytesIO(content))

    assert (report.created, report.errors) == (2, [])
    assert dict(Token.objects.values_list("uid", "type")) == {"A1": "RFID", "A2": "OTHER"}


def test_duplicates_are_found_across_chunks(tenant_a: Tenant) -> None:
    rows = [f"U{n}" for n in range(25)] + ["u3"]
    text = "uid\n" + "\n".join(rows) + "\n"

    report = token_import_csv(tenant=tenant_a, file=csv_file(text), chunk_size=10)

    assert report.created == 25
    assert report.errors == [RowError(27, "u3", ("uid: duplicate of line 5 in this file.",))]


def test_uid_stored_concurrently_rolls_the_import_back(tenant_a: Tenant, monkeypatch: pytest.MonkeyPatch) -> None:
    # given another writer stores "RACE" between our duplicate check and our insert (simulated by skipping
    # the check, which is exactly what a concurrent insert looks like to this transaction)
    from apps.core.errors import Conflict
    from apps.customers import token_import

    TokenFactory(tenant=tenant_a, uid="race")
    monkeypatch.setattr(token_import, "_check_duplicates", lambda tenant, chunk, seen: None)

    with pytest.raises(Conflict):
        token_import_csv(tenant=tenant_a, file=csv_file("uid\nFIRST\nRACE\n"))

    assert list(Token.objects.values_list("uid", flat=True)) == ["race"]
