package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"capbox/agent/fleet/broker"
	"capbox/cmd/capboxctl/web"
)

func webMain(ctx context.Context, g *globals, fs *flag.FlagSet, args []string, out, errw io.Writer) int {
	listen := fs.String("listen", "127.0.0.1:8080", "`host:port` to serve; anything but loopback needs --tls-cert, --tls-key and --users")
	tlsCert := fs.String("tls-cert", "", "certificate `file` (serves HTTPS)")
	tlsKey := fs.String("tls-key", "", "key `file`")
	users := fs.String("users", "", "the dashboard's logins: a mosquitto-format password `file` (capboxctl passwd FILE USER)")
	readOnly := fs.String("read-only", "", "comma-separated `users` of --users who see everything and change nothing")
	lease := fs.Duration("lease", 15*time.Second, "how long a box publishes previews and meters without a renewal")
	preview := fs.Duration("preview-interval", 3*time.Second, "how often a watched box sends a preview (1s..1m)")
	meter := fs.Duration("meter-interval", 200*time.Millisecond, "how often a watched box sends its audio meters (100ms..10s)")
	verbose := fs.Bool("v", false, "log logins, commands and connections")
	pos, err := parseInterspersed(fs, args)
	if err != nil || !wantArgs(fs, pos, 0, errw) {
		return exitUsage
	}
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelInfo
	}
	log := slog.New(slog.NewTextHandler(errw, &slog.HandlerOptions{Level: level}))
	var tc *tls.Config
	if *tlsCert != "" || *tlsKey != "" {
		pair, err := tls.LoadX509KeyPair(filepath.Clean(*tlsCert), filepath.Clean(*tlsKey))
		if err != nil {
			fmt.Fprintln(errw, "capboxctl: dashboard certificate:", err)
			return exitUsage
		}
		tc = &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
	}
	opt := web.Options{Prefix: g.prefix, TLS: tc, Lease: *lease, PreviewInterval: *preview, MeterInterval: *meter, Logger: log}
	if *readOnly != "" {
		opt.ReadOnly = strings.Split(*readOnly, ",")
	}
	if *users != "" {
		pf, err := broker.OpenPasswordFile(*users)
		if pf == nil {
			fmt.Fprintln(errw, "capboxctl: --users:", err)
			return exitUsage
		}
		if err != nil {
			log.Warn("the dashboard's password file has bad lines; they are ignored", "err", err)
		}
		opt.Users = pf
	}
	if !web.IsLoopback(*listen) && (tc == nil || opt.Users == nil) {
		fmt.Fprintln(errw, "capboxctl:", web.ErrInsecureListener)
		return exitUsage
	}
	mq := &webSession{}
	opt.Broker = mq
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintln(errw, "capboxctl:", err)
		return exitFailed
	}
	opt.Listener = ln
	srv, err := web.New(opt)
	if err != nil {
		ln.Close()
		fmt.Fprintln(errw, "capboxctl:", err)
		return exitUsage
	}
	mq.deliver = srv.Deliver
	if err := mq.connect(ctx, g, log); err != nil {
		ln.Close()
		fmt.Fprintln(errw, "capboxctl:", err)
		return exitTimeout
	}
	defer mq.close()
	fmt.Fprintf(out, "dashboard on %s, broker %s; Ctrl-C stops it\n", srv.URL(), g.broker)
	if err := srv.Run(ctx); err != nil {
		fmt.Fprintln(errw, "capboxctl:", err)
		return exitFailed
	}
	return exitOK
}

// webSession is the dashboard's MQTT session: unlike the other commands'
// it lives long, so it reconnects by itself and subscribes again on every
// connect (a clean session).
type webSession struct {
	c       paho.Client
	deliver func(topic string, payload []byte, retained bool)
}

func (s *webSession) connect(ctx context.Context, g *globals, log *slog.Logger) error {
	o, _, err := clientOptions(g)
	if err != nil {
		return err
	}
	subs := web.Subscriptions(g.prefix)
	o.SetAutoReconnect(true).SetMaxReconnectInterval(30 * time.Second)
	o.SetOnConnectHandler(func(c paho.Client) {
		tok := c.SubscribeMultiple(subs, nil)
		go func() {
			if tok.WaitTimeout(30*time.Second) && tok.Error() != nil {
				log.Error("the broker refused the dashboard's subscriptions", "err", tok.Error())
			}
		}()
	})
	o.SetConnectionLostHandler(func(_ paho.Client, err error) { log.Warn("broker connection lost; reconnecting", "err", err) })
	o.SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) { s.deliver(m.Topic(), m.Payload(), m.Retained()) })
	s.c = paho.NewClient(o)
	tok := s.c.Connect()
	select {
	case <-tok.Done():
	case <-ctx.Done():
		return ctx.Err()
	}
	if err := tok.Error(); err != nil {
		return fmt.Errorf("broker %s: %w", g.broker, err)
	}
	if !s.c.IsConnected() {
		return errors.New("broker: not connected")
	}
	return nil
}

// Publish sends without waiting: the dashboard's loop must not block on
// the broker.
func (s *webSession) Publish(topic string, qos byte, retained bool, payload []byte) {
	s.c.Publish(topic, qos, retained, payload)
}

func (s *webSession) close() { s.c.Disconnect(250) }
