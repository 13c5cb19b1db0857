"""doc_comments: a definition's doc comment, in any language, as prose (the docstring of syntax.py's units).

Comment markers are stripped (``/** * */``, ``///``, ``//!``, ``#``, ``=begin``), ``@param`` /
``@returns`` / ``@throws`` (JSDoc, Javadoc, YARD, PHP, Doxygen) and C#'s ``<param>`` / ``<returns>``
are written as sentences, type braces dropped, ``{@link X}`` read as X, and bookkeeping tags
(``@api``, ``@since`` ...) and tool directives (``//go:``, ``eslint-...``, ``@ts-...``) left out.
"""

from __future__ import annotations

import re

_OPEN = re.compile(r"^\s*(/\*+!?|=begin\b)")
_CLOSE = re.compile(r"\s*(\*+/|=end\b)\s*$")
_LINE_MARK = re.compile(r"^\s*(///?!?|//!|#+(?!\[)|\*(?!/)|--)\s?")
# tooling, not prose: linters, build tags, editor regions, type-checker pragmas
_DIRECTIVE = re.compile(r"^(go:|\+build|nolint|eslint|jshint|jscs|istanbul|prettier|@ts-|tslint|#?region\b|#?endregion\b|<reference|"
                        r"noinspection|NOSONAR|clang-format|rubocop|frozen_string_literal|@flow|@jsx|phpcs|@codeCoverageIgnore|-\*-|!)", re.I)
_INLINE_LINK = re.compile(r"\{@(?:link|linkcode|linkplain|code|see)\s+([^}|\s]+)(?:[\s|]+([^}]*))?\}")
_XML_PARAM = re.compile(r'<(param|typeparam)\s+name="([^"]+)"\s*>(.*?)</\1>', re.S)
_XML_REF = re.compile(r'<(?:see|seealso|paramref|typeparamref)\s+(?:cref|name|langword|href)="([^"]+)"\s*/?>(?:.*?</(?:see|seealso)>)?', re.S)
_XML_SECTION = re.compile(r"<(returns|exception|value|remarks|example|para)\b[^>]*>(.*?)</\1>", re.S)
_TAG = re.compile(r"^[@\\](\w+)\b\s*(.*)$")
_TAG_WORDS = {"param": "Parameter", "arg": "Parameter", "argument": "Parameter", "property": "Property", "prop": "Property",
              "typeparam": "Type parameter", "tparam": "Type parameter", "field": "Field",
              "returns": "Returns", "return": "Returns", "yields": "Yields", "yield": "Yields",
              "throws": "Throws", "throw": "Throws", "exception": "Throws", "raises": "Raises",
              "see": "See", "deprecated": "Deprecated:", "example": "Example:", "note": "Note:", "warning": "Warning:"}
_DESCRIPTION_TAGS = {"brief", "summary", "description", "desc", "file", "fileoverview", "overview", "details", "remarks", "classdesc"}
_NAMED_TAGS = {"param", "arg", "argument", "property", "prop", "typeparam", "tparam", "field"}


def _drop_braces(text: str) -> tuple[str, str]:
    """A leading ``{type}`` (braces nested, as in ``{{a: number}}``) split off: (type, rest)."""
    text = text.strip()
    if not text.startswith("{"):
        return "", text
    depth = 0
    for i, ch in enumerate(text):
        depth += ch == "{"
        depth -= ch == "}"
        if depth == 0:
            return text[1:i].strip(), text[i + 1 :].strip()
    return "", text


def _sentence(head: str, text: str) -> str:
    text = text.strip().rstrip(".").strip()
    return f"{head} {text}." if text else ""


