package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/oklog/run"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/sluicehq/sluice/adminapi"
	"github.com/sluicehq/sluice/controlplane"
	"github.com/sluicehq/sluice/dispatch"
	"github.com/sluicehq/sluice/ingest"
	"github.com/sluicehq/sluice/objectlog"
)

const (
	// envStore names the store when --store is not given.
	envStore = "SLUICE_STORE"
	// defaultStore is used when neither --store nor SLUICE_STORE is set.
	defaultStore = "./sluice-data"
	// probeKey is read (it need not exist) to check that the store answers.
	probeKey = "sluice-serve-probe"
	// envToken sets the admin token instead of generating one.
	envToken = "SLUICE_TOKEN"
	// defaultAddr is where serve listens by default: loopback only.
	defaultAddr = "127.0.0.1:8080"
	// probeTimeout bounds that check, retries included.
	probeTimeout = 30 * time.Second
)

// roles are the parts `sluice serve` can run; "all" means every one.
var roles = []string{"ingest", "dispatch", "api"}

type serveConfig struct {
	Store           string
	TLSCert, TLSKey string
	Log             objectlog.Config
	Ingest          ingest.Config
	Dispatch        dispatch.Config
	Addr            string
	Roles           []string
	DevEcho         bool
	WatchEvery      time.Duration
	JanitorEvery    time.Duration
	ShutdownTimeout time.Duration
	Profile         string
}

func (cfg *serveConfig) registerFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&cfg.Store, "store", "",
		"store URL: mem://, file:///path or a plain path, s3://bucket?..., gs://bucket, azblob://container (default $"+envStore+", else "+defaultStore+")")
	f.StringVar(&cfg.Addr, "addr", defaultAddr, "address to listen on (host:port; port 0 picks a free one)")
	f.StringSliceVar(&cfg.Roles, "roles", []string{"all"},
		"roles to run: all or any of "+strings.Join(roles, ","))
	f.StringVar(&cfg.TLSCert, "tls-cert", "", "serve HTTPS with this certificate (PEM); the Azure SDK sends keys only over HTTPS")
	f.StringVar(&cfg.TLSKey, "tls-key", "", "the private key (PEM) of --tls-cert")
	cfg.Log = objectlog.DefaultConfig()
	cfg.Ingest = ingest.DefaultConfig()
	cfg.Dispatch = dispatch.DefaultConfig()
	gofs := flag.NewFlagSet("log", flag.ContinueOnError)
	cfg.Log.RegisterFlags(gofs)
	cfg.Dispatch.RegisterFlags(gofs)
	f.AddGoFlagSet(gofs)
	f.IntVar(&cfg.Ingest.MaxEventBytes, "max-event-bytes", cfg.Ingest.MaxEventBytes, "largest event accepted (413 beyond)")
	f.IntVar(&cfg.Ingest.MaxRequestBytes, "max-request-bytes", cfg.Ingest.MaxRequestBytes, "largest publish request accepted (413 beyond)")
	f.BoolVar(&cfg.DevEcho, "dev-echo", false, "serve a webhook receiver at /dev/echo that logs what it gets (development only: no authentication)")
	f.DurationVar(&cfg.WatchEvery, "watch-every", 2*time.Second, "how often workers look for changed topics and subscriptions (one GET each time)")
	f.DurationVar(&cfg.JanitorEvery, "janitor-every", 10*time.Minute, "how often the dispatch role applies retention and removes orphan segments")
	f.DurationVar(&cfg.ShutdownTimeout, "shutdown-timeout", 30*time.Second, "how long a graceful shutdown waits for in-flight requests")
	f.StringVar(&cfg.Profile, "profile", profileLowLatency,
		"settings to start from: "+profileLowLatency+" (flush at once, cursor every second: a directory or a MinIO you run) or "+
			profileLowCost+" (1 s flushes, cursor every 10 s: S3, GCS, Azure, where requests are billed); flags given explicitly override it")
}

// The two documented ends of the latency/cost trade-off (docs/benchmarks.md).
const (
	profileLowLatency = "low-latency"
	profileLowCost    = "low-cost"
)

