"""GraphQL errors reshaped the way Shopify (graphql-ruby) words and locates them."""

from __future__ import annotations

import re
from typing import Any

from graphql import (
    ArgumentNode,
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLSyntaxError,
    InlineFragmentNode,
    Node,
    OperationDefinitionNode,
    SelectionSetNode,
    Source,
    TokenKind,
)
from graphql.language import Lexer

ACCESS_SCOPES_DOCS = "https://shopify.dev/api/usage/access-scopes"

# graphql-ruby's token names, which Shopify's parse errors quote.
TOKEN_NAMES = {
    TokenKind.BRACE_L: "LCURLY", TokenKind.BRACE_R: "RCURLY", TokenKind.PAREN_L: "LPAREN",
    TokenKind.PAREN_R: "RPAREN", TokenKind.BRACKET_L: "LBRACKET", TokenKind.BRACKET_R: "RBRACKET",
    TokenKind.COLON: "COLON", TokenKind.EQUALS: "EQUALS", TokenKind.AT: "DIR_SIGN",
    TokenKind.DOLLAR: "VAR_SIGN", TokenKind.BANG: "BANG", TokenKind.SPREAD: "ELLIPSIS",
    TokenKind.PIPE: "PIPE", TokenKind.AMP: "AMP", TokenKind.INT: "INT", TokenKind.FLOAT: "FLOAT",
    TokenKind.STRING: "STRING", TokenKind.BLOCK_STRING: "STRING",
}
KEYWORDS = {"query", "mutation", "subscription", "fragment", "on", "true", "false", "null", "type",
            "schema", "scalar", "enum", "input", "interface", "union", "extend", "directive", "implements"}


def user_error(message: str, code: str, **extra: Any) -> GraphQLError:
    """An execution error with Shopify-style extensions (graphql-core adds path and locations)."""
    return GraphQLError(message, extensions={"code": code, **extra})


def access_denied(field: str, scope: str) -> GraphQLError:
    required = f"`{scope}` access scope."
    return GraphQLError(
        f"Access denied for {field} field. Required access: {required}",
        extensions={"code": "ACCESS_DENIED", "documentation": ACCESS_SCOPES_DOCS, "requiredAccess": required},
    )


def syntax_error(err: GraphQLSyntaxError, source: str) -> dict[str, Any]:
    """graphql-ruby words it: Parse error on "}" (RCURLY) at [1, 10]."""
    loc = err.locations[0] if err.locations else None
    line, column = (loc.line, loc.column) if loc else (1, 1)
    token = _token_at(source, next(iter(err.positions), 0) if err.positions else 0)
    if token is None:
        message = "Unexpected end of document"
    else:
        kind, text = token
        message = f'Parse error on "{text}" ({kind}) at [{line}, {column}]'
    return {"message": message, "locations": [{"line": line, "column": column}]}


def _token_at(source: str, position: int) -> tuple[str, str] | None:
    lexer = Lexer(Source(source))
    try:
        token = lexer.advance()
        while token.kind != TokenKind.EOF and token.end <= position:
            token = lexer.advance()
    except GraphQLSyntaxError:
        return "error", source[position:position + 1] or " "
    if token.kind == TokenKind.EOF:
        return None
    if token.kind == TokenKind.NAME:
        value = token.value or ""
        return (value.upper() if value in KEYWORDS else "IDENTIFIER"), value
    return TOKEN_NAMES.get(token.kind, token.kind.name), token.value if token.value is not None else token.kind.value


class DocumentIndex:
    """Where each AST node sits, as graphql-ruby reports it: ["query Name", "products", "nodes", ...]."""

    def __init__(self, document: DocumentNode) -> None:
        self.paths: dict[int, list[str]] = {}
        self.arguments: dict[int, tuple[FieldNode, ArgumentNode]] = {}
        self.fields: dict[int, FieldNode] = {}
        for definition in document.definitions:
            if isinstance(definition, OperationDefinitionNode):
                label = definition.operation.value
                if definition.name:
                    label = f"{label} {definition.name.value}"
                self.paths[id(definition)] = [label]
                self._walk(definition.selection_set, [label])
            elif isinstance(definition, FragmentDefinitionNode):
                label = f"fragment {definition.name.value}"
                self.paths[id(definition)] = [label]
                self._walk(definition.selection_set, [label])

    def _walk(self, selection_set: SelectionSetNode | None, path: list[str]) -> None:
        if selection_set is None:
            return
        for sel in selection_set.selections:
            if isinstance(sel, FieldNode):
                here = [*path, sel.alias.value if sel.alias else sel.name.value]
                self.paths[id(sel)] = here
                for arg in sel.arguments or ():
                    self.paths[id(arg)] = [*here, arg.name.value]
                    self.arguments[id(arg.value)] = (sel, arg)
                    self._index_values(arg.value, sel, arg, [*here, arg.name.value])
                self._walk(sel.selection_set, here)
            elif isinstance(sel, InlineFragmentNode):
                cond = f"... on {sel.type_condition.name.value}" if sel.type_condition else "..."
                here = [*path, cond]
                self.paths[id(sel)] = here
                self._walk(sel.selection_set, here)
            elif isinstance(sel, FragmentSpreadNode):
                self.paths[id(sel)] = [*path, f"... {sel.name.value}"]

    def _index_values(self, value: Node, field: FieldNode, arg: ArgumentNode, path: list[str]) -> None:
        self.arguments[id(value)] = (field, arg)
        self.paths.setdefault(id(value), path)
        for child_name in ("values", "fields"):
            for child in getattr(value, child_name, None) or ():
                inner = getattr(child, "value", child)
                self._index_values(inner, field, arg, path)

    def path_of(self, err: GraphQLError) -> list[str] | None:
        for node in err.nodes or ():
            if id(node) in self.paths:
                return self.paths[id(node)]
        return None


