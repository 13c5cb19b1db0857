"""train: a few steps with the tiny model; resume; time budget; model card; bad input; offline."""

from __future__ import annotations

import json
import shutil
import socket
from pathlib import Path

import pytest
import torch

from pipeline.config import RecipeError, recipe_from_dict
from pipeline.models import ModelError
from pipeline.rundir import RunDir, sha256_file
from pipeline.training.callbacks import TimeBudget
from pipeline.training.resume import latest_checkpoint
from pipeline.training.train import TrainError, train


@pytest.fixture
def run(built_run, tmp_path) -> RunDir:
    shutil.copytree(built_run, tmp_path / "run")
    return RunDir(tmp_path / "run")


def _recipe(run: RunDir, *overrides: str):
    return recipe_from_dict(run.read_recipe().to_dict(), ["train.max_steps=6", "train.save_steps=2", "train.eval_steps=3", *overrides])


def test_smoke_training_saves_model_card_plot_and_manifest(run, tiny_model):
    manifest = train(run.root, _recipe(run))
    t = manifest["train"]
    assert t["steps"] == 6 and t["device"] == "cpu" and t["precision"] == "fp32"
    assert t["final_train_loss"] > 0 and t["pairs_per_second"] > 0
    assert (run.model / "modules.json").is_file() and (run.model / "model.safetensors").is_file()
    assert manifest["model_hash"] == sha256_file(run.model / "model.safetensors")
    assert not (run.root / ".model.tmp").exists()
    card = (run.model / "README.md").read_text()
    assert "tuned by repotune" in card and "MultipleNegativesRankingLoss" in card
    assert "tiny" in card  # names its base model (the tiny model's folder)
    assert (run.plots / "loss.png").stat().st_size > 1000
    assert len(list(run.checkpoints.glob("checkpoint-*"))) == 1  # save_total_limit: 1


def _cut_off_after_step_3(run: RunDir, monkeypatch, *levers: str) -> None:
    """Train ``run`` until a simulated Colab cut-off after step 3 (checkpoint-2 exists), then undo the patch."""
    original = TimeBudget.on_step_end

    def crash(self, args, state, control, **kw):
        if state.global_step == 3:
            raise RuntimeError("simulated Colab cut-off")
        return original(self, args, state, control, **kw)

    with monkeypatch.context() as patch:
        patch.setattr(TimeBudget, "on_step_end", crash)
        with pytest.raises(RuntimeError, match="cut-off"):
            train(run.root, _recipe(run, *levers))


@pytest.mark.parametrize("levers", [(), ("train.loss=gist", "train.merge_alpha=0.5")], ids=["mnrl", "gist-merged"])
def test_resume_after_a_crash_reaches_the_same_weights(run, tmp_path, monkeypatch, levers):
    # the reference: six steps without interruption
    reference = RunDir(tmp_path / "reference")
    shutil.copytree(run.root, reference.root)
    train(reference.root, _recipe(reference, *levers))

    # the same run, killed after step 3 (a checkpoint exists at step 2), then resumed
    _cut_off_after_step_3(run, monkeypatch, *levers)
    assert not run.model.exists()  # no half-written model that looks complete
    assert (run.checkpoints / "checkpoint-2").is_dir()
    manifest = train(run.root, _recipe(run, *levers), resume=True)
    assert manifest["train"]["steps"] == 6
    assert sha256_file(run.model / "model.safetensors") == sha256_file(reference.model / "model.safetensors")


def test_resume_skips_a_checkpoint_cut_off_while_it_was_written(run, tmp_path, monkeypatch, repotune_log):
    reference = RunDir(tmp_path / "reference")
    shutil.copytree(run.root, reference.root)
    train(reference.root, _recipe(reference))

    _cut_off_after_step_3(run, monkeypatch)
    # the session ended while checkpoint-4 was being written: transformers writes trainer_state.json last
    partial = run.checkpoints / "checkpoint-4"
    shutil.copytree(run.checkpoints / "checkpoint-2", partial)
    (partial / "trainer_state.json").unlink()
    with repotune_log.at_level("WARNING", logger="repotune"):
        manifest = train(run.root, _recipe(run), resume=True)
    assert "checkpoint-4 is incomplete" in repotune_log.text
    assert manifest["train"]["steps"] == 6
    assert sha256_file(run.model / "model.safetensors") == sha256_file(reference.model / "model.safetensors")


