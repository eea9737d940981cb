# Shared by bench/results_2d.sh and bench/results_3d.sh (sourced): the ewa binary lookup and
# the common options. Callers set `here` (repository root) and `script` (their name) first.
# shellcheck shell=bash

out=""
quick=0
ewa_bin=${EWA:-}
shared=$here/../shared/data
threads=0

# results_common_option ARGS...: handles one common option at $1 and sets `consumed` to the
# number of arguments it took (0 = not a common option; the caller handles it).
results_common_option() {
  consumed=0
  case $1 in
    --quick) quick=1; consumed=1 ;;
    --out|--ewa|--shared|--threads)
      [ $# -ge 2 ] || { echo "$script: $1 needs a value (see --help)" >&2; exit 2; }
      case $1 in
        --out) out=$2 ;;
        --ewa) ewa_bin=$2 ;;
        --shared) shared=$2 ;;
        --threads) threads=$2 ;;
      esac
      consumed=2 ;;
    -h|--help) results_usage; exit 0 ;;
  esac
}

# results_usage: the header comment of the calling script (lines 2.. up to `set -euo`).
results_usage() {
  sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
}

# results_find_ewa: sets ewa_bin to --ewa / $EWA or the first built binary; exits 2 if none.
results_find_ewa() {
  if [ -z "$ewa_bin" ]; then
    for c in "$here/build/apps/ewa" "$here"/build-*/apps/ewa; do
      if [ -x "$c" ]; then ewa_bin=$c; break; fi
    done
  fi
  if [ -z "$ewa_bin" ] || [ ! -x "$ewa_bin" ]; then
    echo "$script: no ewa binary found; build first (./run.sh or cmake --build build) or pass --ewa PATH" >&2
    exit 2
  fi
}

# results_out_dir NAME: the default results folder runs/NAME (or runs/NAME_quick).
results_out_dir() {
  [ -n "$out" ] || out=$here/runs/$1$([ "$quick" = 1 ] && echo _quick || true)
  mkdir -p "$out"
}

# study_option ARGS...: the study scripts' own options (--seeds, --jobs, --dry-run); sets
# `consumed` like results_common_option (0 = not one of them).
study_option() {
  consumed=0
  case $1 in
    --seeds|--jobs)
      [ $# -ge 2 ] || { echo "$script: $1 needs a value" >&2; exit 2; }
      if [ "$1" = --seeds ]; then seeds=$2; else jobs=$2; fi
      consumed=2 ;;
    --dry-run) dry=(--dry-run); consumed=1 ;;
  esac
}

# study_sweep: the evidence studies (bench/study_2d.sh, study_3d.sh). Runs `ewa sweep` over the
# named cells in the array `variants` (the first one is the baseline) with the array
# `study_args` (config, --set ..., --seeds, --out), split over `jobs` sweep processes that share
# the output folder (job j takes cells j, j+jobs, ...), then one sweep over all cells that
# trains nothing more and writes OUT/sweep.md / sweep.json. `dry` = (--dry-run) only prints.
study_sweep() {
  local baseline=${variants[0]%%:*} j i p status=0 va pids=()
  study_variant_args() { va=(); for v in "$@"; do va+=(--variant "$v"); done; }
  if [ ${#dry[@]} -eq 0 ] && [ "$jobs" -gt 1 ]; then
    mkdir -p "$out"
    for ((j = 0; j < jobs; ++j)); do
      local part=()
      for ((i = j; i < ${#variants[@]}; i += jobs)); do part+=("${variants[$i]}"); done
      study_variant_args "${part[@]}"
      [ "$j" = 0 ] && va+=(--baseline "$baseline")
      echo "job $j: ${#part[@]} cells (log: $out/job$j.log)"
      "$ewa_bin" --log-level warn sweep "${study_args[@]}" "${va[@]}" > "$out/job$j.log" 2>&1 &
      pids+=($!)
    done
    for p in "${pids[@]}"; do wait "$p" || status=1; done
    [ "$status" = 0 ] || { echo "$script: a sweep job failed, see $out/job*.log" >&2; exit 1; }
  fi
  study_variant_args "${variants[@]}"
  "$ewa_bin" --log-level warn sweep "${study_args[@]}" "${va[@]}" --baseline "$baseline" "${dry[@]}"
}
