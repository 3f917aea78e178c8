#!/usr/bin/env bash
# The `dvc exp run`s behind the README's experiment tables, then the tables themselves.
#
#   MOVIEREC_DATA_MIRROR=../shared/data scripts/readme_experiments.sh
#
# Experiments live in this clone's .git (refs/exps), so a fresh clone shows the committed tables but
# cannot regenerate them until it has run these (or fetched them: `dvc exp pull origin --all-commits`
# where a teammate pushed them). Run after `dvc repro`. Each run happens in a temporary copy
# (`--temp`), so it starts from the workspace as `dvc repro` left it and leaves it so: run in the
# workspace, an experiment's params stay applied and the next one would inherit them. Each retrains
# only what its setting touches (the split seeds retrain everything). About 35 minutes on 2 cores.
# tests/test_docs.py checks that these lines and the tables' rows name the same settings.
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"

# The notebook's four runs: the other join.
dvc exp run --temp -n product-join -S model.join=product

# What each ingredient of mf_content contributes.
dvc exp run --temp -S variants.mf_content.content=false
dvc exp run --temp -S variants.mf_content.l2_factors=0
dvc exp run --temp -S variants.mf_content.popularity_prior=0
dvc exp run --temp -S variants.mf_content.popularity_prior=1.5 -S variants.mf_content.train.epochs=30 -S variants.mf_content.train.early_stopping_patience=0
dvc exp run --temp -S variants.mf_content.train.refit=false

# What each ingredient of the dae contributes.
dvc exp run --temp -S variants.dae.hidden=200
dvc exp run --temp -S variants.dae.low_weight=1
dvc exp run --temp -S variants.dae.popularity_prior=0
dvc exp run --temp -S variants.dae.score_low_weight=0.5
dvc exp run --temp -S variants.dae.user_vector=false

# Other splits.
dvc exp run --temp -S prepare.seed=1
dvc exp run --temp -S prepare.seed=2
dvc exp run --temp -S prepare.seed=3

# The noise of training: the same recipe and split, other training seeds (docs/comparing.md).
for seed in 1 2 3 4; do
  dvc exp run --temp -n "train-seed-$seed" -S "train.seed=$seed"
done
movierec summarize HEAD train-seed-1 train-seed-2 train-seed-3 train-seed-4 --json > benchmarks/results/seed_noise.json.tmp
mv benchmarks/results/seed_noise.json.tmp benchmarks/results/seed_noise.json  # never a half-written file

python scripts/update_readme.py
