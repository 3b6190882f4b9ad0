#!/usr/bin/env bash
# The shipped 8k budget with pruner_warmup_epochs = 1, run (at 517a234) to stop pruning after a candidate's first
# screening epoch. It does not: screenings report epochs from 1 and Optuna's MedianPruner judges every step from
# n_warmup_steps on, so 1 prunes exactly as 0 does (23 of its 26 pruned screenings stopped after epoch 1), and
# this search ran the shipped budget's pruning. Since then a budget refuses pruner_warmup_epochs = 1, so this
# script no longer runs; 2 is what keeps every screening for 2 epochs. Run from a fresh clone's root of 517a234,
# after `make install`; the search's log goes to search.log here.
set -euo pipefail
cd "$(dirname "$0")/../.."
here=reports/warmup-mnist_8k
sed 's|^screen_fraction = 0.5$|screen_fraction = 0.5\npruner_warmup_epochs = 1|' budgets/mnist_8k.toml > budgets/mnist_8k_warmup.toml
grep -q '^pruner_warmup_epochs = 1$' budgets/mnist_8k_warmup.toml
.venv/bin/nas search budgets/mnist_8k_warmup.toml 2>&1 | tee "$here/search.log"
