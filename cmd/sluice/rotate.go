package main

import (
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/spf13/cobra"
)

// newSubRotateSecretCmd rotates a subscription's signing secret.
func newSubRotateSecretCmd(c *cli, cfg *clientConfig) *cobra.Command {
	var overlap time.Duration
	cmd := &cobra.Command{
		Use:   "rotate-secret <topic> <name> [--overlap 24h]",
		Short: "Give a subscription a new signing secret; the old one keeps signing for --overlap",
		Long: "Deliveries are signed per Standard Webhooks. During the overlap each delivery carries\n" +
			"two signatures (new and old secret), so receivers can switch to the new secret at any time.",
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if overlap < 0 || overlap%time.Minute != 0 {
				return fmt.Errorf("--overlap %v: want a whole number of minutes, like 24h or 90m", overlap)
			}
			api, err := cfg.client(os.Getenv)
			if err != nil {
				return err
			}
			minutes := int(overlap / time.Minute)
			a, err := api.do(cmd.Context(), apiRequest{method: http.MethodPost, path: subPath(args[0], args[1]) + "/rotateSigningSecret",
				body: map[string]int{"overlapMinutes": minutes}})
			if err != nil {
				return err
			}
			if cfg.Output == outputJSON {
				return printJSON(c.stdout, a.body)
			}
			var got struct {
				SigningSecret                   string
				PreviousSigningSecretExpiresUTC string `json:"previousSigningSecretExpiresUtc"`
			}
			if err := a.decode(&got); err != nil {
				return err
			}
			_, err = fmt.Fprintf(c.stdout, "New signing secret of %s/%s (give it to the receiver):\n\n  %s\n\nThe old secret signs deliveries too until %s.\n",
				args[0], args[1], got.SigningSecret, got.PreviousSigningSecretExpiresUTC)
			return err
		},
	}
	cmd.Flags().DurationVar(&overlap, "overlap", 24*time.Hour, "how long the old secret keeps signing deliveries (0: stop at once)")
	return cmd
}
