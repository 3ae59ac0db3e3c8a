"""An example route plugin: see rules.py."""
