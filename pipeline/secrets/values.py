"""values: what a name or a value says about a secret, the predicates ``catalog`` and
``scanner`` judge findings by.

Names: is this name one that holds a secret (``DB_PASSWORD``, ``authToken``; not ``is_password`` or
``max_tokens``)? Values: does it say it is a stand-in (``$VAR``, ``<token>``, ``changeme``; by what it
says, never by its shape), is it credential-shaped, does it read as words (English letter pairs, a
conventional identifier) or look random? Each is a heuristic measured on the adversarial corpus
(tests/secrets/test_secret_corpus.py), not a proof.

Over 350 lines: three word tables (secret words, stand-in words, English letter pairs) beside the
predicates that read them, and the predicates call one another (``looks_random`` asks
``is_placeholder`` and ``is_wordy``; ``is_placeholder`` asks ``is_conventional_name``). The next cut,
if it grows: the reading of words (letter pairs, ``word_share``, conventional names) into a module of its own.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from urllib.parse import unquote

# --- names ------------------------------------------------------------------------------------------

# the last word of a name that holds a secret (DB_PASSWORD, smtpPass, GH_PAT, authToken, contraseña)
SECRET_WORDS = frozenset({
    "password", "passwd", "passwort", "pwd", "pass", "passphrase", "pw", "secret", "token", "credential",
    "credentials", "creds", "pat", "auth", "authorization", "contraseña", "contrasena", "motdepasse", "senha",
    "apikey", "secretkey", "privatekey", "accesskey", "authkey", "authtoken", "accesstoken", "apitoken",
    "clientsecret", "signingkey", "encryptionkey", "masterkey", "sessionkey", "requirepass", "masterauth",
    "storepass", "keypass", "srcstorepass", "deststorepass", "srckeypass", "destkeypass", "dbpass", "sig",
    "mnemonic", "userpwd", "psk", "authtok", "setcookie", "salt", "keystore", "passwoord", "wachtwoord",
    "haslo", "hasło", "heslo", "salasana", "lösenord", "losenord", "passord", "adgangskode", "jelszo", "jelszó", "sifre",
    "şifre", "пароль", "密码", "密碼", "パスワード", "비밀번호", "katasandi", "parol", "lozinka", "geslo",
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
# (a WordPress salt) holds `<ab1>`, `%d`, `{22}` or `[^x]` by chance. An ellipsis marks a stand-in only
# where it cuts a value short (`sk-proj-abc...`): 12 characters and more before it are a secret's own; so
# does a mask of three stars (`sk-***`, but not fifteen random characters before them).
_SYNTAX_MARKS = re.compile(
    r"\$\{[A-Za-z_][\w.:\-]*\}|\$\([A-Za-z_][\w .\-]*\)|\{\{[^{}]*\}\}|\{%[^%]*%\}|%\([A-Za-z_]\w*\)[sdr]|"
    r"(?:^|[\s'\"=:(])%[sd](?:$|[\s'\")])|<[A-Za-z_][\w\- .]{2,}>|^\$[A-Z_][A-Z0-9_]*$|^%[A-Z_][A-Z0-9_]*%$|"
    r"^@[\w.\-]+@$|^\$[A-Za-z_][\w.\-]*\$$|^\[[A-Za-z_ \-]*\]$|^\{[\w\[\]'\".+ \-]*\}?$|"
    r"\(\?[:P!=<]|\[\^[\\\w\s\-]*\]|\[[^\]]*(?:A-Z|a-z|0-9)[^\]]*\]|\{\d+,?\d*\}|"
    r"^\*\.[a-z0-9\-]+(?:\.[a-z0-9\-]+)*$|^\*\*(?:/[\w.*\-]*)*$|/\*\*$|/\*\*/|^(?:\.\.\.|…).{0,11}$|^.{0,11}(?:\.\.\.|…)$|^\*{3}|^.{0,11}\*{3}$|"
    r"#{4}|^(?!\d{6,}$)[\d.:/\- ]+$"
)
# escapes and character classes mark code about values (a regex) even in symbol soup; a bare quantifier
# (`{22}`) only outside it (in _SYNTAX_MARKS), as a WordPress salt draws one by chance
_PLACEHOLDER_MARKS = re.compile(r"\\[nstdwbux]|\[[^\]]*(?:A-Z|a-z|0-9)[^\]]*\]")
# what a stand-in says in words: a marker word, or a run of x's (judged by _says_stand_in)
_STAND_IN_WORDS = re.compile(
    r"x{4,}|X{4,}|(?<![A-Za-z])(?:" + "|".join(f"{w}|{w.capitalize()}|{w.upper()}" for w in (
        "example", "sample", "placeholder", "changeme", "change_me", "change-me", "dummy", "redacted", "your_", "your-",
        "yourapi", "insert_", "insert-", "replaceme", "replace_me", "here", "fixme", "todo", "notreal", "not_real", "fake",
        "mock", "snip", "snipped", "truncated", "elided", "omitted")) + r")(?![a-z])"
)


_GLOB = re.compile(r"([\w\-/\\]*)\.\*|([a-z0-9]+(?:[_.\-][a-z0-9]+)*)\*")


def _is_glob(value: str) -> bool:
    """A pattern of names (`logs/.*`, `build*`, `pkg_cache*`): what comes before the wildcard is written
    in words. A random password ends in `.*` by chance (the corpus drew two in 1,800 seeds)."""
    m = _GLOB.fullmatch(value)
    return m is not None and is_conventional_name(m.group(1) or m.group(2) or "")


def _says_stand_in(value: str) -> bool:
    """A marker word (``EXAMPLE``, ``fake``, ``your_``) or a run of x's standing as a word of its own:
    a separator or an edge of the value on both sides (``sk_test_fake_key``, ``XXXX-XXXX``), or at one
    edge and not running on into letters of its own case (``AKIAIOSFODNN7EXAMPLE``, ``ExampleToken``);
    or eight x's and more anywhere (a masked token). Random tokens draw these words by chance: the
    corpus drew FAKE between random capitals in an age key, _Fake followed by a capital in a SendGrid
    key, XXXX at the end of one. Glued into the token so, the word says nothing: it is a credential."""
    for m in _STAND_IN_WORDS.finditer(value):
        word, start, end = m.group(), m.start(), m.end()
        after = value[end:end + 1]
        if word[0] in "xX" and len(word) >= 8:
            return True
        left = start == 0 or not value[start - 1].isalnum()
        right = end == len(value) or not after.isalnum() or not word[-1].isalnum()
        if word[0] in "xX":
            if left and right:  # XXXX-XXXX; a random token ending ...GXZXXXX is glued on its left
                return True
            continue
        glued = after.isalpha() and (word.isupper() or after.islower())  # FAKEL, Fakex: the run goes on
        if (left and right) or (start == 0 or end == len(value)) and not glued:
            return True
    return False


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
    "django", "flask", "rails", "foobar", "foobaz", "s3kr3t", "insecure", "unsafe", "supersecret", "topsecret", "master", "main", "blah", "db",
})
_WORD_SPLIT = re.compile(r"[^a-z0-9@]+")


def says_placeholder(value: str) -> bool:
    """The narrow test, for places where anything is a credential (after `Authorization: Basic`):
    only a template, a reference, a marker word or a stand-in word as the whole value."""
    v = value.strip().strip("\"'`")
    return len(v) < 4 or bool(_PLACEHOLDER_MARKS.search(v)) or _says_stand_in(v) or v.lower() in PLACEHOLDER_WORDS or _is_filler(v) or (
        not _is_soup(v) and bool(_SYNTAX_MARKS.search(v) or _is_glob(v)))


# a run of eight of one letter (`CHANGEMEaaaaaaaa`), a piece said three times over (`blahblahblah`): a filler typed
# by a person, never a draw
_FILLER = re.compile(r"([^\W\d])\1{7,}|^(.{2,8}?)\2{2,}$")


def _is_filler(value: str) -> bool:
    """A filler (see ``_FILLER``), or characters in the order of their code points, twelve or more (an alphabet or
    the punctuation written out, percent-encoded or not): a random draw of twelve is sorted once in 479 million."""
    if _FILLER.search(value):
        return True
    decoded = unquote(value)
    return len(decoded) >= 12 and list(decoded) == sorted(decoded)


# the whole value one interpolation of code (`#{Rack::...token(env['rack.session'])}`, `${{ secrets.X }}`), whatever
# punctuation the code inside holds (the symbol-soup guard would read it as a generated password)
_INTERPOLATION = re.compile(r"(?:#|\$|%)\{\{?[ \t]*[A-Za-z_][\w.:]*[^{}\n]*\}\}?")
_BYTE_ESCAPES = re.compile(r"(?:\\x[0-9a-fA-F]{2}){8,}")


def is_placeholder(value: str) -> bool:
    """A value that names where a credential comes from, or stands in for one, rather than being one."""
    v = value.strip().strip("\"'`")
    if _BYTE_ESCAPES.fullmatch(v):
        return False  # bytes written as escapes (b'\x9f\x1c...'): a key, not a regex
    if len(v) < 4 or _PLACEHOLDER_MARKS.search(v) or _says_stand_in(v) or len(set(v.lower())) <= 2 \
            or v.lower() in PLACEHOLDER_WORDS or _is_filler(v) or _INTERPOLATION.fullmatch(v):
        return True
    if not _is_soup(v) and (_SYNTAX_MARKS.search(v) or _is_glob(v)):
        return True
    if v.lower() in _SEQUENCE or v in _SEQUENCE[::-1] or v in _ALPHABETS:
        return True  # 0123456789abcdef, abcdefgh
    if re.fullmatch(r"[^\W_][^\W_]*(?:[_.\-][^\W_]+)*", v) and (v.lower() == v or v.upper() == v) and is_secret_name(v) \
            and not re.search(r"\d", v):
        return True  # the name of a secret, not its value: "db_password", "deststorepass"
    runs = re.findall(r"[a-z]+", v.lower())
    if runs and re.fullmatch(r"[A-Za-z0-9_.\-]+", v) and all(r in PLACEHOLDER_WORDS for r in runs):
        return True  # stand-in words and digits: password123, token_2, Secret-1
    # made of words: YOUR_API_KEY, GITHUB_TOKEN (the name of a variable), prod/db/password (the name of a
    # secret in a vault), password123, my-secret-key; a random value is not
    segments = [w for w in re.split(r"[^A-Za-z0-9]+", v) if w]
    if len(segments) > 1 and all(is_word(w) for w in segments):
        # ... but a diceware passphrase (kestrel-hazel-mulberry) is made of words too: it says nothing of secrets
        return any(w.lower() in PLACEHOLDER_WORDS for w in segments)
    words = [w for w in _WORD_SPLIT.split("-".join(name_words(v))) if w and not w.isdigit()]
    return bool(words) and all(w in PLACEHOLDER_WORDS for w in words)


_SEQUENCE = "0123456789abcdefghijklmnopqrstuvwxyz"
_ALPHABETS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/-._~"  # an alphabet, written out


def is_word(segment: str) -> bool:
    """One word: a stand-in's vocabulary, or a lower-case / Capitalised / UPPER-CASE pronounceable word."""
    if len(segment) < 2:
        return False
    # a stand-in's word written as one (ci, CI, Ci; `cI` is two random letters: a sweep drew `ITL,Awst,Viox!cI`)
    written = segment.islower() or segment.isupper() or segment.istitle()
    return segment.lower() in PLACEHOLDER_WORDS and written or bool(re.fullmatch(r"v?\d+|[a-z]\d", segment)) or bool(
        re.fullmatch(r"[A-Z]?[a-z]+|[A-Z]+", segment) and len(segment) >= 3 and is_wordlike(segment.lower())
        and re.search(r"[aeiouy]", segment.lower()))  # QHJ, three random capitals, is no word


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


