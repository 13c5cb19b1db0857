"""repotune's own secret rules: the generic forms a vendor catalog does not cover.

Kingfisher's catalog (vendor token formats) and detect-secrets' plugins (keywords, entropy) are the
other two scanners (``secrets.py``); these rules cover what both miss, by *category* rather than by
example: a secret-named name assigned a literal in any language's syntax (typed declarations, YAML
block scalars, XML elements, name/value pairs), credentials inside URLs and connection strings,
password flags of command lines, base64 that decodes to ``user:pass`` or a key, every private-key
armour, password hashes, webhook URLs and the token prefixes of today's vendors.

Each rule is data: an id, what it finds, the words one of which a text must hold for the rule to run
(``keywords``, lower case; the cheap gate gitleaks uses), and a regex whose group ``v`` is the exact
span to redact (never a prefix, never the name). A rule may add a ``check`` on the match (the name is
secret-like, the value is a literal here). Whatever a rule finds, a placeholder is recognised by what
it says (``$VAR``, ``<token>``, ``xxxx``, ``YOUR_...``, ``changeme``, ``example``), never by its shape:
for a dataset that will be published, a UUID-shaped value or a line with ``_id`` on it is a value.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import PurePosixPath

# --- names ------------------------------------------------------------------------------------------

# the last word of a name that holds a secret (DB_PASSWORD, smtpPass, GH_PAT, authToken, contraseña)
SECRET_WORDS = frozenset({
    "password", "passwd", "passwort", "pwd", "pass", "passphrase", "pw", "secret", "token", "credential",
    "credentials", "creds", "pat", "auth", "authorization", "contraseña", "contrasena", "motdepasse", "senha",
    "apikey", "secretkey", "privatekey", "accesskey", "authkey", "authtoken", "accesstoken", "apitoken",
    "clientsecret", "signingkey", "encryptionkey", "masterkey", "sessionkey", "requirepass", "masterauth",
    "storepass", "keypass", "srcstorepass", "deststorepass", "srckeypass", "destkeypass", "dbpass", "sig",
    "mnemonic", "userpwd",
})
# the last two words of a name that holds a secret (API_KEY, signingKey, SharedAccessKey)
SECRET_PAIRS = frozenset((a, "key") for a in (
    "api", "access", "secret", "private", "signing", "encryption", "encrypt", "crypt", "cipher", "master", "auth",
    "client", "app", "application", "account", "storage", "shared", "license", "licence", "hmac", "session", "deploy",
    "service", "jwt", "aes", "subscription", "consumer", "webhook", "admin", "root", "write", "upload", "publish",
    "ingest", "ingestion", "server", "sdk", "rest", "primary", "secondary", "db", "database", "live", "prod",
)) | {("key", "data"), ("private", "pem")}
# words a name may end in after its secret part (SECRET_KEY_BASE, password_hash, token_value)
TRAILING_WORDS = frozenset({"value", "base", "b64", "base64", "hex", "raw", "plain", "plaintext", "str", "string",
                            "literal", "text", "encoded", "enc", "hash", "digest"})
# first words that make a name about a secret, not one (is_password, max_tokens, pad_token, show_secret)
NOT_SECRET_FIRST = frozenset({"is", "has", "use", "no", "show", "hide", "enable", "disable", "allow", "ask", "prompt",
                              "confirm", "check", "validate", "require", "requires", "min", "max", "num", "n", "count",
                              "eos", "bos", "pad", "unk", "sep", "cls", "mask", "special", "forgot", "bypass"})
_SECRET_SUFFIXES = ("password", "passwd", "passphrase", "secret", "token", "apikey", "secretkey", "privatekey",
                    "accesskey", "authkey")
_CAMEL = re.compile(r"(?<=[a-zà-ÿ0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


def name_words(name: str) -> list[str]:
    """A name in every case style as lower-case words: "X-Api-Key" / "apiKey" / "API_KEY" -> ["api", "key"]."""
    return [w.lower() for part in re.split(r"[\W_]+", name) for w in _CAMEL.split(part) if w and not w.isdigit()]


def is_secret_name(name: str) -> bool:
    """Whether a name (a variable, a key, a flag, a header, an element) says it holds a secret."""
    words = name_words(name)
    while len(words) > 1 and words[-1] in TRAILING_WORDS:
        words.pop()
    if not words or words[0] in NOT_SECRET_FIRST or (words[0] == "x" and len(words) == 1):
        return False
    last = words[-1]
    if last in SECRET_WORDS and not (last in ("sig", "pat") and len(words) == 1 if last == "pat" else last == "sig" and len(words) > 1):
        return True
    if len(words) == 1 and last.endswith(_SECRET_SUFFIXES):  # one word: pgpassword, mytoken, appsecret
        return True
    if words[-2:] in (["seed", "phrase"], ["recovery", "phrase"]):
        return True
    return len(words) > 1 and (words[-2], last) in SECRET_PAIRS


# --- values -----------------------------------------------------------------------------------------

# what a value says when it is not one: a reference, a template, a marker of an example
# What a placeholder says. Templates, references and code about values (escapes, regex syntax, globs)
# are recognised only in values that are not symbol soup: a random password of printable characters
# (a WordPress salt) holds `<ab1>`, `%d` or `[^x]` by chance.
_SYNTAX_MARKS = re.compile(
    r"\$\{[A-Za-z_][\w.:\-]*\}|\$\([A-Za-z_][\w .\-]*\)|\{\{[^{}]*\}\}|\{%[^%]*%\}|%\([A-Za-z_]\w*\)[sdr]|"
    r"(?:^|[\s'\"=:(])%[sd](?:$|[\s'\")])|<[A-Za-z_][\w\- .]{2,}>|^\$[A-Z_][A-Z0-9_]*$|^%[A-Z_][A-Z0-9_]*%$|"
    r"^@[A-Z_][A-Z0-9_]*@$|^\[[A-Z_ ]*\]$|^\{[\w\[\]'\".+ \-]*\}?$|"
    r"\(\?[:P!=<]|\[\^[\\\w\s\-]*\]|\[[^\]]*(?:A-Z|a-z|0-9)[^\]]*\]|\{\d+,?\d*\}|"
    r"^\*\.|^[\w\-/\\]*\.\*$|^\*\*|/\*\*$|/\*\*/|^[a-z0-9]+(?:[_.\-][a-z0-9]+)*\*$|^\.\.\.|\.\.\.$|…|^\*{3}|\*{3}$|"
    r"#{4}|^[\d.:/\- ]+$"
)
_PLACEHOLDER_MARKS = re.compile(
    r"\\[nstdwbux]|\{\d+,?\d*\}|\[[^\]]*(?:A-Z|a-z|0-9)[^\]]*\]|xxxx|XXXX|"
    # what a stand-in says, as a word of its own (so a random token that happens to hold "MOCK" is not one)
    r"(?<![A-Za-z])(?:" + "|".join(f"{w}|{w.capitalize()}|{w.upper()}" for w in (
        "example", "sample", "placeholder", "changeme", "change_me", "change-me", "dummy", "redacted", "your_", "your-",
        "yourapi", "insert_", "insert-", "replaceme", "replace_me", "here", "fixme", "todo", "notreal", "not_real", "fake",
        "mock")) + r")(?![a-z])"
)


def _is_soup(value: str) -> bool:
    """Five or more kinds of punctuation in 16 characters or more: a generated password, not code."""
    return len(value) >= 16 and len({c for c in value if not c.isalnum()}) >= 5


# words that, alone or together with digits, make a value a stand-in (password123, test-token, my_secret)
PLACEHOLDER_WORDS = frozenset({
    "password", "passwd", "pass", "pwd", "passphrase", "secret", "secrets", "token", "tokens", "key", "keys", "api",
    "apikey", "access", "auth", "private", "client", "my", "your", "the", "foo", "bar", "baz", "qux", "test",
    "tests", "testing", "admin", "administrator", "user", "username", "root", "default", "none", "null", "nil",
    "undefined", "true", "false", "yes", "no", "str", "string", "value", "env", "var", "bearer", "basic", "hunter",
    "letmein", "qwerty", "abc", "abcdef", "demo", "local", "localhost", "dev", "development", "prod", "production",
    "staging", "id", "guest", "postgres", "mysql", "redis", "mongo", "mongodb", "rabbitmq", "sa", "oracle", "pw",
    "changeit", "optional", "required", "bytes", "int", "bool", "any", "object", "new", "old", "current", "empty",
    "unknown", "hidden", "masked", "hashed", "encrypted", "set", "unset", "missing", "invalid", "valid", "wrong",
    "correct", "good", "bad", "some", "other", "xyz", "session", "cookie", "ci", "bot", "app", "service", "account",
    "sk", "pk", "live", "data", "type", "name", "field", "input", "output", "file", "path", "url", "uri", "host",
    "stdin", "stdout", "prompt", "here", "there", "this", "that", "it", "is", "not", "of", "for", "to", "in", "on",
    "s3cret", "s3cr3t", "p4ssw0rd", "passw0rd", "p@ssw0rd", "secret123", "world", "hello", "public", "anonymous",
    "django", "flask", "rails", "insecure", "unsafe", "supersecret", "topsecret", "master", "main", "blah", "db",
})
_WORD_SPLIT = re.compile(r"[^a-z0-9@]+")


def says_placeholder(value: str) -> bool:
    """The narrow test, for places where anything is a credential (after `Authorization: Basic`):
    only a template, a reference, a marker word or a stand-in word as the whole value."""
    v = value.strip().strip("\"'`")
    return len(v) < 4 or bool(_PLACEHOLDER_MARKS.search(v)) or v.lower() in PLACEHOLDER_WORDS or (
        not _is_soup(v) and bool(_SYNTAX_MARKS.search(v)))


def is_placeholder(value: str) -> bool:
    """A value that names where a credential comes from, or stands in for one, rather than being one."""
    v = value.strip().strip("\"'`")
    if len(v) < 4 or _PLACEHOLDER_MARKS.search(v) or len(set(v.lower())) <= 2 or v.lower() in PLACEHOLDER_WORDS:
        return True
    if not _is_soup(v) and _SYNTAX_MARKS.search(v):
        return True
    if v.lower() in _SEQUENCE or v in _SEQUENCE[::-1] or v in _ALPHABETS:
        return True  # 0123456789abcdef, abcdefgh
    if re.fullmatch(r"[^\W_][^\W_]*(?:[_.\-][^\W_]+)*", v) and (v.islower() or v.isupper()) and is_secret_name(v) \
            and not re.search(r"\d", v):
        return True  # the name of a secret, not its value: "db_password", "deststorepass"
    # made of words: YOUR_API_KEY, GITHUB_TOKEN (the name of a variable), prod/db/password (the name of a
    # secret in a vault), password123, my-secret-key; a random value is not
    segments = [w for w in re.split(r"[^A-Za-z0-9]+", v) if w]
    if len(segments) > 1 and all(_is_word(w) for w in segments):
        # ... but a diceware passphrase (kestrel-hazel-mulberry) is made of words too: it says nothing of secrets
        return any(w.lower() in PLACEHOLDER_WORDS for w in segments)
    words = [w for w in _WORD_SPLIT.split("-".join(name_words(v))) if w and not w.isdigit()]
    return bool(words) and all(w in PLACEHOLDER_WORDS for w in words)


_SEQUENCE = "0123456789abcdefghijklmnopqrstuvwxyz"
_ALPHABETS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/-._~"  # an alphabet, written out


def _is_word(segment: str) -> bool:
    """One word: a stand-in's vocabulary, or a lower-case / Capitalised / UPPER-CASE pronounceable word."""
    if len(segment) < 2:
        return False
    return segment.lower() in PLACEHOLDER_WORDS or bool(re.fullmatch(r"v?\d+|[a-z]\d", segment)) or bool(
        re.fullmatch(r"[A-Z]?[a-z]+|[A-Z]+", segment) and len(segment) >= 3 and is_wordlike(segment.lower()))


