"""card: what the model card says of the training, where sentence-transformers' own card would say less than the
truth: a soup's two losses, and widget examples that show what the model is for."""

from __future__ import annotations

import json
import re
from textwrap import indent


def describe_soup(card_data, losses: list) -> None:
    """The card of a soup says what it is: both losses (tags, citations), and on each dataset, the soup in words with
    both losses' settings (sentence-transformers' card would name the last trainer's loss alone)."""
    card_data.set_losses(losses)
    names = [type(loss).__name__ for loss in losses]
    configs = {name: loss.get_config_dict() for name, loss in zip(names, losses)}
    described = {"fullname": f"a uniform soup of {' and '.join(names)}: each trained from the base on these pairs with the "
                             "same seed and batches, their weights averaged",
                 "config_code": indent(f"```json\n{json.dumps(configs, indent=4, default=str)}\n```", "  ")}
    for info in [*(card_data.train_datasets or []), *(card_data.eval_datasets or [])]:
        if isinstance(info, dict) and "loss" in info:
            info["loss"] = described


# credentials' words: a widget example holding one (a test's `password=123`) shows what the card should not, and the
# gate's last scan reads the card's escaped YAML on its own (on this repository it flagged two such examples)
_CREDENTIAL = re.compile(r"(?i)passw|secret|token|api[-_ ]?key|auth|credential|private[-_ ]?key|-----BEGIN")


def widget_pairs(train_ds, n: int = 1000):
    """Pairs for the card's widget: anchors that read as a person's words (four words or more, no template or markup
    syntax), their positives as training saw them (under the path and symbol header), neither naming a credential.
    sentence-transformers picks its examples from these; from every pair it picked the dataset card template's own
    Jinja text on this repository."""
    def readable(row) -> bool:
        anchor = row["anchor"]
        return len(anchor.split()) >= 4 and len(anchor) <= 200 and not re.search(r"[{}<>|`\\]", anchor) \
            and not _CREDENTIAL.search(anchor) and not _CREDENTIAL.search(row["positive"])

    rows = train_ds.select_columns(["anchor", "positive"]).filter(readable, keep_in_memory=True)
    return rows.select(range(min(n, len(rows))))
