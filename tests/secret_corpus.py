"""An adversarial corpus of planted credentials, fresh on every run, to prove no secret reaches a dataset.

Each file of the corpus is an ordinary piece of a repository (a deploy script, a Spring config, a
notebook, a README) into which credentials are planted the way real repositories leak them: vendor
tokens in clone URLs and CLI flags, secret-named assignments in a dozen languages' syntax, passwords
in XML, on command lines, in connection strings, keys wrapped in base64 or PEM/PuTTY/PGP blocks,
webhook URLs and even a token in a folder name.

Written from the attacker's side, independently of the scanner: the forms follow what leaks in the
wild, not what any detector happens to look for. Every value is drawn fresh (`generate(seed=None)`),
so no allowlist, hash list or memorised example can pass the tests; a seed reproduces a failure.

Importable without pytest: the tests in test_secret_corpus.py (and anyone else) use `generate`,
`forms`, `leaks` and `run_dir_blobs`; `PLACEHOLDER_LINES` are look-alikes that must be left alone.
"""

from __future__ import annotations

import base64
import json
import random as _random
import re
import string
import textwrap
import uuid
from dataclasses import dataclass
from pathlib import Path

VENDOR = "vendor_token"
ASSIGNMENT = "assignment"
MARKUP = "markup"
NO_EQUALS = "no_equals"
COMMAND_LINE = "command_line"
URL = "url"
WRAPPED = "wrapped"
WEBHOOK = "webhook"
PATH = "path"
CATEGORIES = (VENDOR, ASSIGNMENT, MARKUP, NO_EQUALS, COMMAND_LINE, URL, WRAPPED, WEBHOOK, PATH)

WINDOW = 12  # a leak is the whole value or any run of this many characters of its random part


@dataclass(frozen=True)
class Planted:
    form: str  # unique snake_case id; a multi-line key plants one per body line, as <form>_line<N>
    category: str  # one of CATEGORIES
    value: str  # the whole credential exactly as it appears in the file text (or path)
    random: str  # the random part of value (>= WINDOW chars) that no placeholder could explain


@dataclass(frozen=True)
class CorpusFile:
    path: str  # repository-relative POSIX path
    text: str
    planted: tuple[Planted, ...]


def base_form(form: str) -> str:
    """The form a planted value belongs to: key blocks plant `<form>_line<N>` for each body line."""
    return re.sub(r"_line\d+$", "", form)


# --- random values of the real shapes ---------------------------------------------------------------

ALNUM = string.ascii_letters + string.digits
UPPER_ALNUM = string.ascii_uppercase + string.digits
LOWER_ALNUM = string.ascii_lowercase + string.digits
LETTERS = string.ascii_letters
HEX = "0123456789abcdef"
B64 = ALNUM + "+/"
B64URL = ALNUM + "-_"
BECH32 = "QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L"
# symbols people put in passwords that survive YAML, shell single quotes and most string literals
PW = ALNUM + "!#%*+-.:^_~,"
# uncommon words, so a passphrase's windows never match ordinary prose by chance
WORDS = ("quartz zephyr mulberry obsidian falcon juniper tundra cobalt saffron lantern walrus pistachio "
         "marimba glacier nutmeg origami velvet kumquat bramble turbine sequoia mosaic plover thistle "
         "carbide fjord gazebo hemlock ibex jackal kestrel lichen marzipan narwhal oregano paprika "
         "quokka rhubarb sorrel tamarind umber vervain wombat xylem yarrow zinnia azalea basalt cardamom "
         "dromedary emu fennel gannet hazel iguana jasmine kelp lupin magpie nettle ocelot parsnip quince "
         "raven sumac tapir urchin vole wasabi yak zircon alder bison chicory dahlia egret fig gecko heron").split()