def entropy(value: str) -> float:
    """Shannon entropy in bits per character."""
    counts = Counter(value)
    return -sum(c / len(value) * math.log2(c / len(value)) for c in counts.values())


def is_credential_shaped(value: str) -> bool:
    """Long and random enough that finding it elsewhere in the file is finding it again (not a word
    such as ``password`` or ``dropped``): what decides whether other occurrences are redacted too."""
    if len(value) < 12 or any(c.isspace() for c in value):
        return False
    mixed = bool(re.search(r"\d", value)) and bool(re.search(r"[A-Za-z]", value))
    return mixed or entropy(value) >= 3.5


def is_wordlike(value: str) -> bool:
    """A word of prose ("argument", "Discord", "dropped"), as flags and keys are followed by in docs:
    short, or pronounceable (enough vowels, no long consonant run). Random values are long: one of 12
    or more letters counts as a word only if it reads like one."""
    if not re.fullmatch(r"[A-Za-z][a-z]{1,24}", value):
        return False
    value = value.lower()
    if len(value) <= 6:
        return True
    vowels = sum(c in "aeiouy" for c in value) / len(value)
    if len(value) < 12:
        return vowels >= 0.25 and not re.search(r"[^aeiouy]{5}", value)
    return vowels >= 0.35 and not re.search(r"[^aeiouy]{4}", value)


# the letter pairs that make up most of English text (and of identifiers made of English words); a
# random pair of letters is one of them about one time in six
COMMON_BIGRAMS = frozenset(
    "th he in er an re on at en nd ti es or te of ed is it al ar st to nt ng se ha as ou io le ve co me de hi ri ro "
    "ic ne ea ra ce li ch ll be ma si om ur ca el ta la ns di fo ho pe ec pr no ct us ac ot il tr ly nc et ut ss so "
    "rs un lo wa ge ie wh ee wi em ad ol rt po we na ul ni ts mo ow pa im mi ai sh ir su id os iv ia am fi ci vi pl "
    "ig tu ev ld ry mp fe bl ab gh ty op wo sa ay ex ke fr oo av ag if ap gr od bo sp rd do uc bu ei ov by rm ep tt "
    "oc fa ef cu rn sc gi da cr cl du ga qu ue ff ba va um pp up lu go ht ru ug ds lt pi rc au ck ew mu br bi pt "
    "ak pu ui ib ki rk ob mm ph og ms ud mb ip ub oi rl gu dr ft wn nu af hu nn vo rv xp gn sm fl iz ok nl gl aw "
    "ox xy eq rg".split())
_RUNS = re.compile(r"[A-Z]?[a-z]+")


def _is_english_run(run: str) -> bool:
    run = run.lower()
    if len(run) < 3 or not re.search(r"[aeiou]", run):
        return False
    pairs = [run[i:i + 2] for i in range(len(run) - 1)]
    return sum(p in COMMON_BIGRAMS for p in pairs) / len(pairs) >= 0.6


def word_share(value: str) -> float:
    """Share of a value's letters that stand in runs reading as English (Auto, Model, handle, Connection:
    three letters or more, mostly common letter pairs): most of an identifier's or a path's, few of a
    random token's."""
    letters = sum(c.isalpha() for c in value)
    if not letters:
        return 0.0
    return sum(len(run) for run in _RUNS.findall(value) if _is_english_run(run)) / letters


def class_changes(value: str) -> float:
    """Share of neighbouring characters of different classes (lower, upper, digit, other): about 0.6 in a
    random mixed token, 0.2-0.35 in an identifier such as `Base64HighEntropyString`."""
    def cls(c: str) -> int:
        return 0 if c.islower() else 1 if c.isupper() else 2 if c.isdigit() else 3
    return sum(cls(a) != cls(b) for a, b in zip(value, value[1:])) / max(len(value) - 1, 1)


_HASH_PREFIX = re.compile(r"(?i)^(?:sha\d*|md5|blake2\w*|crc\d*|sri|commit|rev|git|hash|digest)[-_:]")


_CHUNKS = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")


def is_conventional_name(value: str) -> bool:
    """An identifier written by a person: each piece between separators is a word in one case style
    (camelCase, PascalCase, snake, an ACRONYM), a number or a version (`v2`, `L6`, `blake2b`), every
    word at least three letters long. A random token breaks that somewhere (`Vy`, `QgD`, `Pp`)."""
    segments = [seg for seg in re.split(r"[^A-Za-z0-9]+", value) if seg]
    written = [_conventional_segment(seg) for seg in segments]
    if all(written):
        return True
    # words with one odd piece (PuTTY-User-Key-File-3): most pieces of a kebab or dotted name are words
    return len(segments) >= 3 and not re.search(r"[^\w.\-/: ]", value) and sum(written) >= 0.75 * len(segments)


