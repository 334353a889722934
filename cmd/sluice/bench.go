package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/sluicehq/sluice/internal/bench"
)

func newBenchCmd(c *cli) *cobra.Command {
	cfg := bench.DefaultConfig()
	var size, output string
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure a deployment: publish throughput, delivery latency, object-store requests and their cost",
		Long: "Measure sluice on your store. bench starts `sluice serve` on --store (or measures the\n" +
			"deployment at --server), creates its own topic and subscriptions to a built-in no-op\n" +
			"receiver, and runs, each for --duration:\n" +
			"  1. a baseline: the same requests to a no-op handler on the same server (/dev/null);\n" +
			"  2. publishing at full speed from --connections clients, --batch events per request,\n" +
			"     until every event has reached every subscription;\n" +
			"  3. a steady --rate of single-event requests, for publish-to-delivery latency;\n" +
			"  4. --idle time with no traffic, counting the store requests an idle deployment makes.\n" +
			"It reports throughput as a ratio of the baseline, latency percentiles, store requests\n" +
			"per 1M events by operation with their S3 list-price cost, and the server's peak memory\n" +
			"and CPU. It always stops by itself (at most a few minutes beyond 3 × --duration) and\n" +
			"talks only to the server and its own receiver.",
		Example: "  sluice bench                                  # a temporary directory store, 30 s phases\n" +
			"  sluice bench --store s3://bench?endpoint=http://127.0.0.1:9000&use_path_style=true --profile low-cost\n" +
			"  sluice bench --batch 100 --subscriptions 10 -o json",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			n, err := parseSize(size)
			if err != nil {
				return fmt.Errorf("--events-size %q: %w", size, err)
			}
			cfg.EventSize = n
			if output != outputTable && output != outputJSON {
				return fmt.Errorf("-o %q: want %s or %s", output, outputTable, outputJSON)
			}
			if cfg.Server != "" && cfg.Token == "" {
				cfg.Token = os.Getenv(clientEnvToken)
			}
			if cfg.Server == "" {
				exe, err := os.Executable()
				if err != nil {
					return fmt.Errorf("find the sluice executable to start: %w", err)
				}
				cfg.Binary = exe
			}
			cfg.Progress = c.stderr
			if err := cfg.Validate(); err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			rep, err := bench.Run(ctx, cfg)
			if err != nil {
				if ctx.Err() == context.Canceled {
					return fmt.Errorf("interrupted: %w", err)
				}
				return err
			}
			if output == outputJSON {
				enc := json.NewEncoder(c.stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(rep)
			}
			return rep.WriteTable(c.stdout)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Store, "store", "", "store URL for the deployment bench starts (default: a temporary directory, removed afterwards)")
	f.StringVar(&cfg.Profile, "profile", cfg.Profile, "settings of the deployment bench starts: low-latency or low-cost (see sluice serve --profile)")
	f.StringSliceVar(&cfg.ServeArgs, "serve-arg", nil, "extra flag for the started sluice serve, e.g. --serve-arg=--flush-interval=10ms (repeatable)")
	f.StringVar(&cfg.Server, "server", "", "measure the deployment at this base URL instead of starting one (needs --token or $"+clientEnvToken+"; the server needs --dev-echo for the baseline)")
	f.StringVar(&cfg.Token, "token", "", "admin token of --server (default $"+clientEnvToken+")")
	f.DurationVar(&cfg.Duration, "duration", cfg.Duration, "length of each phase (baseline, full speed, steady rate)")
	f.StringVar(&size, "events-size", "1KiB", "size of each event as published (B, KiB, MiB)")
	f.IntVar(&cfg.Connections, "connections", cfg.Connections, "concurrent publish requests")
	f.IntVar(&cfg.Batch, "batch", cfg.Batch, "events per publish request, and the subscriptions' maxEventsPerBatch")
	f.IntVar(&cfg.Subscriptions, "subscriptions", cfg.Subscriptions, "subscriptions on the benchmark topic (each gets every event)")
	f.IntVar(&cfg.Partitions, "partitions", cfg.Partitions, "partitions of the benchmark topic")
	f.IntVar(&cfg.Rate, "rate", cfg.Rate, "events/s of the steady phase that measures publish-to-delivery latency (0: skip it)")
	f.DurationVar(&cfg.Idle, "idle", cfg.Idle, "how long to count the store requests of the idle deployment (0: skip)")
	f.Int64Var(&cfg.MaxEvents, "max-events", 0, "stop the full-speed phase after this many events (0: only --duration bounds it)")
	f.StringVar(&cfg.ReceiverAddr, "receiver-addr", cfg.ReceiverAddr, "where the no-op receiver listens (the server must reach it)")
	f.StringVar(&cfg.ReceiverHost, "receiver-host", "", "host the server reaches the receiver at (default: the --receiver-addr host)")
	f.StringVarP(&output, "output", "o", outputTable, "output format: "+outputTable+" or "+outputJSON)
	return cmd
}

// parseSize reads a byte size: 1024, 1KiB, 512B, 2MiB.
func parseSize(s string) (int, error) {
	s = strings.TrimSpace(s)
	mult := 1
	for _, u := range []struct {
		suffix string
		mult   int
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"B", 1}} {
		if v, ok := strings.CutSuffix(s, u.suffix); ok {
			s, mult = strings.TrimSpace(v), u.mult
			break
		}
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("want a positive size like 1KiB, 512B or 2048")
	}
	return n * mult, nil
}
