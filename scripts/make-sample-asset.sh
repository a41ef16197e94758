#!/usr/bin/env bash
# Regenerates assets/sample.ts: 12 s of H.264 + AAC in a constant-bitrate
# (3 Mbit/s mux rate) MPEG transport stream with a PCR every 20 ms and a key
# frame every second, so Range seeks have a random-access point per second.
# The committed file is what tests and `npm start` use; run this only to change it.
#
# Optional overrides (unset: exactly the command that made the committed sample;
# x264 is not deterministic run to run, so no regeneration is byte-identical):
#   MUXRATE   mux rate in bit/s (default 3000000); the benchmarks use 4000000
#   DURATION  length in seconds (default 12)
#   GOP       frames from one key frame to the next (default 25: one a second)
# e.g. MUXRATE=4000000 scripts/make-sample-asset.sh /tmp/sample-4m.ts
set -euo pipefail
out="${1:-$(dirname "$0")/../assets/sample.ts}"
muxrate="${MUXRATE:-3000000}"
duration="${DURATION:-12}"
gop="${GOP:-25}"
ffmpeg -hide_banner -loglevel error -y \
  -f lavfi -i "testsrc2=size=640x360:rate=25" \
  -f lavfi -i "sine=frequency=440:sample_rate=48000" \
  -t "$duration" -map 0:v -map 1:a \
  -c:v libx264 -preset veryfast -profile:v main -pix_fmt yuv420p \
  -b:v 2000k -minrate 2000k -maxrate 2000k -bufsize 1000k \
  -g "$gop" -keyint_min "$gop" -sc_threshold 0 -x264-params nal-hrd=cbr \
  -c:a aac -b:a 128k \
  -f mpegts -muxrate "$muxrate" -pcr_period 20 \
  -mpegts_flags +resend_headers -flush_packets 0 \
  -metadata service_name=twinframe-sample \
  "$out"
echo "wrote $out ($(stat -c %s "$out") bytes)"
