"""judge: the second look at a generic finding, from its value, its line and its file.

The scanners propose candidates: a vendor's format (a fixed prefix, a checksum) is a secret wherever it
stands, and is never judged here. A *generic* finding (an entropy plugin, a keyword, repotune's shape
rules) only says "this looks like a secret"; on code nobody tuned the rules for, most such findings were
names and data (issue 32: 176 and 241 findings on two clean projects). The judge asks what the value is
in its context, and says why it is not a secret (a short snake_case reason) or None (keep it redacted):

- ``defined_name``: a name the file defines or calls (``class X``, ``def X``, ``func TestX(``, ``X(``), or, for a
  finding by shape alone, a camelCase name of words (``patParamKeys``, ``RSAKeyPair``, ``AsyncOAuth2Client``) or an
  ``X-`` header's name (``X-Real-IP``): an identifier, not a value.
- ``algorithm_name``: a signing algorithm's name, or a list of them (``HS256/384/512``, ``RS256``).
- ``unnamed_hex`` / ``unnamed_base64`` / ``unnamed_token``: an entropy plugin's hex or base64, or a random-looking
  token without a vendor-like prefix, with no credential word on its line (for a token, nor on the three lines
  above, where a block's name stands): a gzip body in a test, an ETag, a digest nonce, a checksum, test data.
  Named ones stay findings.
- ``decodes_to_stand_in``: percent-encoding or base64 (``Basic dXNlcjpwYXNz``) undone, what is left is
  a stand-in (``user:password123``), prose, or too short to be a credential.
- ``public_id``: the id of a public record: a security advisory (GHSA, CVE), a video in a link, a hex
  object id in a URL's path (a gist, a commit).
- ``named_not_secret``: a value its key names as random but public by nature: a nonce, an ETag, a
  checksum, a digest, a commit.
- ``url_path``: a host and a path written in words (`developer.mozilla.org/en-US/docs/Web/HTTP/Status/303`), an
  address with no credential in it (`proxy_pass http://127.0.0.1:8000/;`), a path (`/get/abc/123abcddxx`).
- ``name_position``: a literal that stands where a name does, not a value: a mapping's key (`{"X-Api-Key": ...}`),
  a subscript (`headers["X-Api-Key"]`), the name an environment or header accessor is given
  (`setenv("FLASK_EXIST__ok", ...)`, `.header("sec-websocket-key", ...)`).
- ``code_reference``: code quoted in prose or a string, a dotted or called name of written identifiers
  (`httpx.USE_CLIENT_DEFAULT`, `c.Request.URL.Query().Get(key)`, `httpx.NetRCAuth()`), or a read of the environment
  (`process.env.OPEN_AI_API_KEY`, `import.meta.env.X`, `os.environ.X`).

Each reason is counted in the secrets stage's stats (``judged_<reason>``), so what the judge let
through can be audited. The thresholds were chosen on the tune half of bench-secrets' clean repositories
(bench/sources.py ``CLEAN``) and the planted corpus; the report half is the measure.
"""

from __future__ import annotations

import base64
import binascii
import re
from urllib.parse import unquote

from .values import (
    SHORT_WORDS,
    is_conventional_name,
    is_placeholder,
    is_secret_name,
    is_word,
    is_wordlike,
    is_wordy,
    name_words,
)

# a line about a credential: an unnamed entropy finding stands only beside a word that begins so (`apiKey`, `X-Auth`,
# `session_id`) or a secret's name (`pgpassword`); a stem inside a word (`fastapi`, `monkeypatch`) says nothing
_CREDENTIAL_STEM = re.compile(
    r"pass|pwd|secret|token|key|auth|cred|cookie|session|bearer|sign|salt|private|login|connect|dsn|psk|otp|"
    r"seed|mnemonic|cipher|encrypt|hmac|jwt|oauth|api")
