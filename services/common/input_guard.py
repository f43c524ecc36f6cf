"""Every request's strings checked before any handler runs, from the rules its proto declares.

A value PostgreSQL cannot store (a NUL byte in text, a number past NUMERIC's range) used to
reach SQL and fail there — in the order path, failing every order that shared its batch. The
guard refuses such input at the door, the same way in every service: each string field of a
request (nested messages and repeated fields included) holds no control character (line
breaks and tabs only in `multiline` text) and at most `max_length` characters; a field marked
`decimal` is in plain notation within its digits; an enum holds a value it names
(`tradesense.common.v1.Text` / `Decimal` in options.proto). What is wrong answers
INVALID_ARGUMENT with a field violation per field.

The checks for a message type are compiled once, so the order path pays a few regex matches.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from tradesense.common.v1 import options_pb2

from services.common.errors import invalid_argument

DEFAULT_MAX_LENGTH = 1024
# Nesting deeper than this is not walked (no request of ours nests; Struct would recurse).
MAX_DEPTH = 8

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_CONTROL_MULTILINE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def decimal_pattern(integer_digits: int, scale: int, signed: bool) -> re.Pattern[str]:
    """Plain notation: optional "-" (signed only), 1..integer_digits ASCII digits, then
    optionally a point and 1..scale digits."""
    sign = "-?" if signed else ""
    fraction = rf"(?:\.[0-9]{{1,{scale}}})?" if scale > 0 else ""
    return re.compile(rf"{sign}[0-9]{{1,{integer_digits}}}{fraction}")


@dataclass(frozen=True)
class StringRule:
    max_length: int
    multiline: bool
    decimal: re.Pattern[str] | None
    decimal_hint: str

    def problem(self, value: str) -> str | None:
        if len(value) > self.max_length:
            return f"at most {self.max_length} characters"
        bad = (_CONTROL_MULTILINE if self.multiline else _CONTROL).search(value)
        if bad is not None:
            return f"must not contain control characters (U+{ord(bad.group()):04X} at {bad.start()})"
        if self.decimal is not None and value and self.decimal.fullmatch(value) is None:
            return self.decimal_hint
        return None


def string_rule(field: FieldDescriptor) -> StringRule:
    opts = field.GetOptions()
    text = opts.Extensions[options_pb2.text]
    dec = opts.Extensions[options_pb2.decimal] if opts.HasExtension(options_pb2.decimal) else None
    pattern, hint = None, ""
    if dec is not None:
        pattern = decimal_pattern(dec.integer_digits, dec.scale, dec.signed)
        hint = (
            f'must be a plain decimal such as "1.25": {"an optional minus sign, " if dec.signed else ""}'
            f"at most {dec.integer_digits} digits before the point and {dec.scale} after it"
        )
    return StringRule(text.max_length or DEFAULT_MAX_LENGTH, text.multiline, pattern, hint)


# A check adds (field path, problem) pairs for one field of a message to a list.
Check = Callable[[Any, str, list[tuple[str, str]]], None]


def _string_check(field: FieldDescriptor, rule: StringRule) -> Check:
    name = field.name
    if field.is_repeated:

        def repeated(msg: Any, prefix: str, out: list[tuple[str, str]]) -> None:
            for i, v in enumerate(getattr(msg, name)):
                if (p := rule.problem(v)) is not None:
                    out.append((f"{prefix}{name}[{i}]", p))

        return repeated

    def single(msg: Any, prefix: str, out: list[tuple[str, str]]) -> None:
        if (p := rule.problem(getattr(msg, name))) is not None:
            out.append((prefix + name, p))

    return single


def _enum_check(field: FieldDescriptor) -> Check:
    """Proto3 keeps numbers its enum does not name; no handler of ours can act on one."""
    name, known = field.name, frozenset(v.number for v in field.enum_type.values)
    hint = "must be one of " + ", ".join(v.name for v in field.enum_type.values)[:200]

    def enum(msg: Any, prefix: str, out: list[tuple[str, str]]) -> None:
        values = getattr(msg, name)
        for i, v in enumerate(values if field.is_repeated else [values]):
            if v not in known:
                out.append((f"{prefix}{name}[{i}]" if field.is_repeated else prefix + name, hint))

    return enum


def _map_check(field: FieldDescriptor, depth: int) -> Check | None:
    key_f, value_f = field.message_type.fields_by_name["key"], field.message_type.fields_by_name["value"]
    key_rule = string_rule(key_f) if key_f.type == FieldDescriptor.TYPE_STRING else None
    value_rule = string_rule(value_f) if value_f.type == FieldDescriptor.TYPE_STRING else None
    nested = checks(value_f.message_type, depth + 1) if value_f.type == FieldDescriptor.TYPE_MESSAGE else ()
    if key_rule is None and value_rule is None and not nested:
        return None
    name = field.name

    def mapped(msg: Any, prefix: str, out: list[tuple[str, str]]) -> None:
        for k, v in getattr(msg, name).items():
            path = f"{prefix}{name}[{k!r}]" if len(str(k)) <= 64 else f"{prefix}{name}[...]"
            if key_rule is not None and (p := key_rule.problem(k)) is not None:
                out.append((f"{prefix}{name}", f"key: {p}"))
            if value_rule is not None and (p := value_rule.problem(v)) is not None:
                out.append((path, p))
            for c in nested:
                c(v, path + ".", out)

    return mapped


def _message_check(field: FieldDescriptor, depth: int) -> Check | None:
    nested = checks(field.message_type, depth + 1)
    if not nested:
        return None
    name = field.name
    if field.is_repeated:

        def repeated(msg: Any, prefix: str, out: list[tuple[str, str]]) -> None:
            for i, v in enumerate(getattr(msg, name)):
                for c in nested:
                    c(v, f"{prefix}{name}[{i}].", out)

        return repeated

    def single(msg: Any, prefix: str, out: list[tuple[str, str]]) -> None:
        if msg.HasField(name):
            sub = getattr(msg, name)
            for c in nested:
                c(sub, f"{prefix}{name}.", out)

    return single


@cache
def checks(descriptor: Descriptor, depth: int = 0) -> tuple[Check, ...]:
    """The checks of one message type's fields (compiled once per type)."""
    if depth > MAX_DEPTH:
        return ()
    found: list[Check] = []
    for field in descriptor.fields:
        check: Check | None = None
        if field.type == FieldDescriptor.TYPE_STRING:
            check = _string_check(field, string_rule(field))
        elif field.type == FieldDescriptor.TYPE_ENUM:
            check = _enum_check(field)
        elif field.type == FieldDescriptor.TYPE_MESSAGE and field.message_type.GetOptions().map_entry:
            check = _map_check(field, depth)
        elif field.type == FieldDescriptor.TYPE_MESSAGE:
            check = _message_check(field, depth)
        if check is not None:
            found.append(check)
    return tuple(found)


def problems(message: Message) -> list[tuple[str, str]]:
    """Every (field path, problem) of a request, in field order."""
    out: list[tuple[str, str]] = []
    for c in checks(message.DESCRIPTOR):
        c(message, "", out)
    return out


def check(message: Message) -> None:
    """Refuse a request whose strings break their fields' rules (INVALID_ARGUMENT)."""
    found = problems(message)
    if found:
        raise invalid_argument(dict(found[:20]))
