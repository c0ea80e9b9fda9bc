#!/usr/bin/env bash
# WAN links on loopback: each site on a loopback address of its own
# (scripts/ceph-cluster.sh NAME@ADDRESS), its traffic with every other
# address shaped with tc HTB and u32 filters on `lo`. Bandwidth only: this
# kernel has no netem, so no added latency or loss.
#
#   wan-links.sh up MBIT ADDRESS...   each ADDRESS's traffic to it and from it,
#                                     MBIT Mbit/s each way; traffic within
#                                     one address is left alone
#   wan-links.sh down                 removes the shaping (nothing: ok)
#   wan-links.sh bytes ADDRESS        "TO FROM": bytes sent so far to ADDRESS
#                                     and from it through its links
#
# Needs root. One shaping of `lo` at a time: `up` replaces any other.
set -euo pipefail

usage() {
  sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

# The HTB classes of ADDRESS's two directions: "TO FROM" (hex minors of 1:),
# from its last byte, so that `bytes` finds them without a record.
classes() {
  local last=${1##*.}
  [[ $last =~ ^[0-9]+$ ]] && [ "$last" -gt 0 ] && [ "$last" -lt 128 ] ||
    { echo "wan-links: $1: not a loopback address ending in 1 to 127" >&2; exit 2; }
  printf '%x %x\n' $((last * 2)) $((last * 2 + 1))
}

sent() {  # CLASS: bytes it sent
  tc -s class show dev lo classid "1:$1" | awk '/Sent/ { print $2; exit }'
}

cmd=${1:-}
[ -n "$cmd" ] || usage
shift
case "$cmd" in
  up)
    mbit=${1:?MBIT}
    shift
    [ $# -gt 0 ] || usage
    tc qdisc del dev lo root 2> /dev/null || true
    tc qdisc add dev lo root handle 1: htb default 1
    # Everything else (the sites' own traffic, every other address) unshaped.
    tc class add dev lo parent 1: classid 1:1 htb rate 100gbit burst 4m cburst 4m quantum 200000
    for address in "$@"; do
      read -r to from < <(classes "$address")
      # A burst of a few 64 KiB loopback packets (GSO), so that the rate,
      # not the packet size, sets the pace.
      for class in "$to" "$from"; do
        tc class add dev lo parent 1: classid "1:$class" htb rate "${mbit}mbit" \
          ceil "${mbit}mbit" burst 256k cburst 256k quantum 65536
      done
      tc filter add dev lo parent 1: protocol ip prio 1 u32 \
        match ip src "$address/32" match ip dst "$address/32" flowid 1:1
      tc filter add dev lo parent 1: protocol ip prio 2 u32 match ip dst "$address/32" flowid "1:$to"
      tc filter add dev lo parent 1: protocol ip prio 3 u32 match ip src "$address/32" flowid "1:$from"
    done
    ;;
  down)
    tc qdisc del dev lo root 2> /dev/null || true
    ;;
  bytes)
    read -r to from < <(classes "${1:?ADDRESS}")
    echo "$(sent "$to") $(sent "$from")"
    ;;
  *) usage ;;
esac
