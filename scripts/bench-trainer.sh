#!/usr/bin/env bash
# Builds and runs the trainer benchmark (bench/README.md): full retraining, online and
# proactive training on Fashion-MNIST, the thesis' protocol. Results: bench/results/trainer.md,
# trainer.csv, trainer_curves.csv and trainer.png (with gnuplot). About 5 minutes on 2 cores.
# Extra arguments go to the benchmark, e.g. --modes online,proactive-8.
exec "$(dirname "${BASH_SOURCE[0]}")/bench.sh" trainer "$@"
