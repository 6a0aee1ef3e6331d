#!/usr/bin/env sh
set -eu
root=$(CDPATH= cd -- "$(dirname -- "$0")/../.." && pwd -P)
exec "$root/packages/cli/bin/fedtwin" sim --dataset breast_cancer_wdbc --nodes 3 --rounds 5 --alpha 0.5 --seed 42 --out "$root/out/breast-cancer-3-nodes" "$@"
