#!/bin/sh
# The 20k headline search's 18,566-parameter winner (budgets/archs/mnist_20k_searched.json, search
# b1b698dc) with budgets/mnist_20k.toml's recipe of that day (affine/budget.toml) and EMA, seeds 0-2,
# once with that budget's `affine` augmentation and once with the mild table of the public 6-8k
# recipes (mild/budget.toml). The EMA
# runs' epoch lines carry the raw weights' accuracy, which is the run without averaging (the raw
# weights train exactly as with `--average none`): bench/average.py shows both.
# Two runs at a time, one thread each (the machine has 2 cores).
cd "$(dirname "$0")/../.." || exit 1
d=reports/averaging-mnist_20k_searched
git show 6c0d27d~1:budgets/mnist_20k.toml > "$d/affine/budget.toml"  # the headline recipe then (affine)
one() {  # augmentation folder, budget, seed
  log="$d/$1/ema_seed$3.log"
  [ -s "$log" ] && grep -q "^final:" "$log" && return
  .venv/bin/nas train "$2" --arch budgets/archs/mnist_20k_searched.json --seed "$3" --average ema \
    --threads 1 > "$log" 2>&1
}
for seed in 0 1 2; do
  one affine "$d/affine/budget.toml" "$seed" &
  one mild "$d/mild/budget.toml" "$seed" &
  wait
done
