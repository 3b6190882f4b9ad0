#!/usr/bin/env bash
# The shipped 8k budget started from the two best 8k winners measured (searches f7163756, 7,144 params,
# 99.49/99.40/99.37% val, and 11de3530, 7,868 params, 99.54/99.36/99.38%) and the hand-picked 7,070-param
# reference net: does a search that screens them first pass the 8k target? Run from a fresh clone's root,
# after `make install`; the search's log goes to search.log here.
set -euo pipefail
cd "$(dirname "$0")/../.."
here=reports/start_from-mnist_8k
sed 's|^\[search\]$|[search]\nstart_from = ["../reports/start_from-mnist_8k/f7163756.json", "../reports/start_from-mnist_8k/11de3530.json", "archs/mnist_8k_reference.json"]|' \
    budgets/mnist_8k.toml > budgets/mnist_8k_start_from.toml
.venv/bin/nas search budgets/mnist_8k_start_from.toml 2>&1 | tee "$here/search.log"
