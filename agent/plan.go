package agent

import (
	"capbox/agent/config"
	"capbox/board"
	"capbox/pipelines"
)

// planRequest turns the config and the detected hardware into what the
// planner needs. Output URLs were validated with the config, so parse
// errors cannot happen here; they are returned anyway.
func planRequest(cfg config.Config, det board.Detection, rung pipelines.Rung, elements board.ElementChecker) (pipelines.Request, error) {
	req := pipelines.Request{
		Detection:        det,
		VideoPin:         cfg.Capture.Video,
		AudioPin:         cfg.Capture.Audio,
		EncoderPin:       cfg.Encode.Encoder,
		Codec:            cfg.Encode.Codec,
		BitrateKbps:      cfg.Encode.BitrateKbps,
		KeyframeInterval: cfg.Encode.KeyframeInterval.D(),
		MaxWidth:         cfg.Encode.MaxWidth,
		MaxHeight:        cfg.Encode.MaxHeight,
		MaxFPS:           cfg.Encode.MaxFPS,
		SlateText:        cfg.Slate.Text,
		SlateOff:         !cfg.Slate.Enabled,
		Rung:             rung,
		Elements:         elements,
	}
	for _, o := range cfg.Outputs {
		spec, err := pipelines.ParseOutput(o.Name, o.URL, o.Key, o.KeyFile)
		if err != nil {
			return req, err
		}
		spec.Enabled = o.IsEnabled()
		req.Outputs = append(req.Outputs, spec)
	}
	if cfg.Record.Enabled {
		req.Record = &pipelines.RecordSettings{
			Dir: cfg.RecordPath(), Format: cfg.Record.Format,
			Segment: cfg.Record.Segment.D(), KeepFree: int64(cfg.Record.KeepFree),
		}
	}
	return req, nil
}

// Plan is the plan the agent would run first (best rung, no trial), for
// `capboxd pipeline`.
func Plan(cfg config.Config, det board.Detection, elements board.ElementChecker) (pipelines.Plan, error) {
	rung := pipelines.Rung(0)
	if !cfg.Encode.ZeroCopy {
		rung = pipelines.RungMMAP
	}
	req, err := planRequest(cfg, det, rung, elements)
	if err != nil {
		return pipelines.Plan{}, err
	}
	return pipelines.Build(req)
}
