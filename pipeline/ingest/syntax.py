"""syntax: structure of code beyond Python, by tree-sitter (grammars from tree-sitter-language-pack).

For a language with a grammar, ``code_segments`` returns the units chunk.py's Python path returns
(``chunk_type`` "function" / "class" / "module", a qualified ``symbol`` such as ``Router.handle``
or ``Engine.ServeHTTP``, and the same ``meta`` keys: ``signature``, ``docstring``,
``docstring_span``, and ``module_docstring`` / ``public_names`` on the first unit), plus the
statement-start lines where an over-long definition may split.

The comment block directly above a definition (no blank line between; JSDoc and Javadoc ``/** */``,
Go ``//``, Rust ``///``, C# ``///``, Ruby ``#``, PHP doc blocks, Doxygen) is its docstring, and the
unit starts at that comment, so ``docstring_span`` lies inside the unit as the Python path's does.
``doc_comments.clean_doc_comment`` turns the comment into prose.

Grammars and parsers are built once per process (``lru_cache``), never per file.

Over 350 lines: the grammar table for ten languages (node kinds of functions, classes, scopes) and the
one walk (``_Parsed``) that reads every grammar; split by language, each file would repeat the walk.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from ..records import Segment
from .doc_comments import clean_doc_comment


class SyntaxFailure(ValueError):
    """The grammar could not make sense of the file's top level: chunk falls back to blank-line blocks."""


@dataclass(frozen=True)
class Grammar:
    """Which node types of one tree-sitter grammar are definitions, and of what kind."""

    name: str  # tree-sitter-language-pack's name for the grammar
    functions: frozenset[str]  # functions, methods, constructors
    classes: frozenset[str]  # classes, structs, interfaces, traits, impl blocks: their members are units too
    scopes: frozenset[str] = frozenset()  # namespaces, modules: members are units, qualified by the scope's name
    wrappers: frozenset[str] = frozenset()  # a node around one definition (export, template, declare)
    leading: frozenset[str] = frozenset()  # siblings that belong to the definition after them (attributes, decorators)
    comments: frozenset[str] = frozenset({"comment"})


def _g(name, functions, classes, scopes=(), wrappers=(), leading=(), comments=("comment",)) -> Grammar:
    return Grammar(name, frozenset(functions), frozenset(classes), frozenset(scopes), frozenset(wrappers),
                   frozenset(leading), frozenset(comments))


_JS_FUNCTIONS = ("function_declaration", "generator_function_declaration", "method_definition")
_JS_CLASSES = ("class_declaration",)
_TS_FUNCTIONS = (*_JS_FUNCTIONS, "function_signature", "method_signature", "abstract_method_signature")
_TS_CLASSES = (*_JS_CLASSES, "abstract_class_declaration", "interface_declaration", "enum_declaration")
_TS_SCOPES = ("internal_module", "module")

# repotune's language name (pipeline/ingest/collect.py) -> its grammar
GRAMMARS: dict[str, Grammar] = {
    "javascript": _g("javascript", _JS_FUNCTIONS, _JS_CLASSES, wrappers=("export_statement",), leading=("decorator",)),
    "typescript": _g("typescript", _TS_FUNCTIONS, _TS_CLASSES, _TS_SCOPES, ("export_statement", "ambient_declaration"), ("decorator",)),
    "tsx": _g("tsx", _TS_FUNCTIONS, _TS_CLASSES, _TS_SCOPES, ("export_statement", "ambient_declaration"), ("decorator",)),
    "go": _g("go", ("function_declaration", "method_declaration"), ("type_declaration",)),
    "java": _g("java", ("method_declaration", "constructor_declaration", "compact_constructor_declaration"),
               ("class_declaration", "interface_declaration", "enum_declaration", "record_declaration", "annotation_type_declaration"),
               comments=("block_comment", "line_comment")),
    "rust": _g("rust", ("function_item", "function_signature_item", "macro_definition"),
               ("struct_item", "enum_item", "union_item", "trait_item", "impl_item"), ("mod_item",),
               leading=("attribute_item",), comments=("line_comment", "block_comment")),
    "ruby": _g("ruby", ("method", "singleton_method"), ("class", "module", "singleton_class")),
    "c": _g("c", ("function_definition",), ("struct_specifier", "union_specifier", "enum_specifier", "type_definition")),
    "cpp": _g("cpp", ("function_definition",), ("class_specifier", "struct_specifier", "union_specifier", "enum_specifier", "type_definition"),
              ("namespace_definition",), ("template_declaration",)),
    "csharp": _g("csharp", ("method_declaration", "constructor_declaration", "destructor_declaration", "operator_declaration", "local_function_statement"),
                 ("class_declaration", "struct_declaration", "interface_declaration", "record_declaration", "enum_declaration"),
                 ("namespace_declaration",)),
    "php": _g("php", ("function_definition", "method_declaration"),
              ("class_declaration", "interface_declaration", "trait_declaration", "enum_declaration"), ("namespace_definition",)),
}

