#!/usr/bin/env bash
# WAN links on loopback: each site on a loopback address of its own
# (scripts/ceph-cluster.sh NAME@ADDRESS), its traffic with every other
# address shaped with tc HTB and u32 filters on `lo`. Bandwidth only: this
# kernel has no netem, so no added latency or loss.
#
#   wan-links.sh up MBIT ADDRESS...   each ADDRESS's traffic to it and from it,
#                                     MBIT Mbit/s each way; traffic within
#                                     one address is left alone
#   wan-links.sh cut ADDRESS          cuts ADDRESS's links: their traffic goes
#                                     through 1 kbit/s classes instead (this
#                                     kernel has no netem or gact to drop it)
#   wan-links.sh restore ADDRESS      back through its MBIT classes
#   wan-links.sh down                 removes the shaping (nothing: ok)
#   wan-links.sh bytes ADDRESS        "TO FROM": bytes sent so far to ADDRESS
#                                     and from it through its links
#
# A cut moves the traffic to classes of its own rather than changing the
# shaped classes' rate: HTB charges each packet sent at 1 kbit/s to its
# class's tokens (a 64 KiB loopback packet: over 500 s), and changing the
# rate back keeps that debt, so the restored link would stay cut.
#
# Needs root. One shaping of `lo` at a time: `up` replaces any other.
set -euo pipefail

usage() {
  sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

# The last byte of ADDRESS, which names its classes and filters, so that
# the other commands find them without a record.
last_byte() {
  local last=${1##*.}
  [[ $last =~ ^[0-9]+$ ]] && [ "$last" -gt 0 ] && [ "$last" -lt 128 ] ||
    { echo "wan-links: $1: not a loopback address ending in 1 to 127" >&2; exit 2; }
  echo "$last"
}

# The HTB classes of ADDRESS's two directions, "TO FROM" (hex minors of 1:):
# its shaped ones, or with `cut` its 1 kbit/s ones.
classes() {
  local last
  last=$(last_byte "$1")
  if [ "${2:-}" = cut ]; then
    printf '%x %x\n' $((0x100 + last * 2)) $((0x100 + last * 2 + 1))
  else
    printf '%x %x\n' $((last * 2)) $((last * 2 + 1))
  fi
}

# route ADDRESS [cut]: its traffic to and from it through its classes
# (filters of priorities of its own, replaced).
route() {
  local address=$1 last to from
  last=$(last_byte "$address")
  read -r to from < <(classes "$address" "${2:-}")
  local prio=$((last * 4))
  tc filter del dev lo parent 1: prio $((prio + 2)) 2> /dev/null || true
  tc filter del dev lo parent 1: prio $((prio + 3)) 2> /dev/null || true
  tc filter add dev lo parent 1: protocol ip prio $((prio + 2)) u32 \
    match ip dst "$address/32" flowid "1:$to"
  tc filter add dev lo parent 1: protocol ip prio $((prio + 3)) u32 \
    match ip src "$address/32" flowid "1:$from"
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
      # A burst of a few 64 KiB loopback packets (GSO), so that the rate,
      # not the packet size, sets the pace.
      for class in $(classes "$address"); do
        tc class add dev lo parent 1: classid "1:$class" htb rate "${mbit}mbit" \
          ceil "${mbit}mbit" burst 256k cburst 256k quantum 65536
      done
      for class in $(classes "$address" cut); do
        tc class add dev lo parent 1: classid "1:$class" htb rate 1kbit ceil 1kbit \
          burst 2k cburst 2k quantum 1500
      done
      tc filter add dev lo parent 1: protocol ip prio $(($(last_byte "$address") * 4 + 1)) u32 \
        match ip src "$address/32" match ip dst "$address/32" flowid 1:1
      route "$address"
    done
    ;;
  cut)
    route "${1:?ADDRESS}" cut
    ;;
  restore)
    route "${1:?ADDRESS}"
    ;;
  down)
    tc qdisc del dev lo root 2> /dev/null || true
    ;;
  bytes)
    read -r to from < <(classes "${1:?ADDRESS}")
    read -r cut_to cut_from < <(classes "$1" cut)
    echo "$(($(sent "$to") + $(sent "$cut_to"))) $(($(sent "$from") + $(sent "$cut_from")))"
    ;;
  *) usage ;;
esac
