"""serve: a local page to compare base and tuned side by side: `repotune serve runs/NAME`.

A small ASGI app (Starlette, served by uvicorn on localhost): a query box; the base model, the tuned
model and the hybrid (tuned + BM25) answer it over the run's chunk corpus, each hit with its path,
lines, score and text; below, the run's report with its tables and plots. Everything is local: the
models and corpus embeddings load once (the run's stored index), the page has no external assets.
"""

from __future__ import annotations

import html
import os
from pathlib import Path

from .errors import RepotuneError
from .rundir import RunDir

SYSTEMS = (("base", "base model, dense"), ("tuned", "tuned model, dense"), ("hybrid", "tuned + BM25 (hybrid)"))

_STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5rem;color:#222} h1{font-size:1.3rem} form{margin:1rem 0}
input[name=q]{width:60%;padding:.4rem;font-size:1rem} .cols{display:grid;grid-template-columns:repeat(3,1fr);gap:1rem}
.col h2{font-size:1rem;border-bottom:2px solid #ccc} .hit{border:1px solid #ddd;border-radius:6px;margin:.5rem 0;padding:.4rem}
.where{font-family:monospace;font-size:.85rem} .score{float:right;color:#666} pre{white-space:pre-wrap;font-size:.78rem;
max-height:14rem;overflow:auto;background:#f7f7f7;padding:.3rem} .report table{border-collapse:collapse}
.report td,.report th{border:1px solid #ccc;padding:.2rem .5rem;font-size:.85rem} .report img{max-width:48%}
"""


class ServeError(RepotuneError, RuntimeError):
    """The run cannot be served; the message says what to run first."""


class Comparison:
    """Base and tuned indexes over one run's corpus, loaded once."""

    def __init__(self, run_dir: str | Path):
        from sentence_transformers import SentenceTransformer

        from .dataset import load_corpus
        from .models import resolve_model
        from .search import Index, load_model, model_settings

        self.run = RunDir(run_dir)
        if not (self.run.model / "modules.json").is_file():
            raise ServeError(f"no trained model in {self.run.model}: run `repotune run REPO --out {self.run.root}` first")
        recipe = self.run.read_recipe()
        settings = model_settings(self.run.model)
        rows = list(load_corpus(self.run))
        offline = os.environ.get("HF_HUB_OFFLINE") == "1"
        base = SentenceTransformer(resolve_model(recipe.train.base_model), local_files_only=offline)
        base.max_seq_length = recipe.train.max_seq_length
        index_dir = self.run.root / "index"
        self.indexes = {"base": Index(base, rows, settings["context"], index_dir, settings["hybrid_alpha"]),
                        "tuned": Index(load_model(self.run.model), rows, settings["context"], index_dir, settings["hybrid_alpha"])}

    def answer(self, query: str, k: int = 5) -> dict[str, list[dict]]:
        return {"base": self.indexes["base"].hits([query], "dense", k)[0],
                "tuned": self.indexes["tuned"].hits([query], "dense", k)[0],
                "hybrid": self.indexes["tuned"].hits([query], "hybrid", k)[0]}

    def report_html(self) -> str:
        import markdown

        if not self.run.report.is_file():
            return "<p>No report yet: run <code>repotune evaluate</code>.</p>"
        return markdown.markdown(self.run.report.read_text(), extensions=["tables"])


def page(comparison: Comparison, query: str, k: int) -> str:
    e = html.escape
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>repotune: {e(comparison.run.root.name)}</title>",
             f"<style>{_STYLE}</style></head><body>", f"<h1>repotune: {e(str(comparison.run.root))}</h1>",
             f"<form method='get' action='/'><input name='q' id='q' value='{e(query)}' placeholder='ask the repository a question' autofocus>"
             f" <input type='number' name='k' value='{k}' min='1' max='20' style='width:4rem'> <button id='go'>search</button></form>"]
    if query:
        answers = comparison.answer(query, k)
        parts.append("<div class='cols'>")
        for key, title in SYSTEMS:
            parts.append(f"<div class='col' id='{key}'><h2>{e(title)}</h2>")
            for hit in answers[key]:
                parts.append(f"<div class='hit'><span class='score'>{hit['score']:.3f}</span><div class='where'>"
                             f"{e(hit['path'])}:{hit['start_line']}-{hit['end_line']} {e(hit.get('symbol') or '')}</div>"
                             f"<pre>{e(hit['text'] or '')}</pre></div>")
            parts.append("</div>")
        parts.append("</div>")
    parts += ["<div class='report'>", comparison.report_html(), "</div></body></html>"]
    return "".join(parts)


def app(run_dir: str | Path):
    """The Starlette app: / (the page, ?q=...&k=...) and /plots/NAME.png."""
    from starlette.applications import Starlette
    from starlette.responses import FileResponse, HTMLResponse, Response
    from starlette.routing import Route

    comparison = Comparison(run_dir)

    async def index(request):
        query = request.query_params.get("q", "").strip()
        try:
            k = min(20, max(1, int(request.query_params.get("k", 5))))
        except ValueError:
            k = 5
        return HTMLResponse(page(comparison, query, k))

    async def plot(request):
        path = comparison.run.plots / Path(request.path_params["name"]).name  # no path outside plots/
        return FileResponse(path) if path.suffix == ".png" and path.is_file() else Response(status_code=404)

    return Starlette(routes=[Route("/", index), Route("/plots/{name}", plot)])


def serve(run_dir: str | Path, host: str = "127.0.0.1", port: int = 7860) -> None:
    import uvicorn

    application = app(run_dir)
    print(f"repotune serve: http://{host}:{port}/  (Ctrl-C stops it)", flush=True)
    uvicorn.run(application, host=host, port=port, log_level="warning")
