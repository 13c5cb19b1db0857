"""Hand-written planted secrets for the secret-scan tests: one value of every kind in its real format (random on a
fixed seed, so no detector allowlist can match them), the files of a fixture repository that carry them (``SECRET_FILES``)
and the values (``PLANTED``). tests/secrets/test_scanner.py redacts them file by file; the whole-run check that none
reaches any byte of a run directory is tests/secrets/test_secret_corpus.py's, over these and the generated corpus."""

from __future__ import annotations

import json
import random
import string

_rng = random.Random(20240607)


def _token(n: int, alphabet: str = string.ascii_letters + string.digits) -> str:
    return "".join(_rng.choice(alphabet) for _ in range(n))


# One value of every kind, in the real formats (random, so no detector allowlist can match them).
AWS = "AKIA" + _token(16, string.ascii_uppercase + string.digits)
HF = "hf_" + _token(34)
OPENAI = "sk-proj-" + _token(64)
ANTHROPIC = "sk-ant-api03-" + _token(80) + "AA"
GITHUB = "github_pat_" + _token(22) + "_" + _token(59)
NPM = "npm_" + _token(36)
URL_PASSWORD = _token(18)
PY_PASSWORD = _token(6) + "&3-" + _token(10)
SHELL_PASSWORD = _token(14) + "9"
ENV_TOKEN = _token(20) + "7"
ENV_STRIPE = "rk_live_" + _token(24)
CFG_API_KEY = _token(16) + "3"
YAML_PASSWORD = _token(15) + "1"
YAML_API_KEY = _token(22)
TOML_SECRET = _token(26)
DOCS_PASSWORD = _token(16) + "5"
DOTENV_ONLY = _token(24) + "8"  # lives only in .env, which is never read
KEY_BODY = ["MII" + _token(61, string.ascii_letters + string.digits + "+/") for _ in range(6)]
PRIVATE_KEY = "-----BEGIN RSA PRIVATE KEY-----\n" + "\n".join(KEY_BODY) + "\n-----END RSA PRIVATE KEY-----"
DOCS_KEY_BODY = ["MC4" + _token(45, string.ascii_letters + string.digits + "+/") for _ in range(3)]
DOCS_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\n" + "\n".join(DOCS_KEY_BODY) + "\n-----END OPENSSH PRIVATE KEY-----"

# Credentials in HTTP headers and on command lines, one fresh set per file type (so a leak names its file).
B64 = string.ascii_letters + string.digits + "+/"


def _header_and_flag_values(tag: str) -> dict[str, str]:
    return {
        f"{tag}_basic": _token(24, B64) + "==", f"{tag}_bearer": _token(40), f"{tag}_token": _token(32),
        f"{tag}_proxy_basic": _token(20, B64) + "=", f"{tag}_digest_response": _token(32, "0123456789abcdef"),
        f"{tag}_curl_u": _token(14), f"{tag}_curl_user": _token(13), f"{tag}_wget_password": _token(12),
        f"{tag}_wget_http_password": _token(15), f"{tag}_httpie": _token(11),
    }


def _header_and_flag_lines(v: dict[str, str], tag: str, indent: str = "") -> list[str]:
    """One line per form (each an ordinary command around the credential)."""
    lines = [
        f"curl -H 'Authorization: Basic {v[tag + '_basic']}' https://api.example.internal/v1/items",
        f'curl -H "Authorization: Bearer {v[tag + "_bearer"]}" https://api.example.internal/v1/items',
        f"curl -H 'Authorization: Token {v[tag + '_token']}' https://api.example.internal/v1/items",
        f"curl --proxy http://proxy.internal:3128 -H 'Proxy-Authorization: Basic {v[tag + '_proxy_basic']}' https://example.org",
        f"curl -H 'Authorization: Digest username=\"deploy\", realm=\"api\", nonce=\"dcd98b7102dd\", "
        f"uri=\"/v1/items\", response=\"{v[tag + '_digest_response']}\"' https://api.example.internal/v1/items",
        f"curl -u deploy:{v[tag + '_curl_u']} https://api.example.internal/v1/items",
        f"curl --user deploy:{v[tag + '_curl_user']} https://api.example.internal/v1/items",
        f"wget --user=deploy --password={v[tag + '_wget_password']} https://files.example.internal/dump.tar",
        f"wget --http-user=deploy --http-password={v[tag + '_wget_http_password']} https://files.example.internal/dump.tar",
        f"http -a deploy:{v[tag + '_httpie']} GET https://api.example.internal/v1/items",
    ]
    return [indent + line for line in lines]


MD_HTTP = _header_and_flag_values("md")
RST_HTTP = _header_and_flag_values("rst")
SH_HTTP = _header_and_flag_values("sh")
PY_BEARER = _token(36)
NL = "\n"

PLANTED = {
    **MD_HTTP, **RST_HTTP, **SH_HTTP, "py_bearer": PY_BEARER,
    "aws": AWS, "hf": HF, "openai": OPENAI, "anthropic": ANTHROPIC, "github": GITHUB, "npm": NPM,
    "url_password": URL_PASSWORD, "py_password": PY_PASSWORD, "shell_password": SHELL_PASSWORD,
    "env_token": ENV_TOKEN, "env_stripe": ENV_STRIPE, "cfg_api_key": CFG_API_KEY, "yaml_password": YAML_PASSWORD,
    "yaml_api_key": YAML_API_KEY, "toml_secret": TOML_SECRET, "docs_password": DOCS_PASSWORD, "dotenv_only": DOTENV_ONLY,
    **{f"key_line_{i}": line for i, line in enumerate(KEY_BODY)},
    **{f"docs_key_line_{i}": line for i, line in enumerate(DOCS_KEY_BODY)},
}

