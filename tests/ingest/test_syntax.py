"""syntax: tree-sitter units, symbols and doc comments for each language; the chunk invariants and the
pair miners on every language; blank-line blocks (counted) where there is no grammar or no parse."""

from __future__ import annotations

import dataclasses
from functools import lru_cache

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.config import PairsConfig
from pipeline.ingest.chunk import Chunker, TokenCounter, chunk_files
from pipeline.ingest.clean import normalise
from pipeline.ingest.collect import classify
from pipeline.ingest.invariants import check_chunks
from pipeline.ingest.syntax import GRAMMARS
from pipeline.mining.pairs import mine_pairs
from pipeline.models import load_tokenizer
from pipeline.records import Chunk, SourceFile, chunk_id
from pipeline.stage import StageStats


@lru_cache(maxsize=1)
def counter() -> TokenCounter:
    return TokenCounter(load_tokenizer("packaged:all-MiniLM-L6-v2"))


def chunk(text: str, path: str, max_tokens: int = 256, stats: StageStats | None = None) -> list[Chunk]:
    kind, language = classify(path)
    return Chunker(counter(), max_tokens, stats).chunk_file(SourceFile(path, kind, language, text=text))


# One small file per language: a file comment, a documented function of 3+ lines, a type with a
# documented method. The symbol after each path is the documented function or method.
FIXTURES = {
    "lib/router.js": ('''/**
 * Routing for the web server.
 */
'use strict';

var methods = require('methods');

/**
 * Register a handler for a path and return the router.
 *
 * @param {string} path - the URL path to match
 * @param {Function} handler the callback
 * @returns {Router} this router, for chaining
 * @api public
 */
Router.prototype.route = function route(path, handler) {
  var layer = new Layer(path, handler);
  this.stack.push(layer);
  return this;
};

class Router {
  /**
   * Dispatch a request to the first matching layer.
   */
  handle(req, res) {
    const layer = this.match(req.url);
    if (!layer) return res.end();
    return layer.handle(req, res);
  }
}

export const parseUrl = (url) => {
  const [path, query] = url.split('?');
  return { path, query };
};
''', [("module", ""), ("function", "Router.route"), ("class", "Router"), ("function", "Router.handle"), ("function", "parseUrl")],
        "Router.route", "Register a handler for a path and return the router."),
    "src/cache.ts": ('''import { Store } from './store';

/** A cache that forgets the least recently used entry first. */
export class LruCache<V> implements Store<V> {
  private items = new Map<string, V>();

  /**
   * Look up a key and mark it as recently used.
   * @param key the cache key
   */
  get(key: string): V | undefined {
    const value = this.items.get(key);
    if (value !== undefined) { this.items.delete(key); this.items.set(key, value); }
    return value;
  }
}

export interface Options { capacity: number }
''', [("module", ""), ("class", "LruCache"), ("function", "LruCache.get"), ("class", "Options")],
        "LruCache.get", "Look up a key and mark it as recently used."),
    "web/Button.tsx": ('''/** Render a button that counts its clicks. */
export function Button({ label }: Props) {
  const [n, setN] = useState(0);
  const click = () => setN(n + 1);
  return <button onClick={click}>{label} {n}</button>;
}
''', [("function", "Button")], "Button", "Render a button that counts its clicks."),
    "server/engine.go": ('''// Package server runs the HTTP engine and its routes.
package server

import "net/http"

// Engine is the framework's instance: it holds the router and the middleware.
type Engine struct {
	trees  methodTrees
	pool   sync.Pool
}

// ServeHTTP conforms to the http.Handler interface and dispatches the request.
func (engine *Engine) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	c := engine.pool.Get().(*Context)
	c.reset(w, req)
	engine.handleHTTPRequest(c)
	engine.pool.Put(c)
}

func helper() int { return 1 }
''', [("module", ""), ("class", "Engine"), ("function", "Engine.ServeHTTP"), ("function", "helper")],
        "Engine.ServeHTTP", "ServeHTTP conforms to the http.Handler interface and dispatches the request."),
    "src/main/java/org/demo/Account.java": ('''package org.demo;

import java.util.List;

/**
 * A bank account with a running balance.
 */
public class Account {
    private long balance;

    /**
     * Move money into the account and return the new balance.
     * @param amount the amount in cents
     * @return the balance after the deposit
     * @throws IllegalArgumentException if amount is negative
     */
    public long deposit(long amount) {
        if (amount < 0) throw new IllegalArgumentException("negative");
        balance += amount;
        return balance;
    }
}
''', [("module", ""), ("class", "Account"), ("function", "Account.deposit")],
        "Account.deposit", "Move money into the account and return the new balance."),
    "src/parse.rs": ('''//! Parsing of configuration files into typed settings.

use std::fs;

/// A parsed configuration: keys and their values.
#[derive(Debug, Clone)]
pub struct Config {
    pub entries: Vec<(String, String)>,
}

impl Config {
    /// Read a configuration file from disk and parse every line.
    pub fn load(path: &str) -> Config {
        let text = fs::read_to_string(path).unwrap();
        let entries = text.lines().filter_map(parse_line).collect();
        Config { entries }
    }
}
''', [("module", ""), ("class", "Config"), ("class", "Config"), ("function", "Config.load")],
        "Config.load", "Read a configuration file from disk and parse every line."),
    "lib/greeter.rb": ('''require 'json'

module Greeting
  # Builds greetings for people in their own language.
  class Greeter
    attr_reader :language

    # Greet a person by name in the greeter's language.
    # @param [String] name the person to greet
    def greet(name)
      word = WORDS.fetch(language, 'Hello')
      text = "#{word}, #{name}!"
      text.strip
    end
  end
end
''', [("module", ""), ("class", "Greeting"), ("class", "Greeting.Greeter"), ("function", "Greeting.Greeter.greet")],
        "Greeting.Greeter.greet", "Greet a person by name in the greeter's language."),
    "src/vec.c": ('''#include <stdlib.h>

/**
 * Append a value to the vector, growing its storage when full.
 */
int vec_push(struct vec *v, int value) {
    if (v->len == v->cap && vec_grow(v) != 0)
        return -1;
    v->data[v->len++] = value;
    return 0;
}

struct vec {
    int *data;
    size_t len, cap;
};
''', [("module", ""), ("function", "vec_push"), ("class", "vec")],
        "vec_push", "Append a value to the vector, growing its storage when full."),
    "src/shape.cpp": ('''#include <cmath>

namespace geo {

/// A circle in the plane, centred at the origin.
class Circle {
 public:
  double area() const { return M_PI * r * r; }
  double r;
};

/// Compute the perimeter of the circle in metres.
double Circle::perimeter() const {
  double d = 2 * r;
  double p = M_PI * d;
  return p;
}

}  // namespace geo
''', [("module", ""), ("module", "geo"), ("class", "geo.Circle"), ("function", "geo.Circle.area"), ("class", "geo.Circle"),
      ("function", "geo.Circle.perimeter")],
        "geo.Circle.perimeter", "Compute the perimeter of the circle in metres."),
    "src/Inventory.cs": ('''using System;

namespace Shop.Stock
{
    /// <summary>Counts the items on the shelves.</summary>
    public class Inventory
    {
        /// <summary>Remove items from stock and report what is left.</summary>
        /// <param name="sku">The item's stock keeping unit.</param>
        /// <returns>The count left.</returns>
        public int Take(string sku, int n)
        {
            var left = counts[sku] - n;
            counts[sku] = left;
            return left;
        }
    }
}
''', [("module", ""), ("module", "Shop.Stock"), ("class", "Shop.Stock.Inventory"), ("function", "Shop.Stock.Inventory.Take")],
        "Shop.Stock.Inventory.Take", "Remove items from stock and report what is left."),
    "src/Mailer.php": ('''<?php
namespace App\\Mail;

/**
 * Sends mail through the configured transport.
 */
class Mailer
{
    /**
     * Queue a message for delivery and return its id.
     *
     * @param string $to the recipient address
     * @return int
     */
    public function send($to, $body)
    {
        $id = $this->queue->push($to, $body);
        $this->log("queued $id");
        return $id;
    }
}
''', [("module", ""), ("class", "Mailer"), ("function", "Mailer.send")],
        "Mailer.send", "Queue a message for delivery and return its id."),
}
PATHS = sorted(FIXTURES)


