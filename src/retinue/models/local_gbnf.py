"""JSON schemas as GBNF grammars, for engines that bring no converter of their own (xllamacpp).

llama.cpp constrains decoding with a grammar in GBNF. llama-cpp-python converts a JSON schema to one in
Python; xllamacpp's own converter emits a grammar for llguidance instead, which the reply formats of
`local_replies` cannot combine with their GBNF (the Hermes format wraps the schema's rules in `<tool_call>`
tags, and free-text strings are bounded by rewriting the `string` rule). This converter writes the rule
names those formats rely on: `root`, `string` for a free string, and a rule named after each property.

It covers what tool schemas hold: objects (required properties first, then any subset of the optional ones,
in order), strings with length bounds, numbers, integers, booleans, null, arrays, `enum`, `const`,
`anyOf`/`oneOf`, a list of types, and `$ref`s into `$defs` (recursive types included). Value constraints a
grammar would need a regular-expression compiler for (`pattern`, `format`, `minimum`, `maximum`) are left to
the tool's argument validation, which tells the model what was wrong.
"""

from __future__ import annotations

import json
import re
from typing import Any

from ..errors import ConfigurationError

# Whitespace between tokens: llama.cpp's converters allow at most one space, which keeps a small model from
# padding a reply with newlines.
_PRIMITIVES = {
    "space": '" "?',
    "char": r'[^"\\] | "\\" (["\\/bfnrt] | "u" [0-9a-fA-F] [0-9a-fA-F] [0-9a-fA-F] [0-9a-fA-F])',
    "string": r'"\"" char* "\"" space',
    "integer": '"-"? ([0-9] | [1-9] [0-9]{1,15}) space',
    "number": '"-"? ([0-9] | [1-9] [0-9]{1,15}) ("." [0-9]{1,16})? ([eE] [-+]? [0-9]{1,3})? space',
    "boolean": '("true" | "false") space',
    "null": '"null" space',
    "value": "object | array | string | number | boolean | null",
    "object": '"{" space ( string ":" space value ( "," space string ":" space value )* )? "}" space',
    "array": '"[" space ( value ( "," space value )* )? "]" space',
}
# Which primitives each one refers to, so that only those a grammar uses are written out.
_USES = {
    "string": ("char", "space"),
    "integer": ("space",),
    "number": ("space",),
    "boolean": ("space",),
    "null": ("space",),
    "value": ("object", "array", "string", "number", "boolean", "null"),
    "object": ("space", "string", "value"),
    "array": ("space", "value"),
}
_ANNOTATIONS = frozenset({"description", "title", "default", "examples", "$comment", "deprecated", "readOnly"})
_LEFT_TO_VALIDATION = frozenset(
    {"pattern", "format", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"}
)
_DEFINITIONS = "#/$defs/"


def json_schema_to_gbnf(schema: str | dict[str, Any]) -> str:
    """A GBNF grammar whose `root` rule matches the JSON values `schema` accepts.

    Raises ConfigurationError for a schema this converter cannot express, naming the keyword and where it is.
    """
    parsed = json.loads(schema) if isinstance(schema, str) else schema
    if not isinstance(parsed, dict):
        raise ConfigurationError(f"A JSON schema must be an object, not {type(parsed).__name__}.")
    return _Grammar(parsed).text()


def gbnf_literal(text: str) -> str:
    """`text` as a GBNF string literal."""
    escaped = []
    for char in text:
        if char in '"\\':
            escaped.append("\\" + char)
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            escaped.append(f"\\x{ord(char):02X}")
        else:
            escaped.append(char)
    return '"' + "".join(escaped) + '"'


class _Grammar:
    def __init__(self, schema: dict[str, Any]) -> None:
        self._schema = schema
        self._definitions: dict[str, Any] = schema.get("$defs", {})
        self._rules: dict[str, str] = {}
        self._primitives: set[str] = set()
        self._claimed: set[str] = set()  # the rules of $defs, named once each

    def text(self) -> str:
        top = self._expression(self._schema, "root")
        if top != "root":
            self._rules["root"] = top
        pending = list(self._primitives)
        while pending:
            for used in _USES.get(pending.pop(), ()):
                if used not in self._primitives:
                    self._primitives.add(used)
                    pending.append(used)
        rules = {**{name: _PRIMITIVES[name] for name in self._primitives}, **self._rules}
        return "\n".join(f"{name} ::= {rules[name]}" for name in ["root", *sorted(set(rules) - {"root"})]) + "\n"

    def _primitive(self, name: str) -> str:
        self._primitives.add(name)
        return name

    def _rule(self, name: str, body: str) -> str:
        """Add the rule `name ::= body` and return its name (numbered if two keys make the same name)."""
        unique, number = name, 1
        while unique in self._rules or unique in _PRIMITIVES:
            unique, number = f"{name}-{number}", number + 1
        self._rules[unique] = body
        return unique

    def _expression(self, schema: Any, name: str) -> str:
        """A GBNF expression for `schema`; rules it needs are added under names starting with `name`."""
        if schema is True or schema == {}:
            return self._primitive("value")
        if not isinstance(schema, dict):
            raise ConfigurationError(f"The JSON schema at {name} is {schema!r}, not an object.")
        if "$ref" in schema:
            return self._reference(schema["$ref"], name)
        if "const" in schema:
            return f"{gbnf_literal(json.dumps(schema['const'], ensure_ascii=False))} {self._primitive('space')}"
        if "enum" in schema:
            choices = " | ".join(gbnf_literal(json.dumps(value, ensure_ascii=False)) for value in schema["enum"])
            return f"({choices}) {self._primitive('space')}"
        for combinator in ("anyOf", "oneOf"):
            if combinator in schema:
                branches = [self._expression(one, f"{name}-{index}") for index, one in enumerate(schema[combinator])]
                return self._rule(name, " | ".join(branches))
        if "allOf" in schema:
            if len(schema["allOf"]) != 1:
                raise ConfigurationError(f"The JSON schema at {name} combines several schemas with allOf.")
            return self._expression(schema["allOf"][0], name)
        kind = schema.get("type")
        if kind is None:
            kind = "object" if "properties" in schema else "array" if "items" in schema else None
        if kind is None:
            self._check_known(schema, name, set())
            return self._primitive("value")
        if isinstance(kind, list):
            branches = [self._expression({**schema, "type": one}, f"{name}-{one}") for one in kind]
            return self._rule(name, " | ".join(branches))
        if kind == "object":
            return self._object(schema, name)
        if kind == "array":
            return self._array(schema, name)
        if kind == "string":
            return self._string(schema, name)
        if kind in ("integer", "number", "boolean", "null"):
            self._check_known(schema, name, set())
            return self._primitive(kind)
        raise ConfigurationError(f"The JSON schema at {name} has an unknown type {kind!r}.")

    def _check_known(self, schema: dict[str, Any], name: str, understood: set[str]) -> None:
        unknown = set(schema) - understood - _ANNOTATIONS - _LEFT_TO_VALIDATION - {"type", "$defs"}
        if unknown:
            raise ConfigurationError(
                f"The JSON schema at {name} uses {sorted(unknown)}, which the grammar converter does not support."
            )

    def _reference(self, ref: str, name: str) -> str:
        if not ref.startswith(_DEFINITIONS) or ref[len(_DEFINITIONS) :] not in self._definitions:
            raise ConfigurationError(f"The JSON schema at {name} refers to {ref!r}, which is not one of its $defs.")
        rule = "def-" + _rule_name(ref[len(_DEFINITIONS) :])
        if rule not in self._claimed:
            self._claimed.add(rule)  # before its body: a type that contains itself refers back to this rule
            body = self._expression(self._definitions[ref[len(_DEFINITIONS) :]], rule)
            if body != rule:
                self._rules[rule] = body
        return rule

    def _string(self, schema: dict[str, Any], name: str) -> str:
        self._check_known(schema, name, {"minLength", "maxLength"})
        shortest = int(schema.get("minLength", 0))
        longest = schema.get("maxLength")
        if shortest == 0 and longest is None:
            return self._primitive("string")
        self._primitive("char")
        if longest is not None:
            repeat = f"char{{{shortest},{int(longest)}}}"
        else:
            repeat = "char+" if shortest == 1 else f"char{{{shortest},}}"
        return self._rule(name, rf'"\"" {repeat} "\"" {self._primitive("space")}')

    def _array(self, schema: dict[str, Any], name: str) -> str:
        self._check_known(schema, name, {"items", "minItems", "maxItems"})
        item = self._expression(schema.get("items", True), f"{name}-item")
        fewest = int(schema.get("minItems", 0))
        most = schema.get("maxItems")
        space = self._primitive("space")
        if most is not None and int(most) == 0:
            return self._rule(name, f'"[" {space} "]" {space}')
        more_fewest = max(fewest - 1, 0)
        if most is not None:
            more = f"{{{more_fewest},{int(most) - 1}}}"
        else:
            more = "*" if more_fewest == 0 else f"{{{more_fewest},}}"
        items = f'{item} ( "," {space} {item} ){more}'
        body = f'"[" {space} {items} "]" {space}' if fewest > 0 else f'"[" {space} ( {items} )? "]" {space}'
        return self._rule(name, body)

    def _object(self, schema: dict[str, Any], name: str) -> str:
        self._check_known(schema, name, {"properties", "required", "additionalProperties"})
        properties: dict[str, Any] = schema.get("properties", {})
        space = self._primitive("space")
        if not properties:
            extra = schema.get("additionalProperties", True)
            if extra is False:
                return self._rule(name, f'"{{" {space} "}}" {space}')
            value = self._expression(extra, f"{name}-value")
            pair = f'{self._primitive("string")} ":" {space} {value}'
            return self._rule(name, f'"{{" {space} ( {pair} ( "," {space} {pair} )* )? "}}" {space}')
        required = set(schema.get("required", ()))
        unknown_required = required - set(properties)
        if unknown_required:
            raise ConfigurationError(
                f"The JSON schema at {name} requires {sorted(unknown_required)}, which it does not define."
            )
        pairs = {
            key: self._rule(
                f"{name}-{_rule_name(key)}-kv",
                f'{gbnf_literal(json.dumps(key, ensure_ascii=False))} {space} ":" {space} '
                + self._expression(value, f"{name}-{_rule_name(key)}"),
            )
            for key, value in properties.items()
        }
        mandatory = [pairs[key] for key in properties if key in required]
        optional = [pairs[key] for key in properties if key not in required]
        # Any subset of the optional properties, in their order: after[i] is what may follow optional property i.
        after = [""] * len(optional)
        for index in range(len(optional) - 2, -1, -1):
            follows = f'( "," {space} {optional[index + 1]} )? {after[index + 1]}'.rstrip()
            after[index] = self._rule(f"{optional[index]}-rest", follows)
        body = f' "," {space} '.join(mandatory)
        if optional and mandatory:
            body += f' ( "," {space} {optional[0]} )? {after[0]}'.rstrip()
        elif optional:
            starts = " | ".join(f"{pair} {rest}".rstrip() for pair, rest in zip(optional, after, strict=True))
            body = f"( {starts} )?"
        return self._rule(name, f'"{{" {space} {body} "}}" {space}')


def _rule_name(key: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", key).strip("-").lower() or "x"
