package main

import (
	"context"
	"fmt"
	"io"
)

func runMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fmt.Fprintln(stderr, "capboxd run: not built yet")
	return 1
}

func pipelineMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fmt.Fprintln(stderr, "capboxd pipeline: not built yet")
	return 1
}