# where a name is defined or called in code: the token is an identifier there
_DEFINITION = re.compile(
    r"\b(?:(?:class|def|func|fn|function|interface|struct|enum|trait|type|module|void|public|private|protected|static|"
    r"final|abstract|async|new|extends|implements)\s+)+(?:\([^)]*\)\s*)?([A-Za-z_$][\w$]*)|(?<![\w$])([A-Za-z_$][\w$]*)\(")
_IDENTIFIER = re.compile(r"[A-Za-z_$][\w$]*")
# an HTTP authorization scheme just before the value: what follows is the credential (token68), never a name
_AUTH_SCHEME_BEFORE = re.compile(r"(?i)\b(?:basic|bearer|digest|negotiate|token)[ \t]+[\"']?$")
_DOTTED_NAME = re.compile(r"[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)+")
_PUBLIC_ID = re.compile(r"(?i)(?:GHSA(?:-[0-9a-z]{4}){3}|CVE-\d{4}-\d{4,}|PYSEC-\d{4}-\d+|RUSTSEC-\d{4}-\d{4})")
_PUBLIC_ID_BEFORE = re.compile(r"(?i)(?::ghsa:`|:cve:`|advisories/|youtube\.com/watch\?v=|youtu\.be/|/vi/|[?&]v=)$")
# a key whose value is random but public by nature (HTTP digest auth's nonce and opaque, an ETag, a content hash)
_PUBLIC_KEY = re.compile(r"(?i)(?:\betag|\bc?nonce|websocket-(?:key|accept)|\bopaque|integrity|checksum|digest|\bhash|\bsha\d*|\bcommit|revision|"
                         r"request[-_]?id|trace[-_]?id)[\"']?\s*[:=,]\s*[\"']?(?:W/)?\\?[\"']*$")
_URL_PATH = re.compile(r"(?:[a-z0-9\-]+\.)+[a-z]{2,24}(?P<path>(?:/[\w.\-~%]*)+)")
# the userinfo of a URL or DSN: its password is what is judged
_USERINFO = re.compile(r"://[\w.%+\-~]*:(?P<pw>[^\s@/]*)@")
# a token that begins as vendors' do (nfp_, rnd_, tfp-): a secret's format, named or not
_VENDOR_PREFIX = re.compile(r"[A-Za-z]{2,12}[_\-]")
# a quoted literal in a name's place: a mapping's key (`"X-Api-Key":`, `'k' =>`), a subscript (`h["X-Api-Key"]`), the
# first argument of an environment or header accessor (`setenv("NAME", ...)`, `.header("name", ...)`, `Header.Set(`)
_KEY_AFTER = re.compile(r"^[\"'`][ \t]*(?::(?!:)|=>)")
_SUBSCRIPT = (re.compile(r"\[[ \t]*[\"'`]$"), re.compile(r"^[\"'`][ \t]*\]"))
_ACCESSOR_BEFORE = re.compile(r"(?i)\b(?:(?:set|get|put|unset|del|delete|pop|has)_?env|environ\.(?:get|setdefault|pop)|getenv|"
                              r"(?:set|get|add|del|delete|remove|has)?_?headers?|set|get|add|del)\([ \t]*[\"'`]$")
_NAME_ARGUMENT_AFTER = re.compile(r"^[\"'`][ \t]*[,)]")
# code in prose or a string: identifiers joined by `.` or `::`, each perhaps called with names for arguments
_CODE_PART = r"[A-Za-z_$][\w$]*(?:\([\w$, *]*\))?"
_CODE_REFERENCE = re.compile(rf"{_CODE_PART}(?:(?:\.|::){_CODE_PART})+|[A-Za-z_$][\w$]*\([\w$, *]*\)")
# a read of the environment by name: the variable holds the secret, the code only names it
_ENV_READ = re.compile(r"(?:process\.env|import\.meta\.env|os\.environ|env)\.[A-Za-z_][A-Za-z0-9_]*")
# a JWS/JWT signing algorithm, or a list of one family's sizes (`HS256/384/512`)
_ALGORITHM = re.compile(r"(?:HS|RS|ES|PS|EdDSA)(?:256|384|512)?(?:/(?:256|384|512))*\.?")
# an address without credentials: a scheme, a host (a name or an IP, a port) and a path, nothing else
_ADDRESS = re.compile(r"(?i)[a-z][a-z0-9+.\-]*://[\w.\-]+(?::\d+)?(?P<path>(?:/[\w.\-~]*)*)[;,]?")
# the findings made by a value's shape alone, with no secret name given: a camelCase name of words is no secret there
_SHAPE_TYPES = {"credential_line_literal", "random_token", "hex_high_entropy_string", "base64_high_entropy_string"}
_ENTROPY_TYPES = {"hex_high_entropy_string": "unnamed_hex", "base64_high_entropy_string": "unnamed_base64"}


