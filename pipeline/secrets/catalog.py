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

Over 350 lines: the rule catalog is data (one entry per form, about 300 lines) beside the engine that
runs it; the predicates the rules call are in ``values``.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from .files import file_kind
from .values import (
    HASH_WORDS,
    IDENTIFIER,
    class_changes,
    is_placeholder,
    is_secret_name,
    is_wordlike,
    is_wordy,
    is_wordy_strict,
    looks_random,
    says_placeholder,
    word_share,
)

# --- the rules --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Context:
    text: str
    kind: str  # file_kind of the path


@dataclass(frozen=True)
class Rule:
    id: str
    what: str  # one line for the docs' rule table (docs/secrets.md)
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
    if not IDENTIFIER.fullmatch(value):
        return True
    if "." in value or "::" in value or "->" in value:
        return False  # settings.CLIENT_SECRET, process.env.TOKEN: a reference
    if ctx.kind == "docs":  # docs show values: a name there is a variable only in snake or UPPER case (confirm_password)
        return not ((value.islower() or value.isupper()) and (is_wordy(value) or "_" in value))
    return not is_wordy(value) and looks_random(value) and len(value) >= 12  # code names variables


def _named(m: re.Match, ctx: Context) -> bool:
    return is_secret_name(m.group("name")) and _literal_value(m, ctx)


# AWS access key ids: their prefixes (the rules' keywords) and the id itself
_AWS_KEY_IDS = ("akia", "asia", "abia", "acca", "agpa", "aida", "aroa", "anpa", "anva", "apka")
_AWS_KEY_ID = rf"(?:{'|'.join(k.upper() for k in _AWS_KEY_IDS)})[0-9A-Z]{{16}}"
# a value: quoted (group q is its quote), or bare up to a delimiter
_QUOTED = r"(?P<e>\\?)(?P<q>[\"'`])(?P<v>(?:(?!(?P=e)(?P=q))[^\n\\]|\\.){4,400}?)(?P=e)(?P=q)"
_BARE_CHARS = r"[^\s\"'`;&,()\[\]{}<>|]"
# `,` and `;` inside a value, alone or in a run (PGPASSWORD=a,,,b psql); a run of them before a space ends it
_BARE = (rf"(?P<b>(?:{_BARE_CHARS}|[;&,)\]}}]+(?![\s\"'`<>|;&,)\]}}]|$)){{4,400}}?)"
         rf"(?=$|[\s\"'`<>|]|[;&,)\]}}]+(?:[\s\"'`<>|]|$))")
_VALUE = rf"(?:[rRbBuUfF@$]{{0,2}}{_QUOTED}|(?![\"'`]){_BARE})"
# a name: letters of any script, digits, _ - . $ (PHP's $dbPassword, Ruby's config.secret_key_base)
_NAME = r"(?P<name>[^\W\d][\w.$\-]{0,80}?)"
_SECRETISH = r"(?=[\w.$\-]*?(?i:pass|pwd|pw\b|secret|token|key|auth|cred|contrase|senha|pat\b|sig\b|mnemonic|phrase|psk|setcookie|salt|hasl|heslo|salasana|l[öo]senord|adgangskode|jelsz|[sş]ifre|пароль|密[码碼]|パスワード|비밀번호|parol|lozinka|geslo|wachtwoord|katasandi))"

