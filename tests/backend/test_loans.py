"""Loans with their schedules, repayments and reminder settings over HTTP (SQLite and
PostgreSQL): the figures of the demo borrowers, worked out by hand from eligibility/seed.py
(T0 = 2026-03-10 04:00 UTC, 12:00 in Shanghai), pagination, auth and errors."""

from __future__ import annotations

from datetime import timedelta

import pytest

from eligibility.ledger import principal_parts, split

from .support import DAY, T0

HOUR = timedelta(hours=1)
MINUTE = timedelta(minutes=1)


def iso(value):
    return value.isoformat().replace("+00:00", "Z")


def get(api, path, **params):
    response = api.client.get(path, headers=api.service, params=params)
    assert response.status_code == 200, response.text
    return response.json()


# --- the money model --------------------------------------------------------------------------


def test_split_adds_up_and_puts_the_rounding_on_the_last_share():
    assert split(500_000, 12) == [41_667] * 11 + [41_663]
    assert split(300_000, 3) == [100_000] * 3
    assert split(100, 3) == [33, 33, 34]
    assert split(0, 4) == [0, 0, 0, 0]
    # a loan part repaid: 200 paid over one instalment, 5,800 over the other eleven
    assert principal_parts(600_000, 580_000, 1, 12) == [20_000] + [52_727] * 10 + [52_730]


# --- loans ------------------------------------------------------------------------------------


def test_loans_of_a_borrower_with_one_instalment_paid(api, seeded):
    body = get(api, "/v1/borrowers/demo-in-use/loans")

    assert body["borrower_id"] == "demo-in-use"
    assert body["currency"] == "CNY" and body["timezone"] == "Asia/Shanghai"
    assert body["total"] == 1 and body["next_offset"] is None
    (loan,) = body["loans"]
    # 5,000 over 12 instalments: 416.67 eleven times, 416.63 last; one paid -> 4,583.33 left
    assert {k: v for k, v in loan.items() if k != "instalments"} == {
        "loan_id": "LN-in-use-1", "principal": 5000.0, "interest": 0.0,
        "total_repayable": 5000.0, "outstanding_principal": 4583.33,
        "remaining_to_repay": 4583.33, "status": "open", "opened_at": iso(T0 - 35 * DAY),
        "instalments_total": 12, "instalments_paid": 1, "next_due_date": iso(T0 + 12 * DAY),
    }
    instalments = loan["instalments"]
    assert [i["number"] for i in instalments] == list(range(1, 13))
    assert instalments[0] == {
        # repaid 2 days ago, the day before it fell due (never late: no overdue record)
        "number": 1, "due_date": iso(T0 - DAY), "principal": 416.67, "interest": 0.0,
        "amount": 416.67, "status": "paid", "paid_at": iso(T0 - 2 * DAY + 5 * MINUTE),
        "days_late": None,
    }
    assert instalments[1]["due_date"] == iso(T0 + 12 * DAY)
    assert instalments[1]["status"] == "unpaid" and instalments[1]["paid_at"] is None
    assert instalments[11]["due_date"] == iso(T0 + 312 * DAY)
    assert instalments[11]["amount"] == 416.63
    assert round(sum(i["amount"] for i in instalments), 2) == 5000.0


def test_interest_is_part_of_every_instalment(api, seeded):
    (loan,) = get(api, "/v1/borrowers/demo-overdue-reduced/loans")["loans"]

    # 6,000 + 3,600 interest (300 per instalment); 200 of principal repaid with instalment 1
    assert loan["principal"] == 6000.0 and loan["interest"] == 3600.0
    assert loan["total_repayable"] == 9600.0
    assert loan["outstanding_principal"] == 5800.0
    assert loan["remaining_to_repay"] == 9100.0
    first, second = loan["instalments"][:2]
    # the late instalment of the overdue record: 500 due 25 days ago, paid 5 days late
    assert first == {"number": 1, "due_date": iso(T0 - 25 * DAY), "principal": 200.0,
                     "interest": 300.0, "amount": 500.0, "status": "paid",
                     "paid_at": iso(T0 - 20 * DAY), "days_late": 5}
    assert second["principal"] == 527.27 and second["amount"] == 827.27
    assert round(sum(i["amount"] for i in loan["instalments"]), 2) == 9600.0
    assert round(sum(i["principal"] for i in loan["instalments"]), 2) == 6000.0