def defined_names(text: str) -> frozenset[str]:
    """The names a file defines (its classes, functions, tests, methods) or calls, a called one only when made of
    words (a random value in a string may stand before a parenthesis by chance): identifiers, not values."""
    return frozenset(m.group(1) or m.group(2) for m in _DEFINITION.finditer(text) if m.group(1) or is_wordy(m.group(2)))


def not_a_secret(text: str, start: int, end: int, kind: str, names: frozenset[str]) -> str | None:
    """Why the generic finding ``text[start:end]`` of type ``kind`` is not a secret, or None to keep it.
    ``names``: ``defined_names(text)``."""
    value = text[start:end].strip("\"'`")
    line_start = text.rfind("\n", 0, start) + 1
    line_end = text.find("\n", end)
    line = text[line_start:line_end if line_end >= 0 else len(text)]
    before = text[line_start:start]
    credential_position = _AUTH_SCHEME_BEFORE.search(before) is not None  # `Basic <token68>`: a credential, whatever it spells
    if _IDENTIFIER.fullmatch(value) and value in names and not credential_position:
        return "defined_name"
    if _DOTTED_NAME.fullmatch(value) and all(is_wordy(part) for part in value.split(".")) and not credential_position:
        return "defined_name"
    after = text[end:line_end if line_end >= 0 else len(text)]
    if not credential_position and _in_name_position(value, before, after):
        return "name_position"
    if not credential_position and (_CODE_REFERENCE.fullmatch(value) and _written_code(value) or _quoted_code(value)
                                    or _ENV_READ.fullmatch(value)):
        return "code_reference"
    if kind in _SHAPE_TYPES and not credential_position and (_camel_identifier(value) or _header_name(value)):
        return "defined_name"  # by its shape only: a name given as a password (`password="CircleOfLife"`) stays
    if kind in _SHAPE_TYPES and not credential_position and _ALGORITHM.fullmatch(value):
        return "algorithm_name"
    if kind in _ENTROPY_TYPES and not _about_credentials(line):
        return _ENTROPY_TYPES[kind]
    if kind == "random_token" and not _VENDOR_PREFIX.match(value) and not _about_credentials(_lines_before(text, line_start, 3) + line):
        return "unnamed_token"
    if _PUBLIC_ID.fullmatch(value) or _PUBLIC_ID_BEFORE.search(before):
        return "public_id"
    if _PUBLIC_KEY.search(before):
        return "named_not_secret"
    address = _ADDRESS.fullmatch(value)
    if address and _worded_path(address.group("path")):
        return "url_path"
    if value.startswith("/") and _worded_path(_percent_decoded(value) or value, most=True):
        return "url_path"
    url = _URL_PATH.fullmatch(value)
    if url:
        pieces = [piece for piece in url.group("path").split("/") if piece]
        # pieces in words (is_wordy: a random key in a path can pass a name's shape alone, as one drew in a sweep)
        if all(len(piece) <= 5 or is_wordy(piece) for piece in pieces):
            return "url_path"
        if not _about_credentials(line) and all(len(piece) <= 5 or is_wordy(piece)
                                                      or re.fullmatch(r"[0-9a-f]{7,64}", piece) for piece in pieces):
            return "public_id"
    userinfo = _USERINFO.search(value)
    if userinfo:  # a URL's or DSN's password, percent-decoded
        password = _percent_decoded(userinfo.group("pw"))
        return "decodes_to_stand_in" if password is not None and _stand_in(password, short=6) else None
    if kind == "basic_auth_credentials" and ":" in value and "://" not in value:  # user:password, the password judged
        password = _percent_decoded(value.split(":", 1)[1])
        return "decodes_to_stand_in" if password is not None and _stand_in(password, short=6) else None
    decoded = _percent_decoded(value)
    if decoded is not None and decoded != value:
        return "decodes_to_stand_in" if _stand_in(decoded, short=4) else None
    decoded = _base64_text(value)
    if decoded is not None and ":" in decoded and _stand_in(decoded.split(":", 1)[1], short=6):
        return "decodes_to_stand_in"  # Basic credentials: user:password, the password a stand-in
    return None


