package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// These tests run the real sluice binary, as a user would.

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// sluiceBinary builds the binary once per test run.
func sluiceBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "sluice-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "sluice")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = errors.New(string(out))
		}
	})
	if buildErr != nil {
		t.Fatalf("build sluice: %v", buildErr)
	}
	return binPath
}

// server is a running `sluice serve` process.
type server struct {
	cmd    *exec.Cmd
	base   string // http://127.0.0.1:port, or https:// with --tls-cert
	token  string // from the banner, if it printed one
	mu     sync.Mutex
	stderr bytes.Buffer
	done   chan error
}

var (
	bannerAddr  = regexp.MustCompile(`sluice is serving (https?://\S+)`)
	bannerToken = regexp.MustCompile(`export SLUICE_TOKEN=(\S+)`)
)

// startServe runs `sluice serve --addr 127.0.0.1:0 args...` and waits for
// the banner (which names the address it got).
func startServe(t *testing.T, env []string, args ...string) *server {
	t.Helper()
	cmd := exec.Command(sluiceBinary(t), append([]string{"serve", "--addr", "127.0.0.1:0"}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	pipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &server{cmd: cmd, done: make(chan error, 1)}
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(pipe)
		signalled := false
		for sc.Scan() {
			line := sc.Text()
			s.mu.Lock()
			s.stderr.WriteString(line + "\n")
			if m := bannerAddr.FindStringSubmatch(line); m != nil {
				s.base = m[1]
			}
			if m := bannerToken.FindStringSubmatch(line); m != nil {
				s.token = m[1]
			}
			if !signalled && s.base != "" && strings.HasPrefix(line, "Try:") {
				signalled = true
				close(ready)
			}
			s.mu.Unlock()
		}
		s.done <- cmd.Wait()
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
		}
	})
	select {
	case <-ready:
	case err := <-s.done:
		t.Fatalf("sluice serve exited before it was ready (%v):\n%s", err, s.output())
	case <-time.After(60 * time.Second):
		t.Fatalf("sluice serve printed no banner in 60s:\n%s", s.output())
	}
	return s
}

func (s *server) output() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stderr.String()
}

// stop sends SIGTERM and returns the exit error (nil for exit 0).
func (s *server) stop(t *testing.T) error {
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-s.done:
		return err
	case <-time.After(60 * time.Second):
		t.Fatalf("sluice serve did not stop within 60s of SIGTERM:\n%s", s.output())
		return nil
	}
}

func (s *server) do(t *testing.T, method, path, token, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, s.base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestServeProcessFirstRunRestartAndGracefulShutdown(t *testing.T) {
	dir := t.TempDir()
	s := startServe(t, nil, "--store", dir)
	if s.token == "" {
		t.Fatalf("first start printed no admin token:\n%s", s.output())
	}
	for _, p := range []string{"/healthz", "/readyz"} {
		if code, body := s.do(t, "GET", p, "", ""); code != 200 {
			t.Fatalf("GET %s: %d %s", p, code, body)
		}
	}
	if code, body := s.do(t, "GET", "/api/topics", "", ""); code != 401 || !strings.Contains(body, `"error"`) {
		t.Fatalf("no token: %d %s, want 401 with an error body", code, body)
	}
	if code, body := s.do(t, "GET", "/api/topics", "wrong", ""); code != 401 {
		t.Fatalf("wrong token: %d %s, want 401", code, body)
	}
	if code, body := s.do(t, "PUT", "/api/topics/orders", s.token, `{"name":"orders"}`); code != 201 {
		t.Fatalf("create topic: %d %s", code, body)
	}
	if err := s.stop(t); err != nil {
		t.Fatalf("exit after SIGTERM: %v, want status 0\n%s", err, s.output())
	}
	if out := s.output(); !strings.Contains(out, "stopped") || strings.Count(out, s.token) != 1 {
		t.Fatalf("shutdown log missing, or the token printed more than once:\n%s", out)
	}

	// A restart on the same directory keeps topics and the token, and does not print it again.
	s2 := startServe(t, nil, "--store", dir)
	if s2.token != "" {
		t.Fatalf("restart printed a new admin token:\n%s", s2.output())
	}
	code, body := s2.do(t, "GET", "/api/topics/orders", s.token, "")
	if code != 200 || !strings.Contains(body, `"orders"`) || !strings.Contains(body, s2.base+"/topics/orders/api/events") {
		t.Fatalf("topic after restart: %d %s", code, body)
	}
	if err := s2.stop(t); err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, s2.output())
	}
}

func TestServeProcessTokenFromEnv(t *testing.T) {
	s := startServe(t, []string{"SLUICE_TOKEN=automation-token-123"}, "--store", t.TempDir(), "--roles", "api")
	if s.token != "" {
		t.Fatalf("printed a generated token although SLUICE_TOKEN was set:\n%s", s.output())
	}
	if code, body := s.do(t, "GET", "/api/topics", "automation-token-123", ""); code != 200 {
		t.Fatalf("token from env: %d %s", code, body)
	}
	if err := s.stop(t); err != nil {
		t.Fatal(err)
	}
}

func TestServeProcessBadStoreFailsClearly(t *testing.T) {
	out, err := exec.Command(sluiceBinary(t), "serve", "--addr", "127.0.0.1:0", "--store", "nope://x").CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() == 0 || !strings.Contains(string(out), "unknown scheme") {
		t.Fatalf("bad store: %v\n%s", err, out)
	}
}

// In one process, deleting a topic or regenerating a key applies to publishing
// at once, not after the configuration poll.
func TestServeProcessAdminChangesApplyAtOnce(t *testing.T) {
	s := startServe(t, []string{"SLUICE_TOKEN=tok"}, "--store", t.TempDir(), "--watch-every", "1h")
	if code, body := s.do(t, "PUT", "/api/topics/orders", "tok", `{"name":"orders"}`); code != 201 {
		t.Fatalf("create: %d %s", code, body)
	}
	keys := func() (k1, k2 string) {
		_, body := s.do(t, "POST", "/api/topics/orders/listKeys", "tok", "")
		var k struct{ Key1, Key2 string }
		_ = json.Unmarshal([]byte(body), &k)
		return k.Key1, k.Key2
	}
	publish := func(key string) int {
		req, _ := http.NewRequest("POST", s.base+"/topics/orders/api/events", strings.NewReader(`[{"specversion":"1.0","id":"1","source":"/s","type":"t"}]`))
		req.Header.Set("Content-Type", "application/cloudevents-batch+json")
		req.Header.Set("aeg-sas-key", key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	_, old2 := keys()
	if code := publish(old2); code != 200 {
		t.Fatalf("publish with key2: %d", code)
	}
	if code, body := s.do(t, "POST", "/api/topics/orders/regenerateKey", "tok", `{"keyName":"key2"}`); code != 200 {
		t.Fatalf("regenerate: %d %s", code, body)
	}
	if code := publish(old2); code != 401 {
		t.Fatalf("old key2 right after regeneration: %d, want 401", code)
	}
	k1, _ := keys()
	if code, _ := s.do(t, "DELETE", "/api/topics/orders", "tok", ""); code != 200 {
		t.Fatalf("delete: %d", code)
	}
	if code := publish(k1); code != 404 {
		t.Fatalf("publish right after delete: %d, want 404", code)
	}
	if err := s.stop(t); err != nil {
		t.Fatal(err)
	}
}