SETTINGS_PY = f'''"""Settings for the deployment: where the services live and how to reach them."""

import os

AWS_ACCESS_KEY_ID = "{AWS}"
HF_TOKEN = "{HF}"
ANTHROPIC_API_KEY = "{ANTHROPIC}"
GITHUB = "{GITHUB}"
NPM_PUBLISH = "{NPM}"
DATABASE_URL = "postgres://appuser:{URL_PASSWORD}@db.example.internal:5432/app"
db_password = "{PY_PASSWORD}"


def make_client(factory):
    """Build the API client that every service of the deployment shares."""
    client = factory(api_key="{OPENAI}", timeout=30)
    token = tokenizer(client)
    return client, token


def describe(password: str, retries: int = 3) -> str:
    """Say how a connection is made, without revealing the password itself."""
    return f"connecting with {{len(password)}} characters, {{retries}} retries"


DEPLOY_KEY = """{PRIVATE_KEY}"""
'''

DEPLOY_SH = f"""#!/bin/sh
# Deploy the application to the staging servers.
export DB_PASSWORD={SHELL_PASSWORD}
SENTRY_AUTH_TOKEN={ENV_TOKEN}
STRIPE_SECRET_KEY={ENV_STRIPE}
rsync -a build/ staging:/srv/app
echo "deployed"
"""

APP_CFG = f"""# .env-style settings read by the worker
WORKER_NAME=indexer
API_KEY={CFG_API_KEY}
QUEUE_URL=amqp://guest@localhost//
"""

APP_YAML = f"""service:
  name: indexer
  replicas: 3
database:
  host: db.example.internal
  password: {YAML_PASSWORD}
  api_key: "{YAML_API_KEY}"
"""

APP_TOML = f"""[server]
host = "0.0.0.0"
port = 8080
secret_key = "{TOML_SECRET}"
"""

DEPLOY_MD = f"""# Deploying the service

Log in to the hub first with `huggingface-cli login --token {HF}` before pushing anything.

## Database access

Connect with `psql postgres://admin:{DOCS_PASSWORD}@db.example.internal/app` from the bastion host.

## The deploy key

Keep the deploy key in the vault; the old one was:

```
{DOCS_KEY}
```

Rotate it every quarter and record the date in the run book.
"""

API_MD = f"""# Calling the items API

Every request carries credentials; these are the forms the operators use:

```bash
{NL.join(_header_and_flag_lines(MD_HTTP, "md"))}
```

The API answers with a JSON list of items, newest first.
"""

API_RST = f"""Calling the items API
=====================

Every request carries credentials; these are the forms the operators use:

.. code-block:: bash

{NL.join(_header_and_flag_lines(RST_HTTP, "rst", indent="   "))}

The API answers with a JSON list of items, newest first.
"""

FETCH_SH = f"""#!/bin/sh
# Fetch the nightly dump from the items API.
set -eu
{NL.join(_header_and_flag_lines(SH_HTTP, "sh"))}
echo "fetched"
"""

CLIENT_PY = f'''"""Client for the items API: one session with the service's credentials."""

import requests


def items_session():
    """Open a session that every call to the items API shares."""
    session = requests.Session()
    session.headers.update({{"Authorization": "Bearer {PY_BEARER}", "Accept": "application/json"}})
    return session
'''

NOTEBOOK = json.dumps({
    "cells": [
        {"cell_type": "markdown", "metadata": {}, "source": [f"# Exploring the index\n\nThe npm token {NPM} was used to publish the widget package for the demo."]},
        {"cell_type": "code", "metadata": {}, "execution_count": 1,
         "source": [f'login(token="{HF}")\n', "index = build_index(documents, batch_size=32)\n", "print(index.summary())"],
         "outputs": [{"output_type": "stream", "name": "stdout", "text": [f"logged in with {GITHUB}\n"]}]},
    ],
    "metadata": {}, "nbformat": 4, "nbformat_minor": 5,
})

SECRET_FILES = {
    "pkg/settings.py": SETTINGS_PY,
    "deploy.sh": DEPLOY_SH,
    "config/app.cfg": APP_CFG,
    "config/app.yaml": APP_YAML,
    "config/app.toml": APP_TOML,
    "docs/deploy.md": DEPLOY_MD,
    "docs/api.md": API_MD,
    "docs/api.rst": API_RST,
    "scripts/fetch.sh": FETCH_SH,
    "pkg/client.py": CLIENT_PY,
    "notebooks/explore.ipynb": NOTEBOOK,
    ".env": f"DB_PASSWORD={DOTENV_ONLY}\n",
    "keys/id_rsa": PRIVATE_KEY + "\n",
    "certs/server.pem": DOCS_KEY + "\n",
}
FILES_WITH_SECRETS = {"pkg/settings.py", "deploy.sh", "config/app.cfg", "config/app.yaml", "config/app.toml", "docs/deploy.md",
                      "docs/api.md", "docs/api.rst", "scripts/fetch.sh", "pkg/client.py",
                      "notebooks/explore.ipynb#markdown", "notebooks/explore.ipynb#python"}