# a node whose named children are statements: where an over-long definition may split
_BLOCKS = frozenset({
    "program", "source_file", "translation_unit", "compilation_unit", "statement_block", "block", "compound_statement",
    "class_body", "declaration_list", "field_declaration_list", "body_statement", "statement_list", "interface_body",
    "enum_body", "switch_body", "switch_block", "switch_case", "switch_default", "do_block", "then", "else", "begin",
    "constructor_body", "enum_body_declarations", "expression_case", "default_case", "case_clause", "when",
})
_STATEMENT_SUFFIXES = ("statement", "declaration", "definition", "_item", "comment", "method")
# function-valued right-hand sides that make an assignment a definition (JavaScript, TypeScript)
_JS_VALUES = {"function_expression": "function", "function": "function", "arrow_function": "function",
              "generator_function": "function", "class": "class"}


@cache
def _parser(name: str):
    """One parser per grammar per process (building one loads the grammar's shared library)."""
    from tree_sitter_language_pack import get_parser

    return get_parser(name)


def grammar_for(language: str, path: str = "") -> Grammar | None:
    """The grammar for a file, or None where repotune has none (the file is chunked by blank lines)."""
    if language == "typescript" and path.endswith(".tsx"):
        return GRAMMARS["tsx"]
    return GRAMMARS.get(language)


def _last_row(node) -> int:
    """0-based last line of a node; a node that ends with its newline (a line comment, say) ends on that line."""
    row, col = node.end_point
    return row - 1 if col == 0 and row > node.start_point[0] else row


def _text(node) -> str:
    return node.text.decode("utf-8", "replace")


def _starts_line(node, lines: list[str]) -> bool:
    row, col = node.start_point
    return not lines[row][:col].strip()  # bytes vs characters agree on a blank (ASCII) prefix


