package main

// scenarios is the suite, in run order. The issue's scenario numbers say what each proves;
// device-level rows prove what the kernel and GStreamer do, agent rows prove capboxd.
func scenarios() []scenario {
	return []scenario{
		{name: "vivid-hdmi-input", issue: 1, run: vividHDMIInput},
	}
}