RULES: list[Rule] = [
    Rule("secret_assignment",
         "a secret-named name (any case style, any script) assigned a literal: `=`, `:`, `:=`, `=>`, `==`, "
         "typed declarations (`const apiKey: string =`, `val x: String =`, `API_KEY: &str =`, Go `x string =`), C# property "
         "initializers (`Secret { get; init; } =`)",
         ("pass", "pwd", "pw", "secret", "token", "key", "auth", "cred", "contrase", "senha", "pat", "sig", "mnemonic", "phrase",
          "psk", "setcookie", "salt", "hasl", "heslo", "salasana", "senord", "adgangskode", "jelsz", "ifre", "пароль", "密", "パスワード",
          "비밀번호", "parol", "lozinka", "geslo", "wachtwoord", "katasandi"),
         re.compile(rf"(?<![\w\-])(?<!\w\$){_SECRETISH}{_NAME}[\"'`\]]?[ \t]*"
                    rf"(?:(?::[ \t]*[\w&'<>\[\]., ?*]{{1,40}}?[ \t]*)?(?P<op>:=|=>|===?|\?=|\|\|=|\?\?=|<-|=|:(?!:))"
                    rf"|[ \t]+[\w.*\[\]]{{1,30}}[ \t]*(?P<goop>=)|[ \t]*\{{[ \t]*get;[\w; \t]{{0,30}}\}}[ \t]*=)[ \t]*"
                    rf"(?:new[ \t]+)?(?:[\w:.]{{0,30}}(?:String|Secret\w*|str|bytes|from|b64decode|Password\w*|Credential\w*)\((?=[ \t]*[rRbBuUfF@$]{{0,2}}\\?[\"'`]))?[ \t]*{_VALUE}"),
         _named, anchor=re.compile(r"(?i)pass|pwd|pw\b|secret|token|key|auth|cred|contrase|senha|pat\b|sig\b|mnemonic|phrase|psk|setcookie|salt|hasl|heslo|salasana|l[öo]senord|adgangskode|jelsz|[sş]ifre|пароль|密[码碼]|パスワード|비밀번호|parol|lozinka|geslo|wachtwoord|katasandi")),
    Rule("yaml_block_secret",
         "a secret-named YAML key whose value is a block scalar (`password: |` / `>-`, value on the next lines)",
         ("pass", "pwd", "secret", "token", "key", "auth", "cred"),
         re.compile(r"(?m)^(?P<ind>[ \t]*)(?:-[ \t]+)?[\"']?(?P<name>[^\W\d][\w.\-]*)[\"']?[ \t]*:[ \t]*[|>][-+0-9]*[ \t]*\n"
                    r"(?:[ \t]*\n)*(?P=ind)[ \t]+(?P<v>\S[^\n]*(?:\n(?P=ind)[ \t]+\S[^\n]*)*)"),
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
                    r"(?!digest\b)[A-Za-z][\w.\-]*[ \t]+(?P<v>(?:[A-Za-z0-9._~+/\-]|%[0-9A-Fa-f]{2}){4,}=*)(?![\w.~+/\-=%])"
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
                                            or m.group("name").lower() in ("key", "sig", "signature", "appid"))
         # a word or a few digits is a test's stand-in (`?api-key=rawr`, `&password=123`), not a credential
         and not (is_wordlike(m.group("v").rstrip(").,]")) or re.fullmatch(r"\d{1,5}", m.group("v").rstrip(").,]")))),
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
             is_secret_name(m.group("name")) and not is_wordlike(_val(m)) and not IDENTIFIER.fullmatch(_val(m) or "")
             or is_secret_name(m.group("name") or "") and (looks_random(_val(m)) or _mixed_password(_val(m)))))),
    Rule("prose_secret",
         "a secret given in prose: `the password is ...`, `its token was ...`, `the API key of the robot is ...`",
         ("password", "passphrase", "secret", "token", "key", "pin"),
         re.compile(r"(?i)\b(?:password|passwd|passphrase|secret|token|api[ _\-]?key|access[ _\-]?key|pin)\b"
                    r"(?:[ \t]+(?:of|for)[ \t]+[\w' \-]{1,40}?)?[ \t]+(?:is|was|are|were|reads|becomes|set[ \t]+to|:)[ \t]+"
                    r"[`\"']?(?P<v>[^\s`\"']{6,400}?)[`\"']?(?=[\s,;)]|\.(?:\s|$)|$)"),
         lambda m, ctx: not is_wordlike(m.group("v")) and not is_wordy_strict(m.group("v"))
         and not re.fullmatch(r"[\w\-]+(?:\.[\w\-]+)+", m.group("v")) or looks_random(m.group("v"))
         or _alnum_password(m.group("v"))),
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
    Rule("cfn_noecho_default",
         "the `Default:` of a CloudFormation parameter that is secret-named or marked `NoEcho: true`, a few lines below its name",
         ("default",),
         re.compile(r"(?m)^(?P<ind>[ \t]*)(?P<name>[A-Za-z][\w]*):[ \t]*\n(?P<body>(?:(?P=ind)[ \t]+\S[^\n]*\n){0,8}?)"
                    r"(?P=ind)[ \t]+Default:[ \t]*[\"']?(?P<v>[^\s\"'][^\n\"']{3,400}?)[\"']?[ \t]*$"),
         lambda m, ctx: is_secret_name(m.group("name")) or re.search(r"(?i)NoEcho:[ \t]*[\"']?true", m.group("body")) is not None),
    Rule("positional_password",
         "passwords by their place in a command or a credentials file: `net use Z: \\\\srv\\share <pw> /user:...`, an argv "
         "list `[\"-p\", \"<pw>\"]`, `ConvertTo-SecureString \"<pw>\" -AsPlainText`, chap-secrets `\"client\" * \"<pw>\" *`, "
         "dovecot `user:{PLAIN}<pw>`, `admin / <pw>`, a TOTP seed given to `pyotp.TOTP`",
         ("net use", "-p", "-w", "--password", "convertto-securestring", "*", "{plain}", "{clear", "/", "totp"),
         re.compile(r"(?i)\bnet[ \t]+use\b[^\n]*?\\\\\S+[ \t]+(?P<v>[^\s/\"'][^\s\"']{2,200})"
                    r"|[\"'](?:-p|-P|-w|--password|--pass|--passwd|-pass|--token|--secret)[\"'][ \t]*,[ \t]*[\"'](?P<v2>[^\"'\n]{3,200})[\"']"
                    r"|ConvertTo-SecureString[ \t]+(?:-String[ \t]+)?[\"'](?P<v3>[^\"'\n]{3,200})[\"'][^\n]*-AsPlainText"
                    r"|(?m:^)[ \t]*\"?[\w.@\-]+\"?[ \t]+\*[ \t]+\"(?P<v4>[^\"\n]{3,200})\"[ \t]+(?:\*|[\d.]+)"
                    r"|\{(?:plain|cleartext|clear)\}(?P<v5>[^\s:\"']{3,200})"
                    r"|\b(?:admin|root|user|login|username|administrator)[ \t]+/[ \t]+(?P<v6>[^\s<>\"'`]{6,200}?)(?=[ \t]*(?:-->|$|[\s,;)]))"
                    r"|\bTOTP\([ \t]*[\"'](?P<v7>[A-Z2-7]{16,128}=*)[\"']"),
         lambda m, ctx: not is_placeholder(_val(m)) and (m.group("v6") is None or _alnum_password(_val(m)) or looks_random(_val(m))),
         placeholders=False),
    Rule("recovery_codes",
         "a list of one-time recovery codes (`xxxxx-xxxxx` on four lines or more): every code",
         ("-",),
         re.compile(r"(?m)(?P<v>(?:^[ \t]*(?:[-*][ \t]+|\d+[.)][ \t]+)?`?[0-9a-zA-Z]{4,8}-[0-9a-zA-Z]{4,8}`?[ \t]*\n){4,})"),
         lambda m, ctx: sum(bool(re.search(r"[a-z]", c) and re.search(r"\d", c))
                            for c in re.findall(r"[0-9a-zA-Z]{4,8}-[0-9a-zA-Z]{4,8}", m.group("v"))) >= 3,
         placeholders=False),
    Rule("app_password",
         "an app password of four groups of four letters (Google, Apple): `app password: xxxx xxxx xxxx xxxx`",
         ("password",),
         re.compile(r"(?i)(?:app|application)[ \t_\-]?(?:specific[ \t_\-]?)?pass(?:word)?[^\n]{0,60}?[:=][ \t]*[\"'`]?"
                    r"(?P<v>[a-z]{4}([ \-])[a-z]{4}\2[a-z]{4}\2[a-z]{4})(?![a-z])"),
         lambda m, ctx: len(set(m.group("v"))) > 5),
    Rule("vault_unseal_key",
         "Vault's `operator init` output: unseal keys and recovery keys (`Unseal Key 1: ...`)",
         ("unseal key", "recovery key"),
         re.compile(r"(?i)\b(?:unseal|recovery)[ \t]+key[ \t]+\d+[ \t]*:[ \t]*(?P<v>[A-Za-z0-9+/]{20,}={0,2})"),
         None, placeholders=False),
    Rule("fernet_key",
         "a Fernet key (32 bytes, url-safe base64: 44 characters ending `=`) given to `Fernet(...)` or named as a key",
         ("fernet",),
         re.compile(r"(?i)fernet[^\n]{0,40}?[\"'](?P<v>[A-Za-z0-9_\-]{43}=)[\"']"),
         None, placeholders=False),
    Rule("armoured_key_material",
         "key material between armour markers of any name (`-----BEGIN OpenVPN Static key V1-----`), but certificates, "
         "public keys, signatures and messages",
         ("-----begin",),
         re.compile(r"-----BEGIN (?P<name>[^\n\-]{3,60})-----[ \t]*\n(?P<v>(?:[ \t]*[A-Za-z0-9+/=]{16,}[ \t]*\n)+)"
                    r"[ \t]*-----END (?P=name)-----"),
         lambda m, ctx: not re.search(r"(?i)certificate|public|signature|message|parameters|x509|pkcs7|crl|signed", m.group("name")),
         placeholders=False),
    Rule("wrapped_base64_block",
         "a wrapped base64 block (three full lines or more, then a shorter last one) under a key, keystore or secret name: "
         "every line, the short last one included",
         ("key", "secret", "store", "password", "token", "p12", "pfx", "jks"),
         re.compile(r"(?im)^(?P<head>[^\n]*(?:key|secret|store|password|token|p12|pfx|jks)[^\n]*)\n"
                    r"(?P<v>(?:[ \t]*(?P<full>[A-Za-z0-9+/]{40,120})[ \t]*\n)(?:[ \t]*[A-Za-z0-9+/]{40,120}[ \t]*\n){2,}"
                    r"[ \t]*[A-Za-z0-9+/]{1,120}={0,2}[ \t]*)$"),
         lambda m, ctx: not re.search(r"(?i)-----BEGIN[^\n]*(?:CERTIFICATE|PUBLIC)", m.group("head")),
         placeholders=False),
    Rule("random_token",
         "a token that looks random wherever it stands (mixed case and digits, high entropy, frequent changes of "
         "character class), each piece of a URL path apart: the vendor formats no rule names yet (`nfp_...`, "
         "`rnd_...`, `tfp_...`, a key in a URL path); quoted literals by a lower bar",
         ("",),
         re.compile(r"(?<![\w\-+=.~%$@])(?P<v>[A-Za-z0-9][\w\-+/=.~]{10,}[\w\-+/=~])(?![\w\-+/=~@]|\.[\w\-+/=~])"),
         None, placeholders=False, extract=lambda m, ctx: _random_pieces(m)),
    Rule("aws_secret_key",
         "an AWS secret access key (40 characters of base64) on the line of its access key id: a credentials CSV, "
         "`aws configure list`; a key whose slashes split it into pieces too short to look random alone",
         _AWS_KEY_IDS,
         re.compile(rf"(?m)^(?=[^\n]*(?<![A-Z0-9]){_AWS_KEY_ID}(?![0-9A-Z]))"
                    r"[^\n]*?(?<![A-Za-z0-9+/=])(?P<v>[A-Za-z0-9+/]{40})(?![A-Za-z0-9+/=])"),
         lambda m, ctx: bool(re.search(r"[a-z]", m.group("v")) and re.search(r"[A-Z]", m.group("v")))),
    Rule("algolia_api_key", "an Algolia API key given to the client beside its application id: "
         "`algoliasearch(\"APPID\", \"...\")`", ("algolia",),
         re.compile(r"(?i)algolia\w*\([ \t]*[\"'][A-Za-z0-9]{6,12}[\"'][ \t]*,[ \t]*[\"'](?P<v>[0-9a-f]{32})[\"']")),
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
    ("slack_token", "Slack bot, user, app and config tokens", ("xox", "xapp-"),
     r"xox[abposred]-(?:[\w\-]|%[0-9A-Fa-f]{2}){10,}|xapp-[\w\-]{10,}"),
    ("stripe_key", "Stripe secret, restricted and publishable keys, webhook secrets, at any length", ("_live_", "_test_", "whsec_"),
     r"(?:sk|rk|pk)_(?:live|test)_\w{20,}|whsec_\w{20,}"),
    ("hugging_face_token", "Hugging Face user and organisation tokens", ("hf_", "api_org_"), r"hf_[A-Za-z0-9]{30,}|api_org_[A-Za-z0-9]{30,}"),
    ("npm_token", "npm access tokens", ("npm_",), r"npm_[A-Za-z0-9]{30,}"),
    ("pypi_token", "PyPI upload tokens", ("pypi-",), r"pypi-[\w\-]{50,}"),
    ("docker_hub_token", "Docker Hub personal and organisation access tokens", ("dckr_",), r"dckr_(?:pat|oat)_[\w\-]{20,}"),
    ("anthropic_key", "Anthropic API and admin keys", ("sk-ant-",), r"sk-ant-[\w\-]{20,}"),
    ("openai_key", "OpenAI project, service-account, admin and legacy keys; OpenRouter keys", ("sk-",),
     r"sk-(?:proj|svcacct|admin|or-v1)-[\w\-]{20,}|sk-[A-Za-z0-9]{32,}"),
    ("aws_access_key", "AWS access key ids (AKIA, ASIA, ...)", _AWS_KEY_IDS, _AWS_KEY_ID),
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
    ("render_api_key", "Render API keys", ("rnd_",), r"rnd_[A-Za-z0-9]{24,}"),
    ("resend_api_key", "Resend API keys", ("re_",), r"re_[A-Za-z0-9]{8}_[A-Za-z0-9]{24,}"),
    ("telegram_bot_token", "Telegram bot tokens (the bot's id, a colon, 35 characters from AA)", (":aa",),
     r"\d{8,10}:AA[\w\-]{33}(?![\w\-])"),
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
    ("adafruit_io_key", "Adafruit IO keys", ("aio_",), r"aio_[A-Za-z0-9]{28}(?![A-Za-z0-9])"),
    ("ethereum_private_key", "64-hex private keys written 0x... (Ethereum and other chains' wallets)", ("0x",),
     r"0x[0-9a-fA-F]{64}(?![0-9a-fA-F])"),
]
RULES += [Rule(slug, what, keywords, re.compile(rf"(?<![\w\-.])(?P<v>{pattern})"), None)
          for slug, what, keywords, pattern in VENDOR_TOKENS]

