package pipelines

// OnAir is what the video track carries, as the agent decides it from the
// input's state. The runtime reports facts (capture failed or running,
// picture flat or back) and carries out this choice; it never puts the
// slate on air by itself.
type OnAir struct {
	// Slate puts the slate on air instead of the live picture.
	Slate bool
	// Capture keeps the live capture running (and retried when it fails)
	// while the slate is on air, so that a picture or a capture that comes
	// back is seen. Without it the slate replaces the capture, which is
	// stopped once the slate is on air (nothing to capture: no signal, no
	// device). The live picture on air always has its capture running.
	Capture bool
}
