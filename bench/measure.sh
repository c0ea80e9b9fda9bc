# Measuring for the benches (sourced): wall and CPU seconds of a step, the
# median of runs, and the rows of a results table.
#
#   seconds COMMAND...          runs it; prints "wall:cpu" seconds
#   since START BUSY            "wall:cpu" since now and busy said those
#   median FIELD RUN...         median of field 1 (wall) or 2 (cpu) of runs
#   compare NAME OURS PEER [OP TARGET]   a table row of time medians
#   row NAME OURS PEER RATIO TARGET MET OURS-CPU PEER-CPU
#   ratio A B, met RATIO OP TARGET, drop_caches, settle

now() { date +%s.%N; }
# The machine's busy CPU seconds so far (every process: imagefs, the OSDs,
# rbd, cp, Glance; /proc/stat counts in USER_HZ = 100ths).
busy() { awk '/^cpu / { printf "%.2f", ($2 + $3 + $4 + $7 + $8 + $9) / 100 }' /proc/stat; }
since() {
  awk -v a="$1" -v b="$(now)" -v c="$2" -v d="$(busy)" 'BEGIN { printf "%.3f:%.2f", b - a, d - c }'
}
seconds() {
  local start cpu
  start=$(now)
  cpu=$(busy)
  "$@" > /dev/null
  since "$start" "$cpu"
}
median() {
  local field=$1
  shift
  printf '%s\n' "$@" | cut -d: -f"$field" | sort -g |
    awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
drop_caches() { sync; echo 3 > /proc/sys/vm/drop_caches; }
# Lets the OSDs finish what the last step left them (deletes, snapshot
# trims), so that it is not counted against the next measurement.
settle() { sync; sleep 3; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
met() { awk -v r="$1" -v t="$3" -v op="$2" 'BEGIN { print ((op == "<=" ? r <= t : r >= t) ? "yes" : "NO") }'; }
row() {
  printf '| %s | %s s | %s s | %s | %s | %s | %s s / %s s |\n' "$@"
}
compare() {
  local o b r
  o=$(median 1 $2)
  b=$(median 1 $3)
  r=$(ratio "$o" "$b")
  row "$1" "$o" "$b" "$r (time)" "${4:--} ${5:-}" "$([ -z "${4:-}" ] && echo - || met "$r" "$4" "$5")" \
    "$(median 2 $2)" "$(median 2 $3)"
}
