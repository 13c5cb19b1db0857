"""serve: a local page to compare base and tuned side by side: `repotune serve runs/NAME`.

A small ASGI app (Starlette, served by uvicorn on localhost): a query box; the base model, the tuned
model and the hybrid (tuned + BM25) answer it over the run's chunk corpus, each hit with its path,
lines, score and text; below, the run's report with its tables and plots. Everything is local: the
models and corpus embeddings load once (the run's stored index), the page has no external assets.

/label labels a question set: a question's pooled hits of the three systems, ticked and saved into
the run's question set (``RunDir.questions``) as question-set lines (docs/evaluation.md); the saved questions with
edit and delete, a counter toward the gate's ``questions.min_questions``, and the drafts of
`repotune questions draft` to keep or discard. Plain HTML forms; what a write does is evaluation's
(``evaluation.labelling``), each one atomic through ``questions.QuestionFile``.

An interface beside the CLI (it loads models, the corpus, the labelling and the gate's policy): the routes and what
each view shows; the views' HTML is ``templates/search.html`` and ``templates/label.html`` (Jinja2, autoescaped), their
style ``templates/serve.css``.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, quote, urlencode, urlsplit

from jinja2 import Environment, FileSystemLoader

from .common import hub_offline
from .errors import RepotuneError
from .evaluation.labelling import LabelError, Labelling
from .evaluation.questions import (
    RANK_DEPTH,
    QuestionError,
    QuestionFile,
    first_rank,
    matching,
    rows_by_file,
)
from .rundir import RunDir

COLAB_PROXY = ".googleusercontent.com"  # where Colab serves a kernel port to the notebook's own browser tab
SYSTEMS = (("base", "base model, dense"), ("tuned", "tuned model, dense"), ("hybrid", "tuned + BM25 (hybrid)"))

TEMPLATES = Path(__file__).parent / "templates"
_STYLE = (TEMPLATES / "serve.css").read_text()  # the page's only style, no external asset
_TEMPLATES = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True)


class ServeError(RepotuneError, RuntimeError):
    """The run cannot be served; the message says what to run first."""


class Comparison:
    """Base and tuned indexes over one run's corpus, loaded once."""

    def __init__(self, run_dir: str | Path):
        from sentence_transformers import SentenceTransformer

        from .dataset import load_corpus
        from .models import resolve_model
        from .retrieval.search import Index, load_model, model_settings, run_subjects

        self.run = RunDir(run_dir)
        if not (self.run.model / "modules.json").is_file():
            raise ServeError(f"no trained model in {self.run.model}: run `repotune run REPO --out {self.run.root}` first")
        recipe = self.run.read_recipe()
        settings = model_settings(self.run.model)
        rows = list(load_corpus(self.run))
        self.rows = rows
        self.position = {r["id"]: i for i, r in enumerate(rows)}
        self.by_file = rows_by_file(rows)
        offline = hub_offline()
        base = SentenceTransformer(resolve_model(recipe.train.base_model), local_files_only=offline)
        base.max_seq_length = recipe.train.max_seq_length
        index_dir = self.run.root / "index"
        subjects = run_subjects(self.run.root, settings["expand"])
        self.indexes = {name: Index(model, rows, settings["context"], index_dir, settings["hybrid_alpha"], subjects)
                        for name, model in (("base", base), ("tuned", load_model(self.run.model)))}

    def answer(self, query: str, k: int = 5) -> dict[str, list[dict]]:
        return {"base": self.indexes["base"].hits([query], "dense", k)[0],
                "tuned": self.indexes["tuned"].hits([query], "dense", k)[0],
                "hybrid": self.indexes["tuned"].hits([query], "hybrid", k)[0]}

    def pool(self, query: str, k: int, also: set[str] = frozenset()) -> list[dict]:
        """The top ``k`` of base, tuned and hybrid pooled, one entry per chunk id (plus the chunks ``also``
        names): {"row", "ranks": system -> rank over the whole corpus, None past questions.RANK_DEPTH},
        best-ranked first."""
        from .retrieval.search import top_k

        ids = [r["id"] for r in self.rows]
        scores = {"base": self.indexes["base"].scores([query], "dense")[0], "tuned": self.indexes["tuned"].scores([query], "dense")[0],
                  "hybrid": self.indexes["tuned"].scores([query], "hybrid")[0]}
        pooled = list(dict.fromkeys([h["corpus_id"] for s in scores.values() for h in top_k(s[None, :], ids, k)[0]] +
                                    [i for i in ids if i in also]))
        out = [{"row": self.rows[self.position[cid]],
                "ranks": {name: first_rank(s, {self.position[cid]}) for name, s in scores.items()}} for cid in pooled]
        return sorted(out, key=lambda c: (min(r or 10**9 for r in c["ranks"].values()), c["ranks"]["hybrid"] or 10**9))

    def report_html(self) -> str:
        import markdown

        if not self.run.report.is_file():
            return "<p>No report yet: run <code>repotune evaluate</code>.</p>"
        return markdown.markdown(self.run.report.read_text(), extensions=["tables"])