class _Rand:
    """Draws from one random source: SystemRandom for fresh values, Random(seed) to reproduce a run."""

    def __init__(self, rng: _random.Random):
        self.rng = rng
        # words are drawn without replacement: two passphrases of one corpus then share no 12-character
        # window, so a leak is always put down to the right form
        self._words = list(WORDS)
        rng.shuffle(self._words)

    def s(self, n: int, alphabet: str = ALNUM) -> str:
        return "".join(self.rng.choice(alphabet) for _ in range(n))

    def tok(self, prefix: str, n: int, alphabet: str = ALNUM, suffix: str = "") -> tuple[str, str]:
        """(value, random part) for the common shape: fixed prefix, random body, fixed suffix."""
        body = self.s(n, alphabet)
        return prefix + body + suffix, body

    def digits(self, n: int) -> str:
        return str(self.rng.randint(1, 9)) + self.s(n - 1, string.digits)

    def hex(self, n: int) -> str:
        return self.s(n, HEX)

    def uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def password(self, n: int = 18, alphabet: str = PW) -> str:
        # start with a letter: a leading `*`, `%` or `-` means something else in YAML and on command lines
        return self.rng.choice(LETTERS) + self.s(n - 1, alphabet)

    def letters(self, n: int = 16) -> str:
        return self.s(n, LETTERS)  # no digits: scanners that want a digit in a password miss these

    def words(self, k: int) -> list[str]:
        taken, self._words = self._words[:k], self._words[k:]
        return taken

    def passphrase(self, k: int = 5) -> str:
        return "-".join(self.words(k))

    def b64_of(self, prefix: bytes, n_random: int) -> tuple[str, str]:
        """base64 of prefix + n random printable bytes, with the prefix a multiple of 3 bytes long so
        the encoded random part starts on its own (the random part then excludes the padding)."""
        assert len(prefix) % 3 == 0
        secret = self.s(n_random, ALNUM).encode()
        encoded = base64.b64encode(prefix + secret).decode()
        return encoded, encoded[len(prefix) // 3 * 4:].rstrip("=")

    def jwt(self, claims: dict, alg: str = "HS256") -> tuple[str, str]:
        def enc(obj: dict) -> str:
            return base64.urlsafe_b64encode(json.dumps(obj, separators=(",", ":")).encode()).decode().rstrip("=")

        sig = self.s(43 if alg.startswith("HS") else 342, B64URL)
        return f"{enc({'alg': alg, 'typ': 'JWT'})}.{enc(claims)}.{sig}", sig

    def pem_lines(self, n: int, first: str = "", width: int = 64, last: int = 0, pad: str = "") -> list[tuple[str, str]]:
        """Body lines of a base64 key block: (line, random part); the last line short, with padding."""
        lines = []
        for i in range(n):
            size = last if (i == n - 1 and last) else width
            prefix = first if i == 0 else ""
            body = self.s(size - len(prefix), B64)
            lines.append((prefix + body + (pad if i == n - 1 else ""), body))
        return lines


# --- one file of the corpus: a template with «form» slots -----------------------------------------------

class _File:
    """Collects the planted values of one file and fills them into its template.

    Templates use «name» slots instead of str.format braces, so code in JavaScript, Go, Rust or JSON
    can be written as it is, braces and all."""

    def __init__(self, path: str):
        self.path = path
        self.values: dict[str, str] = {}
        self.planted: list[Planted] = []

    def put(self, form: str, category: str, value: str | tuple[str, str], random: str | None = None) -> str:
        if isinstance(value, tuple):
            value, random = value
        random = value if random is None else random
        assert form not in self.values, form
        self.planted.append(Planted(form, category, value, random))
        self.values[form] = value
        return value

    def put_block(self, form: str, category: str, header: str, footer: str, lines: list[tuple[str, str]],
                  sep: str = "\n", indent: str = "", between: str | None = None) -> str:
        """A multi-line key: one Planted per body line, since a scanner that redacts the header and the
        first lines but not the rest still leaks the key. `indent` goes before every line after the
        first (the template places the first); `sep` is "\\n" inside a JSON string; `between` is a line
        between the header and the body (an SSH2 comment, PGP's blank line)."""
        for i, (line, rnd) in enumerate(lines, 1):
            self.planted.append(Planted(f"{form}_line{i}", category, line, rnd))
        head = [header] if between is None else [header, indent + between]
        text = sep.join([*head, *(indent + line for line, _ in lines), indent + footer])
        self.values[form] = text
        return text

    def ctx(self, name: str, text: str) -> str:
        """A value that is not a secret (an account id, a user name) but should vary too."""
        self.values[name] = text
        return text

    def _fill(self, template: str) -> str:
        def sub(m: re.Match) -> str:
            return self.values[m.group(1)]

        return re.sub(r"«(\w+)»", sub, template)

    def render(self, template: str) -> CorpusFile:
        text = self._fill(textwrap.dedent(template).lstrip("\n"))
        return self._done(text)

    def render_notebook(self, cells: list[tuple[str, str, list[str]]], language: str = "python") -> CorpusFile:
        """cells: (cell_type, source template, stream outputs); outputs are where a printed token sits."""
        nb_cells = []
        for n, (kind, source, outputs) in enumerate(cells, 1):
            src = self._fill(textwrap.dedent(source).strip("\n"))
            cell = {"cell_type": kind, "metadata": {}, "source": src.splitlines(keepends=True)}
            if kind == "code":
                cell["execution_count"] = n
                cell["outputs"] = [{"name": "stdout", "output_type": "stream",
                                    "text": self._fill(out).splitlines(keepends=True)} for out in outputs]
            nb_cells.append(cell)
        nb = {"cells": nb_cells, "metadata": {"kernelspec": {"display_name": "Python 3", "language": language, "name": "python3"},
                                              "language_info": {"name": language}},
              "nbformat": 4, "nbformat_minor": 5}
        return self._done(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")

    def _done(self, text: str) -> CorpusFile:
        path = self._fill(self.path)
        assert "«" not in text + path, self.path
        for p in self.planted:
            assert len(p.random) >= WINDOW and p.random in p.value, (self.path, p.form)
            assert p.value in text or p.value in path, (self.path, p.form)
        return CorpusFile(path, text, tuple(self.planted))


# ======================================================================================================
# The files. Each function is one file of an imagined monorepo; prose and code differ from file to file
# (the build drops near-duplicates), and each plants several forms where they would naturally sit.
# ======================================================================================================

def _docs_setup_md(r: _Rand) -> CorpusFile:
    f = _File("docs/setup.md")
    f.put("netrc_machine_line", NO_EQUALS, r.password(20))
    f.put("npmrc_authtoken_uuid", ASSIGNMENT, r.uuid(), None)
    f.put("pgpass_line", NO_EQUALS, r.password(17))
    f.put("github_classic_pat_clone_url", VENDOR, r.tok("ghp_", 36))
    f.put("npmrc_scoped_npm_token", VENDOR, r.tok("npm_", 36))
    return f.render("""
        # Setting up a development machine

        New engineers usually lose a morning to access problems, so this page lists every file the
        tooling expects in the home directory and what goes into it. Ask in #platform if a step fails.

        ## Cloning the infrastructure repository

        The infra repository is private. The bootstrap script clones it with the bot account:

        ```bash
        git clone https://«github_classic_pat_clone_url»@github.com/acme-corp/infra.git ~/src/infra
        cd ~/src/infra && ./bootstrap.sh --profile dev
        ```

        ## The artifact server

        Pip and curl read `~/.netrc` for the artifact server. Put this single line in it and
        `chmod 600` the file, or curl refuses to use it:

        ```
        machine artifacts.acme-corp.dev login build-robot password «netrc_machine_line»
        ```

        ## npm packages from the private registry

        The frontend installs scoped packages from our registry and the public one; `~/.npmrc`:

        ```ini
        @acme:registry=https://npm.acme-corp.dev/
        //npm.acme-corp.dev/:_authToken=«npmrc_authtoken_uuid»
        //registry.npmjs.org/:_authToken=«npmrc_scoped_npm_token»
        ```

        ## The reporting database

        `psql` takes the password from `~/.pgpass` (mode 0600). The read replica entry is:

        ```
        reports-replica.internal:5432:analytics:report_reader:«pgpass_line»
        ```

        After that `psql -h reports-replica.internal -U report_reader analytics` connects without a prompt.
        """)


def _docs_ci_md(r: _Rand) -> CorpusFile:
    f = _File("docs/ci.md")
    f.put("github_app_token_gh_login", VENDOR, r.tok("ghs_", 36))
    f.put("npm_token_gh_secret_body", VENDOR, r.tok("npm_", 36))
    f.put("pypi_token_twine_flag", VENDOR, r.tok("pypi-AgEIcHlwaS5vcmc", 150, B64URL))
    f.put("aws_csv_access_key_id", COMMAND_LINE, r.tok("AKIA", 16, UPPER_ALNUM))
    f.put("aws_csv_secret_access_key", COMMAND_LINE, r.s(40, B64))
    return f.render("""
        # How the CI runners authenticate

        The runners never see a personal account. Each job gets short-lived credentials from the
        release app, and the few long-lived ones are listed below so that rotating them is one page.

        ## GitHub CLI on the runner

        Release jobs log the GitHub CLI in with the installation token of the release app:

        ```sh
        echo «github_app_token_gh_login» | gh auth login --with-token
        gh release create "v$VERSION" dist/*.tar.gz --notes-file CHANGES.md
        ```

        ## Publishing packages

        The npm token lives in the repository secrets; it was set once with

        ```sh
        gh secret set NPM_TOKEN --repo acme-corp/widgets --body "«npm_token_gh_secret_body»"
        ```

        and the Python wheels are uploaded by twine with an API token scoped to the project:

        ```sh
        twine upload -u __token__ -p «pypi_token_twine_flag» dist/*
        ```

        ## The deploy user in AWS

        The IAM console exports new keys as CSV. The current key of `ci-deployer`, as exported:

        ```csv
        User name,Access key ID,Secret access key
        ci-deployer,«aws_csv_access_key_id»,«aws_csv_secret_access_key»
        ```

        Rotate it every ninety days; the old key is deactivated for a week before it is deleted.
        """)


def _config_bots_yaml(r: _Rand) -> CorpusFile:
    f = _File("config/bots.yaml")
    f.put("github_oauth_token_yaml_bot", VENDOR, r.tok("gho_", 36))
    f.put("github_user_to_server_yaml", VENDOR, r.tok("ghu_", 36))
    f.put("github_refresh_token_yaml", VENDOR, r.tok("ghr_", 76))
    f.put("slack_bot_token_yaml", VENDOR, (lambda b: (f"xoxb-{r.digits(11)}-{r.digits(13)}-{b}", b))(r.s(24)))
    f.put("slack_app_token_yaml", VENDOR, (lambda b: (f"xapp-1-A{r.s(10, UPPER_ALNUM)}-{r.digits(13)}-{b}", b))(r.hex(64)))
    f.put("telegram_bot_token_yaml", VENDOR, (lambda b: (f"{r.digits(10)}:AA{b}", b))(r.s(33, B64URL)))
    return f.render("""
        # Chat-ops bots: which account each one uses and where it posts.
        # Loaded by ops/chatops/loader.py at start-up; restart the pod after editing.
        github:
          bot: «github_oauth_token_yaml_bot»
          user_token: «github_user_to_server_yaml»
          refresh_token: «github_refresh_token_yaml»
          repositories:
            - acme-corp/widgets
            - acme-corp/infra
        slack:
          bot_token: «slack_bot_token_yaml»
          app_level: «slack_app_token_yaml»
          default_channel: "#deploys"
          mention_on_failure: true
        telegram:
          bot: «telegram_bot_token_yaml»
          chat_id: -1001822334455
          quiet_hours: "22:00-07:00"
        """)


def _scripts_release_sh(r: _Rand) -> CorpusFile:
    f = _File("scripts/release.sh")
    f.put("gitlab_pat_glab_token", VENDOR, r.tok("glpat-", 20, B64URL))
    f.put("gitlab_pat_private_token_header", VENDOR, r.tok("glpat-", 20, B64URL))
    f.put("gitlab_runner_token_register", VENDOR, r.tok("glrt-", 20, B64URL))
    f.put("gitlab_deploy_token_url", VENDOR, r.tok("gldt-", 20, B64URL))
    f.put("gitlab_trigger_token_form", VENDOR, r.tok("glptt-", 40, HEX))
    return f.render("""
        #!/usr/bin/env bash
        # Cut a release on the self-hosted GitLab: tag, upload the tarball, trigger the downstream build.
        set -euo pipefail

        VERSION="${1:?usage: release.sh VERSION}"
        glab auth login --hostname gitlab.acme-corp.dev --token «gitlab_pat_glab_token»
        git tag -a "v${VERSION}" -m "Release ${VERSION}" && git push origin "v${VERSION}"

        curl --fail --header "PRIVATE-TOKEN: «gitlab_pat_private_token_header»" \\
             --upload-file "dist/widgets-${VERSION}.tar.gz" \\
             "https://gitlab.acme-corp.dev/api/v4/projects/42/packages/generic/widgets/${VERSION}/widgets.tar.gz"

        # the downstream packaging project rebuilds its images from the new tag
        curl --fail -X POST -F token=«gitlab_trigger_token_form» -F ref=main \\
             https://gitlab.acme-corp.dev/api/v4/projects/97/trigger/pipeline

        # a fresh runner for the release stage, if the old one was recycled
        gitlab-runner register --non-interactive --url https://gitlab.acme-corp.dev \\
            --token «gitlab_runner_token_register» --executor docker --docker-image alpine:3.20

        git clone "https://release-bot:«gitlab_deploy_token_url»@gitlab.acme-corp.dev/packaging/debian.git" /tmp/debian
        echo "released ${VERSION}"
        """)


def _web_auth_ts(r: _Rand) -> CorpusFile:
    f = _File("web/src/auth.ts")
    f.put("jwt_hs256_ts_constant", VENDOR, r.jwt({"sub": r.digits(8), "name": "admin", "role": "owner", "iat": 1716239022}))
    f.put("supabase_service_role_jwt", VENDOR, r.jwt({"iss": "supabase", "ref": r.s(20, string.ascii_lowercase),
                                                      "role": "service_role", "iat": 1700000000, "exp": 2015576000}))
    f.put("ts_typed_const_api_key", ASSIGNMENT, r.s(32))
    f.put("ts_object_client_secret", ASSIGNMENT, r.letters(28))
    return f.render("""
        /**
         * Session helpers for the dashboard: sign-in, token refresh and the admin impersonation used by support.
         */
        import { createClient } from "@supabase/supabase-js";

        const apiKey: string = "«ts_typed_const_api_key»";

        // support staff impersonate a user with this long-lived admin token
        export const ADMIN_JWT = "«jwt_hs256_ts_constant»";

        export const supabase = createClient("https://db.acme-corp.dev", "«supabase_service_role_jwt»");

        const oauth = {
          clientId: "dashboard-web",
          clientSecret: "«ts_object_client_secret»",
          redirectUri: "https://dash.acme-corp.dev/callback",
        };

        export async function refreshSession(refreshToken: string): Promise<string> {
          const res = await fetch("https://auth.acme-corp.dev/token", {
            method: "POST",
            headers: { "X-Api-Key": apiKey, "Content-Type": "application/json" },
            body: JSON.stringify({ grant_type: "refresh_token", refresh_token: refreshToken, ...oauth }),
          });
          if (!res.ok) throw new Error(`refresh failed: ${res.status}`);
          return (await res.json()).access_token;
        }
        """)


def _billing_stripe_py(r: _Rand) -> CorpusFile:
    f = _File("billing/stripe_client.py")
    f.put("stripe_live_secret_key_attr", VENDOR, r.tok("sk_live_51", 97))
    f.put("stripe_restricted_key_kwarg", VENDOR, r.tok("rk_live_51", 97))
    f.put("stripe_webhook_secret_constant", VENDOR, r.tok("whsec_", 32))
    f.put("paystack_live_secret_header", VENDOR, r.tok("sk_live_", 40, HEX))
    return f.render('''
        """Charge customers and verify Stripe's webhooks; the billing worker imports this module."""

        import stripe
        import requests

        stripe.api_key = "«stripe_live_secret_key_attr»"
        WEBHOOK_SECRET = "«stripe_webhook_secret_constant»"


        def refund_client():
            """A client with the restricted key, which may only create refunds."""
            return stripe.StripeClient(api_key="«stripe_restricted_key_kwarg»", max_network_retries=2)


        def verify(payload: bytes, signature: str):
            """Raise if the webhook was not signed by Stripe."""
            return stripe.Webhook.construct_event(payload, signature, WEBHOOK_SECRET)


        def nigerian_payout(reference: str) -> dict:
            """Payouts for the Lagos office still go through Paystack."""
            resp = requests.get(f"https://api.paystack.co/transaction/verify/{reference}",
                                headers={"Authorization": "Bearer «paystack_live_secret_header»"}, timeout=10)
            return resp.json()
        ''')


def _bots_discord_js(r: _Rand) -> CorpusFile:
    f = _File("bots/discord/index.js")
    uid = base64.b64encode(r.digits(19).encode()).decode().rstrip("=")
    body = r.s(38, B64URL)
    f.put("discord_bot_token_login", VENDOR, f"{uid}.{r.s(6, B64URL)}.{body}", body)
    body2 = r.s(27, B64URL)
    uid2 = base64.b64encode(r.digits(18).encode()).decode().rstrip("=")
    f.put("discord_bot_token_env_fallback", VENDOR, f"{uid2}.{r.s(6, B64URL)}.{body2}", body2)
    hook = r.s(68, B64URL)
    f.put("discord_webhook_js", WEBHOOK, f"https://discord.com/api/webhooks/{r.digits(19)}/{hook}", hook)
    return f.render("""
        // The community bot: answers /status in the support server and mirrors incidents to #announcements.
        const { Client, GatewayIntentBits } = require("discord.js");

        const token = process.env.DISCORD_TOKEN || "«discord_bot_token_env_fallback»";
        const INCIDENT_HOOK = "«discord_webhook_js»";

        const client = new Client({ intents: [GatewayIntentBits.Guilds, GatewayIntentBits.GuildMessages] });

        client.on("interactionCreate", async (interaction) => {
          if (!interaction.isChatInputCommand() || interaction.commandName !== "status") return;
          const res = await fetch("https://status.acme-corp.dev/api/summary");
          const { indicator, description } = await res.json();
          await interaction.reply(`${indicator === "none" ? "All good" : "Degraded"}: ${description}`);
        });

        async function announce(text) {
          await fetch(INCIDENT_HOOK, { method: "POST", headers: { "Content-Type": "application/json" },
            body: JSON.stringify({ content: text }) });
        }

        client.login("«discord_bot_token_login»");
        module.exports = { announce, token };
        """)


def _ops_slack_go(r: _Rand) -> CorpusFile:
    f = _File("ops/notify/slack.go")
    f.put("slack_bot_token_go_call", VENDOR, (lambda b: (f"xoxb-{r.digits(12)}-{r.digits(13)}-{b}", b))(r.s(24)))
    f.put("slack_user_token_go_const", VENDOR, (lambda b: (f"xoxp-{r.digits(11)}-{r.digits(12)}-{r.digits(13)}-{b}", b))(r.hex(32)))
    hook = r.s(24)
    f.put("slack_webhook_go", WEBHOOK, f"https://hooks.slack.com/services/T{r.s(10, UPPER_ALNUM)}/B{r.s(10, UPPER_ALNUM)}/{hook}", hook)
    f.put("go_var_auth_token", ASSIGNMENT, r.s(40, LOWER_ALNUM))
    return f.render("""
        // Package notify posts deploy results to Slack, through the bot or the legacy webhook.
        package notify

        import (
        	"bytes"
        	"encoding/json"
        	"net/http"

        	"github.com/slack-go/slack"
        )

        var authToken = "«go_var_auth_token»"

        const legacyWebhook = "«slack_webhook_go»"
        const auditUserToken = "«slack_user_token_go_const»"

        // Deployed tells #deploys which version went out, and who pushed it.
        func Deployed(version, author string) error {
        	api := slack.New("«slack_bot_token_go_call»")
        	_, _, err := api.PostMessage("C04DEPLOYS", slack.MsgOptionText(version+" by "+author, false))
        	return err
        }

        // Fallback posts through the webhook when the bot is rate limited.
        func Fallback(text string) error {
        	body, _ := json.Marshal(map[string]string{"text": text})
        	req, _ := http.NewRequest("POST", legacyWebhook, bytes.NewReader(body))
        	req.Header.Set("X-Relay-Token", authToken)
        	_, err := http.DefaultClient.Do(req)
        	return err
        }
        """)


def _infra_main_tf(r: _Rand) -> CorpusFile:
    f = _File("infra/main.tf")
    f.put("digitalocean_token_tf_provider", VENDOR, r.tok("dop_v1_", 64, HEX))
    f.put("databricks_token_tf_provider", VENDOR, r.tok("dapi", 32, HEX))
    f.put("aws_access_key_tf_provider", VENDOR, r.tok("AKIA", 16, UPPER_ALNUM))
    f.put("aws_secret_key_tf_provider", VENDOR, r.s(40, B64))
    f.put("grafana_service_account_tf", VENDOR, (lambda b: (f"glsa_{b}_{r.hex(8)}", b))(r.s(32)))
    f.put("newrelic_user_key_tf", VENDOR, r.tok("NRAK-", 27, UPPER_ALNUM))
    f.put("tf_rds_master_password", ASSIGNMENT, r.password(24))
    f.put("terraform_cloud_token_tf", VENDOR, (lambda b: (f"{r.s(14)}.atlasv1.{b}", b))(r.s(67, B64URL)))
    return f.render("""
        # Production stack: the app's droplets, the analytics workspace and the shared database.

        terraform {
          cloud {
            organization = "acme-corp"
            token        = "«terraform_cloud_token_tf»"
            workspaces { name = "production" }
          }
        }

        provider "digitalocean" {
          token = "«digitalocean_token_tf_provider»"
        }

        provider "databricks" {
          host  = "https://adb-4417.azuredatabricks.net"
          token = "«databricks_token_tf_provider»"
        }

        provider "aws" {
          region     = "eu-west-1"
          access_key = "«aws_access_key_tf_provider»"
          secret_key = "«aws_secret_key_tf_provider»"
        }

        provider "grafana" {
          url  = "https://grafana.acme-corp.dev"
          auth = "«grafana_service_account_tf»"
        }

        provider "newrelic" {
          account_id = 3318842
          api_key    = "«newrelic_user_key_tf»"
        }

        resource "aws_db_instance" "orders" {
          identifier          = "orders-prod"
          engine              = "postgres"
          instance_class      = "db.r6g.large"
          username            = "orders_admin"
          password            = "«tf_rds_master_password»"
          skip_final_snapshot = false
        }
        """)


def _jira_sync_py(r: _Rand) -> CorpusFile:
    f = _File("tools/jira_sync.py")
    f.put("atlassian_api_token_basic_auth", VENDOR,
          (lambda b: (f"ATATT3xFfGF0{b}={r.s(8, '0123456789ABCDEF')}", b))(r.s(174, B64URL)))
    f.put("linear_api_key_header_dict", VENDOR, r.tok("lin_api_", 40))
    f.put("asana_pat_bearer", VENDOR, (lambda b: (f"2/{r.digits(16)}/{r.digits(16)}:{b}", b))(r.hex(32)))
    return f.render('''
        """Mirror Jira issues into Linear and Asana, so the product team sees one board.

        Run nightly from cron; a dry run prints what would change.
        """

        import requests
        from jira import JIRA

        jira = JIRA("https://acme-corp.atlassian.net", basic_auth=("sync-bot@acme-corp.dev", "«atlassian_api_token_basic_auth»"))
        LINEAR = {"Authorization": "«linear_api_key_header_dict»", "Content-Type": "application/json"}
        ASANA = {"Authorization": "Bearer «asana_pat_bearer»"}


        def open_issues(project: str):
            """Every unresolved issue of a Jira project, oldest first."""
            return jira.search_issues(f"project = {project} AND resolution = Unresolved ORDER BY created ASC")


        def push_to_linear(issue, dry_run: bool = False) -> None:
            """Create the Linear issue for a Jira issue (matched by its key in the title)."""
            query = "mutation($t: String!) { issueCreate(input: {title: $t, teamId: \\"PLAT\\"}) { success } }"
            if dry_run:
                print("would create", issue.key)
                return
            requests.post("https://api.linear.app/graphql", headers=LINEAR,
                          json={"query": query, "variables": {"t": f"[{issue.key}] {issue.fields.summary}"}}, timeout=20)
        ''')


def _deploy_vault_sh(r: _Rand) -> CorpusFile:
    f = _File("deploy/vault-unseal.sh")
    f.put("vault_service_token_login", VENDOR, r.tok("hvs.", 24))
    f.put("vault_long_token_export", VENDOR, r.tok("hvs.CAESI", 90, B64URL))
    f.put("pgpassword_env_psql", COMMAND_LINE, r.password(19))
    f.put("redis_cli_a_flag", COMMAND_LINE, r.letters(22))
    f.put("doppler_service_token_cli", VENDOR, r.tok("dp.st.prd.", 43))
    f.put("pulumi_access_token_env_prefix", VENDOR, r.tok("pul-", 40, HEX))
    return f.render("""
        #!/bin/bash
        # After a node reboot: log in to Vault, re-read the app's database role, warm the cache.
        set -e

        vault login «vault_service_token_login»
        export VAULT_TOKEN=«vault_long_token_export»
        vault read -format=json database/creds/orders-rw > /run/orders-creds.json

        # schema check against the primary before the app comes back
        PGPASSWORD=«pgpassword_env_psql» psql -h orders-primary.internal -U orders_admin -d orders -c 'select 1'

        # the session cache must answer before traffic is let in
        redis-cli -h cache.internal -a «redis_cli_a_flag» PING

        doppler run --token «doppler_service_token_cli» -- ./bin/warmup --regions eu-west-1,us-east-1
        PULUMI_ACCESS_TOKEN=«pulumi_access_token_env_prefix» pulumi refresh --stack acme/orders/prod --yes
        logger -t unseal "node $(hostname) back in rotation"
        """)


def _notebook_churn(r: _Rand) -> CorpusFile:
    f = _File("notebooks/churn_analysis.ipynb")
    f.put("openai_key_notebook_environ", VENDOR, (lambda b: (f"sk-proj-{b}T3BlbkFJ{r.s(76, B64URL)}", b))(r.s(80, B64URL)))
    f.put("hf_token_notebook_hfapi", VENDOR, r.tok("hf_", 34, LETTERS))
    f.put("anthropic_key_notebook_output", VENDOR, r.tok("sk-ant-api03-", 93, B64URL, "AA"))
    f.put("databricks_token_notebook_markdown", VENDOR, r.tok("dapi", 32, HEX, "-2"))
    f.put("wandb_api_key_notebook_login", ASSIGNMENT, r.hex(40))
    return f.render_notebook([
        ("markdown", """
            # Churn analysis, Q3

            Pulls the subscription events from the warehouse and asks a model to label cancellation reasons.
            The warehouse token for this notebook is `«databricks_token_notebook_markdown»` (read-only, expires in June).
            """, []),
        ("code", """
            import os
            import pandas as pd
            from huggingface_hub import HfApi

            os.environ["OPENAI_API_KEY"] = "«openai_key_notebook_environ»"
            api = HfApi(token="«hf_token_notebook_hfapi»")
            """, []),
        ("code", """
            import anthropic
            client = anthropic.Anthropic()
            print("using key", client.api_key)
            """, ["using key «anthropic_key_notebook_output»\n"]),
        ("code", """
            import wandb
            wandb.login(key="«wandb_api_key_notebook_login»")
            events = pd.read_parquet("s3://acme-warehouse/subscriptions/2024q3.parquet")
            events.groupby("plan").churned.mean().sort_values()
            """, ["plan\nstarter    0.081\nteam       0.042\n"]),
        ("markdown", """
            ## Findings

            Starter plans churn twice as often as team plans; most cancellations mention price, not features.
            """, []),
    ])


def _notebook_geo(r: _Rand) -> CorpusFile:
    f = _File("notebooks/store_locations.ipynb")
    mapbox_claims = base64.urlsafe_b64encode(json.dumps({"u": "acme-maps", "a": "cl" + r.s(23, LOWER_ALNUM)},
                                                        separators=(",", ":")).encode()).decode().rstrip("=")
    sig = r.s(22, B64URL)
    f.put("mapbox_secret_token_notebook", VENDOR, f"sk.{mapbox_claims}.{sig}", sig)
    f.put("supabase_pat_notebook_output", VENDOR, r.tok("sbp_", 40, HEX))
    f.put("google_api_key_notebook_url", URL, r.tok("AIza", 35, B64URL))
    f.put("notebook_db_password_kwarg", ASSIGNMENT, r.letters(18))
    return f.render_notebook([
        ("markdown", """
            # Where the stores are

            A map of every store with its monthly revenue, for the expansion review. Tiles come from
            Mapbox; geocoding goes through the Google Maps API.
            """, []),
        ("code", """
            import folium, requests, sqlalchemy

            MAPBOX = "«mapbox_secret_token_notebook»"
            engine = sqlalchemy.create_engine(sqlalchemy.URL.create("postgresql", username="analyst",
                                              password="«notebook_db_password_kwarg»", host="stores-db", database="retail"))
            """, []),
        ("code", """
            def geocode(address):
                url = f"https://maps.googleapis.com/maps/api/geocode/json?address={address}&key=«google_api_key_notebook_url»"
                return requests.get(url).json()["results"][0]["geometry"]["location"]
            """, []),
        ("code", """
            !supabase projects list
            """, ["Using access token «supabase_pat_notebook_output»\n  ID   NAME    REGION\n  kqx  stores  eu-central-1\n"]),
    ])


def _kotlin_api_config(r: _Rand) -> CorpusFile:
    f = _File("mobile/app/src/main/kotlin/com/acme/shop/ApiConfig.kt")
    f.put("kotlin_val_api_secret", ASSIGNMENT, r.s(36))
    f.put("google_api_key_kotlin_builder", VENDOR, r.tok("AIza", 35, B64URL))
    f.put("kotlin_password_authentication", NO_EQUALS, r.password(16))
    f.put("kotlin_const_passwort", ASSIGNMENT, r.letters(20))
    f.put("algolia_search_admin_kotlin", NO_EQUALS, r.hex(32))
    return f.render("""
        package com.acme.shop

        import com.google.android.libraries.places.api.Places
        import java.net.Authenticator
        import java.net.PasswordAuthentication

        /** Endpoints and keys the shop app talks to; swapped per flavour at build time. */
        object ApiConfig {
            const val BASE_URL = "https://api.acme-corp.dev/v2/"
            val apiSecret: String = "«kotlin_val_api_secret»"
            private const val passwort = "«kotlin_const_passwort»"

            fun initPlaces(context: android.content.Context) {
                Places.initializeWithNewPlacesApiEnabled(context, "«google_api_key_kotlin_builder»")
            }

            val search = com.algolia.search.client.ClientSearch(
                com.algolia.search.model.ApplicationID("Q4X2LMN0"),
                com.algolia.search.model.APIKey("«algolia_search_admin_kotlin»"),
            )

            /** The staging proxy asks for basic auth; the emulator image has no keychain. */
            fun useStagingProxy() {
                Authenticator.setDefault(object : Authenticator() {
                    override fun getPasswordAuthentication() =
                        PasswordAuthentication("qa-team", "«kotlin_password_authentication»".toCharArray())
                })
            }
        }
        """)


def _java_payment_gateway(r: _Rand) -> CorpusFile:
    f = _File("server/src/main/java/com/acme/billing/PaymentGateway.java")
    f.put("java_static_final_client_secret", ASSIGNMENT, r.s(40, B64URL))
    f.put("jdbc_mysql_password_param", URL, r.password(18, ALNUM))
    f.put("java_get_connection_positional", NO_EQUALS, r.password(15))
    f.put("twilio_api_key_sid_java", VENDOR, r.tok("SK", 32, HEX))
    f.put("twilio_api_secret_java", NO_EQUALS, r.s(32))
    f.put("sendgrid_key_java_constructor", VENDOR, (lambda b: (f"SG.{r.s(22, B64URL)}.{b}", b))(r.s(43, B64URL)))
    return f.render("""
        package com.acme.billing;

        import com.sendgrid.SendGrid;
        import com.twilio.Twilio;
        import java.sql.Connection;
        import java.sql.DriverManager;
        import java.sql.SQLException;

        /**
         * Talks to the payment provider and sends receipts by mail and SMS.
         */
        public class PaymentGateway {
            private static final String CLIENT_SECRET = "«java_static_final_client_secret»";
            private static final String LEDGER_URL = "jdbc:mysql://ledger-db:3306/ledger?user=ledger_app&password=«jdbc_mysql_password_param»&useSSL=true";

            private final SendGrid mail = new SendGrid("«sendgrid_key_java_constructor»");

            static {
                Twilio.init("«twilio_api_key_sid_java»", "«twilio_api_secret_java»", "AC4f1d2e3c4b5a69788776655443322110");
            }

            /** Opens the ledger; the audit replica still uses the old SQL Server login. */
            public Connection ledger(boolean audit) throws SQLException {
                if (audit) {
                    return DriverManager.getConnection("jdbc:sqlserver://audit-db:1433;databaseName=ledger", "auditor", "«java_get_connection_positional»");
                }
                return DriverManager.getConnection(LEDGER_URL);
            }

            public String clientSecret() {
                return CLIENT_SECRET;
            }
        }
        """)


def _spring_properties(r: _Rand) -> CorpusFile:
    f = _File("server/src/main/resources/application-prod.properties")
    f.put("properties_datasource_password", ASSIGNMENT, r.password(20))
    f.put("properties_mail_password_letters", ASSIGNMENT, r.letters(16))
    f.put("properties_jwt_secret", ASSIGNMENT, r.s(64, B64))
    f.put("google_oauth_client_secret_properties", VENDOR, r.tok("GOCSPX-", 28, B64URL))
    return f.render("""
        # Production profile; values not set here come from application.properties.
        server.port=8443
        spring.datasource.url=jdbc:postgresql://billing-db.internal:5432/billing
        spring.datasource.username=billing
        spring.datasource.password=«properties_datasource_password»
        spring.mail.host=smtp.mailprovider.net
        spring.mail.username=receipts@acme-corp.dev
        spring.mail.password=«properties_mail_password_letters»
        jwt.secret=«properties_jwt_secret»
        jwt.expiration-minutes=30
        spring.security.oauth2.client.registration.google.client-id=418823-abc.apps.googleusercontent.com
        spring.security.oauth2.client.registration.google.client-secret=«google_oauth_client_secret_properties»
        management.endpoints.web.exposure.include=health,info
        """)


def _settings_ini(r: _Rand) -> CorpusFile:
    f = _File("config/worker.ini")
    f.put("ini_database_password", ASSIGNMENT, r.password(17))
    f.put("mailgun_key_ini", VENDOR, r.tok("key-", 32, HEX))
    f.put("ini_colon_smtp_pass_letters", ASSIGNMENT, r.letters(14))
    f.put("mailchimp_api_key_ini", VENDOR, r.tok("", 32, HEX, f"-us{r.rng.randint(2, 21)}"))
    return f.render("""
        ; The mail worker: reads jobs from the queue, renders templates, sends through Mailgun.
        [queue]
        url = amqp://localhost:5672/%2f
        prefetch = 20

        [database]
        host = mail-db.internal
        user = mailer
        password = «ini_database_password»

        [mailgun]
        domain = mg.acme-corp.dev
        api_key = «mailgun_key_ini»

        [mailchimp]
        list = newsletter
        apikey = «mailchimp_api_key_ini»

        [smtp]
        host: smtp.office365.com
        user: alerts@acme-corp.dev
        pass: «ini_colon_smtp_pass_letters»
        """)


def _rust_lib(r: _Rand) -> CorpusFile:
    f = _File("crates/uploader/src/lib.rs")
    f.put("rust_const_api_key_str", ASSIGNMENT, r.s(32))
    f.put("rust_bearer_auth_call", VENDOR, r.tok("dckr_pat_", 27, B64URL))
    f.put("rust_basic_auth_some", NO_EQUALS, r.password(18))
    f.put("cloudflare_token_rust_static", ASSIGNMENT, r.s(40, B64URL))
    return f.render("""
        //! Uploads build artifacts to the registry and the CDN, and purges the CDN cache afterwards.

        use reqwest::Client;

        const API_KEY: &str = "«rust_const_api_key_str»";
        static CLOUDFLARE_API_TOKEN: &str = "«cloudflare_token_rust_static»";

        /// Pushes one artifact to the registry; the token is the CI bot's Docker Hub token.
        pub async fn push(client: &Client, name: &str, bytes: Vec<u8>) -> reqwest::Result<()> {
            client
                .put(format!("https://registry.acme-corp.dev/v2/{name}/blobs/uploads/"))
                .bearer_auth("«rust_bearer_auth_call»")
                .header("X-Upload-Key", API_KEY)
                .body(bytes)
                .send()
                .await?
                .error_for_status()?;
            Ok(())
        }

        /// The origin behind the CDN still wants basic auth.
        pub async fn warm(client: &Client, url: &str) -> reqwest::Result<u16> {
            let resp = client.get(url).basic_auth("cdn-origin", Some("«rust_basic_auth_some»")).send().await?;
            Ok(resp.status().as_u16())
        }

        /// Purges everything under the zone; used after a release.
        pub async fn purge(client: &Client, zone: &str) -> reqwest::Result<()> {
            client
                .post(format!("https://api.cloudflare.com/client/v4/zones/{zone}/purge_cache"))
                .bearer_auth(CLOUDFLARE_API_TOKEN)
                .json(&serde_json::json!({ "purge_everything": true }))
                .send()
                .await?;
            Ok(())
        }
        """)


def _schema_sql(r: _Rand) -> CorpusFile:
    f = _File("db/migrations/0007_roles.sql")
    f.put("sql_mysql_identified_by", NO_EQUALS, r.password(16))
    f.put("sql_postgres_create_user_password", NO_EQUALS, r.letters(18))
    f.put("sql_alter_role_password", NO_EQUALS, r.password(21))
    f.put("shopify_token_sql_insert", VENDOR, r.tok("shpat_", 32, HEX))
    f.put("sql_grant_identified_by", NO_EQUALS, r.password(14, ALNUM))
    return f.render("""
        -- Roles for the reporting stack: a read-only reader, the migrator and the shop integration.
        -- Applied by hand on the MySQL side; the Postgres part runs in the migration job.

        CREATE USER 'report_reader'@'%' IDENTIFIED BY '«sql_mysql_identified_by»';
        GRANT SELECT ON shop.* TO 'report_reader'@'%';
        GRANT SELECT, INSERT ON shop.audit_log TO 'auditor'@'10.0.%' IDENTIFIED BY '«sql_grant_identified_by»';

        CREATE USER reporting WITH PASSWORD '«sql_postgres_create_user_password»' VALID UNTIL '2026-01-01';
        ALTER ROLE migrator WITH LOGIN PASSWORD '«sql_alter_role_password»';

        CREATE TABLE integrations (
            id SERIAL PRIMARY KEY,
            provider TEXT NOT NULL,
            access_token TEXT NOT NULL,
            created_at TIMESTAMPTZ DEFAULT now()
        );
        INSERT INTO integrations (provider, access_token) VALUES ('shopify', '«shopify_token_sql_insert»');
        """)


def _wp_config_php(r: _Rand) -> CorpusFile:
    f = _File("site/wp-config.php")
    f.put("php_define_db_password", NO_EQUALS, r.password(20))
    f.put("php_define_auth_key_salt", NO_EQUALS, r.s(64, ALNUM + "!#%*+-.:^_~,<>[]|@&(){}"))
    f.put("php_variable_db_password", ASSIGNMENT, r.password(18))
    f.put("php_mysqli_connect_positional", NO_EQUALS, r.letters(17))
    f.put("php_array_arrow_password", ASSIGNMENT, r.password(16))
    return f.render("""
        <?php
        /**
         * Configuration of the marketing site. Loaded by every request before WordPress itself.
         */
        define('DB_NAME', 'marketing');
        define('DB_USER', 'wp_marketing');
        define('DB_PASSWORD', '«php_define_db_password»');
        define('DB_HOST', 'marketing-db.internal');
        define('AUTH_KEY', '«php_define_auth_key_salt»');

        $dbPassword = '«php_variable_db_password»';

        $legacy = [
            'driver'   => 'mysql',
            'host'     => 'crm-db.internal',
            'username' => 'crm_sync',
            'password' => '«php_array_arrow_password»',
        ];

        function crm_link() {
            return mysqli_connect('crm-db.internal', 'crm_sync', '«php_mysqli_connect_positional»', 'crm');
        }

        $table_prefix = 'wp_';
        define('WP_DEBUG', false);
        require_once ABSPATH . 'wp-settings.php';
        """)


def _rails_initializer(r: _Rand) -> CorpusFile:
    f = _File("config/initializers/services.rb")
    f.put("ruby_config_secret_key_base", ASSIGNMENT, r.hex(128))
    f.put("ruby_net_smtp_positional", NO_EQUALS, r.password(17))
    f.put("shopify_token_ruby_fetch_default", VENDOR, r.tok("shpss_", 32, HEX))
    f.put("aws_access_key_ruby_credentials", VENDOR, r.tok("AKIA", 16, UPPER_ALNUM))
    f.put("aws_secret_key_ruby_credentials", VENDOR, r.s(40, B64))
    f.put("ruby_hash_symbol_password", ASSIGNMENT, r.letters(19))
    return f.render("""
        # frozen_string_literal: true

        # Wires the shop to its outside services; loaded once at boot.
        Rails.application.configure do
          config.secret_key_base = '«ruby_config_secret_key_base»'
          config.action_mailer.smtp_settings = { address: "smtp.mailprovider.net", user_name: "shop", password: "«ruby_hash_symbol_password»" }
        end

        SHOPIFY_SHARED_SECRET = ENV.fetch("SHOPIFY_SHARED_SECRET") { "«shopify_token_ruby_fetch_default»" }

        Aws.config.update(
          region: "eu-central-1",
          credentials: Aws::Credentials.new('«aws_access_key_ruby_credentials»', '«aws_secret_key_ruby_credentials»')
        )

        # The warehouse still takes orders by mail; the relay needs a login.
        def notify_warehouse(body)
          Net::SMTP.start("relay.warehouse.example", 587, "shop.acme-corp.dev", "orders", "«ruby_net_smtp_positional»", :login) do |smtp|
            smtp.send_message(body, "orders@acme-corp.dev", "inbox@warehouse.example")
          end
        end
        """)


def _csharp_startup(r: _Rand) -> CorpusFile:
    f = _File("src/Inventory.Api/Startup.cs")
    f.put("csharp_string_conn_password", ASSIGNMENT, r.password(18))
    f.put("csharp_network_credential", NO_EQUALS, r.password(15))
    secret = r.s(34, ALNUM + "~._-")
    f.put("azure_ad_client_secret_csharp", VENDOR, f"{r.s(3)}8Q~{secret}", secret)
    f.put("azure_sql_connection_password", URL, r.password(19, ALNUM + "!#%*+-.^_~"))
    return f.render("""
        using System.Net;
        using Microsoft.Data.SqlClient;
        using Microsoft.Identity.Web;

        namespace Inventory.Api
        {
            /// <summary>Configures services for the inventory API.</summary>
            public class Startup
            {
                string ConnPassword = "«csharp_string_conn_password»";
                const string Inventory = "Server=tcp:inventory-sql.database.windows.net,1433;Initial Catalog=inventory;User ID=inv_app;Password=«azure_sql_connection_password»;Encrypt=True;";

                public void ConfigureServices(IServiceCollection services)
                {
                    services.AddAuthentication().AddMicrosoftIdentityWebApi(options => { }, identity =>
                    {
                        identity.Instance = "https://login.microsoftonline.com/";
                        identity.ClientId = "8c6f0a1e-52d4-4b8e-9f3a-2d1c0b9a8e7f";
                        identity.ClientSecret = "«azure_ad_client_secret_csharp»";
                    });
                    services.AddSingleton(new SqlConnection(Inventory));
                }

                /// <summary>The supplier's SOAP endpoint wants a Windows login.</summary>
                public ICredentials SupplierCredentials() => new NetworkCredential("svc_inventory", "«csharp_network_credential»", "SUPPLIER");
            }
        }
        """)


def _appsettings_json(r: _Rand) -> CorpusFile:
    f = _File("src/Inventory.Api/appsettings.Production.json")
    f.put("azure_storage_account_key", VENDOR, r.tok("", 86, B64, "=="))
    f.put("azure_service_bus_shared_access_key", URL, r.tok("", 43, B64, "="))
    sig = r.s(43)
    f.put("azure_blob_sas_sig", URL, sig + "%3D", sig)
    f.put("json_camel_client_secret", ASSIGNMENT, r.s(30, B64URL))
    return f.render("""
        {
          "Logging": { "LogLevel": { "Default": "Information", "Microsoft.AspNetCore": "Warning" } },
          "ConnectionStrings": {
            "Storage": "DefaultEndpointsProtocol=https;AccountName=acmeinventory;AccountKey=«azure_storage_account_key»;EndpointSuffix=core.windows.net",
            "Bus": "Endpoint=sb://acme-inventory.servicebus.windows.net/;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=«azure_service_bus_shared_access_key»"
          },
          "Exports": {
            "Container": "https://acmeinventory.blob.core.windows.net/exports?sv=2022-11-02&ss=b&srt=co&sp=rl&se=2025-12-31T23:59:59Z&spr=https&sig=«azure_blob_sas_sig»"
          },
          "Supplier": { "clientId": "inventory-api", "clientSecret": "«json_camel_client_secret»" },
          "AllowedHosts": "*"
        }
        """)


def _web_config_xml(r: _Rand) -> CorpusFile:
    f = _File("legacy/Portal/Web.config")
    f.put("xml_appsettings_add_key_value", MARKUP, r.s(32))
    f.put("xml_connection_string_password", URL, r.password(16, ALNUM))
    f.put("xml_machine_key_validation", MARKUP, r.s(128, "0123456789ABCDEF"))
    return f.render("""
        <?xml version="1.0" encoding="utf-8"?>
        <!-- The customer portal on IIS: kept alive until the new dashboard replaces it. -->
        <configuration>
          <appSettings>
            <add key="Environment" value="Production" />
            <add key="ApiKey" value="«xml_appsettings_add_key_value»" />
          </appSettings>
          <connectionStrings>
            <add name="Portal" providerName="System.Data.SqlClient"
                 connectionString="Data Source=portal-sql;Initial Catalog=portal;User Id=portal_web;Password=«xml_connection_string_password»;" />
          </connectionStrings>
          <system.web>
            <machineKey validationKey="«xml_machine_key_validation»" validation="HMACSHA256" />
            <compilation debug="false" targetFramework="4.8" />
          </system.web>
        </configuration>
        """)


def _maven_settings_xml(r: _Rand) -> CorpusFile:
    f = _File("build/maven/settings.xml")
    f.put("maven_settings_server_password", MARKUP, r.password(22))
    f.put("maven_settings_proxy_password", MARKUP, r.letters(15))
    f.put("artifactory_api_key_maven", VENDOR, r.tok("AKCp8", 68))
    return f.render("""
        <settings xmlns="http://maven.apache.org/SETTINGS/1.0.0">
          <!-- CI settings: deploys snapshots to Nexus and resolves through the office proxy. -->
          <servers>
            <server>
              <id>nexus-snapshots</id>
              <username>deployment</username>
              <password>«maven_settings_server_password»</password>
            </server>
            <server>
              <id>artifactory</id>
              <username>ci</username>
              <password>«artifactory_api_key_maven»</password>
            </server>
          </servers>
          <proxies>
            <proxy>
              <id>office</id>
              <host>proxy.office.internal</host>
              <port>3128</port>
              <username>build</username>
              <password>«maven_settings_proxy_password»</password>
            </proxy>
          </proxies>
        </settings>
        """)


def _ant_build_xml(r: _Rand) -> CorpusFile:
    f = _File("build/ant/deploy.xml")
    f.put("xml_property_name_password_value", MARKUP, r.password(18))
    f.put("xml_attribute_password_sshexec", MARKUP, r.letters(19))
    f.put("xml_spring_bean_jwt_secret", MARKUP, r.s(48, B64URL))
    return f.render("""
        <project name="portal-deploy" default="deploy">
          <!-- Copies the war to the app servers and restarts Tomcat; run from the build box only. -->
          <property name="host" value="app01.internal" />
          <property name="password" value="«xml_property_name_password_value»" />
          <target name="deploy">
            <scp file="dist/portal.war" todir="deploy@${host}:/opt/tomcat/webapps" password="${password}" trust="true" />
            <sshexec host="${host}" username="deploy" password="«xml_attribute_password_sshexec»" command="systemctl restart tomcat" />
          </target>
          <beans>
            <bean id="tokens" class="com.acme.portal.TokenService">
              <constructor-arg name="secret" value="«xml_spring_bean_jwt_secret»" />
            </bean>
          </beans>
        </project>
        """)


def _docs_java_service_md(r: _Rand) -> CorpusFile:
    f = _File("server/README.md")
    f.put("markup_md_settings_xml_password", MARKUP, r.password(20))
    f.put("markup_md_tomcat_users_password", MARKUP, r.letters(17))
    f.put("gradle_build_config_field_api_key", ASSIGNMENT, r.s(40))
    return f.render("""
        # Billing server

        The billing server is a Spring Boot service. It builds with Maven on CI and with Gradle on the
        Android side, which shares the model classes.

        ## Building locally

        Maven needs the Nexus login in `~/.m2/settings.xml`; the team's shared deploy account is:

        ```xml
        <server>
          <id>nexus-releases</id>
          <username>release-bot</username>
          <password>«markup_md_settings_xml_password»</password>
        </server>
        ```

        ## Tomcat manager

        The staging Tomcat accepts deploys from the manager app; `conf/tomcat-users.xml` there has:

        ```xml
        <user username="deployer" password="«markup_md_tomcat_users_password»" roles="manager-script"/>
        ```

        ## The shared Android module

        `app/build.gradle.kts` bakes the pricing key into BuildConfig:

        ```kotlin
        buildConfigField("String", "PRICING_API_KEY", "\\"«gradle_build_config_field_api_key»\\"")
        ```
        """)


def _dashboard_html(r: _Rand) -> CorpusFile:
    f = _File("site/templates/dashboard.html")
    f.put("html_data_api_key_attribute", MARKUP, r.s(32, LOWER_ALNUM))
    f.put("google_maps_key_script_src", URL, r.tok("AIza", 35, B64URL))
    f.put("html_meta_content_admin_key", MARKUP, r.hex(32))
    f.put("html_hidden_input_token_value", MARKUP, r.s(40))
    return f.render("""
        <!doctype html>
        <html lang="en">
        <head>
          <meta charset="utf-8">
          <title>Store dashboard</title>
          <meta name="algolia-admin-key" content="«html_meta_content_admin_key»">
          <script src="https://maps.googleapis.com/maps/api/js?key=«google_maps_key_script_src»&libraries=places" async></script>
        </head>
        <body>
          <!-- the widget reads its key from the data attribute at load -->
          <div id="reviews" data-api-key="«html_data_api_key_attribute»" data-store="{{ store.id }}"></div>
          <form action="/admin/sync" method="post">
            <input type="hidden" name="api_token" value="«html_hidden_input_token_value»">
            <button type="submit">Sync inventory now</button>
          </form>
        </body>
        </html>
        """)


def _makefile(r: _Rand) -> CorpusFile:
    f = _File("Makefile")
    f.put("makefile_colon_equals_token", ASSIGNMENT, r.s(32))
    f.put("makefile_question_equals_password", ASSIGNMENT, r.letters(18))
    f.put("makefile_curl_u_recipe", COMMAND_LINE, r.password(15))
    f.put("makefile_heroku_api_key_uuid", ASSIGNMENT, r.uuid(), None)
    f.put("makefile_eval_secret_before_paren", ASSIGNMENT, r.s(30))
    return f.render("""
        # Build, test and ship the widgets service. `make help` lists the targets.
        IMAGE        ?= registry.acme-corp.dev/widgets
        VERSION      := $(shell git describe --tags --always)
        DEPLOY_TOKEN := «makefile_colon_equals_token»
        export REGISTRY_PASSWORD ?= «makefile_question_equals_password»

        .PHONY: test image push deploy

        test:
        \tpytest -q tests/

        image:
        \tdocker build -t $(IMAGE):$(VERSION) .

        push: image
        \tcurl -fsS -u ci-robot:«makefile_curl_u_recipe» -X POST https://registry.acme-corp.dev/api/retention/run
        \tdocker push $(IMAGE):$(VERSION)

        release-notes:
        \t$(eval RELEASE_SECRET=«makefile_eval_secret_before_paren»)
        \t./scripts/notes.sh --sign $(RELEASE_SECRET) > dist/NOTES.md

        deploy: push
        \tHEROKU_API_KEY=«makefile_heroku_api_key_uuid» heroku container:release web --app widgets-prod
        """)


def _gha_release(r: _Rand) -> CorpusFile:
    f = _File(".github/workflows/release.yml")
    f.put("gha_env_dockerhub_pass_pat", ASSIGNMENT, r.tok("dckr_pat_", 27, B64URL))
    f.put("gha_env_npm_token", VENDOR, r.tok("npm_", 36))
    f.put("gha_codecov_token_uuid", ASSIGNMENT, r.uuid(), None)
    f.put("gha_with_password_input", ASSIGNMENT, r.password(20))
    f.put("github_fine_grained_pat_gha", VENDOR, (lambda b: (f"github_pat_{r.s(22)}_{b}", b))(r.s(59)))
    return f.render("""
        name: release
        on:
          push:
            tags: ["v*"]

        env:
          DOCKERHUB_USER: acmebot
          DOCKERHUB_PASS: «gha_env_dockerhub_pass_pat»
          NPM_TOKEN: «gha_env_npm_token»

        jobs:
          publish:
            runs-on: ubuntu-latest
            steps:
              - uses: actions/checkout@v4
                with:
                  token: «github_fine_grained_pat_gha»
              - uses: docker/login-action@v3
                with:
                  username: ${{ env.DOCKERHUB_USER }}
                  password: ${{ env.DOCKERHUB_PASS }}
              - uses: docker/login-action@v3
                with:
                  registry: quay.io
                  username: acme+release
                  password: «gha_with_password_input»
              - run: npm publish --access public
              - uses: codecov/codecov-action@v4
                with:
                  token: «gha_codecov_token_uuid»
        """)


def _docker_compose(r: _Rand) -> CorpusFile:
    f = _File("docker-compose.yml")
    f.put("compose_postgres_password_map", ASSIGNMENT, r.password(16))
    f.put("compose_requirepass_command", COMMAND_LINE, r.letters(20))
    f.put("compose_list_encryption_key", ASSIGNMENT, r.tok("", 43, B64, "="))
    f.put("compose_amqp_url_password", URL, r.s(18))
    f.put("compose_mongo_root_password", ASSIGNMENT, r.password(18))
    return f.render("""
        # Local stack for the order service: database, cache, broker and the service itself.
        services:
          db:
            image: postgres:16
            environment:
              POSTGRES_USER: orders
              POSTGRES_PASSWORD: «compose_postgres_password_map»
          cache:
            image: redis:7
            command: redis-server --appendonly yes --requirepass «compose_requirepass_command»
          mongo:
            image: mongo:7
            environment:
              MONGO_INITDB_ROOT_USERNAME: root
              MONGO_INITDB_ROOT_PASSWORD: «compose_mongo_root_password»
          broker:
            image: rabbitmq:3-management
          orders:
            build: .
            depends_on: [db, cache, broker]
            environment:
              - ENCRYPTION_KEY=«compose_list_encryption_key»
              - RABBITMQ_URL=amqp://orders:«compose_amqp_url_password»@broker:5672/orders
            ports:
              - "8080:8080"
        """)


def _dockerfile(r: _Rand) -> CorpusFile:
    f = _File("services/api/Dockerfile")
    f.put("dockerfile_arg_github_token", VENDOR, r.tok("ghp_", 36))
    f.put("dockerfile_env_space_form_password", ASSIGNMENT, r.letters(18))
    f.put("dockerfile_pip_extra_index_url", URL, r.tok("glpat-", 20, B64URL))
    f.put("dockerfile_npmrc_echo_token", VENDOR, r.tok("npm_", 36))
    f.put("dockerfile_env_equals_secret_key", ASSIGNMENT, r.s(50, ALNUM + "!#%*+-.^_~"))
    return f.render("""
        # The API image: Python app plus the admin frontend, built in two stages.
        FROM node:20-alpine AS frontend
        WORKDIR /ui
        COPY ui/package.json ui/package-lock.json ./
        RUN echo "//registry.npmjs.org/:_authToken=«dockerfile_npmrc_echo_token»" > .npmrc && npm ci && rm .npmrc
        COPY ui/ ./
        RUN npm run build

        FROM python:3.12-slim
        ARG GITHUB_TOKEN=«dockerfile_arg_github_token»
        ENV DB_PASSWORD «dockerfile_env_space_form_password»
        ENV DJANGO_SECRET_KEY=«dockerfile_env_equals_secret_key»
        WORKDIR /app
        COPY requirements.txt .
        RUN pip install --no-cache-dir -r requirements.txt \\
            --extra-index-url https://__token__:«dockerfile_pip_extra_index_url»@gitlab.acme-corp.dev/api/v4/projects/12/packages/pypi/simple
        COPY --from=frontend /ui/dist /app/static
        COPY . .
        CMD ["gunicorn", "api.wsgi", "--bind", "0.0.0.0:8000", "--workers", "4"]
        """)


def _kubeconfig(r: _Rand) -> CorpusFile:
    f = _File("deploy/k8s/kubeconfig-ci.yaml")
    pem = "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEI" + r.s(55, B64) + "\n" + r.s(64, B64) + "\n" + r.s(36, B64) + "\n-----END EC PRIVATE KEY-----\n"
    encoded = base64.b64encode(pem.encode()).decode()
    f.put("kubeconfig_client_key_data", WRAPPED, encoded, encoded[56:-48])  # past the encoded header and footer
    f.put("k8s_service_account_token_jwt", VENDOR, r.jwt({"iss": "kubernetes/serviceaccount", "sub": "system:serviceaccount:ci:deployer"},
                                                        alg="RS256"))
    f.ctx("cert", base64.b64encode(b"-----BEGIN CERTIFICATE-----\n" + r.s(60, B64).encode()).decode())
    return f.render("""
        # kubeconfig for the CI deployer; the cluster CA and the client certificate are public.
        apiVersion: v1
        kind: Config
        clusters:
          - name: prod-eu
            cluster:
              server: https://k8s-prod-eu.acme-corp.dev:6443
        users:
          - name: ci-deployer
            user:
              client-certificate-data: «cert»
              client-key-data: «kubeconfig_client_key_data»
          - name: ci-token
            user:
              token: «k8s_service_account_token_jwt»
        contexts:
          - name: prod-eu
            context: { cluster: prod-eu, user: ci-deployer, namespace: orders }
        current-context: prod-eu
        """)


def _k8s_secret(r: _Rand) -> CorpusFile:
    f = _File("deploy/k8s/orders-secret.yaml")
    f.put("k8s_secret_data_base64_password", WRAPPED, r.b64_of(b"", 18))
    f.put("k8s_string_data_kebab_api_key", ASSIGNMENT, r.s(36))
    f.put("k8s_secret_data_base64_dsn", WRAPPED, r.b64_of(b"postgres://orders:", 20))
    return f.render("""
        # Applied by hand before the first deploy of a new cluster; sealed-secrets takes over after that.
        apiVersion: v1
        kind: Secret
        metadata:
          name: orders
          namespace: orders
        type: Opaque
        data:
          password: «k8s_secret_data_base64_password»
          database-url: «k8s_secret_data_base64_dsn»
        stringData:
          payment-api-key: «k8s_string_data_kebab_api_key»
          log-level: info
        """)


def _docker_config_json(r: _Rand) -> CorpusFile:
    f = _File("deploy/docker/config.json")
    f.put("docker_config_auth_base64", WRAPPED, r.b64_of(b"ci-robot:", 24))
    f.put("docker_config_identity_token", WRAPPED, r.s(64, B64URL))
    f.put("docker_config_ghcr_auth_base64", WRAPPED, r.b64_of(b"acmebot:ghp_", 36))
    return f.render("""
        {
          "auths": {
            "https://index.docker.io/v1/": { "auth": "«docker_config_auth_base64»" },
            "ghcr.io": { "auth": "«docker_config_ghcr_auth_base64»" },
            "acmecr.azurecr.io": { "identitytoken": "«docker_config_identity_token»" }
          },
          "credsStore": "",
          "currentContext": "default",
          "experimental": "disabled"
        }
        """)


def _docs_ssh_access_md(r: _Rand) -> CorpusFile:
    f = _File("docs/ssh-access.md")
    f.put_block("openssh_private_key_md", WRAPPED, "-----BEGIN OPENSSH PRIVATE KEY-----", "-----END OPENSSH PRIVATE KEY-----",
                r.pem_lines(5, first="b3BlbnNzaC1rZXktdjEAAAAA", width=70, last=20, pad="="))
    pub = ["AAAAC3NzaC1lZDI1NTE5AAAAI" + r.s(43, B64)]
    f.ctx("putty3_public", "\n".join(pub))
    f.put_block("putty_v3_private_lines", WRAPPED, "Private-Lines: 1", f"Private-MAC: {r.hex(64)}",
                [(line, line[6:-2]) for line in ["AAAAIG" + r.s(38, B64) + "=="]])
    f.put("htpasswd_apr1_line", WRAPPED, (lambda b: (f"$apr1${r.s(8, ALNUM + './')}${b}", b))(r.s(22, ALNUM + "./")))
    f.put("htpasswd_bcrypt_line", WRAPPED, (lambda b: (f"$2y$10${b}", b))(r.s(53, ALNUM + "./")))
    return f.render("""
        # SSH access to the build hosts

        The build hosts only accept keys. Windows users who cannot run the OpenSSH client can use PuTTY;
        both keys of the shared `builder` account are below until the move to short-lived certificates.

        ## OpenSSH

        Save as `~/.ssh/builder` with mode 0600:

        ```
        «openssh_private_key_md»
        ```

        ## PuTTY

        Save as `builder.ppk`:

        ```
        PuTTY-User-Key-File-3: ssh-ed25519
        Encryption: none
        Comment: builder@build-01
        Public-Lines: 1
        «putty3_public»
        «putty_v3_private_lines»
        ```

        ## The artifact browser

        The nginx in front of the artifact browser checks a password file; its two entries are

        ```
        builder:«htpasswd_apr1_line»
        release:«htpasswd_bcrypt_line»
        ```
        """)


def _legacy_keys_txt(r: _Rand) -> CorpusFile:
    f = _File("ops/legacy/old-keys.txt")
    f.put_block("ssh2_encrypted_private_key", WRAPPED, "---- BEGIN SSH2 ENCRYPTED PRIVATE KEY ----",
                "---- END SSH2 ENCRYPTED PRIVATE KEY ----", r.pem_lines(4, first="P2/56wAAA", width=70, last=28, pad="="),
                between='Comment: "rsa-key-20190412"')
    f.ctx("putty2_public", "\n".join(["AAAAB3NzaC1yc2EAAAABJQAAAQEA" + r.s(36, B64), r.s(64, B64)]))
    f.put_block("putty_v2_private_lines", WRAPPED, "Private-Lines: 3", f"Private-MAC: {r.hex(40)}",
                r.pem_lines(3, width=64, last=40))
    return f.render("""
        Keys of the old bastion (decommissioned, kept for the audit trail)
        ====================================================================

        These were exported from the Tectia server before it was switched off. The audit team asked
        for the original files, so they are pasted here exactly as they came off the machine.

        Tectia export of the root key:

        «ssh2_encrypted_private_key»

        PuTTY copy of the same account's second key (format 2, before PuTTY 0.75):

        PuTTY-User-Key-File-2: ssh-rsa
        Encryption: none
        Comment: imported-openssh-key
        Public-Lines: 2
        «putty2_public»
        «putty_v2_private_lines»

        Both accounts were removed from every host on the day of the migration, according to the log.
        """)


def _tls_fixtures_py(r: _Rand) -> CorpusFile:
    f = _File("tests/fixtures/tls_material.py")
    f.put_block("rsa_private_key_python_string", WRAPPED, "-----BEGIN RSA PRIVATE KEY-----", "-----END RSA PRIVATE KEY-----",
                r.pem_lines(6, first="MIIEowIBAAKCAQEA", last=24, pad="=="))
    # one string literal per line, the way a PEM is pasted into code that has no multi-line strings
    f.put_block("ec_private_key_python_string", WRAPPED, "-----BEGIN EC PRIVATE KEY-----", "-----END EC PRIVATE KEY-----",
                r.pem_lines(3, first="MHcCAQEEI", last=24, pad="=="), sep='\\n"\n    "')
    return f.render('''
        """TLS material for the integration tests of the proxy: a server key and a client key.

        The proxy refuses to start without a key on disk, so the tests write these to a temporary folder.
        """

        SERVER_KEY = """«rsa_private_key_python_string»
        """

        CLIENT_KEY = (
            "«ec_private_key_python_string»\\n"
        )


        def write_keys(folder):
            """Write both keys where the proxy's test configuration expects them."""
            (folder / "server.key").write_text(SERVER_KEY)
            (folder / "client.key").write_text(CLIENT_KEY)
            return folder
        ''')


def _docs_release_signing_md(r: _Rand) -> CorpusFile:
    f = _File("docs/release-signing.md")
    f.put_block("pgp_private_key_block_md", WRAPPED, "-----BEGIN PGP PRIVATE KEY BLOCK-----",
                f"={r.s(4, B64)}\n-----END PGP PRIVATE KEY BLOCK-----",
                r.pem_lines(5, first="lQOYBF", last=30), between="")
    f.put_block("encrypted_pkcs8_key_md", WRAPPED, "-----BEGIN ENCRYPTED PRIVATE KEY-----", "-----END ENCRYPTED PRIVATE KEY-----",
                r.pem_lines(4, first="MIIFHzBJBgkqhkiG9w0BBQ0w", last=32, pad="="))
    f.put("openssl_passout_pass", COMMAND_LINE, r.password(18, ALNUM))
    f.put("gpg_passphrase_flag", COMMAND_LINE, r.passphrase(5))
    return f.render("""
        # Signing releases

        Tarballs are signed with the release key; the APK is signed with the code-signing key, which is
        stored encrypted. Both are here so that a release can be cut when the release manager is away.

        ## The GPG release key

        ```
        «pgp_private_key_block_md»
        ```

        Import it with `gpg --batch --import`, then sign:

        ```sh
        gpg --batch --pinentry-mode loopback --passphrase «gpg_passphrase_flag» --detach-sign dist/widgets.tar.gz
        ```

        ## The code-signing key

        ```
        «encrypted_pkcs8_key_md»
        ```

        Convert it for the Android tools with

        ```sh
        openssl pkcs8 -topk8 -in signing.pem -out signing.p8 -passout pass:«openssl_passout_pass»
        ```
        """)


def _hardhat_config_js(r: _Rand) -> CorpusFile:
    f = _File("contracts/hardhat.config.js")
    f.put("ethereum_private_key_accounts", WRAPPED, r.tok("0x", 64, HEX))
    f.put("etherscan_api_key_object", ASSIGNMENT, r.s(34, UPPER_ALNUM))
    f.put("alchemy_key_in_url_path", URL, r.s(32, B64URL))
    f.put("hardhat_mnemonic_phrase", WRAPPED, " ".join(r.words(12)))
    return f.render("""
        /** Hardhat settings for the loyalty-points contracts: a local chain, Sepolia and mainnet. */
        require("@nomicfoundation/hardhat-toolbox");

        module.exports = {
          solidity: { version: "0.8.24", settings: { optimizer: { enabled: true, runs: 200 } } },
          networks: {
            hardhat: { accounts: { mnemonic: "«hardhat_mnemonic_phrase»" } },
            mainnet: {
              url: "https://eth-mainnet.g.alchemy.com/v2/«alchemy_key_in_url_path»",
              accounts: ["«ethereum_private_key_accounts»"],
            },
          },
          etherscan: { apiKey: "«etherscan_api_key_object»" },
          gasReporter: { enabled: process.env.REPORT_GAS === "1", currency: "EUR" },
        };
        """)


def _gcp_sa_json(r: _Rand) -> CorpusFile:
    f = _File("analytics/gcp/bq-loader-key.json")
    f.put_block("gcp_service_account_private_key", WRAPPED, "-----BEGIN PRIVATE KEY-----", "-----END PRIVATE KEY-----\\n",
                r.pem_lines(6, first="MIIEvQIBADANBgkqhkiG9w0BAQEFAASC", last=28, pad="="), sep="\\n")
    f.put("gcp_service_account_private_key_id", ASSIGNMENT, r.hex(40))
    return f.render("""
        {
          "type": "service_account",
          "project_id": "acme-analytics-prod",
          "private_key_id": "«gcp_service_account_private_key_id»",
          "private_key": "«gcp_service_account_private_key»",
          "client_email": "bq-loader@acme-analytics-prod.iam.gserviceaccount.com",
          "client_id": "104458832917734412245",
          "auth_uri": "https://accounts.google.com/o/oauth2/auth",
          "token_uri": "https://oauth2.googleapis.com/token",
          "universe_domain": "googleapis.com"
        }
        """)


def _postman_collection(r: _Rand) -> CorpusFile:
    f = _File("tools/postman/orders-api.postman_collection.json")
    f.put("postman_header_key_value_bearer", NO_EQUALS, r.s(48, B64URL))
    f.put("postman_api_key_variable", VENDOR, (lambda b: (f"PMAK-{r.hex(24)}-{b}", b))(r.hex(34)))
    f.put("postman_basic_auth_password", NO_EQUALS, r.password(17))
    return f.render("""
        {
          "info": { "name": "Orders API", "schema": "https://schema.getpostman.com/json/collection/v2.1.0/collection.json" },
          "variable": [
            { "key": "baseUrl", "value": "https://orders.acme-corp.dev" },
            { "key": "postmanApiKey", "value": "«postman_api_key_variable»" }
          ],
          "item": [
            {
              "name": "List orders",
              "request": {
                "method": "GET",
                "header": [{ "key": "Authorization", "value": "Bearer «postman_header_key_value_bearer»" }],
                "url": "{{baseUrl}}/v1/orders?status=open"
              }
            },
            {
              "name": "Admin export",
              "request": {
                "method": "POST",
                "auth": { "type": "basic", "basic": [
                  { "key": "username", "value": "exporter", "type": "string" },
                  { "key": "password", "value": "«postman_basic_auth_password»", "type": "string" }
                ] },
                "url": "{{baseUrl}}/admin/export"
              }
            }
          ]
        }
        """)


def _backup_sh(r: _Rand) -> CorpusFile:
    f = _File("scripts/nightly-backup.sh")
    f.put("mysql_p_attached_password", COMMAND_LINE, r.password(16, ALNUM))
    f.put("sshpass_p_quoted", COMMAND_LINE, r.password(14))
    f.put("aws_configure_set_secret", COMMAND_LINE, r.s(40, B64))
    f.put("aws_configure_set_access_key", VENDOR, r.tok("AKIA", 16, UPPER_ALNUM))
    f.put("smbclient_user_percent_password", COMMAND_LINE, r.letters(15))
    f.put("mysqldump_long_password_flag", COMMAND_LINE, r.password(18, ALNUM))
    return f.render("""
        #!/bin/sh
        # Nightly: dump the shop database, copy it to the NAS and to S3, keep fourteen days.
        set -eu
        STAMP=$(date +%Y%m%d)

        mysql -uroot -p«mysql_p_attached_password» -e 'FLUSH TABLES WITH READ LOCK; UNLOCK TABLES;'
        mysqldump --user=backup --password=«mysqldump_long_password_flag» --single-transaction shop | gzip > "/backup/shop-$STAMP.sql.gz"

        sshpass -p '«sshpass_p_quoted»' scp "/backup/shop-$STAMP.sql.gz" nas@192.168.10.5:/volume1/backups/
        smbclient //fileserver/backups -U backup%«smbclient_user_percent_password» -c "put /backup/shop-$STAMP.sql.gz"

        aws configure set aws_access_key_id «aws_configure_set_access_key»
        aws configure set aws_secret_access_key «aws_configure_set_secret»
        aws s3 cp "/backup/shop-$STAMP.sql.gz" s3://acme-backups/shop/

        find /backup -name 'shop-*.sql.gz' -mtime +14 -delete
        """)


def _provision_sh(r: _Rand) -> CorpusFile:
    f = _File("scripts/provision-cluster.sh")
    f.put("docker_login_p_flag", COMMAND_LINE, r.password(20, ALNUM))
    f.put("kubectl_from_literal_password", COMMAND_LINE, r.password(18, ALNUM))
    f.put("helm_set_auth_password", COMMAND_LINE, r.letters(19))
    f.put("rabbitmqctl_add_user_password", COMMAND_LINE, r.password(16, ALNUM))
    f.put("htpasswd_b_command_password", COMMAND_LINE, r.letters(14))
    f.put("az_login_service_principal_p", COMMAND_LINE, (lambda b: (f"{r.s(3)}8Q~{b}", b))(r.s(34, ALNUM + "~._-")))
    f.put("java_d_system_property_password", COMMAND_LINE, r.password(17, ALNUM))
    return f.render("""
        #!/usr/bin/env bash
        # Bring up a fresh staging cluster: registry login, secrets, the chart, the broker's users.
        set -euo pipefail

        az login --service-principal -u 3f2b9c1e-7d4a-4e8f-b6a2-91c0d3e4f5a6 -p «az_login_service_principal_p» --tenant acme-corp.onmicrosoft.com
        docker login -u staging-pull -p «docker_login_p_flag» registry.acme-corp.dev

        kubectl create secret generic orders-db --namespace orders --from-literal=username=orders --from-literal=password=«kubectl_from_literal_password»
        helm upgrade --install queue bitnami/rabbitmq --namespace orders --set auth.username=orders --set auth.password=«helm_set_auth_password»

        kubectl exec -n orders queue-0 -- rabbitmqctl add_user reporting «rabbitmqctl_add_user_password»
        htpasswd -b -c /etc/nginx/.htpasswd grafana «htpasswd_b_command_password»

        # the batch jobs still run on the JVM and take the password as a system property
        java -Dspring.profiles.active=staging -Dspring.datasource.password=«java_d_system_property_password» -jar batch.jar
        """)


def _docs_api_usage_md(r: _Rand) -> CorpusFile:
    f = _File("docs/api-usage.md")
    f.put("curl_x_api_key_header", COMMAND_LINE, r.s(40))
    f.put("shopify_access_token_header", COMMAND_LINE, r.tok("shpat_", 32, HEX))
    basic, rnd = r.b64_of(b"reporter:", 17)  # 9 + 17 bytes = 26: the base64 ends in exactly one "="
    assert basic.endswith("=") and not basic.endswith("==")
    f.put("authorization_basic_double_quoted_one_pad", COMMAND_LINE, basic, rnd)
    f.put("curl_u_user_password", COMMAND_LINE, r.password(17, ALNUM))
    f.put("git_clone_user_password_url", COMMAND_LINE, r.password(16, ALNUM))
    f.put("curl_form_body_password_before_ampersand", COMMAND_LINE, r.password(18, ALNUM))
    f.put("query_api_key_param", URL, r.s(32, HEX))
    f.put("query_access_token_param", URL, r.s(40, B64URL))
    f.put("datadog_api_key_header", VENDOR, r.hex(32))
    f.put("datadog_app_key_header", VENDOR, r.hex(40))
    return f.render("""
        # Using the partner API from the command line

        Partners can call the API with any HTTP client. These are the requests our own scripts send;
        copy them and change the resource paths.

        ## API key header

        ```bash
        curl -H "X-API-Key: «curl_x_api_key_header»" https://partners.acme-corp.dev/v1/catalog
        ```

        ## The Shopify bridge

        ```http
        GET /admin/api/2024-04/products.json HTTP/1.1
        Host: acme-store.myshopify.com
        X-Shopify-Access-Token: «shopify_access_token_header»
        ```

        ## Reporting with basic auth

        ```bash
        curl -sS -H "Authorization: Basic «authorization_basic_double_quoted_one_pad»" https://reports.acme-corp.dev/daily.csv
        curl -sS -u reporting:«curl_u_user_password» https://reports.acme-corp.dev/weekly.csv
        ```

        ## Tokens for the partner portal

        ```bash
        curl -sS -X POST https://auth.acme-corp.dev/oauth/token -d "username=partner-ops&password=«curl_form_body_password_before_ampersand»&grant_type=password"
        ```

        ## Mirroring the examples repository

        ```bash
        git clone https://partner-ci:«git_clone_user_password_url»@git.acme-corp.dev/partners/examples.git
        ```

        ## Legacy endpoints

        The v0 endpoints take the key in the query string:
        `https://partners.acme-corp.dev/v0/stock?sku=1042&api_key=«query_api_key_param»` and the
        feed takes `https://feeds.acme-corp.dev/v0/items.xml?access_token=«query_access_token_param»&since=2024-01-01`.

        ## Metrics

        ```bash
        curl -X GET "https://api.datadoghq.eu/api/v1/dashboard" \\
          -H "DD-API-KEY: «datadog_api_key_header»" -H "DD-APPLICATION-KEY: «datadog_app_key_header»"
        ```
        """)


def _notifier_py(r: _Rand) -> CorpusFile:
    f = _File("services/notifier/channels.py")
    teams = r.hex(32)
    f.put("teams_incoming_webhook", WEBHOOK,
          f"https://acmecorp.webhook.office.com/webhookb2/{r.uuid()}@{r.uuid()}/IncomingWebhook/{teams}/{r.uuid()}", teams)
    chat = r.s(43, B64URL)
    f.put("google_chat_webhook", WEBHOOK,
          f"https://chat.googleapis.com/v1/spaces/AAAA{r.s(7, B64URL)}/messages?key=AIzaSyDdI0hCZtE6vySjMm-WEfRq3CPzqKqqsHI&token={chat}", chat)
    f.put("mattermost_webhook", WEBHOOK, r.tok("https://chat.acme-corp.dev/hooks/", 26, LOWER_ALNUM))
    f.put("smtplib_server_login_positional", NO_EQUALS, r.password(18))
    slack_flow = r.s(24)
    f.put("slack_workflow_webhook", WEBHOOK,
          f"https://hooks.slack.com/triggers/T{r.s(9, UPPER_ALNUM)}/{r.digits(13)}/{slack_flow}", slack_flow)
    return f.render('''
        """Where alerts go: Teams for the ops rota, Google Chat for the warehouse, Mattermost for developers."""

        import smtplib
        from email.message import EmailMessage

        import requests

        CHANNELS = {
            "ops": "«teams_incoming_webhook»",
            "warehouse": "«google_chat_webhook»",
            "dev": "«mattermost_webhook»",
            "support": "«slack_workflow_webhook»",
        }


        def post(channel: str, text: str) -> None:
            """Send one line to a channel; the payload shape is the same for all three services."""
            requests.post(CHANNELS[channel], json={"text": text}, timeout=5).raise_for_status()


        def mail(to: str, subject: str, body: str) -> None:
            """The fallback when every chat service is down."""
            msg = EmailMessage()
            msg["From"], msg["To"], msg["Subject"] = "alerts@acme-corp.dev", to, subject
            msg.set_content(body)
            with smtplib.SMTP("smtp.office365.com", 587) as server:
                server.starttls()
                server.login("alerts@acme-corp.dev", "«smtplib_server_login_positional»")
                server.send_message(msg)
        ''')


def _search_ts(r: _Rand) -> CorpusFile:
    f = _File("services/search/src/clients.ts")
    f.put("algolia_admin_key_positional_ts", NO_EQUALS, r.hex(32))
    f.put("openai_legacy_key_ts_object", VENDOR, (lambda b: (f"sk-{b}T3BlbkFJ{r.s(20)}", b))(r.s(20)))
    f.put("anthropic_key_ts_object", VENDOR, r.tok("sk-ant-api03-", 93, B64URL, "AA"))
    f.put("pinecone_api_key_ts", VENDOR, (lambda b: (f"pcsk_{r.s(6)}_{b}", b))(r.s(63)))
    f.put("ts_fallback_or_literal", ASSIGNMENT, r.s(24, LETTERS))
    return f.render("""
        // Clients of the search service: the index, the embedding models and the rerankers.
        import algoliasearch from "algoliasearch";
        import OpenAI from "openai";
        import Anthropic from "@anthropic-ai/sdk";
        import { Pinecone } from "@pinecone-database/pinecone";

        export const index = algoliasearch("Q4X2LMN0", "«algolia_admin_key_positional_ts»").initIndex("products");
        export const openai = new OpenAI({ apiKey: "«openai_legacy_key_ts_object»", maxRetries: 3 });
        export const claude = new Anthropic({ apiKey: '«anthropic_key_ts_object»' });
        export const vectors = new Pinecone({ apiKey: "«pinecone_api_key_ts»" }).index("products-v3");

        const searchSecret = process.env.SEARCH_SECRET ?? "«ts_fallback_or_literal»";

        export async function embed(texts: string[]): Promise<number[][]> {
          const res = await openai.embeddings.create({ model: "text-embedding-3-small", input: texts });
          return res.data.map((d) => d.embedding);
        }

        export function signed(query: string): string {
          return `${query}&sig=${Buffer.from(searchSecret + query).toString("base64url")}`;
        }
        """)


def _ml_train_yaml(r: _Rand) -> CorpusFile:
    f = _File("ml/configs/finetune.yaml")
    f.put("hf_token_yaml_key", VENDOR, r.tok("hf_", 34, LETTERS))
    f.put("replicate_token_yaml", VENDOR, r.tok("r8_", 37))
    f.put("groq_key_yaml", VENDOR, r.tok("gsk_", 52))
    f.put("langsmith_key_yaml", VENDOR, (lambda b: (f"lsv2_pt_{b}_{r.hex(10)}", b))(r.hex(32)))
    f.put("perplexity_key_yaml", VENDOR, r.tok("pplx-", 48))
    f.put("xai_key_yaml", VENDOR, r.tok("xai-", 80))
    f.put("deepseek_key_yaml", VENDOR, r.tok("sk-", 32, HEX))
    return f.render("""
        # Fine-tuning run for the support-reply model; `python -m ml.finetune ml/configs/finetune.yaml`.
        model:
          base: meta-llama/Llama-3.1-8B-Instruct
          hub_token: «hf_token_yaml_key»
          lora: { r: 16, alpha: 32, dropout: 0.05 }
        data:
          train: s3://acme-ml/support/train.jsonl
          eval: s3://acme-ml/support/eval.jsonl
        judges:
          replicate_api_token: «replicate_token_yaml»
          groq_api_key: «groq_key_yaml»
          perplexity: «perplexity_key_yaml»
          grok: «xai_key_yaml»
          deepseek: «deepseek_key_yaml»
        tracing:
          langchain_api_key: «langsmith_key_yaml»
          project: support-finetune
        training:
          epochs: 3
          lr: 2.0e-4
          batch_size: 16
        """)


def _app_config_yaml(r: _Rand) -> CorpusFile:
    f = _File("app/config/production.yaml")
    f.put("yaml_block_literal_password", ASSIGNMENT, r.password(21))
    f.put("yaml_block_folded_strip_token", ASSIGNMENT, r.s(44, B64URL))
    f.put("yaml_password_uuid", ASSIGNMENT, r.uuid(), None)
    f.put("yaml_german_passwort", ASSIGNMENT, r.letters(16))
    f.put("yaml_kebab_auth_token", ASSIGNMENT, r.s(30))
    f.put("yaml_camel_secret_key_letters", ASSIGNMENT, r.letters(26))
    f.put("yaml_quoted_private_key_passphrase", ASSIGNMENT, r.passphrase(4))
    return f.render("""
        # Production settings of the order app. Values in ${...} come from the environment at start-up.
        server:
          port: 8443
          tls:
            certificate: /etc/orders/tls.crt
            key-passphrase: "«yaml_quoted_private_key_passphrase»"
        database:
          host: ${DB_HOST}
          user: orders
          password: |
            «yaml_block_literal_password»
        search:
          endpoint: https://search.internal:9200
          token: >-
            «yaml_block_folded_strip_token»
        cache:
          password: «yaml_password_uuid»
        partner_de:
          benutzer: bestellungen
          Passwort: «yaml_german_passwort»
        webhooks:
          auth-token: «yaml_kebab_auth_token»
          secretKey: «yaml_camel_secret_key_letters»
        """)


def _seed_data_py(r: _Rand) -> CorpusFile:
    f = _File("scripts/seed_staging.py")
    f.put("python_kwarg_password_connect", ASSIGNMENT, r.password(18))
    f.put("python_getenv_default_secret", ASSIGNMENT, r.s(50, ALNUM + "!#%*+-.^_~"))
    f.put("python_client_secret_after_client_id", ASSIGNMENT, r.s(32, B64URL))
    f.put("python_pragma_allowlist_secret", ASSIGNMENT, r.s(28))
    f.put("python_spanish_contrasena", ASSIGNMENT, r.letters(15))
    f.put("python_db_pass_spaces", ASSIGNMENT, r.password(16, ALNUM))
    f.put("python_value_before_paren", ASSIGNMENT, r.letters(20))
    f.put("python_comment_password_is", NO_EQUALS, r.password(15, ALNUM))
    return f.render('''
        """Fill the staging database with fake customers and orders, then log in as the demo user.

        Usage: python scripts/seed_staging.py --customers 500
        """

        import argparse
        import os

        import psycopg2
        import requests

        DB_PASS = "«python_db_pass_spaces»"
        contraseña = "«python_spanish_contrasena»"
        SECRET_KEY = os.environ.get("SECRET_KEY", "«python_getenv_default_secret»")
        SIGNING_SECRET = "«python_pragma_allowlist_secret»"  # pragma: allowlist secret


        def connect():
            """The staging primary; seeding bypasses the pooler."""
            return psycopg2.connect(host="staging-db.internal", dbname="shop", user="seeder", password="«python_kwarg_password_connect»")


        def demo_session() -> str:
            """Log in as the demo user and return the session token."""
            # the demo user's password is «python_comment_password_is» (reset by set_password below)
            token = requests.post("https://staging.acme-corp.dev/oauth/token", data=dict(grant_type="client_credentials",
                                  client_id = "seed-script", client_secret = "«python_client_secret_after_client_id»")).json()
            set_password("«python_value_before_paren»")
            return token["access_token"]


        def set_password(new):
            """The demo user's password is reset on every seed so that screenshots stay the same."""
            requests.put("https://staging.acme-corp.dev/api/users/demo", json={"password": new}, timeout=10)


        if __name__ == "__main__":
            parser = argparse.ArgumentParser()
            parser.add_argument("--customers", type=int, default=500)
            print(parser.parse_args(), DB_PASS and "db ok", contraseña and "es ok")
        ''')


def _go_worker(r: _Rand) -> CorpusFile:
    f = _File("cmd/worker/main.go")
    f.put("go_struct_field_password", ASSIGNMENT, r.password(18, ALNUM))
    f.put("go_mysql_dsn_password", URL, r.password(16, ALNUM))
    f.put("google_api_key_go_option", VENDOR, r.tok("AIza", 35, B64URL))
    f.put("go_short_var_decl_secret", ASSIGNMENT, r.letters(22))
    f.put("sentry_user_token_go", VENDOR, r.tok("sntryu_", 64, HEX))
    return f.render("""
        // Command worker drains the order queue: reserves stock, geocodes the address, writes the invoice.
        package main

        import (
        	"context"
        	"database/sql"
        	"log"

        	"github.com/redis/go-redis/v9"
        	"googlemaps.github.io/maps"
        	"google.golang.org/api/option"
        )

        func main() {
        	ctx := context.Background()
        	queue := redis.NewClient(&redis.Options{Addr: "queue.internal:6379", Password: "«go_struct_field_password»", DB: 2})
        	db, err := sql.Open("mysql", "orders:«go_mysql_dsn_password»@tcp(orders-db:3306)/orders?parseTime=true")
        	if err != nil {
        		log.Fatal(err)
        	}
        	geo, _ := maps.NewClient(maps.WithAPIKey("«google_api_key_go_option»"))
        	_ = option.WithAPIKey
        	webhookSecret := "«go_short_var_decl_secret»"
        	sentryToken := "«sentry_user_token_go»"
        	log.Printf("worker up: %v %v %v %d %d", queue, db, geo, len(webhookSecret), len(sentryToken))
        	<-ctx.Done()
        }
        """)


def _deploy_toml(r: _Rand) -> CorpusFile:
    f = _File("deploy/fly/app.toml")
    f.put("toml_api_token_string", ASSIGNMENT, r.s(36))
    f.put("flyio_token_toml", VENDOR, r.tok("fm2_", 120, B64))
    f.put("toml_http_basic_password", ASSIGNMENT, r.password(20, ALNUM))
    f.put("cargo_registry_token_toml", VENDOR, r.tok("cio", 32))
    return f.render("""
        # Deployment of the docs site on Fly; the private package index for the build step.
        app = "acme-docs"
        primary_region = "ams"

        [build]
          dockerfile = "Dockerfile.docs"

        [env]
          SEARCH_URL = "https://search.acme-corp.dev"
          api_token = "«toml_api_token_string»"

        [deploy]
          fly_api_token = "FlyV1 «flyio_token_toml»"
          strategy = "rolling"

        [http-basic.acme]
          username = "docs-ci"
          password = "«toml_http_basic_password»"

        [registries.crates-io]
          token = "«cargo_registry_token_toml»"
        """)


def _docs_troubleshooting_md(r: _Rand) -> CorpusFile:
    f = _File("docs/troubleshooting.md")
    f.put("facebook_access_token_prose", VENDOR, r.tok("EAAG", 160))
    f.put("bitbucket_app_password_clone", VENDOR, (lambda b: (f"ATBB{b}{r.s(8, '0123456789ABCDEF')}", b))(r.s(24)))
    f.put("mailgun_key_curl_user", VENDOR, r.tok("key-", 32, HEX))
    f.put("tailscale_auth_key_prose", VENDOR, (lambda b: (f"tskey-auth-k{r.s(10)}CNTRL-{b}", b))(r.s(33)))
    f.put("okta_ssws_header", VENDOR, r.tok("00", 40, B64URL))
    f.put("heroku_new_format_token", VENDOR, r.tok("HRKU-AA", 58, B64URL))
    f.put("prose_login_slash_password", NO_EQUALS, r.password(16, ALNUM))
    return f.render("""
        # Troubleshooting

        Problems people hit in their first weeks, and what fixed them last time.

        ## "Invalid OAuth access token" from the Facebook importer

        The page token expires after sixty days. The one in use until March was
        «facebook_access_token_prose» and it has to be replaced through the Graph API explorer.

        ## Bitbucket mirror fails with 401

        The mirror job clones with an app password:
        `git clone https://x-token-auth:«bitbucket_app_password_clone»@bitbucket.org/acme-legacy/catalog.git`.
        If that fails the app password was revoked; ask the Bitbucket admin for a new one.

        ## Mail bounces from the staging domain

        Check the domain with `curl -s --user 'api:«mailgun_key_curl_user»' https://api.eu.mailgun.net/v3/domains/mg.acme-corp.dev`.

        ## A new laptop cannot reach the internal network

        Join the tailnet with the reusable key «tailscale_auth_key_prose» and the tag `tag:laptop`.

        ## The user directory import stops at page 20

        Okta paginates; the importer must follow the `next` link. Reproduce with
        `curl -H "Authorization: SSWS «okta_ssws_header»" "https://acme.okta.com/api/v1/users?limit=200"`.

        ## The admin console rejects the SSO login

        SSO for the admin console breaks after every IdP certificate change. Until it is fixed, the
        break-glass login is `console-admin` / `«prose_login_slash_password»`.

        ## Heroku CLI says "invalid credentials"

        The CLI token in CI was rotated to `«heroku_new_format_token»`; log in again with `heroku login -i`.
        """)


def _frontend_config_js(r: _Rand) -> CorpusFile:
    f = _File("frontend/src/integrations.js")
    f.put("contentful_pat_js", VENDOR, r.tok("CFPAT-", 43, B64URL))
    f.put("figma_token_js", VENDOR, r.tok("figd_", 40, B64URL))
    f.put("notion_token_js", VENDOR, r.tok("ntn_", 46))
    f.put("airtable_pat_js", VENDOR, (lambda b: (f"pat{r.s(14)}.{b}", b))(r.hex(64)))
    f.put("shopify_custom_app_token_js", VENDOR, r.tok("shpca_", 32, HEX))
    f.put("js_object_password_single_quotes", ASSIGNMENT, r.password(16))
    return f.render("""
        // Content and design integrations for the marketing pages (build time only, never shipped).
        import { createClient } from "contentful-management";

        export const contentful = createClient({ accessToken: "«contentful_pat_js»" });

        export const figma = { token: "«figma_token_js»", file: "kP3mXy8Q2sLrWb6tZn" };

        export const notion = { auth: "«notion_token_js»", database: "5c7d6e2f19a04b0e9a2b" };

        export const airtable = {
          apiKey: "«airtable_pat_js»",
          base: "appL9Qx2Yw3Zv4Tu",
        };

        export const shop = { domain: "acme-store.myshopify.com", adminToken: "«shopify_custom_app_token_js»" };

        export const previewAuth = { user: 'preview', password: '«js_object_password_single_quotes»' };

        export function assetUrl(id) {
          return `https://images.ctfassets.net/acme/${id}?fm=webp&q=80`;
        }
        """)


def _rake_deploy(r: _Rand) -> CorpusFile:
    f = _File("lib/tasks/deploy.rake")
    f.put("github_fine_grained_pat_octokit", VENDOR, (lambda b: (f"github_pat_{r.s(22)}_{b}", b))(r.s(59)))
    f.put("ruby_sftp_password_option", ASSIGNMENT, r.password(17))
    f.put("rubygems_api_key_rake", VENDOR, r.tok("rubygems_", 48, HEX))
    f.put("braintree_access_token_rake", VENDOR,
          (lambda b: (f"access_token$production${r.s(16, LOWER_ALNUM)}${b}", b))(r.hex(32)))
    return f.render("""
        # Deploy tasks: tag the release on GitHub, upload the catalog feed, publish the client gem.
        namespace :deploy do
          desc "Tag the release and open the changelog pull request"
          task :tag, [:version] => :environment do |_t, args|
            client = Octokit::Client.new(access_token: "«github_fine_grained_pat_octokit»")
            client.create_ref("acme-corp/shop", "refs/tags/v#{args[:version]}", `git rev-parse HEAD`.strip)
          end

          desc "Upload the product feed to the marketplace"
          task feed: :environment do
            Net::SFTP.start("sftp.marketplace.example", "acme_feed", password: "«ruby_sftp_password_option»") do |sftp|
              sftp.upload!("tmp/feed.xml", "/incoming/feed.xml")
            end
          end

          desc "Publish the API client gem"
          task :gem do
            ENV["GEM_HOST_API_KEY"] = "«rubygems_api_key_rake»"
            sh "gem build acme_client.gemspec && gem push acme_client-*.gem"
          end

          task :payments_smoke do
            gateway = Braintree::Gateway.new(access_token: "«braintree_access_token_rake»")
            puts gateway.client_token.generate
          end
        end
        """)


def _redis_conf(r: _Rand) -> CorpusFile:
    f = _File("conf/redis/redis-replica.conf")
    f.put("redis_conf_requirepass", NO_EQUALS, r.s(32, LETTERS))
    f.put("redis_conf_masterauth", NO_EQUALS, r.password(24, ALNUM))
    f.put("redis_conf_acl_user_password", NO_EQUALS, r.s(20))
    return f.render("""
        # Replica of the session cache; follows the primary in the other zone.
        bind 0.0.0.0
        port 6379
        protected-mode yes
        replicaof cache-primary.internal 6379
        masterauth «redis_conf_masterauth»
        requirepass «redis_conf_requirepass»
        user metrics on >«redis_conf_acl_user_password» ~* +info +ping
        maxmemory 2gb
        maxmemory-policy allkeys-lru
        appendonly no
        """)


def _nginx_conf(r: _Rand) -> CorpusFile:
    f = _File("conf/nginx/upstream-auth.conf")
    basic, rnd = r.b64_of(b"gw-proxy:", 19)
    f.put("nginx_proxy_set_header_basic", NO_EQUALS, basic, rnd)
    f.put("nginx_map_api_key", NO_EQUALS, r.s(36))
    return f.render("""
        # The public gateway signs every request to the legacy backend with the backend's own login.
        upstream legacy_backend {
            server legacy-01.internal:8080;
            server legacy-02.internal:8080 backup;
        }

        map $http_x_partner $partner_key {
            default "";
            "northwind" "«nginx_map_api_key»";
        }

        server {
            listen 443 ssl;
            server_name legacy.acme-corp.dev;
            location / {
                proxy_set_header Authorization "Basic «nginx_proxy_set_header_basic»";
                proxy_set_header X-Partner-Key $partner_key;
                proxy_pass http://legacy_backend;
            }
        }
        """)


def _pgbouncer_userlist(r: _Rand) -> CorpusFile:
    f = _File("conf/pgbouncer/README.md")
    f.put("pgbouncer_scram_verifier", WRAPPED,
          (lambda b: (f"SCRAM-SHA-256$4096:{r.s(24, B64)}${b}:{r.s(44, B64)}", b))(r.s(43, B64) + "="))
    f.put("pgbouncer_md5_hash", WRAPPED, r.tok("md5", 32, HEX))
    f.put("pgbouncer_plaintext_userlist", NO_EQUALS, r.password(19))
    return f.render("""
        # PgBouncer in front of the orders database

        The pooler runs on every app host and talks to the primary over TLS. Its `userlist.txt`
        is rendered by the config management from the list below; the admin user keeps a plain
        password because the health check predates SCRAM support.

        ```
        "orders_app" "«pgbouncer_scram_verifier»"
        "reporting" "«pgbouncer_md5_hash»"
        "pgbouncer_admin" "«pgbouncer_plaintext_userlist»"
        ```

        Reload with `kill -HUP $(pidof pgbouncer)`; connections in flight are not dropped.
        """)


def _docs_payments_md(r: _Rand) -> CorpusFile:
    f = _File("docs/payments-providers.md")
    f.put("square_access_token_md", VENDOR, r.tok("EAAA", 60, B64URL))
    f.put("square_oauth_secret_md", VENDOR, r.tok("sq0csp-", 43, B64URL))
    f.put("razorpay_key_secret_md", NO_EQUALS, r.s(24))
    f.put("mollie_live_key_md", VENDOR, r.tok("live_", 30))
    f.put("plaid_access_token_md", VENDOR, (lambda u: (f"access-production-{u}", u))(r.uuid()))
    f.put("flutterwave_secret_key_md", VENDOR, r.tok("FLWSECK-", 32, HEX, "-X"))
    f.put("shippo_live_token_md", VENDOR, r.tok("shippo_live_", 40, HEX))
    f.put("easypost_api_key_md", VENDOR, r.tok("EZAK", 54))
    f.put("duffel_live_token_md", VENDOR, r.tok("duffel_live_", 43, B64URL))
    f.put("lob_live_key_md", VENDOR, r.tok("live_", 35, HEX))
    return f.render("""
        # Payment and shipping providers by country

        | Country | Provider    | Production credential |
        |---------|-------------|-----------------------|
        | US      | Square      | `«square_access_token_md»` |
        | US      | Square app  | `«square_oauth_secret_md»` |
        | IN      | Razorpay    | key id `rzp_live_Q3aZx9KpLm2T8v`, secret `«razorpay_key_secret_md»` |
        | NL      | Mollie      | `«mollie_live_key_md»` |
        | US      | Plaid       | `«plaid_access_token_md»` |
        | NG      | Flutterwave | `«flutterwave_secret_key_md»` |

        Shipping labels are bought from Shippo in Europe (`«shippo_live_token_md»`) and from EasyPost in
        North America (`«easypost_api_key_md»`). Travel for the sales team is booked through Duffel
        with `«duffel_live_token_md»`; printed letters go out through Lob with `«lob_live_key_md»`.

        When a provider is added, add its row here and its key to the vault, then ask finance to sign off.
        """)


def _docs_devtools_md(r: _Rand) -> CorpusFile:
    f = _File("docs/developer-tools.md")
    f.put("buildkite_token_md", VENDOR, r.tok("bkua_", 40, HEX))
    f.put("circleci_pat_md", VENDOR, (lambda b: (f"CCIPAT_{r.s(22)}_{b}", b))(r.hex(40)))
    f.put("sonarqube_token_md", VENDOR, r.tok("squ_", 40, HEX))
    f.put("nuget_api_key_md", VENDOR, r.tok("oy2", 43, LOWER_ALNUM))
    f.put("octopus_api_key_md", VENDOR, r.tok("API-", 26, UPPER_ALNUM))
    f.put("jenkins_api_token_md", COMMAND_LINE, r.tok("11", 32, HEX))
    f.put("clojars_token_md", VENDOR, r.tok("CLOJARS_", 60, HEX))
    f.put("readme_api_key_md", VENDOR, r.tok("rdme_", 70, LOWER_ALNUM))
    return f.render("""
        # Developer tools and their service accounts

        The build tools run under service accounts so that nobody's personal token ends up in a job log.
        This is the list the platform team keeps for rotations.

        - Buildkite agent API: `export BUILDKITE_API_TOKEN=«buildkite_token_md»`
        - CircleCI (the mobile pipelines): `circleci setup --token «circleci_pat_md» --host https://circleci.com`
        - SonarQube: `sonar-scanner -Dsonar.host.url=https://sonar.acme-corp.dev -Dsonar.token=«sonarqube_token_md»`
        - NuGet feed: `dotnet nuget push bin/Release/*.nupkg --api-key «nuget_api_key_md» --source https://api.nuget.org/v3/index.json`
        - Octopus Deploy: `octo create-release --project Portal --server https://deploy.acme-corp.dev --apiKey «octopus_api_key_md»`
        - Jenkins (legacy jobs): `curl -X POST -u release:«jenkins_api_token_md» https://jenkins.acme-corp.dev/job/portal/build`
        - Clojars, for the one Clojure library: `CLOJARS_PASSWORD=«clojars_token_md» lein deploy clojars`
        - ReadMe docs sync: `rdme openapi openapi.yaml --key=«readme_api_key_md» --id=64f1c0`

        Tokens older than a year are revoked by the quarterly audit whether or not they are in use.
        """)


def _docs_cloud_md(r: _Rand) -> CorpusFile:
    f = _File("docs/cloud-accounts.md")
    f.put("aws_session_token_md", VENDOR, r.tok("IQoJb3JpZ2luX2VjE", 300, B64))
    f.put("gcp_oauth_access_token_md", VENDOR, r.tok("ya29.", 150, B64URL))
    f.put("google_refresh_token_md", VENDOR, r.tok("1//0", 100, B64URL))
    f.put("alibaba_access_key_md", VENDOR, r.tok("LTAI", 20))
    f.put("alibaba_secret_md", COMMAND_LINE, r.s(30))
    f.put("yandex_oauth_token_md", VENDOR, r.tok("y0_", 55, B64URL))
    f.put("age_secret_key_md", VENDOR, r.tok("AGE-SECRET-KEY-1", 58, BECH32))
    f.put("dynatrace_token_md", VENDOR, (lambda b: (f"dt0c01.{r.s(24, UPPER_ALNUM)}.{b}", b))(r.s(64, UPPER_ALNUM)))
    return f.render("""
        # Cloud accounts

        The company runs on AWS; GCP hosts the analytics warehouse and Alibaba Cloud the China storefront.

        ## Temporary AWS credentials

        When SSO is down, an admin issues a session with `aws sts get-session-token` and shares it:

        ```
        export AWS_SESSION_TOKEN=«aws_session_token_md»
        ```

        ## GCP from a script

        A quick call with an access token works for an hour:
        `curl -H "Authorization: Bearer «gcp_oauth_access_token_md»" https://bigquery.googleapis.com/bigquery/v2/projects/acme-analytics-prod/datasets`;
        the refresh token of the warehouse robot is «google_refresh_token_md».

        ## Alibaba Cloud

        ```sh
        aliyun configure set --profile cn --mode AK --access-key-id «alibaba_access_key_md» --access-key-secret «alibaba_secret_md» --region cn-shanghai
        ```

        ## Yandex Cloud mirror

        The Russian mirror was closed in 2022; its token was `«yandex_oauth_token_md»`.

        ## Encrypted backups

        Backups are encrypted with age; the recipient's identity file contains the single line
        `«age_secret_key_md»`.

        ## Monitoring

        Dynatrace ingests from the EU tenant with `Api-Token «dynatrace_token_md»`.
        """)


def _docs_saas_md(r: _Rand) -> CorpusFile:
    f = _File("docs/saas-inventory.md")
    f.put("planetscale_token_md", VENDOR, r.tok("pscale_tkn_", 43, B64URL))
    f.put("planetscale_password_md", VENDOR, r.tok("pscale_pw_", 43, B64URL))
    f.put("netlify_token_md", VENDOR, r.tok("nfp_", 36))
    f.put("neon_api_key_md", VENDOR, r.tok("napi_", 64, LOWER_ALNUM))
    f.put("resend_api_key_md", VENDOR, (lambda b: (f"re_{r.s(8)}_{b}", b))(r.s(24)))
    f.put("render_api_key_md", VENDOR, r.tok("rnd_", 32))
    f.put("scalingo_token_md", VENDOR, r.tok("tk-us-", 48, B64URL))
    f.put("typeform_token_md", VENDOR, (lambda b: (f"tfp_{b}_{r.s(14)}", b))(r.s(44)))
    f.put("adafruit_io_key_md", VENDOR, r.tok("aio_", 28))
    f.put("dropbox_short_lived_md", VENDOR, r.tok("sl.", 135, B64URL))
    f.put("prefect_api_key_md", VENDOR, r.tok("pnu_", 36))
    return f.render("""
        # SaaS inventory

        Finance asked for a list of every service we pay for and the account that owns it. Where a
        service has an API token in use, it is listed so that offboarding can revoke it.

        * PlanetScale (the old catalog database): service token `«planetscale_token_md»`, branch password `«planetscale_password_md»`.
        * Netlify (the status page): `«netlify_token_md»`.
        * Neon (preview databases per pull request): `NEON_API_KEY=«neon_api_key_md»`.
        * Resend (transactional mail for the startup program): «resend_api_key_md».
        * Render (the partner sandbox): «render_api_key_md».
        * Scalingo (the French hosting for the public sector customer): «scalingo_token_md».
        * Typeform (surveys): «typeform_token_md».
        * Adafruit IO (the office sensors, yes really): «adafruit_io_key_md».
        * Dropbox (legal's shared folder, token from the app console): «dropbox_short_lived_md».
        * Prefect Cloud (data pipelines): «prefect_api_key_md».

        Services without an API token (Figma seats, the CRM) are in the finance sheet instead.
        """)


def _firebase_kt(r: _Rand) -> CorpusFile:
    f = _File("mobile/app/src/main/kotlin/com/acme/shop/push/PushSender.kt")
    f.put("firebase_server_key_kotlin", VENDOR, (lambda b: (f"AAAA{r.s(7, B64URL)}:APA91b{b}", b))(r.s(134, B64URL)))
    f.put("kotlin_header_authorization_bearer", COMMAND_LINE, r.s(40, B64URL))
    f.put("cloudinary_url_kotlin", URL, (lambda b: (f"cloudinary://{r.digits(15)}:{b}@acme-shop", b))(r.s(27, B64URL)))
    return f.render("""
        package com.acme.shop.push

        import org.json.JSONObject
        import okhttp3.MediaType.Companion.toMediaType
        import okhttp3.OkHttpClient
        import okhttp3.Request
        import okhttp3.RequestBody.Companion.toRequestBody

        /** Sends order updates to the customer's phone through the legacy FCM endpoint. */
        class PushSender(private val http: OkHttpClient = OkHttpClient()) {
            private val serverKey = "«firebase_server_key_kotlin»"
            private val images = "«cloudinary_url_kotlin»"

            fun send(deviceToken: String, title: String): Int {
                val body = JSONObject(mapOf("to" to deviceToken, "notification" to mapOf("title" to title))).toString()
                val request = Request.Builder()
                    .url("https://fcm.googleapis.com/fcm/send")
                    .header("Authorization", "key=$serverKey")
                    .header("X-Relay-Auth", "Bearer «kotlin_header_authorization_bearer»")
                    .post(body.toRequestBody("application/json".toMediaType()))
                    .build()
                http.newCall(request).execute().use { return it.code }
            }
        }
        """)


def _php_api_client(r: _Rand) -> CorpusFile:
    f = _File("site/src/PartnerClient.php")
    f.put("php_curl_userpwd_option", COMMAND_LINE, r.password(17, ALNUM))
    f.put("php_bearer_header_array", COMMAND_LINE, r.s(40))
    f.put("php_private_const_token", ASSIGNMENT, r.s(32, HEX))
    f.put("php_pdo_dsn_password_arg", NO_EQUALS, r.password(16))
    return f.render("""
        <?php

        namespace Acme\\Site;

        /** Pulls partner offers into the marketing site; run by the hourly cron. */
        final class PartnerClient
        {
            private const PARTNER_TOKEN = '«php_private_const_token»';

            public function offers(): array
            {
                $ch = curl_init('https://offers.partner.example/api/v2/offers');
                curl_setopt($ch, CURLOPT_USERPWD, "acme:«php_curl_userpwd_option»");
                curl_setopt($ch, CURLOPT_HTTPHEADER, ['Authorization: Bearer «php_bearer_header_array»', 'Accept: application/json']);
                curl_setopt($ch, CURLOPT_RETURNTRANSFER, true);
                return json_decode(curl_exec($ch), true) ?? [];
            }

            public function store(array $offers): void
            {
                $pdo = new \\PDO('mysql:host=marketing-db.internal;dbname=marketing', 'offers_writer', '«php_pdo_dsn_password_arg»');
                $stmt = $pdo->prepare('REPLACE INTO offers (id, title, price) VALUES (?, ?, ?)');
                foreach ($offers as $o) {
                    $stmt->execute([$o['id'], $o['title'], $o['price']]);
                }
            }
        }
        """)


def _urls_py(r: _Rand) -> CorpusFile:
    f = _File("services/etl/sources.py")
    f.put("redis_url_empty_user_password", URL, r.s(24))
    f.put("rediss_url_default_user", URL, r.password(20, ALNUM))
    f.put("mongodb_srv_url_password", URL, r.password(18, ALNUM))
    f.put("postgres_url_percent_encoded_password", URL, (lambda b: (f"{b}%40{r.s(6)}%21", b))(r.s(14)))
    f.put("ftp_url_password", URL, r.letters(14))
    f.put("elasticsearch_url_password", URL, r.s(20))
    f.put("smtp_url_password", URL, r.password(16, ALNUM))
    f.put("gitlab_api_private_token_query", URL, r.tok("glpat-", 20, B64URL))
    return f.render('''
        """Every source the nightly ETL reads from, and the sink it writes to."""

        SOURCES = {
            "sessions": "redis://:«redis_url_empty_user_password»@sessions-cache.internal:6379/0",
            "rate_limits": "rediss://default:«rediss_url_default_user»@edge-cache.acme-corp.dev:6380/1",
            "events": "mongodb+srv://etl:«mongodb_srv_url_password»@cluster0.x8k2p.mongodb.net/events?retryWrites=true",
            "orders": "postgresql://etl_reader:«postgres_url_percent_encoded_password»@orders-replica.internal:5432/orders",
            "supplier_feed": "ftp://acme:«ftp_url_password»@ftp.supplier.example/outgoing/",
            "logs": "https://etl:«elasticsearch_url_password»@logs.internal:9200/app-*",
            "issues": "https://gitlab.acme-corp.dev/api/v4/projects/42/issues?private_token=«gitlab_api_private_token_query»&state=opened",
        }
        REPORT_MAIL = "smtp://reports:«smtp_url_password»@smtp.mailprovider.net:587"


        def describe(name: str) -> str:
            """The scheme and host of a source, for the run log (never the whole URL)."""
            from urllib.parse import urlsplit

            parts = urlsplit(SOURCES[name])
            return f"{parts.scheme}://{parts.hostname}"
        ''')


def _s3_presign_md(r: _Rand) -> CorpusFile:
    f = _File("docs/data-exports.md")
    f.put("s3_presigned_signature", URL, r.hex(64))
    f.put("s3_presigned_credential_key_id", URL, r.tok("ASIA", 16, UPPER_ALNUM))
    f.put("jdbc_sqlserver_semicolon_password", URL, r.password(17, ALNUM))
    f.put("amqps_url_password_md", URL, r.s(22))
    return f.render("""
        # Data exports for customers

        Enterprise customers get a nightly export of their data. The link in the export mail is a
        presigned S3 URL that stays valid for seven days, for example:

        ```
        https://acme-exports.s3.eu-west-1.amazonaws.com/cust-1042/2024-06-01.parquet?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=«s3_presigned_credential_key_id»%2F20240601%2Feu-west-1%2Fs3%2Faws4_request&X-Amz-Date=20240601T020000Z&X-Amz-Expires=604800&X-Amz-SignedHeaders=host&X-Amz-Signature=«s3_presigned_signature»
        ```

        Customers on SQL Server get the export loaded into their own database instead; their DBA gives
        us a connection string like `jdbc:sqlserver://db.customer.example:1433;databaseName=acme_export;user=acme_loader;password=«jdbc_sqlserver_semicolon_password»;encrypt=true`.

        The export job is queued on the broker at `amqps://exports:«amqps_url_password_md»@broker.acme-corp.dev:5671/exports`.
        """)


def _docs_database_tools_md(r: _Rand) -> CorpusFile:
    f = _File("docs/database-tools.md")
    f.put("mongosh_password_flag", COMMAND_LINE, r.password(18, ALNUM))
    f.put("sqlcmd_capital_p_flag", COMMAND_LINE, r.password(16, ALNUM))
    f.put("mysqladmin_password_positional", COMMAND_LINE, r.letters(17))
    f.put("ldapsearch_w_flag", COMMAND_LINE, r.password(15, ALNUM))
    f.put("xfreerdp_p_flag", COMMAND_LINE, r.password(14, ALNUM))
    f.put("keytool_storepass_flag", COMMAND_LINE, r.letters(16))
    f.put("ansible_extra_vars_become_pass", COMMAND_LINE, r.password(15, ALNUM))
    return f.render("""
        # Database and admin tools

        Command lines for the admin tasks that come up every few months, so nobody has to dig through
        shell history. Run them from the bastion, not from a laptop.

        Open a shell on the events cluster:

            mongosh "mongodb://events-0.internal:27017/events" --username admin --password «mongosh_password_flag»

        Query the supplier database on the Windows host:

            sqlcmd -S supplier-sql.internal -U sa -P «sqlcmd_capital_p_flag» -Q "SELECT COUNT(*) FROM suppliers"

        Reset the root password of the lab MySQL after a reinstall:

            mysqladmin -u root password '«mysqladmin_password_positional»'

        Find a user in the directory:

            ldapsearch -x -H ldaps://ldap.internal -D "cn=admin,dc=acme,dc=corp" -w «ldapsearch_w_flag» "(uid=jdoe)"

        Remote desktop to the accounting PC:

            xfreerdp /v:acct-pc.internal /u:Administrator /p:«xfreerdp_p_flag» /cert:ignore

        Import the partner's certificate into the Java trust store:

            keytool -importcert -alias partner -file partner.crt -keystore truststore.jks -storepass «keytool_storepass_flag» -noprompt

        Patch the web hosts:

            ansible-playbook patch.yml -i inventory/web --extra-vars "ansible_become_pass=«ansible_extra_vars_become_pass»"
        """)


def _shell_assignments_sh(r: _Rand) -> CorpusFile:
    f = _File("scripts/env/staging.sh")
    f.put("shell_export_jwt_signing_key", ASSIGNMENT, r.s(64, B64URL))
    f.put("shell_smtp_pass_letters", ASSIGNMENT, r.letters(16))
    f.put("shell_encryption_key_hex", ASSIGNMENT, r.hex(64))
    f.put("shell_value_before_semicolon", ASSIGNMENT, r.password(17, ALNUM))
    f.put("shell_value_before_ampersands", ASSIGNMENT, r.s(50, ALNUM + "!#%*+-.^_~"))
    f.put("shell_heroku_api_key_uuid", ASSIGNMENT, r.uuid(), None)
    f.put("shell_lowercase_passphrase", ASSIGNMENT, r.passphrase(5))
    f.put("shell_single_quoted_token", ASSIGNMENT, r.s(40))
    return f.render("""
        #!/usr/bin/env bash
        # Sourced by the staging deploy: everything the app reads from its environment.
        # shellcheck disable=SC2034

        export APP_ENV=staging
        export JWT_SIGNING_KEY=«shell_export_jwt_signing_key»
        SMTP_USER=staging-mailer
        SMTP_PASS=«shell_smtp_pass_letters»
        ENCRYPTION_KEY="«shell_encryption_key_hex»"
        export ADMIN_PASSWORD=«shell_value_before_semicolon»; export ADMIN_USER=ops
        DJANGO_SECRET_KEY=«shell_value_before_ampersands»&& python manage.py check --deploy
        HEROKU_API_KEY=«shell_heroku_api_key_uuid»
        backup_passphrase=«shell_lowercase_passphrase»
        export SLACK_SIGNING_SECRET='«shell_single_quoted_token»'

        echo "staging environment loaded for ${APP_ENV}"
        """)


def _python_settings(r: _Rand) -> CorpusFile:
    f = _File("shop/settings/production.py")
    f.put("python_databases_dict_password", ASSIGNMENT, r.password(20))
    f.put("python_aws_secret_setting", ASSIGNMENT, r.s(40, B64))
    f.put("python_email_host_password_letters", ASSIGNMENT, r.letters(16))
    f.put("python_class_attribute_api_key", ASSIGNMENT, r.s(32))
    f.put("openai_service_account_key_py", VENDOR, r.tok("sk-svcacct-", 120, B64URL))
    f.put("anthropic_admin_key_py", VENDOR, r.tok("sk-ant-admin01-", 93, B64URL, "AA"))
    f.put("sendgrid_key_python_setting", VENDOR, (lambda b: (f"SG.{r.s(22, B64URL)}.{b}", b))(r.s(43, B64URL)))
    return f.render('''
        """Production settings of the shop; everything else is inherited from base.py."""

        from .base import *  # noqa: F401,F403

        DEBUG = False
        ALLOWED_HOSTS = ["shop.acme-corp.dev"]

        DATABASES = {
            "default": {
                "ENGINE": "django.db.backends.postgresql",
                "NAME": "shop",
                "USER": "shop",
                "PASSWORD": "«python_databases_dict_password»",
                "HOST": "shop-db.internal",
            }
        }

        AWS_SECRET_ACCESS_KEY = "«python_aws_secret_setting»"
        EMAIL_HOST_PASSWORD = '«python_email_host_password_letters»'
        SENDGRID_API_KEY = "«sendgrid_key_python_setting»"
        OPENAI_API_KEY = "«openai_service_account_key_py»"
        ANTHROPIC_ADMIN_KEY = "«anthropic_admin_key_py»"


        class RecommenderConfig:
            """Settings of the recommendation widget on product pages."""

            api_key = "«python_class_attribute_api_key»"
            timeout_seconds = 2
        ''')


def _java_more(r: _Rand) -> CorpusFile:
    f = _File("server/src/main/java/com/acme/billing/ReportMailer.java")
    f.put("java_local_var_password", ASSIGNMENT, r.letters(18))
    f.put("java_annotation_default_value", ASSIGNMENT, r.s(30))
    f.put("java_setter_call_password", NO_EQUALS, r.password(16, ALNUM))
    f.put("java_hashmap_put_token", NO_EQUALS, r.s(36))
    return f.render("""
        package com.acme.billing;

        import java.util.HashMap;
        import java.util.Map;
        import javax.mail.Session;
        import org.springframework.beans.factory.annotation.Value;

        /** Mails the monthly invoice report to finance. */
        public class ReportMailer {
            @Value("${report.api-key:«java_annotation_default_value»}")
            private String apiKey;

            public Session session() {
                String smtpPassword = "«java_local_var_password»";
                var props = new java.util.Properties();
                props.put("mail.smtp.auth", "true");
                return Session.getInstance(props, new javax.mail.Authenticator() {
                    protected javax.mail.PasswordAuthentication getPasswordAuthentication() {
                        return new javax.mail.PasswordAuthentication("reports", smtpPassword);
                    }
                });
            }

            public Map<String, String> headers(com.acme.http.Client client) {
                client.setPassword("«java_setter_call_password»");
                Map<String, String> h = new HashMap<>();
                h.put("X-Auth-Token", "«java_hashmap_put_token»");
                return h;
            }
        }
        """)


def _csharp_more(r: _Rand) -> CorpusFile:
    f = _File("src/Inventory.Worker/SupplierSync.cs")
    f.put("csharp_var_api_key", ASSIGNMENT, r.s(32))
    f.put("csharp_property_initializer_secret", ASSIGNMENT, r.letters(24))
    f.put("csharp_authorization_header_value", COMMAND_LINE, r.s(40, B64URL))
    return f.render("""
        using System.Net.Http;
        using System.Net.Http.Headers;

        namespace Inventory.Worker
        {
            /// <summary>Pulls stock levels from the supplier every fifteen minutes.</summary>
            public sealed class SupplierSync
            {
                public string WebhookSecret { get; init; } = "«csharp_property_initializer_secret»";

                public async Task<string> FetchAsync(HttpClient http)
                {
                    var apiKey = "«csharp_var_api_key»";
                    http.DefaultRequestHeaders.Add("X-Api-Key", apiKey);
                    http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", "«csharp_authorization_header_value»");
                    return await http.GetStringAsync("https://supplier.example/api/stock");
                }
            }
        }
        """)


def _rust_more(r: _Rand) -> CorpusFile:
    f = _File("crates/uploader/src/config.rs")
    f.put("rust_struct_literal_password", ASSIGNMENT, r.password(17, ALNUM))
    f.put("rust_let_secret_string_from", ASSIGNMENT, r.letters(21))
    f.put("rust_header_insert_token", COMMAND_LINE, r.s(36))
    return f.render("""
        //! Configuration of the uploader, with the defaults used when no file is given.

        use reqwest::header::{HeaderMap, HeaderValue};

        /// Where the uploader sends artifacts, and how it logs in.
        pub struct Config {
            pub registry: String,
            pub username: String,
            pub password: String,
        }

        impl Config {
            /// The defaults of the nightly job.
            pub fn nightly() -> Self {
                Config { registry: "registry.acme-corp.dev".into(), username: "nightly".into(), password: "«rust_struct_literal_password»".into() }
            }

            /// Headers for the CDN's management API.
            pub fn cdn_headers() -> HeaderMap {
                let secret = String::from("«rust_let_secret_string_from»");
                let mut headers = HeaderMap::new();
                headers.insert("X-Cdn-Secret", HeaderValue::from_str(&secret).unwrap());
                headers.insert("Authorization", HeaderValue::from_static("Token «rust_header_insert_token»"));
                headers
            }
        }
        """)


def _ruby_more(r: _Rand) -> CorpusFile:
    f = _File("app/services/erp_client.rb")
    f.put("ruby_constant_api_key", ASSIGNMENT, r.s(32))
    f.put("ruby_basic_auth_positional", NO_EQUALS, r.password(17, ALNUM))
    f.put("ruby_hash_rocket_secret", ASSIGNMENT, r.s(28, LETTERS))
    return f.render("""
        # frozen_string_literal: true

        # Talks to the ERP: pushes orders, reads back invoice numbers.
        class ErpClient
          API_KEY = "«ruby_constant_api_key»"

          def initialize(http = Faraday.new("https://erp.acme-corp.dev"))
            @http = http
            @http.request(:authorization, :basic, "shop", "«ruby_basic_auth_positional»")
            @opts = { :client => "shop", :client_secret => "«ruby_hash_rocket_secret»" }
          end

          # Sends one order and returns the ERP's invoice number.
          def push(order)
            resp = @http.post("/api/orders", order.to_json, "X-Api-Key" => API_KEY, "Content-Type" => "application/json")
            JSON.parse(resp.body).fetch("invoice_number")
          end
        end
        """)


def _go_more(r: _Rand) -> CorpusFile:
    f = _File("internal/payments/client.go")
    f.put("go_const_block_api_secret", ASSIGNMENT, r.s(40))
    f.put("go_header_set_bearer", COMMAND_LINE, r.s(44, B64URL))
    f.put("go_set_basic_auth_call", NO_EQUALS, r.password(18, ALNUM))
    return f.render("""
        // Package payments wraps the acquirer's HTTP API.
        package payments

        import (
        	"net/http"
        	"strings"
        )

        const (
        	baseURL   = "https://api.acquirer.example/v3"
        	apiSecret = "«go_const_block_api_secret»"
        )

        // Capture captures an authorised payment.
        func Capture(id string) (*http.Response, error) {
        	req, err := http.NewRequest("POST", baseURL+"/payments/"+id+"/capture", strings.NewReader("{}"))
        	if err != nil {
        		return nil, err
        	}
        	req.Header.Set("Authorization", "Bearer «go_header_set_bearer»")
        	req.Header.Set("X-Signature-Secret", apiSecret)
        	return http.DefaultClient.Do(req)
        }

        // Refund goes through the older endpoint, which only knows basic auth.
        func Refund(id string) (*http.Response, error) {
        	req, _ := http.NewRequest("POST", baseURL+"/legacy/refund/"+id, nil)
        	req.SetBasicAuth("acme-refunds", "«go_set_basic_auth_call»")
        	return http.DefaultClient.Do(req)
        }
        """)


def _kotlin_more(r: _Rand) -> CorpusFile:
    f = _File("mobile/app/src/main/kotlin/com/acme/shop/data/Backend.kt")
    f.put("kotlin_private_val_token", ASSIGNMENT, r.s(36))
    f.put("kotlin_companion_const_password", ASSIGNMENT, r.password(16, ALNUM))
    f.put("kotlin_credentials_basic_call", NO_EQUALS, r.letters(18))
    return f.render("""
        package com.acme.shop.data

        import okhttp3.Credentials
        import okhttp3.Interceptor

        /** The shop backend: the app's only server, reached through the API gateway. */
        class Backend {
            private val accessToken = "«kotlin_private_val_token»"

            fun interceptor() = Interceptor { chain ->
                chain.proceed(chain.request().newBuilder()
                    .header("X-Access-Token", accessToken)
                    .header("Proxy-Authorization", Credentials.basic("mobile", "«kotlin_credentials_basic_call»"))
                    .build())
            }

            companion object {
                const val DEBUG_MENU_PASSWORD = "«kotlin_companion_const_password»"
            }
        }
        """)


def _js_more(r: _Rand) -> CorpusFile:
    f = _File("services/gateway/src/upstreams.mjs")
    f.put("js_let_snake_secret", ASSIGNMENT, r.s(30))
    f.put("js_axios_auth_password", ASSIGNMENT, r.password(17, ALNUM))
    f.put("js_fetch_headers_token_paren", COMMAND_LINE, r.s(40, B64URL))
    f.put("js_template_literal_api_key", URL, r.s(32, HEX))
    return f.render("""
        // Upstream services of the API gateway, with the credentials each one expects.
        import axios from "axios";

        let upstream_secret = "«js_let_snake_secret»";

        export const inventory = axios.create({
          baseURL: "https://inventory.internal",
          auth: { username: "gateway", password: "«js_axios_auth_password»" },
        });

        export async function weather(city) {
          const res = await fetch(`https://api.weather.example/v1/current?city=${city}&appid=«js_template_literal_api_key»`);
          return res.json();
        }

        export async function loyalty(userId) {
          return fetch("https://loyalty.internal/points/" + userId, { headers: { Authorization: "Token «js_fetch_headers_token_paren»" } });
        }

        export const signer = { secret: upstream_secret, algorithm: "HS256" };
        """)


def _toml_more(r: _Rand) -> CorpusFile:
    f = _File("crates/uploader/uploader.toml")
    f.put("toml_inline_table_password", ASSIGNMENT, r.password(18, ALNUM))
    f.put("toml_secret_key_letters", ASSIGNMENT, r.letters(24))
    f.put("toml_multiline_basic_string_token", ASSIGNMENT, r.s(40))
    return f.render('''
        # Uploader settings for the release pipeline; the nightly job overrides [target].
        [target]
        registry = "registry.acme-corp.dev"
        login = { user = "release", password = "«toml_inline_table_password»" }

        [cdn]
        zone = "acme-static"
        secret_key = "«toml_secret_key_letters»"
        purge_token = """
        «toml_multiline_basic_string_token»"""

        [retries]
        attempts = 5
        backoff_seconds = 2.5
        ''')


def _json_more(r: _Rand) -> CorpusFile:
    f = _File("config/integrations.json")
    f.put("json_snake_api_key", ASSIGNMENT, r.s(32))
    f.put("json_screaming_password_letters", ASSIGNMENT, r.letters(18))
    f.put("json_nested_token_field", ASSIGNMENT, r.s(40, B64URL))
    f.put("trello_token_json", VENDOR, r.hex(64))
    return f.render("""
        {
          "crm": { "url": "https://crm.acme-corp.dev", "api_key": "«json_snake_api_key»", "sync_interval": 300 },
          "ftp_drop": { "host": "drop.partner.example", "USER": "acme", "PASSWORD": "«json_screaming_password_letters»" },
          "helpdesk": { "oauth": { "client": "acme-shop", "token": "«json_nested_token_field»" } },
          "trello": { "key": "3f9e2d1c0b4a59687c6d5e4f3a2b1c0d", "token": "«trello_token_json»", "board": "ops-rota" }
        }
        """)


def _more_md_assignment(r: _Rand) -> CorpusFile:
    f = _File("docs/local-development.md")
    f.put("md_env_file_block_api_token", ASSIGNMENT, r.s(36))
    f.put("md_env_file_block_db_password_letters", ASSIGNMENT, r.letters(17))
    f.put("md_inline_code_secret", ASSIGNMENT, r.s(32, B64URL))
    f.put("md_docker_run_e_password", COMMAND_LINE, r.password(16, ALNUM))
    return f.render("""
        # Local development

        The app reads its settings from the environment. Copy the block below into a file named
        `.env` at the root of your checkout (it is ignored by git); the values are the shared dev ones.

        ```dotenv
        APP_ENV=development
        PAYMENTS_API_TOKEN=«md_env_file_block_api_token»
        DATABASE_PASSWORD=«md_env_file_block_db_password_letters»
        ```

        If you run the webhook receiver, also set `WEBHOOK_SECRET=«md_inline_code_secret»` or the
        signature check rejects every delivery.

        ## Running the database in Docker

        ```sh
        docker run -d --name shop-db -e POSTGRES_USER=shop -e POSTGRES_PASSWORD=«md_docker_run_e_password» -p 5432:5432 postgres:16
        ```

        Then run the migrations with `make migrate` and load the fixtures with `make fixtures`.
        """)


def _netrc_txt(r: _Rand) -> CorpusFile:
    f = _File("ci/netrc.txt")
    f.put("netrc_multiline_password", NO_EQUALS, r.password(22, ALNUM))
    f.put("netrc_heroku_uuid_password", NO_EQUALS, r.uuid(), None)
    f.put("netrc_github_token_password", VENDOR, r.tok("ghp_", 36))
    return f.render("""
        The CI image copies this file to /root/.netrc at build time so that pip, git and the Heroku
        CLI can fetch from the private hosts without prompting.

        machine pypi.acme-corp.dev
          login ci
          password «netrc_multiline_password»

        machine api.heroku.com
          login deploy@acme-corp.dev
          password «netrc_heroku_uuid_password»

        machine github.com login acme-ci password «netrc_github_token_password»
        """)


def _alertmanager_yaml(r: _Rand) -> CorpusFile:
    f = _File("monitoring/alertmanager.yml")
    hook = r.s(24)
    f.put("slack_webhook_alertmanager_yaml", WEBHOOK,
          f"https://hooks.slack.com/services/T{r.s(10, UPPER_ALNUM)}/B{r.s(11, UPPER_ALNUM)}/{hook}", hook)
    teams = r.hex(32)
    f.put("teams_webhook_alertmanager_yaml", WEBHOOK,
          f"https://acmecorp.webhook.office.com/webhookb2/{r.uuid()}@{r.uuid()}/IncomingWebhook/{teams}/{r.uuid()}/V2{r.s(40, B64URL)}", teams)
    f.put("opsgenie_api_key_alertmanager", ASSIGNMENT, r.uuid(), None)
    f.put("pagerduty_routing_key_alertmanager", ASSIGNMENT, r.hex(32))
    return f.render("""
        # Alert routing: pages for the on-call, chat for everything else, mail as the last resort.
        global:
          resolve_timeout: 5m
          slack_api_url: «slack_webhook_alertmanager_yaml»
          opsgenie_api_key: «opsgenie_api_key_alertmanager»
        route:
          receiver: chat
          group_by: [alertname, cluster]
          routes:
            - matchers: [severity="page"]
              receiver: oncall
        receivers:
          - name: chat
            slack_configs:
              - channel: "#alerts"
                send_resolved: true
            webhook_configs:
              - url: «teams_webhook_alertmanager_yaml»
          - name: oncall
            pagerduty_configs:
              - routing_key: «pagerduty_routing_key_alertmanager»
        """)


def _gha_nightly(r: _Rand) -> CorpusFile:
    f = _File(".github/workflows/nightly.yml")
    hook = r.s(68, B64URL)
    f.put("discord_webhook_gha_run", WEBHOOK, f"https://discordapp.com/api/webhooks/{r.digits(18)}/{hook}", hook)
    f.put("gha_run_curl_bearer", COMMAND_LINE, r.s(40, B64URL))
    f.put("gha_env_snowflake_password", ASSIGNMENT, r.password(18, ALNUM))
    return f.render("""
        name: nightly
        on:
          schedule:
            - cron: "17 3 * * *"
          workflow_dispatch: {}

        jobs:
          warehouse-refresh:
            runs-on: ubuntu-latest
            env:
              SNOWFLAKE_ACCOUNT: acme-eu1
              SNOWFLAKE_USER: dbt_runner
              SNOWFLAKE_PASSWORD: «gha_env_snowflake_password»
            steps:
              - uses: actions/checkout@v4
              - run: pip install dbt-snowflake==1.8.* && dbt build --target prod
              - name: Tell the data channel
                if: always()
                run: |
                  curl -fsS -H "Authorization: Bearer «gha_run_curl_bearer»" https://status.acme-corp.dev/api/jobs/nightly/${{ job.status }}
                  curl -fsS -H "Content-Type: application/json" -d '{"content": "nightly dbt: ${{ job.status }}"}' «discord_webhook_gha_run»
        """)


def _path_github(r: _Rand) -> CorpusFile:
    f = _File("tokens/«path_github_pat_folder»/README.md")
    f.put("path_github_pat_folder", PATH, r.tok("ghp_", 36))
    return f.render("""
        # Bot account notes

        This folder belonged to the release bot before it moved to the GitHub App. It is kept because
        the changelog generator still reads `labels.json` from here; nothing else uses it.
        """)


def _path_hf(r: _Rand) -> CorpusFile:
    f = _File("notes/«path_hf_token_file_name».md")
    f.put("path_hf_token_file_name", PATH, r.tok("hf_", 34, LETTERS))
    return f.render("""
        # Model upload checklist

        1. Run the evaluation suite and paste the scores into the model card.
        2. Check the licence of every dataset the model saw during fine-tuning.
        3. Upload with the organisation account, never a personal one.
        """)


def _path_slack(r: _Rand) -> CorpusFile:
    f = _File("exports/«path_slack_token_folder»/channels.md")
    f.put("path_slack_token_folder", PATH, (lambda b: (f"xoxp-{r.digits(11)}-{r.digits(11)}-{r.digits(13)}-{b}", b))(r.hex(32)))
    return f.render("""
        # Exported channels

        - #general: company announcements, kept
        - #random: kept for the culture archive
        - #deploys: dropped, the deploy log is in the CI system anyway
        """)


def _path_gitlab(r: _Rand) -> CorpusFile:
    f = _File("uploads/«path_gitlab_token_folder»/notes.txt")
    f.put("path_gitlab_token_folder", PATH, r.tok("glpat-", 20, B64URL))
    return f.render("""
        Uploaded from the old wiki during the migration. The attachments of the pages listed in
        pages.csv are in the attachments folder next to this file, named by page id.
        """)


def _path_aws(r: _Rand) -> CorpusFile:
    f = _File("backups/«path_aws_key_in_file_name»-rotation.md")
    f.put("path_aws_key_in_file_name", PATH, r.tok("AKIA", 16, UPPER_ALNUM))
    return f.render("""
        # Rotation log

        The key named in this file was rotated on the first of the month. The replacement is in the
        vault under `aws/ci-deployer`; the CI variables were updated the same day.
        """)


_FILES = [
    _docs_setup_md, _docs_ci_md, _config_bots_yaml, _scripts_release_sh, _web_auth_ts, _billing_stripe_py,
    _bots_discord_js, _ops_slack_go, _infra_main_tf, _jira_sync_py, _deploy_vault_sh, _notebook_churn, _notebook_geo,
    _kotlin_api_config, _java_payment_gateway, _spring_properties, _settings_ini, _rust_lib, _schema_sql, _wp_config_php,
    _rails_initializer, _csharp_startup, _appsettings_json, _web_config_xml, _maven_settings_xml, _ant_build_xml,
    _docs_java_service_md, _dashboard_html, _makefile, _gha_release, _docker_compose, _dockerfile, _kubeconfig,
    _k8s_secret, _docker_config_json, _docs_ssh_access_md, _legacy_keys_txt, _tls_fixtures_py, _docs_release_signing_md,
    _hardhat_config_js, _gcp_sa_json, _postman_collection, _backup_sh, _provision_sh, _docs_api_usage_md, _notifier_py,
    _search_ts, _ml_train_yaml, _app_config_yaml, _seed_data_py, _go_worker, _deploy_toml, _docs_troubleshooting_md,
    _frontend_config_js, _rake_deploy, _redis_conf, _nginx_conf, _pgbouncer_userlist, _docs_payments_md,
    _docs_devtools_md, _docs_cloud_md, _docs_saas_md, _firebase_kt, _php_api_client, _urls_py, _s3_presign_md,
    _docs_database_tools_md, _shell_assignments_sh, _python_settings, _java_more, _csharp_more, _rust_more, _ruby_more,
    _go_more, _kotlin_more, _js_more, _toml_more, _json_more, _more_md_assignment, _netrc_txt,
    _alertmanager_yaml, _gha_nightly,
    _path_github, _path_hf, _path_slack, _path_gitlab, _path_aws,
]


def generate(seed: int | None = None) -> list[CorpusFile]:
    """One corpus. seed None draws from the OS (fresh values every call); an int reproduces a corpus."""
    rng = _random.SystemRandom() if seed is None else _random.Random(seed)
    r = _Rand(rng)
    files = [build(r) for build in _FILES]
    paths = [f.path for f in files]
    assert len(set(paths)) == len(paths), "two corpus files share a path"
    forms_seen = [p.form for f in files for p in f.planted]
    assert len(set(forms_seen)) == len(forms_seen), "a form id is planted twice"
    return files


def forms() -> list[str]:
    """Every form id (key blocks count once, not once per body line)."""
    return sorted({base_form(p.form) for f in generate(0) for p in f.planted})


def leaks(files: list[CorpusFile], blobs: dict[str, bytes]) -> list[tuple[str, str, str]]:
    """(form, where, what) for each planted value found in a blob: the whole value, or any WINDOW-long
    run of its random part. A partial redaction (the tail of a token kept, a key line left behind) is
    a leak too, which is why windows and not only whole values are looked for.

    Matching ignores case: a lowercased copy (a search index, a normalised field) gives away a hex or
    lowercase token entirely and most of any other; random windows never match ordinary text by chance.
    """
    planted = [p for f in files for p in f.planted]
    windows: dict[bytes, Planted] = {}
    for p in planted:
        rnd = p.random.lower().encode()
        for i in range(len(rnd) - WINDOW + 1):
            windows.setdefault(rnd[i:i + WINDOW], p)
    found: list[tuple[str, str, str]] = []
    for where, data in blobs.items():
        low = data.lower()
        hit: set[str] = set()
        for p in planted:
            if p.value.lower().encode() in low:
                found.append((p.form, where, "the whole value"))
                hit.add(p.form)
        # one pass over the blob with a dict of windows: fast enough for a run directory's few MB
        get = windows.get
        for i in range(len(low) - WINDOW + 1):
            p = get(low[i:i + WINDOW])
            if p is not None and p.form not in hit:
                hit.add(p.form)
                found.append((p.form, where, f"{WINDOW} characters of its random part at byte {i}"))
    return found


def run_dir_blobs(run: Path) -> dict[str, bytes]:
    """Every file under a run directory, as bytes, by its path relative to the run."""
    return {str(p.relative_to(run)): p.read_bytes() for p in sorted(Path(run).rglob("*")) if p.is_file()}


# Lines that look like credentials but are placeholders, references or ordinary code. A scanner must
# return each unchanged and report nothing: redacting these would damage the corpus for no gain.
PLACEHOLDER_LINES: list[str] = [
    'password = os.environ["DB_PASSWORD"]',
    "token: ${{ secrets.GITHUB_TOKEN }}",
    'api_key = "<your-api-key>"',
    "PASSWORD=changeme",
    "secret: xxxxxxxx",
    "API_KEY=YOUR_API_KEY",
    'curl -H "Authorization: Bearer $TOKEN" https://api.example.com/v1/me',
    "password: str",
    "def login(password: str) -> bool:",
    "token = tokenizer(text)",
    '"password": "example"',
    "DB_PASS=${DB_PASS}",
    'echo "$REGISTRY_PASSWORD" | docker login -u ci --password-stdin registry.example.com',
    'api_key = os.getenv("OPENAI_API_KEY")',
    "const token = process.env.GITHUB_TOKEN;",
    'let api_key = std::env::var("API_KEY")?;',
    'val secret = System.getenv("CLIENT_SECRET")',
    'private static final String PASSWORD_FIELD = "password";',
    'token := os.Getenv("SLACK_BOT_TOKEN")',
    "$password = getenv('DB_PASSWORD');",
    'config.secret_key_base = ENV["SECRET_KEY_BASE"]',
    'password = "********"',
    "AWS_SECRET_ACCESS_KEY=<your secret access key>",
    "Authorization: Bearer <token>",
    'password = getpass.getpass("Password: ")',
    "if password != confirm_password:",
    '"token_type": "bearer",',
    "max_tokens = 512",
    'secret_name = "prod/db/password"',
    "password_hash = bcrypt.hashpw(password.encode(), bcrypt.gensalt())",
    "<password>${env.NEXUS_PASSWORD}</password>",
    'api_key: "{{ .Values.apiKey }}"',
    "client_secret = settings.CLIENT_SECRET",
    "password_reset_token_ttl = 3600",
    '"secretOrKey": config.jwtSecret,',
    'psql --host db --username app --password "$DB_PASSWORD"',
    'mysql -u root -p"$MYSQL_ROOT_PASSWORD" shop',
    "REDIS_URL=redis://:${REDIS_PASSWORD}@redis:6379/0",
    "PGPASSWORD=$PGPASSWORD psql -h db -U app",
    "Token token = tokenService.issue(user);",
    "public string Password { get; set; }",
    "export GITHUB_TOKEN=ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
    'headers = {"Authorization": f"Bearer {token}"}',
    "SECRET_KEY = env('DJANGO_SECRET_KEY')",
    # masks, fillers, build-tool tokens, interpolations, an elided value
    "assert \"'authorization': '[secure]'\" in str(response.request.headers)",
    "use Rack::Session::Cookie, secret: 'CHANGEMEaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'",
    "curl -H 'Authorization: Bearer blahblahblah' http://localhost:3000/api",
    '<replace token="$next-version$" value="${project.version}"/>',
    '<input type="hidden" name="authenticity_token" value="#{Rack::Protection::AuthenticityToken.token(env[\'rack.session\'])}" />',
    'echo "export SESSION_SECRET=99ae8af...snip...ec0f262ac" >> ~/.bashrc',
]


def clean_corpus() -> list[tuple[str, str]]:
    """The false-positive corpus: this repository's own code and docs (tests/ aside: they plant
    credentials on purpose) and the code of two real packages, requests and click. (path, text) of each."""
    import subprocess

    import click
    import requests

    root = Path(__file__).resolve().parent.parent
    tracked = subprocess.run(["git", "ls-files"], cwd=root, capture_output=True, text=True, check=True).stdout.split()
    files = [(p, root / p) for p in tracked if not p.startswith("tests/") and not p.endswith((".png", ".arrow"))]
    for package in (requests, click):
        folder = Path(package.__file__).parent
        files += [(f"{folder.name}/{p.relative_to(folder)}", p) for p in sorted(folder.rglob("*.py"))]
    return [(rel, path.read_text()) for rel, path in files if path.is_file()]
