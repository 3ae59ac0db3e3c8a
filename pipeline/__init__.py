"""route: an ETL engine for open data publishers.

The engine lives here (route loading, planning, the stage executor, sources, deliveries, the
Socrata client, the local portal and the command line); the built-in rules live in `transforms`.
"""

__version__ = "0.1.0"
