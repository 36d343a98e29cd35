package web

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"capbox/agent/fleet/wire"
)

//go:embed assets
var assets embed.FS

// maxConfigBody bounds a config sent from the editor: the agent's own
// file limit.
const maxConfigBody = 64 << 10

// routes is every page and action. Each handler says whether it needs a
// login and whether it changes anything.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	static, _ := fs.Sub(assets, "assets/static")
	// Static files are the same for everyone and hold no data: they are
	// served without a login, so the login page has its style.
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	mux.HandleFunc("GET /login", s.loginPage)
	mux.HandleFunc("POST /login", s.loginPost)
	mux.Handle("POST /logout", s.act(false, s.logoutPost))
	mux.Handle("GET /{$}", s.page(s.gridPage))
	mux.Handle("GET /room/{id}", s.page(s.roomPage))
	mux.Handle("GET /preview/{id}", s.page(s.previewJPEG))
	mux.Handle("GET /snapshot/{id}", s.page(s.snapshotJPEG))
	mux.Handle("GET /events", s.page(s.events))
	mux.Handle("POST /api/watch", s.act(false, s.watchPost))
	mux.Handle("POST /api/room/{id}/cmd/{name}", s.act(true, s.commandPost))
	mux.Handle("POST /api/room/{id}/config", s.act(true, s.configPost))
	// Anything else is refused the same way whether logged in or not.
	mux.Handle("/", s.page(func(w http.ResponseWriter, _ *http.Request, _ *session) { http.NotFound(w, nil) }))
	return s.headers(http.NewCrossOriginProtection().Handler(mux))
}

// headers sets what every answer carries, and refuses a loopback listener
// reached under another host name.
func (s *Server) headers(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self'; style-src 'self'; script-src 'self'; "+
			"connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Cache-Control", "no-store")
		if s.guard.open() && !loopbackHost(r) {
			http.Error(w, "this dashboard answers only to a loopback address", http.StatusMisdirectedRequest)
			return
		}
		next.ServeHTTP(w, r)
	})
}

type handler func(w http.ResponseWriter, r *http.Request, sess *session)

// page needs a session: a page without one goes to the login, anything
// else is refused.
func (s *Server) page(h handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sess := s.guard.current(w, r)
		if sess == nil {
			if r.Method == http.MethodGet && (r.URL.Path == "/" || strings.HasPrefix(r.URL.Path, "/room/")) {
				http.Redirect(w, r, "/login", http.StatusSeeOther)
				return
			}
			http.Error(w, "log in first", http.StatusUnauthorized)
			return
		}
		h(w, r, sess)
	})
}

// act is a POST that needs a session and its CSRF token; operator says
// whether a read-only user is refused.
func (s *Server) act(operator bool, h handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sess := s.guard.current(nil, r)
		switch {
		case sess == nil:
			http.Error(w, "log in first", http.StatusUnauthorized)
		case !sess.csrfOK(r):
			http.Error(w, "missing or wrong CSRF token: reload the page", http.StatusForbidden)
		case operator && sess.readOnly:
			http.Error(w, sess.user+" is read-only", http.StatusForbidden)
		default:
			h(w, r, sess)
		}
	})
}

// do runs f on the server's loop and waits for it to have run, whatever
// the request's context does (f writes the handler's variables: returning
// before it ran would race). It is false once the loop has stopped.
func (s *Server) do(_ context.Context, f func()) bool {
	return s.loop.Do(context.Background(), func() error { f(); return nil }) == nil
}