def test_a_half_written_trainer_state_is_incomplete_too(run):
    train(run.root, _recipe(run, "train.max_steps=4"))
    newest = run.checkpoints / "checkpoint-4"
    state = newest / "trainer_state.json"
    state.write_text(state.read_text()[:40])  # cut mid-write
    assert latest_checkpoint(run.checkpoints) is None and not newest.exists()


def test_rerunning_a_finished_run_trains_nothing_and_keeps_the_model(run, repotune_log):
    first = train(run.root, _recipe(run, "train.max_steps=5000", "train.time_budget=3s", "train.save_steps=100000"))
    model_file = run.model / "model.safetensors"
    mtime = model_file.stat().st_mtime_ns
    with repotune_log.at_level("INFO", logger="repotune"):
        again = train(run.root, _recipe(run, "train.max_steps=5000", "train.time_budget=3s", "train.save_steps=100000"), resume=True)
    assert "nothing to resume" in repotune_log.text
    assert again["train"]["steps"] == first["train"]["steps"] and again["model_hash"] == first["model_hash"]
    assert model_file.stat().st_mtime_ns == mtime and sha256_file(model_file) == first["model_hash"]
    # a changed recipe is not "finished": it is refused, as any resume with another recipe
    with pytest.raises(TrainError, match=r"train.learning_rate"):
        train(run.root, _recipe(run, "train.max_steps=5000", "train.learning_rate=1e-3"), resume=True)


def test_a_run_started_before_the_loss_and_merge_keys_existed_still_resumes(run, repotune_log):
    first = train(run.root, _recipe(run, "train.max_steps=2"))
    stamp = run.checkpoints / "train_recipe.json"
    older = {k: v for k, v in json.loads(stamp.read_text()).items() if k not in ("loss", "merge_alpha")}
    stamp.write_text(json.dumps(older))  # as a repotune without train.loss / train.merge_alpha wrote it
    with repotune_log.at_level("INFO", logger="repotune"):
        again = train(run.root, _recipe(run, "train.max_steps=2"), resume=True)
    assert "nothing to resume" in repotune_log.text and again["model_hash"] == first["model_hash"]


def test_a_checkpoint_every_few_minutes_of_wall_time(run):
    # save_steps never reached; save_minutes tiny: a checkpoint after every step (kept: save_total_limit)
    train(run.root, _recipe(run, "train.save_steps=100000", "train.save_minutes=0.0001", "train.save_total_limit=10"))
    steps = sorted(int(p.name.split("-")[-1]) for p in run.checkpoints.glob("checkpoint-*"))
    assert steps == [1, 2, 3, 4, 5, 6]
    with pytest.raises(RecipeError, match="save_minutes"):
        _recipe(run, "train.save_minutes=0")


def test_resume_with_a_changed_recipe_is_refused(run):
    train(run.root, _recipe(run))
    with pytest.raises(TrainError, match=r"train.learning_rate"):
        train(run.root, _recipe(run, "train.learning_rate=1e-3"), resume=True)


def test_training_over_a_held_training_refuses_unless_resumed_or_fresh(run):
    """Checkpoints are never lost by accident: a finished or cut-off training is continued (--resume) or deleted on
    request (--fresh), and the refusal names both."""
    from pipeline.training.resume import held_training

    first = train(run.root, _recipe(run, "train.max_steps=2"))
    assert held_training(run) == "a finished training"
    with pytest.raises(TrainError, match=r"holds a finished training: .*--resume`, or .*--fresh` deletes"):
        train(run.root, _recipe(run, "train.max_steps=2"))
    assert (run.checkpoints / "finished.json").is_file() and sha256_file(run.model / "model.safetensors") == first["model_hash"]
    again = train(run.root, _recipe(run, "train.max_steps=4"), fresh=True)
    assert again["train"]["steps"] == 4 and held_training(run) == "a finished training"


def test_a_rebuilt_dataset_cannot_be_resumed_and_the_model_records_its_dataset(run):
    first = train(run.root, _recipe(run, "train.max_steps=2"))
    settings = json.loads((run.model / "repotune.json").read_text())
    assert settings["dataset_hash"] == first["dataset_hash"] and run.provenance_problem(measured=False) is None
    run.update_manifest(dataset_hash="0" * 64)  # what a rebuild into the run directory does
    assert "was trained on dataset" in run.provenance_problem(measured=False)
    with pytest.raises(TrainError, match=r"the dataset was rebuilt .*--fresh"):
        train(run.root, _recipe(run, "train.max_steps=2"), resume=True)
    train(run.root, _recipe(run, "train.max_steps=2"), fresh=True)
    assert run.provenance_problem(measured=False) is None


