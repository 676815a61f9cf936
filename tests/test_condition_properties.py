"""Conditions, property-based: the compiled closure the engine runs gives the walked evaluator's
answer (True, False or None) for any condition and any message, booleans-as-numbers and missing
fields included."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge.model import FieldValue
from edge.rule_spec import Condition, compile_condition, evaluate_condition

_NAMES = st.sampled_from(["a", "b", "c"])
# few distinct values, so that equal ones meet often; 0, 1 and True, False meet each other too;
# finite only: a rule file's NaN or infinity is refused at load, a reading's at decode
_NUMBERS = st.sampled_from([0, 1, 2, -1, 0.0, 1.0, 2.5, 57, 1e9]) | st.floats(
    allow_nan=False, allow_infinity=False
)
_VALUES: st.SearchStrategy[FieldValue] = (
    st.booleans() | _NUMBERS | st.sampled_from(["", "x", "y", "fall", "1", "True"])
)
_ORDER = ("gt", "ge", "lt", "le")
_LEAVES = (
    st.builds(lambda f, op, v: {"field": f, op: v}, _NAMES, st.sampled_from(["eq", "ne"]), _VALUES)
    | st.builds(
        lambda f, vs: {"field": f, "in": vs}, _NAMES, st.lists(_VALUES, min_size=1, max_size=3)
    )
    | st.builds(lambda f, op, v: {"field": f, op: v}, _NAMES, st.sampled_from(_ORDER), _NUMBERS)
    | st.builds(lambda f, p: {"field": f, "present": p}, _NAMES, st.booleans())
)
_CONDITIONS: st.SearchStrategy[dict[str, Any]] = st.recursive(
    _LEAVES,
    lambda children: (
        st.builds(lambda cs: {"all": cs}, st.lists(children, min_size=1, max_size=3))
        | st.builds(lambda cs: {"any": cs}, st.lists(children, min_size=1, max_size=3))
        | st.builds(lambda c: {"not": c}, children)
    ),
    max_leaves=8,
)
_FIELDS = st.dictionaries(_NAMES, _VALUES, max_size=3)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_CONDITIONS, st.lists(_FIELDS, min_size=1, max_size=4))
def test_a_compiled_condition_answers_as_the_walked_one(
    written: dict[str, Any], messages: list[dict[str, FieldValue]]
) -> None:
    condition = Condition.model_validate(written)
    compiled = compile_condition(condition)
    for fields in messages:  # one closure, many messages: it keeps no state between them
        assert compiled(fields) is evaluate_condition(condition, fields)