def language_of(path: str) -> str:
    return classify(path)[1]


# --- units, symbols, doc comments ---------------------------------------------------------------------

@pytest.mark.parametrize("path", PATHS)
def test_units_and_symbols(path):
    text, expected, _, _ = FIXTURES[path]
    stats = StageStats("chunk")
    chunks = chunk(text, path, stats=stats)
    assert [(c.chunk_type, c.symbol) for c in chunks] == expected
    assert stats[f"structure_{language_of(path)}"] == 1
    assert check_chunks(chunks, text, 256, counter()) == []


@pytest.mark.parametrize("path", PATHS)
def test_doc_comment_is_the_definitions_docstring(path):
    text, _, symbol, first = FIXTURES[path]
    c = next(c for c in chunk(text, path) if c.symbol == symbol)
    assert c.meta["docstring"].split("\n\n")[0] == first
    lines = c.text.split("\n")
    # the unit starts at its doc comment, and the body without it keeps the code, not the comment
    assert first.split()[0] in lines[0] or lines[0].strip().startswith(("/**", "///", "#", "//"))
    body = c.meta["code_without_docstring"]
    assert first not in body and body.strip()
    assert not any(line.strip().startswith(("/**", "///", "* @")) for line in body.split("\n"))
    assert c.meta["signature"] and "\n" not in c.meta["signature"]