_SHORT_WORDS = frozenset("is id to of in on at by db ok io ui os no up or if as be do go my an we me".split())


def _conventional_segment(segment: str) -> bool:
    if re.fullmatch(r"[A-Za-z]{0,2}\d+[a-z]?|\d+", segment):
        return True  # a number or a version: v2, L6, x86
    chunks = _CHUNKS.findall(segment)
    for i, chunk in enumerate(chunks):
        if chunk.isdigit() or chunk.lower() in _SHORT_WORDS:
            continue
        if chunk.isupper() and 2 <= len(chunk) <= 5 and (i == len(chunks) - 1 or chunks[i + 1][:1].isupper()):
            continue  # HTTP in HTTPDigestAuth, LM in Seq2SeqLM
        if len(chunk) < 3 and not (i > 0 and chunks[i - 1].isdigit() and i == len(chunks) - 1):
            return False  # a short word only as a version's suffix (blake2b); hex breaks this everywhere
    return True


def looks_random(value: str, strict: bool = False, min_len: int = 20) -> bool:
    """A credential by its shape alone: long, high-entropy, with letters and digits, not made of words
    (identifiers, paths, host names) and, when ``strict`` (no credential word near it), mixed enough
    that code and prose never look so; hex only with a vendor-like prefix (a bare hex string is a hash)."""
    v = value.strip("\"'`")
    if len(v) < (min_len if strict else 8):
        return False
    lower, upper = any(c.islower() for c in v), any(c.isupper() for c in v)
    if not any(c.isdigit() for c in v) and not (lower and upper):
        return False  # letters of one case and no digit: a word or a name (the cheap test first)
    if re.search(r"\s|://", v) or entropy(v) < 2.5 or is_placeholder(v):
        return False
    segments = [w for w in re.split(r"[^A-Za-z0-9]+", v) if w]
    if all(w.isalpha() or w.isdigit() for w in segments) and all(
            w.isdigit() or _is_word(w) or is_wordy(w) for w in segments):
        return False  # words, numbers and separators: a path, a host, an identifier
    if re.fullmatch(r"-{0,2}[A-Za-z_][\w.\-]*=.*", v):  # NAME=value: the value is judged by the assignment rules
        return False
    if re.fullmatch(r"[\w.\-/]*[A-Za-z]\w*\.[A-Za-z]{1,6}(?::\d+(?:-\d+)?)?", v) and not strict:
        return False  # a file and its line: README.md:380, pipeline/templates/dataset_card.md:72
    longest = max(re.findall(r"[A-Za-z0-9]+", v) or [""], key=len)
    digit_runs = len(re.findall(r"\d+", longest))  # F9dG5ourmeckaG4: random, though a run of it reads as English
    # the random part: what follows a vendor-like prefix of words (live_, access-production-, rnd_)
    prefixed = re.match(r"(?:[A-Za-z]{1,12}[_\-.])+(?=.*\d|[A-Z]{2})", v)
    rest = v[prefixed.end():] if prefixed and len(v) - prefixed.end() >= 16 else v
    letters = re.sub(r"[^A-Za-z]", "", rest)
    hexish = sum(c not in "abcdefABCDEF" for c in letters) <= 1  # hex letters spell English-like runs
    dense = len(rest) >= 24 and entropy(rest) >= 4.2 and re.search(r"[a-z]", rest) and re.search(r"[A-Z]", rest)
    if not hexish and not dense and word_share(rest) >= (0.5 if strict else 0.75) and not (digit_runs >= 3 and re.search(r"[a-z]", longest) and re.search(r"[A-Z]", longest)):
        return False
    body = re.sub(r"[^A-Za-z0-9]", "", rest) if prefixed else max(segments, key=len)
    has_digit, has_lower, has_upper = (any(f(c) for c in body) for f in (str.isdigit, str.islower, str.isupper))
    if not (has_lower or has_upper):
        return False
    if (re.fullmatch(r"[0-9a-fA-F]+", body) or hexish and prefixed) and (strict or len(body) < 16):
        return bool(strict and len(body) >= 24 and prefixed and not _HASH_PREFIX.match(v))
    if not strict:
        return (has_digit or (has_upper and has_lower)) and entropy(v) >= min(3.0, math.log2(len(v)) - 0.3) \
            and not is_wordy(v)
    if len(body) < min(16, min_len):
        return False
    if has_lower and has_upper:
        if not has_digit:  # letters only: only a long, mixed run that does not read as words
            return len(body) >= 20 and entropy(body) >= 3.8 and class_changes(body) >= 0.25 and word_share(body) < 0.3 \
                or len(body) >= 24 and entropy(body) >= 4.2
        changes = class_changes(body)
        return (entropy(body) >= 3.6 and changes >= 0.35) or (entropy(body) >= 4.0 and changes >= 0.28) \
            or (len(body) >= 24 and entropy(body) >= 4.2 and changes >= 0.2)
    if not has_digit or len(max(segments, key=len)) < 24:  # lower case and digits: one long run, not words and versions
        return False
    return len(body) >= 24 and entropy(body) >= 3.3 and sum(c.isdigit() for c in body) >= 3 and class_changes(body) >= 0.25


# an identifier made of words: userPassword2, db_password_2, DbPassword
def is_wordy(value: str) -> bool:
    """An identifier made of words (userPassword2, db_password_2, accessTkn, DB_PASSWORD): written by a
    person in one case convention, and reading mostly as English, or ALL_CAPS words."""
    if re.fullmatch(r"[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+", value):
        return all(_is_word(w) or w.isdigit() for w in value.split("_"))
    return is_conventional_name(value) and word_share(value) >= 0.5
_IDENTIFIER = re.compile(r"[A-Za-z_$][\w$]*(?:(?:\.|::|->)[A-Za-z_$][\w$]*)*")

# --- file kinds -------------------------------------------------------------------------------------

# in code, a bare word after `=` is a reference to a variable; in config it is the literal value
CODE_SUFFIXES = frozenset({
    ".py", ".pyi", ".js", ".jsx", ".mjs", ".cjs", ".ts", ".tsx", ".go", ".java", ".kt", ".kts", ".scala", ".rs", ".rb",
    ".php", ".cs", ".c", ".h", ".cc", ".cpp", ".cxx", ".hpp", ".hh", ".swift", ".m", ".mm", ".dart", ".lua", ".r",
    ".jl", ".ex", ".exs", ".clj", ".groovy", ".vue", ".svelte", ".fs", ".vb", ".pl", ".pm",
})
DOC_SUFFIXES = frozenset({".md", ".markdown", ".rst", ".txt", ".adoc", ".html", ".htm", ".tex", ".org"})


def file_kind(path: str) -> str:
    """'code', 'docs' or 'config' (everything else: YAML, JSON, INI, shell, Dockerfile, XML, SQL, ...)."""
    name = path.split("#", 1)[0]
    suffix = PurePosixPath(name).suffix.lower()
    if "#" in path and path.rsplit("#", 1)[1] not in ("markdown", "raw"):
        return "code"  # a notebook's code cells
    if suffix in CODE_SUFFIXES:
        return "code"
    if suffix in DOC_SUFFIXES or ("#" in path):
        return "docs"
    return "config"


# --- the rules --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Context:
    text: str
    kind: str  # file_kind of the path


@dataclass(frozen=True)
class Rule:
    id: str
    what: str  # one line for the README's table
    keywords: tuple[str, ...]  # the (lower-cased) text must contain one of these for the rule to run
    pattern: re.Pattern
    check: Callable[[re.Match, Context], bool] | None = None
    placeholders: bool | str = True  # apply is_placeholder to the value; "narrow": says_placeholder
    extract: Callable[[re.Match, Context], Iterator[tuple[int, int]]] | None = None  # spans other than group v
    # where to try the pattern: at the start of the name (or line) around each hit of ``anchor``, instead
    # of at every position of the text (the rules that look for a secret word run 3-5x faster so)
    anchor: re.Pattern | None = None
    anchor_to: str = "name"  # "name": back over the characters of a name; "line": to the line's start


