package main

import (
	"context"
	"fmt"
	"io"
	"runtime"

	"capbox/pipelines/gst"
)

func versionMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fmt.Fprintf(stdout, "capboxd %s\ncommit %s\ngo %s %s/%s\ngstreamer %s\n",
		version, commit, runtime.Version(), runtime.GOOS, runtime.GOARCH, gst.Version())
	return 0
}