def test_qualified_symbols_and_signatures_read_like_the_code():
    by_symbol = {c.symbol: c for c in chunk(FIXTURES["server/engine.go"][0], "server/engine.go")}
    assert by_symbol["Engine.ServeHTTP"].meta["signature"] == "func (engine *Engine) ServeHTTP(w http.ResponseWriter, req *http.Request)"
    first = chunk(FIXTURES["server/engine.go"][0], "server/engine.go")[0]
    assert first.meta["module_docstring"] == "Package server runs the HTTP engine and its routes."
    # Go exports capitalised names only
    assert [s.split("(")[0] for s in first.meta["public_names"]] == ["type Engine", "func "]
    rust = chunk(FIXTURES["src/parse.rs"][0], "src/parse.rs")
    assert rust[0].meta["module_docstring"] == "Parsing of configuration files into typed settings."
    assert rust[0].meta["public_names"] == ["pub struct Config"]  # impl blocks are not names of their own


def test_tags_become_words():
    text, _, symbol, _ = FIXTURES["lib/router.js"]
    route = next(c for c in chunk(text, "lib/router.js") if c.symbol == symbol)
    assert route.meta["docstring"] == ("Register a handler for a path and return the router.\n\n"
                                       "Parameter path: the URL path to match. Parameter handler: the callback. "
                                       "Returns this router, for chaining.")
    java = next(c for c in chunk(*[FIXTURES["src/main/java/org/demo/Account.java"][0], "src/main/java/org/demo/Account.java"])
                if c.symbol == "Account.deposit")
    assert java.meta["docstring"].endswith("Throws IllegalArgumentException if amount is negative.")


# --- the chunk invariants on every language ---------------------------------------------------------

@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("max_tokens", [24, 48])
def test_invariants_hold_under_tight_limits(path, max_tokens):
    text = FIXTURES[path][0]
    chunks = chunk(text, path, max_tokens=max_tokens)
    assert check_chunks(chunks, text, max_tokens, counter()) == []


def test_too_long_definition_splits_at_statement_boundaries():
    body = "\n".join(f"\ttotal += weigh(\n\t\tvalue{i},\n\t\t{i},\n\t)" for i in range(30))
    text = f"package w\n\nfunc Accumulate(limit int) int {{\n\ttotal := 0\n{body}\n\treturn total\n}}\n"
    chunks = chunk(text, "w/acc.go", max_tokens=64)
    pieces = [c for c in chunks if c.symbol == "Accumulate"]
    assert len(pieces) > 3
    statement_starts = {3, 4} | {5 + 4 * i for i in range(30)} | {5 + 4 * 30}
    assert {c.start_line for c in pieces} <= statement_starts
    assert check_chunks(chunks, text, 64, counter()) == []


# lines that look like code in the brace languages, Ruby's `def ... end` and comments of every kind
_WORD = st.sampled_from(["load", "x", "self.items", "naïve", "日本語", "(", ")", "{", "}", ";", "=>", "'", '"', "`", "/*", "*/",
                         "qwertzuiopasdfghjkl" * 3, "💥", "return", "\t"])
