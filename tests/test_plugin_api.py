"""The public plugin API: signatures checked at plan time, the conformance kits, the example plugins."""

from __future__ import annotations

import pytest


def _validate(route_cli, write_route, source: str, steps: str = "", deliver: str = "{jsonl: {path: out.jsonl}}"):
    path = write_route(f"""
        name: shapes
        source:
          {source}
        source_transforms:
          {steps or "[]"}
        targets:
          - name: out
            deliver: {deliver}
    """, **{"data.csv": "a\n1\n"})
    return path, route_cli("validate", str(path))


CSV = "csv: {path: data.csv}"


def test_a_chunk_rule_without_ctx_is_reported_at_its_line(route_cli, write_route):
    path, result = _validate(route_cli, write_route, CSV, "- plugins_for_tests:two_args: {}")
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        f"{path}:5:5: source_transforms[0].plugins_for_tests:two_args: rule 'plugins_for_tests:two_args' "
        "cannot be used: a chunk rule is called as fn(chunk, options, ctx), but two_args takes (chunk, options)")


def test_a_stream_rule_is_expected_to_take_the_stream_options_and_ctx(route_cli, write_route):
    path, result = _validate(route_cli, write_route, CSV, "- plugins_for_tests:stream_one_arg: {}")
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        f"{path}:5:5: source_transforms[0].plugins_for_tests:stream_one_arg: rule "
        "'plugins_for_tests:stream_one_arg' cannot be used: a stream rule is called as "
        "fn(chunks, options, ctx), but stream_one_arg takes (chunks)")


def test_a_source_whose_constructor_does_not_take_ctx_is_reported(route_cli, write_route):
    path, result = _validate(route_cli, write_route, "plugins_for_tests:NoCtxSource: {}")
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        f"{path}:3:3: source.plugins_for_tests:NoCtxSource: source 'plugins_for_tests:NoCtxSource' "
        "cannot be used: a source is built as Source(options, ctx), but NoCtxSource.__init__ takes (options)")


def test_a_source_without_chunks_is_reported(route_cli, write_route):
    path, result = _validate(route_cli, write_route, "plugins_for_tests:NoChunksSource: {}")
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        f"{path}:3:3: source.plugins_for_tests:NoChunksSource: source 'plugins_for_tests:NoChunksSource' "
        "cannot be used: it has no chunks() method; a source needs chunks()")


def test_a_delivery_without_abort_and_with_a_wrong_write_is_reported_once_with_both(route_cli, write_route):
    path, result = _validate(route_cli, write_route, CSV, deliver="{plugins_for_tests:HalfDelivery: {}}")
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        f"{path}:8:15: targets[0].deliver.plugins_for_tests:HalfDelivery: delivery "
        "'plugins_for_tests:HalfDelivery' cannot be used: it has no abort() method; a delivery needs "
        "open(columns), write(chunk), close(), abort(exc); the executor calls write(chunk), but "
        "HalfDelivery.write takes ()")


def test_every_problem_in_the_route_is_reported_at_once(route_cli, write_route):
    path, result = _validate(route_cli, write_route, "plugins_for_tests:NoCtxSource: {}",
                             "- plugins_for_tests:two_args: {}")
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert [line.split(": ")[0] for line in lines] == [f"{path}:3:3", f"{path}:5:5"]