// applyProfile replaces the log and dispatch settings with those of
// --profile, keeping every flag that was given explicitly.
func (cfg *serveConfig) applyProfile(fs *pflag.FlagSet) error {
	var logCfg objectlog.Config
	var dispCfg dispatch.Config
	switch cfg.Profile {
	case profileLowLatency, "":
		return nil // the flags' defaults are this profile
	case profileLowCost:
		logCfg, dispCfg = objectlog.LowCost, dispatch.LowCost
	default:
		return fmt.Errorf("--profile %q: want %s or %s", cfg.Profile, profileLowLatency, profileLowCost)
	}
	// The flags that set log and dispatch settings (others keep their values).
	own := flag.NewFlagSet("profile", flag.ContinueOnError)
	logCfg.RegisterFlags(own)
	dispCfg.RegisterFlags(own)
	given := map[string]string{}
	fs.Visit(func(f *pflag.Flag) {
		if own.Lookup(f.Name) != nil {
			given[f.Name] = f.Value.String()
		}
	})
	cfg.Log, cfg.Dispatch = logCfg, dispCfg
	for name, v := range given {
		if err := fs.Set(name, v); err != nil {
			return fmt.Errorf("--%s: %w", name, err)
		}
	}
	return nil
}

// resolve fills in what the flags left open from the environment.
func (cfg *serveConfig) resolve(getenv func(string) string) {
	if cfg.Store == "" {
		cfg.Store = getenv(envStore)
	}
	if cfg.Store == "" {
		cfg.Store = defaultStore
	}
	if cfg.Addr == "" {
		cfg.Addr = defaultAddr
	}
	if cfg.WatchEvery == 0 {
		cfg.WatchEvery = 2 * time.Second
	}
	if cfg.JanitorEvery == 0 {
		cfg.JanitorEvery = 10 * time.Minute
	}
	if cfg.ShutdownTimeout == 0 {
		cfg.ShutdownTimeout = 30 * time.Second
	}
	if cfg.Log == (objectlog.Config{}) {
		cfg.Log = objectlog.DefaultConfig()
	}
	if cfg.Ingest == (ingest.Config{}) {
		cfg.Ingest = ingest.DefaultConfig()
	}
	if cfg.Dispatch == (dispatch.Config{}) {
		cfg.Dispatch = dispatch.DefaultConfig()
	}
}

func (cfg *serveConfig) validate() error {
	if len(cfg.Roles) == 0 {
		return errors.New("--roles: none given (want all or any of " + strings.Join(roles, ",") + ")")
	}
	for _, r := range cfg.Roles {
		if r != "all" && !slices.Contains(roles, r) {
			return fmt.Errorf("--roles: unknown role %q (want all or any of %s)", r, strings.Join(roles, ","))
		}
	}
	if (cfg.TLSCert == "") != (cfg.TLSKey == "") {
		return errors.New("--tls-cert and --tls-key go together: give both or neither")
	}
	if cfg.WatchEvery < 0 || cfg.JanitorEvery < 0 || cfg.ShutdownTimeout < 0 {
		return errors.New("--watch-every, --janitor-every and --shutdown-timeout must not be negative")
	}
	if cfg.has("dispatch") {
		if err := cfg.Dispatch.Validate(); err != nil {
			return fmt.Errorf("dispatch flags: %w", err)
		}
	}
	return nil
}

// has reports whether the process runs role.
func (cfg *serveConfig) has(role string) bool {
	return slices.Contains(cfg.Roles, "all") || slices.Contains(cfg.Roles, role)
}

func newServeCmd(c *cli) *cobra.Command {
	var cfg serveConfig
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run sluice roles against a store until SIGINT or SIGTERM",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := cfg.applyProfile(cmd.Flags()); err != nil {
				return err
			}
			cfg.resolve(os.Getenv)
			if err := cfg.validate(); err != nil {
				return err
			}
			return serve(cmd.Context(), c, cfg)
		},
	}
	cfg.registerFlags(cmd)
	return cmd
}

