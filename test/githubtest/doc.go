// Package githubtest is a wire-compatible fake of the parts of GitHub's
// REST API that GitHub App installation tokens use, served over TLS under
// /api/v3/ as a GitHub Enterprise Server serves them (so the bridge is
// configured with the fake's BaseURL as an App's base_url, and the real
// clients, go-github and ghinstallation, talk to it unchanged):
//
//   - App JWTs (RS256) checked against the App's registered public keys,
//     with GitHub's time rules: iat not in the future (60 s of skew), exp
//     in the future and at most 10 minutes after iat; iss the App's id.
//   - GET /orgs/{org}/installation and GET /users/{user}/installation.
//   - POST /app/installations/{id}/access_tokens: tokens scoped to
//     repositories and permissions, refused with GitHub's 422 shape when a
//     permission exceeds the installation's grant or a repository is outside
//     the installation.
//   - With an installation token: GET /installation/repositories,
//     GET /repos/{owner}/{repo}, DELETE /installation/token.
//   - Rate-limit headers on every answer, and a switch (RateLimit) to
//     answer 403 "API rate limit exceeded" with x-ratelimit-remaining: 0,
//     x-ratelimit-reset and Retry-After.
//
// With ServeGit it is the git host too (/{owner}/{repo}.git/ on the same
// address, as a GitHub Enterprise Server): git over HTTPS authorized by an
// installation token's life, repositories and contents permission.
//
// Keys are added and removed while the fake runs (AddKey, RemoveKey), for
// rotation tests. The fake keeps tokens in memory and never logs them.
package githubtest
