"""JSON schemas written as GBNF grammars for the xllamacpp engine, which brings no GBNF converter of its own."""

from __future__ import annotations

import importlib.util
from typing import Any

import pytest

from retinue.errors import ConfigurationError
from retinue.models.local_gbnf import gbnf_literal, json_schema_to_gbnf


def rules(grammar: str) -> dict[str, str]:
    return dict(line.split(" ::= ", 1) for line in grammar.splitlines())


def test_an_object_lists_required_properties_then_any_of_the_optional_ones_in_order() -> None:
    grammar = json_schema_to_gbnf(
        {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "nights": {"anyOf": [{"type": "integer"}, {"type": "null"}], "default": None},
                "pets": {"type": "boolean"},
            },
            "required": ["city"],
            "additionalProperties": False,
        }
    )

    assert rules(grammar) == {
        "root": '"{" space root-city-kv ( "," space root-nights-kv )? root-nights-kv-rest "}" space',
        "root-city-kv": '"\\"city\\"" space ":" space string',
        "root-nights-kv": '"\\"nights\\"" space ":" space root-nights',
        "root-nights": "integer | null",
        "root-nights-kv-rest": '( "," space root-pets-kv )?',
        "root-pets-kv": '"\\"pets\\"" space ":" space boolean',
        "string": '"\\"" char* "\\"" space',
        "char": '[^"\\\\] | "\\\\" (["\\\\/bfnrt] | "u" [0-9a-fA-F] [0-9a-fA-F] [0-9a-fA-F] [0-9a-fA-F])',
        "integer": '"-"? ([0-9] | [1-9] [0-9]{1,15}) space',
        "boolean": '("true" | "false") space',
        "null": '"null" space',
        "space": '" "?',
    }


def test_the_reply_formats_find_the_rules_they_rewrite() -> None:
    # `root` is renamed by the Hermes format; `string` and `...answer` rules get their length bounds.
    grammar = json_schema_to_gbnf(
        {"anyOf": [{"type": "object", "properties": {"answer": {"type": "string", "minLength": 1}}}]}
    )

    assert grammar.startswith("root ::= ")
    assert rules(grammar)["root-0-answer"] == '"\\"" char+ "\\"" space'


@pytest.mark.parametrize(
    ("schema", "expected"),
    [
        ({"const": "search_cars"}, '"\\"search_cars\\"" space'),
        ({"enum": ["economy", 'say "hi"', 3]}, '("\\"economy\\"" | "\\"say \\\\\\"hi\\\\\\"\\"" | "3") space'),
        ({"type": "string", "maxLength": 8}, '"\\"" char{0,8} "\\"" space'),
        (
            {"type": "array", "items": {"type": "integer"}, "minItems": 1, "maxItems": 3},
            '"[" space integer ( "," space integer ){0,2} "]" space',
        ),
        ({"type": ["string", "null"]}, "string | null"),
    ],
)
def test_values_are_constrained_as_their_schema_says(schema: dict[str, Any], expected: str) -> None:
    assert rules(json_schema_to_gbnf(schema))["root"] == expected


def test_a_recursive_type_refers_back_to_its_own_rule() -> None:
    grammar = json_schema_to_gbnf(
        {
            "$defs": {
                "Folder": {
                    "type": "object",
                    "properties": {"children": {"type": "array", "items": {"$ref": "#/$defs/Folder"}}},
                }
            },
            "$ref": "#/$defs/Folder",
        }
    )

    assert rules(grammar)["root"] == "def-folder"
    assert "def-folder ( " in rules(grammar)["def-folder-children"]


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        ({"type": "string", "contentMediaType": "image/png"}, r"uses \['contentMediaType'\]"),
        ({"$ref": "#/$defs/Missing"}, "not one of its \\$defs"),
        ({"type": "object", "properties": {}, "required": ["city"]}, None),
        ({"type": "object", "properties": {"a": {}}, "required": ["b"]}, r"requires \['b'\]"),
        ({"type": "tuple"}, "unknown type 'tuple'"),
    ],
)
def test_a_schema_the_grammar_cannot_express_is_refused_clearly(schema: dict[str, Any], message: str | None) -> None:
    if message is None:  # no properties at all: a free-form object, nothing to refuse
        assert json_schema_to_gbnf(schema)
        return
    with pytest.raises(ConfigurationError, match=message):
        json_schema_to_gbnf(schema)


def test_literals_escape_quotes_backslashes_and_control_characters() -> None:
    assert gbnf_literal('a "b" \\ c\n') == '"a \\"b\\" \\\\ c\\x0A"'


@pytest.mark.skipif(importlib.util.find_spec("llama_cpp") is None, reason="llama.cpp's grammar parser is needed")
def test_llama_cpps_parser_accepts_every_grammar_here() -> None:
    import llama_cpp  # type: ignore[import-untyped]

    schemas: list[dict[str, Any]] = [
        {
            "type": "object",
            "properties": {"tags": {"type": "array", "items": {"type": "string"}}, "n": {"type": "number"}},
        },
        {"type": "object", "additionalProperties": {"type": "integer"}},
        {
            "$defs": {
                "N": {"type": "object", "properties": {"next": {"anyOf": [{"$ref": "#/$defs/N"}, {"type": "null"}]}}}
            },
            "$ref": "#/$defs/N",
        },
        {"enum": ["a", "b"]},
        {},
    ]
    for schema in schemas:
        assert llama_cpp.LlamaGrammar.from_string(json_schema_to_gbnf(schema), verbose=False) is not None
