package main

import (
	"context"
	"fmt"
	"io"
)

// detectMain and snapshotMain are filled in by the discovery work (board/).
func detectMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fmt.Fprintln(stderr, "capboxd detect: not built yet")
	return 1
}

func snapshotMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fmt.Fprintln(stderr, "capboxd snapshot: not built yet")
	return 1
}
