#!/bin/bash
# A budget as one searched winner trained with, for bench/retrain.sh: the budget file at a commit
# with the options its search drew fixed to those values (the report's Settings and LR schedule lines).
#
#   bash bench/drawn_budget.sh COMMIT:PATH OPTIMIZER LR WEIGHT_DECAY > FOLDER/budget.toml
#
# A run.sh pipes it through its one sed for the option under test.
set -eu -o pipefail
source=${1:?usage: bash bench/drawn_budget.sh COMMIT:PATH OPTIMIZER LR WEIGHT_DECAY}
optimizer=${2:?optimizer} lr=${3:?lr} weight_decay=${4:?weight decay}
git show "$source" | sed -e "s/^optimizer = .*/optimizer = [\"$optimizer\"]/" -e "s/^lr = .*/lr = $lr/" \
  -e "s/^weight_decay = .*/weight_decay = $weight_decay/"