def render(template: str, **values) -> str:
    """A page from ``templates/`` (Jinja2, autoescaped: every repository text shown is escaped), with the style."""
    return _TEMPLATES.get_template(template).render(style=_STYLE, **values)


def page(comparison: Comparison, query: str, k: int) -> str:
    root = comparison.run.root
    return render("search.html", name=root.name, root=str(root), query=query, k=k, systems=SYSTEMS,
                  answers=comparison.answer(query, k) if query else None, report=comparison.report_html())


# --- the labelling view: /label ---------------------------------------------------------------------------

def gate_minimum(policy: Path | None = None) -> int:
    """``questions.min_questions`` of the policy file: how many questions the gate asks for."""
    import yaml

    from .publishing.gate import POLICY

    return int(yaml.safe_load((policy or POLICY).read_text())["questions"]["min_questions"])


def _read(file: QuestionFile) -> tuple[list, str]:
    try:
        return file.lines(), ""
    except QuestionError as err:
        return [], f"{err}. The view will not write {file.path} until every line reads: fix or remove that line by hand, then reload."


def _entry_text(entry: dict) -> str:
    kind = "symbol" if "symbol" in entry else "contains"
    return f"{entry['path']} {kind} {entry[kind]!r}"


def _shown(kind: str, line) -> dict:
    """A saved question (kind "question") or draft ("draft") as the page lists it: its words, entries and links."""
    url = "/label?" + urlencode({"mode": "edit" if kind == "question" else "draft", "line": line.number, "digest": line.digest})
    return {"number": line.number, "digest": line.digest, "item": line.item, "url": url,
            "entries": "; ".join(_entry_text(x) for x in line.item["relevant"])}


def label_page(lab: Labelling, query: str = "", k: int = 5, mode: str = "new", line: int = 0, digest: str = "",
               message: str = "", error: str = "") -> str:
    """The labelling view: search and tick, the saved questions, the drafts."""
    c = lab.comparison
    questions, set_error = _read(lab.questions)
    drafts, drafts_error = _read(lab.drafts)
    old, mode = None, mode if mode in ("edit", "draft") else "new"
    if mode != "new":
        try:
            old = lab.source(mode, line, digest)
        except (QuestionError, LabelError) as err:
            error, mode = error or str(err), "new"
    query = query or (old["query"] if old else "")
    return render("label.html", name=c.run.root.name, root=str(c.run.root), n=len(questions), minimum=lab.minimum,
                  set_error=set_error, drafts_error=drafts_error, set_path=str(lab.questions.path),
                  evaluate_command=lab.evaluate_command(), query=query, k=k, mode=mode, line=line, digest=digest,
                  notices=((error, "error", "error"), (set_error, "error", "set-error"), (message, "msg", "message")),
                  tick=_ticks(lab, query, k, mode, line, old) if query and not set_error else None,
                  questions=[_shown("question", q) for q in questions], drafts=[_shown("draft", d) for d in drafts])


def _ticks(lab: Labelling, query: str, k: int, mode: str, line: int, old: dict | None) -> dict:
    """The ticks: the pooled hits (and, when editing, every chunk the old entries resolve to, ticked), and the old
    entries that resolve to no chunk of this corpus (kept unless unticked)."""
    c = lab.comparison
    old_entries = list(old["relevant"]) if old else []
    ticked = {r["id"] for entry in old_entries for r in matching(entry, c.by_file)}
    what = {"new": "Tick the chunks that answer it, then save.",
            "edit": f"Editing question {line}: change the words or the ticks, then save.",
            "draft": f"Keeping a draft ({old.get('source', '') if old else ''}): write it as a user would ask it, "
                     "check the ticks, then keep it."}[mode]
    pool = [{"row": cand["row"], "ticked": cand["row"]["id"] in ticked,
             "ranks": " · ".join(f"{name} {r if r is not None else f'>{RANK_DEPTH}'}" for name, r in cand["ranks"].items())}
            for cand in c.pool(query, k, also=ticked)]
    unmatched = [(i, _entry_text(entry)) for i, entry in enumerate(old_entries) if not matching(entry, c.by_file)]
    return {"what": what, "pool": pool, "unmatched": unmatched}


