package mapping

import (
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/oidc-bridge/oidc-bridge/identity"
)

// orList writes items as the docs list them: "a, b or c" (conj "or").
func orList(items []string, conj string) string {
	if len(items) < 2 {
		return strings.Join(items, "")
	}
	return strings.Join(items[:len(items)-1], ", ") + " " + conj + " " + items[len(items)-1]
}

func ticked(items []string) []string {
	out := make([]string, len(items))
	for i, s := range items {
		out[i] = "`" + s + "`"
	}
	return out
}

// docRow returns the cells of the row of the table in doc whose first cell
// is `field`, after the heading heading.
func docRow(t *testing.T, doc, heading, field string) []string {
	t.Helper()
	i := strings.Index(doc, heading)
	if i < 0 {
		t.Fatalf("docs/api.md has no %q", heading)
	}
	for _, line := range strings.Split(doc[i:], "\n") {
		if strings.HasPrefix(line, "| `"+field+"` |") {
			cells := strings.Split(strings.Trim(line, "|"), "|")
			for j := range cells {
				cells[j] = strings.TrimSpace(cells[j])
			}
			return cells
		}
	}
	t.Fatalf("docs/api.md has no row `%s` after %q", field, heading)
	return nil
}

// TestKindsAsDocumented: what each registered kind says (identity.Platform)
// is what docs/api.md and the README document: the kinds, their default
// token age, what a mapping must constrain, the conditions they support,
// how environment compares, and the events lint calls risky.
func TestKindsAsDocumented(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("../docs/api.md")
	if err != nil {
		t.Fatal(err)
	}
	api := string(b)
	b, err = os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	ps := identity.Platforms()
	var kinds []string
	for _, p := range ps {
		kinds = append(kinds, string(p.Kind()))
	}

	// The issuer's kind: every registered kind, in the registry's order,
	// as validation lists them too.
	if got, want := docRow(t, api, "### Issuer object", "kind")[3], orList(ticked(kinds), "or")+": how claims are read"; got != want {
		t.Errorf("docs/api.md issuer kind: %q, want %q", got, want)
	}
	flat := strings.Join(strings.Fields(readme), " ")
	if want := "`kind` is " + orList(ticked(kinds), "or") + " and selects how claims are read"; !strings.Contains(flat, want) {
		t.Errorf("README does not say %q", want)
	}
	for _, p := range ps {
		row := fmt.Sprintf("| `%s` | %d s (", p.Kind(), int(p.Defaults().TokenAge/time.Second))
		if !strings.Contains(readme, row) {
			t.Errorf("README's table of default token ages has no row %q", row)
		}
	}
	if got, want := kindChoices(), orList(kinds, "or"); got != want {
		t.Errorf("kindChoices() = %q, want %q", got, want)
	}

	// Default token age: "the kind's: github 900, gitlab and generic 21600",
	// kinds of one age grouped in the registry's order.
	var ages []int
	byAge := map[int][]string{}
	for _, p := range ps {
		a := int(p.Defaults().TokenAge / time.Second)
		if byAge[a] == nil {
			ages = append(ages, a)
		}
		byAge[a] = append(byAge[a], string(p.Kind()))
	}
	var groups []string
	for _, a := range ages {
		groups = append(groups, orList(byAge[a], "and")+" "+strconv.Itoa(a))
	}
	if got, want := docRow(t, api, "### Issuer object", "max_token_age_seconds")[2], "the kind's: "+strings.Join(groups, ", "); got != want {
		t.Errorf("docs/api.md max_token_age_seconds default: %q, want %q", got, want)
	}

	// Breadth: "required: for github and gitlab issuers `repository` or
	// `repository_id`, for generic ones at least one condition".
	cell := strings.TrimPrefix(docRow(t, api, "### Mapping object", "conditions")[2], "required: ")
	clause := regexp.MustCompile(`^for ([a-z_, ]+?) (?:issuers|ones) (.+)$`)
	documented := map[string]string{}
	for _, part := range regexp.MustCompile(`(?:^|, )(?:for )`).Split(cell, -1) {
		m := clause.FindStringSubmatch("for " + part)
		if part == "" || m == nil {
			continue
		}
		for _, k := range regexp.MustCompile(`[a-z_]+`).FindAllString(strings.ReplaceAll(m[1], " and ", ","), -1) {
			documented[k] = m[2]
		}
	}
	for _, p := range ps {
		want := "at least one condition"
		if any := p.Breadth().AnyOf; len(any) > 0 {
			want = orList(ticked(any), "or")
		}
		if got := documented[string(p.Kind())]; got != want {
			t.Errorf("docs/api.md conditions of a %s mapping: %q, want %q (cell %q)", p.Kind(), got, want, cell)
		}
	}

	// The conditions every kind supports.
	listed := regexp.MustCompile("`conditions` \\(each optional[^)]*\\):\\s*((?:`[a-z_]+`,\\s*)+)and `claims`").FindStringSubmatch(api)
	if listed == nil {
		t.Fatal("docs/api.md does not list the conditions (`conditions` (each optional...): `repository`, ..., and `claims`)")
	}
	names := regexp.MustCompile("`([a-z_]+)`").FindAllStringSubmatch(listed[1], -1)
	var docNames []string
	for _, n := range names {
		docNames = append(docNames, n[1])
	}
	if !slices.Equal(docNames, firstClassNames[:]) {
		t.Errorf("docs/api.md lists the conditions %v, the API has %v", docNames, firstClassNames)
	}
	for _, p := range ps {
		var got []string
		for _, cd := range p.Conditions() {
			got = append(got, cd.Name)
		}
		if slices.Equal(got, docNames) {
			continue
		}
		// A kind that supports fewer is listed with them.
		want := "`" + string(p.Kind()) + "` none"
		if len(got) > 0 {
			want = "`" + string(p.Kind()) + "` `" + strings.Join(got, "`, `") + "`"
		}
		if !strings.Contains(strings.Join(strings.Fields(api), " "), want+";") && !strings.Contains(strings.Join(strings.Fields(api), " "), want+".") {
			t.Errorf("%s supports %v only: docs/api.md does not say %q", p.Kind(), got, want)
		}
	}

	// Environment: the README says how it compares per kind.
	for _, p := range ps {
		for _, cd := range p.Conditions() {
			if cd.Name != identity.ConditionEnvironment {
				continue
			}
			fold := "for `" + string(p.Kind()) + "` issuers\n  it compares ASCII case-insensitively"
			exact := "for `" + string(p.Kind()) + "` issuers exactly"
			said := strings.Contains(readme, fold) || strings.Contains(readme, strings.ReplaceAll(fold, "\n  ", " "))
			switch {
			case cd.Compare == identity.Fold && !said:
				t.Errorf("README does not say that %s environments compare ASCII case-insensitively", p.Kind())
			case cd.Compare == identity.Exact && said:
				t.Errorf("README says %s environments fold; the kind compares them exactly", p.Kind())
			case cd.Compare == identity.Exact && !strings.Contains(readme, exact) && !strings.Contains(readme, "for\n  every other kind exactly") && !strings.Contains(readme, "for every other kind exactly"):
				t.Errorf("README does not say that %s environments compare exactly", p.Kind())
			}
		}
	}

	// Lint: the events named literally are in the README's risky_event.
	i := strings.Index(readme, "`risky_event` (")
	if i < 0 {
		t.Fatal("README does not describe risky_event")
	}
	for _, p := range ps {
		for _, ev := range p.Lint().RiskyEventsListed {
			if !strings.Contains(readme[i:i+200], "`"+ev+"`") {
				t.Errorf("README's risky_event does not name %s's %s", p.Kind(), ev)
			}
		}
	}
}