_SCHEME = re.compile(r"(?i)(?:bearer|basic|token|apikey|api-key|digest|negotiate|ntlm|hmac|sso-key)\s+(?=\S)")


def _strip_scheme(text: str, start: int, end: int) -> tuple[int, int]:
    """ "Bearer abc" as a value: the credential is what follows the scheme."""
    m = _SCHEME.match(text, start, end)
    return (m.end(), end) if m else (start, end)


def _line_start(text: str, pos: int) -> int:
    return text.rfind("\n", 0, pos) + 1


def _inside_string(text: str, pos: int) -> bool:
    """Whether ``pos`` lies inside a quoted string on its line (an odd number of quotes before it)."""
    before = text[_line_start(text, pos):pos]
    return before.count('"') % 2 == 1 or before.count("'") % 2 == 1 or before.count("`") % 2 == 1


def _name_starts_line(text: str, pos: int) -> bool:
    before = text[_line_start(text, pos):pos]
    return re.fullmatch(r"\s*(?:[-*>]\s+|\$\s+|export\s+|set\s+|ENV\s+|ARG\s+|#\s*)?[\"']?", before) is not None


def _is_quoted(m: re.Match) -> bool:
    return any(v is not None for k, v in m.groupdict().items() if k.startswith("q") and k != "qname")


def _val(m: re.Match) -> str:
    """The matched value, quoted (group ``v``) or bare (group ``b``)."""
    span = _value_span(m)
    return m.string[span[0]:span[1]] if span else ""


def _literal_value(m: re.Match, ctx: Context) -> bool:
    """A quoted value is a literal anywhere (a word with spaces only after an auth scheme, or as a seed
    phrase); a bare one in config or in a string of code, and in docs after `=` or at the start of a
    line; never a word of prose, nor (in code and docs) a variable such as `settings.TOKEN` or
    `user_password`, unless it looks random."""
    value = _val(m)
    if _is_quoted(m):
        if not re.search(r"\s", value.strip()) or _SCHEME.match(value):
            return not is_wordlike(value)
        name = m.groupdict().get("name") or ""
        return bool(re.search(r"(?i)mnemonic|phrase", name)) and len(value.split()) >= 12
    pos = m.start("b")
    if is_wordlike(value) or re.fullmatch(r"[\d.]+", value):
        return False
    if ctx.kind == "config" or _inside_string(ctx.text, pos):
        return True
    if ctx.kind == "docs":
        op = m.groupdict().get("op") or "="
        if ":" in op and not _name_starts_line(ctx.text, m.start("name")):
            return False
    if not _IDENTIFIER.fullmatch(value):
        return True
    if "." in value or "::" in value or "->" in value:
        return False  # settings.CLIENT_SECRET, process.env.TOKEN: a reference
    if ctx.kind == "docs":  # docs show values: a name there is a variable only in snake or UPPER case (confirm_password)
        return not ((value.islower() or value.isupper()) and (is_wordy(value) or "_" in value))
    return not is_wordy(value) and looks_random(value) and len(value) >= 12  # code names variables


def _named(m: re.Match, ctx: Context) -> bool:
    return is_secret_name(m.group("name")) and _literal_value(m, ctx)


# a value: quoted (group q is its quote), or bare up to a delimiter
_QUOTED = r"(?P<e>\\?)(?P<q>[\"'`])(?P<v>(?:(?!(?P=e)(?P=q))[^\n\\]|\\.){4,400}?)(?P=e)(?P=q)"
_BARE_CHARS = r"[^\s\"'`;&,()\[\]{}<>|]"
_BARE = (rf"(?P<b>(?:{_BARE_CHARS}|[;&,)\]}}](?![\s\"'`<>|;&,)\]}}]|$)){{4,400}}?)"
         rf"(?=$|[\s\"'`;&,)\]}}<>|])")
_VALUE = rf"(?:[rRbBuUfF@$]{{0,2}}{_QUOTED}|(?![\"'`]){_BARE})"
# a name: letters of any script, digits, _ - . $ (PHP's $dbPassword, Ruby's config.secret_key_base)
_NAME = r"(?P<name>[^\W\d][\w.$\-]{0,80}?)"
_SECRETISH = r"(?=[\w.$\-]*?(?i:pass|pwd|pw\b|secret|token|key|auth|cred|contrase|senha|pat\b|sig\b|mnemonic|phrase))"

