# oidc-bridge. The two commands of the README: `make run` and `make test`.
GO        ?= go
BIN       := bin/oidc-bridge
PKGS      := ./...
STATICCHECK_VERSION := v0.8.2
GOSEC_VERSION := v2.30.0

.DEFAULT_GOAL := help
.PHONY: help build release run demo test lint bench fuzz postgres tofu clean action promtool terraform-provider moto awscli console-screenshot

help: ## Show the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

# The version in oidc_bridge_build_info: the git description, else dev.
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)

build: ## Build bin/oidc-bridge (static)
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-X main.version=$(VERSION)" -o $(BIN) ./cmd/oidc-bridge

# A release (scripts/release.sh): static binaries
# oidc-bridge_<VERSION>_<os>_<arch> for linux and darwin, amd64 and arm64,
# and SHA256SUMS, into RELEASE_DIR (dist/, ignored by git); the container
# image tagged VERSION when `docker buildx` reaches an engine, else the
# command that builds it. VERSION must be a tag such as v1.0.0.
RELEASE_DIR ?= dist

release: ## Build release binaries and SHA256SUMS into dist/ (make release VERSION=v1.0.0), and the image when Docker can
	@GO=$(GO) scripts/release.sh "$(VERSION)" "$(RELEASE_DIR)"

postgres: ## Make sure PostgreSQL server binaries are installed (apt-get when missing)
	@scripts/ensure-postgres.sh

run: postgres build ## Start the service on the embedded default (or BRIDGE_DATABASE_URL)
	./$(BIN) serve

# The local demo (test/demo): the real binary on the embedded default in a
# temporary folder, a local OIDC issuer and the AWS STS fake; it registers an
# issuer and a mapping, exchanges a token, shows a refusal and the audit rows,
# and removes everything it made. TestDemo runs it in `make test`.
demo: postgres build ## See an exchange work on this machine (a demo issuer, the STS fake, a temporary database)
	$(GO) run ./test/demo -bin $(BIN)

# OpenTofu CLI that the Terraform provider's acceptance tests drive; built
# once from the Go module proxy and cached (see scripts/ensure-tofu.sh).
TOFU_VERSION ?= v1.10.10

tofu: ## Build the OpenTofu CLI for the provider's acceptance tests (once, then cached)
	@TOFU_VERSION=$(TOFU_VERSION) scripts/ensure-tofu.sh

# The Terraform/OpenTofu provider, built and installed into a local
# filesystem mirror with the registry layout under registry.terraform.io and
# registry.opentofu.org (see scripts/install-terraform-provider.sh and
# terraform/README.md "Installing the provider"): `terraform init` and
# `tofu init` then find source = "oidc-bridge/oidcbridge" offline.
TF_PROVIDER_MIRROR  ?= $(HOME)/.terraform.d/plugins
TF_PROVIDER_VERSION ?=

terraform-provider: ## Build the Terraform/OpenTofu provider into a local mirror (TF_PROVIDER_MIRROR, default ~/.terraform.d/plugins)
	@GO=$(GO) TF_PROVIDER_MIRROR="$(TF_PROVIDER_MIRROR)" TF_PROVIDER_VERSION="$(TF_PROVIDER_VERSION)" scripts/install-terraform-provider.sh

# The GitHub Action (actions/credentials): npm dependencies from its lockfile
# (install scripts off), dist/index.js rebuilt, and the rebuild must equal
# the committed file (a fresh clone builds the same bytes).
action: ## Install the GitHub Action's npm dependencies (lockfile), rebuild dist/index.js, fail if it differs from the commit
	cd actions/credentials && npm ci --no-audit --no-fund --ignore-scripts && npm run --silent build
	@if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then \
	  if ! git ls-files --error-unmatch actions/credentials/dist/index.js >/dev/null 2>&1; then \
	    echo "warning: actions/credentials/dist/index.js is not committed yet: commit it"; \
	  elif ! git diff --quiet -- actions/credentials/dist/index.js; then \
	    git diff --stat -- actions/credentials/dist/index.js; \
	    echo "actions/credentials/dist/index.js differs from the commit: the sources changed without a rebuild, or the build is not reproducible; commit the rebuilt file"; exit 1; \
	  fi; \
	fi

