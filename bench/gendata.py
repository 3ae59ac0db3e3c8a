"""Realistic Connecticut-like records for benchmarks: `python bench/gendata.py ROWS OUT.csv`.

Towns, ZIP codes with leading zeros, US-style sale dates, ISO timestamps, amounts, free text with
commas and quotes, coordinates, and a share of empty cells. Vectorised, so 1M rows take seconds.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

TOWNS = [
    "Hartford",
    "New Haven",
    "Bridgeport",
    "Stamford",
    "Waterbury",
    "Norwalk",
    "Danbury",
    "New Britain",
    "West Hartford",
    "Greenwich",
    "Hamden",
    "Meriden",
    "Bristol",
    "Manchester",
    "West Haven",
    "Milford",
    "Stratford",
    "East Hartford",
    "Middletown",
    "Wallingford",
    "Enfield",
    "Southington",
    "Shelton",
    "Norwich",
    "Groton",
    "Torrington",
    "Trumbull",
    "Glastonbury",
    "Naugatuck",
    "Newington",
    "Cheshire",
    "Vernon",
    "Windsor",
    "New London",
    "Branford",
    "Fairfield",
    "Ridgefield",
    "Farmington",
    "Simsbury",
    "Old Saybrook",
]
ZIPS = [
    "06103",
    "06510",
    "06604",
    "06901",
    "06702",
    "06850",
    "06810",
    "06051",
    "06107",
    "06830",
    "06514",
    "06450",
    "06010",
    "06040",
    "06516",
    "06460",
    "06614",
    "06108",
    "06457",
    "06492",
    "06082",
    "06489",
    "06484",
    "06360",
    "06340",
    "06790",
    "06611",
    "06033",
    "06770",
    "06111",
    "06410",
    "06066",
    "06095",
    "06320",
    "06405",
    "06824",
    "06877",
    "06032",
    "06070",
    "06475",
]
TYPES = ["Residential", "Commercial", "Vacant Land", "Apartments", "Industrial", "Condo"]
REMARKS = [
    "",
    "FAMILY SALE",
    'SOLD "AS IS", NO WARRANTY',
    "ESTATE SALE, PROBATE",
    "FORECLOSURE",
    "CORRECTED DEED; SEE #1234",
    "Price includes 2 lots, one, two",
    "  leading and trailing  ",
]


def generate(rows: int, seed: int = 7) -> pa.Table:
    rng = np.random.default_rng(seed)
    town_idx = rng.integers(0, len(TOWNS), rows)
    days = rng.integers(0, 365 * 8, rows)
    base = np.datetime64("2017-01-01")
    dates = base + days.astype("timedelta64[D]")
    stamps = dates.astype("datetime64[s]") + rng.integers(0, 86400, rows).astype("timedelta64[s]")
    amount = np.round(rng.lognormal(12, 1, rows), 2)
    amount[rng.random(rows) < 0.01] *= -1  # a few refunds, filtered out by the benchmark route
    date_arr = pa.array(dates)
    us_dates = pc.strftime(date_arr, "%m/%d/%Y")
    empty = rng.random(rows) < 0.03
    lat = np.round(41.0 + rng.random(rows) * 1.0, 6)
    lon = np.round(-73.7 + rng.random(rows) * 1.9, 6)
    return pa.table(
        {
            "Serial Number": pa.array(np.arange(1, rows + 1)).cast(pa.string()),
            "Town": pa.array(np.array(TOWNS, dtype=object)[town_idx]),
            "ZIP": pa.array(np.array(ZIPS, dtype=object)[town_idx]),
            "Sale Date": us_dates,
            "Recorded At": pc.strftime(pa.array(stamps), "%Y-%m-%dT%H:%M:%S"),
            "Sale Amount": pa.array(np.where(empty, None, amount.astype(str)), pa.string()),
            "Property Type": pa.array(np.array(TYPES, dtype=object)[rng.integers(0, len(TYPES), rows)]),
            "Remarks": pa.array(np.array(REMARKS, dtype=object)[rng.integers(0, len(REMARKS), rows)]),
            "Latitude": pa.array(lat.astype(str)),
            "Longitude": pa.array(lon.astype(str)),
        }
    )


def write_csv(rows: int, out: Path, seed: int = 7) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    step = 200_000
    with pacsv.CSVWriter(
        str(out), generate(1).schema, write_options=pacsv.WriteOptions(quoting_style="needed")
    ) as writer:
        for start in range(0, rows, step):
            table = generate(min(step, rows - start), seed + start)
            serial = pa.array(np.arange(start + 1, start + table.num_rows + 1)).cast(pa.string())
            writer.write_table(table.set_column(0, "Serial Number", serial))
    return out


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    target = Path(sys.argv[2]) if len(sys.argv) > 2 else Path("bench/data/sales.csv")
    print(write_csv(n, target))