class _Parsed:
    """One file's tree and the walk that turns it into units."""

    def __init__(self, grammar: Grammar, lines: list[str]):
        self.g, self.lines = grammar, lines
        self.units: list = []
        self.public: list[str] = []

    # --- what a node defines ------------------------------------------------------------------------

    def definition(self, node):
        """(kind, name, inner, body) when ``node`` defines something, else None. ``inner`` is the node
        that holds the signature, ``body`` the block whose start ends the signature (members of a class
        live in it)."""
        g, t = self.g, node.type
        if t in g.wrappers:
            inner = node.child_by_field_name("declaration") or node.child_by_field_name("value")
            if inner is None:
                named = [c for c in node.named_children if c.type not in g.comments and c.type not in g.leading]
                inner = named[-1] if named else None
            if inner is None:
                return None
            found = self.definition(inner)
            if found is None and inner.type in _JS_VALUES and node.type == "export_statement":  # export default function () {}
                return _JS_VALUES[inner.type], "default", inner, inner.child_by_field_name("body")
            return found
        if g.name in ("javascript", "typescript", "tsx"):
            found = self._js_definition(node)
            if found is not None:
                return found
        if t in g.scopes or t in g.classes or t in g.functions:
            kind = "scope" if t in g.scopes else ("class" if t in g.classes else "function")
            name = self._name(node)
            if name is None:
                return None
            body = node.child_by_field_name("body")
            if t == "type_declaration":  # Go: one type spec is a type; a parenthesised group is module code
                specs = [c for c in node.named_children if c.type in ("type_spec", "type_alias")]
                if len(specs) != 1:
                    return None
                body = specs[0].child_by_field_name("type")
                body = body if body is not None and body.type in ("struct_type", "interface_type") else None
            elif t == "type_definition":  # C: typedef struct {...} name;
                inner = node.child_by_field_name("type")
                if inner is None or inner.child_by_field_name("body") is None:
                    return None
                body = inner.child_by_field_name("body")
            elif t in ("struct_specifier", "union_specifier", "enum_specifier", "class_specifier") and body is None:
                return None  # a forward declaration or a use of the type, not its definition
            elif kind == "scope" and body is None:
                return None  # `namespace A;` / `mod a;`: a statement
            return kind, name, node, body
        return None

    def _js_definition(self, node):
        """`const f = () => ...`, `res.send = function send(...)`, `module.exports = function ...`."""
        t = node.type
        if t in ("lexical_declaration", "variable_declaration"):
            declarators = [c for c in node.named_children if c.type == "variable_declarator"]
            if len(declarators) == 1:
                value = declarators[0].child_by_field_name("value")
                name = declarators[0].child_by_field_name("name")
                if value is not None and value.type in _JS_VALUES and name is not None and name.type == "identifier":
                    return _JS_VALUES[value.type], _text(name), node, value.child_by_field_name("body")
        elif t == "expression_statement" and node.named_children:
            expr = node.named_children[0]
            if expr.type in _TS_SCOPES:
                name = expr.child_by_field_name("name")
                return ("scope", _text(name).strip("'\""), expr, expr.child_by_field_name("body")) if name is not None else None
            if expr.type == "assignment_expression":
                left, right = expr.child_by_field_name("left"), expr.child_by_field_name("right")
                while right is not None and right.type == "assignment_expression":  # exports = module.exports = function
                    right = right.child_by_field_name("right")
                if left is not None and right is not None and right.type in _JS_VALUES:
                    name = re.sub(r"^(module\.)?exports\.?", "", _text(left))
                    if not name:  # module.exports = function name() {...}
                        own = right.child_by_field_name("name")
                        name = _text(own) if own is not None else "exports"
                    if re.fullmatch(r"[\w$]+(\.[\w$]+)*", name):
                        return _JS_VALUES[right.type], name.replace(".prototype.", "."), node, right.child_by_field_name("body")
        return None

    def _name(self, node) -> str | None:
        t = node.type
        if t == "method_declaration" and self.g.name == "go":  # func (r *Router) Handle -> Router.Handle
            receiver = node.child_by_field_name("receiver")
            name = node.child_by_field_name("name")
            types = [c for c in receiver.named_children if c.type == "parameter_declaration"] if receiver is not None else []
            owner = _text(types[0].child_by_field_name("type")) if types and types[0].child_by_field_name("type") is not None else ""
            owner = re.sub(r"\[.*", "", owner).lstrip("*")
            return f"{owner}.{_text(name)}" if owner else (_text(name) if name is not None else None)
        if t == "type_declaration":
            specs = [c for c in node.named_children if c.type in ("type_spec", "type_alias")]
            name = specs[0].child_by_field_name("name") if specs else None
            return _text(name) if name is not None else None
        if t == "impl_item":  # impl<T> Display for Thing<T> -> Thing
            target = node.child_by_field_name("type")
            return re.sub(r"<.*", "", _text(target)).replace("::", ".") if target is not None else None
        if t in ("function_definition", "type_definition") and self.g.name in ("c", "cpp"):
            declarator = node.child_by_field_name("declarator")
            while declarator is not None and declarator.type not in (
                    "identifier", "field_identifier", "qualified_identifier", "type_identifier", "destructor_name", "operator_name"):
                declarator = declarator.child_by_field_name("declarator") or (declarator.named_children[0] if declarator.named_children else None)
            return re.sub(r"<.*?>", "", _text(declarator)).replace("::", ".") if declarator is not None else None
        name = node.child_by_field_name("name")
        if name is None:
            return None
        return re.sub(r"[\\:]+", ".", _text(name)).strip(".'\"")  # `declare module 'mongoose'`

    # --- the walk -------------------------------------------------------------------------------------

    def lead(self, pending: list, node) -> list:
        """The comments and attributes of ``pending`` that sit directly above ``node`` (no blank line), each
        on lines of its own."""
        out: list = []
        row = node.start_point[0]
        for p in reversed(pending):
            # JSDoc and Javadoc tools attach a /** block to the next definition across a blank line or two
            # (mongoose writes them so); every other comment must touch what it documents
            gap = 3 if not out and p.text.startswith(b"/**") and p.type in self.g.comments else 1
            if not row - gap <= _last_row(p) < row or not _starts_line(p, self.lines):
                break
            out.insert(0, p)
            row = p.start_point[0]
        return out

    def walk(self, nodes, scope: str, container: str, grouped: bool, top: bool) -> None:
        g = self.g
        pending: list = []
        for node in nodes:
            if not node.is_named or node.type in ("php_tag", "text", "\n"):
                continue
            if node.type in g.comments or node.type in g.leading:
                pending.append(node)
                continue
            lead = self.lead(pending, node)
            pending = []
            start = (lead[0] if lead else node).start_point[0] + 1
            found = self.definition(node)
            if found is None:
                if not grouped:
                    self.units.append(Segment(start, _last_row(node) + 1, container, scope.rstrip("."), {}))
                    grouped = True
                continue
            kind, name, inner, body = found
            symbol = scope + name
            signature = self.signature(node, body)
            if kind == "scope":
                self.units.append(Segment(start, _last_row(node) + 1, "module", symbol, {}))
                if body is not None:
                    self.walk(body.children, symbol + ".", "module", True, top=False)
                grouped = False
                continue
            meta = {"signature": signature}
            docs = [c for c in lead if c.type in g.comments]
            if docs:
                doc = clean_doc_comment("\n".join(_text(c) for c in docs))
                if doc:
                    meta.update(docstring=doc, docstring_span=(docs[0].start_point[0] + 1, _last_row(docs[-1]) + 1), docstring_leads=True)
            self.units.append(Segment(start, _last_row(node) + 1, kind, symbol, meta))
            if top and _is_public(name, signature, g.name):
                self.public.append(signature)
            if kind == "class" and body is not None:
                self.walk(body.children, symbol + ".", "class", True, top=False)
            grouped = False

    def signature(self, node, body) -> str:
        """The definition's text up to its body, on one line ("func (r *Router) Handle(path string)")."""
        raw = node.text[: body.start_byte - node.start_byte] if body is not None and body.start_byte > node.start_byte else node.text
        if self.g.name == "ruby" or body is None:  # Ruby's body follows a newline, not a brace
            raw = raw.split(b"\n", 1)[0]
        text = " ".join(raw.decode("utf-8", "replace").split()).rstrip(" {=:")
        return text[:200]


