"""jmespath: values pulled out of JSON text, typed, with bad documents and results rejected."""

import pytest
from rulekit import INTEGER, NUMBER, TEXT, apply, frame, make_ctx, rejects, values

from pipeline.basics.errors import OptionError
from pipeline.testing import bind_options, check_rule
from transforms.jsonpath import jmespath

DOCS = frame(
    {
        "payload": [
            '{"inspection": {"inspector": {"name": "Zoë"}, "violations": [{"code": "A1"}, {"code": "B2"}]}, "score": 91}',
            None,
            '{"inspection": {"inspector": null, "violations": []}, "score": "88"}',
            "not json",
            '{"inspection": {"inspector": {"name": "Al"}, "violations": [{"code": "C3"}]}, "score": 9.5}',
            '{"inspection": {"inspector": {"name": "Zoë"}, "violations": [{"code": "A1"}, {"code": "B2"}]}, "score": 91}',
        ]
    }
)

EXTRACT = {
    "inspector": "inspection.inspector.name",
    "violations": {"expression": "length(inspection.violations)", "type": "integer"},
    "codes": "inspection.violations[*].code",
    "score": {"expression": "score", "type": "integer"},
}


@pytest.fixture
def ctx(tmp_path):
    return make_ctx(tmp_path)


def test_jmespath_extracts_typed_values_and_rejects_bad_rows(ctx):
    out = apply(jmespath, {"column": "payload", "extract": EXTRACT}, DOCS, ctx)
    assert out.index.tolist() == [2, 3, 4, 7]
    assert values(out["inspector"]) == ["Zoë", None, None, "Zoë"]
    assert values(out["violations"]) == [2, None, 0, 2] and out["violations"].dtype == INTEGER
    assert values(out["codes"]) == ['["A1","B2"]', None, "[]", '["A1","B2"]'] and out["codes"].dtype == TEXT
    assert values(out["score"]) == [91, None, 88, 91]
    assert [(r["line"], r["reason"]) for r in rejects(ctx)] == [
        ("5", "is not valid JSON (line 1, column 1)"),
        ("6", "the result of 'score' is not an integer"),
    ]


def test_jmespath_invalid_null_and_json_type(ctx):
    out = apply(
        jmespath,
        {
            "column": "payload",
            "invalid": None,
            "extract": {  # as YAML reads `invalid: null`
                "s": {"expression": "score", "type": "json"},
                "n": {"expression": "score", "type": "number"},
            },
        },
        DOCS,
        ctx,
    )
    assert values(out["s"]) == ["91", None, '"88"', None, "9.5", "91"]
    assert values(out["n"]) == [91.0, None, 88.0, None, 9.5, 91.0] and out["n"].dtype == NUMBER
    assert rejects(ctx) == []


def test_jmespath_function_errors_reject_the_row(ctx):
    out = apply(
        jmespath, {"column": "payload", "invalid": "null", "extract": {"x": "length(score)"}}, DOCS.iloc[[0]], ctx
    )
    assert out.empty
    assert rejects(ctx)[0]["reason"].startswith("'length(score)' failed: In function length(), invalid type")


def test_jmespath_bad_expression_is_an_option_error(ctx):
    with pytest.raises(OptionError, match=r"invalid JMESPath expression 'a\[': .* at position 2") as err:
        bind_options(jmespath, {"column": "p", "extract": {"x": "a["}}, ctx)
    assert err.value.path == ("extract", "x")


def test_jmespath_keeps_the_contract():
    check_rule(jmespath, {"column": "payload", "extract": EXTRACT}, DOCS)
