package web

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/goccy/go-yaml"

	"capbox/agent/fleet/wire"
	"capbox/internal/redact"
)

func parseTemplates() (*template.Template, error) {
	t, err := template.New("").Funcs(template.FuncMap{
		"clock": func(t time.Time) string { return t.Local().Format("15:04:05") },
	}).ParseFS(assets, "assets/templates/*.html")
	if err != nil {
		return nil, fmt.Errorf("web: templates: %w", err)
	}
	return t, nil
}

func (s *Server) execute(w io.Writer, name string, data any) {
	if err := s.tmpl.ExecuteTemplate(w, name, data); err != nil {
		s.log.Error("dashboard template", "template", name, "err", err)
	}
}

func (s *Server) render(w http.ResponseWriter, status int, name string, data any) {
	var buf bytes.Buffer
	s.execute(&buf, name, data)
	writeHTML(w, status, buf.Bytes())
}

func (s *Server) executeString(name string, data any) string {
	var b strings.Builder
	s.execute(&b, name, data)
	return b.String()
}

// pageView is what every page's frame shows.
type pageView struct {
	CSRF, User     string
	ReadOnly, Auth bool
}

func (s *Server) pageData(sess *session) pageView {
	return pageView{CSRF: sess.csrf, User: sess.user, ReadOnly: sess.readOnly, Auth: !s.guard.open()}
}

// tileView is one room of the grid.
type tileView struct {
	ID, Mood, Signal, Outputs, Temp, Version string
	Alerts                                   string
	Recording                                bool
	PreviewN                                 int
	NoPreview                                string
	SeenMS                                   int64
	Channels                                 []int
}

// tileKey is what a tile shows, to tell whether a message changed it
// without rendering it (most telemetry changes nothing a tile shows).
type tileKey struct {
	ID, Mood, Signal, Outputs, Temp, Version, Alerts, NoPreview string
	Recording, Preview                                          bool
	Channels                                                    int
}

func (v tileView) key() tileKey {
	return tileKey{ID: v.ID, Mood: v.Mood, Signal: v.Signal, Outputs: v.Outputs, Temp: v.Temp, Version: v.Version,
		Alerts: v.Alerts, NoPreview: v.NoPreview, Recording: v.Recording, Preview: v.PreviewN > 0, Channels: len(v.Channels)}
}

func (s *Server) renderTile(b *box, now time.Time) string {
	return s.executeString("tile", tileOf(b, now))
}

// tileOf is what b's tile shows at now.
func tileOf(b *box, now time.Time) tileView {
	v := tileView{ID: b.id, Mood: b.mood(), Signal: "-", Outputs: "-", Temp: "-", Version: "-", PreviewN: b.previewN,
		Channels: []int{0, 1}}
	if st := b.state; st != nil {
		v.Signal = strings.ReplaceAll(st.Capture.Signal, "_", " ")
		if st.Capture.Format != "" {
			v.Signal += " " + st.Capture.Format
		}
		up, total := b.upTotal()
		v.Outputs = fmt.Sprintf("%d/%d", up, total)
		v.Recording = st.Recording
	}
	if t := b.telemetry; t != nil {
		if c, ok := t.Sys.MaxTempC(); ok {
			v.Temp = fmt.Sprintf("%.0f °C", c)
		}
	}
	if b.status != nil && b.status.Agent != "" {
		v.Version = b.status.Agent
	} else if b.meta != nil && b.meta.Agent != "" {
		v.Version = b.meta.Agent
	}
	if b.meter != nil {
		v.Channels = v.Channels[:0]
		for i := range b.meter.Channels {
			v.Channels = append(v.Channels, i)
		}
	}
	var texts []string
	cur := b.alerts(now)
	for _, k := range alertOrder {
		if t, ok := cur[k]; ok {
			texts = append(texts, t)
		}
	}
	v.Alerts = strings.Join(texts, "; ")
	switch {
	case b.previewN > 0:
	case !b.online():
		v.NoPreview = "offline"
	case !b.watchable():
		v.NoPreview = "no preview from this box"
	default:
		v.NoPreview = "no preview yet"
	}
	return v
}

// alertLine is one entry of the list on top of the grid.
type alertLine struct {
	ID, Kind, Text string
	Since          time.Time
}