def test_a_late_instalment_of_a_repaid_loan(api, seeded):
    (loan,) = get(api, "/v1/borrowers/demo-overdue/loans")["loans"]

    assert loan["status"] == "repaid" and loan["outstanding_principal"] == 0.0
    assert loan["next_due_date"] is None
    late = loan["instalments"][3]
    # due 40 days ago, cleared 28 days ago: 12 days late, as the overdue record says
    assert late["due_date"] == iso(T0 - 40 * DAY)
    assert late["paid_at"] == iso(T0 - 28 * DAY)
    assert (late["status"], late["days_late"], late["amount"]) == ("paid", 12, 1000.0)


def test_an_unpaid_instalment_past_its_due_date_is_overdue(api, seeded, clock):
    clock.advance(13 * DAY + HOUR)

    (loan,) = get(api, "/v1/borrowers/demo-in-use/loans")["loans"]

    assert loan["instalments"][1]["status"] == "overdue"
    assert loan["instalments"][1]["days_late"] == 1
    assert loan["instalments"][2]["status"] == "unpaid"


def test_an_instalment_being_paid_is_posting(api, seeded):
    (loan,) = get(api, "/v1/borrowers/demo-posting/loans")["loans"]

    assert loan["outstanding_principal"] == 5000.0
    assert loan["instalments"] == [{
        "number": 1, "due_date": iso(T0 + 12 * DAY), "principal": 5000.0, "interest": 0.0,
        "amount": 5000.0, "status": "posting", "paid_at": None, "days_late": None}]


def test_loans_come_in_pages_newest_first(api, seeded):
    first = get(api, "/v1/borrowers/demo-loan-cap/loans", limit=2)
    rest = get(api, "/v1/borrowers/demo-loan-cap/loans", limit=2, offset=2)

    # the three loans were opened at the same moment: the id breaks the tie, newest id first
    assert [loan["loan_id"] for loan in first["loans"]] == ["LN-loan-cap-3", "LN-loan-cap-2"]
    assert (first["total"], first["next_offset"]) == (3, 2)
    assert [loan["loan_id"] for loan in rest["loans"]] == ["LN-loan-cap-1"]
    assert (rest["total"], rest["next_offset"]) == (3, None)
    # 2,000 with 1,500 left after one of three: 500 paid, 750 twice to come
    two = first["loans"][1]
    assert [i["amount"] for i in two["instalments"]] == [500.0, 750.0, 750.0]


def test_a_borrower_without_loans(api, seeded):
    body = get(api, "/v1/borrowers/demo-compliance/loans")
    assert (body["loans"], body["total"], body["next_offset"]) == ([], 0, None)


# --- repayments -------------------------------------------------------------------------------


def test_repayments_newest_first_with_posting_status(api, seeded):
    body = get(api, "/v1/borrowers/demo-posting/repayments")

    assert body["total"] == 1
    assert body["repayments"] == [{
        "repayment_id": "RP-posting-2", "loan_id": "LN-posting-1", "instalment_number": 1,
        "amount": 5000.0, "channel": "bank_card", "paid_at": iso(T0 - 10 * MINUTE),
        "status": "posting", "posted_at": None, "expected_post_at": iso(T0 + 2 * HOUR),
        "delayed": False,
    }]


def test_repayment_history_of_a_repaid_loan(api, seeded):
    body = get(api, "/v1/borrowers/demo-eligible/repayments", limit=2)

    assert body["total"] == 3 and body["next_offset"] == 2
    latest, previous = body["repayments"]
    # instalment 3 was paid 20 days ago (the seed's repayment), 2 the day before it fell due
    assert (latest["instalment_number"], latest["amount"], latest["status"]) == (3, 1000.0,
                                                                                  "posted")
    assert latest["paid_at"] == iso(T0 - 20 * DAY)
    assert latest["posted_at"] == iso(T0 - 20 * DAY + 5 * MINUTE)
    assert latest["expected_post_at"] is None and latest["delayed"] is False
    assert previous["instalment_number"] == 2