def test_time_budget_caps_the_steps_and_saves_the_cap(run):
    manifest = train(run.root, _recipe(run, "train.max_steps=5000", "train.time_budget=3s", "train.save_steps=100000"))
    t = manifest["train"]
    cap = json.loads((run.checkpoints / "budget.json").read_text())["max_steps"]
    assert t["budget_cap"] == cap == t["steps"]
    assert 3 <= cap < 5000


def test_too_few_pairs_for_a_batch_says_what_to_change(run):
    with pytest.raises(TrainError, match=r"--set train.batch_size="):
        train(run.root, _recipe(run, "train.batch_size=4096"))


def test_missing_base_model_is_a_clear_error(run, tmp_path):
    with pytest.raises(ModelError, match="does not exist"):
        train(run.root, _recipe(run, f"train.base_model={tmp_path}/nowhere/model"))


def test_not_a_model_folder_is_a_clear_error(run, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match="not a sentence-transformers model"):
        train(run.root, _recipe(run, f"train.base_model={tmp_path / 'empty'}"))


@pytest.mark.parametrize("loss", ["mnrl", "gist"])
def test_training_and_card_make_no_network_call(run, monkeypatch, loss):
    lookups = []

    def refuse(host, *args, **kwargs):
        lookups.append(host)
        raise socket.gaierror("offline test")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    train(run.root, _recipe(run, "train.max_steps=2", f"train.loss={loss}", "train.merge_alpha=0.5"))
    assert lookups == []


def test_bad_precision_is_a_recipe_error(run):
    with pytest.raises(RecipeError, match="precision"):
        _recipe(run, "train.precision=fp8")


@pytest.mark.skipif(torch.cuda.is_available(), reason="the CPU path: bf16 is the trainer's CPU autocast there")
def test_bf16_trains_on_a_cpu_and_fp16_says_it_needs_a_gpu(run):
    train(run.root, _recipe(run, "train.max_steps=2", "train.precision=bf16"))
    assert run.read_manifest()["train"]["precision"] == "bf16" and (run.model / "modules.json").is_file()
    with pytest.raises(TrainError, match="fp16 needs a GPU"):
        train(run.root, _recipe(run, "train.max_steps=2", "train.precision=fp16"), fresh=True)


def test_levers_context_upsampling_and_hard_negatives_train_and_are_recorded(run):
    """chunk.context puts the header on positives, pairs.balance: upsample repeats the minority kind,
    pairs.hard_negatives adds a mined negative column; the manifest says what training saw, and the
    model folder says how to embed its chunks."""
    import pipeline.training.train as train_module

    seen_columns = []
    real = train_module.with_hard_negatives

    def spy(ds, *a, **k):
        out, mined = real(ds, *a, **k)
        seen_columns.append((out.column_names, mined, len(out), out))
        return out, mined

    train_module.with_hard_negatives = spy
    try:
        manifest = train(run.root, _recipe(run, "chunk.context=true", "pairs.balance=upsample", "pairs.balance_code_share=0.3",
                                           "pairs.hard_negatives=1"))
    finally:
        train_module.with_hard_negatives = real
    t = manifest["train"]
    from pipeline.common import file_of
    from pipeline.dataset import load_pairs

    rows = load_pairs(run)["train"]
    assert t["pairs_seen"] > len(rows) and t["code_share_seen"] == pytest.approx(0.3, abs=0.02)
    columns, mined, n, ds = seen_columns[0]
    assert "negative" in columns and n == t["pairs_seen"] and mined == t["hard_negatives_mined"] and 0 < mined <= n
    assert t["hard_negatives_seconds"] > 0
    for row in ds.select(range(min(20, n))):
        assert row["positive"].split("\n", 1)[0].startswith(row["path"])  # the context header
        assert file_of(row["negative"].split("\n", 1)[0].split(" ")[0]) != file_of(row["path"])  # never the positive's own file
    assert json.loads((run.model / "repotune.json").read_text()) == {"context": True, "hybrid_alpha": 0.8, "expand": 0,
                                                                      "dataset_hash": manifest["dataset_hash"]}
    # the base model's corpus embeddings mining computed are kept where evaluation reads them: one base pass, not two
    import numpy as np
    from sentence_transformers import SentenceTransformer

    from pipeline.common import embedding_precision, row_text
    from pipeline.dataset import load_corpus
    from pipeline.retrieval.search import corpus_embeddings

    kept = list((run.root / "index").glob("*.npy"))
    assert len(kept) == 1
    base = SentenceTransformer(run.read_recipe().train.base_model)
    base.max_seq_length = run.read_recipe().train.max_seq_length
    texts = [row_text(r, True) for r in load_corpus(run)]
    with embedding_precision(base):  # as mining and evaluation embed (bf16 where the CPU computes it natively)
        fresh = base.encode_document(texts, normalize_embeddings=True, convert_to_numpy=True)
    np.testing.assert_allclose(corpus_embeddings(base, texts, 32, run.root / "index"), fresh, atol=2e-3)
    assert list((run.root / "index").glob("*.npy")) == kept  # read from the index, nothing embedded anew


