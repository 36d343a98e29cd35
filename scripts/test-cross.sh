#!/usr/bin/env bash
# Runs a cross-built capboxd under qemu-user against the target sysroot's
# GStreamer: `capboxd version`, then a short test-pattern recording whose
# segment must decode on the host.
#   scripts/test-cross.sh arm64|armhf BINARY
set -euo pipefail
arch=$1 bin=$2
top=$(cd "$(dirname "$0")/.." && pwd)
sysroot="$top/.cache/sysroot-$arch"
case "$arch" in
arm64) qemu=qemu-aarch64-static triple=aarch64-linux-gnu ;;
armhf) qemu=qemu-arm-static triple=arm-linux-gnueabihf ;;
*) echo "test-cross: unknown arch $arch" >&2; exit 2 ;;
esac
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Only the plugins the test plan uses: a full registry scan under
# emulation takes minutes.
mkdir -p "$work/plugins"
for p in coreelements videotestsrc audiotestsrc videoconvertscale pango x264 voaacenc \
	audioparsers videoparsersbad mpegtsmux multifile app audioconvert audioresample level; do
	ln -s "$sysroot/usr/lib/$triple/gstreamer-1.0/libgst$p.so" "$work/plugins/"
done
guest_env=(GST_REGISTRY_FORK=no GST_PLUGIN_SYSTEM_PATH="$work/plugins" GST_REGISTRY="$work/registry.bin")
run() { env "${guest_env[@]}" "$qemu" -L "$sysroot" "$bin" "$@"; }

file "$bin" | grep -q "ELF.*$( [ "$arch" = arm64 ] && echo aarch64 || echo ARM)" || { echo "test-cross: $bin is not an $arch ELF" >&2; exit 1; }
out=$(run version)
echo "$out"
grep -q '^gstreamer 1\.' <<<"$out" || { echo "test-cross: version did not report GStreamer" >&2; exit 1; }

cat >"$work/capbox.yaml" <<YAML
capture: { video: test, audio: test }
encode: { max_width: 320, max_height: 180, max_fps: 15, bitrate_kbps: 300 }
outputs: []
record: { enabled: true, path: $work/rec, segment: 10s }
YAML
env "${guest_env[@]}" "$qemu" -L "$sysroot" "$bin" run -c "$work/capbox.yaml" >"$work/log" 2>&1 &
pid=$!
# Wait for the segment to open, then record two more seconds. SIGTERM: a
# background job of a script starts with SIGINT ignored.
for _ in $(seq 1 300); do
	ls "$work"/rec/capbox-*.ts >/dev/null 2>&1 && break
	kill -0 $pid 2>/dev/null || break
	sleep 0.1
done
sleep 2
kill -TERM $pid
wait $pid || { cat "$work/log"; echo "test-cross: capboxd exited with an error" >&2; exit 1; }
seg=$(find "$work/rec" -name 'capbox-*.ts' 2>/dev/null | sort | head -1)
[ -n "$seg" ] || { cat "$work/log"; echo "test-cross: no segment recorded" >&2; exit 1; }
info=$(gst-discoverer-1.0 "$seg" || true)
grep -q 'video #.*H.264' <<<"$info" || { echo "$info"; echo "test-cross: segment has no H.264 video" >&2; exit 1; }
grep -q 'audio #.*AAC' <<<"$info" || { echo "$info"; echo "test-cross: segment has no AAC audio" >&2; exit 1; }
frames=$(gst-launch-1.0 -v filesrc location="$seg" ! tsdemux ! h264parse ! avdec_h264 ! fakesink silent=false 2>/dev/null | grep -c 'last-message = chain' || true)
echo "test-cross: $arch capboxd recorded $(stat -c %s "$seg") bytes, $frames decoded frames"
[ "$frames" -ge 15 ] || { echo "test-cross: want at least 15 frames (1 s at 15 fps)" >&2; exit 1; }
