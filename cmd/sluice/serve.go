package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/oklog/run"
	"github.com/spf13/cobra"

	"github.com/sluicehq/sluice/objectlog"
)

const (
	// envStore names the store when --store is not given.
	envStore = "SLUICE_STORE"
	// defaultStore is used when neither --store nor SLUICE_STORE is set.
	defaultStore = "./sluice-data"
	// probeKey is read (it need not exist) to check that the store answers.
	probeKey = "sluice-serve-probe"
	// probeTimeout bounds that check, retries included.
	probeTimeout = 30 * time.Second
)

// roles are the parts `sluice serve` can run; "all" means every one.
var roles = []string{"ingest", "dispatch", "api"}

type serveConfig struct {
	Store string
	Roles []string
}

func (cfg *serveConfig) registerFlags(cmd *cobra.Command) {
	cmd.Flags().StringVar(&cfg.Store, "store", "",
		"store URL: mem://, file:///path or a plain path, s3://bucket?..., gs://bucket, azblob://container (default $"+envStore+", else "+defaultStore+")")
	cmd.Flags().StringSliceVar(&cfg.Roles, "roles", []string{"all"},
		"roles to run: all or any of "+strings.Join(roles, ","))
}

// resolve fills in what the flags left open from the environment.
func (cfg *serveConfig) resolve(getenv func(string) string) {
	if cfg.Store == "" {
		cfg.Store = getenv(envStore)
	}
	if cfg.Store == "" {
		cfg.Store = defaultStore
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
	return nil
}

func newServeCmd(c *cli) *cobra.Command {
	var cfg serveConfig
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run sluice roles against a store until SIGINT or SIGTERM",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
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
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	store, err := openStore(ctx, cfg.Store)
	if err != nil {
		return err
	}
	defer func() {
		if err := store.Close(); err != nil {
			c.log.Warn().Err(err).Msg("sluice serve: close store")
		}
	}()
	c.log.Info().Str("store", store.URL()).Msg("sluice serve: store ready")
	c.log.Info().Strs("roles", cfg.Roles).Msg("sluice serve: the HTTP roles (ingest, dispatch, api) arrive with later issues; waiting for SIGINT or SIGTERM")

	// Each role joins the group as one Run(ctx) actor.
	var g run.Group
	g.Add(func() error {
		<-ctx.Done()
		c.log.Info().Msg("sluice serve: shutting down")
		return nil
	}, func(error) {
		stop()
	})
	return g.Run()
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
