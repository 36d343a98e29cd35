// Package metrics is the optional Prometheus endpoint (metrics.listen): the
// latest health snapshot, wire.Telemetry, as capbox_* metrics in the text
// exposition format (version 0.0.4), written by hand so the agent needs no
// client library. Off unless configured; a bare port binds loopback.
package metrics

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"capbox/agent/fleet/wire"
	"capbox/agent/health"
)

// Source gives the latest snapshot; health.Collector implements it.
type Source interface {
	Latest() wire.Telemetry
}

// MoodSource is optional on the Source: part moods as capbox_mood.
type MoodSource interface {
	Moods() map[string]wire.Mood
}

// ThermalSource is optional on the Source: the thermal judgement as
// capbox_thermal_*; health.Collector implements it.
type ThermalSource interface {
	Thermal() health.ThermalStatus
}

// ContentType is the text exposition format's.
const ContentType = "text/plain; version=0.0.4; charset=utf-8"

// Server serves /metrics.
type Server struct {
	addr string
	src  Source
	log  *slog.Logger
}

// New checks listen and makes a server; Run listens. listen is a port
// (":9101" or "9101": loopback only, 127.0.0.1) or host:port
// ("0.0.0.0:9101" opens it to the network on purpose).
func New(listen string, src Source) (*Server, error) {
	addr, err := ResolveListen(listen)
	if err != nil {
		return nil, err
	}
	if src == nil {
		return nil, errors.New("metrics: no source")
	}
	return &Server{addr: addr, src: src, log: slog.New(slog.DiscardHandler)}, nil
}

// WithLogger sets the logger and returns s.
func (s *Server) WithLogger(l *slog.Logger) *Server {
	if l != nil {
		s.log = l
	}
	return s
}

// Addr is the address Run listens on.
func (s *Server) Addr() string { return s.addr }

// ResolveListen turns metrics.listen into a TCP address; a missing host is
// loopback.
func ResolveListen(listen string) (string, error) {
	if listen == "" {
		return "", errors.New("metrics: listen is empty (the endpoint is off)")
	}
	if !strings.Contains(listen, ":") {
		listen = ":" + listen
	}
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "", fmt.Errorf("metrics: listen %q: %w", listen, err)
	}
	if p, err := strconv.ParseUint(port, 10, 16); err != nil || (p == 0 && port != "0") {
		return "", fmt.Errorf("metrics: listen %q: port must be 0-65535", listen)
	}
	if host == "" {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port), nil
}

// Listen opens the TCP listener.
func (s *Server) Listen() (net.Listener, error) {
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	return ln, nil
}

// Run listens and serves until ctx ends.
func (s *Server) Run(ctx context.Context) error {
	ln, err := s.Listen()
	if err != nil {
		return err
	}
	return s.Serve(ctx, ln)
}

// Serve serves on ln until ctx ends, then closes it.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		IdleTimeout:       60 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	s.log.Info("metrics endpoint listening", "addr", ln.Addr().String())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("metrics: %w", err)
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		<-errc // http.ErrServerClosed
		return nil
	}
}

// Handler serves GET /metrics.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		var b bytes.Buffer
		s.write(&b)
		w.Header().Set("Content-Type", ContentType)
		w.Header().Set("Content-Length", strconv.Itoa(b.Len()))
		_, _ = w.Write(b.Bytes())
	})
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("capbox agent: metrics at /metrics\n"))
	})
	return mux
}

func (s *Server) write(b *bytes.Buffer) {
	var moods map[string]wire.Mood
	if m, ok := s.src.(MoodSource); ok {
		moods = m.Moods()
	}
	var th *health.ThermalStatus
	if ts, ok := s.src.(ThermalSource); ok {
		st := ts.Thermal()
		th = &st
	}
	Write(b, s.src.Latest(), moods, th)
}