def test_mined_embeddings_in_another_order_are_not_kept(tiny_model, tmp_path):
    import numpy as np
    from sentence_transformers import SentenceTransformer

    from pipeline.training.trainset import keep_base_embeddings

    model = SentenceTransformer(tiny_model)
    texts = ["def load_cache(path): ...", "How do I load the cache?", "class Manager: ...", "def load_cache(path): ..."]
    emb = model.encode_document(list(dict.fromkeys(texts)), normalize_embeddings=True, convert_to_numpy=True)
    (tmp_path / "cache").mkdir()
    np.save(tmp_path / "cache" / "corpus_embeddings_x.npy", emb[::-1])  # not the corpus order
    assert not keep_base_embeddings(model, texts, tmp_path / "cache", tmp_path / "index") and not (tmp_path / "index").exists()
    np.save(tmp_path / "cache" / "corpus_embeddings_x.npy", emb)
    assert keep_base_embeddings(model, texts, tmp_path / "cache", tmp_path / "index")
    assert np.load(next((tmp_path / "index").glob("*.npy"))).shape == (4, emb.shape[1])


def test_model_selection_on_a_dev_split_keeps_the_best_checkpoint(run):
    from pipeline.common import file_of
    from pipeline.dataset import load_pairs

    manifest = train(run.root, _recipe(run, "train.dev_fraction=0.3"))
    t = manifest["train"]
    holdout_files = {file_of(p) for p in load_pairs(run)["holdout"]["path"]}
    assert t["dev_pairs"] > 0 and t["best_checkpoint"].startswith("checkpoint-")
    assert 0 <= t["best_dev_ndcg@10"] <= 1
    log = json.loads((run.root / "train_log.json").read_text())
    dev_scores = {h["step"]: h["eval_dev_cosine_ndcg@10"] for h in log if "eval_dev_cosine_ndcg@10" in h}
    assert len(dev_scores) >= 2 and max(dev_scores.values()) == pytest.approx(t["best_dev_ndcg@10"])
    from pipeline.mining.split import dev_files

    dev = dev_files(load_pairs(run)["train"]["path"], 0.3, run.read_recipe().split.seed)
    assert dev and holdout_files and not dev & holdout_files  # carved from training files, never the holdout


def test_tokenising_in_dataloader_workers_trains_the_same_steps(run):
    """train.dataloader_workers: the collator (tokenisation) runs in worker processes, off the training loop."""
    manifest = train(run.root, _recipe(run, "train.dataloader_workers=2"))
    assert manifest["train"]["steps"] == 6 and manifest["train"]["final_train_loss"] > 0


# --- levers: WiSE-FT merge (train.merge_alpha) and GIST (train.loss) ----------------------------------

def _weights(model_dir):
    from safetensors.torch import load_file

    return load_file(str(model_dir / "model.safetensors"))


