#!/bin/bash
# The best 8k winner (search b4937f95 on 07326f6, 7,916 params; its spec JSON here) retrained without
# augmentation instead of the mild table (rotation 7 deg, shift 0.05, scale 0.98-1.02): a net this small
# may need its capacity for the images themselves. Everything else as its search drew it: Adam, one cycle
# peaking at 0.00439581, weight decay 4.48248e-05, batch 64, EMA 0.999.
# Pairs: python bench/retrain_pairs.py reports/no_augment-mnist_8k-winners/
cd "$(dirname "$0")/../.."
here=reports/no_augment-mnist_8k-winners
bash bench/drawn_budget.sh 07326f6:budgets/mnist_8k.toml adam 0.00439581 4.48248e-05 | sed 's/^augment = .*/augment = ["none"]/' > $here/budget.toml
grep -q '^augment = \["none"\]$' $here/budget.toml && grep -q '^lr = 0.00439581$' $here/budget.toml || exit 1
bash bench/retrain.sh $here b4937f95:0 b4937f95:1 b4937f95:2
