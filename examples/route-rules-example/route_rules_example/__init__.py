"""An example route plugin, written against pipeline.api alone: a rule (rules.py) and a source (sources.py)."""
