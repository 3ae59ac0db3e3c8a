"""The local portal: Socrata's publishing APIs on a SQLite file, embedded or served (`route portal`).

See docs/portal.md for what it serves and pipeline/portal/behaviour.py for the choices it makes
where Socrata's behaviour is not documented.
"""

from pipeline.portal.faults import Faults
from pipeline.portal.portal import LocalPortal

__all__ = ["LocalPortal", "Faults"]