# what names a hash or a revision: as a value's prefix (`sha256-...`) here, as its key (`"commit": "3f2a..."`) in
# catalog
HASH_WORDS = r"sha\d*|md5|blake2\w*|crc\d*|sri|commit|rev|revision|git|hash|digest|checksum|etag"
_HASH_PREFIX = re.compile(rf"(?i)^(?:{HASH_WORDS})[-_:]")


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


SHORT_WORDS = frozenset("is id to of in on at by db ok io ui os no up or if as be do go my an we me".split())


def _conventional_segment(segment: str) -> bool:
    if re.fullmatch(r"[A-Za-z]{0,2}\d+[a-z]?|\d+", segment):
        return True  # a number or a version: v2, L6, x86
    chunks = _CHUNKS.findall(segment)
    for i, chunk in enumerate(chunks):
        if chunk.isdigit() or chunk.lower() in SHORT_WORDS:
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
            w.isdigit() or is_word(w) or is_wordy(w) for w in segments):
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
        # hex has 16 symbols: a random 32 of them drew 2.99 bits (a PagerDuty key); the 2.5 bar above holds for it
        hex_bar = 2.5 if re.fullmatch(r"[0-9a-fA-F]+", v) else min(3.0, math.log2(len(v)) - 0.3)
        return (has_digit or (has_upper and has_lower)) and entropy(v) >= hex_bar \
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
        return all(is_word(w) or w.isdigit() for w in value.split("_"))
    return is_conventional_name(value) and word_share(value) >= 0.5


def is_wordy_strict(value: str) -> bool:
    """``is_wordy`` with most letters (70 %) in English runs: the bar beside a credential word, where a
    random password of 15-17 characters passes the plain one one time in a few hundred (runs such as
    Uttc, Essq, Ptia read as English)."""
    return is_wordy(value) and word_share(value) >= 0.7
IDENTIFIER = re.compile(r"[A-Za-z_$][\w$]*(?:(?:\.|::|->)[A-Za-z_$][\w$]*)*")
