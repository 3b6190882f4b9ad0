#!/usr/bin/env bash
# The shipped 8k budget with a longer screening: 4 epochs on all the training images instead of 2 on
# half, and no pruning after epoch 1 (pruner_warmup_epochs = 2: the first judgement is after epoch 2), so that
# nets that start slowly are not cut after their first epoch. Does a screening closer to the full schedule find an 8k net that passes?
# Run from a fresh clone's root, after `make install`; the search's log goes to search.log here.
set -euo pipefail
cd "$(dirname "$0")/../.."
here=reports/long_screen-mnist_8k
sed -e 's|^screen_epochs = 2$|screen_epochs = 4|' -e 's|^screen_fraction = 0.5$|screen_fraction = 1.0\npruner_warmup_epochs = 2|' \
    budgets/mnist_8k.toml > budgets/mnist_8k_long_screen.toml
grep -q '^screen_epochs = 4$' budgets/mnist_8k_long_screen.toml && grep -q '^pruner_warmup_epochs = 2$' budgets/mnist_8k_long_screen.toml
.venv/bin/nas search budgets/mnist_8k_long_screen.toml 2>&1 | tee "$here/search.log"