RULES: list[Rule] = [
    Rule("secret_assignment",
         "a secret-named name (any case style, any script) assigned a literal: `=`, `:`, `:=`, `=>`, `==`, "
         "typed declarations (`const apiKey: string =`, `val x: String =`, `API_KEY: &str =`, Go `x string =`)",
         ("pass", "pwd", "pw", "secret", "token", "key", "auth", "cred", "contrase", "senha", "pat", "sig", "mnemonic", "phrase"),
         re.compile(rf"(?<![\w$\-]){_SECRETISH}{_NAME}[\"'`\]]?[ \t]*"
                    rf"(?:(?::[ \t]*[\w&'<>\[\]., ?*]{{1,40}}?[ \t]*)?(?P<op>:=|=>|===?|\?=|\|\|=|\?\?=|<-|=|:(?!:))"
                    rf"|[ \t]+[\w.*\[\]]{{1,30}}[ \t]*(?P<goop>=))[ \t]*"
                    rf"(?:new[ \t]+)?(?:[\w:.]{{0,30}}(?:String|Secret\w*|str|bytes|from|b64decode|Password\w*|Credential\w*)\((?=[ \t]*[rRbBuUfF@$]{{0,2}}\\?[\"'`]))?[ \t]*{_VALUE}"),
         _named, anchor=re.compile(r"(?i)pass|pwd|pw\b|secret|token|key|auth|cred|contrase|senha|pat\b|sig\b|mnemonic|phrase")),
    Rule("yaml_block_secret",
         "a secret-named YAML key whose value is a block scalar (`password: |` / `>-`, value on the next lines)",
         ("pass", "pwd", "secret", "token", "key", "auth", "cred"),
         re.compile(r"(?m)^(?P<ind>[ \t]*)(?:-[ \t]+)?[\"']?(?P<name>[^\W\d][\w.\-]*)[\"']?[ \t]*:[ \t]*[|>][-+0-9]*[ \t]*\n"
                    r"(?:[ \t]*\n)*(?P=ind)[ \t]+(?P<v>\S[^\n]*)"),
         lambda m, ctx: is_secret_name(m.group("name"))),
    Rule("name_value_pair",
         "a name/value pair whose name is secret-like: k8s `- name: DB_PASSWORD` / `value: ...`, Postman "
         "`{\"key\": \"Authorization\", \"value\": ...}`, XML `<add key=\"ApiKey\" value=\"...\"/>`",
         ("value",),
         re.compile(r"(?i)[\"']?\b(?:name|key|param|parameter|property)[\"']?[ \t]*[:=][ \t]*[\"']?(?P<name>[^\W\d][\w.\-]*)[\"']?"
                    rf"[ \t]*[,;]?[ \t]*(?:\n[ \t]*)?[\"']?value[\"']?[ \t]*[:=][ \t]*{_VALUE}"),
         lambda m, ctx: is_secret_name(m.group("name")) and (_is_quoted(m) or ctx.kind != "code")),
    Rule("xml_element_secret",
         "a secret-named XML/HTML element: `<password>...</password>`, `<apiKey>...</apiKey>`",
         ("pass", "pwd", "secret", "token", "key", "auth", "cred"),
         re.compile(r"<(?P<name>[^\W\d][\w.:\-]*)(?:\s[^<>]*)?>[ \t]*(?P<v>[^<>\n]{4,400}?)[ \t]*</(?P=name)>"),
         lambda m, ctx: is_secret_name(m.group("name").rsplit(":", 1)[-1])),
    Rule("define_secret",
         "a secret-named constant defined without `=`: C `#define API_KEY \"...\"`, PHP `define('DB_PASSWORD', '...')`, "
         "Dockerfile `ENV TOKEN value`, `setenv(\"TOKEN\", \"...\")`, `config.set(\"api_key\", \"...\")`",
         ("pass", "pwd", "secret", "token", "key", "auth", "cred"),
         re.compile(rf"(?:(?m:^[ \t]*#[ \t]*define|^[ \t]*(?:ENV|ARG))[ \t]+{_NAME}[ \t]+{_VALUE}"
                    r"|[\"'](?P<qname>[^\W\d][\w.\-]*)[\"'][ \t]*,[ \t]*\\?(?P<q2>[\"'])(?P<v2>[^\"'\n]{4,400}?)\\?(?P=q2))"),
         lambda m, ctx: is_secret_name(m.group("name") or m.group("qname"))
         and (_is_quoted(m) or ctx.kind != "code") and not is_wordlike(_val(m))
         and (not re.search(r"\s", _val(m).strip()) or _SCHEME.match(_val(m)) is not None)),
    Rule("login_call",
         "passwords passed positionally to a login or connect call: `server.login(\"user\", \"...\")`, "
         "`getConnection(url, \"user\", \"...\")`, `mysqli_connect(h, u, \"...\")`, `basic_auth(\"u\", Some(\"...\"))`, "
         "`NetworkCredential(u, \"...\")`, `Net::SMTP.start(..., \"...\", :login)`",
         ("login", "logon", "auth", "connect", "credential", "signin", "sign_in", "smtp", "pdo", "password"),
         re.compile(r"(?i)\b(?:[\w.:]*(?:login|logon|log_in|signin|sign_in|authenticat\w*|basic_?auth\w*|auth|credentials?|"
                    r"passwordauthentication|networkcredential|connect\w*|getconnection|pdo|smtp\w*\.start|set_?password|"
                    r"with_?password|password)[\w.:]*)[ \t]*(?:=[ \t]*)?\((?P<v>[^\n]*)"),
         None, placeholders=False, extract=lambda m, ctx: _call_passwords(m)),
    Rule("netrc_password",
         "netrc / pgpass style credentials: `machine h login u password ...`, `host:5432:db:user:...`",
         ("password", "5432", "3306"),
         re.compile(r"(?im)(?:\blogin[ \t]+\S+[ \t]+password[ \t]+|^[ \t]*password[ \t]+(?=\S+[ \t]*$))"
                    r"[\"']?(?P<v>[^\s\"']{4,200})"
                    r"|(?m:^)[\w.\-*]+:(?:\d+|\*):[\w\-*]+:[\w\-.@*]+:(?P<v2>\S{4,200})(?m:$)"),
         lambda m, ctx: not is_wordlike(_val(m))),
    Rule("sql_password",
         "SQL passwords: `IDENTIFIED BY '...'`, `WITH PASSWORD '...'`, `PASSWORD('...')`",
         ("identified", "password"),
         re.compile(r"(?i)\b(?:identified[ \t]+(?:with[ \t]+\w+[ \t]+)?by|password|passwd|passphrase)"
                    rf"[ \t]*(?:=[ \t]*)?\(?[ \t]*{_QUOTED}"),
         lambda m, ctx: not re.search(r"\s", m.group("v"))),
    Rule("password_flag",
         "a secret-named command-line flag with its value: `--password x`, `--token=x`, `--requirepass x`, "
         "`-storepass x`, `--from-literal=password=x`",
         ("--", "-storepass", "-keypass", "-srcstorepass", "-deststorepass"),
         re.compile(rf"(?<![\w\-])-{{1,2}}(?P<name>[A-Za-z][\w.\-]*)(?:=|[ \t]+)(?![\-\\])(?:{_QUOTED}|{_BARE})"),
         lambda m, ctx: is_secret_name(m.group("name")) and not is_wordlike(_val(m)) and _literal_value(m, ctx)),
    Rule("cli_password",
         "passwords of common command lines: `mysql -p...`, `sshpass -p`, `docker login -p`, `redis-cli -a`, "
         "`sqlcmd -P`, `ldapsearch -w`, `smbclient -U user%...`, `zip -P`, `7z -p...`, `openssl ... pass:...`, "
         "`htpasswd -b file user ...`",
         ("mysql", "mariadb", "sshpass", "login", "redis-cli", "sqlcmd", "bcp", "ldap", "smbclient", "rpcclient", "zip",
          "7z", "pass:", "htpasswd", "ipmitool", "mongo", "rabbitmqctl", "/p:", "/pass", "userpwd"),
         re.compile(r"\b(?:"
                    r"(?:mysql\w*|mariadb\w*)\b[^\n|;&]*?(?<![\w\-])-p(?P<q0>[\"']?)(?P<v0>[^\s\"']{3,200})"
                    r"|(?:sshpass|mongo\w*|(?:docker|podman|nerdctl|buildah|skopeo|oras|helm[ \t]+registry|crane[ \t]+auth|"
                    r"regctl[ \t]+registry)[ \t]+login)\b[^\n|;&]*?(?<![\w\-])-p[ \t]+[\"']?(?P<v1>[^\s\"']{3,200})"
                    r"|redis-cli\b[^\n|;&]*?(?<![\w\-])-a[ \t]+[\"']?(?P<v2>[^\s\"']{3,200})"
                    r"|(?:sqlcmd|bcp|zip|unzip|ipmitool)\b[^\n|;&]*?(?<![\w\-])-P[ \t]*[\"']?(?P<v3>[^\s\"']{3,200})"
                    r"|ldap\w+\b[^\n|;&]*?(?<![\w\-])-w[ \t]+[\"']?(?P<v4>[^\s\"']{3,200})"
                    r"|(?:smbclient|rpcclient|smbmap|smbget)\b[^\n|;&]*?-U[ \t]*[\"']?[^\s%\"']+%(?P<v5>[^\s\"']{3,200})"
                    r"|7za?\b[^\n|;&]*?(?<![\w\-])-p(?P<v6>[^\s\"']{3,200})"
                    r"|htpasswd\b[^\n|;&]*?(?<![\w\-])-\w*b\w*[ \t]+(?:-\w+[ \t]+)*\S+[ \t]+\S+[ \t]+[\"']?(?P<v7>[^\s\"']{3,200})"
                    r"|rabbitmqctl\b[^\n|;&]*?\b(?:add_user|change_password)[ \t]+\S+[ \t]+[\"']?(?P<v9>[^\s\"']{3,200})"
                    r"|(?:az[ \t]+login|mysqladmin)\b[^\n|;&]*?(?:(?<![\w\-])-p|\bpassword)[ \t]+[\"']?(?P<v5b>[^\s\"']{3,200})"
                    r")|(?<![\w\-])pass:(?P<v8>[^\s\"']{3,200})"
                    r"|(?<![\w/])/(?:p|pass|password):(?P<t>[^\s\"']{3,200})"
                    r"|USERPWD[\"']?[ \t]*,[ \t]*[\"'](?P<v7b>[^\"'\n]{4,200})[\"']"),
         None),
    Rule("user_password_flag",
         "`user:password` given to a flag: `curl -u` / `-U` / `--user` / `--proxy-user`, httpie `-a` / `--auth`",
         ("-u", "--user", "--proxy-user", "-a", "--auth"),
         re.compile(r"\bcurl\b[^\n]*?(?<![\w\-])(?:-[uU]|--(?:proxy-)?user\b)[\s\"',=]*[^\s:\"',]*:(?P<v>[^\s\"']+)"
                    r"|(?<![\w\-])--(?:proxy-)?user(?:=|\s+)[\"']?[^\s:\"']*:(?P<v2>[^\s\"']+)"
                    r"|\b(?:https?|httpie)\b[^\n]*?(?<![\w\-])(?:-a|--auth\b)[\s\"',=]*[^\s:\"',]*:(?P<v3>[^\s\"']+)"),
         None),
    Rule("env_config_set",
         "a secret set by a CLI's config command: `aws configure set aws_secret_access_key ...`, "
         "`git config x.token ...`, `npm config set //registry/:_authToken ...`, `gh secret set NAME --body ...`",
         ("set", "config", "secret"),
         re.compile(r"\b(?:configure[ \t]+set|config[ \t]+(?:set[ \t]+)?(?:--[\w\-]+[ \t]+)*|secret[ \t]+set)[ \t]*"
                    rf"[\"']?(?P<name>[^\s\"'=]+)[\"']?[ \t]+(?:(?:--body|-b)[ \t]+)?(?:{_QUOTED}|{_BARE})"),
         lambda m, ctx: is_secret_name(re.split(r"[/:]", m.group("name"))[-1]) and not is_wordlike(_val(m))),
    Rule("secret_header",
         "a credential in a custom header: `X-API-Key: ...`, `X-Auth-Token: ...`, `Private-Token: ...`, "
         "`X-Shopify-Access-Token: ...`, `Ocp-Apim-Subscription-Key: ...` (raw, in curl -H, in a dict or JSON)",
         ("-key", "-token", "-secret", "-auth", "-signature", "-password"),
         re.compile(rf"(?<![\w\-])(?P<name>[A-Za-z][A-Za-z0-9]*(?:-[A-Za-z0-9]+)+)[\"']?[ \t]*:[ \t]*{_VALUE}"),
         lambda m, ctx: is_secret_name(m.group("name")) and not is_wordlike(_val(m)) and _literal_value(m, ctx)),
    Rule("http_authorization",
         "the credential of an `Authorization:` / `Proxy-Authorization:` header of any scheme (Basic, Bearer, "
         "Token, ...), token68 with any padding, in any quoting; Digest / AWS4 parameter lists whole",
         ("authorization",),
         re.compile(r"(?i)(?<![\w\-])(?:proxy-)?authorization[\"']?\s*[:=]\s*[\"']?(?:"
                    r"(?!digest\b)[A-Za-z][\w.\-]*[ \t]+(?P<v>[A-Za-z0-9._~+/\-]{4,}=*)(?![\w.~+/\-=])"
                    r"|[A-Za-z][\w.\-]*[ \t]+(?P<v2>(?:[\w\-]+=(?:\"[^\"\n]*\"|[^\s,\"']+)[ \t,]*)+))"),
         None, placeholders="narrow"),
    Rule("url_userinfo",
         "the password of `scheme://user:password@host` (the user may be empty: `redis://:pw@host`), and a token "
         "used as the user (`https://<token>@github.com`)",
         ("://",),
         re.compile(r"(?i)\b[a-z][a-z0-9+.\-]*://(?:[^\s:/@'\"<>`]*:(?P<v>[^\s@/'\"<>`]{3,300})"
                    r"|(?P<t>[A-Za-z0-9_\-.~]{20,300}))@(?=[\w\[.\-])"),
         None),
    Rule("dsn_userinfo",
         "`user:password@host` without a scheme, as DSNs write it (Go's `user:pw@tcp(host:3306)/db`)",
         ("@",),
         re.compile(r"(?<![\w:/.\-])[\w.\-]{1,64}:(?P<v>[^\s:@/\"'`]{4,200})@(?P<proto>(?:tcp|udp|unix)\()?[\w\[.\-]"),
         lambda m, ctx: looks_random(m.group("v")) or (m.group("proto") is not None and not is_wordlike(m.group("v")))),
    Rule("url_parameter",
         "a key=value pair inside a URL or a connection string whose name is a credential: `?api_key=`, `&sig=`, "
         "`?key=`, `;Password=`, `AccountKey=`, `SharedAccessKey=`, JDBC `&password=`",
         ("=",),
         re.compile(r"(?i)(?P<pre>[?&;])(?P<name>[A-Za-z][\w.\-]{0,40})[ \t]*=[ \t]*(?P<v>[^&;#\s\"'<>`]{4,400})"),
         lambda m, ctx: m.group("pre") and (is_secret_name(m.group("name")) or looks_random(m.group("v"))
                                            or m.group("name").lower() in ("key", "sig", "signature", "appid"))),
    Rule("base64_credentials",
         "base64 that decodes to `user:password`, a private key or a PuTTY key (docker config.json `auth`, "
         "kubeconfig `client-key-data`, `Basic` credentials outside a header)",
         ("",),
         re.compile(r"(?<![A-Za-z0-9+/=\-_])(?P<v>(?:[A-Za-z0-9+/]{4}){3,}(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?)"
                    r"(?![A-Za-z0-9+/=\-_])"),
         lambda m, ctx: _decodes_to_credentials(m.group("v")), placeholders=False),
    Rule("private_key_block",
         "every private-key armour, whole: PEM (RSA, EC, DSA, OpenSSH, PKCS#8, encrypted), PGP private key blocks, "
         "SSH2 (`---- BEGIN SSH2 ENCRYPTED PRIVATE KEY ----`), PuTTY v2/v3 (`PuTTY-User-Key-File-3:` .. `Private-MAC:`)",
         ("private key", "putty-user-key-file"),
         re.compile(r"(?s)(?P<v>-----BEGIN[ A-Z0-9]*PRIVATE KEY(?: BLOCK)?-----.{0,20000}?-----END[ A-Z0-9]*PRIVATE KEY(?: BLOCK)?-----"
                    r"|---- BEGIN SSH2 (?:ENCRYPTED )?PRIVATE KEY ----.{0,20000}?---- END SSH2 (?:ENCRYPTED )?PRIVATE KEY ----"
                    r"|PuTTY-User-Key-File-\d:.{0,20000}?Private-MAC:[^\n]*"
                    r"|(?:-----BEGIN[ A-Z0-9]*PRIVATE KEY(?: BLOCK)?-----|---- BEGIN SSH2 (?:ENCRYPTED )?PRIVATE KEY ----)"
                    r"(?:(?:\\n|\s)+(?:[A-Za-z0-9+/=]{16,}|[\w\-]+: [^\n\\]*))+)"),
         lambda m, ctx: re.search(r"[A-Za-z0-9+/]{16,}", m.group("v").replace("\\n", "\n")) is not None, placeholders=False),
    Rule("password_hash",
         "password hashes: htpasswd / crypt (`$apr1$`, `$2y$`, `$6$`, `$argon2id$`), `{SHA}` / `{SSHA}`, PostgreSQL "
         "SCRAM verifiers and `md5...` hashes",
         ("$", "{sha}", "{ssha", "md5"),
         re.compile(r"(?<![\w$])(?P<v>\$(?:apr1|2[abxy]?|1|5|6|y|argon2(?:id|i|d)|scrypt|pbkdf2[\w\-]*)\$[./A-Za-z0-9$=,+\-]{16,}"
                    r"|SCRAM-SHA-(?:1|256|512)\$\d+:[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+|(?<![\w])md5[0-9a-f]{32}(?![\w])"
                    r"|\{S?SHA(?:256|512)?\}[A-Za-z0-9+/]{20,}={0,2})"),
         None, placeholders=False),
    Rule("webhook_url",
         "webhook URLs that carry their secret: Discord, Slack, Microsoft Teams / Office 365, Mattermost (`/hooks/...`)",
         ("webhook", "hooks.slack", "/hooks/"),
         re.compile(r"https://(?:(?:ptb\.|canary\.)?discord(?:app)?\.com/api/webhooks/\d+/(?P<v>[\w\-]{20,})"
                    r"|hooks\.slack\.com/(?:services|workflows|triggers)/(?P<v2>[\w/\-]{20,})"
                    r"|[\w\-]+\.webhook\.office\.com/(?P<v3>[^\s\"'<>`]{20,})"
                    r"|outlook\.office(?:365)?\.com/webhook/(?P<v4>[^\s\"'<>`]{20,})"
                    r"|[\w.\-]+/hooks/(?P<v5>[A-Za-z0-9]{20,}))"),
         None, placeholders=False),
    Rule("config_directive",
         "a secret-named directive of a config file, without `=`: redis `requirepass ...` / `masterauth ...`, "
         "`auth_token ...`, and redis ACL passwords (`user u on >...`)",
         ("pass", "auth", "secret", "token", "user"),
         re.compile(r"(?m:^)[ \t]*(?:(?P<name>[A-Za-z][\w.\-]*)[ \t]+[\"']?(?P<v>[^\s\"']{4,400})[\"']?[ \t]*(?m:$)"
                    r"|user[ \t]+\S+[ \t]+[^\n]*?(?<=\s)>(?P<v2>[^\s]{4,400}))"),
         lambda m, ctx: ctx.kind != "code" and (m.group("v2") is not None or (
             is_secret_name(m.group("name")) and not is_wordlike(_val(m)) and not _IDENTIFIER.fullmatch(_val(m) or "")
             or is_secret_name(m.group("name") or "") and looks_random(_val(m))))),
    Rule("prose_secret",
         "a secret given in prose: `the password is ...`, `its token was ...`, `the API key of the robot is ...`",
         ("password", "passphrase", "secret", "token", "key", "pin"),
         re.compile(r"(?i)\b(?:password|passwd|passphrase|secret|token|api[ _\-]?key|access[ _\-]?key|pin)\b"
                    r"(?:[ \t]+(?:of|for)[ \t]+[\w' \-]{1,40}?)?[ \t]+(?:is|was|are|were|reads|becomes|set[ \t]+to|:)[ \t]+"
                    r"[`\"']?(?P<v>[^\s`\"']{6,400}?)[`\"']?(?=[\s,;)]|\.(?:\s|$)|$)"),
         lambda m, ctx: not is_wordlike(m.group("v")) and not is_wordy(m.group("v"))
         and not re.fullmatch(r"[\w\-]+(?:\.[\w\-]+)+", m.group("v")) or looks_random(m.group("v"))),
    Rule("userlist_password",
         "a PgBouncer-style userlist line: `\"user\" \"password\"` (plain, md5 or SCRAM)",
         ('"',),
         re.compile(r"(?m:^)[ \t]*\"[^\"\s]+\"[ \t]+\"(?P<v>[^\"\n]{4,400})\"[ \t]*(?m:$)"),
         lambda m, ctx: ctx.kind != "code" and not is_wordlike(m.group("v")) and not re.search(r"\s", m.group("v"))),
    Rule("credential_line_literal",
         "a random-looking literal on a line about credentials (a password, key, token, login, connect, auth "
         "or DSN word on it): positional passwords (`mysqli_connect(h, u, \"...\")`, `NetworkCredential(u, \"...\")`), "
         "keys in tables and prose (`secret CLA6...`), hex API keys (`wandb.login(key=\"...\")`)",
         ("pass", "pwd", "secret", "token", "key", "auth", "credential", "login", "connect", "smtp", "jdbc", "dsn",
          "bearer", "signing", "pdo", "mysql", "postgres", "dbname", "database", "redis", "mongo", "amqp"),
         re.compile(r"(?im)^(?=[^\n]*(?:pass|pwd|secret|token|key|auth|credential|login|connect|smtp|jdbc|dsn|bearer|signing|"
                    r"pdo|mysql|postgres|dbname|database|redis|mongo|amqp))"
                    r"(?P<v>[^\n]+)"),
         None, placeholders=False, extract=lambda m, ctx: _random_literals(m, ctx),
         anchor=re.compile(r"(?i)pass|pwd|secret|token|key|auth|credential|login|connect|smtp|jdbc|dsn|bearer|signing|"
                           r"pdo|mysql|postgres|dbname|database|redis|mongo|amqp"), anchor_to="line"),
    Rule("random_token",
         "a token that looks random wherever it stands (mixed case and digits, high entropy, frequent changes of "
         "character class), each piece of a URL path apart: the vendor formats no rule names yet (`nfp_...`, "
         "`rnd_...`, `tfp_...`, a key in a URL path); quoted literals by a lower bar",
         ("",),
         re.compile(r"(?<![\w\-+=.~%$@])(?P<v>[A-Za-z0-9][\w\-+/=.~]{10,}[\w\-+/=~])(?![\w\-+/=~@]|\.[\w\-+/=~])"),
         None, placeholders=False, extract=lambda m, ctx: _random_pieces(m)),
    Rule("jwt", "a JSON Web Token, whole (header, payload and signature)", ("eyj",),
         re.compile(r"(?<![\w\-.])(?P<v>eyJ[\w\-]{8,}\.eyJ[\w\-]{8,}\.[\w\-]{8,})"), None, placeholders=False),
]