def test_a_posting_repayment_past_its_time_is_delayed(api, seeded, clock):
    clock.advance(3 * HOUR)
    (repayment,) = get(api, "/v1/borrowers/demo-posting/repayments")["repayments"]
    assert (repayment["status"], repayment["delayed"]) == ("posting", True)


# --- auth and errors ---------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["loans", "repayments", "reminders"])
def test_records_need_the_service_token(client, seeded, path):
    url = f"/v1/borrowers/demo-in-use/{path}"
    assert client.get(url).status_code == 401
    wrong = client.get(url, headers={"Authorization": "Bearer test-backoffice-token"})
    assert wrong.status_code == 401
    assert wrong.json()["error"]["code"] == "unauthorized"
    assert "loans" not in wrong.json()


@pytest.mark.parametrize("path", ["loans", "repayments", "reminders"])
def test_unknown_and_invalid_borrowers(api, seeded, path):
    missing = api.client.get(f"/v1/borrowers/nobody/{path}", headers=api.service)
    invalid = api.client.get(f"/v1/borrowers/-bad!/{path}", headers=api.service)
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "borrower_not_found")
    assert (invalid.status_code, invalid.json()["error"]["code"]) == (400, "invalid_borrower_id")


@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 101}, {"offset": -1},
                                    {"limit": "ten"}])
def test_page_limits_are_checked(api, seeded, params):
    response = api.client.get("/v1/borrowers/demo-in-use/loans", headers=api.service,
                              params=params)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_error"


# --- reminder settings --------------------------------------------------------------------------


def test_reminders_are_off_until_turned_on(api, seeded, clock):
    url = "/v1/borrowers/demo-in-use/reminders"
    assert get(api, url) == {"borrower_id": "demo-in-use", "enabled": False, "days_before": 3,
                             "updated_at": None}

    on = api.client.put(url, headers=api.service, json={"enabled": True})
    assert on.status_code == 200, on.text
    assert on.json() == {"borrower_id": "demo-in-use", "enabled": True, "days_before": 3,
                         "updated_at": iso(T0)}
    clock.advance(HOUR)
    five = api.client.put(url, headers=api.service, json={"enabled": True, "days_before": 5})
    assert five.json()["days_before"] == 5
    off = api.client.put(url, headers=api.service, json={"enabled": False})
    # turning them off keeps the chosen number of days
    assert off.json() == {"borrower_id": "demo-in-use", "enabled": False, "days_before": 5,
                          "updated_at": iso(T0 + HOUR)}
    assert get(api, url) == off.json()


@pytest.mark.parametrize("body", [{"enabled": "yes"}, {}, {"enabled": True, "days_before": 0},
                                  {"enabled": True, "days_before": 15},
                                  {"enabled": True, "days_before": 3.5},
                                  {"enabled": True, "extra": 1}])
def test_invalid_reminder_settings_are_422_and_change_nothing(api, seeded, body):
    url = "/v1/borrowers/demo-in-use/reminders"
    response = api.client.put(url, headers=api.service, json=body)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "validation_error"
    assert get(api, url)["updated_at"] is None


def test_reminder_settings_need_a_json_body_and_the_token(api, seeded):
    url = "/v1/borrowers/demo-in-use/reminders"
    assert api.client.put(url, json={"enabled": True}).status_code == 401
    text = api.client.put(url, headers={**api.service, "Content-Type": "text/plain"},
                          content=b"enabled")
    assert (text.status_code, text.json()["error"]["code"]) == (415, "unsupported_media_type")
    missing = api.client.put("/v1/borrowers/nobody/reminders", headers=api.service,
                             json={"enabled": True})
    assert missing.status_code == 404