_TEXT = st.lists(_WORD, max_size=20).map(" ".join)
_CODE_LINE = st.one_of(
    st.builds("function f{}(a, b) {{".format, st.integers(0, 3)),
    st.builds("func (r *R) M{}() {{".format, st.integers(0, 3)),
    st.builds("pub fn f{}() {{".format, st.integers(0, 3)),
    st.builds("class C{} {{".format, st.integers(0, 3)),
    st.builds("  def m{}(x)".format, st.integers(0, 3)),
    st.builds("  m{}() {{".format, st.integers(0, 3)),
    st.builds("/** {} */".format, _TEXT), st.builds("/// {}".format, _TEXT), st.builds("// {}".format, _TEXT),
    st.builds("# {}".format, _TEXT), st.builds(" * @param x {}".format, _TEXT),
    st.builds("  return {!r};".format, _TEXT), st.builds("    x = {!r}".format, _TEXT),
    st.sampled_from(["", "", "}", "  }", "end", "/**", " */", "#[derive(Debug)]", "@Override", "<?php", "namespace A {", "package p"]),
    _TEXT,
)
SOURCES = st.lists(_CODE_LINE, max_size=50).map("\n".join).map(normalise)
_SUFFIX = {"javascript": "js", "typescript": "ts", "tsx": "tsx", "go": "go", "java": "java", "rust": "rs", "ruby": "rb", "c": "c",
           "cpp": "cpp", "csharp": "cs", "php": "php"}
LANGUAGES = st.sampled_from(sorted(_SUFFIX))
_PROPERTY = settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@_PROPERTY
@given(text=SOURCES, language=LANGUAGES, max_tokens=st.integers(min_value=11, max_value=96))
def test_property_invariants_and_determinism_in_every_language(text, language, max_tokens):
    path = f"any/file.{_SUFFIX[language]}"
    first = chunk(text, path, max_tokens=max_tokens)
    assert check_chunks(first, text, max_tokens, counter()) == []
    second = chunk(text, path, max_tokens=max_tokens)
    assert [dataclasses.astuple(c) for c in first] == [dataclasses.astuple(c) for c in second]
    assert [c.meta for c in first] == [c.meta for c in second]
    for c in first:
        assert c.id.startswith(chunk_id(path, c.start_line, c.end_line, c.text))
        span = c.meta.get("docstring") is not None
        assert not span or "code_without_docstring" in c.meta


def test_every_listed_grammar_loads_and_parses_its_fixture():
    """Each grammar parses a real fixture into structure: a grammar that fails to load or parse falls back to blank-line
    blocks (counted as syntax_fallback_<language>), which this test does not accept."""
    sources = {language_of(p): (p, FIXTURES[p][0]) for p in PATHS}
    sources["tsx"] = ("ui/Greeting.tsx", "export function Greeting({ name }: { name: string }) {\n  return <h1>Hello {name}</h1>;\n}\n")
    assert set(GRAMMARS) <= set(sources)
    for grammar in GRAMMARS:
        path, text = sources[grammar]
        language, stats = language_of(path), StageStats("chunk")
        chunks = chunk(text, path, stats=stats)
        assert stats[f"syntax_fallback_{language}"] == 0 and stats[f"structure_{language}"] == 1, (grammar, dict(stats))
        assert any(c.chunk_type in ("function", "class") for c in chunks), grammar


# --- blank-line blocks where there is no structure, counted ---------------------------------------------

def test_language_without_grammar_falls_back_to_blocks_counted():
    stats = StageStats("chunk")
    text = "fun add(a: Int, b: Int): Int {\n    return a + b\n}\n\nfun main() {\n    println(add(1, 2))\n}\n"
    chunks = chunk(text, "app/Main.kt", max_tokens=256, stats=stats)
    assert [c.chunk_type for c in chunks] == ["block"]
    assert stats["blocks_kotlin"] == 1 and stats["structure_kotlin"] == 0
    assert check_chunks(chunks, text, 256, counter()) == []


def test_file_that_does_not_parse_falls_back_to_blocks_counted():
    stats = StageStats("chunk")
    text = "function ok() {\n  return 1;\n}\n\n)))) ((( }{ <<< not javascript\n"
    chunks = chunk(text, "web/broken.js", stats=stats)
    assert stats["syntax_fallback_javascript"] == 1 and stats["blocks_javascript"] == 1
    assert {c.chunk_type for c in chunks} == {"block"}
    assert check_chunks(chunks, text, 256, counter()) == []


def test_ids_are_stable_and_an_edit_changes_one_chunk():
    text, *_ = FIXTURES["server/engine.go"]
    first, second = chunk(text, "server/engine.go"), chunk(text, "server/engine.go")
    assert [c.id for c in first] == [c.id for c in second]
    edited = chunk(text.replace("return 1", "return 2"), "server/engine.go")
    assert [a.id == b.id for a, b in zip(first, edited)] == [True, True, True, False]