# Tokens by their vendor's prefix: a backstop beside the catalog (which checks some formats' checksums
# and entropy, so it misses a few real shapes); each becomes a rule of its own, gated on its prefix.
VENDOR_TOKENS = [
    ("github_token", "GitHub tokens (classic, OAuth, app, refresh, fine-grained)", ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
     r"(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{30,}|github_pat_\w{30,}"),
    ("gitlab_token", "GitLab tokens (personal, deploy, runner, trigger, OAuth, feed ...)", ("gl",),
     r"gl(?:pat|dt|rt|ptt|cbt|oas|soat|ft|imt|agent|ffct|ptt|rtr)-[\w\-]{20,}"),
    ("slack_token", "Slack bot, user, app and config tokens", ("xox", "xapp-"), r"xox[abposre]-[\w\-]{10,}|xapp-[\w\-]{10,}"),
    ("stripe_key", "Stripe secret, restricted and publishable keys, webhook secrets, at any length", ("_live_", "_test_", "whsec_"),
     r"(?:sk|rk|pk)_(?:live|test)_\w{20,}|whsec_\w{20,}"),
    ("hugging_face_token", "Hugging Face user and organisation tokens", ("hf_", "api_org_"), r"hf_[A-Za-z0-9]{30,}|api_org_[A-Za-z0-9]{30,}"),
    ("npm_token", "npm access tokens", ("npm_",), r"npm_[A-Za-z0-9]{30,}"),
    ("pypi_token", "PyPI upload tokens", ("pypi-",), r"pypi-[\w\-]{50,}"),
    ("docker_hub_token", "Docker Hub personal and organisation access tokens", ("dckr_",), r"dckr_(?:pat|oat)_[\w\-]{20,}"),
    ("anthropic_key", "Anthropic API and admin keys", ("sk-ant-",), r"sk-ant-[\w\-]{20,}"),
    ("openai_key", "OpenAI project, service-account, admin and legacy keys; OpenRouter keys", ("sk-",),
     r"sk-(?:proj|svcacct|admin|or-v1)-[\w\-]{20,}|sk-[A-Za-z0-9]{32,}"),
    ("aws_access_key", "AWS access key ids (AKIA, ASIA, ...)", ("akia", "asia", "abia", "acca", "agpa", "aida", "aroa", "anpa", "anva", "apka"),
     r"(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AROA|ANPA|ANVA|APKA)[0-9A-Z]{16}"),
    ("alibaba_access_key", "Alibaba Cloud access key ids", ("ltai",), r"LTAI[A-Za-z0-9]{12,30}"),
    ("google_key", "Google API keys, OAuth client secrets and access tokens", ("aiza", "gocspx-", "ya29."),
     r"AIza[\w\-]{35}|GOCSPX-[\w\-]{20,}|ya29\.[\w\-]{20,}"),
    ("atlassian_token", "Atlassian API and Confluence tokens, Bitbucket app passwords", ("atatt3", "atctt3", "atbb"),
     r"AT[AC]TT3[\w=\-]{20,}|ATBB[A-Za-z0-9]{20,}"),
    ("linear_key", "Linear API and OAuth keys", ("lin_",), r"lin_(?:api|oauth)_[A-Za-z0-9]{20,}"),
    ("vault_token", "HashiCorp Vault service, batch and recovery tokens", ("hvs.", "hvb.", "hvr."), r"hv[sbr]\.[\w\-]{20,}"),
    ("databricks_token", "Databricks personal access tokens", ("dapi",), r"dapi[0-9a-f]{32}(?:-\d+)?"),
    ("supabase_key", "Supabase management and secret keys", ("sbp_", "sb_secret_"), r"sbp_[0-9a-f]{40}|sb_secret_[\w\-]{20,}"),
    ("new_relic_key", "New Relic user and ingest keys", ("nrak-", "nrii-"), r"NRAK-[A-Z0-9]{20,}|NRII-[\w\-]{20,}"),
    ("postman_key", "Postman API keys", ("pmak-",), r"PMAK-[0-9a-f]{24}-[0-9a-f]{34}"),
    ("pulumi_token", "Pulumi access tokens", ("pul-",), r"pul-[0-9a-f]{40}"),
    ("age_secret_key", "age encryption secret keys", ("age-secret-key-1",), r"AGE-SECRET-KEY-1[0-9A-Z]{50,}"),
    ("facebook_token", "Facebook (Meta) access tokens", ("eaa",), r"EAA[A-Za-z0-9]{30,}"),
    ("digitalocean_token", "DigitalOcean personal, OAuth and refresh tokens", ("_v1_",), r"do[opr]_v1_[0-9a-f]{64}"),
    ("mailgun_key", "Mailgun API keys", ("key-",), r"key-[0-9a-f]{32}"),
    ("mapbox_token", "Mapbox secret tokens", ("sk.eyj",), r"sk\.eyJ[\w.\-]{20,}"),
    ("shopify_token", "Shopify access tokens and shared secrets", ("shpat_", "shpss_", "shpca_", "shppa_"), r"shp(?:at|ss|ca|pa)_[0-9a-fA-F]{32}"),
    ("sendgrid_key", "SendGrid API keys", ("sg.",), r"SG\.[\w\-]{20,}\.[\w\-]{20,}"),
    ("grafana_token", "Grafana service-account and cloud tokens", ("glsa_", "glc_"), r"glsa_\w{32}_[0-9a-f]{8}|glc_[\w=+/]{30,}"),
    ("sentry_token", "Sentry user and org tokens", ("sntry",), r"sntry[su]_[\w=+/]{40,}"),
    ("discord_bot_token", "Discord bot tokens", (".",), r"[MNO][A-Za-z\d]{23,27}\.[\w\-]{6}\.[\w\-]{27,}"),
    ("azure_storage_key", "Azure storage account keys and SAS signatures in connection strings", ("accountkey=", "sharedaccesssignature="),
     r"AccountKey=[A-Za-z0-9+/]{40,}={0,2}|SharedAccessSignature=[^\s\"';]{20,}"),
    ("ethereum_private_key", "64-hex private keys written 0x... (Ethereum and other chains' wallets)", ("0x",),
     r"0x[0-9a-fA-F]{64}(?![0-9a-fA-F])"),
]
RULES += [Rule(slug, what, keywords, re.compile(rf"(?<![\w\-.])(?P<v>{pattern})"), None)
          for slug, what, keywords, pattern in VENDOR_TOKENS]

