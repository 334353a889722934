package main

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/spf13/cobra"

	"github.com/sluicehq/sluice/dispatch"
	"github.com/sluicehq/sluice/objectlog"
)

func TestServeConfigStore(t *testing.T) {
	env := func(v string) func(string) string {
		return func(k string) string {
			if k == envStore {
				return v
			}
			return ""
		}
	}
	for _, tc := range []struct {
		flag, env, want string
	}{
		{flag: "mem://", env: "file:///x", want: "mem://"},
		{env: "file:///x", want: "file:///x"},
		{want: defaultStore},
	} {
		cfg := serveConfig{Store: tc.flag, Roles: []string{"all"}}
		cfg.resolve(env(tc.env))
		if cfg.Store != tc.want {
			t.Errorf("flag %q, env %q: store %q, want %q", tc.flag, tc.env, cfg.Store, tc.want)
		}
	}
}

func TestServeConfigValidate(t *testing.T) {
	for _, roles := range [][]string{{"all"}, {"ingest"}, {"ingest", "dispatch", "api"}} {
		cfg := serveConfig{Roles: roles}
		cfg.resolve(func(string) string { return "" })
		if err := cfg.validate(); err != nil {
			t.Errorf("roles %v: %v", roles, err)
		}
	}
	// Dispatch settings that cannot work are refused, saying which and why.
	cfg := serveConfig{Roles: []string{"dispatch"}}
	cfg.resolve(func(string) string { return "" })
	cfg.Dispatch.LeaseTTL = 500 * time.Millisecond
	if err := cfg.validate(); err == nil || !strings.Contains(err.Error(), "lease TTL 500ms: must be at least 1s") {
		t.Errorf("lease TTL 500ms: %v", err)
	}
	for _, roles := range [][]string{nil, {"ingest", "nope"}} {
		if err := (&serveConfig{Roles: roles}).validate(); err == nil {
			t.Errorf("roles %v: no error", roles)
		}
	}
}

// logLines hands each log event (zerolog writes one per Write) to a channel.
type logLines chan string

func (l logLines) Write(p []byte) (int, error) {
	l <- string(p)
	return len(p), nil
}

// waitLog returns once a log line containing want arrives.
func waitLog(t *testing.T, lines logLines, want string) {
	t.Helper()
	timeout := time.After(60 * time.Second)
	for {
		select {
		case line := <-lines:
			if strings.Contains(line, want) {
				return
			}
		case <-timeout:
			t.Fatalf("no %q log after 60s", want)
		}
	}
}

func TestServeRunsUntilCancelled(t *testing.T) {
	lines := make(logLines, 1024)
	c := &cli{log: zerolog.New(lines), stderr: io.Discard}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- serve(ctx, c, serveConfig{Store: "mem://", Addr: "127.0.0.1:0", Roles: []string{"all"}})
	}()
	waitLog(t, lines, "listening")
	cancel()
	waitLog(t, lines, "shutting down")
	if err := <-done; err != nil {
		t.Fatalf("serve: %v", err)
	}
}

func TestServeBadStore(t *testing.T) {
	c := &cli{log: zerolog.Nop()}
	err := serve(t.Context(), c, serveConfig{Store: "nope://x", Roles: []string{"all"}})
	if err == nil || !strings.Contains(err.Error(), "cannot open store") {
		t.Fatalf("serve with a bad store URL: %v, want a cannot open store error", err)
	}
}

// An interrupt while serve is still starting is a clean stop, not an error.
func TestServeCancelledWhileStarting(t *testing.T) {
	lines := make(logLines, 1024)
	c := &cli{log: zerolog.New(lines), stderr: io.Discard}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := serve(ctx, c, serveConfig{Store: "mem://", Addr: "127.0.0.1:0", Roles: []string{"all"}}); err != nil {
		t.Fatalf("serve with a cancelled context: %v, want a clean stop", err)
	}
}

func TestServeProfile(t *testing.T) {
	parse := func(args ...string) (serveConfig, error) {
		var cfg serveConfig
		cmd := &cobra.Command{Use: "serve"}
		cfg.registerFlags(cmd)
		if err := cmd.ParseFlags(args); err != nil {
			t.Fatal(err)
		}
		return cfg, cfg.applyProfile(cmd.Flags())
	}
	cfg, err := parse("--profile", "low-cost", "--cursor-every", "3s", "--roles", "ingest,dispatch")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Log.FlushInterval != objectlog.LowCost.FlushInterval || cfg.Log.PollMin != objectlog.LowCost.PollMin {
		t.Errorf("low-cost log settings: flush %v, poll-min %v; want %v, %v", cfg.Log.FlushInterval, cfg.Log.PollMin, objectlog.LowCost.FlushInterval, objectlog.LowCost.PollMin)
	}
	if cfg.Dispatch.CursorEvery != 3*time.Second || cfg.Dispatch.LeaseTTL != dispatch.LowCost.LeaseTTL {
		t.Errorf("an explicit flag must override the profile: cursor-every %v (want 3s), lease-ttl %v (want %v)", cfg.Dispatch.CursorEvery, cfg.Dispatch.LeaseTTL, dispatch.LowCost.LeaseTTL)
	}
	if strings.Join(cfg.Roles, ",") != "ingest,dispatch" {
		t.Errorf("roles %v: a profile must leave other flags alone", cfg.Roles)
	}
	cfg, err = parse()
	if err != nil || cfg.Log != objectlog.LowLatency {
		t.Errorf("default profile: %+v, %v; want objectlog.LowLatency", cfg.Log, err)
	}
	if _, err := parse("--profile", "cheap"); err == nil || !strings.Contains(err.Error(), "low-latency or low-cost") {
		t.Errorf("unknown profile: %v, want an error naming the choices", err)
	}
}
