"""socrata-py's own integration suite, run unchanged against the local portal over https.

The suite is not vendored: point SOCRATA_PY_SUITE at a checkout of github.com/socrata/socrata-py
(its `test/` folder and fixtures; its `bin/test-local` shows how it is aimed at a Socrata stack).
The portal is served over https on a free port with its self-signed certificate, which the suite
trusts through REQUESTS_CA_BUNDLE, and the suite runs with `python -m unittest discover -s test
-p '*_test.py'` from the checkout, with the credentials it reads (SOCRATA_DOMAIN, SOCRATA_USERNAME,
SOCRATA_PASSWORD).

Tests that need what the local portal does not do are expected to fail, each for a stated reason;
any other failure fails this test, so a regression in the publishing API shows here.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from portalkit import SECRET, USER, ServedPortal

SUITE = os.environ.get("SOCRATA_PY_SUITE", "")

EXPECTED_FAILURES = {
    "test_geocode_column": "geocoding is not supported by the local portal",
    "test_create_from_url": "the URL is on a Socrata test server on the internet",
}

pytestmark = pytest.mark.skipif(
    not (SUITE and (Path(SUITE) / "test" / "auth.py").is_file()),
    reason="set SOCRATA_PY_SUITE to a checkout of github.com/socrata/socrata-py to run its suite",
)


def test_socrata_py_suite_passes_against_the_local_portal(tmp_path):
    with ServedPortal(tmp_path / "portal.sqlite", tls=True) as portal:
        env = dict(
            os.environ,
            SOCRATA_DOMAIN=portal.domain,
            SOCRATA_USERNAME=USER,
            SOCRATA_PASSWORD=SECRET,
            REQUESTS_CA_BUNDLE=str(portal.verify),
            PYTHONWARNINGS="ignore",
        )
        env.pop("SOCRATA_COOKIE", None)
        done = subprocess.run(
            [sys.executable, "-m", "unittest", "discover", "-s", "test", "-p", "*_test.py"],
            cwd=SUITE,
            env=env,
            capture_output=True,
            text=True,
            timeout=1200,
        )
    report = done.stderr
    ran = re.search(r"Ran (\d+) tests", report)
    assert ran, report[-3000:]
    failed = set(re.findall(r"^(?:ERROR|FAIL): (\w+) ", report, re.M))
    unexpected = failed - set(EXPECTED_FAILURES)
    assert not unexpected, f"socrata-py tests failing against the local portal: {sorted(unexpected)}\n{report[-6000:]}"
    print(f"socrata-py suite: {int(ran.group(1)) - len(failed)} of {ran.group(1)} passed")
