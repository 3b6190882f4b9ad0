#!/bin/sh
# MNIST 8k reference net with budgets/mnist_8k.toml's recipe, weight averaging none vs ema, seeds 0-2,
# one after another on one thread each (the machine's 2 cores are shared). Logs: reports/averaging-mnist_8k_reference/<average>_seed<S>.log;
# bench/average.py collects them.
cd "$(dirname "$0")/../.." || exit 1
for seed in 0 1 2; do
  for average in none ema; do
    log="reports/averaging-mnist_8k_reference/${average}_seed${seed}.log"
    [ -s "$log" ] && grep -q "^final:" "$log" && continue
    .venv/bin/nas train budgets/mnist_8k.toml --arch budgets/archs/mnist_8k_reference.json \
      --seed "$seed" --average "$average" --threads 1 > "$log" 2>&1
  done
done
