package bench

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// deployment is the `sluice serve` process a benchmark started (or, with
// pid 0, one it was pointed at).
type deployment struct {
	base, token string
	pid         int
	cmd         *exec.Cmd
	exited      chan struct{}
	tmp         string // a store directory the benchmark made (removed at stop)

	mu  sync.Mutex
	log []string // the process's last log lines, for errors
}

const keepLogLines = 40

func newToken() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// startDeployment runs `<binary> serve` on a free loopback port with all
// roles and waits until it listens.
func startDeployment(ctx context.Context, cfg Config) (*deployment, error) {
	d := &deployment{token: newToken(), exited: make(chan struct{})}
	store := cfg.Store
	if store == "" {
		dir, err := os.MkdirTemp("", "sluice-bench-")
		if err != nil {
			return nil, err
		}
		d.tmp, store = dir, "file://"+dir
	}
	args := []string{"serve", "--addr", "127.0.0.1:0", "--store", store, "--dev-echo", "--profile", cfg.Profile}
	args = append(args, cfg.ServeArgs...)
	d.cmd = exec.Command(cfg.Binary, args...)
	d.cmd.Env = append(os.Environ(), "SLUICE_TOKEN="+d.token)
	stderr, err := d.cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	d.cmd.Stdout = io.Discard
	if err := d.cmd.Start(); err != nil {
		d.removeTmp()
		return nil, fmt.Errorf("start %s serve: %w", cfg.Binary, err)
	}
	d.pid = d.cmd.Process.Pid
	listening := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			d.mu.Lock()
			d.log = append(d.log, line)
			if len(d.log) > keepLogLines {
				d.log = d.log[len(d.log)-keepLogLines:]
			}
			d.mu.Unlock()
			if strings.Contains(line, "sluice serve: listening") {
				var rec struct {
					Addr string `json:"addr"`
				}
				if json.Unmarshal([]byte(line), &rec) == nil && rec.Addr != "" {
					select {
					case listening <- rec.Addr:
					default:
					}
				}
			}
		}
	}()
	go func() {
		_ = d.cmd.Wait()
		close(d.exited)
	}()
	select {
	case d.base = <-listening:
		return d, nil
	case <-d.exited:
		d.removeTmp()
		return nil, fmt.Errorf("sluice serve exited before it listened:\n%s", d.lastLog())
	case <-time.After(2 * time.Minute):
	case <-ctx.Done():
	}
	d.stop()
	return nil, fmt.Errorf("sluice serve did not listen within 2 minutes (or the benchmark was interrupted):\n%s", d.lastLog())
}

func (d *deployment) lastLog() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return strings.Join(d.log, "\n")
}

// stop ends a started process gracefully (SIGTERM, then SIGKILL after 30 s)
// and removes its temporary store.
func (d *deployment) stop() error {
	defer d.removeTmp()
	if d.cmd == nil {
		return nil
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.exited:
	case <-time.After(30 * time.Second):
		_ = d.cmd.Process.Kill()
		<-d.exited
		return errors.New("sluice serve did not stop within 30 s of SIGTERM; killed it")
	}
	if st := d.cmd.ProcessState; st != nil && !st.Success() {
		return fmt.Errorf("sluice serve exited with %v:\n%s", st, d.lastLog())
	}
	return nil
}

func (d *deployment) removeTmp() {
	if d.tmp != "" {
		_ = os.RemoveAll(d.tmp)
		d.tmp = ""
	}
}
