package bridge

import (
	"context"
	"errors"
	"net/http"
	"net/url"

	"github.com/labstack/echo/v4"

	"github.com/oidc-bridge/oidc-bridge/bridge/api"
	"github.com/oidc-bridge/oidc-bridge/identity"
	"github.com/oidc-bridge/oidc-bridge/mapping"
	"github.com/oidc-bridge/oidc-bridge/providers/aws"
)

func (s *Server) listIssuers(c echo.Context) error {
	is, err := s.opts.Store.ListIssuers(c.Request().Context())
	if err != nil {
		return err
	}
	if is == nil {
		is = []mapping.Issuer{}
	}
	for i := range is {
		is[i].Warnings = mapping.LintIssuer(&is[i])
	}
	return c.JSON(http.StatusOK, api.IssuerList{Issuers: each(is, apiIssuer)})
}

func (s *Server) getIssuer(c echo.Context) error {
	is, err := s.opts.Store.GetIssuer(c.Request().Context(), c.Param("name"))
	if err != nil {
		return err
	}
	is.Warnings = mapping.LintIssuer(&is)
	return c.JSON(http.StatusOK, apiIssuer(is))
}

// readIssuer decodes, validates and lints an issuer (into is.Warnings); with
// ?lint=strict it refuses one with warnings, as for mappings. pathName is
// the name in the URL of a PUT, which the body may omit.
func (s *Server) readIssuer(c echo.Context, pathName string) (mapping.Issuer, error) {
	strict, err := lintStrict(c)
	if err != nil {
		return mapping.Issuer{Enabled: true}, err
	}
	in := api.Issuer{Enabled: true}
	if err := decodeStrict(c, &in); err != nil {
		return issuerOf(in), err
	}
	is := issuerOf(in)
	is.Warnings = nil
	if is.Name == "" {
		is.Name = pathName
	}
	if err := mapping.ValidateIssuer(&is); err != nil {
		return is, err
	}
	if err := identity.ValidateIssuerURL(is.URL, s.opts.AllowInsecureIssuers); err != nil {
		return is, &mapping.ValidationError{Field: "url", Message: err.Error()}
	}
	if is.JWKSURL != "" {
		// The keys' URL follows the issuer URL's rule: https, or http on
		// loopback with BRIDGE_ALLOW_INSECURE_ISSUERS.
		if err := identity.ValidateIssuerURL(is.JWKSURL, s.opts.AllowInsecureIssuers); err != nil {
			return is, &mapping.ValidationError{Field: "jwks_url", Message: err.Error()}
		}
	}
	if ws := mapping.LintIssuer(&is); strict && len(ws) > 0 {
		return is, mapping.StrictLintError("issuers", ws)
	}
	return is, nil
}

// lintStrict reads ?lint: warn (the default) or strict.
func lintStrict(c echo.Context) (bool, error) {
	switch c.QueryParam("lint") {
	case "", "warn":
		return false, nil
	case "strict":
		return true, nil
	}
	return false, invalid("lint", "lint: must be warn (the default) or strict")
}

// dryRun reads ?dry_run of a POST: false (the default) or true, which
// validates and lints the body as the write would and answers the object
// it would store, writing nothing.
func dryRun(c echo.Context) (bool, error) {
	switch c.QueryParam("dry_run") {
	case "", "false":
		return false, nil
	case "true":
		return true, nil
	}
	return false, invalid("dry_run", "dry_run: must be true or false (the default)")
}

func (s *Server) createIssuer(c echo.Context) error {
	dry, err := dryRun(c)
	if err != nil {
		return err
	}
	is, err := s.readIssuer(c, "")
	if err != nil {
		return err
	}
	if dry {
		is.Warnings = mapping.LintIssuer(&is)
		return c.JSON(http.StatusOK, apiIssuer(is))
	}
	out, err := s.opts.Store.CreateIssuer(c.Request().Context(), actor(c), is)
	if err != nil {
		return err
	}
	out.Warnings = mapping.LintIssuer(&out)
	c.Response().Header().Set(echo.HeaderLocation, "/v1/admin/issuers/"+url.PathEscape(out.Name))
	return c.JSON(http.StatusCreated, apiIssuer(out))
}

func (s *Server) updateIssuer(c echo.Context) error {
	name := c.Param("name")
	is, err := s.readIssuer(c, name)
	if err != nil {
		return err
	}
	// A change of kind must not leave a mapping the new kind refuses. The
	// deployment's rules (role chaining) are not applied: a mapping stored
	// before them still mints (cut to the limit) and must not block an
	// unrelated change of its issuer.
	check := func(m mapping.Mapping) error {
		return mapping.ValidateMapping(&m, identity.Kind(is.Kind))
	}
	out, err := s.opts.Store.UpdateIssuer(c.Request().Context(), actor(c), name, is, check)
	if err != nil {
		return err
	}
	out.Warnings = mapping.LintIssuer(&out)
	return c.JSON(http.StatusOK, apiIssuer(out))
}

func (s *Server) deleteIssuer(c echo.Context) error {
	if err := s.opts.Store.DeleteIssuer(c.Request().Context(), actor(c), c.Param("name")); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (s *Server) listMappings(c echo.Context) error {
	q := c.QueryParams()
	f := mapping.Filter{Issuer: q.Get("issuer"), Provider: q.Get("provider")}
	switch q.Get("enabled") {
	case "":
	case "true":
		f.EnabledOnly = true
	default:
		return invalid("enabled", "enabled: the only filter value is true")
	}
	ctx := c.Request().Context()
	ms, err := s.opts.Store.ListMappings(ctx, f)
	if err != nil {
		return err
	}
	if ms == nil {
		ms = []mapping.Mapping{}
	}
	if err := s.lint(ctx, ms); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, api.MappingList{Mappings: each(ms, apiMapping)})
}

