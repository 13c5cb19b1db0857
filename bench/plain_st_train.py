"""The comparison for bench-train: the same training as repotune's, written as a plain
sentence-transformers script (the library's own example shape), nothing of repotune in the loop.

python -m bench.plain_st_train PAIRS_DIR MODEL OUT STEPS BATCH SEQ_LEN -> prints pairs/s as JSON
"""

import json
import sys

from datasets import load_from_disk
from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer, SentenceTransformerTrainingArguments
from sentence_transformers.base.sampler import BatchSamplers
from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss


def main(pairs_dir: str, model_path: str, out: str, steps: int, batch: int, seq_len: int) -> None:
    model = SentenceTransformer(model_path, local_files_only=True)
    model.max_seq_length = seq_len
    train = load_from_disk(pairs_dir)["train"].select_columns(["anchor", "positive"])
    args = SentenceTransformerTrainingArguments(
        output_dir=out, max_steps=steps, per_device_train_batch_size=batch, learning_rate=5e-5, warmup_ratio=0.1,
        batch_sampler=BatchSamplers.NO_DUPLICATES, save_strategy="no", logging_steps=1, seed=42, data_seed=42, report_to="none",
    )
    trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=train, loss=MultipleNegativesRankingLoss(model))
    runtime = trainer.train().metrics["train_runtime"]
    print(json.dumps({"steps": steps, "train_runtime": runtime, "pairs_per_second": steps * batch / runtime}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]))