# Prometheus's promtool, for the alerting and recording rules under
# deploy/prometheus: taken from Debian's prometheus package once and cached
# (see scripts/ensure-promtool.sh); `promtool check rules` and `promtool test
# rules` run in `make test`.
promtool: ## Make sure promtool is available (from Debian's prometheus package, cached), check and unit-test deploy/prometheus rules
	@P="$$(scripts/ensure-promtool.sh)" && \
	  "$$P" check rules deploy/prometheus/rules.yml && \
	  "$$P" test rules deploy/prometheus/rules_test.yml

# The independent AWS peers of the end-to-end tests (test/moto,
# test/e2e/moto_test.go, awscli_test.go): a Python that runs moto's server
# (the machine's, else a venv with a pinned moto[server] from pip), the AWS
# CLI v2 (Debian's awscli, installed when missing) and v1 (Python's). The
# tests call each by the path `test` passes them; run alone (`go test`),
# they run these scripts themselves.
moto: ## Make sure a Python that runs moto's server is available (the machine's, else pip into the build cache)
	@scripts/ensure-moto.sh

awscli: ## Make sure AWS CLI v2 (Debian's awscli, apt-get when missing) and v1 (Python) are available
	@scripts/ensure-awscli.sh && scripts/ensure-awscli.sh v1

# Independent peers of the interop tests (issue 17): MinIO, an S3 server
# whose STS verifies the bridge's tokens itself, built once from the Go
# module proxy and cached (scripts/ensure-minio.sh, about 4 minutes cold);
# PyJWT from Debian's python3-jwt for the system's Python
# (scripts/ensure-pyjwt.sh). `make test` passes their paths to the tests in
# OIDC_BRIDGE_MINIO and OIDC_BRIDGE_PYJWT_PYTHON; a plain `go test` runs the
# scripts itself.
.PHONY: minio pyjwt history
minio: ## Build the MinIO server for the interop tests (once, then cached)
	@scripts/ensure-minio.sh >/dev/null

pyjwt: ## Make sure the system's Python can import PyJWT (apt-get python3-jwt when missing)
	@scripts/ensure-pyjwt.sh >/dev/null

.PHONY: git
git: ## Make sure git and git-http-backend are installed, for the credential helper's push test (apt-get git when missing)
	@scripts/ensure-git.sh >/dev/null
# The console's browser test (test/e2e/console_test.go, issue 23): Debian's
# chromium (apt-get install when missing, scripts/ensure-chromium.sh) driven
# headless by chromedp, and axe-core from npm for the accessibility pass
# (pinned, into the build cache, scripts/ensure-axe.sh). `make test` passes
# their paths in OIDC_BRIDGE_CHROMIUM and OIDC_BRIDGE_AXE; a plain `go test`
# runs the scripts itself.
.PHONY: chromium axe
chromium: ## Make sure Chromium is installed for the console's browser test (apt-get chromium when missing)
	@scripts/ensure-chromium.sh >/dev/null

axe: ## Fetch axe-core from npm into the build cache (once) for the console's accessibility test
	@scripts/ensure-axe.sh >/dev/null

# The acceptance tests need TF_ACC and the tofu binary; the provider runs
# in-process under the address registry.opentofu.org/hashicorp/oidcbridge;
# TF_CLI_CONFIG_FILE may be preset to a missing file, so it is set here.
test: postgres tofu action promtool moto awscli minio pyjwt git chromium axe ## Run every test: unit, Postgres integration, end to end, Terraform acceptance, fuzz seeds, Prometheus rules, the independent peers, the console in a browser
	OIDC_BRIDGE_MOTO_PYTHON="$$(scripts/ensure-moto.sh)" OIDC_BRIDGE_AWS_CLI_V2="$$(scripts/ensure-awscli.sh)" \
	OIDC_BRIDGE_AWS_CLI_V1="$$(scripts/ensure-awscli.sh v1)" \
	TF_ACC=1 TF_ACC_TERRAFORM_PATH="$$(TOFU_VERSION=$(TOFU_VERSION) scripts/ensure-tofu.sh)" \
	TF_ACC_PROVIDER_NAMESPACE=hashicorp TF_ACC_PROVIDER_HOST=registry.opentofu.org TF_CLI_CONFIG_FILE=/dev/null \
	OIDC_BRIDGE_MINIO="$$(scripts/ensure-minio.sh)" OIDC_BRIDGE_PYJWT_PYTHON="$$(scripts/ensure-pyjwt.sh)" \
	OIDC_BRIDGE_CHROMIUM="$$(scripts/ensure-chromium.sh)" OIDC_BRIDGE_AXE="$$(scripts/ensure-axe.sh)" \
	$(GO) test -race -count=1 -timeout 20m $(PKGS)