func (s *Server) getMapping(c echo.Context) error {
	ctx := c.Request().Context()
	m, err := s.opts.Store.GetMapping(ctx, c.Param("name"))
	if err != nil {
		return err
	}
	ms := []mapping.Mapping{m}
	if err := s.lint(ctx, ms); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, apiMapping(ms[0]))
}

// lint fills in the warnings of stored mappings, which depend on their
// issuers' kinds.
func (s *Server) lint(ctx context.Context, ms []mapping.Mapping) error {
	if len(ms) == 0 {
		return nil
	}
	issuers, err := s.opts.Store.ListIssuers(ctx)
	if err != nil {
		return err
	}
	kinds := make(map[string]identity.Kind, len(issuers))
	for _, is := range issuers {
		kinds[is.Name] = identity.Kind(is.Kind)
	}
	for i := range ms {
		ms[i].Warnings = mapping.Lint(&ms[i], kinds[ms[i].Issuer])
	}
	return nil
}

// readMapping decodes a mapping and returns it with the check that the
// store runs against its issuer's kind inside the write's transaction: it
// validates, lints (into *warnings), and with ?lint=strict refuses a mapping
// that has warnings.
func readMapping(c echo.Context, pathName string, opts mapping.ValidateOptions, warnings *[]mapping.Warning) (mapping.Mapping, func(identity.Kind) error, error) {
	strict := false
	switch c.QueryParam("lint") {
	case "", "warn":
	case "strict":
		strict = true
	default:
		return mapping.Mapping{}, nil, invalid("lint", "lint: must be warn (the default) or strict")
	}
	in := api.Mapping{Enabled: true}
	if err := decodeStrict(c, &in); err != nil {
		return mappingOf(in), nil, err
	}
	m := mappingOf(in)
	if m.Name == "" {
		m.Name = pathName
	}
	mapping.Normalize(&m)
	if m.Issuer == "" {
		return m, nil, &mapping.ValidationError{Field: "issuer", Message: "issuer: required: the name of a registered issuer"}
	}
	check := func(k identity.Kind) error {
		if err := mapping.ValidateMapping(&m, k, opts); err != nil {
			return err
		}
		*warnings = mapping.Lint(&m, k)
		if strict && len(*warnings) > 0 {
			return mapping.StrictLintError("mappings", *warnings)
		}
		return nil
	}
	return m, check, nil
}

// validateOptions is what mapping validation knows of the deployment.
func (s *Server) validateOptions() mapping.ValidateOptions {
	return mapping.ValidateOptions{Providers: mapping.Providers().With(aws.Spec{RoleChaining: s.opts.AWSRoleChaining})}
}

func (s *Server) createMapping(c echo.Context) error {
	dry, err := dryRun(c)
	if err != nil {
		return err
	}
	var warnings []mapping.Warning
	m, check, err := readMapping(c, "", s.validateOptions(), &warnings)
	if err != nil {
		return err
	}
	if dry {
		// Like its issuer, the App may be registered in the same change
		// (a Terraform plan): the write checks it.
		return s.dryRunMapping(c, m, check, &warnings)
	}
	if err := s.checkGitHubApp(c.Request().Context(), m); err != nil {
		return err
	}
	out, err := s.opts.Store.CreateMapping(c.Request().Context(), actor(c), m, check)
	if err != nil {
		return err
	}
	out.Warnings = warnings
	c.Response().Header().Set(echo.HeaderLocation, "/v1/admin/mappings/"+url.PathEscape(out.Name))
	return c.JSON(http.StatusCreated, apiMapping(out))
}

// dryRunMapping runs a mapping's check against its issuer's kind, or the
// generic kind's rules when no issuer of that name is registered (it may be
// created in the same change), and answers the mapping as it would be
// stored, with its warnings.
func (s *Server) dryRunMapping(c echo.Context, m mapping.Mapping, check func(identity.Kind) error, warnings *[]mapping.Warning) error {
	kind := identity.KindGeneric
	is, err := s.opts.Store.GetIssuer(c.Request().Context(), m.Issuer)
	switch {
	case err == nil:
		kind = identity.Kind(is.Kind)
	case !errors.Is(err, mapping.ErrNotFound):
		return err
	}
	if err := check(kind); err != nil {
		return err
	}
	m.Warnings = *warnings
	return c.JSON(http.StatusOK, apiMapping(m))
}

func (s *Server) updateMapping(c echo.Context) error {
	name := c.Param("name")
	var warnings []mapping.Warning
	m, check, err := readMapping(c, name, s.validateOptions(), &warnings)
	if err != nil {
		return err
	}
	if err := s.checkGitHubApp(c.Request().Context(), m); err != nil {
		return err
	}
	out, err := s.opts.Store.UpdateMapping(c.Request().Context(), actor(c), name, m, check)
	if err != nil {
		return err
	}
	out.Warnings = warnings
	return c.JSON(http.StatusOK, apiMapping(out))
}

func (s *Server) deleteMapping(c echo.Context) error {
	if err := s.opts.Store.DeleteMapping(c.Request().Context(), actor(c), c.Param("name")); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (s *Server) mappingUsage(c echo.Context) error {
	ctx := c.Request().Context()
	m, err := s.opts.Store.GetMapping(ctx, c.Param("name"))
	if err != nil {
		return err
	}
	var perHour, perJob int
	if m.Quota != nil {
		perHour, perJob = m.Quota.PerHour, m.Quota.PerJob
	}
	u, err := s.opts.Usage.Usage(ctx, m.ID, m.Name, perHour, perJob)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, apiUsage(u))
}
