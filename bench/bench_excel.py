"""How fast the excel source reads, against the readers it could be built on.

    python bench/bench_excel.py [--rows 100000] [--reps 3] [--file path.xlsx] [--against TREE]

Writes a typed workbook (int, float, date, datetime, text, text codes, empty cells; about 13
columns like shared/bench/gen.py) once, then times each case in a fresh interpreter and prints the
best and median seconds, rows/s (of the best), peak RSS, the RSS before the timed region (imports
done), the speed as a fraction of calamine_iter's (best against best), the best process CPU
seconds and the same fraction by CPU (steadier than wall time when other work shares the cores;
the excel source overlaps the inflating of its sheet scan in a second thread, so its CPU
seconds can exceed its wall seconds). The cases run
interleaved, one repetition of each in turn, and the load average is printed before and after
(the machine may be shared):

    openpyxl_ro      openpyxl load_workbook(read_only=True, data_only=True) + iter_rows(values_only)
    calamine_iter    python_calamine sheet.iter_rows(), rows as Python lists (the yardstick)
    fastexcel        fastexcel read_excel().load_sheet(0).to_arrow(): calamine straight into Arrow
    excel_source     pipeline.sources.excel.ExcelSource: typed Arrow-backed chunks of 50,000 rows
    excel_before     the same from another source tree (--against TREE, made with
                     `git archive COMMIT pipeline | tar -x -C TREE`), in the same interleaving
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CASES = ("calamine_iter", "fastexcel", "excel_source", "openpyxl_ro")
HEADER = [
    "id",
    "list_year",
    "date_recorded",
    "town",
    "zip",
    "address",
    "assessed_value",
    "sale_amount",
    "property_type",
    "remarks",
    "latitude",
    "longitude",
    "updated_at",
]


def write_workbook(path: Path, rows: int) -> None:
    import random

    from openpyxl import Workbook

    rnd = random.Random(20240601)
    wb = Workbook(write_only=True)
    ws = wb.create_sheet("sales")
    ws.append(HEADER)
    base = dt.datetime(2001, 1, 1)
    towns = ["Hartford", "New Haven", "Stamford", "West Hartford", "Bridgeport", "Waterbury"]
    for i in range(1, rows + 1):
        day = base + dt.timedelta(days=rnd.randrange(8400))
        value = round(rnd.lognormvariate(11.8, 0.8), 2)
        ws.append(
            [
                i,
                day.year,
                day.date(),
                rnd.choice(towns),
                f"{rnd.randrange(6001, 6999):05d}",
                f"{rnd.randrange(1, 2500)} MAIN ST",
                value,
                None if rnd.random() < 0.01 else round(value * 1.4, 2),
                rnd.choice(["Residential", "Commercial", "Vacant Land", None]),
                None if rnd.random() < 0.45 else 'Short sale, lender approved, "as is"',
                None if rnd.random() < 0.08 else round(41.5 + rnd.random(), 6),
                None if rnd.random() < 0.08 else round(-72.5 + rnd.random(), 6),
                day + dt.timedelta(days=rnd.randrange(30, 400), seconds=rnd.randrange(86400)),
            ]
        )
    wb.save(path)


def write_workbook_shared(path: Path, rows: int) -> None:
    """The same columns written as Excel writes a workbook (shared strings, styled dates), straight
    as XML: openpyxl takes minutes for a million rows, this a few seconds."""
    import random
    import zipfile

    rnd = random.Random(20240601)
    strings: dict[str, int] = {}

    def shared(text: str) -> str:
        return str(strings.setdefault(text, len(strings)))

    def col(i: int) -> str:
        return "ABCDEFGHIJKLM"[i]

    base = dt.date(2001, 1, 1)
    epoch = dt.date(1899, 12, 30)
    towns = ["Hartford", "New Haven", "Stamford", "West Hartford", "Bridgeport", "Waterbury"]
    out = [
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<worksheet xmlns="http://schemas.'
        f'openxmlformats.org/spreadsheetml/2006/main"><dimension ref="A1:M{rows + 1}"/><sheetData>'
    ]
    out.append(
        '<row r="1" spans="1:13">'
        + "".join(f'<c r="{col(i)}1" t="s"><v>{shared(h)}</v></c>' for i, h in enumerate(HEADER))
        + "</row>"
    )
    for i in range(1, rows + 1):
        r = i + 1
        day = rnd.randrange(8400)
        serial = (base - epoch).days + day
        value = round(rnd.lognormvariate(11.8, 0.8), 2)
        cells = [
            f'<c r="A{r}"><v>{i}</v></c>',
            f'<c r="B{r}"><v>{(base + dt.timedelta(days=day)).year}</v></c>',
            f'<c r="C{r}" s="1"><v>{serial}</v></c>',
            f'<c r="D{r}" t="s"><v>{shared(rnd.choice(towns))}</v></c>',
            f'<c r="E{r}" t="s"><v>{shared(f"{rnd.randrange(6001, 6999):05d}")}</v></c>',
            f'<c r="F{r}" t="s"><v>{shared(f"{rnd.randrange(1, 250000)} MAIN ST")}</v></c>',
            f'<c r="G{r}"><v>{value}</v></c>',
        ]
        if rnd.random() >= 0.01:
            cells.append(f'<c r="H{r}"><v>{round(value * 1.4, 2)}</v></c>')
        kind = rnd.choice(["Residential", "Commercial", "Vacant Land", None])
        if kind:
            cells.append(f'<c r="I{r}" t="s"><v>{shared(kind)}</v></c>')
        if rnd.random() >= 0.45:
            cells.append(f'<c r="J{r}" t="s"><v>{shared("Short sale, lender approved, as is")}</v></c>')
        if rnd.random() >= 0.08:
            cells.append(f'<c r="K{r}"><v>{round(41.5 + rnd.random(), 6)}</v></c>')
        if rnd.random() >= 0.08:
            cells.append(f'<c r="L{r}"><v>{round(-72.5 + rnd.random(), 6)}</v></c>')
        stamp = serial + rnd.randrange(30, 400) + rnd.randrange(86400) / 86400
        cells.append(f'<c r="M{r}" s="2"><v>{stamp!r}</v></c>')
        out.append(f'<row r="{r}" spans="1:13">' + "".join(cells) + "</row>")
    out.append("</sheetData></worksheet>")
    main = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
    rel = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as z:
        z.writestr(
            "[Content_Types].xml",
            '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.'
            'spreadsheetml.sheet.main+xml"/>'
            '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-'
            'officedocument.spreadsheetml.worksheet+xml"/>'
            '<Override PartName="/xl/styles.xml" ContentType="application/vnd.openxmlformats-officedocument.'
            'spreadsheetml.styles+xml"/>'
            '<Override PartName="/xl/sharedStrings.xml" ContentType="application/vnd.openxmlformats-'
            'officedocument.spreadsheetml.sharedStrings+xml"/></Types>',
        )
        z.writestr(
            "_rels/.rels",
            f'<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship '
            f'Id="rId1" Type="{rel}/officeDocument" Target="xl/workbook.xml"/></Relationships>',
        )
        z.writestr(
            "xl/workbook.xml",
            f'<workbook xmlns="{main}" xmlns:r="{rel}"><sheets><sheet name="sales" sheetId="1" r:id="rId1"/>'
            "</sheets></workbook>",
        )
        z.writestr(
            "xl/_rels/workbook.xml.rels",
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            f'<Relationship Id="rId1" Type="{rel}/worksheet" Target="worksheets/sheet1.xml"/>'
            f'<Relationship Id="rId2" Type="{rel}/styles" Target="styles.xml"/>'
            f'<Relationship Id="rId3" Type="{rel}/sharedStrings" Target="sharedStrings.xml"/></Relationships>',
        )
        z.writestr(
            "xl/styles.xml",
            f'<styleSheet xmlns="{main}"><numFmts count="1"><numFmt numFmtId="164" formatCode="yyyy-mm-dd '
            'hh:mm:ss"/></numFmts><fonts count="1"><font><sz val="11"/><name val="Calibri"/></font></fonts>'
            '<fills count="2"><fill><patternFill patternType="none"/></fill><fill><patternFill '
            'patternType="gray125"/></fill></fills><borders count="1"><border><left/><right/><top/><bottom/>'
            '<diagonal/></border></borders><cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" '
            'borderId="0"/></cellStyleXfs><cellXfs count="3"><xf numFmtId="0" fontId="0" fillId="0" '
            'borderId="0" xfId="0"/><xf numFmtId="14" fontId="0" fillId="0" borderId="0" xfId="0" '
            'applyNumberFormat="1"/><xf numFmtId="164" fontId="0" fillId="0" borderId="0" xfId="0" '
            'applyNumberFormat="1"/></cellXfs></styleSheet>',
        )
        z.writestr("xl/worksheets/sheet1.xml", "".join(out))
        z.writestr(
            "xl/sharedStrings.xml",
            f'<sst xmlns="{main}" count="{len(strings)}" uniqueCount="{len(strings)}">'
            + "".join(f"<si><t>{t}</t></si>" for t in strings)
            + "</sst>",
        )


def run_case(case: str, path: str, tree: str | None = None) -> dict:
    """One repetition, in this (fresh) process; imports are outside the timed region."""
    if tree:
        sys.path.insert(0, tree)
    if case in ("excel_source", "excel_before"):
        from pipeline.basics.context import RunContext, StepContext
        from pipeline.sources.excel import ExcelSource
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start, cpu = time.perf_counter(), time.process_time()
    rows = 0
    if case == "openpyxl_ro":
        from openpyxl import load_workbook

        wb = load_workbook(path, read_only=True, data_only=True)
        for _ in wb.worksheets[0].iter_rows(values_only=True):
            rows += 1
        rows -= 1
    elif case == "fastexcel":
        import fastexcel

        rows = fastexcel.read_excel(path).load_sheet(0).to_arrow().num_rows
    elif case == "calamine_iter":
        from python_calamine import CalamineWorkbook

        for _ in CalamineWorkbook.from_path(path).get_sheet_by_index(0).iter_rows():
            rows += 1
        rows -= 1
    else:
        run = RunContext("bench", Path(path).parent / "route.yaml", Path(tempfile.gettempdir()), "bench")
        for chunk in ExcelSource({"path": path}, StepContext(run, "source", "excel")).chunks():
            rows += len(chunk)
    seconds = time.perf_counter() - start
    return {
        "case": case,
        "rows": rows,
        "seconds": seconds,
        "cpu_s": time.process_time() - cpu,
        "base_rss_mb": base,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--file", help="an existing workbook to read instead of a generated one")
    ap.add_argument(
        "--shared",
        action="store_true",
        help="write the workbook as Excel does (a shared strings table), straight as XML: fast enough "
        "for millions of rows",
    )
    ap.add_argument("--cases", default=",".join(CASES))
    ap.add_argument("--against", help="also time the excel source of this source tree (excel_before)")
    ap.add_argument("--one", help=argparse.SUPPRESS)
    ap.add_argument("--tree", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.one:
        print(json.dumps(run_case(args.one, args.file, args.tree)))
        return
    kind = "_shared" if args.shared else ""
    path = Path(args.file) if args.file else Path(tempfile.gettempdir()) / f"route_bench_{args.rows}{kind}.xlsx"
    if not path.exists():
        print(f"writing {path} ({args.rows:,} rows) ...", file=sys.stderr)
        (write_workbook_shared if args.shared else write_workbook)(path, args.rows)
    print(
        f"{path}: {path.stat().st_size / 1e6:.1f} MB, {args.reps} fresh processes per case, "
        f"interleaved (case after case, rep after rep); load average before: {_load()}\n"
    )
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parent.parent))
    cases = args.cases.split(",") + (["excel_before"] if args.against else [])
    runs: dict[str, list[dict]] = {case: [] for case in cases}
    for _ in range(args.reps):
        for case in cases:
            out = subprocess.run(
                [sys.executable, __file__, "--one", case, "--file", str(path)]
                + (["--tree", str(Path(args.against).resolve())] if case == "excel_before" else []),
                check=True,
                capture_output=True,
                text=True,
                env=env,
            ).stdout
            runs[case].append(json.loads(out))
    print(
        f"{'case':<15} {'rows':>9} {'best s':>7} {'median s':>9} {'best rows/s':>12} {'peak RSS MB':>12} "
        f"{'RSS before':>11} {'x calamine':>11} {'best CPU s':>11} {'x cal. CPU':>11}"
    )
    best = {case: min(r["seconds"] for r in got) for case, got in runs.items()}
    cpu = {case: min(r["cpu_s"] for r in got) for case, got in runs.items()}
    for case, got in runs.items():
        rows = got[0]["rows"]
        ratio = f"{best['calamine_iter'] / best[case]:.2f}" if "calamine_iter" in best else "-"
        cpu_ratio = f"{cpu['calamine_iter'] / cpu[case]:.2f}" if "calamine_iter" in cpu else "-"
        print(
            f"{case:<15} {rows:>9,} {best[case]:>7.3f} {statistics.median(r['seconds'] for r in got):>9.3f} "
            f"{rows / best[case]:>12,.0f} {max(r['peak_rss_mb'] for r in got):>12.0f} "
            f"{got[0]['base_rss_mb']:>11.0f} {ratio:>11} {cpu[case]:>11.3f} {cpu_ratio:>11}"
        )
    print(f"\nload average after: {_load()}")


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


if __name__ == "__main__":
    main()