# rules whose type names what was found (a vendor's token, a key block); the others' findings are typed
# by whichever scanner names them more precisely
SPECIFIC_RULES = frozenset({"private_key_block", "webhook_url", "password_hash", "jwt", *(v[0] for v in VENDOR_TOKENS)})

# Python's re has no duplicate group names: rules with alternatives number their value groups v, v0..v9;
# `_value_span` takes whichever matched.
_VALUE_GROUPS = ("v", "b", "t", *(f"v{i}" for i in range(10)), "v5b", "v7b")


def _value_span(m: re.Match) -> tuple[int, int] | None:
    for name in _VALUE_GROUPS:
        if name in m.re.groupindex and m.group(name) is not None:
            return m.span(name)
    return None


_QUOTED_RE = re.compile(_QUOTED)
_BARE_END = re.compile(r"[\s\"'`<>]|$")


_BARE_TOKEN = re.compile(r"(?<![\w\-+/=.~%$@])[\w\-+/=.~]{12,400}(?![\w\-+/=~@]|\.[\w\-+/=~])")


def _random_literals(m: re.Match, ctx: Context) -> Iterator[tuple[int, int]]:
    """The random-looking literals of one line: quoted ones (and the tokens inside a quoted string) by the
    plain bar, bare tokens when they hold a digit too."""
    text, start, end = m.string, m.start("v"), m.end("v")
    for lit in _QUOTED_RE.finditer(text, start, end):
        if looks_random(lit.group("v")):
            yield _strip_scheme(text, *lit.span("v"))
    for tok in _BARE_TOKEN.finditer(text, start, end):
        value = tok.group(0)
        if looks_random(value) and (re.search(r"\d", value) or (
                re.fullmatch(r"[A-Za-z]+", value) and class_changes(value) >= 0.4 and word_share(value) < 0.3)):
            yield tok.span()


