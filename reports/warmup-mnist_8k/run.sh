#!/usr/bin/env bash
# The shipped 8k budget with no pruning after a candidate's first screening epoch (pruner_warmup_epochs = 1):
# the screening is unchanged (2 epochs on half the images), but a net that starts slowly is no longer cut after
# epoch 1, where the shipped budget's searches prune most of theirs. Run from a fresh clone's root, after
# `make install`; the search's log goes to search.log here.
set -euo pipefail
cd "$(dirname "$0")/../.."
here=reports/warmup-mnist_8k
sed 's|^screen_fraction = 0.5$|screen_fraction = 0.5\npruner_warmup_epochs = 1|' budgets/mnist_8k.toml > budgets/mnist_8k_warmup.toml
grep -q '^pruner_warmup_epochs = 1$' budgets/mnist_8k_warmup.toml
.venv/bin/nas search budgets/mnist_8k_warmup.toml 2>&1 | tee "$here/search.log"