func (s *Server) alertsHTML(now time.Time) string {
	var lines []alertLine
	for id, b := range s.boxes {
		cur := b.alerts(now)
		for _, k := range alertOrder {
			if t, ok := cur[k]; ok && b.listed(k, now) {
				lines = append(lines, alertLine{ID: id, Kind: strings.ReplaceAll(k, " ", "-"), Text: t, Since: b.since[k]})
			}
		}
	}
	rank := func(k string) int { return slices.Index(alertOrder, strings.ReplaceAll(k, "-", " ")) }
	sort.Slice(lines, func(i, j int) bool {
		a, b := lines[i], lines[j]
		if rank(a.Kind) != rank(b.Kind) {
			return rank(a.Kind) < rank(b.Kind)
		}
		if !a.Since.Equal(b.Since) {
			return a.Since.Before(b.Since)
		}
		return a.ID < b.ID
	})
	return s.executeString("alerts", lines)
}

// outputRow is one output on a room's page.
type outputRow struct {
	Name, Proto, URL, State, Bitrate, RTT, Loss, Reconnects string
	Enabled                                                 bool
}

// liveView is the part of a room's page that follows the box.
type liveView struct {
	ID, Online, Mood, Mode, Signal, Agent, Temp, CPU string
	Recording                                        bool
	ConfigVersion                                    int64
	Alerts                                           []string
	BoxAlerts                                        []string
	Outputs                                          []outputRow
	Events                                           []line
	Answers                                          []answer
	Report                                           *wire.ConfigReported
	SeenMS                                           int64
}

func (s *Server) renderLive(b *box, now time.Time) string {
	v := liveView{ID: b.id, Online: "no", Mood: b.mood(), Mode: "-", Signal: "-", Agent: "-", Temp: "-", CPU: "-", Report: b.reported}
	switch {
	case b.stale(now):
		v.Online = "stale"
	case b.online():
		v.Online = "yes"
	case b.status != nil && b.status.State == wire.StatusLost:
		v.Online = "lost"
	}
	if !b.seenAt.IsZero() {
		v.SeenMS = b.seenAt.UnixMilli()
	}
	if b.status != nil && b.status.Agent != "" {
		v.Agent = b.status.Agent
	}
	cur := b.alerts(now)
	for _, k := range alertOrder {
		if t, ok := cur[k]; ok {
			v.Alerts = append(v.Alerts, t)
		}
	}
	rows := map[string]*outputRow{}
	var names []string
	row := func(name string) *outputRow {
		r := rows[name]
		if r == nil {
			r = &outputRow{Name: name, State: "-", Bitrate: "-", RTT: "-", Loss: "-", Reconnects: "-", Enabled: true}
			rows[name] = r
			names = append(names, name)
		}
		return r
	}
	if m := b.meta; m != nil {
		for _, o := range m.Outputs {
			r := row(o.Name)
			r.Proto, r.URL, r.Enabled = o.Proto, redact.URL(o.URL), o.Enabled
		}
	}
	if st := b.state; st != nil {
		v.Mode, v.Recording, v.ConfigVersion, v.BoxAlerts = st.Mode, st.Recording, st.ConfigVersion, st.Alerts
		v.Signal = strings.ReplaceAll(st.Capture.Signal, "_", " ")
		if st.Capture.Format != "" {
			v.Signal += " " + st.Capture.Format
		}
		for name, state := range st.Outputs {
			row(name).State = state
		}
	}
	if t := b.telemetry; t != nil {
		if c, ok := t.Sys.MaxTempC(); ok {
			v.Temp = fmt.Sprintf("%.1f °C", c)
		}
		v.CPU = fmt.Sprintf("%.0f %%", t.Sys.CPUPct)
		for _, o := range t.Outputs {
			r := row(o.Name)
			r.Bitrate = fmt.Sprintf("%d kbit/s", o.BitrateKbps)
			r.Reconnects = fmt.Sprint(o.Reconnects)
			if o.Proto == "srt" {
				r.RTT, r.Loss = fmt.Sprintf("%.0f ms", o.RTTMs), fmt.Sprintf("%.2f %%", o.LossPct)
			}
		}
	}
	sort.Strings(names)
	for _, n := range names {
		v.Outputs = append(v.Outputs, *rows[n])
	}
	for i := len(b.events) - 1; i >= 0; i-- {
		v.Events = append(v.Events, b.events[i])
	}
	for i := len(b.answers) - 1; i >= 0; i-- {
		v.Answers = append(v.Answers, b.answers[i])
	}
	return s.executeString("live", v)
}