# rules whose type names what was found (a vendor's token, a key block); the others' findings are typed
# by whichever scanner names them more precisely
SPECIFIC_RULES = frozenset({"private_key_block", "webhook_url", "password_hash", "jwt", "aws_secret_key", "algolia_api_key",
                            *(v[0] for v in VENDOR_TOKENS)})

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


def _mixed_password(value: str) -> bool:
    """A quoted password of letters of both cases (and digits), changing class often, that does not read as
    a name by the strict bar: `looks_random` reads a random 16 characters as words one time in a few
    hundred, and on a line about credentials that bar is too high."""
    if not re.fullmatch(r"[A-Za-z0-9]{12,64}", value) or value.lower() == value or value.upper() == value:
        return False
    return class_changes(value) >= (0.2 if re.search(r"\d", value) else 0.3) and not is_wordy_strict(value) \
        and not _camel_name(value)


def _camel_name(value: str) -> bool:
    """A camelCase or PascalCase name of words with a short piece or two (`WriteOpResult`, `QueryValueEx`):
    every capital starts a lower-case run, every longer piece reads as English, every short one has a vowel.
    A random mixed password of 12 letters or more is this shape about once in 100,000."""
    pieces = re.findall(r"[A-Z]?[a-z]+", value)
    short = [p for p in pieces if len(p) == 2]
    return "".join(pieces) == value and len(pieces) >= 3 and all(len(p) >= 2 for p in pieces) \
        and len(short) <= len(pieces) // 3 and all(re.search(r"[aeiouAEIOU]", p) for p in short) \
        and all(word_share(p) == 1.0 for p in pieces if len(p) > 2)