def test_merge_alpha_saves_weights_between_base_and_tuned(run, tmp_path, tiny_model):
    """WiSE-FT: 0.5 is exactly halfway between the base and the unmerged run (same seed), 0.0 is the base; the
    card says so, and a resumed finished merged run trains nothing and keeps its hash."""
    import torch

    models = {}
    for alpha in ("1.0", "0.5", "0.0"):
        other = RunDir(tmp_path / f"alpha-{alpha}")
        shutil.copytree(run.root, other.root)
        manifest = train(other.root, _recipe(other, f"train.merge_alpha={alpha}"))
        assert manifest["train"]["merge_alpha"] == float(alpha) and "merge_dev_ndcg@10" not in manifest["train"]
        models[alpha] = (other, manifest)
    base, tuned = _weights(Path(tiny_model)), _weights(models["1.0"][0].model)
    half, zero = _weights(models["0.5"][0].model), _weights(models["0.0"][0].model)
    assert set(base) == set(tuned) == set(half) == set(zero)
    assert any(not torch.equal(tuned[k], base[k]) for k in base)  # training moved the weights
    for k in base:
        if base[k].is_floating_point():
            assert torch.equal(half[k], 0.5 * tuned[k] + 0.5 * base[k]), k
        assert torch.equal(zero[k], base[k]), k
    card = (models["0.5"][0].model / "README.md").read_text()
    assert "merged with its base at alpha 0.5 (WiSE-FT)" in card and "tuned by repotune" in card
    assert "WiSE-FT" not in (models["1.0"][0].model / "README.md").read_text()

    merged, first = models["0.5"]
    again = train(merged.root, _recipe(merged, "train.merge_alpha=0.5"), resume=True)  # finished: nothing to train
    assert again["model_hash"] == first["model_hash"] == sha256_file(merged.model / "model.safetensors")


def test_merge_alpha_auto_needs_a_dev_split(run):
    with pytest.raises(RecipeError, match=r"train.merge_alpha: auto .*train.dev_fraction"):
        _recipe(run, "train.merge_alpha=auto")


@pytest.mark.parametrize("value", ["1.5", "-0.1", "half", "true"])
def test_bad_merge_alpha_is_a_recipe_error(run, value):
    with pytest.raises(RecipeError, match="train.merge_alpha"):
        _recipe(run, f"train.merge_alpha={value}")


def test_merge_alpha_auto_picks_the_best_alpha_on_the_dev_split(run):
    from pipeline.config import MERGE_GRID

    manifest = train(run.root, _recipe(run, "train.dev_fraction=0.3", "train.merge_alpha=auto"))
    t = manifest["train"]
    scores = t["merge_dev_ndcg@10"]
    assert list(scores) == [f"{a:g}" for a in MERGE_GRID] and all(0 <= v <= 1 for v in scores.values())
    best = max(MERGE_GRID, key=lambda a: (scores[f"{a:g}"], a))  # a tie goes to the larger alpha
    assert t["merge_alpha"] == best
    assert scores["1"] == pytest.approx(t["best_dev_ndcg@10"])  # alpha 1 is the weights model selection kept
    card = (run.model / "README.md").read_text()
    assert f"**cosine_ndcg@10**  | **{scores[f'{best:g}']:.4f}**" in card  # the card's dev metrics: the saved weights'
    log = json.loads((run.root / "train_log.json").read_text())
    rows = [[c.strip(" *") for c in line.strip("|").split("|")] for line in card.split("### Training Logs")[1].splitlines()[3:]
            if line.startswith("|")]
    in_card = {int(r[1]): r[-1] for r in rows if r[-1] != "-"}
    in_log = {h["step"]: f"{h['eval_dev_cosine_ndcg@10']:.4f}" for h in log if "eval_dev_cosine_ndcg@10" in h}
    assert in_card == in_log  # the grid's evaluations do not rewrite the rows of training's steps


