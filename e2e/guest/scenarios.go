package main

import "time"

// scenarios is the suite, in run order. The issue's scenario numbers say what each proves;
// device-level rows prove what the kernel and GStreamer do, agent rows prove capboxd.
// Rows that reload vivid run after the others of their kind: they renumber its node.
func scenarios() []scenario {
	return []scenario{
		// the kernel and GStreamer on the real devices
		{name: "vivid-hdmi-input", issue: 1, run: vividHDMIInput},
		{name: "sysfs-fixture", issue: 1, run: sysfsFixture},
		{name: "gst-dmabuf-zero-copy", issue: 2, run: gstZeroCopy, timeout: 4 * time.Minute},
		{name: "signal-modes", issue: 4, run: signalModes},
		{name: "resolution-change", issue: 5, run: resolutionChange},
		{name: "fatal-streaming-error-eio", issue: 6, run: fatalStreamingEIO},
		{name: "hotplug-uevents", issue: 6, run: hotplugUevents},
		{name: "disconnect-enodev", issue: 6, run: disconnectENODEV},
		// the agent
		{name: "capboxd-detect", issue: 1, run: capboxdDetect},
		{name: "capboxd-snapshot", issue: 1, run: capboxdSnapshot},
		{name: "capboxd-zero-copy-plan", issue: 2, run: agentZeroCopyPlan},
		{name: "capboxd-zero-copy-run", issue: 2, run: agentZeroCopyRun, timeout: 5 * time.Minute},
		{name: "capboxd-x264-srt-recording", issue: 3, run: agentX264SRTRecording, timeout: 4 * time.Minute},
		{name: "capboxd-signal-loss", issue: 4, run: agentSignalLoss, timeout: 4 * time.Minute},
		{name: "capboxd-resolution-change", issue: 5, run: agentResolutionChange, timeout: 4 * time.Minute},
		{name: "capboxd-hotplug", issue: 6, run: agentHotplug, timeout: 4 * time.Minute},
		{name: "capboxd-mqtt-events", issue: 7, run: agentMQTTEvents, timeout: 4 * time.Minute},
	}
}