def _numbered_name(value: str, text: str, start: int, end: int) -> bool:
    """A name's numbered sibling, the name itself on the same line: `case MIMEMSGPACK, MIMEMSGPACK2:`."""
    name = re.fullmatch(r"([A-Za-z_]{4,})\d{1,2}", value)
    return bool(name) and re.search(rf"(?<![\w-]){name.group(1)}(?![\w-])", text[start:end]) is not None


_HASH_KEY = re.compile(rf"(?i)\b(?:{HASH_WORDS})[\"']?[ \t]*[:=][ \t]*[\"']?$")


def _named_hash(value: str, before: str) -> bool:
    """Hex given as a commit, hash or digest (`"commit": "3f2a..."`): a hash, whatever words share its line."""
    return re.fullmatch(r"[0-9a-f]{7,64}|[0-9A-F]{7,64}", value) is not None and _HASH_KEY.search(before) is not None


def _random_literals(m: re.Match, ctx: Context) -> Iterator[tuple[int, int]]:
    """The random-looking literals of one line: quoted ones (and the tokens inside a quoted string) by the
    plain bar, bare tokens when they hold a digit too."""
    text, start, end = m.string, m.start("v"), m.end("v")
    for lit in _QUOTED_RE.finditer(text, start, end):
        value, before = lit.group("v"), text[start:lit.start()]  # the line up to the literal, never the file
        if (looks_random(value) or _mixed_password(value) or _paired_password(value, before)) \
                and not _named(value, before, text, start, end):
            yield _strip_scheme(text, *lit.span("v"))
    for key in _HEX_KEY.finditer(text, start, end):
        yield key.span("v")
    for tok in _BARE_TOKEN.finditer(text, start, end):
        value = tok.group(0)
        if looks_random(value) and (re.search(r"\d", value) or (
                re.fullmatch(r"[A-Za-z]+", value) and class_changes(value) >= 0.4 and word_share(value) < 0.3)) \
                and not _named(value, text[start:tok.start()], text, start, end):
            yield tok.span()


