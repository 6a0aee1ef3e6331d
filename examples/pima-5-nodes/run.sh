#!/usr/bin/env sh
set -eu
root=$(CDPATH= cd -- "$(dirname -- "$0")/../.." && pwd -P)
exec "$root/packages/cli/bin/fedtwin" sim --dataset pima_diabetes --nodes 5 --rounds 6 --alpha 0.3 --seed 42 --out "$root/out/pima-5-nodes" "$@"
