"""CME Globex for `exchange-calendars`: the session futures trade in.

Sunday 17:00 to Friday 16:00 America/Chicago, halted 16:00–17:00 each day; a session is named
by the day it closes (the Monday session opens Sunday 17:00). Holidays and early closes are the
library's CME ones (`CMES`: New Year, Good Friday, Christmas closed; noon closes on US
holidays), whose own hours run 17:00 to 17:00 and so miss the daily halt.
"""

from __future__ import annotations

from datetime import time

from exchange_calendars.exchange_calendar_cmes import CMESExchangeCalendar


class GlobexExchangeCalendar(CMESExchangeCalendar):
    name = "GLOBEX"
    close_times = ((None, time(16)),)


_registered = False


def register() -> None:
    global _registered
    if _registered:
        return
    import exchange_calendars as xc

    if "GLOBEX" not in xc.get_calendar_names():
        xc.register_calendar_type("GLOBEX", GlobexExchangeCalendar)
    _registered = True
