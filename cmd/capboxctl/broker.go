package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"capbox/agent/fleet/broker"
	"capbox/agent/fleet/wire"
)

// stdin is where passwd reads the password (tests replace it).
var stdin io.Reader = os.Stdin

func brokerMain(ctx context.Context, g *globals, fs *flag.FlagSet, args []string, out, errw io.Writer) int {
	listen := fs.String("listen", "127.0.0.1:1883", "`host:port` to serve (use :8883 with TLS to serve the venue)")
	users := fs.String("fleet-users", "fleet", "comma-separated accounts with full access to the prefix")
	tlsCert := fs.String("tls-cert", "", "server certificate `file` (serves MQTT over TLS)")
	tlsKey := fs.String("tls-key", "", "server key `file`")
	clientCA := fs.String("client-ca", "", "CA `file` for client certificates (mutual TLS: CN = username)")
	verbose := fs.Bool("v", false, "log every connection and refusal")
	pos, err := parseInterspersed(fs, args)
	if err != nil || !wantArgs(fs, pos, 0, errw) {
		return exitUsage
	}
	// For the broker, --password-file is its user database (mosquitto
	// format: boxes and fleet accounts), not a client password.
	db := g.passwordFile
	if db == "" {
		fmt.Fprintln(errw, "capboxctl: broker needs --password-file (create it with capboxctl passwd FILE USER)")
		return exitUsage
	}
	var tc *tls.Config
	if *tlsCert != "" || *tlsKey != "" {
		pair, err := tls.LoadX509KeyPair(filepath.Clean(*tlsCert), filepath.Clean(*tlsKey))
		if err != nil {
			fmt.Fprintln(errw, "capboxctl: server certificate:", err)
			return exitUsage
		}
		tc = &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
		if *clientCA != "" {
			pem, err := os.ReadFile(filepath.Clean(*clientCA))
			pool := x509.NewCertPool()
			if err != nil || !pool.AppendCertsFromPEM(pem) {
				fmt.Fprintln(errw, "capboxctl: client CA: no PEM certificate in", *clientCA)
				return exitUsage
			}
			tc.ClientCAs, tc.ClientAuth = pool, tls.RequireAndVerifyClientCert
		}
	} else if *clientCA != "" {
		fmt.Fprintln(errw, "capboxctl: --client-ca needs --tls-cert and --tls-key")
		return exitUsage
	}
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelInfo
	}
	log := slog.New(slog.NewTextHandler(errw, &slog.HandlerOptions{Level: level}))
	var fleetUsers []string
	for _, u := range strings.Split(*users, ",") {
		if u = strings.TrimSpace(u); u != "" {
			fleetUsers = append(fleetUsers, u)
		}
	}
	b, err := broker.New(broker.Config{Listen: *listen, Prefix: g.prefix, PasswordFile: db, FleetUsers: fleetUsers, TLS: tc, Logger: log})
	if err != nil {
		fmt.Fprintln(errw, "capboxctl:", err)
		return exitFailed
	}
	scheme := "mqtt"
	if tc != nil {
		scheme = "mqtts"
	}
	fmt.Fprintf(out, "broker on %s://%s, prefix %s, fleet accounts %s; Ctrl-C stops it\n", scheme, b.Addr(), g.prefix, strings.Join(fleetUsers, ","))
	if err := b.Run(ctx); err != nil {
		fmt.Fprintln(errw, "capboxctl:", err)
		return exitFailed
	}
	return exitOK
}

func passwdMain(_ context.Context, _ *globals, fs *flag.FlagSet, args []string, out, errw io.Writer) int {
	pos, err := parseInterspersed(fs, args)
	if err != nil || !wantArgs(fs, pos, 2, errw) {
		return exitUsage
	}
	file, user := pos[0], pos[1]
	if isTerminal(out) {
		fmt.Fprintf(errw, "password for %s (echoed; pipe it in to avoid that): ", user)
	}
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && line == "" {
		fmt.Fprintln(errw, "capboxctl: no password on stdin")
		return exitUsage
	}
	if err := broker.SetPassword(file, user, strings.TrimRight(line, "\r\n")); err != nil {
		fmt.Fprintln(errw, "capboxctl:", err)
		return exitFailed
	}
	fmt.Fprintf(out, "%s: %s set (mosquitto $7$ format)\n", file, user)
	return exitOK
}

func aclMain(_ context.Context, g *globals, fs *flag.FlagSet, args []string, out, errw io.Writer) int {
	users := fs.String("fleet-users", "fleet", "comma-separated fleet accounts")
	pos, err := parseInterspersed(fs, args)
	if err != nil || !wantArgs(fs, pos, 0, errw) {
		return exitUsage
	}
	fmt.Fprint(out, wire.MosquittoACL(g.prefix, strings.Split(*users, ",")...))
	return exitOK
}