func serve(ctx context.Context, c *cli, cfg serveConfig) error {
	cfg.resolve(func(string) string { return "" })
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	// SIGINT/SIGTERM while starting is a clean stop, not a failure.
	interrupted := func() bool {
		if ctx.Err() == nil {
			return false
		}
		c.log.Info().Msg("sluice serve: shutting down: interrupted while starting")
		return true
	}
	store, err := openStore(ctx, cfg.Store)
	if err != nil {
		if interrupted() {
			return nil
		}
		return err
	}
	defer func() {
		if err := store.Close(); err != nil {
			c.log.Warn().Err(err).Msg("sluice serve: close store")
		}
	}()
	c.log.Info().Str("store", store.URL()).Msg("sluice serve: store ready")

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w (is another sluice running there? choose another --addr)", cfg.Addr, err)
	}
	scheme := "http"
	if cfg.TLSCert != "" {
		scheme = "https"
	}
	base := scheme + "://" + ln.Addr().String()
	elog, err := objectlog.NewLog(store, cfg.Log)
	if err != nil {
		ln.Close()
		return err
	}
	// Closed after the HTTP server has drained: in-flight publishes either
	// commit or fail, and nothing is acknowledged uncommitted.
	defer elog.Close()
	reg := controlplane.New(store, time.Now)
	reg.Log = c.log
	reg.Endpoint = func(topic string) string { return base + "/topics/" + topic + "/api/events" }
	reg.ValidateEndpoint = dispatch.NewSender(c.log).ValidateEndpoint(dispatch.OriginOf(base))
	reg.ValidationURL = func(topic, sub, code string) string {
		return base + "/validate/" + url.PathEscape(topic) + "/" + url.PathEscape(sub) + "?code=" + url.QueryEscape(code)
	}

	token, created, err := reg.EnsureAdminToken(ctx, os.Getenv(envToken))
	if err != nil {
		ln.Close()
		if interrupted() {
			return nil
		}
		return fmt.Errorf("admin token: %w", err)
	}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.Handle("GET /readyz", readiness(store))
	prom := prometheus.NewRegistry()
	prom.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), ingest.NewStoreCollector(store))
	mux.Handle("GET /metrics", promhttp.HandlerFor(prom, promhttp.HandlerOpts{}))
	topics := ingest.NewTopics(reg)
	topics.OnGone = elog.Forget
	var dispatcher *dispatch.Dispatcher
	if cfg.has("dispatch") {
		if dispatcher, err = dispatch.New(elog, cfg.Dispatch, dispatch.Options{Logger: c.log, Metrics: dispatch.NewMetrics(prom)}); err != nil {
			ln.Close()
			return err
		}
	}
	apply := func(s *controlplane.Snapshot) {
		topics.Update(s)
		if dispatcher != nil {
			dispatcher.Update(s)
		}
	}
	reg.OnChange = func(ctx context.Context) {
		// This process's own admin changes (a deleted topic, a regenerated
		// key, a new subscription) apply to it at once, not at the next poll.
		if s, err := reg.Snapshot(ctx); err == nil {
			apply(s)
		}
	}
	if cfg.has("ingest") {
		ih, err := ingest.New(elog, topics, cfg.Ingest, ingest.NewMetrics(prom), c.log)
		if err != nil {
			ln.Close()
			return err
		}
		r := chi.NewRouter()
		ih.Routes(r)
		mux.Handle("/topics/", r)
	}
	if cfg.has("api") || cfg.DevEcho {
		admin := adminapi.NewHandler(reg, c.log, adminapi.Options{DevEcho: cfg.DevEcho, Log: elog})
		if cfg.has("api") {
			mux.Handle("/api/", admin)
			mux.Handle("/validate/", admin)
		}
		if cfg.DevEcho {
			mux.Handle("/dev/", admin)
		}
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ErrorLog: nil}

	var g run.Group
	g.Add(func() error {
		<-ctx.Done()
		c.log.Info().Msg("sluice serve: shutting down: no new requests, draining in-flight ones")
		return nil
	}, func(error) { stop() })
	g.Add(func() error {
		serveFn := func() error { return srv.Serve(ln) }
		if cfg.TLSCert != "" {
			serveFn = func() error { return srv.ServeTLS(ln, cfg.TLSCert, cfg.TLSKey) }
		}
		if err := serveFn(); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("http server: %w", err)
		}
		return nil
	}, func(error) {
		sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			c.log.Warn().Err(err).Msg("sluice serve: in-flight requests did not finish in time")
		}
	})
	if cfg.has("ingest") || cfg.has("dispatch") {
		var snap atomic.Pointer[controlplane.Snapshot]
		wctx, wcancel := context.WithCancel(ctx)
		g.Add(func() error {
			return reg.Watch(wctx, cfg.WatchEvery, func(s *controlplane.Snapshot) {
				snap.Store(s)
				apply(s)
				c.log.Debug().Uint64("generation", s.Generation).Int("topics", len(s.Topics())).Msg("sluice serve: configuration loaded")
			})
		}, func(error) { wcancel() })
		if dispatcher != nil {
			dctx, dcancel := context.WithCancel(ctx)
			g.Add(func() error { return dispatcher.Run(dctx) }, func(error) { dcancel() })
		}
		if cfg.has("dispatch") {
			jctx, jcancel := context.WithCancel(ctx)
			g.Add(func() error { return runJanitor(jctx, c, elog, &snap, cfg.JanitorEvery) }, func(error) { jcancel() })
		}
	}

	printBanner(c.stderr, base, store.URL(), cfg, token, created)
	c.log.Info().Str("addr", base).Strs("roles", cfg.Roles).Msg("sluice serve: listening")
	err = g.Run()
	c.log.Info().Msg("sluice serve: stopped")
	return err
}

