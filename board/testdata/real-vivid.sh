#!/bin/bash
# Runs board's real-device test inside the virtual capture box (vivid + vicodec loaded):
#   go test -c -o .cache/board-real/board.test ./board
#   .cache/e2e/bin/e2e-vm -script board/testdata/real-vivid.sh -out DIR
here=$(cd "$(dirname "$0")/../.." && pwd)
cd "$here/board" || exit 1
CAPBOX_VIVID_DEVICE=/dev/video0 "$here/.cache/board-real/board.test" -test.run 'TestRealVivid' -test.v -test.count=1
