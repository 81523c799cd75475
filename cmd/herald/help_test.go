package main

import (
	"testing"

	"github.com/spf13/cobra"
)

// Every command explains itself: a summary, a description and examples.
func TestEveryCommandHasHelpAndExamples(t *testing.T) {
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Hidden || c.Name() == "help" || c.Name() == "completion" {
			return
		}
		if c.Short == "" || c.Long == "" || c.Example == "" {
			t.Errorf("%q lacks Short, Long or Example", c.CommandPath())
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	root := newRootCmd(&env{})
	root.InitDefaultHelpCmd()
	walk(root)
	if n := len(root.Commands()); n < 8 {
		t.Fatalf("root has %d commands, want the contract's eight and more", n)
	}
}
