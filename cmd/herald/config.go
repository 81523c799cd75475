package main

import (
	"github.com/spf13/cobra"

	"github.com/heraldhq/herald/config"
)

func init() { commands = append(commands, newConfigCmd) }

func newConfigCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Inspect herald's configuration",
		Long: `herald reads one YAML file (--config FILE or $HERALD_CONFIG), then overrides any
scalar from the environment: HERALD_ + the key path upper-cased and joined by _,
for example HERALD_NATS_URL, HERALD_WORKER_SHUTDOWN_GRACE,
HERALD_RATE_LIMITS_0_PER_SECOND or HERALD_APPS_DEFAULT_WECHAT_APP_SECRET. A
variable set to the empty string empties the value (HERALD_REDIS_URL= keeps
deduplication and rate limits in process). Durations are written 30s, 5m or 14d.
Secrets may be inline, in *_file paths, or in the environment.`,
		Example: `  herald config print --config herald.yaml
  HERALD_CONFIG=herald.yaml HERALD_WORKER_CONCURRENCY=64 herald config print`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(newConfigPrintCmd(e))
	return cmd
}

func newConfigPrintCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "print",
		Short: "Print the effective configuration, secrets masked",
		Long: `print loads the configuration exactly as the worker does (defaults, the file, the
environment, *_file secrets), validates it, and writes the result as YAML. Secrets
print as <secret>, or "" when unset, and passwords in the NATS and Redis URLs as
xxxxx. An invalid configuration fails with every problem, each naming its key.`,
		Example: `  herald config print --config herald.yaml
  HERALD_REDIS_URL= herald config print --config herald.yaml   # check an override`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(cmd, e)
			if err != nil {
				return err
			}
			return cfg.Print(e.stdout)
		},
	}
}

// loadConfig loads the configuration for cmd: the file from the root's
// --config flag, else $HERALD_CONFIG from e's environment, overridden by
// e's HERALD_* variables.
func loadConfig(cmd *cobra.Command, e *env) (*config.Config, error) {
	return config.Load(config.ConfigPath(configFlag(cmd), e.environ), e.environ)
}

// configFlag is the --config flag's value, "" when not given.
func configFlag(cmd *cobra.Command) string {
	if f := cmd.Flags().Lookup("config"); f != nil {
		return f.Value.String()
	}
	return ""
}
