#!/bin/bash
# Retrain searched winners with one folder's budget, for bench/retrain_pairs.py:
#
#   bash bench/retrain.sh FOLDER PREFIX:SEED ...
#
# FOLDER holds budget.toml (a headline budget with the one option under test changed) and the
# winners' specs, <prefix>.json. Each PREFIX:SEED runs
# `nas train FOLDER/budget.toml --arch FOLDER/PREFIX.json --seed SEED --threads 1` into
# FOLDER/PREFIX_seedSEED.log, two at a time: one torch thread each, as the searches' finals train on
# 2 cores, so a seed repeats its search's run but for the changed option. A log that already has its
# final line is not trained again, so a stopped run resumes where it stopped.
set -u
cd "$(dirname "$0")/.." || exit 1
folder=${1:?usage: bash bench/retrain.sh FOLDER PREFIX:SEED ...}
shift
[ -f "$folder/budget.toml" ] || { echo "error: no $folder/budget.toml" >&2; exit 2; }
one() {
  local prefix=${1%:*} seed=${1#*:}
  local log=$folder/${prefix}_seed$seed.log
  grep -q "^final:" "$log" 2>/dev/null && return
  .venv/bin/nas train "$folder/budget.toml" --arch "$folder/$prefix.json" --seed "$seed" --threads 1 > "$log" 2>&1
}
while [ $# -gt 0 ]; do
  one "$1" &
  [ $# -gt 1 ] && one "$2" &
  wait
  shift $(( $# > 1 ? 2 : 1 ))
done
