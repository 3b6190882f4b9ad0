#!/bin/bash
# The best 8k winner (search b4937f95 on 07326f6, 7,916 params; its spec JSON here) retrained with SGD
# (Nesterov momentum 0.9) and a one-cycle schedule peaking at 0.05, the recipe the 20k budget took in
# df0d568, instead of the Adam one cycle at 0.00439581 its search drew; the same weight decay
# (4.48248e-05), batch 64, EMA and mild augmentation. Seeds 0-2, as its search trained them.
# Pairs: python bench/retrain_pairs.py reports/sgd_onecycle-mnist_8k-winners/
cd "$(dirname "$0")/../.."
here=reports/sgd_onecycle-mnist_8k-winners
bash bench/drawn_budget.sh 07326f6:budgets/mnist_8k.toml sgd 0.05 4.48248e-05 > $here/budget.toml  # the recipe that search trained with, but for the optimizer and lr
grep -q '^optimizer = \["sgd"\]$' $here/budget.toml && grep -q '^lr = 0.05$' $here/budget.toml || exit 1
bash bench/retrain.sh $here b4937f95:0 b4937f95:1 b4937f95:2
