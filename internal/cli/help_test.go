package cli

import (
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// Every command's --help reads right: a boolean flag shows no value (pflag
// takes a `quoted` word of the usage as the value's name), and no flag
// shows an empty default such as "(default [])".
func TestFlagHelp(t *testing.T) {
	f, _ := testFactory(t, false)
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		c.LocalFlags().VisitAll(func(fl *pflag.Flag) {
			if name, _ := pflag.UnquoteUsage(fl); fl.Value.Type() == "bool" && name != "" {
				t.Errorf("%s --%s: a boolean shown as taking a value %q (a `quoted` word in its usage)", c.CommandPath(), fl.Name, name)
			}
		})
		if u := c.LocalFlags().FlagUsages(); strings.Contains(u, "(default [])") {
			t.Errorf("%s: an empty default in its help:\n%s", c.CommandPath(), u)
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(NewCmdRoot(f))
}
