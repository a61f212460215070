package main

import "strings"

// internalPrefixes are the package names that Go errors carry at their
// start for the logs ("signing: ...", "config: ..."); a person at a
// terminal is not helped by them.
var internalPrefixes = []string{
	"admintoken: ", "config: ", "database: ", "history: ", "pgcluster: ", "telemetry: ",
	"signing: ", "ledger: ", "mapping: ", "identity: ", "providers: ",
}

// userMessage is err as the command line shows it: each line without the
// internal package prefixes it starts with. Commands give the errors they
// expect words of their own (admin-token create's name in use, keys
// rotate's unsupported algorithm); this is the net under the rest.
func userMessage(err error) string {
	lines := strings.Split(err.Error(), "\n")
	for i, l := range lines {
		for trimmed := true; trimmed; {
			trimmed = false
			for _, p := range internalPrefixes {
				if rest, ok := strings.CutPrefix(l, p); ok && rest != "" {
					l, trimmed = rest, true
				}
			}
		}
		lines[i] = l
	}
	return strings.Join(lines, "\n")
}