def validation_error(err: GraphQLError, index: DocumentIndex) -> dict[str, Any]:
    """Translate graphql-core's static validation messages to graphql-ruby's."""
    out: dict[str, Any] = {"message": err.message}
    if err.locations:
        out["locations"] = [{"line": loc.line, "column": loc.column} for loc in err.locations]
    path = index.path_of(err)
    if path:
        out["path"] = path
    msg = err.message
    if m := re.match(r"Cannot query field '([^']+)' on type '([^']+)'\.", msg):
        field, type_name = m.groups()
        out["message"] = f"Field '{field}' doesn't exist on type '{type_name}'"
        out["extensions"] = {"code": "undefinedField", "typeName": type_name, "fieldName": field}
    elif m := re.match(r"Unknown argument '([^']+)' on field '([^'.]+)\.([^']+)'\.", msg):
        arg, _type_name, field = m.groups()
        out["message"] = f"Field '{field}' doesn't accept argument '{arg}'"
        out["extensions"] = {"code": "argumentNotAccepted", "name": field, "typeName": "Field", "argumentName": arg}
    elif m := (re.match(r"Argument '[^'.]+\.([^'(]+)\(([^:]+):\)' of type '[^']+' is required", msg)
               or re.match(r"Field '([^']+)' argument '([^']+)' of type '[^']+' is required", msg)):
        field, arg = m.groups()
        out["message"] = f"Field '{field}' is missing required arguments: {arg}"
        out["extensions"] = {"code": "missingRequiredArguments", "className": "Field", "name": field,
                             "arguments": arg}
    elif m := re.match(r"Field '([^']+)' of type '([^']+)' must have a selection of subfields", msg):
        field, type_name = m.groups()
        out["message"] = (f"Field must have selections (field '{field}' returns {type_name} but has no "
                          f"selections. Did you mean '{field} {{ ... }}'?)")
        out["extensions"] = {"code": "selectionMismatch", "nodeName": f"field '{field}'", "typeName": type_name}
    elif m := re.match(r"Field '([^']+)' must not have a selection since type '([^']+)' has no subfields", msg):
        field, type_name = m.groups()
        out["message"] = f"Selections can't be made on scalars (field '{field}' returns {type_name} but has selections)"
        out["extensions"] = {"code": "selectionMismatch", "nodeName": f"field '{field}'", "typeName": type_name}
    elif m := re.match(r"Variable '\$([^']+)' is never used", msg):
        out["message"] = f"Variable ${m.group(1)} is declared by {_op_label(path)} but not used"
        out["extensions"] = {"code": "variableNotUsed", "variableName": m.group(1)}
    elif m := re.match(r"Variable '\$([^']+)' is not defined", msg):
        out["message"] = f"Variable ${m.group(1)} is used by {_op_label(path)} but not declared"
        out["extensions"] = {"code": "variableNotDefined", "variableName": m.group(1)}
    elif (hit := _argument_of(err, index)) is not None:
        field_node, arg_node = hit
        from graphql import print_ast

        shown = print_ast(arg_node.value)
        expected = _expected_type(msg)
        out["message"] = (f"Argument '{arg_node.name.value}' on Field '{field_node.name.value}' has an invalid "
                          f"value ({shown}). Expected type '{expected}'.")
        out["extensions"] = {"code": "argumentLiteralsIncompatible", "typeName": "Field",
                             "argumentName": arg_node.name.value}
    return out


def _argument_of(err: GraphQLError, index: DocumentIndex) -> tuple[FieldNode, ArgumentNode] | None:
    for node in err.nodes or ():
        if id(node) in index.arguments:
            return index.arguments[id(node)]
    return None


def _expected_type(message: str) -> str:
    if m := re.search(r"does not exist in '([^']+)' enum", message):
        return m.group(1)
    if m := re.match(r"(\w+) cannot represent", message):
        return m.group(1)
    if m := re.search(r"Expected value of type '([^']+)'", message):
        return m.group(1)
    return "value"


def _op_label(path: list[str] | None) -> str:
    if not path:
        return "anonymous query"
    head = path[0]
    return head if " " in head else f"anonymous {head}"


def variable_error(message: str, types: dict[str, str], values: dict[str, Any]) -> dict[str, Any]:
    """graphql-ruby: Variable $first of type Int was provided invalid value."""
    m = re.match(r"Variable '\$([^']+)'", message)
    if not m:
        return {"message": message, "extensions": {"code": "variableMismatch"}}
    name = m.group(1)
    type_name = types.get(name, "value")
    value = values.get(name)
    explanation = message.split(": ", 1)[1].strip() if ": " in message else message
    return {
        "message": f"Variable ${name} of type {type_name} was provided invalid value",
        "extensions": {"value": value, "problems": [{"path": [], "explanation": explanation}]},
    }


def execution_error(err: GraphQLError) -> dict[str, Any]:
    out: dict[str, Any] = {"message": err.message}
    if err.locations:
        out["locations"] = [{"line": loc.line, "column": loc.column} for loc in err.locations]
    if err.path is not None:
        out["path"] = list(err.path)
    if err.extensions:
        out["extensions"] = dict(err.extensions)
    return out
