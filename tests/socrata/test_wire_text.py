"""Dates and date-times on the wire: the same text in every year, whichever way it is made.

Most columns hold four-digit years, where the T goes in at a fixed byte; years before 1001 or
after 9998 (and the time zones that move a value across a year) take the general path. Both must
give what route always sent."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from pipeline.socrata.wire import convert

DAY_US = 86_400_000_000


def _reference_iso(arr: pa.Array) -> pa.Array:
    ms = pc.cast(arr, pa.timestamp("ms", tz=arr.type.tz), safe=False)
    return pc.replace_substring(ms.cast(pa.string()), " ", "T", max_replacements=1)


def _days(rng, low, high, n=20_000):
    return pa.array(rng.integers(low, high, n).astype("int32"), mask=rng.random(n) < 0.05).cast(pa.date32())


@pytest.mark.parametrize(
    ("low", "high"),
    [(-353_920, 2_932_532), (-719_162, -353_920), (2_932_532, 2_958_465), (-800_000, 3_000_000)],
    ids=["four-digit years", "years 1-1000", "years 9999", "beyond on both sides"],
)
def test_dates_go_as_midnight_in_every_year(low, high):
    days = _days(np.random.default_rng(7), low, high)
    expected = pc.binary_join_element_wise(days.cast(pa.string()), "T00:00:00", "")
    assert convert(days, "calendar_date").values.equals(expected)


@pytest.mark.parametrize("tz", [None, "UTC", "Pacific/Kiritimati", "Pacific/Pago_Pago"])
@pytest.mark.parametrize(
    ("low", "high"),
    [(-353_920, 2_932_532), (-719_162, -353_910), (2_932_520, 2_932_897)],
    ids=["four-digit years", "around year 1000", "around year 10000"],
)
def test_date_times_go_as_iso_text_in_every_year(tz, low, high):
    rng = np.random.default_rng(11)
    micros = rng.integers(low * DAY_US, high * DAY_US, 20_000)
    stamps = pa.array(micros, mask=rng.random(len(micros)) < 0.05).cast(pa.timestamp("us", tz=tz))
    if tz is None:
        assert convert(stamps, "calendar_date").values.equals(_reference_iso(stamps))
    utc = stamps.cast(pa.timestamp("us", tz="UTC")) if tz else pc.assume_timezone(stamps, "UTC")
    assert convert(stamps, "date").values.equals(_reference_iso(utc))
    shown = pc.local_timestamp(stamps) if tz else stamps
    assert convert(stamps, "calendar_date").values.equals(_reference_iso(shown))


def test_a_column_of_nulls_stays_null():
    assert convert(pa.nulls(3, pa.date32()), "calendar_date").values.to_pylist() == [None] * 3
    assert convert(pa.nulls(3, pa.timestamp("us")), "calendar_date").values.to_pylist() == [None] * 3