// runJanitor applies retention to every topic of the latest snapshot.
func runJanitor(ctx context.Context, c *cli, l *objectlog.Log, snap *atomic.Pointer[controlplane.Snapshot], every time.Duration) error {
	targets := func() []objectlog.JanitorTarget {
		s := snap.Load()
		if s == nil {
			return nil
		}
		var out []objectlog.JanitorTarget
		for _, tc := range s.Topics() {
			p := tc.Topic.Properties
			out = append(out, objectlog.JanitorTarget{Topic: tc.Topic.Name, Partitions: p.Partitions, Retention: time.Duration(p.RetentionInDays) * 24 * time.Hour})
		}
		return out
	}
	return l.NewJanitor(nil).Run(ctx, every, targets, func(topic string, p int, rep objectlog.JanitorReport, err error) {
		switch {
		case err != nil:
			c.log.Warn().Err(err).Str("topic", topic).Int("partition", p).Msg("janitor: collect failed; retrying next round")
		case rep != objectlog.JanitorReport{}:
			c.log.Info().Str("topic", topic).Int("partition", p).Str("report", rep.String()).Msg("janitor")
		}
	})
}

// readiness answers 200 only while the store answers. Results are cached
// for a second so probes cannot turn into a request storm.
func readiness(store *objectlog.Store) http.Handler {
	var mu sync.Mutex
	var last time.Time
	var lastErr error
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		if time.Since(last) > time.Second {
			ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
			_, err := store.Stat(ctx, probeKey)
			cancel()
			if errors.Is(err, objectlog.ErrNotFound) {
				err = nil
			}
			last, lastErr = time.Now(), err
		}
		err := lastErr
		mu.Unlock()
		if err != nil {
			w.Header().Set("Retry-After", "1")
			http.Error(w, "store unavailable: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
}

// printBanner tells a newcomer what to do next. The admin token appears
// only when it was just generated; it is never logged.
func printBanner(w io.Writer, base, store string, cfg serveConfig, token string, created bool) {
	fmt.Fprintf(w, "\nsluice is serving %s (roles: %s; store: %s)\n", base, strings.Join(cfg.Roles, ","), store)
	switch {
	case created:
		fmt.Fprintf(w, "\nAdmin token (shown once; the store keeps only its hash):\n\n  export SLUICE_TOKEN=%s\n", token)
	case os.Getenv(envToken) != "":
		fmt.Fprintf(w, "\nAdmin token: taken from $%s.\n", envToken)
	default:
		fmt.Fprintf(w, "\nAdmin token: set on an earlier start (the store keeps only its hash). Lost it? Restart with %s=<a new token> to replace it.\n", envToken)
	}
	fmt.Fprintf(w, "\nTry:\n\n  curl -H \"Authorization: Bearer $SLUICE_TOKEN\" %s/api/topics\n  go run ./cmd/sluice topic create orders\n", base)
	if cfg.DevEcho {
		fmt.Fprintf(w, "  go run ./cmd/sluice sub create orders echo --endpoint %s/dev/echo\n", base)
	}
	fmt.Fprintln(w)
}

// openStore opens the store at rawURL and checks that it answers.
func openStore(ctx context.Context, rawURL string) (*objectlog.Store, error) {
	store, err := objectlog.Open(ctx, rawURL)
	if err != nil {
		return nil, fmt.Errorf("cannot open store %s: %w", rawURL, err)
	}
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	if _, err := store.Stat(ctx, probeKey); err != nil && !errors.Is(err, objectlog.ErrNotFound) {
		_ = store.Close()
		return nil, fmt.Errorf("store %s does not answer: %w", store.URL(), err)
	}
	return store, nil
}
