#!/usr/bin/env bash
# Differential fuzzing of drvm's debug-register engines (docs/fuzzing.md): runs drfuzz.elf over
# SEEDS seeds in batches of BATCH under (a) the default engines, (b) --exact, (c) the default
# engines with host events and (d) --exact with the same host events, and compares the guest's
# serial logs (all four must be identical) and the host counts ((c) must equal (d)).
#
#   scripts/fuzz-engines.sh [SEEDS] [BATCH]      # default 10000 seeds, batches of 50
#
# Environment: FIRST (first seed, 0), LAYOUT (drfuzz layout=..., all), GUEST_ARGS (more drfuzz
# options, e.g. "tf=0"), JOBS (parallel batches,
# nproc), TIMEOUT (seconds per drvm run, 120), BUILD (build directory, build), EVENTS (0 skips the
# host-event runs), MAX_RESTARTS (divergences per batch after which the rest of the batch is
# skipped, 5), KEEP (a directory to keep every run's files in).
# Exit status: 0 when nothing diverged, 1 on a divergence, 2 on a usage error.
set -euo pipefail

SEEDS=${1:-10000}
BATCH=${2:-50}
FIRST=${FIRST:-0}
LAYOUT=${LAYOUT:-all}
GUEST_ARGS=${GUEST_ARGS:-}
JOBS=${JOBS:-$(nproc)}
TIMEOUT=${TIMEOUT:-120}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$ROOT/build}
EVENTS=${EVENTS:-1}
MAX_RESTARTS=${MAX_RESTARTS:-5}
DRVM=$BUILD/bin/drvm
IMAGE=$BUILD/guest/drfuzz.elf

case "$SEEDS$BATCH" in *[!0-9]*) echo "usage: $0 [SEEDS] [BATCH]" >&2; exit 2 ;; esac
if [[ $SEEDS -eq 0 || $BATCH -eq 0 ]]; then echo "usage: $0 [SEEDS] [BATCH] (both > 0)" >&2; exit 2; fi
for f in "$DRVM" "$IMAGE"; do
  [[ -e $f ]] || { echo "fuzz: $f missing; cmake --build $BUILD --target drvm guest_images" >&2; exit 2; }
done
[[ -w /dev/kvm ]] || { echo "fuzz: /dev/kvm is missing or not usable" >&2; exit 2; }

# Host events: on addresses drfuzz's guest watches often pick (hot_address() in drfuzz_main.c) and
# on other fuzz variables; only on the pages of the layout's categories.
host_events() {
  local events=(mem:drfuzz_code_2:x mem:drfuzz_code_4+5/1:x)
  case ",$LAYOUT," in *,all,*|*,plain,*|*,data,*)
    events+=(mem:drfuzz_plain+0x100/8:w mem:drfuzz_plain+0x1000/8:rw mem:drfuzz_plain+0x1f00/4:rw) ;;
  esac
  case ",$LAYOUT," in *,all,*|*,system,*|*,pt,*) events+=(mem:drfuzz_arena+0x800/8:w) ;; esac
  case ",$LAYOUT," in *,all,*|*,system,*|*,log,*) events+=(mem:drfuzz_arena+0x2ff8/8:w) ;; esac
  case ",$LAYOUT," in *,all,*|*,system,*|*,stack,*)
    events+=(mem:drfuzz_arena+0x3c00/8:rw mem:drfuzz_arena+0x4100/8:w) ;;
  esac
  case ",$LAYOUT," in *,all,*|*,system,*|*,desc,*) events+=(mem:drfuzz_arena+0x1ff8/8:w) ;; esac
  printf -- '--event %s ' "${events[@]}"
}
EVENT_ARGS=$(host_events)

WORK=${KEEP:-$(mktemp -d /tmp/drfuzz.XXXXXX)}
mkdir -p "$WORK"
[[ -n ${KEEP:-} ]] || trap 'rm -rf "$WORK"' EXIT

# run MODE FIRST COUNT: writes $WORK/<first>.<mode>.{out,err,status,json}
run() {
  local mode=$1 first=$2 count=$3 base="$WORK/$2.$1"
  local args=(run "$IMAGE" --timeout "$TIMEOUT" --cmdline "seed=$first count=$count layout=$LAYOUT${GUEST_ARGS:+ $GUEST_ARGS}")
  case $mode in
    b) args+=(--exact) ;;
    c) args+=($EVENT_ARGS --slots 16 --stat --json --stat-output "$base.json") ;;
    d) args+=(--exact $EVENT_ARGS --slots 16 --stat --json --stat-output "$base.json") ;;
  esac
  set +e
  "$DRVM" "${args[@]}" >"$base.out" 2>"$base.err"
  echo $? >"$base.status"
  set -e
}

repro() { # the command that reruns one seed in one mode
  local mode=$1 seed=$2 extra=""
  case $mode in b) extra=" --exact" ;; c) extra=" $EVENT_ARGS--slots 16 --stat" ;;
    d) extra=" --exact $EVENT_ARGS--slots 16 --stat" ;; esac
  echo "$DRVM run $IMAGE --cmdline \"seed=$seed count=1 layout=$LAYOUT${GUEST_ARGS:+ $GUEST_ARGS} verbose=1\"$extra"
}

counts() { grep -o '"count":[0-9]*' "$1" 2>/dev/null | tr '\n' ' '; }

