#!/bin/bash
# The winners of mnist_20k search seeds 0-4 (finals in one wave, b733df5; the spec JSONs here, named
# after their search reports' run ids) retrained with SGD (Nesterov momentum 0.9) and a one-cycle
# schedule peaking at 0.05, the public 6-8k recipes' SGD form, instead of
# seed 003's phases 3e-3 -> 1e-4 with Adam; batch 64, the budget's EMA and mild augmentation kept.
# Pairs: python bench/retrain_pairs.py reports/sgd_onecycle-mnist_20k-winners/
cd "$(dirname "$0")/../.."
here=reports/sgd_onecycle-mnist_20k-winners
git show b733df5:budgets/mnist_20k.toml | sed -e 's/^optimizer = \["adam"\]/optimizer = ["sgd"]/' -e 's/^schedule = "phases"/schedule = "onecycle"\nlr = 0.05/' -e '/^lr_phases = /d' > $here/budget.toml  # the recipe those searches trained with
grep -q '^optimizer = \["sgd"\]$' $here/budget.toml || exit 1
# Each winner with the first seed its search trained it with; these five ran beside the other
# onecycle folder's same net and seed, one wave per pair.
bash bench/retrain.sh $here 5156de0b:0 035e4e59:1 38364213:2 887e3c97:3 2bbdd79f:4