def _about_credentials(text: str) -> bool:
    """Whether ``text`` holds a credential word: a word of its names that begins with a credential stem, or a
    secret's name."""
    return any(_CREDENTIAL_STEM.match(word) for word in name_words(text)) or any(
        is_secret_name(token) for token in re.findall(r"[^\W\d][\w\-]*", text))


def _quoted_code(value: str) -> bool:
    """Code quoted in prose with its quotes and brackets (`"X-Api-Key":`, `h["X-Api-Key"]`): punctuation of code, and
    every piece between it a written word or a one-letter name."""
    if not re.fullmatch(r"[\w.\-\[\]\"':=>(), ]+", value) or not re.search(r"[\[\]\"':()]", value):
        return False
    pieces = [p for p in re.split(r"[^A-Za-z0-9]+", value) if p]
    return bool(pieces) and all(len(p) == 1 and p.isalpha() or is_word(p) or is_wordy(p) for p in pieces)


def _camel_identifier(value: str) -> bool:
    """A camelCase or PascalCase name reading as words (`patParamKeys`), acronyms and a version number allowed
    (`RSAKeyPair`, `AsyncOAuth2Client`, `ReadConsoleW`): an identifier, not a mixed-case password (those change
    case every few letters, and rarely read as words)."""
    if re.fullmatch(r"[a-z]+(?:[A-Z][a-z]+)+|(?:[A-Z][a-z]+){2,}", value) is not None and is_wordy(value):
        return True
    spelt = value.replace("OAuth", "Oauth")  # one word, not the acronym O before Auth
    pieces = _CAMEL_PIECE.findall(spelt)
    if "".join(pieces) != spelt or len(pieces) < 2:
        return False
    words = [p for p in pieces if re.fullmatch(r"[A-Z]?[a-z]{2,}", p)]
    acronyms = [p for p in pieces if re.fullmatch(r"[A-Z]{2,5}", p)]
    # every piece a word (three letters at least, a vowel; or a short one: in, to, of), one acronym of 2-5 capitals at
    # most, one short number at most, or one last capital. Random mixed case breaks that: a sweep drew `ZMUttcEssqKIO8AYA`
    # (three acronyms around two pronounceable runs) and `cisyrengJOBzi2QHG`
    return len(words) >= 2 and len(acronyms) <= 1 and sum(p.isdigit() for p in pieces) <= 1 and all(
        is_word(w) for w in words) and all(
        p in words or p in acronyms or p.lower() in SHORT_WORDS or re.fullmatch(r"\d{1,2}", p)
        or (p == pieces[-1] and re.fullmatch(r"[A-Z]", p)) for p in pieces)


# a camelCase name's pieces: a word (perhaps Capitalised), an acronym (the capitals before a Capitalised word), digits
_CAMEL_PIECE = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?=[A-Z][a-z]|\d|$)|\d+|[A-Z]")