def _is_public(name: str, signature: str, grammar: str) -> bool:
    last = name.rsplit(".", 1)[-1]
    if last.startswith("_") or re.match(r"(private|static|internal|protected)\b", signature):
        return False
    if grammar == "go":
        return last[:1].isupper()
    if grammar == "rust":
        return signature.startswith("pub")
    return True


_LICENSE = re.compile(r"copyright|licen[cs]e|spdx|\(c\) \d{4}|all rights reserved", re.I)


def _module_docstring(root, grammar: Grammar, lines: list[str], attached: set[int]) -> str:
    """The file's first comment block, unless it documents a definition or is a licence header; Rust's
    ``//!`` inner doc comments wherever they start the file."""
    for node in root.children:
        if not node.is_named or node.type in ("php_tag",):
            continue
        if node.type not in grammar.comments:
            break
        text = _text(node)
        if node.start_point[0] in attached or _LICENSE.search(text):
            continue
        doc = clean_doc_comment(text)
        if doc:
            # a run of // lines is one comment per line in most grammars: gather the adjacent ones
            row = _last_row(node)
            more = []
            for nxt in root.children[root.children.index(node) + 1:]:
                if nxt.type in grammar.comments and nxt.start_point[0] == row + 1 and nxt.start_point[0] not in attached:
                    more.append(_text(nxt))
                    row = _last_row(nxt)
                else:
                    break
            return clean_doc_comment("\n".join([text, *more])) if more else doc
    return ""


def code_segments(text: str, lines: list[str], language: str, path: str = ""):
    """(units, statement_lines) for a file in a language with a grammar, or None without one.

    ``statement_lines`` is a zero-argument callable giving the 1-based lines where a statement starts
    (computed only for the few units over the token limit). Raises ``SyntaxFailure`` when the grammar
    cannot read the file's top level."""
    grammar = grammar_for(language, path)
    if grammar is None:
        return None
    source = text.encode("utf-8", "surrogatepass")  # a lone surrogate must not end the build; rows are unchanged
    root = _parser(grammar.name).parse(source).root_node
    if grammar.name == "c" and path.endswith(".h") and _broken(root):  # a C++ header under C's extension
        grammar = GRAMMARS["cpp"]
        root = _parser("cpp").parse(source).root_node
    if _broken(root):
        raise SyntaxFailure(f"{grammar.name}: the file's top level does not parse")
    parsed = _Parsed(grammar, lines)
    parsed.walk(root.children, "", "module", False, top=True)
    units = parsed.units
    attached = {u.meta["docstring_span"][0] - 1 for u in units if "docstring_span" in u.meta}
    if units:
        units[0].meta.update({"module_docstring": _module_docstring(root, grammar, lines, attached), "public_names": parsed.public})
    return units, lambda: statement_lines(root, lines)


def _broken(root) -> bool:
    return root.type == "ERROR" or any(c.type == "ERROR" for c in root.children)


def statement_lines(root, lines: list[str]) -> set[int]:
    """1-based lines where a statement (or a comment, or a member) starts, at any depth."""
    points: set[int] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        in_block = node.type in _BLOCKS
        for child in node.named_children:
            if (in_block or child.type.endswith(_STATEMENT_SUFFIXES)) and _starts_line(child, lines):
                points.add(child.start_point[0] + 1)
            if child.child_count:
                stack.append(child)
    return points
