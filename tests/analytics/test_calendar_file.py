"""A city's special periods read from iCalendar and CSV files, bad ones refused with the line."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from analytics.calendar_file import CalendarError, Period, read_periods


def _ics(tmp_path: Path, *events: str, name: str = "city.ics") -> Path:
    body = "\r\n".join(["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//test//EN", *events,
                        "END:VCALENDAR", ""])  # fmt: skip
    path = tmp_path / name
    path.write_text(body, encoding="utf-8")
    return path


def _event(*lines: str) -> str:
    return "\r\n".join(["BEGIN:VEVENT", "UID:1@test", *lines, "END:VEVENT"])


def test_ics_dates_end_the_day_before_dtend_and_kinds_come_from_categories(
    tmp_path: Path,
) -> None:
    path = _ics(
        tmp_path,
        _event("SUMMARY:Herbst", " ferien 2024", "CATEGORIES:School,Hessen",
               "DTSTART;VALUE=DATE:20241014", "DTEND;VALUE=DATE:20241026"),
        _event("SUMMARY:Stadtfest", "DTSTART;VALUE=DATE:20240906", "DURATION:P3D"),
        _event("SUMMARY:Markt\\, Nacht", "DTSTART:20241130T180000Z",
               "DTEND;VALUE=DATE-TIME:20241130T230000Z", "CATEGORIES:event"),
        _event("SUMMARY:Lauf", "DTSTART;VALUE=DATE:20241201", "DTEND;VALUE=DATE:20241201"),
    )  # fmt: skip
    assert read_periods(path) == (
        Period("Stadtfest", "special", date(2024, 9, 6), date(2024, 9, 8)),
        Period("Herbstferien 2024", "school", date(2024, 10, 14), date(2024, 10, 25)),
        Period("Markt, Nacht", "event", date(2024, 11, 30), date(2024, 11, 30)),
        Period("Lauf", "special", date(2024, 12, 1), date(2024, 12, 1)),
    )


def test_csv_periods_include_their_last_day(tmp_path: Path) -> None:
    path = tmp_path / "periods.csv"
    path.write_text(
        "name,start,end,kind\n"
        '"Osterferien, Hessen",2024-03-25,2024-04-13,school\n'
        "Stadtfest,2024-09-06,2024-09-06,\n",
        encoding="utf-8",
    )
    periods = read_periods(path)
    assert periods[0] == Period(
        "Osterferien, Hessen", "school", date(2024, 3, 25), date(2024, 4, 13)
    )
    assert len(periods[0].days()) == 20
    assert periods[1] == Period("Stadtfest", "special", date(2024, 9, 6), date(2024, 9, 6))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("start,end\n2024-01-01,2024-01-02\n", r"line 1: the header lacks name"),
        ("name,start,end\nx,2024-13-01,2024-12-02\n", r"line 2: start '2024-13-01' is not a date"),
        ("name,start,end\nx,2024-01-05,2024-01-01\n", r"line 2: ends .* before it starts"),
        ("name,start,end\nok,2024-01-01,2024-01-01\nx,2024-01-01\n", r"line 3: expected 3 fields"),
        ("name,start,end,kind\nx,2024-01-01,2024-01-02,school;rm\n", r"line 2: kind"),
    ],
)
def test_bad_csv_lines_are_named_with_the_fix(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(CalendarError, match=message) as caught:
        read_periods(path)
    assert str(path) in str(caught.value)


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (("DTEND;VALUE=DATE:20240102",), r"line 4: the VEVENT has no DTSTART"),
        (("DTSTART;VALUE=DATE:2024-01-02",), r"DTSTART '2024-01-02' is not a date; write it as"),
        (("DTSTART;VALUE=DATE:20240230",), r"is not a calendar day"),
        (("DTSTART;VALUE=DATE:20240101", "RRULE:FREQ=YEARLY"), r"recurring events are not read"),
        (("DTSTART;VALUE=DATE:20240101", "DURATION:PT3H"), r"whole days or weeks"),
    ],
)
def test_bad_events_are_named_with_their_line(
    tmp_path: Path, lines: tuple[str, ...], message: str
) -> None:
    with pytest.raises(CalendarError, match=message):
        read_periods(_ics(tmp_path, _event(*lines)))


def test_an_unclosed_event_and_a_file_that_is_no_calendar_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "open.ics"
    path.write_text("BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nDTSTART:20240101\r\n", encoding="utf-8")
    with pytest.raises(CalendarError, match=r"line 2: the VEVENT is never closed"):
        read_periods(path)
    other = tmp_path / "other.ics"
    other.write_text("name,start,end\n", encoding="utf-8")
    with pytest.raises(CalendarError, match=r"line 1: not an iCalendar file"):
        read_periods(other)
    with pytest.raises(CalendarError, match=r"give an .ics or a .csv file"):
        read_periods(tmp_path / "periods.xlsx")
    with pytest.raises(CalendarError, match=r"cannot read the special-days file"):
        read_periods(tmp_path / "missing.csv")
