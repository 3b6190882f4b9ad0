#!/usr/bin/env bash
# The shipped 8k budget started from archs/mnist_8k_wide_sep.json: the 6,230-param winner of the longer screening
# (search d1fd384f) with its separable stage widened to 32-32-24 channels and a 24-channel transition, 7,878 params,
# 99.45-99.57% val over seeds 0-5 retrained (reports/wide_sep-mnist_8k-d1fd384f). Does a search that screens it
# first pass the 8k target? Run from a fresh clone's root, after `make install`; the search's log goes to
# search.log here.
set -euo pipefail
cd "$(dirname "$0")/../.."
here=reports/start_wide-mnist_8k
sed 's|^\[search\]$|[search]\nstart_from = ["archs/mnist_8k_wide_sep.json"]|' budgets/mnist_8k.toml > budgets/mnist_8k_start_wide.toml
.venv/bin/nas search budgets/mnist_8k_start_wide.toml 2>&1 | tee "$here/search.log"