def test_merge_picks_the_alpha_the_dev_split_scores_best(tiny_model):
    """The grid's choice, with a dev score that peaks at alpha 0.5 (the fixture's dev split is too small to
    tell the alphas apart): 0.5 is chosen and loaded, the card's training logs are left as training wrote them."""
    import torch
    from sentence_transformers import SentenceTransformer

    from pipeline.config import TrainConfig
    from pipeline.training.merge import frozen_base, merge_with_base
    from pipeline.training.trainset import DEV_NDCG

    model = SentenceTransformer(tiny_model)
    base = frozen_base(tiny_model, TrainConfig(base_model=tiny_model), True)
    name = next(n for n, _ in model.named_parameters())
    with torch.no_grad():
        dict(model.named_parameters())[name].add_(1.0)  # "training" moved one parameter by 1
    tuned = dict(model.named_parameters())[name].detach().clone()
    card = model.model_card_data
    card.model_name, card.training_logs = "tiny tuned by repotune", [{"Epoch": 1.0, "Step": 6, "Training Loss": 0.5}]

    def evaluator(m):
        moved = (dict(m.named_parameters())[name] - dict(base.named_parameters())[name]).mean().item()
        return {DEV_NDCG: 1 - abs(moved - 0.5)}

    out = merge_with_base(model, base, "auto", evaluator)
    assert out["merge_alpha"] == 0.5 and list(out["merge_dev_ndcg@10"]) == ["0.25", "0.5", "0.75", "1"]
    assert out["merge_dev_ndcg@10"]["0.5"] == pytest.approx(1.0) and out["merge_dev_ndcg@10"]["1"] == pytest.approx(0.5)
    merged = dict(model.named_parameters())[name]
    assert torch.equal(merged, 0.5 * tuned + 0.5 * dict(base.named_parameters())[name])  # the choice, not the grid's last
    assert card.training_logs == [{"Epoch": 1.0, "Step": 6, "Training Loss": 0.5}]
    assert card.eval_results_dict[evaluator][DEV_NDCG] == pytest.approx(1.0) and card.model_name.endswith("alpha 0.5 (WiSE-FT)")


def test_gist_loss_trains_with_the_base_as_guide_and_is_named_in_the_card(run, tiny_model):
    manifest = train(run.root, _recipe(run, "train.loss=gist"))
    t = manifest["train"]
    assert t["steps"] == 6 and t["final_train_loss"] > 0 and t["loss"] == "GISTEmbedLoss"
    card = (run.model / "README.md").read_text()
    assert "GISTEmbedLoss" in card and "\"guide\": \"SentenceTransformer('tiny" in card  # the base, by its path-free name
    assert _weights(run.model).keys() == _weights(Path(tiny_model)).keys()  # the guide is not saved with the model


def test_cached_gist_loss_trains(run):
    manifest = train(run.root, _recipe(run, "train.loss=gist", "train.cached_loss=true", "train.mini_batch_size=4", "train.max_steps=2"))
    assert manifest["train"]["loss"] == "CachedGISTEmbedLoss" and manifest["train"]["steps"] == 2


@pytest.mark.parametrize("levers", [[], ["pairs.hard_negatives=1"]], ids=["pairs", "hard_negatives"])
def test_soup_saves_the_mean_of_the_mnrl_and_gist_runs_it_trains(run, tmp_path, levers):
    """With hard negatives too (the default recipe's): both ingredients train on the one mined negative column."""
    import torch

    alone = {}
    for loss in ("mnrl", "gist"):  # each ingredient, trained on its own as train.loss would
        other = RunDir(tmp_path / loss)
        shutil.copytree(run.root, other.root)
        train(other.root, _recipe(other, f"train.loss={loss}", *levers))
        alone[loss] = _weights(other.model)
    manifest = train(run.root, _recipe(run, "train.loss=soup", *levers))
    t = manifest["train"]
    assert ("hard_negatives_mined" in t) == bool(levers)
    assert t["loss"] == "soup of MultipleNegativesRankingLoss and GISTEmbedLoss" and t["steps"] == 12
    assert list(t["ingredients"]) == ["MultipleNegativesRankingLoss", "GISTEmbedLoss"]
    assert all(i["steps"] == 6 for i in t["ingredients"].values())
    soup = _weights(run.model)
    assert soup.keys() == alone["mnrl"].keys()
    for name, w in soup.items():  # the same batches, seed and start: each ingredient is the run trained alone
        assert torch.allclose(w, 0.5 * alone["mnrl"][name] + 0.5 * alone["gist"][name], atol=1e-6), name
    assert "uniform soup" in (run.model / "README.md").read_text()
    # the finished ingredient's weights replace its checkpoints; the last one keeps its own for a resume
    assert (run.checkpoints / "mnrl" / "final.pt").is_file() and not list((run.checkpoints / "mnrl").glob("checkpoint-*"))