def _int(value, default: int = 0) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def app(run_dir: str | Path, minimum: int | None = None):
    """The Starlette app: / (the page, ?q=...&k=...), /plots/NAME.png, and the labelling view /label with
    its writes (POST /label/save, /label/delete, /label/discard; each redirects back to /label).
    ``minimum``: the counter's target (default: the policy's ``questions.min_questions``)."""
    from starlette.applications import Starlette
    from starlette.responses import FileResponse, HTMLResponse, RedirectResponse, Response
    from starlette.routing import Route

    comparison = Comparison(run_dir)
    labelling = Labelling(comparison, gate_minimum() if minimum is None else minimum)

    def top(params) -> int:
        return min(20, max(1, _int(params.get("k"), 5)))

    async def index(request):
        query = request.query_params.get("q", "").strip()
        return HTMLResponse(page(comparison, query, top(request.query_params)))

    async def plot(request):
        path = comparison.run.plots / Path(request.path_params["name"]).name  # no path outside plots/
        return FileResponse(path) if path.suffix == ".png" and path.is_file() else Response(status_code=404)

    async def label(request):
        p = request.query_params
        return HTMLResponse(label_page(labelling, p.get("q", "").strip(), top(p), p.get("mode", "new"), _int(p.get("line")),
                                       p.get("digest", ""), message=p.get("msg", ""), error=p.get("error", "")))

    def _own_origin(netloc: str, headers) -> bool:
        """This server's own page: the Host it was reached at, or Colab's proxy of the kernel's port
        (``serve_kernel_port_as_iframe``), which may hand the request on under another Host."""
        return netloc in (headers.get("host"), headers.get("x-forwarded-host")) or netloc.endswith(COLAB_PROXY)

    def write(action):
        async def endpoint(request):
            origin = request.headers.get("origin")
            if origin and origin != "null" and not _own_origin(urlsplit(origin).netloc, request.headers):
                return Response("writes come from this server's own page only", status_code=403)  # another site's form
            form = {key: values for key, values in parse_qs((await request.body()).decode("utf-8", "replace"), keep_blank_values=True).items()}
            one = {key: values[-1] for key, values in form.items()}
            try:
                message = action(form, one)
            except LabelError as err:
                return HTMLResponse(label_page(labelling, one.get("query", "").strip(), 5, one.get("mode", "new"), _int(one.get("line")),
                                               one.get("digest", ""), error=str(err)), status_code=400)
            except QuestionError as err:
                return HTMLResponse(label_page(labelling, error=str(err)), status_code=409)
            return RedirectResponse("/label?msg=" + quote(message), status_code=303)  # reloading the page sends nothing again
        return endpoint

    save = write(lambda form, one: labelling.save(one.get("query", ""), form.get("chunk", []), one.get("mode", "new"),
                                                  _int(one.get("line")), one.get("digest", ""),
                                                  [_int(i, -1) for i in form.get("keep_entry", [])]))
    delete = write(lambda form, one: labelling.delete(_int(one.get("line")), one.get("digest", "")))
    discard = write(lambda form, one: labelling.discard(_int(one.get("line")), one.get("digest", "")))
    return Starlette(routes=[Route("/", index), Route("/plots/{name}", plot), Route("/label", label),
                             Route("/label/save", save, methods=["POST"]), Route("/label/delete", delete, methods=["POST"]),
                             Route("/label/discard", discard, methods=["POST"])])


def serve(run_dir: str | Path, host: str = "127.0.0.1", port: int = 7860) -> None:
    import socket

    import uvicorn

    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:  # uvicorn would say so only after the page's address was printed, in a traceback of its own
            probe.bind((host, port))
        except OSError as err:
            raise ServeError(f"cannot listen on {host}:{port} ({err.strerror}): another program holds the port; "
                             f"choose another with --port, e.g. --port {port + 1}") from err
    application = app(run_dir)
    print(f"repotune serve: http://{host}:{port}/  (Ctrl-C stops it)", flush=True)
    uvicorn.run(application, host=host, port=port, log_level="warning")
