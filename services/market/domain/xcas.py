"""Casablanca Stock Exchange (Bourse de Casablanca) for `exchange-calendars`.

Continuous trading 09:30–15:30 Africa/Casablanca, Monday to Friday. Fixed civil holidays
are rules; the Islamic holidays follow the lunar calendar and are announced each year,
so they are listed here (Moroccan observance) and must be extended yearly.
"""

from __future__ import annotations

from datetime import time
from zoneinfo import ZoneInfo

import pandas as pd
from exchange_calendars.exchange_calendar import ExchangeCalendar, HolidayCalendar
from pandas.tseries.holiday import Holiday

_FIXED = [
    Holiday("New Year's Day", month=1, day=1),
    Holiday("Proclamation of Independence", month=1, day=11),
    Holiday("Amazigh New Year", month=1, day=14, start_date=pd.Timestamp("2024-01-01")),
    Holiday("Labour Day", month=5, day=1),
    Holiday("Throne Day", month=7, day=30),
    Holiday("Oued Ed-Dahab Day", month=8, day=14),
    Holiday("Revolution of the King and the People", month=8, day=20),
    Holiday("Youth Day", month=8, day=21),
    Holiday("Green March", month=11, day=6),
    Holiday("Independence Day", month=11, day=18),
]

# Eid al-Fitr, Eid al-Adha, Islamic New Year, Mawlid (two days where observed).
ISLAMIC_HOLIDAYS = [
    "2024-04-10",
    "2024-04-11",
    "2024-06-17",
    "2024-06-18",
    "2024-07-08",
    "2024-09-16",
    "2024-09-17",
    "2025-03-31",
    "2025-04-01",
    "2025-06-09",
    "2025-06-27",
    "2025-09-05",
    "2026-03-20",
    "2026-03-21",
    "2026-05-27",
    "2026-05-28",
    "2026-06-17",
    "2026-08-26",
    "2026-08-27",
    "2027-03-10",
    "2027-03-11",
    "2027-05-17",
    "2027-05-18",
    "2027-06-07",
    "2027-08-16",
    "2027-08-17",
]


class XCASExchangeCalendar(ExchangeCalendar):
    name = "XCAS"
    tz = ZoneInfo("Africa/Casablanca")
    open_times = ((None, time(9, 30)),)
    close_times = ((None, time(15, 30)),)

    @property
    def regular_holidays(self) -> HolidayCalendar:
        return HolidayCalendar(_FIXED)

    @property
    def adhoc_holidays(self) -> list[pd.Timestamp]:
        return [pd.Timestamp(d) for d in ISLAMIC_HOLIDAYS]


_registered = False


def register() -> None:
    global _registered
    if _registered:
        return
    import exchange_calendars as xc

    if "XCAS" not in xc.get_calendar_names():
        xc.register_calendar_type("XCAS", XCASExchangeCalendar)
    _registered = True