@pytest.mark.parametrize("ingredient", ["mnrl", "gist"])
def test_a_soup_cut_off_in_either_ingredient_resumes_to_the_same_weights(run, tmp_path, monkeypatch, ingredient):
    reference = RunDir(tmp_path / "reference")
    shutil.copytree(run.root, reference.root)
    train(reference.root, _recipe(reference, "train.loss=soup"))

    original = TimeBudget.on_step_end

    def crash(self, args, state, control, **kw):
        if state.global_step == 3 and Path(args.output_dir).name == ingredient:
            raise RuntimeError("simulated Colab cut-off")
        return original(self, args, state, control, **kw)

    with monkeypatch.context() as patch:
        patch.setattr(TimeBudget, "on_step_end", crash)
        with pytest.raises(RuntimeError, match="cut-off"):
            train(run.root, _recipe(run, "train.loss=soup"))
    assert (run.checkpoints / "mnrl" / "final.pt").is_file() == (ingredient == "gist")
    assert (run.checkpoints / ingredient / "checkpoint-2").is_dir()
    # the soup's sub-folders count as a held training: a rerun without --resume refuses, nothing is wiped
    with pytest.raises(TrainError, match="holds checkpoints up to step 2"):
        train(run.root, _recipe(run, "train.loss=soup"))
    manifest = train(run.root, _recipe(run, "train.loss=soup"), resume=True)
    assert manifest["train"]["steps"] == 12
    assert sha256_file(run.model / "model.safetensors") == sha256_file(reference.model / "model.safetensors")


def test_bad_loss_is_a_recipe_error(run):
    with pytest.raises(RecipeError, match=r"train.loss must be one of mnrl, gist, soup"):
        _recipe(run, "train.loss=triplet")


@pytest.mark.parametrize(("loss", "temperature", "expected"), [
    ("mnrl", None, ("scale", 20.0)), ("mnrl", 0.1, ("scale", 10.0)),
    ("gist", None, ("temperature", 0.01)), ("gist", 0.05, ("temperature", 0.05))])
def test_temperature_sets_the_loss_softmax_or_keeps_its_own(run, tiny_model, loss, temperature, expected):
    from sentence_transformers import SentenceTransformer

    from pipeline.training.train import make_loss

    model = SentenceTransformer(tiny_model)
    config = _recipe(run, f"train.loss={loss}", f"train.temperature={'null' if temperature is None else temperature}").train
    made = make_loss(config, loss, model, model if loss == "gist" else None, 1)
    assert getattr(made, expected[0]) == pytest.approx(expected[1])


@pytest.mark.parametrize(("cached", "same_side"), [(False, True), (False, False), (True, False)])
def test_gist_same_side_terms_follow_the_recipe(run, tiny_model, cached, same_side):
    from sentence_transformers import SentenceTransformer

    from pipeline.training.train import make_loss

    model = SentenceTransformer(tiny_model)
    config = _recipe(run, "train.loss=gist", f"train.gist_same_side={str(same_side).lower()}",
                     f"train.cached_loss={str(cached).lower()}").train
    made = make_loss(config, "gist", model, model, 1)
    assert (made.contrast_anchors, made.contrast_positives) == (same_side, same_side)


@pytest.mark.parametrize("bad", ["0", "-0.05", "2", "hot"])
def test_bad_temperature_is_a_recipe_error(run, bad):
    with pytest.raises(RecipeError, match=r"train.temperature must be"):
        _recipe(run, f"train.temperature={bad}")


def test_ctrl_c_during_training_names_the_resume_command(run, monkeypatch, capsys):
    import pipeline.training.train as train_module
    from pipeline.cli import main

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(train_module, "train", interrupted)
    assert main(["train", str(run.root)]) == 130
    assert f"interrupted: `repotune train {run.root} --resume` continues from the newest checkpoint" in capsys.readouterr().err


def test_widget_examples_read_as_words_and_name_no_credential():
    from datasets import Dataset

    from pipeline.training.card import widget_pairs

    rows = Dataset.from_list([
        {"anchor": "Load the settings file from disk.", "positive": "app/config.py load\ndef load(path): ..."},
        {"anchor": "{{ pretty_name }} > Licence", "positive": "card.md\n## Licence"},
        {"anchor": "Bind a form with a user.", "positive": "tests/test_forms.py\n(user=manu&password=123)"},
        {"anchor": "Rotate the API token every day.", "positive": "ops/rotate.py rotate\ndef rotate(): ..."},
        {"anchor": "Too short", "positive": "x.py\ndef f(): ..."},
    ])
    assert widget_pairs(rows)["anchor"] == ["Load the settings file from disk."]