def _header_name(value: str) -> bool:
    """An `X-` header's name (`X-Real-IP`, `X-API-Key`, `X-Agent-ID`): its pieces words or acronyms."""
    pieces = value.split("-")
    return len(pieces) >= 2 and pieces[0] in ("X", "x") and all(
        re.fullmatch(r"[A-Z]{2,5}|[a-z]{2,5}", p) or is_word(p) or _camel_identifier(p) for p in pieces[1:])


def _in_name_position(value: str, before: str, after: str) -> bool:
    """A quoted literal made as a name (no space, no `://`, no `@`) that stands where a name does: a key, a
    subscript, the first argument of an environment or header accessor."""
    if not re.fullmatch(r"[\w.\-]+", value):
        return False
    if _KEY_AFTER.match(after) or _SUBSCRIPT[0].search(before) and _SUBSCRIPT[1].match(after):
        return True
    return _ACCESSOR_BEFORE.search(before) is not None and _NAME_ARGUMENT_AFTER.match(after) is not None


def _written_code(value: str) -> bool:
    """A code reference whose identifiers are each written by a person (a conventional name, or one letter
    for a receiver such as `c`), one of them at least of words."""
    parts = [p for p in re.split(r"\.|::|[(), *]+", value) if p]
    return all(len(p) == 1 or is_conventional_name(p) for p in parts) and any(is_wordy(p) for p in parts)


def _worded_path(path: str, most: bool = False) -> bool:
    """A path whose pieces read as words or are short (`/docs/Web/HTTP/Status/401`, `/`); ``most``: a bare path
    (`/get/abc/123abcddxx`), two pieces at least and more than half of them words."""
    pieces = [piece for piece in path.split("/") if piece]
    worded = [len(piece) <= 5 or is_wordy(piece) or is_wordlike(piece) for piece in pieces]
    if most:
        return len(pieces) >= 2 and all(re.fullmatch(r"[\w.\-~:]{1,40}", p) for p in pieces) and sum(worded) * 2 > len(pieces)
    return all(worded)


def _lines_before(text: str, line_start: int, n: int) -> str:
    """The ``n`` lines before the one starting at ``line_start`` (a block's name stands above its value)."""
    start = line_start
    for _ in range(n):
        start = text.rfind("\n", 0, max(start - 1, 0)) + 1 if start > 0 else 0
    return text[start:line_start]


def _percent_decoded(value: str) -> str | None:
    """The value percent-decoded when it is percent-encoding (every ``%`` starts a byte, the bytes UTF-8), else None."""
    if "%" in value and not re.fullmatch(r"(?:[^%]|%[0-9A-Fa-f]{2})*", value):
        return None
    try:
        return unquote(value, errors="strict")
    except UnicodeDecodeError:
        return None


def _base64_text(value: str) -> str | None:
    """The printable text a base64 value decodes to, or None."""
    if len(value) < 8 or len(value) % 4 or not re.fullmatch(r"[A-Za-z0-9+/]+={0,2}", value):
        return None
    try:
        raw = base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    return raw if raw.isprintable() else None


_LEET = str.maketrans("@4310$5", "aaeioss")


def _stand_in(secret: str, short: int = 0) -> bool:
    """A decoded password that is a stand-in (`password123`), prose (`a secret`), or under ``short`` characters
    (a URL's or Basic credentials' password, whose whole is known)."""
    secret = secret.strip()
    leet = secret.translate(_LEET)
    if leet != secret and re.fullmatch(r"[\w.\-]+", leet) and is_placeholder(leet):
        return True  # `p@ssw0rd`, `s3cr3t`: a stand-in word in leet
    # a stand-in by its words only (password123, changeme): syntax marks once decoded (`\n` in `w2q%5Cnve`) are chance
    return len(secret) < short or re.fullmatch(r"[A-Za-z]+(?: [A-Za-z]+)+", secret) is not None or is_wordlike(secret) \
        or re.fullmatch(r"[\w.\-]+", secret) is not None and is_placeholder(secret)
