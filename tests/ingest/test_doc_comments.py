"""doc_comments: a doc comment of any language as prose (markers stripped, tags as sentences)."""

from __future__ import annotations

import pytest

from pipeline.ingest.doc_comments import clean_doc_comment


@pytest.mark.parametrize("raw, prose", [
    ("/**\n * Make a {@link Route}.\n *\n * @param {Object} [opts={}] - the options\n * @return {Route}\n * @since 2.0\n */",
     "Make a Route.\n\nParameter opts: the options. Returns Route."),
    ("/// <summary>Gets the <see cref=\"System.String\"/> name.</summary>\n/// <param name=\"id\">The id.</param>\n/// <returns>The name.</returns>",
     "Gets the String name.\n\nParameter id: The id. Returns The name."),
    ("# Find a user.\n#\n# @param [String] name the user name\n# @return [User] the user", "Find a user.\n\nParameter name: the user name. Returns the user."),
    ("/**\n * @param string $to the address\n */", "Parameter to: the address."),
    ("//go:generate stringer -type=Kind\n// Kind is a token kind.\n// It has a name.", "Kind is a token kind.\nIt has a name."),
    ("//! Crate docs.\n//!\n//! More.", "Crate docs.\n\nMore."),
    ("/*!\n * \\brief Open a file.\n * \\param path where it lives\n */", "Open a file.\n\nParameter path: where it lives."),
    ("// eslint-disable-next-line no-console", ""),
    ("/************/\n/***** CONTEXT CREATION *****/\n/************/", "CONTEXT CREATION"),
])
def test_clean_doc_comment(raw, prose):
    assert clean_doc_comment(raw) == prose