# 32 hex characters and more given as a `key` (`wandb.login(key="...")`, inside a notebook's JSON too): an API key,
# even where its letters read as words (hex's a-f spell common English pairs: a sweep drew one the plain bar read as a name)
_HEX_KEY = re.compile(r"(?i)\bkey\\?[\"']?[ \t]*[:=][ \t]*\\?[\"'](?P<v>[0-9a-f]{32,128})\\?[\"']")


def _paired_password(value: str, before: str) -> bool:
    """The second of a pair in prose, `user` / `password`: see ``_alnum_password``."""
    return re.search(r"[`\"'][ \t]*/[ \t]*$", before) is not None and _alnum_password(value)


def _alnum_password(value: str) -> bool:
    """Letters and digits that prose gives as a password (`the password is ...`, the second of `user` / `password`),
    by a login call's bar: of mixed case or with a digit, words by the strict bar do not make it a name (a random
    15 characters read as 70 % English), a CamelCase name does."""
    return re.fullmatch(r"[A-Za-z0-9]{8,64}", value) is not None and _could_be_password(value) and not _camel_name(value)


def _named(value: str, before: str, text: str, start: int, end: int) -> bool:
    """A random-looking literal that its line names for what it is: a numbered sibling, a hash."""
    return _numbered_name(value, text, start, end) or _named_hash(value, before)