# --- pairs from every language -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def all_pairs():
    stats = StageStats("pairs")
    sources = [SourceFile(p, *classify(p), text=FIXTURES[p][0]) for p in PATHS]
    chunks = list(chunk_files(sources, Chunker(counter(), 256), min_chars=20))
    return mine_pairs(chunks, PairsConfig(), stats), chunks


@pytest.mark.parametrize("path", PATHS)
def test_docstring_code_pairs_in_every_language(all_pairs, path):
    pairs, _ = all_pairs
    _, _, symbol, first = FIXTURES[path]
    pair = next(p for p in pairs if p.pair_type == "docstring_code" and p.path == path and p.anchor == first)
    assert first not in pair.positive and pair.positive.strip()
    assert (pair.anchor_kind, pair.positive_kind) == ("code", "code")


def test_module_summary_and_mention_from_other_languages(all_pairs):
    pairs, chunks = all_pairs
    summary = next(p for p in pairs if p.pair_type == "module_summary" and p.path == "server/engine.go")
    assert summary.anchor == "Package server runs the HTTP engine and its routes."
    assert summary.positive.startswith("module server.engine: type Engine; func (engine *Engine) ServeHTTP(")
    docs = SourceFile("docs/engine.md", "docs", "markdown", text="# Engine\n\nEach request goes through `Engine.ServeHTTP`, which takes a context from the pool.\n")
    more = list(chunk_files([docs], Chunker(counter(), 256), min_chars=20))
    mentions = mine_pairs(chunks + more, PairsConfig(types=["mention_definition"]), StageStats("pairs"))
    assert [(p.path, p.positive.split("\n")[0]) for p in mentions] == [("server/engine.go", "// ServeHTTP conforms to the http.Handler interface and dispatches the request.")]


def test_doc_comment_is_not_also_a_comment_block_pair(all_pairs):
    pairs, _ = all_pairs
    anchors = [p.anchor for p in pairs if p.pair_type == "comment_block"]
    assert not any("ServeHTTP conforms" in a or "Greet a person" in a for a in anchors)


def test_jsdoc_a_blank_line_above_still_documents_but_a_line_comment_must_touch():
    text = ("/**\n * Load the settings from a file on disk.\n */\n\nfunction load(path) {\n  const raw = read(path);\n  return parse(raw);\n}\n\n"
            "// Save the settings back to the file.\n\nfunction save(path, s) {\n  const raw = dump(s);\n  write(path, raw);\n}\n")
    by_symbol = {c.symbol: c for c in chunk(text, "lib/settings.js")}
    assert by_symbol["load"].meta["docstring"] == "Load the settings from a file on disk." and by_symbol["load"].start_line == 1
    assert "docstring" not in by_symbol["save"].meta


def test_a_long_doc_comment_gives_its_docstring_to_the_piece_where_the_code_starts():
    example = "\n".join(f" *     const doc{i} = await Model.findById(id{i});" for i in range(12))
    text = (f"/**\n * Find a document by its id and return it.\n *\n * Example:\n{example}\n */\n"
            "Model.findById = function findById(id) {\n  const q = this.findOne({ _id: id });\n  q.setOptions({ lean: false });\n  return q;\n};\n")
    pieces = [c for c in chunk(text, "lib/model.js", max_tokens=96) if c.symbol == "Model.findById"]
    assert len(pieces) > 1
    with_doc = [c for c in pieces if "docstring" in c.meta]
    assert len(with_doc) == 1 and "function findById(id)" in with_doc[0].text
    assert with_doc[0].meta["docstring"].startswith("Find a document by its id and return it.")
    assert with_doc[0].meta["code_without_docstring"].startswith("Model.findById = function findById(id) {")
    assert check_chunks(chunk(text, "lib/model.js", max_tokens=96), text, 96, counter()) == []


def test_hash_lines_are_comments_only_where_the_language_says_so():
    # `#define` lines over two declarations would make a comment_block pair if `#` were a comment in C
    text = ("#include <stdio.h>\n#define LIMIT 10\n#define NAME \"counter\"\nstatic int total;\nstatic int seen;\n\nint main(void) {\n"
            "    // count up to the limit and print every number\n    for (int i = 0; i < LIMIT; i++)\n        printf(\"%d\", i);\n    return 0;\n}\n")
    chunks = chunk(text, "src/main.c")
    pairs = mine_pairs(chunks, PairsConfig(types=["comment_block"]), StageStats("pairs"))
    assert [p.anchor for p in pairs] == ["count up to the limit and print every number"]
