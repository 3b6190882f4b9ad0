#!/bin/bash
# The winners of mnist_20k search seeds 0-4 (finals in one wave, b733df5; the spec JSONs here, named
# after their search reports' run ids) retrained with SGD with Nesterov momentum 0.9 and a one-cycle
# schedule peaking at 0.05 (the public 6-8k recipes' SGD form) instead of Adam with the phases 3e-3 ->
# 1e-4,
# with seeds their search trained them with; one torch thread each, as in those finals, two runs at a
# time on the 2-core CPU, batch 64, the budget's EMA and mild augmentation kept. A run whose log has
# its final line is not run again.
# Pairs: python bench/retrain_pairs.py reports/sgd_onecycle-mnist_20k-winners/
cd "$(dirname "$0")/../.."
here=reports/sgd_onecycle-mnist_20k-winners
git show b733df5:budgets/mnist_20k.toml | sed -e 's/^optimizer = \["adam"\]/optimizer = ["sgd"]/' -e 's/^schedule = "phases"/schedule = "onecycle"\nlr = 0.05/' -e '/^lr_phases = /d' > $here/budget.toml  # the recipe those searches trained with
grep -q '^optimizer = \["sgd"\]$' $here/budget.toml || exit 1
one() {
  log=$here/$1_seed$2.log
  grep -q "^final:" "$log" 2>/dev/null && return
  .venv/bin/nas train $here/budget.toml --arch $here/$1.json --seed $2 --threads 1 --batch-size 64 > $log 2>&1
}
# Each winner with the first seed its search trained it with; these five ran two at a time beside
# the other onecycle folder's same net and seed (one wave per pair).
one 5156de0b 0 & one 035e4e59 1 & wait
one 38364213 2 & one 887e3c97 3 & wait
one 2bbdd79f 4
