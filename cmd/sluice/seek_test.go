package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// Replay through the CLI against a real server: `sub seek --offset earliest`
// delivers everything again, `sub show` reports progress, and mistakes get
// clear errors.
func TestSubSeekReplaysThroughTheCLI(t *testing.T) {
	s := startServe(t, []string{"SLUICE_TOKEN=" + testAdminToken}, "--store", t.TempDir(), "--dev-echo")
	cli, must := s.cli(t)
	echoed := func() int {
		_, body := s.do(t, "GET", "/dev/echo", "", "")
		var got struct{ Value []struct{ Method string } }
		_ = json.Unmarshal([]byte(body), &got)
		n := 0
		for _, v := range got.Value {
			if v.Method == "POST" { // not the OPTIONS of the endpoint validation
				n++
			}
		}
		return n
	}
	must("topic", "create", "replays")
	must("sub", "create", "replays", "echo", "--endpoint", s.base+"/dev/echo")
	must("publish", "replays", `{"n":1}`, `{"n":2}`, `{"n":3}`)
	waitUntil(t, "3 deliveries", 20*time.Second, func() bool { return echoed() == 3 })

	out := must("sub", "seek", "replays", "echo", "--offset", "earliest")
	if !strings.Contains(out, "PARTITION") || !strings.Contains(out, "Moved the cursors of replays/echo to earliest") {
		t.Errorf("seek output:\n%s", out)
	}
	waitUntil(t, "3 more deliveries", 20*time.Second, func() bool { return echoed() == 6 })
	waitUntil(t, "sub show reports no backlog", 20*time.Second, func() bool {
		return strings.Contains(must("sub", "show", "replays", "echo"), "Delivery: 0 events behind")
	})

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"sub", "seek", "replays", "echo"}, "say where to: --time <RFC 3339> or --offset earliest|latest"},
		{[]string{"sub", "seek", "replays", "echo", "--time", "yesterday"}, `--time "yesterday": want an RFC 3339 time`},
		{[]string{"sub", "seek", "replays", "echo", "--offset", "middle"}, `--offset "middle": want earliest or latest`},
		{[]string{"sub", "seek", "replays", "echo", "--offset", "latest", "--time", "2026-01-01T00:00:00Z"}, "not both"},
		{[]string{"sub", "seek", "replays", "nope", "--offset", "latest"}, `event subscription "nope" of topic "replays" does not exist`},
	} {
		r := cli(c.args...)
		if r.err == nil || !strings.Contains(r.err.Error(), c.want) {
			t.Errorf("sluice %s: error %v, want one saying %q", strings.Join(c.args, " "), r.err, c.want)
		}
	}
	if n := echoed(); n != 6 {
		t.Errorf("%d deliveries after the failed seeks, want still 6", n)
	}
	if err := s.stop(t); err != nil {
		t.Errorf("graceful stop: %v", err)
	}
}

func TestSubRotateSecret(t *testing.T) {
	s := newAdminServer(t)
	s.ok(t, "topic", "create", "orders")
	s.ok(t, "sub", "create", "orders", "audit", "--endpoint", "https://example.com/hook")
	var before struct {
		Properties struct{ SigningSecret string }
	}
	if err := json.Unmarshal([]byte(s.ok(t, "sub", "show", "orders", "audit", "--secrets", "-o", "json")), &before); err != nil {
		t.Fatal(err)
	}
	out := s.ok(t, "sub", "rotate-secret", "orders", "audit", "--overlap", "90m")
	var after struct {
		Properties struct{ SigningSecret string }
	}
	if err := json.Unmarshal([]byte(s.ok(t, "sub", "show", "orders", "audit", "--secrets", "-o", "json")), &after); err != nil {
		t.Fatal(err)
	}
	if after.Properties.SigningSecret == before.Properties.SigningSecret || !strings.Contains(out, after.Properties.SigningSecret) ||
		!strings.Contains(out, "The old secret signs deliveries too until") {
		t.Errorf("rotate-secret printed:\n%s\nsecret before %q, after %q", out, before.Properties.SigningSecret, after.Properties.SigningSecret)
	}
	if msg := s.fail(t, "sub", "rotate-secret", "orders", "audit", "--overlap", "5s"); !strings.Contains(msg, "whole number of minutes") {
		t.Errorf("--overlap 5s: %s", msg)
	}
	if msg := s.fail(t, "sub", "rotate-secret", "orders", "audit", "--overlap", "200h"); !strings.Contains(msg, "must be between 0 and") {
		t.Errorf("--overlap 200h: %s", msg)
	}
}

// cli returns how to run the CLI against s with the admin token: run
// returns what happened, must fails the test unless it succeeded.
func (s *server) cli(t *testing.T) (run func(args ...string) cliResult, must func(args ...string) string) {
	run = func(args ...string) cliResult {
		return runCLI(t, append(args, "--server", s.base, "--token", testAdminToken)...)
	}
	must = func(args ...string) string {
		t.Helper()
		r := run(args...)
		if r.err != nil {
			t.Fatalf("sluice %s: %v\n%s", strings.Join(args, " "), r.err, r.stderr)
		}
		return r.stdout
	}
	return run, must
}
