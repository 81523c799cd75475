package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/heraldhq/herald/internal/buildinfo"
)

func init() { commands = append(commands, newVersionCmd) }

func newVersionCmd(e *env) *cobra.Command {
	var jsonOut bool
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print herald's version, VCS revision and Go version",
		Long: `Print the version the binary was built as (stamped by make build and the
Dockerfile, or the module version of go install ...@version), the VCS revision
and the Go version. Every running replica also exports them as
herald_build_info{version,revision,go_version} on /metrics.`,
		Example: `  herald version
  herald version --json | jq -r .revision`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			info := buildinfo.Get()
			if jsonOut {
				return writeJSON(e.stdout, info)
			}
			fmt.Fprintf(e.stdout, "herald %s", info.Version)
			if info.Revision != "" {
				rev := info.Revision
				if len(rev) > 12 {
					rev = rev[:12]
				}
				fmt.Fprintf(e.stdout, " (revision %s", rev)
				if info.Modified {
					fmt.Fprint(e.stdout, ", modified")
				}
				fmt.Fprint(e.stdout, ")")
			}
			fmt.Fprintf(e.stdout, " %s\n", info.GoVersion)
			return nil
		},
	}
	cmd.Flags().BoolVar(&jsonOut, "json", false, "print as JSON")
	return cmd
}
