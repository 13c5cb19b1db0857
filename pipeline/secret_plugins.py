"""detect-secrets plugins for formats its defaults miss.

Loaded by detect-secrets itself (``plugins_used: [{name, path: file://...}]``), so its filters,
reporting and line handling apply to these exactly as to its own detectors. Every regex yields
the secret *value* (the part to redact), never the surrounding key name.
"""

import re

from detect_secrets.plugins.base import RegexBasedDetector


class HuggingFaceTokenDetector(RegexBasedDetector):
    """Hugging Face user access tokens (hf_ + 34 letters and digits)."""

    secret_type = "Hugging Face Token"
    denylist = [re.compile(r"\b(hf_[A-Za-z0-9]{30,})\b")]


class AnthropicKeyDetector(RegexBasedDetector):
    """Anthropic API and admin keys (sk-ant-api03-..., sk-ant-admin01-...)."""

    secret_type = "Anthropic Key"
    denylist = [re.compile(r"\b(sk-ant-[a-z]+\d*-[A-Za-z0-9_\-]{20,})")]


class OpenAIProjectKeyDetector(RegexBasedDetector):
    """OpenAI project, service-account and admin keys, which lack the legacy T3BlbkFJ marker."""

    secret_type = "OpenAI Key"
    denylist = [
        re.compile(r"\b(sk-(?:proj|svcacct|admin)-[A-Za-z0-9_\-]{20,})"),
        re.compile(r"\b(sk-[A-Za-z0-9]{40,})\b"),
    ]


class GitHubFineGrainedTokenDetector(RegexBasedDetector):
    """GitHub fine-grained personal access tokens (github_pat_...)."""

    secret_type = "GitHub Fine-Grained Token"
    denylist = [re.compile(r"\b(github_pat_[A-Za-z0-9_]{22,})")]


class NpmAccessTokenDetector(RegexBasedDetector):
    """npm access tokens anywhere (the default plugin only sees them in .npmrc authToken lines)."""

    secret_type = "npm Token"
    denylist = [re.compile(r"\b(npm_[A-Za-z0-9]{36})\b")]


class UrlCredentialsDetector(RegexBasedDetector):
    """The password in scheme://user:password@host (databases, brokers, proxies, git remotes)."""

    secret_type = "URL Credentials"
    denylist = [re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s:/@'\"<>]+:([^\s@/'\"<>]{3,})@[^\s/'\"]")]


# A secret-sounding name, an assignment in any of Python, shell, .env, YAML or TOML syntax, then a
# value that is a literal: quoted (any 6+ characters) or bare (8+ characters with a digit, so that
# `token = tokenizer` or `password: str` are left alone). Placeholders (<...>, ${...}, $VAR) are not
# values, and nor are bracketed special tokens ([MASK]).
# The name must *end* in the secret word (DB_PASSWORD, api_token, SECRET_KEY), so `tokenizer=` or
# `pooling_mode_tokens:` are not names of secrets.
_NAME = r"[A-Za-z0-9_.\-]*(?:secret|passw(?:or)?d|pwd|token|api[_\-]?key|access[_\-]?key|auth[_\-]?key|private[_\-]?key|credentials?)(?:[_\-]?key)?"
_ASSIGN = r"[\"']?\s*(?:=|:=|:|=>)\s*"


class SecretAssignmentDetector(RegexBasedDetector):
    """`PASSWORD=...`, `api_key: ...`, `token = "..."`, `export SECRET=...`, `"secret": "..."`."""

    secret_type = "Secret Assignment"
    denylist = [
        re.compile(r"(?i)(?<![A-Za-z0-9])" + _NAME + _ASSIGN + r"[\"']([^\"'\s<>${}\[\]]{6,})[\"']"),
        re.compile(
            r"(?i)(?<![A-Za-z0-9])" + _NAME + _ASSIGN + r"(?![\"'<$])((?=[^\s]*\d)[^\s\"'<>(){}\[\],;#]{8,})\s*(?:#.*)?$"
        ),
    ]


# A value that names where a credential comes from rather than being one: `$TOKEN`, `${TOKEN}`,
# `<token>`, `{token}`, `%TOKEN%`, or an all-capitals placeholder such as `YOUR_API_TOKEN` / `XXXX`.
_NOT_A_VALUE = re.compile(r"^(?:[$<{%]|\*+$|\.{3}|[A-Z][A-Z0-9_]*$|x+$)")


class _CredentialDetector(RegexBasedDetector):
    """A regex detector whose matches are dropped when they are placeholders, not values."""

    denylist: list = []

    def analyze_string(self, string: str):
        for value in super().analyze_string(string):
            value = value.strip().rstrip(",")
            if len(value) >= 4 and not _NOT_A_VALUE.match(value):
                yield value


class HttpAuthorizationDetector(_CredentialDetector):
    """The credential of an `Authorization:` or `Proxy-Authorization:` header, whatever the scheme
    (Basic, Bearer, Token, ApiKey, AWS4-HMAC-SHA256, ...), in raw HTTP, curl `-H`, code dicts and
    JSON; for Digest, the whole parameter list (its `response` is a password hash)."""

    secret_type = "HTTP Authorization Credentials"
    _HEADER = r"(?i)(?<![\w\-])(?:proxy-)?authorization[\"']?\s*[:=]\s*[\"']?"
    denylist = [
        # a parameter list (Digest, AWS4-HMAC-SHA256 Credential=..., Signature=...): all of it
        re.compile(_HEADER + r"[A-Za-z][\w.\-]*\s+((?:[\w\-]+=(?:\"[^\"\n]*\"|[^\s,\"']+)[\s,]*)+)"),
        # a token68 credential (RFC 7235): Basic, Bearer, Token, ApiKey, ...
        re.compile(_HEADER + r"(?!digest\b)[A-Za-z][\w.\-]*\s+([A-Za-z0-9._~+/\-]+=*)(?![\w.~+/\-=])(?!(?<==)\")"),
    ]


# the user:password argument of a flag: optional quotes / list punctuation between flag and value
_USER_PASS = r"[\s\"',=]*[^\s:\"',]*:([^\s\"',]+)"


class CommandLineCredentialsDetector(_CredentialDetector):
    """Passwords given on a command line: `curl -u user:pw` / `--user` / `--proxy-user`,
    `wget --password=pw` / `--http-password` / `--ftp-password` / `--proxy-password`,
    httpie `-a user:pw` / `--auth`, and any tool's `--password pw`."""

    secret_type = "Command-Line Credentials"
    denylist = [
        re.compile(r"\bcurl\b[^\n]*?(?<![\w\-])(?:-[uU]|--(?:proxy-)?user\b)" + _USER_PASS),
        re.compile(r"(?<![\w\-])--(?:proxy-)?user(?:=|\s+)[\"']?[^\s:\"']*:([^\s\"',]+)"),
        re.compile(r"(?<![\w\-])--(?:http-|ftp-|proxy-)?passw(?:or)?d(?:=|\s+)[\"']?([^\s\"',]+)"),
        re.compile(r"\b(?:https?|httpie)\b[^\n]*?(?<![\w\-])(?:-a|--auth\b)" + _USER_PASS),
    ]