_HOST = re.compile(r"[a-z0-9\-]+(?:\.[a-z0-9\-]+)*\.[a-z]{2,24}(?::\d+)?|[a-z0-9\-.]+:\d+|[\w.+\-]+@[a-z0-9\-.]+")


def _call_passwords(m: re.Match) -> Iterator[tuple[int, int]]:
    """The quoted arguments of a login or connect call after its first (a user, a URL, a host): each one
    that is neither a word, a host nor a stand-in is the password."""
    literals = list(_QUOTED_RE.finditer(m.string, m.start("v"), m.end("v")))
    named = re.search(r"(?i)password|passwd|secret|token", m.string[m.start():m.start("v")])
    for lit in literals if named else literals[1:]:
        value = lit.group("v")
        plain_name = re.fullmatch(r"[\w.\-]+", value) and (value.islower() or value.isupper())  # svc_inventory, SUPPLIER
        if re.search(r"\s", value) or is_wordlike(value) or _HOST.fullmatch(value) or is_placeholder(value) \
                or (plain_name and (is_wordy(value) or not re.search(r"\d", value))):
            continue
        yield lit.span("v")


def _random_pieces(m: re.Match) -> Iterator[tuple[int, int]]:
    """A token that looks random by the strict bar, or else each piece of it between slashes (a URL path's
    segments); a quoted literal of 12 or more by a lower one."""
    value, start = m.group("v"), m.start("v")
    if looks_random(value, strict=True):
        yield m.span("v")
        return
    offset = 0
    for piece in value.split("/"):
        if len(piece) >= 16 and looks_random(piece, strict=True):
            yield start + offset, start + offset + len(piece)
        offset += len(piece) + 1
    text = m.string
    if start and text[start - 1] in "\"'`" and text[m.end("v"):m.end("v") + 1] == text[start - 1] and len(value) >= 12:
        if not re.fullmatch(r"[0-9a-fA-F]+", value) and looks_random(value, strict=True, min_len=12):
            yield m.span("v")


def _decodes_to_credentials(token: str) -> bool:
    """base64 of `user:password` (printable, one colon, a password of 4+), of a PEM private key, or of
    a PuTTY / OpenSSH key."""
    try:
        raw = base64.b64decode(token, validate=True)
    except (binascii.Error, ValueError):
        return False
    if b"PRIVATE KEY" in raw[:64] or raw.startswith((b"PuTTY-User-Key-File", b"openssh-key-v1")):
        return True
    try:
        decoded = raw.decode("ascii")
    except UnicodeDecodeError:
        return False
    m = re.fullmatch(r"([!-9;-~]{1,64}):([!-~]{4,128})", decoded)
    return m is not None and not is_placeholder(m.group(2))


_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.$-")


def _anchored(rule: Rule, text: str) -> Iterator[re.Match]:
    """The rule's matches that start at the name (or line) around a hit of its anchor, each start once."""
    tried: set[int] = set()
    for hit in rule.anchor.finditer(text):
        if rule.anchor_to == "line":
            starts = [_line_start(text, hit.start())]
        else:
            start = hit.start()
            while start > 0 and (text[start - 1] in _NAME_CHARS or text[start - 1].isalpha()) and hit.start() - start < 100:
                start -= 1
            while start < hit.start() and (text[start] in "-.$" or text[start].isdigit()):
                start += 1  # a name starts with a letter (`-Dspring.datasource.password=`, `$dbPassword`)
            starts = [start]
        for start in starts:
            if start in tried:
                break
            tried.add(start)
            m = rule.pattern.match(text, start)
            if m is not None:
                yield m
                break


def rule_spans(text: str, path: str) -> Iterator[tuple[str, int, int]]:
    """(rule id, start, end) of each value the rules find in ``text`` (character offsets)."""
    lowered = text.lower()
    ctx = Context(text, file_kind(path))
    for rule in RULES:
        if not any(k in lowered for k in rule.keywords):
            continue
        for m in (rule.pattern.finditer(text) if rule.anchor is None else _anchored(rule, text)):
            if rule.extract is not None:
                yield from ((rule.id, start, end) for start, end in rule.extract(m, ctx))
                continue
            span = _value_span(m)
            if span is None:
                continue
            start, end = _strip_scheme(text, *span)
            value = text[start:end]
            if not value or (rule.placeholders == "narrow" and says_placeholder(value)) \
                    or (rule.placeholders is True and is_placeholder(value)):
                continue
            if rule.check is None or rule.check(m, ctx):
                if m.groupdict().get("b") is not None and (ctx.kind != "code" or _inside_string(text, start)):
                    end = _BARE_END.search(text, end).start()  # a bare value runs to the next space or quote
                yield rule.id, start, end