_FILE = re.compile(r"(?:[\w.\-]+/)+[\w\-]+(?:\.[\w\-]+)*\.[A-Za-z]{1,6}")  # a repository path: pipeline/secrets/scanner.py
_HOST = re.compile(r"[a-z0-9\-]+(?:\.[a-z0-9\-]+)*\.[a-z]{2,24}(?::\d+)?|[a-z0-9\-.]+:\d+|[\w.+\-]+@[a-z0-9\-.]+")


def _call_passwords(m: re.Match) -> Iterator[tuple[int, int]]:
    """The quoted arguments of a login or connect call after its first (a user, a URL, a host): each one
    that is neither a word, a host nor a stand-in is the password."""
    literals = list(_QUOTED_RE.finditer(m.string, m.start("v"), m.end("v")))
    named = re.search(r"(?i)password|passwd|secret|token", m.string[m.start():m.start("v")])
    for lit in literals if named else literals[1:]:
        if _could_be_password(lit.group("v")) and not _named_hash(lit.group("v"), m.string[m.start():lit.start()]):
            yield lit.span("v")


def _could_be_password(value: str) -> bool:
    """A login's second value (a call's argument, `user` / `password` in prose) that is neither a word, a host,
    a path nor a stand-in: the password."""
    plain_name = re.fullmatch(r"[\w.\-]+", value) and (value.islower() or value.isupper())  # svc_inventory, SUPPLIER
    return not (re.search(r"\s", value) or is_wordlike(value) or _HOST.fullmatch(value) or is_placeholder(value)
                or _FILE.fullmatch(value) or (plain_name and (is_wordy_strict(value) or not re.search(r"\d", value))))


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