// roomView is a room's page.
type roomView struct {
	S          pageView
	ID         string
	Known      bool
	Live       template.HTML
	Tile       tileView
	ConfigYAML string
	Recording  bool
}

func (s *Server) roomData(b *box, sess *session) roomView {
	now := time.Now()
	v := roomView{S: s.pageData(sess), ID: b.id, Known: b.known(), Live: template.HTML(s.renderLive(b, now))}
	v.Tile = tileView{ID: b.id, PreviewN: b.previewN, Channels: []int{0, 1}}
	if b.meter != nil {
		v.Tile.Channels = v.Tile.Channels[:0]
		for i := range b.meter.Channels {
			v.Tile.Channels = append(v.Tile.Channels, i)
		}
	}
	v.ConfigYAML = "# " + b.id + " runs its own config file: a document sent from here replaces it whole.\ndevice:\n  id: " + b.id + "\n"
	if b.desired != nil {
		if red, err := wire.RedactDoc(b.desired.Config); err == nil {
			var m map[string]any
			if json.Unmarshal(red, &m) == nil {
				if y, err := yaml.Marshal(m); err == nil {
					v.ConfigYAML = fmt.Sprintf("# desired version %d; secrets read ***: leave them so to keep them.\n%s", b.desired.Version, y)
				}
			}
		}
	}
	return v
}

// restoreSecrets puts back the secrets of the current desired document
// where the editor shows *** and the operator left them so; a *** that
// matches no secret it had is an error by path.
func restoreSecrets(doc, prev []byte) ([]byte, []wire.FieldError) {
	if !bytes.Contains(doc, []byte(redact.Redacted)) {
		return doc, nil
	}
	var m, p map[string]any
	if err := json.Unmarshal(doc, &m); err != nil {
		return nil, []wire.FieldError{{Msg: "not a mapping"}}
	}
	if len(prev) > 0 {
		_ = json.Unmarshal(prev, &p)
	}
	prevOutputs := map[string]map[string]any{}
	if outs, ok := p["outputs"].([]any); ok {
		for _, o := range outs {
			if om, ok := o.(map[string]any); ok {
				if n, ok := om["name"].(string); ok {
					prevOutputs[n] = om
				}
			}
		}
	}
	var errs []wire.FieldError
	if outs, ok := m["outputs"].([]any); ok {
		for i, o := range outs {
			om, ok := o.(map[string]any)
			if !ok {
				continue
			}
			name, _ := om["name"].(string)
			old := prevOutputs[name]
			if k, ok := om["key"].(string); ok && k == redact.Redacted {
				if ok2 := old != nil && old["key"] != nil; ok2 {
					om["key"] = old["key"]
				} else {
					errs = append(errs, wire.FieldError{Path: fmt.Sprintf("outputs[%d].key", i), Msg: "*** stands for no key this output had: write the key, or use key_file"})
				}
			}
			if u, ok := om["url"].(string); ok && strings.Contains(u, redact.Redacted) {
				ou, _ := old["url"].(string)
				if old != nil && ou != "" && redact.URL(ou) == u {
					om["url"] = ou
				} else {
					errs = append(errs, wire.FieldError{Path: fmt.Sprintf("outputs[%d].url", i), Msg: "*** stands for a secret of another url: write it again, or use passphrase_file / key_file"})
				}
			}
		}
	}
	if f, ok := m["fleet"].(map[string]any); ok && f["password"] == redact.Redacted {
		pf, _ := p["fleet"].(map[string]any)
		if pf != nil && pf["password"] != nil {
			f["password"] = pf["password"]
		} else {
			errs = append(errs, wire.FieldError{Path: "fleet.password", Msg: "*** stands for no password: write it, or use password_file"})
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	out, _ := json.Marshal(m)
	if bytes.Contains(out, []byte(redact.Redacted)) {
		return nil, []wire.FieldError{{Msg: "the document still holds ***: write the secret it stands for"}}
	}
	return out, nil
}