# gosec's rules for what the attack catalogue covers: HTTP servers without
# timeouts (G112, G114), TLS settings (G402), weak hashes and ciphers
# (G401, G501-G505), unescaped templates (G203), SQL text built with
# formatting (G201/G202; internal/sqlcheck's test checks pgx's calls,
# which gosec does not know). The other rules flag file paths and
# subprocesses that are the point of the embedded-database commands.
GOSEC_RULES = G106,G107,G108,G112,G114,G201,G202,G203,G401,G402,G403,G501,G502,G503,G504,G505,G601

# The client side (ciclient, the Terraform provider, bridge/api and
# bridge/client) must link neither pgx nor go-oidc: ciclient's
# TestClientLinksNoServer walks `go list -deps` and names the import path.
# internal/targetlint checks that no code outside providers/<cloud> names a
# cloud target's field.
lint: ## gofmt, go vet, the client side links no server code, targetlint (targets stay in providers/<cloud>), staticcheck, gosec (the catalogue's rules)
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) test -count=1 -run '^TestClientLinksNoServer$$' ./ciclient/
	$(GO) run ./internal/targetlint
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) $(PKGS)
	$(GO) run github.com/securego/gosec/v2/cmd/gosec@$(GOSEC_VERSION) -quiet -include=$(GOSEC_RULES) $(PKGS)

history: postgres ## Fill a throwaway ledger with N rows of history (default 2000000) and measure the audit cookbook, sizes, the quota path and a partition drop (docs/operations.md)
	$(GO) run ./test/load -history $(or $(N),2000000)

bench: postgres build ## Run the benchmarks, then the end-to-end load test (test/load, docs/performance.md)
	$(GO) test -run='^$$' -bench=. -benchmem $(PKGS)
	$(GO) run ./test/load -bin $(BIN)

# The soak (issue 22, not part of `make test`): three replicas on one
# PostgreSQL at 200 exchanges/s for SOAK_DURATION with a quota on the
# mapping; each replica's RSS, goroutines and database connections and the
# minute's p99, once a minute, printed and charted into docs/soak.svg (see
# docs/performance.md "Soak").
SOAK_DURATION ?= 30m
.PHONY: soak
soak: postgres build ## Three replicas at 200 exchanges/s for SOAK_DURATION (30m), quota on; RSS, goroutines, connections, p99 per minute into docs/soak.svg
	$(GO) run ./test/load -bin $(BIN) -soak $(SOAK_DURATION) -soak-svg docs/soak.svg

FUZZTIME ?= 3m
fuzz: ## Run each fuzz target for FUZZTIME (seed corpora run in `make test` anyway)
	@for pkg in ./identity ./mapping ./providers/aws; do \
	  for t in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    $(GO) test -run='^$$' -fuzz="^$$t$$" -fuzztime=$(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

clean: ## Remove build output (not the embedded database under .oidc-bridge)
	rm -rf bin dist

# The README's screenshot of the console's denial page, made by the browser
# test (TestConsoleInBrowser) from the real binary and committed.
console-screenshot: postgres chromium axe ## Remake docs/console-denial.png from the console's browser test
	OIDC_BRIDGE_CONSOLE_SCREENSHOT=$(CURDIR)/docs/console-denial.png $(GO) test -count=1 -run TestConsoleInBrowser ./test/e2e/
