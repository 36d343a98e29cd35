#!/bin/sh
# The wrapper a venue's script needs around gst-launch-1.0 or ffmpeg: neither reconnects
# when the ingest goes away; they exit (or, for gst-launch, fail to connect and exit),
# and the loop starts them again a second later.
#   loop.sh COMMAND [ARGS...]
while :; do
	"$@"
	echo "loop: $1 exited with status $?, starting it again in 1 s" >&2
	sleep 1
done