func (s *Server) loginPage(w http.ResponseWriter, r *http.Request) {
	if s.guard.open() {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	s.render(w, http.StatusOK, "login", map[string]any{"Error": r.URL.Query().Get("failed") != ""})
}

func (s *Server) loginPost(w http.ResponseWriter, r *http.Request) {
	if s.guard.open() {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 4096)
	user, password := r.PostFormValue("user"), r.PostFormValue("password")
	sess, limited := s.guard.login(w, r, user, password)
	switch {
	case limited:
		s.log.Warn("dashboard login refused: too many failures", "from", clientAddr(r))
		s.render(w, http.StatusTooManyRequests, "login", map[string]any{"Error": true, "Limited": true})
	case sess == nil:
		s.log.Info("dashboard login failed", "user", user, "from", clientAddr(r))
		s.render(w, http.StatusUnauthorized, "login", map[string]any{"Error": true})
	default:
		s.log.Info("dashboard login", "user", user, "read_only", sess.readOnly, "from", clientAddr(r))
		http.Redirect(w, r, "/", http.StatusSeeOther)
	}
}

func (s *Server) logoutPost(w http.ResponseWriter, r *http.Request, sess *session) {
	s.guard.logout(w, sess)
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

func (s *Server) gridPage(w http.ResponseWriter, r *http.Request, sess *session) {
	var buf bytes.Buffer
	ok := s.do(r.Context(), func() {
		now := time.Now()
		ids := make([]string, 0, len(s.boxes))
		for id, b := range s.boxes {
			if b.known() {
				ids = append(ids, id)
			}
		}
		sort.Strings(ids)
		tiles := make([]template.HTML, len(ids))
		for i, id := range ids {
			b := s.boxes[id]
			if b.tile == "" {
				b.tile = s.renderTile(b, now)
			}
			tiles[i] = template.HTML(b.tile)
		}
		s.execute(&buf, "grid", map[string]any{"S": s.pageData(sess), "Alerts": template.HTML(s.alerts), "Tiles": tiles, "Count": len(ids)})
	})
	if !ok {
		http.Error(w, "stopping", http.StatusServiceUnavailable)
		return
	}
	writeHTML(w, http.StatusOK, buf.Bytes())
}

func (s *Server) roomPage(w http.ResponseWriter, r *http.Request, sess *session) {
	id := r.PathValue("id")
	if !wire.DeviceIDPattern.MatchString(id) {
		http.NotFound(w, r)
		return
	}
	var buf bytes.Buffer
	status := http.StatusOK
	s.do(r.Context(), func() {
		b := s.boxes[id]
		if b == nil || !b.known() {
			status = http.StatusNotFound
			b = &box{id: id}
		}
		s.execute(&buf, "room", s.roomData(b, sess))
	})
	writeHTML(w, status, buf.Bytes())
}

func writeHTML(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func (s *Server) jpegOf(w http.ResponseWriter, r *http.Request, pick func(b *box) []byte) {
	id := r.PathValue("id")
	var img []byte
	s.do(r.Context(), func() {
		if b := s.boxes[id]; b != nil {
			img = pick(b)
		}
	})
	if img == nil {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "image/jpeg")
	_, _ = w.Write(img)
}

func (s *Server) previewJPEG(w http.ResponseWriter, r *http.Request, _ *session) {
	s.jpegOf(w, r, func(b *box) []byte { return b.preview })
}

func (s *Server) snapshotJPEG(w http.ResponseWriter, r *http.Request, _ *session) {
	s.jpegOf(w, r, func(b *box) []byte { return b.snapshot })
}

// events is a browser's push stream (Server-Sent Events). The grid's
// page watches the rooms it says are on screen; a room's page watches
// its room.
func (s *Server) events(w http.ResponseWriter, r *http.Request, sess *session) {
	fl, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	room := r.URL.Query().Get("room")
	if room != "" && !wire.DeviceIDPattern.MatchString(room) {
		http.Error(w, "bad room", http.StatusBadRequest)
		return
	}
	c := &client{sess: sess, room: room, watch: map[string]bool{}, out: make(chan event, clientQueue),
		preview: map[string]int{}, meterAt: map[string]time.Time{}}
	if room != "" {
		c.watch[room] = true
	}
	if !s.do(r.Context(), func() {
		s.nextClient++
		c.id = s.nextClient
		s.clients[c.id] = c
		s.renewLeases(time.Now())
	}) {
		return
	}
	defer s.loop.Post(func() {
		if s.clients[c.id] == c {
			s.drop(c)
		}
	})
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	fmt.Fprintf(w, "event: hello\ndata: {\"client\":%d}\n\n", c.id)
	fl.Flush()
	keep := time.NewTicker(15 * time.Second)
	defer keep.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-keep.C:
			_, _ = io.WriteString(w, ": keepalive\n\n")
			fl.Flush()
		case ev, ok := <-c.out:
			if !ok {
				return
			}
			fmt.Fprintf(w, "event: %s\ndata: %s\n\n", ev.name, ev.data)
			// Write what is queued behind it before flushing once.
			for more := true; more; {
				select {
				case ev, ok := <-c.out:
					if !ok {
						fl.Flush()
						return
					}
					fmt.Fprintf(w, "event: %s\ndata: %s\n\n", ev.name, ev.data)
				default:
					more = false
				}
			}
			fl.Flush()
		}
	}
}

// watchPost is the grid telling which rooms are on screen.
func (s *Server) watchPost(w http.ResponseWriter, r *http.Request, sess *session) {
	var req struct {
		Client int      `json:"client"`
		IDs    []string `json:"ids"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(&req); err != nil {
		http.Error(w, "want {client, ids}", http.StatusBadRequest)
		return
	}
	if len(req.IDs) > maxWatchPerClient {
		req.IDs = req.IDs[:maxWatchPerClient]
	}
	status := http.StatusNoContent
	s.do(r.Context(), func() {
		c := s.clients[req.Client]
		if c == nil || c.sess != sess || c.room != "" {
			status = http.StatusNotFound
			return
		}
		clear(c.watch)
		for _, id := range req.IDs {
			if wire.DeviceIDPattern.MatchString(id) {
				c.watch[id] = true
			}
		}
		s.renewLeases(time.Now())
	})
	w.WriteHeader(status)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// commandPost sends one version 1 command to a box; its answer shows on
// the room's page when it comes.
func (s *Server) commandPost(w http.ResponseWriter, r *http.Request, sess *session) {
	id, name := r.PathValue("id"), r.PathValue("name")
	spec, ok := wire.LookupCommand(name)
	if !wire.DeviceIDPattern.MatchString(id) || !ok {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "no such room or command"})
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 4096)
	if err := r.ParseForm(); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "bad form"})
		return
	}
	args := map[string]string{}
	for _, a := range spec.Args {
		args[a.Key] = r.PostForm.Get(a.Key)
	}
	raw, _ := json.Marshal(args)
	if _, err := wire.DecodeArgs(spec, raw); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	var reqID string
	found := false
	s.do(r.Context(), func() {
		b := s.boxes[id]
		if b == nil || !b.known() {
			return
		}
		found = true
		now := time.Now()
		reqID = s.newRequestID()
		timeout := spec.Timeout + 5*time.Second
		payload, _ := json.Marshal(wire.CmdRequest{V: wire.SchemaVersion, ID: reqID, Args: raw, Exp: now.Add(timeout).UnixMilli()})
		s.opt.Broker.Publish(s.topic(id, wire.TopicCmdReqPrefix+name), 1, false, payload)
		s.pending[reqID] = &pendingCmd{box: id, cmd: name, sent: now, timeout: timeout}
		b.answers = append(b.answers, answer{ID: reqID, Cmd: name, Args: argsText(args), User: sess.user, At: now, Status: "sent"})
		if len(b.answers) > maxAnswers {
			b.answers = b.answers[len(b.answers)-maxAnswers:]
		}
		s.dirtyRooms[id] = true
	})
	if !found {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "no box " + id + " has reported"})
		return
	}
	s.log.Info("dashboard command", "user", sess.user, "box", id, "cmd", name, "id", reqID)
	writeJSON(w, http.StatusAccepted, map[string]string{"id": reqID})
}

func argsText(args map[string]string) string {
	keys := make([]string, 0, len(args))
	for k := range args {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + args[k]
	}
	return strings.Join(parts, " ")
}

// configPost takes the editor's document: the agent's own rules first
// (every problem by path), then the next version to the box, whose
// report shows on the page.
func (s *Server) configPost(w http.ResponseWriter, r *http.Request, sess *session) {
	id := r.PathValue("id")
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxConfigBody+1))
	if err != nil || len(body) > maxConfigBody {
		writeJSON(w, http.StatusRequestEntityTooLarge, map[string]any{"errors": []wire.FieldError{{Msg: fmt.Sprintf("a config is at most %d bytes", maxConfigBody)}}})
		return
	}
	if ct := r.Header.Get("Content-Type"); strings.HasPrefix(ct, "application/x-www-form-urlencoded") {
		if v, err := url.ParseQuery(string(body)); err == nil {
			body = []byte(v.Get("yaml"))
		}
	}
	doc, err := wire.DocFromYAML(body)
	if err != nil {
		writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"errors": []wire.FieldError{{Msg: err.Error()}}})
		return
	}
	var version int64
	var errs []wire.FieldError
	found := false
	s.do(r.Context(), func() {
		b := s.boxes[id]
		if b == nil || !b.known() {
			return
		}
		found = true
		var prev []byte
		if b.desired != nil {
			prev = b.desired.Config
		}
		doc, errs = restoreSecrets(doc, prev)
		if len(errs) > 0 {
			return
		}
		if errs = checkConfig(doc); len(errs) > 0 {
			return
		}
		version = 1
		if b.desired != nil {
			version = max(version, b.desired.Version+1)
		}
		if b.reported != nil {
			version = max(version, b.reported.AppliedVersion+1, b.reported.DesiredVersion+1)
		}
		payload, _ := json.Marshal(wire.ConfigDesired{V: wire.SchemaVersion, Version: version, Config: doc})
		if len(payload) > wire.MaxPayload {
			errs = []wire.FieldError{{Msg: fmt.Sprintf("the document is %d bytes as JSON, over the %d byte limit", len(payload), wire.MaxPayload)}}
			return
		}
		s.opt.Broker.Publish(s.topic(id, wire.TopicConfigDesired), 1, true, payload)
		b.desired = &wire.ConfigDesired{V: wire.SchemaVersion, Version: version, Config: doc}
		b.answers = append(b.answers, answer{ID: fmt.Sprintf("config-%d", version), Cmd: "config", Args: fmt.Sprintf("version %d", version),
			User: sess.user, At: time.Now(), Status: "sent: the box's report follows", Done: true})
		s.dirtyRooms[id] = true
	})
	switch {
	case !found:
		writeJSON(w, http.StatusNotFound, map[string]any{"errors": []wire.FieldError{{Msg: "no box " + id + " has reported"}}})
	case len(errs) > 0:
		writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"errors": errs})
	default:
		s.log.Info("dashboard config sent", "user", sess.user, "box", id, "version", version)
		writeJSON(w, http.StatusAccepted, map[string]any{"version": version})
	}
}
