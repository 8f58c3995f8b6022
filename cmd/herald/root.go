package main

import (
	"github.com/spf13/cobra"

	"github.com/herald-gw/herald/internal/server"
)

func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "herald",
		Short:         "herald: a real-time event gateway for device fleets",
		Version:       server.Version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newServeCommand())
	root.AddCommand(newBenchCommand())
	root.AddCommand(newTokenCommand())
	root.AddCommand(newMonitorCommand())
	root.AddCommand(newPublishCommand())
	root.AddCommand(newOrgsCommand(), newKeysCommand(), newUsersCommand(), newDevicesCommand())
	return root
}