// TestRefusedClaimNames: the claims a claims condition may not name,
// derived from the kinds' conditions, are what they were when the list was
// written by hand, with the same messages.
func TestRefusedClaimNames(t *testing.T) {
	t.Parallel()
	verified := "is checked when the token is verified"
	want := map[string]string{
		"iss": verified, "aud": verified, "exp": verified, "iat": verified, "nbf": verified,
		"jti": verified + " (replay)",
		"sub": "cannot be matched: its format varies between issuers and over time; match discrete claims " +
			"such as repository_id, ref and environment instead",
		"repository":        "use conditions.repository",
		"project_path":      "use conditions.repository",
		"repository_id":     "use conditions.repository_id",
		"project_id":        "use conditions.repository_id",
		"ref":               "use conditions.ref (the full ref, refs/heads/... or refs/tags/...)",
		"ref_path":          "use conditions.ref",
		"environment":       "use conditions.environment",
		"event_name":        "use conditions.event_name",
		"pipeline_source":   "use conditions.event_name",
		"workflow_ref":      "use conditions.workflow_ref",
		"job_workflow_ref":  "use conditions.workflow_ref",
		"ci_config_ref_uri": "use conditions.workflow_ref",
	}
	got := map[string]string{}
	for name, why := range refusedClaimNames {
		if _, ok := want[name]; ok {
			got[name] = why
			continue
		}
		// A kind added since reads more claims: each is refused in favour
		// of the condition that reads it.
		cond, ok := strings.CutPrefix(why, "use conditions.")
		if !ok || !slices.ContainsFunc(identity.Platforms(), func(p identity.Platform) bool {
			return slices.ContainsFunc(p.Conditions(), func(cd identity.Condition) bool {
				return cd.Name == cond && slices.Contains(cd.Claims, name)
			})
		}) {
			t.Errorf("claims.%s is refused (%q) but no kind's condition %s reads it", name, why, cond)
		}
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("refused claim names (-want +got):\n%s", d)
	}
}
