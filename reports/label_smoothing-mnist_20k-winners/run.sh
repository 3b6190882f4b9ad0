#!/bin/bash
# The five mnist_20k winners of search seeds 0-4 (finals in one wave, b733df5; the spec JSONs here,
# named after their search reports' run ids) retrained with label smoothing 0.1 and the first two
# seeds their search trained them with (label smoothing 0.0); one torch thread each, as in those
# finals, two runs at a time on the 2-core CPU, at those searches' batch 64. Pairs:
#   python bench/retrain_pairs.py reports/label_smoothing-mnist_20k-winners/
# The first two waves ran (4 logs here); the last three were stopped to give the cores to a headline series.
cd "$(dirname "$0")/../.."
here=reports/label_smoothing-mnist_20k-winners
git show b733df5:budgets/mnist_20k.toml | sed 's/^epochs = 20$/epochs = 20\nlabel_smoothing = 0.1/' > $here/budget.toml  # the recipe those searches trained with
grep -q '^label_smoothing = 0.1$' $here/budget.toml || exit 1
bash bench/retrain.sh $here 5156de0b:0 035e4e59:1 38364213:2 887e3c97:3 2bbdd79f:4 5156de0b:1 035e4e59:2 38364213:3 887e3c97:4 2bbdd79f:5
