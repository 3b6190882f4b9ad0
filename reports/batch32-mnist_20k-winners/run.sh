#!/bin/bash
# Four searched mnist_20k winners (the spec JSONs here, named after their search reports' run ids)
# retrained at batch 32 with two of the seeds their search trained them with at batch 64; one torch
# thread each, two runs at a time on the 2-core CPU. budget.toml is the headline budget of that day
# (Adam, seed 003's phases, mild augmentation, EMA), whose batch size was then 32.
# Pairs: python bench/retrain_pairs.py reports/batch32-mnist_20k-winners/
cd "$(dirname "$0")/../.."
here=reports/batch32-mnist_20k-winners
git show 862b0be:budgets/mnist_20k.toml > $here/budget.toml
grep -q '^batch_size = \[32\]' $here/budget.toml || exit 1
bash bench/retrain.sh $here aa9a5c41:5 c2b96a65:7 ec37dd6f:6 8ecda242:1 aa9a5c41:4 c2b96a65:8 ec37dd6f:7 8ecda242:2
