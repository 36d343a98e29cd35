package web

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Users checks logins: a mosquitto-format password file
// (agent/fleet/broker's PasswordFile).
type Users interface {
	Verify(user, password string) bool
}

const (
	sessionCookie = "capbox_session"
	// sessionIdle ends a session nobody used for this long.
	sessionIdle = 8 * time.Hour
	// maxSessions bounds the sessions kept; the least recently used goes.
	maxSessions = 4096
	// Failed logins: after loginFailures within loginWindow from one
	// address, its logins are refused until the window has passed.
	loginFailures = 5
	loginWindow   = time.Minute
	maxLimited    = 4096
)

// session is one browser's login.
type session struct {
	id       string
	user     string
	readOnly bool
	csrf     string
	last     time.Time
}

// guard holds the sessions, the CSRF tokens and the login limiter.
type guard struct {
	users    Users // nil: no login (a loopback listener without --users)
	readOnly map[string]bool
	secure   bool // cookies only over TLS
	now      func() time.Time

	mu       sync.Mutex
	sessions map[string]*session
	failures map[string][]time.Time
}

func newGuard(users Users, readOnly []string, secure bool) *guard {
	g := &guard{users: users, readOnly: map[string]bool{}, secure: secure, now: time.Now,
		sessions: map[string]*session{}, failures: map[string][]time.Time{}}
	for _, u := range readOnly {
		if u = strings.TrimSpace(u); u != "" {
			g.readOnly[u] = true
		}
	}
	return g
}

func token() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// open: anyone who reaches the (loopback) listener is an operator.
func (g *guard) open() bool { return g.users == nil }

// current is the request's session, if any; with no login required, a
// session is made for the browser on its first visit.
func (g *guard) current(w http.ResponseWriter, r *http.Request) *session {
	now := g.now()
	if c, err := r.Cookie(sessionCookie); err == nil {
		g.mu.Lock()
		s := g.sessions[c.Value]
		if s != nil && now.Sub(s.last) > sessionIdle {
			delete(g.sessions, s.id)
			s = nil
		}
		if s != nil {
			s.last = now
		}
		g.mu.Unlock()
		if s != nil {
			return s
		}
	}
	if !g.open() || w == nil {
		return nil
	}
	return g.start(w, "local", false)
}

// start makes a session and sets its cookie.
func (g *guard) start(w http.ResponseWriter, user string, readOnly bool) *session {
	s := &session{id: token(), user: user, readOnly: readOnly, csrf: token(), last: g.now()}
	g.mu.Lock()
	if len(g.sessions) >= maxSessions {
		var oldest *session
		for _, o := range g.sessions {
			if oldest == nil || o.last.Before(oldest.last) {
				oldest = o
			}
		}
		delete(g.sessions, oldest.id)
	}
	g.sessions[s.id] = s
	g.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: s.id, Path: "/", HttpOnly: true, Secure: g.secure,
		SameSite: http.SameSiteStrictMode, MaxAge: int(sessionIdle / time.Second)})
	return s
}

// login checks a password and starts a session; false when refused or
// when the address is limited (limited true).
func (g *guard) login(w http.ResponseWriter, r *http.Request, user, password string) (s *session, limited bool) {
	addr := clientAddr(r)
	now := g.now()
	g.mu.Lock()
	recent := g.failures[addr][:0]
	for _, t := range g.failures[addr] {
		if now.Sub(t) < loginWindow {
			recent = append(recent, t)
		}
	}
	g.failures[addr] = recent
	if len(recent) >= loginFailures {
		g.mu.Unlock()
		return nil, true
	}
	g.mu.Unlock()
	if g.users == nil || user == "" || !g.users.Verify(user, password) {
		g.mu.Lock()
		if len(g.failures) >= maxLimited {
			clear(g.failures)
		}
		g.failures[addr] = append(g.failures[addr], now)
		g.mu.Unlock()
		return nil, false
	}
	return g.start(w, user, g.readOnly[user]), false
}

func (g *guard) logout(w http.ResponseWriter, s *session) {
	g.mu.Lock()
	delete(g.sessions, s.id)
	g.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", HttpOnly: true, Secure: g.secure,
		SameSite: http.SameSiteStrictMode, MaxAge: -1})
}

// csrfOK checks the token of a state-changing request: the X-CSRF-Token
// header (the page's scripts) or the csrf form field.
func (s *session) csrfOK(r *http.Request) bool {
	t := r.Header.Get("X-CSRF-Token")
	if t == "" {
		t = r.PostFormValue("csrf")
	}
	return t != "" && subtle.ConstantTimeCompare([]byte(t), []byte(s.csrf)) == 1
}

func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// IsLoopback reports whether a listen address serves only this machine.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// loopbackHost: a request to a loopback listener must name it as a
// loopback host, so a web page cannot reach it through a DNS name that
// resolves to 127.0.0.1 (DNS rebinding).
func loopbackHost(r *http.Request) bool {
	return IsLoopback(r.Host)
}