# The first seed whose lines differ between two outputs (or that one of them lacks), with both lines.
first_difference() {
  local a=$1 b=$2
  awk 'FILENAME == ARGV[1] { left[FNR] = $0; n = FNR; next }
       { right[FNR] = $0; m = FNR }
       END {
         top = n > m ? n : m
         for (i = 1; i <= top; ++i) {
           l = i <= n ? left[i] : "<no line: run ended>"
           r = i <= m ? right[i] : "<no line: run ended>"
           if (l == r) continue
           split(i <= n ? l : r, w, " "); seed = (w[1] == "seed") ? w[2] : "?"
           printf "%s\037%s\037%s\n", seed, l, r
           exit
         }
       }' "$a" "$b"
}

# batch FIRST COUNT [ROUND]: compares the four modes; prints a DIVERGENCE record per divergent seed
# and continues after it (a crash or hang loses the rest of the batch otherwise), at most
# MAX_RESTARTS times per batch.
batch() {
  local first=$1 count=$2 round=${3:-0} modes="a b" end=$(($1 + $2))
  [[ $EVENTS == 0 ]] || modes="a b c d"
  for m in $modes; do run "$m" "$first" "$count"; done
  local diverged="" m
  for m in ${modes#a }; do
    local diff
    diff=$(first_difference "$WORK/$first.a.out" "$WORK/$first.$m.out")
    if [[ -n $diff ]]; then
      IFS=$'\037' read -r seed left right <<<"$diff"
      [[ $seed == "?" ]] && seed=$first
      diverged=$seed
      printf 'DIVERGENCE\t%s\ta vs %s\n  a: %s (status %s)\n  %s: %s (status %s)\n  reproduce: %s\n             %s\n' \
        "$seed" "$m" "$left" "$(cat "$WORK/$first.a.status")" "$m" "$right" \
        "$(cat "$WORK/$first.$m.status")" "$(repro a "$seed")" "$(repro "$m" "$seed")"
      for x in a "$m"; do # how a run that did not finish ended (drvm's first line on stderr)
        [[ $(cat "$WORK/$first.$x.status") == 1 ]] || echo "  $x ended: $( (grep -m 1 -E 'triple fault|internal error|timeout|failed|halted' "$WORK/$first.$x.err" || head -n 1 "$WORK/$first.$x.err") | cut -c 1-300)"
      done
      break
    fi
  done
  # Counts are only comparable when both host-event runs did the same guest work to the end.
  if [[ -z $diverged && $EVENTS != 0 ]]; then
    local cc dc
    cc=$(counts "$WORK/$first.c.json")
    dc=$(counts "$WORK/$first.d.json")
    if [[ $cc != "$dc" || -z $cc ]]; then
      printf 'DIVERGENCE\t%s-%s\thost counts (c) vs (d)\n  c: %s\n  d: %s\n  reproduce: %s\n             %s\n' \
        "$first" "$((end - 1))" "$cc" "$dc" "$(repro c "$first")" "$(repro d "$first")"
    fi
  fi
  # #DBs of the seeds this run covers (a restart after a divergence reruns the seeds after it).
  awk -v last="${diverged:-$end}" '$1 == "seed" && $2 <= last && $3 == "db" { n++ }
                                   END { print "DBS\t" n + 0 }' "$WORK/$first.b.out"
  if [[ -n $diverged && $diverged =~ ^[0-9]+$ && $((diverged + 1)) -lt $end ]]; then
    if ((round < MAX_RESTARTS)); then
      batch "$((diverged + 1))" "$((end - diverged - 1))" "$((round + 1))"
    else
      printf 'SKIPPED\t%s\n' "$((end - diverged - 1))"
    fi
  fi
}
export -f run repro counts first_difference batch
export WORK DRVM IMAGE TIMEOUT LAYOUT GUEST_ARGS EVENTS EVENT_ARGS MAX_RESTARTS

start=$(date +%s)
results=$(seq "$FIRST" "$BATCH" "$((FIRST + SEEDS - 1))" | while read -r s; do
  n=$BATCH
  ((s + n > FIRST + SEEDS)) && n=$((FIRST + SEEDS - s))
  echo "$s $n"
done | xargs -P "$JOBS" -L 1 bash -c 'batch "$0" "$1"')
elapsed=$(($(date +%s) - start))

divergences=$(grep -c '^DIVERGENCE' <<<"$results" || true)
dbs=$(awk -F'\t' '$1 == "DBS" { n += $2 } END { print n + 0 }' <<<"$results")
skipped=$(awk -F'\t' '$1 == "SKIPPED" { n += $2 } END { print n + 0 }' <<<"$results")
grep -v '^DBS\|^SKIPPED' <<<"$results" | sed 's/^DIVERGENCE\t\([^\t]*\)\t/divergent seed \1: /' || true
echo "fuzz: $SEEDS seeds (from $FIRST, layout=$LAYOUT${GUEST_ARGS:+ $GUEST_ARGS}), $divergences divergences (default vs --exact$([[ $EVENTS == 0 ]] || echo ', with host events')), $dbs guest #DBs compared, ${elapsed}s$( ((skipped == 0)) || echo ", $skipped seeds not compared after $MAX_RESTARTS divergences in their batch")"
[[ $divergences -eq 0 ]]
