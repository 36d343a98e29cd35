package pipelines

import (
	"fmt"
	"path/filepath"
	"time"
)

// The sinks: each output's muxer and network sink, and the recorder's.

// Latency for SRT when the URL gives none, in milliseconds (libsrt's
// default is 120 ms; venue networks with Wi-Fi need more).
const defaultSRTLatency = 200 * time.Millisecond

func outputSink(o OutputSpec) (Sink, error) {
	h264 := []Element{{Factory: "h264parse", Props: []Prop{{Name: "config-interval", Value: "-1"}}}}
	aac := []Element{{Factory: "aacparse"}}
	switch o.Proto {
	case ProtoSRT:
		// The mode goes in the URI: set as a property after the URI, srtsink
		// keeps the caller's local port (7001) for a listener.
		mode := "caller"
		if o.Listener {
			mode = "listener"
		}
		uri := "srt://" + o.ListenAddr() + "?mode=" + mode
		lat := o.Latency
		if lat == 0 {
			lat = defaultSRTLatency
		}
		props := []Prop{
			{Name: "uri", Value: uri, Literal: true},
			{Name: "latency", Value: itoa(int(lat / time.Millisecond))},
			{Name: "wait-for-connection", Value: "false"},
			{Name: "sync", Value: "false"},
		}
		if o.StreamID != "" {
			props = append(props, Prop{Name: "streamid", Value: o.StreamID, Literal: true})
		}
		if o.Passphrase.Set() {
			ref := o.Passphrase
			props = append(props, Prop{Name: "passphrase", Value: Redacted, Secret: &ref, Literal: true})
			if o.PBKeyLen != 0 {
				props = append(props, Prop{Name: "pbkeylen", Value: itoa(o.PBKeyLen)})
			}
		}
		return Sink{
			Name: o.Name,
			// alignment=7: seven TS packets per write, and keyframes are
			// not dropped by srtsink (TOOLCHAIN.md).
			Chain: []Element{
				{Factory: "mpegtsmux", Props: []Prop{{Name: "alignment", Value: "7"}}},
				{Factory: "srtsink", Name: "sink", Props: props},
			},
			VideoParse: h264, AudioParse: aac, VideoPad: "sink_%d", AudioPad: "sink_%d",
		}, nil
	case ProtoRTMP, ProtoRTMPS:
		ref := o.StreamKey
		return Sink{
			Name: o.Name,
			Chain: []Element{
				{Factory: "flvmux", Props: []Prop{{Name: "streamable", Value: "true"}}},
				{Factory: "rtmp2sink", Name: "sink", Props: []Prop{
					{Name: "scheme", Value: string(o.Proto)},
					{Name: "host", Value: o.Host, Literal: true},
					{Name: "port", Value: itoa(o.Port)},
					{Name: "application", Value: o.Application, Literal: true},
					{Name: "stream", Value: Redacted, Secret: &ref, Literal: true},
					{Name: "sync", Value: "false"},
				}},
			},
			VideoParse: h264, AudioParse: aac, VideoPad: "video", AudioPad: "audio",
		}, nil
	case ProtoRTSP:
		loc := fmt.Sprintf("rtsp://%s/%s", o.ListenAddr(), o.Path)
		props := []Prop{{Name: "location", Value: loc, Literal: true}, {Name: "protocols", Value: "tcp"}}
		if o.User != "" {
			props = append(props, Prop{Name: "user-id", Value: o.User, Literal: true})
		}
		if o.Password.Set() {
			ref := o.Password
			props = append(props, Prop{Name: "user-pw", Value: Redacted, Secret: &ref, Literal: true})
		}
		return Sink{
			Name:       o.Name,
			Chain:      []Element{{Factory: "rtspclientsink", Name: "sink", Props: props}},
			VideoParse: h264, AudioParse: aac, VideoPad: "sink_%u", AudioPad: "sink_%u",
		}, nil
	}
	return Sink{}, fmt.Errorf("%w: unknown protocol %q", ErrOutputURL, o.Proto)
}

// RecordingPrefix starts every segment's file name; the rest is the start
// time (UTC) and a counter.
const RecordingPrefix = "capbox-"

func recorderPlan(r RecordSettings) *RecorderPlan {
	muxer, muxProps := "mpegtsmux", ""
	if r.Format == "mp4" {
		// Fragmented MP4: each second's fragment is complete on disk, so a
		// power cut loses at most the last one.
		muxer, muxProps = "mp4mux", "properties,fragment-duration=(uint)1000,streamable=(boolean)true"
	}
	props := []Prop{
		{Name: "location", Value: filepath.Join(r.Dir, RecordingPrefix+"%05d."+r.Format), Literal: true},
		{Name: "max-size-time", Value: fmt.Sprint(r.Segment.Nanoseconds())},
		// A muxer and a file sink per segment, made from the factories and
		// properties below (splitmuxsink applies muxer- and sink-properties
		// only this way); a segment's end is written off the stream's path.
		{Name: "async-finalize", Value: "true"},
		{Name: "muxer-factory", Value: muxer},
		// Unbuffered: each muxed frame goes to the kernel as it comes
		// rather than in 64 KiB blocks, which a slate at a few kbit/s would
		// fill only after minutes; what the process holds is lost in a crash.
		{Name: "sink-properties", Value: "properties,buffer-mode=(int)2"},
	}
	if muxProps != "" {
		props = append(props, Prop{Name: "muxer-properties", Value: muxProps})
	}
	return &RecorderPlan{
		Dir: r.Dir, Format: r.Format, Segment: r.Segment, KeepFree: r.KeepFree,
		Sink: Sink{
			Name:       "recorder",
			Chain:      []Element{{Factory: "splitmuxsink", Name: "sink", Props: props}},
			VideoParse: []Element{{Factory: "h264parse"}},
			AudioParse: []Element{{Factory: "aacparse"}},
			VideoPad:   "video", AudioPad: "audio_%u",
		},
	}
}

// rawRecorderPlan writes an encoded stream that no container carries
// (FWHT, in the virtual capture box) to one file as it comes; audio is
// dropped.
func rawRecorderPlan(r RecordSettings, codec string) *RecorderPlan {
	return &RecorderPlan{
		Dir: r.Dir, Format: codec, Segment: r.Segment, KeepFree: r.KeepFree,
		Sink: Sink{
			Name:  "recorder",
			Chain: []Element{{Factory: "filesink", Name: "sink", Props: []Prop{{Name: "location", Value: filepath.Join(r.Dir, RecordingPrefix+codec+"."+codec), Literal: true}}}},
		},
	}
}
