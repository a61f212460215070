package console

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/oidc-bridge/oidc-bridge/bridge/api"
	"github.com/oidc-bridge/oidc-bridge/identity"
	"github.com/oidc-bridge/oidc-bridge/ledger"
	"github.com/oidc-bridge/oidc-bridge/mapping"
)

// Page sizes and windows of the searches.
const (
	pageSize = 50
	// csvLimit bounds an export; the page says when it was cut.
	csvLimit            = ledger.MaxSearchLimit
	defaultDenialWindow = 7 * 24 * time.Hour
	defaultSearchWindow = 24 * time.Hour
	timeInput           = "2006-01-02T15:04"
)

var funcs = template.FuncMap{
	"when": func(t any) string {
		switch t := t.(type) {
		case time.Time:
			return t.UTC().Format("2006-01-02 15:04:05Z")
		case *time.Time:
			if t == nil {
				return ""
			}
			return t.UTC().Format("2006-01-02 15:04:05Z")
		}
		return ""
	},
	"join":      strings.Join,
	"hasPrefix": strings.HasPrefix,
	"chart":     chart,
	"codeText":  func(code string) string { return errorCodes[code] },
}

func parsePages() map[string]*template.Template {
	pages := map[string]*template.Template{}
	for _, p := range []string{"signin", "error", "denials", "denial", "issuances", "mappings", "explain"} {
		pages[p] = template.Must(template.New(p).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/explanation.html", "templates/"+p+".html"))
	}
	return pages
}

// errorCodes say each of the contract's refusals to a person.
var errorCodes = map[string]string{
	api.CodeNoMatchingMapping: "No enabled mapping of the token's issuer admitted the token, or the mapping it named did not: the explanation below shows which condition failed.",
	api.CodeAmbiguousMapping:  "Several mappings admitted the token and the request named none: the pipeline must send the mapping's name.",
	api.CodeTokenReplayed:     "The token had already been exchanged: a pipeline needs a fresh OIDC token for each exchange.",
	api.CodeQuotaExceeded:     "The mapping's quota (per hour per repository, or per job) was spent.",
	api.CodeProviderError:     "The cloud refused or failed to issue the credential; the mapping admitted the token.",
	api.CodeUnavailable:       "A dependency was unavailable; nothing was issued.",
	api.CodeInternal:          "An internal error; the server log has the detail.",
	api.CodeUntrustedIssuer:   "The token's issuer was disabled when the exchange was recorded.",
	api.CodeInvalidRequest:    "The exchange request itself was not valid (a duration out of range, an unknown provider).",
}

// searchForm is a search's filters as the forms send them.
type searchForm struct {
	Repository, Issuer, Mapping, Provider, RunID, ErrorCode, Outcome string
	From, To                                                         string
	Issuers                                                          []mapping.Issuer
	Providers, Outcomes                                              []string
}

type searchPage struct {
	Form    searchForm
	Rows    []ledger.Record
	Names   map[string]string // issuer URL -> registered name
	Next    string            // the next page's URL, "" on the last
	CSV     string
	Window  string
	Invalid string
}

// readSearch turns the query into a ledger.Search: the window defaults to
// the last def, and is at most ledger.MaxSearchWindow.
func (c *Console) readSearch(r *http.Request, def time.Duration, outcomes []string, issuers []mapping.Issuer) (ledger.Search, searchForm, error) {
	q := r.URL.Query()
	f := searchForm{
		Repository: strings.TrimSpace(q.Get("repository")), Issuer: strings.TrimSpace(q.Get("issuer")),
		Mapping: strings.TrimSpace(q.Get("mapping")), Provider: strings.TrimSpace(q.Get("provider")),
		RunID: strings.TrimSpace(q.Get("run_id")), ErrorCode: strings.TrimSpace(q.Get("error_code")),
		Outcome: strings.TrimSpace(q.Get("outcome")), From: q.Get("from"), To: q.Get("to"),
		Issuers: issuers, Providers: mapping.Providers().Names(), Outcomes: ledger.Outcomes(),
	}
	s := ledger.Search{Repository: f.Repository, Mapping: f.Mapping, Provider: f.Provider, RunID: f.RunID,
		ErrorCode: f.ErrorCode, Outcomes: outcomes, Limit: pageSize}
	if f.Issuer != "" {
		s.Issuer = f.Issuer // an iss URL as recorded, or a registered name:
		for _, is := range issuers {
			if is.Name == f.Issuer {
				s.Issuer = is.URL
			}
		}
	}
	if f.Outcome != "" {
		if !slices.Contains(ledger.Outcomes(), f.Outcome) {
			return s, f, fmt.Errorf("no outcome %q", f.Outcome)
		}
		s.Outcomes = []string{f.Outcome}
	}
	now := c.opts.Now().UTC()
	s.To = now.Add(time.Minute)
	if f.To != "" {
		t, err := time.Parse(timeInput, f.To)
		if err != nil {
			return s, f, fmt.Errorf("to: a time as YYYY-MM-DDTHH:MM (UTC)")
		}
		s.To = t
	}
	s.From = s.To.Add(-def)
	if f.From != "" {
		t, err := time.Parse(timeInput, f.From)
		if err != nil {
			return s, f, fmt.Errorf("from: a time as YYYY-MM-DDTHH:MM (UTC)")
		}
		s.From = t
	}
	if !s.From.Before(s.To) {
		return s, f, fmt.Errorf("from must be before to")
	}
	if s.To.Sub(s.From) > ledger.MaxSearchWindow {
		return s, f, fmt.Errorf("a search spans at most %d days; narrow from and to", int(ledger.MaxSearchWindow/(24*time.Hour)))
	}
	f.From, f.To = s.From.UTC().Format(timeInput), s.To.UTC().Format(timeInput)
	if a := q.Get("after"); a != "" {
		cur, err := ledger.ParseCursor(a)
		if err != nil {
			return s, f, fmt.Errorf("the page link is not valid; search again")
		}
		s.After = &cur
	}
	return s, f, nil
}

func (c *Console) issuerNames(issuers []mapping.Issuer) map[string]string {
	m := make(map[string]string, len(issuers))
	for _, is := range issuers {
		m[is.URL] = is.Name
	}
	return m
}

// runSearch answers a search page: the rows and the next page's link.
func (c *Console) runSearch(w http.ResponseWriter, r *http.Request, v *view, page string, def time.Duration, outcomes []string) {
	ctx := r.Context()
	issuers, err := c.opts.Catalog.ListIssuers(ctx)
	if err != nil {
		c.dbFail(w, r, err)
		return
	}
	s, f, err := c.readSearch(r, def, outcomes, issuers)
	p := &searchPage{Form: f, Names: c.issuerNames(issuers)}
	v.Data = p
	if err != nil {
		p.Invalid = err.Error()
		c.render(w, r, http.StatusBadRequest, page, v)
		return
	}
	p.Window = s.From.UTC().Format(timeInput) + " to " + s.To.UTC().Format(timeInput) + " UTC"
	rows, err := c.opts.Ledger.Search(ctx, s)
	if err != nil {
		c.dbFail(w, r, err)
		return
	}
	p.Rows = rows
	q := r.URL.Query()
	q.Set("from", f.From)
	q.Set("to", f.To)
	q.Del("after")
	p.CSV = Path + "/issuances.csv?" + q.Encode()
	if len(rows) == pageSize {
		last := rows[len(rows)-1]
		q.Set("after", ledger.Cursor{At: last.RequestedAt, ID: last.ID}.String())
		p.Next = r.URL.Path + "?" + q.Encode()
	}
	c.render(w, r, http.StatusOK, page, v)
}

func (c *Console) dbFail(w http.ResponseWriter, r *http.Request, err error) {
	c.log.Error("console: read", "path", r.URL.Path, "err", err)
	c.fail(w, r, http.StatusServiceUnavailable, "The database did not answer; try again later.")
}

func (c *Console) denials(w http.ResponseWriter, r *http.Request, v *view) {
	v.Title, v.Nav = "Denials", "denials"
	c.runSearch(w, r, v, "denials", defaultDenialWindow, []string{ledger.OutcomeDenied, ledger.OutcomeFailed})
}

func (c *Console) issuances(w http.ResponseWriter, r *http.Request, v *view) {
	v.Title, v.Nav = "Issuances", "issuances"
	c.runSearch(w, r, v, "issuances", defaultSearchWindow, nil)
}

// issuancesCSV exports a search, newest first, at most csvLimit rows (the
// last line says when the export was cut).
func (c *Console) issuancesCSV(w http.ResponseWriter, r *http.Request, v *view) {
	ctx := r.Context()
	issuers, err := c.opts.Catalog.ListIssuers(ctx)
	if err != nil {
		c.dbFail(w, r, err)
		return
	}
	s, _, err := c.readSearch(r, defaultSearchWindow, nil, issuers)
	if err != nil {
		c.fail(w, r, http.StatusBadRequest, err.Error())
		return
	}
	s.Limit, s.After = csvLimit, nil
	name := fmt.Sprintf("issuances-%s-%s.csv", s.From.UTC().Format("20060102T1504Z"), s.To.UTC().Format("20060102T1504Z"))
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
	cw, err := newCSVWriter(w)
	if err != nil {
		return
	}
	n := 0
	err = c.opts.Ledger.EachRecord(ctx, s, func(rec ledger.Record) error {
		n++
		return cw.write(rec)
	})
	if err != nil {
		// The header is sent: end the body with a line saying so rather
		// than let a truncated export pass for a whole one.
		c.log.Error("console: export", "err", err)
		_ = cw.w.Write([]string{"# export failed after " + strconv.Itoa(n) + " rows; search again"})
	} else if n == csvLimit {
		_ = cw.w.Write([]string{"# cut at " + strconv.Itoa(csvLimit) + " rows; narrow the search (from, to) for the rest"})
	}
	_ = cw.flush()
}

// denialPage is a recorded attempt and what the mappings say of it now.
type denialPage struct {
	Record      ledger.Record
	IssuerName  string
	Explanation *api.ExplainResponse
	Why         string
	Problem     string
}

func (c *Console) denial(w http.ResponseWriter, r *http.Request, v *view) {
	v.Title, v.Nav = "Denial", "denials"
	ctx := r.Context()
	rec, err := c.opts.Ledger.Record(ctx, r.PathValue("id"))
	if errors.Is(err, ledger.ErrNoRecord) {
		c.fail(w, r, http.StatusNotFound, "The ledger holds no attempt with this id.")
		return
	}
	if err != nil {
		c.dbFail(w, r, err)
		return
	}
	p := &denialPage{Record: rec, Why: errorCodes[rec.ErrorCode]}
	v.Data = p
	issuers, err := c.opts.Catalog.ListIssuers(ctx)
	if err != nil {
		c.dbFail(w, r, err)
		return
	}
	var is *mapping.Issuer
	for i := range issuers {
		if issuers[i].URL == rec.Issuer {
			is = &issuers[i]
		}
	}
	if is == nil {
		p.Problem = "No issuer with this URL is registered any more: there are no mappings to explain."
		c.render(w, r, http.StatusOK, "denial", v)
		return
	}
	p.IssuerName = is.Name
	res, err := c.opts.Explainer.ExplainClaims(ctx, recordedClaims(rec, is), api.ExplainRequest{})
	if err != nil {
		p.Problem = c.opts.ErrorBody(err).Message
	} else {
		p.Explanation = &res
	}
	c.render(w, r, http.StatusOK, "denial", v)
}

// recordedClaims rebuilds what the ledger recorded of a token's claims:
// every claim the first-class conditions read (repository, repository_id,
// ref, environment, event_name, workflow_ref) and the identifiers; not the
// token's other claims, which the ledger does not keep (claims.*
// conditions then show as not recorded).
func recordedClaims(rec ledger.Record, is *mapping.Issuer) *identity.Claims {
	return &identity.Claims{
		Issuer: rec.Issuer, IssuerName: is.Name, Kind: identity.Kind(is.Kind), Subject: rec.Subject,
		JTI: rec.TokenJTI, Repository: rec.Repository, RepositoryID: rec.RepositoryID, Ref: rec.Ref,
		SHA: rec.SHA, Environment: rec.Environment, EventName: rec.EventName, WorkflowRef: rec.WorkflowRef,
		Actor: rec.Actor, RunID: rec.RunID, RunAttempt: rec.RunAttempt, JobID: rec.JobID,
	}
}

// mappingRow is one mapping on the mappings page.
type mappingRow struct {
	Mapping    mapping.Mapping
	Conditions []condition
	Target     string
	Use        ledger.HourUse
	ChartID    string
	Outcomes   *ledger.HourlyOutcomes
}

type condition struct{ Name, Patterns string }

func conditionsOf(cs mapping.Conditions) []condition {
	var out []condition
	add := func(name string, v *mapping.Values) {
		if v != nil {
			out = append(out, condition{name, strings.Join(v.Patterns, ", ")})
		}
	}
	add("repository", cs.Repository)
	add("repository_id", cs.RepositoryID)
	add("ref", cs.Ref)
	add("environment", cs.Environment)
	add("event_name", cs.EventName)
	add("workflow_ref", cs.WorkflowRef)
	names := make([]string, 0, len(cs.Claims))
	for n := range cs.Claims {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		v := cs.Claims[n]
		add("claims."+n, &v)
	}
	return out
}

func (c *Console) mappings(w http.ResponseWriter, r *http.Request, v *view) {
	v.Title, v.Nav = "Mappings", "mappings"
	ctx := r.Context()
	issuers, err := c.opts.Catalog.ListIssuers(ctx)
	if err != nil {
		c.dbFail(w, r, err)
		return
	}
	ms, err := c.opts.Catalog.ListMappings(ctx, mapping.Filter{})
	if err != nil {
		c.dbFail(w, r, err)
		return
	}
	now := c.opts.Now()
	outcomes, err := c.opts.Ledger.Outcomes24h(ctx, now)
	if err != nil {
		c.dbFail(w, r, err)
		return
	}
	use, err := c.opts.Ledger.HourUsage(ctx, now)
	if err != nil {
		c.dbFail(w, r, err)
		return
	}
	kinds := map[string]identity.Kind{}
	for _, is := range issuers {
		kinds[is.Name] = identity.Kind(is.Kind)
	}
	rows := make([]mappingRow, len(ms))
	for i := range ms {
		m := &ms[i]
		m.Warnings = mapping.Lint(m, kinds[m.Issuer])
		if m.Mode == "" {
			m.Mode = mapping.ModeEnforce
		}
		var pretty bytes.Buffer
		if json.Indent(&pretty, m.Target, "", "  ") != nil {
			pretty.Reset()
			pretty.Write(m.Target)
		}
		row := mappingRow{Mapping: *m, Conditions: conditionsOf(m.Conditions), Target: pretty.String(),
			ChartID: "chart-" + strconv.Itoa(i), Outcomes: outcomes[m.ID], Use: use[m.ID]}
		rows[i] = row
	}
	v.Data = rows
	c.render(w, r, http.StatusOK, "mappings", v)
}

// explainPage is the explain form and, after a POST, its answer.
type explainPage struct {
	Issuers  []mapping.Issuer
	Issuer   string
	Claims   string
	Mapping  string
	Result   *api.ExplainResponse
	Problem  string
	HadToken bool
}

func (c *Console) explainPage(w http.ResponseWriter, r *http.Request, v *view) {
	v.Title, v.Nav = "Explain a token", "explain"
	issuers, err := c.opts.Catalog.ListIssuers(r.Context())
	if err != nil {
		c.dbFail(w, r, err)
		return
	}
	v.Data = &explainPage{Issuers: issuers}
	c.render(w, r, http.StatusOK, "explain", v)
}

// explain evaluates a pasted token or claims: a POST, so that the token
// never lands in a URL, a log line or the browser's history; it reads
// only. The token is not echoed back into the form.
func (c *Console) explain(w http.ResponseWriter, r *http.Request, v *view) {
	v.Title, v.Nav = "Explain a token", "explain"
	if !sameOrigin(r) {
		c.fail(w, r, http.StatusForbidden, "This form must be sent from the console's own pages.")
		return
	}
	issuers, err := c.opts.Catalog.ListIssuers(r.Context())
	if err != nil {
		c.dbFail(w, r, err)
		return
	}
	p := &explainPage{Issuers: issuers, Issuer: r.PostFormValue("issuer"), Claims: r.PostFormValue("claims"),
		Mapping: strings.TrimSpace(r.PostFormValue("mapping"))}
	v.Data = p
	req := api.ExplainRequest{Token: strings.TrimSpace(r.PostFormValue("token")), Mapping: p.Mapping}
	p.HadToken = req.Token != ""
	if strings.TrimSpace(p.Claims) != "" {
		req.Claims, req.Issuer = json.RawMessage(p.Claims), p.Issuer
		if !json.Valid(req.Claims) {
			p.Problem = "The claims are not JSON: paste the token's payload, an object such as {\"repository\": \"acme/web\", ...}."
			c.render(w, r, http.StatusBadRequest, "explain", v)
			return
		}
	}
	res, err := c.opts.Explainer.Explain(r.Context(), req)
	if err != nil {
		p.Problem = c.opts.ErrorBody(err).Message
		c.render(w, r, http.StatusOK, "explain", v)
		return
	}
	p.Result = &res
	c.render(w, r, http.StatusOK, "explain", v)
}
