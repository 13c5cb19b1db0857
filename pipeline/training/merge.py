"""merge: the base model beside the tuned one: GIST's frozen guide (``train.loss: gist``) and the other
end of the WiSE-FT merge (``train.merge_alpha``)."""

from __future__ import annotations

import copy
import logging

import torch

from ..config import MERGE_GRID, TrainConfig
from ..models import display_name, hub_id
from .trainset import DEV_NDCG

log = logging.getLogger("repotune")


def frozen_base(path: str, config: TrainConfig, local_only: bool):
    """The base model, frozen and in eval mode (no dropout): the guide of ``train.loss: gist`` and the base that
    ``train.merge_alpha`` merges the tuned weights with. Its parameters are left out of the optimizer."""
    from sentence_transformers import SentenceTransformer, SentenceTransformerModelCardData

    card = SentenceTransformerModelCardData(local_files_only=local_only)
    base = SentenceTransformer(path, device="cpu", local_files_only=local_only, model_card_data=card)  # the trainer moves it with the loss
    base.max_seq_length = config.max_seq_length  # the model's tokens, so GIST need not tokenise a second time
    card.base_model = hub_id(config.base_model) or display_name(config.base_model)  # how the model card names the guide
    return base.eval().requires_grad_(False)


def merged_state(tuned: dict, base: dict, alpha: float) -> dict:
    """WiSE-FT, parameter by parameter: alpha * tuned + (1 - alpha) * base (integer buffers such as position
    ids are the tuned model's; they are the base's too)."""
    if alpha == 1.0:
        return tuned
    return {name: alpha * t + (1 - alpha) * base[name].to(t.device) if t.is_floating_point() else t for name, t in tuned.items()}


@torch.no_grad()
def merge_with_base(model, base, alpha: float | str, evaluator=None) -> dict:
    """Merge ``model``'s final weights with ``base``'s in place, at ``alpha`` or, for ``auto``, at the value of
    MERGE_GRID that scores best on the dev split (a tie goes to the larger alpha: a merge must earn its place).
    With a dev split, the model card's dev metrics become those of the merged weights; its training logs stay
    those of training. Returns the manifest's entries: the alpha used, and the dev nDCG@10 per alpha tried."""
    if alpha == 1.0:
        return {"merge_alpha": 1.0}
    card = model.model_card_data
    logs = copy.deepcopy(card.training_logs)  # the evaluator logs each call as a step: these are not steps
    tuned = {name: t.detach().clone() for name, t in model.state_dict().items()}
    weights = base.state_dict()
    candidates, scores, metrics = MERGE_GRID if alpha == "auto" else (alpha,), {}, {}
    for candidate in candidates:
        model.load_state_dict(merged_state(tuned, weights, candidate))
        if evaluator is not None:
            metrics[candidate] = evaluator(model)
            scores[candidate] = metrics[candidate][DEV_NDCG]
    chosen = max(scores, key=lambda a: (scores[a], a)) if alpha == "auto" else alpha
    if chosen != candidates[-1]:
        model.load_state_dict(merged_state(tuned, weights, chosen))
    card.training_logs = logs
    if evaluator is not None:  # the card's evaluation is that of the weights it is saved with
        card.eval_results_dict[evaluator] = metrics[chosen]
    if chosen != 1.0:
        card.model_name += f", merged with its base at alpha {chosen:g} (WiSE-FT)"
    log.info("WiSE-FT: saved weights are %g x tuned + %g x base%s", chosen, 1 - chosen,
             "; dev nDCG@10 " + ", ".join(f"{a:g}: {v:.4f}" for a, v in scores.items()) if scores else "")
    return {"merge_alpha": chosen} | ({"merge_dev_ndcg@10": {f"{a:g}": v for a, v in scores.items()}} if scores else {})
