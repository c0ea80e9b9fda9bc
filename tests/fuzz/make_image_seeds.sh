#!/usr/bin/env bash
# Seeds for image_format_fuzzer: small images of every format the inspector
# knows, made by qemu-img (and genisoimage) the way users make them, plus
# unsafe ones (a qcow2 with a backing file, one with an external data file,
# a differencing vhdx). Usage: make_image_seeds.sh DIR
set -euo pipefail
out=${1:?usage: $0 DIR}
mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
head -c 65536 /dev/urandom > "$work/data.raw"
truncate -s 1M "$work/data.raw"
for format in qcow2 vmdk vpc vdi; do
  qemu-img convert -q -f raw -O "$format" "$work/data.raw" "$out/seed.$format"
done
qemu-img convert -q -f raw -O vmdk -o subformat=streamOptimized "$work/data.raw" "$out/seed.stream.vmdk"
qemu-img convert -q -f raw -O vpc -o subformat=fixed "$work/data.raw" "$out/seed.fixed.vhd"
qemu-img create -q -f qcow2 -o compat=0.10 "$out/seed.v2.qcow2" 1M
qemu-img create -q -f qcow2 -b "$out/seed.qcow2" -F qcow2 "$out/seed.backing.qcow2"
qemu-img create -q -f qcow2 -o data_file="$work/external.raw" "$out/seed.datafile.qcow2" 1M
qemu-img convert -q -f raw -O vhdx -o log_size=1M,block_size=1M "$work/data.raw" "$out/seed.vhdx"
mkdir -p "$work/iso"
echo hello > "$work/iso/hello.txt"
genisoimage -quiet -o "$out/seed.iso" "$work/iso"
truncate -s 4M "$out/seed.vhdx"  # past its metadata region: what the inspector reads
head -c 4096 /dev/urandom > "$out/seed.raw"
