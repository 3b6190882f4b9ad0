#!/bin/bash
# The best 8k winner (search b4937f95 on 07326f6, 7,916 params; its spec JSON here) retrained at batch 16
# instead of 64: four times the steps in the same 15 epochs. Everything else as its search drew it: Adam,
# one cycle peaking at 0.00439581, weight decay 4.48248e-05, EMA 0.999, mild augmentation.
# Pairs: python bench/retrain_pairs.py reports/batch16-mnist_8k-winners/
cd "$(dirname "$0")/../.."
here=reports/batch16-mnist_8k-winners
bash bench/drawn_budget.sh 07326f6:budgets/mnist_8k.toml adam 0.00439581 4.48248e-05 | sed 's/^batch_size = \[64\]/batch_size = [16]/' > $here/budget.toml
grep -q '^batch_size = \[16\]' $here/budget.toml && grep -q '^lr = 0.00439581$' $here/budget.toml || exit 1
bash bench/retrain.sh $here b4937f95:0 b4937f95:1 b4937f95:2