def _tag_sentence(tag: str, rest: str) -> str:
    """One ``@tag ...`` as readable words: "@param {string} [opts.x=1] - the x" -> "Parameter opts.x: the x."."""
    tag = tag.lower()
    if tag in _DESCRIPTION_TAGS:
        return rest.strip()
    word = _TAG_WORDS.get(tag)
    if word is None:
        return ""  # @public, @api, @since, @memberof, @type ...: bookkeeping, not meaning
    type_, rest = _drop_braces(rest)
    if tag in _NAMED_TAGS:
        rest = re.sub(r"^\[([\w.:\\|<>]+)\]\s+", "", rest)  # YARD: @param [String] name
        parts = rest.split(None, 1)
        if len(parts) == 2 and parts[1].startswith("$") and not parts[0].startswith("$"):  # PHP: @param string $name desc
            parts = parts[1].split(None, 1)
        if not parts:
            return ""
        name = re.sub(r"=.*$", "", parts[0].strip("[]")).lstrip("$").rstrip(",:")
        desc = re.sub(r"^[-:–]\s*", "", parts[1]) if len(parts) > 1 else ""
        return f"{word} {name}: {desc.rstrip('.').strip()}." if desc.strip() else f"{word} {name}."
    rest = re.sub(r"^[-:–]\s*", "", re.sub(r"^\[[^\]]*\]\s*", "", rest))  # YARD: @return [Type] desc
    if tag in ("throws", "throw", "exception", "raises"):
        return _sentence(word, f"{type_} {rest}" if type_ else rest)
    if tag in ("returns", "return", "yields", "yield"):
        return _sentence(word, rest or type_)
    return _sentence(word, rest)


def clean_doc_comment(raw: str) -> str:
    """A doc comment as prose: comment markers stripped, tags written as sentences, paragraphs kept.

    ``/** Send a response.\\n * @param {string} body - the body\\n */`` -> ``Send a response.\\n\\n
    Parameter body: the body.``; C#'s ``<summary>`` / ``<param name="x">`` become the same words."""
    lines: list[str] = []
    for line in raw.split("\n"):
        line = _OPEN.sub("", line)
        line = _CLOSE.sub("", line)
        line = _LINE_MARK.sub("", line, count=1).rstrip()
        if _DIRECTIVE.match(line.strip()):
            continue
        if not re.search(r"\w", line):  # a banner's rule of stars and slashes, or a blank line
            line = ""
        lines.append(line)
    text = "\n".join(lines)
    if "<" in text:  # C# and Visual C++ XML documentation
        text = _XML_PARAM.sub(lambda m: f"\n@{m.group(1)} {m.group(2)} {' '.join(m.group(3).split())}\n", text)
        text = _XML_REF.sub(lambda m: m.group(1).rsplit(".", 1)[-1].split(":")[-1], text)
        text = _XML_SECTION.sub(lambda m: f"\n@{m.group(1)} {' '.join(m.group(2).split())}\n" if m.group(1) in ("returns", "exception")
                                else f"\n\n{m.group(2).strip()}\n\n", text)
        text = re.sub(r"</?(summary|c|code|b|i|em|strong|p|br|list|item|description|term|inheritdoc)\b[^>]*>", "", text)
    text = _INLINE_LINK.sub(lambda m: (m.group(2) or m.group(1)).strip(), text)
    description: list[str] = []
    tags: list[str] = []
    current: list[str] | None = None  # the tag being continued
    for line in text.split("\n"):
        stripped = line.strip()
        m = _TAG.match(stripped)
        if m:
            current = [m.group(1), m.group(2)]
            tags.append(current)
        elif current is not None and stripped:
            current[1] += " " + stripped
        else:
            current = None if not stripped else current
            if current is None:
                description.append(line)
    body = "\n".join(description)
    sentences = []
    for tag, rest in tags:
        if tag.lower() in _DESCRIPTION_TAGS:
            body = (rest.strip() + "\n\n" + body) if rest.strip() else body
        elif s := _tag_sentence(tag, rest):
            sentences.append(s)
    paragraphs = [p.strip("\n") for p in re.split(r"\n\s*\n", _dedent(body)) if p.strip()]
    if sentences:
        paragraphs.append(" ".join(sentences))
    return "\n\n".join(paragraphs).strip()


def _dedent(text: str) -> str:
    lines = text.split("\n")
    indents = [len(line) - len(line.lstrip()) for line in lines if line.strip()]
    cut = min(indents, default=0)
    return "\n".join(line[cut:] for line in lines)

