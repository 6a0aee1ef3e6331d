#!/usr/bin/env sh
# Prepares a two-hospital consortium in ./work: identities, the declared schema, each site's CSV and
# the three config files. Then run the printed commands, each in its own terminal.
set -eu
here=$(CDPATH= cd -- "$(dirname -- "$0")" && pwd -P)
root="$here/../.."
fedtwin="$root/packages/cli/bin/fedtwin"
work="$here/work"
mkdir -p "$work"
cd "$work"
data="$root/data/breast_cancer_wdbc.csv"

agg=$("$fedtwin" keys generate --out agg.key --force)
a=$("$fedtwin" keys generate --out site-a.key --force)
b=$("$fedtwin" keys generate --out site-b.key --force)
"$fedtwin" schema infer --csv "$data" --target diagnosis --out schema.json

# Two sites: first 300 records and the rest (a real consortium has its own exports).
head -n 301 "$data" > site-a.csv
{ head -n 1 "$data"; tail -n +302 "$data"; } > site-b.csv

# The consortium manifest: what every party agrees to and pins (members, aggregator, privacy, rounds).
# A real consortium circulates this file; each hospital checks `fedtwin consortium hash consortium.yaml`.
"$fedtwin" consortium init --id two-terminals --aggregator "$agg" --members "site A=$a,site B=$b" \
  --rounds 5 --quorum 2 --min-participants 1 --deadline 120 --privacy record --epsilon 8 \
  --schema schema.json --out consortium.yaml --force

cat > aggregator.yaml <<YAML
consortium: ./consortium.yaml
dataDir: ./agg-data
identity: ./agg.key
listen: [/ip4/127.0.0.1/tcp/9400]
schema: ./schema.json
YAML
for s in a b; do
  cat > "site-$s.yaml" <<YAML
consortium: ./consortium.yaml
dataDir: ./site-$s-data
identity: ./site-$s.key
aggregator: { address: /ip4/127.0.0.1/tcp/9400 }
data: { csv: ./site-$s.csv }
synthetic: { rows: 300, out: ./site-$s-synthetic.csv }
YAML
done
echo "prepared $work"
echo "terminal 1: $fedtwin aggregator start --config $work/aggregator.yaml"
echo "terminal 2: $fedtwin node start --config $work/site-a.yaml --exit-when-done"
echo "terminal 3: $fedtwin node start --config $work/site-b.yaml --exit-when-done"
