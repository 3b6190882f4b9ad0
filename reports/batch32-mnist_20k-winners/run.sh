#!/bin/bash
# Four searched mnist_20k winners (the spec JSONs here, named after their search reports' run ids)
# retrained at batch 32 with two of the seeds their search trained them with at batch 64; one torch
# thread each, two runs at a time on the 2-core CPU. Pairs: python bench/retrain_pairs.py reports/batch32-mnist_20k-winners/
cd "$(dirname "$0")/../.."
git show 862b0be:budgets/mnist_20k.toml > reports/batch32-mnist_20k-winners/budget.toml  # the recipe then (Adam, phases)
one() { .venv/bin/nas train reports/batch32-mnist_20k-winners/budget.toml --arch reports/batch32-mnist_20k-winners/$1.json --batch-size 32 \
          --seed $2 --threads 1 > reports/batch32-mnist_20k-winners/$1_seed$2.log 2>&1; }
one aa9a5c41 5 & one c2b96a65 7 & wait
one ec37dd6f 6 & one 8ecda242 1 & wait
one aa9a5c41 4 & one c2b96a65 8 & wait
one ec37dd6f 7 & one 8ecda242 2 & wait
